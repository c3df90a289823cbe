"""Path-kernel decompose, explain and influence over dask arrays of queries
(gramfree.pathkernel._dask): a real two-process LocalCluster gives the in-process numbers
whatever the chunking.

Agreement claimed (see the module's docstring for why): initial, output, path_norm and
relu_pieces bit for bit; contributions and reg bit for bit when the chunks' self-checks
refine as many segments as the in-process one (then they refine the same ones: a chunk's
refinement is a superset), else within the finer quadrature's change (CONTRIB_RTOL,
relative to max |C|; observed below 1e-13); step_residual (each chunk relative to its own
max |f|) and refined_segments at least the in-process figures when nothing is refined.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
da = pytest.importorskip("dask.array")
import dask  # noqa: E402  (after the skips: the extra may be missing)
from sklearn.datasets import load_diabetes, load_digits  # noqa: E402

from gramfree import PathKernelClassifier, PathKernelRegressor  # noqa: E402
from gramfree.pathkernel import ReplayMismatchWarning  # noqa: E402

# Contributions of queries whose segments a chunk refined and the in-process call did not:
# a finer Gauss-Legendre rule of the same step integral (observed up to 7e-14).
CONTRIB_RTOL = 1e-10
# influence adds the chunks' sums in another order than the in-process loop.
SUM_RTOL = 1e-12


def rel(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


@pytest.fixture(scope="module")
def regression():
    X, y = load_diabetes(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    y = (y - y.mean()) / y.std()
    model = PathKernelRegressor(
        hidden_layer_sizes=(16,), learning_rate=0.1, n_steps=100, random_state=0
    ).fit(X[:250], y[:250])
    return model, X[250:310]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


@pytest.fixture(scope="module")
def multiclass(digits):
    X, y = digits
    model = PathKernelClassifier(
        hidden_layer_sizes=(16,), learning_rate=0.5, n_steps=100, random_state=0
    ).fit(X[:250], y[:250])
    return model, X[250:300]


@pytest.fixture(scope="module")
def binary(digits):
    X, y = digits
    keep = y < 2
    X, y = X[keep], y[keep]
    model = PathKernelClassifier(
        hidden_layer_sizes=(16,), learning_rate=0.5, n_steps=100, random_state=0
    ).fit(X[:200], y[:200])
    return model, X[200:250]


CHUNKINGS = [7, (10, 25)]  # equal chunks of 7 rows; uneven ones (10, 25, the rest)


def chunked(Q, chunks):
    if isinstance(chunks, tuple):
        chunks = (chunks + (len(Q) - sum(chunks),), (Q.shape[1],))
    else:
        chunks = (chunks, -1)
    return da.from_array(Q, chunks=chunks)


def assert_same_decomposition(dd, ref, *, exact):
    for key in ("initial", "contributions", "reg", "output"):
        a = getattr(dd, key)
        assert isinstance(a, da.Array), key
        got = a.compute()
        want = getattr(ref, key)
        assert got.shape == want.shape, key
        if key in ("initial", "output") or exact:
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            assert rel(got, want) <= CONTRIB_RTOL, key
    assert isinstance(dd.path_norm, np.ndarray)
    np.testing.assert_array_equal(dd.path_norm, ref.path_norm)
    assert dd.relu_pieces == ref.relu_pieces
    assert dd.refined_segments >= ref.refined_segments
    if dd.refined_segments == 0:  # nothing refined here: nothing in-process either
        assert ref.refined_segments == 0
        assert dd.step_residual >= ref.step_residual
    assert isinstance(dd.step_residual, float) and isinstance(dd.refined_segments, int)


@pytest.mark.parametrize("chunks", CHUNKINGS)
def test_regressor_decompose_bit_equal(client, regression, chunks):
    model, Q = regression
    ref = model.decompose(Q)
    ref_error = model.decomposition_error_
    dX = chunked(Q, chunks)
    dd = model.decompose(dX)
    assert dd.refined_segments == 0  # the premise of bit equality (proved in the module)
    assert_same_decomposition(dd, ref, exact=True)
    assert dd.contributions.chunks[0] == dX.chunks[0]
    assert model.decomposition_error_ == dd.step_residual >= ref_error
    assert model.replay_gap_ == 0.0
    # persisted on the workers: one future per chunk, nothing left to replay
    assert len(distributed.futures_of(dd.contributions)) == dX.numblocks[0]
    C = dd.contributions.compute()
    recon = dd.initial.compute() + C.sum(axis=1) + dd.reg.compute()
    assert rel(recon, dd.output.compute()) < 1e-9
    # its reconstruction_error from the dask arrays (a TypeError before: dask's max takes
    # no ``initial``), the in-memory decomposition's value
    assert dd.reconstruction_error == pytest.approx(ref.reconstruction_error, rel=1e-6, abs=1e-15)


@pytest.mark.parametrize("name", ["binary", "multiclass"])
def test_classifier_decompose(client, request, name):
    model, Q = request.getfixturevalue(name)
    ref = model.decompose(Q)
    for chunks in CHUNKINGS:
        dd = model.decompose(chunked(Q, chunks))
        assert_same_decomposition(dd, ref, exact=dd.refined_segments == ref.refined_segments)
        C, want = dd.contributions.compute(), ref.contributions
        # per query, the sum over the training examples moves by <= 2 tol max|f| per step
        sums = C.sum(axis=1) + dd.reg.compute()
        ref_sums = want.sum(axis=1) + ref.reg
        # (max |f| along training is not returned: 10 max |output| stands in for it)
        bound = 2 * model.tol * model.n_steps * 10 * np.max(np.abs(ref.output))
        assert np.max(np.abs(sums - ref_sums)) <= bound


def assert_same_explanation(ex, ref, *, exact=True):
    for key in ("supporting", "opposing", "target", "supporting_labels", "opposing_labels"):
        np.testing.assert_array_equal(getattr(ex, key), getattr(ref, key), err_msg=key)
    for key in (
        "value",
        "base",
        "supporting_contributions",
        "opposing_contributions",
        "positive_total",
        "negative_total",
    ):
        got, want = getattr(ex, key), getattr(ref, key)
        assert isinstance(got, np.ndarray), key
        if exact:
            np.testing.assert_array_equal(got, want, err_msg=key)
        else:
            assert rel(got, want) <= CONTRIB_RTOL, key
    assert ex.normalized == ref.normalized and ex.index == ref.index and ex.note == ref.note
    assert ex.supporting.shape == ref.supporting.shape


@pytest.mark.parametrize("normalize", [False, True])
def test_regressor_explain_and_influence(client, regression, normalize):
    model, Q = regression
    for chunks in CHUNKINGS:
        dX = chunked(Q, chunks)
        ex = model.explain(dX, top_k=4, normalize=normalize)
        assert_same_explanation(ex, model.explain(Q, top_k=4, normalize=normalize))
        inf = model.influence(dX, target=0)
        assert isinstance(inf, np.ndarray) and inf.shape == (250,)
        assert rel(inf, model.influence(Q, target=0)) <= SUM_RTOL


@pytest.mark.parametrize(
    "name, targets",
    [
        ("binary", [(None, False), ("margin", True), (0, True), (1, False)]),
        ("multiclass", [(None, True), ("margin", False), (3, True)]),
    ],
)
def test_classifier_explain_and_influence(client, request, name, targets):
    model, Q = request.getfixturevalue(name)
    dX = chunked(Q, 13)
    for target, normalize in targets:
        ex = model.explain(dX, top_k=3, target=target, normalize=normalize)
        ref = model.explain(Q, top_k=3, target=target, normalize=normalize)
        assert_same_explanation(ex, ref, exact=False)
    for target, _ in targets[:2]:
        inf = model.influence(dX, target=target)
        assert rel(inf, model.influence(Q, target=target)) <= CONTRIB_RTOL


def test_checkpoint_ranges_match(client, regression):
    model0, Q = regression
    model = PathKernelRegressor(**{**model0.get_params(), "checkpoint_every": 30, "n_jobs": 2}).fit(
        model0._path["X"], model0._path["Y"][:, 0]
    )
    assert model._n_ranges() == 2  # the replay runs two step ranges side by side
    ref = model.decompose(Q)
    dd = model.decompose(chunked(Q, (10, 25)))
    assert_same_decomposition(dd, ref, exact=dd.refined_segments == 0)
    ex = model.explain(chunked(Q, 20), top_k=3, normalize=True)
    assert_same_explanation(ex, model.explain(Q, top_k=3, normalize=True))


def test_local_scheduler(regression, binary):
    from gramfree._dask import _scheduler_client

    model, Q = regression
    with dask.config.set(scheduler="threads"):
        assert _scheduler_client() is None
        dX = chunked(Q.astype(np.float32), 13)  # float32 becomes float64, as in memory
        Q32 = Q.astype(np.float32)
        dd = model.decompose(dX)
        assert_same_decomposition(dd, model.decompose(Q32), exact=True)
        assert dd.contributions.chunks[0] == dX.chunks[0]
        assert_same_explanation(model.explain(dX, top_k=2), model.explain(Q32, top_k=2))
        assert rel(model.influence(dX), model.influence(Q32)) <= SUM_RTOL
        clf, Qc = binary
        ex = clf.explain(chunked(Qc, 13), top_k=2, target="margin")
        assert_same_explanation(ex, clf.explain(Qc, top_k=2, target="margin"), exact=False)


def test_replay_gap_warns_on_the_client(client, regression):
    import copy

    model, Q = regression
    model = copy.deepcopy(model)
    model._params = model._params.copy()
    model._params[0] += 1e-6  # as if the weights changed after fit
    with pytest.warns(ReplayMismatchWarning, match="changed after fit"):
        model.decompose(chunked(Q, 20))
    assert model.replay_gap_ > 1e-9
    with pytest.warns(ReplayMismatchWarning):
        model.influence(chunked(Q, 20))


def test_bad_input_names_X(client, regression):
    model, Q = regression
    with pytest.raises(ValueError, match="X: has 3 features"):
        model.decompose(da.from_array(Q[:, :3], chunks=(10, -1)))
    with pytest.raises(ValueError, match="X: expected a 2-d"):
        model.explain(da.from_array(Q[:, 0], chunks=10))
    with pytest.raises(ValueError, match="X: dtype"):
        model.influence(da.from_array(Q.astype(complex), chunks=(10, -1)))
    bad = Q.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="X: contains NaN"):
        model.decompose(da.from_array(bad, chunks=(10, -1)))
    with pytest.raises(ValueError, match="decomposition"):
        model.explain(chunked(Q, 10), decomposition=model.decompose(Q))
    unfitted = PathKernelRegressor((4,), n_steps=5, record_path=False).fit(
        Q, np.arange(len(Q)) * 1.0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="record_path"):
            unfitted.decompose(chunked(Q, 10))


@pytest.mark.parametrize("method", ["decompose", "explain", "influence"])
def test_queries_with_no_rows_left_are_refused_naming_X(regression, method):
    """A mask that keeps no query leaves every chunk empty (sizes unknown): before,
    IndexError: list index out of range; in memory, scikit-learn's validation refuses 0
    queries."""
    model, Q = regression
    with pytest.raises(ValueError, match="0 sample"):
        getattr(model, method)(Q[:0])
    dq = da.from_array(Q, chunks=20)
    empty = dq[da.from_array(np.zeros(len(Q), bool), chunks=20)]
    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(ValueError, match="X: no rows"):
            getattr(model, method)(empty)
