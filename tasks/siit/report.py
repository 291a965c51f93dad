"""The shipped learned models as a markdown table (their check reports and training records):
``python -m tasks.siit.report``. docs/siit.md holds its output."""

from __future__ import annotations

import json

from tasks.siit import model as mdl
from tasks.siit.task import shipped_folders, task_key


def rows() -> list[str]:
    head = (
        "| task | layers x heads | candidate edges | truth resample / mean / zero | dropped "
        "(resample) | held-out behaviour | min interchange | joint suff. resample / mean | "
        "steps | train s |"
    )
    out = [head, "|" + "---|" * 10]
    for folder in shipped_folders():
        meta = mdl.load_meta(folder)
        rep = json.loads((folder / mdl.CHECK_FILE).read_text())
        abl = rep["ablations"]
        sizes = " / ".join(
            str(len(abl[k]["truth"])) if abl[k]["offered"] else "—"
            for k in ("resample", "mean", "zero")
        )
        joint = " / ".join(f"{abl[k]['joint_sufficiency_truth']:.3f}" for k in ("resample", "mean"))
        cfg, train = meta["low_config"], meta["train"]
        dropped = ", ".join(f"`{e}`" for e in abl["resample"]["dropped"]) or "none"
        out.append(
            f"| {task_key(folder)} | {cfg['n_layers']} x {cfg['n_heads']} | "
            f"{rep['candidate_edges']} | {sizes} | {dropped} | {rep['behaviour']:.3f} | "
            f"{min(rep['interchange'].values()):.3f} | {joint} | {train['stopped_at']} | "
            f"{train['seconds']:.0f} |"
        )
    return out


def main() -> int:
    print("\n".join(rows()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
