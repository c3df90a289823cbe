"""``KernelClassifierCV(loss="logistic")``: alpha chosen by k-fold held-out log-loss.

The logistic loss has no closed-form path (no GCV from one eigendecomposition, as the
square loss has), so alpha is chosen the way scikit-learn's
``LogisticRegressionCV(scoring="neg_log_loss")`` chooses C (here the folds' mean is
weighted by their held-out weight, as the objective weighs rows):
for each of ``cv`` stratified folds, the Newton-PCG solver (:mod:`gramfree.solvers.logistic`)
runs along the candidates from the largest alpha down, each fit warm-started from the
previous one (a smaller alpha moves the optimum a little: a few Newton steps), and the
held-out rows' log-loss (weighted, as the objective) is recorded; the alpha with the lowest
mean over the folds is then fitted on all rows, warm-started from a fold's solution at it.
The held-out log-loss is exact, not clipped at machine epsilon as scikit-learn's
``log_loss`` clips probabilities: the two differ where the true class's probability falls
below about 1e-16.
All of it on one set of centres, drawn once from all the rows: the folds differ in the
rows the loss sees, not in the model's basis.
"""

from __future__ import annotations

import dataclasses
import numbers
import time
import warnings

import numpy as np
from scipy.special import log_expit, log_softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import pairwise_distances_argmin
from sklearn.model_selection import check_cv

from .._log import caller_stacklevel, say, verbose_output
from .._threads import blas_threads
from ..device import resolve_device
from ..solvers import Problem
from ..solvers._common import center_rows, heavy_rows, problem_rows, weight_exponent
from ..solvers.logistic import solve_logistic
from ._base import _warn_cancellation
from ._logistic import DEFAULT_NEWTON_STEPS, logistic_targets
from .classifier import class_targets

# The Newton steps' stopping tolerance of the refit (KernelClassifier's default tol), and
# of the folds' fits along the path.
NEWTON_TOL = 1e-4
PATH_TOL = 1e-3


def held_out_log_loss(logits: np.ndarray, codes: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean of ``-log p(true class)`` for logits (n, 1) (two classes: the logit
    of class 1) or (n, k)."""
    if logits.shape[1] == 1:
        f = logits[:, 0]
        log_p = np.where(codes == 1, log_expit(f), log_expit(-f))
    else:
        log_p = log_softmax(logits, axis=1)[np.arange(codes.shape[0]), codes]
    total = float(weights.sum())
    return float(-(weights @ log_p) / total) if total > 0 else float("nan")


def fit_logistic_cv(
    estimator, X: np.ndarray, y: np.ndarray, sample_weight, alphas, split_params=None
) -> np.ndarray:
    """Fit ``estimator`` (a KernelClassifierCV with loss="logistic"); returns the classes.
    BLAS on the threads n_jobs asks for. ``split_params``: the splitter's ``split``
    parameters (``groups``), routed by the caller."""
    with blas_threads(estimator.n_jobs), verbose_output(estimator.verbose):
        return _fit(estimator, X, y, sample_weight, alphas, split_params or {})


def _warn_classes_absent_in_training(folds, codes, w, classes) -> None:
    """A class held out by a fold and absent from its training rows has no finite optimum
    for its intercept: that fold's log-loss is wherever the solver stopped it, whatever
    alpha (iris, unshuffled KFold(3): about 30 per fold, alpha_ the largest; a review).
    scikit-learn's LogisticRegressionCV is as silent; this says so."""
    for f, (train, test) in enumerate(folds):
        trained = np.unique(codes[train][w[train] > 0])
        held = np.unique(codes[test][w[test] > 0])
        missing = np.setdiff1d(held, trained)
        if missing.size:
            warnings.warn(
                f"cv: the training rows of fold {f + 1} of {len(folds)} have no class "
                f"{', '.join(repr(c) for c in classes[missing][:5].tolist())} that its "
                "held-out rows have: their log-loss there reflects where the solver "
                "stopped, not alpha, and may decide alpha_; use folds that stratify the "
                "classes (StratifiedKFold, with shuffle=True for sorted data)",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
            return


def _fit(estimator, X, y, sample_weight, alphas, split_params: dict) -> np.ndarray:
    from .cv import DEFAULT_CENTERS

    classes, _, sample_weight = class_targets(estimator, X, y, sample_weight)
    # Weights and alphas divided by one power of four where the weights are extreme (the
    # same models, weight_exponent): weights of 1e300 failed as "A: contains NaN or
    # infinity", 1e-310 as "B:". The fits see path_alphas; the caller's alphas are named.
    exponent = weight_exponent(sample_weight, alphas)
    if exponent:
        sample_weight = np.ldexp(sample_weight, -exponent)
    path_alphas = np.ldexp(alphas, -exponent)
    codes = np.searchsorted(classes, np.ravel(y))
    Y = logistic_targets(codes, len(classes))
    n = X.shape[0]
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    # scikit-learn's rule (LogisticRegressionCV's): an integer (None: 5) is
    # StratifiedKFold(cv), unshuffled; a splitter or the splits themselves as given.
    splitter = check_cv(_pairs_if_given(estimator.cv), codes, classifier=True)
    splits = splitter.split(X, codes, **split_params)
    folds = [_checked_split(split, f, n) for f, split in enumerate(splits)]
    if not folds:
        raise ValueError(f"cv: gave no splits ({estimator.cv!r}; an exhausted generator?)")
    for f, (train, _) in enumerate(folds):
        # Nothing to fit there (a fold whose held-out rows all weigh zero has no say, but
        # a model it needs).
        if not w[train].any():
            raise ValueError(
                f"sample_weight: the training rows of fold {f + 1} of {len(folds)} all "
                "weigh zero; give them weight or use folds that mix the weighted rows"
            )
    _warn_classes_absent_in_training(folds, codes, w, classes)
    kernel = estimator._make_kernel()
    rng = estimator._rng()
    m = estimator._resolve_n_centers(n) or min(n, DEFAULT_CENTERS)
    idx = (
        np.arange(n)
        if m >= n
        else center_rows(rng, n, m, sample_weight, heavy=heavy_rows(sample_weight, m))
    )
    centers = np.ascontiguousarray(X[idx])
    base = Problem(
        X,
        Y,
        kernel,
        float(path_alphas[0]),
        sample_weight,
        estimator.n_jobs,
        resolve_device(estimator.device),
        estimator._kernel_dtype(X),
    )
    order = np.argsort(-alphas, kind="stable")  # the largest (smoothest, fastest) first
    start = time.perf_counter()
    losses = np.full((len(folds), alphas.size), np.nan)
    fold_weights = np.zeros(len(folds))
    solutions: list[dict] = [{} for _ in folds]  # (fold, alpha): the fit
    steps = unconverged = 0
    for f, (train, test) in enumerate(folds):
        sub = problem_rows(base, train)
        # The centres' curvature preconditions CG (it speeds CG, not the solution): each
        # centre's own row where it trains in this fold, else its nearest training row.
        position = np.full(n, -1)
        position[train] = np.arange(train.size)
        rows = position[idx]
        held = rows < 0
        if held.any():
            rows[held] = pairwise_distances_argmin(centers[held], sub.X)
        coef = intercept = None
        fold_weights[f] = w[test].sum()
        previous = None
        for j in order:
            if previous is not None and alphas[j] == alphas[previous]:  # a repeated alpha
                losses[f, j], solutions[f][int(j)] = losses[f, previous], (coef, intercept)
                continue
            previous = j
            result = solve_logistic(
                dataclasses.replace(sub, alpha=float(path_alphas[j])),
                centers,
                rows,
                max_iter=DEFAULT_NEWTON_STEPS,
                tol=PATH_TOL,
                initial_coef=coef,
                initial_intercept=intercept,
            )
            coef, intercept = result.coef, result.intercept
            assert intercept is not None  # the logistic solver's intercepts
            steps += result.n_iter
            unconverged += not result.converged
            logits = base.matvec(X[test], centers, coef).astype(np.float64) + intercept
            losses[f, j] = held_out_log_loss(logits, codes[test], w[test])
            solutions[f][int(j)] = (coef, intercept)
        if estimator.verbose:
            say(f"[{type(estimator).__name__}] fold {f + 1}/{len(folds)}: {losses[f]}")
    # A fold whose held-out rows all weigh zero has no log-loss (NaN) and no say; an alpha
    # whose log-loss is not finite on a fold that has one is never chosen (inf).
    counted = np.where(fold_weights[:, None] > 0, losses, 0.0)
    mean = (fold_weights @ counted) / fold_weights.sum()
    mean[~np.isfinite(mean)] = np.inf
    if not np.isfinite(mean).any():
        raise ValueError(
            "alphas: no candidate gave a finite held-out log-loss on every fold; try larger alphas"
        )
    # The lowest mean held-out log-loss; a tie goes to the larger alpha (the smoother model).
    best = int(order[np.argmin(mean[order])])
    start_coef, start_intercept = solutions[int(np.argmax(fold_weights))][best]
    problem = dataclasses.replace(base, alpha=float(path_alphas[best]))
    result = solve_logistic(
        problem,
        centers,
        idx,
        max_iter=DEFAULT_NEWTON_STEPS,
        tol=NEWTON_TOL,
        initial_coef=start_coef,
        initial_intercept=start_intercept,
    )
    estimator.fit_time_ = time.perf_counter() - start
    # As KernelClassifier(loss="logistic") says it (the path's fits included: a held-out
    # log-loss from a fit stopped short can choose the wrong alpha).
    if unconverged:
        warnings.warn(
            f"loss='logistic': {unconverged} of the path's fits (folds x alphas) did not "
            f"reach their tolerance in {DEFAULT_NEWTON_STEPS} Newton steps; their held-out "
            "log-losses may favour another alpha than the converged ones would (a small "
            "alpha on separable data: choose larger alphas)",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    if not result.converged:
        warnings.warn(
            f"loss='logistic': the refit at alpha_={alphas[best]:g} did not reach its "
            f"tolerance in {result.n_iter} Newton steps (objective "
            f"{result.info['objective']:.6g}); choose larger alphas",
            ConvergenceWarning,
            stacklevel=caller_stacklevel(),
        )
    # Logits that cancel beyond the precision, as KernelClassifier(loss="logistic") says
    # it (the CV refit did not: a review, float32 iris at alpha 1e-10, 27 logits).
    _warn_cancellation(problem, result, logits=True, alpha=float(alphas[best]))
    result.center_indices = idx
    estimator._set_fitted(result, kernel, "newton-pcg", problem, centers_are_rows=True)
    estimator.solver_info_["cv"] = {
        "folds": len(folds),
        "alphas": alphas.tolist(),
        "newton_steps_path": steps,
        "newton_steps_refit": result.n_iter,
    }
    estimator.alpha_ = float(alphas[best])
    estimator.cv_log_loss_ = mean
    estimator.cv_log_loss_folds_ = losses
    estimator.best_score_ = -float(mean[best])
    return classes


def _pairs_if_given(cv):
    """``cv`` as check_cv takes it, with given splits first checked to be (train, test)
    pairs: check_cv's wrapper unpacks each inside scikit-learn's generator, where a bare
    index array or a triple failed as "too many values to unpack" and an integer as
    "cannot unpack non-iterable int object", naming nothing (a review)."""
    if cv is None or isinstance(cv, (numbers.Integral, str)) or hasattr(cv, "split"):
        return cv
    try:
        splits = list(cv)
    except TypeError:
        return cv  # not iterable: check_cv's parameter error says what cv may be
    for f, split in enumerate(splits):
        try:
            size = len(split)
        except TypeError:
            size = None
        if size != 2:
            raise ValueError(
                f"cv: split {f + 1} of {len(splits)} must be a (train, test) pair of row "
                f"indices, got {type(split).__name__}"
                + ("" if size is None else f" of length {size}")
            )
    return splits


def _checked_split(split, f: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A (train, test) pair of ``cv``'s as two non-empty arrays of row indices in [0, n)
    (boolean masks of n rows taken as theirs). Given splits were used as they came: an
    index past n, a float index or an empty test fold failed deep in the fold loop with
    numpy's IndexError or "X: empty array" (a review)."""
    train, test = split  # scikit-learn's splitters and check_cv's wrapper yield pairs
    pair = []
    for name, given in (("train", train), ("test", test)):
        rows = np.asarray(given)
        if rows.dtype == bool and rows.shape == (n,):
            rows = np.flatnonzero(rows)
        if rows.ndim != 1 or rows.dtype.kind not in "iu":
            raise ValueError(
                f"cv: split {f + 1}'s {name} rows must be a 1-d array of integer indices or "
                f"a boolean mask of {n} rows, got dtype {rows.dtype} and shape {rows.shape}"
            )
        if rows.size == 0:
            raise ValueError(f"cv: split {f + 1} has no {name} rows")
        if rows.min() < 0 or rows.max() >= n:
            raise ValueError(
                f"cv: split {f + 1}'s {name} rows index outside 0..{n - 1} "
                f"(from {rows.min()} to {rows.max()})"
            )
        pair.append(rows)
    return pair[0], pair[1]
