"""KernelRegressorCV and KernelClassifierCV with criterion="gcv" (the default "auto" chooses
by leave-one-out: tests/test_criterion_auto.py): every alpha's GCV from one pass and one eigendecomposition, against
a brute-force float64 reference (explicit Nystrom features, the hat matrix formed and its
trace taken) on real data; the chosen model equals KernelRegressor's at that alpha on the
same centres; bad alphas are refused naming the parameter."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics.pairwise import rbf_kernel
from sklearn.preprocessing import StandardScaler
from test_solvers_realdata import _load

import gramfree
from gramfree import KernelClassifier, KernelClassifierCV, KernelRegressor, KernelRegressorCV

ALPHAS = np.logspace(-3, 3, 9)


def _distinct(X, w):
    """Distinct rows of positive weight (np.unique on rows)."""
    return len(np.unique(X[w > 0], axis=0))


def _brute_gcv(X, Y, C, gamma, alphas, w):
    """GCV per alpha with Phi the Nystrom features (Phi Phi^T = K_nM K_MM^-1 K_Mn) and the
    weighted hat matrix H = Phi_w (Phi_w^T Phi_w + alpha I)^-1 Phi_w^T formed in full."""
    Knm, Kmm = rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, C, gamma=gamma)
    lam, U = np.linalg.eigh(Kmm)
    keep = lam > 1e-12 * lam.max()
    Phi = Knm @ U[:, keep] / np.sqrt(lam[keep])
    sw = np.sqrt(w)[:, None]
    Pw, Yw = Phi * sw, Y * sw
    n_w = w.sum()  # the mean residual per unit of weight
    n_d = _distinct(X, w)  # the denominator's count of observations
    out = []
    for a in alphas:
        H = Pw @ np.linalg.solve(Pw.T @ Pw + a * np.eye(Pw.shape[1]), Pw.T)
        R = Yw - H @ Yw
        out.append((np.sum(R**2) / n_w) / (1 - np.trace(H) / n_d) ** 2)
    return np.array(out)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    ("name", "gamma", "m"),
    [("diabetes", 0.05, 150), ("diabetes", 1.0, 150), ("breast_cancer", 0.02, 120)],
)
def test_gcv_matches_brute_force(name, gamma, m, weighted):
    X, Y = _load(name)
    n = len(X)
    w = np.random.default_rng(1).uniform(0.3, 3.0, n) if weighted else np.ones(n)
    model = KernelRegressorCV(
        criterion="gcv", gamma=gamma, alphas=ALPHAS, n_centers=m, random_state=0
    ).fit(X, Y, sample_weight=w if weighted else None)
    want = _brute_gcv(X, Y, model.centers_, gamma, ALPHAS, w)
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)
    assert model.alpha_ == ALPHAS[np.argmin(want)]
    assert "fallback" not in model.solver_info_  # one pass where the whitened Gram holds
    assert model.best_score_ == -model.gcv_values_.min()


def test_gcv_of_small_alphas_with_a_wide_kernel():
    """A wide kernel (K_MM's smallest pivot 3e-6 of its largest) and alphas down to 1e-8:
    the whitened Gram's rounding moved the small alphas' GCV by 1e-3 while the chosen
    alpha's objective agreed to 1e-10; the path is now checked at its smallest alpha too
    and recomputed from the whitened features."""
    X, Y = _load("diabetes")
    alphas = np.logspace(-8, 2, 11)
    model = KernelRegressorCV(
        criterion="gcv", gamma=0.005, alphas=alphas, n_centers=150, random_state=0
    )
    model.fit(X, Y)
    want = _brute_gcv(X, Y, model.centers_, 0.005, alphas, np.ones(len(X)))
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)
    assert model.solver_info_["fallback"] == "whitened features"


def _exact_krr_gcv(X, y, gamma, alphas):
    """Exact kernel ridge GCV from K's eigendecomposition, every term non-negative:
    RSS = sum (alpha / (mu + alpha))^2 (u^T y)^2 and n - df = sum alpha / (mu + alpha)."""
    mu, V = np.linalg.eigh(rbf_kernel(X, gamma=gamma))
    mu = np.maximum(mu, 0.0)
    proj = (V.T @ y) ** 2
    n = len(X)
    out = []
    for a in alphas:
        shrink = a / (mu + a)
        out.append((np.sum(shrink**2 * proj) / n) / (np.sum(shrink) / n) ** 2)
    return np.array(out)


def test_nearly_interpolating_alphas_are_not_chosen():
    """Breast cancer, a wide kernel, every point a centre: for alpha <= 1e-7 the fit nearly
    interpolates and RSS = y^T y - fit cancelled to <= 0, so GCV was 0 and alpha = 1e-14
    was chosen (held-out R^2 -0.31 instead of 0.72). Now: RSS recomputed from the
    residuals where it cancels, n - df summed from positive terms, and alphas below the
    rounding of the whitened Gram's eigenvalues without an estimate (inf)."""
    X, Y = _load("breast_cancer")
    X, y = X[:200], Y[:200, 0]
    alphas = np.logspace(-14, 0, 15)
    model = KernelRegressorCV(criterion="gcv", gamma=0.003, alphas=alphas).fit(X, y)
    want = _exact_krr_gcv(X, y, 0.003, alphas)
    assert model.alpha_ == alphas[np.argmin(want)]
    got = model.gcv_values_
    estimated = np.isfinite(got)
    assert estimated[alphas >= 1e-8].all() and not estimated[alphas < 1e-10].any()
    # Below the whitened Gram's floor (amplified by K_MM's pivots: there alpha = 1e-9 had
    # GCV 390x the exact one) the path comes from the whitened features, whose floor is
    # lower: every estimate is the exact GCV.
    assert model.solver_info_["fallback"] == "whitened features"
    np.testing.assert_allclose(got[alphas >= 1e-4], want[alphas >= 1e-4], rtol=1e-6)
    np.testing.assert_allclose(got[estimated], want[estimated], rtol=1e-5)


def test_huge_alphas_do_not_overflow_into_the_choice():
    """alpha = 1e300 overflowed c^2 (lam + 2 alpha) / (lam + alpha)^2 to inf / inf = NaN,
    and argmin chose the NaN: an all-zero model with best_score_ nan. Its GCV is that of
    the zero model, y^T y / n."""
    X, Y = _load("diabetes")
    y = Y[:150, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow RuntimeWarning either
        model = KernelRegressorCV(criterion="gcv", gamma=0.5, alphas=[0.1, 1e300]).fit(X[:150], y)
    assert model.alpha_ == 0.1
    np.testing.assert_allclose(model.gcv_values_[1], np.sum(y**2) / len(y), rtol=1e-12)
    np.testing.assert_allclose(
        model.gcv_values_[0], _exact_krr_gcv(X[:150], y, 0.5, [0.1])[0], rtol=1e-6
    )


def test_chosen_model_is_kernel_regressor_at_alpha():
    X, Y = _load("diabetes")
    y = Y[:, 0]
    cv = KernelRegressorCV(
        criterion="gcv", gamma=0.05, alphas=ALPHAS, n_centers=200, random_state=3
    ).fit(X, y)
    ref = KernelRegressor(
        gamma=0.05, alpha=cv.alpha_, solver="nystrom-direct", n_centers=200, random_state=3
    ).fit(X, y)
    np.testing.assert_array_equal(cv.centers_, ref.centers_)
    np.testing.assert_allclose(
        cv.predict(X), ref.predict(X), rtol=1e-8, atol=1e-8 * np.abs(y).max()
    )


def test_all_points_is_exact_kernel_ridge_gcv():
    """n_centers=None up to 2000 rows: every point a centre, GCV of exact kernel ridge."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    X, y = X[:300], y[:300]
    model = KernelRegressorCV(criterion="gcv", gamma=0.05, alphas=ALPHAS).fit(X, y)
    assert model.centers_.shape[0] == 300
    K = rbf_kernel(X, gamma=0.05)
    for a, got in zip(ALPHAS, model.gcv_values_):
        H = K @ np.linalg.inv(K + a * np.eye(300))
        r = y - H @ y
        assert got == pytest.approx((r @ r / 300) / (1 - np.trace(H) / 300) ** 2, rel=1e-6)


def test_targets_share_one_alpha():
    X, Y = _load("diabetes")
    Y2 = np.column_stack([Y[:, 0], -2 * Y[:, 0] + 0.1])
    model = KernelRegressorCV(
        criterion="gcv", gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0
    ).fit(X, Y2)
    assert model.predict(X).shape == Y2.shape
    one = KernelRegressorCV(
        criterion="gcv", gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0
    )
    singles = [one.fit(X, Y2[:, j]).gcv_values_ for j in range(2)]
    # RSS add up over targets, the degrees of freedom are shared
    rss_sum = sum(g * (1 - one.dof_ / len(X)) ** 2 for g in singles)
    np.testing.assert_allclose(
        model.gcv_values_ * (1 - model.dof_ / len(X)) ** 2, rss_sum, rtol=1e-9
    )


@pytest.mark.parametrize("alphas", [[], [0.1, -1.0], [0.0], [np.nan], "1.0", [[0.1, 1.0]]])
def test_bad_alphas_are_refused(alphas):
    X, Y = _load("diabetes")
    with pytest.raises(ValueError, match="alphas"):
        KernelRegressorCV(criterion="gcv", alphas=alphas).fit(X, Y[:, 0])


def test_compress_says_what_to_do():
    X, Y = _load("diabetes")
    model = KernelRegressorCV(criterion="gcv", gamma=0.05, n_centers=50, random_state=0).fit(
        X, Y[:, 0]
    )
    with pytest.raises(TypeError, match="alpha_"):
        model.compress(10)


def test_failed_objective_check_recomputes_from_whitened_features(monkeypatch):
    """Where the whitened Gram's rounding shows (the check fails), the path is recomputed
    from the whitened-feature pass: same GCV as the brute force."""
    from gramfree.solvers import alpha_path

    X, Y = _load("diabetes")
    monkeypatch.setattr(alpha_path, "OBJECTIVE_CHECK", -1.0)  # every check fails
    model = KernelRegressorCV(
        criterion="gcv", gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0
    ).fit(X, Y)
    assert model.solver_info_["fallback"] == "whitened features"
    assert model.solver_info_["pass"] == "whitened features"
    want = _brute_gcv(X, Y, model.centers_, 0.05, ALPHAS, np.ones(len(X)))
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)
    # weighted: the fallback's pass reports K_MM's condition estimate as the first did
    w = np.random.default_rng(0).uniform(1.0, 3.0, len(X))
    weighted = KernelRegressorCV(
        criterion="gcv", gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0
    ).fit(X, Y, sample_weight=w)
    assert weighted.solver_info_["fallback"] == "whitened features"
    true_condition = np.linalg.cond(rbf_kernel(weighted.centers_, gamma=0.05))
    assert 0.3 * true_condition <= weighted.solver_info_["k_mm_condition"] <= true_condition


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_classifier_gcv_on_class_targets(class_weight):
    """Digits, 10 classes: GCV of the one-hot targets (RSS summed over classes) against the
    brute force; the chosen model is KernelClassifier's at alpha_ on the same centres."""
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = load_digits_small()
    clf = KernelClassifierCV(
        criterion="gcv",
        gamma=0.02,
        alphas=ALPHAS,
        n_centers=200,
        random_state=0,
        class_weight=class_weight,
    ).fit(X, y)
    Y = (y[:, None] == np.arange(10)[None, :]).astype(float)
    w = np.ones(len(y)) if class_weight is None else compute_sample_weight(class_weight, y)
    np.testing.assert_allclose(
        clf.gcv_values_, _brute_gcv(X, Y, clf.centers_, 0.02, ALPHAS, w), rtol=1e-6
    )
    ref = KernelClassifier(
        gamma=0.02,
        alpha=clf.alpha_,
        solver="nystrom-direct",
        n_centers=200,
        random_state=0,
        class_weight=class_weight,
    ).fit(X, y)
    np.testing.assert_allclose(
        clf.decision_function(X), ref.decision_function(X), rtol=1e-8, atol=1e-8
    )
    np.testing.assert_array_equal(clf.predict(X), ref.predict(X))


def test_binary_classifier_labels_and_scores():
    X, Y = _load("breast_cancer")
    y = np.where(Y[:, 0] > 0, "benign", "malignant")
    clf = KernelClassifierCV(
        criterion="gcv", gamma=0.02, alphas=ALPHAS, n_centers=150, random_state=0
    ).fit(X, y)
    assert list(clf.classes_) == ["benign", "malignant"]
    assert clf.decision_function(X).shape == (len(X),)
    assert clf.score(X, y) > 0.9


# -- sample weights: GCV's n is the sum of the weights -------------------------------------

WEIGHT_ALPHAS = np.logspace(-2, 2, 9)


def _standard_diabetes(n=200):
    """Standardised diabetes rows and target: with gamma=0.5 the kernel matrix of all of
    them is well conditioned (~1e2), so fits that agree in exact arithmetic agree to
    rounding."""
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    return X[:n], y[:n]


def _dense_weighted_gcv(X, Y, gamma, alphas, w):
    """The documented weighted GCV, every point a centre, in dense float64: the fitted
    values of the weighted kernel ridge are H Y with H = K (W K + alpha I)^-1 W, and
    GCV = (sum_i w_i |y_i - (H Y)_i|^2 / sum w) / (1 - trace(H) / n_d)^2, n_d the
    number of distinct rows of positive weight."""
    K = rbf_kernel(X, gamma=gamma)
    Y = Y.reshape(len(X), -1)
    n_w, n_d = w.sum(), _distinct(X, w)
    gcv, dof = [], []
    for a in alphas:
        H = K @ np.linalg.solve(w[:, None] * K + a * np.eye(len(X)), np.diag(w))
        rss = np.sum(w[:, None] * (Y - H @ Y) ** 2)
        gcv.append((rss / n_w) / (1 - np.trace(H) / n_d) ** 2)
        dof.append(np.trace(H))
    return np.array(gcv), np.array(dof)


def test_zero_weight_rows_change_nothing():
    """Every point a centre (n <= 2000): rows of weight zero leave GCV, the degrees of
    freedom, alpha_ and the fitted function as they are without those rows."""
    X, y = _standard_diabetes()
    w = np.r_[np.ones(100), np.zeros(100)]
    kw = dict(gamma=0.5, alphas=WEIGHT_ALPHAS)
    weighted = KernelRegressorCV(criterion="gcv", **kw).fit(X, y, sample_weight=w)
    dropped = KernelRegressorCV(criterion="gcv", **kw).fit(X[:100], y[:100])
    # Zero-weight rows are no data: they take no centre's place either.
    np.testing.assert_array_equal(weighted.centers_, dropped.centers_)
    np.testing.assert_allclose(weighted.gcv_values_, dropped.gcv_values_, rtol=1e-9)
    np.testing.assert_allclose(weighted.dof_, dropped.dof_, rtol=1e-9)
    assert weighted.alpha_ == dropped.alpha_
    np.testing.assert_allclose(weighted.predict(X), dropped.predict(X), rtol=0, atol=1e-9)


def test_integer_weights_are_repeated_rows():
    """Weights 0..3 equal each row repeated that many times: on the same centres (the
    solver given them) GCV and the degrees of freedom agree to rounding; through the
    estimator (its centres every row, duplicates included) the same alpha_ is chosen."""
    from gramfree.kernels import RBF
    from gramfree.solvers._common import Problem
    from gramfree.solvers.alpha_path import solve_alpha_path

    X, y = _standard_diabetes(120)
    counts = np.random.default_rng(0).integers(0, 4, len(X))
    counts[0] = 3  # not all weights zero, and some weight above 1
    Xr, yr = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    centers = X[counts > 0]

    def path(X, y, w):
        problem = Problem(X, y[:, None], RBF(gamma=0.5), 1.0, w, None)
        return solve_alpha_path(problem, centers, WEIGHT_ALPHAS)

    weighted = path(X, y, counts.astype(np.float64))
    repeated = path(Xr, yr, None)
    np.testing.assert_allclose(weighted.gcv, repeated.gcv, rtol=1e-10)
    np.testing.assert_allclose(weighted.dof, repeated.dof, rtol=1e-10)
    assert weighted.best == repeated.best
    np.testing.assert_allclose(weighted.coef, repeated.coef, rtol=1e-8, atol=1e-10)

    kw = dict(gamma=0.5, alphas=WEIGHT_ALPHAS)
    by_weight = KernelRegressorCV(criterion="gcv", **kw).fit(
        X, y, sample_weight=counts.astype(np.float64)
    )
    by_rows = KernelRegressorCV(criterion="gcv", **kw).fit(Xr, yr)
    assert by_weight.alpha_ == by_rows.alpha_
    np.testing.assert_allclose(by_weight.gcv_values_, by_rows.gcv_values_, rtol=1e-8)


def test_weighted_gcv_matches_dense_reference():
    """Real-valued weights with zeros among them, every point a centre: GCV and the
    degrees of freedom against the dense float64 hat matrix of the weighted ridge."""
    X, y = _standard_diabetes()
    w = np.random.default_rng(2).uniform(0.0, 3.0, len(X))
    w[::7] = 0.0
    model = KernelRegressorCV(criterion="gcv", gamma=0.5, alphas=WEIGHT_ALPHAS).fit(
        X, y, sample_weight=w
    )
    gcv, dof = _dense_weighted_gcv(X, y, 0.5, WEIGHT_ALPHAS, w)
    np.testing.assert_allclose(model.gcv_values_, gcv, rtol=1e-9)
    np.testing.assert_allclose(model.dof_, dof, rtol=1e-9)
    assert model.alpha_ == WEIGHT_ALPHAS[np.argmin(gcv)]


def test_weighted_classifier_gcv_matches_dense_reference_and_ignores_zero_rows():
    """KernelClassifierCV, the same definition on the one-hot targets (residuals summed
    over classes): against the dense reference, and zero-weight rows change nothing."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    w = np.random.default_rng(3).uniform(0.0, 2.0, len(X))
    w[::5] = 0.0
    kw = dict(gamma=0.5, alphas=WEIGHT_ALPHAS)
    clf = KernelClassifierCV(criterion="gcv", **kw).fit(X, y, sample_weight=w)
    Y = (y[:, None] == np.arange(3)[None, :]).astype(float)
    gcv, dof = _dense_weighted_gcv(X, Y, 0.5, WEIGHT_ALPHAS, w)
    np.testing.assert_allclose(clf.gcv_values_, gcv, rtol=1e-8)
    np.testing.assert_allclose(clf.dof_, dof, rtol=1e-8)
    assert clf.alpha_ == WEIGHT_ALPHAS[np.argmin(gcv)]
    keep = w > 0
    dropped = KernelClassifierCV(criterion="gcv", **kw).fit(X[keep], y[keep], sample_weight=w[keep])
    np.testing.assert_allclose(clf.gcv_values_, dropped.gcv_values_, rtol=1e-8)
    assert clf.alpha_ == dropped.alpha_
    np.testing.assert_allclose(
        clf.decision_function(X), dropped.decision_function(X), rtol=0, atol=1e-8
    )


def test_alphas_below_the_rounding_warn_and_take_the_fewest_df():
    """No candidate resolvable (every alpha below the whitened Gram's rounding): a warning
    says so and the candidate with the fewest degrees of freedom (the largest alpha) is
    chosen, not the first in the list."""
    X, y = _standard_diabetes()
    alphas = [1e-14, 1e-15, 1e-13]
    with pytest.warns(UserWarning, match="no candidate has a GCV estimate"):
        model = KernelRegressorCV(criterion="gcv", gamma=0.5, alphas=alphas).fit(X, y)
    assert np.all(np.isinf(model.gcv_values_))
    assert model.alpha_ == 1e-13
    assert model.best_score_ == -np.inf


def test_all_zero_targets_say_so():
    """Targets all zero: every alpha fits them exactly; the warning said the alphas were
    below the rounding or interpolated (a review). The model predicts zero."""
    X, _ = _standard_diabetes()
    y = np.zeros(len(X))
    with pytest.warns(UserWarning, match="y: the targets are all zero"):
        model = KernelRegressorCV(criterion="gcv", gamma=0.5, alphas=[0.1, 1.0]).fit(X, y)
    assert model.alpha_ == 1.0
    np.testing.assert_array_equal(model.predict(X), 0.0)


def test_a_model_without_any_gcv_estimate_saves_and_loads(tmp_path):
    X, y = _standard_diabetes()
    with pytest.warns(UserWarning, match="no candidate has a GCV estimate"):
        model = KernelRegressorCV(criterion="gcv", gamma=0.5, alphas=[1e-14, 1e-13]).fit(X, y)
    model.save(tmp_path / "m.gfm")
    loaded = gramfree.load(tmp_path / "m.gfm")
    assert loaded.best_score_ == -np.inf and loaded.alpha_ == model.alpha_
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


# -- repeated rows and the scale of the weights --------------------------------------------
# GCV's denominator counts distinct rows: a fit interpolates at most those, so with n (or
# sum w) there, repeated rows or weights summing above n let GCV fall to zero as the fit
# interpolated, and the smallest alpha won (found by a review: diabetes plus one repeated
# row chose 1e-8, held-out R^2 -1.25 against 0.23 without the repeat).

WIDE_ALPHAS = np.logspace(-8, 2, 11)


def _diabetes_split():
    from sklearn.model_selection import train_test_split

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    return train_test_split(X, y, random_state=0)


@pytest.mark.parametrize("repeats", [1, 3])
def test_repeated_rows_do_not_make_the_smallest_alpha_win(repeats):
    Xtr, Xte, ytr, yte = _diabetes_split()
    clean = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS).fit(Xtr, ytr)
    Xd, yd = np.vstack([Xtr, Xtr[:repeats]]), np.r_[ytr, ytr[:repeats]]
    model = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS).fit(Xd, yd)
    want, _ = _dense_weighted_gcv(Xd, yd, 0.1, WIDE_ALPHAS, np.ones(len(yd)))
    # Below 1e-6 both sides are near interpolation of a singular K (the repeated rows):
    # the reference's solve and gramfree's jittered K_MM agree to 1%, not to rounding.
    tight = WIDE_ALPHAS >= 1e-6
    np.testing.assert_allclose(model.gcv_values_[tight], want[tight], rtol=1e-6)
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-2)
    assert model.alpha_ == clean.alpha_ > WIDE_ALPHAS[0]
    assert model.score(Xte, yte) == pytest.approx(clean.score(Xte, yte), abs=0.01)
    assert model.score(Xte, yte) > 0.2


def _merged_gcv(X, Y, gamma, alphas, w):
    """The documented GCV computed on the merged data itself: each distinct row once, with
    its rows' total weight and weighted mean target, then the usual weighted GCV
    (``_dense_weighted_gcv``) with n the number of distinct rows."""
    Y = Y.reshape(len(X), -1)
    rows, groups = np.unique(X, axis=0, return_inverse=True)
    groups = groups.ravel()
    total = np.bincount(groups, weights=w)
    means = np.stack(
        [np.bincount(groups, weights=w * Y[:, j]) / total for j in range(Y.shape[1])], axis=1
    )
    return _dense_weighted_gcv(rows, means, gamma, alphas, total)[0]


def test_repeated_rows_with_other_targets_are_gcv_of_the_merged_rows():
    """Repeated rows whose targets differ: GCV is that of the merged data (one row each,
    its rows' total weight and mean target), computed here on the merged data directly."""
    X, y = _standard_diabetes(200)
    rng = np.random.default_rng(3)
    pick = rng.choice(len(y), size=30, replace=True)
    Xd = np.vstack([X, X[pick]])
    yd = np.r_[y, y[pick] + rng.normal(scale=0.5, size=30)]
    w = rng.uniform(0.5, 2.0, size=len(yd))
    model = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS).fit(
        Xd, yd, sample_weight=w
    )
    want = _merged_gcv(Xd, yd, 0.1, WIDE_ALPHAS, w)
    tight = WIDE_ALPHAS >= 1e-6  # below, near interpolation of a singular K (as above)
    np.testing.assert_allclose(model.gcv_values_[tight], want[tight], rtol=1e-6)
    assert model.alpha_ == WIDE_ALPHAS[np.argmin(want)] > WIDE_ALPHAS[0]


@pytest.mark.parametrize("scale", [1e-3, 1.5, 2.0, 40.0])
def test_scaling_every_weight_is_scaling_alpha(scale):
    """The objective with weights c w is c times the one with w and alpha / c: GCV and its
    choice follow (with weights read as frequencies, 1.5 everywhere chose 1e-8)."""
    X, y = _standard_diabetes(300)
    w = np.random.default_rng(2).integers(1, 4, size=len(y)).astype(np.float64)
    base = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS / scale).fit(
        X, y, sample_weight=w
    )
    scaled = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS).fit(
        X, y, sample_weight=scale * w
    )
    np.testing.assert_allclose(scaled.gcv_values_, base.gcv_values_, rtol=1e-4)
    assert scaled.alpha_ == pytest.approx(base.alpha_ * scale)
    np.testing.assert_allclose(scaled.predict(X), base.predict(X), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("scale", [1e-200, 1e-170, 1e200])
def test_weights_near_float64s_ends_choose_as_unit_weights(scale):
    """Weights c w with alphas c a: the same GCV, the same choice (times c) and the same
    model as w with a. At c = 1e-170 the path's squared coordinates underflowed: RSS was
    y^T W y at every alpha, and the largest alpha was chosen, silently (a review)."""
    X, y = _standard_diabetes(300)
    w = np.random.default_rng(2).integers(1, 4, size=len(y)).astype(np.float64)
    base = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS).fit(
        X, y, sample_weight=w
    )
    scaled = KernelRegressorCV(criterion="gcv", gamma=0.1, alphas=WIDE_ALPHAS * scale).fit(
        X, y, sample_weight=scale * w
    )
    np.testing.assert_allclose(scaled.gcv_values_, base.gcv_values_, rtol=1e-4)
    assert scaled.alpha_ == pytest.approx(base.alpha_ * scale)
    np.testing.assert_allclose(scaled.predict(X), base.predict(X), rtol=1e-6, atol=1e-9)


def test_class_weights_above_one_keep_the_choice_of_gcv():
    """breast cancer, class_weight {0: 1, 1: 1.5}: the choice is the dense reference's
    argmin (with frequency weights, 1e-8 won and held-out accuracy fell to 0.85)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    Xtr, Xte, ytr, yte = train_test_split(X, y, random_state=0, stratify=y)
    gamma = 1.0 / X.shape[1]
    model = KernelClassifierCV(
        criterion="gcv", gamma=gamma, alphas=WIDE_ALPHAS, class_weight={0: 1, 1: 1.5}
    )
    model.fit(Xtr, ytr)
    w = np.where(ytr == 1, 1.5, 1.0)
    want, _ = _dense_weighted_gcv(Xtr, 2.0 * ytr - 1.0, gamma, WIDE_ALPHAS, w)
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)
    assert model.alpha_ == WIDE_ALPHAS[np.argmin(want)] > WIDE_ALPHAS[0]
    assert model.score(Xte, yte) > 0.95


def test_iris_repeated_row_keeps_gcv_an_estimate():
    """Iris repeats a row (the same class): GCV's limit as the fit interpolates is then
    finite, as without the repeat, where it was zero (best_score_ -1.4e-8)."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    assert len(np.unique(X, axis=0)) < len(X)
    model = KernelClassifierCV(criterion="gcv", gamma=1.0, alphas=WIDE_ALPHAS).fit(X, y)
    Y = np.eye(3)[y]
    want, _ = _dense_weighted_gcv(X, Y, 1.0, WIDE_ALPHAS, np.ones(len(y)))
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-3)
    assert model.alpha_ == WIDE_ALPHAS[np.argmin(want)]
    assert -model.best_score_ == pytest.approx(want.min(), rel=1e-3)


def load_digits_small():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:700] / 16.0, y[:700]


# -- model files ---------------------------------------------------------------------------


def _rewrite_attributes(src, dst, edit):
    import json

    with np.load(src, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    edit(meta)
    with open(dst, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(meta)), **arrays)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_cv_models_save_and_load(tmp_path, kind):
    from sklearn.datasets import load_diabetes, load_iris

    from gramfree import load

    if kind == "regressor":
        X, y = load_diabetes(return_X_y=True)
        # 1e-12: degrees of freedom at n, GCV +inf, which the file must carry too.
        model = KernelRegressorCV(
            criterion="gcv", gamma=0.5, alphas=(1e-12, 1e-2, 0.1), n_centers=None
        )
    else:
        X, y = load_iris(return_X_y=True)
        model = KernelClassifierCV(criterion="gcv", gamma=0.5, alphas=np.array([1e-2, 0.1, 1.0]))
    model.fit(X, y)
    model.save(tmp_path / "m.gf")
    loaded = load(tmp_path / "m.gf")
    assert type(loaded) is type(model)
    assert loaded.alpha_ == model.alpha_ and loaded.best_score_ == model.best_score_
    np.testing.assert_array_equal(loaded.gcv_values_, model.gcv_values_)
    np.testing.assert_array_equal(loaded.dof_, model.dof_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(loaded.center_indices_, model.center_indices_)
    refit = loaded.fit(X, y)  # the stored parameters fit the same model again
    assert refit.alpha_ == model.alpha_
    np.testing.assert_allclose(
        refit.decision_function(X) if kind == "classifier" else refit.predict(X),
        model.decision_function(X) if kind == "classifier" else model.predict(X),
        rtol=1e-10,
        atol=1e-10,
    )


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("alpha_", 0.5, "is 0.5, not one of params.alphas"),
        ("gcv_values_", [1.0], "has 1 values, expected 3"),
        ("dof_", "x", "must be a list of numbers"),
        ("best_score_", None, "must be a finite number"),
        ("best_score_", 0.0, "is not minus alpha_'s GCV"),
    ],
)
def test_damaged_cv_model_files_name_the_field(tmp_path, field, value, message):
    from sklearn.datasets import load_iris

    from gramfree import load

    X, y = load_iris(return_X_y=True)
    KernelClassifierCV(criterion="gcv", gamma=0.5, alphas=[1e-2, 0.1, 1.0]).fit(X, y).save(
        tmp_path / "m.gf"
    )

    def edit(meta):
        meta["attributes"][field] = value

    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=f"attributes.{field}' {message}"):
        load(tmp_path / "bad.gf")


@pytest.mark.parametrize(
    "alphas, match",
    [
        (["a"], "alphas: must be a non-empty 1-d sequence of numbers"),
        ([[1.0], [2.0, 3.0]], "alphas: must be a non-empty 1-d sequence of numbers"),
        ([], "alphas: must be a non-empty 1-d sequence of numbers"),
        ("0.1", "'alphas' parameter .* must be an array-like"),  # scikit-learn's check
        ([0.1, -1.0], "alphas: every value must be positive and finite"),
        ([0.1, np.nan], "alphas: every value must be positive and finite"),
        # numpy reads True as 1.0: the candidates were 1 and 0.1 in silence (a review)
        ([True, 0.1], "alphas: booleans are not alphas"),
        (np.array([True, True]), "alphas: booleans are not alphas"),
        # numpy reads "0.1" as 0.1: fitted in silence where RidgeCV refuses (a review)
        (["0.1", "1.0"], "alphas: strings are not alphas"),
        (np.array(["0.1"]), "alphas: strings are not alphas"),
    ],
)
def test_bad_alphas_are_named(alphas, match):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=match):
        KernelRegressorCV(criterion="gcv", alphas=alphas).fit(X, X[:, 0])


def test_a_choice_at_the_rounding_floor_says_so():
    """800 digits rows, every row a centre, a wide kernel: GCV by numpy's solve falls to
    0.84 at alpha 1e-9, below the whitened Gram's rounding floor, where the path has no
    estimate; 3.2e-8 was chosen (GCV 1.51) in silence (a review). A choice at the smallest
    resolved alpha with smaller candidates left out now warns; with every candidate
    resolved, none."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X, y = StandardScaler().fit_transform(X)[:800], y[:800].astype(float)
    gamma = 1e-4 / 64
    K = rbf_kernel(X, gamma=gamma)

    def gcv(alpha):  # exact kernel ridge, float64
        r = y - K @ np.linalg.solve(K + alpha * np.eye(len(y)), y)
        dof = np.trace(K @ np.linalg.inv(K + alpha * np.eye(len(y))))
        return len(y) * (r @ r) / (len(y) - dof) ** 2

    alphas = np.logspace(-10, -6, 9)
    with pytest.warns(UserWarning, match="is the smallest with a GCV estimate, and 5 smaller"):
        model = KernelRegressorCV(criterion="gcv", gamma=gamma, alphas=alphas).fit(X, y)
    assert model.alpha_ == alphas[5]
    assert gcv(1e-9) < gcv(model.alpha_)  # what the warning is for
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolved = KernelRegressorCV(
            criterion="gcv", gamma=gamma, alphas=np.logspace(-3, 3, 7)
        ).fit(X, y)
    assert resolved.solver_info_["unresolved_alphas"] == 0


@pytest.mark.parametrize("estimator", [KernelRegressorCV, KernelRegressor])
def test_boolean_n_centers_is_refused(estimator):
    """scikit-learn's Interval(Integral) admits True, which read as one centre (R^2 0.02
    on diabetes, no word)."""
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="'n_centers' parameter .* must be a number, not True"):
        estimator(n_centers=True).fit(X, X[:, 0])


# -- gamma from candidates (gammas) ------------------------------------------------------

GAMMAS = [0.05, 0.1, 0.3, 1.0]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_gamma_grid_matches_brute_force_per_gamma(weighted):
    """Diabetes: every row of gcv_grid_ is the brute-force GCV of that gamma on the same
    centres; the chosen (gamma_, alpha_) is the grid's minimum, and the model is the
    single-gamma fit's at gamma_ (same centres, same predictions)."""
    X, Y = _load("diabetes")
    w = np.random.default_rng(2).uniform(0.3, 3.0, len(X)) if weighted else None
    model = KernelRegressorCV(
        criterion="gcv", gammas=GAMMAS, alphas=ALPHAS, n_centers=150, random_state=0
    )
    model.fit(X, Y, sample_weight=w)
    assert model.gcv_grid_.shape == model.dof_grid_.shape == (len(GAMMAS), len(ALPHAS))
    for g, row in zip(GAMMAS, model.gcv_grid_):
        want = _brute_gcv(X, Y, model.centers_, g, ALPHAS, np.ones(len(X)) if w is None else w)
        np.testing.assert_allclose(row, want, rtol=1e-6)
    i, j = np.unravel_index(np.argmin(model.gcv_grid_), model.gcv_grid_.shape)
    assert (model.gamma_, model.alpha_) == (GAMMAS[i], ALPHAS[j])
    assert model.kernel_.gamma == model.gamma_ and model.best_score_ == -model.gcv_grid_.min()
    np.testing.assert_array_equal(model.gcv_values_, model.gcv_grid_[i])
    np.testing.assert_array_equal(model.dof_, model.dof_grid_[i])
    single = KernelRegressorCV(
        criterion="gcv", gamma=model.gamma_, alphas=ALPHAS, n_centers=150, random_state=0
    )
    single.fit(X, Y, sample_weight=w)
    np.testing.assert_array_equal(single.centers_, model.centers_)
    np.testing.assert_allclose(model.predict(X), single.predict(X), rtol=1e-10, atol=1e-10)


def test_classifier_gamma_grid_on_class_targets():
    """Digits, 10 classes, with a narrow candidate among wide ones: each row is the
    brute-force GCV of the one-hot targets; the choice is the grid's minimum."""
    X, y = load_digits_small()
    Y = (y[:, None] == np.arange(10)[None, :]).astype(float)
    gammas = (0.005, 0.02, 0.2)
    clf = KernelClassifierCV(
        criterion="gcv", gammas=gammas, alphas=ALPHAS, n_centers=200, random_state=0
    )
    clf.fit(X, y)
    for g, row in zip(gammas, clf.gcv_grid_):
        want = _brute_gcv(X, Y, clf.centers_, g, ALPHAS, np.ones(len(y)))
        np.testing.assert_allclose(row, want, rtol=1e-6)
    i = int(np.argmin(clf.gcv_grid_.min(axis=1)))
    assert clf.gamma_ == gammas[i] and clf.score(X, y) > 0.95
    assert clf.solver_info_["gammas"] == list(gammas)


def test_refitting_without_gammas_drops_the_grid():
    X, Y = _load("diabetes")
    model = KernelRegressorCV(
        criterion="gcv", gammas=[0.1, 1.0], alphas=ALPHAS, n_centers=100, random_state=0
    )
    model.fit(X, Y)
    assert hasattr(model, "gamma_")
    model.set_params(gammas=None, gamma=0.1).fit(X, Y)
    assert not any(hasattr(model, a) for a in ("gamma_", "gcv_grid_", "dof_grid_"))


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(gammas=[0.1, 1.0], gamma=0.5), "gammas: the candidates for gamma replace it"),
        (dict(gammas=[]), "gammas: must be a non-empty 1-d sequence of numbers"),
        (dict(gammas=[[0.1], [1.0, 2.0]]), "gammas: must be a non-empty 1-d sequence"),
        (dict(gammas=["a"]), "gammas: must be a non-empty 1-d sequence of numbers"),
        (dict(gammas=[0.1, 0.0]), "gammas: every value must be positive and finite"),
        (dict(gammas=[0.1, np.inf]), "gammas: every value must be positive and finite"),
        (dict(gammas=[0.1], kernel="matern"), "gammas: the Matern kernel has no gamma"),
        (dict(gammas=[0.1], kernel="linear"), "gammas: the Linear kernel has no gamma"),
        (dict(gammas="0.1"), "'gammas' parameter .* must be an array-like"),
    ],
)
def test_bad_gammas_are_named(params, match):
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match=match):
        KernelRegressorCV(criterion="gcv", **params).fit(X, X[:, 0])


def test_gammas_with_a_kernel_object_replace_its_gamma():
    from gramfree.kernels import Laplacian

    X, Y = _load("diabetes")
    model = KernelRegressorCV(
        Laplacian(gamma=3.0), criterion="gcv", gammas=[0.05, 0.5], n_centers=100
    )
    model.fit(X, Y)
    assert isinstance(model.kernel_, Laplacian) and model.kernel_.gamma in (0.05, 0.5)


def test_gamma_grid_models_save_and_load(tmp_path):
    from gramfree import load

    X, y = load_digits_small()
    model = KernelClassifierCV(
        criterion="gcv", gammas=(0.005, 0.02), alphas=[1e-2, 0.1], n_centers=100
    )
    model.fit(X, y).save(tmp_path / "m.gf")
    loaded = load(tmp_path / "m.gf")
    assert loaded.gamma_ == model.gamma_ and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.gcv_grid_, model.gcv_grid_)
    np.testing.assert_array_equal(loaded.dof_grid_, model.dof_grid_)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["attributes"].update(gamma_=0.3), "attributes.gamma_' is 0.3, not one of"),
        (lambda m: m["attributes"].update(gcv_grid_=[[1.0, 2.0]]), "must be a list of 2 rows"),
        (lambda m: m["attributes"]["dof_grid_"][1].pop(), "dof_grid_\\[1\\]' has 1 values"),
        (lambda m: m["attributes"].pop("dof_grid_"), "missing field\\(s\\) \\['dof_grid_'\\]"),
        (lambda m: m["params"].update(gammas=None), "gamma_' is stored without params.gammas"),
    ],
)
def test_damaged_gamma_grid_files_name_the_field(tmp_path, edit, message):
    from gramfree import load

    X, y = load_digits_small()
    model = KernelClassifierCV(
        criterion="gcv", gammas=(0.005, 0.02), alphas=[1e-2, 0.1], n_centers=100
    )
    model.fit(X, y).save(tmp_path / "m.gf")
    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.gf")


@pytest.mark.filterwarnings("ignore:alphas. no candidate has a GCV estimate")
def test_gammas_are_range_checked_in_the_model_s_precision():
    """float32 data are fitted and predicted in float32: each candidate is checked there,
    as a single gamma is (not with gamma=None's kernel, nor in float64). A candidate that
    overflows is named; one that does not fits and predicts finite values."""
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(60, 1)) * 1e7).astype(np.float32)
    y = rng.normal(size=60).astype(np.float32)
    single = KernelRegressorCV(criterion="gcv", kernel="poly", gamma=1e-9).fit(X, y)
    grid = KernelRegressorCV(criterion="gcv", kernel="poly", gammas=[1e-9]).fit(X, y)
    np.testing.assert_array_equal(grid.predict(X), single.predict(X))
    assert np.isfinite(grid.predict(X)).all()
    with pytest.raises(ValueError, match=r"^X: the poly kernel overflows float32.*gammas\[1\]=1\)"):
        KernelRegressorCV(criterion="gcv", kernel="poly", gammas=[1e-9, 1.0]).fit(X, y)
    with pytest.raises(ValueError, match="gamma=1e\\+39 is out of float32's range"):
        KernelRegressorCV(criterion="gcv", gammas=[0.1, 1e39]).fit(X / 1e7, y)


def test_only_the_chosen_gamma_s_warnings_are_said():
    """Alphas below the rounding of one gamma's whitened Gram (0.01: a nearly constant
    kernel, K_MM's pivots amplify it) leave it without a GCV estimate, which warns; the
    other gamma (1e4: a nearly diagonal kernel) has estimates and wins, so nothing is
    said."""
    import warnings

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(80, 3)), rng.normal(size=80)
    alphas = [1e-11, 1e-10]
    with pytest.warns(UserWarning, match="no candidate has a GCV estimate"):
        KernelRegressorCV(criterion="gcv", gamma=0.01, alphas=alphas).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = KernelRegressorCV(criterion="gcv", gammas=[0.01, 1e4], alphas=alphas)
        model.fit(X, y)
    assert model.gamma_ == 1e4 and np.isfinite(model.best_score_)


@pytest.mark.parametrize(
    "gammas, message",
    [
        ([-5.0, 0.005], "params.gammas' every value must be positive and finite"),
        ([0.0, 0.005], "params.gammas' every value must be positive and finite"),
        ({"__dict__": [[0.005, 1.0], [0.02, 1.0]]}, "params.gammas' must be a non-empty list"),
        ({"__ndarray__": [0.005], "dtype": "float64", "shape": []}, "params.gammas' must be"),
    ],
)
def test_damaged_gammas_parameter_is_named(tmp_path, gammas, message):
    from gramfree import load

    X, y = load_digits_small()
    model = KernelClassifierCV(
        criterion="gcv", gammas=(0.005, 0.02), alphas=[1e-2, 0.1], n_centers=100
    )
    model.fit(X, y).save(tmp_path / "m.gf")

    def edit(meta):
        meta["params"]["gammas"] = gammas

    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.gf")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["gcv_grid_"][0].reverse(), "gcv_grid_' differs from gcv_values_"),
        (lambda a: a.update(best_score_=a["best_score_"] - 1.0), "best_score_' is not minus"),
    ],
)
def test_gamma_grid_inconsistent_with_the_path_is_refused(tmp_path, edit, message):
    from gramfree import load

    X, y = load_digits_small()
    model = KernelClassifierCV(
        criterion="gcv", gammas=(0.005, 0.02), alphas=[1e-2, 0.1], n_centers=100
    )
    model.fit(X, y).save(tmp_path / "m.gf")

    def change(meta):  # the chosen gamma's row first, then the damage
        row = meta["params"]["gammas"]["__tuple__"].index(meta["attributes"]["gamma_"])
        attrs = meta["attributes"]
        attrs["gcv_grid_"].insert(0, attrs["gcv_grid_"].pop(row))
        attrs["dof_grid_"].insert(0, attrs["dof_grid_"].pop(row))
        gammas = meta["params"]["gammas"]["__tuple__"]
        gammas.insert(0, gammas.pop(row))
        edit(attrs)

    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", change)
    with pytest.raises(ValueError, match=message):
        load(tmp_path / "bad.gf")


@pytest.mark.parametrize("seed", [6, 7])
def test_gcv_of_repeated_rows_never_collapses_to_zero(seed):
    """Rows measured five times each (diabetes' first five features, 100 rows, noisy
    replicate targets): at a near-interpolating alpha the merged rows' RSS, RSS minus the
    pure error, is a difference of two sums equal to 16 digits; clamped to 0 it made GCV 0
    and that alpha was chosen (a review). Now no estimate there, and every finite GCV and
    the choice are the exact GCV of the merged data (numpy, float64)."""
    X0, _ = load_diabetes(return_X_y=True)
    X0 = StandardScaler().fit_transform(X0)[:, :5]
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(X0), 100, replace=False)
    X = np.repeat(X0[rows], 5, axis=0)
    y = np.sin(X[:, 0]) + rng.normal(size=500)
    alphas = np.array([1e-10, 1e-9, 1e-8, 1e-7, 1e-6, 1e-4, 1e-2, 1.0])
    gamma = 3.0
    model = KernelRegressorCV(criterion="gcv", gamma=gamma, alphas=alphas).fit(X, y)
    ybar = y.reshape(100, 5).mean(axis=1)
    s, V = np.linalg.eigh(rbf_kernel(X0[rows], gamma=gamma))
    exact = []
    for a in alphas:
        t = a / 5
        f = V @ ((s / (s + t)) * (V.T @ ybar))
        exact.append((5 * np.sum((ybar - f) ** 2) / 500) / (np.sum(t / (s + t)) / 100) ** 2)
    exact = np.array(exact)
    gcv = np.asarray(model.gcv_values_)
    assert np.all(gcv > 0)
    finite = np.isfinite(gcv)
    np.testing.assert_allclose(gcv[finite][-3:], exact[finite][-3:], rtol=1e-3)
    assert model.alpha_ == alphas[finite][np.argmin(exact[finite])]


def test_gcv_with_repeated_rows_at_near_interpolating_alphas():
    """Repeated rows, every row a centre: their null eigenvalues came out at 3e-16 to
    2e-15 instead of 0, and at alpha 1e-9 their terms in n_d - df cancelled it to -2e-6
    for 8e-7 (dof_ 569.0000019 with 569 distinct rows, GCV 14 times the exact one; a
    review). Against GCV of the merged rows (weight 2 for the repeated ones) in float64."""
    from sklearn.datasets import load_breast_cancer

    X0, y0 = load_breast_cancer(return_X_y=True)
    X0, y0 = StandardScaler().fit_transform(X0), y0.astype(np.float64)
    X, y = np.vstack([X0, X0[:5]]), np.concatenate([y0, y0[:5]])
    gamma = 10.0 / X.shape[1]
    alphas = np.array([1e-9, 2.15e-9, 4.64e-9, 1e-8, 1e-6, 1e-2])
    model = KernelRegressorCV(criterion="gcv", gamma=gamma, alphas=alphas).fit(X, y)
    weights = np.ones(len(X0))
    weights[:5] = 2.0
    root = np.sqrt(weights)
    mu, V = np.linalg.eigh(root[:, None] * rbf_kernel(X0, gamma=gamma) * root[None, :])
    z = V.T @ (root * y0)
    n_d = len(X0)
    for alpha, gcv in zip(alphas, model.gcv_values_):
        rss = np.sum((alpha / (mu + alpha)) ** 2 * z**2)
        gap = np.sum(alpha / (mu + alpha))
        np.testing.assert_allclose(gcv, (rss / len(X)) / (gap / n_d) ** 2, rtol=1e-4)
    assert np.all(model.dof_ < n_d)
