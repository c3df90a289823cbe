"""KernelClassifier: kernel ridge classification on one-vs-rest targets (square loss, as
Falkon and EigenPro classify), without the n x n matrix."""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._param_validation import StrOptions
from sklearn.utils._available_if import available_if
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets

from ._base import KernelMachineMixin
from ._logistic import fit_logistic, probabilities
from .explain import ExplainMixin


def class_targets(estimator, X, y, sample_weight):
    """``(classes, Y, sample_weight)`` for a square-loss classifier: +-1 targets (binary)
    or one-hot (multiclass) in X's dtype, and the sample weights times the estimator's
    ``class_weight`` (scikit-learn's definition)."""
    check_classification_targets(y)
    if estimator.class_weight is not None:
        per_class = compute_sample_weight(estimator.class_weight, y).astype(X.dtype)
        sample_weight = per_class if sample_weight is None else sample_weight * per_class
        if not sample_weight.any():
            raise ValueError("class_weight: gives every sample weight zero")
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes; got 1 class "
            f"({classes[0]!r})"
        )
    codes = encoder.transform(y)
    if len(classes) == 2:
        Y = (2.0 * codes - 1.0)[:, None]
    else:
        Y = np.zeros((X.shape[0], len(classes)))
        Y[np.arange(X.shape[0]), codes] = 1.0
    return classes, np.ascontiguousarray(Y, dtype=X.dtype), sample_weight


class ClassScores:
    """Scores and labels from the fitted one-vs-rest (or +-1) kernel machine."""

    def decision_function(self, X):
        """Scores: shape (n_samples,) for two classes (positive means classes_[1]), else
        (n_samples, n_classes)."""
        out = self._decision(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, X):
        scores = self.decision_function(X)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _copy_target_info(self, other) -> None:
        other.classes_ = self.classes_


class KernelClassifier(ExplainMixin, ClassScores, ClassifierMixin, KernelMachineMixin):
    """Kernel machine classifier: ridge regression on +-1 (binary) or one-hot (multiclass)
    targets, prediction by sign / argmax. Parameters and solvers as
    :class:`~gramfree.KernelRegressor`.

    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as scikit-learn's classifiers take them: each sample's
        weight in the loss is ``sample_weight * class_weight[its class]``. "balanced" uses
        ``n_samples / (n_classes * count of the class)`` (counts without sample_weight, as
        scikit-learn computes them). Classes missing from a dict weigh 1.
    loss : {"squared", "logistic"}, default="squared"
        "squared": ridge regression on the class targets; no probabilities (ridge scores
        are not calibrated, and no calibration is applied: use scikit-learn's
        CalibratedClassifierCV, or the logistic loss). "logistic": kernel logistic
        regression (binary log-loss, or the multinomial cross-entropy for more classes),
        ``sum_i w_i log-loss_i + alpha / 2 ||f||^2``, so ``alpha`` is scikit-learn's
        ``1 / C``; fitted by Newton steps whose systems are solved by preconditioned CG
        over the data (LogisticFalkon's recipe, with a line search;
        :mod:`gramfree.solvers.logistic`). Gives :meth:`predict_proba` and
        :meth:`predict_log_proba`; :meth:`decision_function` returns the logits. Its
        solvers: "direct" (every training point a centre: exact kernel logistic
        regression), "nystrom-pcg" (``n_centers`` or ``centers`` centres) and "auto" (every point up to
        4000 samples, beyond that ``n_centers`` or four times the effective dimension,
        1000 to 10000 centres); ``max_iter`` counts Newton steps (default 100) and ``tol``
        stops them once a step starts within about ``tol`` (relative) of the optimal
        objective.

    Attributes
    ----------
    classes_ : ndarray of the class labels
    centers_, dual_coef_, solver_, n_iter_, loss_curve_, solver_info_, kernel_, fit_time_ :
        as KernelRegressor.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gramfree import KernelClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KernelClassifier(gamma=1e-3, alpha=1e-3).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.95
    True
    """

    _parameter_constraints: dict = {
        **KernelMachineMixin._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
        "loss": [StrOptions({"squared", "logistic"})],
    }

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
        verbose=False,
        class_weight=None,
        loss="squared",
    ):
        super().__init__(
            kernel, gamma=gamma, degree=degree, coef0=coef0, length_scale=length_scale, nu=nu,
            alpha=alpha, solver=solver, n_centers=n_centers, centers=centers, max_iter=max_iter,
            tol=tol, random_state=random_state, n_jobs=n_jobs, device=device,
            kernel_precision=kernel_precision, verbose=verbose,
        )
        self.class_weight = class_weight
        self.loss = loss

    def fit(self, X, y, sample_weight=None):
        """Fit on X (n_samples, n_features) and class labels y (n_samples,), each sample
        weighted by ``sample_weight`` times its class's ``class_weight``."""
        self._validate_params()
        X, y, sample_weight = self._validate_X_y(X, y, sample_weight, y_numeric=False)
        classes, Y, sample_weight = class_targets(self, X, y, sample_weight)
        if self.loss == "logistic":
            fit_logistic(self, X, np.searchsorted(classes, np.ravel(y)), len(classes),
                         sample_weight)
        else:
            self._fit_targets(X, Y, sample_weight)
        self.classes_ = classes
        self._record_center_targets(y)
        return self

    @available_if(lambda self: self.loss == "logistic")
    def predict_proba(self, X):
        """Class probabilities, shape (n_samples, n_classes), columns in ``classes_``
        order (loss="logistic" only): the sigmoid of the logit for two classes, the
        softmax of the logits otherwise."""
        return probabilities(self.decision_function(X))

    @available_if(lambda self: self.loss == "logistic")
    def predict_log_proba(self, X):
        """Logarithms of :meth:`predict_proba`, computed without forming the
        probabilities (exact where they round to 0 or 1)."""
        return probabilities(self.decision_function(X), log=True)
