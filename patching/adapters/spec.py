"""A neutral description of a decoder-only transformer: the weights and per-family settings that
the one-pass patched forward needs, whatever library the model came from.

Every adapter (TransformerLens, Hugging Face ``transformers``) turns a model into a
:class:`ModelSpec`; the patched forward reads only this. Conventions:

- Linear maps are kept in ``F.linear`` layout (``[out, in]``) for MLPs and the unembedding, and
  per head for attention: ``W_Q [H, d_model, d_head]``, ``W_K``/``W_V [H_kv, d_model, d_head]``
  (grouped-query attention: query head ``h`` uses key/value head ``h // (H / H_kv)``, as
  ``transformers``' ``repeat_kv``), ``W_O [H, d_head, d_model]``. Tensors are views of the
  source's parameters where the layout allows (no copy).
- Norms hold their effective weight: Gemma's ``(1 + w)`` scale is stored as ``1 + w``.
- A post-norm (Gemma-2) is part of its source's output: the MLP's output is
  ``post_norm(mlp(x))``; a head's output is its share of the normalised attention output,
  ``(z_h W_O[h] + b_O / H) * w / rms(sum_h' z_h' W_O[h'] + b_O)`` (the scale comes from the whole
  layer's output in the current pass), so the heads still sum to the layer's output.
- Rotary embeddings act on q and k inside each head after the projection; ``cos``/``sin`` are
  computed as ``transformers`` does (float32 frequencies, cast to the model's dtype).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Norm:
    """``kind`` is ``layer`` (LayerNorm), ``rms`` (RMSNorm) or ``none``; ``weight`` None = 1."""

    kind: str
    weight: Tensor | None = None
    bias: Tensor | None = None
    eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.kind not in _NORMS:
            raise ValueError(f"unknown norm kind {self.kind!r}; choose one of {sorted(_NORMS)}")

    def __call__(self, x: Tensor) -> Tensor:
        return _NORMS[self.kind](self, x)


_NORMS: dict[str, Callable[[Norm, Tensor], Tensor]] = {
    "layer": lambda n, x: F.layer_norm(x, x.shape[-1:], n.weight, n.bias, n.eps),
    "rms": lambda n, x: F.rms_norm(x, x.shape[-1:], n.weight, n.eps),
    "none": lambda n, x: x,
}


@dataclass(frozen=True)
class Rotary:
    """Rotary position embedding on the first ``2 * len(inv_freq)`` dims of each q/k head.

    interleaved: False rotates halves (``transformers``' ``rotate_half``: Llama, NeoX, Qwen2,
        Gemma); True rotates adjacent pairs (GPT-J, TransformerLens ``rotary_adjacent_pairs``).
    scaling: multiplier of ``cos``/``sin`` (``attention_scaling`` of YaRN-style rope types).
    """

    inv_freq: Tensor
    interleaved: bool = False
    scaling: float = 1.0

    @property
    def dim(self) -> int:
        return 2 * self.inv_freq.shape[0]

    def cos_sin(
        self, n_pos: int, dtype: torch.dtype, device, positions: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``cos``, ``sin`` of shape ``[n_pos, dim]`` for positions ``0..n_pos-1``, or
        ``[batch, n_pos, dim]`` at the position ids ``positions [batch, n_pos]`` (padding)."""
        if positions is None:
            pos = torch.arange(n_pos, device=device, dtype=torch.float32)
        else:
            pos = positions.to(device=device, dtype=torch.float32)
        freqs = pos[..., None] * self.inv_freq.to(device=device, dtype=torch.float32)
        emb = freqs.repeat_interleave(2, -1) if self.interleaved else torch.cat([freqs, freqs], -1)
        return (emb.cos() * self.scaling).to(dtype), (emb.sin() * self.scaling).to(dtype)

    def apply(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        """Rotate ``x [..., pos, d_head]`` (only its first ``dim`` features)."""
        r = self.dim
        rot, rest = (x, None) if r == x.shape[-1] else (x[..., :r], x[..., r:])
        if self.interleaved:
            pairs = rot.unflatten(-1, (-1, 2))
            turned = torch.stack([-pairs[..., 1], pairs[..., 0]], -1).flatten(-2)
        else:
            half = r // 2
            turned = torch.cat([-rot[..., half:], rot[..., :half]], -1)
        out = rot * cos + turned * sin
        return out if rest is None else torch.cat([out, rest], -1)


@dataclass(frozen=True)
class Attention:
    """One attention layer. ``scale`` multiplies ``q . k``; ``softcap`` (Gemma-2) maps scores to
    ``softcap * tanh(scores / softcap)`` before masking; ``window`` keeps keys with
    ``query_pos - key_pos < window`` (sliding-window layers)."""

    W_Q: Tensor
    W_K: Tensor
    W_V: Tensor
    W_O: Tensor
    b_Q: Tensor
    b_K: Tensor
    b_V: Tensor
    b_O: Tensor
    scale: float
    softcap: float | None = None
    window: int | None = None
    post_norm: Norm | None = None

    def __post_init__(self) -> None:
        H, Hkv = self.W_Q.shape[0], self.W_K.shape[0]
        if H % Hkv:
            raise ValueError(f"{H} query heads can't be grouped over {Hkv} key/value heads")
        if self.post_norm is not None and self.post_norm.kind != "rms":
            raise NotImplementedError(
                "a LayerNorm after the attention output can't be split into per-head sources; "
                "only RMSNorm post-norms (Gemma-2) are supported"
            )


@dataclass(frozen=True)
class MLP:
    """``w_out act(w_in x + b_in) + b_out``; gated (``w_gate`` set): ``w_out (act(w_gate x) *
    (w_in x))`` (SwiGLU for Llama/Qwen2, GeGLU for Gemma-2). Weights in ``F.linear`` layout."""

    w_in: Tensor
    b_in: Tensor | None
    w_out: Tensor
    b_out: Tensor | None
    act: Callable[[Tensor], Tensor]
    w_gate: Tensor | None = None
    b_gate: Tensor | None = None
    post_norm: Norm | None = None

    def __call__(self, x: Tensor) -> Tensor:
        h = F.linear(x, self.w_in, self.b_in)
        if self.w_gate is None:
            h = self.act(h)
        else:
            h = self.act(F.linear(x, self.w_gate, self.b_gate)) * h
        out = F.linear(h, self.w_out, self.b_out)
        return out if self.post_norm is None else self.post_norm(out)


@dataclass(frozen=True)
class Layer:
    """One block: pre-attention norm, attention, and (unless attention-only) pre-MLP norm + MLP."""

    ln1: Norm
    attn: Attention
    ln2: Norm | None = None
    mlp: MLP | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Everything the patched forward reads from a model (see the module docstring).

    parallel: attention and MLP of a layer read the same residual (GPT-NeoX/Pythia), so the
        heads of layer l are not upstream of ``m{l}``.
    """

    family: str
    layers: tuple[Layer, ...]
    W_E: Tensor  # [d_vocab, d_model]
    W_U: Tensor  # [d_vocab_out, d_model] (F.linear layout)
    ln_final: Norm
    b_U: Tensor | None = None
    W_pos: Tensor | None = None  # learned absolute positions [n_ctx, d_model]
    embed_scale: Tensor | float | None = None
    rotary: Rotary | None = None
    causal: bool = True
    parallel: bool = False
    logit_softcap: float | None = None

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a model needs at least one layer")
        if any((la.mlp is None) != (self.layers[0].mlp is None) for la in self.layers):
            raise NotImplementedError("models mixing attention-only and MLP layers")

    # ----- shape (what the rest of the project reads as ``PatchableModel.cfg``) ------------------
    @property
    def n_layers(self) -> int:
        return len(self.layers)

    @property
    def n_heads(self) -> int:
        return self.layers[0].attn.W_Q.shape[0]

    @property
    def n_kv_heads(self) -> int:
        return self.layers[0].attn.W_K.shape[0]

    @property
    def d_model(self) -> int:
        return self.W_E.shape[1]

    @property
    def d_head(self) -> int:
        return self.layers[0].attn.W_Q.shape[2]

    @property
    def d_mlp(self) -> int:
        mlp = self.layers[0].mlp
        return 0 if mlp is None else mlp.w_in.shape[0]

    @property
    def d_vocab(self) -> int:
        return self.W_E.shape[0]

    @property
    def d_vocab_out(self) -> int:
        return self.W_U.shape[0]

    @property
    def has_mlp(self) -> bool:
        return self.layers[0].mlp is not None

    @property
    def dtype(self) -> torch.dtype:
        return self.W_E.dtype

    @property
    def device(self) -> torch.device:
        return self.W_E.device

    # ----- the parts outside the layers -----------------------------------------------------------
    def embed(self, tokens: Tensor, positions: Tensor | None = None) -> Tensor:
        """Token (+ learned position) embedding ``[batch, pos, d_model]``, scaled if the family
        scales it (Gemma: ``sqrt(d_model)``, cast to the model's dtype as ``transformers`` does).
        ``positions [batch, pos]``: position ids (padded batches); default ``0..pos-1``."""
        x = F.embedding(tokens, self.W_E)
        if self.embed_scale is not None:
            x = x * torch.as_tensor(self.embed_scale, dtype=x.dtype, device=x.device)
        if self.W_pos is not None:
            pos = self.W_pos[: tokens.shape[-1]] if positions is None else self.W_pos[positions]
            x = x + pos
        return x

    def unembed(self, x: Tensor) -> Tensor:
        """Final norm, unembedding (+ bias), and the final-logit soft-cap if the family has one."""
        logits = F.linear(self.ln_final(x), self.W_U, self.b_U)
        cap = self.logit_softcap
        return logits if cap is None else torch.tanh(logits / cap) * cap
