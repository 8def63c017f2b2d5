"""What the browser page works on, without any user interface: levers, scenarios, the paired run.

The page (:mod:`villagesim.app.page`) only draws and reacts; everything it changes goes through
this module so that it is validated the same way as on the command line:

* :func:`lever_specs` reads the levers shown on the page from the schema
  (:meth:`Scenario.parameter_table`): label, unit, bounds, choices, group. A lever added
  to the schema's ``[policy]`` section appears on the page without a change here.
* :class:`PageRun` is the Mesa model the page steps: the run with the planner's levers
  and, when asked, its counterfactual (same scenario, same seed, lever changes undone),
  stepped in lock-step on common random numbers.
* :func:`shipped_scenarios` and :func:`load_uploaded_files` give the scenarios a planner can
  pick, with the same one-line errors as ``villagesim check``; an upload reads only the files
  uploaded with it and the shipped scenarios.
* :data:`PAGE_LIMITS` bounds what one session may ask (persons, memory, interventions,
  upload size); :func:`in_worker` runs checks and builds off the session's own thread.
"""

from __future__ import annotations

import io
import re
import tempfile
import threading
import typing
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import mesa
import numpy as np
import pandas as pd

from villagesim.config.limits import RunSize, check_size
from villagesim.config.loading import ReadRules, apply_overrides, load_scenario, parse_toml
from villagesim.config.schema import Scenario
from villagesim.errors import ScenarioError
from villagesim.model import VillageModel
from villagesim.outputs.sums import COLUMNS

T = TypeVar("T")

# ---------------------------------------------------------------------------- levers
EXTRA_LEVERS = [
    "hollowing_out.outmigration_rate",
    "hollowing_out.return_rate",
    "committee.admin_burden",
    "committee.staff_hours_per_week",
]
"""Parameters outside ``[policy]`` that the page offers as levers (conditions a planner may test)."""

SLIDER_CAPS: dict[str, float] = {
    "policy.budget": 2_000_000.0,
    "policy.ngo_purchase_budget": 1_000_000.0,
    "policy.incentive_per_hour": 50.0,
    "policy.time_bank.account_cap_hours": 5_000.0,
    "committee.staff_hours_per_week": 120.0,
}
"""Upper ends of sliders whose schema bound is far beyond any realistic value; the typed
field still accepts anything the schema accepts."""

GROUPS: list[tuple[str, str, list[str]]] = [
    # (key, title, paths in display order); other levers are grouped by section below
    (
        "money",
        "Money and evaluation 资金与考核",
        [
            "policy.budget",
            "policy.allocation",
            "policy.evaluation_regime",
            "policy.incentive_per_hour",
            "policy.ngo_purchase_budget",
        ],
    ),
    (
        "mobilisation",
        "Mobilisation and trust",
        [
            "policy.publicity",
            "policy.party_mobilisation",
            "policy.transparency",
            "policy.feedback_mechanism",
            "policy.liability_insurance",
            "policy.wearable_alarms",
        ],
    ),
    ("conditions", "Village conditions", EXTRA_LEVERS),
]

LABELS: dict[str, str] = {
    "policy.budget": "Township budget",
    "policy.allocation": "Budget allocation",
    "policy.evaluation_regime": "Evaluation regime 考核",
    "policy.ngo_purchase_budget": "NGO purchase budget 政府购买服务",
    "policy.feedback_mechanism": "Feedback mechanism",
    "committee.admin_burden": "Committee admin burden",
    "committee.staff_hours_per_week": "Committee staff time 村两委",
    "policy.time_bank.enabled": "Run a time bank",
    "policy.platform.enabled": "Deploy the platform",
    "policy.split.ngo": "NGO purchase",
    "policy.split.platform": "Platform",
    "policy.split.subsidies": "Subsidies",
}
"""Labels where the schema has none or a shorter one reads better on the page."""

CHOICE_LABELS: dict[str, str] = {
    "fixed": "fixed split",
    "adaptive": "adaptive (toward the KPI)",
    "count": "count facilities (数量考核)",
    "quality": "service quality (质量考核)",
}

_CJK = re.compile(r"[(（]([\u3400-\u9fff][^()（）]*)[)）]")


def _chinese_term(text: str) -> str:
    """The first Chinese term in parentheses of ``text`` ("" if none or a saying with a comma)."""
    m = _CJK.search(text or "")
    if not m or "，" in m.group(1) or len(m.group(1)) > 12:
        return ""
    return m.group(1)


@dataclass(frozen=True)
class LeverSpec:
    """One lever as the page shows it.

    Attributes:
        path: dotted parameter path (``policy.publicity``).
        label: English label, with the Chinese term where the model's sources use one.
        unit: unit in words, from the schema.
        kind: ``"float"``, ``"int"``, ``"bool"`` or ``"choice"``.
        default: the schema default.
        lo, hi: slider range (schema bounds; wide upper bounds capped by SLIDER_CAPS).
        step: slider step.
        bounds: the schema's bounds (``ge``/``le``/``gt``/``lt``) as validated.
        choices: allowed values of a ``choice`` lever.
        description: one sentence from the schema.
        group: title of the group of controls it belongs to.
    """

    path: str
    label: str
    unit: str
    kind: str
    default: Any
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    bounds: dict[str, float] = field(default_factory=dict)
    choices: tuple[Any, ...] = ()
    description: str = ""
    group: str = ""

    def bounds_text(self) -> str:
        """Bounds in words, e.g. ``"0 to 1"`` or ``"at least 0"``."""
        lo = self.bounds.get("ge", self.bounds.get("gt"))
        hi = self.bounds.get("le", self.bounds.get("lt"))
        if lo is not None and hi is not None:
            return f"{_num(lo)} to {_num(hi)}"
        if lo is not None:
            return f"at least {_num(lo)}"
        if hi is not None:
            return f"at most {_num(hi)}"
        return ""


def _num(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:g}"


def _annotation(path: str) -> Any:
    model: Any = Scenario
    ann: Any = None
    for part in path.split("."):
        ann = model.model_fields[part].annotation
        model = ann
    return ann


SECTION_TITLES: dict[str, str] = {
    "policy.time_bank": "Time bank 时间银行",
    "policy.platform": "Information platform 互助养老网络信息平台",
    "policy.split": "Budget split (fixed allocation)",
}


def _section_title(path: str) -> str:
    """Group title for a lever in a sub-section of ``[policy]``, from the section's docstring."""
    parts = path.split(".")
    if ".".join(parts[:-1]) in SECTION_TITLES:
        return SECTION_TITLES[".".join(parts[:-1])]
    model: Any = Scenario
    for part in parts[:-1]:
        model = model.model_fields[part].annotation
    doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else parts[-2]
    head = re.split(r"[:.,;]", doc)[0].strip()
    name = re.sub(r"\s*[(（].*?[)）]", "", head).strip() or parts[-2].replace("_", " ").capitalize()
    zh = _chinese_term(doc)
    return f"{name} {zh}".strip()


def _nice_step(span: float) -> float:
    raw = span / 100.0
    if raw <= 0:
        return 0.01
    mag = 10 ** np.floor(np.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * mag:
            return float(m * mag)
    return float(10 * mag)


def lever_specs() -> list[LeverSpec]:
    """The levers of the page, grouped and ordered, read from the schema.

    Every ``policy.*`` parameter is a lever (new ones appear automatically), plus
    :data:`EXTRA_LEVERS`, except those fixed when the villages are built.
    """
    rows = {r["path"]: r for r in Scenario.parameter_table() if not r["fixed"]}
    paths = [p for p in rows if p.startswith("policy.")] + [p for p in EXTRA_LEVERS if p in rows]
    group_of: dict[str, str] = {}
    order: dict[str, int] = {}
    for _key, title, members in GROUPS:
        for i, p in enumerate(members):
            group_of[p] = title
            order[p] = i
    specs = []
    for path in paths:
        row = rows[path]
        ann = _annotation(path)
        if path not in group_of:
            group_of[path] = _section_title(path) if path.count(".") >= 2 else "Other policy levers"
        bounds = {k: float(row[k]) for k in ("ge", "le", "gt", "lt") if k in row}
        label = LABELS.get(path) or row["label"]
        zh = _chinese_term(row["description"])
        if zh and zh not in label:
            label = f"{label} {zh}"
        common = dict(
            path=path,
            label=label,
            unit=row["unit"],
            default=row["default"],
            bounds=bounds,
            description=row["description"],
            group=group_of[path],
        )
        if typing.get_origin(ann) is Literal:
            specs.append(LeverSpec(kind="choice", choices=tuple(typing.get_args(ann)), **common))
        elif ann is bool:
            specs.append(LeverSpec(kind="bool", **common))
        elif ann in (int, float):
            lo = bounds.get("ge", bounds.get("gt", 0.0))
            hi = bounds.get("le", bounds.get("lt", max(10.0 * abs(float(row["default"])), 1.0)))
            hi = min(hi, SLIDER_CAPS.get(path, hi))
            if hi - lo > 1e4 and path not in SLIDER_CAPS:
                hi = lo + max(10.0 * abs(float(row["default"])), 100.0)
            kind = "int" if ann is int else "float"
            step = 1.0 if kind == "int" else _nice_step(hi - lo)
            specs.append(LeverSpec(kind=kind, lo=float(lo), hi=float(hi), step=step, **common))
        # lists and other types are not levers on the page
    group_rank = {title: i for i, (_k, title, _m) in enumerate(GROUPS)}
    specs.sort(key=lambda s: (group_rank.get(s.group, 1.5 if s.group != "Other policy levers" else 2.5), order.get(s.path, 99)))
    return specs


def grouped(specs: list[LeverSpec]) -> list[tuple[str, list[LeverSpec]]]:
    """Specs grouped by ``group``, groups in the order they first appear."""
    out: dict[str, list[LeverSpec]] = {}
    for s in specs:
        out.setdefault(s.group, []).append(s)
    return list(out.items())


# ---------------------------------------------------------------------------- scenarios
def scenario_folders() -> list[Path]:
    """Folders holding the shipped scenarios (the source tree's ``scenarios/``, then the working folder's)."""
    here = Path(__file__).resolve().parents[3] / "scenarios"  # src/villagesim/app/session.py
    out = []
    for folder in (here, Path.cwd() / "scenarios"):
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in out]:
            out.append(folder)
    return out


@dataclass
class CatalogueEntry:
    """A scenario the planner can pick: its name on the page, the validated scenario, its file."""

    name: str
    scenario: Scenario
    source: str


def shipped_scenarios() -> dict[str, CatalogueEntry]:
    """The shipped scenario files that validate, by file stem (baseline first)."""
    entries: dict[str, CatalogueEntry] = {}
    for folder in scenario_folders():
        for path in sorted(folder.glob("*.toml"), key=lambda p: (p.stem != "baseline", p.stem)):
            if path.stem in entries:
                continue
            try:
                entries[path.stem] = CatalogueEntry(path.stem, load_scenario(path).scenario, str(path))
            except ScenarioError:
                continue  # a broken file in the folder is reported by `villagesim check`, not here
    return entries


# ---------------------------------------------------------------------------- what one session may take
@dataclass(frozen=True)
class PageLimits:
    """What one browser session may ask of the server; refused in one line before anything
    is allocated. The command line has its own, larger limit (``villagesim run --max-memory``).

    Attributes:
        persons: registered persons of the run (villages x residents per village). The
            shipped prefecture (about 10^6 persons) fits.
        memory_bytes: predicted peak memory of the session's run *and* its baseline
            (:func:`villagesim.config.limits.estimate` with two arms, no village records).
        interventions: ``[[intervention]]`` entries of a scenario run on the page.
        file_bytes: bytes of one uploaded file (a scenario file is a few kB).
        upload_bytes: bytes of all the files uploaded together.
        files: files uploaded together (a scenario and the files it extends).
    """

    persons: int = 2_000_000
    memory_bytes: int = 2 * 2**30
    interventions: int = 500
    file_bytes: int = 256_000
    upload_bytes: int = 1_000_000
    files: int = 16


PAGE_LIMITS = PageLimits()
MAX_UPLOAD_BYTES = PAGE_LIMITS.file_bytes  # kept for callers of the former single-file upload
ON_THE_COMMAND_LINE = "run it with `villagesim run` on the command line"


def check_page_limits(scenario: Scenario, *, file: str | None = None, limits: PageLimits = PAGE_LIMITS) -> RunSize:
    """Refuse a scenario too big for one session of the page, before anything is allocated.

    Returns:
        the predicted size of the session (the run and its baseline).

    Raises:
        ScenarioError: one line naming what is too big, the value and the limit.
    """
    pop = scenario.population
    persons = int(pop.villages) * int(pop.residents_per_village)
    if persons > limits.persons:
        raise ScenarioError(
            f"{int(pop.villages):,} villages of {int(pop.residents_per_village):,} registered residents are "
            f"{persons:,} persons, more than the {limits.persons:,} the page runs; {ON_THE_COMMAND_LINE}",
            file=file,
            field="population",
        )
    if len(scenario.intervention) > limits.interventions:
        raise ScenarioError(
            f"{len(scenario.intervention):,} interventions, more than the {limits.interventions:,} the page runs; "
            f"{ON_THE_COMMAND_LINE}",
            file=file,
            field="intervention",
        )
    # the run and its baseline step together: two arms of one replicate, no per-village record
    two_arms = scenario.model_copy(update={"run": scenario.run.model_copy(update={"replicates": 2})})
    return check_size(
        two_arms, limit=limits.memory_bytes, concurrent=2, record_villages=False, file=file, how=ON_THE_COMMAND_LINE
    )


# ---------------------------------------------------------------------------- uploads
Upload = tuple[str, "bytes | str"]
"""One uploaded file: its name as the browser gives it and its content."""


def _upload_name(name: str) -> str:
    fname = Path(str(name or "uploaded.toml").replace("\\", "/")).name
    if not fname.endswith(".toml") or fname.startswith(".") or "\x00" in fname:
        raise ScenarioError("expected a scenario file ending in .toml", file=fname or None)
    return fname


def _scenario_of(raws: dict[str, Any], names: list[str]) -> str:
    """The uploaded file that is the scenario: the one no other uploaded file extends."""
    if len(names) == 1:
        return names[0]
    extended = set()
    for raw in raws.values():
        target = raw.get("extends") if isinstance(raw, dict) else None
        if isinstance(target, str):
            extended.update({target, target + ".toml"})
    leaves = [n for n in names if n not in extended]
    if len(leaves) == 1:
        return leaves[0]
    if not leaves:  # a cycle: loading any of them reports it
        return names[0]
    raise ScenarioError(
        f"upload one scenario with the files it extends; {', '.join(leaves)} are each extended by no other file uploaded"
    )


def load_uploaded_files(files: list[Upload], *, limits: PageLimits = PAGE_LIMITS) -> tuple[str, Scenario]:
    """Validate a scenario uploaded with the files it extends, exactly as ``villagesim check`` would.

    The files are written into a fresh temporary folder of their own (removed afterwards)
    and read with :meth:`ReadRules.confined_to` that folder and the shipped scenarios:
    ``extends`` may name, by bare name, a file uploaded together with the scenario or a
    shipped scenario, nothing else on the server (no paths, no devices, pipes or links, and
    no file another planner uploaded). Errors name files by their bare names only.

    Returns:
        the name of the file that is the scenario (the one no other uploaded file extends),
        and the validated scenario.

    Raises:
        ScenarioError: a wrong file name, too many or too large files, a scenario above
            :data:`PAGE_LIMITS`, or any scenario error.
    """
    if not files:
        raise ScenarioError("no file was uploaded")
    if len(files) > limits.files:
        raise ScenarioError(f"{len(files)} files uploaded together; at most {limits.files} are read")
    contents: dict[str, bytes] = {}
    total = 0
    for name, content in files:
        fname = _upload_name(name)
        data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if len(data) > limits.file_bytes:
            raise ScenarioError(f"file too large ({len(data):,} bytes; at most {limits.file_bytes:,} are read)", file=fname)
        if fname in contents:
            raise ScenarioError("two uploaded files have this name", file=fname)
        total += len(data)
        if total > limits.upload_bytes:
            raise ScenarioError(f"the files uploaded together are larger than the {limits.upload_bytes:,} bytes read")
        contents[fname] = data
    raws: dict[str, Any] = {}
    interventions: dict[str, int] = {}
    for fname, data in contents.items():
        try:
            raws[fname] = parse_toml(data.decode("utf-8-sig"), fname)  # bounded nesting, no recursion limit
        except (UnicodeDecodeError, ScenarioError):
            continue  # loading the file reports it with its line
        items = raws[fname].get("intervention")
        if isinstance(items, list) and items:
            interventions[fname] = len(items)
    if sum(interventions.values()) > limits.interventions:  # refused before the (slower) check of each one
        raise ScenarioError(
            f"{sum(interventions.values()):,} interventions, more than the {limits.interventions:,} the page runs; "
            f"{ON_THE_COMMAND_LINE}",
            file=next(iter(interventions)) if len(interventions) == 1 else None,
            field="intervention",
        )
    chosen = _scenario_of(raws, list(contents))
    with tempfile.TemporaryDirectory(prefix="villagesim-upload-") as tmp:
        folder = Path(tmp)
        for fname, data in contents.items():
            (folder / fname).write_bytes(data)
        # extends may name only these files and the shipped scenarios, by name: nothing else is read
        rules = ReadRules.confined_to(folder, *scenario_folders(), max_bytes=limits.file_bytes)
        scenario = load_scenario(folder / chosen, rules=rules).scenario
    check_page_limits(scenario, file=chosen, limits=limits)
    return chosen, scenario


def load_uploaded(name: str, content: bytes | str) -> Scenario:
    """Validate one uploaded scenario file (see :func:`load_uploaded_files`)."""
    return load_uploaded_files([(name, content)])[1]


# ---------------------------------------------------------------------------- work off the page's thread
WORKER_THREADS = 2
"""Checks and builds run at the same time for all sessions together; more wait their turn."""
_WORKERS = ThreadPoolExecutor(max_workers=WORKER_THREADS, thread_name_prefix="villagesim-page-work")


def in_worker(f: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``f`` in the page's worker threads and wait for it (from a session's task thread).

    A session's event handlers then never run a scenario check or a model build
    themselves: the page stays responsive and shows what is under way, and at most
    :data:`WORKER_THREADS` such jobs run at once, however many sessions ask.
    """
    return _WORKERS.submit(f, *args, **kwargs).result()


def validate_seed(text: str | int, scenario: Scenario) -> int:
    """The seed typed on the page, validated against the schema's bounds for ``run.seed``.

    Raises:
        ScenarioError: naming ``run.seed`` when the text is not a whole number in bounds.
    """
    value: Any = text
    if isinstance(text, str):
        value = text.strip()
        if re.fullmatch(r"[+-]?\d+", value):
            value = int(value)
    return int(apply_overrides(scenario, {"run.seed": value}).run.seed)


# ---------------------------------------------------------------------------- the paired run
ARMS = ("with levers", "baseline")


class PageRun(mesa.Model):
    """The run a browser session steps: the planner's run and, optionally, its baseline.

    Args:
        scenario: the scenario as picked or uploaded.
        seed: root seed (defaults to the scenario's ``run.seed``).
        levers: lever values set on the page (dotted path -> value), applied from week 0.
        compare: also step the baseline: the same scenario and seed without ``levers``
            nor any lever changed during the run.

    Attributes:
        run: the :class:`VillageModel` with the planner's levers.
        baseline: the counterfactual :class:`VillageModel`, or ``None``.
        levers: every lever the planner set (kept across Reset).
    """

    def __init__(
        self, scenario: Scenario, seed: int | None = None, levers: dict[str, Any] | None = None, compare: bool = False
    ) -> None:
        seed = int(scenario.run.seed if seed is None else seed)
        check_page_limits(scenario)  # nothing is allocated for a scenario too big for the page
        super().__init__(rng=seed)
        self.lock = threading.RLock()  # the page steps in a play thread while another thread may draw
        self.scenario = apply_overrides(scenario, {"run.seed": seed})
        self.seed = seed
        self.levers: dict[str, Any] = dict(levers or {})
        treated = apply_overrides(self.scenario, self.levers) if self.levers else self.scenario
        self.run = VillageModel(treated, record_villages=False)
        self.baseline: VillageModel | None = None
        if compare:
            self.set_compare(True)
        self.running = True

    @property
    def week(self) -> int:
        """Weeks run so far."""
        return int(self.run.steps)

    @property
    def horizon(self) -> int:
        """Weeks the scenario runs for."""
        return int(self.run.horizon)

    def step(self) -> None:
        """Advance both arms one week."""
        with self.lock:
            if not self.run.running:
                self.running = False
                return
            self.run.step()
            if self.baseline is not None:
                self.baseline.step()
            self.running = bool(self.run.running)

    def set_lever(self, path: str, value: Any) -> Any:
        """Change a lever of the running model from the next week on; return the validated value.

        Raises:
            ScenarioError: for an unknown lever or an invalid value; nothing changes then.
        """
        with self.lock:
            self.run.set_lever(path, value)  # validates; leaves the model untouched on error
            new = self.run.scenario.get(path)
            self.levers[path] = new
            return new

    def lever_value(self, path: str) -> Any:
        """The lever's value in the running model now."""
        return self.run.scenario.get(path)

    def set_compare(self, on: bool) -> None:
        """Start (catching up to the current week) or stop stepping the baseline."""
        with self.lock:
            if not on:
                self.baseline = None
                return
            if self.baseline is None:
                base = VillageModel(self.scenario, record_villages=False)
                for _ in range(self.week):
                    base.step()
                self.baseline = base

    # ------------------------------------------------------------------ outputs
    def data(self) -> pd.DataFrame:
        """The run's weekly outcomes, with an ``arm`` column (and the baseline's rows when compared)."""
        frames = []
        with self.lock:
            for arm, model in zip(ARMS, (self.run, self.baseline), strict=True):
                if model is None:
                    continue
                ts = model.timeseries()
                ts.insert(0, "arm", arm)
                frames.append(ts)
        return pd.concat(frames, ignore_index=True)

    def csv_bytes(self) -> bytes:
        """:meth:`data` as CSV."""
        return self.data().to_csv(index=False).encode("utf-8")

    def parquet_bytes(self) -> bytes:
        """:meth:`data` as Parquet."""
        buf = io.BytesIO()
        self.data().to_parquet(buf, index=False)
        return buf.getvalue()

    def village_unmet_share(self, model: VillageModel | None = None) -> np.ndarray:
        """Share of this week's need hours unmet, per village (NaN where no elder has need)."""
        model = model or self.run
        n_v = len(model.world.villages)
        wk = model.week
        if wk is None or wk.need is None or len(wk.elders) == 0:
            return np.full(n_v, np.nan)
        village = model.world.persons.village[wk.elders]
        need = np.bincount(village, weights=wk.need.sum(axis=1), minlength=n_v)
        unmet = np.bincount(village, weights=wk.remaining.sum(axis=1), minlength=n_v)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(need > 0, unmet / np.where(need > 0, need, 1.0), np.nan)

    def so_far(self) -> dict[str, dict[str, float]] | None:
        """Both arms over all weeks so far: mean unmet need share, mean active volunteers, total
        spending (None unless compared and at least one week ran)."""
        if self.baseline is None or self.week == 0:
            return None
        out = {}
        with self.lock:
            for arm, model in zip(ARMS, (self.run, self.baseline), strict=True):
                ts = model.recorder
                rows = np.asarray(ts.totals)
                col = {c: i for i, c in enumerate(COLUMNS)}
                out[arm] = {
                    "unmet_need_share": float(rows[:, col["unmet_need_share"]].mean()),
                    "active_volunteers": float(rows[:, col["active_volunteers"]].mean()),
                    "spend_total": float(rows[:, col["spend_total"]].sum()),
                }
        return out

    def latest(self, column: str, arm: str = ARMS[0]) -> float | None:
        """This week's value of an output column for an arm (None before the first step)."""
        model = self.run if arm == ARMS[0] else self.baseline
        if model is None or not model.latest:
            return None
        return float(model.latest.get(column, 0.0))
