"""Gram-free kernel operators: ``K(X, Z) @ V`` and friends without ever holding ``K``.

Input conversion (done once, at construction or call):

* float32 and float64 arrays are used as they are when C-contiguous and in native byte
  order (no copy); in the other byte order they are copied in the same precision;
* other real dtypes (integers, bool, float16) become float64; when X and Z differ
  (say float32 and float64), both become float64;
* non-contiguous arrays are copied to C order; the caller's arrays are never modified;
* complex, object and string arrays raise ``TypeError``; NaN or infinity, empty
  arrays and wrong dimensions raise ``ValueError`` naming the argument;
* finite values too large for the dtype they are converted to (a float64 ``V`` of 1e300
  for a float32 operator, a longdouble ``X`` of 1e400) raise ``ValueError`` naming the
  argument and saying that they overflow that dtype.

Kernel parameters are checked against the dtype the computation runs in
(:meth:`gramfree.kernels.Kernel.check_dtype`): a float32 operator refuses, naming the
parameter, a ``gamma`` above float32's largest number or a ``length_scale`` whose
inverse or square overflows float32, rather than compute with ``inf``; and a distance
kernel refuses a scale so extreme that the squared distance it is computed from would
over- or underflow where the kernel is neither 0 nor 1 (the kernel would return 0 or 1
there: float64 Gaussian or l1 Laplacian ``gamma`` within [4.2e-306, 9.9e291], l2 Laplacian
``gamma`` within [5.6e-152, 1.48e138], for example). The
arc-cosine kernel refuses points whose squared norm leaves the dtype's normal numbers,
naming the argument and row.

Results are checked for NaN (one pass over the output, ``numpy.min``, which propagates
NaN): the inputs are finite, so a NaN means the kernel's values or their sums overflowed
(a polynomial kernel's ``inf`` times a zero coefficient in a product; Matern 3/2 and 5/2
return their limit, 0, where the scaled distance overflows); it raises ``ValueError`` naming X, where it
would otherwise have spread silently. ``inf`` entries are returned as computed: a kernel
value too large for the dtype, or a degree-1 polynomial's inner product that overflows
where ``gamma`` below 1 would have brought it back into range.

Examples
--------
>>> import numpy as np
>>> from gramfree import KernelOperator, kernel_matrix
>>> X = np.random.default_rng(0).normal(size=(500, 3))
>>> K = KernelOperator(X, kernel="rbf", gamma=0.5)
>>> v = np.ones(500)
>>> bool(np.allclose(K @ v, kernel_matrix(X, kernel="rbf", gamma=0.5) @ v))
True
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.sparse.linalg import LinearOperator

from . import _core
from ._ragged import ragged_lists_raise
from .device import device_index, resolve_device
from .kernels import Kernel, get_kernel, native_kernels

__all__ = ["KernelOperator", "kernel_matrix", "kernel_gradient", "as_float_array"]


def _is_sparse(A: Any) -> bool:
    return hasattr(A, "toarray") and hasattr(A, "nnz")  # scipy.sparse: np.asarray wraps it


def _as_array(A: Any, name: str) -> np.ndarray:
    """``A`` as a numpy array, or an error naming it (sparse matrices, ragged lists)."""
    if isinstance(A, np.ndarray):
        # A subclass as the base array: np.matrix kept its 2-d rows, so the row checks'
        # products were matrix products (a numpy shape error naming nothing; a review).
        return A if type(A) is np.ndarray else np.asarray(A)
    if _is_sparse(A):
        raise TypeError(
            f"{name}: sparse matrices are not supported (the fused kernels read dense rows); "
            f"pass {name}.toarray()"
        )
    try:
        with ragged_lists_raise():
            return np.asarray(A)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: cannot be converted to an array ({exc})") from None


def as_float_array(A: Any, name: str, *, ndim: int = 2, dtype: Any = None) -> np.ndarray:
    """Validate and convert one input; see the module docstring for the rules."""
    arr = _as_array(A, name)
    kind = arr.dtype.kind
    if kind == "c":
        raise TypeError(f"{name}: complex dtype {arr.dtype} is not supported")
    if kind not in "biuf":
        raise TypeError(f"{name}: dtype must be numeric, got {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-d array, got {arr.ndim} dimension(s)")
    if arr.size == 0:
        raise ValueError(f"{name}: empty array of shape {arr.shape}")
    if dtype is None:
        # float32 and float64 in either byte order keep their precision (a big-endian
        # float32 array became float64: twice the memory and the products' cost).
        dtype = (
            arr.dtype.newbyteorder("=")
            if kind == "f" and arr.dtype.itemsize in (4, 8)
            else np.float64
        )
    # C order and aligned (np.frombuffer at an odd offset is neither copied nor aligned
    # by ascontiguousarray alone). A finite value beyond the new dtype's range becomes
    # inf; that is reported below, naming the argument, instead of numpy's warning.
    source = arr
    with np.errstate(over="ignore"):
        arr = np.require(arr, dtype=dtype, requirements=["C", "A"])
    if not np.isfinite(arr).all():
        if arr.dtype != source.dtype and kind == "f" and np.isfinite(source).all():
            top = np.format_float_scientific(np.max(np.abs(source)), precision=3, trim="-")
            raise ValueError(
                f"{name}: finite values up to {top} overflow {arr.dtype.name} (largest "
                f"{np.finfo(arr.dtype).max:.3g}), the dtype the computation runs in; "
                f"scale {name} down" + (" or compute in float64" if arr.dtype == np.float32 else "")
            )
        raise ValueError(f"{name}: contains NaN or infinity")
    return arr


def _common_dtype(*arrays: np.ndarray) -> np.dtype:
    dtypes = {a.dtype for a in arrays}
    return np.dtype(np.float32) if dtypes == {np.dtype(np.float32)} else np.dtype(np.float64)


def _n_threads(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 0
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral) or n_jobs == 0:
        raise ValueError(
            f"n_jobs must be None, a positive integer or a negative one (-1 all cores, -2 all "
            f"but one, ...), got {n_jobs!r}"
        )
    if n_jobs < 0:  # scikit-learn's convention: -1 all cores, -2 all but one, ...
        return max(1, _core.max_threads() + 1 + int(n_jobs))
    limit = 4 * _core.max_threads() + 64
    if n_jobs > limit:
        raise ValueError(f"n_jobs={n_jobs} is more than {limit} (4 threads per processor)")
    return int(n_jobs)


def _prepare(X, Z, kernel, kernel_params):
    if isinstance(Z, str):  # KernelOperator(X, "rbf"): Z is the second positional argument
        raise TypeError(
            f"Z: got the string {Z!r}; the kernel is a keyword argument "
            f"(kernel={Z!r}), the second positional one is the second set of points"
        )
    kern = get_kernel(kernel, **kernel_params)
    X = as_float_array(X, "X")
    Z = X if Z is None else as_float_array(Z, "Z")
    if X.shape[1] != Z.shape[1]:
        raise ValueError(f"X and Z: number of features differ ({X.shape[1]} vs {Z.shape[1]})")
    dtype = _common_dtype(X, Z)
    X = X.astype(dtype, copy=False)
    Z = Z.astype(dtype, copy=False)
    kern.check_dtype(dtype)  # parameters beyond float32's range, named
    kern.check_points(X, "X")
    if Z is not X:
        kern.check_points(Z, "Z")
    return X, Z, kern


def _check_no_nan(out: np.ndarray, kernel: Kernel, dtype: Any, what: str) -> np.ndarray:
    """``out`` unless it holds NaN, which finite inputs (as_float_array checks them) give
    only where the kernel's values or their sums overflowed ``dtype``: an error naming X,
    worded as the estimators' (``check_kernel_range``). One pass over ``out``:
    ``numpy.min`` propagates NaN and allocates nothing."""
    if out.size == 0 or not np.isnan(out.min()):
        return out
    first = np.unravel_index(int(np.argmax(np.isnan(out))), out.shape)  # the error path only
    dt = np.dtype(dtype).name
    if what == "K":
        where = f"K[{first[0]}, {first[1]}] = k(X[{first[0]}], Z[{first[1]}]) is NaN"
        cause = f"the kernel's values, or the squared distances they come from, exceed {dt}'s range"
        fix = "standardise X and Z (e.g. StandardScaler)"
    else:
        where = f"row {first[0]} of {what} is NaN"
        cause = (
            f"the kernel's values (or the squared distances they come from), or their "
            f"products and sums, exceed {dt}'s range"
        )
        fix = "standardise X and Z (e.g. StandardScaler), or scale the coefficients down"
    raise ValueError(
        f"X: the {kernel.name or type(kernel).__name__} kernel overflows {dt} between rows "
        f"of X and Z ({where}, though every input is finite): {cause}; {fix}"
        + (", or compute in float64" if dt == "float32" else "")
    )


def _native(op: str, device: str, threads: int):
    """The native ``op`` ("matvec", "rmatvec", "normal_matvec" or "block") for a resolved
    device, and the keyword argument that says where it runs."""
    if device == "cpu":
        return getattr(_core, "kernel_" + op), {"n_threads": threads}
    return getattr(_core, "cuda_kernel_" + op), {"device": device_index(device)}


def kernel_matrix(
    X: Any,
    Z: Any = None,
    kernel: str | Kernel = "rbf",
    *,
    n_jobs: int | None = None,
    device: str = "cpu",
    **kernel_params: Any,
) -> np.ndarray:
    """The kernel matrix ``K(X, Z)`` materialised, shape ``(n_samples_X, n_samples_Z)``.

    For small blocks (preconditioners, tests, a Gram matrix wanted on purpose); for
    products with ``K`` use :class:`KernelOperator`, which never forms it.

    The kernel's parameters must be representable in the dtype of the computation
    (:meth:`gramfree.kernels.Kernel.check_dtype`; float32 inputs with ``gamma=1e39``
    raise ``ValueError`` naming gamma), and a result holding NaN (kernel values that
    overflow the dtype) raises ``ValueError`` naming X; see the module docstring.

    Parameters
    ----------
    X : array-like of shape (n_samples_X, n_features)
        Rows of the matrix (float32 or float64).
    Z : array-like of shape (n_samples_Z, n_features), default=None
        Columns of the matrix; ``None`` means ``Z = X``.
    kernel : str or gramfree.kernels.Kernel, default="rbf"
        A name from :data:`gramfree.kernels.KERNEL_NAMES` or a kernel object.
    n_jobs : int, default=None
        Threads; ``None`` uses OpenMP's default (``OMP_NUM_THREADS`` or all cores).
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where it is computed (see :mod:`gramfree.device`).
    **kernel_params
        ``gamma``, ``degree``, ``coef0``, ``length_scale``, ``nu``, ``norm`` as the kernel takes.

    Returns
    -------
    K : ndarray of shape (n_samples_X, n_samples_Z)
        ``K[i, j] = k(X[i], Z[j])``, in the inputs' common dtype.

    Raises
    ------
    ValueError
        For invalid inputs (naming them), kernel parameters beyond the dtype's range
        (naming the parameter), or a NaN result (naming X).

    Examples
    --------
    >>> import numpy as np
    >>> from gramfree import kernel_matrix
    >>> kernel_matrix(np.zeros((2, 3)), kernel="linear")
    array([[0., 0.],
           [0., 0.]])
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0]])
    >>> kernel_matrix(X, kernel="rbf", gamma=1.0).round(4)
    array([[1.    , 0.3679],
           [0.3679, 1.    ]])
    >>> kernel_matrix(X.astype(np.float32), kernel="rbf", gamma=1e39)
    Traceback (most recent call last):
    ...
    ValueError: gamma=1e+39 is out of float32's range for Gaussian: it overflows float32 ...
    >>> kernel_matrix(np.array([[0.0], [1e200]]), kernel="matern", nu=2.5)  # its limit 0
    array([[1., 0.],
           [0., 1.]])
    """
    fn, where = _native("block", resolve_device(device), _n_threads(n_jobs))
    X, Z, kern = _prepare(X, Z, kernel, kernel_params)
    return _check_no_nan(fn(X, Z, **kern.native_spec(X.shape[1]), **where), kern, X.dtype, "K")


def kernel_gradient(
    X: Any,
    Z: Any,
    V: Any,
    kernel: str | Kernel = "rbf",
    *,
    n_jobs: int | None = None,
    **kernel_params: Any,
) -> np.ndarray:
    """Gradient with respect to X of ``K(X, Z) @ V``.

    At ``x == z`` the non-differentiable kernels (Laplacian, Matern 1/2) use the zero
    subgradient. Not available where the native kernel has none
    (``native_kernels()[kind].has_gradient``): ArcCosine. Runs on the CPU.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Points at which the gradient is taken.
    Z : array-like of shape (m, d)
        Centres.
    V : array-like of shape (m,) or (m, k)
        Coefficients of the centres.
    kernel : str or gramfree.kernels.Kernel, default="rbf"
        A name from :data:`gramfree.kernels.KERNEL_NAMES` or a kernel object.
    n_jobs : int, default=None
        Threads; ``None`` uses OpenMP's default.
    **kernel_params
        ``gamma``, ``degree``, ``coef0``, ``length_scale``, ``nu``, ``norm`` as the kernel takes.

    Returns
    -------
    G : ndarray of shape (n, d) or (n, k, d)
        ``(n, d)`` for a 1-d ``V``, ``(n, k, d)`` for ``V`` of shape ``(m, k)``:
        ``G[i, c, :] = d/dx_i (K(X, Z) @ V)[i, c]``.

    Examples
    --------
    >>> import numpy as np
    >>> from gramfree import kernel_gradient
    >>> X = np.array([[0.5, 0.0]]); Z = np.zeros((1, 2))
    >>> G = kernel_gradient(X, Z, np.ones(1), kernel="rbf", gamma=1.0)
    >>> G.shape
    (1, 2)
    >>> bool(np.allclose(G, -2 * X * np.exp(-0.25)))  # d/dx exp(-|x - z|^2) = -2 (x - z) k
    True
    """
    return KernelOperator(X, Z, kernel, n_jobs=n_jobs, **kernel_params).gradient(V)


class KernelOperator(LinearOperator):
    """The lazy kernel matrix ``K(X, Z)`` as a :class:`scipy.sparse.linalg.LinearOperator`.

    Products run through the fused native operators: memory is O(tile), never O(n * m),
    so ``scipy.sparse.linalg.cg``, ``eigsh`` and friends work at any size.

    With ``X`` a row-chunked dask array and ``Z`` in memory (numpy), the operator is lazy
    too: ``K @ V``, ``K.T @ U``, ``normal_matvec``, ``gradient`` and ``to_dense`` return
    dask arrays, one task per row chunk of X (dask.distributed workers or dask's local
    scheduler); ``K @ V`` keeps X's row chunks and the (m, k) products add the chunks'
    partial sums by dask's tree reduction. ``Z`` must then be given and in memory (a dask
    ``Z`` or ``Z=None`` raise ``ValueError``), ``device`` must be "cpu", ``to_dense`` takes
    no ``out``, and ``K.T.gradient`` raises ``NotImplementedError``. dask is imported only
    when a dask collection is passed.

    Checks, besides the inputs' (see the module docstring), each raising ``ValueError``:

    * the kernel's parameters must be representable in the operator's dtype
      (:meth:`gramfree.kernels.Kernel.check_dtype`, for a dask X too): a float32
      operator with ``gamma=1e39``, or a Matern ``length_scale``
      whose inverse or square overflows float32, is refused naming the parameter;
    * right-hand sides of the wrong shape (``K @ V`` with a 3-d V, a (m, 2) V to
      ``matvec``, a 1-d one to ``matmat``) name V (U for ``K.T``) and the shape expected;
    * a finite V or U too large for a float32 operator says that it overflows float32;
    * results (``K @ V``, ``K.T @ U``, ``normal_matvec``, ``gradient``, ``to_dense``) are
      checked for NaN in one pass over the output: with finite inputs NaN means the
      kernel's values or their sums overflowed the dtype, and it raises naming X instead
      of spreading silently. Correct results, ``inf`` included, are returned unchanged.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    Z : array-like of shape (n_centers, n_features), default=None
        ``None`` means ``Z = X`` (a square, symmetric operator).
    kernel : str or Kernel, default="rbf"
        A name from :data:`gramfree.kernels.KERNEL_NAMES` or a kernel object.
    n_jobs : int, default=None
        Threads; ``None`` uses OpenMP's default (``OMP_NUM_THREADS`` or all cores).
    device : {"cpu", "cuda", "cuda:N", "auto"}, default="cpu"
        Where the products run (:mod:`gramfree.device`). On a GPU the host arrays are
        moved in tiles of rows, so n may exceed the GPU's memory; ``gradient`` always
        runs on the CPU.
    **kernel_params
        ``gamma``, ``degree``, ``coef0``, ``length_scale``, ``nu``, ``norm`` as the kernel takes.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        The rows' points, as the products use them (no copy when already C-contiguous
        float32/float64); a dask array for dask input (``K.T``'s ``Z`` then).
    Z : ndarray of shape (n_centers, n_features)
        The columns' points.
    kernel : gramfree.kernels.Kernel
        The kernel.
    shape : tuple of int
        ``(n_samples, n_centers)``.
    dtype : numpy.dtype
        float32 or float64, the inputs' common precision.
    device : str
        The resolved device.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.sparse.linalg import cg
    >>> from gramfree import KernelOperator, kernel_matrix
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> K = KernelOperator(X, kernel="rbf", gamma=1.0)
    >>> K.shape
    (200, 200)
    >>> v = np.ones(200)
    >>> bool(np.allclose(K @ v, kernel_matrix(X, gamma=1.0) @ v))
    True
    >>> beta, info = cg(K + 0.1 * np.eye(200), np.ones(200))  # doctest: +SKIP
    """

    def __init__(
        self,
        X: Any,
        Z: Any = None,
        kernel: str | Kernel = "rbf",
        *,
        n_jobs: int | None = None,
        device: str = "cpu",
        **kernel_params: Any,
    ) -> None:
        if hasattr(X, "__dask_graph__") or hasattr(Z, "__dask_graph__"):
            from ._dask import is_dask_collection

            if is_dask_collection(X, Z):
                from . import _dask_operator

                _dask_operator.setup(self, X, Z, kernel, n_jobs, device, kernel_params)
                return
        self.device = resolve_device(device)
        X, Z, kern = _prepare(X, Z, kernel, kernel_params)
        self.X = X
        self.Z = Z
        self.kernel = kern
        self.n_jobs = n_jobs
        self._threads = _n_threads(n_jobs)
        self._spec = kern.native_spec(X.shape[1])
        super().__init__(dtype=X.dtype, shape=(X.shape[0], Z.shape[0]))

    def _rhs(self, V: Any, rows: int, name: str) -> tuple[np.ndarray, bool]:
        """``V`` as the native products take it (2-d, the operator's dtype), and whether it
        was a vector. Zero columns are an empty product, as in scipy and numpy, and come
        back as a (rows, 0) array that the callers return without a native call."""
        V = _as_array(V, name)
        self._check_operand(V, rows, name, "any")
        vector = V.ndim == 1
        if V.ndim == 2 and V.shape[1] == 0:
            as_float_array(np.zeros((1, 1), V.dtype), name)  # its dtype checked, naming it
            return np.zeros((rows, 0), self.dtype), vector
        V2 = as_float_array(V.reshape(-1, 1) if vector else V, name, dtype=self.dtype)
        return V2, vector

    def _call(self, op: str, V: np.ndarray, rows: int, name: str, **extra: Any) -> np.ndarray:
        """Runs ``_core.kernel_<op>`` (CPU) or ``_core.cuda_kernel_<op>`` (GPU)."""
        V2, vector = self._rhs(V, rows, name)
        if V2.shape[1] == 0:
            out_rows = self.shape[0] if op == "matvec" else self.shape[1]
            return np.zeros((out_rows, 0), self.dtype)
        fn, where = _native(op, self.device, self._threads)
        out = fn(self.X, self.Z, V2, **self._spec, **where, **extra)
        label = {"matvec": f"K @ {name}", "rmatvec": f"K.T @ {name}"}.get(op, f"{op}({name})")
        _check_no_nan(out, self.kernel, self.dtype, label)
        return out[:, 0] if vector else out

    # scipy checks shapes before _matvec and raises bare messages ("dimension mismatch",
    # or the whole array dumped); check first so that the message names the argument and
    # says the shape expected. kind: "vec" (matvec: (rows,) or (rows, 1)), "mat" (matmat:
    # (rows, k)) or "any" (K @ V: either).
    def _check_operand(self, V: Any, rows: int, name: str, kind: str) -> None:
        if _is_sparse(V):
            _as_array(V, name)  # raises, naming V
        try:
            with ragged_lists_raise():
                shape = np.shape(V)
        except Exception as exc:  # ragged lists
            raise ValueError(f"{name}: cannot be converted to an array ({exc})") from None
        expected = {
            "vec": f"a vector of shape ({rows},) or ({rows}, 1)",
            "mat": f"a 2-d array of shape ({rows}, k)",
            "any": f"an array of shape ({rows},) or ({rows}, k)",
        }[kind]
        if len(shape) not in (1, 2):
            raise ValueError(
                f"{name}: expected a 1-d or 2-d array, got {len(shape)} dimension(s) of shape "
                f"{shape}; this takes {expected}"
            )
        if shape[0] != rows:
            raise ValueError(f"{name}: has {shape[0]} rows, expected {rows}: pass {expected}")
        if (kind == "vec" and len(shape) == 2 and shape[1] != 1) or (
            kind == "mat" and len(shape) != 2
        ):
            raise ValueError(f"{name}: expected {expected}, got shape {shape}")

    def _check_rows(self, V: Any, rows: int, name: str, kind: str = "any") -> None:
        if self._dask is None:
            self._check_operand(V, rows, name, kind)

    # Names of the right-hand sides in messages: V for K @ V, U for K.T @ U (also when
    # K.T is itself a KernelOperator, whose products are then K.T @ U and K @ V).
    _names = ("V", "U")

    # The dask state (gramfree._dask_operator._DaskKernel) when X is a dask array.
    _dask: Any = None

    def __mul__(self, x: Any) -> Any:  # K @ x and K * x: scipy's dot computes a dask x
        if self._dask is not None:
            return self._dask.dot(self, x)
        return super().__mul__(x)

    def dot(self, x: Any) -> Any:
        """``K(X, Z) @ x`` for an array ``x``, or the composed operator for an operator or
        a scalar ``x``; ``K @ x`` and ``K * x`` call it.

        As :meth:`scipy.sparse.linalg.LinearOperator.dot`, with shapes checked first: an
        array of other than 1 or 2 dimensions, or of the wrong number of rows, raises
        ``ValueError`` naming V (U for ``K.T``) and the shape expected.

        Parameters
        ----------
        x : array-like of shape (n_centers,) or (n_centers, k), LinearOperator or scalar
            What to multiply by.

        Returns
        -------
        y : ndarray or LinearOperator
            ``K(X, Z) @ x`` (shape (n_samples,) or (n_samples, k)) for an array, a
            LinearOperator for an operator or a scalar.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator
        >>> K = KernelOperator(np.ones((4, 2)), np.ones((3, 2)), kernel="linear")
        >>> K.dot(np.ones(3))
        array([6., 6., 6., 6.])
        >>> K @ np.ones((3, 2, 2))
        Traceback (most recent call last):
        ...
        ValueError: V: expected a 1-d or 2-d array, got 3 dimension(s) of shape (3, 2, 2); ...
        """
        if self._dask is None and not isinstance(x, LinearOperator) and not np.isscalar(x):
            self._check_operand(x, self.shape[1], self._names[0], "any")
        return super().dot(x)

    # ndarray @ K defers to K.__rmatmul__ (scipy sets this too from 1.12 on; the oldest
    # scipy supported, 1.9, neither sets it nor multiplies arrays from the left).
    __array_ufunc__ = None

    def __rmatmul__(self, x: Any) -> Any:
        if np.isscalar(x):
            raise ValueError("Scalar operands are not allowed, use '*' instead")
        return self._rdot(x)

    def _rdot(self, x: Any) -> Any:  # x @ K: scipy's message would dump x
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super()._rdot(x)
        if self._dask is not None:
            # x @ K = (K.T @ x.T).T on the dask state's transposed products, which check x
            # (scipy before 1.12 has no _rdot to defer to: U @ K failed there; CI's oldest
            # dependencies). x may itself be a dask array: transposed as it is.
            if len(np.shape(x)) == 1:
                return self.rmatvec(x)
            return self.rmatmat(x.T if hasattr(x, "T") else np.asarray(x).T).T
        shape = np.shape(x) if not _is_sparse(x) else x.shape
        if len(shape) not in (1, 2):
            raise ValueError(
                f"{self._names[1]}: expected a 1-d or 2-d array, got {len(shape)} "
                f"dimension(s) of shape {shape}; U @ K takes U of shape "
                f"({self.shape[0]},) or (k, {self.shape[0]})"
            )
        if len(shape) == 2 and shape[1] != self.shape[0]:  # rmatmat would say x.T's rows
            raise ValueError(
                f"{self._names[1]}: has {shape[1]} columns, expected {self.shape[0]}; U @ K "
                f"takes U of shape ({self.shape[0]},) or (k, {self.shape[0]})"
            )
        # x @ K = (K.T @ x.T).T, on this operator's own transposed products.
        if len(shape) == 1:
            return self.rmatvec(x)
        return self.rmatmat(np.asarray(x).T).T

    def matvec(self, x: ArrayLike) -> np.ndarray:
        """``K(X, Z) @ x`` for a vector ``x``, without forming ``K``; also ``K @ x``.

        Parameters
        ----------
        x : array-like of shape (n_centers,) or (n_centers, 1)
            The vector; another shape raises ``ValueError`` naming V and the shape
            expected.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, 1)
            ``K(X, Z) @ x``, shaped as ``x`` (scipy's convention), in the operator's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator, kernel_matrix
        >>> rng = np.random.default_rng(0)
        >>> X, Z = rng.normal(size=(50, 3)), rng.normal(size=(20, 3))
        >>> K = KernelOperator(X, Z, kernel="rbf", gamma=0.5)
        >>> dense = kernel_matrix(X, Z, kernel="rbf", gamma=0.5)
        >>> v = rng.normal(size=20)
        >>> bool(np.allclose(K.matvec(v), dense @ v))
        True
        >>> bool(np.allclose(K @ v, dense @ v))
        True
        """
        if self._dask is not None:
            return self._dask.apply(x, adjoint=False, kind="vec")
        self._check_rows(x, self.shape[1], self._names[0], "vec")
        return super().matvec(x)

    def matmat(self, X: ArrayLike) -> np.ndarray:
        """``K(X, Z) @ X`` for a matrix ``X`` of columns, in one pass; also ``K @ X``.

        Parameters
        ----------
        X : array-like of shape (n_centers, k)
            The columns to multiply (named ``X`` as in scipy; not the operator's points;
            named V in messages); another shape raises ``ValueError``.

        Returns
        -------
        Y : ndarray of shape (n_samples, k)
            ``K(X, Z) @ X``, in the operator's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator, kernel_matrix
        >>> rng = np.random.default_rng(0)
        >>> X, Z = rng.normal(size=(50, 3)), rng.normal(size=(20, 3))
        >>> K = KernelOperator(X, Z, kernel="rbf", gamma=0.5)
        >>> dense = kernel_matrix(X, Z, kernel="rbf", gamma=0.5)
        >>> V = rng.normal(size=(20, 4))
        >>> bool(np.allclose(K.matmat(V), dense @ V))
        True
        >>> (K @ V).shape
        (50, 4)
        """
        if self._dask is not None:
            return self._dask.apply(X, adjoint=False, kind="mat")
        self._check_rows(X, self.shape[1], self._names[0], "mat")
        return super().matmat(X)

    def rmatvec(self, x: ArrayLike) -> np.ndarray:
        """``K(X, Z)^T @ x`` for a vector ``x``; also ``K.T @ x``.

        The kernels are real and symmetric, so ``K(X, Z)^T = K(Z, X)``; ``K.T`` and
        ``K.H`` are themselves :class:`KernelOperator` s.

        Parameters
        ----------
        x : array-like of shape (n_samples,) or (n_samples, 1)
            The vector; another shape raises ``ValueError`` naming U and the shape
            expected.

        Returns
        -------
        y : ndarray of shape (n_centers,) or (n_centers, 1)
            ``K(X, Z)^T @ x``, shaped as ``x``, in the operator's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator, kernel_matrix
        >>> rng = np.random.default_rng(0)
        >>> X, Z = rng.normal(size=(50, 3)), rng.normal(size=(20, 3))
        >>> K = KernelOperator(X, Z, kernel="rbf", gamma=0.5)
        >>> dense = kernel_matrix(X, Z, kernel="rbf", gamma=0.5)
        >>> u = rng.normal(size=50)
        >>> bool(np.allclose(K.rmatvec(u), dense.T @ u))
        True
        >>> K.T
        <KernelOperator 20x50 Gaussian(gamma=0.5) dtype=float64>
        >>> bool(np.allclose(K.T @ u, dense.T @ u))
        True
        """
        if self._dask is not None:
            return self._dask.apply(x, adjoint=True, kind="vec")
        self._check_rows(x, self.shape[0], self._names[1], "vec")
        return super().rmatvec(x)

    def rmatmat(self, X: ArrayLike) -> np.ndarray:
        """``K(X, Z)^T @ X`` for a matrix ``X`` of columns, in one pass; also ``K.T @ X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, k)
            The columns to multiply (named ``X`` as in scipy; not the operator's points;
            named U in messages); another shape raises ``ValueError``.

        Returns
        -------
        Y : ndarray of shape (n_centers, k)
            ``K(X, Z)^T @ X``, in the operator's dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator, kernel_matrix
        >>> rng = np.random.default_rng(0)
        >>> X, Z = rng.normal(size=(50, 3)), rng.normal(size=(20, 3))
        >>> K = KernelOperator(X, Z, kernel="rbf", gamma=0.5)
        >>> dense = kernel_matrix(X, Z, kernel="rbf", gamma=0.5)
        >>> U = rng.normal(size=(50, 4))
        >>> bool(np.allclose(K.rmatmat(U), dense.T @ U))
        True
        >>> bool(np.allclose(K.T @ U, dense.T @ U))
        True
        """
        if self._dask is not None:
            return self._dask.apply(X, adjoint=True, kind="mat")
        self._check_rows(X, self.shape[0], self._names[1], "mat")
        return super().rmatmat(X)

    def _matvec(self, v):
        return self._call("matvec", v, self.shape[1], self._names[0])

    def _matmat(self, V):
        return self._call("matvec", V, self.shape[1], self._names[0])

    def _rmatvec(self, u):
        return self._call("rmatvec", u, self.shape[0], self._names[1])

    def _rmatmat(self, U):
        return self._call("rmatvec", U, self.shape[0], self._names[1])

    def _adjoint(self):
        # Real symmetric kernels: K(X, Z)^T = K(Z, X).
        if self._dask is not None:
            return self._dask.transpose(self)
        op = KernelOperator(self.Z, self.X, self.kernel, n_jobs=self.n_jobs, device=self.device)
        op._names = self._names[::-1]
        return op

    _transpose = _adjoint

    def normal_matvec(self, V: Any, sample_weight: Any = None) -> np.ndarray:
        """``K^T diag(sample_weight) (K @ V)`` in one pass over X: the Nystrom-PCG
        (Falkon) iteration.

        Parameters
        ----------
        V : array-like of shape (n_centers,) or (n_centers, k)
            Right-hand side.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the rows; ``None`` means all ones.

        Returns
        -------
        out : ndarray of shape (n_centers,) or (n_centers, k)
            ``K^T diag(sample_weight) K V``, shaped as ``V``.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator
        >>> rng = np.random.default_rng(0)
        >>> K = KernelOperator(rng.normal(size=(50, 3)), rng.normal(size=(10, 3)), gamma=0.5)
        >>> v = np.ones(10)
        >>> bool(np.allclose(K.normal_matvec(v), K.T @ (K @ v)))
        True
        """
        if self._dask is not None:
            return self._dask.normal(V, sample_weight)
        if sample_weight is not None:
            sample_weight = as_float_array(sample_weight, "sample_weight", ndim=1, dtype=self.dtype)
            if sample_weight.shape[0] != self.shape[0]:
                raise ValueError(
                    f"sample_weight: has {sample_weight.shape[0]} values, expected {self.shape[0]}"
                )
        return self._call("normal_matvec", V, self.shape[1], "V", sample_weight=sample_weight)

    def gradient(self, V: Any) -> np.ndarray:
        """Gradient of ``K @ V`` with respect to X; see :func:`kernel_gradient`.

        Parameters
        ----------
        V : array-like of shape (n_centers,) or (n_centers, k)
            Coefficients of the centres.

        Returns
        -------
        G : ndarray of shape (n_samples, n_features) or (n_samples, k, n_features)
            ``G[i, c, :] = d/dx_i (K @ V)[i, c]`` (no ``c`` axis for a 1-d ``V``).

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator
        >>> K = KernelOperator(np.zeros((4, 3)), np.ones((2, 3)), gamma=0.5)
        >>> K.gradient(np.ones((2, 5))).shape
        (4, 5, 3)

        Against the RBF's derivative ``d/dx exp(-g |x - z|^2) = -2 g (x - z) k(x, z)``:

        >>> rng = np.random.default_rng(0)
        >>> X, Z, v = rng.normal(size=(6, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
        >>> K = KernelOperator(X, Z, kernel="rbf", gamma=0.5)
        >>> diff = X[:, None, :] - Z[None, :, :]
        >>> expected = (-2 * 0.5 * diff * (K.to_dense() * v)[:, :, None]).sum(axis=1)
        >>> bool(np.allclose(K.gradient(v), expected))
        True
        """
        kind = self._spec["kind"]
        if not native_kernels()[kind].has_gradient:
            raise ValueError(f"{self.kernel!r}: the gradient of {kind} is not implemented")
        if self._dask is not None:
            return self._dask.gradient(V)
        V2, vector = self._rhs(V, self.shape[1], "V")
        if V2.shape[1] == 0:
            return np.zeros((self.shape[0], 0, self.X.shape[1]), self.dtype)
        n, d = self.X.shape
        shape = (n, d) if vector else (n, V2.shape[1], d)
        try:
            out = _core.kernel_grad_matvec(
                self.X, self.Z, V2, **self._spec, n_threads=self._threads
            )
        except ValueError as exc:  # the core's size refusal names its flat (n, k * d) output
            text = str(exc)
            if not text.startswith("result of shape ("):
                raise
            raise ValueError(
                f"result of shape {shape} (the gradient: n_samples, V's columns, "
                f"n_features){text[text.index(')') + 1 :]}; pass fewer columns of V or rows "
                "of X"
            ) from None
        _check_no_nan(out, self.kernel, self.dtype, "the gradient")
        return out.reshape(shape)

    def to_dense(self, out: np.ndarray | None = None) -> np.ndarray:
        """``K(X, Z)`` materialised, optionally into a given array.

        Parameters
        ----------
        out : ndarray of shape (n, m), default=None
            Where to write (CPU only): a writeable array of the operator's dtype, or
            float64 for a float32 operator (values computed in float32, stored widened),
            sharing no memory with X or Z, C-contiguous or a view whose rows are
            contiguous and in order (``A[r0:r1, c0:]`` of a C-ordered ``A``: nothing
            outside the view is written). Reusing one ``out`` spares a loop over blocks an
            allocation per block; views fill part of a larger matrix in place, such as one
            triangle of a symmetric ``K(X, X)`` block row by block row.

        Returns
        -------
        K : ndarray of shape (n, m)
            The matrix (``out`` itself when given).

        Raises
        ------
        ValueError
            If the matrix holds NaN (the kernel overflows the dtype on these points,
            though they are finite), naming X; ``out``, when given, has then been
            written.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import KernelOperator
        >>> K = KernelOperator(np.eye(3), kernel="linear")
        >>> K.to_dense()
        array([[1., 0., 0.],
               [0., 1., 0.],
               [0., 0., 1.]])
        >>> buf = np.empty((3, 3))
        >>> K.to_dense(out=buf) is buf
        True
        >>> X, A = np.eye(3), np.full((3, 3), -1.0)
        >>> for r in range(3):  # the upper triangle only, a row at a time
        ...     _ = KernelOperator(X[r : r + 1], X[r:], kernel="linear").to_dense(out=A[r : r + 1, r:])
        >>> A
        array([[ 1.,  0.,  0.],
               [-1.,  1.,  0.],
               [-1., -1.,  1.]])
        """
        if self._dask is not None:
            return self._dask.dense(out)
        fn, where = _native("block", self.device, self._threads)
        if out is None:
            K = fn(self.X, self.Z, **self._spec, **where)
        else:
            if self.device != "cpu":
                raise ValueError(
                    f"out: supported on the CPU only, this operator runs on {self.device}"
                )
            if not isinstance(out, np.ndarray):
                raise TypeError(f"out: must be a numpy array, got {type(out).__name__}")
            K = fn(self.X, self.Z, **self._spec, **where, out=out)
        return _check_no_nan(K, self.kernel, self.dtype, "K")

    def _dense_into_unchecked(self, out: np.ndarray) -> np.ndarray:
        """``to_dense(out=out)`` on the CPU without its NaN scan, a pass over ``out`` that
        costs a third of computing float32 values: for a caller that checks what it makes
        of the block once (the one-pass Nystrom Gram: a NaN in a block reaches its Gram's
        diagonal) and calls ``to_dense`` for the error message."""
        fn, where = _native("block", self.device, self._threads)
        return fn(self.X, self.Z, **self._spec, **where, out=out)

    def __repr__(self) -> str:
        if self._dask is not None:
            return self._dask.describe(self)
        n, m = self.shape
        where = "" if self.device == "cpu" else f" device={self.device}"
        return f"<KernelOperator {n}x{m} {self.kernel!r} dtype={self.dtype}{where}>"
