"""The logistic solver's CG Hessian from a sample of the data's rows, drawn with
probability proportional to each row's curvature (sub-sampled Newton with non-uniform
sampling: Roosta-Khorasani and Mahoney 2019, "Sub-sampled Newton methods"; Xu et al.
2016, "Sub-sampled Newton methods with non-uniform sampling").

The Hessian's data part is a sum over rows, ``K_nM^T S K_nM = sum_i K_i^T S_i K_i``, and
near the optimum of a well-fitted model most rows' curvature ``S_i`` is tiny: their
probabilities are nearly 0 or 1 (shuttle, M = 1000, alpha = 0.01: from the fifth Newton
step on, 93% of the rows carry a curvature trace below 1e-3 and the rest nearly all of
it). A row is kept with probability ``q_i = min(1, trace(S_i) / tau)``, tau set so that
``sum q_i`` is the sample's size, and a kept row's curvature is scaled by ``1 / q_i``:
the sampled Hessian of the coefficients and intercepts is the exact one in expectation
(CG solves its Schur complement in the coefficients, which the pseudo-inverse of the
sampled intercept block makes a biased estimate, not an unbiased one), rows at or above
tau are always kept, and each row below it stands for ``1 / q_i`` rows like it, so that
the many rows of a well-classified region keep their total curvature, which the penalty
alone would miss. (Dropping them instead, as a deterministic threshold would, left the
Hessian too flat there: on shuttle, with 5% of the curvature dropped, the check's error
grew to 1.4-2.7 and the fit took more Newton steps.) The gradient, the step's objective
and the line search stay exact; only CG's products use the sample, so the fit converges
to the same optimum: an inexact Newton method whose Hessian has a relative error epsilon
along its steps converges linearly at a rate about epsilon (the check below keeps it at
most ``MODEL_ERROR``, 0.25, where CG's own forcing term allows 0.1 to 0.5; the measured
fits took 1 to 3 more Newton steps, README).

The sample is checked on every step at O(n k) cost: the step's ``K_nM d`` is computed over
all rows anyway, and it gives the exact Hessian's curvature along the whole step
(coefficients and the exact intercept step) beside the sample's. Where they differ by
more than ``MODEL_ERROR`` the sample doubles for the next step (it never shrinks: a large
error far from the optimum keeps it larger for the rest of the fit), up to ``MAX_SHARE``
of the rows, beyond which every row is used; and that step's Newton decrement, which the
sample's Hessian scaled, cannot end the fit. The uniform draws are made once per fit
(common random numbers): a row stays in the sample while its probability does not fall,
so consecutive steps' Hessians differ by the curvature's change, not by a new draw's
noise (the secant pairs carried from one step's CG to the next rely on that:
``logistic._SecantPairs``). The sample costs per Newton step: for two classes one pass
over its rows for the intercept's coupling, and with the recomputing operator (K_nM not
stored) a copy of its rows of X.
"""

from __future__ import annotations

import numpy as np

# The first sample's size, in rows per centre (the Hessian is M k x M k; on shuttle, 7
# classes, 4 M rows kept the model's error along each step below 0.05 after the first;
# letter, 26 classes, needed 8 M near the optimum).
ROWS_PER_CENTRE = 4.0
# Most of the rows a sample may hold before every row is used instead. A stored K_nM's
# sampled rows are read by index (no copy), so even a large share saves its passes'
# remainder: Fashion-MNIST (M = 4000) took 53% of the rows in its late Newton steps,
# which hold most of its CG iterations (at 0.5 they took all of them).
MAX_SHARE = 0.75
# Largest relative error of the sampled Hessian along a step, |d^T H d / d^T H~ d - 1|,
# before the sample doubles. Newton's rate with such a Hessian is about this error.
MODEL_ERROR = 0.25
# The draws' seed: the sample is part of the algorithm, the same for the same data.
SEED = 0


def inclusion_probabilities(trace: np.ndarray, size: float) -> np.ndarray:
    """``q_i = min(1, trace_i / tau)`` with ``sum q_i = size`` (water-filling: the rows at
    or above tau are certain); every row with a positive trace where there are at most
    ``size`` of them (q = 1 there, 0 elsewhere)."""
    if not size > 0:
        raise ValueError(f"size: must be positive, got {size!r}")
    if not np.all(np.isfinite(trace)) or np.any(trace < 0):
        raise ValueError("trace: expected finite, non-negative values")
    positive = trace > 0.0
    if np.count_nonzero(positive) <= size:
        return positive.astype(np.float64)
    t = np.sort(trace)[::-1]
    # With the j largest rows certain, tau_j = (sum of the rest) / (size - j); the first
    # j whose tau_j is at least the next row's trace (and so below the j-th's) is tau.
    j = np.arange(int(np.ceil(size)))
    rest = np.cumsum(t[::-1])[::-1][j]
    tau = rest / (size - j)
    first = int(np.argmax(tau >= t[j]))
    # A tau that underflowed to 0 gives inf, clipped to 1: no overflow warning for it
    # (numpy's leaked to users with rows weighted 1e3-1e9; a review).
    with np.errstate(divide="ignore", over="ignore"):
        return np.minimum(trace / tau[first], 1.0)


class HessianSample:
    """The rows of each Newton step's CG Hessian (module docstring)."""

    def __init__(self, n: int, M: int) -> None:
        self.n = n
        self.size = ROWS_PER_CENTRE * M
        self._uniform: np.ndarray | None = None
        self._weights: np.ndarray | None = None  # 1 / q of the current sample's rows
        self._rows: np.ndarray | None = None
        self.rows_used: list[int] = []  # rows in each step's CG Hessian
        self.model_errors: list[float] = []  # the check's relative error, sampled steps

    def draw(
        self, trace: np.ndarray, every_row: bool = False, max_rows: float = np.inf
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(rows, 1 / q)`` for this step's Hessian, given each row's curvature trace;
        None: every row (asked for; or the sample would hold more than ``MAX_SHARE`` of
        them, or more than ``max_rows``; or it would be empty, where no row has any
        curvature; or a trace is not finite). ``rows_used`` gets one entry per call: per
        Newton iteration attempted, the last of which may end the fit before a step."""
        self._rows = self._weights = None
        if every_row or self.size >= MAX_SHARE * self.n or not np.all(np.isfinite(trace)):
            self.rows_used.append(self.n)
            return None
        q = inclusion_probabilities(trace, self.size)
        if self._uniform is None:
            self._uniform = np.random.default_rng(SEED).random(self.n)
        rows = np.flatnonzero(self._uniform < q)
        if rows.size == 0 or rows.size > max_rows:
            self.rows_used.append(self.n)
            return None
        self._rows, self._weights = rows, 1.0 / q[rows]
        self.rows_used.append(rows.size)
        return rows, self._weights

    def check(self, per_row: np.ndarray, penalty: float) -> bool:
        """After a sampled step: ``per_row`` the step's curvature in each row
        (``(K d + e)_i^T S_i (K d + e)_i``, all rows), ``penalty`` its ``alpha d^T K_MM
        d``. Doubles the sample where the two Hessians disagree along the step by more
        than MODEL_ERROR, and returns whether they agreed (True after a step that used
        every row)."""
        if self._rows is None:
            return True
        exact = float(per_row.sum()) + penalty
        sampled = float(per_row[self._rows] @ self._weights) + penalty
        error = exact / sampled - 1.0 if sampled > 0.0 else np.inf
        self.model_errors.append(float(error))
        if abs(error) <= MODEL_ERROR:
            return True
        self.size *= 2.0
        return False
