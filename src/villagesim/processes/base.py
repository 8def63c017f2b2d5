"""How a process declares itself: its name, what it reads and writes, the outputs it adds.

Every process module of :mod:`villagesim.processes` ends with one :class:`Process` record,
``PROCESS = Process(...)``. The model runs the records of :data:`villagesim.processes.STEP`
in order; the output registry (:mod:`villagesim.outputs.columns`) collects their
:class:`Output` declarations, so a new output column is one edit in the process that
reports it (its ``outputs`` and a ``week.report(name, per_village)`` call), and the
results files, the figures and the page pick it up.

Names of state, as used in ``reads`` and ``writes``:

* ``persons.<column>``: a column of the person table (:class:`~villagesim.state.population.Persons`);
* ``week.<field>``: a field of this step's record (:class:`~villagesim.processes.week.Week`),
  ``week.met.<source>`` for the hours met from one source;
* ``institutions.<field>``: the institutions' state
  (:class:`~villagesim.state.institutions.Institutions`), ``institutions.treasury`` and
  ``institutions.facilities`` as wholes;
* ``households.*``, ``villages.*``: the fixed geography (read only);
* ``scenario.<section>``: parameters read (documentation only).

Outputs a process reports (``week.report``) are declared in ``outputs``, not in ``writes``.
``tests/processes/test_declarations.py`` runs whole scenarios and checks that each process
changes only the state it declares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Levers = Literal["intended", "funded"]


@dataclass(frozen=True)
class Output:
    """One output column a process reports, per village and step.

    Args:
        name: the column's name in ``timeseries.parquet`` and ``villages.parquet``; a name
            starting with ``_`` is a hidden sum that only feeds a ratio.
        unit: unit of the value (``"persons"``, ``"hours/week"``, ``"RMB/week"`` ...).
        label: a planner's words for the column (figures, the page).
        description: what is counted, in one sentence.
    """

    name: str
    unit: str
    label: str
    description: str = ""

    @property
    def hidden(self) -> bool:
        """Hidden sums (``_name``) feed ratios and are not written to the results files."""
        return self.name.startswith("_")


@dataclass(eq=False)
class Process:
    """A process of the step: what it is called, when it runs, what it touches.

    Not frozen, so that a test or a profiler can wrap ``run`` (``monkeypatch.setattr(
    module.PROCESS, "run", wrapper)``); the model calls ``process.run`` of each record.

    Args:
        name: the process's name (ODD §3, the step list, profiles).
        run: ``run(world, levers, rng, week)``; ``levers`` is the scenario as the process
            sees it (see ``levers``), ``rng`` the process's random stream for this step
            (built only if the process draws), ``week`` this step's record.
        reads: state the process reads (names as in the module docstring of
            :mod:`villagesim.processes.base`).
        writes: state the process changes.
        outputs: output columns it reports through ``week.report``.
        levers: ``"funded"`` (default): the levers as the budget can pay them this week
            (set by the ``funding`` process); ``"intended"``: the planner's levers as the
            scenario and its interventions set them.
        stream: key of the process's random stream (defaults to ``name``; a stream key
            never changes, so renaming a process keeps its draws).
        init: ``init(world, scenario, rng)``, run once when the model is built (the
            initial state the process needs), with the process's stream of step 0.
        section: the ODD §3 item this process implements.
    """

    name: str
    run: Callable[..., None]
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    levers: Levers = "funded"
    stream: str | None = None
    init: Callable[..., None] | None = None
    section: str = ""

    def __post_init__(self) -> None:
        for name in (*self.reads, *self.writes):
            root = name.split(".", 1)[0]
            if root not in _ROOTS:
                raise ValueError(f"process {self.name}: {name!r} does not name state ({', '.join(sorted(_ROOTS))})")
        if self.levers not in ("intended", "funded"):
            raise ValueError(f"process {self.name}: levers must be 'intended' or 'funded'")

    @property
    def stream_key(self) -> str:
        """Key of the process's random stream."""
        return self.stream or self.name


_ROOTS = {"persons", "week", "institutions", "households", "villages", "scenario"}
