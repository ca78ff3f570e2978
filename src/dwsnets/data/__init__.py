"""Data sets of networks: synthetic zoos and (later) fitted INR zoos."""

from .synthetic import SineMLPZoo, make_sine_mlp_zoo

__all__ = ["SineMLPZoo", "make_sine_mlp_zoo"]
