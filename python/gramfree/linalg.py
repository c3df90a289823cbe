"""Dense linear algebra for the solvers' small systems (m x m), robust where LAPACK is not.

On AMD Zen 4 the OpenBLAS bundled with scipy segfaults in its multi-threaded Cholesky
(``potrf``) from about 16000 rows, which takes down scikit-learn's KernelRidge at n = 20000.
:func:`cholesky` never calls ``potrf`` on more than ``block`` rows: a right-looking blocked
factorization whose panels use ``potrf`` on a diagonal block, ``trsm`` and ``gemm`` (all
multi-threaded BLAS-3, and safe), so large factorizations keep both speed and the process.
The trailing update uses GEMM per block column: OpenBLAS's multi-threaded ``syrk`` crashes
on the same machines from about 16000 x 1024.

Examples
--------
>>> import numpy as np
>>> A = np.array([[4.0, 2.0], [2.0, 3.0]])
>>> L = cholesky(A)
>>> bool(np.allclose(L @ L.T, A))
True
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack

__all__ = ["cholesky", "cho_solve", "solve_triangular", "jittered_cholesky"]

_BLOCK = 2048


def cholesky(A: np.ndarray, *, block: int = _BLOCK, overwrite: bool = False) -> np.ndarray:
    """Lower-triangular ``L`` with ``L @ L.T == A`` (float32 or float64, symmetric positive
    definite; both triangles must hold it: the C-ordered in-place path reads the upper).

    Raises ``numpy.linalg.LinAlgError`` when ``A`` is not positive definite.
    """
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    n = A.shape[0]
    # Work in Fortran order on the lower triangle: each block column is contiguous. A
    # symmetric C-ordered matrix is its own transpose, which is Fortran-ordered.
    if overwrite and A.flags.f_contiguous:
        L = A
    elif overwrite and A.flags.c_contiguous:
        L = A.T
    else:
        L = np.array(A, order="F")
    potrf, trsm = (
        (lapack.dpotrf, blas.dtrsm) if L.dtype == np.float64 else (lapack.spotrf, blas.strsm)
    )
    for s in range(0, n, block):
        e = min(s + block, n)
        diag, info = potrf(L[s:e, s:e], lower=1, clean=1, overwrite_a=0)
        if info != 0:
            raise np.linalg.LinAlgError(
                f"matrix is not positive definite (leading minor {s + info} of {n})"
            )
        L[s:e, s:e] = diag
        L[:s, s:e] = 0.0  # the block column's upper part (potrf cleaned the diagonal block)
        if e == n:
            break
        # L21 = A21 L11^-T, then the trailing update A22 -= L21 L21^T, lower triangle only,
        # one block column at a time with GEMM: OpenBLAS's multi-threaded syrk segfaults
        # too (seen at 16000 x 1024 on Zen 4), its gemm at these shapes does not.
        L[e:, s:e] = trsm(1.0, diag, L[e:, s:e], side=1, lower=1, trans_a=1)
        panel = L[e:, s:e]
        for j0 in range(e, n, block):
            j1 = min(j0 + block, n)
            L[j0:, j0:j1] -= panel[j0 - e :] @ panel[j0 - e : j1 - e].T
    return L


def solve_triangular(L: np.ndarray, B: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """``L^-1 B`` (or ``L^-T B`` with ``trans``) for lower-triangular ``L``."""
    return sla.solve_triangular(L, B, lower=True, trans=1 if trans else 0, check_finite=False)


def cho_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(L L^T)^-1 B``."""
    return solve_triangular(L, solve_triangular(L, B), trans=True)


def jittered_cholesky(A: np.ndarray, *, start: float = 1e-12) -> tuple[np.ndarray, float]:
    """Cholesky of ``A + jitter * mean(diag(A)) * I`` with the smallest jitter in
    ``start, 100 * start, ...`` (up to 1e-2) that succeeds; returns ``(L, jitter)``.

    Kernel matrices of centres are positive semi-definite and singular when two centres
    coincide; the jitter makes the factorization possible and is reported.
    """
    scale = float(np.mean(np.diag(A))) or 1.0
    jitter = 0.0
    while True:
        B = A.copy()
        if jitter:
            B[np.diag_indices_from(B)] += jitter * scale
        try:
            return cholesky(B, overwrite=True), jitter
        except np.linalg.LinAlgError:
            jitter = start if jitter == 0.0 else jitter * 100
            if jitter > 1e-2:
                raise
