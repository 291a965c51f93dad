"""eval.scoring.stats and eval.scoring.compare: intervals, paired tests, a planted difference found
and two copies of one method not told apart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eval.records import Record, records_to_csv
from eval.scoring import compare, stats


def test_t_interval_matches_the_textbook_value():
    mean, low, high = stats.t_interval([1.0, 2.0, 3.0])
    # mean 2, s = 1, t(0.975, 2) = 4.302653: half-width 4.302653 / sqrt(3) = 2.484138
    assert (mean, high - mean) == pytest.approx((2.0, 2.484138), abs=1e-6)
    assert low == pytest.approx(2.0 - 2.484138, abs=1e-6)
    one = stats.t_interval([0.7])
    assert one[0] == 0.7 and math.isnan(one[1]) and math.isnan(one[2])


def test_a12_and_holm_by_hand():
    assert stats.a12([1, 2], [0, 2]) == pytest.approx(0.625)  # 2 wins + 1 tie of 4 pairs
    assert stats.a12([3, 3], [1, 1]) == 1.0
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_wilcoxon_all_ties_is_no_evidence():
    assert stats.wilcoxon_p([1.0] * 8, [1.0] * 8) == 1.0
    assert stats.wilcoxon_p(list(range(1, 9)), [0] * 8) == pytest.approx(2 / 2**8)  # exact


def _records(values: dict[str, list[float]]) -> list[Record]:
    out = []
    for method, vs in values.items():
        for i, v in enumerate(vs):
            task, seed = f"task{i // 3}", i % 3
            out.append(Record(method, task, "resample", seed, auc=v, cpr=v, cmd=1 - v, n=4))
    return out


@pytest.fixture
def planted():
    """24 (task, seed) cells; ``better`` beats the reference by 0.05 plus noise in every cell;
    ``copy-a`` and ``copy-b`` are two runs of one noisy method (independent draws)."""
    rng = np.random.default_rng(0)
    base = rng.uniform(0.6, 0.9, 24)
    return _records(
        {
            "reference": list(base),
            "better": list(base + 0.05 + rng.normal(0, 0.01, 24)),
            "copy-a": list(base + rng.normal(0, 0.02, 24)),
            "copy-b": list(base + rng.normal(0, 0.02, 24)),
        }
    )


def test_planted_difference_is_found_and_copies_are_not(planted):
    result = {(c.a, c.b): c for c in compare.compare(planted, "auc")}
    win = result["better", "reference"]
    assert win.n_cells == 24 and win.p_holm < 0.05 and win.better == "better" and win.a12 > 0.5
    same = result["copy-a", "copy-b"]
    assert same.p > 0.05 and same.better == ""


def test_lower_is_better_for_cmd(planted):
    c = {(c.a, c.b): c for c in compare.compare(planted, "cmd")}["better", "reference"]
    assert c.better == "better" and c.a12 > 0.5  # lower CMD, oriented so > 0.5 is better


def test_cli_prints_the_table_and_refuses_bad_input(planted, tmp_path, capsys):
    (tmp_path / "records.csv").write_text(records_to_csv(planted))
    assert compare.main([str(tmp_path), "--metric", "auc"]) == 0
    out = capsys.readouterr().out
    assert "**better** better" in out and "Holm" in out
    assert compare.main([str(tmp_path), "--methods", "better,nope"]) == 2
    assert "nope" in capsys.readouterr().err
    assert compare.main([str(tmp_path / "missing")]) == 2


def test_summary_cells_carry_intervals_and_wins_need_the_test(planted):
    from eval.summary import mean_interval, summary_markdown

    assert mean_interval([1.0, 2.0, 3.0], "{:.3f}") == "2.000 [-0.484, 4.484]"
    assert mean_interval([0.5], "{:.3f}") == "0.500"  # one seed: no interval
    text = summary_markdown(planted, {})
    assert "- AUC: `better` beats" in text and "`reference`" in text
    assert "`copy-a` beats" not in text and "`copy-b` beats" not in text


def test_unit_task_pairs_seed_means_once_per_task(planted):
    """24 cells are 8 tasks x 3 seeds: by task, 8 pairs, each task counted once."""
    c = {(c.a, c.b): c for c in compare.compare(planted, "auc", unit="task")}["better", "reference"]
    assert c.n_cells == 8 and c.p == pytest.approx(2 / 2**8)  # all 8 differences positive
    with pytest.raises(ValueError, match="unknown unit"):
        compare.compare(planted, "auc", unit="seed")
