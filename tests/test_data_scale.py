"""Data on scales the kernel cannot take: a clear error naming X, never a solver's
internal failure ("V: contains NaN or infinity", LAPACK's "Internal Error") or a
silently non-finite prediction; and an alpha below the kernel matrix's rounding, which
scikit-learn's KernelRidge answers by least squares and the direct solver by a reported
jitter."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.linalg import LinAlgWarning
from sklearn.datasets import load_diabetes
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from gramfree import KernelClassifier, KernelClassifierCV, KernelRegressor, KernelRegressorCV


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X)[:200], y[:200]


# Scales at which each kernel's values overflow (|x| ~ 3 * scale on these rows). (Not
# Matern's: where its distances overflow its value is its limit 0, as the Gaussian's.)
OVERFLOW = [
    ("linear", np.float64, 1e160),
    ("poly", np.float64, 1e60),
    ("arccos", np.float64, 1e160),
    ("linear", np.float32, 1e20),
    ("poly", np.float32, 1e10),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kernel, dtype, scale", OVERFLOW)
@pytest.mark.parametrize("solver", ["auto", "direct", "nystrom-pcg", "eigenpro"])
def test_overflowing_kernel_refused_naming_x(diabetes, kernel, dtype, scale, solver):
    X, y = diabetes
    Xs = (X * scale).astype(dtype)
    assert np.isfinite(Xs).all()
    before = Xs.copy()
    model = KernelRegressor(
        kernel=kernel, solver=solver, n_centers=50 if solver == "nystrom-pcg" else None
    )
    with pytest.raises(ValueError, match=rf"^X: the {kernel} kernel overflows"):
        model.fit(Xs, y)
    np.testing.assert_array_equal(Xs, before)


@pytest.mark.parametrize(
    "estimator",
    [
        KernelClassifier(kernel="linear"),
        KernelClassifier(kernel="linear", loss="logistic", n_centers=40),
        KernelRegressorCV(kernel="linear", alphas=[0.1, 1.0]),
        KernelClassifierCV(kernel="linear", alphas=[0.1, 1.0]),
    ],
    ids=["classifier", "logistic", "regressor-cv", "classifier-cv"],
)
def test_every_estimator_checks(diabetes, estimator):
    X, y = diabetes
    target = y > np.median(y) if "Classifier" in type(estimator).__name__ else y
    with pytest.raises(ValueError, match=r"^X: the linear kernel overflows float64"):
        estimator.fit(X * 1e160, target)


@pytest.mark.parametrize("kernel, power", [("rbf", 2), ("laplacian", 1)])
def test_scale_invariant_kernels_still_fit_large_scales(diabetes, kernel, power):
    """Distance kernels whose values stay finite are not refused: the model on X * s
    with gamma / s^power is the model on X."""
    X, y = diabetes
    s = 1e100
    big = KernelRegressor(kernel=kernel, gamma=0.1 / s**power, solver="direct", alpha=0.5)
    ref = KernelRegressor(kernel=kernel, gamma=0.1, solver="direct", alpha=0.5)
    np.testing.assert_allclose(
        big.fit(X * s, y).predict(X * s), ref.fit(X, y).predict(X), rtol=1e-6
    )


def test_predict_on_overflowing_rows_refused(diabetes):
    X, y = diabetes
    model = KernelRegressor(kernel="poly", solver="direct").fit(X, y)
    with pytest.raises(ValueError, match=r"^X: the poly kernel overflows float64 between"):
        model.predict(X * 1e160)
    # Matern at distances that overflow: its limit 0, so no centre reaches these rows.
    clf = KernelClassifier(kernel="matern").fit(X, y > np.median(y))
    np.testing.assert_array_equal(clf.decision_function(X * 1e160), 0.0)
    # Large but finite kernel values are an answer, not an error.
    assert np.isfinite(KernelRegressor(kernel="linear").fit(X, y).predict(X * 1e150)).all()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    exponent=st.floats(0.0, 300.0),
    kernel=st.sampled_from(["linear", "poly", "matern", "arccos", "rbf"]),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_any_scale_fits_or_names_x(exponent, kernel, dtype):
    """At any scale the fit either gives finite predictions or refuses naming X."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 3))
    y = X[:, 0] + 0.1 * rng.standard_normal(60)
    if np.abs(X).max() * 10.0**exponent >= np.finfo(dtype).max:  # check_array's error
        return
    Xs = (X * 10.0**exponent).astype(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", LinAlgWarning)
        try:
            model = KernelRegressor(kernel=kernel, solver="direct").fit(Xs, y)
        except ValueError as exc:
            assert str(exc).startswith(f"X: the {kernel} kernel overflows"), exc
            return
    assert np.isfinite(model.predict(Xs)).all()


def test_alpha_below_rounding_jittered_with_a_warning(diabetes):
    """A linear kernel on X * 1e20: K (rank 10) has entries ~1e40, alpha = 1 is lost
    in its rounding and float64 Cholesky fails. The jittered solve is ordinary least
    squares to the jitter's relative size (scikit-learn's KernelRidge falls back to the
    same least-squares answer)."""
    X, y = diabetes
    Xs = X * 1e20
    with pytest.warns(LinAlgWarning, match=r"alpha=1 is below the rounding"):
        model = KernelRegressor(kernel="linear", solver="direct", alpha=1.0).fit(Xs, y)
    assert model.solver_info_["jitter"] > 0
    coef, *_ = np.linalg.lstsq(Xs, y, rcond=None)
    # Within 1e-4 of the targets' scale: the dual coefficients' cancellation in K @ c
    # (the solver's comment) leaves ~3e-5 of it.
    np.testing.assert_allclose(model.predict(Xs), Xs @ coef, rtol=0, atol=1e-4 * np.abs(y).max())


def test_direct_refuses_n_centers_below_n(diabetes):
    X, y = diabetes
    with pytest.raises(ValueError, match=r"^n_centers: solver='direct' uses every"):
        KernelRegressor(solver="direct", n_centers=50).fit(X, y)
    with pytest.raises(ValueError, match=r"^n_centers: solver='direct'"):
        KernelClassifier(solver="direct", n_centers=0.5).fit(X, y > np.median(y))
    full = KernelRegressor(solver="direct", n_centers=1.0).fit(X, y)
    assert full.n_centers_ == len(X)


@pytest.mark.parametrize("factor", [2.0**1000, 2.0**-1000, 1e300])
@pytest.mark.parametrize(
    "params",
    [
        dict(solver="direct"),
        dict(solver="nystrom-pcg", n_centers=60, tol=1e-10, max_iter=500),
        dict(solver="nystrom-direct", n_centers=60),
        dict(solver="eigenpro", max_iter=5),
        dict(solver="pcg", tol=1e-10),
        dict(solver="nystrom-pcg", n_centers=60, loss="logistic"),
    ],
    ids=["direct", "nystrom-pcg", "nystrom-direct", "eigenpro", "pcg", "logistic"],
)
def test_weights_of_any_scale_with_alpha_scaled_alike_give_the_same_model(diabetes, params, factor):
    """Only the ratio of the weights to alpha fixes the model; weights of 1e300 failed
    inside the solvers ("V:", "B:", "U: contains NaN or infinity"; a review). The scale is
    taken out by a power of four, exact: the same predictions as the weights near 1."""
    X, y = diabetes
    X, y = X[:200], y[:200]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    classify = params.get("loss") == "logistic"
    target = (y > np.median(y)).astype(int) if classify else y
    make = KernelClassifier if classify else KernelRegressor
    alpha = 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = make(gamma=0.1, alpha=alpha, random_state=0, **params).fit(X, target, sample_weight=w)
        big = make(gamma=0.1, alpha=alpha * factor, random_state=0, **params).fit(
            X, target, sample_weight=w * factor
        )
    out = "decision_function" if classify else "predict"
    np.testing.assert_allclose(getattr(big, out)(X), getattr(ref, out)(X), rtol=1e-9, atol=1e-9)
    if params["solver"] == "eigenpro":
        # solver_info_ in the caller's units: the weighted operator's eigenvalues and beta
        # scale with the weights, the steps inversely (they described the rescaled
        # problem: step sizes 2^1000 too large).
        for key in ("lambda_flat", "lambda_measured", "lambda_q", "beta"):
            assert big.solver_info_[key] == pytest.approx(ref.solver_info_[key] * factor, rel=1e-6)
        for key in ("step_size", "step_size_rule"):
            assert big.solver_info_[key] == pytest.approx(ref.solver_info_[key] / factor, rel=1e-6)


@pytest.mark.parametrize("factor", [4.0, 1024.0, 0.3])
def test_eigenpro3_weights_of_any_scale_with_alpha_scaled_alike_run_the_same_epochs(
    diabetes, factor
):
    """EigenPro 3 chose its preconditioner's directions from the centres' kernel, which
    carries no weights, against beta and the ridge shift, which do: weights and alpha times
    4 gave other directions (11 against 2 on diabetes), another batch and another model
    after a few epochs, within the weights' ordinary range. Now the same epochs: the same
    predictions, the step scaled by 1 / factor."""
    X, y = diabetes
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    params = dict(gamma=0.1, solver="eigenpro", n_centers=100, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = KernelRegressor(alpha=0.1, **params).fit(X, y, sample_weight=w)
        big = KernelRegressor(alpha=0.1 * factor, **params).fit(X, y, sample_weight=w * factor)
    assert big.solver_info_["top_q"] == ref.solver_info_["top_q"]
    assert big.solver_info_["batch_size"] == ref.solver_info_["batch_size"]
    assert big.solver_info_["step_size"] == pytest.approx(ref.solver_info_["step_size"] / factor)
    np.testing.assert_allclose(big.predict(X), ref.predict(X), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("factor", [2.0**1000, 2.0**-1000, 1e307, 1e-310])
@pytest.mark.parametrize(
    "make",
    [
        lambda: KernelRegressorCV(gamma=0.1),
        lambda: KernelRegressorCV(gamma=0.1, gamma_search="gradient"),
        lambda: KernelClassifierCV(gamma=0.1),
        lambda: KernelClassifierCV(gamma=0.1, loss="logistic", cv=3, n_centers=60, random_state=0),
    ],
    ids=["regressor", "gamma-search", "classifier", "logistic"],
)
def test_cv_weights_of_any_scale_with_alphas_scaled_alike_choose_the_same_model(
    diabetes, make, factor
):
    """The CV estimators as the plain ones above: weights and every candidate alpha times c
    choose alpha_ times c and the same model. Before, the CV paths kept the weights as
    given: 1e307 failed as "B:" (GCV) or "A: contains NaN or infinity" (logistic), and a
    gamma search at 2^+-1000 stopped at its start on overflowed slopes, silently (gamma_
    0.1 against 0.0149 at weights near 1)."""
    X, y = diabetes
    X, y = X[:200], y[:200]
    w = np.random.default_rng(0).uniform(0.5, 1.0, len(y))
    ref, big = make(), make()
    classify = isinstance(ref, KernelClassifierCV)
    target = (y > np.median(y)).astype(int) if classify else y
    alphas = np.logspace(-4, 1, 11)
    ref.set_params(alphas=alphas).fit(X, target, sample_weight=w)
    big.set_params(alphas=alphas * factor).fit(X, target, sample_weight=w * factor)
    # A factor not a power of two rounds the weights' ratios: the search's optimum, found
    # to its tolerance, moves within 1e-5 (1e307).
    assert big.alpha_ == pytest.approx(ref.alpha_ * factor, rel=1e-4)
    if hasattr(ref, "gamma_"):  # (pytest 7's approx takes no None)
        assert big.gamma_ == pytest.approx(ref.gamma_, rel=1e-4)
    else:
        assert not hasattr(big, "gamma_")
    assert big.best_score_ == pytest.approx(ref.best_score_, rel=1e-6)
    out = "decision_function" if classify else "predict"
    np.testing.assert_allclose(getattr(big, out)(X), getattr(ref, out)(X), rtol=1e-6, atol=1e-6)
    for record, expected in zip(
        big.solver_info_.get("gamma_search", []), ref.solver_info_.get("gamma_search", [])
    ):
        assert record["alpha"] == pytest.approx(expected["alpha"] * factor, rel=1e-4)


@pytest.mark.parametrize("solver", ["direct", "nystrom-pcg", "eigenpro", "pcg"])
def test_float32_data_keeps_its_weights_in_float64(diabetes, solver):
    """Weights were cast to X's dtype before anything else: with float32 X, weights times
    1e-44 lost their digits (predictions moved by 0.03), 1e-100 became "at least one
    non-zero number" and 1e40 "too large for float32" (a review). float64 weights now,
    whatever X's dtype: the same model at every scale, as for float64 X."""
    X, y = diabetes
    X32, y = X[:200].astype(np.float32), y[:200]
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    params = dict(gamma=0.1, solver=solver, random_state=0)
    if solver == "nystrom-pcg":
        params.update(n_centers=60, tol=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = KernelRegressor(alpha=0.1, **params).fit(X32, y, sample_weight=w).predict(X32)
        for c in (1e-44, 1e-100, 1e40, 1e300):
            got = KernelRegressor(alpha=0.1 * c, **params).fit(X32, y, sample_weight=w * c)
            np.testing.assert_allclose(got.predict(X32), ref, rtol=1e-4, atol=1e-4)


def test_tiny_weights_with_an_ordinary_alpha_fit_the_near_zero_model(diabetes):
    """Weights of 1e-310 (subnormal) with alpha 1: the weights' rescaling overflowed alpha
    (OverflowError: math range error). Their ratio to alpha is ~1e-310: a model of ~0."""
    X, y = diabetes
    for loss in ("squared", "logistic"):
        make = KernelRegressor if loss == "squared" else KernelClassifier
        target = y if loss == "squared" else (y > np.median(y)).astype(int)
        extra = {} if loss == "squared" else {"loss": "logistic"}
        model = make(alpha=1.0, **extra).fit(X, target, sample_weight=np.full(len(y), 1e-310))
        out = model.predict(X) if loss == "squared" else model.predict_proba(X)[:, 1]
        assert np.all(np.isfinite(out))
        if loss == "squared":
            assert np.max(np.abs(out)) < 1e-300


def test_pcg_with_a_subnormal_alpha_fits(diabetes):
    """pcg's preconditioner took a subnormal alpha as its floor and overflowed w / d:
    "A: contains NaN or infinity" (a review). Such an alpha is no ridge at all; pcg's
    convergence there is its own matter (it warns)."""
    X, y = diabetes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KernelRegressor(alpha=1e-320, solver="pcg", max_iter=20).fit(X[:200], y[:200])
    assert np.all(np.isfinite(model.dual_coef_))


@pytest.mark.parametrize("criterion", ["auto", "gcv"])
@pytest.mark.parametrize("heavy", [1e50, 1e300])
def test_cv_with_one_row_far_heavier_stays_bounded_and_names_the_span(criterion, heavy):
    """One row at 1e50 (or 1e300) among rows at 1: every candidate alpha is below the
    whitened Gram's rounding, which scales with the heaviest row. The null directions'
    right-hand side is rounding, and divided by alpha it gave predictions of 1e16 on
    targets within 1 (a review); the model now leaves those directions out (it interpolates
    the heavy row), the warning names the weights' span and says the chosen alpha's model
    is refitted exactly (nystrom-direct's QR of the rows by norm), and it is."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = np.sin(X[:, 0])
    weights = np.r_[heavy, np.ones(39)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = KernelRegressorCV(criterion=criterion).fit(X, y, sample_weight=weights)
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("sample weights span" in m and "refitted exactly" in m for m in said), said
    assert model.solver_info_["refit"] == "nystrom-direct, graded QR"
    assert all(". The positive sample weights span" in m for m in said), said  # a sentence
    predictions = model.predict(X)
    assert np.all(np.abs(predictions) <= np.abs(y).max())
    assert predictions[0] == pytest.approx(y[0], abs=1e-6)


def test_a_pcg_breakdown_under_a_wide_weight_span_names_the_span():
    """Explicit Nystrom-PCG with one row at 1e50: CG breaks down at its first iteration,
    and the warning advised nystrom-direct as if the centres coincided (a review); the
    weights' span is the cause, and its warning comes first."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[:60]), y[:60] / 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KernelRegressor(alpha=1.0, solver="nystrom-pcg", n_centers=20, random_state=0).fit(
            X, y, sample_weight=np.r_[1e50, np.ones(59)]
        )
    said = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(said) == 1 and "sample weights span" in said[0], said


def test_pcg_overflowing_under_a_wide_weight_span_names_sample_weight():
    """One row at 1e300 overflowed PCG's products, and the error named the internal
    operator's argument V (a review): it names sample_weight and the exact solver."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[:60]), y[:60] / 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow on the way
        with pytest.raises(ValueError, match=r"sample_weight: .* span 1e\+300.*solver='direct"):
            KernelRegressor(alpha=1.0, solver="pcg").fit(
                X, y, sample_weight=np.r_[1e300, np.ones(59)]
            )


def test_the_span_note_follows_a_choice_below_unresolved_candidates_as_a_sentence():
    """GCV's "its minimum may lie below the alpha chosen" has no full stop of its own: the
    weight-span note was glued on ("chosen The positive ..."; a review)."""
    X, y = load_diabetes(return_X_y=True)
    X, y = StandardScaler().fit_transform(X[:40]), y[:40] / 100.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        KernelRegressorCV(criterion="gcv", alphas=np.logspace(25, 45, 11)).fit(
            X, y, sample_weight=np.r_[1e50, np.ones(39)]
        )
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any("may lie below the alpha chosen. The positive sample" in m for m in said), said
