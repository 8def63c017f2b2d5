"""The ``villagesim`` command line.

``villagesim check FILE`` validates a scenario; ``villagesim run FILE`` runs it and writes a
results folder. A user error prints one line (``villagesim: error: ...``) and exits 2;
there is no traceback for a bad file, and nothing half-written is left behind.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from villagesim.cli.common import add_confine, add_max_memory, max_memory
from villagesim.errors import VillagesimError
from villagesim.version import __version__

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


DICTIONARY = "columns.csv"
"""The data dictionary written beside a run's Parquet files."""


def _cmd_outputs(args: argparse.Namespace) -> int:
    """Print the data dictionary of the results files (from the output registry)."""
    import csv
    import json

    from villagesim.outputs.columns import dictionary

    rows = dictionary()
    if args.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    else:
        width = max(len(r["name"]) for r in rows)
        unit = max(len(r["unit"]) for r in rows)
        for r in rows:
            print(f"{r['name']:<{width}}  {r['unit']:<{unit}}  {r['source']:<12}  {r['label']}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from villagesim.cli.common import load, print_warnings
    from villagesim.config.limits import estimate, memory_limit
    from villagesim.config.loading import changed_parameters, scenario_hash
    from villagesim.state.institutions import FUNDED_LEVERS, unfundable

    loaded = load(args.scenario, args, warn=False)
    s = loaded.scenario
    print(f"{loaded.path}: OK")
    print(f"  name:        {s.name}")
    if s.description:
        print(f"  question:    {s.description}")
    if len(loaded.chain) > 1:
        print(f"  extends:     {' -> '.join(str(p) for p in loaded.chain[1:])}")
    pop = s.population
    print(
        f"  villages:    {pop.villages} x ~{pop.residents_per_village} registered residents"
        f" ({pop.villages * pop.residents_per_village:,} persons)"
    )
    print(
        f"  run:         {s.run.steps} weeks ({s.run.steps / 52:.1f} years), seed {s.run.seed}, {s.run.replicates} replicate(s)"
    )
    changed = {k: v for k, v in changed_parameters(s).items() if not k.startswith(("run.", "population."))}
    if changed:
        print("  differs from defaults:")
        for path, (default, value) in changed.items():
            print(f"    {path} = {value!r}  (default {default!r})")
    for item in s.intervention:
        sets = ", ".join(f"{k} = {v!r}" for k, v in item.set.items())
        late = "  [after the last step: never takes effect]" if item.step > s.run.steps else ""
        print(f"  intervention at week {item.step}: {sets}{late}")
    size = estimate(s)
    print(f"  size:        {size.describe()}")
    limit = max_memory(args) or memory_limit()
    if size.bytes > limit:
        print(
            f"  too large:   above the {limit / 2**30:.1f} GiB a run may take here; `run` refuses it "
            "unless --max-memory allows more"
        )
    funded = [lever for lever in FUNDED_LEVERS if lever.value(s.policy) > 0]
    short = unfundable(s)
    for lever, why in short:
        print(f"  unfunded:    {lever.path} is set but the budget can never pay it ({why})")
    if funded and not short:
        names = ", ".join(lever.path for lever in funded)
        print(
            f"  funding:     whether the budget pays {names} in every week is reported by the run (summary.json: lever_funding)"
        )
    print(f"  hash:        {scenario_hash(s)[:16]}")
    print_warnings(loaded.warnings)
    return 0


def _default_out(name: str) -> Path:
    """``results/<name>``, with the scenario's name made one harmless folder name."""
    from villagesim.runs.folder import safe_name

    return Path("results") / safe_name(name)


def _cmd_run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from villagesim.cli.common import load
    from villagesim.config.limits import check_size
    from villagesim.config.loading import apply_overrides, scenario_hash, scenario_to_toml
    from villagesim.outputs.columns import write_dictionary
    from villagesim.outputs.figures import run_figures
    from villagesim.runs.backends import backend_for
    from villagesim.runs.folder import (
        SCENARIO,
        SUMMARY,
        TIMESERIES,
        VILLAGES,
        ResultFolder,
        estimate_bytes,
        provenance,
        write_json,
        write_parquet,
    )
    from villagesim.runs.runner import describe_lever_funding, lever_funding, run_scenario, summarise

    loaded = load(args.scenario, args)
    scenario = loaded.scenario
    limit = max_memory(args)
    overrides = {}
    if args.seed is not None:
        overrides["run.seed"] = args.seed
    if args.steps is not None:
        overrides["run.steps"] = args.steps
    if args.replicates is not None:
        overrides["run.replicates"] = args.replicates
    if overrides:
        scenario = apply_overrides(scenario, overrides, file="command line")
    out = Path(args.out) if args.out is not None else _default_out(scenario.name)
    total = scenario.run.steps * scenario.run.replicates
    if args.workers < 1:
        raise VillagesimError("--workers must be at least 1")
    reports = -(-scenario.run.steps // scenario.run.village_report_every)
    rows = total + scenario.run.replicates * scenario.population.villages * reports
    # refused before a folder is touched; run_scenario checks again for Python callers
    check_size(scenario, limit=limit, concurrent=min(args.workers, scenario.run.replicates), file=str(loaded.path))
    # the folder is checked, locked and cleaned before the simulation, so that a bad --out costs nothing
    with ResultFolder.claim(out, kind="run", estimate=estimate_bytes(rows)) as folder:
        with (
            tqdm(total=total, unit="step", desc=scenario.name, disable=args.quiet or None, file=sys.stderr) as bar,
            backend_for(min(args.workers, scenario.run.replicates)) as backend,
        ):
            result = run_scenario(scenario, progress=bar.update, backend=backend, max_memory=limit)
        digest = scenario_hash(scenario)
        summary = {
            "scenario": scenario.name,
            "description": scenario.description,
            "source_file": str(loaded.path),
            "replicates": result.replicates,
            "steps": scenario.run.steps,
            "villages": scenario.population.villages,
            "runtime_seconds": round(result.seconds, 3),
            **provenance(scenario.run.seed, digest),
            "outcomes": summarise(result.timeseries),
            # levers the budget must pay: weeks of each year they were set and delivered in full
            "lever_funding": lever_funding(result.timeseries),
        }
        summary["unfunded_levers"] = [k for k, v in summary["lever_funding"].items() if v["unfunded"]]
        with folder.writing() as tmp:
            write_parquet(result.timeseries, tmp / TIMESERIES)
            write_parquet(result.villages, tmp / VILLAGES)
            (tmp / SCENARIO).write_text(
                f"# resolved scenario of {loaded.path} (hash {digest[:16]})\n" + scenario_to_toml(scenario),
                encoding="utf-8",
            )
            run_figures(result.timeseries, tmp / "figures", scenario.name)
            write_dictionary(tmp / DICTIONARY)
            write_json(summary, tmp / SUMMARY)
    o = summary["outcomes"]
    print(
        f"{scenario.name}: {result.replicates} replicate(s) x {scenario.run.steps} weeks in {result.seconds:.1f} s; "
        f"final unmet need share {o['unmet_need_share']['final_mean']:.3f}, "
        f"active volunteers {o['active_volunteers']['final_mean']:.1f}, mean trust {o['mean_trust']['final_mean']:.3f}"
    )
    funding = describe_lever_funding(summary["lever_funding"])
    if funding:
        print(funding)
    print(f"results in {out}/")
    return 0


COMMAND_MODULES: list[str] = [
    # each module defines register(subparsers) adding its subcommands
    "villagesim.cli.experiments",
    "villagesim.cli.validate",
    "villagesim.cli.app",
]
"""Modules that add further subcommands (compare, sweep, analyze, app, calibrate, validate)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="villagesim",
        description="Test rural mutual-aid elderly-care policies on simulated villages.",
    )
    parser.add_argument("--version", action="version", version=f"villagesim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="validate a scenario file and print a summary")
    p.add_argument("scenario", help="scenario TOML file")
    add_confine(p)
    add_max_memory(p)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("outputs", help="list every output column: unit, label, source process, meaning")
    p.add_argument("--format", choices=["table", "csv", "json"], default="table", help="how to print it (default table)")
    p.set_defaults(func=_cmd_outputs)

    p = sub.add_parser("run", help="run a scenario and write a results folder")
    p.add_argument("scenario", help="scenario TOML file")
    p.add_argument("--out", help="results folder (default results/<scenario name>)")
    p.add_argument("--seed", type=int, help="root seed (overrides run.seed)")
    p.add_argument("--steps", type=int, help="weeks to run (overrides run.steps)")
    p.add_argument("--replicates", type=int, help="replicates (overrides run.replicates)")
    p.add_argument("--workers", type=int, default=1, help="processes running replicates (default 1: serial)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_confine(p)
    add_max_memory(p)
    p.set_defaults(func=_cmd_run)

    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``villagesim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VillagesimError as exc:
        print(f"villagesim: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("villagesim: interrupted; no results were written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        sys.stderr.close()
        return 0
    except OSError as exc:  # the disk, not the scenario: full, read-only, a name too long
        where = f": {exc.filename}" if exc.filename else ""
        print(f"villagesim: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
