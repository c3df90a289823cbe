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

So nothing here hands a large double-precision ``syrk`` to BLAS: :func:`cholesky` and
:func:`solve_triangular` work by halves, with ``potrf`` and ``syrk`` only on diagonal
blocks of at most ``block`` (2048) rows, ``trsm`` only on triangles of at most 256 rows,
and GEMM of distinct blocks for the rest; :func:`lower_gram` forms ``L^T L`` from GEMMs of
distinct blocks. The BLAS calls act in place on sub-blocks (:mod:`gramfree._blas`), so that
the work runs near the multi-threaded GEMM rate rather than at OpenBLAS's ``potrf`` /
``trsm`` rates (``benchmarks/bench_cholesky.py``; on a 2-core Xeon, float64, n = 4000 to
20000: 84-102 GFLOP/s, 73-89% of DGEMM; 1.5-2.1x scipy's ``cholesky`` run the two ways
that avoid the crash, one BLAS thread or ``OPENBLAS_CORETYPE=Haswell``, and ~1.1-1.2x its
default multi-threaded run at n = 8000-12000, where that does not crash).

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

from . import _blas

__all__ = ["cholesky", "cho_solve", "solve_triangular", "jittered_cholesky", "lower_gram"]

_BLOCK = 2048
# Largest triangle handed to BLAS trsm; larger ones are split and the rest done by GEMM.
_TRSM_LEAF = 256
_ZERO_CHUNK = 256

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
    ``block`` is the largest diagonal block handed to LAPACK's ``potrf`` (module docstring).

    Raises ``numpy.linalg.LinAlgError`` when ``A`` is not positive definite.
    """
    L = _fortran_square(A, overwrite)
    _factor_lower(L, block)
    return L


def _factor_lower(L: np.ndarray, block: int) -> None:
    """In-place recursive Cholesky of the lower triangle of the F-ordered ``L``.

    Halving the matrix (factor the leading half, solve for the block below it, update the
    trailing half, factor it) puts almost all the flops in a few large GEMMs made in place
    on sub-blocks (:mod:`gramfree._blas`); a loop over fixed panels spent them in narrow
    calls and in copies of each panel's product. LAPACK's ``potrf`` only sees diagonal
    blocks of at most ``block`` rows and ``syrk`` only updates of as many (safe from the
    crash, and below 2048 rows OpenBLAS's ``potrf`` is as fast as anything built from
    smaller calls); ``trsm`` only triangles of ``_TRSM_LEAF`` rows, since it runs at about
    half the GEMM rate.

    The strict upper triangle is only written (zeroed) once the whole factorization has
    succeeded: on failure it still holds the input's off-diagonal entries.
    """
    n = L.shape[0]
    _chol(L, 0, n, max(1, block))
    # In column chunks, the diagonal blocks through a boolean mask: np.tril of a large
    # block allocates and scans it several times, more than a tenth of a small factorization.
    upper = np.triu(np.ones((_ZERO_CHUNK, _ZERO_CHUNK), dtype=bool), 1)
    for s in range(0, n, _ZERO_CHUNK):
        e = min(s + _ZERO_CHUNK, n)
        L[:s, s:e] = 0.0
        L[s:e, s:e][upper[: e - s, : e - s]] = 0.0


def _half(n: int) -> int:
    """Split point: a multiple of 64 rows (aligned column starts) once that is possible."""
    h = n // 2
    return max(1, h - h % 64) if h >= 64 else max(1, h)


def _chol(A: np.ndarray, offset: int, total: int, leaf: int) -> None:
    n = A.shape[0]
    if n <= leaf:
        info = _blas.potrf_lower(A)
        if info != 0:
            raise np.linalg.LinAlgError(
                f"matrix is not positive definite (leading minor {offset + info} of {total})"
            )
        return
    h = _half(n)
    _chol(A[:h, :h], offset, total, leaf)
    _trsm_lower_t(A[:h, :h], A[h:, :h], min(leaf, _TRSM_LEAF))
    _syrk_lower(A[h:, h:], A[h:, :h], leaf)
    _chol(A[h:, h:], offset + h, total, leaf)


def _trsm_lower_t(T: np.ndarray, B: np.ndarray, leaf: int) -> None:
    """``B = B T^-T`` for lower-triangular ``T``: BLAS ``trsm`` on diagonal blocks of at
    most ``leaf`` rows, GEMM for the rest. OpenBLAS's ``trsm`` runs at about half its
    GEMM rate; split this way, ``trsm`` does about ``leaf / k`` of the flops."""
    k = T.shape[0]
    if k <= leaf:
        _blas.trsm(1.0, T, B, right=True, lower=True, trans=True)
        return
    h = _half(k)
    _trsm_lower_t(T[:h, :h], B[:, :h], leaf)
    _blas.gemm(-1.0, B[:, :h], T[h:, :h], 1.0, B[:, h:], trans_b=True)
    _trsm_lower_t(T[h:, h:], B[:, h:], leaf)


def _syrk_lower(C: np.ndarray, P: np.ndarray, leaf: int) -> None:
    """Lower triangle of ``C -= P P^T``: ``syrk`` on diagonal blocks of at most ``leaf``
    rows, GEMM of distinct blocks elsewhere."""
    m = C.shape[0]
    if m <= leaf:
        _blas.syrk_lower(-1.0, P, 1.0, C)
        return
    h = _half(m)
    _syrk_lower(C[:h, :h], P[:h], leaf)
    _blas.gemm(-1.0, P[h:], P[:h], 1.0, C[h:, :h], trans_b=True)
    _syrk_lower(C[h:, h:], P[h:], leaf)


def lower_gram(L: np.ndarray, *, block: int = 512) -> np.ndarray:
    """``L.T @ L`` for a lower-triangular ``L`` (its strict upper triangle zero, as
    :func:`cholesky` returns it), as a new F-ordered symmetric matrix (both triangles) of
    ``L``'s dtype.

    numpy computes ``L.T @ L`` with ``syrk``, which crashes multi-threaded from about 16500
    rows on AMD Zen 4 (module docstring), and does n^3 flops. Here each column panel ``I``
    of the upper triangle is one GEMM over the rows where ``L[:, I]`` is non-zero,
    ``S[:i1, I] = L[i0:, :i1].T @ L[i0:, I]`` (about n^3 / 3 flops in all, LAPACK's
    ``lauum``; narrower panels waste less on the diagonal blocks), and the lower triangle
    is copied from the upper.
    """
    L = np.asarray(L)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"L: expected a square matrix, got shape {L.shape}")
    if L.dtype not in (np.float32, np.float64):
        L = L.astype(np.float64)
    n = L.shape[0]
    if n > 1 and L.strides[0] != L.itemsize:
        L = np.asfortranarray(L)
    S = np.empty((n, n), dtype=L.dtype, order="F")
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        rows = L[i0:]  # L[k, i] = 0 for k < i: rows from i0 on suffice
        # S[:i1, i0:i1] = rows[:, :i1]^T rows[:, i0:i1]: a GEMM of distinct operands in
        # place (scipy's BLAS: gramfree._threads on why not numpy's)
        _blas.gemm(1.0, rows[:, :i1], rows[:, i0:i1], 0.0, S[:i1, i0:i1], trans_a=True)
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        S[i0:i1, :i0] = S[:i0, i0:i1].T
        diag = S[i0:i1, i0:i1]  # computed whole: make it exactly symmetric too
        lower = np.tril_indices(i1 - i0, -1)
        diag[lower] = diag.T[lower]
    return S


def solve_triangular(L: np.ndarray, B: np.ndarray, *, trans: bool = False) -> np.ndarray:
    """``L^-1 B`` (or ``L^-T B`` with ``trans``) for lower-triangular ``L``.

    Solved in ``L``'s precision (``B`` is cast to it, never ``L`` to ``B``'s: a float32
    factor is not copied to float64 on every call); the result has ``B``'s float dtype.
    Like :func:`cholesky`, by halves: BLAS ``trsm`` only on diagonal blocks of
    ``_TRSM_LEAF`` rows and GEMM for the rest, which with many right-hand sides runs at
    GEMM's rate where one large ``trsm`` runs at about half of it.
    """
    L = np.asarray(L)
    B = np.asarray(B)
    out = B.dtype if B.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    if L.dtype not in (np.float32, np.float64):
        L = L.astype(np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1] or B.shape[:1] != L.shape[:1] or B.ndim > 2:
        raise ValueError(f"L {L.shape} and B {B.shape}: expected (n, n) and (n,) or (n, k)")
    if L.shape[0] > 1 and L.strides[0] != L.itemsize:
        L = np.asfortranarray(L)  # e.g. numpy's C-ordered factor
    X = np.array(B.reshape(B.shape[0], -1), dtype=L.dtype, order="F")
    _solve_lower(L, X, trans)
    return X.reshape(B.shape).astype(out, copy=False)


def _solve_lower(L: np.ndarray, X: np.ndarray, trans: bool) -> None:
    n = L.shape[0]
    if n <= _TRSM_LEAF:
        _blas.trsm(1.0, L, X, right=False, lower=True, trans=trans)
        return
    h = _half(n)
    if trans:  # [L11^T L21^T; 0 L22^T]: the bottom half first
        _solve_lower(L[h:, h:], X[h:], True)
        _blas.gemm(-1.0, L[h:, :h], X[h:], 1.0, X[:h], trans_a=True)
        _solve_lower(L[:h, :h], X[:h], True)
    else:
        _solve_lower(L[:h, :h], X[:h], False)
        _blas.gemm(-1.0, L[h:, :h], X[:h], 1.0, X[h:])
        _solve_lower(L[h:, h:], X[h:], False)


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
