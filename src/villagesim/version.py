"""The installed version of villagesim and a hash of its model code, for results' provenance.

A module of its own so that the packages can read the version without importing the root
package ``villagesim`` (which would make every module depend on the whole public API). It
imports nothing of villagesim.
"""

import hashlib
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    __version__ = version("villagesim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "MODEL_SOURCES", "model_hash"]

MODEL_SOURCES = (
    "agents.py",
    "config",
    "constants.py",
    "jit.py",
    "model.py",
    "outputs",
    "processes",
    "rng.py",
    "state",
)
"""The files and packages (relative to the package folder) whose code decides a run's numbers:
the rules, the parameters and their defaults, the random streams and the recorded outputs."""


def model_hash(root: Path | None = None) -> str:
    """SHA-256 over the model's source files (:data:`MODEL_SOURCES`), in sorted order.

    Two installations with the same hash run the same model code, whatever their version
    string says; an edit to a rule (even in a development checkout) changes it. Each file
    enters with its path relative to the package, so moving code changes the hash too.

    Args:
        root: the package folder to hash (default: this installation's).
    """
    if root is None:
        return _installed_hash()
    return _hash(Path(root))


@lru_cache(maxsize=1)
def _installed_hash() -> str:
    return _hash(Path(__file__).resolve().parent)


def _hash(root: Path) -> str:
    files: list[Path] = []
    for name in MODEL_SOURCES:
        path = root / name
        files.extend(sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else [])
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        rel = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        digest.update(len(rel).to_bytes(8, "little") + rel + len(data).to_bytes(8, "little") + data)
    return digest.hexdigest()
