"""Plots are drawn from a stored record folder alone."""

from __future__ import annotations

import numpy as np

from eval import plots
from eval.records import Curves, Record, write_run
from eval.scoring.metrics import FRACTIONS


def _stored_run(folder):
    records, curves = [], []
    rng = np.random.default_rng(0)
    for task in ("ioi", "tracr-reverse"):
        for method in ("ipd", "eap"):
            for seed in (0, 1):
                records.append(
                    Record(
                        method,
                        task,
                        "resample",
                        seed,
                        n=8,
                        auc=rng.uniform(0.5, 1),
                        cpr=0.8,
                        seconds=rng.uniform(1, 9),
                        peak_mb=900.0,
                        start_mb=700.0,
                    )
                )
                fpr = np.sort(rng.uniform(size=30))
                tpr = np.sort(rng.uniform(size=30))
                faith = np.linspace(0, 1, len(FRACTIONS))
                curves.append(
                    Curves(
                        method,
                        task,
                        "resample",
                        seed,
                        fpr=[0, *fpr, 1],
                        tpr=[0, *tpr, 1],
                        fractions=list(FRACTIONS),
                        n_kept=list(range(1, 11)),
                        faithfulness=list(faith),
                    )
                )
    records.append(Record("acdc", "ioi", "resample", 0, status="error: out of time"))
    write_run(folder, records, curves)


def test_plots_from_stored_records(tmp_path, capsys):
    _stored_run(tmp_path)
    assert plots.main([str(tmp_path)]) == 0
    names = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert names == sorted(
        [
            "auc_heatmap.png",
            "memory.png",
            "runtime.png",
            "roc_ioi.png",
            "roc_tracr-reverse.png",
            "faithfulness_ioi.png",
            "faithfulness_tracr-reverse.png",
        ]
    )
    assert all((tmp_path / "plots" / n).stat().st_size > 1000 for n in names)
    assert "wrote 7 plots" in capsys.readouterr().out


def test_roc_on_grid_is_the_step_curve():
    tpr = plots.roc_on_grid([0, 0, 0.5, 1], [0, 0.5, 1, 1])
    assert tpr[0] == 0.5 and tpr[49] == 0.5 and tpr[50] == 1 and tpr[-1] == 1


def test_no_plots_without_successful_runs(tmp_path, capsys):
    write_run(tmp_path, [Record("ipd", "ioi", "resample", 0, status="error: x")], [])
    assert plots.main([str(tmp_path)]) == 0
    assert "no successful runs" in capsys.readouterr().out
    assert plots.main([str(tmp_path / "missing")]) == 2
