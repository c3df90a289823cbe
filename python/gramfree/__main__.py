"""Command line: ``python -m gramfree demo | fit | predict | info``."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _load_table(path: str, target: str | None, has_header: bool | None):
    """X, y, feature names from a .npy (2-d, target by index) or .csv file."""
    if path.endswith(".npy"):
        data = np.load(path, allow_pickle=False)
        if data.ndim != 2:
            raise SystemExit(f"error: {path}: expected a 2-d array, got shape {data.shape}")
        names = [str(i) for i in range(data.shape[1])]
    else:
        with open(path) as fh:
            first = fh.readline()
        cells = [c.strip() for c in first.split(",")]
        header = has_header
        if header is None:
            try:
                [float(c) for c in cells]
                header = False
            except ValueError:
                header = True
        names = cells if header else [str(i) for i in range(len(cells))]
        data = np.loadtxt(path, delimiter=",", skiprows=1 if header else 0, ndmin=2, dtype=str)
    if target is None:
        col = data.shape[1] - 1
    elif target in names:
        col = names.index(target)
    else:
        try:
            col = int(target)
        except ValueError:
            raise SystemExit(f"error: --target {target!r} is neither a column name nor an index")
        if not -data.shape[1] <= col < data.shape[1]:
            raise SystemExit(f"error: --target {col} out of range for {data.shape[1]} columns")
        col %= data.shape[1]
    try:
        X = np.delete(data, col, axis=1).astype(np.float64)
    except ValueError as exc:
        raise SystemExit(f"error: {path}: a feature column is not numeric ({exc})") from None
    y = data[:, col]
    return X, y, names


def _fit(args: argparse.Namespace) -> int:
    import gramfree

    X, y, _ = _load_table(args.data, args.target, args.header)
    task = args.task
    if task == "auto":
        try:
            yf = y.astype(np.float64)
            task = "classification" if np.all(yf == np.round(yf)) and len(np.unique(yf)) <= 20 else "regression"
        except ValueError:
            task = "classification"
    params = dict(kernel=args.kernel, gamma=args.gamma, alpha=args.alpha, solver=args.solver,
                  n_centers=args.n_centers, max_iter=args.max_iter, tol=args.tol,
                  random_state=args.random_state, verbose=args.verbose)
    if task == "regression":
        model = gramfree.KernelRegressor(**params)
        y = y.astype(np.float64)
    else:
        model = gramfree.KernelClassifier(**params)
        try:
            y = y.astype(np.int64) if np.all(y.astype(np.float64) % 1 == 0) else y
        except ValueError:
            pass
    t0 = time.perf_counter()
    model.fit(X, y)
    print(f"fitted {type(model).__name__} on {X.shape[0]} x {X.shape[1]} ({task}, solver="
          f"{model.solver_}, {model.n_centers_} centres) in {time.perf_counter() - t0:.2f} s; "
          f"training score {model.score(X, y):.4f}")
    model.save(args.output)
    print(f"saved {args.output}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import gramfree

    model = gramfree.load(args.model)
    if args.target is not None:
        X, _, _ = _load_table(args.data, args.target, args.header or None)
    elif args.data.endswith(".npy"):
        X = np.load(args.data, allow_pickle=False)
    else:
        X = np.loadtxt(args.data, delimiter=",", ndmin=2, skiprows=1 if args.header else 0)
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise SystemExit(
            f"error: {args.data} has {X.shape[-1]} feature columns, the model expects "
            f"{model.n_features_in_} (drop the target with --target NAME_OR_INDEX)"
        )
    for value in model.predict(X):
        print(value if np.ndim(value) == 0 else " ".join(map(str, value)))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from ._demo import run

    return run(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gramfree", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="fit, predict and explain on a real bundled dataset (digits)")
    p.add_argument("--plot", metavar="PNG", nargs="?", const="gramfree_explain.png", default=None,
                   help="also draw the explained test image and its training images (needs "
                        "matplotlib, the 'plot' extra); default file gramfree_explain.png")
    p.set_defaults(func=_demo)

    p = sub.add_parser(
        "fit",
        help="fit a kernel machine on a CSV or NPY file and save the model",
        description="Fit a KernelRegressor or KernelClassifier on a table. CSV files may have "
        "a header row (detected, or force with --header/--no-header); .npy files hold a 2-d "
        "array. The target column is given by name or index (default: the last column); "
        "all other columns are features. The model is written with gramfree's portable "
        "format (load it with gramfree.load or `python -m gramfree predict`).",
    )
    p.add_argument("data", help="a .csv or .npy file")
    p.add_argument("--target", help="target column: name (CSV header) or index; default last")
    p.add_argument("--header", dest="header", action="store_true", default=None)
    p.add_argument("--no-header", dest="header", action="store_false")
    p.add_argument("--task", choices=["auto", "regression", "classification"], default="auto")
    p.add_argument("--kernel", default="rbf")
    p.add_argument("--gamma", type=float, default=None)
    p.add_argument("--alpha", type=float, default=1.0)
    p.add_argument("--solver", default="auto", choices=["auto", "direct", "nystrom-pcg", "nystrom-direct", "eigenpro"])
    p.add_argument("--n-centers", type=int, default=None)
    p.add_argument("--max-iter", type=int, default=None)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--random-state", type=int, default=0)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("-o", "--output", default="model.gfm", help="model file (default model.gfm)")
    p.set_defaults(func=_fit)

    p = sub.add_parser("predict", help="predict with a saved model; one line per row")
    p.add_argument("model")
    p.add_argument("data", help="a .csv (features only) or .npy file")
    p.add_argument("--header", action="store_true", help="the CSV has a header row")
    p.add_argument("--target", help="a target column to drop first: name or index")
    p.set_defaults(func=_predict)

    p = sub.add_parser("info", help="show the build and run-time configuration")
    p.set_defaults(func=lambda a: (__import__("gramfree").show_config(), 0)[1])

    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
