"""The package's version, written here and nowhere else: pyproject.toml reads it
(scikit-build-core's regex metadata provider) and CMakeLists.txt reads it for the native
module (gramfree._core.__version__)."""

__version__ = "0.2.0"
