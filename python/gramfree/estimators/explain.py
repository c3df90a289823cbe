"""``explain`` for the kernel machines: each prediction split over the model's centres, and
the centres traced back to the training examples (and labels) they are."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.utils.validation import check_is_fitted, validate_data

from ..operators import as_float_array, kernel_matrix
from ..pathkernel.explain import Explanation
from ..pathkernel.explain import top_k as _top_k_rows
from ._base import check_decision_finite

# Queries per kernel block: bounds the (q, n_centers) blocks explain holds at once.
_BLOCK_BYTES = 256 << 20
# How many such blocks a block's work holds: the kernel values, the coefficients gathered
# per query, their product, np.where's sums and top_k's copies (sized by one block, the
# peak was 6x the bound: 1.5 GiB for 200000 queries x 2000 centres; a review).
_BLOCKS_HELD = 6

# Why the largest contributions are not the whole story: with a smooth kernel K(C, C) is
# nearly singular, so (K + alpha I)^-1 y has large coefficients of alternating sign on
# similar training points, and their contributions cancel to the small score. Said when the
# contributions' absolute values add up to more than this many times the value.
_CANCELLATION = 10.0


def cancellation_note(ratio: float, several: bool = False) -> str:
    """One line on why contributions ``ratio`` times the value in size sum to it."""
    up_to = "up to " if several else ""
    return (
        f"large contributions cancel (their sizes total {up_to}{ratio:.0f}x the "
        "value): the coefficients alternate in sign between similar training examples, "
        "a smooth kernel's matrix being nearly singular"
    )


class ExplainMixin:
    """``explain`` and the training targets of the centres (``center_targets_``), for
    estimators with ``centers_``, ``dual_coef_`` and ``center_indices_``."""

    def explain(self, X: ArrayLike, top_k: int = 5, *, target: Any = None) -> Explanation:
        """The training examples that carry each prediction most, for and against.

        The model's output at x is ``sum_j k(x, c_j) * dual_coef_[j, t]`` over its centres
        ``c_j`` (each a training example, ``center_indices_``), plus ``intercept_`` for the
        logistic loss: centre j's contribution is its term, and the contributions of all
        centres plus that intercept (``base``) sum to the explained output (computed in
        float64; for a float32 model within its rounding of ``decision_function``).
        With a smooth kernel the coefficients alternate in sign between similar examples
        (its kernel matrix is nearly singular), so large contributions cancel: read them as
        evidence of direction, not as shares of the output; ``note`` says when it happens.

        Parameters
        ----------
        X : array-like (n_queries, n_features)
        top_k : int, default=5
            Examples listed per query and direction (at most the number of centres).
        target : default=None
            Classifiers: a class label, or None for the predicted class's score
            (``decision_function``'s column). With two classes the model has one score,
            positive towards ``classes_[1]``: None explains that score as it is (target
            ``classes_[1]``), ``classes_[0]`` explains its negative. Regressors: the output
            index (None means 0; required when y had several columns).

        Returns
        -------
        Explanation
            ``supporting`` / ``opposing``: rows of the training set (indices into the
            centres for a model loaded from a file of an earlier gramfree, which did not
            record ``center_indices_``),
            their contributions, and their training targets in ``supporting_labels`` /
            ``opposing_labels`` (None where the model does not know them).

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from gramfree import KernelClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = KernelClassifier(gamma=0.02, alpha=1e-3).fit(X[:500], y[:500])
        >>> ex = clf.explain(X[500:502], top_k=3)
        >>> bool(abs(ex.value[0] - clf.decision_function(X[500:501]).max()) < 1e-9)
        True
        """
        check_is_fitted(self, "dual_coef_")
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise ValueError(f"top_k: must be an integer >= 1, got {top_k!r}")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        if X.shape[0] == 0:
            raise ValueError("X: needs at least one query row")
        # The queries as the model sees them (a value its dtype cannot hold is named so).
        X = as_float_array(X, "X", dtype=self.centers_.dtype)
        column, sign, target_of = self._target_column(target)
        # float64 whatever the model's dtype: the terms cancel, their rounding would not.
        centers = self.centers_.astype(np.float64, copy=False)
        coef = self.dual_coef_.astype(np.float64, copy=False)
        q, m = X.shape[0], centers.shape[0]
        k = min(int(top_k), m)
        block = max(1, _BLOCK_BYTES // (_BLOCKS_HELD * 8 * m))
        parts = []
        for start in range(0, q, block):
            Xb = X[start : start + block]
            if column is None:  # the predicted class, as predict() finds it
                cols = np.argmax(self._decision_validated(Xb), axis=1)
            else:
                cols = np.full(len(Xb), column)
            Kb = kernel_matrix(
                Xb.astype(np.float64, copy=False),
                centers,
                kernel=self.kernel_,
                n_jobs=self.n_jobs,
                device=self.device,
            )
            C = Kb * (sign * coef.T[cols])
            # decision_function refuses queries whose kernel values overflow (a scale far
            # from the training data's); the explanation of them was NaN and inf.
            check_decision_finite(C, self.kernel_, np.dtype(np.float64))
            hi, hv, lo, lv = _top_k_rows(C, k)
            parts.append(
                (
                    cols,
                    C.sum(axis=1),
                    np.where(C > 0, C, 0.0).sum(axis=1),
                    np.where(C < 0, C, 0.0).sum(axis=1),
                    hi,
                    hv,
                    lo,
                    lv,
                )
            )
        cols, value, pos, neg, hi, hv, lo, lv = (np.concatenate(a) for a in zip(*parts))
        # The intercept (the logistic loss's) is what no training example carries.
        intercept = getattr(self, "intercept_", None)
        base = np.zeros(q) if intercept is None else sign * intercept.astype(np.float64)[cols]
        value = value + base
        indices = getattr(self, "center_indices_", None)
        labels = getattr(self, "center_targets_", None)
        known = indices is not None
        if known and labels is not None:
            labels = labels if labels.ndim == 1 else labels[:, cols[0]]
        else:
            labels = None
        what = "training example" if known else "centre"
        note = f"contribution of {what} i = k(x, x_i) * coefficient_i"
        ratio = float(np.max((pos - neg) / np.maximum(np.abs(value), np.finfo(float).tiny)))
        if ratio > _CANCELLATION:
            note += "\n" + cancellation_note(ratio, several=q > 1)
        if not known:
            note += (
                "\nthis model does not record which training rows its centres are "
                "(centres given as points, or a file of an earlier gramfree): indices "
                "count centres, no labels"
            )
        return Explanation(
            target=target_of(cols),
            value=value,
            base=base,
            supporting=_rows(indices, hi),
            supporting_contributions=hv,
            opposing=_rows(indices, lo),
            opposing_contributions=lv,
            normalized=False,
            supporting_labels=None if labels is None else labels[hi],
            opposing_labels=None if labels is None else labels[lo],
            positive_total=pos,
            negative_total=neg,
            index="training row" if known else "centre",
            note=note,
        )

    def _target_column(self, target):
        """``(column, sign, target_of)``: the column of ``dual_coef_`` explained (None: each
        query's predicted class), the sign it is explained with (-1 for the first of two
        classes), and a function giving the ``Explanation.target`` of explained columns."""
        n_columns = self.dual_coef_.shape[1]
        if np.ndim(target) != 0:
            raise ValueError(
                f"target: must be a single class label or output index, got {target!r}"
            )
        classes = getattr(self, "classes_", None)
        if classes is None:  # a regressor: an output index
            if target is None and n_columns > 1:
                raise ValueError(f"target: this model has {n_columns} outputs; name one (an index)")
            t = 0 if target is None else target
            if (
                isinstance(t, (bool, np.bool_))
                or not isinstance(t, numbers.Integral)
                or not 0 <= t < n_columns
            ):
                raise ValueError(
                    f"target: must be an output index in 0..{n_columns - 1}, got {target!r}"
                )
            return int(t), 1.0, lambda cols: cols.copy()
        if target is None:
            if len(classes) == 2:  # the one score, positive towards classes_[1]
                return 0, 1.0, lambda cols: np.full(len(cols), classes[1])
            return None, 1.0, lambda cols: classes[cols]
        # Element by element: numpy 1.x compares string classes with an integer target
        # by a FutureWarning and a scalar False instead of an array.
        hits = np.flatnonzero([bool(c == target) for c in classes])
        if isinstance(target, (bool, np.bool_)) and classes.dtype != bool:
            hits = hits[:0]  # True == 1: a boolean named class 1 of integer classes
        if hits.size != 1:
            raise ValueError(
                f"target: {target!r} is not one of the classes {np.asarray(classes).tolist()}"
            )
        c = int(hits[0])

        def same(cols):
            return np.full(len(cols), classes[c])

        if len(classes) == 2:  # the one score, negated for classes_[0]
            return 0, (1.0 if c == 1 else -1.0), same
        return c, 1.0, same

    # Set by fit where the centres are training rows (declared for the type checker).
    center_indices_: np.ndarray
    center_targets_: np.ndarray

    def _record_center_targets(self, y) -> None:
        """``center_targets_``: the training targets of the centres (class labels for a
        classifier, float64 values shaped as y for a regressor), read by :meth:`explain`.
        Unset when the centres are no training rows (``centers`` given as points)."""
        if getattr(self, "center_indices_", None) is None:
            if hasattr(self, "center_targets_"):  # a refit: not the previous fit's targets
                del self.center_targets_
            return
        y = np.asarray(y)
        if hasattr(self, "classes_"):
            self.center_targets_ = y.reshape(len(y))[self.center_indices_]
        else:
            self.center_targets_ = y.astype(np.float64)[self.center_indices_]


def _rows(indices: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
    """Centre positions as training rows where the model knows them."""
    return positions if indices is None else np.asarray(indices)[positions]
