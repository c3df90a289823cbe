"""BLAS-3 and ``potrf`` on sub-blocks of a Fortran-ordered matrix, in place.

scipy's f2py wrappers (``scipy.linalg.blas``) take whole contiguous arrays: a sub-block
``L[j:, i:k]`` of a larger matrix is copied in and out on every call, and the result of a
GEMM comes back as a new array to subtract. A blocked factorization then spends a large
share of its time moving memory. The same OpenBLAS routines are exported with their
Fortran signatures (leading dimensions included) as Cython capsules by
``scipy.linalg.cython_blas`` / ``cython_lapack``; calling them through ``ctypes`` updates
a sub-block where it lies, at the cost of a few microseconds per call. ctypes releases the
GIL during the call.

Every matrix argument is a 2-d view with unit row stride (F-ordered, or a column block of
one); its leading dimension is its column stride, which must be positive and at least its
row count (:func:`is_operand`), and outputs must be writeable: ``_mat`` refuses anything
else with ValueError rather than hand BLAS a call it rejects or a pointer it cannot write
through. Nothing is checked beyond that: callers are this package's own blocked routines
(:mod:`gramfree.linalg`, which copies other layouts first).
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
import scipy.linalg.cython_blas as _cython_blas
import scipy.linalg.cython_lapack as _cython_lapack

_INT = ctypes.POINTER(ctypes.c_int)
_PTR = ctypes.c_void_p
_CHR = ctypes.c_char_p

_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]
_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]

# Fortran argument lists: c = character, i = integer, p = array or scalar by address.
_SIGNATURES = {
    "gemm": (_cython_blas, "ccIIIpPIPIpPI"),
    "trsm": (_cython_blas, "ccccIIpPIPI"),
    "trsv": (_cython_blas, "cccIpIPI"),
    "syrk": (_cython_blas, "ccIIpPIpPI"),
    "symm": (_cython_blas, "ccIIpPIPIpPI"),
    "symv": (_cython_blas, "cIpPIPIpPI"),
    "potrf": (_cython_lapack, "cIPII"),
    "lauum": (_cython_lapack, "cIPII"),
}
_ARGTYPES = {"c": _CHR, "I": _INT, "p": _PTR, "P": _PTR}
_FUNCS: dict[str, Any] = {}
_SCALAR = {np.dtype(np.float64): ctypes.c_double, np.dtype(np.float32): ctypes.c_float}


def _func(dtype: np.dtype, name: str):
    key = ("d" if dtype == np.float64 else "s") + name
    fn = _FUNCS.get(key)
    if fn is None:
        module, sig = _SIGNATURES[name]
        capsule = module.__pyx_capi__[key]
        ptr = _get_pointer(capsule, _get_name(capsule))
        argtypes: list[Any] = [_ARGTYPES[c] for c in sig]
        fn = ctypes.CFUNCTYPE(None, *argtypes)(ptr)
        _FUNCS[key] = fn
    return fn


def is_operand(A: np.ndarray) -> bool:
    """Whether BLAS can take the 2-d ``A`` as it is: unit row stride, and a column stride
    (the leading dimension) that is a positive multiple of the item size and at least the
    row count, as F order or a column block of it has. Negative, zero (broadcast) or
    overlapping column strides are not: BLAS refuses such a leading dimension (xerbla,
    on stderr only, leaving the output uncomputed) or reads the wrong memory."""
    item = A.itemsize
    # Unaligned memory (a view at an odd byte offset): scipy 1.9's OpenBLAS trsv crashed
    # the process on it.
    if A.ndim != 2 or not A.flags.aligned:
        return False
    if A.shape[0] > 1 and A.strides[0] != item:
        return False
    if A.shape[1] > 1:
        stride = A.strides[1]
        return stride > 0 and stride % item == 0 and stride >= max(1, A.shape[0]) * item
    return True


def _mat(A: np.ndarray, dtype: np.dtype, *, write: bool = False) -> tuple[int, ctypes.c_int]:
    """Address and leading dimension of a unit-row-stride view (``write``: an output,
    which must be writeable: BLAS writes through the raw pointer, and a read-only mapping
    would crash the process)."""
    if A.dtype != dtype or not is_operand(A):
        raise ValueError(
            f"expected 2-d {dtype} views with unit row stride (Fortran order) and a "
            f"positive leading dimension of at least their rows, got {A.dtype} with shape "
            f"{A.shape} and strides {A.strides}"
        )
    if write and not A.flags.writeable:
        raise ValueError("the output of a BLAS call must be a writeable array")
    ld = A.strides[1] // A.itemsize if A.shape[1] > 1 else A.shape[0]
    return A.ctypes.data, ctypes.c_int(max(1, ld))


def _i(x: int) -> Any:  # a by-reference argument (ctypes.byref)
    return ctypes.byref(ctypes.c_int(int(x)))


def _s(x: float, dtype: np.dtype):
    return ctypes.byref(_SCALAR[dtype](x))


def gemm(alpha: float, A, B, beta: float, C, *, trans_a=False, trans_b=False) -> None:
    """``C = alpha op(A) op(B) + beta C`` in ``C``'s memory."""
    m, n = C.shape
    k = A.shape[0] if trans_a else A.shape[1]
    if m == 0 or n == 0:
        return
    dt = C.dtype
    pa, lda = _mat(A, dt)
    pb, ldb = _mat(B, dt)
    pc, ldc = _mat(C, dt, write=True)
    _func(dt, "gemm")(
        b"T" if trans_a else b"N",
        b"T" if trans_b else b"N",
        _i(m),
        _i(n),
        _i(k),
        _s(alpha, dt),
        pa,
        ctypes.byref(lda),
        pb,
        ctypes.byref(ldb),
        _s(beta, dt),
        pc,
        ctypes.byref(ldc),
    )


def _as_operand(A: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(view, transposed)``: a unit-row-stride view of ``A`` (``A`` itself, or the
    transpose of a C-ordered ``A`` with ``transposed`` True); other layouts are copied."""
    if is_operand(A):
        return A, False
    if is_operand(A.T):
        return A.T, True
    return _aligned_fortran(A), False


def _aligned_fortran(A: np.ndarray, dtype=None) -> np.ndarray:
    """An F-ordered, aligned array of ``A`` (np.asfortranarray keeps an unaligned F-ordered
    array as it is)."""
    out = np.asfortranarray(A, dtype=dtype)
    if out.flags.aligned:
        return out
    aligned = np.empty(out.shape, dtype=out.dtype, order="F")  # fresh memory is aligned
    aligned[...] = out
    return aligned


# Columns up to which symm_lower runs symv column by column: OpenBLAS's symm packs the
# triangle first and ran slower than one pass of symv per column for few columns (a scratch
# timing on the project's 2-core EPYC, 3450 rows, 1 to 26 columns).
_SYMV_MAX_COLS = 8


def symm_lower(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` for a symmetric ``A`` of which only the lower triangle is read (an
    F-ordered operand; its strict upper triangle may hold anything), as a new F-ordered
    array of ``A``'s dtype; ``B`` 2-d, copied to F order if it is not an operand."""
    dt = A.dtype
    B = B if B.dtype == dt and is_operand(B) else _aligned_fortran(B, dt)
    m, n = B.shape
    if A.ndim != 2 or A.shape != (m, m):  # BLAS would only print to stderr (a review)
        raise ValueError(f"symm_lower: A of shape {A.shape} for B of {B.shape}")
    out = np.zeros((m, n), dtype=dt, order="F")
    if out.size == 0:
        return out
    pa, lda = _mat(A, dt)
    if n <= _SYMV_MAX_COLS:
        for j in range(n):
            x, y = B[:, j : j + 1], out[:, j : j + 1]
            _func(dt, "symv")(
                b"L",
                _i(m),
                _s(1.0, dt),
                pa,
                ctypes.byref(lda),
                x.ctypes.data,
                _i(1),
                _s(0.0, dt),
                y.ctypes.data,
                _i(1),
            )
        return out
    pb, ldb = _mat(B, dt)
    pc, ldc = _mat(out, dt, write=True)
    _func(dt, "symm")(
        b"L",
        b"L",
        _i(m),
        _i(n),
        _s(1.0, dt),
        pa,
        ctypes.byref(lda),
        pb,
        ctypes.byref(ldb),
        _s(0.0, dt),
        pc,
        ctypes.byref(ldc),
    )
    return out


def matmul(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``A @ B`` (2-d, float32 or float64, same dtype) by this module's BLAS (scipy's), as
    a new F-ordered array: the solvers' products go to the library whose threads a fit
    keeps (gramfree._threads). Other dtypes or mixed ones: numpy's ``@``."""
    if A.ndim != 2 or B.ndim != 2 or A.dtype != B.dtype or A.dtype not in _SCALAR:
        return A @ B
    if A.shape[1] != B.shape[0]:  # as numpy's @; BLAS would leave out unwritten
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} do not match")
    out = np.empty((A.shape[0], B.shape[1]), dtype=A.dtype, order="F")
    if out.size == 0 or A.shape[1] == 0:
        out[...] = 0
        return out
    a, ta = _as_operand(A)
    b, tb = _as_operand(B)
    gemm(1.0, a, b, 0.0, out, trans_a=ta, trans_b=tb)
    return out


def trsm(alpha: float, T, B, *, right: bool, lower: bool, trans: bool) -> None:
    """``B = alpha op(T)^-1 B`` (left) or ``alpha B op(T)^-1`` (right), non-unit
    diagonal, in ``B``'s memory."""
    m, n = B.shape
    if m == 0 or n == 0:
        return
    dt = B.dtype
    pt, ldt = _mat(T, dt)
    pb, ldb = _mat(B, dt, write=True)
    _func(dt, "trsm")(
        b"R" if right else b"L",
        b"L" if lower else b"U",
        b"T" if trans else b"N",
        b"N",
        _i(m),
        _i(n),
        _s(alpha, dt),
        pt,
        ctypes.byref(ldt),
        pb,
        ctypes.byref(ldb),
    )


def trsv_lower(T, x, *, trans: bool) -> None:
    """``x = op(T)^-1 x`` for lower-triangular ``T`` (non-unit diagonal) and one column
    ``x``: an (n, 1) view with unit row stride, in its memory."""
    n = x.shape[0]
    if x.ndim != 2 or x.shape[1] != 1 or T.shape != (n, n):
        raise ValueError(f"expected an (n, n) T and an (n, 1) x, got {T.shape} and {x.shape}")
    if n == 0:
        return
    dt = x.dtype
    pt, ldt = _mat(T, dt)
    px, _ = _mat(x, dt, write=True)
    _func(dt, "trsv")(b"L", b"T" if trans else b"N", b"N", _i(n), pt, ctypes.byref(ldt), px, _i(1))


def syrk_lower(alpha: float, A, beta: float, C) -> None:
    """Lower triangle of ``C = alpha A A^T + beta C`` (strict upper untouched). Only for
    small ``C``: large double-precision syrk crashes on AMD Zen 4 (see
    :mod:`gramfree.linalg`)."""
    n, k = A.shape
    if n == 0:
        return
    dt = C.dtype
    pa, lda = _mat(A, dt)
    pc, ldc = _mat(C, dt, write=True)
    _func(dt, "syrk")(
        b"L",
        b"N",
        _i(n),
        _i(k),
        _s(alpha, dt),
        pa,
        ctypes.byref(lda),
        _s(beta, dt),
        pc,
        ctypes.byref(ldc),
    )


def potrf_lower(A) -> int:
    """LAPACK ``potrf`` on the lower triangle of the square view ``A`` (strict upper
    untouched); its ``info`` (0, or the order of the first non-positive leading minor).
    Only for small ``A``, as :func:`syrk_lower`."""
    return _lower_in_place("potrf", A)


def lauum_lower(A) -> int:
    """LAPACK ``lauum`` on the lower triangle of the square view ``A``: ``L^T L`` in place
    of ``L`` (lower triangle; the strict upper neither read nor written); its ``info``."""
    return _lower_in_place("lauum", A)


def _lower_in_place(name: str, A) -> int:
    """A LAPACK routine of signature (uplo, n, a, lda, info) on ``A``'s lower triangle."""
    n = A.shape[0]
    if n == 0:
        return 0
    pa, lda = _mat(A, A.dtype, write=True)
    info = ctypes.c_int(0)
    _func(A.dtype, name)(b"L", _i(n), pa, ctypes.byref(lda), ctypes.byref(info))
    return info.value
