"""Kernel machines on dask arrays: Nystrom-PCG whose passes over the data run where the
data's chunks live (dask.distributed workers, or dask's local scheduler), and prediction
block by block. The fitted model is the ordinary in-memory one (``centers_``,
``dual_coef_``): pickle, ``save`` and in-process ``predict`` work on it unchanged.

Per CG iteration the client sends the M x t direction to the workers and each row chunk
returns one M x t partial sum ``K_cM^T W_c K_cM p`` (a tree reduction adds them): the rows
stay where X's graph puts them (persisted on the workers, or read there from files); only
the centres' rows are gathered, once, chosen on the client from the chunk sizes. The
preconditioner and CG loop are the in-process solver's
(:func:`gramfree.solvers.nystrom_pcg.falkon_cg`) with the pass over the data as
``normal_pass``: the same iterates up to the order of the sums.

dask is an optional extra (``pip install gramfree[dask]``): nothing here imports it until
an estimator is handed a dask collection.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import pickle
import sys
import time
import types
import warnings
from collections.abc import Iterator
from functools import partial

import numpy as np

from ._log import caller_stacklevel, say
from .operators import KernelOperator, as_float_array
from .solvers._common import (
    HEAVY_MEAN,
    apart_floor,
    center_rows,
    heavy_count,
    preconditioner_weights,
    weights_in_range,
)
from .solvers.auto import WEIGHT_SPAN_PCG
from .solvers.nystrom_direct import GRADED_SPAN

# The centres a dask fit draws when neither n_centers nor centers is given: the number
# solver="auto" starts its growing loop from (gramfree.solvers.auto.MIN_CENTERS), at most n.
DEFAULT_CENTERS = 1000
DEFAULT_MAX_ITER = 100
# The solvers a dask fit runs: both read the data in passes over its row chunks.
DASK_SOLVERS = ("auto", "nystrom-pcg", "nystrom-direct")


def is_dask_collection(*arrays) -> bool:
    """True when any argument is a dask collection (without importing dask otherwise)."""
    if "dask" not in sys.modules:
        return False
    import dask

    return any(a is not None and dask.is_dask_collection(a) for a in arrays)


# -- validation ------------------------------------------------------------------------


def _as_dask_rows(A, name: str, *, known_rows: bool = True):
    """A dask array from a dask array or dask DataFrame/Series (row lengths computed)."""
    import dask.array as da

    if not isinstance(A, da.Array) and hasattr(A, "to_dask_array"):
        A = A.to_dask_array(lengths=True)
    if not isinstance(A, da.Array):
        raise TypeError(
            f"{name}: expected a dask array (as the other arguments are), got {type(A).__name__}"
        )
    if known_rows and any(np.isnan(c) for c in A.chunks[0]):
        raise ValueError(
            f"{name}: its chunk sizes are unknown; call {name}.compute_chunk_sizes() first"
        )
    return A


def check_X(X, *, n_features: int | None = None):
    """X as a 2-d float32/float64 dask array chunked by rows only (columns in one chunk).
    Integers and booleans become float64, as scikit-learn's validate_data does. Values
    are checked lazily, in the first pass over the data."""
    X = _as_dask_rows(X, "X", known_rows=n_features is None)  # predict: any row chunks
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array, got {X.ndim} dimension(s) (shape {X.shape})")
    kind = X.dtype.kind
    if kind in "biu":
        X = X.astype(np.float64)
    elif X.dtype not in (np.float32, np.float64):
        raise ValueError(f"X: dtype must be float32 or float64 (or integer), got {X.dtype}")
    if X.shape[0] == 0 or X.shape[1] == 0:  # (nan rows: unknown, not empty)
        raise ValueError(f"X: empty array of shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"X: has {X.shape[1]} features, but the model was fitted with {n_features}"
        )
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X


def _rows_like(X, A, name: str, *, ndims=(1,)):
    """``A`` (dask or in-memory) as a dask array with X's row chunks, one column chunk."""
    import dask.array as da

    if is_dask_collection(A):
        A = _as_dask_rows(A, name)
    else:
        A = np.asarray(A)
    if A.ndim not in ndims:
        raise ValueError(
            f"{name}: expected a {' or '.join(f'{k}-d' for k in ndims)} array, "
            f"got {A.ndim} dimension(s)"
        )
    if A.shape[0] != X.shape[0]:
        raise ValueError(f"{name}: has {A.shape[0]} rows, X has {X.shape[0]}")
    chunks = (X.chunks[0],) + tuple((s,) for s in A.shape[1:])
    if isinstance(A, np.ndarray):
        return da.from_array(A, chunks=chunks)
    return A.rechunk(chunks) if A.chunks != chunks else A


def _check_weights(X, sample_weight):
    if sample_weight is None:
        return None
    w = _rows_like(X, sample_weight, "sample_weight")
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight: dtype must be numeric, got {w.dtype}")
    return w.astype(X.dtype)


# -- targets -----------------------------------------------------------------------------


def _regression_targets(X, y):
    y = _rows_like(X, y, "y", ndims=(1, 2))
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y: dtype must be numeric, got {y.dtype}")
    Y = y[:, None] if y.ndim == 1 else y
    return y, Y.astype(X.dtype)


def _abs_max_block(b):
    return np.full((1,) * b.ndim, float(np.abs(b).max(initial=0.0)))


def _check_target_range(Y, dtype) -> None:
    """The in-memory fit's refusal of targets whose squares over- or underflow
    (:func:`gramfree.estimators._base.check_target_range`), from y's largest magnitude
    (one small pass over y, chunk by chunk: dask's max fails on an empty chunk; before,
    1e160 times y fitted an all-zero model silently)."""
    from .estimators._base import check_target_range

    chunks = tuple((1,) * n for n in Y.numblocks)
    (top,) = compute(Y.map_blocks(_abs_max_block, chunks=chunks, dtype=np.float64).max())
    if np.isfinite(top):  # NaN or infinity: the first pass refuses them, naming y
        check_target_range(np.array([float(top)]), dtype)


def _largest_row_block(Xb, block_info=None):
    """``[[log |x|, index]]`` of the chunk's row of largest norm (each row's norm scaled by
    its largest entry, so that none overflows); ``[[-inf, -1]]`` for an empty chunk."""
    if Xb.shape[0] == 0:
        return np.array([[-np.inf, -1.0]])
    start = block_info[0]["array-location"][0][0]
    A = np.abs(Xb.astype(np.float64))
    top = A.max(axis=1)
    safe = np.where(top > 0, top, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_norm = np.log(safe) + 0.5 * np.log(np.sum((A / safe[:, None]) ** 2, axis=1))
    log_norm = np.where(np.isnan(log_norm), np.inf, log_norm)  # NaN rows: checked later
    i = int(np.argmax(log_norm))
    return np.array([[log_norm[i], float(start + i)]])


def _check_kernel_range(X, kernel, dtype, n_jobs) -> None:
    """The in-memory fit's refusal of data on which the kernel overflows
    (:func:`gramfree.estimators._base.check_kernel_range`): it first overflows on the
    row of largest norm, found in one pass and checked in memory. Before, the fit failed
    far from the cause ("B: contains NaN or infinity")."""
    from .estimators._base import check_kernel_range

    best = X.map_blocks(_largest_row_block, chunks=((1,) * X.numblocks[0], (2,)), dtype=np.float64)
    (best,) = compute(best)
    i = int(best[int(np.argmax(best[:, 0])), 1])
    if i < 0:
        return
    row = np.asarray(X[i].compute())[None]
    if np.isfinite(row).all():  # a non-finite X is refused, naming it, by the first pass
        check_kernel_range(row, kernel, dtype, n_jobs, row_index=i)


def _class_block(yb, classes, dtype):
    codes = np.searchsorted(classes, yb)
    if len(classes) == 2:
        return (2.0 * codes - 1.0).astype(dtype)[:, None]
    Y = np.zeros((len(yb), len(classes)), dtype=dtype)
    Y[np.arange(len(yb)), codes] = 1.0
    return Y


def _weight_block(yb, classes, per_class):
    return per_class[np.searchsorted(classes, yb)]


def _classification_targets(estimator, X, y, w):
    """``(y, classes, Y, w)``: +-1 or one-hot targets built block by block from the classes
    (one small pass over y), and the weights times ``class_weight``, as
    :func:`gramfree.estimators.classifier.class_targets` does in memory."""
    import dask.array as da
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.multiclass import check_classification_targets

    y = _rows_like(X, y, "y", ndims=(1, 2))
    if y.ndim == 2:
        if y.shape[1] != 1:
            raise ValueError(f"y: expected a 1-d array of labels, got shape {y.shape}")
        y = y[:, 0]
    classes, counts = compute(*da.unique(y, return_counts=True))
    check_classification_targets(classes)
    if len(classes) < 2:
        raise ValueError(
            f"{type(estimator).__name__} needs samples of at least 2 classes; "
            f"got 1 class ({np.asarray(classes)[:1].tolist()[0]!r})"
        )
    Y = y.map_blocks(
        _class_block,
        classes,
        X.dtype,
        dtype=X.dtype,
        new_axis=1,
        chunks=(y.chunks[0], (1 if len(classes) == 2 else len(classes),)),
    )
    if estimator.class_weight is not None:
        from .estimators.classifier import check_class_weight

        check_class_weight(estimator.class_weight, classes)
        if isinstance(estimator.class_weight, str):  # "balanced": W / (k * W_c)
            weighted = (
                counts.astype(np.float64)
                if w is None
                else np.array(compute(*[(w * (y == c)).sum() for c in classes]), dtype=float)
            )
            with np.errstate(divide="ignore"):
                per_class = np.where(weighted > 0, weighted.sum() / (len(classes) * weighted), 0.0)
        else:
            per_class = compute_sample_weight(estimator.class_weight, classes)
        per_class = per_class.astype(X.dtype)
        if not per_class.any():
            raise ValueError("class_weight: gives every sample weight zero")
        cw = y.map_blocks(_weight_block, classes, per_class, dtype=X.dtype)
        w = cw if w is None else w * cw
    return y, classes, Y, w


# -- the passes over the data ------------------------------------------------------------


def _scheduler_client():
    """The distributed Client dask.compute would use now, or None (local scheduler)."""
    import dask

    scheduler = dask.base.get_scheduler()
    client = getattr(scheduler, "__self__", None)
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask without distributed
        return None
    return client if isinstance(client, Client) else None


# The futures a fit has sent to the workers (scattered centres, persisted weights), collected
# by _share/_persist while a fit_scope is active and cancelled when it ends: an interrupted
# fit's traceback (kept by a REPL as sys.last_traceback) would otherwise keep them alive.
_HELD: contextvars.ContextVar[list | None] = contextvars.ContextVar("gramfree_held", default=None)


@contextlib.contextmanager
def fit_scope(client) -> Iterator[None]:
    """Release on exit, however it exits, what the fit sent to ``client``'s workers."""
    held: list = []
    token = _HELD.set(held)
    try:
        yield
    finally:
        _HELD.reset(token)
        if client is not None and held:
            client.cancel(held)


def _hold(value):
    held = _HELD.get()
    if held is not None:
        held.extend(value if isinstance(value, (list, tuple)) else [value])
    return value


def _share(value, client):
    """``value`` for the tasks of a graph: one delayed literal, computed once on the
    cluster and held there as a future (distributed).

    Not scattered: scattered data has no task to recompute it from, and the scheduler's
    active memory manager drops a broadcast's extra copies within seconds, so a worker that
    died holding the last copy failed the fit (FutureCancelledError: "lost scattered
    data"). A future of a task is recomputed elsewhere from its literal, as the data's
    chunks are. A value larger than a quarter of dask's large-graph warning threshold goes
    as pickled pieces below it, each its own task, joined by a task that depends on them:
    no warning, and no warning filter to set (a filter set around the call leaked when
    concurrent fits' ``catch_warnings`` interleaved; a review)."""
    import dask

    if client is None:
        return dask.delayed(value, pure=True)
    piece = _share_piece_bytes()
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    if len(data) <= piece:
        return _hold(client.compute(dask.delayed(value, pure=False)))
    pieces = [
        _hold(client.compute(dask.delayed(data[i : i + piece], pure=False)))
        for i in range(0, len(data), piece)
    ]
    return _hold(client.submit(_joined, *pieces, pure=False))


def _share_piece_bytes() -> int:
    """A quarter of distributed's large-graph warning threshold (10 MB unless set)."""
    import dask

    try:
        from dask.utils import parse_bytes

        threshold = parse_bytes(
            dask.config.get("distributed.admin.large-graph-warning-threshold", "10MB")
        )
    except (TypeError, ValueError):
        threshold = 10 * 2**20
    return max(2**16, int(threshold) // 4)


def _joined(*pieces: bytes):
    return pickle.loads(b"".join(pieces))


def _persist(collection, client):
    """``collection`` (a dask array) persisted on the workers under keys of this fit's
    own, held by the active fit_scope. Persisted as it was, its keys were the caller's
    graph's: two fits on one client with the same weights array shared them, and the
    first to end cancelled them under the other (FutureCancelledError; a review)."""
    import uuid

    own = collection.map_blocks(
        _same_block, dtype=collection.dtype, name=f"gramfree-held-{uuid.uuid4().hex}"
    )
    out = client.persist(own)
    _hold(out)
    return out


def _same_block(block):
    return block


def compute(*collections):
    """``dask.compute(*collections)``; on a distributed client through futures that are
    cancelled when the wait ends in an exception: Ctrl-C (KeyboardInterrupt) during a fit
    stops its tasks on the cluster instead of leaving them to run."""
    import dask

    client = _scheduler_client()
    if client is None:
        return dask.compute(*collections)
    futures = client.compute(list(collections))
    try:
        return tuple(client.gather(futures))
    except BaseException:
        client.cancel(futures)
        raise


def _check_block(Xb, Yb=None, wb=None):
    # The fit's NaN/inf checks, in its first pass: raised on the worker, re-raised by
    # dask.compute on the client with the argument's name.
    if not np.isfinite(Xb).all():
        raise ValueError("X: contains NaN or infinity")
    if Yb is not None and not np.isfinite(Yb).all():
        raise ValueError("y: contains NaN or infinity")
    if wb is not None:
        if not np.isfinite(wb).all():
            raise ValueError("sample_weight: contains NaN or infinity")
        if (wb < 0).any():
            raise ValueError("sample_weight: contains negative weights")


def _refuse_weight_sum(w) -> None:
    """Weights that sum to zero or less: negative ones named as the passes' checks (and
    the in-memory fit) name them, where the sum's test came first (a review found
    nystrom-direct say "all weights are zero" of mostly negative weights)."""
    (negative,) = compute((w < 0).any())
    if negative:
        raise ValueError("sample_weight: contains negative weights")
    raise ValueError("sample_weight: all weights are zero")


def _rhs_block(Xb, Yb, wb=None, *, model, kernel_dtype, n_jobs):
    """One chunk's ``K_cM^T W_c [y_c, 1]`` (float64, with a leading axis of 1 for the sum):
    the right-hand side and, in its last column, ``K^T W 1`` for the centred target's
    (:func:`gramfree.solvers.nystrom_pcg.centred_rhs`)."""
    centers, kernel = model
    if Xb.shape[0] == 0:  # an empty chunk (boolean indexing, filtered partitions)
        return np.zeros((1, centers.shape[0], Yb.shape[1] + 1))
    _check_block(Xb, Yb, None if wb is None else wb[:, 0])
    ones = np.ones((Yb.shape[0], 1), dtype=Yb.dtype) if wb is None else wb.astype(Yb.dtype)
    Wy = np.hstack([Yb if wb is None else Yb * wb, ones])
    op = KernelOperator(
        np.ascontiguousarray(Xb, dtype=kernel_dtype), centers, kernel, n_jobs=n_jobs
    )
    return op.rmatmat(Wy).astype(np.float64)[None]


def _normal_block(Xb, p, wb=None, *, model, kernel_dtype, n_jobs):
    """One chunk's ``K_cM^T W_c K_cM p`` (float64, leading axis of 1)."""
    centers, kernel = model
    if Xb.shape[0] == 0:
        return np.zeros((1, centers.shape[0], p.shape[1]))
    op = KernelOperator(
        np.ascontiguousarray(Xb, dtype=kernel_dtype), centers, kernel, n_jobs=n_jobs
    )
    w = None if wb is None else wb[:, 0]
    return op.normal_matvec(p, sample_weight=w).astype(np.float64)[None]


def _widened_block(Xb, Yb, coef, wb=None, *, model, kernel_dtype, n_jobs):
    """One chunk's refinement pass (:func:`gramfree.solvers.nystrom_pcg.widened_residual`):
    ``K_cM^T W_c (y_c - K_cM a)`` in its first M rows, ``sum w (y - f)^2`` in the next's
    first column (float64, leading axis of 1)."""
    from .solvers.nystrom_pcg import widened_residual

    centers, kernel = model
    Xk = np.ascontiguousarray(Xb, dtype=kernel_dtype)
    gradient, sse = widened_residual(
        lambda a, b: KernelOperator(Xk[a:b], centers, kernel, n_jobs=n_jobs),
        Xk.shape[0],
        Yb,
        None if wb is None else wb[:, 0],
        coef,
    )
    out = np.zeros((coef.shape[0] + 1, coef.shape[1]))
    out[:-1] = gradient
    out[-1, 0] = sse
    return out[None]


def _chunk_sum(fn, X, W, others, *, M: int, t: int, whole=(), **kwargs):
    """``sum over row chunks of fn(X_c, *others_c, *whole, W_c)``: an (M, t) dask array,
    the chunks' partial sums added by dask's tree reduction (the order fixed by the
    chunks). ``others`` have X's row chunks; ``whole`` are 2-d dask arrays every task
    takes entire (one graph key each, not a copy per task)."""
    import dask.array as da

    args = [X, "il"]
    for k, A in enumerate(others):
        args += [A, f"i{k}"]  # distinct dummy indices: each has one column chunk
    for k, A in enumerate(whole):
        args += [A, "abcdefgh"[2 * k : 2 * k + 2]]  # unused letters: concatenated whole
    if W is not None:
        args += [W[:, None], "iw"]
    parts = da.blockwise(
        fn,
        "ijk",
        *args,
        new_axes={"j": M, "k": t},
        adjust_chunks={"i": 1},
        concatenate=True,
        dtype=np.float64,
        meta=np.empty((0, 0, 0)),
        **kwargs,
    )
    return parts.sum(axis=0)


# -- the fit -----------------------------------------------------------------------------


def solve_nystrom_pcg_dask(
    X,
    Y,
    w,
    centers: np.ndarray,
    kernel,
    *,
    alpha: float,
    kernel_dtype,
    n_jobs,
    max_iter: int,
    tol: float,
    verbose=False,
    center_weights=None,
    heavy_rows=None,
    watch_objective: bool = False,
):
    """Falkon on row-chunked dask arrays X (n, d), Y (n, t), w (n,) or None, on in-memory
    ``centers`` (M, d); ``center_weights``: what each centre stands for in the
    preconditioner (:func:`_centers`; None: an even share); ``heavy_rows``: the rows
    apart that are no centre, counted by their kernel columns (``_centers``; only those
    rows travel); ``watch_objective``: as for
    :func:`gramfree.solvers.nystrom_pcg.falkon_cg` (very uneven weights). Returns
    :class:`gramfree.solvers._common.SolverResult`; the preconditioner and CG loop are
    the in-process solver's (:func:`gramfree.solvers.nystrom_pcg.falkon_cg`), its passes
    the workers', and so are
    its retries with float32 products: once more with float64 factors, then with float64
    products, where a fit stagnated, each kept if better (a review found the float32
    digits case the in-process solver retries return the zero model here, 1 of 100
    iterations run, behind a max_iter warning)."""
    from .solvers.nystrom_pcg import _count_discarded, retry_stalled_float32

    client = _scheduler_client()
    if w is not None and client is not None:
        # The weights (n values, a d-th of X) enter every pass: keep them on the workers
        # rather than recompute their graph (rechunking, class weights) each time.
        w = _persist(w, client)
    kernel_dtype = np.dtype(kernel_dtype)
    args = (X, Y, w, centers, kernel, client)
    kwargs = dict(
        alpha=alpha,
        n_jobs=n_jobs,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        center_weights=center_weights,
        heavy_rows=heavy_rows,
        watch_objective=watch_objective,
    )
    # Float32 factors only with float32 data and products, as in process (their jitter
    # enters the penalty, which only float32 products' refinement measures).
    factor_dtype = np.result_type(X.dtype, kernel_dtype)

    def discard(kept, discarded) -> None:
        kept.info["dask"]["passes"] += discarded.info["dask"]["passes"]
        _count_discarded(kept, discarded)

    float32_products = kernel_dtype == np.float32
    return retry_stalled_float32(
        _pcg_dask_once(*args, kernel_dtype=kernel_dtype, factor_dtype=factor_dtype, **kwargs),
        float64_factors=(
            (
                lambda: _pcg_dask_once(
                    *args, kernel_dtype=kernel_dtype, factor_dtype=np.float64, **kwargs
                )
            )
            if float32_products and factor_dtype == np.float32
            else None
        ),
        float64_products=(
            (
                lambda: _pcg_dask_once(
                    *args, kernel_dtype=np.float64, factor_dtype=np.float64, **kwargs
                )
            )
            if float32_products
            else None
        ),
        discard=discard,
    )


def _pcg_dask_once(
    X,
    Y,
    w,
    centers,
    kernel,
    client,
    *,
    alpha,
    kernel_dtype,
    factor_dtype,
    n_jobs,
    max_iter,
    tol,
    verbose,
    center_weights,
    heavy_rows,
    watch_objective,
):
    """One Falkon fit on the workers' passes, with kernel values in ``kernel_dtype`` and
    the preconditioner's factors in ``factor_dtype``."""
    import dask.array as da

    from .solvers.nystrom_pcg import HEAVY_BLOCK, centred_rhs, falkon_cg

    dtype = X.dtype
    M, t = centers.shape[0], Y.shape[1]
    centers_k = np.ascontiguousarray(centers, dtype=kernel_dtype)
    model = _share((centers_k, kernel), client)
    W2 = None if w is None else w[:, None]
    common = dict(M=M, t=t, model=model, kernel_dtype=kernel_dtype, n_jobs=n_jobs)

    # First pass: K^T W y, with the data's checks; y^T W y and sum w from y and w alone.
    rhs_sum = _chunk_sum(_rhs_block, X, w, [Y], **dict(common, t=t + 1))
    Y64 = Y.astype(np.float64)
    yWy = (Y64**2).sum() if w is None else ((Y64**2) * W2).sum()
    wY = Y64.sum(axis=0) if w is None else (Y64 * W2).sum(axis=0)
    s = X.shape[0] if w is None else w.sum()
    tic = time.perf_counter()
    KtWy1, yWy, wY, s = compute(rhs_sum, yWy, wY, s)
    yWy, s = float(yWy), float(s)
    if s <= 0.0:
        _refuse_weight_sum(w)
    KtWy, centred_KtWy = centred_rhs(KtWy1, np.asarray(wY, dtype=np.float64), s)
    # Every pass counted is timed: the first was counted and not, so seconds per pass
    # came out 1/passes low (bench_dask.py --scale: 14.0 s for 15.4; a review).
    passes = 1
    pass_seconds = time.perf_counter() - tic

    def normal_pass(p):
        nonlocal passes, pass_seconds
        tic = time.perf_counter()
        # The direction enters the graph once, as one key every chunk's task depends on
        # (a workers' copy each), not once per task.
        whole_p = da.from_array(p, chunks=p.shape)
        (out,) = compute(_chunk_sum(_normal_block, X, w, [], whole=[whole_p], **common))
        passes += 1
        pass_seconds += time.perf_counter() - tic
        return out

    centers_64 = np.ascontiguousarray(centers, dtype=np.float64)
    # float32 products: falkon_cg's refinement, on the workers, from float64 kernel
    # values as in process (solve_nystrom_pcg's _ExactPass: the float64 model).
    exact_rows = dict(common, M=M + 1, kernel_dtype=np.dtype(np.float64))
    exact_rows["model"] = (
        _share((centers_64, kernel), client) if kernel_dtype == np.float32 else None
    )

    def exact_pass(coef):
        nonlocal passes, pass_seconds
        tic = time.perf_counter()
        whole_c = da.from_array(coef, chunks=coef.shape)
        (out,) = compute(_chunk_sum(_widened_block, X, w, [Y], whole=[whole_c], **exact_rows))
        passes += 1
        pass_seconds += time.perf_counter() - tic
        return out[:-1], float(out[-1, 0])

    # K_MM from float64 kernel values under float32 products (solve_nystrom_pcg's reason)
    kmm_centers = centers_64 if kernel_dtype == np.float32 else centers_k

    def heavy_columns():  # as solve_nystrom_pcg's, from the rows gathered
        X_h = gather_rows(X, heavy_rows).astype(kmm_centers.dtype)
        root = np.sqrt(np.asarray(gather_rows(w, heavy_rows), dtype=np.float64) / s)
        for a in range(0, X_h.shape[0], HEAVY_BLOCK):
            op = KernelOperator(kmm_centers, X_h[a : a + HEAVY_BLOCK], kernel, n_jobs=n_jobs)
            block = op.to_dense()
            block *= root[a : a + HEAVY_BLOCK]
            yield block
            del block  # before the next is formed (falkon_cg drops its reference)

    result = falkon_cg(
        lambda: KernelOperator(kmm_centers, None, kernel, n_jobs=n_jobs).to_dense(),
        normal_pass,
        KtWy,
        yWy,
        s,
        alpha,
        centers=centers,
        dtype=dtype,
        precond_dtype=factor_dtype,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        desc="nystrom-pcg[dask]",
        exact_pass=exact_pass if kernel_dtype == np.float32 else None,
        product_dtype=kernel_dtype,
        exact_penalty=lambda a: KernelOperator(centers_64, None, kernel, n_jobs=n_jobs) @ a,
        center_weights=center_weights,
        heavy_columns=None if heavy_rows is None else heavy_columns,
        watch_objective=watch_objective,
        centred_KtWy=centred_KtWy,
    )
    result.info["dask"] = {
        "scheduler": "distributed" if client is not None else "local",
        "n_chunks": int(X.numblocks[0]),
        "passes": passes,
        "pass_seconds": pass_seconds,
    }
    return result


def _warn_cancellation_dask(X, Y, result, kernel, n_jobs, alpha, rows=None) -> None:
    """The in-memory fit's cancellation warning
    (:func:`gramfree.estimators._base._warn_cancellation`) for dask X (a review found it
    never said on dask what it says in memory for the same coefficients). Its probe: where
    the centres are training rows (``rows``, their indices), up to ``CANCELLATION_PROBE``
    of them, already in memory, and the targets' scale from theirs; gathering rows spread
    over X read every chunk once more, a fifth more reading for the one-pass solver (a
    review). Given centres: that many rows of X gathered, the scale from all targets."""
    from .estimators._base import CANCELLATION_PROBE, _warn_cancellation

    if rows is not None:
        picked = np.unique(
            np.linspace(0, len(rows) - 1, min(len(rows), CANCELLATION_PROBE)).astype(np.intp)
        )
        probe = np.asarray(result.centers)[picked]
        targets = gather_rows(Y, np.asarray(rows)[picked]).astype(np.float64)
        mean_square = float(np.mean(targets**2)) if targets.size else 0.0
    else:
        n = X.shape[0]
        spread = np.unique(np.linspace(0, n - 1, min(n, CANCELLATION_PROBE)).astype(np.intp))
        probe, mean_square = compute(X[spread], (Y.astype(np.float64) ** 2).mean())
    problem = types.SimpleNamespace(
        X=np.asarray(probe),
        operator=lambda A, B: KernelOperator(A, B, kernel, n_jobs=n_jobs),
    )
    _warn_cancellation(problem, result, target_rms=math.sqrt(float(mean_square)), alpha=alpha)


def _chunk_problem(Xb, Yb, wb, kernel, n_jobs):
    """One chunk's rows as the one-pass solver's in-memory passes read a problem."""
    return types.SimpleNamespace(
        X=Xb,
        Y=Yb,
        sample_weight=None if wb is None else wb[:, 0],
        kernel=kernel,
        n_jobs=n_jobs,
        device="cpu",
    )


def _gram_block(Xb, Yb, wb=None, *, model, block_rows, product_dtype, n_jobs):
    """One chunk's ``[G | R]`` (M x (M + t), float64; leading axis of 1): the one-pass
    solver's block pass (:func:`gramfree.solvers.nystrom_direct._gram_pass`) on its rows."""
    from .solvers.nystrom_direct import _gram_pass

    C64, kernel, L, basis = model
    if Xb.shape[0] == 0:
        return np.zeros((1, C64.shape[0], C64.shape[0] + Yb.shape[1]))
    _check_block(Xb, Yb, None if wb is None else wb[:, 0])
    chunk = _chunk_problem(Xb, Yb, wb, kernel, n_jobs)
    rows = min(block_rows, Xb.shape[0])
    G, R = _gram_pass(chunk, C64, rows, L=L, dtype=product_dtype, basis=basis)
    return np.concatenate([G, R], axis=1)[None]


def _loss_block(Xb, Yb, wb=None, *, model, coef, product_dtype, n_jobs):
    """One chunk's ``sum w (K a - y)^2`` as a (1, 1, 1) array."""
    from .solvers.nystrom_direct import _loss_sum

    C64, kernel = model
    if Xb.shape[0] == 0:
        return np.zeros((1, 1, 1))
    chunk = _chunk_problem(Xb, Yb, wb, kernel, n_jobs)
    return np.full((1, 1, 1), _loss_sum(chunk, C64, coef, product_dtype))


def _loss_residual_block(Xb, Yb, wb=None, *, model, coef, n_jobs):
    """One chunk's ``sum w (K a - y)^2`` (row 0, per target) and ``K^T W (y - K a)`` (rows
    1 to M) as a (1, M + 1, t) array."""
    from .solvers.nystrom_direct import _loss_residual_sum

    C64, kernel = model
    out = np.zeros((1, C64.shape[0] + 1, Yb.shape[1]))
    if Xb.shape[0] == 0:
        return out
    chunk = _chunk_problem(Xb, Yb, wb, kernel, n_jobs)
    out[0, 0], out[0, 1:] = _loss_residual_sum(chunk, C64, coef)
    return out


class _DaskPasses:
    """The one-pass solver's passes (:class:`gramfree.solvers.nystrom_direct.MemoryPasses`)
    over row-chunked dask arrays: each chunk's M x M Gram (and M x t right-hand side) is
    formed where the chunk lives and the partial Grams are tree-summed; the client solves
    the M x M system."""

    def __init__(self, X, Y, w, centers, kernel, *, n_jobs, client, fallback):
        self.X, self.Y, self.w = X, Y, w
        self.C64 = np.ascontiguousarray(centers, dtype=np.float64)
        self.kernel, self.n_jobs, self.client = kernel, n_jobs, client
        self._fallback = fallback
        self._graded = None  # the graded QR's plan (:meth:`graded_possible`), made once
        self._model = _share((self.C64, kernel), client)
        self.passes = 0
        self.pass_seconds = 0.0
        Y64 = Y.astype(np.float64)
        yWy = (Y64**2).sum(axis=0) if w is None else ((Y64**2) * w[:, None]).sum(axis=0)
        wY = Y64.sum(axis=0) if w is None else (Y64 * w[:, None]).sum(axis=0)
        s = X.shape[0] if w is None else w.sum()
        import dask.array as da

        top, low = (1.0, 1.0) if w is None else (w.max(), da.where(w > 0, w, np.inf).min())
        yWy, wY, s, top, low = compute(yWy, wY, s, top, low)
        self._yWy_t, self._wY = np.asarray(yWy, float), np.asarray(wY, float)
        self._yWy, self.weight_sum = float(self._yWy_t.sum()), float(s)
        # weight_span's largest over smallest positive weight (1.0 with none positive)
        self._span = float(top) / float(low) if 0.0 < float(low) < np.inf else 1.0

    def _sum(self, fn, M: int, t: int, **kwargs):
        tic = time.perf_counter()
        (out,) = compute(_chunk_sum(fn, self.X, self.w, [self.Y], M=M, t=t, **kwargs))
        self.passes += 1
        self.pass_seconds += time.perf_counter() - tic
        return out

    def yWy(self) -> float:
        return self._yWy

    def yWy_per_target(self) -> np.ndarray:
        return self._yWy_t

    def wY(self) -> np.ndarray:
        return self._wY

    def weight_span(self) -> float:
        return self._span

    def gram(self, C64, block_rows: int, L=None, dtype=np.float64, basis=None):
        M, t = C64.shape[0], self.Y.shape[1]
        model = _share((C64, self.kernel, L, basis), self.client)
        GR = self._sum(
            _gram_block,
            M,
            M + t,
            model=model,
            block_rows=block_rows,
            product_dtype=dtype,
            n_jobs=self.n_jobs,
        )
        return np.asfortranarray(GR[:, :M]), np.ascontiguousarray(GR[:, M:])

    def loss(self, C64, coef, dtype=np.float64) -> float:
        model = self._model if C64 is self.C64 else _share((C64, self.kernel), self.client)
        out = self._sum(
            _loss_block, 1, 1, model=model, coef=coef, product_dtype=dtype, n_jobs=self.n_jobs
        )
        return float(out[0, 0])

    def loss_residual(self, C64, coef) -> tuple[np.ndarray, np.ndarray]:
        model = self._model if C64 is self.C64 else _share((C64, self.kernel), self.client)
        out = self._sum(
            _loss_residual_block,
            C64.shape[0] + 1,
            self.Y.shape[1],
            model=model,
            coef=coef,
            n_jobs=self.n_jobs,
        )
        return out[0].copy(), np.ascontiguousarray(out[1:])

    def graded_possible(self, alpha: float) -> bool:
        """Whether the graded QR can run here: the rows outside its light tail fit on the
        client (:mod:`gramfree._dask_graded`; one pass reading the kernel's diagonal,
        made once)."""
        from ._dask_graded import DaskGraded

        if self._graded is None:
            self._graded = DaskGraded(
                self.X, self.Y, self.w, self.kernel, alpha=alpha, n_jobs=self.n_jobs
            )
        return self._graded.possible()

    def graded(self, C64, L, block_rows: int, *, singular: bool):
        """The graded QR: the tail summed on the workers, the heavy rows QR'd here."""
        tic = time.perf_counter()
        out = self._graded.solve(
            C64, L, block_rows, singular=singular, share=lambda v: _share(v, self.client)
        )
        self.passes += 1
        self.pass_seconds += time.perf_counter() - tic
        return out

    def fallback(self, centers, *, max_iter: int, tol: float, verbose):
        return self._fallback(max_iter=max_iter, tol=tol, verbose=verbose)


def solve_nystrom_direct_dask(
    X,
    Y,
    w,
    centers: np.ndarray,
    kernel,
    *,
    alpha: float,
    kernel_dtype,
    n_jobs,
    max_iter: int,
    tol: float,
    verbose=False,
):
    """The one-pass Nystrom solver (:func:`gramfree.solvers.nystrom_direct
    .solve_nystrom_direct`) on row-chunked dask arrays: one pass over the data forms the
    M x M Gram on the workers (plus a t-column pass that checks the solve and forms its
    residual, and one per refinement step), the client solves; its last resort is
    :func:`solve_nystrom_pcg_dask`."""
    from .solvers.nystrom_direct import solve_nystrom_direct

    client = _scheduler_client()
    if w is not None and client is not None:
        w = _persist(w, client)

    def fallback(*, max_iter, tol, verbose):
        return solve_nystrom_pcg_dask(
            X,
            Y,
            w,
            centers,
            kernel,
            alpha=alpha,
            kernel_dtype=kernel_dtype,
            n_jobs=n_jobs,
            max_iter=max_iter,
            tol=tol,
            verbose=verbose,
        )

    passes = _DaskPasses(X, Y, w, centers, kernel, n_jobs=n_jobs, client=client, fallback=fallback)
    if passes.weight_sum <= 0.0:
        _refuse_weight_sum(w)
    problem = types.SimpleNamespace(
        X=X,
        Y=Y,
        sample_weight=None,
        weight_sum=passes.weight_sum,
        alpha=alpha,
        kernel=kernel,
        kernel_dtype=np.dtype(kernel_dtype),
        n_jobs=n_jobs,
        device="cpu",
    )
    result = solve_nystrom_direct(
        problem,  # type: ignore[arg-type]  # the fields the solver reads, X and Y lazy
        centers,
        verbose=verbose,
        max_iter=max_iter,
        tol=tol,
        passes=passes,  # type: ignore[arg-type]  # MemoryPasses' methods, over chunks
    )
    if "dask" not in result.info:  # (the PCG fallback reports its own passes)
        result.info["dask"] = {
            "scheduler": "distributed" if client is not None else "local",
            "n_chunks": int(X.numblocks[0]),
            "passes": passes.passes,
            "pass_seconds": passes.pass_seconds,
        }
    return result


def _dask_graded_bytes() -> int:
    from ._dask_graded import HEAVY_BYTES

    return HEAVY_BYTES


def _scale_gamma(X, w) -> float:
    """gamma="scale" as in memory (:func:`gramfree.kernels.scale_gamma`), by the same block
    sums over X's row chunks: rows counted by the weights (class_weight's included)."""
    import dask.array as da

    from .kernels import (
        combine_value_sums,
        first_mean,
        gamma_from_sums,
        squared_deviations,
        value_sums,
    )

    if w is None:
        w = da.ones(X.shape[0], chunks=(X.chunks[0],))
    else:
        (top,) = compute(w.max())
        if not np.isfinite(top):  # as the first pass says it (weights cast to X's dtype)
            raise ValueError("sample_weight: contains NaN or infinity")
        if top <= 0:  # as the passes say it (the sums divided by zero; a review)
            _refuse_weight_sum(w)
        w = w.astype(np.float64) / float(top)  # weights of 1e300 summed in range
    chunks = ((1,) * X.numblocks[0],)
    (parts,) = compute(X.map_blocks(value_sums, w[:, None], chunks=chunks + ((4,),), dtype=float))
    first = combine_value_sums(parts)
    # From the counted rows' extremes, which never overflow (a lone inf made the sums inf,
    # not NaN, and the variance's message named no NaN; a review).
    if not np.isfinite(first[2:]).all():
        raise ValueError("X: contains NaN or infinity")
    if first[2] == first[3]:  # constant X: gamma_from_sums needs no second pass
        return gamma_from_sums(first, 0.0, X.shape[1])
    mean = first_mean(first, X.shape[1])
    deviations = X.map_blocks(
        squared_deviations, w[:, None], mean, chunks=chunks + ((1,),), dtype=float
    )
    (squares,) = compute(deviations.sum())
    return gamma_from_sums(first, float(squares), X.shape[1])


def _refuse(estimator) -> None:
    """The parameters a dask fit does not take, refused with their names."""
    if estimator.solver not in DASK_SOLVERS:
        raise ValueError(
            f"solver={estimator.solver!r}: dask input is fitted by solver='nystrom-pcg' or "
            "'nystrom-direct' ('auto' chooses between them); compute X into memory for the "
            "others"
        )
    if getattr(estimator, "loss", "squared") != "squared":
        raise ValueError(f"loss={estimator.loss!r}: dask input fits the squared loss only")
    if estimator.early_stopping:
        raise ValueError("early_stopping: not available for dask input")
    if estimator.warm_start:
        raise ValueError("warm_start: not available for dask input")
    if estimator.device not in ("cpu", None):
        raise ValueError(
            f"device={estimator.device!r}: dask input runs on the workers' CPUs; use device='cpu'"
        )


def _take_block(block, rows_by_block, block_info=None):
    return block[rows_by_block[block_info[0]["chunk-location"][0]]]


def gather_rows(A, rows: np.ndarray) -> np.ndarray:
    """``A[rows]`` in memory, moving only those rows: each chunk returns its own selected
    rows (a blockwise map over A's own chunks, so A's graph is used as the passes use it;
    dask's fancy indexing rewrites it, which distributed then warns about)."""

    rows = np.asarray(rows, dtype=np.intp)
    order = np.argsort(rows, kind="stable")
    bounds = np.cumsum((0,) + A.chunks[0])
    local = [
        rows[order][(rows[order] >= lo) & (rows[order] < hi)] - lo
        for lo, hi in zip(bounds[:-1], bounds[1:])
    ]
    taken = A.map_blocks(
        _take_block, local, dtype=A.dtype, chunks=(tuple(len(r) for r in local),) + A.chunks[1:]
    )
    out = np.empty((len(rows),) + A.shape[1:], dtype=A.dtype)
    out[order] = compute(taken)[0]
    return out


class _Rows:
    """X for the estimator's own ``_resolve_centers``: its shape and dtype, and row
    indexing that gathers only the rows asked for."""

    def __init__(self, X):
        self.X, self.shape, self.dtype = X, X.shape, X.dtype

    def __getitem__(self, rows):
        return gather_rows(self.X, rows)


def _centers(estimator, X, w, rng):
    """``(centers, rows, shares, missing, groups)``: the centres in memory, their
    training rows (None for points given as ``centers``), the weight each stands for in
    Nystrom-PCG's preconditioner (:func:`gramfree.solvers._common.preconditioner_weights`;
    None: an even share), the rows apart that are no centre (centres given as points, or
    as rows without them), which the preconditioner counts by their own kernel columns
    (None: none; :func:`gramfree.solvers._common.centre_shares`), and whether more rows
    weigh apart than the preconditioner counts by themselves
    (:func:`gramfree.solvers._common.outnumbered`: auto's one pass). Random rows are drawn
    on the client from n, which weights are positive (zero-weight rows take no centre's
    place) and the heavy rows (the m largest weights and the sum of the others decide
    them), exactly as the in-memory fit draws them (same random_state, same rows), and
    centres given as rows or points are weighed as in memory (but for rows tied at the
    m-th largest weight, of which argtopk may keep others than numpy's argpartition); only
    those rows and their weights travel."""
    n = X.shape[0]
    points = False
    if estimator.centers is not None:  # checked as in memory; gathers X[rows] only
        centers, idx = estimator._resolve_centers(_Rows(X))
        points = idx is None
        if w is None:
            return centers, idx, None, None, False
        m = centers.shape[0]
    else:
        m = estimator._resolve_n_centers(n)
        if m is None:
            m = min(n, DEFAULT_CENTERS)
        if w is None:
            return (*_drawn(X, center_rows(rng, n, m)), None, None, False)
        idx = None
    import dask.array as da

    # Which weights are positive (one byte a row), the m largest and the largest weight;
    # then the sum and the largest of the others, relative to the largest as in memory
    # (heavy_rows: raw weights near 1e306 overflowed the sums, a review).
    top = da.argtopk(w, m) if m < n else None
    positive, top, largest, smallest = compute(
        w > 0, top, w.max(), da.where(w > 0, w, np.inf).min()
    )
    positive, largest = np.asarray(positive, dtype=bool), float(largest)
    if not np.isfinite(largest):  # (the shares below warned 0/0 first; a review)
        raise ValueError("sample_weight: contains NaN or infinity")
    if largest <= 0:  # refused before the shares below divide by it (0/0 warned); NaN
        _refuse_weight_sum(w)  # goes on to the passes' check, which names it (a review)
    weighted = int(np.count_nonzero(positive))
    heavy = np.empty(0, dtype=np.intp)  # drawn first (heavy_rows)
    apart = np.empty(0, dtype=np.intp)  # counted by themselves (apart_rows)
    outside = 0.0
    top_w = np.empty(0)
    groups = False  # outnumbered
    if top is not None and m < weighted:
        top = np.asarray(top)
        top_w = np.asarray(gather_rows(w, top), dtype=np.float64) / largest
        order = np.argsort(-top_w, kind="stable")
        top, top_w = top[order], top_w[order]
        in_top = da.isin(da.arange(n, chunks=w.chunks[0]), top)
        others = da.where(in_top, 0, w / largest)
        # (per chunk, then over chunks: dask's max fails on an empty chunk)
        chunk_max = others.map_blocks(
            _abs_max_block, chunks=((1,) * others.numblocks[0],), dtype=np.float64
        )
        outside, beyond = (float(v) for v in compute(others.sum(), chunk_max.max()))
        k = heavy_count(top_w, outside, m, weighted)
        heavy = np.sort(top[:k])
        floor = apart_floor(outside, m, weighted)
        apart = np.sort(top[top_w > floor])
        groups = beyond > floor
    elif m >= weighted and largest > HEAVY_MEAN * float(smallest):  # (apart_rows)
        apart = np.flatnonzero(positive)  # given centres, as many as the weighted rows
    if idx is None and not points:
        centers, idx = _drawn(X, center_rows(rng, n, m, positive, heavy=heavy))
    if points:
        at_centres, found = np.zeros(m), np.full(m, -1)
    else:
        at_centres, found = np.asarray(gather_rows(w, idx), dtype=np.float64) / largest, idx
        if np.isin(np.flatnonzero(positive), idx).all():  # every weighted row a centre
            shares = preconditioner_weights(at_centres, at_centres > 0, 0.0)
            return centers, idx, shares, None, False
    own = np.isin(found, apart) & (at_centres > 0)
    missing = np.setdiff1d(apart, found[own])
    if not own.any() and not missing.size:
        return centers, idx, None, None, groups
    # The weight of every row but those apart (own centres or counted by their columns):
    # the outside sum and the rest of the top, smallest first (none where every weighted
    # row is apart); and the weight of those counted by their columns.
    if m >= weighted:
        rest = 0.0
        exact = float(np.sum(np.sort(np.asarray(gather_rows(w, missing)) / largest)))
    else:
        rest = float(np.sum(np.concatenate([[outside], top_w[~np.isin(top, apart)][::-1]])))
        exact = float(np.sum(top_w[np.isin(top, missing)][::-1])) if missing.size else 0.0
    shares = preconditioner_weights(at_centres, own, rest, exact)
    return centers, idx, shares, missing if missing.size else None, groups


def _drawn(X, idx):
    return np.ascontiguousarray(gather_rows(X, idx)), idx


def _fallback_reason(result) -> str | None:
    """The one-pass solve's reason for falling back to Nystrom-PCG, where it did."""
    return (
        result.info.get("fallback_reason") if result.info.get("fallback") == "nystrom-pcg" else None
    )


def _choose_solver(
    estimator,
    n: int,
    d: int,
    t: int,
    m: int,
    kernel_dtype,
    *,
    weights_span: bool = False,
    groups: bool = False,
) -> tuple[str, str]:
    """``(solver, reason)``: the one named, or for "auto" the cheaper of the two by the
    in-memory cost model (:meth:`gramfree.solvers.auto.CostModel.best_nystrom`: the one-pass
    solve unless PCG is estimated EXACT_PREFERENCE times cheaper). On a cluster the
    comparison only tilts further toward the one pass: PCG moves M x t vectors and waits
    for the slowest chunk about 25 times, the one pass once. ``weights_span``: the
    positive weights span more than ``WEIGHT_SPAN_PCG``; ``groups``: heavy rows outnumber
    what the centres' shares count: the one pass for either, as in memory
    (:func:`gramfree.solvers.auto.solve_nystrom_choice`)."""
    if estimator.solver != "auto":
        return estimator.solver, ""
    from .solvers.auto import CostModel

    if weights_span or groups:
        return "nystrom-direct", (
            f"auto: nystrom-direct, the weights span more than {WEIGHT_SPAN_PCG:g}, beyond "
            "PCG's relative tol"
            if weights_span
            else "auto: nystrom-direct, more heavy rows than the centres' shares can count"
        )

    model = CostModel(n=n, d=d, t=t, dtype=np.dtype(kernel_dtype))
    solver, seconds, _ = model.best_nystrom(m)
    direct, pcg = model.nystrom_direct(m)[0], model.nystrom(m)[0]
    return solver, (
        f"auto: estimated nystrom-direct {direct:.3g} s, nystrom-pcg {pcg:.3g} s on one "
        f"machine's rates; chose {solver}"
    )


def fit(estimator, X, y, sample_weight=None, *, classify: bool):
    """Fit a KernelRegressor / KernelClassifier (squared loss) on dask arrays by
    Nystrom-PCG; sets the same fitted attributes as the in-memory fit. Called by the
    estimators' ``fit`` once their parameters are validated. ``verbose`` says what it
    does as in memory (a review found it silent on dask: the logger stayed quiet)."""
    from ._log import verbose_output

    with verbose_output(estimator.verbose):
        return _fit(estimator, X, y, sample_weight, classify=classify)


def _fit(estimator, X, y, sample_weight, *, classify: bool):
    from ._threads import blas_threads

    _refuse(estimator)
    X = check_X(X)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X: n_samples={n}, but at least 2 are required")
    w = _check_weights(X, sample_weight)
    if classify:
        y, classes, Y, w = _classification_targets(estimator, X, y, w)
    else:
        y, Y = _regression_targets(X, y)
        # In y's own dtype: cast to float32 first, targets beyond its range were inf and
        # refused as "NaN or infinity" (a review)
        _check_target_range(y[:, None] if y.ndim == 1 else y, X.dtype)
    if estimator._scales_gamma():
        estimator._scale_gamma = _scale_gamma(X, w)
    _check_kernel_range(X, estimator._make_kernel(), estimator._kernel_dtype(X), estimator.n_jobs)
    rng = estimator._rng()
    centers, rows, shares, missing, groups = _centers(estimator, X, w, rng)
    if not np.isfinite(centers).all():
        raise ValueError(
            "X: contains NaN or infinity"
            if rows is not None
            else "centers: contains NaN or infinity"
        )
    kernel = estimator._make_kernel()
    kernel_dtype = estimator._kernel_dtype(X)
    # The weights' largest and smallest positive: their scale (taken out with alpha, as in
    # memory), their span (auto leaves PCG out beyond WEIGHT_SPAN_PCG, as in memory) and
    # whether PCG watches its objective (uneven_weights).
    span = uneven = False
    top = low = 1.0
    if w is not None:
        import dask.array as da

        top, low = (float(v) for v in compute(w.max(), da.where(w > 0, w, np.inf).min()))
        span = top > WEIGHT_SPAN_PCG * low
        uneven = top > HEAVY_MEAN * low
    solver, why = _choose_solver(
        estimator,
        n,
        d,
        Y.shape[1],
        len(centers),
        kernel_dtype,
        weights_span=span,
        groups=uneven and groups,
    )
    if estimator.verbose:
        say(
            f"[{type(estimator).__name__}] dask: solver={solver} n_samples={n} "
            f"chunks={X.numblocks[0]} centres={len(centers)}" + (f" ({why})" if why else "")
        )
    start = time.perf_counter()
    solve = (
        solve_nystrom_direct_dask
        if solver == "nystrom-direct"
        else partial(
            solve_nystrom_pcg_dask,
            center_weights=shares,
            heavy_rows=missing,
            watch_objective=uneven,
        )
    )
    alpha = float(estimator.alpha)
    if w is not None:  # the weights' scale taken out with alpha, as in memory
        w, alpha = weights_in_range(w, alpha, top)
    with blas_threads(estimator.n_jobs), fit_scope(_scheduler_client()):
        result = solve(
            X,
            Y,
            w,
            centers,
            kernel,
            alpha=alpha,
            kernel_dtype=kernel_dtype,
            n_jobs=estimator.n_jobs,
            max_iter=estimator.max_iter or DEFAULT_MAX_ITER,
            tol=estimator.tol,
            verbose=estimator.verbose,
        )
    if why:
        result.info["auto"] = why
    if result.info.get("fallback") == "nystrom-pcg":
        solver = "nystrom-pcg"  # the one-pass solve's last resort produced the model
    result.center_indices = rows
    estimator.fit_time_ = time.perf_counter() - start
    if result.info.get("stagnated"):
        from .estimators._base import stagnation_message

        warnings.warn(
            stagnation_message(solver, result, kernel_dtype, estimator.tol),
            _convergence_warning(),
            stacklevel=caller_stacklevel(),
        )
    elif result.info.get("breakdown"):
        from .estimators._base import breakdown_message, weight_span_message

        warnings.warn(
            # under a wide span, the span's doing (as in memory)
            weight_span_message(solver, top / low, _fallback_reason(result), dask=True)
            if solver == "nystrom-pcg" and span
            else breakdown_message(solver, result),
            _convergence_warning(),
            stacklevel=caller_stacklevel(),
        )
    elif solver == "nystrom-pcg" and span:
        from .estimators._base import weight_span_message

        warnings.warn(
            weight_span_message(solver, top / low, _fallback_reason(result), dask=True),
            _convergence_warning(),
            stacklevel=caller_stacklevel(),
        )
    elif (
        solver == "nystrom-direct"
        and top > GRADED_SPAN * low
        and result.info.get("pass") != "graded QR"
    ):
        warnings.warn(
            f"nystrom-direct on dask: the positive sample weights span {top / low:.2g} "
            f"(largest over smallest), beyond {GRADED_SPAN:g}, and the rows outside the "
            "graded QR's light tail are more than it gathers to the client "
            f"({_dask_graded_bytes() // 2**20} MiB): its one pass sums the Gram over the "
            "chunks, which resolves the lightest rows' part of the fit only to about the "
            "span times float64's eps (five of 200 rows that heavy: 5e-5 to 1.7e-4 of the "
            "predictions at a span of 1e12, 0.08 to 0.17 at 1e15). In memory (X a numpy "
            "array) the fit takes QR of the rows in order of their norms whatever their "
            "number; or use weights within a narrower span, or a larger alpha",
            _convergence_warning(),
            stacklevel=caller_stacklevel(),
        )
    elif not result.converged:
        from .estimators._base import max_iter_message

        warnings.warn(
            max_iter_message(solver, estimator.tol, result),
            _convergence_warning(),
            stacklevel=caller_stacklevel(),
        )
    _warn_cancellation_dask(X, Y, result, kernel, estimator.n_jobs, estimator.alpha, rows)
    center_targets = None if rows is None else gather_rows(y, rows)
    # The in-memory fit's attributes, through its own setter (it reads X's shape and the
    # product dtype from the problem).
    problem = types.SimpleNamespace(X=X, kernel_dtype=kernel_dtype)
    estimator._set_fitted(result, kernel, solver, problem, centers_are_rows=rows is not None)
    estimator._set_fit_controls(None)
    estimator.n_features_in_ = d
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    if classify:
        estimator.classes_ = classes
    else:
        estimator._y_1d = y.ndim == 1
    if center_targets is None:
        if hasattr(estimator, "center_targets_"):
            del estimator.center_targets_
    elif classify:
        estimator.center_targets_ = center_targets
    else:
        estimator.center_targets_ = center_targets.astype(np.float64)
    return estimator


def _convergence_warning():
    from sklearn.exceptions import ConvergenceWarning

    return ConvergenceWarning


# -- prediction --------------------------------------------------------------------------


def _decision_block(Xb, *, model, n_jobs):
    centers, coef, intercept, kernel = model
    if Xb.shape[0] == 0:  # an empty chunk: no rows to score
        return np.zeros((0, coef.shape[1]), dtype=coef.dtype)
    from .estimators._base import check_decision_finite

    # As in-memory predict: finite queries beyond a float32 model's range are named as
    # such, not "NaN or infinity" after the cast made them inf (a review).
    Xb = as_float_array(Xb, "X", dtype=centers.dtype)
    out = KernelOperator(Xb, centers, kernel, n_jobs=n_jobs) @ coef
    if intercept is not None:  # the logistic loss's
        out += intercept
    return check_decision_finite(out, kernel, Xb.dtype)


def decision(estimator, X):
    """``K(X, centers_) @ dual_coef_`` as a dask array (n, t), one task per row chunk;
    the fitted centres and coefficients enter the graph once."""
    import dask
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator, "dual_coef_")
    X = check_X(X, n_features=estimator.n_features_in_)
    coef = estimator.dual_coef_
    intercept = getattr(estimator, "intercept_", None)
    model = dask.delayed((estimator.centers_, coef, intercept, estimator.kernel_), pure=True)
    return X.map_blocks(
        _decision_block,
        model=model,
        n_jobs=estimator.n_jobs,
        dtype=coef.dtype,
        chunks=(X.chunks[0], (coef.shape[1],)),
        meta=np.empty((0, 0), dtype=coef.dtype),
    )


def _label_block(scores, classes):
    if scores.ndim == 1:
        return classes[(scores > 0).astype(int)]
    return classes[np.argmax(scores, axis=1)]


def labels(classes: np.ndarray, scores):
    """Class labels from a dask array of decision scores, block by block."""
    if scores.ndim == 1:
        return scores.map_blocks(_label_block, classes, dtype=classes.dtype)
    return scores.map_blocks(_label_block, classes, dtype=classes.dtype, drop_axis=1)


def probabilities(scores, *, log: bool = False):
    """Class probabilities (or their logarithms) from a dask array of logits, block by
    block: :func:`gramfree.estimators._logistic.probabilities` on each chunk. For a
    ``predict_proba`` hook (not wired yet: see the estimators)."""
    from .estimators._logistic import probabilities as chunk_probabilities

    if scores.ndim == 1:
        return scores.map_blocks(
            chunk_probabilities,
            log=log,
            new_axis=1,
            chunks=(scores.chunks[0], (2,)),
            dtype=scores.dtype,
        )
    return scores.map_blocks(chunk_probabilities, log=log, dtype=scores.dtype)
