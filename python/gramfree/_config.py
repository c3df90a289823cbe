"""What the native core was built with and what it uses on this machine."""

from __future__ import annotations

import os
import platform
from typing import Any

from . import _core
from .device import cuda_devices
from .solvers.rates import current as current_rates


def config() -> dict[str, Any]:
    """The build and run-time configuration as a dict (see :func:`show_config`).

    Returns
    -------
    config : dict
        ``version``, ``simd_level`` (in use), ``simd_detected``, ``simd_env`` (the
        ``GRAMFREE_SIMD`` override or None), ``threads``, ``cuda_compiled``,
        ``cuda_runtime`` (version as 1000 * major + 10 * minor, 0 without CUDA),
        ``cuda_devices`` (list of dicts), ``compiler``, ``machine`` and ``auto_rates``
        (which rates ``solver="auto"``'s cost model uses: :mod:`gramfree.solvers.rates`).

    Examples
    --------
    >>> import gramfree
    >>> c = gramfree.config()
    >>> c["version"] == gramfree.__version__
    True
    >>> sorted(c)
    ['auto_rates', 'compiler', 'cuda_compiled', 'cuda_devices', 'cuda_runtime', 'machine',
     'simd_detected', 'simd_env', 'simd_level', 'threads', 'version']
    """
    return {
        "version": _version(),
        "simd_level": _core.simd_level(),
        "simd_detected": _core.detected_simd_level(),
        "simd_env": os.environ.get("GRAMFREE_SIMD"),
        "threads": _core.max_threads(),
        "cuda_compiled": _core.cuda_compiled(),
        "cuda_runtime": _core.cuda_runtime_version(),
        "cuda_devices": cuda_devices(),
        "compiler": _core.compiler,
        "machine": platform.machine(),
        "auto_rates": current_rates()[1],
    }


def show_config() -> None:
    """Print which SIMD level is in use, whether CUDA was compiled in, and the threads.

    The same facts as :func:`config`, as a table on stdout (for bug reports).

    Examples
    --------
    >>> import gramfree
    >>> gramfree.show_config()  # doctest: +SKIP
    gramfree <gramfree.__version__>
      simd level     : avx512 (detected avx512; GRAMFREE_SIMD unset)
      threads        : 2
      cuda compiled  : True (runtime 13.0)
      cuda devices   : none visible
      compiler       : gcc 12.2.0
      machine        : x86_64
      auto rates     : built-in (2 cores of an Intel Xeon, AVX-512)
    """
    c = config()
    env = "unset" if c["simd_env"] is None else repr(c["simd_env"])
    if c["simd_env"] is not None and c["simd_env"] != c["simd_level"]:
        env += ", ignored"
    print(f"gramfree {c['version']}")
    print(
        f"  simd level     : {c['simd_level']} (detected {c['simd_detected']}; GRAMFREE_SIMD {env})"
    )
    print(f"  threads        : {c['threads']}")
    runtime = c["cuda_runtime"]
    built = f" (runtime {runtime // 1000}.{runtime % 1000 // 10})" if runtime else ""
    print(f"  cuda compiled  : {c['cuda_compiled']}{built}")
    gpus = ", ".join(
        f"cuda:{g['index']} {g['name']} (sm_{g['compute_capability'][0]}{g['compute_capability'][1]}, "
        f"{g['total_bytes'] / 2**30:.0f} GiB)"
        for g in c["cuda_devices"]
    )
    print(f"  cuda devices   : {gpus or 'none visible'}")
    print(f"  compiler       : {c['compiler']}")
    print(f"  machine        : {c['machine']}")
    print(f"  auto rates     : {c['auto_rates']}")


def _version() -> str:
    from . import __version__

    return __version__


def warn_if_simd_env_ignored() -> None:
    """RuntimeWarning at import where ``GRAMFREE_SIMD`` names no level this build and
    processor run (a misspelling, "SCALAR", or avx512 on an AVX2 processor): the engine
    then runs the detected level, which went unsaid (a review)."""
    wanted = os.environ.get("GRAMFREE_SIMD")
    if wanted is None or wanted == _core.simd_level():
        return
    import warnings

    warnings.warn(
        f"GRAMFREE_SIMD={wanted!r} is ignored: not one of scalar, avx2, avx512, or above "
        f"what this processor supports (detected {_core.detected_simd_level()}); running "
        f"{_core.simd_level()}",
        RuntimeWarning,
        stacklevel=3,
    )
