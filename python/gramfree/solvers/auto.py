"""``solver="auto"``: choose the solver and the number of centres from a cost model.

The aim is the exact kernel ridge solution's quality at the least cost. Three facts decide:

1. **How many centres Nystrom needs.** The effective dimension
   ``d_eff = sum_j mu_j / (mu_j + alpha)`` (mu_j: eigenvalues of the weighted kernel
   matrix) counts the directions the ridge does not suppress; Nystrom with M centres is
   close to exact once M is a few times d_eff. It is estimated from the spectrum of a
   subsample of s rows (``mu_j ~ (n / s) eig_j(K_SS)``). When the estimate exceeds s / 2 the
   subsample cannot resolve it (a narrow kernel: flat spectrum, d_eff of order n): no
   affordable M is close to exact, and the exact methods on all points are the choice:
   direct where its n x n matrix fits, else PCG on all points (:mod:`.kernel_pcg`).
2. **What each choice costs** on this machine, from four rates (:mod:`.rates`: measured
   here by ``python -m gramfree calibrate``, else built-in ones measured on the CI's
   machine kind by ``benchmarks/bench_costmodel.py``): the fused operator's flops per kernel entry
   (``2 d + 2 k + 8``, k right-hand sides), dense factorizations at the BLAS rate, and the
   typical iteration counts below. Memory: direct holds the n x n matrix in float64,
   Nystrom-PCG two M x M matrices, PCG on all points O(n s).
3. **Whether the model has settled.** With centres, auto grows M (doubling from
   ``max(1000, 4 d_eff)``) until the predictions on a probe of training rows stop changing
   (classification: at most ``SETTLE_DISAGREE`` of the probe's labels change; regression:
   the mean squared change is at most ``SETTLE_R2`` of the targets' variance), or until the
   next size would cost more than an exact method or not fit. Doubling costs at most about
   twice the final fit (the M^3 preconditioner dominates, and halves of it sum to less).

PCG on all points is the Gram-free exact method, chosen where direct does not fit or is
estimated ``PCG_RISK`` times slower: its iteration count is a typical value, and a flat
spectrum can need several times as many (Letter's narrow kernel: 100 iterations, not
converged, where the default kernel took 22). EigenPro on all points is not among auto's
choices: an epoch costs about two passes over the kernel (its batches and the exact pass)
where a CG iteration costs one, and it took as many epochs as PCG took iterations or
more, so PCG was the faster of the two on every set of the real-data suite but one
(Letter's narrow kernel, where PCG did not converge in 100 iterations;
``benchmarks/bench_realdata.py``, README).

``solver_info_["auto"]`` records the estimates, the sizes tried and why each step was taken.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._log import say
from .._threads import limit_numpy_blas_for_loops
from ._common import (
    WIDENED_BLOCK_ELEMENTS,
    Problem,
    SolverResult,
    center_rows,
    heavy_rows,
    outnumbered,
    symmetric_eigh,
    weight_span,
)
from ._common import memory_bytes as _memory_bytes
from .direct import STREAM_MAX_FEATURES, TRIANGLE_ROWS, refinement_budget, solve_direct
from .kernel_pcg import BLOCK_BYTES, DEFAULT_MAX_ITER, STORE_BYTES, SUBSAMPLE, solve_kernel_pcg
from .nystrom_direct import rows_for, solve_nystrom_direct
from .nystrom_pcg import solve_nystrom_pcg
from .rates import DEFAULT_RATES, current

# The built-in rates (:mod:`.rates`; a calibrated machine uses its own).
RATES = DEFAULT_RATES
# Nystrom-PCG's typical CG iterations at the default tol (real-data suite), and passes over
# K(X, centres) per iteration, as measured against the rates above (a CG step is the
# two-sided K^T (K p) plus the solver's own work).
PCG_ITERATIONS = 25
PCG_PASSES = 3.0
# PCG on all points (kernel_pcg): typical iterations at the default tol (real-data suite,
# default and narrow kernels: 1 to 23, median 10), and the factor on its estimate before it
# is preferred to direct (module docstring).
PCG_EXACT_ITERATIONS = 25
PCG_RISK = 4.0
# Rows whose spectrum estimates d_eff (a 1000 x 1000 eigenproblem: ~0.1 s).
SPECTRUM_ROWS = 1000
# Settling thresholds of the centre-growing loop (see the module docstring).
SETTLE_DISAGREE = 0.0025
SETTLE_R2 = 0.0025
PROBE_ROWS = 4000
# Largest share of the memory (_common.memory_bytes: physical, or a limit) one choice may plan to use.
MEMORY_SHARE = 0.4
# Fewest centres the growing loop starts from.
MIN_CENTERS = 1000
# Most centres of first_center_count (three M x M float64 matrices: 2.4 GB at 10000).
MAX_FIRST_CENTERS = 10000
# The Nystrom solvers auto chooses between for a given M (cheaper estimate wins).
NYSTROM_SOLVERS = ("nystrom-pcg", "nystrom-direct")
# PCG stops at a tolerance and its iteration count is a typical value, not a bound: at
# n = 1e5, M = 4000, alpha = 1e-6 n it needed 40 iterations to tol 1e-4 and its test R^2 was
# 0.9683 against the exact Nystrom solution's 0.9725. So the one-pass exact solve is kept
# unless PCG is estimated at least this many times cheaper.
EXACT_PREFERENCE = 2.0
# Samples up to which a direct solve is always the cheapest (n = 4000: 128 MB, < 1 s).
DIRECT_ALWAYS = 4000
# Positive weights spanning more than this ratio: auto's Nystrom fits are the one-pass
# exact solve, and an explicit PCG fit warns (estimators._base.weight_span_message).
# PCG's tol is relative to the weighted right-hand side, where the light rows' part then
# falls below it: five diabetes rows at 1e9 among rows at 1 stopped at 1.3-1.7 times
# the optimum's objective, at 1e12 up to 38 times, without a warning. Its objective watch
# (nystrom_pcg.falkon_cg) does not reach there either: the recursion's objective was 0.3
# to 1e306 times the true one (2026-12-06: 64 of 192 fits from 1e9 to 1e12 over 1.001
# times, up to 700). Below, at alpha 1e-8 (diabetes, five rows at the top weight, 100
# centres, four draws): 1e7 at most 1.0005 times, 3e7 1.002-1.006, 1e8 1.03-1.10, all
# silent (a review); 1e7 is the bound (it was 1e8).
WEIGHT_SPAN_PCG = 1e7


def weights_span_beyond_pcg(sample_weight) -> bool:
    """Whether the positive weights span more than ``WEIGHT_SPAN_PCG``."""
    return weight_span(sample_weight) > WEIGHT_SPAN_PCG


def _entry_flops(d: int, k: int) -> float:
    return 2.0 * d + 2.0 * k + 8.0


@dataclass
class CostModel:
    """Seconds and bytes of each choice for a problem of n rows, d features, t targets."""

    n: int
    d: int
    t: int
    dtype: np.dtype
    # Flops per second (:mod:`.rates`): this machine's saved ones, else the built-in ones.
    rates: dict = field(default_factory=lambda: current()[0])
    # The data's dtype, where it differs from the products' (kernel_precision): nystrom-pcg
    # factors K_MM in float32 only where both are float32.
    data_dtype: np.dtype | None = None
    # Bytes available (None: no limit): best_nystrom then prefers a solver that fits.
    memory: float | None = None

    @property
    def engine(self) -> float:
        return self.rates["engine_float32" if self.dtype == np.float32 else "engine_float64"]

    def direct(self) -> tuple[float, float]:
        """The n x n float64 matrix; factored in float32 (about twice the rate) where the
        solver's refinement pays (direct.py). Memory: the float64 matrix, which a float32
        attempt that fails falls back to, and beside it the float32 copy, unless float64
        products on few features build the float32 matrix alone (``STREAM_MAX_FEATURES``)."""
        n = self.n
        mixed = refinement_budget(n, self.t) >= 2
        factor = n**3 / 3 / (2.0 if mixed else 1.0)
        streamed = self.dtype == np.float64 and self.d <= STREAM_MAX_FEATURES
        # Either matrix is built as one triangle (its diagonal blocks whole).
        entries = n * (n + TRIANGLE_ROWS) / 2
        seconds = (
            entries * _entry_flops(self.d, 0) / self.engine
            + (factor + 2 * n * n * self.t) / self.rates["dense"]
        )
        return seconds, (12.0 if mixed and not streamed else 8.0) * n * n

    def nystrom(self, m: int, iterations: int = PCG_ITERATIONS) -> tuple[float, float]:
        n, d, t = self.n, self.d, self.t
        precond = m * m * _entry_flops(d, 0) / self.engine + m**3 / self.rates["dense"]
        per_iter = (
            PCG_PASSES * n * m * _entry_flops(d, t) / self.engine
            + 4 * m * m * t / self.rates["dense"]
        )
        # Two M x M matrices (the factor and the inner matrix), float32 where the data and
        # the products are: in float32 K_MM is formed in float64 and narrowed, 12 bytes
        # per entry at that moment (measured 12.1 m^2 where 8 m^2 was planned; a review).
        # Float32 products' exact passes hold one float64 and one float32 block of
        # kernel values beside them. Float64 data with float32 products factors in
        # float64: priced as float32's it peaked at 1.31x the plan (a review).
        exact_blocks = 12.0 * WIDENED_BLOCK_ELEMENTS if self.dtype == np.float32 else 0.0
        if np.result_type(self.dtype, self.data_dtype or self.dtype) == np.float32:
            nbytes = max(12.0 * m * m, 8.0 * m * m + exact_blocks)
        else:
            nbytes = 16.0 * m * m + exact_blocks
        return precond + iterations * per_iter, nbytes

    def nystrom_direct(self, m: int) -> tuple[float, float]:
        """One pass forming K_nM^T K_nM by syrk (kernel values in the products' dtype, the
        Gram in float64), then the M x M solves: Cholesky of K_MM, two triangular solves
        with M columns, one more Cholesky."""
        n, d, t = self.n, self.d, self.t
        kernel = (n * m + m * m) * _entry_flops(d, 0) / self.engine
        seconds = (
            kernel
            + n * m * m / self.rates["syrk"]
            + (2 * n * m * t + 2.7 * m**3) / self.rates["dense"]
        )
        # Its block of kernel values: rows_for(m) rows, or all n where fewer.
        return seconds, 3 * 8.0 * m * m + 8.0 * m * min(n, rows_for(m))

    def best_nystrom(self, m: int, allowed=NYSTROM_SOLVERS) -> tuple[str, float, float]:
        """(solver, seconds, bytes) of the Nystrom solver for M centres: the one-pass exact
        solve unless PCG's estimate is under 1 / EXACT_PREFERENCE of it; where only one of
        them fits ``memory``, that one (the faster alone left PCG, which fit, out of a
        650 MiB budget; a review)."""
        options = {}
        if "nystrom-direct" in allowed:
            options["nystrom-direct"] = self.nystrom_direct(m)
        if "nystrom-pcg" in allowed:
            seconds, nbytes = self.nystrom(m)
            options["nystrom-pcg"] = (seconds * EXACT_PREFERENCE, nbytes)
        if self.memory is not None:
            options = {k: v for k, v in options.items() if v[1] <= self.memory} or options
        name = min(options, key=lambda k: options[k][0])
        seconds, nbytes = options[name]
        return name, seconds / (EXACT_PREFERENCE if name == "nystrom-pcg" else 1.0), nbytes

    def pcg(self, iterations: int = PCG_EXACT_ITERATIONS) -> tuple[float, float]:
        """Exact kernel ridge by CG on all points (:mod:`.kernel_pcg`). Once: the
        preconditioner's pass over K(X, S) (s = SUBSAMPLE rows), F = K_XS L^-T by a
        triangular solve and its Gram (n s^2 flops each), two s x s factorizations. Per
        iteration, and once more for the check that confirms convergence: one pass over
        the n x n kernel with t columns, and the preconditioner's two products with F
        (GEMMs where F is stored, else two passes over K(X, S)). Memory: F where stored,
        about a dozen n x t float64 arrays (the CG vectors, the best iterate, products),
        four s x s matrices (K_SS, its factor, the inner matrix and its factor) and the
        preconditioner pass's blocks."""
        n, d, t = self.n, self.d, self.t
        s = min(n, SUBSAMPLE)
        stored = 8.0 * n * s <= STORE_BYTES
        setup = (n * s + s * s) * _entry_flops(d, 0) / self.engine + (
            2.0 * n * s * s + 2.0 * s**3 / 3
        ) / self.rates["dense"]
        precond = (
            4.0 * n * s * t / self.rates["dense"]
            if stored
            else 2.0 * n * s * _entry_flops(d, t) / self.engine
        )
        per_iter = n * n * _entry_flops(d, t) / self.engine + precond
        nbytes = (8.0 * n * s if stored else 0.0) + 96.0 * n * t + 32.0 * s * s + 3 * BLOCK_BYTES
        return setup + (iterations + 1) * per_iter, nbytes


def effective_dimension(problem: Problem, rng: np.random.Generator) -> tuple[float, int]:
    """``(d_eff, s)``: the effective dimension estimated from s rows' spectrum."""
    X, n = problem.X, problem.X.shape[0]
    s = min(n, SPECTRUM_ROWS)
    S = np.sort(rng.choice(n, size=s, replace=False)) if s < n else np.arange(n)
    kss = problem.operator(X[S]).to_dense().astype(np.float64)
    sw = np.sqrt(problem.weights[S].astype(np.float64))
    kss *= np.outer(sw, sw)
    mu = np.maximum(symmetric_eigh(kss, eigvals_only=True), 0.0) * (n / s)
    alpha = max(problem.alpha, 1e-12 * float(mu.max(initial=1.0)))
    return float(np.sum(mu / (mu + alpha))), s


def _settled(
    before: np.ndarray, after: np.ndarray, Y: np.ndarray, classify: bool
) -> tuple[bool, float]:
    """Whether two models' predictions on the probe agree; returns (settled, measure)."""
    if classify:
        if after.shape[1] == 1:
            changed = np.mean(np.sign(before[:, 0]) != np.sign(after[:, 0]))
        else:
            changed = np.mean(before.argmax(1) != after.argmax(1))
        return bool(changed <= SETTLE_DISAGREE), float(changed)
    # Per output, each against its own variance, the largest deciding: pooled, an output in
    # large units hid an unsettled one in small units (a review: randhie's target beside
    # 1000 x a feature settled at 2000 centres, its R^2 0.009 under exact's, silently).
    var = np.mean((Y - Y.mean(0)) ** 2, axis=0)
    # A constant output has no variance: its own mean square then, in its units as the
    # others are (against 1, a constant 1000 never settled: every size of centres up to n,
    # then direct, 13-170x the time; a review); 1 only for an all-zero output.
    square = np.mean(Y**2, axis=0)
    var = np.where(var > 0, var, np.where(square > 0, square, 1.0))
    change = float(np.max(np.mean((after - before) ** 2, axis=0) / var))
    return bool(change <= SETTLE_R2), change


def solve_auto(
    problem: Problem,
    *,
    classify: bool,
    max_iter: int | None,
    tol: float,
    random_state: np.random.Generator,
    verbose: int | bool = False,
    nystrom_only: str | None = None,
) -> SolverResult:
    """Choose and run a solver (module docstring); ``info["auto"]`` says what and why.

    ``nystrom_only``: ``"nystrom-pcg"`` or ``"nystrom-direct"`` (that solver without
    ``n_centers``): only the centre-growing loop with that solver, which may then go up to
    all n points."""
    allowed = (nystrom_only,) if nystrom_only else NYSTROM_SOLVERS
    span_note = None
    if not nystrom_only and weights_span_beyond_pcg(problem.sample_weight):
        allowed = ("nystrom-direct",)
        span_note = (
            f"no PCG (exact or Nystrom): the weights span more than {WEIGHT_SPAN_PCG:g}, "
            "beyond what its relative tol sees"
        )
    n, d = problem.X.shape
    t = problem.Y.shape[1]
    rng = random_state
    rates, rates_source = current()
    costs = CostModel(n, d, t, problem.kernel_dtype, rates, data_dtype=problem.X.dtype)
    # direct runs in the data's precision whatever kernel_precision says (its float32
    # matrix alone is priced apart): priced with the float32 products' model it was ruled
    # out of memory it fits in (a review: 28k-34k rows of 9 features here).
    direct_s, direct_b = CostModel(n, d, t, problem.X.dtype, rates).direct()
    memory = MEMORY_SHARE * _memory_bytes()
    costs.memory = memory
    log: dict = {"steps": [], "rates": rates_source}
    if verbose:
        say(f"[auto] rates: {rates_source}")

    def note(message: str) -> None:
        log["steps"].append(message)
        if verbose:
            say(f"[auto] {message}")

    if span_note:
        note(span_note)
    direct_ok = direct_b <= memory
    if n <= DIRECT_ALWAYS and direct_ok and not nystrom_only:
        note(f"direct: n = {n} <= {DIRECT_ALWAYS}, exact and cheapest (~{direct_s:.2g} s)")
        return _finish(solve_direct(problem.in_data_precision()), "direct", log)
    limit_numpy_blas_for_loops()  # the other choices alternate BLAS and native loops

    d_eff, s = effective_dimension(problem, rng)
    log.update(d_eff=d_eff, spectrum_rows=s)
    pcg_exact_s, pcg_exact_b = costs.pcg()
    exact = []  # (seconds, name) of the exact methods that fit in memory
    if direct_ok:
        exact.append((direct_s, "direct"))
    if pcg_exact_b <= memory and not span_note:  # its typical count, weighed by the risk
        exact.append((PCG_RISK * pcg_exact_s, "pcg"))
    exact_s, exact_name = min(exact) if exact and nystrom_only is None else (math.inf, None)
    log["estimates"] = {
        "direct_s": direct_s,
        "direct_bytes": direct_b,
        "pcg_s": pcg_exact_s,
        "pcg_bytes": pcg_exact_b,
    }

    tried: list[dict] = []  # the Nystrom sizes fitted (below)

    def exact_solution() -> SolverResult:
        assert exact_name is not None
        result = _run_exact(problem, exact_name, max_iter, tol, rng, verbose)
        return _finish(result, exact_name, log, tried)

    if d_eff > s / 2 and exact_name is not None:
        fits = "" if direct_ok else f", direct's {direct_b / 2**30:.3g} GiB does not fit"
        note(
            f"{exact_name}: d_eff ~ {d_eff:.0f} of {s} sampled rows (a flat spectrum: Nystrom "
            f"would need most of the {n} points as centres); est. direct {direct_s:.2g} s, "
            f"pcg {pcg_exact_s:.2g} s (x {PCG_RISK:g} for the risk of more iterations){fits}"
        )
        return exact_solution()

    # Nystrom (PCG or one pass, whichever the model says is cheaper at each size), growing
    # the centres until the predictions settle.
    m = int(min(n, max(MIN_CENTERS, 4 * d_eff)))
    probe = np.sort(rng.choice(n, size=min(n, PROBE_ROWS), replace=False))
    Xp, Yp = problem.X[probe], problem.Y[probe].astype(np.float64)
    result, before, previous_m, name = None, None, None, allowed[0]

    def solvers_at(m: int) -> tuple[str, ...]:
        """The Nystrom solvers allowed for m centres: the one pass alone where more
        rows weigh apart than PCG's preconditioner counts by themselves (outnumbered)."""
        if nystrom_only or not outnumbered(problem.sample_weight, m):
            return allowed
        return ("nystrom-direct",)

    def worth(m: int, result) -> bool:
        """Whether a Nystrom fit at m centres may run before the exact method."""
        _, seconds, size = costs.best_nystrom(m, solvers_at(m))
        return not (
            size > memory
            or seconds > exact_s
            or m > (n if nystrom_only else n // 2)
            or (nystrom_only and result is not None and result.centers.shape[0] == n)
        )

    while True:
        name, pcg_s, pcg_b = costs.best_nystrom(m, solvers_at(m))
        if (
            before is None
            and exact_name is not None
            and worth(m, result)
            and m < n
            and not worth(min(n, 2 * m), result)
        ):
            # Settling takes two sizes, and the second would not run: the first fit could
            # only be thrown away (a review: diamonds, 8000 rows, 1838 centres fitted
            # before direct, 44% more than direct alone by these estimates).
            second, second_s, _ = costs.best_nystrom(min(n, 2 * m), solvers_at(min(n, 2 * m)))
            note(
                f"{exact_name}: settling needs {m} and {min(n, 2 * m)} centres, and "
                f"{min(n, 2 * m)} ({second}, est. {second_s:.2g} s) would not run before "
                f"{exact_name} (est. {exact_s:.2g} s); the exact solution instead"
            )
            return exact_solution()
        if not worth(m, result):
            # The next size is not worth it: an exact method is cheaper (or M nears n).
            if exact_name is not None:
                exact_est = (
                    f"est. {exact_s:.2g} s"
                    if exact_name == "direct"
                    else f"est. {exact_s / PCG_RISK:.2g} s, x {PCG_RISK:g} for its risk"
                )
                if pcg_b > memory:
                    why = (
                        f"{m} centres would need {pcg_b / 2**30:.2g} GiB, more than the "
                        f"{memory / 2**30:.2g} GiB available"
                    )
                elif pcg_s > exact_s:
                    why = (
                        f"{m} centres (est. {pcg_s:.2g} s) would cost more than "
                        f"{exact_name} ({exact_est})"
                    )
                else:
                    why = f"{m} centres is most of the {n} points"

                note(f"{exact_name}: {why}; the exact solution instead")
                return exact_solution()
            if result is not None:
                name = result.info["solver"]
                note(
                    f"{name}: stop at {result.centers.shape[0]} centres, the predictions "
                    f"not settled: {m} would need {pcg_b / 2**30:.2g} GiB"
                    if result.centers.shape[0] < n
                    else f"{name}: all {n} points as centres"
                )
                break
            m = max(1, int(math.sqrt(memory / (pcg_b / (m * m)))))  # the largest that fits
            name, pcg_s, pcg_b = costs.best_nystrom(m, solvers_at(m))
        idx = center_rows(
            rng, n, m, problem.sample_weight, heavy=heavy_rows(problem.sample_weight, m)
        )
        start = time.perf_counter()
        result = run_nystrom(
            problem,
            np.ascontiguousarray(problem.X[idx]),
            name,
            max_iter=max_iter,
            tol=tol,
            verbose=verbose,
            center_rows=idx,
        )
        result.center_indices = idx if idx.size < n else None
        # The model's own predictions (data precision, as predict computes them): with
        # kernel_precision="float32" the float32 sums of a one-pass solve's cancelling
        # coefficients moved the probe by 24% of the targets' variance between two sizes
        # whose models agreed to 1e-4 (diamonds), and the loop grew to 8000 centres.
        after = (
            problem.in_data_precision().matvec(Xp, result.centers, result.coef).astype(np.float64)
        )
        name = result.info.get("solver", name)  # a one-pass solve's fallback: nystrom-pcg
        entry = {
            "n_centers": m,
            "solver": name,
            "seconds": time.perf_counter() - start,
            "estimate_s": pcg_s,
        }
        tried.append(entry)
        if before is not None:
            settled, entry["change"] = _settled(before, after, Yp, classify)
            if settled:
                note(
                    f"{name}: {m} centres (d_eff ~ {d_eff:.0f}); the predictions changed by "
                    f"{entry['change']:.2g} from {previous_m} centres: settled"
                )
                break
        if idx.size < m:  # every row of positive weight is a centre: nothing to add
            note(f"{name}: all {idx.size} rows of positive weight as centres")
            break
        before, previous_m = after, m
        m = min(n, 2 * m)
    return _finish(result, result.info["solver"], log, tried)


def run_nystrom(
    problem,
    centers,
    name,
    *,
    max_iter,
    tol,
    verbose,
    initial_coef=None,
    monitor=None,
    center_rows=None,
) -> SolverResult:
    """One Nystrom fit with the named solver; ``info["solver"]`` says which. A warm start
    (``initial_coef``) and a ``monitor`` are PCG's: the one-pass solver is exact.
    ``center_rows``: the centres' rows in ``problem.X``, where they are rows (PCG's
    preconditioner counts heavy rows by their weight: ``solve_nystrom_pcg``; the one-pass
    solve needs no preconditioner, and its rare PCG fallback uses Falkon's own)."""
    if name == "nystrom-direct":
        result = solve_nystrom_direct(problem, centers, verbose=verbose, max_iter=max_iter, tol=tol)
    else:
        result = solve_nystrom_pcg(
            problem,
            centers,
            max_iter=max_iter or 100,
            tol=tol,
            verbose=verbose,
            initial_coef=initial_coef,
            monitor=monitor,
            center_rows=center_rows,
        )
    # The solver that produced the model: nystrom-direct hands over to PCG as a last resort.
    result.info["solver"] = "nystrom-pcg" if result.info.get("fallback") == "nystrom-pcg" else name
    return result


def first_center_count(problem: Problem, rng: np.random.Generator) -> int:
    """The number of centres auto's growing loop starts from, ``max(MIN_CENTERS,
    4 d_eff)`` (at most n and MAX_FIRST_CENTERS): the centres of a fit that cannot grow
    them, such as one stopped early on held-out data."""
    n = problem.X.shape[0]
    if n <= MIN_CENTERS:
        return n
    d_eff, _ = effective_dimension(problem, rng)
    return int(min(n, MAX_FIRST_CENTERS, max(MIN_CENTERS, 4 * d_eff)))


def solve_nystrom_choice(
    problem, centers, *, max_iter, tol, verbose, center_rows=None
) -> SolverResult:
    """``solver="auto"`` with ``n_centers`` given: the Nystrom solver the cost model picks
    (``CostModel.best_nystrom``), its estimates recorded in ``info["auto"]``.
    ``center_rows``: as for :func:`run_nystrom`."""
    n, d = problem.X.shape
    rates, rates_source = current()
    costs = CostModel(
        n, d, problem.Y.shape[1], problem.kernel_dtype, rates, data_dtype=problem.X.dtype
    )
    m = centers.shape[0]
    estimates = {name: costs.best_nystrom(m, (name,))[1] for name in NYSTROM_SOLVERS}
    span = weights_span_beyond_pcg(problem.sample_weight)
    groups = outnumbered(problem.sample_weight, m)
    name = "nystrom-direct" if span or groups else costs.best_nystrom(m)[0]
    step = f"{name}: {m} centres given; est. " + ", ".join(
        f"{k} {v:.2g} s" for k, v in estimates.items()
    )
    if span:
        step += f"; the weights span more than {WEIGHT_SPAN_PCG:g}, beyond PCG's relative tol"
    elif groups:
        step += "; more rows weigh apart than PCG's preconditioner counts by themselves"
    log = {"estimates": estimates, "steps": [step], "rates": rates_source}
    if verbose:
        say(f"[auto] rates: {rates_source}")
        say(f"[auto] {step}")
    result = run_nystrom(
        problem,
        centers,
        name,
        max_iter=max_iter,
        tol=tol,
        verbose=verbose,
        center_rows=center_rows,
    )
    return _finish(result, result.info["solver"], log)


def _run_exact(problem, name, max_iter, tol, rng, verbose) -> SolverResult:
    if name == "direct":
        return solve_direct(problem.in_data_precision())
    return solve_kernel_pcg(
        problem,
        max_iter=max_iter or DEFAULT_MAX_ITER,
        tol=tol,
        random_state=rng,
        verbose=verbose,
    )


def _finish(result: SolverResult, solver: str, log: dict, tried=None) -> SolverResult:
    log["solver"] = solver
    if tried:
        log["tried"] = tried
    result.info = dict(result.info, solver=solver, auto=log)
    return result
