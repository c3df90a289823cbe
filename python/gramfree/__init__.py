"""gramfree: kernel machines at the scale of deep learning, with the Gram matrix never built.

The fused native operators (``KernelOperator``, ``kernel_matrix``, ``kernel_gradient``)
multiply by ``K(X, Z)`` tile by tile, so memory stays O(n * d), never O(n^2).
"""

import os as _os

# Idle OpenMP workers spin after each parallel region by default, and on a machine with few
# cores they starve the BLAS calls that solvers (and callers) make between operator calls:
# 1.5x on a loop of operator passes and dense solves and on a Nystrom-PCG fit
# (benchmarks/bench_wait_policy.py, 2 cores). Waiting passively costs a few microseconds
# per region, whose work is milliseconds. libgomp reads the policy once, when it loads: so
# the variable is set only while the native module (and with it libgomp) loads, then the
# environment is restored; the process and its children see what the user set. A value
# the user set is kept.
_WAIT_POLICY_SET = "OMP_WAIT_POLICY" not in _os.environ
if _WAIT_POLICY_SET:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
try:
    from . import _core  # noqa: E402,F401  (loads libgomp)
finally:
    if _WAIT_POLICY_SET:
        del _os.environ["OMP_WAIT_POLICY"]
del _WAIT_POLICY_SET

from . import kernels  # noqa: E402
from ._config import config, show_config, warn_if_simd_env_ignored  # noqa: E402

warn_if_simd_env_ignored()
from ._version import __version__ as __version__  # noqa: E402
from .estimators import (  # noqa: E402
    KernelClassifier,
    KernelClassifierCV,
    KernelRegressor,
    KernelRegressorCV,
)
from .io import load  # noqa: E402
from .kernels import get_kernel  # noqa: E402
from .operators import KernelOperator, kernel_gradient, kernel_matrix  # noqa: E402
from .pathkernel import Explanation, PathKernelClassifier, PathKernelRegressor  # noqa: E402
from .solvers.rates import calibrate  # noqa: E402

__all__ = [
    "Explanation",
    "KernelClassifier",
    "KernelClassifierCV",
    "KernelOperator",
    "KernelRegressor",
    "KernelRegressorCV",
    "PathKernelClassifier",
    "PathKernelRegressor",
    "load",
    "calibrate",
    "config",
    "get_kernel",
    "kernel_gradient",
    "kernel_matrix",
    "kernels",
    "show_config",
]
