"""Layers and models on weight spaces, each with a stated symmetry contract.

* :mod:`~dwsnets.nn.equivariant`: :class:`DWSLayer`, the complete affine equivariant layer;
* :mod:`~dwsnets.nn.invariant`: :class:`InvariantPooling` and :class:`InvariantHead`;
* :mod:`~dwsnets.nn.norm`: :class:`WSBatchNorm` and :class:`InputNormalization`
  (:func:`compile_kernels` fuses batch norm's passes with torch.compile);
* :mod:`~dwsnets.nn.pointwise`: :class:`Entrywise` activations and :class:`WSDropout`;
* :mod:`~dwsnets.nn.models`: :class:`DWSNet`, :class:`EquivariantDWSNet`, :class:`DWSBackbone`;
* :mod:`~dwsnets.nn.sign_equivariant`: :class:`SignEquivariantNet`, invariant to the sine's
  sign flips as well as the permutations, from bilinear messages between neurons.
"""

from .equivariant import DWSLayer
from .invariant import InvariantHead, InvariantPooling
from .models import DWSBackbone, DWSNet, EquivariantDWSNet, WeightSpaceModel
from .norm import InputNormalization, WSBatchNorm, compile_kernels
from .pointwise import Entrywise, WSDropout, make_activation
from .sign_equivariant import SignEquivariantLayer, SignEquivariantNet

__all__ = [
    "DWSBackbone",
    "DWSLayer",
    "DWSNet",
    "Entrywise",
    "EquivariantDWSNet",
    "InputNormalization",
    "InvariantHead",
    "InvariantPooling",
    "SignEquivariantLayer",
    "SignEquivariantNet",
    "WSBatchNorm",
    "WSDropout",
    "WeightSpaceModel",
    "compile_kernels",
    "make_activation",
]
