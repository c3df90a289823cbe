"""A portable, versioned file for fitted kernel machines: a numpy ``.npz`` holding the
centres, coefficients and classes as plain arrays and the rest as JSON. No pickle inside:
loading runs no code from the file, and needs neither the training data nor this
package's private class layout.

Examples
--------
>>> import numpy as np, tempfile, os
>>> from gramfree import KernelRegressor, load
>>> X = np.random.default_rng(0).normal(size=(50, 2)); y = X[:, 0]
>>> model = KernelRegressor().fit(X, y)
>>> path = os.path.join(tempfile.mkdtemp(), "model.gfm")
>>> model.save(path)
>>> bool(np.array_equal(load(path).predict(X), model.predict(X)))
True
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from . import kernels as _kernels

FORMAT = "gramfree-model"
FORMAT_VERSION = 1


def _estimator_classes() -> dict[str, type]:
    from .estimators import KernelClassifier, KernelRegressor
    from .pathkernel import PathKernelClassifier, PathKernelRegressor

    return {
        c.__name__: c
        for c in (KernelRegressor, KernelClassifier, PathKernelRegressor, PathKernelClassifier)
    }


_KERNEL_CLASSES = {cls.__name__: cls for cls in _kernels.KERNEL_CLASSES}


def _encode_param(value: Any) -> Any:
    if isinstance(value, _kernels.Kernel):
        fields = {k: _encode_param(v) for k, v in dataclasses.asdict(value).items()}
        return {"__kernel__": type(value).__name__, **fields}
    if isinstance(value, np.random.RandomState):
        return None  # a RandomState object cannot be stored portably; None is recorded
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, float) and value == float("inf"):
        return "inf"
    return value


def _decode_param(value: Any) -> Any:
    if isinstance(value, dict) and "__kernel__" in value:
        fields = dict(value)
        name = fields.pop("__kernel__")
        if name not in _KERNEL_CLASSES:
            raise ValueError(f"path: unknown kernel {name!r} in the model file")
        if fields.get("nu") == "inf":
            fields["nu"] = float("inf")
        return _KERNEL_CLASSES[name](**fields)
    return value


def save(estimator, path: str | os.PathLike) -> None:
    """Write a fitted gramfree estimator to ``path`` (format version 1)."""
    from sklearn.utils.validation import check_is_fitted

    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise TypeError(f"estimator: cannot save a {name}")
    if hasattr(estimator, "_portable_state"):  # path-kernel models describe themselves
        arrays, attributes = estimator._portable_state()
    else:
        check_is_fitted(estimator, "dual_coef_")
        arrays = {
            "centers": np.ascontiguousarray(estimator.centers_),
            "dual_coef": np.ascontiguousarray(estimator.dual_coef_),
        }
        attributes = {
            "solver_": estimator.solver_,
            "n_iter_": int(estimator.n_iter_),
            "loss_curve_": [float(v) for v in estimator.loss_curve_],
            "n_features_in_": int(estimator.n_features_in_),
            "kernel_": _encode_param(estimator.kernel_),
            "fit_time_": float(getattr(estimator, "fit_time_", 0.0)),
            "y_1d": bool(getattr(estimator, "_y_1d", True)),
        }
    if hasattr(estimator, "classes_"):
        classes = np.asarray(estimator.classes_)
        if classes.dtype.kind == "O":
            if not all(isinstance(c, str) for c in classes):
                raise TypeError("classes_: only numeric or string class labels can be saved")
            classes = classes.astype(str)
        arrays["classes"] = classes
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "estimator": name,
        "params": {k: _encode_param(v) for k, v in estimator.get_params().items()},
        "attributes": {
            **attributes,
            "classes_kind": None if "classes" not in arrays else arrays["classes"].dtype.kind,
        },
    }
    with open(path, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(meta, allow_nan=False)), **arrays)


def load(path: str | os.PathLike):
    """Read a model written by ``save``; refuses files of another format or version."""
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"path: {os.fspath(path)!r} is not a gramfree model file ({exc})") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"path: {os.fspath(path)!r} is not a gramfree model file (a plain array)")
    with data:
        if "__meta__" not in data.files:
            raise ValueError(f"path: {os.fspath(path)!r} is not a gramfree model file")
        meta = json.loads(str(data["__meta__"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"path: {os.fspath(path)!r} is not a gramfree model file")
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"path: model file format version {version} is not supported by this "
                f"gramfree (reads version {FORMAT_VERSION}); re-save it with a matching version"
            )
        classes = _estimator_classes()
        if meta.get("estimator") not in classes:
            raise ValueError(f"path: unknown estimator {meta.get('estimator')!r} in the model file")
        cls = classes[meta["estimator"]]
        try:
            est = cls(**{k: _decode_param(v) for k, v in meta["params"].items()})
        except TypeError as exc:
            raise ValueError(f"path: parameters in the model file do not fit {cls.__name__} ({exc})") from None
        attrs = meta["attributes"]
        if hasattr(est, "_restore_state"):
            est._restore_state({name: data[name] for name in data.files}, attrs)
            if "classes" in data.files:
                est.classes_ = data["classes"]
            return est
        est.centers_ = data["centers"]
        est.dual_coef_ = data["dual_coef"]
        if "classes" in data.files:
            est.classes_ = data["classes"]
        est.solver_ = attrs["solver_"]
        est.n_iter_ = attrs["n_iter_"]
        est.loss_curve_ = attrs["loss_curve_"]
        est.n_features_in_ = attrs["n_features_in_"]
        est.kernel_ = _decode_param(attrs["kernel_"])
        est.fit_time_ = attrs["fit_time_"]
        est.solver_info_ = {}
        if meta["estimator"] == "KernelRegressor":
            est._y_1d = attrs["y_1d"]
        return est
