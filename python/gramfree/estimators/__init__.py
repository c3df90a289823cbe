"""scikit-learn estimators over the Gram-free solvers."""

from .classifier import KernelClassifier
from .regressor import KernelRegressor
from .cv import KernelClassifierCV, KernelRegressorCV

__all__ = ["KernelClassifier", "KernelClassifierCV", "KernelRegressor", "KernelRegressorCV"]
