"""The direct solver's float32 factorization with float64 refinement: the float64
solution where it is taken, the float64 factorization (and why, in ``info``) where the
matrix is too ill-conditioned for float32, and the objective it reports."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel
from test_solvers_realdata import CASES, IDS, _load

from gramfree.kernels import Gaussian
from gramfree.operators import KernelOperator
from gramfree.solvers import Problem, objective, solve_direct
from gramfree.solvers.direct import refinement_budget


def _data(n, d=4, t=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    Y = np.column_stack([np.sin(X[:, 0] + k) + 0.3 * X[:, 1] * X[:, 2] for k in range(t)])
    Y += 0.05 * rng.normal(size=Y.shape)
    return X.astype(dtype), np.ascontiguousarray(Y.astype(dtype)), rng.uniform(0.3, 2.5, n)


def rel_diff(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [1.0, 1e-3])
def test_mixed_precision_gives_the_float64_solution(weighted, alpha):
    X, Y, w = _data(1500)
    w = w if weighted else None
    p = Problem(X, Y, Gaussian(0.1), alpha, w, None)
    mixed = solve_direct(p, mixed_precision=True)
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    assert 1 <= mixed.info["refinement_steps"] <= 10
    assert "fallback" not in mixed.info
    f64 = solve_direct(p, mixed_precision=False)
    assert f64.info["precision"] == "float64" and "refinement_steps" not in f64.info
    assert rel_diff(mixed.coef, f64.coef) <= 1e-8
    W = np.ones(len(X)) if w is None else w
    K = rbf_kernel(X, gamma=0.1)
    expected = np.linalg.solve(W[:, None] * K + alpha * np.eye(len(X)), W[:, None] * Y)
    assert rel_diff(mixed.coef, expected) <= 1e-8
    # the closed-form objective is the objective of the returned coefficients
    exact = objective(p, X, mixed.coef)
    assert mixed.loss_curve[-1] == pytest.approx(exact, rel=1e-8)
    assert f64.loss_curve[-1] == pytest.approx(exact, rel=1e-8)


def test_ill_conditioned_falls_back_to_float64():
    """A wide Gaussian kernel (eigenvalues decay fast) with alpha = 1e-10: float32 cannot
    factor it; the float64 factorization gives the answer, and info says why."""
    X, Y, _ = _data(800)
    p = Problem(X, Y, Gaussian(1e-3), 1e-10, None, None)
    res = solve_direct(p, mixed_precision=True)
    assert res.info["precision"] == "float64"
    assert "float32" in res.info["fallback"]
    f64 = solve_direct(p, mixed_precision=False)
    np.testing.assert_array_equal(res.coef, f64.coef)
    A = rbf_kernel(X, gamma=1e-3) + 1e-10 * np.eye(len(X))
    eig = np.linalg.eigvalsh(A)
    assert eig[-1] / eig[0] > 1e10  # far beyond float32's reach
    # the float64 factorization's answer: backward error at float64 rounding
    backward = np.linalg.norm(A @ res.coef - Y) / (eig[-1] * np.linalg.norm(res.coef))
    assert backward <= 1e-13


def test_slow_refinement_falls_back():
    """cond(A) ~ 2e7: float32 still factors A, but each step removes only part of the
    error; the solver stops refining once the budget cannot be met."""
    X, Y, _ = _data(1000)
    p = Problem(X, Y, Gaussian(0.1), 3e-5, None, None)
    res = solve_direct(p, mixed_precision=True)
    assert res.info["precision"] == "float64"
    assert res.info["refinement_steps"] >= 1
    assert "refinement" in res.info["fallback"]
    np.testing.assert_array_equal(res.coef, solve_direct(p, mixed_precision=False).coef)


def test_float32_data():
    """float32 inputs: coefficients in float32, from the float64 solve of the kernel
    matrix the engine computes in float32."""
    X, Y, _ = _data(1200, dtype=np.float32)
    p = Problem(X, Y, Gaussian(0.1), 1e-2, None, None)
    res = solve_direct(p, mixed_precision=True)
    assert res.info["precision"] == "float32+refinement"
    assert res.coef.dtype == np.float32
    # The coefficients move by cond(A) times the float32 kernel values' rounding (which
    # differs between equally valid ways of computing them, e.g. block by block); the
    # objective, flat at the optimum, does not: against the float64 closed form.
    X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
    K = rbf_kernel(X64, X64, gamma=0.1)
    expected = np.linalg.solve(K + 1e-2 * np.eye(len(X)), Y64)

    def loss(c):
        c = c.astype(np.float64)
        return float(np.sum((K @ c - Y64) ** 2) + 1e-2 * np.sum(c * (K @ c)))

    assert loss(res.coef) <= loss(expected) * (1 + 1e-6)
    assert rel_diff(res.coef, expected) <= 1e-3


def test_alpha_zero_objective_with_jitter():
    X, Y, _ = _data(300, t=1)
    p = Problem(X, Y, Gaussian(1.0), 0.0, None, None)
    res = solve_direct(p)
    assert res.info["precision"] == "float64" and "alpha = 0" in res.info["fallback"]
    np.testing.assert_allclose(rbf_kernel(X, gamma=1.0) @ res.coef, Y, atol=1e-6)
    assert res.loss_curve[-1] == pytest.approx(objective(p, X, res.coef), rel=1e-3, abs=1e-12)


def test_default_chooses_by_budget():
    """Small n: float64 straight away (refinement would cost more than float32 saves);
    the budget grows with n and shrinks with the number of targets."""
    X, Y, _ = _data(400)
    res = solve_direct(Problem(X, Y, Gaussian(0.1), 1.0, None, None))
    assert res.info["precision"] == "float64" and "refinement_steps" not in res.info
    assert refinement_budget(400, 3) < 2 <= refinement_budget(15000, 26)
    assert refinement_budget(15000, 1000) < 2
    assert refinement_budget(10**6, 1) == 10


def test_no_float32_matrix_without_memory(monkeypatch):
    """Float64 kernel products: the float32 path holds only the float32 matrix (4 n^2
    bytes), so it is refused only where that does not fit; float32 products also hold
    the float64 matrix of their values (12 n^2)."""
    from gramfree.solvers import direct

    X, Y, _ = _data(500)
    p = Problem(X, Y, Gaussian(0.1), 1.0, None, None)
    share = direct.MIXED_MEMORY_SHARE
    monkeypatch.setattr(direct, "_memory_bytes", lambda: 3.9 * 500 * 500 / share)
    res = solve_direct(p, mixed_precision=True)
    assert res.info["precision"] == "float64" and "memory" in res.info["fallback"]
    monkeypatch.setattr(direct, "_memory_bytes", lambda: 4.1 * 500 * 500 / share)
    assert solve_direct(p, mixed_precision=True).info["precision"] == "float32+refinement"
    p32 = Problem(X.astype(np.float32), Y.astype(np.float32), Gaussian(0.1), 1.0, None, None)
    res = solve_direct(p32, mixed_precision=True)
    assert res.info["precision"] == "float64" and "memory" in res.info["fallback"]


@pytest.mark.parametrize("weighted", [False, True])
def test_float32_path_never_forms_the_float64_matrix(monkeypatch, weighted):
    """With float64 products the float32 path builds A in float32 from blocks of rows
    (more than one here) and takes its residuals from the fused operator: the float64
    n x n matrix is never formed, and the answer is the float64 solve's."""
    from gramfree.solvers import direct

    X, Y, w = _data(1200)
    p = Problem(X, Y, Gaussian(0.1), 1e-2, w if weighted else None, None)
    f64 = solve_direct(p, mixed_precision=False)

    def refused(*args):
        raise AssertionError("the float64 matrix was formed")

    monkeypatch.setattr(direct, "_matrix64", refused)
    monkeypatch.setattr(direct, "_BLOCK_BYTES", 8 * 1200 * 100)  # 12 blocks of 100 rows
    mixed = solve_direct(p, mixed_precision=True)
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    assert rel_diff(mixed.coef, f64.coef) <= 1e-8
    assert mixed.loss_curve[-1] == pytest.approx(f64.loss_curve[-1], rel=1e-10)


def test_default_skips_float32_when_the_condition_bound_is_too_large():
    """By default (mixed_precision=None) float32 is not even tried where Gershgorin's bound
    on cond(A) * eps32 exceeds MAX_BOUND (a tiny alpha); a moderate alpha on the same
    data takes it, and both give the float64 answer."""
    X, Y, _ = _data(2000, t=1)
    assert refinement_budget(2000, 1) >= 2
    tiny = Problem(X, Y, Gaussian(0.5), 1e-6, None, None)
    gershgorin = np.abs(rbf_kernel(X, gamma=0.5) + 1e-6 * np.eye(2000)).sum(axis=1).max()
    assert gershgorin / 1e-6 * np.finfo(np.float32).eps > 1
    res = solve_direct(tiny)
    assert res.info["precision"] == "float64" and "cond(A)" in res.info["fallback"]
    moderate = Problem(X, Y, Gaussian(0.5), 100.0, None, None)
    res = solve_direct(moderate)
    assert res.info["precision"] == "float32+refinement"
    assert rel_diff(res.coef, solve_direct(moderate, mixed_precision=False).coef) < 1e-8


def test_a_rejected_float32_matrix_is_not_formed_in_full(monkeypatch):
    """On few features the float32 matrix is streamed a block at a time; where the first
    block's row sums already put the condition bound past MAX_BOUND, the remaining
    blocks are not formed (only the float64 matrix is), and the answer is float64's."""
    from gramfree.solvers import direct

    X, Y, _ = _data(2000, t=1)
    assert refinement_budget(2000, 1) >= 2
    p = Problem(X, Y, Gaussian(0.5), 1e-6, None, None)
    assert direct.streams_float32(p, 1e18)
    f64 = solve_direct(p, mixed_precision=False)
    monkeypatch.setattr(direct, "_BLOCK_BYTES", 8 * 2000 * 200)  # 10 blocks of 200 rows
    blocks = []
    original = KernelOperator.to_dense

    def counted(self, *args, **kwargs):
        blocks.append(self.shape)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(KernelOperator, "to_dense", counted)
    res = solve_direct(p)
    assert res.info["precision"] == "float64" and "cond(A)" in res.info["fallback"]
    # one 200-row block of the float32 matrix, then the float64 matrix's upper triangle:
    # block rows [r0, r1) against columns r0 on, 2000 rows in all
    assert blocks[0] == (200, 2000), blocks
    rows = [r for r, _ in blocks[1:]]
    starts = np.concatenate([[0], np.cumsum(rows)[:-1]])
    assert sum(rows) == 2000 and max(rows) <= direct.TRIANGLE_ROWS, blocks
    assert [c for _, c in blocks[1:]] == [2000 - s for s in starts], blocks
    assert rel_diff(res.coef, f64.coef) <= 1e-12


def test_float64_matrix_is_built_and_factored_from_one_triangle(monkeypatch):
    """About half the kernel values of A are computed (n^2 / 2 plus the diagonal blocks'
    lower halves), the strict lower triangle is never written or read (NaN left there
    cannot reach the answer), and the answer is the closed form's, against float64 numpy:
    unweighted, weighted, float32 kernel values widened, and the float32 refinement."""
    from gramfree.solvers import direct

    X, Y, _ = _data(700, d=direct.STREAM_MAX_FEATURES + 6)  # float32 A not streamed
    n = len(X)
    w = np.random.default_rng(3).uniform(0.1, 3.0, size=n)
    computed = []
    original = KernelOperator.to_dense

    def counted(self, *args, **kwargs):
        computed.append(self.shape[0] * self.shape[1])
        return original(self, *args, **kwargs)

    def poisoned_matrix64(problem, s, out=None):
        return direct._matrix64.__wrapped__(problem, s, np.full((n, n), np.nan))

    poisoned_matrix64.__wrapped__ = direct._matrix64
    monkeypatch.setattr(direct, "_matrix64", poisoned_matrix64)
    monkeypatch.setattr(KernelOperator, "to_dense", counted)
    cases = [
        (None, np.float64, False),
        (w, np.float64, False),
        (w, np.float32, False),
        (None, np.float64, True),
    ]
    for weights, kernel_dtype, mixed in cases:
        computed.clear()
        gamma = 0.3 / X.shape[1]
        p = Problem(X, Y, Gaussian(gamma), 1e-3 if not mixed else 10.0, weights, None)
        if kernel_dtype is np.float32:
            p = Problem(X, Y, Gaussian(gamma), 1e-3, weights, None, kernel_dtype=np.float32)
        res = solve_direct(p, mixed_precision=mixed)
        assert res.info["precision"] == ("float32+refinement" if mixed else "float64"), res.info
        assert sum(computed) <= n * n / 2 + n * direct.TRIANGLE_ROWS / 2 + n, computed
        Xr = X.astype(kernel_dtype).astype(np.float64)
        K = rbf_kernel(Xr, Xr, gamma=gamma)
        sw = np.ones(n) if weights is None else weights
        expected = np.linalg.solve(sw[:, None] * K + p.alpha * np.eye(n), sw[:, None] * Y)
        tol = 1e-8 if kernel_dtype is np.float64 else 1e-3  # float32 kernel values
        assert rel_diff(res.coef, expected) <= tol, (weights is None, kernel_dtype, mixed)


def test_many_features_refine_against_the_stored_matrix_unless_memory_is_short(monkeypatch):
    """Beyond STREAM_MAX_FEATURES a fused residual costs more than copying the float64
    matrix once, so it is stored and narrowed; where only the float32 matrix fits, the
    float32 path streams whatever the number of features."""
    from gramfree.solvers import direct

    rng = np.random.default_rng(5)
    n, d = 900, direct.STREAM_MAX_FEATURES + 6
    X = rng.normal(size=(n, d))
    Y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    p = Problem(X, Y, Gaussian(0.02), 1e-2, None, None)
    f64 = solve_direct(p, mixed_precision=False)

    def refused(*args):
        raise AssertionError("the float32 matrix was streamed")

    with monkeypatch.context() as m:
        m.setattr(direct, "_matrix32", refused)
        stored = solve_direct(p, mixed_precision=True)
    assert stored.info["precision"] == "float32+refinement", stored.info
    assert rel_diff(stored.coef, f64.coef) <= 1e-8
    share = direct.MIXED_MEMORY_SHARE
    monkeypatch.setattr(direct, "_memory_bytes", lambda: 8.0 * n * n / share)
    monkeypatch.setattr(direct, "_matrix64", refused)
    streamed = solve_direct(p, mixed_precision=True)
    assert streamed.info["precision"] == "float32+refinement", streamed.info
    assert rel_diff(streamed.coef, f64.coef) <= 1e-8


def test_only_cpu_float64_products_stream():
    """to_dense(out=...) is CPU-only, and float32 products refine against their stored
    values: only float64 products on the CPU stream the float32 matrix."""
    from gramfree.solvers.direct import STREAM_MAX_FEATURES, streams_float32

    X, Y, _ = _data(50, d=STREAM_MAX_FEATURES)
    big = 1e18
    assert streams_float32(Problem(X, Y, Gaussian(0.1), 1.0, None, None), big)
    assert not streams_float32(Problem(X, Y, Gaussian(0.1), 1.0, None, None, device="cuda:0"), big)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    assert not streams_float32(Problem(X32, Y32, Gaussian(0.1), 1.0, None, None), big)
    wide = np.hstack([X, X[:, :1]])  # one feature more
    assert not streams_float32(Problem(wide, Y, Gaussian(0.1), 1.0, None, None), big)
    # ... unless only the float32 matrix fits beside nothing else
    assert streams_float32(Problem(wide, Y, Gaussian(0.1), 1.0, None, None), 11.0 * 50 * 50)


@pytest.mark.parametrize("name, gamma", CASES, ids=IDS)
def test_float32_refinement_on_real_data_is_the_float64_solve(name, gamma):
    """Real data, narrow and wide kernels: diabetes (10 features) streams the float32
    matrix and refines against the fused operator; digits and breast cancer (64 and 30)
    refine against the stored matrix. Both land on the float64 factorization's answer."""
    from gramfree.solvers.direct import streams_float32

    X, Y = _load(name)
    p = Problem(X, Y, Gaussian(gamma), 1e-2, None, None)
    assert streams_float32(p, 1e18) == (name == "diabetes")
    mixed = solve_direct(p, mixed_precision=True)
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    f64 = solve_direct(p, mixed_precision=False)
    assert rel_diff(mixed.coef, f64.coef) <= 1e-8
    assert mixed.loss_curve[-1] == pytest.approx(f64.loss_curve[-1], rel=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_stored_matrix_path_matches_kernel_ridge(weighted):
    """Past STREAM_MAX_FEATURES the float64 matrix is stored, rounded to float32 with its
    row sums in one pass, and refined against; S K S is skipped without weights. Both
    against scikit-learn's KernelRidge with the same weights."""
    from sklearn.kernel_ridge import KernelRidge

    from gramfree.solvers.direct import STREAM_MAX_FEATURES

    X, Y, w = _data(1500, d=STREAM_MAX_FEATURES + 6, seed=3)
    w = w if weighted else None
    p = Problem(X, Y, Gaussian(0.02), 0.5, w, None)
    res = solve_direct(p, mixed_precision=True)
    assert res.info["precision"] == "float32+refinement", res.info
    ref = KernelRidge(alpha=0.5, kernel="rbf", gamma=0.02).fit(X, Y, sample_weight=w)
    assert rel_diff(res.coef, ref.dual_coef_) <= 1e-8


@pytest.mark.parametrize("gamma, warned", [(0.01, True), (1.0, False)])
def test_interpolation_reports_its_jitter_and_warns_where_it_misses(gamma, warned):
    """alpha = 0 adds a jitter of 1e-12 of K's mean diagonal to factor K; a review found
    it unreported, and a wide kernel's interpolant (diabetes, gamma 0.01/d) 1.1% from the
    training targets without a word. The jitter is in solver_info_ now, and the miss,
    stated in the warning, is the true relative residual (against numpy in float64)."""
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import StandardScaler

    from gramfree import KernelRegressor

    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelRegressor(solver="direct", alpha=0.0, gamma=gamma / X.shape[1]).fit(X, y)
    assert model.solver_info_["jitter"] == pytest.approx(1e-12)  # K's diagonal is 1
    K = rbf_kernel(X, X, gamma=gamma / X.shape[1])
    miss = np.linalg.norm(K @ np.ravel(model.dual_coef_) - y) / np.linalg.norm(y)
    said = [str(w.message) for w in caught if "alpha=0 (interpolation)" in str(w.message)]
    assert bool(said) == warned, said
    if warned:
        stated = float(said[0].split("leaves the fit ")[1].split(" ")[0])
        assert stated == pytest.approx(miss, rel=0.05)
    else:
        assert miss < 1e-6


@pytest.mark.parametrize(
    "alpha, warned", [(1e-2, False), (1e-3, False), (1e-6, True), (1e-7, True)]
)
def test_ill_conditioned_float64_solve_warns(alpha, warned):
    """A linear kernel on unscaled features (breast cancer: rank 30 of 569 rows, largest
    eigenvalue 9.5e8) factors in float64 at a small alpha, but the solve is off: at alpha
    1e-7 the predictions missed exact ridge (in feature space) by 38% and flipped 20
    labels, with no word (a review); scikit-learn's KernelRidge warns there. The fit now
    warns where its rounding bound passes ILL_CONDITIONED, and stays silent where it is
    accurate."""
    from scipy.linalg import LinAlgWarning
    from sklearn.datasets import load_breast_cancer

    from gramfree import KernelRegressor

    X, y = load_breast_cancer(return_X_y=True)
    y = 2.0 * y - 1.0
    # Exact ridge through the 30 features: min |X w - y|^2 + alpha |w|^2.
    rows = np.vstack([X, np.sqrt(alpha) * np.eye(X.shape[1])])
    exact = X @ np.linalg.lstsq(rows, np.r_[y, np.zeros(X.shape[1])], rcond=None)[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelRegressor(kernel="linear", alpha=alpha, solver="direct").fit(X, y)
    messages = [str(w.message) for w in caught if issubclass(w.category, LinAlgWarning)]
    assert bool(messages) == warned, messages
    # On the user's line, not in the package (a fixed stacklevel named _base.py)
    assert all(w.filename == __file__ for w in caught), [(w.filename, w.lineno) for w in caught]
    error = np.abs(model.predict(X) - exact).max() / np.abs(exact).max()
    if warned:
        assert "ill-conditioned" in messages[0] and "standardise X" in messages[0]
        bound = float(messages[0].split("up to ")[1].split(" relative")[0])
        assert error <= bound  # the warning's figure bounds the error it warns of
    else:
        assert error < 1e-4


def test_well_conditioned_solve_at_a_tiny_alpha_does_not_warn():
    """Raw digits with the cubic kernel at alpha 1e-6: K's own smallest eigenvalues are
    far above alpha and the solve is accurate to 1e-12, but an a-priori bound (eps
    lambda_max / alpha) warned "up to 0.089" (a review of the warning's first form). The
    bound now comes from the solution (2 eps |A| |z| / |y|)."""
    from scipy.linalg import LinAlgWarning
    from sklearn.datasets import load_digits

    from gramfree import KernelRegressor

    X, y = load_digits(return_X_y=True)
    X, y = X[::2], y[::2].astype(float)
    K = (X @ X.T / X.shape[1] + 1.0) ** 3
    reference = K @ np.linalg.solve(K + 1e-6 * np.eye(len(K)), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LinAlgWarning)
        model = KernelRegressor(kernel="poly", alpha=1e-6, solver="direct").fit(X, y)
    assert rel_diff(model.predict(X), reference) < 1e-9


@pytest.mark.parametrize(
    "loader, gamma, builder",
    [("digits", 1.0, "_narrowed"), ("wine", 4.0, "_matrix32")],
    ids=["digits-stored", "wine-streamed"],
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_float32_matrix_has_no_subnormal_entries(monkeypatch, loader, gamma, builder, weighted):
    """A narrow kernel's values reach float32's subnormal range (3% to 19% of digits'
    and wine's standardised kernel at these gammas), where every operation on them costs a
    microcode assist (spam at 10x its tuned gamma: 0.51 s before the flush, 0.16 s after,
    bench_realdata.py). The
    float32 copy flushes entries below FLUSH_BELOW sqrt(A_ii A_jj) to zero, whichever
    way it is built (stored float64 matrix narrowed, or streamed), and the refined answer
    is still the float64 solve's."""
    from sklearn import datasets
    from sklearn.preprocessing import scale

    from gramfree.solvers import direct

    data = getattr(datasets, f"load_{loader}")()
    X, y = scale(data.data), data.target.astype(np.float64)
    Y = np.column_stack([y, np.cos(y)])
    w = np.random.default_rng(0).uniform(0.2, 5.0, len(y)) if weighted else None
    p = Problem(X, Y, Gaussian(gamma), 1e-2, w, None)
    tiny = np.finfo(np.float32).tiny
    seen = {}
    factor = direct.cholesky_upper_in_place
    built = getattr(direct, builder)

    def checked(A32):
        upper = np.triu(A32)
        seen["subnormal"] = int(np.count_nonzero((upper != 0) & (np.abs(upper) < tiny)))
        return factor(A32)

    def recorded(*args, **kwargs):
        seen["builder"] = builder
        return built(*args, **kwargs)

    monkeypatch.setattr(direct, "cholesky_upper_in_place", checked)
    monkeypatch.setattr(direct, builder, recorded)
    mixed = solve_direct(p, mixed_precision=True)
    assert seen.get("builder") == builder, seen
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    assert seen["subnormal"] == 0
    assert rel_diff(mixed.coef, solve_direct(p, mixed_precision=False).coef) <= 1e-8


def test_ill_conditioning_warning_names_no_rescaled_alpha():
    """One row weighted 1e30: the weights and alpha are divided by a power of two before
    the solve (weight_exponent), and the warning said "alpha=7.9e-29" for the caller's
    alpha=100 (a review). It now gives the scale-free ratio of the largest eigenvalue to
    alpha."""
    from scipy.linalg import LinAlgWarning
    from sklearn.datasets import load_diabetes
    from sklearn.preprocessing import scale

    from gramfree import KernelRegressor

    X, y = load_diabetes(return_X_y=True)
    X, y = scale(X[:40]), scale(y[:40])
    weights = np.r_[1e30, np.ones(39)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KernelRegressor(alpha=100.0, solver="direct").fit(X, y, sample_weight=weights)
    messages = [str(w.message) for w in caught if issubclass(w.category, LinAlgWarning)]
    assert len(messages) == 1, messages
    assert "alpha=" not in messages[0] and "times alpha" in messages[0]
    ratio = float(messages[0].split("at most ")[1].split(" times")[0])
    assert ratio >= 1e30 / 100  # the heavy row's weight over alpha, at least


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_streamed_float32_matrix_is_the_narrowed_triangle_from_half_the_kernel(
    monkeypatch, weighted
):
    """The streamed float32 matrix is built from block rows ``K(X[r0:r1], X[r0:])`` (about
    half the kernel values; it formed every row of K before, 2.5x the float64 triangle's
    time on Letter in a scratch timing) and is, entry for entry, the float64 triangle rounded and flushed as
    the stored path does it, with the same largest row sum as numpy's over the full
    symmetric matrix."""
    from gramfree.solvers import direct

    X, Y = _load("breast_cancer")
    n = len(X)
    w = np.random.default_rng(4).uniform(0.2, 4.0, n) if weighted else None
    p = Problem(X, Y, Gaussian(0.5), 1e-2, w, None)
    s = np.sqrt(np.ones(n) if w is None else w)
    computed = []
    original = KernelOperator.to_dense

    def counted(self, *args, **kwargs):
        computed.append(self.shape[0] * self.shape[1])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(direct, "TRIANGLE_ROWS", 64)  # several block rows at n = 569
    with monkeypatch.context() as m:
        m.setattr(KernelOperator, "to_dense", counted)
        A32, top = direct._matrix32(p, s)
    assert sum(computed) <= n * n / 2 + n * 64 / 2 + n, computed
    stored32, stored_top = direct._narrowed(direct._matrix64(p, s))
    np.testing.assert_array_equal(np.triu(A32), np.triu(stored32))
    full = s[:, None] * rbf_kernel(X, gamma=0.5) * s[None, :] + 1e-2 * np.eye(n)
    assert top == pytest.approx(np.abs(full).sum(axis=1).max(), rel=1e-6)
    assert stored_top == pytest.approx(top, rel=1e-6)


def _plain_refinement_converges(p: Problem) -> bool:
    """Whether ``z += A32^-1 (b - A z)`` (LAPACK's dsposv, the solver's steps before the
    conjugate directions) reaches REFINE_TOL within MAX_REFINE steps from the same float32
    factor the solver uses."""
    from gramfree.linalg import cho_solve, cholesky_upper_in_place
    from gramfree.solvers import direct

    n = p.X.shape[0]
    A = rbf_kernel(p.X, gamma=p.kernel.gamma) + p.alpha * np.eye(n)
    L32 = cholesky_upper_in_place(direct._narrowed(direct._matrix64(p, np.ones(n)))[0])
    z = cho_solve(L32, p.Y)
    previous = 1.0
    for _ in range(direct.MAX_REFINE):
        dz = cho_solve(L32, p.Y - A @ z)
        z += dz
        size = float(np.max(np.abs(dz).max(axis=0) / np.abs(z).max(axis=0)))
        # the old solver's acceptance (the error left estimated from the rate), without
        # its early exits: more lenient than the solver was
        if size * min(size / previous, 1.0) <= direct.REFINE_TOL:
            return True
        previous = size
    return False


@pytest.mark.parametrize("name, gamma, bound", [("diabetes", 0.01, 1.5), ("diabetes", 0.03, 6.0)])
def test_conjugate_steps_converge_where_plain_refinement_does_not(name, gamma, bound):
    """Real data, a wide kernel and alpha where Gershgorin's bound eps32 top / alpha is
    ``bound``: iterative refinement does not reach REFINE_TOL within MAX_REFINE steps (the
    solver before the conjugate directions fell back to float64 on both), the
    preconditioned conjugate gradients do, to the float64 factorization's answer."""
    from gramfree.solvers import direct

    X, Y = _load(name)
    top = np.abs(rbf_kernel(X, gamma=gamma)).sum(axis=1).max()
    p = Problem(X, Y, Gaussian(gamma), top * direct._EPS32 / bound, None, None)
    assert not _plain_refinement_converges(p)
    mixed = solve_direct(p, mixed_precision=True)
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    assert mixed.info["refinement_steps"] <= direct.MAX_REFINE
    assert rel_diff(mixed.coef, solve_direct(p, mixed_precision=False).coef) <= 1e-8


def test_default_tries_float32_up_to_a_bound_of_one_given_steps(monkeypatch):
    """Gershgorin's bound eps32 * top / alpha: float32 is tried by default up to
    MAX_BOUND = 1 where the budget allows WIDE_BOUND_STEPS steps (it used to stop at 0.5,
    where Letter's default kernel, at 0.9, took the float64 factorization at 1.3x the time:
    bench_direct_precision.py), and not beyond; with fewer steps allowed only up to 0.5,
    where tries between 0.5 and 1 ran out of steps (a review: 1.8-2.2x float64's time)."""
    from gramfree.solvers import direct

    X, Y = _load("breast_cancer")
    top = np.abs(rbf_kernel(X, gamma=0.1)).sum(axis=1).max()
    cases = [
        (direct.MAX_REFINE, 0.9, "float32+refinement"),
        (direct.MAX_REFINE, 1.2, "float64"),
        (direct.WIDE_BOUND_STEPS - 1, 0.9, "float64"),
        (direct.WIDE_BOUND_STEPS - 1, 0.4, "float32+refinement"),
    ]
    for budget, bound, expected in cases:
        monkeypatch.setattr(direct, "refinement_budget", lambda *args, b=budget: b)
        p = Problem(X, Y, Gaussian(0.1), top * direct._EPS32 / bound, None, None)
        res = solve_direct(p)
        assert res.info["precision"] == expected, (budget, bound, res.info)
        assert rel_diff(res.coef, solve_direct(p, mixed_precision=False).coef) <= 1e-8
        if expected == "float64":
            assert "cond(A) * 1.2e-7" in res.info["fallback"], res.info


@pytest.mark.parametrize("scale", [1e36, 1e-46])
def test_columns_beyond_float32s_range_are_solved(scale):
    """A target column at 1e36 overflowed the float32 solve (ValueError) and one at 1e-46
    came back zero while reported refined (a review): each column is scaled by a power of
    two before every float32 solve, and both match the float64 factorization."""
    X, Y = _load("diabetes")
    Y2 = np.column_stack([Y[:, 0], scale * Y[:, 0]])
    p = Problem(X, Y2, Gaussian(0.1), 1e-2, None, None)
    mixed = solve_direct(p, mixed_precision=True)
    assert mixed.info["precision"] == "float32+refinement", mixed.info
    f64 = solve_direct(p, mixed_precision=False)
    for k in range(2):
        assert rel_diff(mixed.coef[:, k], f64.coef[:, k]) <= 1e-8, k
