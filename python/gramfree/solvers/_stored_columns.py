"""K(X, C) held in memory for the logistic solver, with its products.

Where the n x M kernel block fits in memory (the solver's budget), the Newton-PCG solver
computes it once and every pass after it is a product with a stored matrix. It is stored
in the kernel's dtype (``Problem.kernel_dtype``): float64 for float64 data, float32 for
float32 data or ``kernel_precision="float32"``, or float32 where float64 would not fit
the budget and float32 does (the alternative, recomputing the kernel on every pass, costs
~2d flops per entry where a stored one costs reading 4 bytes). float32 halves the memory
and the bytes every pass reads.

float64: ``K V`` and ``K^T U`` are single BLAS calls (scipy's, on the fit's threads).

float32: the products that set the Newton step's accuracy (``K a``, the gradient
``K^T R``) are accumulated in float64 from blocks of rows widened in cache, so that they
carry only the kernel values' rounding (as a float32 kernel computed on the fly would).
A CG iteration's curvature product ``K^T S(K V)`` runs in float32 arithmetic, where
rounding at 1e-7 is far below CG's own tolerance (at least 0.1 of the residual per Newton
step), in one pass over K: a block of rows (about ``BLOCK_BYTES``, so that it stays in a
core's L2 cache between its two products) gives ``U_b = K_b V`` and ``K_b^T S_b(U_b)``,
and each thread adds its blocks into its own M x k sum (summed in a fixed order after, so
the result does not depend on timing), with the column sums of ``S(K V)`` that the
multinomial intercepts' elimination needs. Two alternatives were slower in scratch
timings on random matrices of the solver's shapes (M = 1000 to 4000, k = 6 to 26), so
neither is used: the same one-pass scheme in float64 (no faster than BLAS's pair of
products once K outgrows the last-level cache), and OpenBLAS's pair of float32 products
(slower than its float64 pair at these thin shapes). ``benchmarks/bench_logistic.py``
measures the fits.

Threads: the blocks are split into one contiguous run per thread (the fit's ``n_jobs``);
BLAS runs on one thread inside each (:func:`gramfree._threads.small_blas`), and numpy
releases the GIL in its products.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import _blas
from .._threads import small_blas
from .nystrom_direct import _add_gram, _fill_lower, rows_for

# Bytes of K per block of rows: one per core, with its M x k sums, in a current x86
# core's L2 cache (2 MiB on the Xeon measured; 96 KiB to 4 MiB blocks were tried there,
# best at 0.6-1 MiB for M = 1000 to 4000).
BLOCK_BYTES = 1024 * 1024
# Fewest and most rows per block (a block of a few rows makes each product a GEMV).
MIN_ROWS, MAX_ROWS = 8, 1024

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _executor(threads: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    if _pool is None or _pool_size < threads:
        if _pool is not None:
            _pool.shutdown(wait=True)
        _pool, _pool_size = ThreadPoolExecutor(max_workers=threads), threads
    return _pool


# A block's curvature: (first row, rows' U (float64)) -> S(U) for those rows (float64).
Curvature = Callable[[int, np.ndarray], np.ndarray]


class StoredColumns:
    """K_nM in memory (C-ordered, float32 or float64) and the operator calls the logistic
    solver makes; every result float64 (module docstring)."""

    def __init__(self, K: np.ndarray, threads: int, rows: int | None = None) -> None:
        """``threads``: at least 1; ``rows``: rows per block (default from BLOCK_BYTES)."""
        if K.dtype not in (np.float32, np.float64) or K.ndim != 2 or not K.flags.c_contiguous:
            raise ValueError("K: expected a C-contiguous 2-d float32 or float64 array")
        self.K = K
        n, M = K.shape
        if rows is None:
            rows = int(np.clip(BLOCK_BYTES // max(M * K.itemsize, 1), MIN_ROWS, MAX_ROWS))
        self.rows = max(1, int(rows))
        self.threads = max(1, min(int(threads), -(-n // self.rows)))

    @property
    def dtype(self) -> np.dtype:
        return self.K.dtype

    def _runs(self) -> list[tuple[int, int]]:
        """One contiguous run of whole blocks per thread."""
        n = self.K.shape[0]
        blocks = -(-n // self.rows)
        cuts = [self.rows * (blocks * t // self.threads) for t in range(self.threads + 1)]
        return [(cuts[t], min(cuts[t + 1], n)) for t in range(self.threads) if cuts[t] < n]

    def _parallel(self, work):
        """``work(lo, hi)`` on each run, in threads with BLAS on one thread each; the
        results in the runs' order."""
        runs = self._runs()
        with small_blas(0.0):
            if len(runs) == 1:
                return [work(*runs[0])]
            pool = _executor(len(runs))
            return [f.result() for f in [pool.submit(work, lo, hi) for lo, hi in runs]]

    def _wide(self, lo: int, hi: int, buffer: np.ndarray | None = None) -> np.ndarray:
        """Rows ``lo:hi`` in float64: a view of float64 K, else widened into ``buffer``
        (a thread's, reused: a fresh block per call is a fresh mapping to fault in)."""
        block = self.K[lo:hi]
        if block.dtype == np.float64:
            return block
        if buffer is None:
            return block.astype(np.float64)
        out = buffer[: hi - lo]
        np.copyto(out, block)
        return out

    def _buffer(self) -> np.ndarray:
        return np.empty((self.rows, self.K.shape[1]))

    def __matmul__(self, V: np.ndarray) -> np.ndarray:
        """``K V`` (n x k), accumulated in float64."""
        V = np.ascontiguousarray(V, dtype=np.float64)
        if self.K.dtype == np.float64:
            return _blas.matmul(self.K, V)
        out = np.empty((self.K.shape[0], V.shape[1]))

        def work(lo: int, hi: int) -> None:
            buffer = self._buffer()
            for r0 in range(lo, hi, self.rows):
                r1 = min(r0 + self.rows, hi)
                np.matmul(self._wide(r0, r1, buffer), V, out=out[r0:r1])

        self._parallel(work)
        return out

    def rmatmat(self, U: np.ndarray) -> np.ndarray:
        """``K^T U`` (M x k), accumulated in float64."""
        U = np.ascontiguousarray(U, dtype=np.float64)
        if self.K.dtype == np.float64:
            return _blas.matmul(self.K.T, U)

        def work(lo: int, hi: int) -> np.ndarray:
            acc = np.zeros((self.K.shape[1], U.shape[1]))
            buffer = self._buffer()
            for r0 in range(lo, hi, self.rows):
                r1 = min(r0 + self.rows, hi)
                acc += self._wide(r0, r1, buffer).T @ U[r0:r1]
            return acc

        return _sum(self._parallel(work))

    def rmatmat_stored(self, U: np.ndarray) -> np.ndarray:
        """``K^T U`` (M x k) in K's dtype's arithmetic (float32 K: each block's product in
        float32, the blocks summed in float64), for the CG's operator only."""
        if self.K.dtype == np.float64:
            return self.rmatmat(U)
        U = np.ascontiguousarray(U, dtype=self.K.dtype)

        def work(lo: int, hi: int) -> np.ndarray:
            acc = np.zeros((self.K.shape[1], U.shape[1]))
            for r0 in range(lo, hi, self.rows):
                r1 = min(r0 + self.rows, hi)
                acc += self.K[r0:r1].T @ U[r0:r1]
            return acc

        return _sum(self._parallel(work))

    def normal_matvec(self, V: np.ndarray, sample_weight: np.ndarray) -> np.ndarray:
        """``K^T diag(sample_weight) K V`` as two products (the solver's call for float64 K)."""
        return self.rmatmat(sample_weight.reshape(-1, 1) * self.__matmul__(V))

    def curvature_product(
        self, V: np.ndarray, curvature: Curvature
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(K^T S(K V), column sums of S(K V))`` in one pass over K, in K's dtype's
        arithmetic (module docstring: the solver calls it for float32 K);
        ``curvature(r0, U)`` applies S to the rows ``r0 ...``."""
        Vk = np.ascontiguousarray(V, dtype=self.K.dtype)
        M, k = self.K.shape[1], Vk.shape[1]

        def work(lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
            acc = np.zeros((M, k), dtype=self.K.dtype)
            sums = np.zeros(k)
            for r0 in range(lo, hi, self.rows):
                block = self.K[r0 : min(r0 + self.rows, hi)]
                W = curvature(r0, (block @ Vk).astype(np.float64))
                sums += W.sum(axis=0)
                acc += block.T @ W.astype(self.K.dtype, copy=False)
            return acc, sums

        parts = self._parallel(work)
        return _sum([p[0] for p in parts]), _sum([p[1] for p in parts])

    def weighted_gram(self, weights: np.ndarray) -> np.ndarray:
        """``K^T diag(weights) K`` (M x M, both triangles, float64), a block of rows at a
        time."""
        M = self.K.shape[1]
        G = np.zeros((M, M), order="F")
        rows = rows_for(M)
        for r0 in range(0, self.K.shape[0], rows):
            r1 = min(r0 + rows, self.K.shape[0])
            _add_gram(G, self._wide(r0, r1) * np.sqrt(weights[r0:r1])[:, None])
        _fill_lower(G)
        return G


def _sum(parts: list[np.ndarray]) -> np.ndarray:
    """The threads' partial sums in a fixed order, in float64."""
    total = parts[0].astype(np.float64)
    for p in parts[1:]:
        total += p
    return total
