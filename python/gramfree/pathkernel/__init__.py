"""Networks trained by plain gradient descent, exposed as the kernel machines they are.

A model trained by gradient descent predicts through its training examples: over one step
the output at x changes by the query's gradient, averaged along the step, dotted with the
step's update, which is a sum of per-example gradients. Summed over the steps, every
prediction splits exactly into a starting value and one contribution per training example
(Domingos 2020, "Every model learned by gradient descent is approximately a kernel
machine"; made exact for discrete steps by averaging the query gradient along each step).
"""

from .estimators import PathKernelClassifier, PathKernelRegressor, ReplayMismatchWarning
from .explain import Explanation, PathDecomposition

__all__ = [
    "Explanation",
    "PathDecomposition",
    "PathKernelClassifier",
    "PathKernelRegressor",
    "ReplayMismatchWarning",
]
