""":class:`gramfree.KernelOperator` over a row-chunked dask array X and in-memory centres Z.

``KernelOperator(dX, Z)`` keeps the operator's interface and returns dask arrays: each
product is a graph over X's row chunks, one task per chunk running the in-memory operator
on ``K(X_c, Z)``, so only O(chunk x m) memory is used per task and nothing is computed
until the user asks (``.compute()``, ``.persist()``, ``dask.compute``):

* ``K @ V`` (V of length m, in memory or dask): a dask array (n,) / (n, k) with X's row
  chunks, ``K(X_c, Z) @ V`` per chunk;
* ``K.T @ U`` (U of length n, dask or numpy): a dask array (m,) / (m, k), the chunks'
  partial sums ``K(X_c, Z)^T U_c`` added by dask's tree reduction (in float64, then cast
  to the operator's dtype, as :mod:`gramfree._dask` adds its passes);
* ``normal_matvec(V, w)``: the chunks' ``K_c^T W_c K_c V``, tree-reduced;
* ``gradient(V)``: row separable (row i's gradient needs x_i, Z and V only), one task per
  chunk;
* ``to_dense()``: the (n, m) matrix as a dask array, block by block.

The in-memory operands enter the graph once, not once per task: Z with the kernel is
scattered to every worker (dask.distributed) or one delayed literal (local scheduler), as
the estimators' dask fit does (:func:`gramfree._dask._share`); V is one single-chunk
dask array (one key, or the dask V's own graph, rechunked to one chunk) that every task
takes whole, so ``K @ (K.T @ u)`` composes lazily.

Choices: Z must be in memory (a dask Z raises ``ValueError`` naming Z: every task needs all
of it, so it would be gathered anyway; call ``Z.compute()``); ``Z=None`` (the square
K(X, X)) raises ``ValueError`` naming Z, since each row chunk would need all of X; dask X
runs on the workers' CPUs (``device`` other than "cpu" raises). ``K.T`` is a
KernelOperator too (column-chunked); its ``gradient`` (with respect to the in-memory
points, a sum over X's chunks) raises ``NotImplementedError``.

Nothing here imports dask until a dask collection is handed to KernelOperator.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse.linalg import LinearOperator

from ._dask import _as_dask_rows, _chunk_sum, _rows_like, _scheduler_client, _share
from .kernels import get_kernel
from .operators import KernelOperator, _n_threads, as_float_array


def _check_dask_X(X):
    """X as a 2-d float32/float64 dask array, row chunks of known size, one column chunk;
    the dtype rules of :func:`gramfree.operators.as_float_array` (values checked lazily)."""
    X = _as_dask_rows(X, "X")
    kind = X.dtype.kind
    if kind == "c":
        raise TypeError(f"X: complex dtype {X.dtype} is not supported")
    if kind not in "biuf":
        raise TypeError(f"X: dtype must be numeric, got {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X: expected a 2-d array, got {X.ndim} dimension(s)")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"X: empty array of shape {X.shape}")
    if X.numblocks[1] != 1:
        X = X.rechunk({1: -1})
    return X


def setup(op: KernelOperator, X, Z, kernel, n_jobs, device, kernel_params) -> None:
    """``KernelOperator.__init__`` for dask input (X or Z a dask collection)."""
    from ._dask import is_dask_collection

    if device != "cpu":
        raise ValueError(
            f"device={device!r}: dask input runs on the workers' CPUs; use device='cpu'"
        )
    if Z is None:
        raise ValueError(
            "Z: a dask X needs its centres Z in memory (numpy); K(X, X) over a dask X is "
            "not supported (each row chunk would need all of X): pass Z, e.g. some rows "
            "of X computed"
        )
    if is_dask_collection(Z):
        raise ValueError(
            "Z: must be an in-memory array (numpy), every task uses all of it; call "
            "Z.compute() first (for K(Z, X) use KernelOperator(X, Z).T)"
        )
    threads = _n_threads(n_jobs)
    kern = get_kernel(kernel, **kernel_params)
    X = _check_dask_X(X)
    Z = as_float_array(Z, "Z")
    if X.shape[1] != Z.shape[1]:
        raise ValueError(f"X and Z: number of features differ ({X.shape[1]} vs {Z.shape[1]})")
    f32 = np.dtype(np.float32)
    dtype = f32 if X.dtype == f32 and Z.dtype == f32 else np.dtype(np.float64)
    if X.dtype != dtype:
        X = X.astype(dtype)
    Z = Z.astype(dtype, copy=False)
    kern.check_dtype(dtype)  # as the in-memory operator: at construction, naming the parameter
    kern.check_points(Z, "Z")  # X's rows: in each chunk's operator
    op.device = "cpu"
    op.X = X
    op.Z = Z
    op.kernel = kern
    op.n_jobs = n_jobs
    op._threads = threads
    op._spec = kern.native_spec(X.shape[1])
    op._dask = _DaskKernel(X, Z, kern, n_jobs, dtype, transposed=False)
    LinearOperator.__init__(op, dtype=dtype, shape=(X.shape[0], Z.shape[0]))


# -- per-chunk work (top level: pickled to the workers) ----------------------------------


def _rows_block(Xb, V, *, model, n_jobs):
    """``K(X_c, Z) @ V`` for one row chunk, (rows, k)."""
    Z, kernel = model
    if Xb.shape[0] == 0:
        return np.empty((0, V.shape[1]), dtype=Z.dtype)
    op = KernelOperator(np.ascontiguousarray(Xb, dtype=Z.dtype), Z, kernel, n_jobs=n_jobs)
    return op.matmat(V)


def _adjoint_block(Xb, Ub, *, model, n_jobs):
    """``K(X_c, Z)^T @ U_c`` for one row chunk (float64, leading axis of 1 for the sum)."""
    Z, kernel = model
    if Xb.shape[0] == 0:
        return np.zeros((1, Z.shape[0], Ub.shape[1]))
    op = KernelOperator(np.ascontiguousarray(Xb, dtype=Z.dtype), Z, kernel, n_jobs=n_jobs)
    return op.rmatmat(np.ascontiguousarray(Ub, dtype=Z.dtype)).astype(np.float64)[None]


def _normal_block(Xb, V, wb=None, *, model, n_jobs):
    """``K_c^T W_c K_c V`` for one row chunk (float64, leading axis of 1)."""
    Z, kernel = model
    if Xb.shape[0] == 0:
        return np.zeros((1, Z.shape[0], V.shape[1]))
    op = KernelOperator(np.ascontiguousarray(Xb, dtype=Z.dtype), Z, kernel, n_jobs=n_jobs)
    w = None if wb is None else wb[:, 0]
    return op.normal_matvec(V, sample_weight=w).astype(np.float64)[None]


def _gradient_block(Xb, V, *, model, n_jobs):
    """The gradient of ``K(X_c, Z) @ V`` for one row chunk, (rows, k, d)."""
    Z, kernel = model
    if Xb.shape[0] == 0:
        return np.empty((0, V.shape[1], Z.shape[1]), dtype=Z.dtype)
    op = KernelOperator(np.ascontiguousarray(Xb, dtype=Z.dtype), Z, kernel, n_jobs=n_jobs)
    return op.gradient(V)


def _dense_block(Xb, *, model, n_jobs):
    Z, kernel = model
    if Xb.shape[0] == 0:
        return np.empty((0, Z.shape[0]), dtype=Z.dtype)
    op = KernelOperator(np.ascontiguousarray(Xb, dtype=Z.dtype), Z, kernel, n_jobs=n_jobs)
    return op.to_dense()


# -- the operator's state ----------------------------------------------------------------


def _finite_weights_block(wb):
    if not np.isfinite(wb).all():
        raise ValueError("sample_weight: contains NaN or infinity")
    return wb


def _check_ndim(shape, name: str, kind: str) -> None:
    """``kind``: "vec" (``(r,)`` or ``(r, 1)``), "mat" (2-d) or "any" (1-d or 2-d)."""
    ndim = len(shape)
    if ndim not in (1, 2):
        raise ValueError(f"{name}: expected a 1-d or 2-d array, got {ndim} dimension(s)")
    if kind == "vec" and not (ndim == 1 or shape[1] == 1):
        raise ValueError(f"{name}: expected a vector of shape (r,) or (r, 1), got {shape}")
    if kind == "mat" and ndim != 2:
        raise ValueError(f"{name}: expected a 2-d array, got {ndim} dimension(s)")


class _DaskKernel:
    """K(X, Z) over a dask X (n, d) and in-memory Z (m, d); ``transposed`` for the
    operator K.T = K(Z, X), whose products swap the two directions."""

    def __init__(self, X, Z, kernel, n_jobs, dtype, *, transposed: bool) -> None:
        self.X, self.Z, self.kernel, self.n_jobs = X, Z, kernel, n_jobs
        self.dtype = np.dtype(dtype)
        self.transposed = transposed

    # K's row direction: V of length m in, dask (n, ...) out.
    def _coefficients(self, V, name: str, kind: str):
        """``(V2, k, vector)``: V (length m, numpy or dask) as an (m, k) dask array of one
        chunk, which every task of the product reads (one key of the graph, shared by the
        tasks); its values are checked in the tasks."""
        import dask.array as da

        from ._dask import is_dask_collection

        m = self.Z.shape[0]
        if is_dask_collection(V):
            V = _as_dask_rows(V, name)
            _check_ndim(V.shape, name, kind)
            if V.dtype.kind not in "biuf":
                raise TypeError(f"{name}: dtype must be numeric, got {V.dtype}")
            if V.shape[0] != m:
                raise ValueError(f"{name}: has {V.shape[0]} rows, expected {m}")
            vector = V.ndim == 1
            V2 = (V[:, None] if vector else V).astype(self.dtype).rechunk(-1)
            return V2, V2.shape[1], vector
        V = np.asarray(V)
        _check_ndim(V.shape, name, kind)
        vector = V.ndim == 1
        if V.ndim == 2 and V.shape[1] == 0:
            # No columns: an empty product, as a dask V of none and in-memory operators
            # give (its dtype and rows checked); as_float_array refuses empty arrays.
            as_float_array(np.zeros((1, 1), V.dtype), name)
            if V.shape[0] != m:
                raise ValueError(f"{name}: has {V.shape[0]} rows, expected {m}")
            return da.zeros((m, 0), dtype=self.dtype, chunks=(m, 0)), 0, False
        V2 = as_float_array(V.reshape(-1, 1) if vector else V, name, dtype=self.dtype)
        if V2.shape[0] != m:
            raise ValueError(f"{name}: has {V2.shape[0]} rows, expected {m}")
        return da.from_array(V2, chunks=V2.shape), V2.shape[1], vector

    def _model(self):
        return _share((self.Z, self.kernel), _scheduler_client())

    def rows(self, V, name: str, kind: str):
        """``K(X, Z) @ V``: a dask array (n,) or (n, k) with X's row chunks."""
        import dask.array as da

        V2, k, vector = self._coefficients(V, name, kind)
        out = da.blockwise(
            _rows_block,
            "ik",
            self.X,
            "il",
            V2,
            "mk",
            concatenate=True,
            model=self._model(),
            n_jobs=self.n_jobs,
            dtype=self.dtype,
            meta=np.empty((0, 0), dtype=self.dtype),
        )
        return out[:, 0] if vector else out

    def columns(self, U, name: str, kind: str):
        """``K(X, Z)^T @ U``: a dask array (m,) or (m, k), the row chunks' partial sums
        tree-reduced."""
        _check_ndim(np.shape(U), name, kind)
        U2 = _rows_like(self.X, U, name, ndims=(1, 2))
        if U2.dtype.kind not in "biuf":
            raise TypeError(f"{name}: dtype must be numeric, got {U2.dtype}")
        vector = U2.ndim == 1
        if vector:
            U2 = U2[:, None]
        m, k = self.Z.shape[0], U2.shape[1]
        parts = _chunk_sum(
            _adjoint_block, self.X, None, [U2], M=m, t=k, model=self._model(), n_jobs=self.n_jobs
        )
        out = parts.astype(self.dtype)
        return out[:, 0] if vector else out

    def _weights(self, sample_weight, rows: int):
        from ._dask import is_dask_collection

        if sample_weight is None or is_dask_collection(sample_weight):
            return sample_weight
        w = as_float_array(sample_weight, "sample_weight", ndim=1, dtype=self.dtype)
        if w.shape[0] != rows:
            raise ValueError(f"sample_weight: has {w.shape[0]} values, expected {rows}")
        return w

    # -- the operator's methods ------------------------------------------------------

    def apply(self, x, *, adjoint: bool, kind: str):
        """``K @ x`` (``adjoint=False``) or ``K^T @ x`` for the operator this state
        belongs to (K.T when ``transposed``)."""
        if adjoint != self.transposed:
            return self.columns(x, "U", kind)
        return self.rows(x, "V", kind)

    def dot(self, op: KernelOperator, x):
        """``op @ x`` without converting a dask ``x`` to numpy (scipy's ``dot`` would)."""
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return LinearOperator.dot(op, x)
        shape = np.shape(x)
        if len(shape) == 2 and shape[1] != 1:
            return op.matmat(x)
        return op.matvec(x)

    def normal(self, V, sample_weight):
        if not self.transposed:
            from ._dask import _check_weights

            n, m = self.X.shape[0], self.Z.shape[0]
            w = _check_weights(self.X, self._weights(sample_weight, n))
            V2, k, vector = self._coefficients(V, "V", "any")
            parts = _chunk_sum(
                _normal_block,
                self.X,
                w,
                [],
                whole=[V2],
                M=m,
                t=k,
                model=self._model(),
                n_jobs=self.n_jobs,
            )
            out = parts.astype(self.dtype)
            return out[:, 0] if vector else out
        # (K^T)^T W K^T V = K (W (K^T V)): two passes, composed lazily.
        w = self._transposed_weights(sample_weight)
        KtV = self.columns(V, "V", "any")
        if w is not None:
            KtV = KtV * (w if KtV.ndim == 1 else w[:, None]).astype(self.dtype)
        return self.rows(KtV, "V", "any")

    def _transposed_weights(self, sample_weight):
        """K.T's weights, one per row of Z, checked as in memory: a dask one had only its
        length checked, and of shape (m, 1) it broadcast the result to (n, m) in silence;
        a NaN in it was reported as V's (a review). Its values are checked in its tasks."""
        from ._dask import is_dask_collection

        m = self.Z.shape[0]
        if not is_dask_collection(sample_weight):
            return self._weights(sample_weight, m)
        w = _as_dask_rows(sample_weight, "sample_weight")
        if w.ndim != 1:
            raise ValueError(f"sample_weight: expected a 1-d array, got {w.ndim} dimension(s)")
        if w.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight: dtype must be numeric, got {w.dtype}")
        if w.shape[0] != m:
            raise ValueError(f"sample_weight: has {w.shape[0]} values, expected {m}")
        return w.map_blocks(_finite_weights_block, dtype=w.dtype)

    def gradient(self, V):
        if self.transposed:
            raise NotImplementedError(
                "gradient: for K.T of a dask KernelOperator the gradient with respect to the "
                "in-memory points sums over X's chunks and is not implemented; use the "
                "gradient of KernelOperator(X, Z) with respect to the dask rows X"
            )
        import dask.array as da

        V2, k, vector = self._coefficients(V, "V", "any")
        out = da.blockwise(
            _gradient_block,
            "ikl",
            self.X,
            "il",
            V2,
            "mk",
            concatenate=True,
            model=self._model(),
            n_jobs=self.n_jobs,
            dtype=self.dtype,
            meta=np.empty((0, 0, 0), dtype=self.dtype),
        )
        return out[:, 0, :] if vector else out

    def dense(self, out):
        if out is not None:
            raise ValueError(
                "out: not supported for dask input; to_dense() returns a dask array "
                "(store it with dask.array.store or compute it)"
            )
        K = self.X.map_blocks(
            _dense_block,
            model=self._model(),
            n_jobs=self.n_jobs,
            dtype=self.dtype,
            chunks=(self.X.chunks[0], (self.Z.shape[0],)),
            meta=np.empty((0, 0), dtype=self.dtype),
        )
        return K.T if self.transposed else K

    def transpose(self, op: KernelOperator) -> KernelOperator:
        """K.T: the same state with the directions swapped (X and Z swapped as attributes)."""
        t = object.__new__(KernelOperator)
        t.__dict__.update(op.__dict__)
        t.X, t.Z = op.Z, op.X
        t._names = op._names[::-1]
        t._dask = _DaskKernel(
            self.X, self.Z, self.kernel, self.n_jobs, self.dtype, transposed=not self.transposed
        )
        LinearOperator.__init__(t, dtype=self.dtype, shape=(op.shape[1], op.shape[0]))
        return t

    def describe(self, op: KernelOperator) -> str:
        n, m = op.shape
        chunks = f"{self.X.numblocks[0]} {'column' if self.transposed else 'row'} chunks"
        return f"<KernelOperator {n}x{m} {self.kernel!r} dtype={self.dtype} dask({chunks})>"
