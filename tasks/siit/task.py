"""Tasks over the shipped learned (SIIT) models: ``siit-<program>-s<seed>``, one per model.

Each model folder under ``tasks/siit/models/<program>/s<seed>/`` that passed
``python -m tasks.siit.check`` becomes a task: the program's inputs (the same held-out third as
the checks), the model trained on the other two thirds, the metric of the categorical tracr
tasks (mean log-probability of the program's output at the answer positions), and an edge-level
ground truth (q/k/v split, position-free) per ablation that the checks offer: the needed set the
checks verified jointly. On a graph without the q/k/v split a head's q, k and v edges merge into
one (:func:`patching.names.project_edges`); per-position graphs are not offered (the truth is
position-free); InterpBench's head-level projection is in the check report
(``head_level_truth``).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from patching.graph import EdgeGraph, GraphConfig
from patching.names import project_edges
from tasks.base import HELDOUT_SEED, TASKS, TaskData
from tasks.problem import UnsupportedGraphError
from tasks.siit import model as mdl
from tasks.tracr_base import TracrTask, correct_log_prob

MODELS_DIR = Path(__file__).parent / "models"
HELDOUT_N = 128  # held-out examples a benchmark run scores on


class SiitTask(TracrTask):
    """A learned model that implements a tracr program (see the module docstring)."""

    default_ablation = "resample"
    tie_rtol = None  # a trained float32 model: the default tie rule
    per_position = False
    default_n = 64
    metric_description_text = (
        "mean log-probability of the program's output over the answer positions; higher = "
        "more correct"
    )

    def __init__(self, folder: Path, key: str) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.key = key
        self.info = mdl.load_meta(self.folder)
        self.report = json.loads((self.folder / mdl.CHECK_FILE).read_text())
        self.ablations = tuple(self.report["offered_ablations"])
        self.program = self.info["program"]
        self.seq_len = self.info["seq_len"]
        self.max_examples = len(self.info["inputs"])
        self.description = (
            f"learned (SIIT) model {self.folder.name} of the tracr program "
            f"{self.program!r}: {self.info.get('description', '')}"
        )
        self.metric_description = self.metric_description_text
        self._labels: dict[tuple, list[int]] | None = None

    @property
    def meta(self) -> dict:
        if self._meta is None:
            self._meta = json.loads((self.folder / f"{mdl.HIGH_NAME}.json").read_text())
        return self._meta

    def unavailable_reason(self) -> str | None:
        missing = [
            p for p in (mdl.MODEL_FILE, f"{mdl.HIGH_NAME}.json") if not (self.folder / p).is_file()
        ]
        if missing:
            return f"missing {', '.join(str(self.folder / p) for p in missing)}"
        return None

    def load_model(self, device: str = "cpu"):
        key = str(device)
        if key not in self._models:
            self._models[key] = mdl.load_low(self.folder, device)
        return self._models[key]

    def inputs(self) -> list[tuple]:
        return [tuple(s) for s in self.info["inputs"]]

    def tokens(self, seqs: list[tuple]) -> Int[Tensor, "n pos"]:
        return mdl.encode({"high": self.meta}, seqs)

    def _targets(self, seqs: list[tuple]) -> tuple[Int[Tensor, "n pos"], dict[str, Tensor]]:
        if self._labels is None:
            from patching.patched import PatchableModel
            from tasks.siit.check import program_labels

            high = PatchableModel(mdl.load_high(self.folder), GraphConfig())
            everything = self.inputs()
            with torch.no_grad():
                out = program_labels(high, self.tokens(everything))
            self._labels = dict(zip(everything, out.tolist(), strict=True))
        first = self.info["first_answer"]
        rows = [[v if p >= first else 0 for p, v in enumerate(self._labels[s])] for s in seqs]
        return torch.tensor(rows, dtype=torch.long), {}

    def _data_of(self, clean_idx: Tensor, corrupted_idx: Tensor) -> TaskData:
        data = super()._data_of(clean_idx, corrupted_idx)
        mask = data.answer_mask.clone()
        mask[:, : self.info["first_answer"]] = False
        return TaskData(data.clean, data.corrupted, mask, data.answers, extra=data.extra)

    def n_heldout(self) -> int:
        return min(HELDOUT_N, len(self._split()[1]))

    def make_heldout(self) -> TaskData:
        """A fixed sample of ``HELDOUT_N`` inputs of the held-out split (the checks use all of
        it), each with its partner from that split: scoring many circuit sizes per run on all
        341 held-out inputs of a 1,024-input pool would dominate a benchmark's time."""
        held = self._split()[1]
        pick = torch.randperm(len(held), generator=torch.Generator().manual_seed(HELDOUT_SEED))
        return self._pool_data(held[pick[: self.n_heldout()].sort().values], HELDOUT_SEED)

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        return correct_log_prob(logits, data)

    def truth(self, ablation: str) -> list[str]:
        return self.report["ablations"][ablation]["truth"]

    def check_graph(self, config: GraphConfig) -> None:
        if config.positions is not None:
            raise ValueError(
                f"task {self.key!r} has a position-free ground truth; use positions=None"
            )
        for ablation in self.ablations:
            if not project_edges(self.truth(ablation), config):
                raise UnsupportedGraphError(
                    f"task {self.key!r} is not supported on this graph option "
                    f"(include_mlp={config.include_mlp}): no edge of its {ablation}-ablation "
                    "ground truth is in it; use a graph with MLPs"
                )

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        c = self.info["low_config"]
        if (graph.n_layers, graph.n_heads) != (c["n_layers"], c["n_heads"]):
            raise ValueError(
                f"task {self.key!r} has ground truth for its model ({c['n_layers']} layers, "
                f"{c['n_heads']} heads), not a graph of {graph.n_layers} x {graph.n_heads}"
            )
        return project_edges(self.truth(ablation), graph.config)


def _task_class(folder: Path, key: str) -> type[SiitTask]:
    """A class per shipped model, so the registry can describe it without loading it
    (``eval.run --list`` reads ``description``); run when named (``in_all = False``:
    ``--tasks 'siit-*'``, ``make bench-siit``)."""
    info = mdl.load_meta(folder)

    def __init__(self) -> None:
        SiitTask.__init__(self, folder, key)

    return type(
        f"SiitTask_{key.replace('-', '_')}",
        (SiitTask,),
        {
            "__init__": __init__,
            "key": key,
            "in_all": False,
            "description": f"learned (SIIT) model {folder.name} of the tracr program "
            f"{info['program']!r}: {info.get('description', '')}",
            "metric_description": SiitTask.metric_description_text,
        },
    )


def shipped_folders(root: Path = MODELS_DIR) -> list[Path]:
    """Every shipped model folder that holds a passing check report, sorted."""
    out = []
    for report in sorted(root.glob(f"*/s*/{mdl.CHECK_FILE}")):
        if json.loads(report.read_text()).get("passes"):
            out.append(report.parent)
    return out


def task_key(folder: Path) -> str:
    return f"siit-{folder.parent.name}-{folder.name}"


def register_shipped(root: Path = MODELS_DIR) -> list[str]:
    keys = []
    for folder in shipped_folders(root):
        key = task_key(folder)
        if key not in TASKS:
            TASKS.add(key, _task_class(folder, key))
        keys.append(key)
    return keys
