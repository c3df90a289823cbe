"""Dense linear algebra for the solvers' small systems (m x m), robust where LAPACK is not.

On AMD Zen 4 the OpenBLAS builds bundled with scipy (0.3.30) and numpy (0.3.31) crash
(SIGSEGV) in double-precision ``syrk`` / ``syr2k`` once the output has about 15500 rows or
more and the inner dimension is a few hundred or more (e.g. 15500 x 1024, 16500 x 768,
20000 x 256 crash; 15000 x 1024, 16000 x 512, 20000 x 128 do not). Measured there:

* scipy's ``dsyrk`` crashes with one BLAS thread as well, so ``dpotrf`` from about 16000
  rows crashes single-threaded too: limiting the thread count does not help;
* numpy's ``A @ A.T`` and ``L.T @ L`` (one buffer, transposed: numpy calls ``syrk``) crash
  with more than one thread (16000 x 2048; ``L.T @ L`` at 16500) and not with one;
* ``gemm`` of distinct operands (25000 x 2048 x 25000), ``trsm`` (30000 x 2048), ``trtrs``
  with few right-hand sides (25000), and the single-precision ``ssyrk`` / ``spotrf`` (25000)
  do not crash.

So nothing here hands a large double-precision ``syrk`` to BLAS: :func:`cholesky` calls
``potrf`` only on ``block``-row diagonal blocks and does the trailing updates with GEMM,
and :func:`lower_gram` forms ``L^T L`` from GEMMs of distinct blocks. Both keep the
multi-threaded BLAS-3 speed of LAPACK's own routines.

Examples
--------
>>> import numpy as np
>>> A = np.array([[4.0, 2.0], [2.0, 3.0]])
>>> L = cholesky(A)
>>> bool(np.allclose(L @ L.T, A))
True
>>> bool(np.allclose(lower_gram(L), L.T @ L))
True
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
from scipy.linalg import blas, lapack

__all__ = ["cholesky", "cho_solve", "solve_triangular", "jittered_cholesky", "lower_gram"]

_BLOCK = 2048
_STRIP = 512

# First non-zero jitter of jittered_cholesky, relative to the mean of the diagonal. float32
# starts where its rounding (eps ~ 6e-8, accumulated over m terms) makes factorizations of
# singular kernel matrices fail anyway, so that no attempt is wasted below it.
_JITTER_START = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}


def _fortran_square(A, overwrite: bool) -> np.ndarray:
    """A square float32/float64 matrix in Fortran order to factor in place: ``A`` itself
    (or ``A.T``, a C-ordered matrix's transpose, whose block columns are contiguous) with
    ``overwrite``, else a copy."""
    A = np.asarray(A)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    if overwrite and A.flags.f_contiguous:
        return A
    if overwrite and A.flags.c_contiguous:
        return A.T
    return np.array(A, order="F")


def cholesky(A: np.ndarray, *, block: int = _BLOCK, overwrite: bool = False) -> np.ndarray:
    """Lower-triangular ``L`` with ``L @ L.T == A`` (float32 or float64, symmetric positive
    definite).

    Reads one triangle: the lower of an F-ordered ``A``, the upper of a C-ordered one (the
    lower of its transpose, which is F-ordered); for a symmetric ``A`` it does not matter.
    With ``overwrite`` the factor is computed in ``A``'s memory (``L`` is ``A`` or ``A.T``)
    and, if the factorization fails, the triangle that was not read still holds ``A``'s
    off-diagonal entries (see :func:`jittered_cholesky`, which restores from it).

    Raises ``numpy.linalg.LinAlgError`` when ``A`` is not positive definite.
    """
    L = _fortran_square(A, overwrite)
    _factor_lower(L, block)
    return L


def _factor_lower(L: np.ndarray, block: int, strip: int = _STRIP) -> None:
    """In-place right-looking blocked Cholesky of the lower triangle of the F-ordered ``L``.

    The strict upper triangle is only written (zeroed) once the whole factorization has
    succeeded: on failure it still holds the input's off-diagonal entries.
    """
    n = L.shape[0]
    potrf, trsm = (
        (lapack.dpotrf, blas.dtrsm) if L.dtype == np.float64 else (lapack.spotrf, blas.strsm)
    )
    strip = max(1, min(strip, block))
    for s in range(0, n, block):
        e = min(s + block, n)
        # potrf on a copy of the diagonal block (block rows: safe): with clean=0 its upper
        # part comes back as it was, so writing it back leaves the strict upper intact.
        diag, info = potrf(L[s:e, s:e], lower=1, clean=0, overwrite_a=0)
        if info != 0:
            raise np.linalg.LinAlgError(
                f"matrix is not positive definite (leading minor {s + info} of {n})"
            )
        L[s:e, s:e] = diag
        if e == n:
            break
        # L21 = A21 L11^-T, then the trailing update A22 -= L21 L21^T on the lower triangle
        # in column strips, each a GEMM of distinct blocks (never syrk, which crashes at
        # these sizes; see the module docstring). Narrow strips waste little on the
        # diagonal sub-blocks, whose upper part (the input's) is left alone.
        L[e:, s:e] = trsm(1.0, diag, L[e:, s:e], side=1, lower=1, trans_a=1)
        panel = L[e:, s:e]
        for j0 in range(e, n, strip):
            j1 = min(j0 + strip, n)
            top = panel[j0 - e : j1 - e]
            L[j0:j1, j0:j1] -= np.tril(_gemm_nt(top, top))
            if j1 < n:
                L[j1:, j0:j1] -= panel[j1 - e :] @ top.T
    for s in range(0, n, block):
        e = min(s + block, n)
        L[:s, s:e] = 0.0
        L[s:e, s:e] = np.tril(L[s:e, s:e])


def _gemm_nt(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B.T`` without numpy's syrk shortcut, which it takes when ``A`` and ``B`` are
    the same block (same data pointer and shape): then two GEMMs on halves of ``A``'s rows
    (the blocks here have at most ``block`` rows)."""
    same = A.shape == B.shape and (
        A.__array_interface__["data"][0] == B.__array_interface__["data"][0]
    )
    if A.shape[0] < 2 or not same:
        return A @ B.T
    h = A.shape[0] // 2
    return np.vstack([A[:h] @ B.T, A[h:] @ B.T])


def lower_gram(L: np.ndarray, *, block: int = 512) -> np.ndarray:
    """``L.T @ L`` for a lower-triangular ``L`` (its strict upper triangle zero, as
    :func:`cholesky` returns it), as a new F-ordered symmetric matrix (both triangles) of
    ``L``'s dtype.

    numpy computes ``L.T @ L`` with ``syrk``, which crashes multi-threaded from about 16500
    rows on AMD Zen 4 (module docstring), and does n^3 flops. Here each row panel ``I`` of
    the lower triangle is one GEMM over the rows where ``L[:, I]`` is non-zero,
    ``S[I, :i1] = L[i0:, I].T @ L[i0:, :i1]`` (about n^3 / 3 flops in all, LAPACK's
    ``lauum``; narrower panels waste less on the diagonal blocks), and the upper triangle
    is copied from the lower.
    """
    L = np.asarray(L)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"L: expected a square matrix, got shape {L.shape}")
    if L.dtype not in (np.float32, np.float64):
        L = L.astype(np.float64)
    n = L.shape[0]
    S = np.empty((n, n), dtype=L.dtype)  # C order: row panels are contiguous
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        rows = L[i0:]  # L[k, i] = 0 for k < i: rows from i0 on suffice
        S[i0:i1, :i1] = _gemm_nt(rows[:, i0:i1].T, rows[:, :i1].T)
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        S[:i0, i0:i1] = S[i0:i1, :i0].T
        diag = S[i0:i1, i0:i1]  # computed whole: make it exactly symmetric too
        upper = np.triu_indices(i1 - i0, 1)
        diag[upper] = diag.T[upper]
    return S.T  # symmetric: the transpose is the same matrix, F-ordered


def solve_triangular(L: np.ndarray, B: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """``L^-1 B`` (or ``L^-T B`` with ``trans``) for lower-triangular ``L``.

    Solved in ``L``'s precision (``B`` is cast to it, never ``L`` to ``B``'s: a float32
    factor is not copied to float64 on every call); the result has ``B``'s float dtype.
    """
    B = np.asarray(B)
    out = B.dtype if B.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = sla.solve_triangular(
        L, B.astype(L.dtype, copy=False), lower=True, trans=1 if trans else 0, check_finite=False
    )
    return x.astype(out, copy=False)


def cho_solve(L: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``(L L^T)^-1 B``."""
    return solve_triangular(L, solve_triangular(L, B), trans=True)


def jittered_cholesky(
    A: np.ndarray,
    *,
    start: float | None = None,
    overwrite: bool = False,
    block: int = _BLOCK,
) -> tuple[np.ndarray, float]:
    """Cholesky of ``A + jitter * mean(diag(A)) * I`` with the smallest jitter in
    ``0, start, 100 * start, ...`` (up to 1e-2) that succeeds; returns ``(L, jitter)``.

    ``start`` defaults to 1e-12 in float64 and 1e-6 in float32. Kernel matrices of centres
    are positive semi-definite and singular when two centres coincide; the jitter makes the
    factorization possible and is reported. ``A`` must be symmetric (both triangles). With
    ``overwrite`` the factor is computed in ``A``'s memory (no n x n copy, even when
    attempts fail: each retry restores the matrix from the triangle the factorization does
    not touch); otherwise ``A`` is left as it was.
    """
    L = _fortran_square(A, overwrite)
    if start is None:
        start = _JITTER_START[L.dtype]
    diag = np.diag(L).copy()
    scale = float(np.mean(diag, dtype=np.float64)) or 1.0
    jitter = 0.0
    while True:
        try:
            _factor_lower(L, block)
            return L, jitter
        except np.linalg.LinAlgError:
            jitter = start if jitter == 0.0 else jitter * 100
            if jitter > 1e-2:
                _restore_lower(L, diag, block)
                raise
            _restore_lower(L, diag + jitter * scale, block)


def _restore_lower(L: np.ndarray, diag: np.ndarray, block: int) -> None:
    """After a failed in-place factorization: the strict lower triangle from the (intact)
    strict upper one, and the given diagonal."""
    n = L.shape[0]
    for j0 in range(0, n, block):
        j1 = min(j0 + block, n)
        blk = L[j0:j1, j0:j1]
        low = np.tril_indices(j1 - j0, -1)
        blk[low] = blk.T[low]
        if j1 < n:
            L[j1:, j0:j1] = L[j0:j1, j1:].T
    L[np.diag_indices(n)] = diag
