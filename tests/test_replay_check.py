"""decompose checks the replayed training against the fitted weights: on the machine and
SIMD level of the fit the replay ends exactly at them (gap 0, no warning); when it does
not, a ReplayMismatchWarning says by how much and what to do. The SIMD level of the fit is
recorded in the model and in its file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from gramfree import PathKernelRegressor, _core, load
from gramfree.pathkernel import ReplayMismatchWarning
from gramfree.pathkernel import estimators as pk


def _model(**kw):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2
    params = dict(learning_rate=0.05, n_steps=120, batch_size=16, random_state=0)
    params.update(kw)
    return PathKernelRegressor((16,), **params).fit(X, y), X


@pytest.mark.parametrize("checkpoint_every", [None, 25], ids=["serial", "checkpoint-ranges"])
def test_replay_ends_exactly_at_the_fitted_weights(checkpoint_every):
    model, X = _model(checkpoint_every=checkpoint_every, n_jobs=2)
    assert model.simd_level_ == _core.simd_level()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = model.decompose(X[:5])
    assert model.replay_gap_ == 0.0
    np.testing.assert_allclose(d.output, model.predict(X[:5]), rtol=1e-12, atol=1e-12)


def test_changed_weights_warn_with_the_gap():
    model, X = _model()
    model._params = model._params.copy()
    model._params[0] += 1e-6 * max(1.0, np.abs(model._params).max())
    with pytest.warns(ReplayMismatchWarning, match=r"1e-06.*changed after fit"):
        model.decompose(X[:3])
    assert model.replay_gap_ == pytest.approx(1e-6, rel=1e-6)


def test_other_simd_level_names_the_setting():
    model, X = _model()
    other = "scalar" if _core.simd_level() != "scalar" else "avx2"
    model.simd_level_ = other
    model._params = model._params * (1 + 1e-7)
    with pytest.warns(ReplayMismatchWarning, match=f"GRAMFREE_SIMD={other}"):
        model.decompose(X[:3])


def test_tolerance_separates_levels_from_changes():
    """Stated in the docstring: the tolerance is far above another level's rounding."""
    assert 1e-12 <= pk.REPLAY_TOLERANCE <= 1e-6


def test_simd_level_round_trips_through_the_file(tmp_path):
    model, X = _model()
    path = tmp_path / "m.gfm"
    model.save(path)
    loaded = load(path)
    assert loaded.simd_level_ == model.simd_level_
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(
            loaded.decompose(X[:2]).contributions, model.decompose(X[:2]).contributions
        )


def test_a_changed_checkpoint_between_step_ranges_is_warned(tmp_path):
    """Step ranges replayed side by side start at checkpoints; only the last range's end
    was compared with the fitted weights, so a checkpoint changed in a saved file (its
    zip still valid) gave a decomposition whose sums missed the output by 0.2, silently.
    Each range's end is now compared with the next range's checkpoint."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True)
    X, y = X[:60] / X[:60].std(0), (y[:60] - y[:60].mean()) / y[:60].std()
    model = PathKernelRegressor(
        (5,), "tanh", learning_rate=0.1, n_steps=30, checkpoint_every=5, random_state=0, n_jobs=3
    ).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ReplayMismatchWarning)
        model.decompose(X[:3])  # untouched: no warning
    path = tmp_path / "model.gf"
    model.save(path)
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["checkpoints"] = arrays["checkpoints"].copy()
    arrays["checkpoints"][1] *= 1.5  # the weights after step 10
    changed = tmp_path / "changed.gf"
    with open(changed, "wb") as fh:
        np.savez(fh, **arrays)
    loaded = load(changed)
    with pytest.warns(ReplayMismatchWarning, match="replayed training ended"):
        dec = loaded.decompose(X[:3])
    assert dec.reconstruction_error > 0.1  # what the warning is about


@pytest.mark.parametrize("checkpoint_every", [None, 25], ids=["serial", "checkpoints"])
def test_kernels_check_their_replay(checkpoint_every):
    """path_kernel and tangent_kernel at the last step replay the training too (from the
    last checkpoint): where it ends at the fitted weights, no warning and gap 0; with a
    changed training set, a ReplayMismatchWarning (they returned another network's kernel
    without a word)."""
    model, X = _model(checkpoint_every=checkpoint_every)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.path_kernel(X[:3], X[:4])
        assert model.replay_gap_ == 0.0
        model.tangent_kernel(X[:3], X[:4], step=model.n_steps)
        assert model.replay_gap_ == 0.0
    model._path = dict(model._path, X=model._path["X"] * (1 + 1e-4))
    with pytest.warns(ReplayMismatchWarning, match="changed after fit"):
        model.path_kernel(X[:3], X[:4])
    assert model.replay_gap_ > pk.REPLAY_TOLERANCE
    with pytest.warns(ReplayMismatchWarning, match="The kernel is the replayed network's"):
        model.tangent_kernel(X[:3], X[:4], step=model.n_steps)
