"""Control over an iterative fit: early stopping on held-out data and warm starts.

Early stopping (scikit-learn's MLP and SGD convention): ``validation_fraction`` of the
training rows (stratified for a classifier) are held out; after every iteration of the
solver (a CG iteration, an EigenPro epoch, a Newton step) the model is scored on them (R^2,
or accuracy for a classifier; sample-weighted when weights are given); the fit stops once
``n_iter_no_change`` iterations in a row did not improve the best score by more than
``tol``, and the model is the iterate with the best score, not the last.

What the iterations mean differs by solver, and so does what early stopping buys:
EigenPro is gradient descent, whose epochs fit the kernel's top directions first, so its
epoch count regularises (diabetes, rbf, alpha = 1e-6: the early-stopped model's test R^2
0.36-0.42 over four splits against -0.23-0.12 after 100 epochs; tests/test_fit_controls.py
checks it). Nystrom-PCG's preconditioner levels the spectrum on purpose (Falkon), so its
iterates are no regularisation path: there early stopping saves the iterations after the
held-out score stops improving, and alpha remains the regulariser. Newton steps of the
logistic loss likewise.

A warm start begins where the previous fit ended: its centres and coefficients.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_expit, log_softmax
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split

from ..solvers import Problem
from ..solvers.kernel_pcg import DEFAULT_MAX_ITER

# The solvers whose iterations early stopping can score (square loss); the logistic
# loss's Newton steps always can.
ITERATIVE_SOLVERS = ("nystrom-pcg", "eigenpro", "pcg")
# The solvers whose model has every training row as a centre (no n_centers, no centers).
EXACT_SOLVERS = ("direct", "pcg")
# CG iterations of solver="pcg" when max_iter is None (kernel_pcg.DEFAULT_MAX_ITER).
PCG_DEFAULT_ITER = DEFAULT_MAX_ITER


def continues_on_rows(warm: WarmStart | None, X: np.ndarray) -> bool:
    """Whether a warm start's coefficients are one per row of this X (a previous fit with
    every row a centre, on the same rows)."""
    return warm is not None and warm.centers.shape == X.shape and np.array_equal(warm.centers, X)


def target_codes(Y: np.ndarray) -> np.ndarray:
    """Class codes of classifier targets: +-1 or 0/1 in one column (code 1 where
    positive), or one-hot columns (the column of the 1)."""
    return (Y[:, 0] > 0).astype(np.intp) if Y.shape[1] == 1 else np.argmax(Y, axis=1)


def decision_codes(scores: np.ndarray) -> np.ndarray:
    """Predicted codes from decision values (m x t): positive score (one column, the
    square loss's +-1 and the logistic loss's logit alike) or the largest column."""
    return (scores[:, 0] > 0).astype(np.intp) if scores.shape[1] == 1 else np.argmax(scores, axis=1)


@dataclass
class HeldOut:
    """The validation part of an early-stopped fit and the rows the solver fits on."""

    fit_rows: np.ndarray  # rows of the caller's X that the solver sees (sorted)
    X: np.ndarray
    Y: np.ndarray
    sample_weight: np.ndarray | None
    classify: bool
    # "log_loss" for the logistic loss: minus the held-out log-loss. Accuracy ties from one
    # Newton step to the next, and the first best iterate was kept: step 1, far from the
    # optimum (breast cancer: held-out log-loss 0.200 against the converged fit's 0.058).
    metric: str = "default"

    def score(self, scores: np.ndarray) -> float:
        if self.metric == "log_loss":
            if scores.shape[1] == 1:  # the logit of the second class
                f, y = scores[:, 0], self.Y[:, 0]
                nll = -(y * log_expit(f) + (1.0 - y) * log_expit(-f))
            else:
                nll = -np.sum(self.Y * log_softmax(scores, axis=1), axis=1)
            return -float(np.average(nll, weights=self.sample_weight))
        if self.classify:
            return float(
                accuracy_score(
                    target_codes(self.Y), decision_codes(scores), sample_weight=self.sample_weight
                )
            )
        return float(r2_score(self.Y, scores, sample_weight=self.sample_weight))

    def monitor(
        self, problem: Problem, centers: np.ndarray, *, n_iter_no_change: int, tol: float
    ) -> ValidationMonitor:
        # The held-out rows scored as predict computes them (the data's precision): with
        # kernel_precision="float32" the float32 products' scores chose iterates by their
        # rounding (pcg on digits, alpha 1e-6: best_validation_score_ 0.9206 for a model
        # scoring 0.9921 on those rows).
        scoring = problem.in_data_precision()

        def decision(coef: np.ndarray, intercept: np.ndarray | None = None) -> np.ndarray:
            out = scoring.matvec(self.X, centers, coef).astype(np.float64)
            return out if intercept is None else out + intercept

        return ValidationMonitor(decision, self.score, n_iter_no_change, tol)


def hold_out(
    X: np.ndarray,
    Y: np.ndarray,
    sample_weight,
    *,
    fraction: float,
    classify: bool,
    rng: np.random.Generator,
    keep: np.ndarray | None = None,
):
    """``(X_fit, Y_fit, sample_weight_fit, held_out)``: the split of an early-stopped fit,
    stratified by class for a classifier; fresh arrays, the caller's are not touched.

    The validation rows are drawn among the rows of positive weight (a zero-weight row
    could not be scored, and a validation side of only such rows has no score at all) that
    are not in ``keep`` (the rows given as centres: centres are rows of the data fitted
    on, and ``center_indices_`` says which); those stay on the fitting side."""
    n = X.shape[0]
    eligible = np.ones(n, dtype=bool)
    if sample_weight is not None:
        eligible &= sample_weight > 0
    if keep is not None:
        eligible[keep] = False
    candidates = np.flatnonzero(eligible)
    # At least two held-out rows (R^2 needs two); stratified by class where every class
    # can be on both sides, else (tiny data, scikit-learn's estimator checks) at random.
    positive = n if sample_weight is None else int(np.count_nonzero(sample_weight > 0))
    n_val = max(math.ceil(fraction * positive), 2)
    stratify = None
    if classify:
        codes = target_codes(Y)[candidates]
        counts = np.bincount(codes)
        k = int(np.count_nonzero(counts))
        if counts[counts > 0].min() >= 2 and len(candidates) - max(n_val, k) >= k:
            stratify, n_val = codes, max(n_val, k)
    if n - n_val < 2:
        raise ValueError(
            f"validation_fraction={fraction}: holding out {n_val} of {n} samples leaves "
            f"{n - n_val} to fit; use a smaller validation_fraction or early_stopping=False"
        )
    if len(candidates) <= n_val:  # train_test_split leaves at least one of them to fit
        why = []
        if keep is not None:
            why.append(f"the {len(keep)} rows given as centers stay on the fitting side")
        if positive < n:
            why.append(f"{n - positive} rows of zero sample_weight cannot be scored")
        raise ValueError(
            f"validation_fraction={fraction}: {n_val} validation samples are needed, and "
            f"only {len(candidates)} of {n} can be held out ({'; '.join(why)}); use a "
            "smaller validation_fraction, fewer centers or early_stopping=False"
        )
    _, val_rows = train_test_split(
        candidates,
        test_size=n_val,
        stratify=stratify,
        random_state=int(rng.integers(2**31 - 1)),
    )
    val_rows = np.sort(val_rows)
    fit_mask = np.ones(n, dtype=bool)
    fit_mask[val_rows] = False
    fit_rows = np.flatnonzero(fit_mask)
    w = sample_weight
    if w is not None and not w[fit_rows].any():
        raise ValueError(
            "sample_weight: every sample left for fitting after the "
            "validation split has weight zero"
        )
    held = HeldOut(
        fit_rows,
        np.ascontiguousarray(X[val_rows]),
        Y[val_rows],
        None if w is None else w[val_rows],
        classify,
    )
    return (
        np.ascontiguousarray(X[fit_rows]),
        np.ascontiguousarray(Y[fit_rows]),
        None if w is None else w[fit_rows],
        held,
    )


@dataclass
class WarmStart:
    """The previous fit a warm start continues: its solver, centres (in this X's dtype),
    their rows in this X (None when they are not rows of it) and coefficients."""

    solver: str
    centers: np.ndarray
    rows: np.ndarray | None
    coef: np.ndarray
    intercept: np.ndarray | None = None  # the logistic loss's intercepts (t,)


@dataclass
class ValidationMonitor:
    """The solvers' ``monitor`` (:data:`gramfree.solvers._common.Monitor`): scores every
    iterate, keeps the best, and says stop after ``n_iter_no_change`` iterations without
    an improvement above ``tol``."""

    decision: Callable[..., np.ndarray]  # (coef, intercept=None) -> scores
    score: Callable[[np.ndarray], float]
    n_iter_no_change: int
    tol: float
    scores: list = field(default_factory=list)
    best_score: float = -math.inf
    best_coef: np.ndarray | None = None
    best_intercept: np.ndarray | None = None
    best_iteration: int = 0
    stopped: bool = False
    _stale: int = 0

    def start(self, coef: np.ndarray, intercept: np.ndarray | None = None) -> None:
        """Score a warm start's coefficients as iteration 0: the best so far, so that a
        continued fit never returns a model worse on the held-out rows than the one it
        started from (as scikit-learn's MLP keeps its best across warm starts; before,
        diabetes with eigenpro went from held-out R^2 0.4517 to 0.4126). Not one of
        ``validation_scores_`` (one per iteration)."""
        self.best_score = self.score(self.decision(coef, intercept))
        self.best_coef, self.best_iteration = coef.copy(), 0
        self.best_intercept = None if intercept is None else intercept.copy()

    def __call__(self, n_iter: int, coef: np.ndarray, intercept: np.ndarray | None = None) -> bool:
        value = self.score(self.decision(coef, intercept))
        self.scores.append(value)
        self._stale = 0 if value > self.best_score + self.tol else self._stale + 1
        if value > self.best_score:
            self.best_score, self.best_coef, self.best_iteration = value, coef.copy(), n_iter
            self.best_intercept = None if intercept is None else intercept.copy()
        self.stopped = self._stale >= self.n_iter_no_change
        return self.stopped

    def apply(self, result) -> None:
        """Hand the best iterate to the solver's result and record what happened (a warm
        start's own coefficients when no iterate beat them on the held-out rows, see
        :meth:`start`). Where nothing was scored, the result is scored itself."""
        if self.best_coef is None:
            self.best_score = self.score(self.decision(result.coef, result.intercept))
        else:
            result.coef = self.best_coef
            if self.best_intercept is not None:
                result.intercept = self.best_intercept
        result.info["early_stopping"] = {
            "best_iteration": self.best_iteration,
            "stopped": self.stopped,
            "best_validation_score": self.best_score,
        }
