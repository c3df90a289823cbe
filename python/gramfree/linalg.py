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
and GEMM of distinct blocks for the rest (triangular solves with few right-hand sides,
the solvers' case, from 2000 rows (256 on one thread) run gramfree's own blocked solve, no BLAS at all:
``csrc/kernels/trsm_engine.hpp``, ``benchmarks/bench_trsm.py``; one right-hand side on up to
two threads is one BLAS ``trsv``, which ran at 30000 rows on Zen 4 without the crash);
:func:`lower_gram` forms ``L^T L`` from GEMMs of
distinct blocks. The BLAS calls act in place on sub-blocks (:mod:`gramfree._blas`), so that
the work runs near the multi-threaded GEMM rate rather than at OpenBLAS's ``potrf`` /
``trsm`` rates (``benchmarks/bench_cholesky.py``; on a 2-core Xeon, float64, n = 4000 to
20000: 84-102 GFLOP/s, 73-89% of DGEMM; 1.5-2.1x scipy's ``cholesky`` run the two ways
that avoid the crash, one BLAS thread or ``OPENBLAS_CORETYPE=Haswell``, and ~1.1-1.2x its
default multi-threaded run at n = 8000-12000, where that does not crash).

Input is checked as scipy.linalg checks it, at O(n^2) cost at most (nothing that
compares with the O(n^3) factorization, or with an O(n^2 k) solve): float32 and float64
are computed in their own precision, integers (and float16, longdouble) in float64, and
bool, complex, object and string arrays are refused (TypeError naming the argument); NaN
or infinity raise ValueError naming it (``check_finite``); any memory layout is accepted
(views BLAS cannot take as they are, such as negative or zero strides, are copied); a
read-only array is never written (``overwrite=True`` refuses it); 0 x 0 systems give
empty results.

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

import math
import numbers

import numpy as np

from . import _blas, _core, _threads
from ._ragged import RAGGED, ragged_lists_raise

__all__ = ["cholesky", "cho_solve", "solve_triangular", "jittered_cholesky", "lower_gram"]

_BLOCK = 2048
# Largest triangle handed to BLAS trsm; larger ones are split and the rest done by GEMM.
_TRSM_LEAF = 256
# Few right-hand sides (benchmarks/bench_trsm.py, 2-core Xeon, 2026-12-03): from 2000 rows
# the native solve (csrc/kernels/trsm_engine.hpp) with 2 to 64 columns (32 for L^T X = B,
# whose tiles re-read L once per 6 columns) ran at 0.8-3.2x BLAS by halves and LAPACK's
# solve, and a Nystrom-PCG fit with 2000 centres 1.6x as fast; below 2000 rows and for
# one column it was slower there. On the 2-core EPYC (Zen 4) this project's CI runs on,
# scratch loops of solves (2026-12-04; not a benchmarks/ script, so no figures here) had
# it faster than BLAS by halves at 300 to 1500 rows with 2 to 6 columns on one thread, as
# inside CG's loops' small algebra: so on one thread from 256 rows (below, halves is one
# trsm call). On two threads below 2000 rows BLAS stays: there the native solve's
# per-block barriers met OpenBLAS's workers, which spin for ~0.1 s after the
# preconditioner's factorization (gramfree._threads), and a logistic fit of digits got
# slower in the same scratch runs.
# One right-hand side: one BLAS trsv over the whole factor, where the solve runs on at
# most this many threads (benchmarks/bench_trsm.py, 2-core EPYC, 2026-12-04: 1.3-3.1x the
# split by halves, which spends one column in 256-row trsm calls and GEMVs between them).
# OpenBLAS's trsv is single-threaded, so on more cores the split's multi-threaded GEMVs
# may stream the factor faster: not measured, so the split stays there.
_TRSV_MAX_THREADS = 2
# NATIVE_SOLVES off keeps BLAS by halves everywhere, one right-hand side included (the
# benchmark's comparison with gramfree's solves before 2026-12-03 and 2026-12-04).
_FEW_RHS = 64
_NATIVE_MIN_ROWS = 2000
_NATIVE_MIN_ROWS_ONE_THREAD = 256
_NATIVE_MAX_RHS_TRANS = 32
# Largest L for which lower_gram calls LAPACK's lauum (OpenBLAS's threaded driver, whose
# diagonal blocks go through syrk): run at 8000 to 20000 rows on the 2-core EPYC (Zen 4)
# without the syrk crash (2026-12-04), capped well below the ~15500 rows where syrk and
# potrf crash there; larger L take GEMM panels.
_LAUUM_MAX_ROWS = 12000
NATIVE_SOLVES = True
_ZERO_CHUNK = 256
# Elements per np.isfinite pass: bounds the boolean temporary of a finiteness check of a
# large matrix (one that overwrite=True was meant to keep from being copied).
_FINITE_CHUNK = 1 << 20

# First non-zero jitter of jittered_cholesky, relative to the mean of the diagonal. float32
# starts where its rounding (eps ~ 6e-8, accumulated over m terms) makes factorizations of
# singular kernel matrices fail anyway, so that no attempt is wasted below it.
_JITTER_START = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}
_JITTER_MAX = 1e-2

# solve_triangular's trans: scipy's spellings (real matrices: 'C' is 'T').
_TRANS = {"N": False, "T": True, "C": True}


def _real_dtype(A: np.ndarray, name: str) -> np.dtype:
    """The dtype ``A`` is computed in: float32 and float64 (either byte order) as they
    are, integers and the other real floating types (float16, longdouble) in float64.
    Bool, complex, object, string and other dtypes: TypeError naming the argument."""
    kind = A.dtype.kind
    if kind == "f":
        if A.dtype.itemsize == 4:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    if kind in "iu":
        return np.dtype(np.float64)
    raise TypeError(
        f"{name}: expected a real (float32/float64, or integer) array, got dtype {A.dtype}"
    )


def _as_array(A, name: str) -> np.ndarray:
    if type(A) is np.ndarray:  # the solvers' loops: skip the warnings filter (~us a call)
        return A
    try:
        with ragged_lists_raise():
            return np.asarray(A)
    except RAGGED as exc:
        raise ValueError(f"{name}: cannot be converted to an array ({exc})") from exc
    except (ValueError, TypeError) as exc:  # ragged lists and the like
        raise type(exc)(f"{name}: cannot be converted to an array ({exc})") from exc


def _converted(A: np.ndarray, dtype: np.dtype, name: str, why: str = "") -> np.ndarray:
    """``A`` itself when its dtype is ``dtype``, else an F-ordered copy in ``dtype``; a
    finite value that the conversion turns into infinity (longdouble to float64, float64
    to float32) is refused naming ``name``."""
    if A.dtype == dtype:
        return A
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.array(A, dtype=dtype, order="F")
    if A.dtype.kind == "f" and A.dtype.itemsize > dtype.itemsize and not _all_finite(out):
        _refuse_non_finite(A, name)
        # Formatted in A's own precision: float() of a longdouble 1e400 said "up to inf".
        big = np.format_float_scientific(np.max(np.abs(A)), precision=2, trim="-")
        raise ValueError(f"{name}: values up to {big} overflow {dtype}{why}")
    return out


def _all_finite(A: np.ndarray) -> bool:
    """``np.isfinite(A).all()``: first by the sum (one pass, no temporary; NaN and
    infinity make it non-finite), and only when that is not finite (NaN, infinity, or a
    sum of finite values that overflows) exactly, in chunks of ``_FINITE_CHUNK`` elements
    along ``A``'s outer (larger-stride) axis, so that the boolean temporary stays small."""
    if A.size <= 4096:  # small: one call (the sum's errstate costs as much)
        return bool(np.isfinite(A).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(A, axis=None)):
            return True
    if A.ndim != 2 or A.size <= _FINITE_CHUNK:
        return bool(np.isfinite(A).all())
    axis = 0 if abs(A.strides[0]) >= abs(A.strides[1]) else 1
    step = max(1, _FINITE_CHUNK // max(1, A.shape[1 - axis]))
    for s in range(0, A.shape[axis], step):
        part = A[s : s + step] if axis == 0 else A[:, s : s + step]
        if not np.isfinite(part).all():
            return False
    return True


def _lower_finite(L: np.ndarray) -> bool:
    """Whether the lower triangle (diagonal included) of the square ``L`` is finite; its
    strict upper triangle is not looked at."""
    n = L.shape[0]
    step = max(1, min(n, _FINITE_CHUNK // max(1, n)))
    upper = np.triu(np.ones((step, step), dtype=bool), 1)
    for j0 in range(0, n, step):
        j1 = min(j0 + step, n)
        ok = np.isfinite(L[j0:, j0:j1])
        ok[: j1 - j0] |= upper[: j1 - j0, : j1 - j0]
        if not ok.all():
            return False
    return True


def _refuse_non_finite(A: np.ndarray, name: str) -> None:
    if not _all_finite(A):
        raise ValueError(f"{name}: contains NaN or infinity")


def _blas_layout(L: np.ndarray) -> np.ndarray:
    """``L`` itself when BLAS can take it as it is (unit row stride, a positive column
    stride of at least its rows, aligned: F order or a column block of it), else an
    F-ordered copy. Negative, zero (broadcast) or overlapping strides are copied: BLAS
    would refuse their leading dimension (or read the wrong memory) and leave the result
    uncomputed."""
    if _blas.is_operand(L):  # alignment included
        return L
    # np.asfortranarray returns an unaligned F-ordered array as it is: scipy 1.9's
    # OpenBLAS trsv then crashed the process on it (CI's oldest-dependencies run).
    return _blas._aligned_fortran(L)


def _check_block(block) -> int:
    if isinstance(block, (bool, np.bool_)) or not isinstance(block, numbers.Integral):
        raise TypeError(f"block: expected an integer, got {type(block).__name__}")
    if block < 1:
        raise ValueError(f"block: must be at least 1, got {block}")
    return int(block)


def _fortran_square(A, overwrite: bool) -> np.ndarray:
    """A finite square float32/float64 matrix in Fortran order to factor in place (its
    lower triangle): ``A.T`` for a C-contiguous ``A`` (so its upper triangle is read), or
    ``A``; ``A``'s memory itself with ``overwrite`` where its dtype and layout allow, else
    a copy (an F-ordered copy of the same matrix: the same triangle is read either way)."""
    # Any truthy value was taken: overwrite="no" factored the caller's array in place.
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    A = _as_array(A, "A")
    dtype = _real_dtype(A, "A")
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(f"A: expected a square matrix, got shape {A.shape}")
    if overwrite and not A.flags.writeable:
        raise ValueError(
            "A: overwrite=True needs a writeable array, got a read-only one "
            "(pass overwrite=False to factor a copy)"
        )
    M = A.T if A.flags.c_contiguous and not A.flags.f_contiguous else A
    _refuse_other_triangle(M)
    if overwrite and M.dtype == dtype and M.flags.f_contiguous and M.flags.aligned:
        L = M
    else:
        L = _converted(M, dtype, "A", " (the dtype the factorization runs in)")
        if L is M:  # same dtype: copy (A is not to be changed)
            L = np.array(M, order="F")
    _refuse_non_finite(L, "A")
    return L


def _refuse_other_triangle(M: np.ndarray) -> None:
    """ValueError where the triangle to be read (the lower of ``M``) is zero in its first
    column while the other holds values there: a triangle-only matrix given in the other
    layout (``np.tril(A)`` is C-ordered, so its upper triangle, the one read, is zero),
    whose factor would be that of the diagonal alone (a review: error 2.9 on a 5 x 5
    matrix, where numpy and scipy's lower=True read the lower triangle). O(n): the first
    column and row only."""
    if M.shape[0] < 2:
        return
    read, other = M[1:, 0], M[0, 1:]
    if np.any((read == 0) & (other != 0)):
        raise ValueError(
            "A: the triangle cholesky reads (the upper of a C-ordered array, the lower "
            "otherwise) is zero where the other holds values: pass the whole symmetric "
            "matrix, or a lower triangle in F order (np.asfortranarray)"
        )


def cholesky(A: np.ndarray, *, block: int = _BLOCK, overwrite: bool = False) -> np.ndarray:
    """Lower-triangular ``L`` with ``L @ L.T == A`` for a symmetric positive definite ``A``.

    Parameters
    ----------
    A : (n, n) array_like
        float32 or float64 (either byte order), computed in that precision; integer,
        float16 and longdouble arrays are computed in float64. Bool, complex, object and
        string arrays are refused (TypeError naming ``A``).

        Only one triangle is read: the upper triangle of a C-contiguous ``A`` (the lower
        triangle of its transpose, which is F-ordered), the lower triangle of any other
        ``A`` (F-ordered, or a non-contiguous view). This does not depend on
        ``overwrite``; for a symmetric ``A`` it does not matter.
    block : int, default 2048
        The largest diagonal block handed to LAPACK's ``potrf`` (module docstring); at
        least 1.
    overwrite : bool, default False
        Compute the factor in ``A``'s memory: ``L`` is then ``A`` (F order) or ``A.T`` (C
        order), and if the factorization fails, the triangle that was not read still
        holds ``A``'s off-diagonal entries (see :func:`jittered_cholesky`, which restores
        from it). A writeable ``A`` whose dtype or layout does not allow that (not a
        contiguous, aligned float32/float64 array in native byte order) is factored in
        a copy, and left unchanged. A read-only ``A`` (``flags.writeable``
        False, e.g. a memmap opened with ``mode="r"``) is refused with ValueError.

    Returns
    -------
    L : (n, n) ndarray
        Lower triangular (the strict upper triangle zero), F-ordered, of ``A``'s float
        dtype (float64 for integer input).

    Raises
    ------
    numpy.linalg.LinAlgError
        ``A`` is not positive definite.
    ValueError
        ``A`` is not square, contains NaN or infinity (checked over all of ``A``, as
        scipy's ``check_finite``), or is read-only with ``overwrite``.
    TypeError
        ``A`` has an unsupported dtype, or ``block`` is not an integer.
    """
    block = _check_block(block)
    L = _fortran_square(A, overwrite)
    _factor_lower(L, block)
    return L


def cholesky_upper_in_place(A: np.ndarray) -> np.ndarray:
    """For this package's solvers: the Cholesky factor of the C-ordered float32/float64
    ``A`` computed from its upper triangle (diagonal included) alone, in its memory,
    returned as ``L = A.T`` (F-ordered, lower triangular, ``L @ L.T == A``).

    ``A``'s strict lower triangle (``L``'s strict upper) is neither read nor written: a
    matrix built one triangle at a time (half the kernel values, and half its pages never
    touched) may leave anything there, and :func:`cho_solve` reads ``L``'s lower triangle
    only. Nothing is checked: the triangle must be finite. ``LinAlgError`` as
    :func:`cholesky`, the triangle then partly overwritten."""
    L = A.T
    _factor_lower(L, _BLOCK, zero_upper=False)
    return L


def _factor_lower(L: np.ndarray, block: int, *, zero_upper: bool = True) -> None:
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
    succeeded, and only with ``zero_upper``: on failure it still holds the input's
    off-diagonal entries.
    """
    n = L.shape[0]
    _chol(L, 0, n, max(1, block))
    # OpenBLAS's potrf takes a NaN pivot for a positive one. The input is finite, so only
    # an overflow (not positive definite: |L_ij| <= sqrt(A_ii) otherwise) gets here: O(n).
    bad = np.flatnonzero(~np.isfinite(np.diagonal(L)))
    if bad.size:
        raise np.linalg.LinAlgError(
            f"matrix is not positive definite (non-finite pivot at leading minor "
            f"{bad[0] + 1} of {n})"
        )
    if not zero_upper:
        return
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


def lower_gram(L: np.ndarray, *, block: int | None = None) -> np.ndarray:
    """``L.T @ L`` for a lower-triangular ``L`` (its strict upper triangle zero, as
    :func:`cholesky` returns it: ``lauum`` never reads it, the GEMM panels read it inside
    their diagonal blocks), as a new F-ordered symmetric matrix (both triangles) of
    ``L``'s dtype.

    numpy computes ``L.T @ L`` with ``syrk``, which crashes multi-threaded from about 16500
    rows on AMD Zen 4 (module docstring), and does n^3 flops. Up to ``_LAUUM_MAX_ROWS``
    rows (and ``block`` not given) LAPACK's ``lauum`` (n^3 / 3 flops, OpenBLAS's own
    blocked and threaded driver), faster than the panels below at 1000 to 3450 rows in
    scratch timings on this project's 2-core EPYC (``lower_gram`` is a Nystrom-PCG fit's
    preconditioner build and a logistic fit's at every Newton step; the fits' figures
    are ``benchmarks/bench_logistic.py``'s).
    Beyond, or with ``block``: each column panel ``I`` of the upper triangle is one GEMM
    over the rows where ``L[:, I]`` is non-zero, ``S[:i1, I] = L[i0:, :i1].T @ L[i0:, I]``
    (about n^3 / 3 flops in all; narrower panels waste less on the diagonal blocks), and
    the lower triangle is copied from the upper.

    ``L``'s dtypes as in :func:`solve_triangular` (float32/float64 kept, integers in
    float64, bool/complex/object/string refused with TypeError); any layout (views with
    negative or zero strides are copied first). ``block`` (at least 1): the panels' width,
    which also asks for the panels whatever the size (None: ``lauum`` where it may run,
    else panels of 512).
    NaN or infinity in the entries read raise ValueError naming ``L`` (checked on the
    result's diagonal, O(n), which every entry read reaches).
    """
    L = _as_array(L, "L")
    dtype = _real_dtype(L, "L")
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"L: expected a square matrix, got shape {L.shape}")
    panels = block is not None
    block = _check_block(512 if block is None else block)
    n = L.shape[0]
    if not panels and n <= _LAUUM_MAX_ROWS:
        S = _converted(L, dtype, "L")
        S = np.array(S, order="F") if S is L else np.asfortranarray(S)
        info = _blas.lauum_lower(S)
        if info != 0:  # an argument error: not reachable with a checked square view
            raise RuntimeError(f"lauum: info {info}")
        if not np.isfinite(np.diagonal(S)).all():
            _refuse_non_finite(np.tril(np.asarray(L, dtype=dtype)), "L")
        _mirror(S, _MIRROR_BLOCK, from_lower=True)
        return S
    L = _blas_layout(_converted(L, dtype, "L"))
    S = np.empty((n, n), dtype=L.dtype, order="F")
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        # S[:i1, i0:i1] = L[i0:, :i1]^T L[i0:, i0:i1] (L[k, i] = 0 for k < i: rows from i0
        # on suffice): GEMMs of distinct operands in place (scipy's BLAS: gramfree._threads
        # on why not numpy's). The panel's own rows go through a copy whose strict upper
        # triangle is zeroed: only the lower triangle is read, as lauum reads it (a factor
        # from cho_factor, its upper triangle holding A, gave S off by 0.97 here alone).
        top = np.array(L[i0:i1, :i1], order="F")
        top[:, i0:i1][np.triu_indices(i1 - i0, 1)] = 0.0
        _blas.gemm(1.0, top, top[:, i0:i1], 0.0, S[:i1, i0:i1], trans_a=True)
        if i1 < n:
            below = L[i1:]
            _blas.gemm(1.0, below[:, :i1], below[:, i0:i1], 1.0, S[:i1, i0:i1], trans_a=True)
    # S_jj is the sum of the squares of the entries of column j read: NaN or infinity
    # anywhere read makes it non-finite; finite input only by overflow (kept, as numpy).
    if not np.isfinite(np.diagonal(S)).all():
        _refuse_non_finite(L, "L")
    _mirror(S, _MIRROR_BLOCK, from_lower=False)
    return S


# Columns per block of _mirror's transposed copies: 128 was the fastest of 64-512 in scratch
# timings at 1000 and 3450 rows (and far faster than one fancy-indexed copy).
_MIRROR_BLOCK = 128


def _mirror(S: np.ndarray, block: int, *, from_lower: bool) -> None:
    """Copy one triangle of the square ``S`` onto the other, in blocks of ``block``
    columns (np.triu/tril of the whole would allocate and scan it several times)."""
    n = S.shape[0]
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        diag = S[i0:i1, i0:i1]
        if from_lower:
            S[:i0, i0:i1] = S[i0:i1, :i0].T
            upper = np.triu_indices(i1 - i0, 1)
            diag[upper] = diag.T[upper]
        else:
            S[i0:i1, :i0] = S[:i0, i0:i1].T
            lower = np.tril_indices(i1 - i0, -1)
            diag[lower] = diag.T[lower]


def _trans_flag(trans) -> bool:
    """solve_triangular's ``trans``: a bool, scipy's 0/1/2 or 'N'/'T'/'C'."""
    if isinstance(trans, (bool, np.bool_)):
        return bool(trans)
    if isinstance(trans, str):
        if trans in _TRANS:
            return _TRANS[trans]
        raise ValueError(f"trans: expected 'N', 'T' or 'C' (or a bool), got {trans!r}")
    if isinstance(trans, numbers.Integral):
        if trans in (0, 1, 2):
            return trans != 0
        raise ValueError(f"trans: expected 0, 1 or 2 (or a bool), got {trans!r}")
    raise TypeError(f"trans: expected a bool, 0/1/2 or 'N'/'T'/'C', got {type(trans).__name__}")


def _prepare_solve(L, B) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.dtype]:
    """``(L, B, X, out)``: ``L`` checked and in a BLAS layout, ``B`` as an array, ``X`` a
    2-d F-ordered copy of ``B`` in ``L``'s dtype to solve in place, ``out`` the result's
    dtype. O(n) on ``L`` (its diagonal) and O(n k) on ``B``."""
    L = _as_array(L, "L")
    B = _as_array(B, "B")
    dtype = _real_dtype(L, "L")
    out = _real_dtype(B, "B")
    if L.ndim != 2 or L.shape[0] != L.shape[1] or B.shape[:1] != L.shape[:1] or B.ndim > 2:
        raise ValueError(f"L {L.shape} and B {B.shape}: expected (n, n) and (n,) or (n, k)")
    L = _blas_layout(_converted(L, dtype, "L"))
    d = np.diagonal(L)
    if not _all_finite(d):
        raise ValueError("L: contains NaN or infinity")
    if not d.all():
        i = int(np.flatnonzero(d == 0)[0])
        raise np.linalg.LinAlgError(f"L: singular matrix (zero on the diagonal at index {i})")
    B2 = B if B.ndim == 2 else B[:, None]
    X = _converted(B2, dtype, "B", ", L's dtype (solves run in L's precision)")
    if X is B2:
        X = np.array(B2, order="F")
    _refuse_non_finite(X, "B")
    return L, B, X, out


def _finish_solve(L: np.ndarray, B: np.ndarray, X: np.ndarray, out: np.dtype) -> np.ndarray:
    """The solution ``X`` in ``B``'s shape and ``out`` dtype. A non-finite solution from
    finite ``B``: NaN or infinity in ``L``'s lower triangle (it reaches the solution
    through the products) refused naming ``L``; otherwise an overflow, kept (as scipy).
    O(n k), and O(n^2) only when the solution is not finite (or empty)."""
    if (X.size == 0 or not _all_finite(X)) and not _lower_finite(L):
        raise ValueError("L: contains NaN or infinity")
    if X.dtype == out:
        return X.reshape(B.shape)
    with np.errstate(over="ignore"):
        return X.reshape(B.shape).astype(out)


def solve_triangular(
    L: np.ndarray, B: np.ndarray, *, trans: bool | int | str = False
) -> np.ndarray:
    """``L^-1 B`` (or ``L^-T B`` with ``trans``) for lower-triangular ``L``.

    Solved in ``L``'s precision (``B`` is cast to it, never ``L`` to ``B``'s: a float32
    factor is not copied to float64 on every call); the result has ``B``'s float dtype.
    One right-hand side on one or two threads (all a 2-core machine has, or inside the
    loops): one BLAS ``trsv`` over the whole factor (1.3-3.1x the blocked split there,
    ``benchmarks/bench_trsm.py``; on more threads the split). Few right-hand sides (one per target: the
    solvers' case) where that measured faster: from 2000 rows and 2 to 64 columns (32 with ``trans``)
    gramfree's native blocked solve, on the operators' OpenMP threads (a fit's ``n_jobs``
    applies; one thread inside the CG loops' small algebra, as BLAS there), whose sums run
    in an order independent of the thread count (the same bits on any number of threads);
    where the context runs it on one thread (inside those loops, or a fit with
    ``n_jobs=1``) from 256 rows, so that between 256 and 1999 rows the path, and with it
    the last bits, depends on that context. Otherwise like :func:`cholesky`, by halves: BLAS ``trsm`` only on
    diagonal blocks of ``_TRSM_LEAF`` rows and GEMM for the rest, which with many
    right-hand sides runs at GEMM's rate where one large ``trsm`` runs at about half of
    it.

    Parameters
    ----------
    L : (n, n) array_like
        Lower triangular; its strict upper triangle is not read. float32 or float64
        (either byte order), integer/float16/longdouble arrays in float64; bool, complex,
        object and string arrays are refused (TypeError naming ``L``). Any layout: views
        BLAS cannot take as they are (negative, zero or overlapping strides; C order) are
        copied to F order first.
    B : (n,) or (n, k) array_like
        The right-hand sides, dtypes as ``L``'s. ``k`` may be 0, and ``n`` too.
    trans : bool, {0, 1, 2} or {'N', 'T', 'C'}, default False
        Solve with ``L^T`` (True, 1, 2, 'T', 'C') or ``L`` (False, 0, 'N'), as scipy's
        ``solve_triangular(..., lower=True, trans=...)``. Other values are refused (a str
        or int not listed: ValueError; other types, including float: TypeError).

    Returns
    -------
    X : ndarray
        ``B``'s shape, ``B``'s dtype for float32/float64 ``B``, else float64.

    Raises
    ------
    numpy.linalg.LinAlgError
        ``L`` is singular (a zero on its diagonal), as scipy.
    ValueError
        Shapes that do not match; NaN or infinity in ``B`` or in ``L``'s lower triangle
        (scipy's ``check_finite``: ``B`` and ``L``'s diagonal are checked first, O(n k);
        the rest of ``L``, O(n^2), only when the solution comes out non-finite, so a
        one-vector solve does not pay a second pass over ``L``); a finite ``B`` that
        overflows ``L``'s dtype (float64 ``B`` beyond 3.4e38 with a float32 ``L``). A
        solution that overflows from finite input is returned (inf), as scipy does.
    """
    flag = _trans_flag(trans)
    L, B, X, out = _prepare_solve(L, B)
    _solve_lower(L, X, flag)
    return _finish_solve(L, B, X, out)


def solve_lower_in_place(L: np.ndarray, X: np.ndarray, *, trans: bool = False) -> None:
    """``X = L^-1 X`` (or ``L^-T X``) in ``X``'s memory, for the solvers' own arrays: ``L``
    a factor from :func:`cholesky` (F-ordered, finite, non-singular: not checked) and ``X``
    a writeable float view with unit row stride of ``L``'s dtype (ValueError otherwise,
    from :mod:`gramfree._blas`), for instance ``K.T`` of a C-ordered ``K``: no copy of a
    large right-hand side. The same paths as :func:`solve_triangular`."""
    if X.dtype != L.dtype or not _blas.is_operand(X) or not X.flags.writeable:
        raise ValueError("X: expected a writeable view with unit row stride, of L's dtype")
    if X.shape[0] != L.shape[0]:
        raise ValueError(f"L {L.shape} and X {X.shape}: expected (n, n) and (n, k)")
    _solve_lower(L, X, trans)


def _solve_lower(L: np.ndarray, X: np.ndarray, trans: bool) -> None:
    n, k = L.shape[0], X.shape[1]
    threads = _threads.native_linalg_threads()
    if k == 1 and NATIVE_SOLVES and (threads or _core.max_threads()) <= _TRSV_MAX_THREADS:
        _blas.trsv_lower(L, X, trans=trans)
        return
    few = 2 <= k <= (_NATIVE_MAX_RHS_TRANS if trans else _FEW_RHS)
    min_rows = _NATIVE_MIN_ROWS_ONE_THREAD if threads == 1 else _NATIVE_MIN_ROWS
    if NATIVE_SOLVES and few and n >= min_rows and X.flags.f_contiguous:
        # L from _blas_layout: unit row stride, so L.T has rows of unit stride.
        _core.triangular_solve_lower(L.T, X.T, trans=trans, n_threads=threads)
        return
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
    """``(L L^T)^-1 B`` for the lower-triangular factor ``L`` (from :func:`cholesky`).

    ``L`` and ``B`` as in :func:`solve_triangular` (dtypes, layouts, the checks and the
    errors raised); ``L`` is checked and laid out once for both solves.
    """
    L, B, X, out = _prepare_solve(L, B)
    _solve_lower(L, X, False)
    _solve_lower(L, X, True)
    return _finish_solve(L, B, X, out)


def _check_start(start) -> float:
    if isinstance(start, (bool, np.bool_)) or not isinstance(start, numbers.Real):
        raise TypeError(f"start: expected a real number, got {type(start).__name__}")
    value = float(start)
    if not (math.isfinite(value) and 0.0 < value <= _JITTER_MAX):
        raise ValueError(f"start: must be a finite number in (0, {_JITTER_MAX:g}], got {start!r}")
    return value


def jittered_cholesky(
    A: np.ndarray,
    *,
    start: float | None = None,
    overwrite: bool = False,
    block: int = _BLOCK,
) -> tuple[np.ndarray, float]:
    """Cholesky of ``A + jitter * mean(diag(A)) * I`` with the smallest jitter in
    ``0, start, 100 * start, ...`` (up to 1e-2) that succeeds; returns ``(L, jitter)``.

    Kernel matrices of centres are positive semi-definite and singular when two centres
    coincide; the jitter makes the factorization possible and is reported.

    Parameters
    ----------
    A : (n, n) array_like
        Dtypes, the triangle the factorization reads and the errors as in
        :func:`cholesky`; NaN or infinity anywhere in ``A`` raise ValueError before any
        attempt. Every attempt reads that one triangle, except with ``overwrite`` in
        ``A``'s memory (below), where a jitter needs ``A`` symmetric (both triangles).
    start : float, optional
        The first non-zero jitter: 1e-12 in float64 and 1e-6 in float32 by default;
        given, a real number with ``0 < start <= 1e-2`` (ValueError otherwise, NaN and
        infinity included; TypeError for bool, str and other types; both naming
        ``start``).
    overwrite : bool, default False
        Compute the factor in ``A``'s memory (no n x n copy, even when attempts fail:
        each retry restores the matrix from the triangle the factorization does not
        touch, so the two must agree once a jitter is needed: checked on the first row
        and column, ValueError naming ``A`` otherwise, ``A`` then holding the triangle
        not read, mirrored); a read-only ``A`` is refused, as in :func:`cholesky`.
        Otherwise ``A`` is left as it was.
    block : int, default 2048
        As in :func:`cholesky`.

    Returns
    -------
    L : (n, n) ndarray
        As :func:`cholesky` returns it (0 x 0 for a 0 x 0 ``A``).
    jitter : float
        The jitter used, relative to ``mean(diag(A))`` (0.0 when none was needed); where
        that mean is 0, relative to 1: the factor is of ``A + jitter * I``.

    Raises
    ------
    numpy.linalg.LinAlgError
        No jitter up to 1e-2 makes ``A`` positive definite (``A`` is restored first
        with ``overwrite``).
    """
    block = _check_block(block)
    if start is not None:
        start = _check_start(start)
    L = _fortran_square(A, overwrite)
    if start is None:
        start = _JITTER_START[L.dtype]
    n = L.shape[0]
    if n == 0:
        return L, 0.0
    # The triangle read, as an F-ordered matrix's lower one: A.T for a C-ordered A.
    read = _as_array(A, "A")
    read = read.T if read.flags.c_contiguous and not read.flags.f_contiguous else read
    # Factored in a copy, A itself still holds what was read: the retries restore from it,
    # whatever the other triangle holds. In A's memory only the other triangle is left.
    source = None if np.may_share_memory(L, read) else read
    # There, the read triangle's first column, to check at a failure that the other
    # triangle mirrors it (O(n)).
    first_column = L[1:, 0].copy() if source is None else None
    diag = np.diag(L).copy()
    with np.errstate(over="ignore"):
        scale = float(np.mean(diag, dtype=np.float64))
    if not math.isfinite(scale):  # the sum overflowed
        scale = float(np.sum(diag / n, dtype=np.float64))
    scale = scale or 1.0
    jitter = 0.0
    while True:
        try:
            _factor_lower(L, block)
            return L, jitter
        except np.linalg.LinAlgError:
            if first_column is not None:
                _check_mirrored(L, first_column, diag, block)
                first_column = None  # restored from the other triangle from here on
            jitter = start if jitter == 0.0 else jitter * 100
            with np.errstate(over="ignore"):
                # A rung too small to change any diagonal entry would fail as the last
                # did: skip it (start=1e-300 took 149 factorizations to reach 1e-2).
                while jitter <= _JITTER_MAX and np.array_equal(diag + jitter * scale, diag):
                    jitter *= 100
                if jitter > _JITTER_MAX:
                    _restore_lower(L, diag, block, source)
                    raise
                _restore_lower(L, diag + jitter * scale, block, source)


def _restore_lower(
    L: np.ndarray, diag: np.ndarray, block: int, source: np.ndarray | None = None
) -> None:
    """After a failed in-place factorization: the strict lower triangle from ``source``'s
    (the matrix that was read, where the factorization ran in a copy of it), else from
    L's own (intact) strict upper one; and the given diagonal."""
    n = L.shape[0]
    for j0 in range(0, n, block):
        j1 = min(j0 + block, n)
        blk = L[j0:j1, j0:j1]
        low = np.tril_indices(j1 - j0, -1)
        if source is None:
            blk[low] = blk.T[low]
            if j1 < n:
                L[j1:, j0:j1] = L[j0:j1, j1:].T
        else:
            blk[low] = source[j0:j1, j0:j1][low]
            if j1 < n:
                L[j1:, j0:j1] = source[j1:, j0:j1]
    L[np.diag_indices(n)] = diag


def _check_mirrored(L: np.ndarray, first_column: np.ndarray, diag: np.ndarray, block: int) -> None:
    """At the first failure of a factorization in A's memory, before a retry rebuilds the
    factored (lower) triangle from the other one: the two must agree, checked on the
    read triangle's first column (kept before the attempt) against the other's first row,
    where a matrix with one triangle filled (np.tril, np.triu, a syrk's output) differs
    unless that row is zero; unchecked it gave a factor of the diagonal alone without an
    error. Rounding apart (a kernel matrix's triangles from different orders of
    operations) is far below a millionth of the diagonal, which bounds a positive
    semi-definite matrix's entries. A is then restored from the triangle not read."""
    row = L[0, 1:]
    scale = float(np.max(np.abs(diag)))
    if row.size and float(np.max(np.abs(first_column - row))) > 1e-6 * scale:
        _restore_lower(L, diag, block)
        raise ValueError(
            "A: not positive definite as given, and its two triangles differ (first row "
            "against first column): with overwrite=True a jitter retry rebuilds the "
            "factored triangle from the other, so A must be symmetric; pass "
            "overwrite=False to factor one triangle (A now holds the other triangle, "
            "mirrored)"
        )
