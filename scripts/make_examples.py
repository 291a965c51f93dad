"""Regenerate the prompt-pair files in ``examples/`` (deterministic; seeded).

    python scripts/make_examples.py [--out examples]

- ``induction_pairs.csv``: token ids for the shipped induction model (``--model induction``):
  clean ``[BOS, prefix, s_1..s_L, s_1..s_k]`` asks for ``s_{k+1}`` (induction), placed where
  the model's training data put the repeat (segments end at position 24, the prefix fills the
  rest); corrupted ``[BOS, prefix', a, b_1..b_k]`` is fresh throughout, so nothing in it is
  predictable by induction; the wrong answer is a content token absent from the prompt.
  Lengths vary (L in 4..8, k in 1..L-1): the runner pads.
- ``induction_truth.txt``: the induction model's ground-truth edges (its recorded previous-token
  and induction heads, :mod:`tasks.induction.groundtruth`), one per line.
- ``gpt2_ioi_pairs.csv``: IOI prompts in text for GPT-2 (``--model gpt2``): clean "When A and B
  went to the store, B gave a drink to" -> " A" vs " B"; corrupted with three other names
  (the ABC corruption of Wang et al. 2022), names from the IOI name list.
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
N_INDUCTION = 40
N_IOI = 24
BOS, D_VOCAB, N_CTX = 0, 64, 25  # tasks.induction.data: BOS 0, content 1..63, n_ctx
IOI_NAMES = (
    "Mary",
    "John",
    "James",
    "David",
    "Michael",
    "Paul",
    "Mark",
    "Daniel",
    "Sarah",
    "Thomas",
)
IOI_TEMPLATES = (
    "When{A} and{B} went to the store,{B} gave a drink to",
    "When{A} and{B} went to the park,{B} gave a ball to",
    "Then,{A} and{B} had a long argument, and afterwards{B} said to",
)


def induction_rows(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(N_INDUCTION):
        L = rng.randint(4, 8)
        k = rng.randint(1, L - 1)
        P = N_CTX - 1 - 2 * L  # prefix length: the segments end where training put them
        content = list(range(1, D_VOCAB))
        rng.shuffle(content)
        seg, a, b = content[:L], content[L : 2 * L], content[2 * L : 3 * L]
        rest = content[3 * L :]
        wrong = rest[0]
        prefix = [rng.choice(rest[1:]) for _ in range(P)]
        prefix2 = [rng.choice(rest[1:]) for _ in range(P)]
        clean = [BOS, *prefix, *seg, *seg[:k]]
        corrupted = [BOS, *prefix2, *a, *b[:k]]
        rows.append(
            {
                "clean": " ".join(map(str, clean)),
                "corrupted": " ".join(map(str, corrupted)),
                "answer": seg[k],
                "wrong_answer": wrong,
            }
        )
    return rows


def ioi_rows(rng: random.Random) -> list[dict]:
    rows = []
    for i in range(N_IOI):
        t = IOI_TEMPLATES[i % len(IOI_TEMPLATES)]
        a, b, c, d, e = (" " + n for n in rng.sample(IOI_NAMES, 5))
        rows.append(
            {
                "clean": t.format(A=a, B=b),
                "corrupted": t.format(A=c, B=d)
                .replace(d + " gave", e + " gave")
                .replace(d + " said", e + " said"),
                "answer": a,
                "wrong_answer": b,
            }
        )
    return rows


def induction_truth() -> list[str]:
    from patching.graph import EdgeGraph
    from tasks.induction import InductionTask
    from tasks.induction.groundtruth import circuit_edges

    task = InductionTask()
    prev, ind = task.heads()
    cfg = task.config
    graph = EdgeGraph(cfg.n_layers, cfg.n_heads, has_mlp=False)
    return sorted(circuit_edges(graph, prev, ind))


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(HERE / "examples"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "induction_pairs.csv", induction_rows(random.Random(0)))
    write_csv(out / "gpt2_ioi_pairs.csv", ioi_rows(random.Random(1)))
    truth = induction_truth()
    header = "# ground truth of the shipped induction model (tasks.induction.groundtruth)\n"
    (out / "induction_truth.txt").write_text(header + "\n".join(truth) + "\n")
    print(f"wrote {out / 'induction_truth.txt'} ({len(truth)} edges)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
