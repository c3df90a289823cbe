"""PathKernelRegressor and PathKernelClassifier: a multilayer perceptron trained by plain
gradient descent in the native trainer, exposed as the kernel machine it is.

Why plain gradient descent only: the exact decomposition splits every step's update
``Delta_t = -lr * grad L_batch(w_t)`` into one share per training example. Momentum would
carry earlier gradients into later steps and adaptive steps (Adam, RMSprop) rescale each
coordinate by a running history; both break "this step moved the weights along these
examples' gradients" and with it the kernel-machine form, so they are not offered.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import log_expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    check_array,
    check_is_fitted,
    validate_data,
)

from .. import _core
from .._log import caller_stacklevel, say, verbose_output
from .._params import check_number_params
from .._threads import _blas_libraries, _blas_limit
from ..estimators._base import check_label_types, check_numeric_targets
from ..operators import _n_threads
from ..solvers._common import Progress, memory_bytes
from .explain import Explanation, PathDecomposition
from .explain import top_k as _top_k_rows
from .network import ACTIVATIONS, Network
from .step_size import AUTO_HALVINGS, auto_learning_rate

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self

# Queries decomposed per native call by influence(): bounds what a block holds in memory,
# about three (q, n, k) arrays (the contributions and the explained terms made from them)
# beside decompose's own working block: sized by one, 20000 queries of a 4000-row model
# peaked at 779 MiB for this 256 MiB (a review).
_INFLUENCE_BLOCK_BYTES = 256 << 20
_INFLUENCE_BLOCKS_HELD = 3
# Replay on the machine and SIMD level of the fit reproduces the weights bit for bit (gap
# 0); another level's products differ by ~1e-13 and a long or unstable training amplifies
# that. Beyond this gap, relative to the largest weight, the decomposition is of a
# visibly different network and decompose warns.
REPLAY_TOLERANCE = 1e-9
# explain(X, decomposition=dec) compares dec.output with the network's forward pass on X,
# relative to max |output|. A decomposition of this model's X has the fitted network's
# output bit for bit at the fit's SIMD level, ~5e-16 apart replayed at another (measured:
# 2000 steps, AVX2 fit, scalar replay); another model's or other queries' outputs differ at
# the level of the outputs themselves. 1e-8 leaves room for a replay just inside
# REPLAY_TOLERANCE (a weight change of 1e-9 moves the outputs by about as much, times the
# network's sensitivity).
_DECOMPOSITION_RTOL = 1e-8


def _inexact_advice(nodes: int | None) -> str:
    """What makes a decomposition exact, for one made with ``nodes`` quadrature nodes."""
    if nodes == 1:
        return (
            "quadrature=1 is TracIn's first-order approximation; a larger quadrature makes "
            "them exact where the training path is smooth"
        )
    if nodes is None or nodes < 64:
        return (
            "a larger quadrature (up to 64) resolves steps along which the network changes "
            "fast, and a smaller learning_rate steps where the training loss jumped, or "
            "where queries far outside the training data's range saturate the units"
        )
    return (
        "even the largest quadrature does not resolve this training path (steps where the "
        "training loss jumped: a learning_rate near divergence; or queries far outside the "
        "training data's range, which saturate the units); fit with a smaller learning_rate"
    )


class ReplayMismatchWarning(UserWarning):
    """The replayed training did not end at the fitted weights (see REPLAY_TOLERANCE)."""


def _check_feature_names_of(estimator, A, name: str) -> None:
    """scikit-learn's feature-name check of a second query array ``A``, its warnings and
    errors naming ``name``: they say "X" whatever the argument (path_kernel(X, Y) warned
    that X lacked the feature names Y lacked; a review). Its two warnings are said here
    in its words, not caught from it and reworded: catching warnings swaps the warnings
    module's process-wide state, which calls from several threads corrupt (a review of
    the same pattern in KernelRegressorCV)."""
    from sklearn.utils.validation import _check_feature_names, _get_feature_names

    fitted = getattr(estimator, "feature_names_in_", None)
    given = _get_feature_names(A)
    owner = type(estimator).__name__
    if given is not None and fitted is None:
        warnings.warn(
            f"{name} has feature names, but {owner} was fitted without feature names",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    elif given is None and fitted is not None:
        warnings.warn(
            f"{name} does not have valid feature names, but {owner} was fitted with feature names",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )
    elif given is not None:  # both named: scikit-learn's check raises, never warns
        try:
            _check_feature_names(estimator, A, reset=False)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None


def _check_checkpoint_memory(checkpoint_every: int | None, n_steps: int, n_params: int) -> None:
    """ValueError naming n_steps when its loss curve cannot be held (the trainer reserves
    it before the first step: n_steps=10**12 was a bare std::bad_alloc MemoryError; a
    review), or checkpoint_every when its checkpoints cannot: they were allocated step by
    step and failed as std::bad_alloc after the training's time was spent (a review:
    200000 steps of 24001 weights, 38 GB, after 49 s). Counted twice: the trainer's copies
    and the array returned."""
    room = memory_bytes()
    curve = 2.0 * int(n_steps) * 8.0
    if curve > room:
        raise ValueError(
            f"n_steps={n_steps}: its loss curve alone needs {curve / 2**30:.3g} GiB, more "
            f"than the {room / 2**30:.3g} GiB this process may use; take fewer steps"
        )
    if not checkpoint_every:
        return
    count = (int(n_steps) - 1) // int(checkpoint_every)
    need = 2.0 * count * n_params * 8.0
    if need > room:
        raise ValueError(
            f"checkpoint_every={checkpoint_every}: {count} checkpoints of the {n_params} "
            f"weights need {need / 2**30:.3g} GiB, more than the {room / 2**30:.3g} GiB this "
            "process may use; take a larger checkpoint_every, or None"
        )


def _check_decay_step(
    learning_rate: float, alpha: float, batch: int, sample_weight: np.ndarray | None, n: int
) -> None:
    """ValueError when the penalty's own step makes gradient descent diverge.

    The trainer's step is ``W -= lr / (B wbar) (sum_i w_i grad_i + alpha W)`` (``wbar``
    the weights' mean: full batch, weights equal repeated rows), so the penalty alone
    multiplies W by ``1 - lr alpha / (B wbar)`` per step: beyond 2 the weights grow without
    bound whatever the data. Tiny sample weights (a mean of 1e-263 from a hypothesis test)
    reach it as surely as a huge alpha."""
    mean, mass = _check_weight_mass(batch, sample_weight, n)
    if not 0.0 < learning_rate / mass < math.inf:
        by = f"the batch of {batch} rows" + (
            f" times the mean sample weight {mean:.3g}" if sample_weight is not None else ""
        )
        raise ValueError(
            f"learning_rate={learning_rate:.3g} divided by {by} is outside float64's range "
            "(every step would be zero or infinite): change learning_rate"
            + (", or rescale the weights" if sample_weight is not None else "")
        )
    factor = learning_rate * alpha / mass if alpha > 0 else 0.0
    if factor > 2.0:
        weights = (
            f" and sample_weight (mean {np.mean(sample_weight):.3g}; the step is divided by "
            "batch_size times the mean weight)"
            if sample_weight is not None
            else ""
        )
        raise ValueError(
            f"learning_rate * alpha / (batch_size * mean sample weight) = {factor:.3g} > 2: "
            f"the penalty alone makes gradient descent diverge; lower learning_rate or alpha"
            f"{', or scale the weights up' if sample_weight is not None else ''} "
            f"(learning_rate={learning_rate:g}, alpha={alpha:g}, batch_size={batch}{weights})"
        )


def _check_weight_mass(batch: int, sample_weight: np.ndarray | None, n: int) -> tuple[float, float]:
    """(mean weight, batch times it): ValueError naming sample_weight where that mass,
    which divides every step, overflows or is below float64's normal numbers. Checked
    before the learning rate against it (5e-324 had been blamed on sample_weight, not
    given; reviews), and before learning_rate="auto" builds a step on it."""
    mean = 1.0 if sample_weight is None else float(np.sum(sample_weight) / n)
    mass = float(batch) * mean
    if not (math.isfinite(mass) and mass >= np.finfo(np.float64).tiny):
        raise ValueError(
            f"sample_weight: the mean weight {mean:.3g} times the batch of {batch} rows "
            "divides every step; it must be a positive number that neither overflows nor "
            "underflows float64 there (rescale the weights: only their ratios change the "
            "model)"
        )
    return mean, mass


def _read_only(layers: tuple[list[np.ndarray], list[np.ndarray]]):
    """The per-layer copies marked read-only: the model predicts and decomposes from the
    parameters recorded at fit, so an edit of ``coefs_`` in place (which scikit-learn's
    MLP honours) would change nothing here; it raises instead of being ignored."""
    for arrays in layers:
        for a in arrays:
            a.flags.writeable = False
    return layers


def _in_memory(dec):
    """``dec`` with any dask array among its fields computed (a decomposition of a dask X
    explained for in-memory queries); anything else as it is, for the checks to judge."""
    if not isinstance(dec, PathDecomposition):
        return dec
    from .._dask import is_dask_collection

    lazy = {
        f.name: np.asarray(getattr(dec, f.name))
        for f in dataclasses.fields(dec)
        if is_dask_collection(getattr(dec, f.name))
    }
    return dataclasses.replace(dec, **lazy) if lazy else dec


def _refuse_non_finite_decomposition(out: dict, queries_are_training: bool) -> None:
    """ValueError where the replay's products overflowed float64 and left NaN or infinity
    that its self-check (which skips NaN) reports as 0: a training row of norm beyond
    ~1e154 with saturated units makes inf * 0 in ``(a.a' + 1)(delta.delta')``; weights
    beyond ~1e154 overflow the path norm's squares."""
    rows = "the training set's rows" if queries_are_training else "X's or the training set's rows"
    for field in ("contributions", "reg", "initial", "path_norm"):
        if not np.isfinite(out[field]).all():
            raise ValueError(
                f"the decomposition's {field} overflow float64: {rows} or the sample "
                "weights are too large for the path kernel's products (squares beyond "
                "1e308); standardise the features or rescale the weights, and refit"
            )


def _validated_sample_weight(sample_weight, X) -> np.ndarray | None:
    """fit's sample_weight as a new float64 array (the caller's is never kept nor changed),
    or None; ValueError naming sample_weight when it is not n finite weights >= 0, not all
    zero."""
    if sample_weight is None:
        return None
    try:
        sw = _check_sample_weight(
            sample_weight, X, dtype=np.float64, ensure_non_negative=True, copy=True
        )
    except ValueError as exc:
        msg = str(exc)
        raise ValueError(msg if "sample_weight" in msg else f"sample_weight: {msg}") from exc
    if not sw.any():  # scikit-learn < 1.8 accepts all-zero weights
        raise ValueError("sample_weight: all weights are zero; at least one must be > 0")
    return np.ascontiguousarray(sw, dtype=np.float64)


# The parameters that shape the trained network and its path (not n_jobs, verbose, tol,
# quadrature, record_path: how it is computed or kept, not what it is).
_TRAINING_PARAMS = (
    "activation",
    "learning_rate",
    "n_steps",
    "alpha",
    "shuffle",
    "checkpoint_every",
)


# The training loss after the last step above this multiple of the starting point's:
# diverged (warned). Both on the same rows, all of them up to DIVERGENCE_ROWS (a fixed
# draw beyond): two forward passes, where a whole-data pass could cost more than training
# on small batches.
DIVERGED = 2.0
DIVERGENCE_ROWS = 4096


def _mean_loss(loss: str, F: np.ndarray, Y: np.ndarray, weights: np.ndarray | None) -> float:
    """The training loss per row (weighted mean) of outputs F: the native trainer's
    (csrc/pathkernel/network.cpp), written in numpy."""
    with np.errstate(over="ignore", invalid="ignore"):
        if loss == "squared":
            rows = 0.5 * np.sum((F - Y) ** 2, axis=1)
        elif loss == "softmax":
            top = F.max(axis=1, keepdims=True)
            lse = top[:, 0] + np.log(np.exp(F - top).sum(axis=1))
            rows = lse - np.sum(Y * F, axis=1)
        else:  # logistic: softplus(z) - y z
            rows = -log_expit(-F[:, 0]) - Y[:, 0] * F[:, 0]
        value = float(np.average(rows, weights=weights))
    return value if math.isfinite(value) else math.inf


def _plain(value):
    """A training parameter as JSON holds it (numpy scalars to Python's)."""
    if value is None or isinstance(value, (bool, np.bool_, str)):
        return value if not isinstance(value, np.bool_) else bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


# What a fit (and the diagnostics of later calls on its model) sets: a refit starts from
# none of it. Named, not every attribute ending in "_": one the user set is theirs (a
# review).
_FIT_STATE = (
    "batch_seed_",
    "batch_size_",
    "classes_",
    "coefs_",
    "decomposition_error_",
    "feature_names_in_",
    "initial_coefs_",
    "initial_intercepts_",
    "intercepts_",
    "learning_rate_",
    "loss_",
    "loss_curve_",
    "n_features_in_",
    "n_iter_",
    "n_outputs_",
    "network_",
    "replay_gap_",
    "simd_level_",
    "_params",
    "_path",
    "_sample_weight",
    "_trained_with",
    "_y_1d",
)


class _PathKernelBase(BaseEstimator):
    """Shared parameters and machinery; see PathKernelRegressor for the parameter docs."""

    def _forget_fit(self) -> None:
        """Remove every fitted attribute (``_FIT_STATE``): a fit starts from none (a refit kept the last
        model's ``decomposition_error_`` and ``replay_gap_``), and a fit that raises
        leaves the estimator unfitted. A classifier whose refit diverged kept its old
        network under the new fit's ``classes_``, and predicted the new labels with it
        silently; a regressor expected the new fit's features (two reviews)."""
        for name in _FIT_STATE:
            self.__dict__.pop(name, None)

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(numbers.Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "n_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "quadrature": [Interval(numbers.Integral, 1, 64, closed="both")],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "record_path": ["boolean"],
        "n_jobs": [numbers.Integral, None],
        "verbose": ["verbose"],
    }

    def _validate_params(self) -> None:
        # scikit-learn's constraints, then the integers no float64 or int64 holds
        # (gramfree._params).
        super()._validate_params()
        check_number_params(self)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="tanh",
        *,
        learning_rate="auto",
        n_steps=500,
        batch_size=None,
        alpha=0.0,
        shuffle=True,
        random_state=None,
        quadrature=4,
        tol=1e-12,
        checkpoint_every=None,
        record_path=True,
        n_jobs=None,
        verbose=False,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.learning_rate = learning_rate
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.alpha = alpha
        self.shuffle = shuffle
        self.random_state = random_state
        self.quadrature = quadrature
        self.tol = tol
        self.checkpoint_every = checkpoint_every
        self.record_path = record_path
        self.n_jobs = n_jobs
        self.verbose = verbose

    # -- training ----------------------------------------------------------------------

    def _hidden(self) -> tuple[int, ...]:
        given = self.hidden_layer_sizes
        if isinstance(given, numbers.Integral) and not isinstance(given, bool):
            given = (given,)
        try:  # a sequence of widths; ravel() had flattened ((4,),) and [[5], [3]] in silence
            sizes = list(given)
        except TypeError:
            sizes = [given]
        out = []
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
                raise ValueError(
                    f"hidden_layer_sizes: every width must be an integer >= 1, got {s!r}"
                )
            out.append(int(s))
        return tuple(out)

    def _fit_network(
        self, X: np.ndarray, Y: np.ndarray, loss: str, sample_weight: np.ndarray | None = None
    ):
        self._validate_params()
        hidden = self._hidden()
        net = Network((X.shape[1], *hidden, Y.shape[1]), self.activation, loss)
        rng = check_random_state(self.random_state)
        w0 = net.initial_params(rng)
        seed = int(rng.randint(0, 2**31 - 1))
        n = X.shape[0]
        batch = n if self.batch_size is None else min(int(self.batch_size), n)
        # The penalty's step is largest in an epoch's short last batch (n % batch rows).
        last_batch = n % batch or batch
        _check_checkpoint_memory(self.checkpoint_every, self.n_steps, w0.size)
        X = np.ascontiguousarray(X, dtype=np.float64)
        Y = np.ascontiguousarray(Y, dtype=np.float64)
        threads = _n_threads(self.n_jobs)
        auto = isinstance(self.learning_rate, str)
        if auto:
            _check_weight_mass(last_batch, sample_weight, n)
            # The estimate's products are numpy's (BLAS): on the threads n_jobs asks for.
            limit = (
                nullcontext()
                if self.n_jobs is None
                else _blas_limit(_blas_libraries(), max(1, threads))
            )
            with limit:
                chosen = auto_learning_rate(
                    net,
                    w0,
                    X,
                    Y,
                    sample_weight,
                    batch=batch,
                    last_batch=last_batch,
                    alpha=self.alpha,
                    seed=seed,
                )
        else:
            chosen = float(self.learning_rate)
        learning_rate = chosen
        for halvings in range(AUTO_HALVINGS + 1 if auto else 1):
            if halvings:
                learning_rate = chosen / 2.0**halvings
            last = not auto or halvings == AUTO_HALVINGS
            _check_decay_step(learning_rate, self.alpha, last_batch, sample_weight, n)
            spec = net.spec(
                learning_rate=learning_rate,
                n_steps=self.n_steps,
                batch_size=batch,
                alpha=self.alpha,
                seed=seed,
                shuffle=self.shuffle,
            )
            if self.verbose and auto:
                with verbose_output(self.verbose):
                    say(
                        f"{type(self).__name__}: learning_rate='auto' takes {learning_rate:.3g}"
                        + (
                            f" (the curvature's {chosen:.3g} halved {halvings} times: "
                            "training with a larger step diverged)"
                            if halvings
                            else " (1 / the training loss's curvature at the start)"
                        )
                    )
            progress = Progress(self.verbose, self.n_steps, type(self).__name__)
            callback = (lambda step, loss: progress.update(step, loss)) if self.verbose else None
            try:
                params, loss_curve, checkpoints = _core.mlp_train(
                    spec,
                    X,
                    Y,
                    w0,
                    n_threads=threads,
                    callback=callback,
                    checkpoint_every=self.checkpoint_every or 0,
                    sample_weight=sample_weight,
                )
            except ValueError as exc:
                if "diverged" not in str(exc) or last:
                    if auto and "diverged" in str(exc):
                        raise ValueError(
                            f"{exc} (learning_rate='auto' took {chosen:.3g} from the training "
                            f"loss's curvature at the start, and diverged at that step halved "
                            f"up to {AUTO_HALVINGS} times: pass a smaller learning_rate, or "
                            "scale the features and targets)"
                        ) from None
                    raise
                continue
            finally:
                progress.close()
            start, end = self._loss_change(net, spec, w0, params, X, Y, sample_weight, rng)
            if end <= DIVERGED * start or last:
                break
        self.network_ = net
        self.batch_size_ = batch
        self.batch_seed_ = seed
        self.coefs_, self.intercepts_ = _read_only(net.unpack(params))
        self.initial_coefs_, self.initial_intercepts_ = _read_only(net.unpack(w0))
        self.loss_curve_ = loss_curve.tolist()
        self.loss_ = float(loss_curve[-1])
        self.learning_rate_ = learning_rate
        self._warn_if_diverged(start, end)
        self.n_iter_ = int(self.n_steps)
        self.n_outputs_ = Y.shape[1]
        self._params = params
        self._trained_with = {name: getattr(self, name) for name in _TRAINING_PARAMS}
        self._trained_with["learning_rate"] = learning_rate  # "auto" resolved
        # Replay reproduces the trajectory bit for bit only at the same instruction set.
        self.simd_level_ = _core.simd_level()
        # What replay needs: the training set and the starting point (and checkpoints), and
        # the sample weights, which every replay must pass as training did (None: unweighted).
        # Memory: n * (d + k [+ 1]) + P * (1 + n_checkpoints) float64 values.
        if self.record_path:
            # X, Y, w0, checkpoints; None without a recorded path
            self._path: Any = {"X": X.copy(), "Y": Y.copy(), "w0": w0, "checkpoints": checkpoints}
            self._sample_weight = sample_weight
        else:
            self._path = None
            self._sample_weight = None
        return self

    def _trained(self, name: str):
        """The training parameter ``name`` as the fit used it, whatever set_params changed
        since: replay, decompositions, kernels and files follow the trained network (they
        read the live parameters before: a changed checkpoint_every broke the sum identity
        by 20% under a warning that blamed the instruction set, a changed activation made a
        saved and reloaded model predict with another network). A model unpickled from
        before this record, or loaded from an older file, has only the parameters."""
        record = getattr(self, "_trained_with", None)
        return record[name] if record is not None else getattr(self, name)

    def _loss_change(self, net, spec, w0, params, X, Y, sample_weight, rng):
        """(training loss at the start, after the last step), on the same rows.

        A non-finite loss stops the trainer; a finite one can still grow without bound
        (learning_rate 1.5 on diabetes: 0.55 to 5e51 in 50 steps, silently). Judged on
        the same rows at the start and after the last step: loss_curve_ holds each
        step's batch loss before its update, so with small batches it compared one
        row's loss with another's (false alarms), and the last update was never seen
        (relu, learning_rate 3, two steps: the loss 50 times the start's, silently)."""
        n = X.shape[0]
        rows = (
            slice(None)
            if n <= DIVERGENCE_ROWS
            else np.sort(rng.choice(n, DIVERGENCE_ROWS, replace=False))
        )
        Xs, Ys = np.ascontiguousarray(X[rows]), Y[rows]
        weights = None if sample_weight is None else sample_weight[rows]
        if weights is not None and not weights.sum() > 0:
            weights = None  # the drawn rows weigh nothing: judged unweighted
        threads = _n_threads(self.n_jobs)
        start, end = (
            _mean_loss(net.loss, _core.mlp_predict(spec, w, Xs, n_threads=threads), Ys, weights)
            for w in (w0, params)
        )
        return start, end

    def _warn_if_diverged(self, start: float, end: float) -> None:
        if end > DIVERGED * start:
            auto = isinstance(self.learning_rate, str)
            warnings.warn(
                f"gradient descent diverged: the training loss grew from {start:.3g} to "
                f"{end:.3g} in {self.n_steps} steps, and the network, its predictions and "
                "their decomposition are those of that divergence; lower learning_rate"
                + (
                    f" (learning_rate='auto' ended at {self.learning_rate_:.3g}, its step "
                    f"halved {AUTO_HALVINGS} times)"
                    if auto
                    else ""
                ),
                ConvergenceWarning,
                stacklevel=caller_stacklevel(),
            )

    def _spec(self) -> dict:
        return self.network_.spec(
            learning_rate=self._trained("learning_rate"),
            n_steps=self._trained("n_steps"),
            batch_size=self.batch_size_,
            alpha=self._trained("alpha"),
            seed=self.batch_seed_,
            shuffle=self._trained("shuffle"),
        )

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self, "coefs_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return _core.mlp_predict(
            self._spec(), self._params, np.ascontiguousarray(X), n_threads=_n_threads(self.n_jobs)
        )

    @property
    def path_memory_bytes_(self) -> int:
        """Bytes kept for replay: training set, sample weights, w_0 and checkpoints (0
        without a path)."""
        check_is_fitted(self, "coefs_")
        if self._path is None:
            return 0
        weights = self._replay_weights()
        return int(
            sum(a.nbytes for a in self._path.values()) + (0 if weights is None else weights.nbytes)
        )

    def _replay_weights(self) -> np.ndarray | None:
        """The sample weights training used (None: unweighted), for every replay."""
        return getattr(self, "_sample_weight", None)

    def _replay_inputs(self):
        check_is_fitted(self, "coefs_")
        if getattr(self, "_path", None) is None:
            raise ValueError(
                "this model's training path was not recorded (record_path=False): refit with "
                "record_path=True to decompose or explain its predictions"
            )
        return self._spec(), self._path["X"], self._path["Y"], self._path["w0"]

    def _checkpoint_before(self, step: int) -> tuple[int, np.ndarray]:
        """The latest recorded parameters at or before ``step``: (their step, w)."""
        c = self._trained("checkpoint_every")
        cps = self._path["checkpoints"]
        if not c or len(cps) == 0 or step < c:
            return 0, self._path["w0"]
        j = min(step // c, len(cps))
        return j * c, np.ascontiguousarray(cps[j - 1])

    # -- persistence ---------------------------------------------------------------------

    def save(self, path: str | bytes | os.PathLike) -> None:
        """Write the fitted model (weights, starting point, recorded path) to a portable,
        versioned file without pickle; see :func:`gramfree.load`.

        Parameters
        ----------
        path : str, bytes or os.PathLike
            File to write (replaced if it exists).

        Examples
        --------
        >>> import os, tempfile
        >>> import numpy as np
        >>> import gramfree
        >>> from sklearn.datasets import load_diabetes
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = gramfree.PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                                      n_steps=100, random_state=0).fit(X, y)
        >>> path = os.path.join(tempfile.mkdtemp(), "mlp.gf")
        >>> model.save(path)
        >>> bool(np.array_equal(gramfree.load(path).predict(X), model.predict(X)))
        True
        """
        from ..io import save

        save(self, path)

    def _portable_state(self) -> tuple[dict, dict]:
        """(arrays, JSON-able attributes) for gramfree.io."""
        check_is_fitted(self, "coefs_")
        arrays = {
            "params": self._params,
            "w0": self.network_.pack(self.initial_coefs_, self.initial_intercepts_),
        }
        if self._path is not None:
            arrays.update(
                path_X=self._path["X"],
                path_Y=self._path["Y"],
                checkpoints=self._path["checkpoints"],
            )
            if self._replay_weights() is not None:
                arrays["sample_weight"] = self._replay_weights()
        attrs = {
            "sizes": list(self.network_.sizes),
            "loss": self.network_.loss,
            "batch_size_": int(self.batch_size_),
            "batch_seed_": int(self.batch_seed_),
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "n_features_in_": int(self.n_features_in_),
            "n_outputs_": int(self.n_outputs_),
            "y_1d": bool(getattr(self, "_y_1d", True)),
            "simd_level_": str(getattr(self, "simd_level_", "unknown")),
            "trained_with": {name: _plain(self._trained(name)) for name in _TRAINING_PARAMS},
        }
        return arrays, attrs

    _PORTABLE_ATTRIBUTES = (
        "sizes",
        "loss",
        "batch_size_",
        "batch_seed_",
        "loss_curve_",
        "n_features_in_",
        "n_outputs_",
        "y_1d",
    )
    # Written since the replay check; files from before it lack it.
    _OPTIONAL_ATTRIBUTES = ("simd_level_", "trained_with")
    _SIMD_LEVELS = ("scalar", "avx2", "avx512", "unknown")
    _PATH_ARRAYS = ("path_X", "path_Y", "checkpoints")
    # Written with a recorded path when fit had sample weights; files without it (and every
    # file from before sample_weight) replay unweighted, as they were trained.
    _OPTIONAL_PATH_ARRAYS = ("sample_weight",)

    def _restore_state(self, arrays, attrs) -> None:
        """Rebuild the fitted state from gramfree.io's (arrays, attributes), every field
        checked against the parameters and the others first (classes_ is already set);
        raises ValueError naming the field."""
        from .. import io

        io._check_keys(
            attrs, self._PORTABLE_ATTRIBUTES, self._OPTIONAL_ATTRIBUTES, where="field 'attributes'"
        )
        simd_level = io._check_choice(
            attrs.get("simd_level_", "unknown"), "attributes.simd_level_", self._SIMD_LEVELS
        )
        # The recorded path is all three arrays or none (record_path=False).
        recorded = any(name in arrays for name in self._PATH_ARRAYS)
        io._check_keys(
            arrays,
            ("params", "w0", *(self._PATH_ARRAYS if recorded else ())),
            self._OPTIONAL_PATH_ARRAYS if recorded else (),
            where="the arrays",
        )
        y_1d = io._check_bool(attrs["y_1d"], "attributes.y_1d")
        # What the network was trained with (files of earlier writers: the parameters).
        self._trained_with = (
            self._restored_training_params(attrs["trained_with"])
            if "trained_with" in attrs
            else {name: getattr(self, name) for name in _TRAINING_PARAMS}
        )
        if isinstance(self._trained_with["learning_rate"], str):
            # Writers since "auto" record the step taken; a file without it cannot be replayed.
            raise io._field_error(
                "attributes.trained_with",
                "must give the learning rate the network was trained with (a number, not "
                f"{self._trained_with['learning_rate']!r})",
            )
        net = self._restored_network(attrs, y_1d)
        why = f"for layer sizes {list(net.sizes)}"
        params = io._check_array(
            arrays["params"],
            "params",
            dtypes=(np.dtype(np.float64),),
            shape=(net.n_params,),
            why=why,
        )
        w0 = io._check_array(
            arrays["w0"], "w0", dtypes=(np.dtype(np.float64),), shape=(net.n_params,), why=why
        )
        path = self._restored_path(arrays, net, w0) if recorded else None
        n_train = None if path is None else path["X"].shape[0]
        sample_weight = (
            self._restored_sample_weight(arrays["sample_weight"], n_train)
            if "sample_weight" in arrays and n_train is not None
            else None
        )
        batch_size = io._check_int(
            attrs["batch_size_"],
            "attributes.batch_size_",
            minimum=1,
            maximum=n_train if n_train is not None else 2**63 - 1,  # C++ long long
        )
        seed = io._check_int(attrs["batch_seed_"], "attributes.batch_seed_", maximum=2**31 - 2)
        # n_steps drives replay (_spec) and n_iter_: the curve must be that long.
        loss_curve = io._check_numbers(
            attrs["loss_curve_"], "attributes.loss_curve_", length=int(self._trained("n_steps"))
        )
        self.network_ = net
        self._params = params
        self.coefs_, self.intercepts_ = _read_only(net.unpack(params))
        self.initial_coefs_, self.initial_intercepts_ = _read_only(net.unpack(w0))
        self.batch_size_, self.batch_seed_ = batch_size, seed
        self.loss_curve_ = loss_curve
        self.loss_ = loss_curve[-1]
        self.n_iter_ = int(self._trained("n_steps"))
        self.learning_rate_ = float(self._trained("learning_rate"))
        self.n_features_in_, self.n_outputs_ = net.sizes[0], net.sizes[-1]
        self._y_1d = y_1d
        self._path = path
        self._sample_weight = sample_weight
        self.simd_level_ = simd_level

    def _restored_training_params(self, record) -> dict:
        """attributes.trained_with: the training parameters as the fit used them, each
        checked as the parameter itself is (set on a clone and validated)."""
        from .. import io

        if not isinstance(record, dict) or set(record) != set(_TRAINING_PARAMS):
            raise io._field_error(
                "attributes.trained_with", f"must hold exactly {list(_TRAINING_PARAMS)}"
            )
        probe = clone(self).set_params(**record)
        try:
            probe._validate_params()
        except (TypeError, ValueError) as exc:
            raise io._field_error("attributes.trained_with", str(exc)) from None
        return {name: getattr(probe, name) for name in _TRAINING_PARAMS}

    @staticmethod
    def _restored_sample_weight(value, n_train: int) -> np.ndarray:
        """The recorded sample weights: n_train float64 values, >= 0, not all zero."""
        from .. import io

        sw = io._check_array(
            value,
            "sample_weight",
            dtypes=(np.dtype(np.float64),),
            shape=(n_train,),
            why=f"for {n_train} training rows (path_X)",
        )
        if (sw < 0).any() or not sw.any():
            raise io._field_error("sample_weight", "must be >= 0 and not all zero")
        return sw

    def _restored_network(self, attrs, y_1d: bool) -> Network:
        """The network the attributes describe: sizes[0] = n_features_in_, sizes[-1] =
        n_outputs_, and the loss and output count this estimator and its classes imply."""
        from .. import io

        n_features = io._check_int(attrs["n_features_in_"], "attributes.n_features_in_", minimum=1)
        n_outputs = io._check_int(attrs["n_outputs_"], "attributes.n_outputs_", minimum=1)
        sizes = attrs["sizes"]
        if not isinstance(sizes, list) or len(sizes) < 2:
            raise io._field_error(
                "attributes.sizes", f"must be a list of >= 2 layer widths, got {sizes!r}"
            )
        sizes = [io._check_int(s, f"attributes.sizes[{i}]", minimum=1) for i, s in enumerate(sizes)]
        if sizes[0] != n_features or sizes[-1] != n_outputs:
            raise io._field_error(
                "attributes.sizes",
                f"is {sizes}, expected {n_features} inputs (n_features_in_) and {n_outputs} "
                "outputs (n_outputs_)",
            )
        loss, outputs, why = self._expected_head(y_1d)
        io._check_choice(attrs["loss"], "attributes.loss", (loss,))
        if outputs is not None and n_outputs != outputs:
            raise io._field_error(
                "attributes.n_outputs_", f"is {n_outputs}, expected {outputs} {why}"
            )
        return Network(tuple(sizes), self._trained("activation"), loss)

    def _expected_head(self, y_1d: bool) -> tuple[str, int | None, str]:
        """(loss, number of outputs or None for any, why), as fit chooses them."""
        if not hasattr(self, "classes_"):
            return "squared", (1 if y_1d else None), "for a 1-d target (y_1d)"
        n = len(self.classes_)
        return ("logistic", 1, "for 2 classes") if n == 2 else ("softmax", n, f"for {n} classes")

    def _restored_path(self, arrays, net: Network, w0: np.ndarray) -> dict:
        """The recorded training set and checkpoints, shaped as fit recorded them."""
        from .. import io

        f64 = (np.dtype(np.float64),)
        d, k = net.sizes[0], net.sizes[-1]
        X = io._check_array(
            arrays["path_X"], "path_X", dtypes=f64, shape=(None, d), why=f"for n_features_in_={d}"
        )
        n = X.shape[0]
        if n < 1:
            raise io._field_error("path_X", "has no rows")
        Y = io._check_array(
            arrays["path_Y"],
            "path_Y",
            dtypes=f64,
            shape=(n, k),
            why=f"for {n} training rows and {k} outputs",
        )
        if hasattr(self, "classes_"):
            self._check_label_codes(Y)
        # fit keeps the parameters after every checkpoint_every steps short of the last.
        c = self._trained("checkpoint_every")
        count = (int(self._trained("n_steps")) - 1) // c if c else 0
        checkpoints = io._check_array(
            arrays["checkpoints"],
            "checkpoints",
            dtypes=f64,
            shape=(count, net.n_params),
            why=f"for n_steps={self._trained('n_steps')}, checkpoint_every={c} and "
            f"{net.n_params} parameters",
        )
        return {"X": X, "Y": Y, "w0": w0, "checkpoints": checkpoints}

    @staticmethod
    def _check_label_codes(Y: np.ndarray) -> None:
        """A classifier's recorded targets: 0/1 codes (binary) or one-hot rows, which
        self_influence reads back as the training labels."""
        from .. import io

        binary = ((Y == 0) | (Y == 1)).all()
        if not binary or (Y.shape[1] > 1 and not (Y.sum(axis=1) == 1).all()):
            raise io._field_error(
                "path_Y", "must hold 0/1 label codes (one-hot for several classes)"
            )

    # -- the kernel machine --------------------------------------------------------------

    def _query_array(self, X, name: str = "X") -> np.ndarray:
        check_is_fitted(self, "coefs_")
        if name != "X":
            # validate_data's messages say "X" whatever the argument: path_kernel(X, Y)
            # blamed X for a NaN or a wrong width in Y (a review). Y's own checks first.
            try:
                checked = check_array(X, dtype=np.float64, input_name=name)
            except ValueError as exc:  # "Expected 2D array" names no argument
                if f"Input {name} " in str(exc):
                    raise
                raise ValueError(f"{name}: {exc}") from None
            if checked.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"{name} has {checked.shape[1]} features, but {type(self).__name__} "
                    f"is expecting {self.n_features_in_} features as input."
                )
            _check_feature_names_of(self, X, name)
            return np.ascontiguousarray(checked)
        return np.ascontiguousarray(validate_data(self, X, reset=False, dtype=np.float64))

    def _decompose_raw(self, Xq, quadrature=None, queries_are_training=False) -> dict:
        out = self._replay_decompose(Xq, quadrature, queries_are_training)
        self._check_replay(out["final_params"], out.get("chain_gap", 0.0))
        _refuse_non_finite_decomposition(out, queries_are_training)
        return out

    def _check_replay(self, replayed: np.ndarray, chain_gap: float = 0.0) -> None:
        """Warn when the replay did not end at the stored weights (or a step range at the
        next one's checkpoint, ``chain_gap``): the decomposition then explains the
        replayed network, not the fitted one (see REPLAY_TOLERANCE)."""
        self.replay_gap_ = max(self._replay_gap(replayed), chain_gap)
        self._warn_replay_gap(self.replay_gap_, stacklevel=5)

    def _replay_gap(self, replayed: np.ndarray, target: np.ndarray | None = None) -> float:
        """How far the replay ended from ``target`` (default: the fitted weights),
        relative to the largest fitted weight."""
        target = self._params if target is None else target
        scale = max(1.0, float(np.max(np.abs(self._params))))
        return float(np.max(np.abs(replayed - target))) / scale

    def _warn_replay_gap(
        self, gap: float, *, stacklevel: int, explained: str = "decomposition"
    ) -> None:
        """ReplayMismatchWarning when ``gap`` exceeds REPLAY_TOLERANCE (``stacklevel``: from
        this method's own frame)."""
        if gap <= REPLAY_TOLERANCE:
            return
        here = _core.simd_level()
        recorded = getattr(self, "simd_level_", "unknown")
        cause = (
            f"the model was fitted with SIMD level {recorded!r} and replayed with "
            f"{here!r}; set GRAMFREE_SIMD={recorded} before importing gramfree"
            if recorded not in (here, "unknown")
            else "the recorded training set, checkpoints or weights were changed after fit"
        )
        warnings.warn(
            f"replayed training ended {gap:.3g} (relative to the largest weight) away from the "
            f"fitted weights, more than {REPLAY_TOLERANCE:g}: {cause}, or refit the model on "
            f"this machine. The {explained} is the replayed network's; compare "
            "decompose()'s output with predict().",
            ReplayMismatchWarning,
            stacklevel=stacklevel,
        )

    def _quadrature_nodes(self, quadrature) -> int:
        nodes = self.quadrature if quadrature is None else quadrature
        # An integer only: int("x") would say "invalid literal", int(2.5) would truncate.
        if isinstance(nodes, bool) or not isinstance(nodes, numbers.Integral):
            raise ValueError(f"quadrature: must be an integer in 1..64, got {nodes!r}")
        if not 1 <= int(nodes) <= 64:
            raise ValueError(f"quadrature: must be in 1..64, got {nodes!r}")
        nodes = int(nodes)
        return nodes

    def _n_ranges(self) -> int:
        """Step ranges the replay runs side by side (from checkpoints; 1 without them)."""
        if not self._trained("checkpoint_every"):
            return 1
        threads = _n_threads(self.n_jobs)
        return min(
            threads if threads > 0 else _core.max_threads(), len(self._path["checkpoints"]) + 1
        )

    def _replay_decompose(
        self, Xq, quadrature=None, queries_are_training=False, n_ranges: int | None = None
    ) -> dict:
        """The native decomposition's raw results; ``n_ranges`` (default: from n_jobs and
        the checkpoints) fixes the step ranges, and with them the order of the sums."""
        spec, X, Y, w0 = self._replay_inputs()
        nodes = self._quadrature_nodes(quadrature)
        kwargs = dict(n_nodes=nodes, tol=self.tol)
        T = self._trained("n_steps")
        threads = _n_threads(self.n_jobs)
        c = self._trained("checkpoint_every")
        if n_ranges is None:
            n_ranges = self._n_ranges()
        queries = None if queries_are_training else Xq
        kwargs["sample_weight"] = self._replay_weights()
        if n_ranges <= 1:
            return _core.mlp_decompose(spec, X, Y, w0, queries, n_threads=threads, **kwargs)
        # Step ranges from checkpoints run side by side; per-step contributions add up.
        cuts = sorted({min(T, int(round(T * j / n_ranges / c)) * c) for j in range(n_ranges)} | {T})
        ranges = [(a, b) for a, b in zip(cuts[:-1], cuts[1:]) if a < b]

        # Worker threads get no signals: on Ctrl-C (or any error) in this thread, `stop`
        # tells their native replays to end at their next poll, instead of the pool's exit
        # waiting for every replay to finish.
        stop = threading.Event()

        def run(rng):
            first, last = rng
            _, w = self._checkpoint_before(first)
            return _core.mlp_decompose(
                spec,
                X,
                Y,
                w,
                queries,
                first_step=first,
                last_step=last,
                n_threads=1,
                stop=stop,
                **kwargs,
            )

        pool = ThreadPoolExecutor(len(ranges))
        try:
            futures = [pool.submit(run, r) for r in ranges]
            parts = [f.result() for f in futures]
        except BaseException:
            stop.set()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        out = dict(parts[0])
        out["final"] = parts[-1]["final"]
        out["final_params"] = parts[-1]["final_params"]
        # Each range but the last must end where the next one's checkpoint starts: only
        # the last range's end was compared with the fitted weights, so a changed
        # checkpoint in between went unseen (a review: one scaled by 1.5 in a saved file
        # left the decomposition's residual at 0.2, without a warning).
        out["chain_gap"] = max(
            (
                self._replay_gap(part["final_params"], self._checkpoint_before(nxt[0])[1])
                for part, nxt in zip(parts[:-1], ranges[1:])
            ),
            default=0.0,
        )
        for key in ("contributions", "reg"):
            out[key] = sum(p[key] for p in parts)
        out["path_norm"] = np.sqrt(sum(p["path_norm"] ** 2 for p in parts))
        for key in ("worst_step_residual", "worst_step_residual_before_refine"):
            out[key] = max(p[key] for p in parts)
        for key in ("refined_segments", "relu_pieces"):
            out[key] = sum(p[key] for p in parts)
        return out

    def decompose(self, X: ArrayLike, *, quadrature: int | None = None) -> PathDecomposition:
        """Split the network's output at each row of X over the training examples.

        Returns a :class:`PathDecomposition` with ``initial + contributions.sum(axis=1) +
        reg == output`` (pre-activation outputs: logits for classifiers). Exact per step t:
        the query's gradient averaged along the step's straight segment w_t -> w_{t+1}
        (Gauss-Legendre, ``quadrature`` nodes; ReLU segments split where a hidden unit
        switches), dotted with training example i's loss gradient at w_t, times -lr/B
        (with sample weights: times -lr w_i / (B mean(w))), summed over the steps whose
        batch held i. A self-check compares, per step and
        query, the network's actual change with the quadrature; where they differ by more
        than ``tol`` (relative to ``max |f|``) the segment is halved, up to 8 times. The worst
        remaining residual of the step sums is ``decomposition_error_``.

        ``quadrature=1`` uses the start of each step only (TracIn's first-order term): an
        approximation whose error is O(learning_rate) at fixed learning_rate * n_steps.

        Costs one replay of the training; memory O(B * sum of widths + q * n * k).
        Sets ``decomposition_error_``.

        A dask array X is decomposed chunk by chunk on the workers (one replay per row
        chunk; :mod:`gramfree.pathkernel._dask`): ``initial``, ``contributions``, ``reg``
        and ``output`` are then dask arrays with X's row chunks, persisted on the workers
        under a distributed client (computed, then wrapped, with the local scheduler);
        ``path_norm`` and the self-check's figures are computed (``step_residual`` the
        worst chunk's, relative to its own ``max |f|``; the counts summed), and the replay
        check runs on the client. The numbers are the in-process ones bit for bit unless a
        chunk's self-check refines more segments than the in-process call does (a finer
        quadrature: differences within the self-check's bound, 3e-13 relative to the
        largest contribution in a review's case).

        Where ``initial + contributions + reg`` misses the output by more than 1e-8
        relative (a training path whose loss jumped, or ``quadrature=1``), or a step's
        self-check residual exceeds ``tol`` (as :meth:`explain` and
        :meth:`self_influence` say it), a UserWarning says so and what would make it
        exact (in process; a dask X's call does not check either).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.
        quadrature : int, default=None
            Gauss-Legendre nodes per step segment; None uses the estimator's
            ``quadrature``.

        Returns
        -------
        decomposition : PathDecomposition
            ``initial`` (q,) or (q, k), ``contributions`` (q, n) or (q, n, k), ``reg``,
            ``output``, ``path_norm`` (n,) and the self-check's figures.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> dec = model.decompose(X[:3])
        >>> dec.contributions.shape
        (3, 100)
        >>> bool(np.allclose(dec.initial + dec.contributions.sum(axis=1) + dec.reg, dec.output))
        True
        """
        from .._dask import is_dask_collection

        if is_dask_collection(X):
            from . import _dask

            return _dask.decompose(self, X, quadrature)
        dec = self._decomposition(X, quadrature)
        # The self-check bounds each step's residual relative to that step's own max |f|:
        # where the loss spiked in training, those were small against huge outputs and the
        # sum missed the output by 910 relative with no word (a review: diabetes, softplus,
        # learning_rate=1.0, a spike to 1270x the starting loss and back).
        gap = dec.reconstruction_error
        # (Where the replay missed the fitted weights, ReplayMismatchWarning has said why.)
        replayed = not getattr(self, "replay_gap_", 0.0) > REPLAY_TOLERANCE
        if replayed and not gap <= _DECOMPOSITION_RTOL:
            warnings.warn(
                f"decompose: initial + contributions + reg misses the output by {gap:.3g} "
                f"relative to max |output| (exact to ~1e-9 where every step is resolved): "
                f"the contributions are approximate; {_inexact_advice(self._quadrature_nodes(quadrature))}",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        elif replayed and dec.step_residual > self.tol:
            # The sum can hold while steps are inexact: measured against the final output,
            # which a diverged training made huge, it hid a residual of 0.08 that explain
            # and self_influence report (a review).
            warnings.warn(
                f"decompose: the decomposition's self-check residual {dec.step_residual:.3g} "
                f"(relative to max |f|) exceeds tol={self.tol:g}, so the contributions are "
                f"approximate; {_inexact_advice(self._quadrature_nodes(quadrature))}",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        return dec

    def _decomposition(self, X: ArrayLike, quadrature: int | None) -> PathDecomposition:
        """:meth:`decompose`'s work without its warning: :meth:`explain` checks the same
        sums and says it in its own words. (explain silenced it with a warnings filter, process-wide state:
        two explain calls overlapping in threads left the filter in force, and later
        decompose warnings went unseen; a review.)"""
        Xq = self._query_array(X)
        r = self._decompose_raw(Xq, quadrature)
        self.decomposition_error_ = float(r["worst_step_residual"])
        squeeze = self._squeeze_outputs()
        pick = (lambda a: a[..., 0]) if squeeze else (lambda a: a)
        dec = PathDecomposition(
            initial=pick(r["initial"]),
            contributions=pick(r["contributions"]),
            reg=pick(r["reg"]),
            output=pick(r["final"]),
            path_norm=r["path_norm"],
            step_residual=float(r["worst_step_residual"]),
            refined_segments=int(r["refined_segments"]),
            relu_pieces=int(r["relu_pieces"]),
        )
        return dec

    def self_influence(self, *, quadrature: int | None = None) -> np.ndarray:
        """Each training example's contribution to its own (explained) output.

        One replay, computing only the diagonal of :meth:`decompose` over the training set.
        Sets ``decomposition_error_``, the quadrature's self-check residual (each step's
        change of an example's own output against its quadrature, after refinement,
        relative to that step's batch's largest output: with mini-batches not the figure
        :meth:`decompose` of the training set gives, whose queries are every row), and
        warns (UserWarning) where it exceeds ``tol``: ``quadrature=1`` gives TracIn's
        first-order terms.

        Parameters
        ----------
        quadrature : int, default=None
            Gauss-Legendre nodes per step segment; None uses the estimator's
            ``quadrature``.

        Returns
        -------
        self_influence : ndarray of shape (n,) or (n, k)
            (n, k) for a multi-output regressor; for a classifier, the contribution to the
            example's own label's logit.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.self_influence().shape
        (100,)
        """
        nodes = self._quadrature_nodes(quadrature)
        r = self._decompose_raw(None, nodes, queries_are_training=True)
        # No sums to check here (one contribution per example): the quadrature's own
        # self-check says whether they are exact (quadrature=1 returned TracIn's
        # first-order terms, 2e-4 off, without a word; a review).
        self.decomposition_error_ = float(r["worst_step_residual"])
        if self.decomposition_error_ > self.tol:
            warnings.warn(
                f"self_influence: the decomposition's self-check residual "
                f"{self.decomposition_error_:.3g} (relative to max |f|) exceeds "
                f"tol={self.tol:g}, so the self influences are approximate; "
                + _inexact_advice(nodes),
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        C = r["contributions"]  # (n, k)
        return self._select_training_target(C)

    def path_kernel(self, X: ArrayLike, Y: ArrayLike | None = None) -> np.ndarray:
        """Domingos' path kernel K(x, y) = sum_t lr * grad f(x; w_t) . grad f(y; w_t) over the
        training steps (the Euler discretisation of his integral along the gradient-flow
        path), per output: symmetric and positive semi-definite. Y defaults to the training
        set. Shape (len(X), len(Y)), or (len(X), len(Y), k) for several outputs.

        In Domingos' form the network is ``sum_i a_i(x) K(x, x_i) + b(x)`` with
        ``a_i(x) = c_i(x) / K(x, x_i)`` (``c_i`` the contribution from :meth:`decompose`):
        the coefficients depend on the query, so this is not a kernel machine with fixed
        weights. The exact per-step kernel used by :meth:`decompose` (segment-averaged
        gradient on the query side, start-of-step gradient on the training side) is not
        symmetric. Cost: one replay, two small forward/backward passes per step. The replay's
        last weights are compared with the fitted ones, as :meth:`decompose`'s are
        (``replay_gap_``, ReplayMismatchWarning).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.
        Y : array-like of shape (n_other, n_features), default=None
            Second argument of the kernel; None means the training set.

        Returns
        -------
        K : ndarray of shape (len(X), len(Y)) or (len(X), len(Y), k)
            The path kernel, per output where the model keeps an output axis (several
            outputs, or a regressor fitted on a 2-d y), as :meth:`decompose`.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> import numpy as np
        >>> model.path_kernel(X[:3]).shape
        (3, 100)
        >>> K = model.path_kernel(X[:4], X[:4])
        >>> bool(np.allclose(K, K.T))
        True
        """
        return self._kernel(X, Y, step=0, path=True)

    def tangent_kernel(
        self, X: ArrayLike, Y: ArrayLike | None = None, *, step: int = 0
    ) -> np.ndarray:
        """The neural tangent kernel grad f(x; w_step) . grad f(y; w_step) at a training step.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.
        Y : array-like of shape (n_other, n_features), default=None
            Second argument of the kernel; None means the training set.
        step : int, default=0
            The training step: 0 is the initialisation, ``n_steps`` the trained network
            (where the replay from the last checkpoint is checked against the fitted
            weights, as :meth:`decompose`'s: ``replay_gap_``, ReplayMismatchWarning).

        Returns
        -------
        K : ndarray of shape (len(X), len(Y)) or (len(X), len(Y), k)
            Shapes as :meth:`path_kernel`.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.tangent_kernel(X[:3], X[:5], step=100).shape
        (3, 5)
        """
        if (
            isinstance(step, bool)
            or not isinstance(step, numbers.Integral)
            or not 0 <= int(step) <= self._trained("n_steps")
        ):
            raise ValueError(
                f"step: must be an integer in 0..{self._trained('n_steps')}, got {step!r}"
            )
        return self._kernel(X, Y, step=int(step), path=False)

    def _kernel(self, X, Y, *, step, path) -> np.ndarray:
        spec, Xt, Yt, w0 = self._replay_inputs()
        A = self._query_array(X)
        B = Xt if Y is None else self._query_array(Y, "Y")
        first, w = (0, w0) if path else self._checkpoint_before(step)
        K, replayed = _core.mlp_tangent_kernel(
            spec,
            Xt,
            Yt,
            w,
            A,
            B,
            step=step,
            path=path,
            first_step=first,
            n_threads=_n_threads(self.n_jobs),
            sample_weight=self._replay_weights(),
            return_params=True,
        )
        # The weights the replay reached against the fitted ones where it ran to the end
        # (the path kernel; the tangent kernel at the last step): a changed training set or
        # checkpoint gave another network's kernel without a word (decompose checked). A
        # step before the end has no recorded weights but at a checkpoint, where the replay
        # starts, so nothing to compare.
        if path or step == self._trained("n_steps"):
            self.replay_gap_ = self._replay_gap(replayed)
            self._warn_replay_gap(self.replay_gap_, stacklevel=4, explained="kernel")
        # One output axis or none, as decompose and predict: a regressor fitted on a 2-d y
        # of one column keeps it (squeezed by its width before, the kernel and the
        # contributions of path_kernel_coefficients broadcast against each other).
        return K[..., 0] if self._squeeze_outputs() else K

    def path_kernel_coefficients(self, X: ArrayLike) -> np.ndarray:
        """Domingos' a_i(x) = c_i(x) / K(x, x_i) for every training example.

        Where K is 0 the coefficient is 0. Query-dependent; see :meth:`path_kernel`.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.

        Returns
        -------
        coefficients : ndarray of shape (n_queries, n) or (n_queries, n, k)
            ``contributions / path_kernel``, elementwise.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.path_kernel_coefficients(X[:3]).shape
        (3, 100)
        """
        C = self.decompose(X).contributions
        K = self.path_kernel(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(K != 0, C / np.where(K != 0, K, 1), 0.0)

    # -- explanations --------------------------------------------------------------------

    def explain(
        self,
        X: ArrayLike,
        top_k: int = 5,
        *,
        target: Any = None,
        normalize: bool = False,
        decomposition: PathDecomposition | None = None,
    ) -> Explanation:
        """The training examples that pushed each prediction most, for and against.

        A dask array X is explained chunk by chunk on the workers (decomposition and
        selection there); only the per-query top-k pieces come back, and the result is an
        ordinary in-memory Explanation.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.
        top_k : int, default=5
            Examples listed per query in each direction.
        target : int, str, class label or None, default=None
            Regressors: the output index (default 0; required with several outputs).
            Classifiers: a class label (that class's logit; for binary problems the
            logit signed toward that class), None or "predicted" (the predicted class's,
            per query), or "margin" (the predicted class's logit minus the runner-up's;
            for binary problems the same as "predicted"). A class label wins over the
            keywords: where a class is labelled "predicted" or "margin", that string
            means the class, and None still means the predicted class.
        normalize : bool, default=False
            Rank by contribution / path_norm (the example's gradient norm along the path)
            instead of the raw contribution. Raw rankings favour examples with large
            gradients (outliers, mislabelled points) and give every query the same top
            list, TracIn's best-known failure; the normalised ranking asks which examples
            point the same way as the query. Contributions are reported raw either way.
        decomposition : PathDecomposition, default=None
            ``self.decompose(X)`` when already computed (saves a replay). Checked against
            this model and X: its shapes (queries, training examples, outputs) and its
            ``output``, which must match the network's output on X to 1e-8 relative to
            the largest (one forward pass); otherwise ValueError (TypeError if it is not
            a PathDecomposition). Not accepted with a dask X (ValueError).

        Returns
        -------
        explanation : Explanation
            Per query, the top examples for and against, with their contributions.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> ex = model.explain(X[:2], top_k=3)
        >>> ex.supporting.shape, ex.index
        ((2, 3), 'training row')
        """
        if isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral) or top_k < 1:
            raise ValueError(f"top_k: must be an integer >= 1, got {top_k!r}")
        from .._dask import is_dask_collection

        if is_dask_collection(X):
            from . import _dask

            return _dask.explain(self, X, int(top_k), target, bool(normalize), decomposition)
        if decomposition is None:
            dec = self._decomposition(X, None)  # explain's own warning below says it
        else:
            dec = _in_memory(decomposition)
            self._check_decomposition(dec, X)
        residual = dec.step_residual
        # The sums are checked too, given or computed: exact ones add up to
        # _DECOMPOSITION_RTOL, as decompose's own check allows (reviews: a given one whose
        # contributions had been doubled gave totals twice the value, as exact; a computed
        # one after a loss spike, every step resolved, missed the output by 2.4e3 and its
        # note said "exact share").
        gap = dec.reconstruction_error
        if not gap <= _DECOMPOSITION_RTOL:
            residual = max(residual, gap) if gap == gap else math.inf
        parts = self._explanation_parts(dec, int(top_k), target, normalize)
        return self._explanation(
            parts,
            normalize,
            residual,
            None if decomposition is not None else self.quadrature,
        )

    def _check_decomposition(self, dec, X) -> None:
        """Refuse a decomposition that is not this model's at X: wrong type, shapes that
        are not (queries of X, this model's training examples, its outputs), or an
        ``output`` away from the network's forward pass on X (_DECOMPOSITION_RTOL)."""
        if not isinstance(dec, PathDecomposition):
            raise TypeError(
                "decomposition: must be a PathDecomposition (from decompose(X)), got "
                f"{type(dec).__name__}"
            )
        n = self._replay_inputs()[1].shape[0]  # refuses a model without a recorded path
        own = self._outputs(X)  # (q, k): validates X too
        q, k = own.shape
        squeeze = self._squeeze_outputs()
        per_query = (q,) if squeeze else (q, k)
        expected = (q, n) if squeeze else (q, n, k)
        what = (
            f"{q} queries (rows of X), {n} training examples and "
            f"{'one output' if squeeze else f'{k} outputs'}"
        )
        shape = np.shape(dec.contributions)
        if shape != expected:
            raise ValueError(
                f"decomposition: its contributions have shape {shape}, expected {expected} "
                f"for {what} (computed for another model or other queries)"
            )
        for field in ("initial", "reg", "output"):
            if np.shape(getattr(dec, field)) != per_query:
                raise ValueError(
                    f"decomposition: its {field} has shape {np.shape(getattr(dec, field))}, "
                    f"expected {per_query} for {what}"
                )
        if np.shape(dec.path_norm) != (n,):
            raise ValueError(
                f"decomposition: its path_norm has shape {np.shape(dec.path_norm)}, "
                f"expected ({n},) for {n} training examples"
            )
        mine = own[:, 0] if squeeze else own
        got = np.asarray(dec.output, dtype=np.float64)
        scale = max(float(np.max(np.abs(mine), initial=0.0)), np.finfo(float).tiny)
        gap = np.abs(got - mine)
        # NaN fails the comparison, as it should.
        if not np.all(gap <= _DECOMPOSITION_RTOL * scale):
            worst = float(np.max(np.where(np.isnan(gap), np.inf, gap))) / scale
            hint = (
                "; or the replay did not reproduce the fitted weights (see "
                "ReplayMismatchWarning): explain(X) without a decomposition replays again"
                if getattr(self, "replay_gap_", 0.0) > REPLAY_TOLERANCE
                else ""
            )
            raise ValueError(
                "decomposition: its outputs differ from this model's on X (by "
                f"{worst:.3g} relative to the largest, more than {_DECOMPOSITION_RTOL:g}): "
                f"computed for another model or other queries{hint}"
            )

    def _explanation_parts(self, dec: PathDecomposition, top_k: int, target, normalize) -> dict:
        """The per-query fields of explain's Explanation, from a decomposition of queries."""
        C, value, base, labels = self._explained(dec, target)
        score = C / np.maximum(dec.path_norm, np.finfo(float).tiny) if normalize else None
        hi, hv, lo, lv = _top_k_rows(C, top_k, score)
        y = self._training_labels(labels)
        return dict(
            target=labels,
            value=value,
            base=base,
            supporting=hi,
            supporting_contributions=hv,
            opposing=lo,
            opposing_contributions=lv,
            supporting_labels=y[hi],
            opposing_labels=y[lo],
            positive_total=np.where(C > 0, C, 0.0).sum(axis=1),
            negative_total=np.where(C < 0, C, 0.0).sum(axis=1),
        )

    def _explanation(
        self, parts: dict, normalize: bool, step_residual: float, nodes: int | None = None
    ) -> Explanation:
        """The Explanation; where the decomposition's self-check residual exceeds tol
        (quadrature=1, TracIn's first-order term, or a quadrature too coarse for the
        steps), the contributions are not the exact shares and need not add up to the
        value: its note says so, and a warning (digits, quadrature=1: base plus the
        contributions 9.92 for a value of 7.33, presented as exact)."""
        exact = not step_residual > self.tol
        if not exact:
            warnings.warn(
                f"explain: the decomposition's self-check residual {step_residual:.3g} "
                f"(relative to max |f|) exceeds tol={self.tol:g}, so the contributions are "
                "approximate and base + their totals need not equal the value; "
                + _inexact_advice(nodes),
                UserWarning,
                stacklevel=caller_stacklevel(),
            )
        share = "its exact share" if exact else "an approximation (quadrature) of its share"
        return Explanation(
            **parts,
            normalized=bool(normalize),
            index="training row",
            note=f"contribution of training example i = {share} of the change of the output "
            "along training (Domingos' path kernel)",
        )

    def influence(self, X: ArrayLike, *, target: Any = None) -> np.ndarray:
        """Aggregate influence of every training example over the queries X.

        The sum of its contributions over the queries. Decomposes X in blocks, so memory
        stays bounded. For a dask array X each row chunk's sum is computed on the workers
        and the chunks' sums added by dask's tree reduction.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query points.
        target : int, str, class label or None, default=None
            The output explained, as in :meth:`explain`.

        Returns
        -------
        influence : ndarray of shape (n,)
            Per training example, the sum of its contributions over X.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.influence(X[:3]).shape
        (100,)
        """
        from .._dask import is_dask_collection

        if is_dask_collection(X):
            from . import _dask

            return _dask.influence(self, X, target)
        n = self._replay_inputs()[1].shape[0]  # refuses a model without a recorded path
        Xq = self._query_array(X)
        k = self.n_outputs_
        block = max(1, _INFLUENCE_BLOCK_BYTES // (_INFLUENCE_BLOCKS_HELD * 8 * n * k))
        total = np.zeros(n)
        for start in range(0, Xq.shape[0], block):
            dec = self.decompose(Xq[start : start + block])
            total += self._explained(dec, target)[0].sum(axis=0)
        return total


class PathKernelRegressor(RegressorMixin, _PathKernelBase):
    """A multilayer perceptron trained by plain gradient descent on the squared loss
    ``(1/2B) sum_i ||f(x_i) - y_i||^2`` (plus ``(alpha/2B) ||W||^2``), exposed as its exact
    kernel machine over the training examples (:meth:`decompose`, :meth:`explain`).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers; () is a linear model.
    activation : {"tanh", "relu", "softplus", "gelu", "identity"}, default="tanh"
        Activation of the hidden units.
    learning_rate : float or "auto", default="auto"
        The fixed step size of gradient descent. "auto": ``1 / lam``, ``lam`` the largest
        eigenvalue of the training loss's Hessian at the starting point (all rows for
        full batch; for mini-batches the steeper of a batch drawn in proportion to the
        weights and one of the heaviest rows), by Lanczos iteration on exact
        Hessian-vector products (at most 30, each about three passes over those rows);
        at most 10, to three significant digits. Where training with it diverges (the
        curvature grows as the network fits), it is halved and the network trained
        again, up to 4 times. The step taken is ``learning_rate_``. A fixed step suits
        one scale of data only: 0.05 (the default before "auto") diverged on raw
        diabetes targets and stalled on raw breast-cancer features.
    n_steps : int, default=500
        Gradient steps (one batch each).
    batch_size : int or None, default=None
        None: full batch. Otherwise mini-batches from a per-epoch shuffle (seeded from
        random_state, deterministic), the last batch of an epoch smaller, as scikit-learn.
    alpha : float, default=0.0
        L2 penalty on the weights (not biases), scikit-learn's convention.
    shuffle : bool, default=True
        Shuffle mini-batches each epoch.
    random_state : int, RandomState instance or None, default=None
        Initial weights (Glorot uniform, as scikit-learn's MLP) and the batch order.
    quadrature : int, default=4
        Gauss-Legendre nodes per step segment for decompose (1: start of step only).
    tol : float, default=1e-12
        Per-step self-check tolerance of decompose, relative to ``max |f|``.
    checkpoint_every : int or None, default=None
        Also keep the parameters every this many steps: memory ceil(n_steps / c) * P
        float64 values; lets tangent_kernel start its replay there and lets decompose run
        step ranges side by side (n_jobs > 1). The number of ranges follows the threads,
        and with it the order of the sums: decompositions on other thread counts agree to
        rounding (about 1e-15), not bit for bit. None keeps w_0 only (replay from the
        start; the same bits on any number of threads).
    record_path : bool, default=True
        Keep the training set and w_0 (n * (d + k) + P values) so that the model can be
        decomposed; False keeps only the trained weights.
    n_jobs : int or None, default=None
        Threads of the native code (None: OpenMP's default).
    verbose : bool, default=False
        Progress bar (tqdm when installed) with the loss.

    Attributes
    ----------
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        The trained weights, one per layer (read-only copies: predictions and
        decompositions use the parameters recorded at fit).
    intercepts_ : list of ndarray of shape (fan_out,)
        The trained biases (read-only copies).
    initial_coefs_, initial_intercepts_ : lists of ndarray
        The starting point, same shapes.
    loss_curve_ : list of float
        Batch loss at the start of every step (before its update).
    loss_ : float
        ``loss_curve_[-1]``. A warning says where the loss on the training rows after
        the last step is over twice the starting point's (diverged).
    learning_rate_ : float
        The step size gradient descent took (``learning_rate``, or what "auto" chose);
        replay, decompositions and saved files use it.
    n_iter_ : int
        ``n_steps``.
    batch_seed_ : int
        Seed of the batch order (with initial_* and the data: a full replay).
    decomposition_error_ : float
        Worst per-step residual of the last decompose.
    path_memory_bytes_ : int
        Bytes kept for replay.

    See Also
    --------
    PathKernelClassifier : the classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from gramfree import PathKernelRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
    >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
    ...                             n_steps=100, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    >>> dec = model.decompose(X[:2])  # the output, split over the 100 training examples
    >>> dec.contributions.shape
    (2, 100)
    """

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train the network by plain gradient descent, recording what replay needs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each example's loss (None: all 1); the objective is
            (sum_i w_i loss_i + alpha/2 ||W||^2) / sum_i w_i, so with full batches integer
            weights train exactly as the rows repeated that many times (mini-batches: an
            unbiased estimate of the same step). Kept for replay with the training set.

        Returns
        -------
        self : PathKernelRegressor
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_diabetes
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.n_iter_, len(model.loss_curve_)
        (100, 100)
        """
        self._forget_fit()
        try:
            X, y = validate_data(
                self,
                X,
                y,
                dtype=np.float64,
                multi_output=True,
                y_numeric=True,
                ensure_min_samples=2,
            )
            check_numeric_targets(y)
            X = np.asarray(X)  # an ndarray already: for the type checker
            y = np.asarray(y, dtype=np.float64)
            sample_weight = _validated_sample_weight(sample_weight, X)
            self._y_1d = y.ndim == 1
            Y = y.reshape(-1, 1) if y.ndim == 1 else y
            return self._fit_network(X, Y, "squared", sample_weight)
        except BaseException:
            self._forget_fit()
            raise

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The trained network's outputs at X.

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
        >>> from gramfree import PathKernelRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> X, y = X[:100], (y[:100] - y.mean()) / y.std()
        >>> model = PathKernelRegressor(hidden_layer_sizes=(16,), learning_rate=0.1,
        ...                             n_steps=100, random_state=0).fit(X, y)
        >>> model.predict(X[:3]).shape
        (3,)
        """
        f = self._outputs(X)
        return f[:, 0] if self._y_1d else f

    def _squeeze_outputs(self) -> bool:
        return self._y_1d

    def _explained(self, dec: PathDecomposition, target):
        C = dec.contributions
        if C.ndim == 2:
            # 0 only: False and 0.0 compared equal to it (a review), True was refused.
            if target is not None and (
                isinstance(target, (bool, np.bool_))
                or not isinstance(target, numbers.Integral)
                or target != 0
            ):
                raise ValueError(f"target: this model has one output, got {target!r}")
            return C, dec.output, dec.initial + dec.reg, np.zeros(len(C), dtype=int)
        if target is None and C.shape[2] == 1:  # a 2-d y of one column: its only output
            target = 0
        if target is None:
            raise ValueError("target: this model has several outputs; name one (an index)")
        if (
            isinstance(target, (bool, np.bool_))
            or not isinstance(target, numbers.Integral)
            or not 0 <= int(target) < C.shape[2]
        ):
            raise ValueError(f"target: must be an output index in 0..{C.shape[2] - 1}")
        o = int(target)
        return (C[:, :, o], dec.output[:, o], dec.initial[:, o] + dec.reg[:, o], np.full(len(C), o))

    def _select_training_target(self, C):
        return C[:, 0] if self._y_1d else C

    def _training_labels(self, outputs: np.ndarray) -> np.ndarray:
        """The recorded training targets of the explained output (one index for all)."""
        Y = self._path["Y"]
        return Y[:, int(outputs[0]) if len(outputs) else 0]

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags


class PathKernelClassifier(ClassifierMixin, _PathKernelBase):
    """A multilayer perceptron classifier trained by plain gradient descent, exposed as its
    exact kernel machine.

    The loss is the logistic loss (two classes, one output) or the softmax cross-entropy
    (more classes, one output per class). Every prediction splits exactly over the
    training examples (:meth:`decompose`, :meth:`explain`, Domingos' path kernel), as for
    :class:`PathKernelRegressor`; decompositions are of the logits
    (``decision_function``).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Widths of the hidden layers; () is a linear model.
    activation : {"tanh", "relu", "softplus", "gelu", "identity"}, default="tanh"
        Activation of the hidden units.
    learning_rate : float or "auto", default="auto"
        The fixed step size of gradient descent. "auto": ``1 / lam``, ``lam`` the largest
        eigenvalue of the training loss's Hessian at the starting point (all rows for
        full batch; for mini-batches the steeper of a batch drawn in proportion to the
        weights and one of the heaviest rows), by Lanczos iteration on exact
        Hessian-vector products (at most 30, each about three passes over those rows);
        at most 10, to three significant digits. Where training with it diverges (the
        curvature grows as the network fits), it is halved and the network trained
        again, up to 4 times. The step taken is ``learning_rate_``. A fixed step suits
        one scale of data only: 0.05 (the default before "auto") diverged on raw
        diabetes targets and stalled on raw breast-cancer features.
    n_steps : int, default=500
        Gradient steps (one batch each).
    batch_size : int or None, default=None
        None: full batch. Otherwise mini-batches from a per-epoch shuffle (seeded from
        random_state, deterministic), the last batch of an epoch smaller, as scikit-learn.
    alpha : float, default=0.0
        L2 penalty on the weights (not biases), scikit-learn's convention.
    shuffle : bool, default=True
        Shuffle mini-batches each epoch.
    random_state : int, RandomState instance or None, default=None
        Initial weights (Glorot uniform, as scikit-learn's MLP) and the batch order.
    quadrature : int, default=4
        Gauss-Legendre nodes per step segment for decompose (1: start of step only).
    tol : float, default=1e-12
        Per-step self-check tolerance of decompose, relative to ``max |f|``.
    checkpoint_every : int or None, default=None
        Also keep the parameters every this many steps: memory ceil(n_steps / c) * P
        float64 values; lets tangent_kernel start its replay there and lets decompose run
        step ranges side by side (n_jobs > 1). The number of ranges follows the threads,
        and with it the order of the sums: decompositions on other thread counts agree to
        rounding (about 1e-15), not bit for bit. None keeps w_0 only (replay from the
        start; the same bits on any number of threads).
    record_path : bool, default=True
        Keep the training set and w_0 (n * (d + k) + P values) so that the model can be
        decomposed; False keeps only the trained weights.
    n_jobs : int or None, default=None
        Threads of the native code (None: OpenMP's default).
    verbose : bool, default=False
        Progress bar (tqdm when installed) with the loss.

    Attributes
    ----------
    coefs_ : list of ndarray of shape (fan_in, fan_out)
        The trained weights, one per layer (read-only copies: predictions and
        decompositions use the parameters recorded at fit).
    intercepts_ : list of ndarray of shape (fan_out,)
        The trained biases (read-only copies).
    initial_coefs_, initial_intercepts_ : lists of ndarray
        The starting point, same shapes.
    loss_curve_ : list of float
        Batch loss at the start of every step (before its update).
    loss_ : float
        ``loss_curve_[-1]``. A warning says where the loss on the training rows after
        the last step is over twice the starting point's (diverged).
    learning_rate_ : float
        The step size gradient descent took (``learning_rate``, or what "auto" chose);
        replay, decompositions and saved files use it.
    n_iter_ : int
        ``n_steps``.
    batch_seed_ : int
        Seed of the batch order (with initial_* and the data: a full replay).
    decomposition_error_ : float
        Worst per-step residual of the last decompose.
    path_memory_bytes_ : int
        Bytes kept for replay.
    classes_ : ndarray of shape (n_classes,)
        The class labels.

    See Also
    --------
    PathKernelRegressor : the regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from gramfree import PathKernelClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
    >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
    ...                            n_steps=200, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.9)
    True
    >>> ex = clf.explain(X[:2], top_k=3)  # the training rows behind each prediction
    >>> ex.supporting.shape
    (2, 3)
    """

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Train the network by plain gradient descent, recording what replay needs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training points.
        y : array-like of shape (n_samples,)
            Class labels: at least two classes.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each example's loss (None: all 1); the objective is
            (sum_i w_i loss_i + alpha/2 ||W||^2) / sum_i w_i, so with full batches integer
            weights train exactly as the rows repeated that many times (mini-batches: an
            unbiased estimate of the same step). Kept for replay with the training set.

        Returns
        -------
        self : PathKernelClassifier
            The fitted estimator.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import PathKernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
        >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
        ...                            n_steps=200, random_state=0).fit(X, y)
        >>> clf.classes_
        array([0, 1, 2])
        """
        self._forget_fit()
        try:
            X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
            X = np.asarray(X)  # an ndarray already: for the type checker
            check_label_types(y)
            check_classification_targets(y)
            sample_weight = _validated_sample_weight(sample_weight, X)
            enc = LabelEncoder()
            codes = enc.fit_transform(y)
            self.classes_ = enc.classes_
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y: needs at least 2 classes, got {len(self.classes_)} ({self.classes_!r})"
                )
            if len(self.classes_) == 2:
                Y = codes.reshape(-1, 1).astype(np.float64)
                loss = "logistic"
            else:
                Y = np.eye(len(self.classes_))[codes]
                loss = "softmax"
            return self._fit_network(X, Y, loss, sample_weight)
        except BaseException:
            self._forget_fit()
            raise

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """The network's logits at X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to score.

        Returns
        -------
        logits : ndarray of shape (n_samples,) or (n_samples, n_classes)
            Shape (n_samples,) for two classes (positive means ``classes_[1]``), else one
            column per class.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import PathKernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
        >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
        ...                            n_steps=200, random_state=0).fit(X, y)
        >>> clf.decision_function(X[:2]).shape
        (2, 3)
        """
        f = self._outputs(X)
        return f[:, 0] if f.shape[1] == 1 else f

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities at X: the sigmoid (two classes) or softmax of the logits.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Points to classify.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probabilities, columns in ``classes_`` order.

        Examples
        --------
        >>> import numpy as np
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import PathKernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
        >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
        ...                            n_steps=200, random_state=0).fit(X, y)
        >>> proba = clf.predict_proba(X[:2])
        >>> proba.shape, bool(np.allclose(proba.sum(axis=1), 1.0))
        ((2, 3), True)
        """
        return np.exp(self.predict_log_proba(X))

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Logarithms of :meth:`predict_proba`.

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
        >>> from gramfree import PathKernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
        >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
        ...                            n_steps=200, random_state=0).fit(X, y)
        >>> bool(np.allclose(np.exp(clf.predict_log_proba(X[:2])), clf.predict_proba(X[:2])))
        True
        """
        f = self._outputs(X)
        if f.shape[1] == 1:  # log sigmoid(+-f), without the -inf of log(1 - sigmoid(f))
            return np.column_stack([log_expit(-f[:, 0]), log_expit(f[:, 0])])
        shifted = f - f.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predicted class labels at X: the sign (two classes) or argmax of the logits.

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
        >>> from sklearn.datasets import load_iris
        >>> from gramfree import PathKernelClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> X = (X - X.mean(axis=0)) / X.std(axis=0)
        >>> clf = PathKernelClassifier(hidden_layer_sizes=(8,), learning_rate=0.5,
        ...                            n_steps=200, random_state=0).fit(X, y)
        >>> clf.predict(X[:3])
        array([0, 0, 0])
        """
        f = self._outputs(X)
        idx = (f[:, 0] > 0).astype(int) if f.shape[1] == 1 else np.argmax(f, axis=1)
        return self.classes_[idx]

    def _squeeze_outputs(self) -> bool:
        return len(self.classes_) == 2

    def _class_hits(self, label) -> np.ndarray:
        """Indices of the classes equal to ``label`` (a single value, not an array)."""
        if np.ndim(label) != 0:
            raise ValueError(
                f'target: must be None, "predicted", "margin" or one class label, got {label!r}'
            )
        # Element by element: numpy 1.x compares string classes with an integer label (or
        # integer classes with a string) by a FutureWarning and a scalar False.
        return np.flatnonzero([bool(c == label) for c in self.classes_])

    def _class_index(self, label) -> int:
        hits = self._class_hits(label)
        if hits.size != 1:
            raise ValueError(
                f"target: {label!r} is not one of the classes {self.classes_.tolist()}"
            )
        return int(hits[0])

    def _target_choice(self, target) -> tuple[str, int | None]:
        """How explain and influence read ``target``: ("class", its index), ("predicted",
        None) or ("margin", None). A class label wins over the keywords (a class labelled
        "margin" is that class); None is the predicted class."""
        if target is None:
            return "predicted", None
        if isinstance(target, str):  # np.str_ too
            hits = self._class_hits(target)
            if hits.size == 1:
                return "class", int(hits[0])
            if target == "predicted" or target == "margin":
                return str(target), None
        return "class", self._class_index(target)

    def _explained(self, dec: PathDecomposition, target):
        c: Any  # a class index, or one per query
        kind, index = self._target_choice(target)
        C, out, base = dec.contributions, dec.output, dec.initial + dec.reg
        if C.ndim == 2:  # binary: one logit, for classes_[1]; "margin" is "predicted"
            if kind == "class":
                sign = np.full(len(out), 1.0 if index == 1 else -1.0)
                labels = np.full(len(out), self.classes_[index])
            else:
                predicted = (out > 0).astype(int)
                sign = np.where(predicted == 1, 1.0, -1.0)
                labels = self.classes_[predicted]
            return C * sign[:, None], out * sign, base * sign, labels
        rows = np.arange(len(out))
        order = np.argsort(-out, axis=1, kind="stable")
        if kind == "predicted":
            c = order[:, 0]
            return C[rows, :, c], out[rows, c], base[rows, c], self.classes_[c]
        if kind == "margin":
            c, r = order[:, 0], order[:, 1]
            return (
                C[rows, :, c] - C[rows, :, r],
                out[rows, c] - out[rows, r],
                base[rows, c] - base[rows, r],
                self.classes_[c],
            )
        c = index
        return C[:, :, c], out[:, c], base[:, c], np.full(len(out), self.classes_[c])

    def _select_training_target(self, C):
        """Contribution to the example's own label: its logit (binary: signed toward it)."""
        y_codes = self._training_codes()
        if C.shape[1] == 1:
            return C[:, 0] * np.where(y_codes == 1, 1.0, -1.0)
        return C[np.arange(len(C)), y_codes]

    def _training_labels(self, targets: np.ndarray) -> np.ndarray:
        """The training examples' class labels (recorded as codes for replay)."""
        return self.classes_[self._training_codes()]

    def _training_codes(self) -> np.ndarray:
        Y = self._path["Y"]
        return Y[:, 0].astype(int) if Y.shape[1] == 1 else np.argmax(Y, axis=1)
