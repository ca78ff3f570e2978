"""Implicit neural representations: the SIREN network and a batched fitter."""

from .fitting import FitResult, fit_sirens, psnr
from .siren import Siren, coordinate_grid, siren_init

__all__ = ["FitResult", "Siren", "coordinate_grid", "fit_sirens", "psnr", "siren_init"]
