"""The ``calibrate`` and ``validate`` subcommands.

``villagesim calibrate [SCENARIO] [--out DIR] [--quick]`` fits the structural, health and
behavioural parameters that no survey fixes directly to the published targets and writes
``fitted.json`` (values, uncertainty, diagnostics).

``villagesim validate [--out DIR] [--quick]`` runs the baseline against every target of
``calibration_targets.csv`` that villagesim reproduces and every pattern of MODEL.md §6,
writes ``report.md`` with figures and ``validation.json``, and exits 1 if anything fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

EXIT_FAILED = 1


def _workers(value: int | None) -> int:
    if value is not None:
        return max(1, value)
    return max(1, min(2, os.cpu_count() or 1))


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from villagesim.calibration.fitting import CalibrationSettings, calibrate, write_result
    from villagesim.config.loading import load_scenario
    from villagesim.runs.folder import ResultFolder

    scenario = load_scenario(args.scenario).scenario
    settings = CalibrationSettings.quick() if args.quick else CalibrationSettings()
    settings = CalibrationSettings(**{**settings.__dict__, "workers": _workers(args.workers)})

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    out = Path(args.out)
    with ResultFolder.claim(out, kind="calibration") as folder:  # checked and locked before the fitting
        result = calibrate(scenario, settings, log)
        result["source_file"] = str(args.scenario)
        result["command"] = "villagesim calibrate " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "villagesim calibrate"
        write_result(result, folder)
    for path, value in result["fitted"].items():
        unc = result["uncertainty"].get(path)
        if unc and "posterior_sd" in unc:
            extra = f"  (posterior sd {unc['posterior_sd']:.3g}, prior sd {unc['prior_sd']:.3g})"
        elif unc:
            extra = f"  (approximate sd {np.round(unc['approximate_sd'], 4).tolist()})"
        else:
            extra = ""
        print(f"{path} = {value}{extra}")
    check = result["diagnostics"]["behaviour"]["check"]
    print(
        f"participation at the fitted values: {check['participation_pooled']:.3f} "
        f"(+/- {check['ci95_half_width']:.3f}, target 0.300); {result['runtime_seconds']} s"
    )
    print(f"results in {out}/fitted.json")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from villagesim.calibration.validation import ValidationSettings, validate

    settings = ValidationSettings.quick() if args.quick else ValidationSettings()
    settings = ValidationSettings(**{**settings.__dict__, "workers": _workers(args.workers)})
    if args.seed is not None:
        settings = ValidationSettings(**{**settings.__dict__, "seed": args.seed})

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    report = validate(Path(args.scenarios), Path(args.out), settings, log)
    failed = [row["name"] for row in report["targets"] + report["patterns"] if row["status"] == "fail"]
    n = len(report["targets"]) + len(report["patterns"])
    print(f"{n - len(failed)} of {n} checks passed in {report['runtime_seconds']} s; report in {args.out}/report.md")
    if failed:
        print("failed: " + ", ".join(failed))
        return EXIT_FAILED
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``calibrate`` and ``validate`` to the ``villagesim`` command line."""
    p = sub.add_parser("calibrate", help="fit uncertain parameters to published targets; write fitted.json")
    p.add_argument("scenario", nargs="?", default="scenarios/baseline.toml", help="scenario to calibrate (default: %(default)s)")
    p.add_argument("--out", default="results/calibration", help="folder for fitted.json (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="a small design (about a minute; for tests, not for use)")
    p.add_argument("--workers", type=int, help="processes (default: up to 2)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("validate", help="check the model against published targets and MODEL.md patterns; write a report")
    p.add_argument("--out", default="results/validation", help="report folder (default: %(default)s)")
    p.add_argument("--scenarios", default="scenarios", help="folder of the scenario files (default: %(default)s)")
    p.add_argument("--quick", action="store_true", help="fewer replicates and weeks (the CI version)")
    p.add_argument("--seed", type=int, help="root seed of all runs (default: 20240601)")
    p.add_argument("--workers", type=int, help="processes (default: up to 2)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_validate)
