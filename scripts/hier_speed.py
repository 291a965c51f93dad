"""Speed and edge recovery of ``ipd-hier`` against flat ``ipd`` (issue 6, hierarchical pruning).

``python scripts/hier_speed.py [--out results/hier_speed.json] [--repeats 2] [--gpt2-steps 2]
[--skip-gpt2]``

1. Offline tasks (tracr-reverse, tracr-proportion, and induction once it is registered), every
   ablation with a ground truth, set up as ``tests/methods/problems.py`` does. Per task:
   wall time (min over ``repeats``), steps and ROC AUC of ``ipd`` (default config), ``ipd-hier``
   (default config) and ``ipd`` given as many steps as ``ipd-hier`` took in total (the control
   that says whether a speed-up comes from the hierarchy or only from taking fewer steps).
2. GPT-2-small-shaped random model (``random/gpt2-small``, ``models.random``), batch 8 x 16 tokens,
   2 CPU threads: seconds per optimisation step of flat ipd, of the coarse stage and of the fine
   stage (with 25% of the nodes kept), measured interleaved (median over rounds) because the
   machine is shared; plus an analytic FLOP count of one step, and of the same step if the
   forward skipped pruned nodes (an estimate of what a pruning-aware forward could save; the
   one-pass forward in ``patching/`` computes every node whatever the masks).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eval.scoring.metrics import roc_auc  # noqa: E402
from methods import get_method  # noqa: E402
from methods.ipd import IpdConfig, run_ipd  # noqa: E402
from methods.ipd_hier import IpdHierConfig, NodeMap  # noqa: E402
from models.random import gpt2_small_shaped  # noqa: E402
from patching import PatchableModel  # noqa: E402
from patching.names import head_name, mlp_name  # noqa: E402
from tasks import TASKS, get_task  # noqa: E402
from tasks.base import TaskData, kl_from_clean  # noqa: E402
from tasks.problem import Problem  # noqa: E402

OFFLINE_TASKS = ("tracr-reverse", "tracr-proportion", "induction")
BATCH, POS = 8, 16


# ----- 1. tasks ------------------------------------------------------------------------------
def task_problems():
    """(task key, ablation, problem, truth) for every available offline task and ablation."""
    for key in OFFLINE_TASKS:
        if key not in TASKS:
            print(f"skip {key}: not registered", file=sys.stderr)
            continue
        task = get_task(key)
        if (why := task.unavailable_reason()) is not None:
            print(f"skip {key}: {why}", file=sys.stderr)
            continue
        pm = PatchableModel(task.load_model())
        data = task.make_data(task.default_n, seed=0)
        for ablation in task.ablations:
            problem = Problem.from_task(task, pm, data, ablation)
            truth = pm.graph.edge_mask(task.ground_truth(pm.graph, ablation)).numpy()
            yield key, ablation, problem, truth


def run_method(key: str, problem, truth, repeats: int, **config) -> dict:
    seconds, scores, method = [], None, None
    for _ in range(repeats):
        method = get_method(key, **config)
        t0 = time.perf_counter()
        scores = method(problem)
        seconds.append(time.perf_counter() - t0)
    row = {
        "seconds": min(seconds),
        "steps": method.trace["steps"],
        "faithfulness": method.trace["final_loss"],
        "auc": roc_auc(truth, scores.numpy(), signed=method.signed),
    }
    if key == "ipd-hier":
        row |= {
            "pruned_nodes": method.trace["pruned_nodes"],
            "fine_params": method.trace["n_fine_params"],
        }
    return row


def task_rows(repeats: int) -> list[dict]:
    rows = []
    for key, ablation, problem, truth in task_problems():
        flat = run_method("ipd", problem, truth, repeats)
        hier = run_method("ipd-hier", problem, truth, repeats)
        control = run_method("ipd", problem, truth, repeats, steps=hier["steps"])
        rows.append(
            {
                "task": key,
                "ablation": ablation,
                "n_edges": problem.n_edges,
                "n_truth": int(truth.sum()),
                "ipd": flat,
                "ipd_hier": hier,
                "ipd_equal_steps": control,
                "speedup": flat["seconds"] / hier["seconds"],
                "auc_change": hier["auc"] - flat["auc"],
            }
        )
        print(f"{key} {ablation}: done", file=sys.stderr)
    return rows


# ----- 2. GPT-2-small-shaped step time -------------------------------------------------------
def last_logprob(logits: torch.Tensor, data: TaskData) -> torch.Tensor:
    """Log-probability of the answer at the last position (the timing problem's metric)."""
    answer = data.answers[:, -1]
    answer = answer.view(*([1] * (logits.dim() - 3)), -1, 1).expand(*logits.shape[:-3], -1, 1)
    return logits[..., -1, :].log_softmax(-1).gather(-1, answer).squeeze(-1)


def gpt2_problem() -> Problem:
    model = gpt2_small_shaped()
    vocab = model.cfg.d_vocab
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    corrupt = torch.randint(0, vocab, (BATCH, POS), generator=gen)
    answers = torch.zeros(BATCH, POS, dtype=torch.long)
    answers[:, -1] = torch.randint(0, vocab, (BATCH,), generator=gen)
    mask = torch.zeros(BATCH, POS, dtype=torch.bool)
    mask[:, -1] = True
    pm = PatchableModel(model)
    data = TaskData(clean, corrupt, mask, answers)
    return Problem(pm, data, pm.ablate("resample", clean, corrupt), last_logprob, kl_from_clean)


def kept_nodes_25(nm: NodeMap) -> torch.Tensor:
    """A fixed pruning for the fine-stage timing: embed plus every 4th head and MLP (~25%)."""
    keep = torch.zeros(len(nm.nodes), dtype=torch.bool)
    keep[0] = True
    keep[1::4] = True
    return keep


def _with_live(problem: Problem, live: torch.Tensor, run):
    """Run with the forward skipping non-live nodes (as ipd-hier's fine stage does)."""
    problem.live = live
    try:
        return run()
    finally:
        problem.live = None


def stage_runners(problem: Problem) -> dict:
    """name -> (IpdConfig -> trace) for flat ipd, the coarse and the fine stage."""
    nm = NodeMap.of(problem.model.graph)
    keep = kept_nodes_25(nm)
    padded = torch.cat([keep, torch.ones(1, dtype=torch.bool)])
    idx = (padded[nm.src] & padded[nm.dst]).nonzero().squeeze(1)
    zeros = torch.zeros(problem.n_edges)
    hier = IpdHierConfig()
    sources = problem.model.graph.sources
    live = torch.ones(len(sources), dtype=torch.bool)
    for node, k in zip(nm.nodes, keep.tolist(), strict=True):
        if not k:
            live[sources.index(node)] = False
    return (
        {
            "flat": (lambda s: run_ipd(problem, IpdConfig(steps=s))[1], problem.n_edges),
            "coarse": (
                lambda s: run_ipd(
                    problem,
                    IpdConfig(steps=s, lr=hier.coarse_lr),
                    n_params=len(nm.nodes),
                    expand=lambda c: c[nm.src],
                )[1],
                len(nm.nodes),
            ),
            "fine_25pct_nodes": (
                lambda s: run_ipd(
                    problem,
                    IpdConfig(steps=s),
                    n_params=idx.numel(),
                    expand=lambda c: zeros.index_copy(0, idx, c),
                )[1],
                idx.numel(),
            ),
            "fine_25pct_nodes_skip_pruned": (
                lambda s: _with_live(
                    problem,
                    live,
                    lambda: run_ipd(
                        problem,
                        IpdConfig(steps=s),
                        n_params=idx.numel(),
                        expand=lambda c: zeros.index_copy(0, idx, c),
                    )[1],
                ),
                idx.numel(),
            ),
        },
        keep,
        nm,
    )


def gpt2_rows(steps: int, rounds: int = 2) -> dict:
    torch.set_num_threads(2)
    problem = gpt2_problem()
    runners, keep, nm = stage_runners(problem)
    for run, _ in runners.values():  # warm-up
        run(1)
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(rounds):  # interleaved, so a busy spell on the shared machine hits all
        for name, (run, _) in runners.items():
            trace = run(steps)
            times[name].append(trace.seconds / trace.steps)
    torch.set_num_threads(1)

    def gflop(pruned, last_only=False):
        return step_flops(problem.model.graph, problem.model.cfg, pruned, last_only) / 1e9

    return {
        "device": "cpu, 2 threads",
        "batch": BATCH,
        "pos": POS,
        "n_edges": problem.n_edges,
        "steps_per_round": steps,
        "rounds": rounds,
        "seconds_per_step": {k: statistics.median(v) for k, v in times.items()},
        "params": {k: n for k, (_, n) in runners.items()},
        "gflop_per_step_estimate": {
            "one_pass_forward (every node, as now)": gflop(None),
            "pruning_aware_forward, 25% nodes kept": gflop((nm, keep)),
            "pruning_aware_forward, 25% kept, last-position unembed": gflop((nm, keep), True),
        },
    }


def step_flops(graph, cfg, pruned, last_only: bool = False) -> float:
    """Matmul FLOPs of one forward + backward (no weight gradients) of the patched model.

    ``pruned``: (NodeMap, keep) to count a forward that skips pruned nodes: no q/k/v rows, no
    attention or MLP for them, and the edge mix over live sources and live destinations only.
    Forward and backward each count the mix once more for the mask gradient; the backward of the
    model's matmuls costs one input-gradient matmul each.
    """
    N, D, dh, H = BATCH * POS, cfg.d_model, cfg.d_head, cfg.n_heads
    live = {n: True for n in graph.sources}
    if pruned is not None:
        nm, keep = pruned
        live |= dict(zip(nm.nodes, keep.tolist(), strict=True))
    total = 0.0
    for layer in range(graph.n_layers):
        up = graph.sources[: graph.n_up_attn(layer)]
        j = sum(live[s] for s in up)
        heads = sum(live[head_name(layer, h)] for h in range(H))
        rows = heads * (3 if graph.config.split_qkv else 1)
        mix = 2 * rows * j * N * D
        attn = 2 * rows * N * D * dh + 2 * heads * N * dh * D + 4 * heads * BATCH * POS * POS * dh
        total += 3 * mix + 2 * attn
        if graph.has_mlp and live[mlp_name(layer)]:
            j_mlp = sum(live[s] for s in graph.sources[: graph.n_up_mlp(layer)])
            total += 3 * 2 * j_mlp * N * D + 2 * (2 * 2 * N * D * cfg.d_mlp)
    j_out = sum(live.values())
    unembed_tokens = BATCH if last_only else N
    total += 3 * 2 * j_out * N * D + 2 * 2 * unembed_tokens * D * cfg.d_vocab
    return total


# ----- report ---------------------------------------------------------------------------------
def print_table(record: dict) -> None:
    cols = [
        ("task", 18), ("abl", 8), ("edges", 5), ("ipd AUC", 7), ("s", 6), ("steps", 5),
        ("hier AUC", 8), ("s", 6), ("steps", 5), ("fine p", 6), ("speedup", 7), ("dAUC", 6),
        ("ipd@same AUC", 12), ("s", 6), ("faith ipd", 9), ("faith hier", 10),
    ]  # fmt: skip
    print(" ".join(f"{name:>{w}s}" for name, w in cols))
    for r in record["tasks"]:
        f, h, c = r["ipd"], r["ipd_hier"], r["ipd_equal_steps"]
        values = [
            r["task"], r["ablation"], r["n_edges"], f["auc"], f["seconds"], f["steps"],
            h["auc"], h["seconds"], h["steps"], h["fine_params"], r["speedup"], r["auc_change"],
            c["auc"], c["seconds"], f["faithfulness"], h["faithfulness"],
        ]  # fmt: skip
        print(" ".join(_cell(v, w) for v, (_, w) in zip(values, cols, strict=True)))
        print(f"{'':28s}pruned nodes: {', '.join(h['pruned_nodes']) or '-'}")
    g = record.get("gpt2_small_shaped")
    if g:
        print(
            f"\nGPT-2-small-shaped, {g['n_edges']} edges, {g['batch']}x{g['pos']}, {g['device']}:"
        )
        for k, v in g["seconds_per_step"].items():
            print(f"  {k:18s} {v:6.2f} s/step   ({g['params'][k]} parameters)")
        print("  estimated GFLOP per step (forward + backward, matmuls):")
        for k, v in g["gflop_per_step_estimate"].items():
            print(f"    {k:58s} {v:7.1f}")


def _cell(v, width: int) -> str:
    if isinstance(v, str):
        return f"{v:>{width}s}"
    if isinstance(v, int):
        return f"{v:>{width}d}"
    return f"{v:>{width}.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="results/hier_speed.json")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--gpt2-steps", type=int, default=2)
    ap.add_argument("--skip-gpt2", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    record = {
        "ipd_config": repr(IpdConfig()),
        "ipd_hier_config": repr(IpdHierConfig()),
        "tasks": task_rows(args.repeats),
    }
    if not args.skip_gpt2:
        record["gpt2_small_shaped"] = gpt2_rows(args.gpt2_steps)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2))
    print_table(record)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
