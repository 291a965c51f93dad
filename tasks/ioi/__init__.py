"""Indirect object identification (IOI) on GPT-2 small (Wang et al. 2022).

"Then, Mary and John went to the store. John gave a drink to" -> " Mary". Clean prompts come
from Wang et al.'s templates in both orders (ABBA: IO first; BABA: subject first); the
corrupted prompt (ABC) keeps the template, place and object and puts three other names in the
IO, S1 and S2 slots, so every position lines up. The metric is the logit difference IO - S at
the last position. Ground truth: :mod:`tasks.ioi.circuit` (615 edges with q/k/v split).

Prompts have no BOS token by default, as in Wang et al.'s and ACDC's IOI datasets, where the
circuit was found. A batch is drawn from templates that tokenize to one length (by default the
largest such group), so clean and corrupted batches are rectangular without padding. Name
positions differ between templates and orders; ``data.extra`` holds them per example
(``io_pos``, ``s1_pos``, ``s1_plus1_pos``, ``s2_pos``, ``end_pos``) with ``template`` and
``baba`` (1 = subject first).
"""

from __future__ import annotations

from typing import ClassVar

from jaxtyping import Float
from torch import Tensor

from patching.graph import EdgeGraph
from tasks.base import Task, TaskData, register_task
from tasks.ioi import hub
from tasks.ioi.circuit import ioi_ground_truth
from tasks.ioi.prompts import (
    POSITION_KEYS,
    Tokenizer,
    Vocabulary,
    build_vocabulary,
    check_templates,
    generate,
)

MODEL_NAME = "gpt2"


@register_task("ioi")
class IOITask(Task):
    """IOI on GPT-2 small; ``tokenizer`` may be injected (tests use a word-level one)."""

    description: ClassVar[str] = "indirect object identification on GPT-2 small"
    metric_description: ClassVar[str] = (
        "logit(IO) - logit(S) at the last position; higher = more of the clean behaviour"
    )
    ablations: ClassVar[tuple[str, ...]] = ("resample", "mean")
    default_ablation: ClassVar[str] = "resample"
    max_examples: ClassVar[int] = 10_000
    default_n: ClassVar[int] = 32

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        templates: tuple[int, ...] | None = None,
        prepend_bos: bool = False,
    ) -> None:
        self._tokenizer = tokenizer
        self._templates = check_templates(templates)
        self.prepend_bos = prepend_bos
        self._vocab: Vocabulary | None = None

    # ----- environment -------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        return hub.unavailable_reason(MODEL_NAME, hub.GPT2_FILES)

    @property
    def tokenizer(self) -> Tokenizer:
        """The injected tokenizer, else GPT-2's, loaded on first use."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(MODEL_NAME)
        return self._tokenizer

    def load_model(self, device: str = "cpu"):
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot load GPT-2 for the ioi task: {reason}")
        from transformer_lens import HookedTransformer

        model = HookedTransformer.from_pretrained(MODEL_NAME, device=device)
        return model.eval()

    # ----- data ----------------------------------------------------------------------------
    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = build_vocabulary(self.tokenizer, self._templates, self.prepend_bos)
        return self._vocab

    def _make_data(self, n: int, seed: int) -> TaskData:
        g = generate(self.vocabulary, n, seed)
        clean = g["clean"]
        answer_mask = clean.new_zeros(clean.shape, dtype=bool)
        answer_mask[:, -1] = True
        answers = clean.new_zeros(clean.shape)
        answers[:, -1] = g["io"]
        wrong = clean.new_zeros(clean.shape)
        wrong[:, -1] = g["s"]
        extra = {k: g[k] for k in (*POSITION_KEYS, "template", "baba")}
        return TaskData(clean, g["corrupted"], answer_mask, answers, wrong, extra=extra)

    def metric(
        self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData
    ) -> Float[Tensor, "*k n"]:
        """Logit difference IO - S, averaged over the answer positions (the last one)."""
        shape = logits.shape[:-1]
        right = logits.gather(-1, data.answers.expand(shape).unsqueeze(-1)).squeeze(-1)
        wrong = logits.gather(-1, data.wrong.expand(shape).unsqueeze(-1)).squeeze(-1)
        mask = data.answer_mask.to(logits.dtype)
        return ((right - wrong) * mask).sum(-1) / mask.sum(-1).clamp(min=1)

    # ----- ground truth --------------------------------------------------------------------
    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        return ioi_ground_truth(graph)
