"""Where the kernel operators run: ``device="cpu"`` (the default), ``"cuda"``,
``"cuda:N"`` or ``"auto"`` (the first CUDA device when one is visible, else the CPU).

The GPU operators (``cuda/``) are compiled when a CUDA compiler is present at build time;
:func:`cuda_devices` lists the GPUs this process sees. Asking for ``"cuda"`` where there is
none raises ``RuntimeError`` saying why (not compiled in, or no device visible).

Only the products with ``K`` have GPU twins (``K @ V``, ``K.T @ U``, the one-pass
``K.T diag(w) K V`` and ``kernel_matrix``); ``gradient`` always runs on the CPU.
"""

from __future__ import annotations

from typing import Any

from . import _core

__all__ = ["cuda_devices", "resolve_device"]


def cuda_devices() -> list[dict[str, Any]]:
    """The visible CUDA devices: name, compute capability, multiprocessors, memory."""
    return [_core.cuda_device_info(i) for i in range(_core.cuda_device_count())]


def check_device_spelling(device: Any, name: str = "device") -> str:
    """The device argument's spelling, lower case (None: "cpu"), whatever this machine
    has: "cpu", "auto", "cuda" or "cuda:N"; ValueError naming ``name`` otherwise. A model
    file is checked with it (a device another machine has is no damage)."""
    if device is None:
        return "cpu"
    if isinstance(device, str):
        spec = device.strip().lower()
        if spec in ("cpu", "auto", "cuda"):
            return spec
        if spec.startswith("cuda:"):
            if spec[5:].isdigit():
                return spec
            raise ValueError(f"{name}: expected 'cuda:N' with N a device index, got {device!r}")
    raise ValueError(f"{name}: expected 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


def resolve_device(device: Any, name: str = "device") -> str:
    """``"cpu"`` or ``"cuda:N"`` for a device argument; raises naming ``name``."""
    spec = check_device_spelling(device, name)
    count = _core.cuda_device_count()
    if spec == "cpu":
        return "cpu"
    if spec == "auto":
        return "cuda:0" if count > 0 else "cpu"
    # spelled cuda or cuda:N (check_device_spelling)
    index_text = spec[5:] if spec.startswith("cuda:") else "0"
    if count == 0:
        why = (
            "gramfree was built without CUDA (no CUDA compiler when it was compiled)"
            if not _core.cuda_compiled()
            else "no CUDA device is visible to this process"
        )
        raise RuntimeError(f"{name}={device!r}: {why}; use device='cpu' or 'auto'")
    index = int(index_text)
    if index >= count:
        raise ValueError(f"{name}={device!r}: only {count} CUDA device(s) visible")
    return f"cuda:{index}"


def device_index(resolved: str) -> int:
    """The N of a resolved ``"cuda:N"``."""
    return int(resolved.split(":", 1)[1])
