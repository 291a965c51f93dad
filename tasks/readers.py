"""Readers of prompt-pair files, one per format, chosen by the file's suffix and columns.

Every reader returns a :class:`PairFile`: rows of clean / corrupted prompts with their answers
and wrong answers, each either text (tokenised later with the model's tokenizer) or token ids.
Every problem is a :class:`PairFileError` naming the file, the line and what is wrong, raised
while reading, so a run never starts on a bad file. Files are UTF-8 (a leading byte-order mark,
as Excel's CSV export writes, is accepted).

Formats:

- ``.csv`` / ``.tsv`` with a header ``clean, corrupted, answer[, wrong_answer]``: text, or token
  ids written as space-separated integers (a file is in ids when every clean and corrupted cell
  is a list of integers; then answers must be integers too).
- ``.csv`` with EAP-IG's columns ``clean, corrupted, label`` (Hanna et al.'s EAP-IG repository,
  ``EAPDataset``): the prompts are text; ``label`` is a token id (the answer) or a list
  ``[answer, wrong]`` of token ids, as EAP-IG's IOI/greater-than files hold them. Columns
  ``correct_idx[, incorrect_idx]`` (older EAP-IG files) are read the same way.
- ``.jsonl``: one object per line with the keys of the CSV format (values: text, or lists of
  token ids); ``answers`` / ``wrong_answers`` lists are accepted in place of single values.
- ``.json``: auto-circuit's prompt file ``{"prompts": [{"clean", "corrupt", "answers",
  "wrong_answers"}, ...]}`` (auto-circuit's ``load_datasets_from_json``); "line" in its errors is
  the prompt's index in the list.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from eval.formats.mib import read_mib_edges

Value = str | tuple[int, ...]
_IDS = re.compile(r"\s*\d+(\s+\d+)*\s*")


class PairFileError(ValueError):
    """A bad prompt-pair file: ``file:line: problem``."""

    def __init__(self, path: str | Path, line: int | str | None, problem: str) -> None:
        where = f"{path}" if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {problem}")
        self.path, self.line, self.problem = str(path), line, problem


@dataclass(frozen=True)
class PairRow:
    """One prompt pair. ``answers`` / ``wrongs``: text pieces or token ids (one token each)."""

    line: int | str
    clean: Value
    corrupted: Value
    answers: tuple[str | int, ...]
    wrongs: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class PairFile:
    """The rows of one file; ``ids``: the prompts are token ids (no tokenizer needed)."""

    path: str
    format: str
    rows: tuple[PairRow, ...]
    ids: bool

    @property
    def has_wrong(self) -> bool:
        return all(r.wrongs for r in self.rows)


def _is_ids(v) -> bool:
    if isinstance(v, list):
        return all(isinstance(x, int) and not isinstance(x, bool) for x in v) and bool(v)
    return isinstance(v, str) and _IDS.fullmatch(v) is not None


def _ids(v) -> tuple[int, ...]:
    return tuple(v) if isinstance(v, list) else tuple(int(x) for x in v.split())


def _token_id(path, line, name: str, v) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().isdigit():
        return int(v)
    if isinstance(v, list | str) and _is_ids(v) and len(_ids(v)) > 1:
        raise PairFileError(path, line, f"{name} is {len(_ids(v))} tokens; it must be one token")
    raise PairFileError(path, line, f"{name} {v!r} is not a token id (an integer)")


def _finish(path, fmt: str, raw: list[tuple]) -> PairFile:
    """Rows from ``(line, clean, corrupted, answers, wrongs)`` of raw cells; checks kinds."""
    if not raw:
        raise PairFileError(path, None, "no prompt pairs in the file")
    ids = all(_is_ids(c) and _is_ids(x) for _, c, x, _, _ in raw)
    rows = []
    for line, clean, corrupted, answers, wrongs in raw:
        for name, v in (("clean", clean), ("corrupted", corrupted)):
            if isinstance(v, str) and not v.strip():
                raise PairFileError(path, line, f"{name} is empty")
            if not isinstance(v, str | list):
                raise PairFileError(path, line, f"{name} must be text or a list of token ids")
            if ids is False and isinstance(v, list):
                raise PairFileError(
                    path, line, f"{name} is token ids but other prompts are text; use one kind"
                )
        if not answers:
            raise PairFileError(path, line, "no answer")
        if ids:
            a = tuple(_token_id(path, line, "answer", v) for v in answers)
            w = tuple(_token_id(path, line, "wrong answer", v) for v in wrongs)
            rows.append(PairRow(line, _ids(clean), _ids(corrupted), a, w))
        else:
            for name, vs in (("answer", answers), ("wrong answer", wrongs)):
                if any(not isinstance(v, str | int) or v == "" for v in vs):
                    raise PairFileError(path, line, f"{name} must be text or a token id")
            rows.append(PairRow(line, clean, corrupted, tuple(answers), tuple(wrongs)))
    return PairFile(str(path), fmt, tuple(rows), ids)


def _label(path, line, text: str) -> tuple[list, list]:
    """EAP-IG's ``label``: a token id, or ``[answer, wrong]``."""
    text = text.strip()
    if text.isdigit():
        return [int(text)], []
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value = None
    if isinstance(value, list) and 1 <= len(value) <= 2 and all(isinstance(x, int) for x in value):
        return value[:1], value[1:]
    raise PairFileError(
        path, line, f"label {text!r} is not a token id or a list [answer, wrong] of token ids"
    )


def non_id_token(value: str) -> str | None:
    """The first piece of ``value`` that is not a token id (a non-negative integer), or None."""
    return next((t for t in value.split() if not t.isdigit()), None if value.strip() else value)


def read_text(path: Path) -> str:
    """The file's text: UTF-8, a leading byte-order mark (Excel's CSV export) dropped;
    PairFileError naming the line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PairFileError(
            path,
            line,
            f"byte 0x{data[exc.start]:02x} is not UTF-8 text; save the file as UTF-8",
        ) from None


def read_csv(path: Path) -> PairFile:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with io.StringIO(read_text(path), newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        cols = set(reader.fieldnames or [])
        if {"clean", "corrupted", "answer"} <= cols:
            fmt = "pairs"
        elif {"clean", "corrupted"} <= cols and cols & {"label", "correct_idx"}:
            fmt = "eap-ig"
        else:
            missing = sorted({"clean", "corrupted", "answer"} - cols)
            raise PairFileError(
                path,
                1,
                f"missing column(s) {', '.join(missing)} (header has {sorted(cols)}); expected "
                "clean, corrupted, answer[, wrong_answer] or EAP-IG's clean, corrupted, label",
            )
        raw = []
        for row in reader:
            line = reader.line_num
            if None in row or any(v is None for v in row.values()):
                raise PairFileError(path, line, f"expected {len(cols)} cells, got another count")
            if fmt == "pairs":
                wrong = row.get("wrong_answer", "") or ""
                raw.append((line, row["clean"], row["corrupted"], [row["answer"]], _opt(wrong)))
            else:
                if "label" in row:
                    a, w = _label(path, line, row["label"])
                else:
                    a = [_token_id(path, line, "correct_idx", row["correct_idx"])]
                    inc = row.get("incorrect_idx")
                    w = [_token_id(path, line, "incorrect_idx", inc)] if inc else []
                raw.append((line, row["clean"], row["corrupted"], a, w))
    return _finish(path, fmt, raw)  # EAP-IG: text prompts, token-id labels


def _opt(v: str) -> list[str]:
    return [] if v == "" else [v]


def _jsonl_answers(path, line, obj: dict, single: str, plural: str, required: bool) -> list:
    if plural in obj:
        v = obj[plural]
        if not isinstance(v, list):
            raise PairFileError(path, line, f"{plural} must be a list")
        return v
    if single in obj:
        return [obj[single]]
    if required:
        raise PairFileError(path, line, f"missing key {single!r} (or {plural!r})")
    return []


def read_jsonl(path: Path) -> PairFile:
    raw = []
    with io.StringIO(read_text(path)) as f:
        for line, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise PairFileError(path, line, f"not JSON: {exc.msg}") from None
            if not isinstance(obj, dict):
                raise PairFileError(path, line, "each line must be a JSON object")
            for key in ("clean", "corrupted"):
                if key not in obj:
                    raise PairFileError(path, line, f"missing key {key!r}")
            a = _jsonl_answers(path, line, obj, "answer", "answers", True)
            w = _jsonl_answers(path, line, obj, "wrong_answer", "wrong_answers", False)
            raw.append((line, obj["clean"], obj["corrupted"], a, w))
    return _finish(path, "jsonl", raw)


def read_autocircuit_json(path: Path) -> PairFile:
    try:
        obj = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise PairFileError(path, exc.lineno, f"not JSON: {exc.msg}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("prompts"), list):
        raise PairFileError(path, None, 'expected auto-circuit\'s {"prompts": [...]} object')
    raw = []
    for i, p in enumerate(obj["prompts"]):
        where = f"prompts[{i}]"
        if not isinstance(p, dict):
            raise PairFileError(path, where, "each prompt must be an object")
        for key in ("clean", "corrupt", "answers"):
            if key not in p:
                raise PairFileError(path, where, f"missing key {key!r}")
        for key in ("answers", "wrong_answers"):
            if key in p and not isinstance(p[key], list):
                raise PairFileError(path, where, f"{key} must be a list")
        raw.append((where, p["clean"], p["corrupt"], p["answers"], p.get("wrong_answers", [])))
    return _finish(path, "auto-circuit", raw)


READERS: dict[str, Callable[[Path], PairFile]] = {
    ".csv": read_csv,
    ".tsv": read_csv,
    ".jsonl": read_jsonl,
    ".json": read_autocircuit_json,
}


def read_pairs(path: str | Path) -> PairFile:
    """The prompt pairs of ``path`` (its reader chosen by suffix); PairFileError if bad."""
    path = Path(path)
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise PairFileError(
            path, None, f"unknown file type {path.suffix!r}; use one of {sorted(READERS)}"
        )
    if not path.is_file():
        raise PairFileError(path, None, "no such file")
    return reader(path)


# ----- ground truth files -----------------------------------------------------------------------
def read_edge_list(path: Path) -> set[str]:
    """One edge name per line (``#`` comments and blank lines ignored); names are checked."""
    from patching.names import parse_edge

    edges = set()
    for line, text in enumerate(read_text(path).splitlines(), start=1):
        name = text.split("#", 1)[0].strip()
        if not name:
            continue
        try:
            parse_edge(name)
        except ValueError as exc:
            raise PairFileError(path, line, str(exc)) from None
        edges.add(name)
    if not edges:
        raise PairFileError(path, None, "no edge names in the ground-truth file")
    return edges


def read_mib_truth(path: Path) -> set[str]:
    """An MIB circuit file's in-graph edges (``in_graph: true``), read and checked by
    :func:`eval.formats.mib.read_mib_edges` (MIB's ``input->a3.h0<v>`` names mapped to ours)."""
    try:
        edges = set(read_mib_edges(path, in_graph_only=True))  # the circuit, not every edge
    except (ValueError, KeyError, OSError) as exc:
        raise PairFileError(path, None, f"not a readable MIB circuit file: {exc}") from None
    if not edges:
        raise PairFileError(path, None, "no edge of the MIB circuit file is marked in_graph")
    return edges


TRUTH_READERS: dict[str, Callable[[Path], set[str]]] = {
    ".txt": read_edge_list,
    ".edges": read_edge_list,
    ".json": read_mib_truth,
}


def read_truth(path: str | Path) -> set[str]:
    """Ground-truth edge names from ``path``: a text file of edge names or an MIB circuit JSON."""
    path = Path(path)
    if not path.is_file():
        raise PairFileError(path, None, "no such ground-truth file")
    reader = TRUTH_READERS.get(path.suffix.lower(), read_edge_list)
    return reader(path)
