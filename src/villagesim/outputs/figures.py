"""Figures of a run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from villagesim.constants import WEEKS_PER_YEAR
from villagesim.processes.week import SOURCES  # noqa: E402

SOURCE_LABELS = {
    "family": "Family",
    "volunteer": "Volunteers",
    "peer": "Peer elders (young-old)",
    "facility": "Facilities (happiness homes etc.)",
    "ngo": "NGOs",
    "time_bank": "Time-bank redemptions",
}


def _band(ax, ts: pd.DataFrame, column: str, label: str | None = None, color: str | None = None) -> None:
    g = ts.groupby("step")[column]
    mean = g.mean()
    years = mean.index / WEEKS_PER_YEAR
    line = ax.plot(years, mean.values, label=label, color=color)[0]
    if ts["replicate"].nunique() > 1:
        lo, hi = g.quantile(0.025), g.quantile(0.975)
        ax.fill_between(years, lo.values, hi.values, alpha=0.2, color=line.get_color(), linewidth=0)


def _finish(fig, ax, title: str, ylabel: str, path: Path) -> Path:
    ax.set_title(title)
    ax.set_xlabel("years")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_figures(ts: pd.DataFrame, folder: Path, title: str = "") -> list[Path]:
    """Write the standard figures of a run into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = f" — {title}" if title else ""
    band_note = " (mean, 95% band over replicates)" if ts["replicate"].nunique() > 1 else ""
    out = []

    fig, ax = plt.subplots(figsize=(7, 4))
    _band(ax, ts, "unmet_need_share")
    ax.set_ylim(0, 1)
    out.append(
        _finish(fig, ax, f"Unmet need share{suffix}", "share of need hours unmet" + band_note, folder / "unmet_need_share.png")
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    means = ts.groupby("step")[[f"met_hours_{s}" for s in SOURCES] + ["unmet_hours"]].mean()
    years = means.index / WEEKS_PER_YEAR
    ax.stackplot(
        years,
        *[means[f"met_hours_{s}"].values for s in SOURCES],
        means["unmet_hours"].values,
        labels=[SOURCE_LABELS[s] for s in SOURCES] + ["Unmet"],
        colors=["#4c72b0", "#55a868", "#8fd694", "#c44e52", "#8172b2", "#ccb974", "#dddddd"],
    )
    ax.legend(loc="upper right", fontsize=7)
    out.append(
        _finish(
            fig, ax, f"Need hours by source{suffix}", "hours per week (mean over replicates)", folder / "met_hours_by_source.png"
        )
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    _band(ax, ts, "active_volunteers")
    out.append(
        _finish(
            fig, ax, f"Active volunteers{suffix}", "volunteers active in the week" + band_note, folder / "active_volunteers.png"
        )
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    _band(ax, ts, "mean_trust", label="trust in committee")
    _band(ax, ts, "mean_awareness", label="awareness of mutual aid")
    _band(ax, ts, "mean_satisfaction", label="satisfaction")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    out.append(
        _finish(
            fig,
            ax,
            f"Trust, awareness, satisfaction of elders{suffix}",
            "mean over resident elders (0..1)",
            folder / "mean_trust.png",
        )
    )
    return out
