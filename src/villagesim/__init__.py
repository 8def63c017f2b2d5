"""villagesim: agent-based simulation of rural mutual-aid elderly care (互助养老).

Planners test interventions (time banks, platforms, subsidies, NGO purchase, KPIs) on
synthetic villages before funding them. See README.md and docs/ODD.md.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("villagesim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
