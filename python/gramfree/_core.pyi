# The native module (csrc/bindings/module.cpp, pybind11): its functions take and return
# numpy arrays and are checked at run time by the bindings; typed here as Any.
from typing import Any

__version__: str

def __getattr__(name: str) -> Any: ...
