"""Kernel specifications: small immutable values naming a kernel and its parameters.

Names and defaults follow scikit-learn's pairwise kernels (``gamma=None`` means
``1 / n_features``, as in :func:`sklearn.metrics.pairwise.rbf_kernel`) and
:class:`sklearn.gaussian_process.kernels.Matern` (``length_scale``, ``nu``).
A kernel is evaluated only by the native operators; these classes validate and
carry parameters, and map onto the core's kernels (:func:`native_kernels`, read from
its kernel table).

Examples
--------
>>> from gramfree.kernels import Gaussian, get_kernel
>>> Gaussian(gamma=0.5)
Gaussian(gamma=0.5)
>>> get_kernel("matern", nu=2.5) == get_kernel("matern", nu=2.5, length_scale=1.0)
True
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np

from . import _core

__all__ = [
    "Kernel",
    "Gaussian",
    "RBF",
    "Laplacian",
    "Matern",
    "Polynomial",
    "Linear",
    "ArcCosine",
    "get_kernel",
    "KERNEL_NAMES",
    "KERNEL_CLASSES",
    "NativeKernel",
    "native_kernels",
]


@dataclass(frozen=True)
class NativeKernel:
    """One kernel of the native core, a row of its kernel table
    (``csrc/gramfree/kernel_table.hpp``); :func:`native_kernels` lists them.

    Parameters
    ----------
    name : str
        The core's name of the kernel (``"gaussian"``, ``"matern32"``, ...), the ``kind``
        of :meth:`Kernel.native_spec`.
    metric : {"dot", "sqdist", "l1"}
        What the kernel is a function of: ``<x, z>``, ``||x - z||^2`` or ``||x - z||_1``.
    parameters : Mapping of str to str
        The parameters it uses, each mapped to its constraint: ``"positive"``,
        ``"finite"`` or ``"power"``.
    needs_norms : bool
        Whether it is also a function of ``||x||`` and ``||z||``.
    gradient : {"none", "fused", "direct", "constant"}
        How ``kernel_grad_matvec`` computes its gradient.
    has_gradient : bool
        Whether :func:`gramfree.kernel_gradient` is available for it.

    Attributes
    ----------
    name, metric, parameters, needs_norms, gradient, has_gradient :
        The parameters above, as read-only fields.

    Examples
    --------
    >>> from gramfree.kernels import native_kernels
    >>> row = native_kernels()["gaussian"]
    >>> row.metric, dict(row.parameters), row.has_gradient
    ('sqdist', {'gamma': 'positive'}, True)
    """

    name: str
    metric: str  # what the kernel is a function of: "dot", "sqdist" or "l1"
    parameters: Mapping[str, str]  # the parameters it uses -> "positive", "finite" or "power"
    needs_norms: bool  # also a function of |x| and |z|
    gradient: str  # how kernel_grad_matvec computes it: "none", "fused", "direct", "constant"
    has_gradient: bool


@functools.cache
def native_kernels() -> Mapping[str, NativeKernel]:
    """The native kernels by name, in the core's order.

    Returns
    -------
    kernels : Mapping of str to NativeKernel
        A read-only mapping, one entry per row of the core's kernel table.

    Examples
    --------
    >>> from gramfree.kernels import native_kernels
    >>> list(native_kernels())
    ['gaussian', 'laplacian_l1', 'laplacian_l2', 'matern12', 'matern32', 'matern52',
     'polynomial', 'linear', 'arccos1']
    >>> native_kernels()["arccos1"].has_gradient
    False
    """
    rows = {}
    for row in _core.kernel_table():
        row["parameters"] = MappingProxyType(row["parameters"])
        rows[row["name"]] = NativeKernel(**row)
    return MappingProxyType(rows)


def _not_scalar(name: str, value: Any, what: str) -> TypeError:
    """The error for a parameter that is not a scalar of the right kind. Arrays are refused
    even with one element (a kernel holds Python scalars: it is hashable and compares by
    value); the message says how to pass the element."""
    hint = ""
    if isinstance(value, np.ndarray):
        hint = f" of shape {value.shape}; a kernel parameter is a scalar"
        if value.size == 1:
            hint += f" (pass {name}.item() for a 1-element array)"
    return TypeError(f"{name} must be {what}, got {type(value).__name__}{hint}")


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _not_scalar(name, value, "a real number")
    try:
        converted = float(value)
    except OverflowError:  # a Python int beyond float64 (10**400)
        raise ValueError(f"{name} must be finite, got an integer beyond float64's range") from None
    if (
        isinstance(value, np.floating)
        and np.isfinite(value)
        and (math.isinf(converted) or (converted == 0) != (value == 0))
    ):  # a longdouble beyond float64's range: it was "got inf" or "got 0.0" for 1e-400
        shown = np.format_float_scientific(value, precision=3, trim="-")
        raise ValueError(f"{name} must be within float64's range, got {shown}")
    value = converted
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _check_gamma(gamma: Any) -> float | None:
    return None if gamma is None else _check_real("gamma", gamma, positive=True)


def _resolved_gamma(gamma: float | None, n_features: int) -> float:
    return 1.0 / n_features if gamma is None else gamma


# Rows per block of scale_gamma's variance: a float64 copy of at most ~8 MB at a time
# (np.var of float32 X widened all of it: 6 GB for a million rows of 784).
_VARIANCE_BLOCK_VALUES = 1 << 20


def scale_gamma(X: np.ndarray, weights: np.ndarray | None = None) -> float:
    """gamma="scale": ``1 / (n_features * X.var())``, scikit-learn SVC's, over every value
    of X (1.0 where X is constant, as there). Rows count by ``weights`` (non-negative, not
    all zero), so that a weight of k is the row repeated k times and a weight of 0 the row
    removed (SVC's is unweighted). In float64, two passes over blocks of rows; X (2-d,
    finite) is not copied whole. The dask fit runs the same block sums over its chunks."""
    n, d = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.max()  # weights of 1e300 summed in range
    rows = max(1, _VARIANCE_BLOCK_VALUES // max(d, 1))
    blocks = [slice(start, start + rows) for start in range(0, n, rows)]
    first = combine_value_sums([value_sums(X[b], w[b]) for b in blocks])
    if first[2] == first[3]:  # constant (see gamma_from_sums); no second pass
        return 1.0
    mean = first_mean(first, d)
    squares = sum(float(squared_deviations(X[b], w[b], mean)[0, 0]) for b in blocks)
    return gamma_from_sums(first, squares, d)


def _counted(X: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # A zero weight removes the row, whatever its values (1e200 there gave 0 * inf = NaN).
    w = np.asarray(w, dtype=np.float64).reshape(-1)
    kept = w > 0
    return (X, w) if kept.all() else (X[kept], w[kept])


def value_sums(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """A block of rows' share of scale_gamma's first pass, in float64, over its rows of
    positive weight: ``[[sum of weights, weighted sum of values, smallest, largest]]``."""
    X, w = _counted(X, w)
    if not w.size:
        return np.array([[0.0, 0.0, math.inf, -math.inf]])
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(w @ X.sum(axis=1, dtype=np.float64))
    return np.array([[w.sum(), total, float(X.min()), float(X.max())]])


def combine_value_sums(parts) -> np.ndarray:
    """The blocks' value_sums as one row."""
    parts = np.concatenate([np.reshape(p, (-1, 4)) for p in parts])
    with np.errstate(over="ignore", invalid="ignore"):
        return np.array(
            [parts[:, 0].sum(), parts[:, 1].sum(), parts[:, 2].min(), parts[:, 3].max()]
        )


def first_mean(first: np.ndarray, n_features: int) -> float:
    return float(first[1]) / (float(first[0]) * n_features)


def squared_deviations(X: np.ndarray, w: np.ndarray, mean: float) -> np.ndarray:
    """A block's share of the second pass: ``[[sum of w * (x - mean)^2]]``, in float64."""
    X, w = _counted(X, w)
    with np.errstate(over="ignore", invalid="ignore"):
        centred = X.astype(np.float64) - mean
        return np.array([[float(w @ np.einsum("ij,ij->i", centred, centred))]])


def gamma_from_sums(first: np.ndarray, squares: float, n_features: int) -> float:
    """``1 / (n_features * variance)``, or 1.0 where every counted value is the same: exactly
    (the smallest is the largest), as a rounded mean would leave a variance of ~1e-34."""
    if first[2] == first[3]:
        return 1.0
    variance = squares / (float(first[0]) * n_features)
    gamma = 1.0 / (n_features * variance) if variance > 0 else math.inf
    if not (math.isfinite(variance) and 0 < gamma < math.inf):
        raise ValueError(
            f"gamma='scale': X's variance in float64 is {variance:g}, so 1 / (n_features * "
            f"X.var()) = {gamma:g} is no kernel scale; scale X or give gamma as a number"
        )
    return gamma


def _gamma_constants(gamma: float | None, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
    # gamma=None is 1 / n_features, within every dtype's range.
    return [] if gamma is None else [("gamma", "gamma", t(gamma), True)]


def _representable(kernel: Kernel, dtype: Any) -> bool:
    try:
        kernel.check_dtype(dtype)
    except ValueError:
        return False
    return True


def _matern_gamma(length_scale: float) -> float:
    """Matern ``nu=inf``'s Gaussian ``gamma = 0.5 / length_scale**2``, as ``native_spec``
    computes it; ``inf`` or ``0.0`` where the square under- or overflows (which
    ``check_dtype`` refuses) rather than Python's ZeroDivisionError / OverflowError."""
    try:
        return 0.5 / length_scale**2
    except ZeroDivisionError:
        return math.inf
    except OverflowError:
        return 0.0


@dataclass(frozen=True)
class Kernel:
    """Base class of the kernels: :class:`Gaussian` (alias :data:`RBF`),
    :class:`Laplacian`, :class:`Matern`, :class:`Polynomial`, :class:`Linear` and
    :class:`ArcCosine`.

    Subclasses are frozen dataclasses: equality, hashing, repr and pickling come from
    their fields. Calling a kernel, ``kernel(X, Z)``, gives the matrix ``K(X, Z)``; any
    gramfree function or estimator taking ``kernel=`` accepts one in place of a name.

    The base class itself is abstract: ``Kernel()`` raises ``TypeError`` (use one of the
    kernels above, or :func:`get_kernel`).

    Every kernel checks its parameters when it is made:

    * each is a scalar: Python and numpy numbers are accepted and stored as Python
      ``float`` / ``int`` (``str`` for ``norm``); arrays, even of one element or 0-d,
      raise ``TypeError`` naming the parameter, so a kernel stays hashable;
    * each, and each constant the native kernel derives from it (``1 / length_scale``,
      ``3 / length_scale**2``, Matern ``nu=inf``'s ``gamma = 0.5 / length_scale**2``,
      ...), must be a normal float64 number, between ``numpy.finfo(numpy.float64).tiny``
      (2.2e-308) and ``.max`` (1.8e308) in magnitude; otherwise ``ValueError`` names the
      parameter the user gave. :meth:`check_dtype` applies the same rule for float32
      (1.2e-38 to 3.4e38); :class:`gramfree.KernelOperator` and
      :func:`gramfree.kernel_matrix` call it for the dtype they compute in.

    Attributes
    ----------
    name : str
        The name :func:`get_kernel` knows the kernel by (empty for the base class).
    aliases : tuple of str
        Other names get_kernel accepts.

    Examples
    --------
    >>> from gramfree.kernels import KERNEL_CLASSES, Kernel, get_kernel
    >>> all(issubclass(cls, Kernel) for cls in KERNEL_CLASSES)
    True
    >>> [cls.name for cls in KERNEL_CLASSES]
    ['rbf', 'laplacian', 'matern', 'poly', 'linear', 'arccos']
    >>> isinstance(get_kernel("laplacian"), Kernel)
    True
    >>> Kernel()
    Traceback (most recent call last):
    ...
    TypeError: Kernel is the abstract base class of the kernels; use a concrete kernel ...
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()  # other names get_kernel accepts

    def __post_init__(self) -> None:
        if type(self) is Kernel:
            raise TypeError(
                "Kernel is the abstract base class of the kernels; use a concrete kernel "
                "(Gaussian, Laplacian, Matern, Polynomial, Linear, ArcCosine) or "
                "get_kernel(name, **params)"
            )

    def _constants(self, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
        """The numbers the native kernel computes with, as it computes them in the float
        type ``t``: ``(parameter, expression, value, scale)`` for each, where ``scale``
        says the value must be a normal number (a nonzero scale; otherwise only finite).
        Called with numpy's floating-point errors ignored."""
        return []

    def check_dtype(self, dtype: Any) -> None:
        """Refuse parameters the native kernel cannot represent in ``dtype``.

        The native kernels compute in the data's precision: each parameter, and each
        constant derived from it (``1 / length_scale``, ``3 / length_scale**2``, Matern
        ``nu=inf``'s ``gamma = 0.5 / length_scale**2``, ...), is converted to ``dtype``.
        A scale (``gamma``, ``length_scale`` and what derives from them) must then be a
        normal number, from ``numpy.finfo(dtype).tiny`` to ``.max`` (float32: 1.2e-38 to
        3.4e38); ``coef0`` must be finite. Outside that range a float32 computation would
        silently give wrong values (``gamma=1e39`` becomes ``inf``, and
        ``k(x, x) = exp(-inf * 0)`` is not 1). A distance kernel's scale must also keep
        the squared distance (the l1 distance) it is computed from within the normal
        numbers wherever the kernel is neither 0 nor 1: ``c`` on the squared distance
        (the Gaussian's ``gamma``) within ``[-log(s) / max, eps / tiny]``, ``c`` on the
        distance (the l2 Laplacian's ``gamma``, Matern's ``sqrt(2 nu) / length_scale``)
        within ``[-log(s) / sqrt(max), eps / sqrt(tiny)]``, ``s`` the smallest subnormal
        (float64 Gaussian: 4.1e-306 to 1e292; float32: 3.0e-37 to 1.0e31). Outside,
        the kernel returned 0 where the square overflowed and 1 where it underflowed, in
        silence. Kernels check float64 when they are made; :class:`gramfree.KernelOperator`
        and :func:`gramfree.kernel_matrix` call this for the dtype they compute in.

        Parameters
        ----------
        dtype : {numpy.float32, numpy.float64} or str
            The precision of the computation.

        Raises
        ------
        ValueError
            Naming the parameter that is out of ``dtype``'s range (and the derived
            constant, where that is what overflows or underflows).
        TypeError
            If ``dtype`` is not float32 or float64.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree.kernels import Gaussian, Matern
        >>> Gaussian(gamma=1e30).check_dtype(np.float32)  # within float32's range: fine
        >>> Gaussian(gamma=1e39).check_dtype(np.float32)
        Traceback (most recent call last):
        ...
        ValueError: gamma=1e+39 is out of float32's range for Gaussian: ...
        >>> Matern(length_scale=1e-20, nu=2.5).check_dtype("float32")
        Traceback (most recent call last):
        ...
        ValueError: length_scale=1e-20 is out of float32's range for Matern(nu=2.5): ...
        """
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        info = np.finfo(dt)
        with np.errstate(all="ignore"):
            constants = self._constants(dt.type)
        for param, expr, value, scale in constants:
            v = abs(float(value))
            if scale:
                if info.tiny <= v <= info.max:
                    continue
                how = "overflows" if v > info.max else "underflows"
                limits = f"whose normal numbers have magnitudes {info.tiny:.3g} to {info.max:.3g}"
            elif math.isfinite(v):
                continue
            else:
                how, limits = "overflows", f"whose largest number is {info.max:.3g}"
            what = "it" if expr == param else expr
            owner = type(self).__name__
            if hasattr(self, "nu"):  # Matern: which constants depend on nu
                owner += f"(nu={self.nu})"
            msg = (
                f"{param}={getattr(self, param)!r} is out of {dt.name}'s range for {owner}: "
                f"{what} {how} {dt.name} ({limits})"
            )
            if dt == np.float32 and _representable(self, np.float64):
                msg += "; compute in float64 (pass float64 X and Z)"
            raise ValueError(msg)
        self._check_reach(dt, info)

    def _reach(self) -> tuple[str, str, float, bool] | None:
        """``(parameter, expression, c, on_distance)`` for a kernel of the distance: it
        reads ``c * ||x - z||`` (``on_distance``, the norm taken as the root of the
        computed square) or ``c`` times the computed square itself (or the l1 sum).
        None for the inner-product kernels."""
        return None

    def _check_reach(self, dt: np.dtype, info: np.finfo) -> None:
        """Refuse a distance scale so extreme that the square (or sum) the kernel is
        computed from leaves ``dt``'s normal range where the kernel is neither 0 nor 1:
        there it silently returned 0 (the square overflowed) or 1 (it underflowed), where
        the true value is an ordinary number (a review: Laplacian gamma=1e-160 on points
        2e154 apart gave 0.0 for 0.999998; Matern length_scale=1e-170 on points 1e-170
        apart gave 1.0 for exp(-1)). The square overflows past ``max`` and loses its
        digits below ``tiny``; the kernel is 0 to the dtype once its argument passes
        ``-log`` of the smallest subnormal, and 1 once it is below ``eps``."""
        reach = self._reach()
        if reach is None:
            return
        param, expr, c, on_distance = reach
        vanish = -math.log(float(info.tiny) * float(info.eps))  # exp(-vanish): subnormal min
        top, bottom = float(info.max), float(info.tiny)
        if on_distance:
            top, bottom = math.sqrt(top), math.sqrt(bottom)
        low, high = vanish / top, float(info.eps) / bottom
        if low <= c <= high:
            return
        what = "it" if expr == param else expr
        owner = type(self).__name__
        if hasattr(self, "nu"):
            owner += f"(nu={self.nu})"
        elif hasattr(self, "norm"):
            owner += f"(norm={self.norm!r})"
        square = "l1 distance" if getattr(self, "norm", None) == "l1" else "squared distance"
        side, fault, value = ("below", "overflows", 0) if c < low else ("above", "underflows", 1)
        msg = (
            f"{param}={getattr(self, param)!r} is beyond {dt.name}'s reach for {owner}: "
            f"{what} must lie in [{low:.3g}, {high:.3g}]; {side} that, the {square} the "
            f"kernel is computed from {fault} {dt.name} at distances where the kernel is "
            f"not yet {value}, and it would return {value} there; rescale X and Z (by a "
            f"power of two, exactly) and {param} with them"
        )
        if dt == np.float32 and _representable(self, np.float64):
            msg += ", or compute in float64 (pass float64 X and Z)"
        raise ValueError(msg)

    def _refuse_indefinite(self) -> None:
        """Raise ValueError, naming the parameter, where these parameters make a kernel
        that is not positive semi-definite: the estimators' solvers need one (nothing for
        most kernels; the operators compute any kernel)."""

    def check_points(self, A: np.ndarray, name: str) -> None:
        """Refuse points the kernel cannot evaluate in ``A``'s dtype, naming ``name``
        and the row (the operators call it for X and Z); nothing for most kernels.

        The arc-cosine kernel computes each point's squared norm: a point whose norm is
        beyond ``sqrt`` of the dtype's largest number, or nonzero below ``sqrt`` of its
        smallest normal one, is refused (its square would over- or underflow).

        Parameters
        ----------
        A : ndarray of shape (n, d), float32 or float64
            The points, in the dtype the kernel computes in.
        name : str
            The argument the message names (``"X"``, ``"Z"``, ``"centers"``).

        Raises
        ------
        ValueError
            Naming ``name`` and the first row the kernel cannot evaluate.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree.kernels import ArcCosine, Gaussian
        >>> Gaussian().check_points(np.array([[1e200, 0.0]]), "X")  # nothing to refuse
        >>> ArcCosine().check_points(np.array([[1.0, 2.0], [1e200, 0.0]]), "X")
        Traceback (most recent call last):
        ...
        ValueError: X: the arccos kernel overflows float64 on row 1 of X ...
        """

    def native_spec(self, n_features: int) -> dict[str, Any]:
        """Parameters for ``gramfree._core`` with defaults resolved for ``n_features``.

        Parameters
        ----------
        n_features : int
            Features of the data the kernel is evaluated on (``gamma=None`` becomes
            ``1 / n_features``).

        Returns
        -------
        spec : dict
            ``kind`` (a name of :func:`native_kernels`) and that native kernel's
            parameters, as the core's functions take them as keyword arguments.

        Examples
        --------
        >>> import math
        >>> from gramfree.kernels import Gaussian, Matern
        >>> Gaussian().native_spec(4)
        {'kind': 'gaussian', 'gamma': 0.25}
        >>> Matern(length_scale=2.0, nu=math.inf).native_spec(3)  # 1 / (2 * 2.0 ** 2)
        {'kind': 'gaussian', 'gamma': 0.125}
        """
        raise NotImplementedError

    def _native(self, kind: str, **params: Any) -> dict[str, Any]:
        """The spec of native kernel ``kind``, which must be given exactly the parameters
        its row of the kernel table uses."""
        used = native_kernels()[kind].parameters
        if set(params) != set(used):
            raise TypeError(
                f"{type(self).__name__}: native kernel {kind!r} takes {sorted(used)}, "
                f"got {sorted(params)}"
            )
        return {"kind": kind, **params}

    def __call__(self, X, Z=None):
        """The kernel matrix ``K(X, Z)``; see :func:`gramfree.kernel_matrix`.

        Parameters
        ----------
        X : array-like of shape (n_samples_X, n_features)
            Rows of the matrix.
        Z : array-like of shape (n_samples_Z, n_features), default=None
            Columns of the matrix; ``None`` means ``Z = X``.

        Returns
        -------
        K : ndarray of shape (n_samples_X, n_samples_Z)
            ``K[i, j] = k(X[i], Z[j])``, in the inputs' common dtype.

        Examples
        --------
        >>> import numpy as np
        >>> from gramfree import kernel_matrix
        >>> from gramfree.kernels import Linear
        >>> X = np.random.default_rng(0).normal(size=(5, 3))
        >>> bool(np.allclose(Linear()(X), X @ X.T))
        True
        >>> bool(np.array_equal(Linear()(X, X[:2]), kernel_matrix(X, X[:2], kernel="linear")))
        True
        """
        from .operators import kernel_matrix

        return kernel_matrix(X, Z, kernel=self)

    def __repr__(self) -> str:
        # Only parameters that differ from their defaults, as scikit-learn prints estimators.
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, repr=False)
class Gaussian(Kernel):
    """Gaussian (RBF) kernel ``k(x, z) = exp(-gamma * ||x - z||^2)``.

    As scikit-learn's :func:`~sklearn.metrics.pairwise.rbf_kernel`. :data:`RBF` is the
    same class.

    Parameters
    ----------
    gamma : float, default=None
        Positive inverse squared length scale; ``None`` means ``1 / n_features`` of the
        data it is evaluated on. A scalar that keeps the squared distances it scales
        within the normal numbers where the kernel is neither 0 nor 1
        (:meth:`Kernel.check_dtype`): 4.2e-306 to 9.9e291 in float64, 3.1e-37 to 1.0e31
        in float32; otherwise ``ValueError`` (``TypeError`` for an array).

    Attributes
    ----------
    name : str
        ``"rbf"``, the name :func:`get_kernel` knows it by; the parameters above are
        read-only attributes too (the kernel is a frozen dataclass).
    aliases : tuple of str
        Other names get_kernel accepts: ``"gaussian"``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import RBF, Gaussian, get_kernel
    >>> k = Gaussian(gamma=0.5)
    >>> k
    Gaussian(gamma=0.5)
    >>> sqdist = ((X[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1)
    >>> bool(np.allclose(k(X, Z), np.exp(-0.5 * sqdist)))
    True
    >>> bool(np.allclose(Gaussian()(X, Z), np.exp(-sqdist / 3)))  # gamma = 1 / n_features
    True
    >>> RBF is Gaussian, get_kernel("rbf", gamma=0.5) == k
    (True, True)
    """

    gamma: float | None = None
    name: ClassVar[str] = "rbf"
    aliases: ClassVar[tuple[str, ...]] = ("gaussian",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", _check_gamma(self.gamma))
        self.check_dtype(np.float64)

    def _constants(self, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
        return _gamma_constants(self.gamma, t)

    def _reach(self) -> tuple[str, str, float, bool] | None:
        return None if self.gamma is None else ("gamma", "gamma", self.gamma, False)

    def native_spec(self, n_features: int) -> dict[str, Any]:
        return self._native("gaussian", gamma=_resolved_gamma(self.gamma, n_features))


RBF = Gaussian


@dataclass(frozen=True, repr=False)
class Laplacian(Kernel):
    """Laplacian kernel ``k(x, z) = exp(-gamma * ||x - z||)`` in the l1 or l2 norm.

    ``norm="l1"`` is scikit-learn's :func:`~sklearn.metrics.pairwise.laplacian_kernel`;
    ``norm="l2"`` is the exponential kernel (Matern 1/2 with ``gamma = 1 / length_scale``).

    Parameters
    ----------
    gamma : float, default=None
        Positive inverse length scale; ``None`` means ``1 / n_features`` of the data it
        is evaluated on. A scalar that keeps the distances it scales within the normal
        numbers where the kernel is neither 0 nor 1 (:meth:`Kernel.check_dtype`):
        ``norm="l1"`` 4.2e-306 to 9.9e291 in float64 (3.1e-37 to 1.0e31 in float32),
        ``norm="l2"`` 5.6e-152 to 1.48e138 (the limits rounded inwards).
    norm : {"l1", "l2"}, default="l1"
        The norm of ``x - z`` (a ``str``; anything else raises ``TypeError``).

    Attributes
    ----------
    name : str
        ``"laplacian"``, the name :func:`get_kernel` knows it by; the parameters above are
        read-only attributes too (the kernel is a frozen dataclass).
    aliases : tuple of str
        Other names get_kernel accepts: none.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import Laplacian
    >>> diff = X[:, None, :] - Z[None, :, :]
    >>> l1 = np.abs(diff).sum(axis=-1)
    >>> bool(np.allclose(Laplacian(gamma=0.5)(X, Z), np.exp(-0.5 * l1)))
    True
    >>> l2 = np.sqrt((diff ** 2).sum(axis=-1))
    >>> bool(np.allclose(Laplacian(gamma=0.5, norm="l2")(X, Z), np.exp(-0.5 * l2)))
    True
    """

    gamma: float | None = None
    norm: str = "l1"
    name: ClassVar[str] = "laplacian"

    def __post_init__(self) -> None:
        object.__setattr__(self, "gamma", _check_gamma(self.gamma))
        if not isinstance(self.norm, str):
            raise _not_scalar("norm", self.norm, "'l1' or 'l2'")
        if self.norm not in ("l1", "l2"):
            raise ValueError(f"norm must be 'l1' or 'l2', got {self.norm!r}")
        object.__setattr__(self, "norm", str(self.norm))
        self.check_dtype(np.float64)

    def _constants(self, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
        return _gamma_constants(self.gamma, t)

    def _reach(self) -> tuple[str, str, float, bool] | None:
        # l1: the sum of |x - z| is the computed quantity, with a square's limits.
        return None if self.gamma is None else ("gamma", "gamma", self.gamma, self.norm == "l2")

    def native_spec(self, n_features: int) -> dict[str, Any]:
        kind = "laplacian_l1" if self.norm == "l1" else "laplacian_l2"
        return self._native(kind, gamma=_resolved_gamma(self.gamma, n_features))


@dataclass(frozen=True, repr=False)
class Matern(Kernel):
    """Matern kernel, parametrised as scikit-learn's
    :class:`~sklearn.gaussian_process.kernels.Matern`.

    With ``r = ||x - z|| / length_scale``: ``nu=0.5`` gives ``exp(-r)``, ``nu=1.5``
    ``(1 + sqrt(3) r) exp(-sqrt(3) r)``, ``nu=2.5``
    ``(1 + sqrt(5) r + 5 r^2 / 3) exp(-sqrt(5) r)``, and ``nu=inf`` the Gaussian
    ``exp(-r^2 / 2)`` (the native Gaussian with ``gamma = 0.5 / length_scale**2``).

    Parameters
    ----------
    length_scale : float, default=1.0
        Positive length scale, a scalar. It, and the constants the native kernel derives
        from it, must be normal float64 numbers (float32 ones for float32 data; see
        :class:`Kernel`): ``1 / length_scale`` for ``nu=0.5``, ``sqrt(3) / length_scale``
        and ``3 / length_scale**2`` for 1.5 (5 for 2.5), ``0.5 / length_scale**2`` for
        inf; and the distance they scale must stay within the normal numbers where the
        kernel is neither 0 nor 1 (:meth:`Kernel.check_dtype`), which binds first. For
        ``nu=1.5`` that is 1.2e-138 to 3.1e151 in float64 and 1.6e-12 to 3.0e17 in float32
        (``nu=0.5``: 6.8e-139 to 1.8e151, 9.1e-13 to 1.7e17; ``nu=2.5``: 1.6e-138 to
        4.0e151, 2.1e-12 to 3.9e17; ``nu=inf``: 7.1e-147 to 3.4e152, 2.3e-16 to 1.2e18),
        the limits rounded inwards; outside, ``ValueError`` names ``length_scale``.
    nu : {0.5, 1.5, 2.5, inf}, default=1.5
        Smoothness: the kernel is ``ceil(nu) - 1`` times differentiable. Infinity is
        ``math.inf`` / ``numpy.inf`` or the string ``"inf"`` (as the estimators take it);
        it is stored as the float ``inf``.

    Attributes
    ----------
    name : str
        ``"matern"``, the name :func:`get_kernel` knows it by; the parameters above are
        read-only attributes too (the kernel is a frozen dataclass).
    aliases : tuple of str
        Other names get_kernel accepts: none.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import Matern
    >>> r = np.sqrt(((X[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1)) / 2.0
    >>> k = Matern(length_scale=2.0, nu=1.5)
    >>> bool(np.allclose(k(X, Z), (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)))
    True
    >>> bool(np.allclose(Matern(length_scale=2.0, nu=0.5)(X, Z), np.exp(-r)))
    True
    >>> Matern(nu="inf") == Matern(nu=np.inf)
    True
    """

    length_scale: float = 1.0
    nu: float = 1.5
    name: ClassVar[str] = "matern"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "length_scale", _check_real("length_scale", self.length_scale, positive=True)
        )
        nu = self.nu
        if isinstance(nu, str):
            if nu != "inf":
                raise TypeError(f"nu must be a real number or the string 'inf', got {nu!r}")
            nu = math.inf
        if isinstance(nu, bool) or not isinstance(nu, numbers.Real):
            raise _not_scalar("nu", nu, "a real number or the string 'inf'")
        if float(nu) not in (0.5, 1.5, 2.5, math.inf):
            raise ValueError(f"nu must be one of 0.5, 1.5, 2.5 or inf, got {nu!r}")
        object.__setattr__(self, "nu", float(nu))
        self.check_dtype(np.float64)

    def _constants(self, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
        ls = self.length_scale
        if self.nu == math.inf:
            expr = "0.5 / length_scale**2 (the Gaussian's gamma)"
            return [("length_scale", expr, t(_matern_gamma(ls)), True)]
        out = [("length_scale", "length_scale", t(ls), True)]
        if self.nu == 0.5:
            return out + [("length_scale", "1 / length_scale", t(1) / t(ls), True)]
        c = 3 if self.nu == 1.5 else 5
        a = t(math.sqrt(c)) / t(ls)  # as the native formulas compute it, and its square
        return out + [
            ("length_scale", f"sqrt({c}) / length_scale", a, True),
            ("length_scale", f"{c} / length_scale**2", a * a, True),
        ]

    def _reach(self) -> tuple[str, str, float, bool] | None:
        ls = self.length_scale
        if self.nu == math.inf:
            return ("length_scale", "0.5 / length_scale**2", _matern_gamma(ls), False)
        c = {0.5: 1.0, 1.5: math.sqrt(3), 2.5: math.sqrt(5)}[self.nu]
        expr = "1 / length_scale" if self.nu == 0.5 else f"sqrt({int(c * c + 0.5)}) / length_scale"
        return ("length_scale", expr, c / ls, True)

    def native_spec(self, n_features: int) -> dict[str, Any]:
        if self.nu == math.inf:
            return self._native("gaussian", gamma=_matern_gamma(self.length_scale))
        kind = {0.5: "matern12", 1.5: "matern32", 2.5: "matern52"}[self.nu]
        return self._native(kind, length_scale=self.length_scale)


@dataclass(frozen=True, repr=False)
class Polynomial(Kernel):
    """Polynomial kernel ``k(x, z) = (gamma * <x, z> + coef0) ** degree``.

    As scikit-learn's :func:`~sklearn.metrics.pairwise.polynomial_kernel`.

    Parameters
    ----------
    degree : int, default=3
        Integer power, at least 1 (at most the core's ``max_degree``).
    gamma : float, default=None
        Positive scale of the inner product; ``None`` means ``1 / n_features`` of the
        data it is evaluated on. A scalar within float64's normal range (float32's for
        float32 data), as :class:`Gaussian`'s.
    coef0 : float, default=1.0
        Constant term, a finite scalar (finite in float32 too, for float32 data). The
        estimators need ``coef0 >= 0``: a negative one makes the kernel indefinite, and
        their fits refuse it; the operators compute any.

    Attributes
    ----------
    name : str
        ``"poly"``, the name :func:`get_kernel` knows it by; the parameters above are
        read-only attributes too (the kernel is a frozen dataclass).
    aliases : tuple of str
        Other names get_kernel accepts: ``"polynomial"``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import Polynomial
    >>> k = Polynomial(degree=2, gamma=0.5)
    >>> k
    Polynomial(degree=2, gamma=0.5)
    >>> bool(np.allclose(k(X, Z), (0.5 * X @ Z.T + 1.0) ** 2))
    True
    """

    degree: int = 3
    gamma: float | None = None
    coef0: float = 1.0
    name: ClassVar[str] = "poly"
    aliases: ClassVar[tuple[str, ...]] = ("polynomial",)

    def __post_init__(self) -> None:
        degree = self.degree
        if isinstance(degree, bool) or not isinstance(degree, numbers.Real):
            raise _not_scalar("degree", degree, "an integer")
        if degree < 1 or (
            not isinstance(degree, numbers.Integral) and not float(degree).is_integer()
        ):
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        if degree > _core.max_degree:
            raise ValueError(f"degree must be at most {_core.max_degree}, got {degree!r}")
        object.__setattr__(self, "degree", int(degree))
        object.__setattr__(self, "gamma", _check_gamma(self.gamma))
        object.__setattr__(self, "coef0", _check_real("coef0", self.coef0))
        self.check_dtype(np.float64)

    def _refuse_indefinite(self) -> None:
        # (gamma * <x, z> + c)^d expands into c^(d-k) <x, z>^k terms: with c < 0 the odd
        # d - k ones enter negatively and the Gram matrices have negative eigenvalues
        # (diabetes, degree 4, coef0 -1: -735 to 872). Every solver then failed far from
        # the cause ("matrix is not positive definite (leading minor 2 of 200)"), and
        # eigenpro returned a model 98% off behind a max_iter warning (a review).
        if self.coef0 < 0:
            raise ValueError(
                f"coef0={self.coef0:g}: the polynomial kernel is not positive "
                "semi-definite for coef0 < 0 (its kernel matrices have negative "
                "eigenvalues), and kernel ridge needs one: the solvers factor the kernel "
                "matrix by Cholesky or follow its leading eigenvectors; use coef0 >= 0"
            )

    def _constants(self, t: type[np.floating]) -> list[tuple[str, str, Any, bool]]:
        return _gamma_constants(self.gamma, t) + [("coef0", "coef0", t(self.coef0), False)]

    def native_spec(self, n_features: int) -> dict[str, Any]:
        return self._native(
            "polynomial",
            gamma=_resolved_gamma(self.gamma, n_features),
            coef0=self.coef0,
            degree=self.degree,
        )


@dataclass(frozen=True, repr=False)
class Linear(Kernel):
    """Linear kernel ``k(x, z) = <x, z>``: kernel ridge with it is ridge regression
    (without an intercept).

    It has no parameters.

    Attributes
    ----------
    name : str
        ``"linear"``, the name :func:`get_kernel` knows it by.
    aliases : tuple of str
        Other names get_kernel accepts: none.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import Linear
    >>> bool(np.allclose(Linear()(X, Z), X @ Z.T))
    True
    """

    name: ClassVar[str] = "linear"

    def native_spec(self, n_features: int) -> dict[str, Any]:
        return self._native("linear")


@dataclass(frozen=True, repr=False)
class ArcCosine(Kernel):
    """Arc-cosine kernel of order 1 (Cho & Saul 2009), the building block of the
    ReLU network's NTK: ``k(x, z) = ||x|| ||z|| (sin t + (pi - t) cos t) / pi``.

    ``t`` is the angle between x and z; the kernel is zero when either is zero. It has
    no gradient (:func:`gramfree.kernel_gradient` raises).

    Parameters
    ----------
    order : int, default=1
        Order of the kernel; only 1 is implemented (an integral scalar, stored as the
        ``int`` 1; an array raises ``TypeError``).

    Attributes
    ----------
    name : str
        ``"arccos"``, the name :func:`get_kernel` knows it by; the parameters above are
        read-only attributes too (the kernel is a frozen dataclass).
    aliases : tuple of str
        Other names get_kernel accepts: ``"arc-cosine"``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    >>> from gramfree.kernels import ArcCosine
    >>> nx = np.linalg.norm(X, axis=1)[:, None]
    >>> nz = np.linalg.norm(Z, axis=1)[None, :]
    >>> t = np.arccos(np.clip(X @ Z.T / (nx * nz), -1.0, 1.0))
    >>> expected = nx * nz * (np.sin(t) + (np.pi - t) * np.cos(t)) / np.pi
    >>> bool(np.allclose(ArcCosine()(X, Z), expected))
    True
    """

    order: int = 1
    name: ClassVar[str] = "arccos"
    aliases: ClassVar[tuple[str, ...]] = ("arc-cosine",)

    def __post_init__(self) -> None:
        order = self.order
        if not isinstance(order, numbers.Real) or isinstance(order, (bool, np.bool_)):
            raise _not_scalar("order", order, "the integer 1")
        if order != 1:
            raise ValueError(f"order must be 1 (the only order implemented), got {order!r}")
        object.__setattr__(self, "order", 1)

    def check_points(self, A: np.ndarray, name: str) -> None:
        # (Kernel.check_points's docstring.) The kernel computes each point's squared
        # norm in A's dtype: a norm beyond sqrt(max) made it inf (inf came back for
        # |x| |z| = 1e145, or NaN), and a nonzero one below sqrt(tiny) lost its digits or
        # became 0 (the point was taken as the zero vector: 0.0 for 1.3e-200). Either is
        # refused naming the row; the kernel is homogeneous, k(s x, z) = s k(x, z), so a
        # rescaled A loses nothing.
        if A.size == 0:
            return
        info = np.finfo(A.dtype)
        high, low = math.sqrt(float(info.max)), math.sqrt(float(info.tiny))
        # Each row's largest magnitude bounds its norm within a factor sqrt(d), without a
        # temporary the size of A; only rows near a limit get their norm computed.
        top = np.maximum(A.max(axis=1), -A.min(axis=1)).astype(np.float64)
        near = np.flatnonzero((top * math.sqrt(A.shape[1]) >= high) | ((top > 0) & (top < low)))
        for i in near:
            unit = A[i].astype(np.float64) / top[i]
            norm = top[i] * math.sqrt(float(unit @ unit))
            if low <= norm < high:
                continue
            how, side = ("overflows", "beyond") if norm >= high else ("underflows", "below")
            raise ValueError(
                f"{name}: the arccos kernel {how} {A.dtype.name} on row {i} of {name} (norm "
                f"{norm:.3g}, {side} {high if norm >= high else low:.3g}: the square the "
                f"kernel computes from leaves {A.dtype.name}'s normal numbers); rescale "
                f"{name}, as k(s x, z) = s k(x, z)"
            )

    def native_spec(self, n_features: int) -> dict[str, Any]:
        return self._native("arccos1")


# The user-facing kernels; together they reach every native kernel (tests check it).
KERNEL_CLASSES: tuple[type[Kernel], ...] = (
    Gaussian,
    Laplacian,
    Matern,
    Polynomial,
    Linear,
    ArcCosine,
)
_BY_NAME: dict[str, type[Kernel]] = {
    name: cls for cls in KERNEL_CLASSES for name in (cls.name, *cls.aliases)
}
KERNEL_NAMES = tuple(sorted(_BY_NAME))


def get_kernel(kernel: str | Kernel = "rbf", **params: Any) -> Kernel:
    """Turn a name and parameters (scikit-learn's names) into a :class:`Kernel`.

    Parameters that are ``None`` are left at their defaults, so estimators can pass
    ``gamma=None, degree=None, ...`` through unchanged; a parameter the kernel does
    not have raises ``ValueError``. The kernel class checks the values (see
    :class:`Kernel`): scalars only (arrays raise ``TypeError``), within float64's range.

    Parameters
    ----------
    kernel : str or Kernel, default="rbf"
        A name from :data:`KERNEL_NAMES`, or a kernel object (returned as it is; then no
        parameter other than None may be given). An object of a :class:`Kernel` subclass
        that does not implement :meth:`Kernel.native_spec` raises ``TypeError``.
    **params
        The kernel's parameters by scikit-learn's names (``gamma``, ``degree``,
        ``coef0``, ``length_scale``, ``nu``, ...); ``None`` means the default. Matern's
        ``nu`` may be ``math.inf`` or the string ``"inf"``, as the estimators take it.

    Returns
    -------
    kernel : Kernel
        The kernel object.

    Examples
    --------
    >>> from gramfree import get_kernel
    >>> get_kernel("poly", degree=2, gamma=None)
    Polynomial(degree=2)
    >>> get_kernel("matern", nu="inf", length_scale=2.0)
    Matern(length_scale=2.0, nu=inf)
    """
    if isinstance(kernel, Kernel):
        if type(kernel).native_spec is Kernel.native_spec:
            raise TypeError(
                f"kernel: {type(kernel).__name__} does not implement native_spec; use a "
                "concrete kernel (Gaussian, Laplacian, Matern, Polynomial, Linear, "
                "ArcCosine) or a name"
            )
        extra = {k: v for k, v in params.items() if v is not None}
        if extra:
            raise ValueError(
                f"kernel is a Kernel object; give its parameters to it, not here: {sorted(extra)}"
            )
        return kernel
    if not isinstance(kernel, str):
        raise TypeError(f"kernel must be a name or a gramfree.kernels.Kernel, got {kernel!r}")
    try:
        cls = _BY_NAME[kernel.lower()]
    except KeyError:
        raise ValueError(f"kernel {kernel!r} is unknown; choose one of {KERNEL_NAMES}") from None
    accepted = {f.name for f in fields(cls)}
    given = {k: v for k, v in params.items() if v is not None}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(f"kernel {kernel!r} takes no parameter(s) {unknown}")
    return cls(**given)
