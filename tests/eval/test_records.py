"""Records and curves survive a write/read round trip; writes are atomic."""

from __future__ import annotations

import json
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
    record_from_dict,
    records_to_csv,
    to_json,
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
            start_mb=800.25,
            steps=252,
            stopped_early=True,
            final_loss=0.0043,
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


OLD_HEADER = (
    "method,task,ablation,seed,status,n,n_edges,n_true_edges,signed,auc,ap,precision_at_k,cpr,"
    "cmd,cpr_log,cmd_log,metric_clean,metric_ablated,seconds,eval_seconds,peak_mb,base_mb,memory,"
    "device,torch_version"
)


def test_records_of_an_older_run_read(tmp_path):
    """A records.csv from before the trace columns and the base_mb -> start_mb rename."""
    row = "ipd,ioi,resample,0,ok,32,100,10,False,0.9,0.5,0.4,0.8,0.2,0.7,0.3,2.0,0.5,1.5,0.25,"
    row += "900.0,700.5,cpu-rss-process,cpu,2.13.0"
    (tmp_path / RECORDS).write_text(f"{OLD_HEADER}\n{row}\n")
    (rec,) = read_records(tmp_path)
    assert (rec.method, rec.auc, rec.peak_mb, rec.start_mb) == ("ipd", 0.9, 900.0, 700.5)
    assert rec.steps is None and rec.stopped_early is None and math.isnan(rec.final_loss)
    # and it is written back in today's columns
    header = records_to_csv([rec]).splitlines()[0].split(",")
    assert {"steps", "stopped_early", "final_loss", "start_mb"} <= set(header)
    assert "base_mb" not in header


def test_json_record_keeps_empty_trace_columns_empty():
    rec = Record("eap", "ioi", "resample", 0)
    back = record_from_dict(json.loads(to_json(asdict(rec))))
    assert back.steps is None and back.stopped_early is None
    assert math.isnan(back.final_loss) and math.isnan(back.start_mb)  # null -> NaN in floats
    old = {k: v for k, v in asdict(rec).items() if k != "start_mb"} | {"base_mb": 512.0}
    assert record_from_dict(old).start_mb == 512.0
