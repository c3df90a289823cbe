"""scikit-learn estimators over the Gram-free solvers."""

from .classifier import KernelClassifier
from .cv import KernelClassifierCV, KernelRegressorCV
from .regressor import KernelRegressor

__all__ = ["KernelClassifier", "KernelClassifierCV", "KernelRegressor", "KernelRegressorCV"]
