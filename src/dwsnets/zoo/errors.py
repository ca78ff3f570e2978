"""The one error type of zoos on disk and in memory."""

from __future__ import annotations

__all__ = ["ZooError"]


class ZooError(RuntimeError):
    """A zoo is missing, incomplete, corrupt, foreign or inconsistent."""
