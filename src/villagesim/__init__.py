"""villagesim: agent-based simulation of rural mutual-aid elderly care (互助养老).

Planners test interventions (time banks, platforms, subsidies, NGO purchase, KPIs) on
synthetic villages before funding them. See README.md and docs/ODD.md.

The names a notebook needs are offered here:

* :class:`VillageModel`: the Mesa model, stepped week by week
  (:mod:`villagesim.model`).
* :class:`Scenario`: a validated scenario; ``Scenario()`` holds the schema defaults,
  ``scenario.with_overrides({...})`` a copy with levers changed (:mod:`villagesim.config.schema`).
* :func:`load_scenario`: read and validate a scenario file; ``.scenario`` is the
  :class:`Scenario` (:mod:`villagesim.config.loading`).
* :func:`run_scenario`: run the replicates of a scenario; its ``.timeseries`` is a
  DataFrame of weekly outcomes (:mod:`villagesim.runs.runner`).
* :func:`compare`: run a baseline and an intervention on common random numbers and
  compare them replicate by replicate (:mod:`villagesim.experiments.compare`).
* ``__version__``: the installed version.

They are imported on first use (PEP 562), so ``import villagesim`` stays quick: Mesa,
numba and the model load only when a model is built or run.

Example:
    >>> import villagesim
    >>> base = villagesim.Scenario().with_overrides({"run.steps": 8})
    >>> result = villagesim.run_scenario(base, replicates=1)
    >>> result.replicates
    1

Modules inside villagesim never import this package itself; they import the module that
defines a name (the version from :mod:`villagesim.version`), so that the import graph,
and the layers in pyproject.toml, show who depends on whom.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from villagesim.version import __version__

# For type checkers and editors only, never at run time: the real imports are lazy (below), and
# lint-imports and tests/test_architecture.py leave TYPE_CHECKING imports out.
if TYPE_CHECKING:
    from villagesim.config.loading import load_scenario
    from villagesim.config.schema import Scenario
    from villagesim.experiments.compare import compare
    from villagesim.model import VillageModel
    from villagesim.runs.runner import run_scenario

__all__ = ["VillageModel", "Scenario", "load_scenario", "run_scenario", "compare", "__version__"]

_LAZY = {
    "VillageModel": "villagesim.model",
    "Scenario": "villagesim.config.schema",
    "load_scenario": "villagesim.config.loading",
    "run_scenario": "villagesim.runs.runner",
    "compare": "villagesim.experiments.compare",
}


def __getattr__(name: str) -> Any:
    """Import a public name on first use and keep it in the package (PEP 562).

    Args:
        name: an attribute of ``villagesim`` that is not yet set.

    Returns:
        The object ``name`` from the module that defines it.

    Raises:
        AttributeError: when ``name`` is not part of the public API.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'villagesim' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, the lazy ones included (for tab completion)."""
    return sorted(__all__)
