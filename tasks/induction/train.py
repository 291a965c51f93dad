"""Train the induction model: ``python -m tasks.induction.train`` (about 3 minutes on one core).

A 2-layer attention-only ``HookedModel`` (:mod:`patching.hooked`; 4 heads of 16 per layer,
d_model 64, vocabulary
64 with BOS = 0, n_ctx 25) learns next-token prediction on ``[BOS, prefix, s, s]`` sequences of
i.i.d. tokens (:func:`tasks.induction.data.training_batch`; the module docstring there says why
the data look this way). AdamW, lr 3e-3 with 100 warm-up steps and linear decay to 10%, weight
decay 0.01, batch 64, 6000 steps.

No normalisation: every head's input is then exactly the sum of its incoming edges, so ablating
an edge outside the circuit cannot rescale the edges inside it through a shared LayerNorm scale,
and the logits are a linear read-out of the residual stream. A model this small trains stably
without it.

Seed 1. In trial runs seed 0 also learned K-composition, but its induction heads read the
copied token largely through layer-0 heads that attend to their own position, outside the
ground truth's roles; seed 1 keeps that path small (the tests state how faithful the ground
truth is).

Training is deterministic: ``torch.manual_seed`` before initialisation, a seeded generator for
the data, one thread, inside ``torch.random.fork_rng`` so callers' RNG state is untouched
(retraining reproduced the checkpoint bit for bit on torch 2.13 CPU). The script writes
``model.safetensors`` (float32, 174 KB), ``train_record.json`` (configs, seed, steps, final
losses, torch version, wall time) and ``groundtruth.json`` (head scores, see
:mod:`tasks.induction.groundtruth`) beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from tasks.induction import groundtruth
from tasks.induction.data import ModelConfig, generator, half_losses, repeated, training_batch
from tasks.induction.model import CHECKPOINT, HERE, build_model
from tasks.induction.model import TRAIN_RECORD as RECORD

EVAL_N = 2048  # held-out sequences for the final losses


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1
    steps: int = 6000
    batch: int = 64
    lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 100

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1 or self.lr <= 0 or self.warmup < 0:
            raise ValueError(f"invalid training config {self}")


def _lr_factor(step: int, tc: TrainConfig) -> float:
    """Linear warm-up, then linear decay to 10%."""
    if step < tc.warmup:
        return (step + 1) / tc.warmup
    return 1.0 - 0.9 * (step - tc.warmup) / max(1, tc.steps - tc.warmup)


def train(cfg: ModelConfig | None = None, tc: TrainConfig | None = None, log_every: int = 0):
    """Train from scratch; returns ``(model, record)``. Same configs -> same weights."""
    cfg, tc = cfg or ModelConfig(), tc or TrainConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(tc.seed)
            model = build_model(cfg)
            gen = generator(tc.seed, "train")
            opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, tc))
            model.train()
            for step in range(tc.steps):
                tokens, _ = training_batch(tc.batch, cfg, gen)
                loss = model(tokens, return_type="loss")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                if log_every and (step % log_every == 0 or step == tc.steps - 1):
                    print(f"step {step:5d} loss {loss.item():.4f}", flush=True)
            model.eval()
            first, second = evaluate(model, cfg)
    finally:
        torch.set_num_threads(threads)
    record = {
        "model_config": cfg.to_dict(),
        "train_config": asdict(tc),
        "normalization": None,
        "attn_only": True,
        "final_loss_first_half": round(first, 4),
        "final_loss_second_half": round(second, 4),
        "loss_eval": f"{EVAL_N} task-style sequences, data stream groundtruth, seed 0",
        "torch_version": torch.__version__,
        "train_seconds": round(time.perf_counter() - start, 1),
        "threads": 1,
    }
    return model, record


@torch.no_grad()
def evaluate(model, cfg: ModelConfig, n: int = EVAL_N, seed: int = 0) -> tuple[float, float]:
    """Final losses (nats) on held-out sequences: first segment, and the repeat's answer slots."""
    tokens, seg_len = repeated(n, cfg, generator(seed, "groundtruth"))
    return half_losses(model(tokens), tokens, seg_len, cfg)


def save(model, record: dict, checkpoint: Path = CHECKPOINT, record_path: Path = RECORD) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.named_parameters()}
    save_file(state, str(checkpoint), metadata={"format": "pt", "task": "induction"})
    checkpoint.chmod(0o644)  # safetensors writes owner-only files
    record_path.write_text(json.dumps(record, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--out", type=Path, default=HERE, help="folder for the checkpoint and records")
    args = p.parse_args(argv)
    model, record = train(ModelConfig(), TrainConfig(seed=args.seed, steps=args.steps), 200)
    args.out.mkdir(parents=True, exist_ok=True)
    save(model, record, args.out / CHECKPOINT.name, args.out / RECORD.name)
    print(json.dumps(record, indent=2))
    gt = groundtruth.compute_record(model, ModelConfig())
    groundtruth.write_record(gt, args.out / groundtruth.RECORD.name)
    print(json.dumps(gt, indent=2))


if __name__ == "__main__":
    main()
