"""Real datasets that load offline: scikit-learn's bundled digits, and Fashion-MNIST from
the Debian package ``dataset-fashion-mnist`` (``apt-get install dataset-fashion-mnist``)."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

# Searched after the directory GRAMFREE_FASHION_MNIST names, which is read at each call
# (read once at import, setting it later did nothing, while the error said to set it).
FASHION_MNIST_DIRS = ("/usr/share/datasets/fashion-mnist",)


def load_digits_split(test_size: float = 0.25, random_state: int = 0):
    """scikit-learn's 8x8 digits (1797 x 64), pixels scaled to [0, 1], stratified split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    return train_test_split(X, y, test_size=test_size, random_state=random_state, stratify=y)


def find_fashion_mnist() -> Path | None:
    """The directory holding Fashion-MNIST: ``GRAMFREE_FASHION_MNIST`` where it is set
    (that one only: a wrong one is said, not passed over for another), else the Debian
    package's; None where it is not there."""
    named = os.environ.get("GRAMFREE_FASHION_MNIST", "")
    for d in (named,) if named else FASHION_MNIST_DIRS:
        if (Path(d) / "train-images-idx3-ubyte.gz").exists():
            return Path(d)
    return None


def _read_idx(path: Path, shape_tail: tuple[int, ...]) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped) whose items have shape ``shape_tail``:
    ValueError naming the file where it is not one (a damaged or foreign file loaded in
    silence or failed as a bare reshape error; a review)."""
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{os.fspath(path)}: not a readable gzip file ({exc})") from None
    ndim = data[3] if len(data) >= 4 else 0
    if len(data) < 4 + 4 * ndim or data[:3] != b"\x00\x00\x08" or ndim != 1 + len(shape_tail):
        raise ValueError(
            f"{os.fspath(path)}: not an IDX file of unsigned bytes with "
            f"{1 + len(shape_tail)} dimensions"
        )
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape[1:] != shape_tail or len(data) - (4 + 4 * ndim) != int(np.prod(shape)):
        raise ValueError(
            f"{os.fspath(path)}: holds shape {shape} in {len(data) - 4 - 4 * ndim} bytes; "
            f"expected items of shape {shape_tail} and one byte per value"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(directory: str | os.PathLike | None = None):
    """Fashion-MNIST as ``(X_train, y_train, X_test, y_test)``: 60000 and 10000 images of
    784 pixels scaled to [0, 1] (float32), labels 0..9."""
    if directory is not None:
        d: Path | None = Path(directory)
        if not (Path(directory) / "train-images-idx3-ubyte.gz").exists():
            raise FileNotFoundError(
                f"directory: no Fashion-MNIST in {os.fspath(directory)!r} (expected "
                "train-images-idx3-ubyte.gz and the other three files there)"
            )
    else:
        d = find_fashion_mnist()
    if d is None and os.environ.get("GRAMFREE_FASHION_MNIST"):
        raise FileNotFoundError(
            f"GRAMFREE_FASHION_MNIST={os.environ['GRAMFREE_FASHION_MNIST']!r}: no "
            "Fashion-MNIST there (expected train-images-idx3-ubyte.gz and the other three "
            "files)"
        )
    if d is None:
        raise FileNotFoundError(
            "Fashion-MNIST not found; install Debian's dataset-fashion-mnist "
            "(apt-get install dataset-fashion-mnist) or set GRAMFREE_FASHION_MNIST"
        )
    X_train = _read_idx(d / "train-images-idx3-ubyte.gz", (28, 28)).reshape(-1, 784)
    y_train = _read_idx(d / "train-labels-idx1-ubyte.gz", ())
    X_test = _read_idx(d / "t10k-images-idx3-ubyte.gz", (28, 28)).reshape(-1, 784)
    y_test = _read_idx(d / "t10k-labels-idx1-ubyte.gz", ())
    for split, X, y in (("train", X_train, y_train), ("t10k", X_test, y_test)):
        if len(X) != len(y):
            raise ValueError(f"{os.fspath(d)}: {len(X)} {split} images but {len(y)} {split} labels")
    scale = np.float32(1.0 / 255.0)
    return (
        X_train.astype(np.float32) * scale,
        y_train.astype(np.int64),
        X_test.astype(np.float32) * scale,
        y_test.astype(np.int64),
    )
