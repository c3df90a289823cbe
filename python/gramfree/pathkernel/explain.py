"""Results of a path-kernel decomposition and the explanations built from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PathDecomposition:
    """``output = initial + contributions.sum(axis=1) + reg`` (the network's pre-activation
    output, to ~1e-9 relative in float64).

    initial:        (q,) or (q, k)       b(X), the network at its starting point
    contributions:  (q, n) or (q, n, k)  C[x, i], training example i's share of the change
    reg:            (q,) or (q, k)       weight decay's share (zero without an L2 penalty)
    output:         (q,) or (q, k)       the trained network's output, computed directly
    path_norm:      (n,)                 sqrt(sum over i's steps of lr/B ||grad loss_i(w_t)||^2)
    step_residual:  worst per-step self-check residual, relative to max |f| (see
                    PathKernelRegressor.decompose)
    """

    initial: np.ndarray
    contributions: np.ndarray
    reg: np.ndarray
    output: np.ndarray
    path_norm: np.ndarray
    step_residual: float
    refined_segments: int
    relu_pieces: int

    @property
    def reconstruction(self) -> np.ndarray:
        return self.initial + self.contributions.sum(axis=1) + self.reg

    @property
    def reconstruction_error(self) -> float:
        """max |reconstruction - output| / max |output|."""
        scale = max(float(np.max(np.abs(self.output), initial=0.0)), np.finfo(float).tiny)
        return float(np.max(np.abs(self.reconstruction - self.output), initial=0.0) / scale)


@dataclass
class Explanation:
    """Per query, the training examples that pushed its prediction most.

    target:          (q,) the output explained per query (a class label for classifiers, an
                     output index for regressors; "margin" for a classifier's predicted
                     class's margin over the runner-up)
    value:           (q,) the explained quantity (the output, or the margin)
    base:            (q,) its initial value plus the weight-decay share
    supporting:      (q, top_k) training indices with the largest contributions, descending
    supporting_contributions: (q, top_k) their contributions (raw, even when normalised)
    opposing:        (q, top_k) training indices with the most negative contributions
    opposing_contributions:   (q, top_k)
    normalized:      whether the ranking divided each contribution by the example's path norm
    """

    target: np.ndarray
    value: np.ndarray
    base: np.ndarray
    supporting: np.ndarray
    supporting_contributions: np.ndarray
    opposing: np.ndarray
    opposing_contributions: np.ndarray
    normalized: bool

    def __len__(self) -> int:
        return len(self.value)


def top_k(contributions: np.ndarray, k: int, score: np.ndarray | None = None):
    """Indices of the k largest and k smallest entries of each row (by ``score`` when given),
    ordered from the strongest, and the contributions at them."""
    score = contributions if score is None else score
    n = score.shape[1]
    k = min(k, n)
    rows = np.arange(score.shape[0])[:, None]
    hi = np.argpartition(-score, k - 1, axis=1)[:, :k]
    hi = np.take_along_axis(hi, np.argsort(-score[rows, hi], axis=1, kind="stable"), axis=1)
    lo = np.argpartition(score, k - 1, axis=1)[:, :k]
    lo = np.take_along_axis(lo, np.argsort(score[rows, lo], axis=1, kind="stable"), axis=1)
    return hi, contributions[rows, hi], lo, contributions[rows, lo]
