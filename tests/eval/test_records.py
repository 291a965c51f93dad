"""Records and curves survive a write/read round trip; writes are atomic."""

from __future__ import annotations

import math
from dataclasses import asdict

import pytest

from eval.records import (
    CURVES,
    RECORDS,
    Curves,
    Record,
    atomic_write_text,
    read_curves,
    read_records,
    write_run,
)


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_round_trip(tmp_path):
    records = [
        Record(
            "ipd",
            "ioi",
            "resample",
            0,
            n=32,
            n_edges=32491,
            n_true_edges=1041,
            signed=True,
            auc=0.8731234567890123,
            ap=0.4,
            precision_at_k=0.5,
            cpr=0.9,
            cmd=0.1,
            seconds=12.5,
            peak_mb=1234.5,
            base_mb=800.25,
            memory="cpu-rss-process",
            device="cpu",
            torch_version="2.13.0+cpu",
        ),
        Record("eap", "ioi", "resample", 1, status='error: ValueError: bad "x", and y'),
        Record("eap", "tracr-reverse", "zero", 0, status="skipped: needs tracr"),
    ]
    curves = [
        Curves(
            "ipd",
            "ioi",
            "resample",
            0,
            fpr=[0.0, 0.5, 1.0],
            tpr=[0.0, 1.0, 1.0],
            fractions=[0.5, 1.0],
            n_kept=[3, 6],
            faithfulness=[float("nan"), 1.0],
        )
    ]
    write_run(tmp_path, records, curves)
    back = read_records(tmp_path)
    assert len(back) == len(records)
    for r, b in zip(records, back, strict=True):
        for name, value in asdict(r).items():
            assert _same(value, getattr(b, name)), name
            assert type(getattr(b, name)) is type(value), name
    assert [r.ok for r in back] == [True, False, False]
    c = read_curves(tmp_path)[0]
    assert c.fpr == [0.0, 0.5, 1.0] and c.n_kept == [3, 6]
    assert math.isnan(c.faithfulness[0]) and c.faithfulness[1] == 1.0
    assert "NaN" not in (tmp_path / CURVES).read_text()  # standard JSON
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([RECORDS, CURVES])


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "x.txt"
    atomic_write_text(path, "old")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", fail)
    with pytest.raises(OSError):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]  # no temporary file left


def test_read_rejects_other_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="records.csv"):
        read_records(tmp_path)
    (tmp_path / RECORDS).write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="lacks columns"):
        read_records(tmp_path)
