"""Results of a path-kernel decomposition and the explanations built from it."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PathDecomposition:
    """``output = initial + contributions.sum(axis=1) + reg`` (the network's pre-activation
    output, to ~1e-9 relative in float64).

    Attributes
    ----------
    initial : ndarray of shape (q,) or (q, k)
        ``b(X)``, the network at its starting point.
    contributions : ndarray of shape (q, n) or (q, n, k)
        ``C[x, i]``, training example i's share of the change.
    reg : ndarray of shape (q,) or (q, k)
        Weight decay's share (zero without an L2 penalty).
    output : ndarray of shape (q,) or (q, k)
        The trained network's output, computed directly.
    path_norm : ndarray of shape (n,)
        ``sqrt(sum over i's steps of lr / (B mean(w)) ||w_i grad loss_i(w_t)||^2)``: the
        norm of what example i pushed with (its sample weight included).
    step_residual : float
        Worst per-step self-check residual, relative to ``max |f|`` (see
        PathKernelRegressor.decompose).
    refined_segments : int
        (query, step) pairs whose segment the self-check halved.
    relu_pieces : int
        Pieces the ReLU segments were split into.
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
        """``max |reconstruction - output| / max |output|``."""
        scale = max(float(np.max(np.abs(self.output), initial=0.0)), np.finfo(float).tiny)
        return float(np.max(np.abs(self.reconstruction - self.output), initial=0.0) / scale)


@dataclass(repr=False)
class Explanation:
    """Per query, the training examples that pushed its prediction most, for and against.

    Returned by the estimators' ``explain``; not usually built by hand. Each parameter is
    kept as the attribute of the same name.

    Parameters
    ----------
    target : ndarray of shape (q,)
        The output explained per query (a class label for classifiers, an output index for
        regressors; "margin" for a path-kernel classifier's predicted class's margin over
        the runner-up).
    value : ndarray of shape (q,)
        The explained quantity, ``base`` plus the sum of *all* contributions.
    base : ndarray of shape (q,)
        What no training example carries: a network's initial value plus the weight-decay
        share; 0 for a kernel machine (no intercept).
    supporting : ndarray of shape (q, top_k) of int
        Indices of the examples with the largest contributions, descending (rows of the
        training set, or see ``index``).
    supporting_contributions : ndarray of shape (q, top_k)
        Their contributions (raw, even when normalised).
    opposing : ndarray of shape (q, top_k) of int
        Indices of the examples with the most negative contributions.
    opposing_contributions : ndarray of shape (q, top_k)
        Their contributions.
    normalized : bool
        Whether the ranking divided each contribution by the example's path norm.
    supporting_labels, opposing_labels : ndarray of shape (q, top_k) or None, default=None
        Those examples' training targets (class labels, or the target's values for a
        regressor); None where the model does not know them (a kernel machine loaded from
        an earlier gramfree's file).
    positive_total, negative_total : ndarray of shape (q,) or None, default=None
        The sums of all positive and of all negative contributions:
        ``value = base + positive_total + negative_total``.
    index : str, default="training row"
        What the indices count: "training row", or "centre" where the model does not know
        which training rows its centres are.
    note : str, default=""
        One or two lines on how to read the contributions.

    Attributes
    ----------
    target, value, base, supporting, supporting_contributions, opposing, \
opposing_contributions, normalized, supporting_labels, opposing_labels, positive_total, \
negative_total, index, note
        The parameters, as given.

    ``print(explanation)`` shows a short table per query (the first few queries);
    :meth:`to_frame` gives every row as a pandas DataFrame.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gramfree import KernelClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KernelClassifier(gamma=0.02, alpha=1e-3).fit(X[:500], y[:500])
    >>> ex = clf.explain(X[500:503], top_k=3)
    >>> ex.supporting.shape, ex.supporting_labels.shape
    ((3, 3), (3, 3))
    """

    target: np.ndarray
    value: np.ndarray
    base: np.ndarray
    supporting: np.ndarray
    supporting_contributions: np.ndarray
    opposing: np.ndarray
    opposing_contributions: np.ndarray
    normalized: bool
    supporting_labels: np.ndarray | None = None
    opposing_labels: np.ndarray | None = None
    positive_total: np.ndarray | None = None
    negative_total: np.ndarray | None = None
    index: str = "training row"
    note: str = ""

    def __len__(self) -> int:
        return len(self.value)

    # -- reading it -------------------------------------------------------------------------

    def __repr__(self) -> str:
        q, k = self.supporting.shape
        what = f"{q} quer{'y' if q == 1 else 'ies'}, top {k} for and against"
        lines = [
            f"Explanation of {what} (indices: {self.index}s"
            + ("" if self.supporting_labels is not None else "; training labels unknown")
            + ")"
        ]
        for line in self.note.splitlines():
            lines += textwrap.wrap(line, _REPR_WIDTH, initial_indent="  ", subsequent_indent="    ")
        for i in range(min(q, _REPR_QUERIES)):
            lines += self._query_table(i)
        if q > _REPR_QUERIES:
            rest = q - _REPR_QUERIES
            lines.append(
                f"... {rest} more quer{'y' if rest == 1 else 'ies'} (to_frame() lists them all)"
            )
        return "\n".join(lines)

    __str__ = __repr__

    def _query_table(self, i: int) -> list[str]:
        base = f"base {self.base[i]:+.4g} + " if self.base[i] != 0 else ""
        sums = ""
        if self.positive_total is not None and self.negative_total is not None:
            sums = (
                f" ({self.positive_total[i]:+.4g} positive, {self.negative_total[i]:+.4g} negative)"
            )
        head = (
            f"query {i}: target {_text(self.target[i])}, value {self.value[i]:+.4g} = "
            f"{base}sum of contributions{sums}"
        )
        rows = min(self.supporting.shape[1], _REPR_ROWS)
        cells = [["rank", "for", "label", "contribution", "against", "label", "contribution"]]
        for r in range(rows):
            cells.append(
                [
                    str(r + 1),
                    f"#{self.supporting[i, r]}",
                    _label(self.supporting_labels, i, r),
                    f"{self.supporting_contributions[i, r]:+.4g}",
                    f"#{self.opposing[i, r]}",
                    _label(self.opposing_labels, i, r),
                    f"{self.opposing_contributions[i, r]:+.4g}",
                ]
            )
        if self.supporting_labels is None:
            cells = [[c for j, c in enumerate(row) if j not in (2, 5)] for row in cells]
        widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
        table = ["    " + "  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
        if self.supporting.shape[1] > rows:
            table.append(f"    ... {self.supporting.shape[1] - rows} more rows")
        return [head, *table]

    def to_frame(self) -> Any:  # a pandas DataFrame
        """Every query's ranked examples as a long-format pandas DataFrame: one row per
        (query, direction, rank) with columns ``query, target, value, base, direction
        ("supporting" or "opposing"), rank (1 = strongest), index, label, contribution``
        (``label`` is None where the training labels are unknown).

        Needs pandas, which gramfree does not install.

        Returns
        -------
        frame : pandas.DataFrame
            ``2 * q * top_k`` rows: each query's supporting rows, then its opposing rows.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from gramfree import KernelClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = KernelClassifier(gamma=0.02, alpha=1e-3).fit(X[:500], y[:500])
        >>> frame = clf.explain(X[500:503], top_k=3).to_frame()  # doctest: +SKIP
        >>> frame.shape  # doctest: +SKIP
        (18, 9)
        """
        try:
            import pandas as pd
        except ImportError:
            raise ImportError(
                "Explanation.to_frame needs pandas, which gramfree does not install: "
                "pip install pandas"
            ) from None
        q, k = self.supporting.shape

        def per_query(a):
            return np.repeat(np.asarray(a), 2 * k)

        def both(a, b):  # each query's supporting rows, then its opposing rows
            return np.concatenate([a, b], axis=1).ravel()

        if self.supporting_labels is None:
            labels = np.full(2 * q * k, None, dtype=object)
        else:
            labels = both(self.supporting_labels, self.opposing_labels)
        return pd.DataFrame(
            {
                "query": per_query(np.arange(q)),
                "target": per_query(self.target),
                "value": per_query(self.value),
                "base": per_query(self.base),
                "direction": np.tile(np.repeat(["supporting", "opposing"], k), q),
                "rank": np.tile(np.arange(1, k + 1), 2 * q),
                "index": both(self.supporting, self.opposing),
                "label": labels,
                "contribution": both(self.supporting_contributions, self.opposing_contributions),
            }
        )


# print(explanation) shows this many queries, each with at most this many ranks.
_REPR_QUERIES = 3
_REPR_ROWS = 10
_REPR_WIDTH = 92  # the note's lines wrap here


def _text(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value.item() if isinstance(value, np.generic) else value)


def _label(labels, i: int, r: int) -> str:
    return "" if labels is None else _text(labels[i, r])


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
