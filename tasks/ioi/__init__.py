"""Indirect object identification (IOI) on GPT-2 small (Wang et al. 2022).

"Then, Mary and John went to the store. John gave a drink to" -> " Mary". Clean prompts come
from Wang et al.'s templates in both orders (ABBA: IO first; BABA: subject first); the
corrupted prompt (ABC) keeps the template, place and object and puts three other names in the
IO, S1 and S2 slots, so every position lines up. The metric is the logit difference IO - S at
the last position. Ground truth: :mod:`tasks.ioi.circuit` (615 edges with q/k/v split; 1,495
per position).

Prompts have no BOS token by default, as in Wang et al.'s and ACDC's IOI datasets, where the
circuit was found. A batch is drawn from templates that tokenize to one length (by default the
largest such group), so clean and corrupted batches are rectangular without padding. Name
positions differ between templates and orders; ``data.extra`` holds them per example
(``io_pos``, ``s1_pos``, ``s1_plus1_pos``, ``s2_pos``, ``end_pos``) with ``template`` and
``baba`` (1 = subject first).

**Per-position ground truth.** A per-position graph needs every prompt of a batch to hold each
token role (IO, S1, S1+1, S2, END) at one position. ``IOITask(order="ABBA")`` (or ``"BABA"``)
gives such batches: every prompt in that one name order, drawn from a group of templates whose
role positions coincide after tokenization (by default the largest such group, ties to the
shorter prompt, then the earlier roles; explicit ``templates`` that don't coincide raise a
ValueError on first use). The role positions are then a property of the task's configuration
(tokenizer, templates, order, ``prepend_bos``), read off the tokenized templates exactly as
``data.extra`` is: :attr:`IOITask.role_positions`. So :meth:`Task.ground_truth`, which receives
only the graph, needs no state from ``make_data``: every batch of the task agrees with it by
construction and the answer doesn't depend on call order (remembering the last batch's
positions would make it depend on call history, and fail on a task that never made a batch).
``check_graph`` accepts ``positions=`` the prompt length of such a task (and ``positions=None``
always); the default task mixes orders and templates, whose role positions differ, so it
refuses a per-position graph (the registered key ``ioi`` is that default). Role assignment per
head class: :mod:`tasks.ioi.circuit`.

**Other models.** ``IOITask(model=NAME_OR_PATH)`` (``--model`` on the command line) runs the same
task on any causal LM the graph supports (a Hugging Face hub name or a local
``save_pretrained`` folder with its tokenizer): prompts are built with *that* model's tokenizer,
names, places and objects that are not one token there are dropped (as for GPT-2), and the model
is found and loaded through :func:`models.resolve`. The ground truth (Wang et al.'s circuit) is a
finding about GPT-2 small only, so for any other model the task is faithfulness-only:
:attr:`IOITask.no_truth_note` says why, and the runner leaves the recovery columns empty.
``prepend_bos`` defaults to False for GPT-2 (as Wang et al. and ACDC) and to True for other models
whose tokenizer has a BOS token (Llama-, Gemma- and Qwen-family models are trained with one).
"""

from __future__ import annotations

from typing import ClassVar

from jaxtyping import Float
from torch import Tensor

from models import resolve
from patching.graph import EdgeGraph, GraphConfig
from tasks.base import Task, TaskData, register_task
from tasks.ioi.circuit import ioi_ground_truth
from tasks.ioi.prompts import (
    POSITION_KEYS,
    Tokenizer,
    Vocabulary,
    build_vocabulary,
    check_order,
    check_templates,
    generate,
)

MODEL_NAME = "gpt2"


@register_task("ioi")
class IOITask(Task):
    """IOI on GPT-2 small (or ``model``); ``tokenizer`` may be injected (tests use a word-level
    one).

    model: a Hugging Face hub name or a local folder (default GPT-2 small, where the ground truth
        is known); see the module docstring.

    templates: indices into :data:`~tasks.ioi.prompts.BABA_TEMPLATES` (None: chosen, see above).
    order: None draws both name orders, balanced; ``"ABBA"`` or ``"BABA"`` draws only that one
        from templates whose role positions coincide, which the per-position ground truth needs.
    """

    description: ClassVar[str] = "indirect object identification on GPT-2 small"
    metric_description: ClassVar[str] = (
        "logit(IO) - logit(S) at the last position; higher = more of the clean behaviour"
    )
    ablations: ClassVar[tuple[str, ...]] = ("resample", "mean")
    default_ablation: ClassVar[str] = "resample"
    max_examples: ClassVar[int] = 10_000
    default_n: ClassVar[int] = 32
    per_position: ClassVar[bool] = True  # with ``order`` set; see the module docstring
    takes_model: ClassVar[bool] = True  # --model NAME_OR_PATH: see tasks.configured

    def __init__(
        self,
        tokenizer: Tokenizer | None = None,
        templates: tuple[int, ...] | None = None,
        prepend_bos: bool | None = None,
        order: str | None = None,
        model: str = MODEL_NAME,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError(f"model must be a hub name or a local path, got {model!r}")
        self.model = model
        self.source = resolve(model)  # UnknownModelError (a ValueError) names the choices
        self._tokenizer = tokenizer
        self._templates = check_templates(templates)
        self.order = check_order(order)
        self._prepend_bos = prepend_bos
        self._vocab: Vocabulary | None = None

    @property
    def is_gpt2(self) -> bool:
        return self.model == MODEL_NAME

    @property
    def prepend_bos(self) -> bool:
        """As given; by default False on GPT-2 and True where the tokenizer has a BOS token."""
        if self._prepend_bos is not None:
            return self._prepend_bos
        if self.is_gpt2:
            return False
        return getattr(self.tokenizer, "bos_token_id", None) is not None

    # ----- environment -------------------------------------------------------------------
    def unavailable_reason(self) -> str | None:
        if self._tokenizer is None and self.source.kind not in ("hub", "local"):
            return f"{self.model!r} has no tokenizer: the ioi task builds its prompts from text"
        return self.source.unavailable_reason()

    @property
    def tokenizer(self) -> Tokenizer:
        """The injected tokenizer, else the model's, loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = self.source.tokenizer()
            if self._tokenizer is None:
                raise ValueError(self.unavailable_reason())
        return self._tokenizer

    def load_model(self, device: str = "cpu"):
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot load {self.model!r} for the ioi task: {reason}")
        if not self.is_gpt2:
            return self.source.load(device)
        try:  # TransformerLens 3: its GPT-2 (weights processed: LN folded, centred)
            from transformer_lens import HookedTransformer
        except ImportError:  # TransformerLens 4 has no HookedTransformer: transformers' GPT-2
            return self.source.load(device)
        model = HookedTransformer.from_pretrained(MODEL_NAME, device=device)
        return model.eval()

    @property
    def has_ground_truth(self) -> bool:  # Wang et al.'s circuit is GPT-2 small's
        return self.is_gpt2

    @property
    def no_truth_note(self) -> str | None:
        """Why this task has no ground truth (None: it has one): on another model than GPT-2
        small the task measures faithfulness only."""
        if self.is_gpt2:
            return None
        return (
            f"the IOI circuit (Wang et al. 2022) is known for GPT-2 small only, not "
            f"{self.model!r}: recovery is not scored, faithfulness is"
        )

    # ----- data ----------------------------------------------------------------------------
    @property
    def vocabulary(self) -> Vocabulary:
        if self._vocab is None:
            self._vocab = build_vocabulary(
                self.tokenizer, self._templates, self.prepend_bos, self.order
            )
        return self._vocab

    @property
    def role_positions(self) -> dict[str, int] | None:
        """The position of each role (keys as in ``data.extra``) shared by every prompt this task
        makes, or None when prompts differ (``order`` None). Tokenizes on first use."""
        return None if self.order is None else self.vocabulary.roles

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
    def check_graph(self, config: GraphConfig) -> None:
        """Per-position graphs only with ``order`` set, and only for the prompts' length."""
        if config.positions is None:
            return
        if self.order is None:
            raise ValueError(
                "task 'ioi' has a per-position ground truth only for batches whose prompts share "
                "token positions: use IOITask(order='ABBA') or IOITask(order='BABA'), or "
                "positions=None"
            )
        vocab = self.vocabulary
        if config.positions != vocab.length:
            raise ValueError(
                f"task 'ioi' (order {self.order!r}, templates {vocab.templates}) has a "
                f"per-position ground truth for positions={vocab.length} (its prompt length) "
                f"or positions=None, not positions={config.positions}"
            )

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        if not self.has_ground_truth:
            raise ValueError(self.no_truth_note)
        roles = None if graph.config.positions is None else self.role_positions
        return ioi_ground_truth(graph, roles)
