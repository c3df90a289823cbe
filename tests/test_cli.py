"""The command line: fit on a CSV / NPY file, save, predict from the saved model."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge


def run(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "gramfree", *args], cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )


@pytest.fixture
def regression_csv(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = np.sin(X[:, 0]) + X[:, 1]
    path = tmp_path / "reg.csv"
    with open(path, "w") as fh:
        fh.write("a,target,b,c\n")
        for row, t in zip(X, y):
            fh.write(f"{float(row[0])!r},{float(t)!r},{float(row[1])!r},{float(row[2])!r}\n")
    return path, X, y


def test_fit_csv_by_name_then_predict_matches_kernel_ridge(regression_csv, tmp_path):
    path, X, y = regression_csv
    r = run("fit", str(path), "--target", "target", "--gamma", "0.5", "--alpha", "0.01",
            "-o", "m.gfm", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "KernelRegressor" in r.stdout and (tmp_path / "m.gfm").exists()
    r = run("predict", "m.gfm", str(path), "--header", "--target", "target", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    pred = np.array([float(v) for v in r.stdout.split()])
    ref = KernelRidge(kernel="rbf", gamma=0.5, alpha=0.01).fit(X, y).predict(X)
    np.testing.assert_allclose(pred, ref, rtol=1e-6, atol=1e-9)


def test_fit_npy_classification_by_index(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    labels = (X[:, 0] > 0).astype(float)
    np.save(tmp_path / "cls.npy", np.column_stack([labels, X]))
    r = run("fit", "cls.npy", "--target", "0", "-o", "c.gfm", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "KernelClassifier" in r.stdout


def test_fit_help_documents_target_and_output(tmp_path):
    r = run("fit", "--help", cwd=tmp_path)
    assert r.returncode == 0
    assert "--target" in r.stdout and "--output" in r.stdout


def test_bad_target_is_a_clean_error(regression_csv, tmp_path):
    path, _, _ = regression_csv
    r = run("fit", str(path), "--target", "nope", cwd=tmp_path)
    assert r.returncode != 0 and "--target" in r.stderr
    assert "Traceback" not in r.stderr


def test_demo_reproduces_the_network_and_draws_its_explanation(tmp_path):
    """The README's first command: kernel machines beside SVC, and a network trained by
    gradient descent shown equal to its path-kernel machine, with the image of its evidence."""
    png = tmp_path / "explain.png"
    proc = run("demo", "--plot", str(png), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "demo OK" in proc.stdout
    assert "[path kernel]" in proc.stdout and "supporting:" in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
