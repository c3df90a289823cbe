"""KernelClassifier: kernel ridge classification on one-vs-rest targets (square loss, as
Falkon and EigenPro classify), without the n x n matrix."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils._available_if import available_if
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import column_or_1d

from ._base import KernelMachineMixin, check_label_types
from ._logistic import fit_logistic, probabilities
from .explain import ExplainMixin

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self


def check_class_weight(class_weight, classes=None) -> None:
    """A dict ``class_weight`` holds finite, non-negative numbers: scikit-learn multiplies
    them in unchecked, and a negative or NaN one gave a cryptic error from the solver or a
    silently bad model. With ``classes`` (the labels of y), a key that is none of them is
    refused where a class of y is missing from the dict, as scikit-learn refuses it (its
    message names the class that is there: "The classes, [1], are not in class_weight"
    for {0: 2, 7: 3} and labels 0 and 1). A dict that weighs every class of y may hold
    more: a fold or subset of the data without one of its classes (cross-validation of a
    dict for every label of the problem failed on every fold before; a review)."""
    if not isinstance(class_weight, dict):
        return
    if classes is not None:
        known = set(np.asarray(classes).tolist())
        stray = [key for key in class_weight if key not in known]
        if stray and not known.issubset(class_weight):
            raise ValueError(
                f"class_weight: {stray[0]!r} is not a class of y (its classes: "
                f"{sorted(known, key=str)!r}); classes missing from the dict weigh 1"
            )
    for label, value in class_weight.items():
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (numbers.Real, np.floating, np.integer))
            or not math.isfinite(float(value))
            or value < 0
        ):
            raise ValueError(
                f"class_weight: the weight of class {label!r} must be a finite number >= 0, "
                f"got {value!r}"
            )


def class_sample_weight(class_weight, y: np.ndarray, sample_weight) -> np.ndarray:
    """Each sample's class weight. A dict as scikit-learn's ``compute_sample_weight`` reads
    it; "balanced" gives class c the weight ``W / (n_classes W_c)``, W the total sample
    weight and W_c class c's (the counts where no sample_weight is given), as scikit-learn's
    LogisticRegression computes it since 1.7: weights then stand for repeated rows (an
    integer weight of 3 is the row three times), with class_weight or without. A class
    whose rows all weigh zero gets 0 (they take no part in the fit)."""
    if class_weight != "balanced":
        return compute_sample_weight(class_weight, y)
    _, codes = np.unique(y, return_inverse=True)
    w = np.ones(codes.shape[0]) if sample_weight is None else np.asarray(sample_weight, float)
    per_class = np.bincount(codes, weights=w)
    with np.errstate(divide="ignore"):
        balanced = np.where(per_class > 0, per_class.sum() / (per_class.size * per_class), 0.0)
    return balanced[codes]


def class_targets(estimator, X, y, sample_weight):
    """``(classes, Y, sample_weight)`` for a square-loss classifier: +-1 targets (binary)
    or one-hot (multiclass) in X's dtype, and the sample weights times the estimator's
    ``class_weight`` (scikit-learn's definition)."""
    # A column vector is raveled here, with scikit-learn's one DataConversionWarning;
    # LabelEncoder's fit and transform would each warn again.
    y = column_or_1d(y, warn=True)
    check_label_types(y)
    check_classification_targets(y)
    if estimator.class_weight is not None:
        check_class_weight(estimator.class_weight, np.unique(y))
        per_class = class_sample_weight(estimator.class_weight, y, sample_weight)
        sample_weight = per_class if sample_weight is None else sample_weight * per_class
        if not sample_weight.any():
            raise ValueError("class_weight: gives every sample weight zero")
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes; got 1 class "
            f"({classes[:1].tolist()[0]!r})"
        )
    estimator._resolve_kernel(X, sample_weight)  # at the weights the solver sees
    codes = encoder.transform(y)
    if len(classes) == 2:
        Y = (2.0 * codes - 1.0)[:, None]
    else:
        Y = np.zeros((X.shape[0], len(classes)))
        Y[np.arange(X.shape[0]), codes] = 1.0
    return classes, np.ascontiguousarray(Y, dtype=X.dtype), sample_weight


class ClassScores:
    """Scores and labels from the fitted one-vs-rest (or +-1) kernel machine."""

    classes_: np.ndarray  # set by fit

    # The kernel machine's scores (KernelMachineMixin._decision); declared, not defined,
    # so that the mixin's method is the one found after this class in the MRO.
    _decision: Callable[[Any], np.ndarray]

    def decision_function(self, X: ArrayLike) -> Any:
        """Scores of the classes for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Shape (n_samples,) for two classes (positive means ``classes_[1]``), else
            (n_samples, n_classes), columns in ``classes_`` order. With the logistic loss,
            the logits.

        Examples
        --------
        >>> from sklearn.datasets import load_breast_cancer
        >>> from gramfree import KernelClassifier
        >>> X, y = load_breast_cancer(return_X_y=True)
        >>> X = X / X.max(axis=0)
        >>> clf = KernelClassifier(alpha=1e-3).fit(X[:300], y[:300])
        >>> scores = clf.decision_function(X[300:])
        >>> scores.shape
        (269,)
        >>> bool((clf.predict(X[300:]) == (scores > 0)).all())
        True
        """
        from .. import _dask

        out = _dask.decision(self, X) if _dask.is_dask_collection(X) else self._decision(X)
        return out[:, 0] if len(self.classes_) == 2 else out

    def predict(self, X: ArrayLike) -> Any:
        """Predicted class labels for X: the sign (two classes) or argmax of the scores.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Labels from ``classes_``.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from gramfree import KernelClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = KernelClassifier(gamma=1e-3, alpha=1e-3).fit(X[:500], y[:500])
        >>> clf.predict(X[500:505]).shape
        (5,)
        >>> bool((clf.predict(X[500:]) == y[500:]).mean() > 0.9)
        True
        """
        from .. import _dask

        scores = self.decision_function(X)
        if _dask.is_dask_collection(scores):
            return _dask.labels(self.classes_, scores)
        if len(self.classes_) == 2:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def _copy_target_info(self, other) -> None:
        other.classes_ = self.classes_


def _loss_fitted_with(estimator) -> str:
    """The loss a fitted KernelClassifier was trained with, whatever ``loss`` says now."""
    recorded = getattr(estimator, "_fitted_loss", None)
    if recorded is not None:
        return recorded
    # Not recorded by fit: a model loaded from a file, or unpickled from an older gramfree.
    # Only the logistic loss's Newton steps give solver_ "newton-pcg"; a projection
    # (compress) keeps no trace of its loss, so the saved parameter is all there is.
    if estimator.solver_ == "projection":
        return estimator.loss
    return "logistic" if estimator.solver_ == "newton-pcg" else "squared"


def _has_probabilities(estimator) -> bool:
    # Fitted: the fitted loss decides, since a softmax of ridge scores (a squared-loss
    # model given loss="logistic" without refitting) is no probability. Unfitted: the
    # parameter, as scikit-learn does, so that meta-estimators can ask hasattr before fit.
    if not hasattr(estimator, "dual_coef_"):
        if estimator.loss == "logistic":
            return True
        why = f"{type(estimator).__name__}(loss={estimator.loss!r}) fits no probabilities"
    elif _loss_fitted_with(estimator) == "logistic":
        return True
    else:
        why = "this model was fitted with the squared loss, whose scores are no probabilities"
    # scikit-learn's available_if chains this as the cause of its bare "has no attribute"
    # (hasattr stays False): the reason, and what to do instead.
    raise AttributeError(
        f"predict_proba: {why}; fit with loss='logistic' (kernel logistic regression), or "
        "calibrate the scores with sklearn.calibration.CalibratedClassifierCV"
    )


class ClassProbabilities:
    """``predict_proba`` and ``predict_log_proba`` of a model fitted with the logistic
    loss (:class:`KernelClassifier`, :class:`~gramfree.KernelClassifierCV`)."""

    decision_function: Callable[[Any], Any]  # ClassScores'

    @available_if(_has_probabilities)
    def predict_proba(self, X: ArrayLike) -> Any:
        """Class probabilities for X (a model fitted with ``loss="logistic"`` only).

        The sigmoid of the logit for two classes, the softmax of the logits otherwise.
        A fitted model has this method if it was fitted with the logistic loss, whatever
        ``loss`` was set to since (the scores of a squared-loss fit are no logits); an
        unfitted one if ``loss="logistic"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in ``classes_`` order; each row sums to 1.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import KernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelClassifier(loss="logistic", alpha=1e-2).fit(X, y)
        >>> proba = clf.predict_proba(X[:3])
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((3, 3), True)
        >>> clf.classes_[proba.argmax(axis=1)]
        array([0, 0, 0])
        """
        from .. import _dask

        if _dask.is_dask_collection(X):  # a dask array, block by block
            return _dask.probabilities(self.decision_function(X))
        return probabilities(self.decision_function(X))

    @available_if(_has_probabilities)
    def predict_log_proba(self, X: ArrayLike) -> Any:
        """Logarithms of :meth:`predict_proba` (a model fitted with ``loss="logistic"`` only).

        Computed without forming the probabilities, so exact where they round to 0 or 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probabilities, columns in ``classes_`` order.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import KernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = KernelClassifier(loss="logistic", alpha=1e-2).fit(X, y)
        >>> log_proba = clf.predict_log_proba(X[:3])
        >>> bool(np.allclose(np.exp(log_proba), clf.predict_proba(X[:3])))
        True
        """
        from .. import _dask

        if _dask.is_dask_collection(X):
            return _dask.probabilities(self.decision_function(X), log=True)
        return probabilities(self.decision_function(X), log=True)


class KernelClassifier(
    ExplainMixin, ClassScores, ClassProbabilities, ClassifierMixin, KernelMachineMixin
):
    """Kernel machine classifier trained without ever forming the kernel matrix.

    With ``loss="squared"`` (the default): ridge regression on +-1 (binary) or one-hot
    (multiclass) targets, prediction by sign / argmax, as Falkon and EigenPro classify.
    With ``loss="logistic"``: kernel logistic regression, with probabilities. The model is
    ``f = sum_j coef_j k(c_j, .)`` over centres ``c_j``; ``solver`` picks how it is fitted,
    as in :class:`~gramfree.KernelRegressor` (``"auto"``: a cost model on this machine's
    measured rates chooses; ``solver_`` and ``solver_info_["auto"]`` say what was chosen
    and why).

    Parameters
    ----------
    kernel : str or gramfree.kernels.Kernel, default="rbf"
        "rbf", "laplacian", "matern", "poly", "linear", "arccos", or a kernel object (then
        gamma, degree, coef0, length_scale and nu are ignored).
    gamma : float or "scale", default=None
        RBF/Laplacian/polynomial scale; None means 1 / n_features (KernelRidge's and
        Nystroem's default). ``"scale"`` is SVC's default, ``1 / (n_features * X.var())``
        over every value of the X given to fit (1.0 for constant X), with rows counted by
        their weight (sample_weight, times class_weight for a classifier: a weight of k is
        the row repeated k times); resolved once, kept in ``kernel_`` for prediction.
    degree : int, default=3
        Degree of the polynomial kernel.
    coef0 : float, default=1.0
        Constant term of the polynomial kernel, at least 0 (a negative one makes it indefinite;
        fit refuses it).
    length_scale : float, default=1.0
        Length scale of the Matern kernel.
    nu : {0.5, 1.5, 2.5, inf, "inf"}, default=1.5
        Smoothness of the Matern kernel; ``numpy.inf`` or ``"inf"`` is its Gaussian limit.
    alpha : float, default=1.0
        Regularisation strength: the ridge penalty for the squared loss; for the logistic
        loss, ``alpha`` is scikit-learn's ``1 / C`` (see ``loss``).
    solver : {"auto", "direct", "nystrom-pcg", "nystrom-direct", "eigenpro", "pcg"}, \
default="auto"
        How the model is fitted, as in :class:`~gramfree.KernelRegressor`: "direct" (exact
        Cholesky, small n), "nystrom-pcg" (Falkon: centres and preconditioned CG),
        "nystrom-direct" (the Nystrom model solved exactly after one pass), "eigenpro"
        (preconditioned SGD), "pcg" (direct's exact model by Gram-free conjugate
        gradients), or "auto" (a cost model chooses). ``loss="logistic"`` takes
        "auto", "direct" and "nystrom-pcg" only.
    n_centers : int or float, default=None
        Centres of the model (an integer, or a fraction of n_samples in (0, 1]): with
        ``solver="auto"``, setting it means Nystrom on that many centres; the nystrom
        solvers without it grow the centres until the predictions settle; eigenpro uses
        all training points unless set (then EigenPro 3); "direct" and "pcg" use all of
        them and refuse fewer. The fitted model's size and prediction cost depend on this
        number only. Drawn centres are rows of positive weight: where fewer rows have any,
        each is a centre and the model has that many (``n_centers_``).
    centers : array-like, default=None
        The model's centres themselves, in place of a random draw of ``n_centers`` (which
        must then be None): points of shape (m, n_features), training rows or not (e.g.
        KMeans centroids), or a 1-d array of distinct integer row indices into X. "direct"
        and "pcg" refuse them. Given as indices, ``centers_`` is ``X[centers]`` and
        ``center_indices_`` is ``centers``; given as points, ``center_indices_`` and
        ``center_targets_`` are not set. The array is copied, never modified. A saved model
        keeps its centres (``centers_``) but stores this parameter as None.
    max_iter : int, default=None
        CG iterations (nystrom-pcg and pcg, default 100), epochs (eigenpro, default 30), or Newton
        steps (``loss="logistic"``, default 100).
    tol : float, default=1e-4
        Stopping tolerance: the relative residual of the preconditioned system
        (nystrom-pcg), of ``(K + alpha I) c = y`` (pcg, confirmed by an exact pass) or of
        ``(K + alpha I) c = y`` or the objective (eigenpro; see
        :class:`~gramfree.KernelRegressor`), or, for ``loss="logistic"``, the relative
        distance to the optimal objective at which Newton steps stop.
    random_state : int, RandomState instance or None, default=None
        Centre selection, EigenPro's subsample and batch order, pcg's subsample.
    n_jobs : int, default=None
        Threads of every pool a fit uses: the native operators' (OpenMP) and BLAS/LAPACK's
        (limited through threadpoolctl for the fit's duration; fits overlapping in several
        Python threads share BLAS's process-wide count, as in
        :class:`~gramfree.KernelRegressor`); prediction runs the native operators only. -1 means all cores, -2 all but one, and so on. None: the operators
        use OpenMP's default (all cores, or ``OMP_NUM_THREADS``) and BLAS is left as it is.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the kernel products run (:mod:`gramfree.device`); the solvers' small dense
        algebra stays on the CPU.
    kernel_precision : {None, "float32", "float64"}, default=None
        Precision of the kernel products in the iterative solvers: None means the data's
        dtype. "float32" on float64 data halves the products' cost; the solvers' state and
        the fitted model stay float64.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified by class), score
        the model on them after every iteration (CG iteration, EigenPro epoch or Newton
        step; accuracy, or for ``loss="logistic"`` minus the log-loss, weighted by
        sample_weight when given), stop once ``n_iter_no_change`` iterations in a row did not improve the best score
        by more than ``tol``, and keep the best-scoring iterate. For the iterative solvers
        only: with solver="auto" it fits by nystrom-pcg (``n_centers``, ``centers``, or the
        number of centres auto starts from); "direct" and "nystrom-direct" refuse it
        with the square loss (the logistic loss's Newton steps, "direct" included, can
        always be stopped).
        EigenPro's epochs regularise (stopping them early can beat a fit with too small an
        alpha); Nystrom-PCG's preconditioned iterates do not, so there it saves iterations
        and alpha stays the regulariser.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training rows held out for early stopping; the model never fits them.
    n_iter_no_change : int, default=10
        Iterations without improvement after which early stopping stops.
    warm_start : bool, default=False
        Start from the previous fit's centres and coefficients instead of from zero: for
        the iterative solvers (nystrom-pcg, pcg, eigenpro, the logistic loss's Newton steps;
        "auto" continues the previous fit's solver when it was one of them); the previous
        centres are kept (``n_centers`` and ``centers`` are not read again). Continuing
        with a larger ``max_iter`` or smaller ``tol`` after a fit that stopped, or refitting
        on changed targets or weights, costs only the iterations still needed. The exact
        solvers compute the same model either way and start afresh. y must have the
        previous fit's classes.
    verbose : bool or int, default=False
        Progress with the objective (tqdm when installed, otherwise lines through the
        ``"gramfree"`` logger, which print to stderr unless logging is configured).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, as scikit-learn's classifiers take them: each sample's
        weight in the loss is ``sample_weight * class_weight[its class]``. "balanced" uses
        ``W / (n_classes * W_c)``, with W the samples' total weight and W_c its class's
        (the counts without sample_weight), as scikit-learn's LogisticRegression computes it
        since 1.7, so that a weight still stands for repeated rows. Classes missing from
        a dict weigh 1; a key that is not a class of y is refused (ValueError).
    loss : {"squared", "logistic"}, default="squared"
        "squared": ridge regression on the class targets; no probabilities (ridge scores
        are not calibrated, and no calibration is applied: use scikit-learn's
        CalibratedClassifierCV, or the logistic loss). "logistic": kernel logistic
        regression (binary log-loss, or the multinomial cross-entropy for more classes),
        ``sum_i w_i log-loss_i + alpha / 2 ||h||^2`` for the logits ``f = h + b``, with an
        unpenalised intercept ``b`` per class (``intercept_``), as LogisticRegression
        fits it, so ``alpha`` is scikit-learn's ``1 / C``; fitted by Newton steps whose systems are solved by preconditioned CG
        over the data (LogisticFalkon's recipe, with a line search;
        :mod:`gramfree.solvers.logistic`). Gives :meth:`predict_proba` and
        :meth:`predict_log_proba`; :meth:`decision_function` returns the logits. Its
        solvers: "direct" (every training point a centre: exact kernel logistic
        regression), "nystrom-pcg" (``n_centers`` or ``centers`` centres) and "auto" (every point up to
        4000 samples, beyond that ``n_centers`` or four times the effective dimension,
        1000 to 10000 centres); ``max_iter`` counts Newton steps (default 100) and ``tol``
        stops them once a step starts within about ``tol`` (relative) of the optimal
        objective; with ``alpha > 0`` a fit that ends by those tests (not by early
        stopping) has the duality gap certify it within ``2 tol`` of the optimal objective
        (``solver_info_["duality_gap"]``, relative to the objective).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, in the order of the columns of :meth:`decision_function` and
        :meth:`predict_proba`.
    centers_ : ndarray of shape (n_centers, n_features)
        The model's centres.
    center_indices_ : ndarray of shape (n_centers,) of int
        The training rows that are the centres; not set when ``centers`` was given as
        points.
    center_targets_ : ndarray of shape (n_centers,)
        The centres' training labels (read by :meth:`explain`); likewise.
    dual_coef_ : ndarray of shape (n_centers, 1) or (n_centers, n_classes)
        Coefficients of the centres: one column for two classes, else one per class.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        ``loss="logistic"`` only: the unpenalised intercept of each logit (one for two
        classes; for more, only their differences matter and their sum is zero), which
        :meth:`decision_function` adds to the centres' sum.
    solver_ : str
        The solver used.
    n_iter_ : int
        Iterations, epochs or Newton steps run, including those of a fit a solver ran
        and discarded (nystrom-pcg's retries: ``solver_info_["discarded_iterations"]``).
    loss_curve_ : list of float
        Training objective per iteration / epoch / Newton step of the returned fit.
    solver_info_ : dict
        The solver's choices (batch size, step size, jitter, ...); for
        ``loss="logistic"`` also ``"step_seconds"``, the solver's seconds at the end of
        each Newton step, beside ``loss_curve_`` (empty where no step was taken).
    kernel_ : gramfree.kernels.Kernel
        The kernel used.
    fit_time_ : float
        Seconds the fit took.
    validation_scores_ : list of float
        Held-out accuracy per iteration, or minus the held-out log-loss for
        ``loss="logistic"`` (``early_stopping`` only).
    best_validation_score_ : float
        The returned model's: the best of them, or a warm start's own held-out score where
        no iteration beat it (the model is then the start).

    See Also
    --------
    KernelRegressor : the same model for regression.
    KernelClassifierCV : chooses ``alpha`` (and more) by cross-validation.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from gramfree import KernelClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KernelClassifier(gamma=1e-3, alpha=1e-3).fit(X[:1000], y[:1000])
    >>> clf.score(X[1000:], y[1000:]) > 0.95
    True
    >>> clf.predict(X[1000:1005]).shape
    (5,)

    The logistic loss gives class probabilities:

    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
    >>> clf = KernelClassifier(loss="logistic", gamma=0.01, alpha=1e-2).fit(X[:400], y[:400])
    >>> proba = clf.predict_proba(X[400:])
    >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
    ((169, 2), True)
    >>> bool(clf.score(X[400:], y[400:]) > 0.9)
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
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        warm_start=False,
        verbose=False,
        class_weight=None,
        loss="squared",
    ):
        super().__init__(
            kernel,
            gamma=gamma,
            degree=degree,
            coef0=coef0,
            length_scale=length_scale,
            nu=nu,
            alpha=alpha,
            solver=solver,
            n_centers=n_centers,
            centers=centers,
            max_iter=max_iter,
            tol=tol,
            random_state=random_state,
            n_jobs=n_jobs,
            device=device,
            kernel_precision=kernel_precision,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            warm_start=warm_start,
            verbose=verbose,
        )
        self.class_weight = class_weight
        self.loss = loss

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the classifier on X and class labels y.

        Each sample is weighted by ``sample_weight`` times its class's ``class_weight``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (float64 or float32; the model keeps the dtype). A row-chunked
            dask array (with y and sample_weight in memory or dask) is fitted by
            Nystrom-PCG on the dask workers: :mod:`gramfree._dask`.
        y : array-like of shape (n_samples,)
            Class labels: at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights of the samples in the loss; None weighs each 1.

        Returns
        -------
        self : KernelClassifier
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_digits
        >>> from gramfree import KernelClassifier
        >>> X, y = load_digits(return_X_y=True)
        >>> clf = KernelClassifier(gamma=1e-3, alpha=1e-3).fit(X[:500], y[:500])
        >>> clf.classes_
        array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
        """
        self._validate_params()
        from .. import _dask

        if _dask.is_dask_collection(X, y, sample_weight):
            _dask.fit(self, X, y, sample_weight, classify=True)  # the squared loss only
            self._fitted_loss = self.loss
            return self
        X, y, sample_weight = self._validate_X_y(X, y, sample_weight, y_numeric=False)
        classes, Y, sample_weight = class_targets(self, X, y, sample_weight)
        if (
            self.warm_start
            and hasattr(self, "dual_coef_")
            and not np.array_equal(classes, self.classes_)
        ):
            raise ValueError(
                f"warm_start: y has classes {classes.tolist()}, the previous fit "
                f"{self.classes_.tolist()}; the coefficients belong to those. Fit with "
                "warm_start=False"
            )
        if self.loss == "logistic":
            fit_logistic(
                self, X, np.searchsorted(classes, np.ravel(y)), len(classes), sample_weight
            )
        else:
            self._fit_targets(X, Y, sample_weight)
        self.classes_ = classes
        self._fitted_loss = self.loss
        self._record_center_targets(y)
        return self

    def _copy_target_info(self, other) -> None:
        super()._copy_target_info(other)
        # compress's projection keeps this model's function (its logits, for the logistic
        # loss) under solver_ "projection", which no longer tells which loss that was.
        other._fitted_loss = _loss_fitted_with(self)
