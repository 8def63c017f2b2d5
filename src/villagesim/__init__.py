"""villagesim: agent-based simulation of rural mutual-aid elderly care (互助养老).

Planners test interventions (time banks, platforms, subsidies, NGO purchase, KPIs) on
synthetic villages before funding them. See README.md and docs/ODD.md.
"""

from villagesim.version import __version__

__all__ = ["__version__"]
