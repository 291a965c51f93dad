"""Train and check the shipped learned (SIIT) models: every program of
``tasks.siit.programs.SHIPPED`` x seeds, two at a time (one torch thread each).

    python scripts/train_siit_models.py [--programs reverse,hist] [--seeds 0,1] [--jobs 2]

Each model goes to ``tasks/siit/models/<program>/s<seed>/`` via the two public commands
(``python -m tasks.siit.train`` then ``python -m tasks.siit.check``); a folder that already holds
a check report is skipped. A model that fails its checks keeps its folder (to inspect) but is
not registered as a task (see ``tasks.siit.task.shipped_folders``) and must not be committed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tasks" / "siit" / "models"


def job(program: str, seed: int, extra: list[str]) -> str:
    out = MODELS / program / f"s{seed}"
    if (out / "check.json").is_file():
        return f"{program} s{seed}: already checked"
    log = MODELS / program / f"s{seed}.train.log"
    out.parent.mkdir(parents=True, exist_ok=True)
    trained = (out / "siit.json").is_file()  # trained earlier, not yet checked
    with log.open("a" if trained else "w") as fh:
        cmd = [
            sys.executable,
            "-m",
            "tasks.siit.train",
            "--program",
            program,
            "--out",
            str(out.relative_to(ROOT)),
            "--seed",
            str(seed),
            *extra,
        ]
        rc = 0 if trained else subprocess.call(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
        if rc:
            return f"{program} s{seed}: training failed (exit {rc}), see {log}"
        rc = subprocess.call(
            [sys.executable, "-m", "tasks.siit.check", str(out.relative_to(ROOT))],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
    if not trained:
        log.unlink()
    return f"{program} s{seed}: {'passes' if rc == 0 else 'FAILS its checks'}"


def main(argv: list[str] | None = None) -> int:
    from tasks.siit.programs import SHIPPED

    p = argparse.ArgumentParser()
    p.add_argument("--programs", default=",".join(SHIPPED))
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--jobs", type=int, default=2)
    args, extra = p.parse_known_args(argv)
    jobs = [(prog, int(s)) for prog in args.programs.split(",") for s in args.seeds.split(",")]
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda j: job(*j, extra), jobs):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
