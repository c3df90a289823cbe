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


def _check_real(name: str, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def _check_gamma(gamma: Any) -> float | None:
    return None if gamma is None else _check_real("gamma", gamma, positive=True)


def _resolved_gamma(gamma: float | None, n_features: int) -> float:
    return 1.0 / n_features if gamma is None else gamma


@dataclass(frozen=True)
class Kernel:
    """Base class of the kernels: :class:`Gaussian` (alias :data:`RBF`),
    :class:`Laplacian`, :class:`Matern`, :class:`Polynomial`, :class:`Linear` and
    :class:`ArcCosine`.

    Subclasses are frozen dataclasses: equality, hashing, repr and pickling come from
    their fields. Calling a kernel, ``kernel(X, Z)``, gives the matrix ``K(X, Z)``; any
    gramfree function or estimator taking ``kernel=`` accepts one in place of a name.

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
    """

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()  # other names get_kernel accepts

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
        data it is evaluated on.

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
        is evaluated on.
    norm : {"l1", "l2"}, default="l1"
        The norm of ``x - z``.

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
        if self.norm not in ("l1", "l2"):
            raise ValueError(f"norm must be 'l1' or 'l2', got {self.norm!r}")

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
    ``exp(-r^2 / 2)``.

    Parameters
    ----------
    length_scale : float, default=1.0
        Positive length scale.
    nu : {0.5, 1.5, 2.5, inf}, default=1.5
        Smoothness: the kernel is ``ceil(nu) - 1`` times differentiable.

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
    """

    length_scale: float = 1.0
    nu: float = 1.5
    name: ClassVar[str] = "matern"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "length_scale", _check_real("length_scale", self.length_scale, positive=True)
        )
        if isinstance(self.nu, bool) or not isinstance(self.nu, numbers.Real):
            raise TypeError(f"nu must be a real number, got {type(self.nu).__name__}")
        if float(self.nu) not in (0.5, 1.5, 2.5, math.inf):
            raise ValueError(f"nu must be one of 0.5, 1.5, 2.5 or inf, got {self.nu!r}")
        object.__setattr__(self, "nu", float(self.nu))

    def native_spec(self, n_features: int) -> dict[str, Any]:
        if self.nu == math.inf:
            return self._native("gaussian", gamma=0.5 / self.length_scale**2)
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
        data it is evaluated on.
    coef0 : float, default=1.0
        Constant term.

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
            raise TypeError(f"degree must be an integer, got {type(degree).__name__}")
        if not float(degree).is_integer() or degree < 1:
            raise ValueError(f"degree must be an integer >= 1, got {degree!r}")
        if degree > _core.max_degree:
            raise ValueError(f"degree must be at most {_core.max_degree}, got {degree!r}")
        object.__setattr__(self, "degree", int(degree))
        object.__setattr__(self, "gamma", _check_gamma(self.gamma))
        object.__setattr__(self, "coef0", _check_real("coef0", self.coef0))

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
        Order of the kernel; only 1 is implemented.

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
        if self.order != 1 or isinstance(self.order, bool):
            raise ValueError(f"order must be 1 (the only order implemented), got {self.order!r}")

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
    not have raises ``ValueError``.

    Parameters
    ----------
    kernel : str or Kernel, default="rbf"
        A name from :data:`KERNEL_NAMES`, or a kernel object (returned as it is; then no
        parameter other than None may be given).
    **params
        The kernel's parameters by scikit-learn's names (``gamma``, ``degree``,
        ``coef0``, ``length_scale``, ``nu``, ...); ``None`` means the default.

    Returns
    -------
    kernel : Kernel
        The kernel object.

    Examples
    --------
    >>> from gramfree import get_kernel
    >>> get_kernel("poly", degree=2, gamma=None)
    Polynomial(degree=2)
    """
    if isinstance(kernel, Kernel):
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
