"""The one-pass interpolated-patch forward over a model read into a neutral ``ModelSpec``.

Contract (README, "The graph and the one-pass patched forward"): destination ``d`` reads

    x_d = sum_{s in in(d)} m_sd * y_s + (1 - m_sd) * y~_s  (+ constants)
        = base_d + sum_s m_sd * (y_s - y~_s),    base_d = sum_s y~_s + constants

where ``y_s`` is source ``s``'s output in the current pass and ``y~_s`` its ablated output.
The differences ``y_s - y~_s`` of the current pass live in one preallocated stack
``[n_masks, n_sources, batch, pos, d_model]``; every destination block of a layer is computed
with one batched matmul over the stack's upstream rows (:class:`_Mix`), so a step costs about a
forward plus a backward pass of the model, whatever the number of edges. The stack is written
in place and read through a custom autograd function, so no per-layer copy of it is kept for
the backward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor

from patching.adapters import to_spec
from patching.adapters.spec import Attention, ModelSpec, Norm
from patching.graph import EdgeGraph, GraphConfig


@dataclass
class AblatedSources:
    """Ablated source outputs for one clean batch, and the block inputs they imply.

    values: ``[n_sources, batch | 1, pos, d_model]`` ablated output of every source.
    block_inputs: per destination block key (``attn{l}``, ``mlp{l}``, ``logits``): the input
        that the block reads when all its edges are ablated, ``[batch | 1, pos, d_model]``.
    """

    kind: str
    values: Float[Tensor, "n_src b pos d_model"]
    block_inputs: dict[str, Float[Tensor, "b pos d_model"]]


class _Emit(torch.autograd.Function):
    """Write a source block's ``y - y~`` into the stack and return a dependency token.

    Every :class:`_Mix` that reads the block takes the token as an input, so autograd runs this
    node's backward only after all of them have accumulated their share of the block's
    gradient into the shared gradient buffer (in place, fused into their matmul); the backward
    then hands that buffer slice to the block's producer. No per-consumer gradient copies, no
    separate accumulation passes.
    """

    @staticmethod
    def forward(ctx, out, vals, stack_slice, grad_slice, rows=None):
        if rows is not None:  # only these rows of the slice (live heads); the others stay 0
            stack_slice.index_copy_(
                1, rows, (out - vals).expand(stack_slice.shape[0], *out.shape[1:])
            )
        elif vals is None:
            stack_slice.copy_(out)
        elif out.shape == stack_slice.shape:
            torch.sub(out, vals, out=stack_slice)
        else:  # a mask-independent block (the embedding) broadcast over the masks
            stack_slice.copy_(out - vals)
        ctx.grad_slice, ctx.rows = grad_slice, rows
        ctx.out_shape = out.shape
        return out.new_zeros(())

    @staticmethod
    def backward(ctx, _token_grad):
        acc, rows = ctx.grad_slice, ctx.rows
        if rows is not None:
            g = acc.index_select(1, rows).sum_to_size(ctx.out_shape)
            acc.zero_()
            return g, None, None, None, None
        g = acc.sum_to_size(ctx.out_shape) if acc.shape != ctx.out_shape else acc.clone()
        acc.zero_()  # leave the buffer clean, so a second backward through the graph is exact
        return g, None, None, None, None


class _Mix(torch.autograd.Function):
    """``x[k, r] = base + sum_j masks[k, r, j(, p)] * stack[k, j]`` over the upstream rows.

    Reads the stack in place (no copy is saved for backward: rows are never rewritten once
    emitted) and accumulates the stack's gradient into the shared buffer in place.
    """

    @staticmethod
    def forward(ctx, masks, base, stack, grad, *tokens):
        ctx.save_for_backward(masks)
        ctx.stack, ctx.grad, ctx.n_tokens = stack, grad, len(tokens)
        ctx.base_shape = base.shape
        return _mix_product(masks, stack) + base

    @staticmethod
    def backward(ctx, grad_out):
        (masks,) = ctx.saved_tensors
        stack, grad = ctx.stack, ctx.grad
        K, J = stack.shape[0], stack.shape[1]
        grad_masks = None
        if masks.dim() == 3:  # masks [K, R, J]; stack [K, J, B, P, D]
            g = grad_out.reshape(K, grad_out.shape[1], -1)
            if ctx.needs_input_grad[0]:
                grad_masks = torch.bmm(g, stack.reshape(K, J, -1).mT)
            grad.view(K, J, -1).baddbmm_(masks.mT, g)
        else:  # per position: masks [K, R, J, P]
            if ctx.needs_input_grad[0]:
                grad_masks = torch.einsum("krbpd,kjbpd->krjp", grad_out, stack)
            grad.add_(torch.einsum("krjp,krbpd->kjbpd", masks, grad_out))
        tokens = [grad_out.new_zeros(()) for _ in range(ctx.n_tokens)]
        # the base (ablated inputs + b_O constants) is live only in training mode
        grad_base = grad_out.sum_to_size(ctx.base_shape) if ctx.needs_input_grad[1] else None
        return (grad_masks, grad_base, None, None, *tokens)


def _mix_product(masks: Tensor, stack: Tensor) -> Tensor:
    """masks [K, R, J] or [K, R, J, P] with stack [K, J, B, P, D] -> [K, R, B, P, D]."""
    K, J = stack.shape[0], stack.shape[1]
    if masks.dim() == 3:
        out = torch.bmm(masks, stack.reshape(K, J, -1))
        return out.view(K, masks.shape[1], *stack.shape[2:])
    return torch.einsum("krjp,kjbpd->krbpd", masks, stack)


@dataclass(frozen=True)
class _Heads:
    """A layer's projection weights, stacked once so each layer needs one or two bmms, with the
    pre-attention norm's weight (and LayerNorm bias) folded in.

    The q/k/v inputs are ``3H`` separate rows per layer, so the normalised rows are never
    materialised: ``norm(x) @ W + b = inv * (xc @ (w * W)) + (beta @ W + b)`` with ``xc`` the
    centred (LayerNorm) or raw (RMSNorm) input and ``inv`` its per-row inverse scale; the
    elementwise work then runs on the small ``[rows, tokens, d_head]`` projections.

    Without grouping (``group == 1``) q, k, v are one fused weight (``[3H, D, dh]`` when q/k/v
    are separate destinations, else ``[H, D, 3dh]``). With grouped-query attention the k/v rows
    of the query heads of one group are projected together by the group's shared weight
    (``w_kv``), so nothing is expanded to one copy per query head.
    """

    spec: Attention
    norm: Norm
    group: int
    w_in: Tensor | None  # fused (group == 1)
    b_in: Tensor | None
    w_q: Tensor | None  # grouped (group > 1)
    b_q: Tensor | None
    w_kv: Tensor | None
    b_kv: Tensor | None
    const_bo: Tensor  # b_O as a constant of downstream inputs (0 when a post-norm owns it)


def _fold(norm: Norm, w: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """Fold the norm's weight and bias into projection weights ``w [n, D, k]``, ``b [n, 1, k]``
    (in float32 at least, rounded once to the model's dtype)."""
    if norm.kind == "none":
        return w, b
    wide = torch.promote_types(w.dtype, torch.float32)
    ww = w.to(wide)
    if norm.bias is not None:
        extra = torch.einsum("d,ndk->nk", norm.bias.to(wide), ww)[:, None, :]
        b = (b.to(wide) + extra).to(b.dtype)
    if norm.weight is not None:
        w = (ww * norm.weight.to(wide)[None, :, None]).to(w.dtype)
    return w, b


def _stack_heads(a: Attention, norm: Norm, split: bool) -> _Heads:
    H, Hkv = a.W_Q.shape[0], a.W_K.shape[0]
    g = H // Hkv
    bo = torch.zeros_like(a.b_O) if a.post_norm is not None else a.b_O
    if g == 1:
        w, b = _fold(norm, *_fused(a, None, split))
        return _Heads(a, norm, 1, w, b, None, None, None, None, bo)
    w_q, b_q = _fold(norm, a.W_Q, a.b_Q[:, None, :])
    if split:  # k rows then v rows, each grouped: [2 Hkv, D, dh]
        w_kv = torch.cat([a.W_K, a.W_V], 0)
        b_kv = torch.cat([a.b_K, a.b_V], 0)[:, None, :]
    else:  # [Hkv, D, 2 dh]
        w_kv = torch.cat([a.W_K, a.W_V], -1)
        b_kv = torch.cat([a.b_K, a.b_V], -1)[:, None, :]
    return _Heads(a, norm, g, None, None, w_q, b_q, *_fold(norm, w_kv, b_kv), bo)


def _fused(a: Attention, heads: Tensor | None, split: bool) -> tuple[Tensor, Tensor]:
    """q/k/v weights of ``heads`` (all when None), k/v taken from each head's group."""
    H, Hkv = a.W_Q.shape[0], a.W_K.shape[0]
    if heads is None:
        heads = torch.arange(H, device=a.W_Q.device)
    kv = heads // (H // Hkv)
    ws = [a.W_Q[heads], a.W_K[kv], a.W_V[kv]]
    bs = [a.b_Q[heads], a.b_K[kv], a.b_V[kv]]
    if split:  # [3n, D, dh]
        return torch.cat(ws, 0), torch.cat(bs, 0)[:, None, :]
    return torch.cat(ws, -1), torch.cat(bs, -1)[:, None, :]  # [n, D, 3dh]


def _norm_parts(norm: Norm, x: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(xc, inv)`` with ``norm(x) = xc * inv * w + beta``: for RMSNorm the raw input and its
    per-row inverse scale ``[..., 1]``; for LayerNorm the normalised input (``inv`` None, the
    fused kernel is cheaper than centring by hand); without a norm ``x`` itself."""
    if norm.kind == "none":
        return x, None
    if norm.kind == "layer":  # the fused kernel (and its fused backward), without the affine
        return F.layer_norm(x, x.shape[-1:], None, None, norm.eps), None
    return x, _InvRms.apply(x, norm.eps)


class _InvRms(torch.autograd.Function):
    """``1 / sqrt(mean(x^2) + eps)`` over the last dim, ``[..., 1]`` (float32 for 16-bit ``x``),
    with a one-pass backward (``-inv^3 / D * x``): half the time of autograd's ``vector_norm``
    backward on the ``[3H, tokens, d_model]`` q/k/v inputs of a layer."""

    @staticmethod
    def forward(ctx, x, eps):
        wide = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else None
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=wide)
        inv = torch.rsqrt(norm.square_() / x.shape[-1] + eps)
        ctx.save_for_backward(x, inv)
        return inv

    @staticmethod
    def backward(ctx, grad):
        x, inv = ctx.saved_tensors
        coef = grad * inv.pow(3) * (-1.0 / x.shape[-1])
        return x * coef.to(x.dtype), None


def _scaled(t: Tensor, inv: Tensor | None, b: Tensor) -> Tensor:
    if inv is None:
        return t + b
    if inv.dtype != t.dtype:  # 16-bit model: the scale stays float32 until the small result
        return (t * inv + b).to(t.dtype)
    return torch.addcmul(b, t, inv)


class PatchableModel:
    """A model with an edge graph and an exact one-pass patched forward.

    ``model``: a :class:`patching.hooked.HookedModel`, a TransformerLens 3 ``HookedTransformer`` or
    TransformerLens 4 ``TransformerBridge``, a ``transformers`` causal-LM (GPT-2,
    GPT-NeoX/Pythia, Llama, Qwen2, Gemma-2), or a model name loaded with
    :func:`models.resolve` (shipped, hub name, local folder, ``random/<family>``). It is read
    once into a neutral :class:`ModelSpec` (``self.cfg``).
    The model's parameters are frozen (``requires_grad=False``): discovery learns edge
    coefficients, never weights, and a backward pass must not spend time on weight gradients.

    ``trainable=True`` is the training mode of the same forward (the SIIT trainer,
    :mod:`tasks.siit.train`): the parameters stay live, and every forward re-reads them (norm
    weights folded again), so gradients reach the weights through the clean sources, the norm
    folding and the ``b_O`` constants. Ablated values are constants of the step (built under
    ``no_grad`` from the current weights). Only :class:`patching.hooked.HookedModel` (and
    TransformerLens 3's ``HookedTransformer``) can be trained this way.
    """

    def __init__(
        self, model, graph_config: GraphConfig | None = None, trainable: bool = False
    ) -> None:
        if isinstance(model, str):
            from models import resolve

            model = resolve(model).load()
        self.trainable = trainable
        if trainable:
            from patching.adapters.tl import is_hooked_transformer

            if not is_hooked_transformer(model):
                raise NotImplementedError(
                    f"training mode reads a HookedModel's parameters live; a "
                    f"{type(model).__name__} can't be trained through the patched forward"
                )
        self.spec = to_spec(model)
        if hasattr(model, "requires_grad_") and not trainable:
            model.requires_grad_(False)
        self.model = model
        self.graph = EdgeGraph(
            n_layers=self.spec.n_layers,
            n_heads=self.spec.n_heads,
            has_mlp=self.spec.has_mlp,
            config=graph_config or GraphConfig(),
            parallel=self.spec.parallel,
        )
        self._prepare_weights()

    def with_graph(self, graph_config: GraphConfig) -> PatchableModel:
        """The same model under another graph (q/k/v split, positions, attention-only)."""
        return PatchableModel(self.model, graph_config, trainable=self.trainable)

    def _refresh(self) -> None:
        """Training mode: read the live parameters again (the optimiser changed them) and fold
        the norms into the projections inside the autograd graph."""
        from patching.adapters.tl import from_hooked_transformer

        self.spec = from_hooked_transformer(self.model, live=torch.is_grad_enabled())
        self._prepare_weights()

    @property
    def cfg(self) -> ModelSpec:
        """The model's neutral description (``n_layers``, ``n_heads``, ``d_model``, ...)."""
        return self.spec

    @property
    def device(self) -> torch.device:
        return self.spec.device

    @property
    def dtype(self) -> torch.dtype:
        return self.spec.dtype

    def _prepare_weights(self) -> None:
        split = self.graph.config.split_qkv
        self._heads = [_stack_heads(la.attn, la.ln1, split) for la in self.spec.layers]
        self._consts = self._block_constants()
        self._masks: dict[tuple, Tensor] = {}

    def _block_constants(self) -> dict[str, Tensor]:
        """Constant input of each destination block: the ``b_O`` of every upstream layer."""
        bo = torch.stack([h.const_bo for h in self._heads]).cumsum(0)  # sum over layers <= l
        zero = torch.zeros_like(bo[0])
        consts = {}
        for layer in range(self.graph.n_layers):
            consts[f"attn{layer}"] = bo[layer - 1] if layer else zero
            own = layer - 1 if self.spec.parallel else layer
            consts[f"mlp{layer}"] = bo[own] if own >= 0 else zero
        consts["logits"] = bo[-1]
        return consts

    # ----- ablations ---------------------------------------------------------------------------
    @torch.no_grad()
    def source_outputs(
        self,
        tokens: Int[Tensor, "batch pos"],
        masks: Float[Tensor, "*n_masks n_edges"] | None = None,
        ablation: AblatedSources | None = None,
        attention_mask: Bool[Tensor, "batch pos"] | None = None,
    ) -> Float[Tensor, "*n_masks n_src b p d"]:
        """Every source's output in the unpatched model (all masks 1), or, given ``masks`` and
        ``ablation``, in the patched model: ``[n_src, b, p, d]`` per mask row."""
        if masks is None:
            return self._run(tokens, None, None, collect=True, attention_mask=attention_mask)
        if ablation is None:
            raise ValueError("source_outputs with masks needs the ablation they patch against")
        self._check_tokens(tokens, ablation)
        diff = self._run(
            tokens,
            self.full_masks(masks),
            ablation,
            collect=True,
            keep_masks=True,
            attention_mask=attention_mask,
        )
        out = diff + _per_mask(ablation.values)  # the stack holds y - y~
        return out[0] if masks.dim() == 1 else out

    def ablated_sources(self, values: Tensor, kind: str = "custom") -> AblatedSources:
        """Patch against given source outputs: ``values`` ``[n_src, b | 1, pos, d]``, or
        ``[n_masks, n_src, b | 1, pos, d]`` for one set per mask row (same rows as the masks a
        forward gets). An edge at mask m then carries ``m * y_s + (1 - m) * values_s``."""
        if values.dim() not in (4, 5) or values.shape[-4] != self.graph.n_sources:
            raise ValueError(
                f"values must be [n_sources={self.graph.n_sources}, b, pos, d_model] or "
                f"[n_masks, n_sources, b, pos, d_model], got {list(values.shape)}"
            )
        values = values.to(device=self.device, dtype=self.dtype)
        if self.trainable:  # the forward builds them from the live b_O constants
            return AblatedSources(kind, values, {})
        return AblatedSources(kind, values, self._ablated_inputs(values))

    @torch.no_grad()
    def ablate(
        self,
        kind: str,
        clean: Int[Tensor, "batch pos"],
        corrupted: Int[Tensor, "batch pos"] | None = None,
        reference: Int[Tensor, "ref pos"] | None = None,
        attention_mask: Bool[Tensor, "batch pos"] | None = None,
        reference_mask: Bool[Tensor, "ref pos"] | None = None,
    ) -> AblatedSources:
        """Ablated source outputs: ``resample`` (from ``corrupted``, paired with ``clean``),
        ``mean`` (per-position mean over ``reference``) or ``zero``.

        attention_mask: True at real tokens of a padded batch (clean and corrupted share it);
        reference_mask: the same for ``reference`` (default: ``attention_mask`` when the mean is
        over ``corrupted``). The mean at a position averages only the examples real there."""
        from patching.ablation import ABLATION_KINDS

        if kind not in ABLATION_KINDS:
            raise ValueError(f"unknown ablation {kind!r}; choose one of {sorted(ABLATION_KINDS)}")
        values = ABLATION_KINDS[kind](
            self, clean, corrupted, reference, attention_mask, reference_mask
        )
        return AblatedSources(kind, values, self._ablated_inputs(values))

    def _ablated_inputs(self, values: Tensor) -> dict[str, Tensor]:
        if values.dim() == 5:  # one set per mask row: [K, 1, b, pos, d] per block
            cum = torch.cumsum(values, dim=1)
            return {
                key: (cum[:, block.n_up - 1] + self._consts[key]).unsqueeze(1)
                for key, block in self.graph.blocks.items()
            }
        cum = torch.cumsum(values, dim=0)  # cum[i] = sum of the first i+1 sources
        return {
            key: cum[block.n_up - 1] + self._consts[key] for key, block in self.graph.blocks.items()
        }

    # ----- masks ---------------------------------------------------------------------------------
    def full_masks(self, masks: Tensor) -> Tensor:
        """Validate ``[n_edges]`` or ``[n_masks, n_edges]`` and return ``[K, n_full * n_pos]``."""
        g = self.graph
        if not isinstance(masks, Tensor):
            raise TypeError(f"masks must be a torch.Tensor, got {type(masks).__name__}")
        if masks.dim() not in (1, 2) or masks.shape[-1] != g.n_edges:
            raise ValueError(
                f"masks must have shape [{g.n_edges}] or [n_masks, {g.n_edges}] for this graph "
                f"({g.config}), got {list(masks.shape)}"
            )
        if torch.isnan(masks).any():
            raise ValueError("masks contain NaN; every edge coefficient must be a number in [0, 1]")
        m = masks.reshape(-1, g.n_edges).to(device=self.device, dtype=self.dtype)
        if g.kept_pair_index is None:
            return m
        P = g.n_pos
        full = torch.ones(m.shape[0], g.n_full_pairs, P, dtype=m.dtype, device=m.device)
        idx = g.kept_pair_index.to(m.device)
        full = full.index_copy(1, idx, m.view(m.shape[0], -1, P))
        return full.view(m.shape[0], -1)

    def _block_masks(self, full: Tensor, key: str) -> Tensor:
        b = self.graph.blocks[key]
        P = self.graph.n_pos
        m = full[:, b.start * P : b.stop * P]
        if self.graph.config.positions is None:
            return m.view(full.shape[0], b.rows, b.n_up)
        return m.view(full.shape[0], b.rows, b.n_up, P)

    # ----- the forward ----------------------------------------------------------------------------
    def forward(
        self,
        tokens: Int[Tensor, "batch pos"],
        masks: Float[Tensor, "*n_masks n_edges"],
        ablation: AblatedSources,
        out_positions: Int[Tensor, " batch"] | None = None,
        logit_positions: Int[Tensor, " n"] | None = None,
        live: Bool[Tensor, " n_sources"] | None = None,
        attention_mask: Bool[Tensor, "batch pos"] | None = None,
        frozen: Bool[Tensor, " n_sources"] | None = None,
    ) -> Float[Tensor, "*n_masks batch *pos d_vocab"]:
        """Logits of the patched model in one pass, differentiable in ``masks``.

        masks: ``[n_edges]`` or ``[n_masks, n_edges]``; each mask is applied to the whole batch.
        out_positions: unembed only this position per example (returns ``[..., batch, d_vocab]``).
        logit_positions: unembed only these positions (the others' logits are 0): the output
            keeps its ``[..., batch, pos, d_vocab]`` shape, at a fraction of the unembedding cost.
        live: compute only these sources (heads, MLPs); the others output their ablated value
            (as if every edge out of them were 0) at no compute. Exact when the masks of the
            edges out of non-live sources are 0; the fine stage of ``ipd-hier`` uses it.
        attention_mask: True at real tokens, False at padding (left or right), ``[batch, pos]``;
            real tokens attend only to real tokens and take position ids counted over real
            tokens, so each example's outputs at its real positions equal those of the example
            run alone, unpadded (causal or bidirectional attention). Outputs at padding are
            finite and meaningless. The ablation must be built with the same mask.
        frozen: no gradient flows back through these sources' outputs (whole source blocks:
            the embedding, a layer's heads, an MLP); EAP-IG-activations holds the interpolated
            block fixed this way, as its hook does.
        """
        single = masks.dim() == 1
        full = self.full_masks(masks)
        self._check_tokens(tokens, ablation)
        if live is not None and (live.dtype != torch.bool or live.shape != (self.graph.n_sources,)):
            raise ValueError(
                f"live must be a bool tensor [{self.graph.n_sources}] over the sources"
            )
        mask = _check_mask(attention_mask, tokens)
        if ablation.values.dim() == 5 and ablation.values.shape[0] != full.shape[0]:
            raise ValueError(
                f"the ablation has {ablation.values.shape[0]} value sets, one per mask row, but "
                f"there are {full.shape[0]} mask rows"
            )
        if frozen is not None and (
            frozen.dtype != torch.bool or frozen.shape != (self.graph.n_sources,)
        ):
            raise ValueError(
                f"frozen must be a bool tensor [{self.graph.n_sources}] over the sources"
            )
        logits = self._run(
            tokens,
            full,
            ablation,
            out_positions,
            logit_positions,
            live=live,
            attention_mask=mask,
            frozen=frozen,
        )
        return logits[0] if single else logits

    __call__ = forward

    def _check_tokens(self, tokens: Tensor, ablation: AblatedSources) -> None:
        if tokens.dim() != 2:
            raise ValueError(f"tokens must be [batch, pos], got shape {list(tokens.shape)}")
        vb, vp = ablation.values.shape[-3], ablation.values.shape[-2]
        if vp != tokens.shape[1] or vb not in (1, tokens.shape[0]):
            raise ValueError(
                f"the ablation was built for batch {vb} x pos {vp} but tokens are "
                f"{tuple(tokens.shape)}; build it from this batch with model.ablate(...)"
            )
        P = self.graph.config.positions
        if P is not None and tokens.shape[1] != P:
            raise ValueError(
                f"this per-position graph has {P} positions; tokens have {tokens.shape[1]}"
            )

    def _run(
        self,
        tokens,
        full,
        ablation,
        out_positions=None,
        logit_positions=None,
        collect=False,
        live=None,
        attention_mask=None,
        frozen=None,
        keep_masks=False,
    ):
        if self.trainable:
            self._refresh()
            if ablation is not None:  # its b_O constants must be the live ones
                ablation = AblatedSources(
                    ablation.kind, ablation.values, self._ablated_inputs(ablation.values)
                )
        spec, g = self.spec, self.graph
        B, P = tokens.shape
        K = 1 if full is None else full.shape[0]
        D, H = spec.d_model, spec.n_heads
        pad = _check_mask(attention_mask, tokens)
        pos_ids = None if pad is None else (pad.long().cumsum(-1) - 1).clamp(min=0)
        embed = spec.embed(tokens, pos_ids)  # [B, P, D]
        shape = (K, g.n_sources, B, P, D)
        alloc = torch.empty if live is None else torch.zeros  # non-live rows stay y - y~ = 0
        stack = alloc(shape, dtype=embed.dtype, device=embed.device)
        needs_grad = (
            full is not None
            and (full.requires_grad or self.trainable)
            and torch.is_grad_enabled()
        )
        grad = torch.zeros(shape, dtype=embed.dtype, device=embed.device) if needs_grad else stack
        vals = None if ablation is None else ablation.values
        kb_ids = None if pad is None else pos_ids.repeat(K, 1)  # [K*B, P], K outer as in the stack
        rot = (
            None
            if spec.rotary is None
            else spec.rotary.cos_sin(P, embed.dtype, embed.device, kb_ids)
        )
        keys = None if pad is None else pad.repeat(K, 1)  # [K*B, P]
        tokens_ = []

        def emit(out: Tensor, start: int, rows: Tensor | None = None, n: int | None = None) -> None:
            # out: [K | 1, n, B, P, D] source outputs; the stack holds y - y~ (y when collecting)
            n = out.shape[1] if n is None else n
            sl = slice(start, start + n)
            if frozen is not None and frozen[sl].any():
                out = out.detach()
            v = None if vals is None else _per_mask(vals)[:, sl]
            if rows is not None:
                v = v.index_select(1, rows)
            tokens_.append(_Emit.apply(out, v, stack[:, sl], grad[:, sl], rows))

        def read(key: str, rows: Tensor | None = None) -> Tensor:
            b = g.blocks[key]
            if full is None:  # unpatched: sum of all upstream outputs + constants
                x = stack[:, : b.n_up].sum(1, keepdim=True).expand(K, b.rows, B, P, D)
                return x + self._consts[key]
            masks = self._block_masks(full, key)
            if rows is not None:
                masks = masks.index_select(1, rows)
            up = slice(0, b.n_up)
            return _Mix.apply(
                masks, ablation.block_inputs[key], stack[:, up], grad[:, up], *tokens_
            )

        emit(embed[None, None], 0)
        for layer, block in enumerate(spec.layers):
            start = 1 + layer * g.srcs_per_layer
            heads = None if live is None else live[start : start + H].nonzero().flatten()
            if heads is not None and len(heads) and block.attn.post_norm is not None:
                heads = None  # a post-norm's scale needs every head of the layer
            if heads is None or len(heads) == H:
                x = read(f"attn{layer}")  # [K, R, B, P, D]
                emit(self._attention(layer, x, K, B, P, rot, keys=keys), start)
            elif len(heads):  # only the live heads: fewer mixing rows, projections, attention
                x = read(f"attn{layer}", rows=self._attn_rows(heads))
                emit(
                    self._attention(layer, x, K, B, P, rot, heads, keys=keys),
                    start,
                    rows=heads,
                    n=H,
                )
            if g.has_mlp and (live is None or live[start + H]):
                x = read(f"mlp{layer}")[:, 0].reshape(K * B, P, D).contiguous()
                out = block.mlp(block.ln2(x)).view(K, 1, B, P, D)
                emit(out, start + H)
        if collect:
            return stack if keep_masks else stack[0]
        x = read("logits")[:, 0]  # [K, B, P, D]
        if out_positions is not None:
            x = x[:, torch.arange(B, device=x.device), out_positions]  # [K, B, D]
        elif logit_positions is not None:
            part = spec.unembed(x[:, :, logit_positions])  # [K, B, n, V]
            out = part.new_zeros(K, B, P, part.shape[-1])
            return out.index_copy(2, logit_positions, part)
        return spec.unembed(x)

    def _attn_rows(self, heads: Tensor) -> Tensor:
        """Destination rows of ``heads`` in an attention block (q, k, v rows when split)."""
        if not self.graph.config.split_qkv:
            return heads
        H = self.spec.n_heads
        return torch.cat([heads, heads + H, heads + 2 * H])

    def _project(
        self, layer: int, xc: Tensor, inv: Tensor | None, heads: Tensor | None
    ) -> tuple[Tensor, ...]:
        """q, k, v ``[n, N, dh]`` of ``heads`` (all when None) from the parts of the normalised
        inputs (``xc [R, N, D]``, ``inv [R, N, 1]``, see :func:`_norm_parts`; R = 3n with q/k/v
        split, else n)."""
        hw = self._heads[layer]
        split = self.graph.config.split_qkv
        dh = self.spec.d_head
        if heads is None and hw.group == 1:
            w_in, b_in = hw.w_in, hw.b_in
        elif heads is not None:
            w_in, b_in = _fold(hw.norm, *_fused(hw.spec, heads, split))
        else:  # every head, grouped-query attention: k/v rows projected per group
            H, N, D = self.spec.n_heads, xc.shape[1], xc.shape[2]
            n_kv = hw.spec.W_K.shape[0] * (2 if split else 1)
            # split (not slicing): its backward is one concatenation, not a zero-filled copy each
            x_q, x_kv = xc.split([H, xc.shape[0] - H]) if split else (xc, xc)
            i_q, i_kv = (
                (None, None)
                if inv is None
                else (inv.split([H, inv.shape[0] - H]) if split else (inv, inv))
            )
            q = _scaled(torch.bmm(x_q, hw.w_q), i_q, hw.b_q)
            kv = torch.bmm(x_kv.reshape(n_kv, -1, D), hw.w_kv)
            kv = _scaled(kv, None if i_kv is None else i_kv.reshape(n_kv, -1, 1), hw.b_kv)
            if split:
                return (q, *kv.view(2 * H, N, dh).split(H, 0))
            return (q, *kv.view(H, N, 2 * dh).split(dh, -1))
        proj = _scaled(torch.bmm(xc, w_in), inv, b_in)
        n = w_in.shape[0] // 3 if split else w_in.shape[0]
        return proj.split(n, 0) if split else proj.split(dh, -1)

    def _pattern_mask(self, layer: int, P: int, device) -> Tensor | None:
        """Bool ``[P, P]``, True where a query may not attend (future keys, outside the window)."""
        a = self.spec.layers[layer].attn
        key = (P, a.window, self.spec.causal, str(device))
        if key not in self._masks:
            i = torch.arange(P, device=device)
            off = i[:, None] - i[None, :]  # query - key
            bad = (
                (off < 0)
                if self.spec.causal
                else torch.zeros(P, P, dtype=torch.bool, device=device)
            )
            if a.window is not None:
                bad = bad | (off >= a.window)
            self._masks[key] = bad
        return self._masks[key]

    def _attention(
        self,
        layer: int,
        x: Tensor,
        K: int,
        B: int,
        P: int,
        rot,
        heads: Tensor | None = None,
        keys: Tensor | None = None,
    ) -> Tensor:
        """Per-head attention outputs ``[K, n, B, P, D]`` from per-destination inputs, for every
        head or only ``heads``: ``z_h W_O[h]`` (no b_O), or the head's share of the post-norm.
        ``keys [K*B, P]``: True at real tokens (padded batches)."""
        spec = self.spec
        a = spec.layers[layer].attn
        dh, D = spec.d_head, spec.d_model
        R, N = x.shape[1], K * B * P
        xc, inv = _norm_parts(spec.layers[layer].ln1, x.transpose(0, 1).reshape(R, N, D))
        q, k, v = (t.reshape(-1, K * B, P, dh) for t in self._project(layer, xc, inv, heads))
        if rot is not None:
            q, k = spec.rotary.apply(q, *rot), spec.rotary.apply(k, *rot)
        scores = (q @ k.transpose(-1, -2)) * a.scale
        if a.softcap is not None:
            scores = torch.tanh(scores / a.softcap) * a.softcap
        bad = self._pattern_mask(layer, P, x.device)
        if keys is not None:  # real queries never read padding; a padding query keeps its
            # own pattern (finite, never read by a real token), so no row is fully masked
            bad = bad | (~keys[:, None, :] & keys[:, :, None])  # [K*B, P, P]
        scores = scores.masked_fill(bad, -torch.inf)
        if scores.dtype in (torch.float16, torch.bfloat16):  # as transformers: softmax in fp32
            pattern = torch.softmax(scores, dim=-1, dtype=torch.float32).to(scores.dtype)
        else:
            pattern = torch.softmax(scores, dim=-1)
        pattern = torch.where(torch.isnan(pattern), torch.zeros_like(pattern), pattern)
        z = pattern @ v  # [n, KB, P, dh]
        w_out = a.W_O if heads is None else a.W_O[heads]
        n = w_out.shape[0]
        out = torch.bmm(z.reshape(n, N, dh), w_out)  # [n, N, D]
        if a.post_norm is not None:  # every head is computed here (see _run)
            out = _post_norm_shares(out, a.b_O, a.post_norm)
        return out.view(n, K, B, P, D).transpose(0, 1)


def _check_mask(mask: Tensor | None, tokens: Tensor) -> Tensor | None:
    """``attention_mask`` as a bool tensor of the tokens' shape (None: no padding)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.shape != tokens.shape:
        shape = getattr(mask, "shape", type(mask).__name__)
        raise ValueError(
            f"attention_mask must be a tensor of the tokens' shape {list(tokens.shape)}, "
            f"got {shape}"
        )
    mask = mask.to(device=tokens.device, dtype=torch.bool)
    if not mask.any(-1).all():
        raise ValueError("attention_mask has an example without any real token")
    return mask


def _post_norm_shares(out: Tensor, b_o: Tensor, norm) -> Tensor:
    """Each head's share of ``RMSNorm(sum_h out_h + b_O)``: ``(out_h + b_O / H) * w / rms``."""
    total = out.sum(0) + b_o
    inv = torch.rsqrt(total.pow(2).mean(-1, keepdim=True) + norm.eps)
    w = inv if norm.weight is None else inv * norm.weight
    return (out + b_o / out.shape[0]) * w


def _per_mask(values: Tensor) -> Tensor:
    """Source values with a leading mask-row axis: ``[1 | K, n_src, b, pos, d]``."""
    return values if values.dim() == 5 else values.unsqueeze(0)
