"""Result records: one :class:`Record` per (method, task, seed), and its curves.

A run folder holds ``records.csv`` (one row per record), ``curves.json`` (ROC and faithfulness
curve per row) and ``run.json`` (command and machine); what each run found (scores, trace) is
written by :mod:`eval.formats.found`. Every file is written to a temporary file beside it and
renamed into place, so a reader never sees a half-written file. Files of older runs still read: a
column they lack gets its default, and renamed columns (``base_mb`` -> ``start_mb``) are mapped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

RECORDS = "records.csv"
CURVES = "curves.json"
RUN_INFO = "run.json"
NAN = math.nan

STATUS_OK = "ok"
STATUS_TIMEOUT = "timeout"  # a job stopped by --timeout: "timeout: <detail>"
RENAMED = {"base_mb": "start_mb"}  # old column name -> new, for files of older runs


@dataclass
class Record:
    """The outcome of one method on one task with one seed.

    status: ``ok``, ``skipped: <reason>`` (the task can't run here), ``error: <message>`` or
    ``timeout: <detail>`` (stopped by ``--timeout``).
    auc / ap / precision_at_k: edge recovery against the ground truth (eval.scoring.metrics).
    cpr / cmd: areas of the faithfulness curve over the circuit fraction, as MIB computes them;
    cpr_log / cmd_log: the same over log10(fraction), normalised (eval.scoring.metrics.curve_area).
    overshoot / auc_pareto / auroc_mib / n_heldout: see eval.scoring.evaluate and the README's
    "Conventions" (faithfulness is measured on n_heldout held-out examples; n counts train).
    seconds: wall time of the method call; eval_seconds: of the faithfulness evaluation.
    steps / stopped_early / final_loss: the method's trace summary (optimisation steps, whether
    it stopped on a plateau, final faithfulness loss with the fully ablated model at ~1); empty
    (None / NaN) for a method without them. The whole trace is in ``traces/`` (eval.formats.found).
    completeness_gap: an integrated-gradients method's |sum of scores - target| / |target|
    (methods.integrated; NaN for other methods).
    converged: final_loss at most eval.scoring.converged.CONVERGED_LOSS (None without a final_loss).
    peak_mb / start_mb: memory peak during the method and memory when it started
    (eval.scoring.cost); memory says what they measure (``cuda-allocator``, ``cpu-rss-process``,
    ``cpu-rss-shared``).
    note: why a measure is missing though the run is ``ok`` (e.g. a task without ground truth:
    edge recovery not scored); listed in the summary's Notes section.
    """

    method: str
    task: str
    ablation: str
    seed: int
    status: str = STATUS_OK
    n: int = 0
    n_edges: int = 0
    n_true_edges: int = 0
    signed: bool = False
    auc: float = NAN
    ap: float = NAN
    precision_at_k: float = NAN
    cpr: float = NAN
    cmd: float = NAN
    cpr_log: float = NAN
    cmd_log: float = NAN
    overshoot: float = NAN
    auc_pareto: float = NAN
    auroc_mib: float = NAN
    n_heldout: int = 0
    metric_clean: float = NAN
    metric_ablated: float = NAN
    seconds: float = NAN
    eval_seconds: float = NAN
    steps: int | None = None
    stopped_early: bool | None = None
    final_loss: float = NAN
    completeness_gap: float = NAN
    converged: bool | None = None
    peak_mb: float = NAN
    start_mb: float = NAN
    memory: str = ""
    device: str = ""
    torch_version: str = ""
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.method, self.task, self.ablation, self.seed)


@dataclass
class Curves:
    """The curves of one record: ROC points (at most 200) and the faithfulness curve."""

    method: str
    task: str
    ablation: str
    seed: int
    fpr: list[float] = field(default_factory=list)
    tpr: list[float] = field(default_factory=list)
    fractions: list[float] = field(default_factory=list)
    n_kept: list[int] = field(default_factory=list)
    faithfulness: list[float] = field(default_factory=list)
    n_in_graph: list[float] = field(default_factory=list)
    faithfulness_abs: list[float] = field(default_factory=list)


FIELDS = [f.name for f in fields(Record)]
REQUIRED = [f.name for f in fields(Record) if f.default is MISSING]
_PARSE = {"str": str, "int": int, "float": float, "bool": lambda s: s == "True"}


def _parser(type_name: str):
    """The CSV parser of a field type; ``X | None`` reads an empty cell as None."""
    base, _, optional = type_name.partition(" | ")
    parse = _PARSE[base]
    return (lambda s: None if s == "" else parse(s)) if optional else parse


_PARSERS = {f.name: _parser(str(f.type)) for f in fields(Record)}
_FLOATS = {f.name for f in fields(Record) if f.type == "float"}


def run_name(method: str, task: str, seed: int) -> str:
    """The file stem of one run's files (logs, scores, traces): ``<method>__<task>__seed<s>``."""
    return f"{method}__{task}__seed{seed}"


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and a rename (never half-written)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def records_to_csv(records: list[Record]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(asdict(r))
    return buf.getvalue()


def records_from_csv(text: str) -> list[Record]:
    """Records from CSV text; columns an older file lacks get their defaults."""
    reader = csv.DictReader(io.StringIO(text))
    columns = {RENAMED.get(c, c) for c in reader.fieldnames or []}
    missing = set(REQUIRED) - columns
    if missing:
        raise ValueError(f"records file lacks columns {sorted(missing)}")
    out = []
    for row in reader:
        if None in row or None in row.values():  # a row cut short or with extra cells
            n = len([v for k, v in row.items() if k is not None and v is not None])
            raise ValueError(f"line {reader.line_num}: {n} cells, the header has {len(columns)}")
        row = {RENAMED.get(k, k): v for k, v in row.items()}
        try:
            out.append(Record(**{k: _PARSERS[k](row[k]) for k in FIELDS if k in row}))
        except ValueError as exc:
            raise ValueError(f"line {reader.line_num}: {exc}") from None
    return out


def _json_safe(value):
    """NaN/inf -> None, so the JSON is standard (read back as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "tolist"):  # tensors, numpy arrays and scalars
        return _json_safe(value.tolist())
    return value


def to_json(value) -> str:
    return json.dumps(_json_safe(value), indent=1, allow_nan=False)


def record_from_dict(d: dict) -> Record:
    """A record from its JSON form (None -> NaN in float fields)."""
    d = {RENAMED.get(k, k): v for k, v in d.items()}
    return Record(**{k: NAN if v is None and k in _FLOATS else v for k, v in d.items()})


def curves_from_dict(d: dict) -> Curves:
    d = dict(d)
    for name in ("fpr", "tpr", "faithfulness", "faithfulness_abs"):
        d[name] = [NAN if v is None else v for v in d.get(name, [])]
    return Curves(**d)


def curves_from_json(text: str) -> list[Curves]:
    return [curves_from_dict(item) for item in json.loads(text)]


def write_run(folder: str | Path, records: list[Record], curves: list[Curves]) -> None:
    """Write ``records.csv`` and ``curves.json`` of a run (each atomically)."""
    folder = Path(folder)
    atomic_write_text(folder / RECORDS, records_to_csv(records))
    atomic_write_text(folder / CURVES, to_json([asdict(c) for c in curves]))


def read_records(folder: str | Path) -> list[Record]:
    path = Path(folder) / RECORDS
    if not path.is_file():
        raise FileNotFoundError(f"no {RECORDS} in {folder}; is it a run folder of eval.run?")
    try:
        text = path.read_text()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}, {exc}; {_repair_hint('', exc)}") from None
    try:
        return records_from_csv(text)
    except ValueError as exc:
        raise ValueError(f"{path}, {exc}; {_repair_hint(text, exc)}") from None


def _repair_hint(text: str, exc: Exception) -> str:
    """How to recover a damaged records.csv: a cut-short last line can be deleted (its job
    reruns on --resume); anything else means running again with --overwrite."""
    lines = text.rstrip("\n").split("\n")
    if len(lines) > 1 and str(exc).startswith(f"line {len(lines)}:"):
        return (
            f"its last line ({len(lines)}) is cut short: delete that line, then --resume "
            "reruns its job; or start again with --overwrite"
        )
    return "the file is damaged: start the run again with --overwrite"


def read_curves(folder: str | Path) -> list[Curves]:
    path = Path(folder) / CURVES
    return curves_from_json(path.read_text()) if path.is_file() else []
