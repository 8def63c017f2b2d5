"""Regenerate docs/scenarios.md: each shipped policy scenario against the baseline.

    .venv/bin/python docs/make_scenarios_doc.py [--replicates 8] [--steps 520]

For every policy scenario, both arms run on common random numbers (same seed, same
replicates); the figures in docs/figures/ and every number in docs/scenarios.md come from
these runs (outcomes are means over the last 52 weeks, differences are paired, with 95%
t-intervals). Nothing in the answers is typed by hand except the question.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from villagesim.config.loading import load_scenario
from villagesim.experiments.compare import compare, comparison_figures
from villagesim.version import __version__

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
DOCS = ROOT / "docs"

OUTCOMES = {
    "liability_insurance": [
        "active_volunteers",
        "volunteer_hours",
        "volunteer_accidents",
        "volunteer_quits",
        "insurance_claims",
        "spend_subsidies",
    ],
    "accidents_uninsured": [
        "active_volunteers",
        "volunteer_hours",
        "volunteer_accidents",
        "volunteer_quits",
        "unmet_need_share",
    ],
    "platform": [
        "matched_requests",
        "match_rate_no_digital",
        "platform_requests",
        "unmet_need_share",
        "mean_trust",
        "spend_platform",
    ],
    "digital_training": [
        "digital_access_share",
        "platform_requests",
        "requests_no_digital",
        "matched_requests",
        "unmet_need_share",
        "spend_platform",
    ],
    "participatory_planning": [
        "met_hours_facility",
        "facilities_built",
        "facilities_idle",
        "facilities_operating",
        "unmet_need_share",
        "spend_facility_building",
    ],
    "time_bank": [
        "active_volunteers",
        "volunteer_hours",
        "redemption_success_rate",
        "unmet_need_share",
        "time_bank_outstanding",
        "spend_subsidies",
    ],
    "time_bank_untrusted": [
        "active_volunteers",
        "volunteer_hours",
        "redemption_success_rate",
        "unmet_need_share",
        "time_bank_outstanding",
    ],
    "quality_kpi": [
        "facilities_built",
        "facilities_idle",
        "facilities_operating",
        "met_hours_facility",
        "met_hours_ngo",
        "unmet_need_share",
        "cost_per_met_hour",
    ],
    "carry_over": [
        "lapsed",
        "carried_over",
        "facilities_operating",
        "met_hours_facility",
        "unmet_need_share",
        "cost_per_met_hour",
    ],
    "feedback": [
        "facilities_operating",
        "facilities_idle",
        "met_hours_facility",
        "unmet_need_share",
        "lapsed",
        "cost_per_met_hour",
    ],
    "ngo_purchase": ["met_hours_ngo", "unmet_need_share", "elders_with_unmet_need", "spend_ngo", "cost_per_met_hour"],
    "publicity": ["requests", "hidden_need_hours", "unmet_need_share", "mean_awareness", "spend_publicity"],
    "party_mobilisation": ["active_volunteers", "facilities_operating", "facilities_idle", "unmet_need_share"],
    "wearables": ["emergencies_late", "mean_answer_hours", "deaths", "spend_subsidies"],
    "incentives": ["active_volunteers", "volunteer_hours", "unmet_need_share", "spend_subsidies", "cost_per_met_hour"],
}


def _question(path: Path) -> str:
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    text = " ".join(lines)
    return text.removeprefix("Question:").strip()


def _fmt(x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _sentence(row) -> str:
    if not np.isfinite(row.ci_low):
        return f"`{row.outcome}`: {_fmt(row.baseline_mean)} → {_fmt(row.intervention_mean)}"
    clear = row.ci_low > 0 or row.ci_high < 0
    verdict = ("rises" if row.difference > 0 else "falls") if clear else "does not change clearly"
    return (
        f"`{row.outcome}` {verdict}: {_fmt(row.baseline_mean)} → {_fmt(row.intervention_mean)} "
        f"(difference {row.difference:+.3g}, 95% CI {row.ci_low:+.3g} to {row.ci_high:+.3g})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=8)
    parser.add_argument("--steps", type=int, default=520)
    args = parser.parse_args()
    figures = DOCS / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    baseline = load_scenario(SCENARIOS / "baseline.toml").scenario
    out = [
        "# What the shipped policy scenarios answer",
        "",
        f"Each scenario in `scenarios/` against `baseline.toml`: {args.replicates} paired replicates of "
        f"{args.steps} weeks on common random numbers (seed {baseline.run.seed}), outcomes averaged over "
        "the last 52 weeks; differences are paired with 95% t-intervals. One village of ~1,000 "
        "registered residents (a scenario that sets other villages is compared with the baseline's "
        "levers on its villages), so read the *direction and size* of an effect, not county totals. "
        f"Regenerate with `.venv/bin/python docs/make_scenarios_doc.py` (villagesim {__version__}); the same "
        "comparison from the command line is `villagesim compare scenarios/baseline.toml scenarios/NAME.toml`.",
        "",
    ]
    for name, outcomes in OUTCOMES.items():
        path = SCENARIOS / f"{name}.toml"
        scenario = load_scenario(path).scenario
        # a scenario on other villages is compared with the baseline's levers on the same villages
        same = scenario.population == baseline.population
        base = baseline if same else baseline.model_copy(update={"population": scenario.population})
        c = compare(base, scenario, replicates=args.replicates, steps=args.steps, outcomes=outcomes)
        with tempfile.TemporaryDirectory() as tmp:
            paths = comparison_figures(c, Path(tmp))
            shutil.copy(paths[0], figures / f"{name}.png")
        table = c.table.set_index("outcome")
        out += [f"## {name}", "", f"**Question.** {_question(path)}", "", "**Answer from the runs.**", ""]
        for o in outcomes:
            row = table.loc[o].astype(object)
            row["outcome"] = o
            out.append(f"- {_sentence(row)}")
        out += ["", f"![{name} vs baseline](figures/{name}.png)", ""]
        print(f"{name}: done in {c.seconds:.0f} s", flush=True)
    (DOCS / "scenarios.md").write_text("\n".join(out) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
