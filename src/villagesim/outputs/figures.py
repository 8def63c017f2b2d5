"""Figures of a run (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from villagesim.constants import WEEKS_PER_YEAR  # noqa: E402
from villagesim.outputs.columns import CATALOGUE, REPORTED  # noqa: E402
from villagesim.processes.week import MET_SOURCES, SOURCES  # noqa: E402

SOURCE_LABELS = {s.name: s.label for s in MET_SOURCES}
"""Label of each source of met hours."""


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
        colors=[s.colour for s in MET_SOURCES] + ["#dddddd"],
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
    out.append(outcomes_figure(ts, folder / "outcomes.png", title=title))
    return out


def reported_columns() -> list[str]:
    """The public columns the processes declare (``Process.outputs``), in step order: the
    panels of ``outcomes.png``. A column a process adds appears here by itself."""
    return [o.name for o, _ in REPORTED if not o.hidden]


def outcomes_figure(ts: pd.DataFrame, path: Path, columns: list[str] | None = None, title: str = "") -> Path:
    """Small multiples of ``columns`` (default: :func:`reported_columns`) over time, each
    panel titled with the column's label and unit from the output registry."""
    columns = [c for c in (columns or reported_columns()) if c in ts.columns]
    n_cols = 4
    n_rows = max(1, -(-len(columns) // n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(12, 2.3 * n_rows), squeeze=False)
    means = ts.groupby("step")[columns].mean() if columns else None
    for ax, column in zip(axes.flat, columns, strict=False):
        col = CATALOGUE.get(column)
        ax.plot(means.index / WEEKS_PER_YEAR, means[column].to_numpy(), color="#4c72b0", linewidth=1.2)
        values = means[column].to_numpy()
        if len(values) and values.min() >= 0:
            ax.set_ylim(0, max(float(values.max()) * 1.08, 1.0))
        ax.set_title(col.label if col else column, fontsize=8)
        ax.set_ylabel(col.unit if col else "", fontsize=7)
        ax.tick_params(labelsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("years", fontsize=7)
    fig.suptitle(f"Outcomes the processes report{' — ' + title if title else ''} (mean over replicates)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
