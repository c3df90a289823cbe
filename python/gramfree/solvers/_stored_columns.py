"""K(X, C) held in memory for the logistic solver, with its products.

Where the n x M kernel block fits the solver's memory budget, the Newton-PCG solver
computes it once and every pass after it is a product with a stored matrix, not a
recomputation of the kernel (~2d flops per entry). It is kept in float64 where that fits,
and otherwise in float32 where that fits: half the memory, so twice the problem size
before the solver must recompute the kernel on every CG pass.

Every product is float64 arithmetic on the stored values: float64 K through single BLAS
calls (scipy's, on the fit's threads); float32 K a chunk of rows at a time, widened to
float64 in a scratch block (``CHUNK_BYTES``) and multiplied by BLAS. So with float32
storage the solver works on one fixed matrix, the kernel values rounded to float32, and
its Hessian products are exact for that matrix: the Schur complement that eliminates the
intercepts (a difference of two nearly equal terms when the kernel is wide) cancels in
float64, as it does with float64 storage. (Products in float32 arithmetic were tried and
dropped: that cancellation amplified their rounding by up to 1e5 on wide kernels, and fits
stopped far from the optimum.)

The curvature products ``K^T S (K V - 1 z^T)`` (CG's, one per iteration; S row-local:
the log-loss's curvature) run natively in one pass over K
(:meth:`StoredColumns.curvature_product`, ``csrc/kernels/curvature_engine.hpp``): a few
rows at a time are multiplied by V and, while still in cache, their transposes by those
rows of ``S (K V - 1 z^T)``, float32 values widened in registers. Two BLAS products read K
from memory twice and, at k of a few classes, each ran at about half the machine's read
bandwidth; float32 K also went through the scratch block
(``benchmarks/bench_curvature.py`` times both; ``benchmarks/bench_logistic.py`` the fits).
"""

from __future__ import annotations

import numpy as np

from .. import _blas, _core
from .nystrom_direct import _add_gram, _fill_lower, rows_for

# Bytes of the float64 scratch block a float32 K is widened into, a chunk of rows at a
# time: large enough that each chunk is one efficient multi-threaded BLAS call, small
# beside the stored matrix.
CHUNK_BYTES = 32 * 2**20
# CG's curvature products by the native one-pass kernel; False: two BLAS products, K V and
# K^T W, as before it, and the logistic solver's K_MM V by BLAS too
# (benchmarks/bench_curvature.py's fits compare the two).
NATIVE_CURVATURE = True
# Largest per-thread accumulator (k x M float64) of the native pass: every block of 16 rows
# re-reads and re-writes it, so its lead over two BLAS products could shrink once it
# outgrows the core's L2 cache (512 KiB per core on the 2-core EPYC CI runs on):
# benchmarks/bench_curvature.py's 12-class rows there (2026-12-05), float64 K 1.7x at 375
# KiB and 1.8x at 2.2 MiB (float32 K 3.0x to 3.4x). Beyond the largest size measured the
# products take the BLAS route.
NATIVE_MAX_ACCUMULATOR_BYTES = 2.25 * 2**20


class StoredColumns:
    """K_nM in memory (C-ordered, float32 or float64) and the operator calls the logistic
    solver makes, all in float64 arithmetic on the stored values (module docstring)."""

    def __init__(
        self, K: np.ndarray, n_threads: int = 0, row_index: np.ndarray | None = None
    ) -> None:
        """``n_threads``: the one-pass products' OpenMP threads (0: OpenMP's default), as
        the kernel operator's (:func:`gramfree.operators._n_threads`). ``row_index`` (1-d
        integers): the operator is ``K[row_index]`` (the logistic solver's sampled
        Hessian), without copying those rows out of K: the native pass reads them by
        index, the BLAS products a gathered chunk of them at a time."""
        if K.dtype not in (np.float32, np.float64) or K.ndim != 2 or not K.flags.c_contiguous:
            raise ValueError("K: expected a C-contiguous 2-d float32 or float64 array")
        self.K = K
        self.n_threads = n_threads
        self.row_index = None if row_index is None else _checked_rows(row_index, K.shape[0])
        self.n = K.shape[0] if self.row_index is None else self.row_index.size
        # Rows per chunk where a chunk of K is widened or gathered (CHUNK_BYTES).
        self.chunk_rows = max(1, CHUNK_BYTES // max(8 * K.shape[1], 1))

    def subset(self, rows: np.ndarray, by_index: bool) -> StoredColumns:
        """The operator over this one's rows ``rows`` (1-d integers): read from K by
        index (``by_index``: where its products take the native pass), else copied out
        once (BLAS's products would gather them on every call: letter's 26-class fit
        took twice as long that way)."""
        rows = _checked_rows(rows, self.n)
        if self.row_index is not None:
            rows = self.row_index[rows]
        if by_index:
            return StoredColumns(self.K, self.n_threads, rows)
        return StoredColumns(np.ascontiguousarray(self.K[rows]), self.n_threads)

    @property
    def dtype(self) -> np.dtype:
        return self.K.dtype

    @property
    def _whole(self) -> bool:
        """Whether BLAS can take K itself: float64 and every row in order."""
        return self.K.dtype == np.float64 and self.row_index is None

    def _block(self, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """The operator's rows ``r0:r1``: a view of K, or gathered (and widened) into
        ``out`` where given."""
        if self.row_index is None:
            block = self.K[r0:r1]
            if out is None:
                return block
            np.copyto(out, block)
            return out
        index = self.row_index[r0:r1]
        if out is not None and out.dtype == self.K.dtype:
            # mode="clip": numpy buffers the output of mode="raise" (11x slower here); the
            # indices are K's rows, checked where the subset was drawn.
            return np.take(self.K, index, axis=0, out=out, mode="clip")
        block = self.K[index]
        if out is None:
            return block
        np.copyto(out, block)
        return out

    def _chunks(self):
        """``(first row, rows as float64)`` for each chunk: views of float64 K, copies of
        float32 K (or of a subset's rows) into one reused scratch block."""
        n, M = self.n, self.K.shape[1]
        if self._whole:
            yield 0, self.K
            return
        scratch = np.empty((min(self.chunk_rows, n), M))
        for r0 in range(0, n, self.chunk_rows):
            block = scratch[: min(self.chunk_rows, n - r0)]
            yield r0, self._block(r0, r0 + block.shape[0], out=block)

    def __matmul__(self, V: np.ndarray) -> np.ndarray:
        """``K V`` (n x k), float64."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        if self._whole:
            return _blas.matmul(self.K, V)
        out = np.empty((self.n, V.shape[1]))
        for r0, block in self._chunks():
            out[r0 : r0 + block.shape[0]] = _blas.matmul(block, V)
        return out

    def rmatmat(self, U: np.ndarray) -> np.ndarray:
        """``K^T U`` (M x k), float64."""
        U = np.ascontiguousarray(U, dtype=np.float64)
        if self._whole:
            return _blas.matmul(self.K.T, U)
        out = np.zeros((self.K.shape[1], U.shape[1]))
        for r0, block in self._chunks():
            out += _blas.matmul(block.T, U[r0 : r0 + block.shape[0]])
        return out

    def rmatmat_rows(self, width: int, rows_of) -> np.ndarray:
        """``K^T U`` (M x width), float64, for a U (n x width) that is never whole:
        ``rows_of(r0, r1)`` returns its rows ``r0:r1`` (float64), a chunk of about
        ``CHUNK_BYTES`` at a time (the chunk of K too, widened where it is float32)."""
        n, M = self.n, self.K.shape[1]
        out = np.zeros((M, width), order="F")
        if n == 0 or width == 0:
            return out
        rows = max(1, CHUNK_BYTES // (8 * max(M, width)))
        wide = None if self._whole else np.empty((min(rows, n), M))
        for r0 in range(0, n, rows):
            r1 = min(r0 + rows, n)
            block = self._block(r0, r1, out=None if wide is None else wide[: r1 - r0])
            U = np.asfortranarray(rows_of(r0, r1), dtype=np.float64)
            if U.shape != (r1 - r0, width):
                raise ValueError(f"rows_of: expected shape {(r1 - r0, width)}, got {U.shape}")
            # C-ordered rows: their transpose is the F-ordered operand BLAS takes.
            _blas.gemm(1.0, block.T, U, 1.0, out)
        return out

    def normal_matvec(self, V: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
        """``K^T diag(sample_weight) K V`` (M x k), float64 (:meth:`curvature_product`)."""
        return self.curvature_product(V, sample_weight)

    def one_pass(self, k: int) -> bool:
        """Whether products with k columns take the native single pass over K (module
        docstring; ``NATIVE_CURVATURE``, ``NATIVE_MAX_ACCUMULATOR_BYTES``)."""
        return NATIVE_CURVATURE and 8.0 * k * self.K.shape[1] <= NATIVE_MAX_ACCUMULATOR_BYTES

    def curvature_product(
        self,
        V: np.ndarray,
        weights: np.ndarray,
        probabilities: np.ndarray | None = None,
        shift: np.ndarray | None = None,
    ) -> np.ndarray:
        """``K^T S (K V - 1 shift^T)`` (M x k), float64: S per row i is ``weights[i]
        (diag(p_i) - p_i p_i^T)`` with ``probabilities`` (n x k, the softmax's
        curvature), else ``weights[i]`` (and ``shift`` is ignored). In one native pass
        over K where :meth:`one_pass` says so, else by two BLAS products."""
        if probabilities is None:
            shift = None
        if not self.one_pass(np.shape(V)[1]):
            w = np.asarray(weights, dtype=np.float64).reshape(-1, 1)
            U = self @ V
            if probabilities is None:
                return self.rmatmat(w * U)
            T = U if shift is None else U - shift
            PT = probabilities * T
            return self.rmatmat(w * (PT - probabilities * PT.sum(axis=1, keepdims=True)))
        return _core.curvature_product(
            self.K,
            np.ascontiguousarray(V, dtype=np.float64),
            np.ascontiguousarray(weights, dtype=np.float64).reshape(-1),
            probabilities,
            shift,
            rows=self.row_index,
            n_threads=self.n_threads,
        )

    def weighted_gram(self, weights: np.ndarray) -> np.ndarray:
        """``K^T diag(weights) K`` (M x M, both triangles, float64), a block of rows at a
        time."""
        n, M = self.n, self.K.shape[1]
        G = np.zeros((M, M), order="F")
        rows = rows_for(M)
        for r0 in range(0, n, rows):
            r1 = min(r0 + rows, n)
            # float64 weights: the product is float64 whatever K's dtype (one temporary)
            _add_gram(G, self._block(r0, r1) * np.sqrt(weights[r0:r1], dtype=np.float64)[:, None])
        _fill_lower(G)
        return G


def _checked_rows(rows, n: int) -> np.ndarray:
    """``rows`` as int64 indices into n rows, refusing what numpy would reinterpret
    (boolean masks, floats, more than one axis) or read out of bounds."""
    rows = np.asarray(rows)
    if rows.ndim != 1 or (rows.size and rows.dtype.kind not in "iu"):
        raise ValueError(f"rows: expected a 1-d array of integer row indices, got {rows.dtype}")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= n):
        raise ValueError(f"rows: indices must be in [0, {n})")
    return rows


def stored_kernel_block(problem, X: np.ndarray, centers: np.ndarray, dtype) -> np.ndarray:
    """``K(X, centers)`` as a C-ordered array of ``dtype``: where that is at least the
    kernel's own precision, written in place by a CPU operator (converted from the
    operator's block on a GPU or dask one), else computed a chunk of rows at a time (so
    that the full-precision matrix, the size that did not fit, is never held)."""
    kernel_dtype = np.dtype(problem.kernel_dtype)
    if np.dtype(dtype).itemsize >= kernel_dtype.itemsize:
        op = problem.operator(X, centers)
        if getattr(op, "device", "cpu") == "cpu" and getattr(op, "_dask", None) is None:
            # Written where it is kept (float32 values widened as they are stored): no
            # second n x M array, no pass to convert one.
            return op.to_dense(out=np.empty((X.shape[0], centers.shape[0]), dtype=dtype))
        return np.ascontiguousarray(op.to_dense(), dtype=dtype)
    n, M = X.shape[0], centers.shape[0]
    out = np.empty((n, M), dtype=dtype)
    rows = max(1, CHUNK_BYTES // max(kernel_dtype.itemsize * M, 1))
    for r0 in range(0, n, rows):
        r1 = min(r0 + rows, n)
        out[r0:r1] = problem.operator(X[r0:r1], centers).to_dense()
    return out
