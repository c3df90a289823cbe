"""What every solver returns, and the pieces they share."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.linalg as sla

from .. import _core
from .._log import say
from ..kernels import Kernel
from ..operators import KernelOperator, _n_threads, _native


@dataclass
class SolverResult:
    """A fitted kernel machine ``f(x) = K(x, centers) @ coef``."""

    centers: np.ndarray  # (m, d)
    coef: np.ndarray  # (m, t)
    n_iter: int
    loss_curve: list[float]
    converged: bool
    info: dict[str, Any] = field(default_factory=dict)
    # The centres' rows in the training data (sorted), or None when every row is a centre:
    # what lets a prediction's contributions be traced back to training examples.
    center_indices: np.ndarray | None = None
    # (t,): an unpenalised intercept per output, f(x) = K(x, centers) @ coef + intercept
    # (the logistic loss's); None for the square loss's models, which have none.
    intercept: np.ndarray | None = None


def iterations_run(result: SolverResult) -> str:
    """``"N iterations run"`` for a convergence warning, with the share a solver ran in a
    fit it discarded (nystrom-pcg's retries): ``n_iter`` counts both, so it can exceed
    ``max_iter``."""
    discarded = int(result.info.get("discarded_iterations", 0))
    text = f"{result.n_iter} iterations run"
    return text + (f", {discarded} of them in a fit it discarded" if discarded else "")


@dataclass
class Problem:
    """The weighted kernel ridge objective shared by all solvers:
    ``sum_i w_i (f(x_i) - y_i)^2 + alpha * ||f||^2_H`` (scikit-learn's KernelRidge with
    ``sample_weight``)."""

    X: np.ndarray  # (n, d), float32 or float64, C-contiguous
    Y: np.ndarray  # (n, t), X's dtype
    kernel: Kernel
    alpha: float
    sample_weight: np.ndarray | None  # (n,) or None
    n_jobs: int | None
    device: str = "cpu"  # resolved: "cpu" or "cuda:N" (gramfree.device)
    # The precision of the kernel products (estimators' ``kernel_precision``): None means
    # the data's dtype. float32 for float64 data halves the products' cost; the solvers'
    # own state (CG vectors, EigenPro's iterate, the objective) stays float64.
    kernel_dtype: np.dtype = None  # type: ignore[assignment]  # None: __post_init__ resolves it

    def __post_init__(self) -> None:
        kd = np.dtype(self.kernel_dtype or self.X.dtype)
        self.kernel_dtype = kd
        # X in the products' dtype, cast once (the solvers pass X itself on every pass).
        self._X_kernel = np.ascontiguousarray(self.X, dtype=kd)

    def in_data_precision(self) -> Problem:
        """The same problem with products in the data's own dtype (the exact solvers)."""
        if self.kernel_dtype == self.X.dtype:
            return self
        return replace(self, kernel_dtype=self.X.dtype)

    def in_float64(self) -> Problem:
        """The same problem with float64 kernel products whatever the data's dtype: the
        refinements' exact passes and the float32 solvers' fallbacks."""
        if self.kernel_dtype == np.float64:
            return self
        return replace(self, kernel_dtype=np.dtype(np.float64))

    def _kernel_array(self, A: np.ndarray) -> np.ndarray:
        if A is self.X:
            return self._X_kernel
        return np.ascontiguousarray(A, dtype=self.kernel_dtype)

    def operator(self, A: np.ndarray, B: np.ndarray | None = None) -> KernelOperator:
        """``K(A, B)`` in the products' precision (``kernel_dtype``)."""
        return KernelOperator(
            self._kernel_array(A),
            None if B is None else self._kernel_array(B),
            self.kernel,
            n_jobs=self.n_jobs,
            device=self.device,
        )

    def matvec(self, A: np.ndarray, B: np.ndarray, V: np.ndarray) -> np.ndarray:
        """``K(A, B) @ V`` for arrays the solver already holds, in the products'
        precision, straight to the native operator: no re-validation inside a loop."""
        dtype = self.kernel_dtype
        V = np.ascontiguousarray(V, dtype=dtype)
        fn, where = _native("matvec", self.device, _n_threads(self.n_jobs))
        return fn(
            self._kernel_array(A),
            self._kernel_array(B),
            V if V.ndim == 2 else V.reshape(-1, 1),
            **self.kernel.native_spec(self.X.shape[1]),
            **where,
        )

    @property
    def weights(self) -> np.ndarray:
        if self.sample_weight is None:
            return np.ones(self.X.shape[0], dtype=self.X.dtype)
        return self.sample_weight

    @property
    def weight_sum(self) -> float:
        return float(self.X.shape[0] if self.sample_weight is None else self.sample_weight.sum())


def center_rows(
    rng: np.random.Generator,
    n: int,
    m: int,
    sample_weight: np.ndarray | None = None,
    *,
    heavy: np.ndarray | None = None,
) -> np.ndarray:
    """Sorted indices of ``m`` centre rows of ``n``, drawn without replacement among the
    rows of positive weight (all of them when ``m`` reaches their number). A zero-weight
    row is no data (scikit-learn's convention: weight 0 is the row removed), so it takes
    no centre's place; without zero weights the draw is the plain one over all rows (also
    without any positive one: the caller's checks refuse such weights, naming them).

    ``heavy``: rows that are centres whatever the draw (:func:`heavy_rows`, fewer than
    ``m``), the rest drawn among the others; with none the draw is the plain one, row for
    row. The square loss's Nystrom fits pass them, and Nystrom-PCG's preconditioner then
    counts those rows by their own weight (:func:`preconditioner_weights`)."""
    rows = None if sample_weight is None else np.flatnonzero(sample_weight > 0)
    if heavy is not None and heavy.size:
        pool = np.arange(n) if rows is None else rows
        others = np.setdiff1d(pool, heavy, assume_unique=True)
        drawn = others[rng.choice(others.size, size=m - heavy.size, replace=False)]
        return np.sort(np.concatenate([heavy, drawn]))
    if rows is not None and 0 < rows.size < n:
        if m >= rows.size:
            return rows
        return rows[np.sort(rng.choice(rows.size, size=m, replace=False))]
    return np.sort(rng.choice(n, size=m, replace=False)) if m < n else np.arange(n)


# A heavy row also weighs at least this many times the mean weight of the rows lighter
# than the m largest (those no centre could be anyway). By the share alone mild weights
# made rows heavy once m neared n (the heavier rows of uniform(0.5, 2) weights at m = 300
# of 442: a review), changing centres for no gain. Against the mean of all positive
# weights, a large heavy group raised its own bar (30% of diabetes at 1e6: none heavy,
# and max_iter at 78 times the optimum where they converged; a review).
HEAVY_MEAN = 4.0


def apart_floor(outside: float, m: int, positive: int) -> float:
    """``HEAVY_MEAN`` times the mean of the positive weights below the ``m`` largest
    (``outside``: their sum): :func:`heavy_count`'s second bar, and the one by which
    Nystrom-PCG's preconditioner counts a row by itself (:func:`apart_rows`)."""
    return HEAVY_MEAN * float(outside) / max(positive - m, 1)


def _top_weights(w: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray, float]:
    """``(rows, weights, outside)``: the m largest of the weights ``w`` (relative to the
    largest), in decreasing order, and the sum of the others."""
    w = w / float(w.max())
    top = np.argpartition(w, w.size - m)[w.size - m :]
    top = top[np.argsort(-w[top], kind="stable")]
    outside = np.ones(w.size, dtype=bool)
    outside[top] = False
    return top, w[top], float(np.sum(w[outside]))


def heavy_count(top_weights: np.ndarray, outside: float, m: int, positive: int) -> int:
    """How many of the largest weights (``top_weights``: the ``m`` largest, in decreasing
    order; ``outside``: the sum of all the others; ``positive``: how many weights are
    positive) each weigh at least an equal share of what is left over the centres left,
    ``w_k (m - k) >= w_k + w_(k+1) + ... + outside`` (survey sampling's certainty units),
    and more than ``HEAVY_MEAN`` times the mean of the others' positive weights. Such a row carries more of
    the objective than a drawn centre stands for, and a uniform draw would miss it with
    probability about ``1 - m / n``. What is left is summed from the light end, not
    subtracted from the total: five rows at 1e18 left a total from which the other rows'
    weight had rounded away, and every row was "heavy" (a review). Ties are all in or all
    out whatever their order (one left out has ``w_k (m - k) < left``, so the next, of
    the same weight, has too: ``w_k (m - k - 1) < left - w_k``)."""
    top = np.asarray(top_weights, dtype=np.float64)[:m]
    # left[k]: top[k] + top[k+1] + ... + outside, summed smallest first
    left = np.cumsum(np.concatenate([[float(outside)], top[::-1]]))[::-1][: top.size]
    floor = apart_floor(outside, top.size, positive)
    for k in range(top.size):
        if not (top[k] > 0 and top[k] > floor and top[k] * (m - k) >= left[k]):
            return k
    return top.size


def heavy_rows(sample_weight: np.ndarray | None, m: int) -> np.ndarray | None:
    """The rows of :func:`heavy_count` (indices, sorted); None without weights, or for
    ``m`` at or beyond the rows of positive weight (every such row is a centre anyway).
    The weights are taken relative to their largest (1e306 would overflow the sums)."""
    below = _weights_below(sample_weight, m)
    if below is None:
        return None
    w, positive = below
    top, top_w, outside = _top_weights(w, m)
    return np.sort(top[: heavy_count(top_w, outside, m, positive)])


def _weights_below(sample_weight: np.ndarray | None, m: int) -> tuple[np.ndarray, int] | None:
    """``(w, positive)``: the weights as float64 and how many are positive, where some
    positive one lies below the ``m`` largest; else None (no weights, or ``m`` at or
    beyond the rows of positive weight)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    positive = int(np.count_nonzero(w > 0))
    return None if m <= 0 or m >= positive else (w, positive)


def apart_rows(sample_weight: np.ndarray | None, m: int) -> np.ndarray | None:
    """The rows Nystrom-PCG's preconditioner counts by themselves for ``m`` centres
    (sorted; None without weights): every row of positive weight where there are at most
    ``m`` of them and their weights span more than ``HEAVY_MEAN`` (none within it), else
    those of the m largest weights over :func:`apart_floor`, heavy
    (:func:`heavy_rows`) or not. A centre among them stands for its own weight, the
    others add their own kernel columns (:func:`centre_shares`): a group of more such
    rows than a centre's share can count (tied, or nearly) was left an even share, which
    it defeats (breast cancer, 29 rows at 5e5 among 569 and 29 centres given: 1.78 times
    the optimum, silently; a review)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    weighted = np.flatnonzero(w > 0)
    if m <= 0 or not weighted.size:
        return None
    if weighted.size <= m:
        # Within HEAVY_MEAN of each other they keep Falkon's even share, row for row as
        # before and as without weights (all ones had become an exact preconditioner,
        # other coefficients than no weights; a review).
        return weighted if uneven_weights(w) else None
    top, top_w, outside = _top_weights(w, m)
    return np.sort(top[top_w > apart_floor(outside, m, weighted.size)])


def outnumbered(sample_weight: np.ndarray | None, m: int) -> bool:
    """Whether some row below the ``m`` largest weights still weighs over
    :func:`apart_floor`: more such rows than the preconditioner can count by themselves
    (:func:`apart_rows`), the others left an even share. ``auto`` takes the one-pass
    solve there."""
    below = _weights_below(sample_weight, m)
    if below is None:
        return False
    w, positive = below
    top, _, outside = _top_weights(w, m)
    rest = np.delete(w, top) / float(w.max())
    return float(rest.max(initial=0.0)) > apart_floor(outside, m, positive)


def weight_span(sample_weight: np.ndarray | None) -> float:
    """The positive weights' largest over their smallest (1.0 without weights or none
    positive): what decides whether Nystrom-PCG watches its objective
    (:func:`uneven_weights`) and whether ``auto`` leaves PCG out
    (``solvers.auto.WEIGHT_SPAN_PCG``)."""
    if sample_weight is None:
        return 1.0
    w = np.asarray(sample_weight, dtype=np.float64)
    positive = w[w > 0]
    return float(positive.max()) / float(positive.min()) if positive.size else 1.0


def uneven_weights(sample_weight: np.ndarray | None) -> bool:
    """Whether the positive weights span more than ``HEAVY_MEAN`` (:func:`weight_span`):
    where Nystrom-PCG watches its objective as well as its residual (``falkon_cg``).
    Within that factor no row can be heavy (:func:`heavy_count`)."""
    return weight_span(sample_weight) > HEAVY_MEAN


def preconditioner_weights(
    at_centres: np.ndarray, own: np.ndarray | None, rest: float, exact: float = 0.0
) -> np.ndarray | None:
    """The weight each centre stands for in Falkon's preconditioner, ``K_nM^T W K_nM ~
    K_MM diag(D) K_MM``, relative to Falkon's even share: ``D_j M / sum D`` (M,), or None
    for the even share itself. ``at_centres``: the centres' own weights (0 for a centre
    that is no row of the data); ``own`` (bool, M): the centres that stand for their own
    weight (heavy rows: :func:`heavy_rows`; all of them where every row of positive
    weight is a centre; None or none: Falkon's even share); ``rest``: the weight of every
    row not among those (summed apart: a total less the heavy rows' loses it to
    rounding). The other centres share the rest evenly, as Falkon's centres share all of
    it; with every weighted row a centre the approximation is exact (the preconditioned
    system is the identity plus the ridge; a centre of weight 0 then stands for none).
    Where no row is heavy and some weighted row is no centre this is Falkon's
    preconditioner. Five diabetes rows at weight 1e6 gave the even share a condition
    number of about 1e6, and CG claimed tol after one iteration at 1300 times the
    optimum's objective (R^2 -3.9 where the solution has 0.99 on its training rows).

    ``exact``: the weight of the rows apart (:func:`apart_rows`) that are no centre,
    which the preconditioner counts by their own kernel columns (``falkon_cg``'s
    ``heavy_columns``): the shares are then relative to the total with it, and the
    centres share ``rest`` alone."""
    own = np.zeros(at_centres.shape, dtype=bool) if own is None else own & (at_centres > 0)
    if not own.any() and not exact > 0:
        return None
    shares = np.where(own, at_centres, 0.0).astype(np.float64)
    drawn = int(shares.size - own.sum())
    if drawn:
        shares[~own] = max(float(rest), 0.0) / drawn
    total = float(shares.sum()) + max(float(exact), 0.0)
    if not (np.isfinite(total) and total > 0):
        return None
    return shares * (shares.size / total)


def centre_shares(
    sample_weight: np.ndarray | None, rows: np.ndarray | None, m: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(shares, missing)`` for ``m`` centres of in-memory data weighted by
    ``sample_weight``: :func:`preconditioner_weights`, and the rows apart
    (:func:`apart_rows`) that are no centre, which the preconditioner then counts by their
    own kernel columns (None: none). ``rows``: the centres' rows (-1: a centre that is no
    row of the data), or None for centres given as points. Without weights, or without
    rows apart: ``(None, None)``, Falkon's even share."""
    if sample_weight is None:
        return None, None
    w = np.asarray(sample_weight, dtype=np.float64)
    rows = np.full(m, -1) if rows is None else np.asarray(rows)
    found = rows >= 0
    at_centres = np.where(found, w[np.where(found, rows, 0)], 0.0)
    weighted = np.flatnonzero(w > 0)
    if np.isin(weighted, rows[found]).all():  # every weighted row a centre: exact
        return preconditioner_weights(at_centres, at_centres > 0, 0.0), None
    # Drawn, or given as rows or points, or a warm start's (rows apart among them or not).
    # With at least as many centres as weighted rows (given centres: drawn ones would be
    # every such row) each weighted row is apart, and the preconditioner exact (an even
    # share for five rows at 1e6 among 100 weighted rows, 120 points: 23 times the
    # optimum, silently; a review).
    apart = apart_rows(w, m)
    if apart is None or not apart.size:
        return None, None
    own = found & np.isin(rows, apart) & (at_centres > 0)
    missing = np.setdiff1d(apart, rows[own])
    others = np.ones(w.size, dtype=bool)
    others[rows[own]] = False
    others[missing] = False
    shares = preconditioner_weights(
        at_centres, own, float(np.sum(w[others])), float(np.sum(w[missing]))
    )
    return shares, (missing if missing.size and shares is not None else None)


def physical_bytes() -> float:
    """Physical memory, not what is free right now: the same data must make the same
    choice whatever the page cache holds at the moment."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return 8.0 * 2**30


def proc_number(path: str, key: str = "", scale: int = 1) -> float | None:
    """The first number after ``key`` on a line of a /proc or /sys file (times
    ``scale``); None where it cannot be read or says "max" (no limit)."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key):
                    word = line[len(key) :].split()[0]
                    return None if word == "max" else float(word) * scale
    except (OSError, ValueError, IndexError):
        pass
    return None


def memory_bytes() -> float:
    """The memory a fit plans for: physical memory, or less where the process is held to
    less, by its cgroup's ``memory.max`` (a container's memory) or by its address-space
    limit less the address space already in use (``ulimit -v``). Limits, not what is free
    right now: the same data make the same choice whatever the page cache holds. Sized
    by physical memory alone, auto chose direct's 2 GiB matrix under a 1.5 GiB limit,
    where pcg fitted in 622 MiB (a review)."""
    room = [physical_bytes()]
    cgroup = proc_number("/sys/fs/cgroup/memory.max")
    if cgroup is not None:
        room.append(cgroup)
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        size = proc_number("/proc/self/status", "VmSize:", 1024)
        if soft != resource.RLIM_INFINITY and size is not None:
            room.append(soft - size)
    except (ImportError, OSError, ValueError):  # pragma: no cover - non-POSIX
        pass
    return max(0.0, min(room))


def kernel_diagonal(kernel: Kernel, X: np.ndarray) -> np.ndarray:
    """``k(x, x)`` for each row, float64: the core's formula of the kernel at a point's
    metric with itself (``|x|^2`` or a zero distance), no kernel matrix needed."""
    return _core.kernel_diagonal(np.ascontiguousarray(X), **kernel.native_spec(X.shape[1]))


class Progress:
    """Progress for ``verbose``: a tqdm bar when tqdm is installed, plain lines otherwise."""

    def __init__(self, verbose: int | bool, total: int, desc: str) -> None:
        self.verbose = bool(verbose)
        self.bar = None
        self.desc = desc
        if self.verbose:
            try:
                from tqdm.auto import tqdm

                self.bar = tqdm(total=total, desc=desc, file=sys.stderr, leave=False)
            except ImportError:
                self.bar = None

    def update(self, it: int, loss: float, extra: str = "") -> None:
        if not self.verbose:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(f"objective={loss:.6g} {extra}".strip())
        else:
            say(f"[{self.desc}] iter {it}: objective={loss:.6g} {extra}".rstrip())

    def close(self, message: str = "") -> None:
        if self.bar is not None:
            self.bar.close()
        if self.verbose and message:
            say(f"[{self.desc}] {message}")


Callback = Callable[[int, float], None]

Monitor = Callable[..., bool]
"""Called by an iterative solver after each iteration with (iterations so far, the
current coefficients on the centres, m x t, the data's dtype), and ``intercept=`` the
intercepts (t,) by a solver that fits them (the logistic loss's); a true return stops the
solver there. The estimators' early stopping
(:class:`gramfree.estimators._early_stopping.ValidationMonitor`) scores held-out data with
it and keeps the best iterate itself."""


def problem_rows(problem: Problem, rows: np.ndarray) -> Problem:
    """The problem on a subset of its rows (the same kernel, alpha and precision)."""
    return replace(
        problem,
        X=np.ascontiguousarray(problem.X[rows]),
        Y=np.ascontiguousarray(problem.Y[rows]),
        sample_weight=None if problem.sample_weight is None else problem.sample_weight[rows],
    )


def weight_exponent(sample_weight, alphas, top: float | None = None) -> int:
    """The even power of two ``e`` by which dividing ``sample_weight`` and every alpha
    brings the largest weight near 1, where it lies beyond 2^+-64 (else 0). Every
    objective here is ``sum w loss + alpha penalty``, whose minimiser their ratio alone
    fixes, and a power of four is exact in the weights, the alphas and the square roots of
    the weights: the same model, with the weighted sums inside float64's range (a review:
    weights of 1e300 made EigenPro fail as "V: contains NaN or infinity", 1e305 the
    Nystrom solvers as "B:" or "U:"). The positive alphas keep within 2^+-1000: weights of
    1e-310 with alpha 1 overflowed it (OverflowError), and an alpha pushed below the
    normal numbers failed in pcg; the weights then keep part of their scale, their ratio to
    alpha being that extreme. ``top``: the largest weight where it is known (a dask
    reduction)."""
    if sample_weight is None:
        return 0
    if top is None:
        top = float(np.max(sample_weight, initial=0.0))
    if not (top > 0.0 and math.isfinite(top)) or 2.0**-64 <= top <= 2.0**64:
        return 0
    k = round(math.log2(top) / 2.0)
    positive = [float(a) for a in np.ravel(alphas) if a > 0.0]
    if positive:
        k = max(k, math.ceil((math.log2(max(positive)) - 1000.0) / 2.0))
        k = min(k, math.floor((math.log2(min(positive)) + 1000.0) / 2.0))
    return 2 * k


def weights_in_range(sample_weight, alpha: float, top: float | None = None):
    """``(sample_weight, alpha)`` divided by 2^``weight_exponent`` (:func:`weight_exponent`:
    the same model with the weighted sums in range). A ``sample_weight`` that is not a
    numpy array (dask's) is scaled lazily."""
    e = weight_exponent(sample_weight, (alpha,), top)
    if e == 0:
        return sample_weight, alpha
    if isinstance(sample_weight, np.ndarray):
        return np.ldexp(sample_weight, -e), math.ldexp(alpha, -e)
    return sample_weight * math.ldexp(1.0, -e), math.ldexp(alpha, -e)


# Kernel ridge has no intercept: a target far from zero beside its spread (an offset)
# puts nearly all of |W^1/2 y| in the offset, and residuals relative to it bound the
# predictions only to tol times the offset (cps1988, standardised y + 1e4, 5000 rows: pcg
# and EigenPro claimed tol with test predictions 1.35 and 0.15 times y's spread off the
# exact ones; + 1e2, nystrom-pcg 0.028 times). Where |W^1/2 (y - mean_w y)| times this is
# smaller, residuals are relative to it instead: the predictions' RMS error within
# OFFSET_SPREAD tol of y's spread (|W^1/2 (f - f*)| <= |r| in the square system). At most
# sqrt(OFFSET_SPREAD^2 - 1) = 1.7 spreads of offset (one-hot targets: a class share up to
# 0.75) leave the norm as it was.
OFFSET_SPREAD = 2.0


def residual_scale(Y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per target column, ``(scale, cap)``: the norm the square system's residual is
    relative to, ``|W^1/2 y|``, or ``OFFSET_SPREAD |W^1/2 (y - mean_w y)|`` where that is
    smaller and not zero (a constant target has only its size; 1 for an all-zero
    column); and the most the objective's tolerances are relative to (sum w times it),
    there the best constant model's objective ``|W^1/2 (y - mean_w y)|^2``, else inf."""
    sw = np.sqrt(w)[:, None]
    norms = np.linalg.norm(sw * Y, axis=0)
    mean = (w @ Y) / w.sum()
    centred = np.linalg.norm(sw * (Y - mean), axis=0)
    offset = (centred > 0) & (OFFSET_SPREAD * centred < norms)
    scale = np.where(offset, OFFSET_SPREAD * centred, norms)
    scale[scale == 0] = 1.0
    return scale, np.where(offset, centred**2, np.inf)


def objective_certified(
    r: np.ndarray,
    c: np.ndarray,
    Kc: np.ndarray,
    b: np.ndarray,
    alpha: float,
    tol: float,
    kernel_gap: np.ndarray | None = None,
    cap: np.ndarray | None = None,
) -> bool:
    """Whether, per output, the ridge objective's excess over its optimum is within
    ``tol`` of the objective (and 1e-14 of the zero model's: a relative residual of 1e-7;
    1e-12 let 0.08% through where the heavy rows, fitted almost exactly, hold nearly all
    of ``|W^1/2 y|^2``). With ``B = W^1/2 K W^1/2``,
    ``A = B + alpha I`` and the residual ``r = b - A c'``, the objective (times sum w) is
    ``|B c' - b|^2 + alpha c'^T B c'`` and its excess ``r^T A^-1 B r <= |r|^2`` (A^-1 B's
    eigenvalues lie in [0, 1)): a bound, whatever the weights, where the relative
    residual's tol bounds nothing for the light rows. ``kernel_gap``: per output,
    ``r^T B r / alpha``, also a bound (``A^-1 B <= B / alpha``), and the smaller where
    the residual lies along B's small eigenvalues, which barely move the objective
    (EigenPro: an optimal fit, 1.0000005 times, ran to max_iter on |r|^2 alone; a
    review). ``cap``: :func:`residual_scale`'s, per output the most the excess is
    relative to (an offset in y makes the objective mostly the offset's)."""
    value = np.sum((Kc - b) ** 2, axis=0) + alpha * np.einsum("ij,ij->j", c, Kc)
    value = np.maximum(value, 0.0)
    if cap is not None:
        value = np.minimum(value, cap)
    excess = np.einsum("ij,ij->j", r, r)
    if kernel_gap is not None:
        excess = np.minimum(excess, kernel_gap)
    # The floor too is of y's spread where an offset dominates |b|: of |b|^2 it alone let
    # 0.1-0.5% through at tol 1e-8 (wine + 1e2 and + 1e4, alpha 1e-10; a review).
    floor = np.sum(b * b, axis=0) if cap is None else np.minimum(np.sum(b * b, axis=0), cap)
    return bool(np.all(excess <= tol * value + 1e-14 * floor))


# A rise of CG's energy (kernel_pcg) or objective (nystrom_pcg) beyond this share of it in
# one step is a breakdown of a float32 recursion, not its rounding (which lets it wiggle:
# a threshold of 1e-12 stopped digits' fit after 3 iterations that went on to tol).
BREAKDOWN_RISE = 1e-3

# Kernel values per block of widened_blocks (float64: 32 MiB).
WIDENED_BLOCK_ELEMENTS = 1 << 22


def widened_blocks(
    operator_for: Callable[[int, int], KernelOperator], n: int, m: int, *, cpu: bool = True
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, K[start:stop])`` over the n rows of an n x m kernel, each block's
    values computed by ``operator_for(start, stop)`` in its own precision and stored
    widened to float64 (one reused buffer on the CPU), for sums in float64 arithmetic.

    Why: float32 products round their sums afresh at every pass, and where the
    coefficients cancel (wide kernels, small alpha) that rounding is no longer small
    against the result, so a solver's recursion converges to the wrong system; float32
    kernel values summed in float64 land where float64 kernel values do (the values'
    rounding is one fixed, small perturbation of the model). The solvers' checks of their
    residual take these passes (:mod:`.nystrom_pcg`, :mod:`.kernel_pcg`)."""
    rows = max(1, min(n, WIDENED_BLOCK_ELEMENTS // max(m, 1)))
    buffer = np.empty((rows, m)) if cpu else None
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        op = operator_for(start, stop)
        if buffer is not None:
            yield start, stop, op.to_dense(out=buffer[: stop - start])
        else:
            yield start, stop, np.asarray(op.to_dense(), dtype=np.float64)


def symmetric_eigh(A: np.ndarray, *, eigvals_only: bool = False, subset_by_index=None):
    """``scipy.linalg.eigh(A)`` (float64, symmetric), by another LAPACK driver where the
    default one fails: dsyevr stops with "Internal Error" on some kernel matrices when
    OpenBLAS runs on one thread (digits, 1000 standardised rows, rbf gamma 100/64: an
    EigenPro fit with n_jobs=1 crashed; 8 of 60 narrow-kernel subsets of digits, where
    divide and conquer and the QR driver succeed). Then divide and conquer ("evd"), or
    bisection ("evx") for a subset."""
    kwargs = dict(eigvals_only=eigvals_only, subset_by_index=subset_by_index, check_finite=False)
    try:
        return sla.eigh(A, **kwargs)
    except np.linalg.LinAlgError:
        return sla.eigh(A, driver="evd" if subset_by_index is None else "evx", **kwargs)
