"""The cost model's machine rates: measured, saved, found again by later fits, and what
decides a choice (gramfree.solvers.rates)."""

from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np
import pytest

from gramfree import KernelRegressor
from gramfree.__main__ import main
from gramfree.solvers import rates
from gramfree.solvers.auto import CostModel

# calibrate warns when the cores are shared, which a test run's neighbours may cause.
pytestmark = pytest.mark.filterwarnings("ignore:gramfree.calibrate:RuntimeWarning")


@pytest.fixture
def rates_file(tmp_path, monkeypatch):
    """A rates path of the test's own (conftest points every test at a missing file)."""
    path = tmp_path / "rates.json"
    monkeypatch.setenv("GRAMFREE_RATES", str(path))
    monkeypatch.setitem(rates.SIZES, "quick", (600, 400, 200))  # a fraction of a second
    return path


def _some_rates(scale: float = 1.0) -> dict:
    return {k: v * scale for k, v in rates.DEFAULT_RATES.items()}


def test_the_suite_runs_on_the_built_in_rates():
    # conftest.py: a developer's calibration must not change the suite's choices.
    assert rates.current() == (rates.DEFAULT_RATES, rates.DEFAULT_SOURCE)


def test_calibrate_measures_every_rate_and_saves_them_for_later_fits(rates_file):
    measured = rates.calibrate(quick=True)
    assert set(measured) == set(rates.DEFAULT_RATES)
    assert all(math.isfinite(v) and v > 0 for v in measured.values())
    record = json.loads(rates_file.read_text())
    assert record["rates"] == measured
    assert record["machine"] == rates.machine()
    found, source = rates.current()
    assert found == measured
    assert source.startswith("measured ") and str(rates_file) in source


def test_calibrate_without_write_leaves_no_file(rates_file):
    rates.calibrate(quick=True, write=False)
    assert not rates_file.exists()
    assert rates.current()[0] == rates.DEFAULT_RATES


def test_a_new_calibration_replaces_the_rates_a_process_has_read(rates_file):
    rates.save(_some_rates(1.0))
    assert rates.current()[0] == _some_rates(1.0)
    rates.save(_some_rates(3.0))
    assert rates.current()[0] == _some_rates(3.0)


def test_rates_of_another_machine_are_not_used(rates_file):
    rates.save(_some_rates(2.0))
    record = json.loads(rates_file.read_text())
    record["machine"]["cpu"] = "some other CPU"
    rates_file.write_text(json.dumps(record))
    found, source = rates.current()
    assert found == rates.DEFAULT_RATES
    assert "another machine" in source and str(rates_file) in source


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        json.dumps({"format": 1, "rates": {"dense": 1.0}}),  # keys missing
        json.dumps({"format": 1, "rates": dict(_some_rates(), syrk=-1.0)}),
        json.dumps({"format": 1, "rates": dict(_some_rates(), syrk="fast")}),
        json.dumps({"format": 99, "rates": _some_rates()}),
        json.dumps([1, 2]),
        # a review: an integer beyond float64 raised OverflowError out of every auto fit,
        # JSON nested too deep RecursionError; true was read as 1 flop/s
        '{"format": 1, "rates": {"dense": 1' + "0" * 400 + "}}",
        "[" * 100_000,
        json.dumps({"format": 1, "rates": dict(_some_rates(), dense=True)}),
    ],
    ids=["not-json", "keys", "negative", "text", "format", "list", "huge", "deep", "bool"],
)
def test_an_unreadable_rates_file_warns_and_the_built_in_rates_are_used(rates_file, content):
    rates_file.write_text(content)
    with pytest.warns(RuntimeWarning, match="rates file .* is ignored"):
        found, source = rates.current()
    assert found == rates.DEFAULT_RATES
    assert "unreadable" in source
    # A fit still runs, on the built-in rates, and says so.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model = KernelRegressor(solver="auto", n_centers=20).fit(X, X[:, 0])
    assert "unreadable" in model.solver_info_["auto"]["rates"]


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"dense": 1.0}, "expected the rates"),
        (dict(_some_rates(), dense=0.0), "rate 'dense' must be a positive number"),
        (dict(_some_rates(), engine_float32=math.nan), "rate 'engine_float32'"),
        (dict(_some_rates(), syrk=None), "rate 'syrk'"),
        (dict(_some_rates(), syrk=True), "rate 'syrk'"),
        (dict(_some_rates(), syrk=10**400), "rate 'syrk' .* 401 digits"),
    ],
)
def test_save_refuses_rates_that_are_not_positive_numbers(rates_file, bad, match):
    with pytest.raises(ValueError, match=match):
        rates.save(bad)
    assert not rates_file.exists()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_estimate_is_inversely_proportional_to_the_rates(dtype):
    # Each estimate is a sum of flop counts over rates: doubling every rate halves it
    # exactly, and the memory estimates do not depend on the rates.
    slow = CostModel(20000, 16, 3, np.dtype(dtype), _some_rates(1.0))
    fast = CostModel(20000, 16, 3, np.dtype(dtype), _some_rates(2.0))
    pairs = [
        (slow.direct(), fast.direct()),
        (slow.nystrom(1500), fast.nystrom(1500)),
        (slow.nystrom_direct(1500), fast.nystrom_direct(1500)),
        (slow.pcg(), fast.pcg()),
        (
            CostModel(90000, 16, 3, np.dtype(dtype), _some_rates(1.0)).pcg(),
            CostModel(90000, 16, 3, np.dtype(dtype), _some_rates(2.0)).pcg(),
        ),
    ]
    for (s_seconds, s_bytes), (f_seconds, f_bytes) in pairs:
        assert s_seconds == pytest.approx(2.0 * f_seconds, rel=1e-12)
        assert s_bytes == f_bytes


@pytest.mark.filterwarnings("ignore:nystrom-pcg reached max_iter")
def test_the_saved_rates_decide_the_choice(rates_file):
    # With M centres given, auto picks the Nystrom solver its rates make cheaper: the
    # one-pass solver at the built-in rates, PCG when this machine's Gram update (syrk)
    # is measured a thousand times slower.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 4))
    y = np.sin(X[:, 0])
    params = dict(solver="auto", n_centers=300, gamma=0.5, alpha=1e-3, random_state=0)
    builtin = KernelRegressor(**params).fit(X, y)
    assert builtin.solver_ == "nystrom-direct"
    assert builtin.solver_info_["auto"]["rates"] == rates.DEFAULT_SOURCE
    rates.save(dict(_some_rates(), syrk=rates.DEFAULT_RATES["syrk"] / 1000))
    slow_syrk = KernelRegressor(**params).fit(X, y)
    assert slow_syrk.solver_ == "nystrom-pcg"
    assert slow_syrk.solver_info_["auto"]["rates"].startswith("measured ")


def test_verbose_says_which_rates_a_fit_used(rates_file, caplog):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3))
    rates.save(_some_rates(1.5))
    with caplog.at_level("INFO", logger="gramfree"):
        KernelRegressor(solver="auto", n_centers=50, verbose=1).fit(X, X[:, 1])
    assert any("rates: measured" in r.getMessage() for r in caplog.records)


def test_calibrate_command_writes_the_file_fits_then_use(rates_file, tmp_path, capsys, monkeypatch):
    out = tmp_path / "elsewhere" / "r.json"
    assert main(["calibrate", "--quick", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"saved to {out}" in printed and "engine_float64" in printed
    assert not rates_file.exists()  # written where asked, not at the default path
    monkeypatch.setenv("GRAMFREE_RATES", str(out))
    assert rates.current()[1].startswith("measured ")


@pytest.mark.parametrize("share, warns", [(0.9, True), (0.05, False), (None, False)])
def test_calibrate_warns_when_others_use_the_cores(rates_file, monkeypatch, share, warns):
    monkeypatch.setattr(rates, "busy_share", lambda seconds=0.5: share)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rates.calibrate(quick=True, write=False)
    busy = [w for w in caught if "share the cores" in str(w.message)]
    assert len(busy) == (1 if warns else 0)


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads Linux's /proc/stat")
def test_busy_share_sees_a_process_spinning_on_one_core():
    import subprocess
    import sys

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        share = rates.busy_share(0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert share is not None and 0.6 / os.cpu_count() <= share <= 1.0


def test_writers_at_once_never_leave_a_torn_file(rates_file):
    """Every writer used one temporary name: two calibrations at once replaced each
    other's half-written file into place (a review: 110 failed writes in 5 s, readers
    finding the file unreadable). Each writer has its own temporary file now."""
    import threading

    errors: list[BaseException] = []

    def write(scale):
        try:
            for _ in range(40):
                rates.save(_some_rates(scale))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(s,)) for s in (1.0, 2.0, 3.0)]
    for t in threads:
        t.start()
    for _ in range(200):  # a reader meanwhile: the old file or a new one, never a torn one
        if rates_file.exists():
            json.loads(rates_file.read_text())
    for t in threads:
        t.join()
    assert not errors
    assert sorted(p.name for p in rates_file.parent.iterdir()) == [rates_file.name]


def test_calibrate_output_is_checked_before_measuring_and_expands_home(
    rates_file, tmp_path, capsys, monkeypatch
):
    """--output naming a directory failed after the minute of measurement, naming a
    temporary file; '~' was taken literally (a directory named ~ in the working one)."""
    measured = []
    monkeypatch.setattr(rates, "measure", lambda *a, **k: measured.append(1) or _some_rates())
    assert main(["calibrate", "--quick", "--output", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err and not measured
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--quick", "--output", "~/r.json"]) == 0
    assert (tmp_path / "r.json").exists() and not (tmp_path / "~").exists()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"save_to": "DIR"}, ValueError, "save_to '.*' is a directory"),
        ({"save_to": ""}, ValueError, "save_to '.' is a directory"),
        ({"save_to": "FILE/rates.json"}, ValueError, "save_to .* is a file, not a directory"),
        ({"save_to": 123}, TypeError, "save_to: must be a path"),
        ({"quick": "no"}, ValueError, "quick: must be True or False, got 'no'"),
        ({"write": "no"}, ValueError, "write: must be True or False, got 'no'"),
    ],
)
def test_calibrate_arguments_are_checked_before_measuring(
    rates_file, tmp_path, monkeypatch, kwargs, error, match
):
    """The Python call checked save_to inside save, after the measurement, naming the
    command line's --output; quick="no" and write="no" were taken as true, and the latter
    wrote the file every later auto fit reads (a review)."""
    measured = []
    monkeypatch.setattr(rates, "measure", lambda *a, **k: measured.append(1) or _some_rates())
    (tmp_path / "FILE").write_text("x")
    given = {
        k: {"DIR": str(tmp_path), "FILE/rates.json": str(tmp_path / "FILE" / "r.json")}.get(v, v)
        if isinstance(v, str)
        else v
        for k, v in kwargs.items()
    }
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=match):
        rates.calibrate(**{"quick": True, **given})
    assert not measured and not rates_file.exists()
