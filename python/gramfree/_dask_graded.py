"""The one-pass solver's graded QR (:mod:`gramfree.solvers._graded_qr`) on row-chunked
dask arrays: the light tail's Gram summed on the workers, the few heavy rows gathered to
the client and QR'd there in order of their norms.

In memory the tail is the rows of least bound ``r = w k(x, x) / alpha`` whose bounds sum
to at most ``TAIL_RESOLUTION / eps``: a sort of every row's bound. Here the chunks sum a
histogram of their bounds by binary exponent (counts and sums), and the client takes every
bin whose running sum stays within the budget, then as many rows of the next bin as its
upper edge leaves room for, shared out over the chunks in chunk order (rows of one bin tie:
many rows at weight 1, of which the budget holds only some; each chunk's count of that bin
is a second small pass, only where the bin is split). The tail so chosen holds the same guarantee as in memory (its Gram's trace, hence
its rounding, within the budget) and at most a bin's rows fewer.

The tail's Gram is the one-pass Gram (:func:`gramfree._dask._gram_block`) of the weights
``w / alpha`` on the tail's rows and 0 elsewhere, whitened per block as the in-memory
tail is; the other rows (positive weight, not in the tail) are gathered with their targets
and weights, if they fit in ``HEAVY_BYTES``: beyond, the fit keeps the Gram passes and
warns as before (every row heavy: an alpha far below the rows' scale on a large n).
"""

from __future__ import annotations

import math
import types

import numpy as np

from .solvers._common import kernel_diagonal
from .solvers._graded_qr import _tail_bound, padded, tail_block, tail_shift

# Bins by binary exponent of r = w k(x, x) / alpha: frexp's exponents of positive float64
# (-1073 to 1024) shifted by BIN_OFFSET; bin 0 holds r = 0 (zero weight; a row whose k(x, x) is 0 is given inf),
# the last one inf (r overflowed: never in the tail).
BIN_OFFSET = 1075
BINS = 2101
# The heavy rows (X, Y and w of the rows outside the tail) gathered to the client at most
# this large; more, and the dask fit keeps the Gram passes (and warns, as before).
HEAVY_BYTES = 256 * 2**20


def _bins(rb: np.ndarray) -> np.ndarray:
    """Each r's bin: 0 for 0, ``exponent + BIN_OFFSET`` (r < 2^exponent) else, the last
    for inf."""
    _, exponent = np.frexp(rb)
    out = np.where(rb > 0, exponent + BIN_OFFSET, 0)
    return np.where(np.isinf(rb), BINS - 1, out).astype(np.intp)


def _upper_edge(b: int) -> float:
    """The bound every r of bin ``b`` (b > 0) stays below (inf for the last two: 2^1024
    and inf itself)."""
    return math.ldexp(1.0, b - BIN_OFFSET) if b - BIN_OFFSET < 1024 else math.inf


def _ratios_block(Xb, wb=None, *, kernel, alpha):
    """``r = w k(x, x) / alpha`` of a chunk's rows (float64), after the fit's checks of X
    and the weights (this is the graded QR's first pass: a negative weight fell into the
    tail's first bin and was dropped in silence; a review)."""
    from ._dask import _check_block

    _check_block(Xb, None, wb)
    if Xb.shape[0] == 0:  # a filtered partition (the core refuses an empty X)
        return np.zeros(0)
    diagonal = np.maximum(kernel_diagonal(kernel, np.ascontiguousarray(Xb)), 0.0)
    w = np.ones(Xb.shape[0]) if wb is None else wb.astype(np.float64)
    with np.errstate(over="ignore"):
        r = w * diagonal / alpha  # w first: no inf * 0 where k(x, x) = 0
    # A row of positive weight whose k(x, x) underflowed to 0 may still have features
    # (:func:`gramfree.solvers._graded_qr.solve_graded`): a heavy row, never the tail's.
    r[(diagonal == 0) & (w > 0)] = np.inf
    return r


def _histogram_block(rb):
    """A chunk's (1, 2, BINS): rows per bin and the sum of their r."""
    b = _bins(rb)
    with np.errstate(over="ignore"):
        sums = np.bincount(b, weights=rb, minlength=BINS)
    return np.stack([np.bincount(b, minlength=BINS).astype(np.float64), sums])[None]


def _tail_mask_block(rb, *, boundary, quotas, block_id=None):
    """A chunk's tail: every row below the boundary bin and the first ``quotas[chunk]``
    rows of it."""
    b = _bins(rb)
    at = b == boundary
    return (b < boundary) | (at & (np.cumsum(at) <= quotas[block_id[0]]))


def _heavy_block(Xb, Yb, wb, mb):
    """A chunk's rows outside the tail: (X, Y, w)."""
    keep = ~mb
    return Xb[keep], Yb[keep], np.ones(int(keep.sum())) if wb is None else wb[keep]


def tail_plan(total: np.ndarray, sums: np.ndarray) -> tuple[int, int, int]:
    """``(boundary, room, rows)`` from the histogram summed over the chunks (BINS rows
    and sums): every bin below ``boundary`` is in the tail, and ``room`` rows of it;
    ``rows`` in all. Where every row fits, ``boundary`` is past the last bin."""
    budget = _tail_bound()
    with np.errstate(over="ignore", invalid="ignore"):
        running = np.cumsum(sums)
    over = np.flatnonzero(~(running <= budget))  # inf and NaN (inf - inf) are over
    if not len(over):
        return BINS, 0, int(total.sum())
    boundary = int(over[0])
    below = float(running[boundary - 1]) if boundary else 0.0
    room = (
        0 if boundary == 0 else int(min(total[boundary], (budget - below) // _upper_edge(boundary)))
    )
    return boundary, room, int(total[:boundary].sum()) + room


def share_quotas(room: int, counts: np.ndarray) -> np.ndarray:
    """The boundary bin's ``room`` rows shared out in chunk order (``counts``: each
    chunk's rows of that bin): each chunk's own rows of the bin first."""
    before = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.clip(room - before, 0, counts).astype(np.int64)


def _boundary_count_block(rb, *, boundary):
    """A chunk's rows in the boundary bin, as a 1-element array."""
    return np.array([np.count_nonzero(_bins(rb) == boundary)], dtype=np.int64)


class DaskGraded:
    """The graded QR's plan over the chunks of one fit (X, Y 2-d, w 1-d or None, dask
    arrays with X's row chunks), made once: ``possible`` reads the bounds (one pass that
    computes only the kernel's diagonal) and says whether the heavy rows fit in
    ``HEAVY_BYTES``; ``solve`` sums the tail and gathers the heavy rows in one pass, then
    solves in memory."""

    def __init__(self, X, Y, w, kernel, *, alpha: float, n_jobs) -> None:
        import dask.array as da

        self.X, self.Y, self.w, self.kernel, self.alpha, self.n_jobs = (
            X,
            Y,
            w,
            kernel,
            alpha,
            n_jobs,
        )
        args = [X, "ij"] + ([] if w is None else [w, "i"])
        self.ratios = da.blockwise(
            _ratios_block,
            "i",
            *args,
            concatenate=True,
            dtype=np.float64,
            meta=np.empty(0),
            kernel=kernel,
            alpha=alpha,
        )
        self.plan: tuple[int, np.ndarray, int] | None = None
        self.zero_weights = 0

    def possible(self) -> bool:
        """Whether the rows outside the tail fit in ``HEAVY_BYTES`` on the client."""
        import dask.array as da

        from ._dask import compute

        if self.plan is None:
            # Summed on the workers (34 KB in all; each chunk's came back whole before,
            # 336 MB at 10000 chunks), then, only where the boundary bin is split, a pass
            # for each chunk's rows of it.
            histogram = da.blockwise(
                _histogram_block,
                "ijk",
                self.ratios,
                "i",
                new_axes={"j": 2, "k": BINS},
                adjust_chunks={"i": 1},
                dtype=np.float64,
                meta=np.empty((0, 0, 0)),
            ).sum(axis=0)
            zeros = 0 if self.w is None else (self.w == 0).sum()
            histogram, zeros = compute(histogram, zeros)
            boundary, room, rows = tail_plan(histogram[0], histogram[1])
            quotas = np.zeros(self.X.numblocks[0], dtype=np.int64)
            if room > 0:
                per_chunk = self.ratios.map_blocks(
                    _boundary_count_block,
                    boundary=boundary,
                    chunks=((1,) * self.X.numblocks[0],),
                    dtype=np.int64,
                )
                (counts,) = compute(per_chunk)
                quotas = share_quotas(room, np.asarray(counts))
            self.plan = (boundary, quotas, rows)
            # Rows of weight 0 are in the first bin, always the tail's, and enter nothing.
            self.zero_weights = int(zeros)
        heavy = self.X.shape[0] - self.plan[2]
        row_bytes = self.X.dtype.itemsize * self.X.shape[1] + 8 * (self.Y.shape[1] + 1)
        return heavy * row_bytes <= HEAVY_BYTES

    def solve(self, C64, L, block_rows: int, *, singular: bool, share):
        """``(a, rank, tail rows)`` as :func:`gramfree.solvers._graded_qr.solve_graded`;
        ``share`` puts the model's arrays on the workers (:func:`gramfree._dask._share`)."""
        import dask
        import dask.array as da

        from ._dask import _chunk_sum, _gram_block, compute
        from .solvers._common import Problem
        from .solvers._graded_qr import range_basis, solve_graded

        assert self.plan is not None and self.possible()
        boundary, quotas, rows = self.plan
        mask = self.ratios.map_blocks(
            _tail_mask_block, boundary=boundary, quotas=quotas, dtype=bool
        )
        w64 = da.ones(self.X.shape[0], chunks=(self.X.chunks[0],)) if self.w is None else self.w
        # The tail's Gram is summed with the weights w / 2^k, 2^k about sqrt(alpha)
        # (:func:`tail_shift`), as in memory. Rows with r = 0 (weight 0) add nothing.
        shift = tail_shift(self.alpha)
        tail_weights = da.where(
            mask & (self.ratios > 0), w64.astype(np.float64) * math.ldexp(1.0, -shift), 0.0
        )
        here = types.SimpleNamespace(kernel=self.kernel, n_jobs=self.n_jobs, device="cpu")
        basis = range_basis(here, C64) if singular else None
        M, t = C64.shape[0], self.Y.shape[1]
        rank = M if basis is None else basis.shape[1]
        model = share((C64, self.kernel, None if singular else L, padded(basis, M)))
        gram = _chunk_sum(
            _gram_block,
            self.X,
            tail_weights,
            [self.Y],
            M=M,
            t=M + t,
            model=model,
            block_rows=block_rows,
            product_dtype=np.float64,
            n_jobs=self.n_jobs,
        )
        blocks = zip(
            self.X.to_delayed().ravel(),
            self.Y.to_delayed().ravel(),
            [None] * self.X.numblocks[0] if self.w is None else self.w.to_delayed().ravel(),
            mask.to_delayed().ravel(),
        )
        heavy = [dask.delayed(_heavy_block, nout=3)(*block) for block in blocks]
        GR, *parts = compute(gram, *heavy)
        heavy_problem = Problem(
            X=np.ascontiguousarray(np.concatenate([p[0] for p in parts])),
            Y=np.concatenate([p[1] for p in parts]).astype(np.float64),
            kernel=self.kernel,
            alpha=self.alpha,
            sample_weight=np.concatenate([p[2] for p in parts]).astype(np.float64),
            n_jobs=self.n_jobs,
            kernel_dtype=np.dtype(np.float64),
        )
        block = tail_block(GR[:, :M], GR[:, M:], self.alpha, shift, rank, trace=0.0, rows=0)
        block.trace, block.rows = float(np.trace(block.gram)), rows - self.zero_weights
        return solve_graded(
            heavy_problem,
            C64,
            L,
            block_rows,
            singular=singular,
            tail_block_given=block,
            basis=basis,
        )
