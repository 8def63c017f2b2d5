"""The installed version of villagesim, for results' provenance and ``--version``.

A module of its own so that the packages can read the version without importing the root
package ``villagesim`` (which would make every module depend on the whole public API).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("villagesim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
