"""Subcommands ``compare``, ``sweep``, ``analyze`` and ``sensitivity`` of the ``villagesim`` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from villagesim.cli.common import add_confine, add_max_memory
from villagesim.errors import VillagesimError
from villagesim.runs.backends import backend_for

EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``compare``, ``sweep`` and ``analyze`` to the ``villagesim`` parser."""
    p = sub.add_parser(
        "compare",
        help="compare an intervention with its baseline on common random numbers",
        description="Run both arms with the same seeds and replicates and report paired differences with 95%% "
        "confidence intervals. With one scenario, compare it with itself without its [[intervention]] entries.",
    )
    p.add_argument("baseline", help="baseline scenario TOML (or, alone, a scenario with [[intervention]] entries)")
    p.add_argument("intervention", nargs="?", help="intervention scenario TOML")
    p.add_argument("--replicates", type=int, default=10, help="paired replicates (default 10)")
    p.add_argument("--out", help="results folder (default results/compare-BASELINE-vs-INTERVENTION)")
    p.add_argument("--steps", type=int, help="weeks to run (default: the baseline's run.steps)")
    p.add_argument("--seed", type=int, help="root seed of both arms (default: the baseline's run.seed)")
    p.add_argument("--window", type=int, default=52, help="weeks at the end averaged into an outcome (default 52)")
    p.add_argument("--workers", type=int, default=1, help="processes running replicates (default 1: serial)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_confine(p)
    add_max_memory(p)
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "sweep",
        help="run an experiment's design on Dask (local, an existing scheduler, or a SLURM/PBS cluster)",
        description="Run every run of an experiment file, streaming per-run summaries and time series to DIR. "
        "Running the same command again on the same DIR runs only what is missing.",
    )
    p.add_argument("experiment", help="experiment TOML file (see experiments/)")
    p.add_argument("--out", required=True, help="sweep folder (created, or resumed)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: one per core; 0 = serial, no Dask)")
    where.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    where.add_argument("--scheduler-file", help="scheduler file written by `dask scheduler --scheduler-file`")
    where.add_argument("--cluster", choices=["slurm", "pbs"], help="start a dask-jobqueue cluster of batch jobs")
    p.add_argument("--jobs", type=int, default=1, help="--cluster: batch jobs to start (default 1)")
    p.add_argument("--cores", type=int, default=1, help="--cluster: cores per job (default 1)")
    p.add_argument("--processes", type=int, help="--cluster: worker processes per job (default: one per core)")
    p.add_argument("--memory", default="4GB", help="--cluster: memory per job (default 4GB)")
    p.add_argument("--walltime", help="--cluster: wall time per job, e.g. 02:00:00")
    p.add_argument("--queue", help="--cluster: partition (SLURM) or queue (PBS)")
    p.add_argument("--account", help="--cluster: account/project to charge")
    p.add_argument(
        "--job-extra", action="append", help="--cluster: extra batch directive, repeatable (write --job-extra=--qos=normal)"
    )
    p.add_argument("--local-directory", help="--cluster: scratch folder on the compute nodes")
    p.add_argument("--max-runs", type=int, help="only the first N runs of the design (a quick look)")
    p.add_argument("--steps", type=int, help="weeks per run instead of the experiment's (a quick look)")
    p.add_argument("--runs-per-task", type=int, help="runs per Dask task (default: the replicates of a point, at least 4)")
    p.add_argument("--retry-failed", action="store_true", help="run again the runs recorded as failed")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the experiment, print its size and first runs and stop (the design is counted, not built)",
    )
    p.add_argument(
        "--allow-large-design",
        action="store_true",
        help="build a design of more than 1,000,000 runs (refused by default: it may not fit in memory)",
    )
    p.add_argument(
        "--dashboard",
        nargs="?",
        const="127.0.0.1:0",
        metavar="ADDRESS",
        help="serve Dask's dashboard (it has no login): on 127.0.0.1 and a free port, or on ADDRESS "
        "(0.0.0.0:8787 opens it to the network); without it a local cluster has none and a batch "
        "cluster's listens on 127.0.0.1 only",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "analyze",
        help="sensitivity indices, influence figures and scenario discovery for a sweep folder",
        description="Sobol (S1, ST) or Morris indices for sweeps made with those designs, eta^2 for any sweep, "
        "figures over the two most influential inputs, and PRIM scenario discovery for a threshold on an outcome.",
    )
    p.add_argument("folder", help="sweep folder written by `villagesim sweep`")
    p.add_argument(
        "--outcome", help="outcome for the figures and discovery (default: the experiment's [discovery] or first outcome)"
    )
    p.add_argument("--threshold", type=float, help="cases of interest: OUTCOME above (or below) this value")
    p.add_argument("--direction", choices=["above", "below"], help="side of the threshold (default above)")
    p.add_argument("--min-density", type=float, default=0.8, help="PRIM: least share of cases in the chosen box (default 0.8)")
    p.set_defaults(func=cmd_analyze)

    register_sensitivity(sub)


# --------------------------------------------------------------------- compare
def cmd_compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from villagesim.cli.common import load, max_memory
    from villagesim.config.loading import scenario_hash, scenario_to_toml
    from villagesim.experiments.compare import compare, comparison_figures, summary_lines, without_interventions
    from villagesim.runs.folder import ResultFolder, estimate_bytes, provenance, safe_name, write_json, write_parquet

    first = load(args.baseline, args)
    if args.intervention is None:
        if not first.scenario.intervention:
            raise VillagesimError(
                f"{first.path}: has no [[intervention]] entries; give a second scenario to compare with "
                "(villagesim compare BASELINE INTERVENTION)"
            )
        inter = first.scenario
        base = without_interventions(inter)
        default_name = f"compare-{safe_name(inter.name)}"
    else:
        base = first.scenario
        inter = load(args.intervention, args).scenario
        default_name = f"compare-{safe_name(base.name)}-vs-{safe_name(inter.name)}"
    if args.replicates < 2:
        raise VillagesimError("--replicates must be at least 2 for a confidence interval")
    if args.steps is not None and args.steps < 1:
        raise VillagesimError("--steps must be at least 1")
    if args.window < 1:
        raise VillagesimError("--window must be at least 1")
    out = Path(args.out) if args.out is not None else Path("results") / safe_name(default_name)
    steps = args.steps or base.run.steps
    notes = []
    if inter.run.steps != base.run.steps and args.steps is None:
        notes.append(f"both arms run the baseline's {base.run.steps} weeks (the intervention file says {inter.run.steps})")
    if inter.run.seed != base.run.seed and args.seed is None:
        notes.append(f"both arms use the baseline's seed {base.run.seed} (the intervention file says {inter.run.seed})")
    if args.workers < 1:
        raise VillagesimError("--workers must be at least 1")
    rows = 2 * args.replicates * steps
    # the folder is checked, locked and cleaned before the simulation, so that a bad --out costs nothing
    with ResultFolder.claim(out, kind="compare", estimate=estimate_bytes(rows)) as folder:
        with (
            tqdm(total=rows, unit="step", desc="compare", disable=args.quiet or None, file=sys.stderr) as bar,
            backend_for(args.workers) as backend,
        ):
            c = compare(
                base,
                inter,
                replicates=args.replicates,
                steps=steps,
                seed=args.seed,
                window=args.window,
                progress=bar.update,
                backend=backend,
                max_memory=max_memory(args),
            )
        with folder.writing() as tmp:
            c.table.to_csv(tmp / "comparison.csv", index=False)
            write_parquet(c.timeseries, tmp / "timeseries.parquet")
            write_parquet(c.values, tmp / "replicate_outcomes.parquet")
            (tmp / "baseline.toml").write_text(scenario_to_toml(c.baseline), encoding="utf-8")
            (tmp / "intervention.toml").write_text(scenario_to_toml(c.intervention), encoding="utf-8")
            comparison_figures(c, tmp / "figures")
            write_json(
                {
                    "baseline": c.baseline.name,
                    "intervention": c.intervention.name,
                    "replicates": c.replicates,
                    "steps": c.baseline.run.steps,
                    "window_weeks": c.window,
                    "runtime_seconds": round(c.seconds, 3),
                    "notes": notes,
                    "baseline_hash": scenario_hash(c.baseline),
                    "intervention_hash": scenario_hash(c.intervention),
                    **provenance(c.baseline.run.seed, scenario_hash(c.intervention)),
                    "comparison": c.table.to_dict(orient="records"),
                },
                tmp / "summary.json",
            )
    for line in summary_lines(c) + [f"  note: {n}" for n in notes]:
        print(line)
    print(f"results in {out}/ (comparison.csv, figures/trajectories.png, figures/differences.png)")
    return 0


# --------------------------------------------------------------------- sweep
def cmd_sweep(args: argparse.Namespace) -> int:
    from villagesim.experiments.design import MAX_DESIGN_RUNS, check_size, describe, design_head, load_experiment
    from villagesim.experiments.sweep import SweepStore, sweep

    exp = load_experiment(args.experiment)
    for value, flag in ((args.max_runs, "--max-runs"), (args.steps, "--steps"), (args.runs_per_task, "--runs-per-task")):
        if value is not None and value < 1:
            raise VillagesimError(f"{flag} must be at least 1")
    if args.workers is not None and args.workers < 0:
        raise VillagesimError("--workers must be 0 (serial) or more")
    limit = None if args.allow_large_design else MAX_DESIGN_RUNS
    if not args.quiet or args.dry_run:
        for line in describe(exp):  # counted, not built
            print(line)
    if args.dry_run:
        head = design_head(exp, 5, max_runs=limit)
        if head is not None and len(head):
            print("  first runs:")
            for line in head.to_string(index=False).splitlines():
                print(f"    {line}")
        check_size(exp, limit)
        return 0
    check_size(exp, limit)  # before starting a cluster
    store = SweepStore(args.out)
    try:
        with (
            store.locked(),  # before starting a cluster: a second driver on this store refuses at once
            backend_for(
                args.workers,
                dask=True,
                scheduler=args.scheduler,
                scheduler_file=args.scheduler_file,
                cluster=args.cluster,
                retries=2,
                jobs=args.jobs,
                cores=args.cores,
                processes=args.processes,
                memory=args.memory,
                walltime=args.walltime,
                queue=args.queue,
                account=args.account,
                job_extra=args.job_extra,
                local_directory=args.local_directory,
                **({"dashboard": args.dashboard} if args.dashboard else {}),
            ) as backend,
        ):
            if not args.quiet:
                print(f"  running {backend.describe()}; results stream to {args.out}/")
            report = sweep(
                exp,
                args.out,
                backend=backend,
                max_runs=args.max_runs,
                steps=args.steps,
                runs_per_task=args.runs_per_task,
                retry_failed=args.retry_failed,
                progress=not args.quiet,
                allow_large_design=args.allow_large_design,
            )
    except KeyboardInterrupt:
        print(
            f"villagesim: interrupted; finished runs are kept in {args.out}/ - run the same command again to complete it",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    missing = report.selected - report.already - report.ran
    print(
        f"{exp.name}: {report.ran} run(s) in {report.seconds:.1f} s ({report.runs_per_second:.2f} runs/s, {report.tasks} tasks); "
        f"{report.already} already done; {report.failed} failed now; {report.total - report.selected} beyond --max-runs"
        + (f"; {missing} missing" if missing else "")
    )
    if report.failed:
        print(f"  failed runs are recorded in {args.out}/failed/ (rerun them with --retry-failed)")
    print(f"results in {args.out}/ (runs/, timeseries/, design.parquet); next: villagesim analyze {args.out}")
    return 0


# --------------------------------------------------------------------- analyze
def cmd_analyze(args: argparse.Namespace) -> int:
    from villagesim.experiments.analysis import analyze

    if not Path(args.folder).is_dir():
        raise VillagesimError(f"sweep folder not found: {args.folder}")
    if not 0 < args.min_density <= 1:
        raise VillagesimError("--min-density must be in (0, 1]")
    a = analyze(
        args.folder, outcome=args.outcome, threshold=args.threshold, direction=args.direction, min_density=args.min_density
    )
    print(f"{args.folder}: {a.points} design point(s), {a.runs} run(s), {a.failed} failed")
    sub = a.indices[a.indices["outcome"] == a.outcome]
    for method, cols in (
        ("sobol", ["S1", "S1_conf", "ST", "ST_conf"]),
        ("morris", ["mu_star", "mu_star_conf", "sigma"]),
        ("eta2", ["eta2"]),
    ):
        part = sub[sub["method"] == method]
        if part.empty:
            continue
        key = {"sobol": "ST", "morris": "mu_star", "eta2": "eta2"}[method]
        print(f"  {method} indices for {a.outcome}:")
        for _, row in part.sort_values(key, ascending=False).iterrows():
            vals = "  ".join(f"{c} {row[c]:.3f}" for c in cols)
            print(f"    {row['parameter']:<42} {vals}")
        if method in ("sobol", "morris"):
            break
    if a.top:
        print(f"  most influential on {a.outcome}: {', '.join(a.top[:2])}")
    if a.discovery is not None:
        b = a.discovery.box
        print(
            f"  where is {a.outcome} {a.direction} {a.threshold:g}? {a.discovery.cases} of {a.discovery.total} points; "
            f"box: {b.describe()}"
        )
        print(f"    coverage {b.coverage:.0%} (of those points, in the box), density {b.density:.0%} (of the box, such points)")
    for note in a.notes:
        print(f"  note: {note}")
    print(f"results in {a.folder}/")
    return 0


# --------------------------------------------------------------------- sensitivity
def register_sensitivity(sub: argparse._SubParsersAction) -> None:
    """Add ``sensitivity`` to the ``villagesim`` parser."""
    p = sub.add_parser(
        "sensitivity",
        help="the published sensitivity analysis: Morris over every uncertain parameter, Sobol on the strongest",
        description="Screen every uncertain parameter (structural ones included) with Morris elementary effects, "
        "then compute Sobol indices on the strongest, for unmet need share, matched requests and the effects of "
        "the time bank and the platform against the baseline; write OUT/sensitivity.md, OUT/figures/sensitivity_*.png "
        "and OUT/sensitivity/*.csv.",
    )
    p.add_argument("--out", default="docs", help="folder of the report (default docs)")
    p.add_argument("--scenarios", default="scenarios", help="folder with baseline.toml, time_bank.toml, platform.toml")
    p.add_argument("--quick", action="store_true", help="a small version: 1 village of ~100, 1 year, 2 trajectories")
    p.add_argument("--seed", type=int, help="seed of every run and design (default: the baseline's run.seed)")
    p.add_argument("--workers", type=int, default=1, help="processes running the runs (default 1: serial)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sensitivity)


def cmd_sensitivity(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from villagesim.experiments.sensitivity import SETTINGS, run_sensitivity, write_report

    if args.workers < 1:
        raise VillagesimError("--workers must be at least 1")
    if args.seed is not None and args.seed < 0:
        raise VillagesimError("--seed must be 0 or more")
    setting = SETTINGS["quick" if args.quick else "full"]
    command = "villagesim sensitivity" + (" --quick" if args.quick else "") + f" --out {args.out}"
    if args.seed is not None:
        command += f" --seed {args.seed}"
    with tqdm(unit="run", desc="sensitivity", disable=args.quiet or None, file=sys.stderr) as bar:
        result = run_sensitivity(args.scenarios, setting, seed=args.seed, workers=args.workers, progress=bar.update)
    doc = write_report(result, args.out, command)
    print(f"{len(result.factors)} factors screened, Sobol on {len(result.top)}; {result.runs} runs")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"report in {doc} (figures in {Path(args.out) / 'figures'})")
    return 0
