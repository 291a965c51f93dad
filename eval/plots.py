"""Plots of a run, drawn only from its ``records.csv`` and ``curves.json``.

    python -m eval.plots RUN_DIR    # writes RUN_DIR/plots/*.png

ROC and faithfulness curves per task, one panel per method family (a line per method: the mean
over seeds with its 95% Student-t band, eval.scoring.stats; the run's leader on the measure dashed
in black in every panel for reference; legends below the panels, off the data), an AUC heatmap
(method x task), and runtime and peak memory per method (bars: mean, 95% bootstrap interval).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from eval.records import CURVES, Curves, read_curves, read_records  # noqa: E402
from eval.scoring import stats  # noqa: E402

FPR_GRID = np.linspace(0, 1, 101)

# Panels of the curve plots: a method's family by key (plots read records only, never the
# registry); a key not listed (a plugin's) joins "other".
FAMILIES = {
    "interpolated-patch descent": (
        "ipd",
        "ipd-attn-only",
        "ipd-classic",
        "ipd-hier",
        "ipd-neg",
        "ipd-pos",
        "ipd-sweep",
    ),
    "attribution (gradients)": ("eap", "eap-pos", "eap-ig", "eap-ig-act", "ieg"),
    "patching": ("acdc", "activation-patching", "activation-patching-pos"),
    "mask learning": ("sp", "edge-pruning", "ugs"),
    "baseline": ("random",),
}
FAMILY_OF = {m: f for f, ms in FAMILIES.items() for m in ms}


def family(method: str) -> str:
    return FAMILY_OF.get(method, "other")


def mean_band(values: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Per ``x``: the mean of ``y`` over seeds and its 95% t-interval (low = high = mean for one
    seed)."""
    rows = []
    for xv, g in values.groupby(x, sort=True):
        mean, low, high = stats.t_interval(g[y].tolist())
        if low != low:
            low = high = mean
        rows.append((xv, mean, low, high))
    return pd.DataFrame(rows, columns=[x, "mean", "low", "high"])


def family_panels(
    df: pd.DataFrame, x: str, y: str, label_of, leader: str | None, title: str, **line
):
    """A figure with one panel per method family present in ``df`` (a line and band per
    method, ``leader`` dashed black in every panel)."""
    fams = sorted(
        {family(m) for m in df.method},
        key=lambda f: list(FAMILIES).index(f) if f in FAMILIES else len(FAMILIES),
    )
    ncol = min(3, len(fams))
    nrow = -(-len(fams) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 4.4 * nrow), squeeze=False)
    palette = plt.get_cmap("tab10")
    for ax, fam in zip(axes.flat, fams, strict=False):
        methods = sorted(m for m in df.method.unique() if family(m) == fam)
        if leader is not None and leader not in methods:
            band = mean_band(df[df.method == leader], x, y)
            ax.plot(
                band[x],
                band["mean"],
                color="black",
                ls="--",
                lw=1.2,
                label=f"{label_of(leader)} (leader)",
                **line,
            )
        for i, m in enumerate(methods):
            band = mean_band(df[df.method == m], x, y)
            color = palette(i % 10)
            ax.plot(band[x], band["mean"], color=color, label=label_of(m), **line)
            ax.fill_between(
                band[x],
                band["low"],
                band["high"],
                color=color,
                alpha=0.2,
                lw=0,
                **({"step": "post"} if line.get("drawstyle") else {}),
            )
        ax.set_title(fam)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, ncol=1, frameon=False
        )
    for ax in list(axes.flat)[len(fams) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    return fig, axes


def shown(name: str) -> str:
    """A legend label: matplotlib hides labels that start with "_" (as test-only keys do)."""
    return f" {name}" if name.startswith("_") else name


def roc_on_grid(fpr: list[float], tpr: list[float]) -> np.ndarray:
    """The ROC step curve at FPR_GRID: the best TPR reached at or below each FPR."""
    fpr, tpr = np.asarray(fpr), np.asarray(tpr)
    idx = np.searchsorted(fpr, FPR_GRID, side="right") - 1
    return np.maximum.accumulate(tpr)[np.clip(idx, 0, None)]


def roc_frame(curves: list[Curves]) -> pd.DataFrame:
    rows = [
        pd.DataFrame(
            dict(
                method=c.method,
                task=c.task,
                seed=c.seed,
                fpr=FPR_GRID,
                tpr=roc_on_grid(c.fpr, c.tpr),
            )
        )
        for c in curves
        if c.fpr
    ]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def faithfulness_frame(curves: list[Curves]) -> pd.DataFrame:
    rows = [
        pd.DataFrame(
            dict(
                method=c.method,
                task=c.task,
                seed=c.seed,
                percent=100 * np.asarray(c.fractions),
                faithfulness=c.faithfulness,
            )
        )
        for c in curves
        if c.fractions
    ]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _leader(scores: pd.Series, task: str) -> str | None:
    """The method with the highest mean ``scores`` on ``task`` (None without one)."""
    on = scores[[t == task for _, t in scores.index]].dropna()
    return None if on.empty else on.idxmax()[0]


def _task_panels(
    df, task: str, x: str, y: str, scores: pd.Series, measure: str, title: str, **line
):
    """:func:`family_panels` of one task, each method labelled with its mean ``measure``."""

    def label(m: str) -> str:
        return shown(f"{m} ({measure} {scores.get((m, task), np.nan):.3f})")

    return family_panels(df[df.task == task], x, y, label, _leader(scores, task), title, **line)


def plot_roc(df: pd.DataFrame, aucs: pd.Series, task: str, out: Path) -> Path:
    title = f"Edge ROC: {task} (mean, 95% band)"
    fig, axes = _task_panels(df, task, "fpr", "tpr", aucs, "AUC", title, drawstyle="steps-post")
    for ax in axes.flat:
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", ylim=(-0.02, 1.02))
    return _save(fig, out / f"roc_{task}.png")


def plot_faithfulness(df: pd.DataFrame, cprs: pd.Series, task: str, out: Path) -> Path:
    title = f"Faithfulness: {task} (held-out; mean, 95% band)"
    fig, axes = _task_panels(
        df, task, "percent", "faithfulness", cprs, "CPR", title, marker="o", ms=3
    )
    for ax in axes.flat:
        ax.axhline(1, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set(xlabel="edges kept (%)", ylabel="normalised metric")
    return _save(fig, out / f"faithfulness_{task}.png")


def plot_auc_heatmap(ok: pd.DataFrame, out: Path) -> Path:
    table = ok.pivot_table(index="method", columns="task", values="auc", aggfunc="mean")
    fig, ax = plt.subplots(figsize=(3.5 + 1.6 * table.shape[1], 1.5 + 0.5 * table.shape[0]))
    sns.heatmap(table, annot=True, fmt=".3f", vmin=0, vmax=1, cmap="viridis", ax=ax)
    ax.set_title("Edge ROC AUC (mean over seeds)")
    ax.tick_params(axis="x", rotation=20)
    return _save(fig, out / "auc_heatmap.png")


def _bars(ok: pd.DataFrame, panels: list[tuple[str, str]], log: bool, path: Path) -> Path:
    """Horizontal bars, a row per method and a colour per task (legend right of the panels)."""
    ok = ok.assign(task=ok.task.map(shown)).sort_values(["method", "task"])
    n_methods = ok.method.nunique()
    height = 1.5 + 0.32 * n_methods * max(1, ok.task.nunique()) ** 0.5
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 2, height), squeeze=False)
    for i, (ax, (col, label)) in enumerate(zip(axes[0], panels, strict=True)):
        if ok[col].notna().any():
            sns.barplot(
                ok, y="method", x=col, hue="task", errorbar=("ci", 95), seed=0, ax=ax, orient="h"
            )
        ax.set(xlabel=label, ylabel="", title=label)
        if log:
            ax.set_xscale("log")
        if ax.get_legend() is not None:
            if i == len(panels) - 1:
                sns.move_legend(ax, "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
            else:
                ax.get_legend().remove()
    return _save(fig, path)


def plot_runtime(ok: pd.DataFrame, out: Path) -> Path:
    return _bars(ok, [("seconds", "wall seconds of the method")], True, out / "runtime.png")


def plot_memory(ok: pd.DataFrame, out: Path) -> Path:
    """Peak memory and the method's own share of it (peak - start) per method and task."""
    ok = ok.assign(above_start_mb=ok.peak_mb - ok.start_mb)
    panels = [("peak_mb", "peak memory (MiB)"), ("above_start_mb", "peak - start (MiB)")]
    return _bars(ok, panels, False, out / "memory.png")


def checked_curves(run_dir: Path) -> list[Curves]:
    """The run's curves; ValueError naming the file (and line or entry) when it is missing or
    damaged, rather than plots silently left out or an IndexError (D8)."""
    path = run_dir / CURVES
    if not path.is_file():
        raise ValueError(f"no {CURVES} in {run_dir}: the curves can't be drawn (rerun the run)")
    try:
        curves = read_curves(run_dir)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"{path}: an entry is not a curve ({exc})") from None
    for i, c in enumerate(curves):
        pairs = (("fpr", "tpr"), ("fractions", "faithfulness"), ("fractions", "n_kept"))
        for a, b in pairs:
            la, lb = len(getattr(c, a)), len(getattr(c, b))
            if la != lb:
                raise ValueError(
                    f"{path}: entry {i} ({c.method} on {c.task}, seed {c.seed}): "
                    f"{a} has {la} values, {b} {lb}"
                )
    return curves


def make_plots(run_dir: str | Path) -> list[Path]:
    """Every plot of a run folder into ``run_dir/plots``; returns the files written."""
    run_dir = Path(run_dir)
    records = pd.DataFrame([asdict(r) for r in read_records(run_dir)])
    ok = records[records.status == "ok"] if len(records) else records
    if ok.empty:
        return []
    out = run_dir / "plots"
    out.mkdir(exist_ok=True)
    ok_keys = set(zip(ok.method, ok.task, ok.ablation, ok.seed, strict=True))
    curves = [
        c for c in checked_curves(run_dir) if (c.method, c.task, c.ablation, c.seed) in ok_keys
    ]
    aucs = ok.groupby(["method", "task"]).auc.mean()
    cprs = ok.groupby(["method", "task"]).cpr.mean()
    roc, faith = roc_frame(curves), faithfulness_frame(curves)
    files = []
    for task in sorted(ok.task.unique()):
        if not roc.empty and (roc.task == task).any():
            files.append(plot_roc(roc, aucs, task, out))
        if not faith.empty and (faith.task == task).any():
            files.append(plot_faithfulness(faith, cprs, task, out))
    files.append(plot_auc_heatmap(ok, out))
    files.append(plot_runtime(ok, out))
    files.append(plot_memory(ok, out))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.plots", description="Plot a run folder.")
    parser.add_argument("run_dir")
    args = parser.parse_args(argv)
    try:
        files = make_plots(args.run_dir)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"no successful runs in {args.run_dir}; no plots")
    else:
        print(f"wrote {len(files)} plots to {Path(args.run_dir) / 'plots'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
