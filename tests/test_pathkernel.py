"""Path-kernel models: training, the exact decomposition, kernels, explanations.

References: closed forms (the linear model), an independent numpy implementation that
materialises every gradient (gramfree.pathkernel.reference), finite differences (the NTK).
"""

import pickle
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gramfree
from gramfree import PathKernelClassifier, PathKernelRegressor
from gramfree.pathkernel import reference as ref

SMOOTH = ["tanh", "softplus", "gelu", "identity"]


def _data(n=40, d=3, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sin(X @ rng.normal(size=(d, k))) + 0.1 * rng.normal(size=(n, k))
    return X, (y[:, 0] if k == 1 else y)


def _reference_run(model, X, Y, Q, n_nodes=8):
    # 8 nodes: where the engine refined a segment (self-check), 4 plain nodes would differ.
    net = ref.ReferenceMLP(model.network_.sizes, model.activation, model.network_.loss)
    w0 = model.network_.pack(model.initial_coefs_, model.initial_intercepts_)
    return ref.decompose(
        net,
        w0,
        X,
        Y,
        Q,
        learning_rate=model.learning_rate,
        n_steps=model.n_steps,
        batch_size=model.batch_size_,
        alpha=model.alpha,
        seed=model.batch_seed_,
        shuffle=model.shuffle,
        n_nodes=n_nodes,
    )


def _rel(a, b):
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)


# -- the linear model: closed form --------------------------------------------------------


def test_linear_model_closed_form():
    X, y = _data(n=30, d=4)
    Q = np.random.default_rng(1).normal(size=(5, 4))
    lr, T = 0.1, 25
    m = PathKernelRegressor((), learning_rate=lr, n_steps=T, random_state=0).fit(X, y)
    W, b = m.initial_coefs_[0][:, 0].copy(), m.initial_intercepts_[0][0]
    C = np.zeros((5, 30))
    n = len(X)
    Xa, Qa = np.c_[X, np.ones(n)], np.c_[Q, np.ones(5)]
    for _ in range(T):  # full-batch GD on (1/2n)||Xw + b - y||^2
        r = X @ W + b - y
        C += -lr / n * (Qa @ Xa.T) * r[None, :]  # tangent kernel (x.x' + 1) times loss derivative
        W, b = W - lr / n * X.T @ r, b - lr / n * r.sum()
    dec = m.decompose(Q)
    assert _rel(dec.contributions, C) < 1e-12
    assert _rel(dec.output, Q @ W + b) < 1e-12
    assert _rel(m.predict(Q), Q @ W + b) < 1e-12
    assert dec.reconstruction_error < 1e-12
    # The path kernel is the linear kernel plus one, accumulated over the steps.
    assert _rel(m.tangent_kernel(Q, X, step=7), Qa @ Xa.T) < 1e-13
    assert _rel(m.path_kernel(Q), lr * T * (Qa @ Xa.T)) < 1e-13


# -- exactness against the materialising reference -------------------------------------------


@pytest.mark.parametrize("activation", SMOOTH)
@pytest.mark.parametrize("batch_size", [None, 8])
def test_regression_matches_reference(activation, batch_size):
    X, y = _data(n=30, d=3, k=2)
    Q = np.random.default_rng(2).normal(size=(4, 3))
    m = PathKernelRegressor(
        (6, 5),
        activation,
        learning_rate=0.1,
        n_steps=20,
        batch_size=batch_size,
        alpha=0.01,
        random_state=3,
    ).fit(X, y)
    dec = m.decompose(Q)
    init, C, reg, final, wT = _reference_run(m, X, y, Q)
    assert _rel(m.network_.pack(m.coefs_, m.intercepts_), wT) < 1e-12
    assert _rel(dec.contributions, C) < 1e-9
    assert _rel(dec.reg, reg) < 1e-9
    assert _rel(dec.initial, init) < 1e-12
    assert dec.reconstruction_error < 1e-9
    assert m.decomposition_error_ < 1e-9


@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu"])
@pytest.mark.parametrize("n_classes,batch_size", [(2, None), (3, None), (2, 7), (3, 7)])
def test_classification_matches_reference(activation, n_classes, batch_size):
    X, _ = _data(n=36, d=3)
    y = np.arange(36) % n_classes
    Q = np.random.default_rng(4).normal(size=(3, 3))
    m = PathKernelClassifier(
        (5,), activation, learning_rate=0.3, n_steps=15, batch_size=batch_size, random_state=1
    ).fit(X, y)
    dec = m.decompose(Q)
    Y = np.eye(n_classes)[y] if n_classes > 2 else y[:, None].astype(float)
    init, C, reg, final, _ = _reference_run(m, X, Y, Q)
    C = C[..., 0] if n_classes == 2 else C
    assert _rel(dec.contributions, C) < 1e-9
    assert dec.reconstruction_error < 1e-9
    assert _rel(dec.output, m.decision_function(Q)) < 1e-13


@settings(max_examples=15, deadline=None)
@given(
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=3),
    activation=st.sampled_from(SMOOTH + ["relu"]),
    n=st.integers(2, 25),
    d=st.integers(1, 4),
    k=st.integers(1, 3),
    batch=st.one_of(st.none(), st.integers(1, 30)),
    seed=st.integers(0, 2**31 - 1),
)
def test_decomposition_exact_random_networks(hidden, activation, n, d, k, batch, seed):
    """For any small network, activation (ReLU split at its switching points) and batching,
    initial + contributions + reg reproduces the network to 1e-9."""
    rng = np.random.default_rng(seed)
    X, y = rng.normal(size=(n, d)), rng.normal(size=(n, k))
    m = PathKernelRegressor(
        tuple(hidden),
        activation,
        learning_rate=0.05,
        n_steps=12,
        batch_size=batch,
        alpha=0.02,
        random_state=seed % 1000,
    ).fit(X, y)
    dec = m.decompose(rng.normal(size=(3, d)))
    assert dec.contributions.shape == (3, n, k)
    assert dec.reconstruction_error < 1e-9


def test_relu_switch_points_make_the_decomposition_exact():
    X, y = _data(n=60, d=4)
    m = PathKernelRegressor((16, 16), "relu", learning_rate=0.2, n_steps=40, random_state=0).fit(
        X, y
    )
    dec = m.decompose(X[:10])
    assert dec.relu_pieces > 0  # units did switch inside steps
    assert dec.reconstruction_error < 1e-9
    assert dec.step_residual < 1e-11


def test_self_check_refines_large_steps():
    X, y = _data(n=30, d=2)
    m = PathKernelRegressor(
        (8,), "tanh", learning_rate=0.6, n_steps=10, random_state=0, quadrature=2
    ).fit(X, y)
    dec = m.decompose(X[:5])
    assert dec.refined_segments > 0
    assert dec.step_residual < 10 * m.tol  # the check passed; this is the sum of contributions
    assert dec.reconstruction_error < 1e-9


def test_one_point_quadrature_error_halves_with_the_learning_rate():
    """quadrature=1 (start of step, TracIn's first-order term) errs by O(lr) at fixed lr * T."""
    X, y = _data(n=40, d=3)
    Q = X[:8]
    errors = []
    for lr, T in [(0.05, 200), (0.025, 400), (0.0125, 800)]:
        m = PathKernelRegressor((10,), "tanh", learning_rate=lr, n_steps=T, random_state=0).fit(
            X, y
        )
        with pytest.warns(UserWarning, match="decompose: .* misses the output .*TracIn"):
            dec = m.decompose(Q, quadrature=1)
        errors.append(np.max(np.abs(dec.reconstruction - dec.output)))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert m.decompose(Q).reconstruction_error < 1e-9  # the exact form stays exact
    for a, b in zip(errors, errors[1:]):
        assert 1.8 < a / b < 2.25  # measured 2.10 and 2.05


def test_a_decomposition_that_misses_the_output_says_so():
    """The self-check bounds each step's residual relative to that step's own max |f|:
    where the training loss jumped (softplus, learning_rate 1.0: to 1270x its start and
    back), the sum missed the output by 910 relative with no word (a review). Now a
    warning says so, and that no quadrature resolves it: the learning rate does."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(0)) / X.std(0)
    y = (y - y.mean()) / y.std()
    X, y = X[:100], y[:100]
    kw = dict(hidden_layer_sizes=(32, 32), activation="softplus", n_steps=60, batch_size=10)
    m = PathKernelRegressor(learning_rate=1.0, random_state=0, **kw).fit(X, y)
    assert max(m.loss_curve_) > 100 * m.loss_curve_[0]  # the spike
    with pytest.warns(UserWarning, match="misses the output .*largest quadrature .*learning_rate"):
        dec = m.decompose(X[:10], quadrature=64)
    assert dec.reconstruction_error > 0.1
    calm = PathKernelRegressor(learning_rate=0.1, random_state=0, **kw).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert calm.decompose(X[:10]).reconstruction_error < 1e-9


@pytest.mark.parametrize("bad", ["x", 2.5, True, 0, 65])
def test_quadrature_must_be_an_integer_in_range(bad):
    # int("x") said "invalid literal", int(2.5) truncated to 2 nodes silently.
    X, y = _data(n=20, d=2)
    m = PathKernelRegressor((4,), n_steps=5, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"^quadrature: must be"):
        m.decompose(X[:2], quadrature=bad)
    assert m.decompose(X[:2], quadrature=np.int64(3)).reconstruction_error < 1e-9


# -- kernels -------------------------------------------------------------------------------


def _fd_gradient(m, x, eps=1e-6):
    """d f(x) / dw at the initial weights by central differences."""
    net = ref.ReferenceMLP(m.network_.sizes, m.activation, "squared")
    w0 = m.network_.pack(m.initial_coefs_, m.initial_intercepts_)
    g = np.empty_like(w0)
    for p in range(w0.size):
        e = np.zeros_like(w0)
        e[p] = eps
        g[p] = (net.forward(w0 + e, x[None])[0][0, 0] - net.forward(w0 - e, x[None])[0][0, 0]) / (
            2 * eps
        )
    return g


def test_first_step_path_kernel_is_the_empirical_ntk():
    X, y = _data(n=20, d=2)
    lr, T = 1e-5, 4
    m = PathKernelRegressor((256,), "tanh", learning_rate=lr, n_steps=T, random_state=0).fit(X, y)
    A = X[:3]
    G = np.array([_fd_gradient(m, a) for a in A])
    ntk = G @ G.T
    assert _rel(m.tangent_kernel(A, A, step=0), ntk) < 1e-7
    # Tiny steps on a wide network: the kernel barely moves (lazy regime).
    assert _rel(m.path_kernel(A, A) / (lr * T), ntk) < 1e-4


def test_path_kernel_symmetric_psd():
    X, y = _data(n=25, d=3)
    m = PathKernelRegressor((12,), "softplus", learning_rate=0.1, n_steps=30, random_state=0).fit(
        X, y
    )
    K = m.path_kernel(X[:10], X[:10])
    assert np.allclose(K, K.T, rtol=1e-12, atol=1e-14)
    assert np.linalg.eigvalsh(K).min() > -1e-10 * np.abs(K).max()
    a = m.path_kernel_coefficients(X[:2])
    dec = m.decompose(X[:2])
    assert np.allclose(a * m.path_kernel(X[:2]), dec.contributions, rtol=1e-10, atol=1e-15)


# -- explanations -------------------------------------------------------------------------


def test_explain_ranks_the_decomposition():
    X, y = _data(n=50, d=3)
    m = PathKernelRegressor((8,), learning_rate=0.1, n_steps=30, random_state=0).fit(X, y)
    Q = X[:4] + 0.1
    dec = m.decompose(Q)
    e = m.explain(Q, top_k=5)
    for q in range(4):
        order = np.argsort(-dec.contributions[q], kind="stable")
        assert list(e.supporting[q]) == list(order[:5])
        assert list(e.opposing[q]) == list(order[::-1][:5])
        assert np.allclose(e.supporting_contributions[q], dec.contributions[q, order[:5]])
    en = m.explain(Q, top_k=5, normalize=True)
    score = dec.contributions / dec.path_norm
    assert list(en.supporting[0]) == list(np.argsort(-score[0], kind="stable")[:5])
    assert np.allclose(m.influence(Q), dec.contributions.sum(axis=0), rtol=1e-12)


def test_self_influence_says_when_its_quadrature_is_approximate():
    """self_influence(quadrature=1) returned TracIn's first-order terms (2e-4 off on
    diabetes) without a word, and its sums' residual was about 0.2 at any quadrature
    (each query's own contribution only, against the step's whole change; a review). It
    now reports the quadrature's self-check as decompose does, and warns beyond tol."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:100], (y[:100] - y[:100].mean()) / y[:100].std()
    m = PathKernelRegressor((16,), learning_rate=0.1, n_steps=100, random_state=0).fit(X, y)
    with pytest.warns(UserWarning, match="self_influence: .* approximate; quadrature=1"):
        first_order = m.self_influence(quadrature=1)
    coarse = m.decomposition_error_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dec = m.decompose(X, quadrature=1)
    assert coarse > m.tol
    np.testing.assert_allclose(coarse, dec.step_residual, rtol=1e-6)
    np.testing.assert_allclose(first_order, np.diagonal(dec.contributions), rtol=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exact = m.self_influence()
    assert m.decomposition_error_ <= m.tol
    np.testing.assert_allclose(exact, np.diagonal(m.decompose(X).contributions), rtol=1e-10)
    assert np.abs(first_order - exact).max() > 10 * m.tol * np.abs(exact).max()


def test_classifier_explain_targets_and_self_influence():
    X, _ = _data(n=45, d=3)
    y = np.array(["a", "b", "c"])[np.arange(45) % 3]
    m = PathKernelClassifier((6,), learning_rate=0.5, n_steps=25, random_state=0).fit(X, y)
    Q = X[:5]
    dec = m.decompose(Q)
    f = m.decision_function(Q)
    pred = np.argmax(f, axis=1)
    runner = np.argsort(-f, axis=1)[:, 1]
    e = m.explain(Q, top_k=3, target="margin")
    rows = np.arange(5)
    assert np.allclose(e.value, f[rows, pred] - f[rows, runner])
    margin_C = dec.contributions[rows, :, pred] - dec.contributions[rows, :, runner]
    assert np.allclose(e.supporting_contributions[:, 0], margin_C.max(axis=1))
    assert list(e.target) == list(m.predict(Q))
    eb = m.explain(Q, top_k=2, target="b")
    assert np.allclose(eb.value, f[:, 1])
    # self-influence is the diagonal of decompose(X_train), for each example's own label
    full = m.decompose(X).contributions
    codes = np.searchsorted(m.classes_, y)
    diag = full[np.arange(45), np.arange(45), codes]
    assert np.allclose(m.self_influence(), diag, rtol=1e-10, atol=1e-14)


def test_binary_classifier_margin_sign():
    X, _ = _data(n=30, d=2)
    y = (X[:, 0] > 0).astype(int)
    m = PathKernelClassifier((5,), learning_rate=0.5, n_steps=40, random_state=0).fit(X, y)
    Q = X[:6]
    e = m.explain(Q, top_k=2)
    f = m.decision_function(Q)
    assert np.allclose(e.value, np.abs(f))
    assert np.all(e.value >= 0)
    proba = m.predict_proba(Q)
    assert np.allclose(proba[:, 1], 1 / (1 + np.exp(-f)))


# -- checkpoints, persistence, bad input ----------------------------------------------------


def test_checkpoint_ranges_add_up():
    X, y = _data(n=40, d=3)
    kw = dict(hidden_layer_sizes=(7,), learning_rate=0.1, n_steps=30, batch_size=9, random_state=0)
    a = PathKernelRegressor(**kw).fit(X, y)
    b = PathKernelRegressor(**kw, checkpoint_every=7, n_jobs=2).fit(X, y)
    assert np.array_equal(a.predict(X), b.predict(X))
    da, db = a.decompose(X[:3]), b.decompose(X[:3])
    assert np.allclose(da.contributions, db.contributions, rtol=1e-12, atol=1e-15)
    assert np.allclose(
        a.tangent_kernel(X[:3], step=23), b.tangent_kernel(X[:3], step=23), rtol=1e-12
    )
    assert b.path_memory_bytes_ > a.path_memory_bytes_


def test_pickle_and_portable_file_roundtrip(tmp_path):
    X, _ = _data(n=30, d=3)
    y = np.arange(30) % 3
    m = PathKernelClassifier((5,), learning_rate=0.3, n_steps=10, random_state=0).fit(X, y)
    d0 = m.decompose(X[:4])
    for other in (pickle.loads(pickle.dumps(m)), _save_load(m, tmp_path)):
        assert np.array_equal(other.predict_proba(X), m.predict_proba(X))
        d1 = other.decompose(X[:4])
        assert np.array_equal(d1.contributions, d0.contributions)
        assert np.array_equal(other.initial_coefs_[0], m.initial_coefs_[0])


def _save_load(model, tmp_path):
    path = tmp_path / "model.npz"
    model.save(path)
    return gramfree.load(path)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"learning_rate": 0}, "learning_rate"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"n_steps": 0}, "n_steps"),
        ({"activation": "sigmoidal"}, "activation"),
        ({"hidden_layer_sizes": (3, 0)}, "hidden_layer_sizes"),
        # nested widths were flattened in silence (a review): ((4,),) was one layer of 4
        ({"hidden_layer_sizes": ((4,),)}, "hidden_layer_sizes: every width must be an integer"),
        ({"hidden_layer_sizes": [[5], [3]]}, "hidden_layer_sizes: every width"),
        ({"batch_size": 0}, "batch_size"),
        ({"alpha": -0.1}, "alpha"),
    ],
)
def test_bad_parameters(params, match):
    X, y = _data()
    with pytest.raises(ValueError, match=match):
        PathKernelRegressor(**params).fit(X, y)


def test_bad_data():
    X, y = _data()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PathKernelRegressor(n_steps=2).fit(Xn, y)
    with pytest.raises(ValueError, match="inconsistent|samples"):
        PathKernelRegressor(n_steps=2).fit(X, y[:-1])
    m = PathKernelRegressor((4,), n_steps=3, record_path=False).fit(X, y)
    with pytest.raises(ValueError, match="record_path"):
        m.decompose(X[:2])
    with pytest.raises(ValueError, match="features"):
        PathKernelRegressor((4,), n_steps=3).fit(X, y).decompose(X[:, :2])
    with pytest.raises(ValueError, match="diverged"):
        PathKernelRegressor((4,), learning_rate=1e6, n_steps=50).fit(X, y * 1e3)
    with pytest.raises(ValueError, match="2 classes"):
        PathKernelClassifier(n_steps=2).fit(X, np.zeros(len(X)))
    Xc = X.copy()
    PathKernelRegressor((3,), n_steps=3).fit(X, y).decompose(Xc)
    assert np.array_equal(X, Xc)


def test_native_replay_refuses_zero_queries():
    """Zero query rows reach the native replay only from private callers (validate_data
    refuses them first); the replay divided by the count and died of SIGFPE."""
    X, y = _data()
    m = PathKernelRegressor((4,), n_steps=3).fit(X, y)
    with pytest.raises(ValueError, match="0 sample"):
        m.decompose(X[:0])  # refused in Python first (scikit-learn's validate_data)
    spec, Xt, Yt, w0 = m._replay_inputs()
    with pytest.raises(ValueError, match="X: no queries"):
        gramfree._core.mlp_decompose(spec, Xt, Yt, w0, np.zeros((0, X.shape[1])))


def test_reference_batch_order_matches_native():
    X, y = _data(n=23, d=2)
    m = PathKernelRegressor((3,), learning_rate=0.1, n_steps=9, batch_size=5, random_state=4).fit(
        X, y
    )
    net = ref.ReferenceMLP(m.network_.sizes, m.activation, "squared")
    w0 = m.network_.pack(m.initial_coefs_, m.initial_intercepts_)
    wT = ref.train(
        net, w0, X, y[:, None], learning_rate=0.1, n_steps=9, batch_size=5, seed=m.batch_seed_
    )
    assert _rel(m.network_.pack(m.coefs_, m.intercepts_), wT) < 1e-12
    assert [len(b) for b in ref.batch_schedule(23, 5, 9, 0)] == [5, 5, 5, 5, 3, 5, 5, 5, 5]


def test_regressor_on_a_one_column_2d_target_keeps_its_output_axis():
    """A regressor fitted on y[:, None]: path_kernel, tangent_kernel and
    path_kernel_coefficients keep the output axis as decompose does (the kernels dropped
    it, and the coefficients broadcast (q, n, 1) against (q, n): an error for 3 queries, a
    (1, n, n) array for one), with the 1-d model's values; explain's target defaults to
    the only output (it asked for one)."""
    X, y = _data(n=20)
    params = dict(hidden_layer_sizes=(4,), n_steps=10, random_state=0)
    flat = PathKernelRegressor(**params).fit(X, y)
    column = PathKernelRegressor(**params).fit(X, y[:, None])
    for q in (1, 3, 20):
        Q = X[:q]
        np.testing.assert_array_equal(column.path_kernel(Q), flat.path_kernel(Q)[..., None])
        np.testing.assert_array_equal(column.tangent_kernel(Q), flat.tangent_kernel(Q)[..., None])
        np.testing.assert_array_equal(
            column.path_kernel_coefficients(Q), flat.path_kernel_coefficients(Q)[..., None]
        )
    a, b = column.explain(X[:3], top_k=3), flat.explain(X[:3], top_k=3)
    np.testing.assert_array_equal(a.supporting, b.supporting)
    np.testing.assert_array_equal(a.opposing, b.opposing)
    np.testing.assert_array_equal(a.value, b.value)


def test_parameters_changed_after_fit_change_nothing_the_model_computes(tmp_path):
    """set_params after fit (activation, checkpoint_every, n_steps, learning_rate, alpha,
    shuffle) leaves predictions, decompositions, kernels and saved files those of the trained
    network: they read the live parameters before (a changed checkpoint_every broke the sum
    identity under a ReplayMismatchWarning; a changed activation made the saved and
    reloaded model predict with another network). A refit takes the new ones."""
    X, y = _data(n=40)
    Q = X[:6]
    model = PathKernelRegressor(
        hidden_layer_sizes=(4,),
        learning_rate=0.05,
        n_steps=20,
        checkpoint_every=5,
        n_jobs=2,
        random_state=0,
    ).fit(X, y)
    before = model.predict(Q), model.decompose(Q), model.path_kernel(Q)
    changed = dict(
        activation="relu",
        checkpoint_every=3,
        n_steps=7,
        learning_rate=0.3,
        alpha=0.1,
        shuffle=False,
    )
    model.set_params(**changed)
    for current in (model, _saved_and_loaded(model, tmp_path)):
        assert current.get_params()["activation"] == "relu"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ReplayMismatchWarning
            dec = current.decompose(Q)
        np.testing.assert_array_equal(current.predict(Q), before[0])
        np.testing.assert_array_equal(dec.contributions, before[1].contributions)
        assert dec.reconstruction_error < 1e-12
        np.testing.assert_array_equal(current.path_kernel(Q), before[2])
        assert current.tangent_kernel(Q, step=20).shape == (6, 40)
    refit = model.fit(X, y)
    assert len(refit.loss_curve_) == 7
    assert not np.array_equal(refit.predict(Q), before[0])


def _saved_and_loaded(model, tmp_path):
    model.save(tmp_path / "m.gf")
    return gramfree.load(tmp_path / "m.gf")


def test_a_diverging_training_warns():
    """A learning rate that makes gradient descent diverge to finite values (diabetes,
    learning_rate 1.5: the loss from 0.55 to 5e51 in 50 steps) warns; a sound one does
    not (silent before: only a non-finite loss stopped the trainer)."""
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    params = dict(hidden_layer_sizes=(16, 8), n_steps=50, random_state=0)
    with pytest.warns(ConvergenceWarning, match="gradient descent diverged"):
        PathKernelRegressor(learning_rate=1.5, **params).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = PathKernelRegressor(learning_rate=0.05, **params).fit(X, y)
    assert model.loss_curve_[-1] < model.loss_curve_[0]


def _training_loss(model, X, y):
    return 0.5 * np.mean((model.predict(X) - y) ** 2)


@pytest.mark.parametrize(
    "activation, learning_rate, n_steps", [("relu", 3.0, 2), ("tanh", 300.0, 1)]
)
def test_a_last_step_that_diverges_warns(activation, learning_rate, n_steps):
    """The divergence is judged after the last update (loss_curve_ holds each step's loss
    before its update): one or two steps that blow the network up warn (silent before:
    the loss after them 50 and 1e5 times the start's, judged on the losses before)."""
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:100] / X[:100].std(0), (y[:100] - y[:100].mean()) / y[:100].std()
    with pytest.warns(ConvergenceWarning, match="gradient descent diverged"):
        model = PathKernelRegressor(
            (8,), activation, learning_rate=learning_rate, n_steps=n_steps, random_state=0
        ).fit(X, y)
    start = PathKernelRegressor((8,), activation, learning_rate=1e-300, n_steps=1, random_state=0)
    assert _training_loss(model, X, y) > 2 * _training_loss(start.fit(X, y), X, y)


def test_small_batches_that_descend_do_not_warn():
    """With one row per step, the loss of the first step's row against the last one's is
    no measure of divergence (a false warning where the loss on all rows fell from 0.55 to
    0.24: diabetes, seed 5); the training rows' loss at the start and after the end is."""
    from sklearn.datasets import load_diabetes
    from sklearn.exceptions import ConvergenceWarning

    X, y = load_diabetes(return_X_y=True)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    X, y = X[:200], y[:200]
    params = dict(hidden_layer_sizes=(16,), activation="tanh", random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = PathKernelRegressor(learning_rate=0.05, n_steps=400, batch_size=1, **params)
        model.fit(X, y)
    start = PathKernelRegressor(learning_rate=1e-300, n_steps=1, **params).fit(X, y)
    assert _training_loss(model, X, y) < 0.5 * _training_loss(start, X, y)
    assert model.loss_curve_[-1] > 2 * model.loss_curve_[0]  # what the old check compared
