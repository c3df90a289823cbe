"""What KernelRegressor and KernelClassifier share: parameters, validation, the solver call,
prediction from centres, compression. The scikit-learn layer only validates and delegates
to :mod:`gramfree.solvers`."""

from __future__ import annotations

import math
import numbers
import os
import time
import warnings
from dataclasses import fields
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import LinAlgWarning
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from .._log import caller_stacklevel, say, verbose_output
from .._params import check_number_params
from .._threads import blas_threads, limit_numpy_blas_for_loops
from ..device import resolve_device
from ..kernels import KERNEL_NAMES, Kernel, get_kernel, scale_gamma
from ..linalg import cho_solve, jittered_cholesky
from ..operators import KernelOperator, as_float_array
from ..solvers import SOLVERS, Problem, solve_direct, solve_eigenpro, solve_kernel_pcg
from ..solvers._common import (
    center_rows,
    heavy_rows,
    iterations_run,
    weight_exponent,
    weight_span,
)
from ..solvers.auto import (
    WEIGHT_SPAN_PCG,
    first_center_count,
    run_nystrom,
    solve_auto,
    solve_nystrom_choice,
)
from ..solvers.eigenpro import CERTIFY, info_in_caller_units
from ._fit_controls import (
    EXACT_SOLVERS,
    ITERATIVE_SOLVERS,
    PCG_DEFAULT_ITER,
    WarmStart,
    continues_on_rows,
    hold_out,
)

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self


# Largest target magnitude a fit takes, by the data's dtype, and the reciprocal, below which
# the largest must not fall: the iterative solvers' squared residuals and norms over- or
# underflow beyond (y ~ 1e160 gave an all-zero model, y ~ 1e-300 a wrong one, silently).
TARGET_LIMIT = {np.dtype(np.float64): 1e100, np.dtype(np.float32): 1e30}


def check_numeric_targets(y: object) -> None:
    """Refuse regression targets of datetime or timedelta dtype: scikit-learn's validation
    lets them through (Ridge fits the day counts), and the fit was of their integer
    encoding in whatever unit numpy chose (a review). KernelRidge refuses them too."""
    dtype = getattr(y, "dtype", None)
    if getattr(dtype, "kind", "") in ("M", "m"):
        raise TypeError(
            f"y: dtype {dtype} is not numeric; convert the targets to numbers in the "
            "unit you mean (for example (y - y.min()) / np.timedelta64(1, 'D'))"
        )


def check_label_types(y: object) -> None:
    """TypeError naming y where class labels (an object array) mix kinds that have no
    order: strings with numbers, or with None. numpy's sort raised a bare "'<' not
    supported between instances of 'int' and 'str'" (as scikit-learn's estimators do; a
    review)."""
    if not isinstance(y, np.ndarray) or y.dtype.kind != "O":
        return
    kinds = {_label_kind(v) for v in y.ravel().tolist()}
    if len(kinds) > 1:
        raise TypeError(
            f"y: class labels mix {' and '.join(sorted(kinds))}, which have no order; give "
            "them all as strings or all as numbers"
        )


def _label_kind(value) -> str:
    if isinstance(value, str):
        return "strings"
    if isinstance(value, numbers.Number):
        return "numbers"
    return "None" if value is None else type(value).__name__


def check_target_range(y: np.ndarray, dtype: np.dtype) -> None:
    """Refuse targets whose squares the solvers cannot sum in ``dtype`` (and times:
    :func:`check_numeric_targets`)."""
    check_numeric_targets(y)
    limit = TARGET_LIMIT[np.dtype(dtype)]
    top = float(np.abs(np.asarray(y, dtype=np.float64)).max(initial=0.0))
    if top > limit or 0.0 < top < 1.0 / limit:
        raise ValueError(
            f"y: the largest target magnitude, {top:.3g}, is outside what a "
            f"{np.dtype(dtype).name} fit handles ([{1.0 / limit:.0e}, {limit:.0e}]: the "
            "squared loss over- or underflows); divide y by a scale, fit, and multiply the "
            "predictions by it"
        )


def check_kernel_range(
    X: np.ndarray,
    kernel: Kernel,
    dtype: np.dtype,
    n_jobs=None,
    *,
    row_index: int | None = None,
    name: str = "X",
) -> None:
    """Refuse data on which ``kernel`` overflows in ``dtype``. ``row_index``: the index
    the message gives the largest row where ``X`` is a sample of the data (dask's fit
    passes the row of largest norm alone).

    Inner-product kernels (linear, poly, arccos) grow with |x|^2 and distance kernels
    compute |x|^2 + |z|^2 - 2 x.z: both overflow first on the row of largest norm, so the
    kernel row of that point against all of X (n kernel values) shows it. Without this
    check the solvers failed far from the cause ("V: contains NaN or infinity", or
    LAPACK's "Internal Error"). A kernel these parameters make indefinite is refused
    first (:meth:`gramfree.kernels.Kernel._refuse_indefinite`)."""
    kernel._refuse_indefinite()
    if X.shape[0] == 0:
        return
    # The largest norm, found without overflowing: scaled by the largest magnitude.
    top = float(np.max(np.abs(X)))
    if top == 0.0 or not math.isfinite(top):
        return
    scaled = X if top < 1e150 else X / top  # squared norms below float64's overflow
    i = int(np.argmax(np.einsum("ij,ij->i", scaled, scaled, dtype=np.float64)))
    Xk = X.astype(dtype, copy=False)
    kernel.check_points(Xk, name)  # the rows as the user numbers them
    row = KernelOperator(Xk[i : i + 1], Xk, kernel, n_jobs=n_jobs).to_dense()
    if not np.isfinite(row).all():
        raise ValueError(
            f"{name}: the {kernel.name or type(kernel).__name__} kernel overflows {np.dtype(dtype).name} on these data "
            f"(row {i if row_index is None else row_index}, of norm {top * math.sqrt(np.sum((X[i] / top) ** 2)):.3g}, gives "
            f"non-finite kernel values); standardise {name} (e.g. StandardScaler), or lower "
            "gamma or degree" + (", or fit in float64" if np.dtype(dtype) == np.float32 else "")
        )


def check_decision_finite(out: np.ndarray, kernel: Kernel, dtype: np.dtype) -> np.ndarray:
    """``out`` (decision values) if finite. A fitted model's coefficients are finite, so
    non-finite values mean the kernel overflowed between the queried rows and the centres."""
    if not np.isfinite(out).all():
        raise ValueError(
            f"X: the {kernel.name or type(kernel).__name__} kernel overflows "
            f"{np.dtype(dtype).name} between these rows and the model's centres (non-finite "
            "decision values); X is on a far larger scale than the training data: apply the "
            "same scaling as at fit"
        )
    return out


# Rows of the training data whose predictions estimate the coefficients' cancellation (below).
CANCELLATION_PROBE = 256
# The estimate (eps times the largest sum of |K_ij c_j| over the probe) at which the fit
# warns, relative to the targets' root mean square: in float32 it ran at about 5 times the
# error it estimates (breast cancer, diabetes, digits: 0.19-0.24 on every case with a
# visible error), in float64 at 1.9 to 8 times (linear kernels of diabetes, breast cancer
# and wine, raw and standardised, at alpha 1e-6 to 1e-15, nystrom-direct and nystrom-pcg,
# against the primal ridge by least squares; this session's sweep and a review's); so this
# warns where rounding moves predictions by about 1-3% of the targets' scale, near the
# policy of the direct solver's own check (1e-2 of the targets' norm).
CANCELLATION_WARN = 0.05
# Kernel values per block of the estimate's probe (32 MiB in float64): a probe of 256 rows
# against EigenPro's n centres is otherwise a 256 x n block.
CANCELLATION_BLOCK = 1 << 22


def _check_same_targets(model, refit) -> None:
    """compress(n, X, y) refits the same objective: targets with other classes or another
    number of outputs make another model, and its "relative change" came from broadcasting
    decision arrays of different shapes (a review: wine without class 2 gave a 2-class
    model, change 1.92)."""
    if hasattr(model, "classes_"):
        if not np.array_equal(np.asarray(model.classes_), np.asarray(refit.classes_)):
            raise ValueError(
                f"y: its classes {np.asarray(refit.classes_).tolist()} are not the model's "
                f"{np.asarray(model.classes_).tolist()}; compress refits the same model on X, y"
            )
    elif np.shape(model.dual_coef_)[1:] != np.shape(refit.dual_coef_)[1:]:
        raise ValueError(
            f"y: {_outputs(refit)} where the model has {_outputs(model)}; compress refits "
            "the same model on X, y"
        )


def _outputs(model) -> str:
    shape = np.shape(model.dual_coef_)
    n = 1 if len(shape) == 1 else shape[1]
    return "one output" if n == 1 else f"{n} outputs"


def stagnation_message(solver: str, result, kernel_dtype, tol: float) -> str:
    """The ConvergenceWarning of a fit whose residual stopped falling above tol (in
    memory and on dask)."""
    return (
        f"{solver}: the relative residual stopped falling at "
        f"{result.info['relative_residual']:.2g}, above tol={tol}, after "
        f"{result.n_iter} iterations: the {np.dtype(kernel_dtype)} kernel products' "
        "rounding limits it. Use a larger tol, or float64 products (float64 data "
        "and kernel_precision=None or 'float64'), or solver='direct'"
    )


def breakdown_message(solver: str, result) -> str:
    """The ConvergenceWarning of a float64 CG whose recursion broke down
    (``solver_info_["breakdown"]``: gramfree.solvers.nystrom_pcg.falkon_cg)."""
    return (
        f"{solver}: conjugate gradients broke down at iteration {result.n_iter} (its "
        "objective's recursion went negative or rose): the system is singular to "
        "rounding, as with coinciding centres at alpha=0. That iteration was undone: the "
        "model is the one before it, and loss_curve_ the recursion's values. Use "
        "solver='nystrom-direct' "
        "(alpha=0 as least squares on the centres) or a positive alpha"
    )


def weight_span_message(
    solver: str,
    span: float,
    fallback: str | None = None,
    early_stopping: bool = False,
    dask: bool = False,
) -> str:
    """The ConvergenceWarning of a PCG fit (``nystrom-pcg``, or ``pcg`` on all points)
    whose positive weights span more than ``solvers.auto.WEIGHT_SPAN_PCG`` (in memory and
    on dask). Beyond that span the light rows' part of the objective is below float64's
    resolution of the heavy rows' part in CG's residual and in its recursion: diabetes
    with five rows at 1e9 to 1e12 stopped at up to 700 times the optimum (Nystrom-PCG,
    64 of 192 fits over 1.001 times) and 1.04 times (PCG on all points), claiming tol; the
    recursion's objective was 0.3 to 1e306 times the true one, so no check of it tells
    these fits from good ones. ``auto`` never takes PCG there. ``fallback``: the one-pass
    solve's reason for falling back to Nystrom-PCG (``solver_info_["fallback_reason"]``),
    where that is how PCG came to run: then the advice is not the one pass again.
    ``early_stopping``: the fit had it, which the exact solvers do not take (auto keeps
    PCG for it; a review: the advice named a solver that refuses it). ``dask``: a dask
    fit's, whose nystrom-direct sums the Gram (no QR of the rows by weight there)."""
    exact = (
        "nystrom-direct' (the same centres, exact by QR of the rows in order of their "
        "norms; auto takes it"
        + (
            "; in memory only: on dask its one pass resolves such weights only roughly)"
            if dask
            else ")"
        )
        if solver == "nystrom-pcg"
        else "direct' (exact; where its n x n matrix does not fit, auto takes nystrom-direct)"
    )
    if fallback is not None:
        solver = f"nystrom-direct fell back to {solver} ({fallback}), and {solver}"
        exact = "direct' (exact, on every row as a centre)"
    return (
        f"{solver}: the positive sample weights span {span:.2g} (largest over smallest), "
        f"beyond {WEIGHT_SPAN_PCG:g}: in float64 the conjugate gradients cannot resolve "
        "the lightest rows' part of the fit beside the heaviest, and may have stopped far "
        f"above the optimum without seeing it. Use solver='{exact}"
        + (" without early_stopping, which it does not take" if early_stopping else "")
        + ", or weights within a narrower span"
    )


def _weight_span_warning(solver: str, problem, result, monitor) -> str:
    """weight_span_message for an in-memory fit's result."""
    return weight_span_message(
        solver,
        weight_span(problem.sample_weight),
        result.info.get("fallback_reason")
        if result.info.get("fallback") == "nystrom-pcg"
        else None,
        early_stopping=monitor is not None,
    )


def max_iter_message(solver: str, tol: float, result, instead: str = "") -> str:
    """The ConvergenceWarning of a fit out of iterations before ``tol``; ``instead``: a
    solver-specific alternative. A fit on float32 products (nystrom-pcg's refinement ran:
    ``solver_info_["refinements"]``) names float64 products too: their rounding may be what
    stops it, where more iterations do not help (digits, alpha 1e-10: 17% off, float64
    converging in 44 iterations; reviews), and says so with both residuals where CG's
    running one ended well below the true one (``solver_info_["float32_gap"]``)."""
    gap = result.info.get("float32_gap")
    if gap is not None and not result.info.get("products_retry"):  # (else tried: lost)
        instead += (
            f"; or kernel_precision='float64' (the float32 products' residual "
            f"{gap[0]:.2g} is below the true {gap[1]:.2g}: their rounding may hold it there)"
        )
    elif "refinements" in result.info and not result.info.get("products_retry"):
        instead += "; or kernel_precision='float64' (float32 products' rounding may limit it)"
    return (
        f"{solver} reached max_iter before tol={tol} ({iterations_run(result)}); "
        f"increase max_iter or tol{instead}"
    )


def _cancellation_estimate(problem, result) -> tuple[np.ndarray, float, float]:
    """``(coef, eps sum_j |K_ij c_j|, rms)``: the largest such sum over a probe of the
    training rows (problem.X's), eps of the coefficients' dtype, and the root mean square
    of the probe's ``K c`` (the decision values, without an intercept); kernel blocks of at
    most ``CANCELLATION_BLOCK`` values."""
    coef = np.asarray(result.coef)
    coef = coef.reshape(coef.shape[0], -1)
    n = problem.X.shape[0]
    probe = np.unique(np.linspace(0, n - 1, min(n, CANCELLATION_PROBE)).astype(np.intp))
    rows = problem.X[probe]
    centers = result.centers
    step = max(1, CANCELLATION_BLOCK // len(probe))
    magnitude = np.zeros((len(probe), coef.shape[1]))
    values = np.zeros((len(probe), coef.shape[1]))
    for j0 in range(0, coef.shape[0], step):
        block = problem.operator(rows, centers[j0 : j0 + step]).to_dense()
        part = coef[j0 : j0 + step].astype(np.float64)
        values += block @ part
        # In place where the block is float64: one block's memory, not three.
        block = (
            np.abs(block, out=block)
            if block.dtype == np.float64
            else np.abs(block, dtype=np.float64)
        )
        magnitude += block @ np.abs(part)
    rms = float(np.sqrt(np.mean(values**2))) if values.size else 0.0
    return coef, float(np.finfo(coef.dtype).eps) * float(magnitude.max(initial=0.0)), rms


def _float32_rounding_clause(result, tol: float) -> str:
    """EigenPro's estimate of how far its float32 products' rounding moves the objective
    (``solver_info_["float32_rounding"]``), as a clause of a warning where it exceeds
    ``CERTIFY`` tol; else ''."""
    rounding = result.info.get("float32_rounding") or 0.0
    if rounding <= CERTIFY * tol:
        return ""
    return (
        f"its float32 kernel products' rounding may move the training objective by up to "
        f"{rounding:.2g} of it"
    )


def _warn_cancellation(
    problem,
    result,
    *,
    logits: bool = False,
    target_rms: float | None = None,
    solver: str | None = None,
    alpha: float | None = None,
) -> None:
    """Where a small alpha makes the coefficients large and cancelling (|c| of 1e6 for
    predictions of 1), the rounding of the products that form the predictions (and that
    the solver worked with) moves them by about eps * sum_j |K_ij c_j|. Estimated on a
    probe of training rows (small kernel blocks) and said where it reaches
    CANCELLATION_WARN of the targets' scale.

    float32 data keeps float32 coefficients and predicts with float32 products: found by
    a review, breast cancer with alpha 1e-6 gave 88 of 569 training labels other than the
    same fit in float64, without a word. float64 fits: unscaled linear kernels at alpha
    1e-9 to 1e-11 left nystrom-direct's predictions 4-28% off the primal ridge, and
    nystrom-pcg's 2% at its converged tol, in silence (breast cancer, wine, diabetes),
    where the direct solver warns (its own check, from its factorization: ``solver``
    "direct" is not estimated again here). ``target_rms``: the targets' scale where
    ``problem.Y`` is not in memory (dask; the probe's rows are then all of
    ``problem.X``). ``alpha``: the user's, for the message (the problem's may be scaled
    with the sample weights)."""
    dtype = np.asarray(result.coef).dtype
    if np.asarray(result.coef).size == 0:
        return
    single = dtype == np.float32 and problem.X.dtype == np.float32
    if not single and (dtype != np.float64 or solver == "direct"):
        return
    coef, estimate, rms = _cancellation_estimate(problem, result)
    # logits (loss="logistic"): on their own scale, 1 (0.05 of a logit moves a probability
    # by at most 0.0125), or in float64 the logits' size where it is larger (alpha = 0 on
    # separable data: logits of 1e2 to 1e5 whose probabilities are saturated warned of
    # rounding of 0.02 logits; a review); the square loss's predictions: the targets' root
    # mean square.
    if logits:
        scale = 1.0 if single else max(1.0, rms)
    elif target_rms is None:
        scale = float(np.sqrt(np.mean(np.asarray(problem.Y, dtype=np.float64) ** 2))) or 1.0
    else:
        scale = target_rms or 1.0
    if not estimate > CANCELLATION_WARN * scale:
        return
    what = "the logits" if logits else "the predictions"
    target = "" if logits else f" (the targets' scale: {scale:.3g})"
    if single:
        warnings.warn(
            f"float32 data: the fitted coefficients (up to {float(np.abs(coef).max()):.3g}) "
            f"cancel in {what} beyond float32's precision; their rounding can move "
            f"{'the logits' if logits else 'predictions'} by about {estimate / 5:.2g}"
            f"{target}. Fit float64 data (X.astype(np.float64)) or use a larger alpha",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )
        return
    warnings.warn(
        (
            "alpha is small for this kernel on this data"
            if alpha is None
            else "alpha=0 leaves the fit unpenalised"
            if alpha == 0
            else f"alpha={alpha:g} is small for this kernel on this data"
        )
        + f": the fitted coefficients (up to "
        f"{float(np.abs(coef).max()):.3g}) cancel in {what}, and float64 rounding (the "
        f"solver's and the predictions') can move them by up to about {estimate:.2g}"
        f"{target}. Use a larger alpha, or standardise X (linear and polynomial kernels)",
        LinAlgWarning,
        stacklevel=caller_stacklevel(),
    )


class KernelMachineMixin(BaseEstimator):
    """Shared parameters and machinery; see KernelRegressor for the parameter docs."""

    # Set where the centres are training rows (declared for the type checker; the
    # explanations read them).
    center_indices_: np.ndarray
    center_targets_: np.ndarray

    _parameter_constraints: dict = {
        "kernel": [StrOptions(set(KERNEL_NAMES)), Kernel],
        "gamma": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"scale"}), None],
        "degree": [Interval(numbers.Integral, 1, 64, closed="both")],
        "coef0": [Interval(numbers.Real, None, None, closed="neither")],
        "length_scale": [Interval(numbers.Real, 0, None, closed="neither")],
        "nu": [StrOptions({"inf"}), Interval(numbers.Real, 0, math.inf, closed="right")],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "solver": [StrOptions(set(SOLVERS))],
        "n_centers": [
            Interval(numbers.Integral, 1, None, closed="left"),
            Interval(numbers.Real, 0, 1, closed="right"),
            None,
        ],
        "centers": ["array-like", None],
        "max_iter": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "device": [str],
        "kernel_precision": [StrOptions({"float32", "float64"}), None],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def _validate_params(self) -> None:
        # scikit-learn's constraints, then the integers no float64 or int64 holds
        # (gramfree._params).
        super()._validate_params()
        check_number_params(self)

    def __init__(
        self,
        kernel="rbf",
        *,
        gamma=None,
        degree=3,
        coef0=1.0,
        length_scale=1.0,
        nu=1.5,
        alpha=1.0,
        solver="auto",
        n_centers=None,
        centers=None,
        max_iter=None,
        tol=1e-4,
        random_state=None,
        n_jobs=None,
        device="cpu",
        kernel_precision=None,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        verbose=False,
    ):
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.length_scale = length_scale
        self.nu = nu
        self.alpha = alpha
        self.solver = solver
        self.n_centers = n_centers
        self.centers = centers
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.kernel_precision = kernel_precision
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.verbose = verbose

    # -- pieces used by fit -------------------------------------------------------------

    def _make_kernel(self) -> Kernel:
        if isinstance(self.kernel, Kernel):
            return self.kernel
        cls = type(get_kernel(self.kernel))
        names = {f.name for f in fields(cls)}
        params = {
            # "scale": resolved from this fit's X (_resolve_kernel), as SVC's _gamma
            "gamma": self._scale_gamma if self._scales_gamma() else self.gamma,
            "degree": self.degree,
            "coef0": self.coef0,
            "length_scale": self.length_scale,
            "nu": math.inf if self.nu == "inf" else self.nu,
        }
        return get_kernel(self.kernel, **{k: v for k, v in params.items() if k in names})

    def _validate_X_y(
        self, X, y, sample_weight, *, y_numeric: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        X, y = validate_data(
            self,
            X,
            y,
            dtype=[np.float64, np.float32],
            multi_output=True,
            y_numeric=y_numeric,
            ensure_min_samples=2,
        )
        if y_numeric:  # regression targets (a classifier's are class codes)
            check_target_range(y, X.dtype)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if not sample_weight.any():
                raise ValueError("sample_weight: all weights are zero")
        if y_numeric:  # a classifier's class_targets does it, once class_weight is applied
            self._resolve_kernel(X, sample_weight)
        return X, y, sample_weight

    def _resolve_kernel(self, X: np.ndarray, sample_weight: np.ndarray | None) -> None:
        """gamma="scale" from the rows given to fit at the weights the solver sees (times
        class_weight), before any split for early stopping: the fitted kernel_ keeps it,
        so predictions never rescale by their own X. Then the kernel's range on X."""
        if self._scales_gamma():
            self._scale_gamma = scale_gamma(X, sample_weight)
        self._check_kernel_ranges(X)

    def _scales_gamma(self) -> bool:
        """gamma="scale" for a kernel named by a string that has a gamma (a kernel object,
        or one without gamma, ignores it as it would a number)."""
        return (
            isinstance(self.gamma, str)
            and self.gamma == "scale"
            and isinstance(self.kernel, str)
            and "gamma" in {f.name for f in fields(type(get_kernel(self.kernel)))}
        )

    def _check_kernel_ranges(self, X: np.ndarray) -> None:
        """Refuse data on which the fit's kernel overflows (the CV estimators check each
        candidate for gamma)."""
        check_kernel_range(X, self._make_kernel(), self._kernel_dtype(X), self.n_jobs)

    def _kernel_dtype(self, X: np.ndarray) -> np.dtype:
        """The iterative solvers' product precision: ``kernel_precision``, else the data's.
        The exact solvers (direct, nystrom-direct) keep float64 whatever it says."""
        return np.dtype(getattr(self, "kernel_precision", None) or X.dtype)

    def _rng(self) -> np.random.Generator:
        """A Generator seeded from random_state (int, RandomState or None)."""
        return np.random.default_rng(check_random_state(self.random_state).randint(2**31 - 1))

    def _resolve_n_centers(self, n: int) -> int | None:
        """An integer count (at most n), or a fraction of n_samples in (0, 1]."""
        m = self.n_centers
        if m is None:
            return None
        if isinstance(m, (bool, np.bool_)):  # scikit-learn's Interval(Integral) takes True as 1
            raise ValueError(f"n_centers: must be a count or a fraction of the rows, got {m!r}")
        if isinstance(m, numbers.Integral):
            if int(m) > n:
                split = (
                    f" (the rows left for fitting once early_stopping holds out "
                    f"validation_fraction={self.validation_fraction} of them)"
                    if getattr(self, "early_stopping", False)
                    else ""
                )
                raise ValueError(f"n_centers={m} is larger than n_samples={n}{split}")
            return int(m)
        return max(1, int(round(float(m) * n)))

    def _resolve_centers(self, X: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(centers, rows)`` from the ``centers`` parameter: a fresh C-contiguous array in
        X's dtype (never the user's), and the training rows they are (None for an array of
        points); ``(None, None)`` when it is None."""
        if self.centers is None:
            return None, None
        if self.n_centers is not None:
            raise ValueError(
                f"centers and n_centers: give one, not both (n_centers={self.n_centers!r})"
            )
        n, d = X.shape
        raw = np.asarray(self.centers)
        if raw.size == 0:
            raise ValueError("centers: is empty; give at least one centre or row index")
        if raw.ndim == 1:  # row indices into X
            if raw.dtype.kind not in "iu":
                raise ValueError(
                    "centers: a 1-d array must hold integer row indices into X (a single "
                    f"point is a 2-d array of one row), got dtype {raw.dtype}"
                )
            if raw.min() < 0 or raw.max() >= n:
                raise ValueError(
                    f"centers: row indices must be in [0, {n - 1}] (X has {n} "
                    f"rows), got {raw.min()}..{raw.max()}"
                )
            rows = raw.astype(np.intp)
            if np.unique(rows).size != rows.size:
                raise ValueError("centers: row indices must be distinct")
            return np.ascontiguousarray(X[rows]), rows
        if raw.ndim != 2:  # check_array's own message names no argument (a review)
            raise ValueError(
                "centers: expected a 2-d array of points (n_centers, n_features) or a 1-d "
                f"array of row indices into X, got a {raw.ndim}-d array of shape {raw.shape}"
            )
        points = check_array(
            self.centers, dtype=[np.float64, np.float32], input_name="centers", copy=True
        )
        if points.shape[1] != d:
            raise ValueError(f"centers: has {points.shape[1]} features, X has {d}")
        with np.errstate(over="ignore"):
            cast = np.ascontiguousarray(points, dtype=X.dtype)
        # As X's: a centre beyond X's dtype, or on which the kernel overflows, failed
        # inside a solver as "Z: contains NaN or infinity" or "A: ..." (a review).
        if not np.isfinite(cast).all():
            raise ValueError(
                f"centers: values beyond {X.dtype.name}'s range (the centres are cast to X's "
                f"dtype); scale them as X is scaled, or fit float64 X"
            )
        check_kernel_range(
            cast, self._make_kernel(), self._kernel_dtype(X), self.n_jobs, name="centers"
        )
        return cast, None

    def _fit_targets(self, X: np.ndarray, Y: np.ndarray, sample_weight) -> None:
        """Solve for Y (n x t, X's dtype) and set the fitted attributes; BLAS runs on the
        threads n_jobs asks for (gramfree._threads.blas_threads)."""
        with blas_threads(self.n_jobs, defer_numpy=True), verbose_output(self.verbose):
            self._fit_targets_in(X, Y, sample_weight)

    def _fit_targets_in(self, X: np.ndarray, Y: np.ndarray, sample_weight) -> None:
        solver = self.solver
        if self.early_stopping and solver not in ("auto", *ITERATIVE_SOLVERS):
            raise ValueError(
                f"early_stopping: solver={solver!r} solves exactly, with no iterations to "
                f"stop; early stopping takes solver 'auto' (then nystrom-pcg), "
                f"'nystrom-pcg', 'eigenpro' or 'pcg'"
            )
        rng = self._rng()
        warm = self._warm_start_state(X, Y)
        held = None
        rows = np.arange(X.shape[0])  # the solver's rows in the caller's X
        # Row indices in `centers` are the caller's rows, whatever the split keeps.
        given, given_rows = self._resolve_centers(X)
        if self.early_stopping:
            X, Y, sample_weight, held = hold_out(
                X,
                Y,
                sample_weight,
                fraction=self.validation_fraction,
                classify=is_classifier(self),
                rng=rng,
                keep=given_rows,
            )
            rows = held.fit_rows
            if given_rows is not None:  # kept on the fitting side: their rows there
                given_rows = np.searchsorted(rows, given_rows)
        n = X.shape[0]
        n_centers = self._resolve_n_centers(n)
        kernel = self._make_kernel()
        # Extreme weights and alpha divided by one power of four (the same model, the sums
        # in range: weight_exponent); solver_info_ is given back in the caller's units.
        exponent = weight_exponent(sample_weight, (float(self.alpha),))
        weights = sample_weight if not exponent else np.ldexp(sample_weight, -exponent)
        alpha = math.ldexp(float(self.alpha), -exponent)
        problem = Problem(
            X,
            Y,
            kernel,
            alpha,
            weights,
            self.n_jobs,
            resolve_device(self.device),
            self._kernel_dtype(X),
        )
        if warm is not None and solver == "auto":  # continue the previous iterative solver
            solver = warm.solver
        if self.verbose:
            say(f"[{type(self).__name__}] solver={solver} n_samples={n}")
        start = time.perf_counter()
        if self.solver in EXACT_SOLVERS and n_centers is not None and n_centers < n:
            raise ValueError(
                f"n_centers: solver={self.solver!r} uses every training point as a centre "
                f"(n_samples={n}), got n_centers={self.n_centers!r}; for fewer centres use "
                "solver='nystrom-direct' or 'nystrom-pcg' (or 'auto')"
            )
        if given is not None and solver in EXACT_SOLVERS:
            raise ValueError(
                f"centers: solver={solver!r} uses every training point as a centre; "
                "with centers use 'auto', 'nystrom-pcg', 'nystrom-direct' or "
                "'eigenpro'"
            )
        monitor = None
        centers_are_rows = given is None or given_rows is not None
        if held is not None and solver in ("auto", "nystrom-pcg"):
            # The iterative solver, its centres as auto starts them. nystrom-pcg without
            # n_centers went to auto's search, which has no monitor: a review found
            # early_stopping=True holding out 10% of the rows and scoring nothing, silently.
            solver = "nystrom-pcg"
            if given is None and n_centers is None:
                n_centers = first_center_count(problem, rng)
        nystrom = solver in ("nystrom-pcg", "nystrom-direct")
        auto_chooses = (
            (solver == "auto" or nystrom) and n_centers is None and given is None and warm is None
        )
        if solver != "direct" and not auto_chooses:
            limit_numpy_blas_for_loops()  # solve_auto does, past its direct shortcut
        if auto_chooses:
            result = solve_auto(
                problem,
                classify=is_classifier(self),
                max_iter=self.max_iter,
                tol=self.tol,
                random_state=rng,
                verbose=self.verbose,
                nystrom_only=solver if nystrom else None,
            )
            solver = result.info["solver"]
        elif solver == "direct":
            result = solve_direct(problem.in_data_precision())
        elif solver == "pcg":
            if held is not None:
                monitor = held.monitor(
                    problem, X, n_iter_no_change=self.n_iter_no_change, tol=self.tol
                )
                if continues_on_rows(warm, X):
                    monitor.start(warm.coef)
            try:
                result = solve_kernel_pcg(
                    problem,
                    max_iter=self.max_iter or PCG_DEFAULT_ITER,
                    tol=self.tol,
                    random_state=rng,
                    verbose=self.verbose,
                    # Continued only on the same rows: every row is a centre.
                    initial_coef=warm.coef if continues_on_rows(warm, X) else None,
                    monitor=monitor,
                )
            except ValueError as exc:
                # Weights spanning 1e250 overflowed CG's products, and the error named
                # the internal operator's "V" (a review): name what the caller gave.
                span = weight_span(problem.sample_weight)
                if span <= WEIGHT_SPAN_PCG:
                    raise
                raise ValueError(
                    f"sample_weight: {weight_span_message('pcg', span)} (here CG's "
                    f"products overflowed: {exc})"
                ) from exc
        else:
            m = n_centers
            centers, idx = given, given_rows
            shares_rows = None  # the centres' rows, for PCG's preconditioner (below)
            initial = None
            if warm is not None:
                initial = warm.coef
                if solver == "eigenpro" and np.array_equal(warm.centers, X):
                    centers, idx = None, None  # EigenPro 2 on the same rows, continued
                else:
                    centers, idx = warm.centers, None
                    centers_are_rows = warm.rows is not None
                    shares_rows = _rows_in(X, rows, warm, problem.sample_weight)
            elif m is not None:
                # Heavy rows first for the Nystrom solvers (their preconditioner counts
                # them by their weight); EigenPro's draw stays the plain one.
                heavy = None if solver == "eigenpro" else heavy_rows(problem.sample_weight, m)
                idx = center_rows(rng, n, m, problem.sample_weight, heavy=heavy)
                centers = np.ascontiguousarray(X[idx])
            if idx is not None:
                shares_rows = idx
            if held is not None:
                monitor = held.monitor(
                    problem,
                    X if centers is None else centers,
                    n_iter_no_change=self.n_iter_no_change,
                    tol=self.tol,
                )
                if initial is not None:  # a warm start: its own score is the one to beat
                    monitor.start(initial)
            if solver == "auto":  # centres given: the cheaper Nystrom solver
                result = solve_nystrom_choice(
                    problem,
                    centers,
                    max_iter=self.max_iter,
                    tol=self.tol,
                    verbose=self.verbose,
                    center_rows=shares_rows,
                )
                solver = result.info["solver"]
            elif nystrom:
                result = run_nystrom(
                    problem,
                    centers,
                    solver,
                    max_iter=self.max_iter,
                    tol=self.tol,
                    verbose=self.verbose,
                    initial_coef=initial,
                    monitor=monitor,
                    center_rows=shares_rows,
                )
                # nystrom-direct's last resort is nystrom-pcg: name the one that ran (a
                # review found solver_ "nystrom-direct" above a pcg fit's max_iter warning)
                solver = result.info["solver"]
            else:
                result = solve_eigenpro(
                    problem,
                    centers,
                    max_iter=self.max_iter or 30,
                    tol=self.tol,
                    random_state=rng,
                    verbose=self.verbose,
                    initial_coef=initial,
                    monitor=monitor,
                )
                info_in_caller_units(result.info, exponent)
            if idx is not None and (given is not None or len(idx) < n):
                result.center_indices = idx
        # The centres' rows in the caller's X: the solver's rows are `rows` of it.
        if warm is not None and centers_are_rows and result.centers is warm.centers:
            caller_rows = warm.rows
        elif centers_are_rows:
            caller_rows = rows[
                np.arange(n) if result.center_indices is None else np.asarray(result.center_indices)
            ]
        else:
            caller_rows = None
        result.center_indices = caller_rows
        self.fit_time_ = time.perf_counter() - start
        if monitor is not None:
            monitor.apply(result)
        float32_rounding = _float32_rounding_clause(result, self.tol)
        if result.info.get("stalled"):
            warnings.warn(
                f"eigenpro stalled short of the optimum: its epochs stopped decreasing the "
                f"training objective ({result.info['rejected_epochs']} overshot, momentum was lowered "
                f"{result.info.get('momentum_reductions', 0)} times and the step halved "
                f"{result.info['step_halvings']} times); the model is the best iterate "
                f"(objective {min(result.loss_curve):.4g}, initial "
                f"{result.info['objective_initial']:.4g}). Use solver='nystrom-pcg' or "
                "solver='direct', or a larger alpha",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif result.info.get("stagnated"):
            warnings.warn(
                stagnation_message(solver, result, problem.kernel_dtype, self.tol),
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif result.info.get("breakdown"):
            # Under a wide weight span the breakdown is the span's doing (nystrom-direct fell
            # back to a CG that broke down at its first iteration with one row at 1e50, and
            # the advice was nystrom-direct, the solver chosen; a review): that is said.
            wide = (
                solver in ("nystrom-pcg", "pcg")
                and weight_span(problem.sample_weight) > WEIGHT_SPAN_PCG
            )
            warnings.warn(
                _weight_span_warning(solver, problem, result, monitor)
                if wide
                else breakdown_message(solver, result),
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif result.info.get("no_progress") and not (monitor is not None and monitor.stopped):
            warnings.warn(
                f"{solver}: no iteration improved on the start (objective "
                f"{result.info['objective_initial']:.4g}; the iterations' lowest "
                f"{min(result.loss_curve, default=math.inf):.4g}): K + alpha I is too "
                f"ill-conditioned for conjugate gradients at alpha={self.alpha:g} (alpha=0 or "
                "near it with repeated or near-coinciding rows makes K singular), and more "
                "iterations do not help. The model is the start (zeros, or the warm start). "
                "Use a positive alpha or solver='direct'",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif result.converged and float32_rounding:
            # (Not converged, the max_iter or uncertified message says so first, and names
            # the float32 rounding too: it alone understated a fit 3500 times the optimum,
            # which float64 products left at 2500; a review.)
            warnings.warn(
                f"{solver}: {float32_rounding} at these coefficients (they cancel: a wide "
                f"kernel or a small alpha), beyond {CERTIFY:g} tol: loss_curve_, the "
                "epochs' comparisons and the choice of "
                "the best iterate carry it. Use float64 products (float64 data and "
                "kernel_precision=None or 'float64'), or a larger alpha",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif (
            solver in ("nystrom-pcg", "pcg")
            and weight_span(problem.sample_weight) > WEIGHT_SPAN_PCG
            and not (monitor is not None and monitor.stopped)
        ):
            warnings.warn(
                _weight_span_warning(solver, problem, result, monitor),
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif result.info.get("uncertified") and not (monitor is not None and monitor.stopped):
            warnings.warn(
                f"eigenpro (fixed centres) stopped after {result.n_iter} epochs, when one "
                f"changed the objective by less than tol={self.tol}; but its gradient "
                f"leaves it up to {result.info['gap_bound']:.2g} (relative) above the "
                "optimum on these centres (EigenPro 3's epochs move slowly along a flat "
                "spectrum). Use solver='nystrom-pcg' or 'nystrom-direct' with these "
                "centres, or a larger alpha",
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        elif not result.converged and not (monitor is not None and monitor.stopped):
            # EigenPro's epochs contract the ridge's own directions by about alpha / beta
            # each (gramfree.solvers.kernel_pcg): more epochs rarely close that gap.
            instead = (
                "; or solver='pcg' (the same model by conjugate gradients)"
                if result.info.get("variant") == "eigenpro2"
                else ""
            )
            if float32_rounding:
                instead += f"; {float32_rounding} here (float64 products remove that part)"
            warnings.warn(
                max_iter_message(solver, self.tol, result, instead),
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )
        _warn_cancellation(problem, result, solver=solver, alpha=self.alpha)
        self._set_fitted(result, kernel, solver, problem, centers_are_rows=centers_are_rows)
        self._set_fit_controls(monitor)

    def _set_fit_controls(self, monitor) -> None:
        """``validation_scores_`` and ``best_validation_score_`` of an early-stopped fit
        (scikit-learn's MLP names); removed by a fit without early stopping."""
        if monitor is not None:
            self.validation_scores_ = list(monitor.scores)
            self.best_validation_score_ = monitor.best_score
        else:
            for name in ("validation_scores_", "best_validation_score_"):
                if hasattr(self, name):
                    delattr(self, name)

    def _warm_start_state(self, X: np.ndarray, Y: np.ndarray):
        """The previous fit to continue from, or None: only with ``warm_start``, a fitted
        model and an iterative solver (the exact ones compute the same model from
        scratch). Its centres stay; they are rows of this X only if they still match."""
        if not self.warm_start or not hasattr(self, "dual_coef_"):
            return None
        if self.centers_.shape[1] != X.shape[1]:
            raise ValueError(
                f"warm_start: the previous fit had {self.centers_.shape[1]} "
                f"features, X has {X.shape[1]}; fit with warm_start=False"
            )
        if self.dual_coef_.shape[1] != Y.shape[1]:
            raise ValueError(
                f"warm_start: the previous fit had {self.dual_coef_.shape[1]} "
                f"target column(s), this y gives {Y.shape[1]}; fit with "
                "warm_start=False"
            )
        previous = getattr(self, "solver_", None)
        solver: str | None
        if getattr(self, "loss", "squared") == "logistic":  # Newton steps, any solver
            solver = "newton-pcg"
            if previous != solver:
                return None
        else:
            solver = previous if self.solver == "auto" else self.solver
            if solver not in ITERATIVE_SOLVERS or previous not in ITERATIVE_SOLVERS:
                return None
            if self.solver == "auto" and previous in EXACT_SOLVERS:
                return None  # auto chooses afresh (it may take centres pcg would refuse)
        assert solver is not None
        centers = self.centers_.astype(X.dtype, copy=False)
        rows = getattr(self, "center_indices_", None)
        if rows is not None and not (rows.max() < X.shape[0] and np.array_equal(X[rows], centers)):
            rows = None
        intercept = getattr(self, "intercept_", None)
        return WarmStart(
            solver,
            np.ascontiguousarray(centers),
            rows,
            self.dual_coef_.astype(np.float64),
            None if intercept is None else intercept.astype(np.float64),
        )

    def _set_fitted(
        self,
        result,
        kernel: Kernel,
        solver: str,
        problem: Problem,
        *,
        centers_are_rows: bool = True,
    ) -> None:
        """The fitted attributes, set only once the solver succeeded: a failed refit must
        not leave a new kernel_ beside old coefficients. Centres given as points (the
        ``centers`` parameter as an array) are no training rows: ``center_indices_`` (and
        then ``center_targets_``) is left unset, as in files of earlier versions."""
        n = problem.X.shape[0]
        self.kernel_ = kernel
        self.solver_ = solver
        self.centers_ = result.centers
        if centers_are_rows:
            self.center_indices_ = (
                np.arange(n)
                if result.center_indices is None
                else np.asarray(result.center_indices, dtype=np.intp)
            )
        elif hasattr(self, "center_indices_"):  # a refit: not the previous fit's rows
            del self.center_indices_
        self.dual_coef_ = result.coef
        if result.intercept is not None:
            self.intercept_ = result.intercept
        elif hasattr(self, "intercept_"):  # a refit with the square loss: none now
            del self.intercept_
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve
        # The products' precision the solver ran: direct widens float32 kernel values to
        # the data's (its result says so), which reporting the estimator's hid.
        self.solver_info_ = dict(result.info)
        self.solver_info_.setdefault("kernel_dtype", problem.kernel_dtype.name)
        if self.verbose:
            say(
                f"[{type(self).__name__}] {solver}: {result.n_iter} iteration(s), "
                f"{self.centers_.shape[0]} centres, {self.fit_time_:.2f} s"
            )

    # -- prediction --------------------------------------------------------------------

    def _decision(self, X) -> np.ndarray:
        check_is_fitted(self, "dual_coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        return self._decision_validated(X)

    def _decision_validated(self, X: np.ndarray) -> np.ndarray:
        """The decision on an array already checked (the model's own centres)."""
        # Not astype: a finite 1e39 became inf in a float32 model's dtype, and was then
        # reported as "X: contains NaN or infinity" (a review); this names the overflow.
        X = as_float_array(X, "X", dtype=self.centers_.dtype)
        op = KernelOperator(X, self.centers_, self.kernel_, n_jobs=self.n_jobs, device=self.device)
        out = op @ self.dual_coef_
        intercept = getattr(self, "intercept_", None)
        if intercept is not None:  # the logistic loss's (see _set_fitted)
            out += intercept
        return check_decision_finite(out, self.kernel_, X.dtype)

    @property
    def n_centers_(self) -> int:
        """Number of centres the fitted model keeps: prediction cost and size scale with it."""
        check_is_fitted(self, "centers_")
        return self.centers_.shape[0]

    # -- superposition storage ---------------------------------------------------------

    def compress(
        self,
        n_centers: int,
        X: ArrayLike | None = None,
        y: ArrayLike | None = None,
        sample_weight: ArrayLike | None = None,
    ) -> tuple[Self, float]:
        """A smaller model with ``n_centers`` centres, and the relative change it makes.

        With ``X, y``: refit the same objective (kernel, alpha, weights) by Nystrom-PCG on
        ``n_centers`` centres (``gamma="scale"`` as this model's fit resolved it: the
        smaller model's ``gamma`` is that number); the change is measured on ``X``.
        Without: the orthogonal projection (in the kernel's Hilbert space) of this model
        onto ``n_centers`` of its own centres, drawn at random; the change is measured at
        all its centres (the training inputs when the model keeps them all). Compressing
        to the same size changes nothing.

        Parameters
        ----------
        n_centers : int
            Centres of the smaller model, in ``[1, n_centers_]``.
        X : array-like of shape (n_samples, n_features), default=None
            Data to refit on; None projects the model onto a subset of its centres instead.
        y : array-like of shape (n_samples,) or (n_samples, n_targets), default=None
            Targets of ``X``; required when ``X`` is given.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the refit, as in :meth:`fit`.

        Returns
        -------
        compressed_model : estimator
            A fitted estimator of the same class with ``n_centers`` centres.
        relative_change : float
            ``||f_small - f|| / ||f||`` over those points.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import KernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = KernelRegressor(alpha=1e-2, gamma=0.5, random_state=0).fit(X, y)
        >>> small, change = model.compress(100)
        >>> small.n_centers_, bool(change < 0.5)
        (100, True)
        """
        check_is_fitted(self, "dual_coef_")
        if isinstance(n_centers, bool) or not isinstance(n_centers, numbers.Integral):
            raise TypeError(f"n_centers must be an integer, got {n_centers!r}")
        if not 1 <= n_centers <= self.n_centers_:
            raise ValueError(
                f"n_centers must be in [1, {self.n_centers_}] (the current size), got {n_centers}"
            )
        if X is None and (y is not None or sample_weight is not None):
            raise ValueError(
                "compress: y and sample_weight are for a refit on X; without X the model is "
                "projected onto a subset of its own centres (pass X, y to refit)"
            )
        # A refit fits the whole of X: no validation split (the original's early stopping
        # held some out, and the objective named is on all of X).
        small = clone(self).set_params(
            solver="nystrom-pcg", n_centers=int(n_centers), centers=None, early_stopping=False
        )
        if X is not None and self._scales_gamma():
            # The same kernel: gamma="scale" as this model's fit resolved it (from the
            # refit's X it was another gamma, 0.1029 for 0.1, and the change compared two
            # kernels; a review).
            small.set_params(gamma=float(self.kernel_.gamma))
        if X is not None:
            if y is None:
                raise ValueError("compress: y is required when X is given")
            small.fit(X, y, sample_weight=sample_weight)
            _check_same_targets(self, small)
            points = X
        else:
            # The RKHS-orthogonal projection of f onto span{k(s, .)}, s a subset of the
            # centres C: coef_S = K(S,S)^-1 K(S,C) coef. Exact when S = C.
            points = self.centers_
            rng = self._rng()
            m = len(points)
            idx = (
                np.sort(rng.choice(m, size=n_centers, replace=False))
                if n_centers < m
                else np.arange(m)
            )
            sub = np.ascontiguousarray(points[idx])
            # In float64 whatever the model's dtype: K(S, S) of a float32 model solved in
            # float32 moved a same-size "projection" by 0.5% (diabetes, gamma 0.01).
            sub64 = sub.astype(np.float64)
            if n_centers == m:  # the projection onto all the centres is the model itself
                coef = np.asarray(self.dual_coef_, dtype=np.float64)
            else:
                kss = KernelOperator(
                    sub64, kernel=self.kernel_, n_jobs=self.n_jobs, device=self.device
                ).to_dense()
                L, _ = jittered_cholesky(kss, start=1e-13)
                rhs = KernelOperator(
                    sub64,
                    np.asarray(points, dtype=np.float64),
                    self.kernel_,
                    n_jobs=self.n_jobs,
                    device=self.device,
                ) @ np.asarray(self.dual_coef_, dtype=np.float64)
                coef = cho_solve(L, np.asarray(rhs, dtype=np.float64))
            small.kernel_ = self.kernel_
            small.n_features_in_ = self.n_features_in_
            if hasattr(self, "feature_names_in_"):  # fitted on a DataFrame: checked on predict
                small.feature_names_in_ = self.feature_names_in_
            self._copy_target_info(small)
            small.solver_ = "projection"
            small.centers_ = sub
            if hasattr(self, "center_indices_"):  # files from before 0.2 lack it
                small.center_indices_ = self.center_indices_[idx]
            if hasattr(self, "center_targets_"):
                small.center_targets_ = self.center_targets_[idx]
            small.dual_coef_ = coef.astype(points.dtype)
            if hasattr(self, "intercept_"):  # the logistic loss's: no centre carries it
                small.intercept_ = self.intercept_.copy()
            small.n_iter_, small.loss_curve_ = 1, []
            small.solver_info_ = {"n_centers": n_centers, "source_n_centers": m}
            small.fit_time_ = 0.0
        if X is not None:
            before, after = self._decision(points), small._decision(points)
        else:  # the centres: an array of the model's own, with no feature names to check
            before, after = self._decision_validated(points), small._decision_validated(points)
        change = float(np.linalg.norm(after - before) / max(np.linalg.norm(before), 1e-300))
        return small, change

    def _copy_target_info(self, other) -> None:  # overridden where targets carry state
        pass

    def save(self, path: str | bytes | os.PathLike) -> None:
        """Write the fitted model to a portable, versioned file; see :func:`gramfree.load`.

        Parameters
        ----------
        path : str, bytes or os.PathLike
            File to write (replaced if it exists).

        Examples
        --------
        >>> import os, tempfile
        >>> from sklearn.datasets import load_diabetes
        >>> import gramfree
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = gramfree.KernelRegressor(alpha=1e-2).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.gf")
        >>> model.save(path)
        >>> bool((gramfree.load(path).predict(X) == model.predict(X)).all())
        True
        """
        from ..io import save

        save(self, path)


def _rows_in(
    X: np.ndarray, rows: np.ndarray, warm, sample_weight: np.ndarray | None
) -> np.ndarray | None:
    """A warm start's centres as rows of this fit's ``X`` (``rows``: their rows in the
    caller's X, sorted; -1 for a centre that is no row of X), for Nystrom-PCG's
    preconditioner, which weighs heavy rows by their own weight only when it knows which
    centres they are: a warm refit under very uneven weights got Falkon's even share
    again, and stopped silently at twice the optimum's objective after 0 iterations (a
    review). Where the previous rows no longer line up (another X, permuted, a subset, a
    held-out split) and the fit is weighted, the centres are looked up by value (a
    review: one held-out centre gave every heavy one the even share, 1.6-418 times the
    optimum), the heaviest of equal rows first (a heavy row's light twin took its place:
    twice the optimum); else None."""
    if warm.rows is not None:
        caller = np.asarray(warm.rows)
        position = np.minimum(np.searchsorted(rows, caller), rows.size - 1)
        if np.array_equal(rows[position], caller) and np.array_equal(X[position], warm.centers):
            return position
    if (
        sample_weight is None
        or warm.centers.dtype != X.dtype
        or warm.centers.shape[1:] != X.shape[1:]
    ):
        return None
    # Each row as one opaque value of its bytes: sorted once (equal ones heaviest first),
    # the centres searched in it.
    as_bytes = np.dtype((np.void, X.dtype.itemsize * int(np.prod(X.shape[1:]))))
    keys = np.ascontiguousarray(X).view(as_bytes).ravel()
    heaviest = np.argsort(-np.asarray(sample_weight, dtype=np.float64), kind="stable")
    order = heaviest[np.argsort(keys[heaviest], kind="stable")]
    wanted = np.ascontiguousarray(warm.centers).view(as_bytes).ravel()
    at = np.minimum(np.searchsorted(keys[order], wanted), keys.size - 1)
    return np.where(keys[order][at] == wanted, order[at], -1)
