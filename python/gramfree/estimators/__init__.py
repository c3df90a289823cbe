"""scikit-learn estimators over the Gram-free solvers."""

from .classifier import KernelClassifier
from .regressor import KernelRegressor
from .regressor_cv import KernelRegressorCV

__all__ = ["KernelClassifier", "KernelRegressor", "KernelRegressorCV"]
