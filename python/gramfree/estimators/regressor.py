"""KernelRegressor: scikit-learn's KernelRidge without the n x n matrix."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import RegressorMixin

from ._base import KernelMachineMixin
from .explain import ExplainMixin

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self


class KernelRegressor(ExplainMixin, RegressorMixin, KernelMachineMixin):
    """Kernel ridge regression trained without ever forming the kernel matrix.

    Minimises ``sum_i w_i (f(x_i) - y_i)^2 + alpha ||f||^2`` over functions
    ``f = sum_j coef_j k(c_j, .)`` (scikit-learn's KernelRidge objective). ``solver``
    picks how: ``"direct"`` (exact Cholesky, small n), ``"nystrom-pcg"`` (Falkon: centres
    and preconditioned CG), ``"nystrom-direct"`` (the same Nystrom model solved exactly
    after one pass forming ``K_nM^T K_nM``: cheaper for few centres and many rows),
    ``"eigenpro"`` (preconditioned SGD, EigenPro 2; EigenPro 3 on
    fixed centres when ``n_centers`` is set), ``"pcg"`` (the exact model of ``"direct"``,
    every training point a centre, by conjugate gradients with a Nystrom + diagonal
    preconditioner on a subsample of s = 2000 rows: Gram-free, memory O(n s), one pass over
    the n x n kernel per iteration), or ``"auto"``: a cost model on this
    machine's measured rates chooses among them (:mod:`gramfree.solvers.auto`): direct up
    to 4000 samples; beyond, the effective dimension of the kernel at this alpha, estimated
    from a subsample's spectrum, decides whether Nystrom can be close to exact. If not (a
    narrow kernel), an exact method on all points is used: direct where its n x n matrix
    fits, else pcg (which the cost model also prefers where it estimates pcg four times
    cheaper);
    if so, Nystrom (PCG or one-pass, the cheaper by the model at each size) with centres
    doubled until the predictions settle. ``solver_`` and
    ``solver_info_["auto"]`` (``verbose`` prints it) say what was chosen and why.

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
        Degree of the polynomial kernel (scikit-learn's default).
    coef0 : float, default=1.0
        Constant term of the polynomial kernel, at least 0 (a negative one makes it indefinite;
        fit refuses it).
    length_scale : float, default=1.0
        Length scale of the Matern kernel.
    nu : {0.5, 1.5, 2.5, inf, "inf"}, default=1.5
        Smoothness of the Matern kernel; ``numpy.inf`` or ``"inf"`` is its Gaussian limit.
    alpha : float, default=1.0
        Ridge strength, as in KernelRidge.
    solver : {"auto", "direct", "nystrom-pcg", "nystrom-direct", "eigenpro", "pcg"}, \
default="auto"
        How the model is fitted (see above).
    n_centers : int or float, default=None
        Centres of the model (an integer, or a fraction of n_samples in (0, 1]): with
        ``solver="auto"``, setting it means Nystrom on that many centres (nystrom-pcg or
        nystrom-direct, whichever the cost model estimates cheaper); the nystrom solvers
        without it grow the centres from ``max(1000, 4 d_eff)`` until the predictions
        settle (as auto does, :mod:`gramfree.solvers.auto`); eigenpro uses all training
        points unless set (then EigenPro 3); "direct" and "pcg" use all of them and refuse
        fewer.
        The fitted model's size and prediction cost depend on this number only. Drawn
        centres are rows of positive ``sample_weight``: where fewer rows have any, each
        is a centre and the model has that many (``n_centers_``).
    centers : array-like, default=None
        The model's centres themselves, in place of a random draw of ``n_centers`` (which
        must then be None): points of shape (m, n_features), training rows or not (e.g.
        KMeans centroids), or a 1-d array of distinct integer row indices into X. Used by
        "auto" (then the cheaper Nystrom solver), "nystrom-pcg", "nystrom-direct" and
        "eigenpro" (EigenPro 3); "direct" and "pcg" refuse them. Given as indices,
        ``centers_`` is ``X[centers]`` and ``center_indices_`` is ``centers``; given as
        points, the centres are no training rows: ``center_indices_`` and ``center_targets_`` are not set, and
        :meth:`explain` counts centres and shows no labels. The array is copied, never
        modified. A saved model keeps its centres (``centers_``) but stores this parameter
        as None.
    max_iter : int, default=None
        CG iterations (nystrom-pcg and pcg, default 100) or epochs (eigenpro, default 30).
    tol : float, default=1e-4
        nystrom-pcg: relative residual of the preconditioned system (nystrom-direct solves
        exactly and ignores max_iter and tol); eigenpro on all
        points: relative residual of ``(K + alpha I) c = y``, or an epoch that changes the
        objective by less than tol^2 relative, in either case (and out of epochs or of
        step halvings) where a certificate, as pcg's, puts the objective within ``10 *
        tol`` of the optimum's; eigenpro on fixed centres: relative change
        of the objective over an epoch, where a bound on the gradient leaves the objective
        at most ``10 * tol`` (relative) above the optimum on the centres
        (``solver_info_["gap_bound"]``; else a ConvergenceWarning): the fitted values may
        then differ from the optimum's by up to ``sqrt(10 * tol)`` of the targets' scale
        (3% at the default tol; a review found 1.4%), so lower tol for closer predictions.
        EigenPro ends every epoch with the best
        combination of its move and the two before (a subspace step that needs no kernel
        pass) and, on all points, reduces its batches' variance with each epoch's exact
        residuals (:mod:`gramfree.solvers.eigenpro`); an epoch that increases the objective
        halves the step and keeps only what the subspace step still gains (``solver_info_``:
        ``rejected_epochs``, ``step_halvings``); the model returned is the best iterate.
        pcg: relative
        residual ``|y - (K + alpha I) c| / |y|`` (weighted: ``W^1/2``) of every output
        (where an offset dominates ``|y|``, relative to twice ``|y - mean(y)|``, for
        nystrom-pcg and eigenpro too: kernel ridge has no intercept),
        confirmed by one exact pass (the running one drifts with float32 products; a
        restart that does not halve it stops the fit with a ConvergenceWarning); its
        ``loss_curve_`` is the ridge objective, which CG does not lower at every step (it
        minimises the system's energy): a fit stopped short returns its best iterate by
        that objective.
    random_state : int, RandomState instance or None, default=None
        Centre selection, EigenPro's subsample and batch order, pcg's subsample.
    n_jobs : int, default=None
        Threads of every pool a fit uses: the native operators' (OpenMP) and BLAS/LAPACK's
        (the solvers' Cholesky, triangular solves and eigendecompositions, limited through
        threadpoolctl for the fit's duration; BLAS's count is one per process, so while
        fits overlap in several Python threads the latest one's holds for all, and the
        count from before the first is restored after the last); prediction runs the
        native operators only.
        -1 means all cores, -2 all but one, and so on. None: the operators use OpenMP's
        default (all cores, or ``OMP_NUM_THREADS``) and BLAS is left as it is (its own
        default, or an enclosing ``threadpoolctl.threadpool_limits``).
    kernel_precision : {None, "float32", "float64"}, default=None
        Precision of the kernel products in the iterative solvers (nystrom-pcg, pcg,
        eigenpro, auto's probes): None means the data's dtype. "float32" on float64 data halves the
        products' cost; the solvers' state, the preconditioner and the fitted model stay
        float64, and the real-data suite measured the accuracy cost (README).
        nystrom-direct computes its kernel values in this precision and their Gram in
        float64 (checked, with a float64 pass as fallback); direct ignores it.
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the kernel products run (:mod:`gramfree.device`); the solvers' small dense
        algebra (Cholesky of K_MM, eigensystems) stays on the CPU.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (at random), score the model on
        them after every iteration (CG iteration, EigenPro epoch or Newton step; R^2, weighted by sample_weight when given),
        stop once ``n_iter_no_change`` iterations in a row did not improve the best score
        by more than ``tol``, and keep the best-scoring iterate. For the iterative solvers
        only: with solver="auto" it fits by nystrom-pcg (``n_centers``, ``centers``, or the
        number of centres auto starts from); "direct" and "nystrom-direct" refuse it.
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
        previous fit's number of target columns.
    verbose : bool or int, default=False
        Progress with the objective (tqdm when installed, otherwise lines through the
        ``"gramfree"`` logger, which print to stderr unless logging is configured).

    Attributes
    ----------
    centers_ : ndarray (n_centers, n_features)
    center_indices_ : ndarray (n_centers,) of int, the training rows that are the centres;
        not set when ``centers`` was given as points
    center_targets_ : the centres' training targets (read by :meth:`explain`); likewise
    dual_coef_ : ndarray (n_centers, n_targets)
    solver_ : str, the solver used
    n_iter_ : int, iterations run, including those of a fit the solver ran and discarded
        (nystrom-pcg's retries: ``solver_info_["discarded_iterations"]``)
    loss_curve_ : list of float, training objective per iteration / epoch of the returned fit
    solver_info_ : dict, the solver's choices (batch size, step size, jitter, ...)
    kernel_ : Kernel
    fit_time_ : float, seconds
    validation_scores_ : list of float, held-out R^2 per iteration (``early_stopping`` only)
    best_validation_score_ : float, the returned model's: the best of them, or a warm
        start's own score where no iteration beat it (then the model is the start)

    Examples
    --------
    >>> import numpy as np
    >>> from gramfree import KernelRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 3)); y = np.sin(X[:, 0])
    >>> model = KernelRegressor(alpha=1e-3, gamma=0.5).fit(X, y)
    >>> round(model.score(X, y), 3) > 0.99
    True
    """

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model on X and y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points (float64 or float32; the model keeps the dtype). A row-chunked
            dask array (with y and sample_weight in memory or dask) is fitted by
            Nystrom-PCG on the dask workers: :mod:`gramfree._dask`.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights ``w_i`` of the samples in the loss; None weighs each 1.

        Returns
        -------
        self : KernelRegressor
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import KernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = KernelRegressor(alpha=1e-2, gamma=0.5).fit(X, y)
        >>> model.solver_, model.n_centers_
        ('direct', 442)
        """
        self._validate_params()
        from .. import _dask

        if _dask.is_dask_collection(X, y, sample_weight):
            return _dask.fit(self, X, y, sample_weight, classify=False)
        X, y, sample_weight = self._validate_X_y(X, y, sample_weight, y_numeric=True)
        y = np.asarray(y)
        Y = np.ascontiguousarray(y.reshape(X.shape[0], -1), dtype=X.dtype)
        self._fit_targets(X, Y, sample_weight)
        self._y_1d = y.ndim == 1
        self._record_center_targets(y)
        return self

    def predict(self, X: ArrayLike) -> Any:
        """Predict targets for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to predict at.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            Predictions, with the shape of the ``y`` the model was fitted on.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import KernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> model = KernelRegressor(alpha=1e-2, gamma=0.5).fit(X[:300], y[:300])
        >>> model.predict(X[300:]).shape
        (142,)
        >>> bool(model.score(X[300:], y[300:]) > 0.3)
        True
        """
        from .. import _dask

        out = _dask.decision(self, X) if _dask.is_dask_collection(X) else self._decision(X)
        return out[:, 0] if self._y_1d else out

    def _copy_target_info(self, other) -> None:
        other._y_1d = self._y_1d

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags
