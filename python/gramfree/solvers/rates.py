"""The machine rates behind ``solver="auto"``'s cost model.

The cost model (:mod:`gramfree.solvers.auto`) turns flop counts into seconds with four
rates: the fused kernel operator's flops per second in float32 and float64 (its own
accounting, ``2 d + 2 k + 8`` flops per kernel entry), float64 dense factorization and
GEMM (Cholesky, counted as ``n^3 / 3``) and the one-pass Nystrom solver's Gram update
(``syrk``, counted as ``rows M^2``). Built-in values come from one machine kind; another
machine differs, and not by one common factor (a CPU with wide vectors speeds up the
engine more than the BLAS calls), which is what moves a choice between an exact and a
Nystrom solve.

``python -m gramfree calibrate`` (or :func:`calibrate`) measures the four rates here (best
of three timings of each, at the sizes in ``SIZES``) and saves them with the machine they
were measured on (CPU model, OpenMP's default thread count, SIMD level) to
:func:`rates_path`. Every later fit on a machine with the same description uses them (a
fit with fewer threads through ``n_jobs`` too: the rates are not rescaled for it); a file written on another machine, or unreadable, is
ignored with a note of why (``solver_info_["auto"]["rates"]`` and ``verbose`` say which
rates a fit used). Nothing is measured behind the user's back: a fit's choice depends only
on its inputs and this file, never on the machine's load at that moment.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._log import caller_stacklevel

# Measured by benchmarks/bench_costmodel.py on 2 cores of an Intel Xeon (AVX-512), the
# machine kind of this project's CI, 2026-12-01 (after the micro-GEMM engine, the recursive
# Cholesky and nystrom-direct's larger blocks).
DEFAULT_RATES = {
    "engine_float32": 9.9e10,
    "engine_float64": 4.2e10,
    "dense": 6.2e10,
    "syrk": 7.9e10,
}
DEFAULT_SOURCE = "built-in (2 cores of an Intel Xeon, AVX-512)"
# Sizes of the measurements: operator n = m, Cholesky order, Gram columns M (full, quick).
SIZES = {"full": (8000, 6000, 1000), "quick": (4000, 3000, 1000)}
# Share of the CPU time in use by others (a half-second sample before measuring) above
# which calibrate warns: the rates measured then are too low for a quiet machine.
BUSY_SHARE = 0.25
FILE_FORMAT = 1

_cache: dict[str, Any] = {}


def rates_path() -> Path:
    """Where :func:`calibrate` saves the rates and fits look for them:
    ``$GRAMFREE_RATES`` if set, else ``gramfree/rates.json`` under ``$XDG_CACHE_HOME``
    (default ``~/.cache``)."""
    explicit = os.environ.get("GRAMFREE_RATES")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "gramfree" / "rates.json"


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What rates depend on: the CPU model, OpenMP's default thread count (not a fit's
    ``n_jobs``, which does not rescale them) and the SIMD level of the native core. Rates
    saved for another description are not used."""
    from .. import _core

    return {
        "cpu": cpu_model(),
        "threads": int(_core.max_threads()),
        "simd": str(_core.simd_level()),
    }


def _best_of(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(quick: bool = False) -> dict[str, float]:
    """The four rates measured now, in the cost model's accounting (module docstring):
    best of three timings of each, after a warm-up. Synthetic data, d = 16."""
    from ..linalg import cholesky
    from ..operators import KernelOperator
    from .auto import _entry_flops
    from .nystrom_direct import BLOCK_BYTES, _add_gram

    n_op, n_chol, m_gram = SIZES["quick" if quick else "full"]
    rng = np.random.default_rng(0)
    d = 16
    rates: dict[str, float] = {}
    for dtype in (np.float32, np.float64):
        X = rng.normal(size=(n_op, d)).astype(dtype)
        op = KernelOperator(X, kernel="rbf", gamma=1.0 / d)
        per_k = []
        for k in (1, 26):  # regression and a many-class classification
            V = rng.normal(size=(n_op, k)).astype(dtype)
            op @ V  # warm-up: thread start-up, first touch of the output
            per_k.append(n_op * n_op * _entry_flops(d, k) / _best_of(lambda: op @ V, 3))
        rates[f"engine_{np.dtype(dtype).name}"] = float(np.mean(per_k))
    A = rng.normal(size=(n_chol, n_chol // 4))
    A = A @ A.T / A.shape[1] + np.eye(n_chol)
    cholesky(A)  # warm-up
    rates["dense"] = n_chol**3 / 3 / _best_of(lambda: cholesky(A), 3)
    rows = min(4 * n_op, int(BLOCK_BYTES // (8 * m_gram)))
    B = rng.normal(size=(rows, m_gram))
    G = np.zeros((m_gram, m_gram), order="F")
    _add_gram(G, B)  # warm-up
    rates["syrk"] = rows * m_gram**2 / _best_of(lambda: _add_gram(G, B), 3)
    return rates


def _check_rates(rates: Any) -> dict[str, float]:
    if not isinstance(rates, dict) or set(rates) != set(DEFAULT_RATES):
        raise ValueError(f"expected the rates {sorted(DEFAULT_RATES)}")
    out = {}
    for key, value in rates.items():
        # bool is an int to Python (true was read as 1 flop/s); an integer beyond float64's
        # range raised OverflowError out of every auto fit (a review)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"rate {key!r} must be a positive number, got {value!r}")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(
                f"rate {key!r} must be a positive number, got an integer of "
                f"{len(str(value))} digits"
            ) from None
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"rate {key!r} must be a positive number, got {value!r}")
        out[key] = number
    return out


def check_output_path(target: Path, name: str = "--output") -> None:
    """ValueError naming the argument (``name``) and ``target`` when no rates file can be
    written there: checked before the measurement (which takes a minute), not after it."""
    if target.is_dir():
        raise ValueError(f"{name} {str(target)!r} is a directory; give a file name")
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise ValueError(f"{name} {str(target)!r}: {str(parent)!r} is a file, not a directory")


def save(rates: dict[str, float], path: str | os.PathLike | None = None) -> Path:
    """Write ``rates`` (as :func:`measure` returns them) with this machine's description
    to ``path`` (default :func:`rates_path`); returns the path."""
    rates = _check_rates(rates)
    target = Path(path).expanduser() if path is not None else rates_path()
    check_output_path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    from .. import __version__

    record = {
        "format": FILE_FORMAT,
        "rates": rates,
        "machine": machine(),
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gramfree": __version__,
    }
    # A temporary file of its own: two writers sharing one name replaced each other's
    # half-written file into place (a review: 110 failed writes in 5 s, torn reads).
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=1) + "\n")
        os.replace(tmp, target)  # a fit reading it meanwhile sees the old file or the new one
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _cache.clear()
    return target


def current() -> tuple[dict[str, float], str]:
    """``(rates, source)``: the saved rates when :func:`rates_path` holds rates measured on
    this machine, else the built-in ones; ``source`` says which and, for the built-in ones,
    why a file present was not used. An unreadable or malformed file warns once."""
    path = rates_path()
    try:
        stamp: Any = path.stat().st_mtime_ns
    except OSError:
        stamp = None
    key = f"{path}:{stamp}"
    if _cache.get("key") != key:
        _cache.update(key=key, value=_load(path, stamp is not None))
    rates, source = _cache["value"]
    return dict(rates), source


def _load(path: Path, exists: bool) -> tuple[dict[str, float], str]:
    if not exists:
        return dict(DEFAULT_RATES), DEFAULT_SOURCE
    try:
        record = json.loads(path.read_text())
        if not isinstance(record, dict) or record.get("format") != FILE_FORMAT:
            raise ValueError(f"not a format-{FILE_FORMAT} rates file")
        rates = _check_rates(record.get("rates"))
    # json.JSONDecodeError is a ValueError; RecursionError: JSON nested beyond Python's stack
    except (OSError, ValueError, RecursionError) as exc:
        warnings.warn(
            f"gramfree: the rates file {path} is ignored ({exc}); solver='auto' uses the "
            "built-in rates. Run `python -m gramfree calibrate` to rewrite it.",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )
        return dict(DEFAULT_RATES), f"{DEFAULT_SOURCE}: {path} unreadable"
    here, there = machine(), record.get("machine")
    if there != here:
        return dict(DEFAULT_RATES), f"{DEFAULT_SOURCE}: {path} describes another machine"
    return rates, f"measured {record.get('measured', '?')} on this machine ({path})"


def _cpu_ticks() -> tuple[int, int] | None:
    """(idle, total) ticks of all CPUs since boot, from /proc/stat (Linux); else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields)  # idle + iowait; steal counts as busy


def busy_share(seconds: float = 0.5) -> float | None:
    """Share of the machine's CPU time that other processes (or the hypervisor's steal)
    used over ``seconds``, or None where it cannot be read. This process's own threads
    (a BLAS pool still spinning after a product) do not count."""
    before, own_before = _cpu_ticks(), _own_seconds()
    time.sleep(seconds)
    after, own_after = _cpu_ticks(), _own_seconds()
    if before is None or after is None or after[1] <= before[1]:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    total = (after[1] - before[1]) / hz
    busy = total - (after[0] - before[0]) / hz - (own_after - own_before)
    return min(1.0, max(0.0, busy / total))


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _warn_if_busy() -> None:
    busy = busy_share()
    if busy is not None and busy > BUSY_SHARE:
        warnings.warn(
            f"gramfree.calibrate: {busy:.0%} of the CPU time was in use before measuring: "
            "other programs share the cores, and the rates measured now will be lower than "
            "a quiet machine's. Calibrate again when it is idle.",
            RuntimeWarning,
            stacklevel=caller_stacklevel(),
        )


def calibrate(
    quick: bool = False, *, save_to: str | os.PathLike | None = None, write: bool = True
) -> dict[str, float]:
    """Measure this machine's rates for ``solver="auto"``'s cost model and (with
    ``write``) save them where every later fit finds them.

    Parameters
    ----------
    quick : bool, default=False
        Smaller measurements (``SIZES['quick']``); less representative of
        the large fits the model decides between.
    save_to : path, optional
        Where to save them; default :func:`rates_path` (``$GRAMFREE_RATES``, else
        ``~/.cache/gramfree/rates.json``), where fits look. A file elsewhere is used once
        ``GRAMFREE_RATES`` names it.
    write : bool, default=True
        False only measures.

    Returns
    -------
    rates : dict
        ``engine_float32``, ``engine_float64`` (fused operator, flops per second counted
        as ``2 d + 2 k + 8`` per kernel entry), ``dense`` (float64 Cholesky, ``n^3 / 3``)
        and ``syrk`` (the one-pass Nystrom Gram update, ``rows M^2``).

    Examples
    --------
    >>> import gramfree
    >>> rates = gramfree.calibrate(quick=True, write=False)  # measure only
    >>> sorted(rates)
    ['dense', 'engine_float32', 'engine_float64', 'syrk']
    >>> all(r > 0 for r in rates.values())
    True
    """
    # Checked before the measurement, which takes a minute: a bad path failed after it,
    # and quick="no" or write="no" were taken as true (a review).
    for name, flag in (("quick", quick), ("write", write)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name}: must be True or False, got {flag!r}")
    if save_to is not None and not isinstance(save_to, (str, os.PathLike)):
        raise TypeError(f"save_to: must be a path (str or os.PathLike), got {save_to!r}")
    if write:
        target = Path(save_to).expanduser() if save_to is not None else rates_path()
        check_output_path(target, "save_to")
    _warn_if_busy()
    rates = measure(bool(quick))
    if write:
        save(rates, save_to)
    return rates
