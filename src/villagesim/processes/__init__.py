"""The processes of one step (MODEL.md §3), one module each, in the order they run.

Each process is a function ``run(world, scenario, rng, week)`` over whole arrays: it reads
and writes the person table in ``world`` and the per-step scratch record ``week``
(:class:`~villagesim.processes.week.Week`). No process imports another; the model calls
them in order. Each module's docstring says what it reads and what it writes.
"""

from villagesim.processes import (
    asking,
    budget,
    demography,
    facilities,
    family,
    finance,
    health,
    matching,
    needs,
    ngo,
    trust,
    volunteering,
)

PROCESSES = [demography, health, needs, family, asking, volunteering, matching, ngo, facilities, finance, budget, trust]
"""Processes in the order of a step; their ``NAME`` keys their random stream."""

__all__ = ["PROCESSES"]
