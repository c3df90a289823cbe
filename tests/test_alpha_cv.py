"""KernelRegressorCV and KernelClassifierCV: every alpha's GCV from one pass and one eigendecomposition, against
a brute-force float64 reference (explicit Nystrom features, the hat matrix formed and its
trace taken) on real data; the chosen model equals KernelRegressor's at that alpha on the
same centres; bad alphas are refused naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_diabetes
from sklearn.metrics.pairwise import rbf_kernel
from test_solvers_realdata import _load

from gramfree import KernelClassifier, KernelClassifierCV, KernelRegressor, KernelRegressorCV

ALPHAS = np.logspace(-3, 3, 9)


def _brute_gcv(X, Y, C, gamma, alphas, w):
    """GCV per alpha with Phi the Nystrom features (Phi Phi^T = K_nM K_MM^-1 K_Mn) and the
    weighted hat matrix H = Phi_w (Phi_w^T Phi_w + alpha I)^-1 Phi_w^T formed in full."""
    Knm, Kmm = rbf_kernel(X, C, gamma=gamma), rbf_kernel(C, C, gamma=gamma)
    lam, U = np.linalg.eigh(Kmm)
    keep = lam > 1e-12 * lam.max()
    Phi = Knm @ U[:, keep] / np.sqrt(lam[keep])
    sw = np.sqrt(w)[:, None]
    Pw, Yw = Phi * sw, Y * sw
    n = len(X)
    out = []
    for a in alphas:
        H = Pw @ np.linalg.solve(Pw.T @ Pw + a * np.eye(Pw.shape[1]), Pw.T)
        R = Yw - H @ Yw
        out.append((np.sum(R**2) / w.sum()) / (1 - np.trace(H) / n) ** 2)
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
    model = KernelRegressorCV(gamma=gamma, alphas=ALPHAS, n_centers=m, random_state=0).fit(
        X, Y, sample_weight=w if weighted else None
    )
    want = _brute_gcv(X, Y, model.centers_, gamma, ALPHAS, w)
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)
    assert model.alpha_ == ALPHAS[np.argmin(want)]
    assert model.best_score_ == -model.gcv_values_.min()


def test_chosen_model_is_kernel_regressor_at_alpha():
    X, Y = _load("diabetes")
    y = Y[:, 0]
    cv = KernelRegressorCV(gamma=0.05, alphas=ALPHAS, n_centers=200, random_state=3).fit(X, y)
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
    model = KernelRegressorCV(gamma=0.05, alphas=ALPHAS).fit(X, y)
    assert model.centers_.shape[0] == 300
    K = rbf_kernel(X, gamma=0.05)
    for a, got in zip(ALPHAS, model.gcv_values_):
        H = K @ np.linalg.inv(K + a * np.eye(300))
        r = y - H @ y
        assert got == pytest.approx((r @ r / 300) / (1 - np.trace(H) / 300) ** 2, rel=1e-6)


def test_targets_share_one_alpha():
    X, Y = _load("diabetes")
    Y2 = np.column_stack([Y[:, 0], -2 * Y[:, 0] + 0.1])
    model = KernelRegressorCV(gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0).fit(X, Y2)
    assert model.predict(X).shape == Y2.shape
    one = KernelRegressorCV(gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0)
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
        KernelRegressorCV(alphas=alphas).fit(X, Y[:, 0])


def test_compress_says_what_to_do():
    X, Y = _load("diabetes")
    model = KernelRegressorCV(gamma=0.05, n_centers=50, random_state=0).fit(X, Y[:, 0])
    with pytest.raises(TypeError, match="alpha_"):
        model.compress(10)


def test_failed_objective_check_recomputes_from_whitened_features(monkeypatch):
    """Where the whitened Gram's rounding shows (the check fails), the path is recomputed
    from the whitened-feature pass: same GCV as the brute force."""
    from gramfree.solvers import alpha_path

    X, Y = _load("diabetes")
    monkeypatch.setattr(alpha_path, "OBJECTIVE_CHECK", -1.0)  # every check fails
    model = KernelRegressorCV(gamma=0.05, alphas=ALPHAS, n_centers=150, random_state=0).fit(X, Y)
    assert model.solver_info_["fallback"] == "whitened features"
    assert model.solver_info_["pass"] == "whitened features"
    want = _brute_gcv(X, Y, model.centers_, 0.05, ALPHAS, np.ones(len(X)))
    np.testing.assert_allclose(model.gcv_values_, want, rtol=1e-6)


@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_classifier_gcv_on_class_targets(class_weight):
    """Digits, 10 classes: GCV of the one-hot targets (RSS summed over classes) against the
    brute force; the chosen model is KernelClassifier's at alpha_ on the same centres."""
    from sklearn.utils.class_weight import compute_sample_weight

    X, y = load_digits_small()
    clf = KernelClassifierCV(
        gamma=0.02, alphas=ALPHAS, n_centers=200, random_state=0, class_weight=class_weight
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
    clf = KernelClassifierCV(gamma=0.02, alphas=ALPHAS, n_centers=150, random_state=0).fit(X, y)
    assert list(clf.classes_) == ["benign", "malignant"]
    assert clf.decision_function(X).shape == (len(X),)
    assert clf.score(X, y) > 0.9


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
        model = KernelRegressorCV(gamma=0.5, alphas=(1e-12, 1e-2, 0.1), n_centers=None)
    else:
        X, y = load_iris(return_X_y=True)
        model = KernelClassifierCV(gamma=0.5, alphas=np.array([1e-2, 0.1, 1.0]))
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
    ],
)
def test_damaged_cv_model_files_name_the_field(tmp_path, field, value, message):
    from sklearn.datasets import load_iris

    from gramfree import load

    X, y = load_iris(return_X_y=True)
    KernelClassifierCV(gamma=0.5, alphas=[1e-2, 0.1, 1.0]).fit(X, y).save(tmp_path / "m.gf")

    def edit(meta):
        meta["attributes"][field] = value

    _rewrite_attributes(tmp_path / "m.gf", tmp_path / "bad.gf", edit)
    with pytest.raises(ValueError, match=f"attributes.{field}' {message}"):
        load(tmp_path / "bad.gf")
