"""A portable, versioned file for fitted kernel machines: a numpy ``.npz`` holding the
centres, coefficients and classes as plain arrays and the rest as JSON. No pickle inside:
loading runs no code from the file, and needs neither the training data nor this
package's private class layout.

``load`` trusts nothing in the file: every array's dtype, shape and values, every metadata
field's type, and their consistency with each other are checked before a model is built,
and anything wrong raises ``ValueError`` naming the field; a file from a newer writer (with
fields this version does not know) is refused rather than half-read. ``save`` replaces the
target atomically (a crash mid-write leaves the old file as it was) and refuses a model
that would not load back.

Versions
--------
A file records ``format_version``, which is not the package's version: releases that
change nothing in the file keep it. It is the lowest version whose readers load the file
(``FORMAT_VERSION``, now 2, is the newest): version 2 adds the value ``"scale"`` to the
parameter ``gamma`` (a number or None before), so only models with ``gamma="scale"`` are
written as version 2, and every other file stays readable by version-1 gramfree.

- A newer gramfree reads every older format version. A parameter or attribute added
  since a version was fixed is absent from that version's files, which were fitted with
  its default, so the default fills it (``_PARAMS_ADDED_SINCE_V1``); the model predicts as
  it did when saved.
- An older gramfree refuses a newer file with ``ValueError`` saying so: a higher
  ``format_version`` is named with the versions this gramfree reads, and a field it does
  not know (added within the same format version) is named, never skipped.
- ``FORMAT_VERSION`` is bumped when an existing field changes meaning, type or shape, or
  when a new field cannot be given a default that reproduces older files' models. Adding
  an optional field, or a parameter whose default reproduces what older files hold,
  keeps the version (and extends ``_PARAMS_ADDED_SINCE_V1`` or the optional fields).

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

import contextlib
import dataclasses
import json
import math
import numbers
import os
import secrets
import stat
import tokenize
import warnings
import zipfile
import zlib
from typing import Any

import numpy as np

from . import kernels as _kernels
from ._log import caller_stacklevel
from ._version import __version__
from .device import check_device_spelling

FORMAT = "gramfree-model"
FORMAT_VERSION = 2
# Version 1 as first written stored every sequence parameter as a list of floats
# (hidden_layer_sizes [8.0]); _decode_param still reads that. Tuples and arrays became
# tagged objects within version 1 because no released gramfree read the format then
# (0.1.0 had no save and load): no reader exists that would misread them.

# Estimator parameters introduced after version 1 files were first written.
_PARAMS_ADDED_SINCE_V1 = (
    "class_weight",
    "loss",
    "centers",
    "early_stopping",
    "validation_fraction",
    "n_iter_no_change",
    "warm_start",
    "gammas",
    "gamma_search",
    "cv",
    "alpha_per_target",
    "criterion",
)
# Parameters whose default has changed since they were added: a file without one was
# written while the earlier default held, and was fitted with that one.
_DEFAULT_BEFORE_CHANGE = {"criterion": "gcv"}

_META = "__meta__"
_META_FIELDS = ("format", "format_version", "estimator", "params", "attributes")
# Optional: the command line's reading recipe (TableRecipe), in files written by `fit`.
_META_OPTIONAL = ("table",)
_TABLE_FIELDS = ("header", "columns", "target", "scaled")
_TABLE_ARRAYS = ("table_mean", "table_scale")
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
# An early-stopped fit's validation scores (scikit-learn's MLP names), both or neither;
# files of earlier writers lack them.
_EARLY_STOPPING_ATTRIBUTES = ("validation_scores_", "best_validation_score_")
_KERNEL_MACHINE_ATTRIBUTES = (
    "solver_",
    "n_iter_",
    "loss_curve_",
    "n_features_in_",
    "kernel_",
    "fit_time_",
    "y_1d",
)
# Class labels the writer can produce: LabelEncoder's classes of bools, numbers, bytes or str.
_CLASS_KINDS = "biufSU"
# solver_info_ (diagnostics: what the solver did) as JSON: nested objects with str keys,
# lists, numbers, strings, bools and null, at most this deep; a non-finite float as
# {"__float__": "nan" | "inf" | "-inf"} (JSON has none), anything else as its str().
# Optional: files of earlier writers load with an empty solver_info_.
_INFO_DEPTH = 16
_NONFINITE = "__float__"

# What a damaged or foreign file can raise while its zip container and .npy members are
# parsed: zipfile (BadZipFile, NotImplementedError for unknown methods or versions,
# RuntimeError for the encryption flag), zlib and EOFError (deflated members), numpy's
# header parser (ValueError; SyntaxError and tokenize's TokenError from a damaged header's
# dict, which numpy 2 tokenizes before its own check), and OSError from the file itself.
_UNREADABLE = (
    SyntaxError,
    tokenize.TokenError,
    OSError,
    ValueError,
    EOFError,
    zipfile.BadZipFile,
    zlib.error,
    RuntimeError,
    NotImplementedError,
    OverflowError,
)


def _fitted_solvers() -> tuple[str, ...]:
    """solver_ of a fitted model: a solver fit resolved "auto" to, or compress()'s."""
    from .solvers import SOLVERS

    return (*(s for s in SOLVERS if s != "auto"), "projection", "newton-pcg")


def _estimator_classes() -> dict[str, type]:
    from .estimators import KernelClassifier, KernelClassifierCV, KernelRegressor, KernelRegressorCV
    from .pathkernel import PathKernelClassifier, PathKernelRegressor

    return {
        c.__name__: c
        for c in (
            KernelRegressor,
            KernelClassifier,
            PathKernelRegressor,
            PathKernelClassifier,
            KernelRegressorCV,
            KernelClassifierCV,
        )
    }


# What the alpha-path estimators (KernelRegressorCV, KernelClassifierCV) add to a kernel
# machine's attributes: the chosen alpha and the criterion along the candidates.
_ALPHA_PATH_ATTRIBUTES = ("alpha_", "gcv_values_", "dof_", "best_score_")
# ... or, with loss="logistic" (KernelClassifierCV), the held-out log-loss along them.
_LOGISTIC_CV_ATTRIBUTES = ("alpha_", "cv_log_loss_", "cv_log_loss_folds_", "best_score_")
# ... and with candidates for gamma (``gammas``), the chosen one and the criterion on the
# grid; absent from files of earlier writers and of fits without gammas.
_GAMMA_GRID_ATTRIBUTES = ("gamma_", "gcv_grid_", "dof_grid_")


def _is_alpha_path(estimator) -> bool:
    return hasattr(type(estimator), "_fit_path")


def _is_logistic_cv(estimator, solver: Any) -> bool:
    """A KernelClassifierCV fitted with loss="logistic", whatever ``loss`` says now:
    only the logistic loss's Newton steps give ``solver`` (``solver_``) "newton-pcg"."""
    return _is_alpha_path(estimator) and solver == "newton-pcg"


_KERNEL_CLASSES = {cls.__name__: cls for cls in _kernels.KERNEL_CLASSES}


# -- field checks (also used by the path-kernel models' _restore_state) ------------------


def _field_error(field: str, message: str) -> ValueError:
    return ValueError(f"path: field {field!r} {message}")


_LARGEST_FLOAT = int(np.finfo(np.float64).max)


def _short(value: Any) -> str:
    """repr of a field's value, cut to 80 characters (an int of 400 digits is damage)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_keys(found, required, optional=(), *, where: str) -> None:
    """``found`` has every required key and nothing else but the optional ones."""
    missing = sorted(set(required) - set(found))
    if missing:
        raise ValueError(f"path: missing field(s) {missing} in {where}")
    unknown = sorted(set(found) - set(required) - set(optional))
    if unknown:
        # A newer writer's field: reading the rest would give a model that ignores it.
        raise ValueError(
            f"path: unknown field(s) {unknown} in {where} (written by a newer gramfree?); "
            "refusing to read the file in part"
        )


def _check_dict(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise _field_error(field, f"must be a JSON object, got {type(value).__name__}")
    return value


def _check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _field_error(field, f"must be true or false, got {value!r}")
    return value


def _check_int(value: Any, field: str, *, minimum: int = 0, maximum: int | None = None) -> int:
    # bool is an int in Python but never what the writer stores.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _field_error(field, f"must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = "" if maximum is None else f" and <= {maximum}"
        raise _field_error(field, f"must be >= {minimum}{upper}, got {value}")
    return value


def _check_number(value: Any, field: str, *, minimum: float | None = None) -> float:
    # An int beyond float64 (JSON has no limit) is no finite number: math.isfinite raised
    # OverflowError on it (a review).
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or (isinstance(value, int) and abs(value) > _LARGEST_FLOAT)
        or not math.isfinite(value)
    ):
        raise _field_error(field, f"must be a finite number, got {_short(value)}")
    if minimum is not None and value < minimum:
        raise _field_error(field, f"must be >= {minimum}, got {value}")
    return float(value)


def _check_numbers(value: Any, field: str, *, length: int | None = None) -> list[float]:
    if not isinstance(value, list):
        raise _field_error(field, f"must be a list of numbers, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise _field_error(field, f"has {len(value)} values, expected {length}")
    return [_check_number(v, f"{field}[{i}]") for i, v in enumerate(value)]


def _check_choice(value: Any, field: str, choices) -> str:
    # isinstance first: `value in choices` would raise TypeError for a list or dict.
    if not isinstance(value, str) or value not in choices:
        raise _field_error(field, f"must be one of {sorted(choices)}, got {value!r}")
    return value


def _format_shape(shape) -> str:
    dims = ["any" if d is None else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _check_array(value: Any, field: str, *, dtypes, shape, why: str = "") -> np.ndarray:
    """A C-contiguous array of one of ``dtypes`` and ``shape`` (None: any length), whose
    numbers are finite (NaN or inf in a model array is damage, never a fitted value)."""
    if not isinstance(value, np.ndarray):
        raise _field_error(field, f"must be an array, got {type(value).__name__}")
    if value.dtype not in dtypes:
        names = " or ".join(str(d) for d in dtypes)
        raise _field_error(field, f"has dtype {value.dtype}, expected {names}")
    fits = value.ndim == len(shape) and all(e is None or d == e for d, e in zip(value.shape, shape))
    if not fits:
        raise _field_error(
            field,
            f"has shape {value.shape}, expected {_format_shape(shape)}{why and ' ' + why}",
        )
    if value.dtype.kind in "fc" and not np.isfinite(value).all():
        raise _field_error(field, "holds non-finite values (NaN or inf)")
    return np.ascontiguousarray(value)


# -- parameters and kernels as JSON -----------------------------------------------------


def _unportable_param(name: str, value: Any) -> bool:
    """Parameters recorded as None: given centres (the fitted centres are stored), and a
    ``cv`` other than an integer (a splitter or the splits themselves: a refit of the
    loaded model uses 5 stratified folds)."""
    if name == "centers":
        return True
    return name == "cv" and not (isinstance(value, numbers.Integral) or value is None)


def _encode_param(value: Any) -> Any:
    if isinstance(value, _kernels.Kernel):
        fields = {
            k: "inf" if v == math.inf else _encode_param(v)  # Matern's nu
            for k, v in dataclasses.asdict(value).items()
        }
        return {"__kernel__": type(value).__name__, **fields}
    if isinstance(value, np.random.RandomState):
        return None  # a RandomState object cannot be stored portably; None is recorded
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        value = value.item()  # np.bool_ too: json refused it naming no parameter
    if isinstance(value, float) and math.isinf(value):
        # An estimator's nu=inf, told apart from the string "inf" that it also takes, so
        # that get_params() of the loaded model is the original's (JSON has no infinity).
        return {"__float__": repr(value)}
    if isinstance(value, dict):  # class_weight: JSON objects would turn int keys into str
        return {"__dict__": [[_encode_param(k), _encode_param(v)] for k, v in value.items()]}
    # Sequences of numbers (alphas, hidden_layer_sizes) keep each number's type (JSON tells
    # 8 from 8.0) and the container's: get_params() of the loaded model is the original's,
    # so clone() and refitting it see what the user gave.
    if isinstance(value, list):
        return [_encode_param(v) for v in value]
    if isinstance(value, tuple):
        return {"__tuple__": [_encode_param(v) for v in value]}
    if isinstance(value, np.ndarray):
        return {
            "__ndarray__": [_encode_param(v) for v in value.ravel()],
            "dtype": value.dtype.name,
            "shape": list(value.shape),
        }
    return value


def _decode_kernel(value: Any, field: str) -> _kernels.Kernel:
    """The kernel a ``{"__kernel__": name, **fields}`` object describes. Every field must be
    stored: a missing one would silently take its default (gamma=None is 1/n_features)."""
    value = _check_dict(value, field)
    name = value.get("__kernel__")
    if not isinstance(name, str) or name not in _KERNEL_CLASSES:
        raise _field_error(field, f"names no known kernel ({name!r})")
    cls = _KERNEL_CLASSES[name]
    fields = {k: v for k, v in value.items() if k != "__kernel__"}
    _check_keys(fields, [f.name for f in dataclasses.fields(cls)], where=f"field {field!r}")
    if fields.get("nu") == "inf":
        fields["nu"] = math.inf
    try:  # the kernel classes check their own fields' types and ranges
        return cls(**fields)
    except (TypeError, ValueError, OverflowError) as exc:  # nu=10**400: no float (a review)
        raise _field_error(field, f"is not a valid {cls.__name__} ({exc})") from None


def _decode_mapping(value: Any, field: str) -> dict:
    """A ``{"__dict__": [[key, value], ...]}`` object: numbers, strings or bools (the
    labels of a classifier fitted on a boolean y) to numbers."""
    _check_keys(value, ("__dict__",), where=f"field {field!r}")
    pairs = value["__dict__"]
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise _field_error(field, "must hold a list of [key, value] pairs")
    out = {}
    for key, item in pairs:
        # True == 1 as dict keys: a repeated key either way
        if not isinstance(key, (bool, int, float, str)) or key in out:
            raise _field_error(field, f"has an invalid or repeated key {key!r}")
        number = _check_number(item, f"{field}[{key!r}]")
        out[key] = item if isinstance(item, int) else number  # 2 stays 2: get_params() equal
    return out


def _check_sequence(value: Any, field: str) -> list:
    """A JSON list of finite numbers, each kept as the int or float it is."""
    if not isinstance(value, list):
        raise _field_error(field, f"must be a list of numbers, got {type(value).__name__}")
    for i, v in enumerate(value):
        _check_number(v, f"{field}[{i}]")
    return value


# dtypes an array parameter may be stored with: numbers, which JSON holds exactly.
_ARRAY_PARAM_KINDS = "iuf"


def _decode_ndarray(value: dict, field: str) -> np.ndarray:
    """A ``{"__ndarray__": values, "dtype": name, "shape": [...]}`` object."""
    _check_keys(value, ("__ndarray__", "dtype", "shape"), where=f"field {field!r}")
    values = _check_sequence(value["__ndarray__"], f"{field}.__ndarray__")
    name = value["dtype"]
    try:  # np.dtype parses many spellings; only a number type's own name is written
        dtype = np.dtype(name) if isinstance(name, str) else None
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or dtype.kind not in _ARRAY_PARAM_KINDS or dtype.name != name:
        raise _field_error(f"{field}.dtype", f"must name an integer or float dtype, got {name!r}")
    shape = value["shape"]
    if not isinstance(shape, list):
        raise _field_error(f"{field}.shape", f"must be a list of integers, got {shape!r}")
    shape = [_check_int(d, f"{field}.shape[{i}]") for i, d in enumerate(shape)]
    if math.prod(shape) != len(values):
        raise _field_error(
            field, f"has {len(values)} values, its shape {shape} holds another number"
        )
    if dtype.kind in "iu" and not all(isinstance(v, int) for v in values):
        raise _field_error(field, f"holds non-integers for dtype {name}")
    if len(shape) > 32:  # numpy's own limit is 64; no parameter has more than 2
        raise _field_error(f"{field}.shape", f"has {len(shape)} dimensions, at most 32")
    try:
        array = np.array(values, dtype=dtype).reshape(shape)
    except OverflowError:
        array = None
    except ValueError:  # a shape numpy cannot make (2**70 x 0): "Maximum allowed dimension"
        raise _field_error(f"{field}.shape", f"is no array shape numpy can make: {shape}") from None
    # The writer stores each element's exact value: one the dtype rounds (float32) or
    # cannot hold (an int8 of 300) was never written.
    if array is None or array.ravel().tolist() != values:
        raise _field_error(field, f"holds values that dtype {name} cannot hold exactly")
    return array


def _decode_param(name: str, value: Any) -> Any:
    field = f"params.{name}"
    if isinstance(value, dict) and "__kernel__" in value:
        return _decode_kernel(value, field)
    if isinstance(value, dict) and "__tuple__" in value:
        _check_keys(value, ("__tuple__",), where=f"field {field!r}")
        return tuple(_check_sequence(value["__tuple__"], f"{field}.__tuple__"))
    if isinstance(value, dict) and "__ndarray__" in value:
        return _decode_ndarray(value, field)
    if isinstance(value, dict) and "__float__" in value:
        _check_keys(value, ("__float__",), where=f"field {field!r}")
        if value["__float__"] not in ("inf", "-inf"):
            raise _field_error(field, f"must be 'inf' or '-inf', got {value['__float__']!r}")
        return float(value["__float__"])
    if isinstance(value, dict):
        return _decode_mapping(value, field)
    if isinstance(value, list):
        value = _check_sequence(value, field)
        if name == "hidden_layer_sizes":
            # Writers before the types were kept stored every sequence as float64 ([8.0]);
            # a fitted network's widths are integers (fit refuses 8.0), so a float here is
            # that encoding, read back as the integer it was.
            value = [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
        return value
    return value


def _refuse_booleans_as_numbers(cls: Any, params: dict) -> None:
    """scikit-learn's constraints take True for an integer (bool subclasses int), which
    the native code then refuses at predict (n_jobs=True): a true/false in the file is
    valid only for a parameter that is a flag."""
    for name, value in params.items():
        constraints = cls._parameter_constraints.get(name, [])
        if isinstance(value, bool) and not {"boolean", "verbose"} & set(map(str, constraints)):
            raise _field_error(f"params.{name}", f"must not be true/false, got {value!r}")


def _version_needed(estimator) -> int:
    """The lowest format version that holds ``estimator``'s parameters (module docstring):
    a version-1 reader refuses gamma="scale" as an invalid gamma, not as a newer file."""
    return 2 if getattr(estimator, "gamma", None) == "scale" else 1


def _construct(cls: type, params: Any):
    """An unfitted ``cls`` with the file's parameters, checked as fit would check them.
    Every parameter must be stored: a default in place of a missing one could change what
    the model predicts (a path-kernel model's activation)."""
    params = _check_dict(params, "params")
    defaults = cls().get_params(deep=False)
    # Parameters added after format version 1 was fixed: absent from older files, which
    # were written before they existed and so were fitted with their default.
    added = {
        k: _DEFAULT_BEFORE_CHANGE.get(k, defaults[k])
        for k in _PARAMS_ADDED_SINCE_V1
        if k in defaults and k not in params
    }
    params = {**params, **added}
    _check_keys(params, defaults, where="field 'params'")
    _refuse_booleans_as_numbers(cls, params)
    est = cls(**{k: _decode_param(k, v) for k, v in params.items()})
    try:
        est._validate_params()
    except ValueError as exc:  # sklearn's InvalidParameterError names the parameter
        raise _field_error("params", f"holds an invalid value: {exc}") from None
    # What fit checks beyond the constraints, where it holds on any machine (a review:
    # n_jobs=0 and device='x' loaded, and predict refused them). A device or a thread
    # count that only this machine lacks is no damage: predict says so.
    stored = est.get_params(deep=False)
    if "device" in stored:
        try:
            check_device_spelling(stored["device"], "device")
        except ValueError as exc:
            raise _field_error("params.device", f"holds an invalid value: {exc}") from None
    if stored.get("n_jobs", None) == 0:
        raise _field_error("params.n_jobs", "must be None or a non-zero integer, got 0")
    if stored.get("loss") == "logistic" and stored.get("criterion") == "loo":
        raise _field_error("params.criterion", "is 'loo', which loss='logistic' refuses")
    return est


# -- saving ------------------------------------------------------------------------------


def _encode_info(value: Any, depth: int = 0) -> Any:
    """``value`` (solver_info_ or a part of it) as JSON that :func:`_decode_info` reads back
    (``_INFO_DEPTH``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_NONFINITE: repr(value)}
    if depth >= _INFO_DEPTH:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _encode_info(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        items = value.tolist() if isinstance(value, np.ndarray) else value
        return [_encode_info(v, depth + 1) for v in items]
    return str(value)


def _class_labels(estimator) -> np.ndarray:
    classes = np.asarray(estimator.classes_)
    if classes.dtype.kind == "O":
        if not all(isinstance(c, str) for c in classes):
            raise TypeError("classes_: only numeric or string class labels can be saved")
        classes = classes.astype(str)
    return classes


def _feature_names(estimator) -> np.ndarray | None:
    """``feature_names_in_`` (set by fitting on a DataFrame) as a string array, or None."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return None
    names = np.asarray(names, dtype=object)
    if names.ndim != 1 or not all(isinstance(n, str) for n in names):
        raise TypeError("feature_names_in_: only a 1-d array of strings can be saved")
    return names.astype(str)


def _kernel_machine_state(estimator) -> tuple[dict, dict]:
    from sklearn.utils.validation import check_is_fitted

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
        "solver_info_": _encode_info(getattr(estimator, "solver_info_", {})),
    }
    arrays.update(_center_records(estimator))
    if hasattr(estimator, "validation_scores_"):  # an early-stopped fit's record
        attributes["validation_scores_"] = [float(v) for v in estimator.validation_scores_]
        attributes["best_validation_score_"] = float(estimator.best_validation_score_)
    if hasattr(estimator, "classes_") and hasattr(estimator, "solver_"):
        # The loss the classifier was fitted with, whatever ``loss`` says now: a compressed
        # model's solver_ ("projection") no longer tells, and the saved parameter may
        # have been changed after the fit (its probabilities followed it through a file).
        from .estimators.classifier import _loss_fitted_with

        attributes["fitted_loss"] = _loss_fitted_with(estimator)
    intercept = getattr(estimator, "intercept_", None)
    if intercept is not None:  # the logistic loss's
        arrays["intercept"] = np.ascontiguousarray(intercept)
    if _is_logistic_cv(estimator, estimator.solver_):
        attributes.update(
            alpha_=float(estimator.alpha_),
            # inf: an alpha whose fits failed on a fold (never the chosen one).
            cv_log_loss_=[float(v) if np.isfinite(v) else "inf" for v in estimator.cv_log_loss_],
            # NaN: a fold whose held-out rows all weigh zero (JSON has no NaN).
            cv_log_loss_folds_=[
                [float(v) if np.isfinite(v) else "nan" for v in row]
                for row in estimator.cv_log_loss_folds_
            ],
            best_score_=float(estimator.best_score_),
        )
    elif _is_alpha_path(estimator):
        # alpha_per_target with several targets: alpha_ and best_score_ per target, and
        # gcv_values_ (alphas x targets), as lists.
        attributes.update(
            alpha_=np.asarray(estimator.alpha_, dtype=np.float64).tolist(),
            # An alpha whose degrees of freedom reach n has GCV +inf (JSON has no inf).
            gcv_values_=_json_values(estimator.gcv_values_),
            dof_=[float(v) for v in estimator.dof_],
            # -inf when no candidate had a GCV estimate (weights summing below every df).
            best_score_=_json_values(estimator.best_score_),
        )
        if hasattr(estimator, "loo_values_"):  # leave-one-out chose (chooses_by_loo)
            attributes["loo_values_"] = _json_values(estimator.loo_values_)
        if hasattr(estimator, "gamma_"):
            attributes["gamma_"] = float(estimator.gamma_)
        if hasattr(estimator, "gcv_grid_"):
            attributes.update(
                gcv_grid_=[
                    [float(v) if np.isfinite(v) else "inf" for v in row]
                    for row in estimator.gcv_grid_
                ],
                dof_grid_=[[float(v) for v in row] for row in estimator.dof_grid_],
            )
    return arrays, attributes


def _center_records(estimator) -> dict:
    """The optional arrays that trace centres to training examples (explain): their rows
    in the training set and their training targets, as class codes into ``classes`` for a
    classifier or float64 values for a regressor. Models of older writers have neither."""
    arrays = {}
    indices = getattr(estimator, "center_indices_", None)
    if indices is not None:
        arrays["center_indices"] = np.ascontiguousarray(indices, dtype=np.int64)
    targets = getattr(estimator, "center_targets_", None)
    if targets is not None:
        if hasattr(estimator, "classes_"):
            classes = np.asarray(estimator.classes_)
            codes = np.searchsorted(classes, targets)
            if not np.array_equal(classes[np.minimum(codes, len(classes) - 1)], targets):
                raise ValueError("center_targets_: holds labels that are not in classes_")
            targets = codes
        arrays["center_targets"] = np.ascontiguousarray(
            targets, dtype=np.int64 if hasattr(estimator, "classes_") else np.float64
        )
    return arrays


def _portable(estimator) -> tuple[dict, dict]:
    """(arrays, metadata) that describe a fitted estimator."""
    name = type(estimator).__name__
    if name not in _estimator_classes():
        raise TypeError(f"estimator: cannot save a {name}")
    if hasattr(estimator, "_portable_state"):  # path-kernel models describe themselves
        arrays, attributes = estimator._portable_state()
    else:
        arrays, attributes = _kernel_machine_state(estimator)
    if hasattr(estimator, "classes_"):
        arrays["classes"] = _class_labels(estimator)
        if np.asarray(estimator.classes_).dtype.kind == "O":
            # Optional: strings fitted as an object array load back as one (predict's dtype).
            attributes["classes_object"] = True
    names = _feature_names(estimator)
    if names is not None:
        arrays["feature_names"] = names  # optional: absent in files of older writers
    meta = {
        "format": FORMAT,
        "format_version": _version_needed(estimator),
        "estimator": name,
        # The centers parameter (an array) is stored as None: the fitted centres it gave are
        # saved (centers_), and a loaded model refits with a random draw unless set again.
        "params": {
            k: _encode_param(None if _unportable_param(k, v) else v)
            for k, v in estimator.get_params().items()
        },
        "attributes": {
            **attributes,
            "classes_kind": None if "classes" not in arrays else arrays["classes"].dtype.kind,
        },
    }
    recipe = getattr(estimator, "table_recipe_", None)
    if recipe is not None:  # optional: set by the command line's fit
        meta["table"], table_arrays = _table_state(recipe)
        arrays.update(table_arrays)
    return arrays, meta


def _check_loads_back(text: str, arrays: dict) -> None:
    """Refuse to write what load would refuse (a diverged fit's non-finite coefficients,
    say): a saved file must always load."""
    try:
        _restore(_parse_meta(text), dict(arrays))
    except ValueError as exc:
        raise ValueError(f"estimator: this model would not load back, not saved ({exc})") from None


def _create_temporary(target: str) -> tuple[int, str]:
    """A new file beside ``target`` (same file system, so os.replace is atomic). Not
    mkstemp: its mode 0600 would replace the file's usual permissions; created with 0666
    the umask applies as it does to open()."""
    directory, base = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(8)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


def _keep_mode(target: str, tmp: str) -> None:
    """Give the new file the permission bits of the one it replaces, as writing in place
    kept them."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        return
    os.chmod(tmp, mode)


def _fsync_directory(directory: str) -> None:
    # The rename is durable only once the directory entry is on disk (POSIX); where a
    # directory cannot be opened or synced (Windows) the replace is still atomic.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_atomic(path, text: str, arrays: dict) -> None:
    """Write the file under a temporary name, flush it to disk, then rename it over
    ``path``: readers see the old file or the new one, never a part; on any failure the
    temporary file is removed and the old file is untouched."""
    target = os.path.realpath(os.fspath(path))  # through a symlink, as open() wrote
    directory = os.path.dirname(target)
    if not os.path.isdir(directory):  # else the error named the temporary file (a review)
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise (NotADirectoryError if os.path.exists(directory) else FileNotFoundError)(
            f"path: the directory of {os.fspath(path)!r} ({directory!r}) {what}"
        )
    # The rename would put the model in place of a device, pipe or socket (`/dev/null`
    # replaced, run as root; a review).
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        raise ValueError(
            f"path: {os.fspath(path)!r} exists and is not a regular file (a directory, device, "
            "pipe or socket): the model would replace it"
        )
    fd, tmp = _create_temporary(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{_META: np.array(text), **arrays})
            fh.flush()
            os.fsync(fh.fileno())
        _keep_mode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_directory(os.path.dirname(target))


def save(estimator, path: str | bytes | os.PathLike) -> None:
    """Write a fitted gramfree estimator to ``path`` (format version 1, or 2 for
    gamma="scale": the module docstring).

    The old file at ``path``, if any, is replaced atomically: after a crash or an error it
    is still there, whole. A model that would not load back (non-finite coefficients)
    raises ValueError and nothing is written. Parameters that cannot be stored portably
    are saved as None: given ``centers`` (the fitted centres are stored), a ``cv`` splitter
    and a ``random_state`` that is a RandomState instance (which warns).
    """
    path = _as_path(path)
    arrays, meta = _portable(estimator)
    text = json.dumps(meta, allow_nan=False)
    _check_loads_back(text, arrays)
    _write_atomic(path, text, arrays)
    if isinstance(getattr(estimator, "random_state", None), np.random.RandomState):
        # Predictions are unaffected; a refit or warm-start continuation of the loaded
        # model is not reproducible. It was stored as None in silence (a review).
        warnings.warn(
            "random_state: a RandomState instance cannot be stored portably and was saved "
            "as None (the model predicts as before; refits of the loaded one draw other "
            "centres and batches); pass an integer random_state to keep it",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


# -- the command line's reading recipe (optional) ------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class TableRecipe:
    """How ``python -m gramfree fit`` read its training table, so that ``predict`` reads a
    table the same way. The command line sets it as a fitted model's ``table_recipe_``;
    ``save`` writes it (metadata field ``table``, arrays ``table_mean`` and
    ``table_scale``) and ``load`` checks it like every other field. Models fitted in Python
    and files of older writers have none. ``fit`` leaves it as it is: delete it from a
    model refitted on other data before saving.

    Attributes
    ----------
    header : bool
        The CSV file had a header row (False for .npy files and header-less CSV).
    columns : tuple of str
        Every column of the training table in file order: the header's names, else
        ``"0", "1", ...``.
    target : int
        Index into ``columns`` of the target; the other columns are the features, in order.
    mean, scale : ndarray of shape (n_features_in_,) or None
        The standardisation fitted on the features: the model saw ``(X - mean) / scale``.
        None when it saw the features as read.

    Examples
    --------
    >>> import numpy as np
    >>> recipe = TableRecipe(True, ("a", "y", "b"), 1, np.array([1.0, 0.0]), np.ones(2))
    >>> recipe.features, recipe.target_name
    (('a', 'b'), 'y')
    >>> recipe.transform(np.array([[3.0, 4.0]]))
    array([[2., 4.]])
    """

    header: bool
    columns: tuple[str, ...]
    target: int
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.columns[: self.target] + self.columns[self.target + 1 :]

    @property
    def target_name(self) -> str:
        return self.columns[self.target]

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The features as the model saw them."""
        return X if self.mean is None else (X - self.mean) / self.scale


def _table_state(recipe: Any) -> tuple[dict, dict]:
    """(metadata field 'table', arrays) for a TableRecipe; its values are stored as they
    are, and checked by save's load-back like a file's."""
    if not isinstance(recipe, TableRecipe):
        raise TypeError(
            f"table_recipe_: expected a gramfree.io.TableRecipe, got {type(recipe).__name__}"
        )
    parts = {"table_mean": recipe.mean, "table_scale": recipe.scale}
    arrays = {k: np.asarray(v) for k, v in parts.items() if v is not None}
    fields = {
        "header": recipe.header,
        "columns": list(recipe.columns),
        "target": recipe.target,
        "scaled": bool(arrays),
    }
    return fields, arrays


def _restore_table(est, meta: dict, arrays: dict) -> None:
    """table_recipe_ from the metadata's optional field 'table' and its arrays, checked
    against the model's n_features_in_."""
    if "table" not in meta:
        _check_keys(arrays, (), where="the arrays of a model without field 'table'")
        return
    table = _check_dict(meta["table"], "table")
    _check_keys(table, _TABLE_FIELDS, where="field 'table'")
    n = est.n_features_in_
    header = _check_bool(table["header"], "table.header")
    columns = table["columns"]
    if not isinstance(columns, list) or not all(isinstance(c, str) and c for c in columns):
        raise _field_error("table.columns", "must be a list of non-empty strings")
    if len(columns) != n + 1:
        raise _field_error(
            "table.columns",
            f"has {len(columns)} names, expected {n + 1} (n_features_in_={n} and the target)",
        )
    if len(set(columns)) != len(columns):
        raise _field_error("table.columns", "repeats a name")
    target = _check_int(table["target"], "table.target", maximum=n)
    scaled = _check_bool(table["scaled"], "table.scaled")
    _check_keys(arrays, _TABLE_ARRAYS if scaled else (), where="the arrays")
    mean = scale = None
    if scaled:
        f64, why = (np.dtype(np.float64),), f"for n_features_in_={n}"
        mean = _check_array(arrays["table_mean"], "table_mean", dtypes=f64, shape=(n,), why=why)
        scale = _check_array(arrays["table_scale"], "table_scale", dtypes=f64, shape=(n,), why=why)
        if not (scale > 0).all():
            raise _field_error("table_scale", "must hold positive numbers (it divides)")
    est.table_recipe_ = TableRecipe(header, tuple(columns), target, mean, scale)


# -- reading the container -----------------------------------------------------------------


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One .npy member. Its header's shape is checked against the member's size before
    anything is allocated (a damaged header must not ask for terabytes); reading to the
    end makes zipfile check the CRC, which catches any changed byte of the data."""
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"member {info.filename!r}: .npy version {version} is not supported")
        if dtype.hasobject:
            raise ValueError(f"member {info.filename!r} holds Python objects")
        if dtype.itemsize == 0:
            # Zero-byte items (<U0, |S0, V0) pass the size check below at any shape, and
            # a 7.6 KB file declaring 1e18 of them asked numpy for 888 PiB (a review);
            # the writer never stores them.
            raise ValueError(f"member {info.filename!r} has zero-byte items (dtype {dtype})")
        if any(d < 0 for d in shape):
            raise ValueError(f"member {info.filename!r} has a negative dimension {shape}")
        expected = fh.tell() + dtype.itemsize * math.prod(shape)
        if expected != info.file_size:
            raise ValueError(
                f"member {info.filename!r} is {info.file_size} bytes, its header describes "
                f"{expected}"
            )
    with zf.open(info) as fh:
        array = np.lib.format.read_array(fh, allow_pickle=False)
        if fh.read(1):
            raise ValueError(f"member {info.filename!r} has bytes after its array")
    if not array.dtype.isnative:  # written on a machine of the other byte order
        array = array.astype(array.dtype.newbyteorder("="))
    return array


META_PARSE_FACTOR = 4


def _memory_for_reading() -> float:
    """The memory this process can still take: the least of physical memory, the kernel's
    MemAvailable, the cgroup's limit less its use and the address-space limit less the
    process's size (a bomb declaring less than physical memory but more than a ulimit
    raised MemoryError instead of ValueError; a review). What cannot be read is no limit."""
    from .solvers._common import memory_bytes, proc_number

    room = [memory_bytes()]
    available = proc_number("/proc/meminfo", "MemAvailable:", 1024)
    if available is not None:
        room.append(available)
    limit = proc_number("/sys/fs/cgroup/memory.max")
    used = proc_number("/sys/fs/cgroup/memory.current")
    if limit is not None and used is not None:
        room.append(limit - used)
    return max(0.0, min(room))


def _read_members(zf: zipfile.ZipFile) -> dict[str, np.ndarray]:
    # The members' sizes as the zip directory declares them, before any is inflated: a
    # deflated member of a damaged or hostile file (a "zip bomb": 1000 to 1 of zeros)
    # declaring more than this machine's memory ran into MemoryError, or the OOM killer,
    # instead of a ValueError.
    # The metadata is counted at META_PARSE_FACTOR times its bytes: parsed, JSON numbers
    # took about 4 times the text's (a review: 305 MiB of loss_curve_ peaked at 1.2 GiB).
    declared = sum(
        info.file_size * (META_PARSE_FACTOR if info.filename == _META + ".npy" else 1)
        for info in zf.infolist()
    )
    room = _memory_for_reading()
    if declared > room:
        raise ValueError(
            f"its arrays declare {declared / 2**30:.3g} GiB, more than the memory this "
            f"process can still use ({room / 2**30:.3g} GiB)"
        )
    arrays = {}
    for info in zf.infolist():
        name, ext = os.path.splitext(info.filename)
        if ext != ".npy":
            raise ValueError(f"member {info.filename!r} is not an array")
        # np.savez stores, savez_compressed deflates; other methods' decoders (bz2, lzma)
        # raise their own exception types on damaged data, so they are refused up front.
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ValueError(
                f"member {info.filename!r} uses compression method {info.compress_type}"
            )
        if name in arrays:
            raise ValueError(f"member {info.filename!r} appears twice")
        arrays[name] = _read_member(zf, info)
    return arrays


def _as_path(path) -> str:
    """``path`` as a str: bytes and os.PathLike as os.fsdecode reads them (zipfile took
    b"model.gfm" for a file object: AttributeError 'seek'; a review); anything else is a
    TypeError naming ``path``."""
    try:
        return os.fsdecode(path)
    except TypeError:
        raise TypeError(
            f"path: expected a str, bytes or os.PathLike, got {type(path).__name__}"
        ) from None


def _read_arrays(path) -> dict[str, np.ndarray]:
    """Every array in the file, or ValueError if it is no readable .npz file (a missing
    file raises FileNotFoundError, as open() does: nothing there is not a damaged file)."""
    where = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ValueError(f"path: {where!r} is not a gramfree model file ({exc})") from None
    if not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # a device or a pipe (/dev/zero): zipfile would read it without end
        raise ValueError(f"path: {where!r} is not a regular file, not a gramfree model file")
    try:
        with zipfile.ZipFile(path) as zf:
            return _read_members(zf)
    except FileNotFoundError:
        raise
    except IsADirectoryError:
        raise ValueError(f"path: {where!r} is a directory, not a gramfree model file") from None
    except zipfile.BadZipFile as exc:
        why = "empty file" if _is_empty(path) else f"not a zip archive, or truncated: {exc}"
        raise ValueError(f"path: {where!r} is not a gramfree model file ({why})") from None
    except _UNREADABLE as exc:
        raise ValueError(f"path: {where!r} is not a gramfree model file ({exc})") from None


def _is_empty(path) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return False


# -- reading the metadata ------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")  # NaN, Infinity: never written


def _unique_keys(pairs: list) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"an object repeats a key ({sorted(keys)})")
    return dict(pairs)


def _parse_meta(text: str) -> Any:
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise _field_error(_META, f"is not valid JSON ({exc})") from None


def _read_meta(raw: np.ndarray | None, path) -> dict:
    """The metadata, once it says this is a model file of the version this code reads."""
    where = os.fspath(path)
    if raw is None or raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"path: {where!r} is not a gramfree model file (no metadata)")
    meta = _parse_meta(str(raw[()]))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"path: {where!r} is not a gramfree model file")
    version = meta.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise _field_error("format_version", f"must be an integer >= 1, got {version!r}")
    if version > FORMAT_VERSION:
        # Versions 1..FORMAT_VERSION are all read (module docstring); only newer ones fail.
        raise ValueError(
            f"path: {where!r} has model file format version {version}, written by a newer "
            f"gramfree; gramfree {__version__} reads format versions 1 to {FORMAT_VERSION}: "
            "upgrade gramfree to load it"
        )
    return meta


# -- rebuilding the estimator ---------------------------------------------------------------


def _restore_classes(est, classes: np.ndarray | None, kind: Any, as_object: bool) -> None:
    """classes_ as the classifier's LabelEncoder left it: 1-d, >= 2 labels, sorted and
    distinct (prediction indexes it by column), of the kind the metadata records; strings
    as an object array where the fit had one (``as_object``)."""
    from sklearn.base import is_classifier

    if not is_classifier(est):
        if classes is not None:
            raise ValueError("path: unknown field(s) ['classes'] in the arrays of a regressor")
        if kind is not None:
            raise _field_error(
                "attributes.classes_kind", f"must be null for a regressor, got {kind!r}"
            )
        if as_object:
            raise _field_error("attributes.classes_object", "must be absent for a regressor")
        return
    if classes is None:
        raise ValueError("path: missing field(s) ['classes'] in the arrays of a classifier")
    if classes.dtype.kind not in _CLASS_KINDS:
        raise _field_error("classes", f"has dtype {classes.dtype}, expected numbers or strings")
    classes = _check_array(classes, "classes", dtypes=(classes.dtype,), shape=(None,))
    if len(classes) < 2:
        raise _field_error("classes", f"has {len(classes)} label(s), a classifier has >= 2")
    if not (classes[1:] > classes[:-1]).all():
        raise _field_error("classes", "must be sorted and distinct, as fit stores them")
    if kind != classes.dtype.kind:
        raise _field_error(
            "attributes.classes_kind",
            f"is {kind!r}, the classes array is of kind {classes.dtype.kind!r}",
        )
    if as_object and kind != "U":
        raise _field_error("attributes.classes_object", f"is true for classes of kind {kind!r}")
    est.classes_ = classes.astype(object) if as_object else classes


def _restore_feature_names(est, names: np.ndarray | None) -> None:
    if names is None:
        return
    if names.dtype.kind != "U":
        raise _field_error("feature_names", f"has dtype {names.dtype}, expected strings")
    n = est.n_features_in_
    names = _check_array(
        names, "feature_names", dtypes=(names.dtype,), shape=(n,), why=f"for n_features_in_={n}"
    )
    # scikit-learn's own layout: an object array of str, compared on predict with a DataFrame
    est.feature_names_in_ = np.asarray(names.tolist(), dtype=object)


def _target_columns(est, y_1d: bool) -> tuple[int | None, str]:
    """dual_coef_'s number of columns and why: a binary classifier keeps one score column
    (positive means classes_[1]), a multiclass one a column per class; a regressor fitted
    on a 1-d y one column, on a 2-d y any number."""
    if hasattr(est, "classes_"):
        n = len(est.classes_)
        return (1 if n == 2 else n), f"for {n} classes"
    return (1, "for a 1-d target (y_1d)") if y_1d else (None, "")


def _restore_kernel_machine(est, arrays: dict, attrs: dict) -> None:
    optional = _CENTER_RECORDS + (("intercept",) if hasattr(est, "classes_") else ())
    _check_keys(arrays, ("centers", "dual_coef"), optional, where="the arrays")
    alpha_path = _is_alpha_path(est)
    logistic_cv = _is_logistic_cv(est, attrs.get("solver_"))
    chosen = _LOGISTIC_CV_ATTRIBUTES if logistic_cv else _ALPHA_PATH_ATTRIBUTES
    _check_keys(
        attrs,
        _KERNEL_MACHINE_ATTRIBUTES + (chosen if alpha_path else ()),
        (_GAMMA_GRID_ATTRIBUTES + ("loo_values_",) if alpha_path and not logistic_cv else ())
        + (("fitted_loss",) if hasattr(est, "classes_") else ())
        + ("solver_info_",)
        + _EARLY_STOPPING_ATTRIBUTES,
        where="field 'attributes'",
    )
    n_features = _check_int(attrs["n_features_in_"], "attributes.n_features_in_", minimum=1)
    y_1d = _check_bool(attrs["y_1d"], "attributes.y_1d")
    centers = _check_array(
        arrays["centers"],
        "centers",
        dtypes=_FLOATS,
        shape=(None, n_features),
        why=f"for n_features_in_={n_features}",
    )
    m = centers.shape[0]
    if m < 1:
        raise _field_error("centers", "has no rows: a fitted model has at least one centre")
    columns, why = _target_columns(est, y_1d)
    if arrays["dual_coef"].dtype != centers.dtype:  # the model computes in one precision
        raise _field_error(
            "dual_coef",
            f"has dtype {arrays['dual_coef'].dtype}, expected {centers.dtype} as 'centers'",
        )
    dual_coef = _check_array(
        arrays["dual_coef"],
        "dual_coef",
        dtypes=(centers.dtype,),
        shape=(m, columns),
        why=why or f"for {m} centres",
    )
    if dual_coef.shape[1] < 1:
        raise _field_error("dual_coef", "has no columns")
    records = _restore_center_records(est, arrays, m, (m,) if y_1d else dual_coef.shape)
    if "intercept" in arrays:  # the logistic loss's; absent from files of earlier writers
        records["intercept_"] = _check_array(
            arrays["intercept"],
            "intercept",
            dtypes=(centers.dtype,),
            shape=(dual_coef.shape[1],),
            why="(one per column of dual_coef)",
        )
    est.kernel_ = _decode_kernel(attrs["kernel_"], "attributes.kernel_")
    est.solver_ = _check_choice(attrs["solver_"], "attributes.solver_", _fitted_solvers())
    est.n_iter_ = _check_int(attrs["n_iter_"], "attributes.n_iter_")
    est.loss_curve_ = _check_numbers(attrs["loss_curve_"], "attributes.loss_curve_")
    est.fit_time_ = _check_number(attrs["fit_time_"], "attributes.fit_time_", minimum=0)
    est.n_features_in_ = n_features
    est.centers_ = centers
    est.dual_coef_ = dual_coef
    info = _check_dict(attrs.get("solver_info_", {}), "attributes.solver_info_")
    est.solver_info_ = _decode_info(info, "attributes.solver_info_")
    if not hasattr(est, "classes_"):
        est._y_1d = y_1d
    for name, value in records.items():
        setattr(est, name, value)
    _restore_early_stopping(est, attrs)
    if "fitted_loss" in attrs:  # absent from files of earlier writers: solver_ and loss tell
        loss = _check_choice(
            attrs["fitted_loss"], "attributes.fitted_loss", ("squared", "logistic")
        )
        # Its writers store the logistic loss's intercepts, and only its Newton steps name
        # solver_ "newton-pcg": a squared-loss file marked logistic loaded with a softmax of
        # ridge scores as predict_proba (a review).
        if (loss == "logistic") != ("intercept_" in records):
            has = "has" if "intercept_" in records else "has no"
            raise _field_error(
                "attributes.fitted_loss", f"is {loss!r}, but the file {has} 'intercept' array"
            )
        if loss == "squared" and est.solver_ == "newton-pcg":
            raise _field_error(
                "attributes.fitted_loss", "is 'squared', but solver_ 'newton-pcg' fits the logistic"
            )
        est._fitted_loss = loss
    if logistic_cv:
        _restore_logistic_cv(est, attrs)
    elif alpha_path:
        _restore_alpha_path(est, attrs)


def _decode_info(value: Any, field: str, depth: int = 0) -> Any:
    """solver_info_ as :func:`_encode_info` wrote it, every part checked."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value  # JSON's numbers: finite (the parser refuses NaN and Infinity)
    if isinstance(value, dict) and _NONFINITE in value:
        if value.keys() != {_NONFINITE} or value[_NONFINITE] not in ("nan", "inf", "-inf"):
            raise _field_error(field, 'must be {"__float__": "nan", "inf" or "-inf"}')
        return float(value[_NONFINITE])
    if depth >= _INFO_DEPTH:
        raise _field_error(field, f"nests deeper than {_INFO_DEPTH} levels")
    if isinstance(value, list):
        return [_decode_info(v, f"{field}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {k: _decode_info(v, f"{field}.{k}", depth + 1) for k, v in value.items()}
    raise _field_error(field, f"holds a {type(value).__name__}")  # not from json.loads


def _restore_early_stopping(est, attrs: dict) -> None:
    """validation_scores_ and best_validation_score_ (the best of them), or neither."""
    present = [name in attrs for name in _EARLY_STOPPING_ATTRIBUTES]
    if not any(present):
        return
    if not all(present):
        raise _field_error(
            "attributes.validation_scores_", "and best_validation_score_ come together"
        )
    scores = _check_numbers(attrs["validation_scores_"], "attributes.validation_scores_")
    best = _check_number(attrs["best_validation_score_"], "attributes.best_validation_score_")
    if not scores or best not in scores:
        raise _field_error(
            "attributes.best_validation_score_", "is not one of attributes.validation_scores_"
        )
    est.validation_scores_ = scores
    est.best_validation_score_ = best


def _candidate_alphas(est) -> np.ndarray:
    alphas = est.alphas
    if isinstance(alphas, np.ndarray) and alphas.ndim == 1:
        alphas = alphas.tolist()
    if not isinstance(alphas, (list, tuple)) or not alphas:
        raise _field_error("params.alphas", "must be a non-empty list of numbers")
    return np.asarray(_check_numbers(list(alphas), "params.alphas"))


def _restore_logistic_cv(est, attrs: dict) -> None:
    """alpha_ among the candidates, the held-out log-loss of each (per fold and their
    mean), and best_score_ minus alpha_'s."""
    alphas = _candidate_alphas(est)
    k = len(alphas)
    alpha = _check_number(attrs["alpha_"], "attributes.alpha_", minimum=0)
    if not np.any(alphas == alpha):
        raise _field_error("attributes.alpha_", f"is {alpha!r}, not one of params.alphas")
    stored = attrs["cv_log_loss_"]
    if not isinstance(stored, list) or len(stored) != k:
        raise _field_error("attributes.cv_log_loss_", f"must be a list of {k} numbers")
    _check_numbers([v for v in stored if v != "inf"], "attributes.cv_log_loss_")
    mean = np.asarray([math.inf if v == "inf" else v for v in stored], dtype=np.float64)
    if np.any(mean < 0):  # a log-loss is non-negative (inf: an alpha whose fits diverged)
        raise _field_error("attributes.cv_log_loss_", "holds a negative log-loss")
    folds = attrs["cv_log_loss_folds_"]
    if not isinstance(folds, list) or not folds:
        raise _field_error("attributes.cv_log_loss_folds_", "must be a non-empty list of rows")
    rows = []
    for i, row in enumerate(folds):
        field = f"attributes.cv_log_loss_folds_[{i}]"
        if not isinstance(row, list):
            raise _field_error(field, f"must be a list of numbers, got {type(row).__name__}")
        if len(row) != k:
            raise _field_error(field, f"has {len(row)} values, expected {k}")
        if any(v < 0 for v in _check_numbers([v for v in row if v != "nan"], field)):
            raise _field_error(field, "holds a negative log-loss")
        rows.append([math.nan if v == "nan" else v for v in row])
    best = _check_number(attrs["best_score_"], "attributes.best_score_")
    if -best != mean[int(np.flatnonzero(alphas == alpha)[0])]:
        raise _field_error("attributes.best_score_", "is not minus alpha_'s cv_log_loss_")
    est.alpha_ = alpha
    est.cv_log_loss_ = mean
    est.cv_log_loss_folds_ = np.asarray(rows, dtype=np.float64)
    est.best_score_ = best


def _json_values(values):
    """Floats (nested lists for an array of more than one dimension) with the infinities
    as the strings "inf" and "-inf" (JSON has none)."""
    if np.ndim(values) > 0:
        return [_json_values(v) for v in values]
    v = float(values)
    return v if np.isfinite(v) else ("inf" if v > 0 else "-inf")


def _restore_alpha_path(est, attrs: dict) -> None:
    """alpha_ among the stored candidates, and the criterion's value for each of them."""
    alphas = _candidate_alphas(est)
    k = len(alphas)
    # Several targets fitted with alpha_per_target: an alpha per dual_coef column.
    if getattr(est, "alpha_per_target", False) and est.dual_coef_.shape[1] > 1:
        _restore_alpha_per_target(est, attrs, alphas)
        return
    alpha = _check_number(attrs["alpha_"], "attributes.alpha_", minimum=0)
    if getattr(est, "gamma_search", None) is not None:  # alpha refined between candidates
        if not alphas.min() <= alpha <= alphas.max():
            raise _field_error(
                "attributes.alpha_", f"is {alpha!r}, outside the range of params.alphas"
            )
    elif not np.any(alphas == alpha):
        raise _field_error("attributes.alpha_", f"is {alpha!r}, not one of params.alphas")
    est.alpha_ = alpha
    est.gcv_values_ = _criterion_values(attrs["gcv_values_"], "attributes.gcv_values_", k)
    est.dof_ = np.asarray(_check_numbers(attrs["dof_"], "attributes.dof_", length=k))
    chosen_by = _restore_loo(est, attrs, k)
    best = attrs["best_score_"]
    est.best_score_ = -math.inf if best == "-inf" else _check_number(best, "attributes.best_score_")
    # The best score is the chosen alpha's GCV (or leave-one-out error, a candidate's), or
    # with the search's refined alpha (GCV) at most the lowest candidate's GCV.
    if getattr(est, "gamma_search", None) is None or chosen_by is not est.gcv_values_:
        if not np.any(alphas == alpha):
            raise _field_error("attributes.alpha_", f"is {alpha!r}, not one of params.alphas")
        index = int(np.flatnonzero(alphas == alpha)[0])
        if -est.best_score_ != chosen_by[index]:
            name = "GCV" if chosen_by is est.gcv_values_ else "leave-one-out error"
            raise _field_error("attributes.best_score_", f"is not minus alpha_'s {name}")
        if chosen_by is not est.gcv_values_:
            _check_loo_choice(chosen_by, alphas, index, "attributes.alpha_")
    elif not 0 < -est.best_score_ <= np.min(est.gcv_values_):
        raise _field_error("attributes.best_score_", "is not minus a GCV at most the path's lowest")
    _restore_gamma_grid(est, attrs, k)


def _criterion_values(value, field: str, k: int, t: int | None = None) -> np.ndarray:
    """A criterion's values along the alphas: k numbers, or (alpha_per_target) k rows of
    t, with +inf as the string "inf"."""
    if t is not None and not (isinstance(value, list) and len(value) == k):
        raise _field_error(field, f"must be a list of {k} rows, one per alpha")
    if t is None and isinstance(value, list) and len(value) != k:
        raise _field_error(field, f"has {len(value)} values, expected {k}")
    rows = [value] if t is None else value
    for i, row in enumerate(rows):
        where = field if t is None else f"{field}[{i}]"
        if not isinstance(row, list):
            raise _field_error(where, f"must be a list of numbers, got {type(row).__name__}")
        _check_numbers([v for v in row if v != "inf"], where)
        if t is not None and len(row) != t:
            raise _field_error(where, f"has {len(row)} values, expected {t} (one per target)")
    return np.asarray(
        [[math.inf if v == "inf" else v for v in row] for row in rows], dtype=np.float64
    ).reshape((k,) if t is None else (k, t))


def _check_loo_choice(errors: np.ndarray, alphas: np.ndarray, index: int, field: str) -> None:
    """alpha_ (candidate ``index``) is leave-one-out's choice as cv._loo_choice makes it:
    the lowest error, or the largest alpha where no candidate has an estimate or every
    estimate is zero; errors are never negative (a review: a file with alpha_ elsewhere
    loaded into a model its fit would not have chosen)."""
    finite = errors[np.isfinite(errors)]
    if np.any(finite < 0):
        raise _field_error("attributes.loo_values_", "holds a negative error")
    largest = alphas[index] == np.max(alphas)
    if finite.size == 0 or np.all(finite == 0):
        if not largest:
            raise _field_error(
                field, "is not the largest alpha, where leave-one-out has nothing to choose by"
            )
    elif errors[index] != np.min(finite):
        raise _field_error(field, "is not the alpha of the lowest leave-one-out error")


def _restore_loo(est, attrs: dict, k: int, t: int | None = None) -> np.ndarray:
    """loo_values_, stored exactly when the parameters choose alpha by leave-one-out
    (params.criterion "loo" or "auto"; with gammas, at GCV's gamma); the values alpha_ was
    chosen by (those, or gcv_values_)."""
    from .estimators.cv import chooses_by_loo

    # The parameters, not the loss: a square-loss model saved after set_params(loss=...)
    # is restored as fitted (tests/test_logistic_cv.py).
    if not chooses_by_loo(est.criterion):
        if "loo_values_" in attrs:
            raise _field_error(
                "attributes.loo_values_",
                f"is stored where the parameters choose alpha by GCV (criterion {est.criterion!r})",
            )
        if hasattr(est, "loo_values_"):
            del est.loo_values_
        return est.gcv_values_
    if "loo_values_" not in attrs:
        raise ValueError("path: missing field(s) ['loo_values_'] in field 'attributes'")
    est.loo_values_ = _criterion_values(attrs["loo_values_"], "attributes.loo_values_", k, t)
    return est.loo_values_


def _restore_alpha_per_target(est, attrs: dict, alphas: np.ndarray) -> None:
    """alpha_per_target with several targets (dual_coef's columns): each target's alpha_
    among the candidates, gcv_values_ one row of the targets' GCV per candidate,
    best_score_ minus each target's GCV at its alpha_ (no gamma grid: alpha_per_target
    does not take gammas)."""
    t = est.dual_coef_.shape[1]
    chosen = _check_numbers(attrs["alpha_"], "attributes.alpha_", length=t)
    for i, alpha in enumerate(chosen):
        if not np.any(alphas == alpha):
            raise _field_error(f"attributes.alpha_[{i}]", f"is {alpha!r}, not one of params.alphas")
    est.alpha_ = np.asarray(chosen, dtype=np.float64)
    est.gcv_values_ = _criterion_values(
        attrs["gcv_values_"], "attributes.gcv_values_", len(alphas), t
    )
    est.dof_ = np.asarray(_check_numbers(attrs["dof_"], "attributes.dof_", length=len(alphas)))
    chosen_by = _restore_loo(est, attrs, len(alphas), t)
    best = attrs["best_score_"]
    if not isinstance(best, list) or len(best) != t:
        raise _field_error(
            "attributes.best_score_", f"must be a list of {t} scores, one per target"
        )
    scores = [
        -math.inf if v == "-inf" else _check_number(v, f"attributes.best_score_[{i}]")
        for i, v in enumerate(best)
    ]
    name = "GCV" if chosen_by is est.gcv_values_ else "leave-one-out error"
    for i, (alpha, score) in enumerate(zip(chosen, scores, strict=True)):
        index = int(np.flatnonzero(alphas == alpha)[0])
        if -score != chosen_by[index, i]:
            raise _field_error(f"attributes.best_score_[{i}]", f"is not minus alpha_'s {name}")
        if chosen_by is not est.gcv_values_:
            _check_loo_choice(chosen_by[:, i], alphas, index, f"attributes.alpha_[{i}]")
    est.best_score_ = np.asarray(scores, dtype=np.float64)
    for name in _GAMMA_GRID_ATTRIBUTES:
        if name in attrs:
            raise _field_error(f"attributes.{name}", "is stored with params.alpha_per_target")


def _restore_gamma_grid(est, attrs: dict, n_alphas: int) -> None:
    """gamma_ (the kernel's own gamma) and the criterion on the (gammas x alphas) grid:
    all three present exactly when params.gammas is set, gamma_ alone with
    params.gamma_search only. gamma_ is among params.gammas, and the grid's row at it is
    the model's path, unless the search moved it off the grid."""
    searched = getattr(est, "gamma_search", None) is not None
    expected = _GAMMA_GRID_ATTRIBUTES if est.gammas is not None else ("gamma_",) if searched else ()
    present = [name for name in _GAMMA_GRID_ATTRIBUTES if name in attrs]
    extra = [name for name in present if name not in expected]
    if extra:
        raise _field_error(
            f"attributes.{extra[0]}", "is stored without params.gammas or params.gamma_search"
        )
    if len(present) != len(expected):
        missing = sorted(set(expected) - set(present))
        raise ValueError(f"path: missing field(s) {missing} in field 'attributes'")
    if not expected:
        return
    gamma = _check_number(attrs["gamma_"], "attributes.gamma_", minimum=0)

    def check_kernel() -> None:
        if getattr(est.kernel_, "gamma", None) != gamma:
            raise _field_error("attributes.gamma_", "differs from attributes.kernel_'s gamma")
        est.gamma_ = gamma

    if est.gammas is None:
        check_kernel()
        return
    from .estimators.cv import _check_gammas

    gammas = est.gammas
    if isinstance(gammas, np.ndarray) and gammas.ndim == 1:
        gammas = gammas.tolist()
    if not isinstance(gammas, (list, tuple)):
        raise _field_error("params.gammas", "must be a non-empty list of numbers")
    try:
        gammas = _check_gammas(_check_numbers(list(gammas), "params.gammas")).tolist()
    except ValueError as exc:
        raise _field_error("params.gammas", str(exc).removeprefix("gammas: ")) from None
    if gamma not in gammas and not searched:
        raise _field_error("attributes.gamma_", f"is {gamma!r}, not one of params.gammas")
    check_kernel()
    grids = {}
    for name in ("gcv_grid_", "dof_grid_"):
        rows = attrs[name]
        field = f"attributes.{name}"
        if not isinstance(rows, list) or len(rows) != len(gammas):
            raise _field_error(field, f"must be a list of {len(gammas)} rows (one per gamma)")
        values = []
        for i, row in enumerate(rows):
            if name == "gcv_grid_" and isinstance(row, list):
                row = [math.inf if v == "inf" else v for v in row]
                _check_numbers([v for v in row if v != math.inf], f"{field}[{i}]")
                if len(row) != n_alphas:
                    raise _field_error(
                        f"{field}[{i}]", f"has {len(row)} values, expected {n_alphas}"
                    )
                values.append(row)
            else:
                values.append(_check_numbers(row, f"{field}[{i}]", length=n_alphas))
        grids[name] = np.asarray(values, dtype=np.float64)
    # Without the search, the chosen gamma's row is the path the model reports, and the
    # best score the grid's (the search only ever lowers it); where leave-one-out chose
    # alpha, best_score_ was checked against loo_values_, and gamma_ must be GCV's.
    by_gcv = not hasattr(est, "loo_values_")  # else best_score_ was checked against it
    if searched:
        if by_gcv and est.best_score_ < -float(np.min(grids["gcv_grid_"])):
            raise _field_error("attributes.best_score_", "is below the grid's best")
    else:
        row = gammas.index(gamma)
        if not (
            np.array_equal(grids["gcv_grid_"][row], est.gcv_values_)
            and np.array_equal(grids["dof_grid_"][row], est.dof_)
        ):
            raise _field_error("attributes.gcv_grid_", "differs from gcv_values_ / dof_ at gamma_")
        if by_gcv and est.best_score_ != -float(np.min(grids["gcv_grid_"])):
            raise _field_error("attributes.best_score_", "is not minus the lowest GCV on the grid")
        if not by_gcv and np.min(grids["gcv_grid_"][row]) != np.min(grids["gcv_grid_"]):
            raise _field_error(
                "attributes.gamma_", "is not the gamma of the lowest GCV on the grid"
            )
    est.gcv_grid_ = grids["gcv_grid_"]
    est.dof_grid_ = grids["dof_grid_"]


# Optional arrays tracing the centres to training examples (explain); absent from the
# files of earlier writers.
_CENTER_RECORDS = ("center_indices", "center_targets")


def _restore_center_records(est, arrays: dict, m: int, target_shape: tuple) -> dict:
    """``center_indices_`` and ``center_targets_`` from their optional arrays: distinct
    training rows, and the targets as fit recorded them (class codes into ``classes_``
    for a classifier, float64 values shaped as y for a regressor). Files of older writers
    have neither: explanations then count centres and show no labels."""
    records = {}
    if "center_indices" in arrays:
        indices = _check_array(
            arrays["center_indices"],
            "center_indices",
            dtypes=(np.dtype(np.int64),),
            shape=(m,),
            why=f"for {m} centres",
        )
        if (indices < 0).any() or len(np.unique(indices)) != m:
            raise _field_error("center_indices", "must hold distinct training rows (>= 0)")
        records["center_indices_"] = indices.astype(np.intp)
    if "center_targets" in arrays:
        if "center_indices" not in arrays:
            raise _field_error("center_targets", "needs 'center_indices' (the rows they are of)")
        classes = getattr(est, "classes_", None)
        if classes is None:
            records["center_targets_"] = _check_array(
                arrays["center_targets"],
                "center_targets",
                dtypes=(np.dtype(np.float64),),
                shape=target_shape,
                why=f"for {m} centres and dual_coef's columns",
            )
        else:
            codes = _check_array(
                arrays["center_targets"],
                "center_targets",
                dtypes=(np.dtype(np.int64),),
                shape=(m,),
                why=f"for {m} centres",
            )
            if ((codes < 0) | (codes >= len(classes))).any():
                raise _field_error(
                    "center_targets", f"must hold class codes in 0..{len(classes) - 1}"
                )
            records["center_targets_"] = classes[codes]
    return records


def _restore(meta: Any, arrays: dict):
    """The estimator that (metadata, arrays) describe, every field checked."""
    _check_keys(_check_dict(meta, _META), _META_FIELDS, _META_OPTIONAL, where="the metadata")
    classes = _estimator_classes()
    name = meta["estimator"]
    if not isinstance(name, str) or name not in classes:
        raise ValueError(f"path: unknown estimator {name!r} in the model file")
    est = _construct(classes[name], meta["params"])
    if _version_needed(est) > meta["format_version"]:
        raise _field_error(
            "params.gamma",
            f"is 'scale', a format version 2 value, in a version {meta['format_version']} file",
        )
    attrs = dict(_check_dict(meta["attributes"], "attributes"))
    if "classes_kind" not in attrs:
        raise ValueError("path: missing field(s) ['classes_kind'] in field 'attributes'")
    _restore_classes(
        est,
        arrays.pop("classes", None),
        attrs.pop("classes_kind"),
        _check_bool(attrs.pop("classes_object", False), "attributes.classes_object"),
    )
    names = arrays.pop("feature_names", None)
    table_arrays = {k: arrays.pop(k) for k in _TABLE_ARRAYS if k in arrays}
    if hasattr(est, "_restore_state"):  # path-kernel models check and rebuild themselves
        est._restore_state(arrays, attrs)
    else:
        _restore_kernel_machine(est, arrays, attrs)
    _restore_feature_names(est, names)
    _restore_table(est, meta, table_arrays)
    return est


def load(path: str | bytes | os.PathLike) -> Any:
    """Read a model written by ``save``; refuses files of another format or version.

    Raises FileNotFoundError when nothing is at ``path``, and ValueError, naming the
    problem, for anything else that is no valid model file: a directory, an empty,
    truncated or foreign file, a damaged or inconsistent one (wrong shapes or dtypes,
    non-finite values, missing or unknown fields). A file is either read whole or not at
    all. A model written by the command line's ``fit`` carries its ``table_recipe_``
    (:class:`TableRecipe`).

    Parameters
    ----------
    path : str, bytes or os.PathLike
        A file written by an estimator's ``save``.

    Returns
    -------
    estimator : estimator
        The fitted estimator, of the class that was saved, predicting as it did.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn.datasets import load_diabetes
    >>> import gramfree
    >>> X, y = load_diabetes(return_X_y=True)
    >>> model = gramfree.KernelRegressor(alpha=1e-2).fit(X, y)
    >>> path = os.path.join(tempfile.mkdtemp(), "model.gf")
    >>> model.save(path)
    >>> loaded = gramfree.load(path)
    >>> type(loaded).__name__, bool((loaded.predict(X) == model.predict(X)).all())
    ('KernelRegressor', True)
    """
    path = _as_path(path)
    arrays = _read_arrays(path)
    meta = _read_meta(arrays.pop(_META, None), path)
    est = _restore(meta, arrays)
    recipe = getattr(est, "table_recipe_", None)
    if recipe is not None and recipe.mean is not None:
        # A review found the trap: the model predicts on standardised features, and a
        # Python caller passing the table's raw columns got R^2 -0.12 where the command
        # line's predict (which applies the recipe) got 0.97, without a word.
        warnings.warn(
            f"{os.fspath(path)}: this model was fitted by `python -m gramfree fit` on "
            "standardised features; predict on model.table_recipe_.transform(X), as the "
            "command line's predict does (raw features give other predictions)",
            StandardisedFeaturesWarning,
            stacklevel=2,
        )
    return est


class StandardisedFeaturesWarning(UserWarning):
    """A model loaded in Python expects features standardised by its ``table_recipe_``."""
