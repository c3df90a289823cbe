"""``KernelClassifier(loss="logistic")``: the centres, the Newton-PCG solver call and the
probabilities. The solver is :mod:`gramfree.solvers.logistic`."""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances_argmin

from .._log import caller_stacklevel, verbose_output
from .._threads import blas_threads
from ..device import resolve_device
from ..solvers import Problem
from ..solvers._common import center_rows, heavy_rows, weights_in_range
from ..solvers.auto import DIRECT_ALWAYS, MIN_CENTERS, effective_dimension
from ..solvers.logistic import solve_logistic
from ._base import _warn_cancellation
from ._fit_controls import hold_out

# Solvers the logistic loss accepts: "direct" means every training point a centre (exact
# kernel logistic regression), "nystrom-pcg" the centres n_centers asks for.
LOGISTIC_SOLVERS = ("auto", "direct", "nystrom-pcg")
# Largest default number of centres (K_MM, its factor and the preconditioner's: three
# M x M float64 matrices, 2.4 GB at 10000).
MAX_DEFAULT_CENTERS = 10000
# Newton steps when max_iter is None (a fit needs 5-15; see solvers/logistic.py).
DEFAULT_NEWTON_STEPS = 100
# The logistic loss's curvature is at most 1/4 of the square loss's: the ridge whose
# effective dimension sizes the default centres has 4 alpha.
CURVATURE_BOUND = 0.25


def logistic_targets(codes: np.ndarray, n_classes: int) -> np.ndarray:
    """(n, 1) of 0/1 for two classes (the logit of classes_[1]), else (n, k) one-hot."""
    if n_classes == 2:
        return codes.astype(np.float64)[:, None]
    Y = np.zeros((codes.shape[0], n_classes))
    Y[np.arange(codes.shape[0]), codes] = 1.0
    return Y


def default_center_count(problem: Problem, rng: np.random.Generator) -> int:
    """Every point up to DIRECT_ALWAYS samples; beyond, four times the effective
    dimension of the ridge with the same curvature bound (at least MIN_CENTERS, at most
    MAX_DEFAULT_CENTERS and half the data), as ``auto`` starts the square loss's
    centres."""
    n = problem.X.shape[0]
    if n <= DIRECT_ALWAYS:
        return n
    ridge = Problem(
        problem.X,
        problem.Y,
        problem.kernel,
        problem.alpha / CURVATURE_BOUND,
        problem.sample_weight,
        problem.n_jobs,
        problem.device,
        problem.kernel_dtype,
    )
    d_eff, _ = effective_dimension(ridge, rng)
    return int(min(n // 2, MAX_DEFAULT_CENTERS, max(MIN_CENTERS, 4 * d_eff)))


def fit_logistic(
    estimator, X: np.ndarray, codes: np.ndarray, n_classes: int, sample_weight
) -> None:
    """Fit ``estimator`` (a KernelClassifier with loss="logistic") on class codes; BLAS
    runs on the threads n_jobs asks for."""
    with blas_threads(estimator.n_jobs), verbose_output(estimator.verbose):
        _fit_logistic(estimator, X, codes, n_classes, sample_weight)


def _fit_logistic(
    estimator, X: np.ndarray, codes: np.ndarray, n_classes: int, sample_weight
) -> None:
    if estimator.solver not in LOGISTIC_SOLVERS:
        raise ValueError(
            f"solver={estimator.solver!r} fits the square loss only; loss='logistic' takes "
            f"solver in {LOGISTIC_SOLVERS}"
        )
    kernel = estimator._make_kernel()
    rng = estimator._rng()
    Y = logistic_targets(codes, n_classes)
    warm = estimator._warm_start_state(X, Y)
    held = None
    rows = np.arange(X.shape[0])  # the solver's rows in the caller's X
    # Row indices in `centers` are the caller's rows, whatever the split keeps.
    given, given_rows = estimator._resolve_centers(X)
    if estimator.early_stopping:
        X, Y, sample_weight, held = hold_out(
            X,
            Y,
            sample_weight,
            fraction=estimator.validation_fraction,
            classify=True,
            rng=rng,
            keep=given_rows,
        )
        held.metric = "log_loss"
        rows = held.fit_rows
        if given_rows is not None:  # kept on the fitting side: their rows there
            given_rows = np.searchsorted(rows, given_rows)
    n = X.shape[0]
    if (
        estimator.solver == "direct"
        and warm is not None
        and not (warm.centers.shape == X.shape and np.array_equal(warm.centers, X))
    ):
        # "direct" is the exact model, every training row a centre: a warm start on other
        # rows would keep the previous fit's centres (a warm refit of breast cancer on
        # 569 rows kept the first fit's 300, probabilities off by up to 0.16). Afresh.
        warm = None
    if estimator.solver == "direct" and warm is None:
        n_centers = estimator._resolve_n_centers(n)
        if n_centers is not None and n_centers < n:  # ignored before, as the square loss refuses
            raise ValueError(
                f"n_centers: solver='direct' uses every training point as a centre "
                f"(n_samples={n}), got n_centers={estimator.n_centers!r}; for fewer centres "
                "use solver='nystrom-pcg' (or 'auto')"
            )
    weights, alpha = weights_in_range(sample_weight, float(estimator.alpha))
    problem = Problem(
        X,
        Y,
        kernel,
        alpha,
        weights,
        estimator.n_jobs,
        resolve_device(estimator.device),
        estimator._kernel_dtype(X),
    )
    initial = initial_intercept = None
    if warm is not None:
        centers, initial, initial_intercept = warm.centers, warm.coef, warm.intercept
        caller_rows = warm.rows
        # The preconditioner reads the loss's curvature at the centres' rows (nearest
        # rows for points that are none): it speeds CG, not the solution.
        curvature_rows = pairwise_distances_argmin(centers, X)
    elif given is not None:
        if estimator.solver == "direct":
            raise ValueError(
                "centers: solver='direct' uses every training point as a "
                "centre; with centers use 'auto' or 'nystrom-pcg'"
            )
        centers = given
        caller_rows = None if given_rows is None else rows[given_rows]
        curvature_rows = (
            given_rows if given_rows is not None else pairwise_distances_argmin(given, X)
        )
    else:
        if estimator.solver == "direct":
            m = n
        else:
            m = estimator._resolve_n_centers(n) or default_center_count(problem, rng)
        # "direct" is the exact model on every row; the others draw among weighted rows.
        # Heavy rows first: the centres' preconditioner counts them by their curvature.
        idx = (
            np.arange(n)
            if m >= n
            else center_rows(
                rng, n, m, problem.sample_weight, heavy=heavy_rows(problem.sample_weight, m)
            )
        )
        centers, curvature_rows, caller_rows = np.ascontiguousarray(X[idx]), idx, rows[idx]
    monitor = (
        None
        if held is None
        else held.monitor(
            problem, centers, n_iter_no_change=estimator.n_iter_no_change, tol=estimator.tol
        )
    )
    if monitor is not None and initial is not None:  # a warm start: the score to beat
        monitor.start(initial, initial_intercept)
    start = time.perf_counter()
    result = solve_logistic(
        problem,
        centers,
        curvature_rows,
        max_iter=estimator.max_iter or DEFAULT_NEWTON_STEPS,
        tol=estimator.tol,
        verbose=estimator.verbose,
        initial_coef=initial,
        initial_intercept=initial_intercept,
        monitor=monitor,
    )
    estimator.fit_time_ = time.perf_counter() - start
    if monitor is not None:
        monitor.apply(result)
    result.center_indices = caller_rows
    separated = (
        problem.alpha == 0.0 and result.info["objective"] <= 1e-6 * result.info["objective_initial"]
    )
    if separated:
        # No penalty and a log-likelihood driven to zero: the classes are separated, the
        # optimum is at infinity, and the coefficients are wherever the steps stopped
        # (iris setosa vs versicolor: |dual_coef_| ~ 5e6 reported as converged).
        # With a singular K_MM (a jitter added) the whitened coordinates amplify rounding
        # in its null directions, and that alone can separate classes the kernel does not
        # (a linear kernel, iris versicolor against virginica: log-likelihood 1e-18 in the
        # solver, 284 at predict, where LogisticRegression's optimum is 5.95; a review).
        jitter = result.info.get("jitter", 0.0)
        rounding = (
            f" (or by rounding: K_MM is singular, a jitter of {jitter:.2g} was added, and "
            "without a penalty the rounding in its null directions can separate them)"
            if jitter
            else ""
        )
        warnings.warn(
            "alpha=0 with loss='logistic': the training classes are separated by the kernel"
            f"{rounding} (log-likelihood {result.info['objective']:.3g} per unit of sample "
            "weight), so the unpenalised optimum does not exist and the coefficients grow "
            "without bound; use alpha > 0",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    stopped = result.info.get("stopped")
    if stopped and not separated:  # alpha = 0, the loss saturated: more steps cannot help
        warnings.warn(
            f"loss='logistic' with alpha=0: {stopped} after {result.n_iter} Newton steps "
            f"(the probabilities saturated; objective {result.info['objective']:.6g} per unit "
            "of sample weight) and no further Newton step could be formed; use alpha > 0",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    elif not result.converged and not stopped and not (monitor is not None and monitor.stopped):
        # Stopped by the line search at float64's rounding, more steps cannot help (it
        # advised "increase max_iter" after 36 of 1000 steps; a review).
        advice = (
            "no step size lowered the objective further in float64 (its rounding, not "
            "max_iter, stopped the fit); a larger tol or alpha"
            if result.info.get("line_search_stalled")
            else "increase max_iter or tol"
        )
        if result.info.get("gap_refused_at_max_iter"):
            # The end tests passed on the last step max_iter allows, and only the duality
            # gap, an upper bound that can exceed the distance to the optimum a
            # thousandfold near separation, kept the fit from ending (a review).
            advice = (
                "its last step passed the end tests, but the duality gap, the bound that "
                "confirms them, did not certify the objective within 2 tol of its optimum "
                "(it bounds the distance by "
                f"{result.info['gap_refused_at_max_iter']:.2g} of the objective); "
                "increase max_iter"
            )
        warnings.warn(
            f"loss='logistic': {result.n_iter} Newton steps did not reach tol={estimator.tol} "
            f"(objective {result.info['objective']:.6g} per unit of sample weight); {advice}",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    # Coefficients that cancel in the logits, as for the square loss (a review, float32
    # data: alpha 1e-6 moved probabilities by 0.15 and 19 of 442 labels, without a word).
    _warn_cancellation(problem, result, logits=True, alpha=estimator.alpha)
    estimator._set_fitted(
        result, kernel, "newton-pcg", problem, centers_are_rows=caller_rows is not None
    )
    estimator._set_fit_controls(monitor)


def probabilities(scores: np.ndarray, log: bool = False) -> np.ndarray:
    """Class probabilities (n, k) from the decision function's logits: the logistic
    sigmoid of the one logit for two classes, the softmax of the k logits otherwise."""
    if scores.ndim == 1:
        if log:
            return np.column_stack([log_expit(-scores), log_expit(scores)])
        return np.column_stack([expit(-scores), expit(scores)])
    return log_softmax(scores, axis=1) if log else softmax(scores, axis=1)
