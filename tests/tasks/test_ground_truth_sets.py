"""Every task's ground truth, per graph option and ablation, is frozen in a fixture.

``data/ground_truth_sets.json`` was recorded from the code before the edge names got one owner
(``patching.names``): for each task x graph option (split q/k/v, MLPs in the graph, per
position) x ablation, the number of edges and the SHA-256 of their sorted names. A refactor of
the names or of the projection must leave every set exactly as it was; a deliberate change of a
ground truth re-records the fixture (``python -m tests.tasks.test_ground_truth_sets``) and says
so in its commit.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import pytest

from patching.graph import EdgeGraph, GraphConfig
from tasks import get_task
from tasks.ioi.circuit import ioi_ground_truth

FIXTURE = Path(__file__).parent / "data" / "ground_truth_sets.json"
IOI_POSITIONS = 15
IOI_ROLES = {  # two role layouts (ABBA-like and BABA-like), keys as in data.extra
    "abba": {"io_pos": 2, "s1_pos": 4, "s1_plus1_pos": 5, "s2_pos": 10, "end_pos": 14},
    "baba": {"io_pos": 4, "s1_pos": 2, "s1_plus1_pos": 3, "s2_pos": 10, "end_pos": 14},
}


def _digest(edges: set[str]) -> dict:
    text = "\n".join(sorted(edges))
    return {"n": len(edges), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _options():
    return itertools.product((True, False), (True, False), (False, True))


def _key(*parts) -> str:
    return "/".join(str(p) for p in parts)


def current_sets() -> dict[str, dict]:
    """Count and hash of every ground truth, keyed ``task/split_qkv/include_mlp/per_pos/abl``."""
    out: dict[str, dict] = {}
    for key in ("tracr-reverse", "tracr-proportion"):
        task = get_task(key)
        c = task.meta["config"]
        for split, mlp, per_pos in _options():
            cfg = GraphConfig(split, task.n_pos if per_pos else None, mlp)
            graph = EdgeGraph(c["n_layers"], c["n_heads"], True, cfg)
            for ablation in task.ablations:
                gt = task.ground_truth(graph, ablation)
                out[_key(key, split, mlp, per_pos, ablation)] = _digest(gt)
    task = get_task("induction")
    for split, mlp, _ in _options():
        graph = EdgeGraph(
            task.config.n_layers, task.config.n_heads, False, GraphConfig(split, None, mlp)
        )
        out[_key("induction", split, mlp, False, "resample")] = _digest(task.ground_truth(graph))
    for split, mlp, per_pos in _options():
        graph = EdgeGraph(12, 12, True, GraphConfig(split, IOI_POSITIONS if per_pos else None, mlp))
        for name, roles in IOI_ROLES.items() if per_pos else [("none", None)]:
            out[_key("ioi", split, mlp, per_pos, name)] = _digest(ioi_ground_truth(graph, roles))
    return out


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict]:
    return json.loads(FIXTURE.read_text())


def test_every_ground_truth_is_unchanged(recorded):
    now = current_sets()
    assert sorted(now) == sorted(recorded)
    changed = {k: (recorded[k], now[k]) for k in now if now[k] != recorded[k]}
    assert not changed, changed


def test_fixture_covers_every_option(recorded):
    # 2 tracr tasks x 8 options x 2 ablations + induction 4 + ioi (4 position-free + 4 x 2 roles)
    assert len(recorded) == 32 + 4 + 12
    assert recorded[_key("ioi", True, True, False, "none")]["n"] == 615
    assert recorded[_key("ioi", True, True, True, "abba")]["n"] == 1495


if __name__ == "__main__":
    FIXTURE.parent.mkdir(exist_ok=True)
    FIXTURE.write_text(json.dumps(current_sets(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}")
