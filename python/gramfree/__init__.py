"""gramfree: kernel machines at the scale of deep learning, with the Gram matrix never built.

The fused native operators (``KernelOperator``, ``kernel_matrix``, ``kernel_gradient``)
multiply by ``K(X, Z)`` tile by tile, so memory stays O(n * d), never O(n^2).
"""

from . import kernels
from ._config import config, show_config
from .estimators import KernelClassifier, KernelRegressor
from .io import load
from .kernels import get_kernel
from .operators import KernelOperator, kernel_gradient, kernel_matrix

__version__ = "0.1.0"

__all__ = [
    "KernelClassifier",
    "KernelOperator",
    "KernelRegressor",
    "load",
    "config",
    "get_kernel",
    "kernel_gradient",
    "kernel_matrix",
    "kernels",
    "show_config",
]
