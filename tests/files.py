"""What the file-task tests share: the shipped example files and the runner's arguments for a
quick inline run on the shipped induction model."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "induction_pairs.csv"
TRUTH = ROOT / "examples" / "induction_truth.txt"
GPT2_EXAMPLE = ROOT / "examples" / "gpt2_ioi_pairs.csv"
BASE = ["--seeds", "1", "--device", "cpu", "--inline", "--no-plots", "--model", "induction"]
