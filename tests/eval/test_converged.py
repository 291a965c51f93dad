"""The converged flag: read off the run's final loss only, recorded per run, marked in the
summary."""

from __future__ import annotations

import math

import pytest

from eval.records import Record, records_from_csv, records_to_csv
from eval.scoring.converged import CONVERGED_LOSS, MARK, cell_mark, converged
from eval.summary import summary_markdown


@pytest.mark.parametrize(
    "loss, expected",
    [(0.0, True), (CONVERGED_LOSS, True), (0.93, False), (math.nan, None), (None, None)],
)
def test_converged_reads_the_final_loss_against_the_threshold(loss, expected):
    assert converged(loss) is expected


def test_the_threshold_is_stated_between_clean_and_ablated():
    assert 0 < CONVERGED_LOSS < 1


def test_a_cell_is_marked_when_any_run_did_not_converge():
    assert cell_mark([True, None]) == ""
    assert cell_mark([True, False]) == MARK


def _record(method: str, loss: float) -> Record:
    return Record(method, "t", "zero", 0, auc=0.5, final_loss=loss, converged=converged(loss))


def test_the_flag_survives_the_csv_and_marks_the_summary():
    records = [_record("good", 0.01), _record("broken", 0.93), _record("acdc", math.nan)]
    back = records_from_csv(records_to_csv(records))
    assert [r.converged for r in back] == [True, False, None]
    text = summary_markdown(back, {})
    assert f"0.500{MARK}" in text and "did not converge" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("|")}
    assert MARK not in rows["good"] and MARK not in rows["acdc"]


def test_a_summary_without_broken_runs_has_no_mark():
    assert MARK not in summary_markdown([_record("good", 0.1)], {})
