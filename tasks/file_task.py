"""Prompt-pair tasks from a data file: one :class:`FileTask` class serves every file.

    python -m eval.run --tasks examples/induction_pairs.csv --model induction --methods eap
    spec = FileTaskSpec("pairs.csv", "gpt2", metric="logprob"); key = register_file_task(spec)

A :class:`FileTaskSpec` names the file (any format of :mod:`tasks.readers`), the model (any name
:func:`models.resolve` takes: a shipped model such as ``induction`` or ``tracr/reverse``, a
Hugging Face hub name, a local folder or ``random/<family>``), the metric
(:mod:`tasks.pair_metrics`) and, optionally, a ground-truth file (edge names, one per line, or an
MIB circuit file). :func:`register_file_task` checks everything that can be checked before a run
(the file's rows, tokenisation, token lengths, answers of one token, the ground truth's edge
names against the model's graph) and registers a factory under a key (``file-<stem>``) with
``TASKS.add``; a bad file raises :class:`FileTaskError` naming file, line and problem.

Data: prompts are tokenised with the model's tokenizer (a BOS token is prepended when the
tokenizer has one, as TransformerLens does) or taken as token ids; clean and corrupted of one
pair must have the same token length (resample ablation patches position by position). Prompts
of different lengths are right-padded and carry an ``attention_mask``; the metric reads the
logits at the last real token of each clean prompt.

Splits: a third of the rows (seeded, :func:`tasks.splits.pool_split`) is held out; methods see
the other two thirds (``--n`` of them, default all up to DEFAULT_N) and circuits are scored on
the held-out rows (the first HELDOUT_MAX of them), as for every task (MIB's protocol). Memory
grows with the examples held, not with the file: a large file runs on DEFAULT_N train rows
unless ``--n`` asks for more.

Without a ground truth the task is faithfulness-only: ``has_ground_truth`` is False and the
runner leaves the recovery columns empty with a note saying why.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor

from models import names as model_names
from models import resolve
from patching.graph import EdgeGraph, GraphConfig
from tasks.base import TASKS, Task, TaskData
from tasks.pair_metrics import DEFAULT_METRIC, get_pair_metric
from tasks.readers import PairFile, PairFileError, non_id_token, read_pairs, read_truth
from tasks.splits import HELDOUT_SHARE, pool_split

# Memory grows with the examples a run holds (about MB_PER_EXAMPLE each on the shipped
# induction model, README "Running at scale"): without --n a run takes at most DEFAULT_N train
# examples, and faithfulness is scored on at most HELDOUT_MAX held-out rows, whatever the size.
DEFAULT_N = 1000
HELDOUT_MAX = 1000
MB_PER_EXAMPLE = 0.35
NO_TRUTH_NOTE = "no ground truth given (--truth): faithfulness only, edge recovery not scored"


class FileTaskError(ValueError):
    """A prompt-pair task that can't be built (bad file, unknown model or metric)."""


@dataclass(frozen=True)
class FileTaskSpec:
    """Everything that defines a file task; travels to worker processes as a dict."""

    path: str
    model: str
    metric: str = DEFAULT_METRIC
    truth: str | None = None
    key: str | None = None

    @property
    def task_key(self) -> str:
        return self.key or "file-" + re.sub(r"[^A-Za-z0-9_.-]", "_", Path(self.path).stem)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FileTaskSpec:
        return cls(**d)


# ----- the model and the fingerprint ------------------------------------------------------------
# Which model a name means, whether it loads here, the model, its tokenizer (None for shipped and
# random models, which take token ids) and its weights' digest: models.resolve.
def fingerprint(spec: dict) -> dict:
    """What determines a file task's records besides the run's flags: the content hash of its
    data and ground-truth files, the metric, the model and its weights' digest (checked by
    ``--resume``: a replaced data file or a changed ``--metric``/``--truth`` is refused)."""
    from core.checksum import cached_sha256

    s = FileTaskSpec.from_dict(spec)
    return {
        "data": s.path,
        "data_sha256": cached_sha256(s.path),
        "truth": s.truth,
        "truth_sha256": None if s.truth is None else cached_sha256(s.truth),
        "metric": s.metric,
        "model": s.model,
        "model_sha256": resolve(s.model).digest(),
    }


# ----- tokenisation -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Encoded:
    """Token ids of every row: prompts, answer and wrong-answer sets."""

    clean: list[list[int]]
    corrupted: list[list[int]]
    answers: list[list[int]]
    wrongs: list[list[int]]
    pad_id: int


def _encode_prompt(tok, text) -> list[int]:
    if isinstance(text, tuple):
        return list(text)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if tok.bos_token_id is not None:
        ids = [tok.bos_token_id, *ids]
    return ids


def _encode_answer(pf: PairFile, tok, line, name: str, value) -> int:
    if isinstance(value, int):
        return value
    if tok is None:
        raise PairFileError(
            pf.path, line, f"{name} {value!r} is text but the model has no tokenizer"
        )
    ids = tok(value, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise PairFileError(
            pf.path, line, f"{name} {value!r} is {len(ids)} tokens {ids}; it must be one token"
        )
    return ids[0]


def _not_ids(pf: PairFile) -> PairFileError:
    """The first cell of a file that is not token ids, for a model without a tokenizer."""
    for r in pf.rows:
        for name, value in (("clean", r.clean), ("corrupted", r.corrupted)):
            bad = non_id_token(value) if isinstance(value, str) else None
            if bad is not None:
                return PairFileError(
                    pf.path,
                    r.line,
                    f"{name} holds {bad!r}, not a token id (a non-negative integer); the model "
                    "has no tokenizer, so prompts must be space-separated token ids",
                )
    return PairFileError(pf.path, None, "the prompts are text but the model has no tokenizer")


def encode(
    pf: PairFile, tok, d_vocab: int | None, needs_wrong: bool, n_ctx: int | None = None
) -> Encoded:
    """Token ids of ``pf``'s rows; PairFileError naming the line on any problem (``n_ctx``:
    the model's context, which no prompt may exceed)."""
    if not pf.ids and tok is None:
        raise _not_ids(pf)
    if needs_wrong and not pf.has_wrong:
        line = next(r.line for r in pf.rows if not r.wrongs)
        raise PairFileError(
            pf.path,
            line,
            "no wrong answer, which the logit-diff metric needs; add one or "
            "choose --metric logprob or kl",
        )
    out = Encoded([], [], [], [], 0)
    for r in pf.rows:
        c, x = _encode_prompt(tok, r.clean), _encode_prompt(tok, r.corrupted)
        if len(c) != len(x):
            raise PairFileError(
                pf.path,
                r.line,
                f"clean is {len(c)} tokens and corrupted {len(x)}; a pair must "
                "have the same token length (patching aligns them position by position)",
            )
        if n_ctx is not None and len(c) > n_ctx:
            raise PairFileError(
                pf.path,
                r.line,
                f"the prompt is {len(c)} tokens but the model's context holds {n_ctx}; "
                "shorten it or use a model with a longer context",
            )
        a = [_encode_answer(pf, tok, r.line, "answer", v) for v in r.answers]
        w = [_encode_answer(pf, tok, r.line, "wrong answer", v) for v in r.wrongs]
        if d_vocab is not None:
            bad = [t for t in (*c, *x, *a, *w) if not 0 <= t < d_vocab]
            if bad:
                raise PairFileError(
                    pf.path,
                    r.line,
                    f"token id {bad[0]} is outside the model's vocabulary (0..{d_vocab - 1})",
                )
        out.clean.append(c)
        out.corrupted.append(x)
        out.answers.append(a)
        out.wrongs.append(w)
    if tok is not None:
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        object.__setattr__(out, "pad_id", int(pad or 0))
    return out


def _padded(rows: list[list[int]], P: int, fill: int) -> Tensor:
    t = torch.full((len(rows), P), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        t[i, : len(r)] = torch.tensor(r, dtype=torch.long)
    return t


def build_data(enc: Encoded, rows: list[int]) -> TaskData:
    """TaskData of the rows ``rows`` (indices): right-padded, answer at the last real token."""
    clean = [enc.clean[i] for i in rows]
    lengths = torch.tensor([len(c) for c in clean])
    P, n = int(lengths.max()), len(rows)
    tokens = _padded(clean, P, enc.pad_id)
    corrupted = _padded([enc.corrupted[i] for i in rows], P, enc.pad_id)
    pos = lengths - 1
    answer_mask = torch.zeros(n, P, dtype=torch.bool)
    answer_mask[torch.arange(n), pos] = True
    a_set = _padded([enc.answers[i] for i in rows], max(len(enc.answers[i]) for i in rows), -1)
    w_len = max(len(enc.wrongs[i]) for i in rows)
    w_set = _padded([enc.wrongs[i] for i in rows], max(w_len, 1), -1)
    answers = torch.zeros(n, P, dtype=torch.long)
    answers[torch.arange(n), pos] = a_set[:, 0]
    wrong = None
    if w_len:
        wrong = torch.zeros(n, P, dtype=torch.long)
        wrong[torch.arange(n), pos] = w_set[:, 0].clamp(min=0)
    mask = None if bool((lengths == P).all()) else torch.arange(P)[None] < lengths[:, None]
    extra = {"answer_pos": pos, "answer_set": a_set, "wrong_set": w_set}
    return TaskData(
        tokens, corrupted, answer_mask, answers, wrong, extra=extra, attention_mask=mask
    )


# ----- the task ---------------------------------------------------------------------------------
class FileTask(Task):
    """A task read from a prompt-pair file (see the module docstring); one instance per spec."""

    ablations = ("resample", "mean", "zero")
    default_ablation = "resample"
    per_position = False

    def __init__(self, spec: FileTaskSpec) -> None:
        self.spec = spec
        self.key = spec.task_key
        self.source = resolve(spec.model)  # UnknownModelError (a ValueError) names the choices
        self.metric_spec = get_pair_metric(spec.metric)
        self.pairs = read_pairs(spec.path)
        self.max_examples = len(self.pairs.rows)
        self.default_n = min(len(self.pairs.rows), DEFAULT_N)
        self.has_ground_truth = spec.truth is not None
        self.no_truth_note = None if self.has_ground_truth else NO_TRUTH_NOTE
        self.description = (
            f"prompt pairs from {spec.path} ({self.pairs.format}, {len(self.pairs.rows)} rows) "
            f"on {spec.model}"
        )
        self.metric_description = self.metric_spec.description + "; higher = more clean"
        self._model = None
        self._encoded: Encoded | None = None
        self._truth: set[str] | None = None

    def unavailable_reason(self) -> str | None:
        return self.source.unavailable_reason()

    def load_model(self, device: str = "cpu"):
        reason = self.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"cannot load model {self.spec.model!r}: {reason}")
        return self.source.load(device)

    def _patchable(self):
        if self._model is None:
            from patching.patched import PatchableModel

            self._model = PatchableModel(self.load_model("cpu"))
        return self._model

    @property
    def encoded(self) -> Encoded:
        if self._encoded is None:
            tok = self.source.tokenizer()
            d_vocab = self._patchable().cfg.d_vocab if tok is None else len(tok)
            self._encoded = encode(
                self.pairs, tok, d_vocab, self.metric_spec.needs_wrong, self.context_length()
            )
        return self._encoded

    def context_length(self) -> int | None:
        """The most tokens a prompt may have (None: the model sets no limit we can read)."""
        if self.source.kind not in ("hub", "local"):  # shipped or random: read the model
            w_pos = self._patchable().cfg.W_pos
            return None if w_pos is None else int(w_pos.shape[0])
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(self.source.name)
        for name in ("n_positions", "max_position_embeddings", "n_ctx"):
            if isinstance(getattr(cfg, name, None), int):
                return getattr(cfg, name)
        return None

    def validate(self) -> None:
        """Every check a run would hit later (tokens, lengths, ground-truth names): raises
        FileTaskError (PairFileError) now. A model that can't be loaded here is not an error
        (the task is skipped with the reason)."""
        if self.unavailable_reason() is not None:
            return
        self.encoded  # noqa: B018  (tokenises and checks every row)
        if len(self.pairs.rows) < HELDOUT_SHARE:
            raise PairFileError(
                self.spec.path,
                None,
                f"{len(self.pairs.rows)} prompt pair(s): at least {HELDOUT_SHARE} are needed "
                f"(a third is held out to score circuits on examples no method saw)",
            )
        if self.spec.truth is not None:
            graph = self._patchable().graph
            self._check_truth(
                EdgeGraph(
                    graph.n_layers, graph.n_heads, graph.has_mlp, GraphConfig(), graph.parallel
                )
            )

    # ----- splits: a third of the file's rows is held out (tasks.splits.pool_split) -----------
    def _split(self) -> tuple[Tensor, Tensor]:
        return pool_split(len(self.pairs.rows))

    def max_train(self) -> int:
        return len(self._split()[0])

    def n_heldout(self) -> int:
        return min(len(self._split()[1]), HELDOUT_MAX)

    def size_note(self) -> str | None:
        """What a run without ``--n`` leaves out of a large file (None: nothing)."""
        train, held = map(len, self._split())
        if train <= self.n_default() and held <= HELDOUT_MAX:
            return None
        return (
            f"task {self.key}: {self.n_default()} of its {train} train examples by default and "
            f"{self.n_heldout()} of its {held} held-out rows (memory grows about "
            f"{MB_PER_EXAMPLE} MB per example; --n N to use more)"
        )

    def _make_data(self, n: int, seed: int) -> TaskData:
        """``n`` rows of the train split in a seeded order."""
        train = self._split()[0]
        gen = torch.Generator().manual_seed(seed)
        return self._data(train[torch.randperm(len(train), generator=gen)[:n]].tolist())

    def make_heldout(self) -> TaskData:
        """The held-out rows, in file order (the same for every run): the first HELDOUT_MAX."""
        return self._data(self._split()[1][:HELDOUT_MAX].tolist())

    def _data(self, rows: list[int]) -> TaskData:
        data = build_data(self.encoded, rows)
        if self.metric_spec.needs_clean:
            data.extra["clean_logp"] = self._clean_logp(data)
        return data

    @torch.no_grad()
    def _clean_logp(self, data: TaskData) -> Tensor:
        pm = self._patchable()
        ab = pm.ablate("zero", data.clean, attention_mask=data.attention_mask)
        ones = torch.ones(pm.graph.n_edges)
        logits = pm(
            data.clean,
            ones,
            ab,
            out_positions=data.extra["answer_pos"],
            attention_mask=data.attention_mask,
        )
        return torch.log_softmax(logits.float(), -1)

    def check_graph(self, config: GraphConfig) -> None:
        """Per-position graphs run faithfulness-only (a position-free ground truth does not say
        which positions carry an edge, and positions differ between padded prompts)."""
        if config.positions is not None and self.has_ground_truth:
            raise ValueError(
                f"task {self.key!r}: its ground truth ({self.spec.truth}) has no positions; "
                "per-position methods run on this file without --truth (faithfulness only)"
            )

    def metric(self, logits: Float[Tensor, "*k n pos vocab"], data: TaskData) -> Tensor:
        return self.metric_spec.fn(logits, data)

    def _check_truth(self, graph: EdgeGraph) -> set[str]:
        from patching.names import project_edges

        if self._truth is None:
            self._truth = read_truth(self.spec.truth)
        try:
            edges = project_edges(self._truth, graph.config)
        except ValueError as exc:
            raise PairFileError(self.spec.truth, None, str(exc)) from None
        unknown = sorted(edges - set(graph.edge_names))
        if unknown:
            raise PairFileError(
                self.spec.truth,
                None,
                f"{len(unknown)} edge(s) not in {self.spec.model}'s graph "
                f"({graph.n_layers} layers x {graph.n_heads} heads), e.g. {unknown[:3]}",
            )
        return edges

    def _ground_truth(self, graph: EdgeGraph, ablation: str) -> set[str]:
        if self.spec.truth is None:
            raise ValueError(f"task {self.key!r} has no ground truth ({NO_TRUTH_NOTE})")
        return self._check_truth(graph)


def register_file_task(spec: FileTaskSpec, validate: bool = True) -> str:
    """Register a factory of ``FileTask(spec)`` in ``TASKS`` (replacing one of the same key);
    returns the key. Raises FileTaskError with the file, line and problem when ``spec`` is bad."""
    try:
        task = FileTask(spec)
        if validate:
            task.validate()
    except (PairFileError, ValueError) as exc:
        raise FileTaskError(str(exc)) from None
    if task.key in TASKS:
        TASKS.unregister(task.key)
    TASKS.add(task.key, lambda: task)  # the validated instance (its tokens are cached)
    return task.key


def ensure_file_task(spec: dict) -> str:
    """Register the file task of ``spec`` (a :meth:`FileTaskSpec.to_dict`) unless its key is
    registered already (a worker process: the runner validated it before any run)."""
    s = FileTaskSpec.from_dict(spec)
    if s.task_key in TASKS:
        return s.task_key
    return register_file_task(s, validate=False)


def is_task_file(name: str) -> bool:
    """Whether a ``--tasks`` entry names a file (a path, or a name with a reader's suffix)."""
    from tasks.readers import READERS

    return "/" in name or Path(name).suffix.lower() in READERS or Path(name).is_file()


def _absolute(path: str) -> str:
    return str(Path(path).resolve())


def expand_task_files(
    tasks: str, model: str | None, metric: str | None, truth: str | None
) -> tuple[str, dict[str, dict]]:
    """``--tasks`` with every file entry registered and replaced by its key, and each file
    task's spec by key. FileTaskError on a bad file, or on --model/--metric/--truth without a
    file (they configure file tasks only) or a file without --model."""
    entries = [t.strip() for t in tasks.split(",") if t.strip()]
    files = [t for t in entries if is_task_file(t)]
    if not files:
        # --model alone may configure tasks that take a model (tasks.configured)
        given = [f for f, v in (("--metric", metric), ("--truth", truth)) if v]
        if given:
            raise FileTaskError(
                f"{', '.join(given)} configure(s) tasks read from a file; name a prompt-pair "
                "file in --tasks (e.g. --tasks examples/induction_pairs.csv)"
            )
        return tasks, {}
    if model is None:
        raise FileTaskError(
            f"--tasks {files[0]} is a prompt-pair file: say which model runs it with --model "
            f"(one the suite ships: {', '.join(model_names('shipped'))}; a Hugging Face name; "
            "or a local folder)"
        )
    specs, keys = {}, []
    file_keys = distinct_keys([_absolute(f) for f in files])
    for entry in entries:
        if entry not in files:
            keys.append(entry)
            continue
        spec = FileTaskSpec(  # absolute paths: workers may run elsewhere
            _absolute(entry),
            _absolute(model) if Path(model).exists() else model,
            metric or DEFAULT_METRIC,
            None if truth is None else _absolute(truth),
            key=file_keys[_absolute(entry)],
        )
        if spec.task_key in specs:  # the same file named twice: one task
            continue
        key = register_file_task(spec)
        specs[key] = spec.to_dict()
        keys.append(key)
    return ",".join(keys), specs


def _stem_key(parts: tuple[str, ...]) -> str:
    return "file-" + re.sub(r"[^A-Za-z0-9_.-]", "_", "-".join(parts))


def _candidates(path: str) -> list[str]:
    """Keys of ``path`` from the least to the most specific: its stem, then with one parent
    folder more each time, last the whole path with the file's suffix."""
    p = Path(path)
    folders = p.parent.parts[1:]  # without the root "/"
    keys = [_stem_key((*folders[len(folders) - d :], p.stem)) for d in range(len(folders) + 1)]
    return [*keys, _stem_key((*folders, p.name))]


def distinct_keys(paths: list[str]) -> dict[str, str]:
    """A task key per file path: ``file-<stem>``, or, when two different files share a stem
    (``a/pairs.csv``, ``b/pairs.csv``), ``file-<folder>-<stem>`` with as many parent folders as
    tell them apart (records of two files never share a task key)."""
    unique = list(dict.fromkeys(paths))
    cands = {p: _candidates(p) for p in unique}
    out: dict[str, str] = {}
    for path in unique:
        others = [cands[q] for q in unique if q != path]
        for level, key in enumerate(cands[path]):
            if all(level >= len(o) or o[level] != key for o in others):
                break
        out[path] = key
    return out
