"""Kernel logistic regression over M centres by Newton steps, each solved by
preconditioned CG over the data (LogisticFalkon's recipe: Marteau-Ferey, Bach, Rudi 2019,
Meanti et al. 2020), with a line search that LogisticFalkon leaves out.

Objective, with ``f = K(., C) a + b`` (one column of ``a`` and one intercept per class for
the multinomial loss, one logit for two classes) and sample weights w::

    J(a, b) = sum_i w_i loss(y_i, f(x_i)) + alpha / 2 * ||h||_H^2,   ||h||_H^2 = tr(a^T K_MM a)

``loss`` is the binary log-loss or the multinomial cross-entropy, and the intercept ``b``
is not penalised: scikit-learn's LogisticRegression with its default ``fit_intercept=True``
(``C * sum loss + ||w||^2 / 2``), ``alpha = 1 / C``; the model with every training point as
a centre is exact kernel logistic regression, and on Nystroem features of the same centres
LogisticRegression minimises the same objective (tests/test_logistic.py). With a wide
kernel the penalised part can carry a constant cheaply and the intercept changes little
(test log-loss on spam, M = 1000: 0.1624 against 0.1627 without it); where it cannot, the
intercept holds the classes' base rates far from the data. For k classes only the
differences of the intercepts matter; the fit keeps their sum at zero (their gradient sums
to zero over the classes).
Where K_MM is too close to singular for its Cholesky, a jitter is added to its diagonal
and the jittered matrix is the penalty's (as in Falkon; ``info["jitter"]``).
Rows of zero weight are dropped before anything else (``_weighted_rows_only``): below, n
counts the rows of non-zero weight, and no decision of the fit depends on the others.

Each Newton step solves ``H (d, e) = -(g, h)`` for the steps of ``a`` and ``b``, with
``H = [A, C; C^T, B]``, ``A = K_nM^T S K_nM + alpha K_MM``, ``C = K_nM^T S 1`` and
``B = 1^T S 1`` (S: the loss's curvature, per sample ``w p (1 - p)`` for two classes,
``w (diag(p) - p p^T)`` for k). The intercepts are eliminated exactly: CG solves the Schur
complement ``(A - C B^+ C^T) d = -g + C B^+ h`` (B is k x k; its pseudo-inverse, whose null
direction is the intercepts' common shift), then ``e = -B^+ (h + C^T d)``. C is never
formed for k classes as a matrix: its products with a step and with ``B^+ h`` are the
curvature applied to ``K_nM V`` and to a constant, so the complement costs the passes of
``A`` and the right-hand side rides on the gradient's pass (with a stored K_nM, C^T V
comes from a tensor: below). The preconditioner is Falkon's for its ridge with the
curvature at the centres (LogisticFalkon's): ``K_nM^T S K_nM ~ (n / M) K_MM S_M K_MM``, so
with ``L L^T = K_MM``, ``A ~ L [(n / M) L^T S_M L + alpha I] L^T = L LA LA^T L^T``, one
M x M Cholesky of K_MM for the whole fit and one more per step (for k classes, S_M is their
mean curvature: see below); for the Schur complement the same approximation of ``C`` and
``B`` centres the curvature, ``S_M - s s^T / sum s`` (s its diagonal), a rank-one downdate
of the inner matrix before its Cholesky. Without that downdate CG took 40% to 160% more
iterations than without an intercept; with it, on satellite (6 classes, M = 1000), 241
against 345 (fewer: the centred curvature matches the kernel block's own constant
direction better), and within 15% elsewhere.
Safeguards LogisticFalkon does without (it relies on a decreasing penalty schedule):
CG stops at an Eisenstat-Walker tolerance (loose far from the optimum, tight near it),
and a step must decrease the objective enough (Armijo), so no step can diverge. One pass
K_nM d per step makes the objective along the step O(n k) at any length: where the full
step fails the test, the step goes to the objective's minimum along the direction (a few
1-D Newton iterations on the slope of the convex objective along it, ``_line_minimum``),
halved from there only if that still fails. Halving from the full step instead put
shuttle (7 classes, nearly separable rare classes under a small penalty) through 13
damped Newton steps of a quarter step or less; after one step to the line's minimum the
rest were full steps (23 Newton steps and 343 CG iterations became 15 and 256). Where
K_nM is small enough (``CACHE_BYTES``) it is computed once and kept, in float64, or in
float32 where only that fits (:mod:`gramfree.solvers._stored_columns`: the products stay
float64 arithmetic on the stored values), and the passes are products with it: CG's take
one native pass over it (:meth:`StoredColumns.curvature_product`). For k classes that
pass needs the shift ``z = B^+ C^T V`` before it starts, so C is then formed once per
Newton step as an M x k x k tensor (``_coupling_tensor``, up to ``ONE_PASS_CLASSES``
classes; beyond, two BLAS passes with z from ``K_nM V`` in between).
Whitened coordinates (Falkon's): with K_nM stored in float64, where the cost model says it
pays (``_whitening_pays``), the solver works in ``beta = L^T a`` over ``B = K_nM L^-T``,
formed once in K_nM's memory by a blocked triangular solve (n M^2 flops): then ``f = B
beta + b``, the penalty is ``alpha / 2 ||beta||^2`` (K_MM is the identity there) and the
preconditioner is ``(LA LA^T)^-1`` alone, so each CG iteration saves the product with
K_MM and two of the preconditioner's four M x M triangular solves, and the Gram
preconditioner needs no whitening solves (``B^T S B`` is already whitened). The same
model and objective; the coefficients are mapped back, ``a = L^-T beta``, for the result
and the monitor, and a warm start forward. Not with K_nM's values in float32 (stored so, or computed so
by ``kernel_precision="float32"``: B would carry their rounding amplified by L^-1) nor
recomputed on every pass (``info["whitened"]``).
Each step's CG is preconditioned by that preconditioner updated with up to
``SECANT_PAIRS`` of the previous step's CG directions p and their products H p, as L-BFGS
updates its initial inverse Hessian (``_SecantPairs``; Morales and Nocedal 2000). The
Hessian changes little between steps near the optimum, and the update carries the
directions the previous step's CG explored; measured, CG took fewer iterations on seven
of the suite's eight sets (satellite 240 -> 161, Fashion-MNIST at M = 4000 777 -> 610;
digits 26 -> 28), while for another system with the same matrix the update costs
iterations (``_SecantPairs``).
Where the data has more than 16/3 rows per centre, CG's products use a sample of the
rows (``_hessian_sample``): about 4 M of them, drawn with probability proportional to
their curvature and weighted by its inverse, so that the sampled Hessian (coefficients
and intercepts) is the exact one in expectation and the many nearly certain rows of a
well-fitted model are represented by a few; the gradient, the objective and the steps
stay exact, so the fit reaches the same optimum, and each step checks the sample against
the exact Hessian along the step it took (O(n k): ``K_nM d`` is computed over all rows
anyway), doubling it where they differ by more than 25%, when that step's decrement
cannot end the fit (up to 3/4 of the rows; with a stored K_nM and the native pass the
sample's rows are read in place, by index; with BLAS's two passes copied, within the
storage budget). On shuttle (43500 rows, 7 classes, M = 1000)
CG's products took 9% of the rows at every step (15 Newton steps and 190 CG iterations
became 18 and 209); on letter 27% for three steps, then 53% (12 and 151 became 13 and
156); on Fashion-MNIST (M = 4000) 27% for five steps, then 53% (12 and 610 became 15 and
520). Beside the curvature's exact Gram as preconditioner (two classes), every row.
A step keeps the last step's preconditioner where a build costs more than the CG
iterations keeping it has cost, by the cost model's counts, never the clock
(:mod:`gramfree.solvers._kept_preconditioner`): with every training point a centre (the
default up to 4000 rows) a build is an M^3 factorization worth 5 to 9 CG iterations, of
which a step took 1 or 2; the fits of spam, dna and mnist5k (3450, 2389 and 3750 centres)
were 1.44x, 1.56x and 1.33x as fast as with a build at every step, for the same test
log-loss (``benchmarks/bench_logistic.py --centers 0 --compare-keep``, 2026-12-04); at
M = 1000 satellite, spam and mnist5k keep it on no step.
Convergence: the Newton decrement ``-g^T d`` estimates twice the distance to the optimum;
the fit stops after the step whose decrement was below ``2 tol`` times the objective (the
step then leaves a relative suboptimality far below ``tol``: Newton converges
quadratically there), or when the objective no longer moves in float64, and only where
each of these agrees:

* CG's decrement only bounds the step's from below, so a step that could end the fit has
  its CG run on to END_FORCING instead of FORCING_FLOOR. With few centres, a small alpha
  and a narrow kernel the preconditioner misjudged the curvature so far that CG met its
  forcing term with a decrement 10 to 100 times too small (iris, 12 centres: 2e-3 above
  the optimum at tol 1e-4). A step whose CG ran out of iterations before its tolerance
  ends the fit only where the objective's last decreases, extrapolated at their slower
  rate, leave less than tol (``_linear_rest_small``). That run stops sooner where the
  end is already certain: the penalty makes ``H >= alpha K_MM``, so CG's decrement plus
  ``||r||^2 / alpha`` (r its residual, whitened) bounds the whole decrement from above
  (``_rest_bound``); once that is below the threshold, no further iteration could refuse
  the end (satellite, M = 1000: the last step's CG took 47 iterations in place of 119).
* The objective's decrease over the step is its quadratic model's within QUADRATIC_MODEL
  (``_quadratic_there``, the ratio trust-region methods judge a model by): far from the
  optimum's quadratic basin the decrement does not bound the distance (breast cancer, 40
  centres, a narrow kernel: decreases 1.4 to 1.6 times the model's, and the fit ended
  8e-4 above the optimum at tol 1e-4).
* A check no preconditioner enters (``_end_refused``): a lower bound of the decrement
  from the steepest descent, and CG's decrement against the gradient's preconditioned
  norm; fits had stopped silently at 30 to 190 times the optimum's objective (wine,
  digits; tests/test_logistic_end.py).
* With a penalty, the duality gap at the point the step reached is within ``END_GAP``
  tol of the objective (``gramfree.solvers._logistic_gap``): an upper bound of the
  distance to the optimum from the next pass's gradient, which starts the next step where
  it refuses the end (one pass more per fit). The log-loss is not self-concordant: near
  separation (breast cancer, 12 to 80 centres, a narrow kernel, alpha 1e-10 n to 1e-6)
  fits passed every test above at 1.7e-3 to 3.7e-3 above the optimum at tol 1e-4. Over
  517 fits of four sets (12 to 80 centres, gamma 1 to 30 / d, alpha 1e-10 n to 1e-2,
  three seeds) the nine that had ended silently above 2 tol (two above 1e-3) reached the
  optimum, at 1% more Newton steps and 2.6% more CG iterations in all. On the real-data
  suite (spam, dna, satellite, digits, mnist5k; M = 1000; the tuned and the narrow
  kernel; alpha 1e-2 and 1e-4) it refused 3 of 20 ends that were 1.4e-5 to 3e-5 above
  the optimum (its bound 7 to 10 times that): 307 Newton steps became 315 and 7468 CG
  iterations 7949 (2026-12-06; counts, not timings: ``benchmarks/bench_logistic.py``
  has the fit times, and at its alpha 0.01 no end was refused).

On letter (26 classes, M = 1000), a stricter ``tol^2`` rule took two more steps and 60%
more CG iterations for a test log-loss equal to four digits.

Preconditioner per step: ``"gram"`` forms the curvature's Gram ``K_nM^T S K_nM`` itself
(one pass of n M^2, the one-pass Nystrom solver's) so that CG converges in an iteration or
two, where that costs less than ``GRAM_SAVES_CG`` CG iterations; otherwise ``"centres"``,
LogisticFalkon's. For k classes both pool the curvature over the classes (their mean), and
neither captures the softmax's coupling between classes, which is what makes CG take tens
of iterations per step near the optimum: on letter the exact Gram saved under 10% of
them, and one factor per class (the curvature of each class at the centres) saved 30% on
satellite but cost 50% more on letter, and each class's exact Gram (the block diagonal of
H) cut satellite's CG iterations from 347 to 111 but costs n M^2 k per step, as much as
~M / 4 CG iterations (a one-off experiment, not a benchmark: the fit was slower for it);
so k classes use "centres" with one factor.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import scipy.linalg as sla
from scipy.special import expit, log_expit, logsumexp, softmax

from .. import _blas, _core
from .._threads import small_blas
from ..linalg import jittered_cholesky, lower_gram, solve_lower_in_place, solve_triangular
from ..operators import KernelOperator
from . import _stored_columns
from ._common import Monitor, Problem, Progress, SolverResult, heavy_rows, memory_bytes
from ._hessian_sample import HessianSample
from ._kept_preconditioner import (
    KeptPreconditioner,
    build_cost,
    iteration_cost,
    whitening_saves,
)
from ._logistic_gap import duality_gap
from ._stored_columns import StoredColumns, stored_kernel_block
from .auto import _entry_flops
from .nystrom_direct import RANK_DEFICIENT, _gram_pass, rows_for
from .rates import current as current_rates

# Armijo's sufficient decrease, and the fewest step halvings before giving up on a step.
ARMIJO = 1e-4
MAX_HALVINGS = 30
# Largest CG iterations per Newton step (the Eisenstat-Walker tolerance stops far sooner;
# with every point a centre one or two).
MAX_CG = 200
# The CG tolerance never tightens below this relative residual: each Newton step then
# still cuts the decrement ~100-fold, without the hundreds of CG iterations per step
# that superlinear convergence costs near the optimum (satellite, M = 1000: the last
# three steps took 386 of 457 iterations for a relative change of 5e-4; with the floor
# 276 of 347).
FORCING_FLOOR = 0.1
# The CG tolerance of the step after a small decrement was refused as the fit's end
# (``_end_refused``): there the preconditioner misled CG, so that step's CG runs until its
# residual falls a hundredfold.
TIGHT_FORCING = 0.01
# A step whose decrement is small enough to end the fit has its CG run on until its
# residual has fallen by this much (``_pcg``'s ``end``). Where a preconditioner misjudges
# the curvature (few centres, a small alpha, a narrow kernel), CG met FORCING_FLOOR with a
# decrement tens to a hundred times too small, and fits ended silently up to 2e-3 above
# the optimum at tol 1e-4 (iris, 12 centres, alpha 1e-7 n, gamma 10/d:
# tests/test_logistic_end.py). 0.03 left 5 of about 190 such fits (iris, wine and breast
# cancer; 12 to 40 centres; alpha 1e-12 n to 1e-7 n; three seeds) silently above tol, up
# to 3.6e-3; 0.01 left 3, at most 4e-4 (1.5e-4 to 4e-4); before these tests, 15. Its
# cost with the other end tests over 40 fits of the real-data suite (spam, dna,
# satellite, digits, mnist5k; two kernels, two alphas, M = 1000 and the default): a
# median of 24% more CG iterations (0.03: 13%), the objectives the same within 1e-5.
# Where the rest bound certifies the end first (``_rest_bound``), the run stops there: over
# the same 40 fits a median of 18% fewer CG iterations than without it (0 to 31%), the
# objectives within 2.4e-6 (2026-12-05); the small-alpha sweep's ends unchanged (the same
# 3 above tol, no new one).
# Where it does not, CG goes on past END_FORCING until the bound certifies the end, its
# decrement leaves the threshold, or its residual reaches rounding (UNCERTIFIED_FLOOR) or
# MAX_CG; only then does CG's own decrement decide (``solver_info_["end_certified"]``).
# Stopped at END_FORCING, CG's decrement missed what its residual left in the Hessian's
# softest directions (a small alpha): wine, 12 centres, alpha 1e-12 n, gamma 10/d ended
# 1.4e-3 above the optimum, the dense decrement at the end 33 times the threshold
# (tests/test_logistic_end.py). Not where the Hessian is sampled (_hessian_sample): there
# the extra iterations found decrements no step realised (a review: 20000 rows, 30
# centres, alpha 1e-11 n: 4265 CG iterations against 1111, the same objective).
END_FORCING = 0.01
# The largest duality gap, in units of tol times the objective, at which a fit that passed
# the end tests ends (gramfree.solvers._logistic_gap).
END_GAP = 2.0
# The residual's fall (relative to CG's start, in the preconditioner's norm) past which an
# uncertified end's CG stops: rounding's level.
UNCERTIFIED_FLOOR = 1e-10
# The largest relative difference between a step's decrease of the objective and its
# quadratic model's at which a small decrement may end the fit (``_quadratic_there``), and
# the decrease below which both are rounding.
QUADRATIC_MODEL = 0.1
ROUNDING_DECREASE = 1e-11
# The least ratio of CG's decrement to the gradient's preconditioned norm at which a small
# decrement may end the fit (``_end_refused``).
MIN_DECREMENT_RATIO = 0.01
# CG iterations per Newton step that the curvature's exact Gram as preconditioner is
# expected to save over the centres' curvature (letter, M = 1000: 40 to 170 per step near
# the optimum against ~1 to 10).
GRAM_SAVES_CG = 30.0
# K_nM is computed once and kept when it is at most this large (and this share of the
# physical memory): then a CG iteration costs GEMMs of n M k flops instead of a kernel
# pass of n M d (mnist5k, d = 784, M = 1000, 10 classes: bench_logistic.py's fit went
# from 54 s to 7.5 s on this project's 2-core machine; README).
# Beyond it, float32 where that fits (half the bytes; the kernel values rounded to
# float32, the products still float64), and beyond that every pass recomputes the kernel
# values (Gram-free, as Falkon).
CACHE_BYTES = 2.0 * 2**30
CACHE_SHARE = 0.1
# Most classes for which CG's multinomial products with a stored K_nM take one pass over it
# (:meth:`StoredColumns.curvature_product`): the pass needs the intercepts' shift z before
# it starts, from a coupling tensor that costs a product with k (k + 1) / 2 columns per
# Newton step (``_coupling_tensor``); with 26 classes that is 351 columns, more than the
# tens of CG iterations per step save (one pass each), so more classes keep two passes.
ONE_PASS_CLASSES = 12
# A step that fails Armijo's test at full length goes to the objective's minimum along its
# direction (module docstring); False: halved from the full step, as before 2026-12-03.
# The 1-D search's most iterations, each O(n k) (2 to 8 on the tests' inputs).
LINE_MINIMUM = True
LINE_ITERATIONS = 12
# Each Newton step's CG is preconditioned by the centres' (or the Gram's) preconditioner
# updated by up to this many of the previous step's CG directions and their Hessian
# products (``_SecantPairs``; 0: not updated, as before 2026-12-04). Measured, not proven:
# with 20 pairs CG took 161 in place of 240 iterations on satellite, 190 of 256 on
# shuttle, 151 of 217 on letter, 24% fewer over the suite's eight sets, more on digits
# (28 against 26); 10, 20 and 30 pairs within 10% of each other; pairs kept over several
# steps did worse, and so did using them only once the forcing term fell below 0.5 (710
# against 673 iterations on seven sets). At most SECANT_BYTES of pairs: while a step's
# CG runs, the previous step's pairs and up to twice as many new ones are held.
SECANT_PAIRS = 20
SECANT_BYTES = 256 * 2**20
# Whitened coordinates (module docstring): False keeps the coefficients of K_nM (as before
# 2026-12-04). WHITEN_CG: the CG iterations per fit the decision assumes (the suite's
# sets at M = 1000: 25 to 163).
WHITEN = True
WHITEN_CG = 40


def solve_logistic(
    problem: Problem,
    centers: np.ndarray,
    center_rows: np.ndarray,
    *,
    max_iter: int,
    tol: float,
    verbose: int | bool = False,
    preconditioner: str = "auto",
    initial_coef: np.ndarray | None = None,
    initial_intercept: np.ndarray | None = None,
    monitor: Monitor | None = None,
) -> SolverResult:
    """Fit the penalised log-likelihood (module docstring).

    ``initial_coef`` (M x k) and ``initial_intercept`` (k,): a warm start. ``monitor``:
    called after every Newton step with the coefficients and ``intercept=`` the intercepts;
    True stops (:class:`gramfree.solvers._common.Monitor`). The result's ``intercept``
    holds the intercepts (k,).

    ``problem.Y``: (n, 1) of 0/1 (two classes: the logit of class 1) or (n, k) one-hot.
    ``center_rows``: the centres' rows in ``problem.X`` (their curvature feeds the
    preconditioner). ``max_iter``: Newton steps."""
    problem, center_rows = _weighted_rows_only(problem, center_rows)
    X = problem.X
    Y = problem.Y.astype(np.float64)
    n, k = Y.shape
    M = centers.shape[0]
    binary = k == 1
    w = np.ones(n) if problem.sample_weight is None else problem.sample_weight.astype(np.float64)
    alpha = problem.alpha
    start = time.perf_counter()
    represents = _rows_represented(problem.sample_weight, center_rows, n, M)

    # L L^T = K_MM + jitter: as in Falkon, the factor stands in for K_MM in the penalty
    # too. With a singular K_MM (coinciding centres, a linear kernel of rank d) the
    # jittered penalty keeps the null directions' coefficients bounded, and
    # ||L^T a||^2 cannot round below zero as a^T K_MM a can.
    L, jitter = jittered_cholesky(
        np.asarray(problem.operator(centers).to_dense(), dtype=np.float64), overwrite=True
    )

    op: KernelOperator | StoredColumns = problem.operator(X, centers)
    threads = getattr(op, "_threads", 0)  # the operators' OpenMP threads (n_jobs)
    unit = np.ones(M)

    def kmm(V: np.ndarray) -> np.ndarray:
        """``K_MM V = L L^T V``, once per CG iteration, by the same kind of code as the
        loop's other products: natively (OpenMP) beside native passes, since two BLAS
        GEMMs between them leave OpenBLAS's workers spinning on the cores the next native
        call needs (``benchmarks/bench_curvature.py``'s fits time both routes); by BLAS
        beside the two-pass BLAS products (``native_kmm``)."""
        if whitened:  # K_MM in whitened coordinates: the identity
            return V
        if not native_kmm:  # beside BLAS's products in the loop: BLAS (as before 2026-12-03)
            return _blas.matmul(L, _blas.matmul(L.T, V))
        return _core.curvature_product(factor_rows, V, unit, n_threads=threads)

    dtype = problem.kernel_dtype
    stored_dtype = _stored_dtype(n, M)
    whitened = False  # the coefficients in L^T a, the operator B = K_nM L^-T (docstring)
    if stored_dtype is not None:  # K_nM once; every pass after it is a GEMM (docstring)
        K = stored_kernel_block(problem, X, centers, stored_dtype)
        if stored_dtype == np.float32 and not np.isfinite(K).all():
            # Kernel values beyond float32's range (a polynomial kernel of large features):
            # recomputed in the kernel's own precision on every pass instead.
            stored_dtype = None
            del K
        else:
            # B = K_nM L^-T in place of K_nM where that pays (module docstring): K^T's
            # columns (the rows of the C-ordered K) solved by L, blocked (GEMM's rate).
            # Only float64 kernel values: float32-rounded ones (float32 storage, or
            # kernel_precision="float32" widened) would carry that rounding into B
            # amplified by L^-1.
            whitened = (
                stored_dtype == np.float64
                and np.dtype(problem.kernel_dtype) == np.float64
                and _whitening_pays(n, M, k)
            )
            if whitened:
                solve_lower_in_place(L, K.T)
            op = StoredColumns(K, n_threads=getattr(op, "_threads", 0))
            dtype = np.dtype(np.float64)  # its products in float64, whatever kernel_dtype says
    cached = stored_dtype is not None
    # L^T with rows of unit stride (a copy of the F-ordered factor's transpose), and unit
    # weights: the native product K^T diag(w) K V with K = L^T is L L^T V (not where
    # whitened: K_MM is the identity there).
    factor_rows = None if whitened else np.ascontiguousarray(L.T)
    rest_bound = _rest_bound(alpha, L, whitened)  # certifies ends in _pcg
    # CG's products with a stored K_nM in one native pass (for k classes with the coupling
    # tensor below), else two BLAS passes; K_MM V goes the same way (natively beside the
    # native passes and the recomputing operator's, by BLAS beside BLAS's: kmm).
    one_pass = cached and op.one_pass(k) and (binary or k <= ONE_PASS_CLASSES)
    native_kmm = _stored_columns.NATIVE_CURVATURE and (
        one_pass
        or (
            not cached  # the recomputing operator's passes are native too, on the CPU
            and getattr(op, "device", "cpu") == "cpu"
            and 8.0 * k * M <= _stored_columns.NATIVE_MAX_ACCUMULATOR_BYTES
        )
    )

    def loss_of(F: np.ndarray) -> float:
        return float(w @ _log_losses(F, Y))

    def probabilities(F: np.ndarray) -> np.ndarray:
        return expit(F) if binary else softmax(F, axis=1)

    def to_kernel(V: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(V, dtype=dtype)

    def coefficients(A: np.ndarray) -> np.ndarray:
        """The kernel coefficients (of K(x, centres)) of the solver's ``A``."""
        return solve_triangular(L, A, trans=True) if whitened else A

    a = np.zeros((M, k))
    b = np.zeros(k)  # the intercepts, unpenalised
    F = np.zeros((n, k))  # K_nM a + b
    Ka = np.zeros((M, k))  # K_MM a
    if initial_coef is not None:
        a[...] = L.T @ initial_coef if whitened else initial_coef
        F[...] = (op @ to_kernel(a)).astype(np.float64)
        Ka[...] = kmm(a)
    if initial_intercept is not None:
        b[...] = initial_intercept
        if not binary:  # only differences matter: keep the sum at zero (module docstring)
            b -= b.mean()
        F += b
    objective = loss_of(F) + 0.5 * alpha * float(np.sum(a * Ka))
    objective_zero = objective
    loss_curve: list[float] = []
    # Seconds since the fit began at the end of each Newton step, beside loss_curve: how
    # long the fit took to reach each objective (benchmarks/bench_logistic.py compares
    # that with another solver's final objective).
    step_seconds: list[float] = []
    progress = Progress(verbose, max_iter, "logistic")
    cg_total, halvings_total, line_minima, n_iter = 0, 0, 0, 0
    converged = False
    gnorm0 = None
    s = float(np.sum(w))
    if preconditioner == "auto":
        preconditioner = "gram" if _gram_pays(n, M, X.shape[1], k) else "centres"
    if preconditioner not in ("gram", "centres"):
        raise ValueError(
            f"preconditioner: expected 'auto', 'gram' or 'centres', got {preconditioner!r}"
        )
    # Whitening by a (numerically) singular K_MM amplifies the Gram's rounding beyond any
    # use (the one-pass solver's RANK_DEFICIENT test): LogisticFalkon's there.
    pivots = np.diag(L) ** 2
    use_gram = (
        preconditioner == "gram"
        and jitter == 0.0
        and (pivots.min() >= RANK_DEFICIENT * pivots.max())
    )
    gram_failures = 0
    secant = _SecantPairs(min(SECANT_PAIRS, int(SECANT_BYTES // (48 * M * k))))
    sample = HessianSample(n, M)
    # Where CG's products take BLAS's two passes over a stored K_nM, a sample's rows are
    # copied out of it each step: only as many as the storage budget has left beside it.
    copy_rows = math.inf
    if cached and not one_pass:
        budget = min(CACHE_BYTES, CACHE_SHARE * memory_bytes()) - op.K.nbytes
        copy_rows = max(budget, 0.0) / (M * op.K.itemsize)
    # The rates read once: the path depends on the inputs and the saved rates only.
    fit_rates = current_rates()[0]
    stored_bytes = 0 if stored_dtype is None else np.dtype(stored_dtype).itemsize
    ascents = 0  # CG runs whose direction ascended, replaced by the preconditioned gradient
    # Ends of the fit refused by the decrement's lower bound, and whether the next CG runs
    # to TIGHT_FORCING for it (below).
    refusals, tighten, end_products, unconfirmed = 0, False, 0, 0
    end_certified: bool | None = None
    # An end the step's tests accepted, held until the next pass's gradient gives the
    # duality gap at the point it reached (below), and end_certified's value for it.
    end_pending, pending_certified = False, None
    gap_refusals = 0
    # The last duality gap, the Newton step it was computed at, and whether it was a
    # refusal on the last step max_iter allows (the estimator's warning says so).
    gap, gap_step, refused_at_max_iter = None, -1, False

    def gap_certifies() -> bool:
        """Whether the duality gap at the current point (this pass's gradient) is
        within END_GAP tol of the objective (gramfree.solvers._logistic_gap)."""
        nonlocal gap, gap_step
        gap = duality_gap(rhs, rest_bound, P, w, intercept_inverse, g_b)
        gap_step = n_iter
        return gap <= END_GAP * tol * objective

    decreases: list[float] = []  # the objective's decrease at each step
    kept = KeptPreconditioner(
        build_cost(
            n,
            M,
            X.shape[1],
            gram=use_gram,
            stored=cached,
            rates=fit_rates,
            whitened=whitened,
        )
    )
    stopped = None  # why the fit stopped early, where it could take no Newton step
    line_stalled = False  # no step size lowered the objective in float64 (below)
    # Small M: every BLAS call of the fit is small (the largest, a step's M x M Cholesky),
    # so all of them on one thread (gramfree._threads).
    with small_blas(M**3 / 3.0):
        while n_iter < max_iter or end_pending:
            P = probabilities(F)
            R = w[:, None] * (P - Y)
            curvature = _curvature(P, w)
            g_b = R.sum(axis=0)
            intercept_inverse = curvature.intercept_inverse()
            # One pass for the gradient and C B^+ h, C = K_nM^T S 1 the intercepts'
            # coupling (module docstring): two classes keep c = K_nM^T S 1 itself (the
            # fused normal product below cannot give c^T V).
            extra = (
                curvature.diag
                if binary
                else curvature.apply(np.broadcast_to(intercept_inverse @ g_b, (n, k)))
            )
            both = op.rmatmat(to_kernel(np.hstack([R, extra]))).astype(np.float64)
            g = both[:, :k] + alpha * Ka
            coupling = both[:, k] if binary else None
            rhs = -g + (
                both[:, k:] if coupling is None else coupling[:, None] * (intercept_inverse @ g_b)
            )
            if objective <= 0.0 or not (rhs.any() or g_b.any()):
                # The objective's least value (it is never negative), or a gradient of
                # exact zeros: the optimum. With alpha = 0 and every probability rounded
                # to its label the curvature is zero too, and no preconditioner could
                # be factored.
                converged = True
                break
            if end_pending:
                # The last step passed the end tests: the end, where the duality gap at
                # the point it reached confirms it; else a refused end (below), and this
                # pass's gradient starts the next step.
                if gap_certifies():
                    converged, end_certified = True, pending_certified
                    break
                end_pending, tighten = False, True
                refusals, gap_refusals = refusals + 1, gap_refusals + 1
                if n_iter >= max_iter:
                    refused_at_max_iter = True
                    break
            # CG's Hessian from a sample of the rows drawn by their curvature, or from all
            # of them (gramfree.solvers._hessian_sample): h_op and h_curvature stand in
            # for op and curvature in its products, the gradient and the step stay exact.
            h_op, h_curvature, h_inverse, h_coupling = op, curvature, intercept_inverse, coupling
            # Not beside the curvature's exact Gram as preconditioner: that is the exact
            # Hessian, with which CG converges in an iteration or two, and a sample's
            # Hessian would take it further from the one CG solves.
            drawn = sample.draw(curvature.diag.sum(axis=1), every_row=use_gram, max_rows=copy_rows)
            if drawn is not None:
                rows, scale = drawn
                h_op = (
                    # By index beside the native pass (no copy), else copied once.
                    op.subset(rows, by_index=one_pass)
                    if isinstance(op, StoredColumns)
                    else problem.operator(X[rows], centers)
                )
                h_curvature = _curvature(curvature.P[rows], w[rows] * scale)
                h_inverse = h_curvature.intercept_inverse()
                if binary:
                    h_coupling = h_op.rmatmat(to_kernel(h_curvature.diag)).astype(np.float64)[:, 0]
            # The intercepts' coupling C = K_nM^T S 1 as an M x k x k tensor, where CG's
            # products then take one pass over the stored K_nM instead of two (below).
            coupling_tensor = (
                _coupling_tensor(h_op, h_curvature) if one_pass and not binary else None
            )
            pooled = curvature.pooled()
            # The last step's preconditioner where a rebuild costs more than keeping it
            # can (gramfree.solvers._kept_preconditioner).
            iteration = iteration_cost(
                n if drawn is None else drawn[0].size,
                M,
                k,
                X.shape[1],
                stored_bytes=stored_bytes,
                rates=fit_rates,
                whitened=whitened,
            )
            # Never on the last step max_iter allows: a kept step cannot end the fit.
            precond = kept.keep(iteration, last=n_iter + 1 >= max_iter)
            gram_failed = False
            built = precond is None
            if use_gram and precond is None:
                try:
                    # The intercept's elimination (below) downdates the Gram by the
                    # coupling c = K_nM^T s, whitened: L^-1 c (L^-1 c)^T / sum s.
                    c = (
                        coupling
                        if coupling is not None
                        else op.rmatmat(to_kernel(pooled[:, None])).astype(np.float64)[:, 0]
                    )
                    precond = _Preconditioner.from_gram(
                        L,
                        op.weighted_gram(pooled)
                        if cached
                        else _curvature_gram(problem, centers, pooled),
                        alpha,
                        downdate=(
                            c if whitened else solve_triangular(L, c[:, None])[:, 0],
                            float(pooled.sum()),
                        ),
                        whitened=whitened,
                    )
                except np.linalg.LinAlgError:  # whitening amplified rounding: not this step
                    gram_failures += 1
                    gram_failed = True
            if precond is None:
                # A centre whose row weighs zero (dropped: _weighted_rows_only) has none.
                at_centres = np.where(center_rows >= 0, pooled[center_rows], 0.0)
                centres_scale = n / M
                if represents is not None:  # heavy rows among the centres (below)
                    at_centres, centres_scale = at_centres * represents, 1.0
                try:
                    precond = _Preconditioner(
                        L,
                        at_centres,
                        alpha,
                        centres_scale,
                        # The same downdate in the centres' approximation (module docstring).
                        downdate=(
                            math.sqrt(centres_scale) * (L.T @ at_centres),
                            float(at_centres.sum()),
                        ),
                        whitened=whitened,
                    )
                except np.linalg.LinAlgError:
                    # Without a penalty, a curvature that underflowed at the centres (a
                    # saturated loss) leaves nothing to factor: no Newton step can be
                    # formed, and the fit stops where it is, not converged, saying so.
                    # With one, alpha I keeps the inner matrix positive definite: an
                    # error there is not this case.
                    if alpha > 0:
                        raise
                    stopped = "the curvature at the centres underflowed"
                    break
            if built:
                # Not the first step's from zero (uniform probabilities): nothing like later.
                # Nor the centres' fallback of a failed Gram: the next step tries the Gram.
                keepable = (n_iter > 0 or initial_coef is not None) and not gram_failed
                kept.built(precond, keepable)

            # The intercepts eliminated exactly (module docstring): with B = H_bb (k x k,
            # pseudo-inverted), CG solves the Schur complement (A - C B^+ C^T) d =
            # -g + C B^+ h, and then e = -B^+ (h + C^T d). For k classes C^T V = 1^T S
            # (K_nM V) and C z = K_nM^T S (1 z^T), so the complement's product is
            # K_nM^T S (K_nM V - 1 z^T) with z = B^+ 1^T S K_nM V: two passes, or, with C
            # formed as the coupling tensor, z = B^+ C^T V first and then one pass.
            def hessian(V: np.ndarray) -> np.ndarray:
                if h_coupling is not None:
                    HV = h_op.normal_matvec(
                        to_kernel(V), sample_weight=to_kernel(h_curvature.diag[:, 0])
                    ).astype(np.float64)
                    HV -= h_coupling[:, None] * (h_inverse @ (h_coupling @ V))
                elif coupling_tensor is not None:  # z first, from C; then one pass
                    z = h_inverse @ np.einsum("mcd,md->c", coupling_tensor, V)
                    HV = h_op.curvature_product(V, h_curvature.w, h_curvature.P, z)
                else:
                    U = (h_op @ to_kernel(V)).astype(np.float64)
                    z = h_inverse @ h_curvature.apply(U).sum(axis=0)
                    HV = h_op.rmatmat(to_kernel(h_curvature.apply(U - z))).astype(np.float64)
                with small_blas(2.0 * M * M * k):
                    return HV + alpha * kmm(V)

            # The preconditioner's triangular solves (M x k) on one thread where they are
            # small (gramfree._threads); the products with a stored K_nM keep the fit's
            # threads: they stream n M k values, and limiting them too made the fits on
            # satellite, dna and spam slower (bench_logistic.py has the figures after).
            def serial_precond(R: np.ndarray) -> np.ndarray:
                with small_blas(4.0 * M * M * k):
                    return precond(R)

            # The forcing term's norm stays the base preconditioner's (the same metric at
            # every step, whatever the pairs); CG's own stopping test is in the updated
            # preconditioner's norm (relative to its start, so the two differ in where
            # CG stops by how that norm weighs the residual: about the same, 0.05 to 0.1
            # of the true residual, on digits).
            gnorm = math.sqrt(max(float(np.sum(rhs * serial_precond(rhs))), 0.0))
            gnorm0 = gnorm if gnorm0 is None else gnorm0
            forcing = min(0.5, max(FORCING_FLOOR, math.sqrt(gnorm / gnorm0))) if gnorm0 > 0 else 0.5
            if tighten:  # the last step's end was refused (below)
                forcing, tighten = TIGHT_FORCING, False
            # A step whose decrement could end the fit has its CG run to TIGHT_FORCING:
            # CG's decrement only bounds the step's from below.
            constant = float(g_b @ intercept_inverse @ g_b)
            end_threshold = 2.0 * tol * objective
            d, cg_iters, extended, certified = _pcg(
                hessian,
                rhs,
                secant.wrap(serial_precond),
                forcing,
                MAX_CG,
                record=secant.record,
                end=(end_threshold - constant, END_FORCING),
                rest_bound=rest_bound,
                # Not with a Hessian sample: past END_FORCING its CG found decrements of
                # directions the sample's rows barely curve, which no step realised (a
                # review: 20000 rows, 30 centres, alpha 1e-11 n, 4265 CG iterations against
                # 1111, the same objective); the sample's own check covers its ends.
                past_end_forcing=drawn is None,
            )
            kept.ran(cg_iters, iteration)
            secant.finish()
            cg_total += cg_iters
            Kd, e, decrement = _step_terms(
                op @ to_kernel(d), d, g, g_b, intercept_inverse, coupling, curvature
            )
            if decrement <= 0.0:  # CG returned no descent direction
                if kept.kept_now:  # its preconditioner was stale: again, afresh
                    kept.refresh(failed=True)
                    continue
                if cg_iters > 0:
                    # Rounding in a nearly singular H (alpha = 0, saturated probabilities)
                    # can undo CG's conjugacy until its direction ascends (iris, alpha = 0:
                    # 200 iterations, and the fit reported convergence at objective 0.007
                    # where it goes to 0): the preconditioned gradient, a descent direction
                    # (its decrement rhs^T P^-1 rhs + h^T B^+ h > 0), instead.
                    d = serial_precond(rhs)
                    ascents += 1
                    Kd, e, decrement = _step_terms(
                        op @ to_kernel(d), d, g, g_b, intercept_inverse, coupling, curvature
                    )
                if decrement <= 0.0:  # nothing left to gain, where the gap agrees
                    converged = rest_bound is None or gap_certifies()
                    line_stalled = not converged
                    break
            Kmm_d = kmm(d)
            SKd = curvature.diag * Kd if binary else curvature.apply(Kd)
            # d^T H d with every row's curvature: the quadratic model's decrease along
            # the step, which the end test compares with the objective's (below).
            step_curvature = float(np.sum(SKd * Kd)) + alpha * float(np.sum(d * Kmm_d))
            sample_agreed = True  # the sample's check along the step (_hessian_sample)
            if drawn is not None:
                sample_agreed = sample.check(
                    np.sum(SKd * Kd, axis=1), alpha * float(np.sum(d * Kmm_d))
                )
            pen = (float(np.sum(a * Ka)), float(np.sum(d * Ka)), float(np.sum(d * Kmm_d)))
            t, new_objective = 1.0, math.inf
            for _ in range(MAX_HALVINGS):
                new_objective = loss_of(F + t * Kd) + 0.5 * alpha * (
                    pen[0] + 2 * t * pen[1] + t * t * pen[2]
                )
                if new_objective <= objective - ARMIJO * t * decrement:
                    break
                if t == 1.0 and LINE_MINIMUM:
                    # Below the full step (which just failed), else halved as without it.
                    t_line = _line_minimum(F, Kd, Y, w, alpha, pen, decrement, binary)
                    t = t_line if 0.0 < t_line < 1.0 else 0.5
                    line_minima += t == t_line
                else:
                    t *= 0.5
                halvings_total += 1
            else:
                if kept.kept_now:  # a stale preconditioner's direction: again, afresh
                    kept.refresh(failed=True)
                    continue
                # Rounding, not a bad direction: the objective cannot move in float64 here.
                # The end where the duality gap certifies it, without a penalty where the
                # decrement is at rounding.
                if rest_bound is not None:
                    converged = gap_certifies()
                else:
                    converged = decrement <= 1e-10 * max(abs(objective), 1.0)
                line_stalled = not converged
                break
            a += t * d
            b += t * e
            F += t * Kd
            Ka += t * Kmm_d
            previous, objective = objective, new_objective
            decreases.append(previous - objective)
            n_iter += 1
            loss_curve.append(objective / s)
            step_seconds.append(time.perf_counter() - start)
            sampled = "" if drawn is None else f" hessian_rows={drawn[0].size}"
            progress.update(n_iter, loss_curve[-1], f"cg={cg_iters} step={t:g}{sampled}")
            stop = monitor is not None and bool(
                monitor(n_iter, coefficients(a).astype(X.dtype), intercept=b.astype(X.dtype))
            )
            # A decrement from a sampled Hessian that failed its check is off by more
            # than MODEL_ERROR: it cannot end the fit (the next step's sample is larger).
            small = decrement <= 2.0 * tol * objective and sample_agreed
            if small and (
                (cg_iters >= MAX_CG and not _linear_rest_small(decreases[-3:], tol * objective))
                or not _quadratic_there(
                    previous - objective, t * decrement - 0.5 * t * t * step_curvature, objective
                )
            ):
                # The decrement estimates the distance to the optimum only where CG met
                # its tolerance and the objective is near its quadratic model (module
                # docstring): not the end.
                small, unconfirmed = False, unconfirmed + 1
            stalled = previous - objective <= 1e-15 * abs(previous)
            if (small or stalled) and kept.kept_now:
                # Nor one from a kept preconditioner: CG stopped in its (stale) norm
                # (gramfree.solvers._kept_preconditioner); the next step builds afresh.
                kept.refresh(failed=stalled)
                small = stalled = False
            # CG's decrement at its forcing term would have ended the fit, and the
            # rest of its run found more: that is a refused end (below) too.
            refused = extended and decrement > end_threshold
            if (small or stalled) and not refused:
                refused, products = _end_refused(
                    hessian, rhs, g_b, intercept_inverse, decrement, gnorm**2, 2.0 * tol * objective
                )
                end_products += products
            if refused:
                # CG's decrement only bounds the step's from below: where its
                # preconditioner misjudges the curvature by orders of magnitude (a small
                # alpha, few centres), one CG iteration can meet the forcing term with a
                # decrement hundreds of times too small, and the fit stopped far from the
                # optimum (wine, 20 centres, alpha 1e-7: objective 0.98 against 0.03). Not
                # the end then; the next step's CG runs to TIGHT_FORCING.
                small = stalled = False
                tighten = True
                refusals += 1
            if small or stalled:
                # Whether the rest bound certified the last CG's decrement (None: no
                # penalty, or the objective stalled). Uncertified: CG reached rounding,
                # MAX_CG or a non-positive curvature first, or ran on a Hessian sample,
                # whose CG stops at END_FORCING (END_FORCING's comment).
                pending_certified = certified if small and rest_bound is not None else None
                if rest_bound is None or stop:
                    # No penalty, no duality gap (gramfree.solvers._logistic_gap); or the
                    # monitor stopped the fit here anyway (its iterate is returned).
                    converged, end_certified = True, pending_certified
                    break
                end_pending = True
                continue
            if stop:
                break
    progress.close(f"{n_iter} Newton steps, {cg_total} CG iterations, converged={converged}")
    return SolverResult(
        centers=centers,
        coef=coefficients(a).astype(X.dtype),
        intercept=b.astype(X.dtype),
        n_iter=n_iter,
        loss_curve=loss_curve,
        converged=converged,
        info={
            "solver": "newton-pcg",
            "loss": "logistic",
            "n_centers": M,
            "jitter": jitter,
            "cg_iterations": cg_total,
            "preconditioner": "gram" if use_gram else "centres",
            "gram_failures": gram_failures,
            # Preconditioners built, and Newton steps that kept the last one
            # (gramfree.solvers._kept_preconditioner).
            "preconditioner_builds": kept.builds,
            "preconditioner_kept": kept.kept_steps,
            "cg_ascents": ascents,
            # Steps whose small decrement did not end the fit by _end_refused's checks,
            # or whose CG, run on to END_FORCING, found the decrement above the threshold.
            "convergence_refusals": refusals,
            # Steps with a small decrement that did not end the fit: CG ran out of
            # iterations, or the objective's decrease was not the quadratic model's.
            "unconfirmed_ends": unconfirmed,
            "end_certified": end_certified,
            # Ends the duality gap refused (counted in convergence_refusals too); the gap
            # at the returned point relative to the objective (None: not computed there);
            # the gap of a refused end at which max_iter ended the fit (else None; the
            # estimator's warning gives it).
            "gap_refusals": gap_refusals,
            "duality_gap": (
                None if gap is None or gap_step != n_iter else gap / max(objective, 1e-300)
            ),
            "gap_refused_at_max_iter": (
                gap / max(objective, 1e-300) if refused_at_max_iter and gap is not None else None
            ),
            # Hessian products those checks took beside CG's (the lower bound's, one each).
            "end_check_products": end_products,
            # Per CG run (Newton iterations attempted), whether it kept the last one.
            "preconditioner_kept_runs": kept.kept_runs,
            "stored_kernel_columns": False if stored_dtype is None else str(stored_dtype),
            # Whether CG ran in L^T a with B = K_nM L^-T stored (module docstring).
            "whitened": whitened,
            # Trial steps that failed the test (the full step's failure included), and the
            # steps shortened to the line's minimum instead of halved.
            "step_halvings": halvings_total,
            "line_minima": line_minima,
            # The most pairs a step's preconditioner was updated by (secant_pairs_limit),
            # and the pairs each step's CG used (0 at the first step).
            "secant_pairs_limit": secant.limit,
            "secant_pairs": secant.used,
            "stopped": stopped,
            # The line search found no step that lowered the objective in float64, short
            # of tol: more max_iter cannot help (its warning said so; a review).
            "line_search_stalled": line_stalled,
            # Rows in each Newton iteration's CG Hessian (n: all; one entry per iteration
            # attempted, so up to n_iter + 1), and the sampled steps' relative error
            # along the step (gramfree.solvers._hessian_sample).
            "hessian_rows": sample.rows_used,
            "hessian_sample_errors": sample.model_errors,
            "objective": objective / s,
            "objective_initial": objective_zero / s,
            "seconds": time.perf_counter() - start,
            "step_seconds": step_seconds,
            "warm_start": initial_coef is not None,
        },
    )


def _log_losses(F: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each row's log-loss, ``log(1 + e^f) - y f`` (Y: n x 1 of 0/1) or ``logsumexp(f) -
    f_y`` (Y one-hot), to its relative precision however small: as the difference of its
    two terms a loss of e^-30 at logits of 30 was rounding (3e-15, each), which five rows
    weighing 1e6 made 4e-5 of the objective, and the line search stopped there on
    rounding (iris, alpha 1e-8: a false "did not reach tol")."""
    if Y.shape[1] == 1:  # -log sigma(f) for class 1, -log sigma(-f) for class 0
        return -log_expit(np.where(Y[:, 0] > 0.5, F[:, 0], -F[:, 0]))
    label = Y > 0.5
    D = F - F[label][:, None]  # f_c - f_y: 0 at the label
    others = np.where(label, -np.inf, D)
    top = others.max(axis=1)
    losses = np.empty(F.shape[0])
    below = top <= 0.0  # log1p of the others' sum, each below the label's 1
    losses[below] = np.log1p(np.exp(others[below]).sum(axis=1))
    losses[~below] = logsumexp(D[~below], axis=1)
    return losses


class _curvature:
    """The log-loss's Hessian in f, per sample: ``w p (1 - p)`` (two classes) or
    ``w (diag(p) - p p^T)`` (k classes, applied without forming it)."""

    def __init__(self, P: np.ndarray, w: np.ndarray) -> None:
        self.P, self.w = P, w
        self.diag = w[:, None] * P * (1.0 - P)
        self.diag_sum = self.diag.sum(axis=0)

    def intercept_block(self) -> np.ndarray:
        """The intercepts' block of H, ``sum_i S_i`` (k x k)."""
        if self.P.shape[1] == 1:
            return self.diag_sum[None, :]
        wP = self.w[:, None] * self.P
        return np.diag(wP.sum(axis=0)) - wP.T @ self.P

    def intercept_inverse(self) -> np.ndarray:
        """The intercepts' block's (pseudo-)inverse: for k classes its range is the
        intercepts with zero sum (the null direction, a common shift, changes no
        probability)."""
        k = self.P.shape[1]
        inverse = _pseudo_inverse(
            self.intercept_block(), None if k == 1 else np.full(k, 1.0 / math.sqrt(k))
        )
        return np.zeros((k, k)) if inverse is None else inverse

    def apply(self, U: np.ndarray) -> np.ndarray:
        PU = self.P * U
        return self.w[:, None] * (PU - self.P * PU.sum(axis=1, keepdims=True))

    def pooled(self) -> np.ndarray:
        """One curvature per sample for the preconditioner, which has one factor for all
        classes: the classes' mean (module docstring)."""
        return self.diag.mean(axis=1)


class _Preconditioner:
    """``z = (L LA LA^T L^T)^-1 r``, ``LA LA^T = scale L^T S_M L + alpha I`` with S_M the
    curvature at the centres, averaged over the classes (module docstring)."""

    def __init__(
        self,
        L: np.ndarray,
        curvature_at_centres: np.ndarray | None,
        alpha: float,
        scale: float = 1.0,
        inner: np.ndarray | None = None,
        downdate: tuple[np.ndarray, float] | None = None,
        whitened: bool = False,
    ) -> None:
        """``curvature_at_centres``: (M,), or ``inner`` given (see from_gram).
        ``downdate``: ``(v, sigma)``, subtracting ``v v^T / sigma`` from the inner matrix
        (the intercept's elimination: module docstring). ``whitened``: the solver works in
        ``L^T a`` (module docstring), where this is ``(LA LA^T)^-1`` alone."""
        self.L = None if whitened else L
        # In place where it can be: each M x M temporary is another pass over M^2 values
        # (the build is repeated every Newton step).
        if inner is None:
            assert curvature_at_centres is not None
            root = np.sqrt(scale * curvature_at_centres)[:, None]
            inner = lower_gram(np.multiply(root, L, out=np.empty_like(L, order="F")))
        if downdate is not None and downdate[1] > 0:
            v, sigma = downdate
            column = np.asfortranarray(v, dtype=np.float64).reshape(-1, 1)
            _blas.gemm(-1.0 / sigma, column, column, 1.0, inner, trans_b=True)
        bump = alpha if alpha > 0 else 1e-12 * max(float(np.mean(np.diag(inner))), 1e-300)
        inner[np.diag_indices_from(inner)] += bump
        self.LA = jittered_cholesky(inner, overwrite=True)[0]

    @classmethod
    def from_gram(
        cls,
        L: np.ndarray,
        G: np.ndarray,
        alpha: float,
        downdate: tuple[np.ndarray, float] | None = None,
        whitened: bool = False,
    ) -> _Preconditioner:
        """From the curvature's Gram ``G = K_nM^T S K_nM`` itself: ``LA LA^T = L^-1 G L^-T
        + alpha I`` (whitened as the one-pass Nystrom solver whitens, so that the small
        directions of K_MM survive in float64); ``whitened``: ``G`` is already ``B^T S B``
        with ``B = K_nM L^-T``."""
        inner = G if whitened else solve_triangular(L, solve_triangular(L, G).T)
        inner = 0.5 * (inner + inner.T)
        return cls(
            L, None, alpha, inner=np.asfortranarray(inner), downdate=downdate, whitened=whitened
        )

    def __call__(self, R: np.ndarray) -> np.ndarray:
        first = R if self.L is None else solve_triangular(self.L, R)
        V = solve_triangular(self.LA, solve_triangular(self.LA, first), trans=True)
        return V if self.L is None else solve_triangular(self.L, V, trans=True)


class _SecantPairs:
    """CG's search directions ``p`` and products ``H p`` from one Newton step, and the
    preconditioner they make for the next (Morales and Nocedal 2000, "Automatic
    preconditioning by limited memory quasi-Newton updating"): the base preconditioner
    updated as L-BFGS updates its initial inverse Hessian, by the pairs ``(s, y) = (p, H
    p)`` (two-loop recursion, O(pairs M k) per application). CG's directions are
    H-conjugate in exact arithmetic, so on their span the update is approximately that
    step's ``H^-1`` (the newest pair's secant equation holds exactly, the older ones' as
    far as rounding kept the directions conjugate: ``tests/test_logistic.py``); positive
    definite, as ``p^T H p > 0`` for each (pairs whose curvature is below 1e-12 of
    ``|p| |H p|`` are not kept: L-BFGS's skip rule). At most ``limit`` pairs, spread
    evenly over the run and the newest always among them (Morales and Nocedal's uniform
    sampling): the run's directions are kept at a stride that doubles whenever ``2
    limit`` are held.

    Why it helps between Newton steps is measured, not proven: for other systems with
    the same matrix it costs CG iterations (the tests' setting: a new random right-hand
    side 89 against 66, the first one plus 10% noise 74 against 64)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(int(limit), 0)
        self.pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
        # The pairs' s and y as the rows of two matrices (the pairs are views of them).
        self._S = self._Y = np.empty((0, 0))
        self.used: list[int] = []  # the pairs each wrapped preconditioner had
        self._reset()

    def _reset(self) -> None:
        self._held: list[tuple[np.ndarray, np.ndarray, float]] = []
        self._newest: tuple[np.ndarray, np.ndarray, float] | None = None
        self._stride, self._seen = 1, 0

    def record(self, p: np.ndarray, Hp: np.ndarray, pHp: float) -> None:
        if not self.limit:
            return
        rho = 1.0 / pHp
        if not (math.isfinite(rho) and pHp > 1e-12 * np.linalg.norm(p) * np.linalg.norm(Hp)):
            return  # too little curvature to trust (its 1 / p^T H p would blow up)
        # Copies: the pairs outlive the CG run that made p and Hp.
        pair = (p.copy(), Hp.copy(), rho)
        self._newest = pair
        if self._seen % self._stride == 0:
            self._held.append(pair)
            if len(self._held) >= 2 * self.limit:
                self._held = self._held[::2]
                self._stride *= 2
        self._seen += 1

    def finish(self) -> None:
        """After a CG run: its pairs make the next run's update (a run that recorded
        none, at the optimum, keeps the pairs before it)."""
        held = self._held
        if self._newest is not None and (not held or held[-1] is not self._newest):
            held = held + [self._newest]
        if len(held) > self.limit:  # evenly from the newest back (limit 1: the newest)
            keep = np.unique(np.linspace(len(held) - 1, 0, self.limit).round().astype(int))
            held = [held[i] for i in keep]
        if held:
            # Stacked once (wrap's products), the pairs kept as views of the stacks: no
            # second copy beside them while the next run records its own.
            shape = held[0][0].shape
            self._S = np.stack([s.ravel() for s, _, _ in held])
            self._Y = np.stack([y.ravel() for _, y, _ in held])
            self.pairs = [
                (self._S[i].reshape(shape), self._Y[i].reshape(shape), rho)
                for i, (_, _, rho) in enumerate(held)
            ]
        self._reset()

    def wrap(self, precond):
        """``precond`` updated by the pairs of the last finished run.

        The two-loop recursion in matrix form: with the pairs as rows of ``S`` and ``Y``
        (oldest first) and ``SY = S Y^T``, the first loop's coefficients solve the unit
        upper triangular system ``(I + diag(rho) triu(SY, 1)) c = rho * (S r)`` (each
        ``s_i^T q`` is ``s_i^T r`` less the newer pairs' ``c_j s_i^T y_j``) and ``q = r -
        Y^T c``; the second loop's ``d = c - beta`` solve the unit lower triangular
        ``(I + diag(rho) tril(SY^T, -1)) d = c - rho * (Y z0)``, ``z = z0 + S^T d``. Four
        products with the p x Mk matrices and two p x p ones in place of 4p numpy calls
        on vectors (each a call's overhead on a few thousand values). The same values in
        exact arithmetic, and to rounding whether or not the pairs are conjugate
        (tests/test_logistic.py)."""
        pairs = self.pairs
        self.used.append(len(pairs))
        if not pairs:
            return precond
        S, Y = self._S, self._Y
        rho = np.array([r for _, _, r in pairs])
        SY = S @ Y.T
        eye = np.eye(len(pairs))
        # Their inverses, once per run (unit triangular, p <= SECANT_PAIRS): then each
        # application is a p x p product where a solve costs a library call's overhead.
        first = sla.solve_triangular(eye + rho[:, None] * np.triu(SY, 1), eye, lower=False)
        second = sla.solve_triangular(eye + rho[:, None] * np.tril(SY.T, -1), eye, lower=True)

        def updated(R: np.ndarray) -> np.ndarray:
            r = R.reshape(-1)
            c = first @ (rho * (S @ r))
            z = np.asarray(precond((r - Y.T @ c).reshape(R.shape)), dtype=np.float64)
            d = second @ (c - rho * (Y @ z.reshape(-1)))
            return z + (S.T @ d).reshape(R.shape)

        return updated


def _coupling_tensor(op: StoredColumns, curvature: _curvature) -> np.ndarray:
    """``T[m, c, d] = sum_i K_im S_i[c, d]`` (M x k x k), the intercepts' coupling C =
    K_nM^T S 1 of the Hessian (module docstring): ``C^T V`` is then ``einsum("mcd,md->c",
    T, V)``, without a pass over K_nM. One product of K_nM^T with k (k + 1) / 2 columns
    (S_i is symmetric)."""
    P, w = curvature.P, curvature.w
    k = P.shape[1]
    rows, cols = np.triu_indices(k)
    on_diagonal = rows == cols

    def pairs(r0: int, r1: int) -> np.ndarray:  # S_i's upper triangles, a chunk of rows
        wP = w[r0:r1, None] * P[r0:r1]
        block = -wP[:, rows] * P[r0:r1, cols]
        block[:, on_diagonal] += wP
        return block

    # By chunks of rows: all of them at once would be n k (k + 1) / 2 values, as large as
    # K_nM itself for M near that count.
    half = op.rmatmat_rows(rows.size, pairs)
    T = np.empty((half.shape[0], k, k))
    T[:, rows, cols] = half
    T[:, cols, rows] = half
    return T


def _step_terms(
    Kd_raw: np.ndarray,
    d: np.ndarray,
    g: np.ndarray,
    g_b: np.ndarray,
    intercept_inverse: np.ndarray,
    coupling: np.ndarray | None,
    curvature: _curvature,
) -> tuple[np.ndarray, np.ndarray, float]:
    """For a step ``d`` of the coefficients (``Kd_raw = K_nM d``): the change of the
    logits ``K_nM d + e``, the intercepts' step ``e = -B^+ (h + C^T d)`` (module docstring)
    and the Newton decrement ``-g^T d - h^T e`` (~ 2 (J - J*) near the optimum)."""
    Kd = np.asarray(Kd_raw, dtype=np.float64)
    e = -intercept_inverse @ (
        g_b + (coupling @ d if coupling is not None else curvature.apply(Kd).sum(axis=0))
    )
    Kd = Kd + e
    return Kd, e, -float(np.sum(g * d)) - float(g_b @ e)


def _line_minimum(
    F: np.ndarray,
    D: np.ndarray,
    Y: np.ndarray,
    w: np.ndarray,
    alpha: float,
    pen: tuple[float, float, float],
    decrement: float,
    binary: bool,
) -> float:
    """The step t in (0, 1] that approximately minimises the objective along the Newton
    direction, ``phi(t) = sum_i w_i loss(F_i + t D_i) + alpha / 2 (pen0 + 2 t pen1 + t^2
    pen2)`` (convex in t; ``phi'(0) = -decrement``): Newton iterations on phi' inside a
    bracket, secant or bisection where Newton leaves it, O(n k) each, until
    ``|phi'(t)| <= 1e-3 decrement`` (so ``phi(t) - min phi <= 1e-3 decrement``) or
    LINE_ITERATIONS; 1 where phi still decreases there, the bracket's midpoint where a
    value is not finite (the caller's Armijo test decides in every case)."""

    def slope_and_curvature(t: float) -> tuple[float, float]:
        G = F + t * D
        if binary:
            p = expit(G[:, 0])
            slope = float(np.sum(w * (p - Y[:, 0]) * D[:, 0]))
            curv = float(np.sum(w * p * (1.0 - p) * D[:, 0] ** 2))
        else:
            P = softmax(G, axis=1)
            slope = float(np.sum(w * np.sum((P - Y) * D, axis=1)))
            PD = np.sum(P * D, axis=1)
            curv = float(np.sum(w * (np.sum(P * D * D, axis=1) - PD * PD)))
        return slope + alpha * (pen[1] + t * pen[2]), curv + alpha * pen[2]

    lo, hi = 0.0, 1.0
    slope, curv = slope_and_curvature(1.0)
    if not slope > 0.0:  # still falling at the full step (or not finite): the caller decides
        return 1.0
    t, slope_lo, slope_hi = 1.0, -decrement, slope
    moved = moved_before = "hi"
    for _ in range(LINE_ITERATIONS):
        if slope > 0.0:
            hi, slope_hi, moved = t, slope, "hi"
        else:
            lo, slope_lo, moved = t, slope, "lo"
        trial = t - slope / curv if curv > 0.0 else math.nan
        if not lo < trial < hi:
            # Newton left the bracket (a saturated loss has little curvature): the secant
            # of the bracket's slopes, which a halving's midpoint would approach slowly.
            # Where the same end moved twice in a row, the bracket's midpoint instead:
            # the secant creeps from an end whose slope a saturated loss made steep
            # (breast cancer, 40 centres, alpha 1e-9 n, gamma 10/d: 12 iterations moved
            # t to 0.0024 of a minimum at 0.39; every Newton step did the same, and the
            # fit ran out of steps 3e-4 above the optimum).
            trial = (
                0.5 * (lo + hi)
                if moved == moved_before
                else lo - slope_lo * (hi - lo) / (slope_hi - slope_lo)
            )
            if not lo < trial < hi:
                trial = 0.5 * (lo + hi)
        t, moved_before = trial, moved
        slope, curv = slope_and_curvature(t)
        if not (math.isfinite(slope) and math.isfinite(curv)):
            return 0.5 * (lo + hi)  # the caller's test decides, halving from there
        if abs(slope) <= 1e-3 * decrement:
            break
    return max(t, 1e-12)


def _linear_rest_small(decreases: list[float], bound: float) -> bool:
    """Whether the objective's last three decreases, extrapolated at the slower of their
    two rates (each step's decrease rho times the one before), leave at most ``bound``
    to gain: ``decrease rho / (1 - rho) <= bound``. The test of a step whose CG ran out of
    iterations before its tolerance, whose decrement then only bounds the distance to the
    optimum from below: refusing every such end took satellite (M = 1000, alpha 1e-5,
    where CG runs out at every step near the optimum) 100 steps for 1e-4; accepting
    them, digits (600 rows, 12 centres, alpha 1e-5) ended 5e-4 above the optimum at tol
    1e-4, its decreases uneven (rates 1.6 and 0.34: one rate passed)."""
    if len(decreases) < 3 or not min(decreases) > 0.0:
        return False
    rho = max(decreases[-1] / decreases[-2], decreases[-2] / decreases[-3])
    return rho < 1.0 and decreases[-1] * rho / (1.0 - rho) <= bound


def _quadratic_there(actual: float, predicted: float, objective: float) -> bool:
    """Whether a step's decrease of the objective, ``actual``, is its quadratic model's,
    ``predicted`` (``t decrement - t^2 d^T H d / 2``), within QUADRATIC_MODEL, or both
    are within the objective's rounding: the ratio trust-region methods judge a model
    by. Near the optimum of a smooth objective it tends to 1 (1.00 to 1.13 at the ends
    of the tests' fits); far from 1, the decrement does not bound the distance to the
    optimum (module docstring)."""
    rounding = ROUNDING_DECREASE * max(abs(objective), 1e-300)
    if abs(predicted) <= rounding and abs(actual) <= rounding:
        return True
    return predicted > 0.0 and abs(actual / predicted - 1.0) <= QUADRATIC_MODEL


def _end_refused(
    hessian,
    rhs: np.ndarray,
    g_b: np.ndarray,
    intercept_inverse: np.ndarray,
    decrement: float,
    preconditioned: float,
    threshold: float,
) -> tuple[bool, int]:
    """Whether a step whose decrement fell below ``threshold`` must not end the fit:
    the decrement's lower bound (``_decrement_lower_bound``) exceeds the threshold, or
    CG's decrement is below ``MIN_DECREMENT_RATIO`` of the gradient's preconditioned
    norm ``rhs^T P^-1 rhs`` (``preconditioned``) while that norm itself exceeds it: with
    a preconditioner near H the two agree (0.3 to 7 at the ends of the real-data suite's
    fits); thousands of times apart, CG stopped in a norm that hid most of the
    decrement (a 4-class fit on 50 centres, alpha 1e-5: 7e-4, the objective 4e-4
    above the optimum where tol promised 1e-4). The bound uses this step's CG Hessian
    (sampled where CG's was). Returns ``(refused, products with H taken)``."""
    if preconditioned > threshold and decrement < MIN_DECREMENT_RATIO * preconditioned:
        return True, 0
    return _decrement_lower_bound(hessian, rhs, g_b, intercept_inverse) > threshold, 1


def _decrement_lower_bound(
    hessian, rhs: np.ndarray, g_b: np.ndarray, intercept_inverse: np.ndarray
) -> float:
    """A lower bound of the Newton decrement ``rhs^T H^-1 rhs + h^T B^+ h`` (H: the
    intercepts' Schur complement, ``hessian``) that no preconditioner enters: for any v,
    ``(rhs^T v)^2 / (v^T H v) <= rhs^T H^-1 rhs`` (Cauchy-Schwarz in H's inner
    product), here with v = rhs, the steepest descent. One product with H."""
    curvature = float(np.sum(rhs * hessian(rhs)))
    squared = float(np.sum(rhs * rhs))
    steepest = squared * squared / curvature if curvature > 0.0 else 0.0
    return steepest + float(g_b @ intercept_inverse @ g_b)


def _pseudo_inverse(A: np.ndarray, null: np.ndarray | None = None) -> np.ndarray | None:
    """The pseudo-inverse of a symmetric positive semi-definite k x k matrix, dropping
    directions below 1e-12 of the largest; None where it has a clearly negative
    eigenvalue (not semi-definite). ``null``: a unit vector known to be in A's null space
    (the multinomial intercepts' common shift), projected out of A before the
    decomposition, so that its rounding-level eigenvalue is never inverted: formed from
    saturated probabilities, the intercepts' block kept one at 1e-14 above the threshold
    (wine, 20 centres, a Hessian sample with sample weights), its pseudo-inverse was off
    by 1e12, and CG's Hessian lost its positive semi-definite loss part."""
    A = 0.5 * (A + A.T)
    if null is not None:
        projector = np.eye(A.shape[0]) - np.outer(null, null)
        A = projector @ A @ projector
    vals, vecs = np.linalg.eigh(A)
    top = max(float(vals.max()), 1e-300)
    if vals.min() < -1e-8 * top:
        return None
    keep = vals > 1e-12 * top
    inverse = (vecs[:, keep] / vals[keep]) @ vecs[:, keep].T
    return inverse if null is None else projector @ inverse @ projector


def _rest_bound(alpha: float, L: np.ndarray, whitened: bool):
    """``r -> `` an upper bound of ``r^T H^-1 r`` for CG's residuals, or None without a
    penalty. ``H >= alpha K_MM`` (the Schur complement of a Hessian whose loss part is
    positive semi-definite, whatever the intercepts), so ``r^T H^-1 r <= r^T K_MM^-1 r /
    alpha``: ``||r||^2 / alpha`` in whitened coordinates (K_MM is the identity there),
    ``||L^-1 r||^2 / alpha`` in the coefficients (one triangular solve). Loose where the
    loss's curvature dominates the penalty, but at a candidate end CG has already removed
    those directions from r: on satellite, digits and spam (M = 1000, alpha 0.01) the
    bound certified the end at the iteration the extension began, and satellite's last
    step took 47 CG iterations in place of 119."""
    if not alpha > 0.0:
        return None
    if whitened:
        return lambda r: float(np.sum(r * r)) / alpha
    return lambda r: float(np.sum(solve_triangular(L, r) ** 2)) / alpha


def _pcg(
    hessian,
    rhs: np.ndarray,
    precond,
    forcing: float,
    max_iter: int,
    record=None,
    end: tuple[float, float] | None = None,
    rest_bound=None,
    past_end_forcing: bool = True,
):
    """``d ~ H^-1 rhs`` by preconditioned CG from zero, all columns one vector (the
    multinomial Hessian couples them), until the preconditioned residual norm falls by
    ``forcing``. ``record(p, Hp, pHp)``: called with each search direction and its
    product. ``end = (threshold, end_forcing)``: where CG meets ``forcing`` with
    ``rhs^T d`` (its decrement, less the intercepts' constant part) at most
    ``threshold`` (a step that may end the fit), it goes on until ``(rhs + r)^T d +
    rest_bound(r)`` is at most ``threshold``: with ``rest_bound(r)`` an upper bound of
    ``r^T H^-1 r`` (``_rest_bound``), that sum bounds the whole decrement ``rhs^T H^-1
    rhs`` from above (for any d with residual ``r = rhs - H d``, ``rhs^T H^-1 rhs = 2
    rhs^T d - d^T H d + r^T H^-1 r``), so the end is certified. Or, once the residual
    has fallen by ``end_forcing`` (END_FORCING), until the decrement exceeds the
    threshold (no end) or the residual has fallen by UNCERTIFIED_FLOOR; there at once
    without a bound (``rest_bound`` None: no penalty) or with ``past_end_forcing``
    false. Returns ``(d, iterations, extended, certified)``: ``extended`` whether it
    went on so, ``certified`` whether the bound certified the end."""
    d = np.zeros_like(rhs)
    r = rhs.copy()
    z = precond(r)
    rz = float(np.sum(r * z))
    rz_start = rz
    stop = forcing**2 * rz
    p = z.copy()
    it, extended, certified, threshold = 0, False, False, math.inf
    while it < max_iter:
        if rz <= stop and not extended:
            if end is None or float(np.sum(rhs * d)) > end[0]:
                break
            threshold, extended = end[0], True
            stop = min(stop, end[1] ** 2 * rz_start)
        if extended:
            # 2 rhs^T d - d^T H d = (rhs + r)^T d: CG's identity without the orthogonality
            # d^T r = 0 that rounding erodes (3e-6 of the decrement in a 6 x 6 test).
            decrement = float(np.sum((rhs + r) * d))
            if rest_bound is not None and decrement + rest_bound(r) <= threshold:
                certified = True
                break
            # Past END_FORCING an uncertified end goes on (END_FORCING's comment): until
            # the decrement leaves the threshold, or the residual reaches rounding.
            if rz <= stop and (
                rest_bound is None
                or not past_end_forcing
                or decrement > threshold
                or rz <= UNCERTIFIED_FLOOR**2 * rz_start
            ):
                break
        Hp = hessian(p)
        pHp = float(np.sum(p * Hp))
        if pHp <= 0.0:  # only rounding can make H look indefinite: keep what we have
            break
        if record is not None:
            record(p, Hp, pHp)
        step = rz / pHp
        d += step * p
        r -= step * Hp
        z = precond(r)
        rz_new = float(np.sum(r * z))
        p = z + (rz_new / rz) * p
        rz = rz_new
        it += 1
    if it == 0 and not d.any():  # first iteration refused: the preconditioned gradient
        d = z
    return d, it, extended, certified


def _gram_pays(n: int, M: int, d: int, k: int) -> bool:
    """Whether forming the curvature's Gram (n M^2 at syrk's rate) costs less than the
    CG iterations it saves per Newton step (GRAM_SAVES_CG, each a pass or two over K_nM
    with k columns), by the rates ``auto`` uses."""
    if k > 1:  # measured: no fewer CG iterations for k classes (module docstring)
        return False
    rates = current_rates()[0]
    gram = n * M * M / rates["syrk"] + n * M * _entry_flops(d, 0) / rates["engine_float64"]
    per_cg = 2.0 * n * M * _entry_flops(d, k) / rates["engine_float64"]
    return gram <= GRAM_SAVES_CG * per_cg


def _rows_represented(
    sample_weight: np.ndarray | None, center_rows: np.ndarray, n: int, M: int
) -> np.ndarray | None:
    """How many rows each centre's curvature stands for in the centres' preconditioner
    (the inverse of its chance to be drawn), where heavy rows (``heavy_rows``: drawn
    whatever the draw) are among the centres: 1 for each of those, and the others share
    the remaining rows evenly, ``(n - H) / (M - H)``. None where none is: ``n / M`` for
    every centre, LogisticFalkon's."""
    heavy = heavy_rows(sample_weight, M)
    if heavy is None or heavy.size == 0:
        return None
    own = (center_rows >= 0) & np.isin(center_rows, heavy)
    count = int(own.sum())
    if count == 0:
        return None
    return np.where(own, 1.0, (n - count) / max(M - count, 1))


def _weighted_rows_only(problem: Problem, center_rows: np.ndarray) -> tuple[Problem, np.ndarray]:
    """The problem without its rows of zero weight, and the centres' rows in it (-1: a
    centre whose own row weighs zero). Such rows are no data (scikit-learn's convention)
    and add nothing to the objective, its gradient or its Hessian; dropped here, no
    decision of the fit counts them (the centres' scale n / M, the Hessian sample and
    its draw, the cost model's rows, the storage of K_nM), so that inserting them
    anywhere changes nothing (tests/test_zero_weight_centres.py)."""
    w = problem.sample_weight
    if w is None or np.all(w != 0):
        return problem, center_rows
    keep = np.flatnonzero(w)
    if keep.size == 0:  # nothing to fit (the estimators refuse this first)
        return problem, center_rows
    position = np.full(w.shape[0], -1)
    position[keep] = np.arange(keep.size)
    reduced = replace(
        problem,
        X=np.ascontiguousarray(problem.X[keep]),
        Y=problem.Y[keep],
        sample_weight=w[keep],
    )
    return reduced, position[np.asarray(center_rows)]


def _curvature_gram(problem: Problem, centers: np.ndarray, curvature: np.ndarray) -> np.ndarray:
    """``K_nM^T diag(curvature) K_nM`` (M x M, both triangles) in one blocked pass: the
    one-pass Nystrom solver's, with the curvature as the sample weights."""
    n, M = problem.X.shape[0], centers.shape[0]
    weighted = replace(
        problem,
        Y=np.zeros((n, 1), dtype=problem.X.dtype),
        sample_weight=curvature.astype(problem.X.dtype),
    )
    G, _ = _gram_pass(
        weighted,
        np.ascontiguousarray(centers, dtype=np.float64),
        rows_for(M),
        dtype=problem.kernel_dtype,
    )
    return G


def _whitening_pays(rows: int, M: int, k: int) -> bool:
    """Whether to solve in ``L^T a`` with ``B = K_nM L^-T`` stored in place of K_nM: the
    blocked solve forming B costs ``rows M^2`` flops once, and each CG iteration then
    saves the product with K_MM and two of the preconditioner's four triangular solves
    (:func:`gramfree.solvers._kept_preconditioner.whitening_saves`), at WHITEN_CG
    iterations per fit (module docstring). M^2 cancels: whitened where ``rows < WHITEN_CG
    (16 FLOPS_PER_BYTE + 8 k)``, 5440 rows for two classes and 7040 for six (so not
    shuttle's 43500). ``rows``: the rows of non-zero weight, although the solve runs
    over all of them: as everywhere in the cost model, appending rows of zero weight
    changes no decision (tests/test_zero_weight_centres.py)."""
    if not WHITEN:
        return False
    return WHITEN_CG * whitening_saves(M, k) > float(rows) * M * M


def _stored_dtype(n: int, M: int) -> np.dtype | None:
    """The dtype K_nM is kept in (module docstring): float64 where it fits ``CACHE_BYTES``
    (and ``CACHE_SHARE`` of the memory), else float32 where that fits, else None (every
    pass recomputes the kernel)."""
    budget = min(CACHE_BYTES, CACHE_SHARE * memory_bytes())
    for dtype in (np.dtype(np.float64), np.dtype(np.float32)):
        if n * M * dtype.itemsize <= budget:
            return dtype
    return None
