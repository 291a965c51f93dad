"""Print or draw the circuit one run found, from its run folder (no model, no re-run).

    python -m eval.formats.circuit RUN_DIR --method ipd --task induction
    python -m eval.formats.circuit RUN_DIR --method ipd --task induction --size 5% --format dot
    python -m eval.formats.circuit RUN_DIR --method eap --task ioi --seed 1 --edges 40 --format png

Size: ``--size`` a fraction of the graph's edges (``5%`` or ``0.05``; the evaluator's size rule,
:func:`eval.scoring.metrics.circuit_masks`) or ``--edges`` a number of top-ranked edges; default: as
many edges as the ground truth has (the k of precision@k), or 5% on a task without one. Dangling
edges are pruned either way (:mod:`eval.formats.circuits`).

Format: ``text`` (default) and ``dot`` print to stdout, or to ``--out``; ``png`` and ``svg``
write ``--out`` (default ``RUN_DIR/plots/circuit_<method>__<task>__seed<s>.<format>``). The
format defaults to ``--out``'s suffix; a suffix of no format, or of another one than ``--format``,
is refused (exit 2: ``--out c.pdf`` would hold plain text).

Exit codes: 0 done; 2 bad input (no such folder, method, task, seed or size) before anything
is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eval.formats.circuits import CircuitError, check_run, load_circuit, read_circuits
from eval.formats.draw_circuit import FORMATS, SUFFIX, TEXT_FORMATS
from eval.records import read_records, run_name

DEFAULT_FRACTION = 0.05  # without a ground truth
PLOT_FORMAT = "png"  # what eval.run draws into plots/


def parse_size(text: str) -> float:
    """``5%`` -> 0.05, ``0.05`` -> 0.05; ValueError outside (0, 100%]."""
    t = text.strip()
    try:
        value = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(
            f"--size must be a percentage like 5% or a fraction like 0.05, got {text!r}"
        ) from None
    if not 0 < value <= 1:
        raise ValueError(f"--size must be in (0, 100%], got {text!r}")
    return value


def default_size(folder, method: str, task: str, seed: int) -> tuple[float | None, int | None]:
    """(fraction, n_edges) of the default circuit: |ground truth| edges, else 5%."""
    try:
        truth = read_circuits(folder, method, task, seed)["ground_truth"]
    except FileNotFoundError:
        truth = None
    return (None, len(truth)) if truth else (DEFAULT_FRACTION, None)


def default_out(folder, method: str, task: str, seed: int, fmt: str) -> Path:
    return Path(folder) / "plots" / f"circuit_{run_name(method, task, seed)}.{SUFFIX[fmt]}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m eval.formats.circuit",
        description="Print or draw the circuit a run found (from its run folder).",
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run folder of eval.run (its --out)")
    p.add_argument("--method", required=True, help="method key, e.g. ipd")
    p.add_argument("--task", required=True, help="task key, e.g. induction")
    p.add_argument("--seed", type=int, default=0, help="seed of the run (default 0)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--size", help="fraction of the graph's edges: 5%% or 0.05")
    size.add_argument("--edges", type=int, help="number of top-ranked edges")
    p.add_argument("--format", choices=sorted(FORMATS), help="text (default), dot, png or svg")
    p.add_argument("--out", help="output file (png/svg default: RUN_DIR/plots/circuit_<run>.*)")
    return p


def _format(args) -> str:
    """--format, else the one --out's suffix names (text without --out); CircuitError when
    --out's suffix names no format or another one (``c.pdf`` would hold plain text)."""
    suffix = Path(args.out).suffix.lstrip(".").lower() if args.out else ""
    by_suffix = {v: k for k, v in SUFFIX.items()}
    fmt = args.format or by_suffix.get(suffix, "text")
    if suffix and suffix != SUFFIX[fmt]:
        known = ", ".join(f".{v}" for v in SUFFIX.values())
        raise CircuitError(
            f"--out {args.out}: a .{suffix} file can't hold the {fmt} format; "
            f"name it .{SUFFIX[fmt]} (formats by suffix: {known})"
        )
    return fmt


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        fmt = _format(args)
        check_run(args.run_dir, args.method, args.task, args.seed)
        if args.size is not None:
            fraction, n_edges = parse_size(args.size), None
        elif args.edges is not None:
            fraction, n_edges = None, args.edges
        else:
            fraction, n_edges = default_size(args.run_dir, args.method, args.task, args.seed)
        circuit = load_circuit(args.run_dir, args.method, args.task, args.seed, fraction, n_edges)
        out = Path(args.out) if args.out else None
        if out is not None and not out.parent.is_dir():
            raise CircuitError(f"no folder {out.parent} to write {out.name} into")
    except (CircuitError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if out is None and fmt in TEXT_FORMATS:
        sys.stdout.write(TEXT_FORMATS[fmt](circuit))
        return 0
    if out is None:
        out = default_out(args.run_dir, args.method, args.task, args.seed, fmt)
        out.parent.mkdir(parents=True, exist_ok=True)
    FORMATS[fmt](circuit, out)
    print(f"wrote {out}")
    return 0


def draw_run(folder, fmt: str = PLOT_FORMAT) -> list[Path]:
    """Draw each method's circuit on each task of a run at the default size into ``plots/``
    (its lowest finished seed); reads only the run folder. Returns the files written."""
    done: dict[tuple[str, str], int] = {}
    for r in read_records(folder):
        key = (r.method, r.task)
        if r.ok and (folder_has_scores(folder, r.method, r.task, r.seed)):
            done[key] = min(done.get(key, r.seed), r.seed)
    written = []
    for (method, task), seed in sorted(done.items()):
        check_run(folder, method, task, seed)
        fraction, n_edges = default_size(folder, method, task, seed)
        circuit = load_circuit(folder, method, task, seed, fraction, n_edges)
        out = default_out(folder, method, task, seed, fmt)
        out.parent.mkdir(parents=True, exist_ok=True)
        written.append(FORMATS[fmt](circuit, out))
    return written


def folder_has_scores(folder, method: str, task: str, seed: int) -> bool:
    from eval.formats.found import SCORES

    return (Path(folder) / SCORES / f"{run_name(method, task, seed)}.pt").is_file()


if __name__ == "__main__":
    sys.exit(main())
