"""Train a transformer to implement a tracr program's causal graph, down to the edge: Strict
Interchange Intervention Training (SIIT; Gupta, Arcuschin, Kwa, Garriga-Alonso 2024,
"InterpBench") with an edge-strict loss on top.

    python -m tasks.siit.train --program reverse --out DIR [--seed S] [--steps N]
    python -m tasks.siit.train --program my_programs.py:MY_PROGRAM --out DIR

The high-level model is the tracr-compiled program; the low-level model an ordinary transformer
(random init, LayerNorm, GELU MLPs, wider than tracr's residual, at least 2 layers of 4 heads;
:mod:`tasks.siit.model` has the correspondence rule). Every loss is one row of one call of the
project's patched forward in its training mode (``PatchableModel(..., trainable=True)``): the
rows share a batch of base inputs ``b`` and source inputs ``s`` (train split only), and a row
whose edges are cut reads, along each cut edge, the sending component's output on ``s``
(resample) or its mean over the batch (mean).

- behaviour: every edge clean; cross-entropy to the program's output on ``b``.
- interchange (IIT): for each circuit node ``n``, every edge out of ``n`` cut (``n``'s output
  replaced by its output on ``s``); cross-entropy to the compiled program's output under the same
  intervention.
- strict, nodes (SIIT): every edge out of a random non-circuit node cut; target the output on ``b``.
- strict, edges (ours): each non-candidate edge (also edges between circuit nodes that the
  program does not have) cut with probability ``p ~ U(0, 1)``, and two rows with every
  non-candidate edge cut at once, one resampled and one mean-ablated; target the output on
  ``b``. The strict rows' mean loss has weight 2 (behaviour and IIT 1). InterpBench trains and
  checks single-node resamples only; the joint rows are what the acceptance check's joint
  sufficiency asks for.

``--no-strict`` drops both strict losses (InterpBench's IIT alone); such a model fails the
joint-sufficiency check, which the tests use as a planted failure.

Optimisation: AdamW, linear warm-up then cosine decay, gradient norm clipped at 1 (full-weight
edge-strict training from scratch spiked without them in a prototype). Every ``eval_every``
steps the train-split checks run; training stops at the first evaluation where all of them hold
(behaviour, every node's interchange accuracy and joint sufficiency under resample and mean,
each >= ``stop_accuracy``). Seeded and deterministic on CPU (one thread per run is not needed:
CPU kernels are deterministic for a fixed thread count).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from patching.graph import GraphConfig
from patching.hooked import HookedModel
from patching.patched import PatchableModel
from tasks.siit import model as mdl
from tasks.siit.check import program_labels
from tasks.siit.programs import SiitProgram, resolve
from tasks.splits import pool_split


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 6000
    batch: int = 32
    iit_nodes: int = 3  # circuit nodes interchanged per step (sampled without replacement)
    lr: float = 1e-3
    warmup: int = 200
    weight_decay: float = 0.01
    clip: float = 1.0
    iit_weight: float = 1.0
    strict_weight: float = 2.0
    strict: bool = True
    eval_every: int = 250
    stop_accuracy: float = 0.995
    min_steps: int = 1000


# ----- the two models and what the losses need ---------------------------------------------------
class Setup:
    """Compiled program, low-level model, data and edge sets of one training run."""

    def __init__(self, prog: SiitProgram, seed: int, shape: mdl.LowLevelShape) -> None:
        from models.tracr import build_model
        from tasks.tracr_base import read_write_edges

        self.prog = prog
        self.high_tensors, self.high_meta = _compiled(prog.rasp)
        high = build_model(self.high_tensors, self.high_meta)
        if not self.high_meta["categorical_output"]:
            raise NotImplementedError(
                f"program {prog.name!r} has a numerical output; the trainer supports programs "
                "with a categorical output (a numerical MLP inside the program is fine)"
            )
        graph = GraphConfig(split_qkv=True)
        self.high = PatchableModel(high, graph)
        self.candidates = sorted(read_write_edges(high, self.high_meta["residual_labels"]))
        self.nodes = mdl.circuit_nodes(self.candidates)
        self.low_config = mdl.low_level_config(self.high_meta["config"], shape, seed)
        self.low_model = HookedModel(self.low_config)
        self.low = PatchableModel(self.low_model, graph, trainable=True)
        g = self.low.graph
        missing = [e for e in self.candidates if e not in set(g.edge_names)]
        if missing:
            raise RuntimeError(f"candidate edges missing from the low-level graph: {missing}")
        self.cand_mask = g.edge_mask(self.candidates).bool()
        low_nodes = {n for n in g.sources if n != "embed"}
        self.outside = sorted(low_nodes - set(self.nodes))
        srcs = [s for s, _ in g.edge_pairs]
        self.out_of = {n: torch.tensor([s == n for s in srcs]) for n in low_nodes}
        high_srcs = [s for s, _ in self.high.graph.edge_pairs]
        self.high_out_of = {n: torch.tensor([s == n for s in high_srcs]) for n in self.nodes}
        meta = {"high": self.high_meta}
        self.seqs = prog.all_inputs()
        self.tokens = mdl.encode(meta, self.seqs)
        self.train_idx, self.held_idx = pool_split(len(self.seqs))
        P = self.tokens.shape[1]
        self.answer = torch.arange(P) >= prog.first_answer  # [P]
        with torch.no_grad():
            self.labels = program_labels(self.high, self.tokens)  # [N, P]

    def interchange_labels(self, tokens: Tensor, source: Tensor) -> Tensor:
        """``[n_nodes, B, P]``: the program's output with each circuit node's output taken
        from ``source`` (one forward, a mask row per node)."""
        masks = torch.ones(len(self.nodes), self.high.graph.n_edges)
        for k, node in enumerate(self.nodes):
            masks[k, self.high_out_of[node]] = 0.0
        return self.high(tokens, masks, self.high.ablate("resample", tokens, source)).argmax(-1)


@functools.lru_cache(maxsize=8)
def _compiled(rasp):
    """tracr's compiled program as TransformerLens-layout tensors and metadata (cached: a
    process that trains several models of one program compiles it once)."""
    from models.tracr import compile_program, convert

    return convert(rasp, compile_program(rasp))


def _row_loss(logits: Tensor, labels: Tensor, answer: Tensor) -> Tensor:
    """Mean cross-entropy at the answer positions: logits ``[B, P, V]``, labels ``[B, P]``."""
    return F.cross_entropy(logits[:, answer].flatten(0, 1), labels[:, answer].flatten())


def step_rows(
    su: Setup, b_idx: Tensor, s_idx: Tensor, gen: torch.Generator, strict: bool, iit_nodes: int = 3
):
    """Masks ``[K, E]``, ablated values (``[n_src, B, P, D]`` shared by the rows, or
    ``[K, n_src, B, P, D]`` with the strict rows, whose last row is mean-ablated), targets
    ``[K, B, P]`` and each row's loss group (``behaviour``, ``iit``, ``strict``)."""
    g = su.low.graph
    b, s = su.tokens[b_idx], su.tokens[s_idx]
    with torch.no_grad():
        res = su.low.ablate("resample", b, s).values  # [n_src, B, P, D]
        iit = su.interchange_labels(b, s)  # [n_nodes, B, P]
    y = su.labels[b_idx]
    ones = torch.ones(g.n_edges)
    rows, targets, groups = [ones], [y], ["behaviour"]
    chosen = torch.randperm(len(su.nodes), generator=gen)[:iit_nodes].sort().values.tolist()
    for k in chosen:
        node = su.nodes[k]
        m = ones.clone()
        m[su.out_of[node]] = 0.0
        rows.append(m)
        targets.append(iit[k])
        groups.append("iit")
    if strict:
        node = su.outside[int(torch.randint(len(su.outside), (1,), generator=gen))]
        m = ones.clone()
        m[su.out_of[node]] = 0.0
        p = float(torch.rand((), generator=gen))
        cut = (torch.rand(g.n_edges, generator=gen) < p) & ~su.cand_mask
        joint = su.cand_mask.float()
        rows += [m, (~cut).float(), joint, joint]
        targets += [y, y, y, y]
        groups += ["strict"] * 4
    values = res
    if strict:  # the last joint row reads the batch mean, the others the resample
        values = res.expand(len(rows), *res.shape).clone()
        values[-1] = res.mean(1, keepdim=True)
    return torch.stack(rows), values, torch.stack(targets), groups


def train(
    prog: SiitProgram,
    out: Path,
    seed: int = 0,
    cfg: TrainConfig | None = None,
    shape: mdl.LowLevelShape | None = None,
    command: str = "",
    log=None,
) -> dict:
    """Train, write the folder (see :mod:`tasks.siit.model`), return the final train-split
    evaluation."""
    cfg = cfg or TrainConfig()
    shape = shape or mdl.LowLevelShape()
    log = log or functools.partial(print, flush=True)
    torch.manual_seed(seed)
    su = Setup(prog, seed, shape)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(su.low_model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    def lr_at(step: int) -> float:
        if step < cfg.warmup:
            return (step + 1) / cfg.warmup
        t = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / mdl.LOG_FILE
    lines, started, evaluation, stopped = [], time.time(), {}, cfg.steps
    train_pool = su.train_idx
    weights = {"behaviour": 1.0, "iit": cfg.iit_weight, "strict": cfg.strict_weight}
    for step in range(cfg.steps):
        pick = train_pool[torch.randint(len(train_pool), (2, cfg.batch), generator=gen)]
        masks, vals, targets, groups = step_rows(
            su, pick[0], pick[1], gen, cfg.strict, cfg.iit_nodes
        )
        logits = su.low(su.tokens[pick[0]], masks, su.low.ablated_sources(vals))  # [K,B,P,V]
        losses: dict[str, list[Tensor]] = {}
        for k, group in enumerate(groups):
            losses.setdefault(group, []).append(_row_loss(logits[k], targets[k], su.answer))
        parts = {k: torch.stack(v).mean() for k, v in losses.items()}
        loss = sum(weights[k] * v for k, v in parts.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(su.low_model.parameters(), cfg.clip)
        opt.step()
        sched.step()
        if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps:
            evaluation = evaluate_split(su, su.train_idx, seed)
            entry = {
                "step": step + 1,
                "seconds": round(time.time() - started, 1),
                "lr": sched.get_last_lr()[0],
                **{f"loss_{k}": round(v.item(), 5) for k, v in parts.items()},
                **evaluation,
            }
            lines.append(entry)
            log(json.dumps(entry))
            if step + 1 >= cfg.min_steps and _holds(evaluation, cfg.stop_accuracy, cfg.strict):
                stopped = step + 1
                break
    log_path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    _write_folder(su, out, seed, cfg, shape, command, stopped, time.time() - started)
    return evaluation


def _holds(ev: dict, level: float, strict: bool) -> bool:
    keys = ["behaviour"] + [k for k in ev if k.startswith("iit/")]
    if strict:
        keys += ["joint_resample", "joint_mean"]
    return all(ev[k] >= level for k in keys)


@torch.no_grad()
def evaluate_split(su: Setup, idx: Tensor, seed: int, n_partners: int = 2) -> dict:
    """Accuracies on inputs ``idx`` (each with ``n_partners`` sources from the same split):
    behaviour, interchange per node, and every non-candidate edge cut at once (resample, mean)."""
    from tasks.siit.check import accuracies

    return accuracies(
        su.low, su.high, su.tokens, idx, su.answer, su.candidates, su.nodes, seed, n_partners
    )


def _write_folder(su, out, seed, cfg, shape, command, stopped, seconds) -> None:
    from safetensors.torch import save_file

    from core.checksum import write_sidecar
    from models.tracr import weight_paths

    st, js = weight_paths(mdl.HIGH_NAME, out)
    save_file(su.high_tensors, str(st), metadata={"program": su.prog.name})
    write_sidecar(st)
    js.write_text(json.dumps(su.high_meta, indent=1) + "\n")
    mdl.save_model(su.low_model, out)
    meta = {
        "program": su.prog.name,
        "description": su.prog.description,
        "seed": seed,
        "seq_len": su.prog.seq_len,
        "first_answer": su.prog.first_answer,
        "inputs": [list(s) for s in su.seqs],
        "high": {k: su.high_meta[k] for k in ("input_encoding", "output_encoding", "bos")},
        "low_config": mdl.config_dict(su.low_config),
        "shape": asdict(shape),
        "correspondence": mdl.correspondence(su.nodes),
        "circuit_nodes": su.nodes,
        "candidate_edges": su.candidates,
        "train": {
            **asdict(cfg),
            "stopped_at": stopped,
            "seconds": round(seconds, 1),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "command": command,
    }
    (out / mdl.META_FILE).write_text(json.dumps(meta, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tasks.siit.train", description=__doc__.split("\n")[0]
    )
    p.add_argument("--program", required=True, help="a shipped program name or FILE.py:NAME")
    p.add_argument("--out", required=True, type=Path, help="folder to write the model into")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--no-strict", action="store_true", help="IIT only (a planted failure)")
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="peak learning rate")
    p.add_argument("--d-model", type=int, default=mdl.LowLevelShape.d_model)
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (results are deterministic for a fixed count)",
    )
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        prog = resolve(args.program)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()):
        print(f"error: {args.out} is not empty; choose a new folder", file=sys.stderr)
        return 2
    cfg = TrainConfig(steps=args.steps, strict=not args.no_strict, lr=args.lr)
    shape = mdl.LowLevelShape(d_model=args.d_model)
    command = "python -m tasks.siit.train " + shlex.join(sys.argv[1:] if argv is None else argv)
    train(prog, args.out, args.seed, cfg, shape, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
