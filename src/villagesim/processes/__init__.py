"""The processes of one step (ODD §3, MODEL.md §3), one module each, in the order they run.

Each process module ends with its declaration, a :class:`~villagesim.processes.base.Process`
record: its name, its ``run(world, levers, rng, week)`` function over whole arrays, the
state it reads and writes, and the output columns it reports. :data:`STEP` lists them in
order; :meth:`villagesim.model.VillageModel.step` runs exactly this list, so the step
reads as ODD §3:

0. ``funding``: which levers the budget pays this week (re-split after a lever change);
1. ``demography``: ageing, deaths, out-migration and return;
2. ``health``: care-level transitions, emergencies;
3. ``needs``: each elder's need in hours by kind;
4. ``family``: family care first;
5. ``asking``: who asks for help;
6. ``volunteering``: who volunteers this week;
6b. ``digital``: digital-skills training of elders without a smartphone;
7. ``matching``: committee, platform and time-bank redemptions match requests to helpers;
8. ``ngo``: purchased NGO care;
9. ``facilities``: happiness homes, mutual-aid points, canteens;
10. ``finance``: paying for the week's services, time-bank credits;
11. ``budget``: in the last week of a budget year, the government's next budget;
12. ``trust``: trust, awareness, satisfaction, burnout.

Processes import helper modules (:mod:`.base`, :mod:`.week`, :mod:`.rates`, and the parts
of a process: :mod:`.platform` and :mod:`.timebank`), never one another.
"""

from villagesim.processes import (
    asking,
    budget,
    demography,
    digital,
    facilities,
    family,
    finance,
    funding,
    health,
    matching,
    needs,
    ngo,
    trust,
    volunteering,
)
from villagesim.processes.base import Output, Process

STEP: tuple[Process, ...] = tuple(
    module.PROCESS
    for module in (
        funding,
        demography,
        health,
        needs,
        family,
        asking,
        volunteering,
        digital,
        matching,
        ngo,
        facilities,
        finance,
        budget,
        trust,
    )
)
"""The processes of a step, in order."""

PROCESSES = STEP
"""The same list (the name earlier code used)."""

__all__ = ["STEP", "PROCESSES", "Output", "Process"]
