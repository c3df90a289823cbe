"""scikit-learn estimators over the Gram-free solvers."""

from .classifier import KernelClassifier
from .regressor import KernelRegressor

__all__ = ["KernelClassifier", "KernelRegressor"]
