"""Whether a logistic fit's Newton step may keep the preconditioner an earlier step built
(:mod:`gramfree.solvers.logistic`), weighing a build's cost against the CG iterations
keeping it has cost, both from the cost model's flop counts (never from the clock: a
fit's path depends only on its inputs and the saved rates, read once per fit, as
``auto``'s choice does).

The preconditioner is built from the loss's curvature (at the centres, or at every row
for the curvature's Gram): M x M products and a factorization per build. With every
training point a centre (the default up to 4000 rows) a build costs several CG
iterations (the model below: 8.7 on spam's 3450 centres), while CG took 1 or 2
iterations per Newton step: the builds were most of the fit. With M = 1000 centres and
5000 rows a build costs about one iteration out of the 10 to 30 per step, and keeping it
cost more iterations than it saved (satellite: 161 CG iterations became 197 when every
step from the fourth kept it, in scratch runs).

A bound did not work: the curvature's relative change is bounded by the largest change
of the logits since the build (``|d log p (1 - p) / dF| <= 1``), and the preconditioner's
by the curvature's, but the logits of well-fitted rows keep growing (by 1.5 to 5 between
late Newton steps on spam and satellite) while their curvature, too small to matter
beside ``alpha``, changes by large factors; the bound then never allows keeping.

The first step of a fit from zero builds its preconditioner at probabilities 1/k for
every row, a curvature unlike any later step's: that one is never kept (satellite, which
kept it once, took 20 more CG iterations). After that a step tries keeping the last
preconditioner where a build costs more than the last CG run did (keeping can only save
a build, and can only cost CG iterations); after a step that kept it, where CG took more
iterations than the last fresh run by more than a build's worth, the next step rebuilds
and the next try waits twice as many steps as the last (1, 2, 4, ...), so that a fit
whose curvature keeps moving pays for at most a few failed tries. A step that kept it
cannot end the fit: CG stops in the preconditioner's norm, and a stale one can stop it
with a decrement far below the true one (an unpenalised fit of separated classes,
iris, stopped after 3 Newton steps at objective 0.028 where it goes to 0, its CG having
returned no descent direction); where such a step's decrement is small enough to end the
fit, or CG returned no descent direction, the step is taken again (or the next) with a
fresh one.

Costs are in flops at the dense (BLAS-3) rate, memory traffic at ``FLOPS_PER_BYTE`` (the
dense rate over the bandwidth a pass over a matrix of float64 gets; calibrated, see
below). A build: ``(2/3) M^3`` flops
(``lower_gram`` and a Cholesky) and about ten passes over M x M float64 values (the
scaled copy, the triangle's mirror, the downdate, the factorization's reads), ``80 M^2``
bytes (the Gram's adds ``n M^2`` flops and two whitening solves). A CG iteration: two
passes over the Hessian's rows of K_nM, ``16 rows M`` bytes (or recomputing them, at the
engine's rate), and over the triangular factors and ``K_MM``'s, ``24 M^2`` bytes, and
``4 rows M k + 6 M^2 k`` flops at half the dense rate (products with k columns). On the
suite's sets these put a build at 1.0 to 8.7 CG iterations (before whitened coordinates:
where the logistic solver works in them, a CG iteration saves the K_MM product and two of
the solves and the Gram its whitening, ``whitening_saves`` and ``whitened=``) (spam with every point a
centre 8.7, satellite at M = 1000 1.2); the constants were calibrated against scratch
timings of builds and CG runs on those sets (2026-12-04), not a benchmark.
"""

from __future__ import annotations

from .auto import _entry_flops

# False: every Newton step builds its preconditioner (as before 2026-12-04).
KEEP_PRECONDITIONER = True
FLOPS_PER_BYTE = 8.0


def build_cost(
    n: int, M: int, d: int, *, gram: bool, stored: bool, rates: dict, whitened: bool = False
) -> float:
    """A preconditioner build's cost in flops at the dense rate (module docstring);
    ``rates``: the cost model's (:func:`gramfree.solvers.rates.current`), read once per fit;
    ``whitened``: the Gram needs no whitening solves."""
    cost = 2.0 / 3.0 * M**3 + FLOPS_PER_BYTE * 80.0 * M * M
    if gram:
        cost += n * M * M + (0.0 if whitened else 2.0 * M**3)
        if not stored:  # the Gram's pass recomputes the kernel values
            cost += n * M * _entry_flops(d, 0) * rates["dense"] / rates["engine_float64"]
    return cost


def whitening_saves(M: int, k: int) -> float:
    """What a CG iteration saves in whitened coordinates (the logistic solver's
    ``L^T a``): the product with K_MM and two triangular solves, ``16 M^2`` bytes and
    ``4 M^2 k`` flops at half the dense rate (of :func:`iteration_cost`'s ``24 M^2`` and
    ``6 M^2 k``)."""
    return FLOPS_PER_BYTE * 16.0 * M * M + 2.0 * 4.0 * M * M * k


def iteration_cost(
    rows: int, M: int, k: int, d: int, *, stored_bytes: int, rates: dict, whitened: bool = False
) -> float:
    """A CG iteration's cost in flops at the dense rate: its products over ``rows`` of
    K_nM, stored with ``stored_bytes`` per value (0: recomputed on every pass), and its
    M x M algebra (module docstring), less :func:`whitening_saves` where ``whitened``."""
    cost = FLOPS_PER_BYTE * 24.0 * M * M + 2.0 * (4.0 * rows * M * k + 6.0 * M * M * k)
    if whitened:
        cost -= whitening_saves(M, k)
    if stored_bytes:
        return cost + FLOPS_PER_BYTE * 2.0 * stored_bytes * rows * M
    # two passes recomputing the kernel values
    return cost + 2.0 * rows * M * _entry_flops(d, k) * rates["dense"] / rates["engine_float64"]


class KeptPreconditioner:
    """The last built preconditioner and the counts the decision weighs; ``build``: a
    build's cost (:func:`build_cost`)."""

    def __init__(self, build: float, enabled: bool = True) -> None:
        self.enabled = enabled and KEEP_PRECONDITIONER
        self.build = build
        self.precond = None
        self.cg_last = 0  # iterations of the last CG run
        self.cg_fresh = 0  # iterations of the last run with a fresh preconditioner
        self._kept_now = False  # whether the current step kept it
        self._wait, self._backoff = 0, 1
        self.builds = 0
        self.kept_steps = 0  # CG runs with a kept preconditioner (abandoned ones too)
        self.kept_runs: list[bool] = []  # per CG run, whether it kept it

    def keep(self, iteration: float, last: bool = False):
        """The kept preconditioner for this step where the rule allows (module
        docstring), else None (build one and call :meth:`built`). ``iteration``: this
        step's CG iteration cost (:func:`iteration_cost`); ``last``: the last step the
        fit may take (never kept there: a kept step cannot end the fit)."""
        self._kept_now = False
        self.kept_runs.append(False)
        if not self.enabled or self.precond is None or last:
            return None
        if self._wait > 0:
            self._wait -= 1
            return None
        if self.build <= iteration * max(self.cg_last, 1):
            return None  # a build costs less than the CG run it could shorten
        self._kept_now = True
        self.kept_runs[-1] = True
        self.kept_steps += 1
        return self.precond

    @property
    def kept_now(self) -> bool:
        """Whether the current step kept the preconditioner."""
        return self._kept_now

    def refresh(self, failed: bool = False) -> None:
        """The next step builds a new preconditioner (a kept one's step may not end the
        fit: its CG stopped in a stale preconditioner's norm); ``failed``: the kept one
        gave no usable step (no descent, or no progress), and the next try backs off as
        after a costly one."""
        self.precond = None
        if failed:
            self._back_off()

    def _back_off(self) -> None:
        self._wait = self._backoff - 1  # fresh steps after the rebuild, before a try
        self._backoff *= 2

    def built(self, precond, keepable: bool = True) -> None:
        """A new preconditioner; ``keepable`` False: never kept (the first step of a fit
        from zero, module docstring)."""
        self.precond = precond if keepable else None
        self.builds += 1

    def ran(self, iterations: int, iteration: float) -> None:
        """This step's CG run: its iterations, each of cost ``iteration``."""
        self.cg_last = iterations
        if not self._kept_now:
            self.cg_fresh = iterations
            return
        if (iterations - self.cg_fresh) * iteration > self.build:  # cost more than a build
            self.precond = None  # the next step rebuilds
            self._back_off()
