"""The Nystrom ridge by QR of its weighted, whitened features, heaviest rows first: for
sample weights that span beyond what the one-pass solver's Gram resolves in float64.

The one-pass solver (:mod:`.nystrom_direct`) forms ``S = F^T F`` with ``F = W^1/2 K_nM
P`` (P whitens K_MM): each entry is a sum over the rows, rounded to eps of the heaviest
rows' part, so the lightest rows' part is resolved only to about the weights' span times
eps, amplified by the whitening (a review measured 4.6e-4 of the predictions at a span of
1e10 and 4e-5 at 1e9, silently), and beyond 1 / eps it is lost: one row at 1e50 among rows
at 1 made both of its passes fail, and the Nystrom-PCG it fell back to returned zeros.

Householder QR of the least-squares rows ``[F, W^1/2 Y; sqrt(alpha) I, 0]`` taken in
decreasing order of their norms, with column pivoting, is row-wise backward stable (Powell
and Reid 1969; Cox and Higham 1998): each row carries its own rounding, whatever its
weight. The rows go in blocks, each stacked under the R of those before it, in the order
of their exact norms (a first pass: a bound such as ``sqrt(w_i k(x_i, x_i))`` misplaced
heavy rows far from every centre, 3.7e-6 off where the exact order gave 1.6e-14; a
review).

The whitening: ``P = L^-T`` for a well-conditioned K_MM. Where K_MM is singular to
rounding (repeated centres; its factor jittered), ``L^-T`` amplifies the heavy rows'
rounding into K_MM's null directions, where it became data (duplicated centres, weights
spanning 1e40: predictions off by 0.9 to 4.5; a review): there P is K_MM's range,
``U_r Lambda_r^-1/2`` over the eigenvalues above its rounding, the Nystroem features'
basis (the penalty ``a^T K_MM a = |beta|^2`` on it, without jitter).

The light tail: the rows of least bound ``w k(x, x)`` (at least their squared norm) whose
bounds sum to at most ``TAIL_RESOLUTION * alpha / eps`` enter after the heavier rows as
one block, the Cholesky factor of their Gram plus alpha I (summed by ``syrk`` of their
whitened features, each row rounded by itself). That Gram's rounding, eps times its
trace, is then at most 1e-7 of alpha, the smallest eigenvalue of the system it joins, so
it moves the solution by at most about that much of itself. This differs from the tiers
tried before (many rows of like norms entering as their Gram's square root at every
level): their Gram's rounding was measured against the lighter rows below them, not
against alpha, and a poorly spread tier lost directions (recency weights on a 1-D series,
5e-4 off at a span of 1e8 and 1.9 at 1e30, where row by row held 1e-13 to 2e-8; a review).
On such weights the tail takes only the lightest rows: 4e-10 of the exact rational
solution at a span of 1e8 (tests/test_nystrom_direct.py).

Cost: the heavy rows' norms (a kernel pass and the whitening over them only), then per
block of b of them about ``2 (M + b) (M + t)^2`` flops; the tail: the one-pass Gram's
block pass over its rows (n M^2, the weights scaled by a power of two near sqrt(alpha)),
and one QR of 2M x M. Where the heavy rows are few (``benchmarks/bench_weight_span.py``,
n = 40000, M = 1000, one row in a hundred at 1e9) that is 1.7-2.1x the unweighted fit;
row by row it was 11.6x, and scikit-learn's ``Nystroem + Ridge`` took 0.28x ours (now
1.9-2.1x).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from ..linalg import solve_triangular
from ._common import Problem, kernel_diagonal
from .nystrom_direct import _gram_pass, _operator

# Eigenvalues of K_MM at most this many times eps * M * its largest are its null space.
NULL_EIGENVALUE = 1.0
# The lightest rows enter as one block, the Cholesky factor of their Gram plus alpha I,
# where the Gram's rounding (eps times its trace, a bound on its largest eigenvalue) is at
# most this much of alpha, the smallest eigenvalue of the system it joins: the solution
# then moves by at most about this much of itself (a perturbation of the normal
# equations, bounded by the system's smallest eigenvalue). Heavier rows go one by one.
TAIL_RESOLUTION = 1e-7


def _distinct_rows(problem: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, Y, root_w)``: the distinct rows of positive weight, each with the square root
    of its copies' total weight and their weighted mean target (float64): the same
    minimiser (the objective moves by a constant). Copies with different targets, both
    heavy, left the QR the second copy's remainder, eps times its row, against the
    targets' difference times its root weight: a spurious heavy constraint (one diabetes
    row twice, targets +1 and -1, at 1e16: 0.063 off the exact predictions, at 1e30 1e12;
    a review). A row without copies keeps its weight and target exactly; copies are summed
    relative to their own largest weight (relative to the largest of all, shares below
    4.9e-324 became 0 and their mean 0/0), and the root is taken before the scale (two
    copies at 1e308 overflowed; a review)."""
    from .alpha_path import group_means, row_groups

    rows, Y, w, groups = row_groups(problem)
    count = int(groups.max(initial=-1)) + 1
    _, first = np.unique(groups, return_index=True)
    largest, shares, mean = group_means(Y, w, groups, count)
    single = np.bincount(groups, minlength=count) == 1
    mean[single] = Y[first[single]]  # exactly, not through a product and a quotient
    return rows[first], mean, np.sqrt(largest) * np.sqrt(shares)


def _tail_bound() -> float:
    """The largest trace, relative to alpha, of a Gram that resolves the solution to
    ``TAIL_RESOLUTION``: eps times it at most that much of alpha."""
    return TAIL_RESOLUTION / float(np.finfo(np.float64).eps)


def tail_shift(alpha: float) -> int:
    """``k`` with ``2^k`` about ``sqrt(alpha)``: the tail's Gram is summed over weights
    ``w / 2^k`` (exact: a power of two) and brought to ``F^T F / alpha`` after, as the
    features scaled by ``1 / sqrt(alpha)`` (weights ``w / alpha`` went subnormal, and lost
    digits, for small weights at alpha near 1e300; a review)."""
    return math.frexp(alpha)[1] // 2


def tail_weights(root_w: np.ndarray, shift: int) -> np.ndarray:
    """``w / 2^shift`` from the root weights, scaled before they are squared (a root of
    1e160 squared overflowed)."""
    half = shift // 2
    with np.errstate(over="ignore"):
        return np.ldexp(np.ldexp(root_w, -half) ** 2, -(shift - 2 * half))


def padded(basis: np.ndarray | None, M: int) -> np.ndarray | None:
    """The one-pass Gram's M x M basis: K_MM's range padded with zero columns."""
    return None if basis is None else np.pad(basis, ((0, 0), (0, M - basis.shape[1])))


def tail_block(G: np.ndarray, R: np.ndarray, alpha: float, shift: int, rank: int, **facts):
    """The :class:`TailBlock` of the one-pass Gram ``(G, R)`` of weights ``w / 2^shift``
    (:func:`tail_weights`) over the tail's rows; ``facts``: its ``trace`` (relative to
    alpha) and ``rows``."""
    return TailBlock(
        gram=G[:rank, :rank] * (math.ldexp(1.0, shift) / alpha),
        rhs=R[:rank] * (math.ldexp(1.0, shift) / math.sqrt(alpha)),
        **facts,
    )


def range_basis(problem, C64: np.ndarray) -> np.ndarray:
    """``P = U_r Lambda_r^-1/2``: K_MM's range over its eigenvalues above rounding
    (``NULL_EIGENVALUE``), the whitening of a singular K_MM (module docstring)."""
    kmm = np.asarray(_operator(problem, C64).to_dense(), dtype=np.float64)
    lam, U = np.linalg.eigh(kmm)
    keep = lam > NULL_EIGENVALUE * np.finfo(np.float64).eps * C64.shape[0] * float(lam.max())
    return U[:, keep] / np.sqrt(lam[keep])


@dataclass
class TailBlock:
    """The light tail's rows as one block, summed where they live (dask's workers):
    ``gram = F^T F / alpha`` and ``rhs = F^T (W^1/2 Y) / sqrt(alpha)`` over their whitened
    features F = W^1/2 K(x, C) P (the one-pass Gram of weights scaled by a power of two,
    :mod:`gramfree._dask_graded`), ``trace`` its trace relative to alpha, ``rows`` how
    many (of positive weight; copies counted apart)."""

    gram: np.ndarray
    rhs: np.ndarray
    trace: float
    rows: int


def solve_graded(
    problem: Problem,
    C64: np.ndarray,
    L: np.ndarray,
    block_rows: int,
    *,
    singular: bool,
    tail_block_given: TailBlock | None = None,
    basis: np.ndarray | None = None,
) -> tuple[np.ndarray, int, int]:
    """``(a, rank, tail)``: the coefficients (M x t, float64) minimising ``sum w |y - K(x, C)
    a|^2 + alpha pen(a)``, ``problem.alpha > 0``, the rank of the basis and how many rows
    entered as the tail's Gram (``TAIL_RESOLUTION``). ``pen(a) = |L^T a|^2`` with ``L``
    K_MM's (unjittered) factor, or, ``singular``, ``a^T K_MM a`` on K_MM's range (``basis``
    when given, else :func:`range_basis`; ``L`` not used).

    ``tail_block_given``: the tail summed elsewhere (dask, :mod:`gramfree._dask_graded`); then
    every row of ``problem`` is QR'd by its norm, none selected for the tail here."""
    X, Y64, root_w = _distinct_rows(problem)
    M = C64.shape[0]
    P = None
    if singular:
        P = range_basis(problem, C64) if basis is None else basis

        def features(B: np.ndarray) -> np.ndarray:
            return B @ P

        def coefficients(beta: np.ndarray) -> np.ndarray:
            return P @ beta
    else:

        def features(B: np.ndarray) -> np.ndarray:
            return solve_triangular(L, B.T).T  # B L^-T

        def coefficients(beta: np.ndarray) -> np.ndarray:
            return solve_triangular(L, beta, trans=True)

    step = max(1, int(block_rows))

    def weighted_features(chunk: np.ndarray) -> np.ndarray:
        B = np.asarray(_operator(problem, X[chunk], C64).to_dense(), dtype=np.float64)
        return root_w[chunk, None] * features(B)

    if tail_block_given is None:
        # The tail: the rows of least bound w k(x, x) (at least their squared norm) whose
        # bounds sum within _tail_bound of alpha; its Gram's trace is at most that sum.
        # Relative to alpha throughout: alpha * _tail_bound overflowed near 1e300, and a
        # subnormal alpha left the Gram's rounding at 4.9e-324, not eps times its trace
        # (8.7e-7 off at alpha 3e-317; a review).
        diagonal = np.maximum(kernel_diagonal(problem.kernel, X), 0.0)
        bounds = root_w * root_w * diagonal
        # A row whose k(x, x) underflowed to 0 may still have features (the linear kernel
        # at |x| ~ 1e-165: |x|^2 is 0, x . c is not): it is QR'd with its own features,
        # never summed in the tail, where its scaled weight could overflow (three such
        # rows at 1e300 that alone fixed a coefficient were dropped; a review).
        bounds[diagonal == 0] = np.inf
        by_bound = np.argsort(bounds, kind="stable")
        with np.errstate(over="ignore"):
            summed = np.cumsum(bounds[by_bound] / problem.alpha)
        in_tail = int(np.searchsorted(summed, _tail_bound(), side="right"))
        tail, rows = by_bound[:in_tail], by_bound[in_tail:]
        tail_trace = float(summed[in_tail - 1]) if in_tail else 0.0  # relative to alpha
    else:
        tail, rows = np.zeros(0, dtype=np.intp), np.arange(X.shape[0])
        in_tail, tail_trace = tail_block_given.rows, tail_block_given.trace

    norms = np.concatenate(
        [
            np.linalg.norm(weighted_features(rows[r0 : r0 + step]), axis=1)
            for r0 in range(0, len(rows), step)
        ]
        or [np.zeros(0)]
    )
    rank = features(np.zeros((1, M))).shape[1]
    order = np.argsort(-norms, kind="stable")
    rows, norms = rows[order], norms[order]
    if in_tail:
        # The tail's block (alpha I in its Gram) goes in where the other rows' squared
        # norms fall below its trace and alpha: heavier rows before it, lighter after.
        with np.errstate(over="ignore"):
            relative = (norms / np.sqrt(problem.alpha)) ** 2
        place = int(np.searchsorted(-relative, -(tail_trace + 1.0), "right"))
    else:
        # The penalty's rows (norm sqrt(alpha) each) where the rows' norms fall below.
        place = int(np.searchsorted(-norms, -float(np.sqrt(problem.alpha)), side="right"))
    R = np.zeros((0, rank))
    z = np.zeros((0, Y64.shape[1]))
    piv = np.arange(rank)

    def absorb(F: np.ndarray, rhs: np.ndarray) -> None:
        nonlocal R, z, piv
        # Q is applied to the right-hand side, never formed (geqp3 and ormqr; with the
        # economic Q formed, bench_weight_span.py's graded row took 9.58 s, now 9.28 s).
        zT, T, piv = sla.qr_multiply(
            np.vstack([R, F]), np.vstack([z, rhs]).T, mode="right", pivoting=True
        )
        z = np.ascontiguousarray(zT.T)
        R = np.empty_like(T)
        R[:, piv] = T  # unpermuted: R^T R is the stacked rows' Gram

    def absorb_rows(first: int, end: int) -> None:
        for r0 in range(first, end, step):
            chunk = rows[r0 : min(r0 + step, end)]
            absorb(weighted_features(chunk), root_w[chunk, None] * Y64[chunk])

    def absorb_tail() -> None:
        """The tail's rows and alpha's as one block: sqrt(alpha) C with C^T C = I + F^T F /
        alpha, F their features (summed as the one-pass Gram of weights scaled by a power of
        two near sqrt(alpha): no subnormal sums)."""
        block = tail_block_given
        if block is None:
            shift = tail_shift(problem.alpha)
            rows_of_tail = types.SimpleNamespace(
                X=X[tail],
                Y=Y64[tail],
                sample_weight=tail_weights(root_w[tail], shift),
                kernel=problem.kernel,
                n_jobs=problem.n_jobs,
                device=problem.device,
            )
            G, h = _gram_pass(
                rows_of_tail,  # type: ignore[arg-type]  # the fields the pass reads
                C64,
                step,
                L=None if singular else L,
                basis=padded(P, M),
            )
            block = tail_block(G, h, problem.alpha, shift, rank, trace=tail_trace, rows=in_tail)
        G = np.asfortranarray(block.gram + np.eye(rank))
        C = sla.cholesky(G, lower=False, overwrite_a=True, check_finite=False)  # upper
        root_alpha = float(np.sqrt(problem.alpha))
        absorb(root_alpha * C, solve_triangular(C.T, np.array(block.rhs, dtype=np.float64)))

    absorb_rows(0, place)
    if in_tail:
        absorb_tail()
    else:
        absorb(float(np.sqrt(problem.alpha)) * np.eye(rank), np.zeros((rank, Y64.shape[1])))
    absorb_rows(place, len(rows))
    # The last QR's triangle (rank x rank: the penalty's rows made it full), in its pivots.
    T = R[:, piv]
    beta = np.empty_like(z)
    beta[piv] = solve_triangular(T.T, z, trans=True)  # T upper: T = (T^T)^T
    return coefficients(beta), rank, in_tail
