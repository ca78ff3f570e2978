"""Implicit neural representations: the SIREN network and a batched fitter."""

from .fitting import FitResult, evaluate_sirens, fit_sirens, psnr
from .siren import Siren, coordinate_grid, siren_forward, siren_init

__all__ = [
    "FitResult",
    "Siren",
    "coordinate_grid",
    "evaluate_sirens",
    "fit_sirens",
    "psnr",
    "siren_forward",
    "siren_init",
]
