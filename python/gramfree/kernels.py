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
    (``csrc/gramfree/kernel_table.hpp``)."""

    name: str
    metric: str  # what the kernel is a function of: "dot", "sqdist" or "l1"
    parameters: Mapping[str, str]  # the parameters it uses -> "positive", "finite" or "power"
    needs_norms: bool  # also a function of |x| and |z|
    gradient: str  # how kernel_grad_matvec computes it: "none", "fused", "direct", "constant"
    has_gradient: bool


@functools.cache
def native_kernels() -> Mapping[str, NativeKernel]:
    """The native kernels by name, in the core's order."""
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
    """Base class. Subclasses are frozen dataclasses: equality, hashing, repr and
    pickling come from their fields."""

    name: ClassVar[str] = ""
    aliases: ClassVar[tuple[str, ...]] = ()  # other names get_kernel accepts

    def native_spec(self, n_features: int) -> dict[str, Any]:
        """Parameters for ``gramfree._core`` with defaults resolved for ``n_features``."""
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
        """The kernel matrix ``K(X, Z)``; see :func:`gramfree.kernel_matrix`."""
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
    """``exp(-gamma * ||x - z||^2)``; ``gamma=None`` means ``1 / n_features``."""

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
    """``exp(-gamma * ||x - z||_1)`` (``norm="l1"``, scikit-learn's laplacian_kernel)
    or ``exp(-gamma * ||x - z||_2)`` (``norm="l2"``)."""

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
    """Matern kernel parametrised as scikit-learn's: ``nu`` in {0.5, 1.5, 2.5, inf}
    (``inf`` is the Gaussian with ``gamma = 1 / (2 length_scale^2)``)."""

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
    """``(gamma * <x, z> + coef0) ** degree`` with an integer ``degree >= 1``."""

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
    """``<x, z>``."""

    name: ClassVar[str] = "linear"

    def native_spec(self, n_features: int) -> dict[str, Any]:
        return self._native("linear")


@dataclass(frozen=True, repr=False)
class ArcCosine(Kernel):
    """Arc-cosine kernel of order 1 (Cho & Saul 2009), the building block of the
    ReLU network's NTK: ``||x|| ||z|| (sin t + (pi - t) cos t) / pi`` where ``t`` is
    the angle between x and z (zero when either is zero)."""

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
