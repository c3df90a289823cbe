"""Command line: ``python -m gramfree demo | fit | predict | calibrate | info``."""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Iterable

import numpy as np

from ._cli_table import (
    MAX_AUTO_CLASSES,
    TableError,
    column_index,
    model_columns,
    open_table,
    read_columns,
    task_and_target,
)

# Up to this many rows fit reports a 5-fold cross-validated score (five fits on 80% of the
# rows: about 2.6 fits' time with the direct solver's cubic cost); above, a score on a
# held-out 20% (one fit on 80%, about half a fit's time).
CV_MAX_ROWS = 2000
# What a user's data, options or files can raise: the package's and scikit-learn's
# argument checks (ValueError; InvalidParameterError and NotFittedError are ValueErrors),
# TableError (a ValueError) and the file system's OSError. TypeError and the rest stay
# tracebacks: they are bugs to report, not input to correct.
_USER_ERRORS = (ValueError, OSError)
# predict writes its lines in blocks: a reader that stops early (`| head`) stops it soon.
_LINES_PER_WRITE = 4096


def _validation(
    model, X: np.ndarray, y: np.ndarray, task: str, scale: bool, how: str, random_state: int | None
) -> str:
    """A score on rows the model was not fitted on: 5-fold cross-validation, or a random
    20% held out. The standardisation is refitted inside each split (a Pipeline), as fit
    did on all rows."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score, train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(y)
    if how == "auto":
        how = "cv" if n <= CV_MAX_ROWS else "holdout"
    metric = "accuracy" if task == "classification" else "R^2"
    estimator = make_pipeline(StandardScaler(), clone(model)) if scale else clone(model)
    smallest_class = np.unique(y, return_counts=True)[1].min() if task == "classification" else 0
    if how == "cv":
        if n < 10:
            return f"too few rows ({n}) to cross-validate"
        if smallest_class >= 5:
            folds = StratifiedKFold(5, shuffle=True, random_state=random_state)
        else:
            folds = KFold(5, shuffle=True, random_state=random_state)
        scores = cross_val_score(estimator, X, y, cv=folds, error_score="raise")
        return f"5-fold cross-validated {metric} {scores.mean():.4f} (+/- {scores.std():.4f})"
    stratify = y if smallest_class >= 2 else None
    X_fit, X_out, y_fit, y_out = train_test_split(
        X, y, test_size=0.2, random_state=random_state, stratify=stratify
    )
    score = estimator.fit(X_fit, y_fit).score(X_out, y_out)
    return (
        f"held-out {metric} {score:.4f} (fitted on a random 80% of the rows, scored on "
        f"the other {len(y_out)})"
    )


def _lonely_first_label(table, header, task: str, y: np.ndarray) -> str | None:
    """A note where line 1 may be a header read as data: its class appears nowhere else
    while every other class appears at least twice. Numeric column names above a column
    of class names look like data ("400,500,600,700,species"), and the fit had a class
    "species" and standardised the numbers 400-700 with the data (a review)."""
    if table.header or header is not None or task != "classification" or len(y) < 10:
        return None
    _, first, counts = np.unique(y, return_index=True, return_counts=True)
    alone = counts == 1
    if not (alone.sum() == 1 and first[alone][0] == 0):
        return None
    return (
        f"line 1 was read as data, and its class {str(y[0])!r} appears on no other line: "
        "if line 1 names the columns, fit again with --header"
    )


def _fit(args: argparse.Namespace) -> int:
    import gramfree
    from gramfree.io import TableRecipe

    _check_output(args.output, data=args.data)  # before the fit, not after it
    table = open_table(args.data, args.header)
    target = column_index(table, args.target)
    features = [j for j in range(table.n_columns) if j != target]
    if not features:
        # Only commas separate a CSV's columns here: a table of semicolons or tabs reads
        # as one column, which said nothing of why (a review).
        other = "" if table.array is not None else _other_separator(table.path)
        raise TableError(f"{table.path} has a single column: no features beside the target{other}")
    X, y = read_columns(table, features, target)
    if y is None or target is None:  # column_index found a target column, or raised
        raise TableError(f"{table.path}: no target column to fit")
    task, y = task_and_target(args.task, y, table, target)
    print(
        f"read {table.path}: {X.shape[0]} rows, {X.shape[1]} feature columns, target column "
        f"{table.column(target)} ({'a header row' if table.header else 'no header row'})"
    )
    if table.guessed:
        print(f"note: {table.guessed}")
    lonely = _lonely_first_label(table, args.header, task, y)
    if lonely:
        print(f"note: {lonely}")
    cls = gramfree.KernelRegressor if task == "regression" else gramfree.KernelClassifier
    model = cls(
        kernel=args.kernel,
        gamma=args.gamma,
        alpha=args.alpha,
        solver=args.solver,
        n_centers=args.n_centers,
        max_iter=args.max_iter,
        tol=args.tol,
        random_state=args.random_state,
        verbose=args.verbose,
    )
    mean = scale = None
    X_seen = X
    if args.scale:
        from sklearn.preprocessing import StandardScaler

        with warnings.catch_warnings():  # an overflow is refused below, naming the column
            warnings.simplefilter("ignore", RuntimeWarning)
            scaler = StandardScaler().fit(X)  # a constant column gets scale 1, not 0
        mean, scale = scaler.mean_, scaler.scale_
        X_seen = _standardised(X, mean, scale, table)
    t0 = time.perf_counter()
    model.fit(X_seen, y)
    fitted = time.perf_counter() - t0
    model.table_recipe_ = TableRecipe(table.header, table.names, target, mean, scale)
    # Saved before anything is printed: a closed stdout (`fit ... | head`) must not cost
    # the model (a review: BrokenPipeError at the second line, and no file).
    try:
        model.save(args.output)
    except OSError as exc:  # named the temporary file beside it, not --output (a review)
        raise ValueError(f"--output {args.output!r}: cannot write there ({exc.strerror})") from None
    how = "standardised features" if args.scale else "features as read (--no-scale)"
    print(
        f"fitted {type(model).__name__} on {X.shape[0]} x {X.shape[1]} ({task}, {how}, "
        f"solver={model.solver_}, {model.n_centers_} centres) in {fitted:.2f} s"
    )
    metric = "accuracy" if task == "classification" else "R^2"
    report = f"training {metric} {model.score(X_seen, y):.4f}"
    if args.validation != "none":
        t0 = time.perf_counter()
        try:
            checked = _validation(model, X, y, task, args.scale, args.validation, args.random_state)
        except ValueError as exc:  # a split the full fit did not meet (a class too rare)
            checked = f"not validated ({exc})"
        report += f"; {checked} in {time.perf_counter() - t0:.2f} s"
    print(report)
    print(f"saved {args.output}")
    return 0


def _other_separator(path: str) -> str:
    """A note for a CSV read as one column whose first line holds ';' or a tab."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            line = fh.readline()
    except OSError:
        return ""
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if sep in line:
            return f" (its lines hold {name}: only commas separate columns here)"
    return ""


def _standardised(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, table) -> np.ndarray:
    """``(X - mean) / scale``, refusing a column whose standardisation is not finite (a
    value of 1e308 overflowed the variance, and the fit said 'Input X contains NaN' of a
    file without any; a review)."""
    with np.errstate(over="ignore", invalid="ignore"):
        Z = (X - mean) / scale
    bad = ~np.isfinite(mean) | ~np.isfinite(scale) | ~np.isfinite(Z).all(axis=0)
    if bad.any():
        j = int(np.argmax(bad))
        top = float(np.max(np.abs(X[:, j])))
        raise TableError(
            f"{table.path}: feature column {j + 1} (counted from 1, values up to {top:.3g}) "
            "overflows when standardised; rescale it, or fit with --no-scale"
        )
    return Z


def _check_output(path: str, *, data: str | None = None) -> None:
    if not path.strip():  # else the fit ran, and the save failed on a temporary file's name
        raise ValueError("--output: empty; give a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise ValueError(f"--output {path!r} is a directory; give a file name")
    if not os.path.isdir(directory):
        raise ValueError(f"--output {path!r}: no directory {directory!r} to write it in")
    # A device, pipe or socket there would be replaced by the model file (`-o /dev/null`
    # run as root replaced the system's /dev/null; a review).
    if os.path.exists(path) and not os.path.isfile(path):
        raise ValueError(
            f"--output {path!r} exists and is not a regular file (a device, pipe or "
            "socket): the model would replace it; give a file name"
        )
    if not os.access(directory, os.W_OK):
        raise ValueError(f"--output {path!r}: the directory {directory!r} is not writable")
    # The model in place of the data it was fitted on: `fit d.csv -o d.csv` replaced the
    # table with the model file, and ./d.csv beside d.csv (or a link) is the same file too
    # (a review).
    if data is not None and os.path.exists(path) and os.path.exists(data):
        if os.path.samefile(path, data):
            raise ValueError(
                f"--output {path!r} is the data file {data!r}: the model would replace it; "
                "give another file name"
            )


def _predict(args: argparse.Namespace) -> int:
    import gramfree

    with warnings.catch_warnings():  # the recipe is applied below
        warnings.simplefilter("ignore", gramfree.io.StandardisedFeaturesWarning)
        try:
            model = gramfree.load(args.model)
        except ValueError as exc:  # load names its parameter, path: here it is the model
            text = str(exc)
            raise ValueError(
                "model: " + (text[len("path: ") :] if text.startswith("path: ") else text)
            ) from None
    recipe = getattr(model, "table_recipe_", None)
    # A first line that is the training table's header (all its columns, or its features)
    # is a header here whatever it looks like (pandas' 0, 1, 2 were read as a row, and the
    # predictions lost their alignment with the rows; a review).
    known = [recipe.columns, recipe.features] if recipe is not None and recipe.header else []
    if recipe is None and hasattr(model, "feature_names_in_"):
        known = [[str(f) for f in model.feature_names_in_]]
    table = open_table(args.data, args.header, known)
    if table.guessed:
        print(f"note: {table.guessed}", file=sys.stderr)
    features = target = target_name = None
    if recipe is not None:
        target = recipe.target
        if recipe.header:
            features, target_name = recipe.features, recipe.target_name
    elif hasattr(model, "feature_names_in_"):  # fitted in Python on a DataFrame
        features = [str(f) for f in model.feature_names_in_]
    if args.target is not None:  # the user names the column to leave out
        target = column_index(table, args.target)
        target_name = table.names[target] if table.header else None
        if features is not None and target_name in features:
            # It would be read as the feature it is, the option dropped in silence.
            raise TableError(
                f"--target {args.target!r} is one of the model's features; name the column "
                "to leave out, or none"
            )
    columns = model_columns(
        table, model.n_features_in_, features=features, target=target, target_name=target_name
    )
    X, _ = read_columns(table, columns)
    if recipe is not None:
        X = recipe.transform(X)
    with warnings.catch_warnings():
        # the columns were matched by name above; the array has none left to check
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        predictions = np.asarray(model.predict(X))
    for start in range(0, len(predictions), _LINES_PER_WRITE):
        chunk = predictions[start : start + _LINES_PER_WRITE]
        lines: Iterable[str] = (
            map(str, chunk) if chunk.ndim == 1 else (" ".join(map(str, row)) for row in chunk)
        )
        sys.stdout.write("".join(f"{line}\n" for line in lines))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run

    return run(args)


def _calibrate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .solvers.rates import DEFAULT_RATES, calibrate, check_output_path, rates_path

    output = None if args.output is None else Path(args.output).expanduser()
    if output is not None:
        check_output_path(output)  # before the minute of measurement, not after it
    rates = calibrate(args.quick, save_to=output)
    print(f"{'rate':<16} {'measured':>10} {'built-in':>10}")
    for key, value in rates.items():
        print(f"{key:<16} {value:>10.3g} {DEFAULT_RATES[key]:>10.3g}")
    where = output or rates_path()
    print(f"saved to {where}")
    return 0


def _add_header_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--header",
        dest="header",
        action="store_true",
        default=None,
        help="the CSV's first line is a header (default: detected)",
    )
    p.add_argument(
        "--no-header", dest="header", action="store_false", help="the CSV's first line is data"
    )


class _Once(argparse.Action):
    """An option given at most once: a second --target kept the last and fitted the first
    as a feature, in silence (a review); one target column per fit."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice: one target column per fit")
        setattr(namespace, self.dest, values)


def _gamma_arg(text: str) -> float | str:
    if text == "scale":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a number or 'scale', got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gramfree", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit, predict and explain on a real bundled dataset (digits)")
    p.add_argument(
        "--plot",
        metavar="PNG",
        nargs="?",
        const="gramfree_explain.png",
        default=None,
        help="also draw the explained test image and its training images (needs "
        "matplotlib, the 'plot' extra); default file gramfree_explain.png",
    )
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "fit",
        help="fit a kernel machine on a CSV or NPY file and save the model",
        description="Fit a KernelRegressor or KernelClassifier on a table. CSV files may have "
        "a header row (detected: a first line with text above a number, or pandas' names "
        "0, 1, ..., k - 1 of 4 or more columns; or force it with --header / "
        "--no-header); .npy files hold a 2-d array. The target column is given by name or "
        "index (default: the last column); all other columns are features, standardised "
        "(mean 0, variance 1) unless --no-scale. Beside the training score, a score on rows "
        f"left out of the fit: 5-fold cross-validation up to {CV_MAX_ROWS} rows, else a "
        "random 20% held out (--validation). The model file (gramfree's portable format: "
        "gramfree.load or `python -m gramfree predict`) records how the table was read and "
        "scaled, so predict reads a table the same way.",
    )
    p.add_argument("data", help="a .csv or .npy file")
    p.add_argument(
        "--target",
        action=_Once,
        help="target column: name (CSV header) or index; default last",
    )
    _add_header_options(p)
    p.add_argument(
        "--task",
        choices=["auto", "regression", "classification"],
        default="auto",
        help=f"default: classification for text or integer targets with at most "
        f"{MAX_AUTO_CLASSES} distinct values, else regression; class labels are kept as "
        "written (02139 stays 02139)",
    )
    p.add_argument(
        "--scale",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="standardise the features (default); --no-scale uses them as read",
    )
    p.add_argument(
        "--validation",
        choices=["auto", "cv", "holdout", "none"],
        default="auto",
        help=f"score on left-out rows: 5-fold cv (auto: up to {CV_MAX_ROWS} rows), "
        "a 20%% holdout (auto: above), or none",
    )
    p.add_argument("--kernel", default="rbf")
    p.add_argument(
        "--gamma",
        type=_gamma_arg,
        default=None,
        help="the kernel's gamma: a number, or 'scale' (1 / (n_features * X.var()), "
        "after --scale); default 1 / n_features",
    )
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument(
        "--solver",
        default="auto",
        choices=["auto", "direct", "nystrom-pcg", "nystrom-direct", "eigenpro", "pcg"],
    )
    p.add_argument("--n-centers", type=int, default=None)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("-o", "--output", default="model.gfm", help="model file (default model.gfm)")
    p.set_defaults(func=_fit)

    p = sub.add_parser(
        "predict",
        help="predict with a saved model; one line per row",
        description="Predict with a saved model, one line per row of the table. A model saved "
        "by `fit` reads the table as fit read its own: columns matched by name when both "
        "have a header (in any order; the target column, if there, is left out), else by "
        "position; the features scaled as in fit.",
    )
    p.add_argument("model")
    p.add_argument("data", help="a .csv or .npy file")
    _add_header_options(p)
    p.add_argument(
        "--target",
        action=_Once,
        help="a column to leave out: name or index (default: the "
        "target column fit recorded, if the table has it)",
    )
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "calibrate",
        help="measure this machine's rates for solver='auto''s cost model and save them",
        description="Measure the four rates solver='auto' turns flop counts into seconds "
        "with (gramfree.solvers.rates) and save them where every later fit on this machine "
        "finds them ($GRAMFREE_RATES, else ~/.cache/gramfree/rates.json).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller measurements, less representative of large fits",
    )
    p.add_argument("--output", help="the file to write (default: where fits look for it)")
    p.set_defaults(func=_calibrate)

    p = sub.add_parser("info", help="show the build and run-time configuration")
    p.set_defaults(func=lambda a: (__import__("gramfree").show_config(), 0)[1])
    return parser


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _quiet_stdout() -> None:
    """After a closed pipe (`... | head`): point stdout at devnull so that the
    interpreter's last flush does not fail again (the Python docs' recipe, signal module,
    "Note on SIGPIPE")."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # not a real file (captured in tests)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status. A mistake in the data, the options
    or the files is one ``error: ...`` line on stderr and status 1 (argparse's own usage
    errors: status 2)."""
    args = _parser().parse_args(argv)
    if sys.stdout is None:  # descriptor 1 closed (`>&-`): Python then has no stdout
        if args.func is _predict:  # its output is the point (it was a traceback; a review)
            print(
                "error: standard output is closed: nowhere to write the predictions",
                file=sys.stderr,
            )
            return 1
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of the process
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
    except BrokenPipeError:
        _quiet_stdout()
        return 1
    except _USER_ERRORS as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
