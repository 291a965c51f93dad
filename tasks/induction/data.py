"""Sequences and model shape of the induction task, shared by training, the task and the tests.

Every sequence is ``[BOS, prefix, s_1 .. s_L, s_1 .. s_L]``: a random segment of ``L`` tokens
followed by its repetition, right-aligned in a fixed context of ``n_ctx = 2 L_max + 1`` after a
random prefix of ``2 (L_max - L)`` tokens, with ``L`` drawn per sequence from
``[min_seg_len, max_seg_len]``. Why each choice (all seen in trial runs):

- ``L`` varies: with a fixed ``L`` the repeat sits at a fixed offset and one layer-0 head that
  attends to ``q - L + 1`` solves the task without induction.
- Training tokens are i.i.d. (:func:`training_batch`): when every token was distinct, the
  models learned a duplicate-token head in layer 0 and Q-composition instead of the
  previous-token / induction-head (K-composition) circuit; with i.i.d. tokens, which often
  recur, they learned K-composition.
- Task batches (:func:`repeated`) draw the segment without replacement and the prefix from the
  remaining tokens, so each induction target is unique. They lie in the support of the
  training distribution.
- Corrupted sequences (:func:`non_repeating`) are ``[BOS, prefix', a, b]`` in the clean
  layout, fresh throughout, and no token of ``b`` occurs earlier: nothing in the second segment
  is predictable by induction. The first half is fresh too (not only the second), so under
  resample ablation the previous-token heads and the induction heads' values also see other
  tokens; with a shared first half those edges would carry identical activations.

Data streams are separated by name (training, task batches, ground-truth scoring), so held-out
batches never share a random stream with training whatever the seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from jaxtyping import Bool, Int
from torch import Tensor

BOS = 0
STREAMS = {"train": 0, "task": 1, "groundtruth": 2}


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the induction model and of its sequences."""

    min_seg_len: int = 4
    max_seg_len: int = 12
    d_vocab: int = 64  # token 0 is BOS; 1 .. d_vocab-1 are content tokens
    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    d_head: int = 16

    def __post_init__(self) -> None:
        if not 2 <= self.min_seg_len <= self.max_seg_len:
            raise ValueError(
                f"need 2 <= min_seg_len <= max_seg_len, got {self.min_seg_len}, {self.max_seg_len}"
            )
        if self.d_vocab - 1 < self.n_ctx - 1:
            raise ValueError(
                f"d_vocab={self.d_vocab} leaves too few content tokens for {self.n_ctx - 1} "
                "distinct tokens per sequence"
            )

    @property
    def n_ctx(self) -> int:
        return 2 * self.max_seg_len + 1

    def to_dict(self) -> dict:
        return asdict(self)

    def hooked_config(self):
        """The model config: attention-only, no normalisation (see train.py)."""
        from patching.hooked import HookedConfig

        return HookedConfig(
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_model=self.d_model,
            d_head=self.d_head,
            d_vocab=self.d_vocab,
            n_ctx=self.n_ctx,
            attn_only=True,
            normalization_type=None,
            positional_embedding_type="standard",
            default_prepend_bos=False,
            device="cpu",  # built and trained on the CPU; load() moves it
        )


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU generator for ``stream`` (``train``, ``task``, ``groundtruth``) and ``seed``."""
    if stream not in STREAMS:
        raise ValueError(f"unknown data stream {stream!r}; choose one of {sorted(STREAMS)}")
    return torch.Generator().manual_seed(seed * len(STREAMS) + STREAMS[stream])


def _sequences(seg_len: Tensor, cfg: ModelConfig, gen: torch.Generator, repeat: bool) -> Tensor:
    """``[BOS, prefix, a, a]`` (``repeat``) or ``[BOS, prefix, a, b]``, right-aligned.

    ``a`` (and ``b``) are distinct tokens from a random permutation; the prefix is drawn with
    replacement from the tokens not in ``a`` / ``b``, so it may repeat itself but never shares a
    token with the segments: the current token's earlier occurrence in the repeat is unique.
    """
    n, V = seg_len.shape[0], cfg.d_vocab - 1
    perm = torch.rand(n, V, generator=gen).argsort(-1) + 1
    used = seg_len if repeat else 2 * seg_len  # tokens taken by the segments
    u = torch.rand(n, cfg.n_ctx - 1, generator=gen)
    pick = used[:, None] + (u * (V - used[:, None])).long()  # prefix: perm[used:], uniformly
    j = torch.arange(cfg.n_ctx - 1)[None, :]
    P = (cfg.n_ctx - 1) - 2 * seg_len[:, None]  # prefix length
    in_second = j >= P + seg_len[:, None]
    seg_src = j - P - torch.where(in_second & repeat, seg_len[:, None], 0)
    src = torch.where(j < P, pick, seg_src)
    body = perm.gather(1, src)
    return torch.cat([torch.full((n, 1), BOS, dtype=body.dtype), body], dim=1)


def seg_lengths(n: int, cfg: ModelConfig, gen: torch.Generator) -> Int[Tensor, " n"]:
    return torch.randint(cfg.min_seg_len, cfg.max_seg_len + 1, (n,), generator=gen)


def training_batch(
    n: int, cfg: ModelConfig, gen: torch.Generator
) -> tuple[Int[Tensor, "n n_ctx"], Int[Tensor, " n"]]:
    """Training sequences ``[BOS, prefix, s, s]`` with every token drawn i.i.d. (with
    replacement), and their segment lengths. Tokens recur by chance, so an earlier occurrence
    of the current token is often not unique (see the module docstring)."""
    seg_len = seg_lengths(n, cfg, gen)
    body = torch.randint(1, cfg.d_vocab, (n, cfg.n_ctx - 1), generator=gen)
    j = torch.arange(cfg.n_ctx - 1)[None, :]
    src = torch.where(j >= cfg.n_ctx - 1 - seg_len[:, None], j - seg_len[:, None], j)
    body = body.gather(1, src)
    return torch.cat([torch.full((n, 1), BOS, dtype=body.dtype), body], dim=1), seg_len


def repeated(
    n: int, cfg: ModelConfig, gen: torch.Generator
) -> tuple[Int[Tensor, "n n_ctx"], Int[Tensor, " n"]]:
    """Clean sequences ``[BOS, prefix, s, s]`` and their segment lengths ``L``."""
    seg_len = seg_lengths(n, cfg, gen)
    return _sequences(seg_len, cfg, gen, repeat=True), seg_len


def non_repeating(
    seg_len: Int[Tensor, " n"], cfg: ModelConfig, gen: torch.Generator
) -> Int[Tensor, "n n_ctx"]:
    """Corrupted sequences ``[BOS, prefix, a, b]`` in the layout of ``seg_len``: no token of
    ``b`` occurs earlier, so nothing in the second segment is predictable by induction."""
    return _sequences(seg_len, cfg, gen, repeat=False)


def _span(n_ctx: int, lo: Tensor, hi: Tensor) -> Bool[Tensor, "n n_ctx"]:
    q = torch.arange(n_ctx)
    return (q >= lo[:, None]) & (q <= hi[:, None])


def answer_mask(seg_len: Int[Tensor, " n"], cfg: ModelConfig) -> Bool[Tensor, "n n_ctx"]:
    """Positions whose next token induction predicts: the repeat, except its last token.

    The repeat occupies ``n_ctx - L .. n_ctx - 1``; its first token is not predictable (so the
    position before it is not an answer position) and its last token has no next token.
    """
    n = cfg.n_ctx
    return _span(n, n - seg_len, torch.full_like(seg_len, n - 2))


def first_half_mask(seg_len: Int[Tensor, " n"], cfg: ModelConfig) -> Bool[Tensor, "n n_ctx"]:
    """The matching positions of the first copy (``n_ctx - 2L .. n_ctx - L - 2``): there the
    next token is a fresh random one."""
    n = cfg.n_ctx
    return _span(n, n - 2 * seg_len, n - seg_len - 2)


def next_tokens(tokens: Int[Tensor, "n n_ctx"]) -> Int[Tensor, "n n_ctx"]:
    """The next token at each position (0 at the last position)."""
    out = torch.zeros_like(tokens)
    out[:, :-1] = tokens[:, 1:]
    return out


def half_losses(
    logits: Tensor, tokens: Int[Tensor, "n n_ctx"], seg_len: Tensor, cfg: ModelConfig
) -> tuple[float, float]:
    """Mean next-token loss (nats) at the first copy's and at the repeat's answer positions."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    nll = -logp.gather(-1, next_tokens(tokens)[..., None])[..., 0]  # [n, n_ctx]
    first = nll[first_half_mask(seg_len, cfg)].mean().item()
    second = nll[answer_mask(seg_len, cfg)].mean().item()
    return first, second
