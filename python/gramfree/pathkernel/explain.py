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
        # np.asarray: a decomposition of a dask X holds dask arrays (computed here), whose
        # max takes no ``initial``.
        output = np.asarray(self.output)
        gap = np.abs(np.asarray(self.reconstruction) - output)
        scale = max(float(np.max(np.abs(output), initial=0.0)), np.finfo(float).tiny)
        return float(np.max(gap, initial=0.0) / scale)


@dataclass(repr=False)
class Explanation:
    """Per query, the training examples that pushed its prediction most, for and against.

    Returned by the estimators' ``explain``; not usually built by hand. Each parameter is
    kept as the attribute of the same name.

    Parameters
    ----------
    target : ndarray of shape (q,)
        The output explained per query: a class label for classifiers (with
        ``target="margin"``, the predicted class, whose margin over the runner-up is
        explained), an output index for regressors.
    value : ndarray of shape (q,)
        The explained quantity, ``base`` plus the sum of *all* contributions.
    base : ndarray of shape (q,)
        What no training example carries: a network's initial value plus the weight-decay
        share; a kernel machine's intercept (the logistic loss's), else 0.
    supporting : ndarray of shape (q, k) of int
        Indices of the examples with the largest positive contributions, descending (rows
        of the training set, or see ``index``); ``k = min(top_k, n)``, n the examples
        ranked (the training rows, or a kernel machine's centres). A query with fewer
        than ``k`` positive contributions has its row padded at the end with -1 (see
        Notes).
    supporting_contributions : ndarray of shape (q, k)
        Their contributions (raw, even when normalised): all > 0, NaN where padded.
    opposing : ndarray of shape (q, k) of int
        Indices of the examples with the most negative contributions, most negative
        first; padded with -1 likewise.
    opposing_contributions : ndarray of shape (q, k)
        Their contributions: all < 0, NaN where padded.
    normalized : bool
        Whether the ranking divided each contribution by the example's path norm.
    supporting_labels, opposing_labels : ndarray of shape (q, k) or None, default=None
        Those examples' training targets (class labels, or the target's values for a
        regressor); None where the model does not know them (a kernel machine loaded from
        an earlier gramfree's file). A padded slot's label is NaN for float targets and
        None otherwise (the array is then of dtype object).
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

    Notes
    -----
    An example whose contribution is positive pushes the prediction up, a negative one
    down, and a zero one neither way: the supporting lists hold only positive
    contributions and the opposing lists only negative ones. Where a query has fewer than
    ``k`` of a sign, its list keeps its length (the arrays stay (q, k)) and is
    padded at the end with index -1 and contribution NaN. A padded slot is found by
    ``np.isnan(contributions)``; at construction, every slot whose contribution is NaN gets
    index -1 and an empty label, whatever the caller derived from it. ``print`` leaves
    padded slots blank; :meth:`to_frame` keeps their rows.

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

    def __post_init__(self) -> None:
        # Callers map top_k's indices to training rows and labels before building this;
        # at a padded slot (index -1) that mapping read the last row's, which would show a
        # real example as pushing where none does.
        for side in ("supporting", "opposing"):
            pad = np.isnan(np.asarray(getattr(self, f"{side}_contributions"), dtype=np.float64))
            if not pad.any():
                continue
            setattr(self, side, np.where(pad, -1, getattr(self, side)))
            labels = getattr(self, f"{side}_labels")
            if labels is not None:
                setattr(self, f"{side}_labels", _without_padded_labels(np.asarray(labels), pad))

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
            sides = [
                _cells(
                    self.supporting, self.supporting_labels, self.supporting_contributions, i, r
                ),
                _cells(self.opposing, self.opposing_labels, self.opposing_contributions, i, r),
            ]
            if not any(any(side) for side in sides):
                break  # both lists padded from here on
            cells.append([str(r + 1), *sides[0], *sides[1]])
        if self.supporting_labels is None:
            cells = [[c for j, c in enumerate(row) if j not in (2, 5)] for row in cells]
        widths = [max(len(row[j]) for row in cells) for j in range(len(cells[0]))]
        table = [
            ("    " + "  ".join(c.rjust(w) for c, w in zip(row, widths))).rstrip() for row in cells
        ]
        # Rows beyond those shown that hold an example on either side (padding is not a row:
        # a review found "... 2 more rows" of padding with top_k above the training set).
        filled = max(int(np.sum(self.supporting[i] >= 0)), int(np.sum(self.opposing[i] >= 0)))
        if filled > rows:
            table.append(f"    ... {filled - rows} more rows")
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
            ``2 * q * top_k`` rows: each query's supporting rows, then its opposing rows. A
            padded slot (fewer than ``top_k`` contributions of that sign) is a row with
            index -1, contribution NaN and an empty label.

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


def _cells(indices, labels, contributions, i: int, r: int) -> list[str]:
    """(index, label, contribution) of one ranked slot as table cells; blank if padded."""
    if np.isnan(contributions[i, r]):
        return ["", "", ""]
    return [f"#{indices[i, r]}", _label(labels, i, r), f"{contributions[i, r]:+.4g}"]


def _without_padded_labels(labels: np.ndarray, pad: np.ndarray) -> np.ndarray:
    """``labels`` with NaN (float targets) or None (any other labels) at the padded slots."""
    if labels.dtype.kind == "f":
        out = labels.copy()
        out[pad] = np.nan
    else:
        out = labels.astype(object)
        out[pad] = None
    return out


def top_k(contributions: np.ndarray, k: int, score: np.ndarray | None = None):
    """Per row, the k strongest positive and the k strongest negative contributions.

    Parameters
    ----------
    contributions : ndarray of shape (q, n)
        Each example's contribution to each query.
    k : int
        How many of each sign to keep (at most n).
    score : ndarray of shape (q, n) or None, default=None
        What ranks the examples, a positive multiple of each contribution (such as the
        contribution over the example's path norm); None ranks by the contributions.

    Returns
    -------
    hi, hv, lo, lv : ndarrays of shape (q, min(k, n))
        The indices and contributions of the positive contributions by descending score,
        then those of the negative ones by ascending score. A row with fewer than k
        contributions of a sign is padded at the end with index -1 and contribution NaN:
        the sign is the contribution's, and a zero one pushes neither way.
    """
    score = contributions if score is None else score
    n = score.shape[1]
    k = min(k, n)
    rows = np.arange(score.shape[0])[:, None]
    # Ranking by a key that puts every example of the wrong sign last makes the padding
    # contiguous at the end, whatever the score of those examples.
    up = np.where(contributions > 0, score, -np.inf)
    down = np.where(contributions < 0, score, np.inf)
    hi = np.argpartition(-up, k - 1, axis=1)[:, :k]
    hi = np.take_along_axis(hi, np.argsort(-up[rows, hi], axis=1, kind="stable"), axis=1)
    lo = np.argpartition(down, k - 1, axis=1)[:, :k]
    lo = np.take_along_axis(lo, np.argsort(down[rows, lo], axis=1, kind="stable"), axis=1)
    hv, lv = contributions[rows, hi], contributions[rows, lo]
    hi_pad, lo_pad = ~(hv > 0), ~(lv < 0)
    return (
        np.where(hi_pad, -1, hi),
        np.where(hi_pad, np.nan, hv),
        np.where(lo_pad, -1, lo),
        np.where(lo_pad, np.nan, lv),
    )
