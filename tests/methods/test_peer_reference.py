"""The peer methods against their published algorithms, each recomputed here by an independent,
slow implementation on a tiny random model (2 layers, 2 heads, MLPs: 46 edges; float64,
resample ablation).

The references never touch ``patching.patched``: the patched model is
:func:`tests.patching.reference.reference_patched_logits` (every destination input rebuilt with
TransformerLens-style hooks as an explicit sum over its incoming edges,
``m * y_s + (1 - m) * y~_s``), and the gradients of the attribution methods are taken one edge
at a time, as the derivative of the metric along ``eps`` when ``eps * (y_s(clean) - y~_s)`` is
added to that edge's destination input only. KL and the metric are written out here as well.

- ``acdc`` (Conmy et al. 2023, Algorithm 1; auto-circuit ``prune_algos/ACDC.py``): the greedy
  rule "remove the edge if KL rises by less than tau", destinations visited in reverse
  topological order; the kept set after *every* step, for every threshold of the sweep, and the
  sweep's scores (largest tau at which an edge is kept).
- ``eap`` (Syed et al. 2023; auto-circuit ``edge_attribution_patching.py``): the gradient at the
  clean input dotted with ``y_s(clean) - y~_s``, summed over positions, averaged over examples;
  also the derivative of the explicitly interpolated model with respect to each edge's mask.
- ``eap-ig`` (EAP-IG-inputs, Hanna et al. 2024; hannamw/EAP-IG ``get_scores_eap_ig``): the same
  per-edge derivative averaged over input embeddings ``e~ + (k/m)(e - e~)``, k = 0..m-1.
- ``sp`` and ``edge-pruning`` (Cao et al. 2021, Bhaskar et al. 2024; hard-concrete gates of
  Louizos et al. 2018 as in auto-circuit ``sample_hard_concrete`` and Edge-Pruning
  ``src/modeling/l0.py``): a gate sample and the expected-L0 penalty by hand, and the masked
  forward at sampled, sigmoid and deterministic gate values equal to the per-edge interpolation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from methods import get_method
from methods.acdc import acdc_circuit
from methods.descent import HardConcreteGates, SigmoidGates, faithfulness
from patching.names import parse_edge, parse_node, read_depth
from tests.methods.problems import make_problem
from tests.models import tiny_model
from tests.patching.reference import reference_patched_logits, tl_source_outputs


@pytest.fixture(scope="module")
def tiny():
    model = tiny_model("gpt2", torch.float64, n_layers=2, n_heads=2, d_model=16)
    problem = make_problem(model=model)
    assert problem.n_edges == 46
    return problem


# ----- the slow reference ------------------------------------------------------------------------


class Reference:
    """Patched logits, KL and metric of the tiny problem by per-edge hooks (no patched forward)."""

    def __init__(self, problem):
        self.problem = problem
        self.model = problem.model.model
        self.graph = problem.model.graph
        self.clean = problem.data.clean
        self.ablated = tl_source_outputs(self.model, problem.data.corrupted)  # resample
        self.delta = {
            s: v - self.ablated[s] for s, v in tl_source_outputs(self.model, self.clean).items()
        }
        with torch.no_grad():
            self.clean_logits = self.model(self.clean)

    def logits(self, mask: torch.Tensor) -> torch.Tensor:
        return reference_patched_logits(self.model, self.graph, self.clean, mask, self.ablated)

    def kl(self, logits: torch.Tensor) -> float:
        """KL(clean || patched) of the last position's next-token distribution, mean over
        examples (the tiny task reads only the last position)."""
        p = self.clean_logits[:, -1].log_softmax(-1)
        q = logits[:, -1].log_softmax(-1)
        return (p.exp() * (p - q)).sum(-1).mean()

    def metric(self, logits: torch.Tensor) -> torch.Tensor:
        """Mean log-probability of the answer at the last position."""
        answer = self.problem.data.answers[:, -1]
        logp = logits[:, -1].log_softmax(-1)
        return logp[torch.arange(len(answer)), answer].mean()

    # per-edge derivative: add eps * delta_s at the destination of one edge, d metric / d eps
    def _dest_hook(self, dst: str):
        node = parse_node(dst)
        if node.kind == "logits":
            return f"blocks.{self.graph.n_layers - 1}.hook_resid_post", None
        if node.kind == "mlp":
            return f"blocks.{node.layer}.hook_mlp_in", None
        return f"blocks.{node.layer}.hook_{node.role}_input", node.head

    def edge_derivative(self, src: str, dst: str, alpha: float | None = None) -> float:
        """d metric / d eps with ``eps * (y_s(clean) - y~_s)`` added to ``dst``'s input; with
        ``alpha``, on the input embedding interpolated ``e~ + alpha (e - e~)`` (EAP-IG)."""
        name, head = self._dest_hook(dst)
        eps = torch.zeros((), dtype=torch.float64, requires_grad=True)
        d = self.delta[src]

        def add(act, hook):
            act = act.clone()
            if head is None:
                act = act + eps * d
            else:
                act[:, :, head] = act[:, :, head] + eps * d
            return act

        hooks = [(name, add)]
        if alpha is not None:
            e1, p1, e0, p0 = self._embeddings()
            hooks += [
                ("hook_embed", lambda a, hook: e0 + alpha * (e1 - e0)),
                ("hook_pos_embed", lambda a, hook: p0 + alpha * (p1 - p0)),
            ]
        m = self.model
        m.set_use_split_qkv_input(True)
        m.set_use_hook_mlp_in(True)
        try:
            logits = m.run_with_hooks(self.clean, fwd_hooks=hooks)
        finally:
            m.set_use_split_qkv_input(False)
            m.set_use_hook_mlp_in(False)
        (grad,) = torch.autograd.grad(self.metric(logits), eps)
        return grad.item()

    def _embeddings(self):
        if not hasattr(self, "_emb"):
            out = []
            for tokens in (self.clean, self.problem.data.corrupted):
                with torch.no_grad():
                    _, cache = self.model.run_with_cache(
                        tokens, names_filter=["hook_embed", "hook_pos_embed"]
                    )
                out += [cache["hook_embed"], cache["hook_pos_embed"]]
            self._emb = out
        return self._emb


@pytest.fixture(scope="module")
def ref(tiny):
    return Reference(tiny)


def test_the_reference_is_the_patched_model_at_the_corners(tiny, ref):
    """Sanity of the reference itself: all edges clean is the clean model, all ablated the
    corrupted run's output (resample ablation), and its KL of the ablated model is ours."""
    n = tiny.n_edges
    ones, zeros = torch.ones(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(ref.logits(ones), ref.clean_logits)
        torch.testing.assert_close(ref.logits(zeros), ref.model(tiny.data.corrupted))
    assert ref.kl(ref.logits(zeros)).item() == pytest.approx(tiny.divergence_ablated, rel=1e-9)


# ----- ACDC --------------------------------------------------------------------------------------


def reference_acdc_order(graph) -> list[int]:
    """ACDC's visiting order from the edge names alone: destinations in reverse topological
    order (logits, then the last layer's MLP, then its heads; among a head's inputs v, k, q and
    among a layer's heads the last first: a tie order of ours, any order is topological), and
    each destination's sources latest first."""
    role = {"q": 0, "k": 1, "v": 2, None: 0}
    src_rank = {s: i for i, s in enumerate(graph.sources)}

    def key(i):
        e = parse_edge(graph.edge_names[i])
        dst = e.dst
        return (
            read_depth(dst.name),
            role[dst.role] if dst.head is not None else 0,
            dst.head if dst.head is not None else 0,
            src_rank[e.src.name],
        )

    return sorted(range(graph.n_edges), key=key, reverse=True)


def reference_acdc(ref: Reference, tau: float) -> list[frozenset[int]]:
    """ACDC (Conmy et al. 2023, Algorithm 1): start from the full graph; for each edge in the
    visiting order, remove it if KL(clean || circuit without it) - KL(clean || circuit) < tau.
    The kept set after each step."""
    n = ref.problem.n_edges
    mask = torch.ones(n, dtype=torch.float64)
    with torch.no_grad():
        current = ref.kl(ref.logits(mask)).item()
        states = []
        for e in reference_acdc_order(ref.graph):
            mask[e] = 0.0
            new = ref.kl(ref.logits(mask)).item()
            if new - current < tau:
                current = new
            else:
                mask[e] = 1.0
            states.append(frozenset(mask.nonzero().flatten().tolist()))
    return states


def ours_acdc_states(problem, tau: float) -> tuple[list[frozenset[int]], list[int]]:
    """Our ``acdc_circuit`` run, its kept set after each step read off the masks it evaluates
    (the candidate of step i+1 holds step i's decision), and the order it visited edges in."""
    calls: list[torch.Tensor] = []
    evaluate = problem.divergence_of

    def recording(masks):
        calls.append(masks.detach().clone())
        return evaluate(masks)

    problem.divergence_of = recording
    try:
        final = acdc_circuit(problem, tau)
    finally:
        del problem.divergence_of
    # call i zeroes its candidate on top of the edges removed so far; call i + 1 shows whether
    # the candidate of step i stayed removed
    zeros = [frozenset((c == 0).nonzero().flatten().tolist()) for c in calls]
    removed: frozenset[int] = frozenset()
    order, states = [], []
    for i, z in enumerate(zeros):
        (candidate,) = z - removed
        order.append(candidate)
        later = (
            zeros[i + 1]
            if i + 1 < len(zeros)
            else frozenset((final == 0).nonzero().flatten().tolist())
        )
        if candidate in later:
            removed = removed | {candidate}
        states.append(frozenset(range(len(final))) - removed)
    return states, order


def test_acdc_visits_destinations_in_reverse_topological_order(tiny):
    order = reference_acdc_order(tiny.model.graph)
    assert order == list(range(tiny.n_edges - 1, -1, -1))  # ours: the reversed edge index
    names = tiny.model.graph.edge_names
    depths = [read_depth(parse_edge(names[e]).dst.name) for e in order]
    assert depths == sorted(depths, reverse=True)


def test_acdc_keeps_the_same_edges_at_every_step_of_every_threshold(tiny, ref):
    method = get_method("acdc")
    taus = method.thresholds(tiny)
    mixed = 0
    finals = {}
    for tau in taus:
        expected = reference_acdc(ref, float(tau))
        ours, order = ours_acdc_states(tiny, float(tau))
        assert order == reference_acdc_order(tiny.model.graph)
        assert ours == expected, f"tau={tau:.3g}"
        final = expected[-1]
        finals[float(tau)] = final
        mixed += 0 < len(final) < tiny.n_edges
    assert mixed >= 3  # the thresholds keep some edges and drop others: the test can fail
    # the sweep's score: the largest tau at which the edge is kept (0 if never)
    scores = method(tiny).double()
    expected_scores = torch.zeros(tiny.n_edges, dtype=torch.float64)
    for tau, kept in sorted(finals.items()):
        expected_scores[list(kept)] = tau
    torch.testing.assert_close(scores, expected_scores.float().double())


# ----- EAP, EAP-IG-inputs ------------------------------------------------------------------------


def test_eap_is_gradient_times_clean_minus_ablated(tiny, ref):
    ours = get_method("eap")(tiny).double()
    per_edge = torch.tensor(
        [ref.edge_derivative(s, d) for s, d in tiny.model.graph.edge_pairs], dtype=torch.float64
    )
    torch.testing.assert_close(ours, per_edge, rtol=1e-5, atol=1e-7)  # ours returns float32
    # the same number is d metric / d m_e of the explicitly interpolated model at m = 1
    mask = torch.ones(tiny.n_edges, dtype=torch.float64, requires_grad=True)
    ref.metric(ref.logits(mask)).backward()
    torch.testing.assert_close(mask.grad, per_edge, rtol=1e-9, atol=1e-12)
    assert per_edge.abs().max() > 1e-2 and (per_edge.abs() > 1e-6).float().mean() > 0.5


@pytest.mark.parametrize("steps", [1, 3])
def test_eap_ig_inputs_is_a_left_riemann_sum_over_interpolated_embeddings(tiny, ref, steps):
    ours = get_method("eap-ig", steps=steps)(tiny).double()
    total = torch.zeros(tiny.n_edges, dtype=torch.float64)
    for k in range(steps):  # alpha = k / steps, k = 0 .. steps-1
        total += torch.tensor(
            [ref.edge_derivative(s, d, alpha=k / steps) for s, d in tiny.model.graph.edge_pairs],
            dtype=torch.float64,
        )
    expected = total / steps
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)
    if steps == 1:  # one step is the gradient at the fully ablated embedding, not eap's
        assert not torch.allclose(expected, get_method("eap")(tiny).double(), atol=1e-4)


# ----- SP and Edge Pruning: hard-concrete gates and the masked forward ---------------------------


def _hand_hard_concrete(log_alpha, u, beta=2 / 3, gamma=-0.1, zeta=1.1):
    """Louizos et al. 2018: s = sigmoid((log u - log(1 - u) + log alpha) / beta), stretched to
    (gamma, zeta) and clamped to [0, 1]."""
    out = []
    for la, uu in zip(log_alpha, u, strict=True):
        s = 1 / (1 + math.exp(-((math.log(uu) - math.log(1 - uu) + la) / beta)))
        out.append(min(1.0, max(0.0, s * (zeta - gamma) + gamma)))
    return out


def test_hard_concrete_sample_penalty_and_deterministic_gate_by_hand():
    log_alpha = [-4.0, -0.5, 0.0, 0.7, 5.0]
    g = HardConcreteGates(5, 0.0)
    with torch.no_grad():
        g.theta.copy_(torch.tensor(log_alpha))
    torch.manual_seed(3)
    u = torch.rand(5).clamp(1e-6, 1 - 1e-6).tolist()
    torch.manual_seed(3)
    z = g.sample().detach()
    assert z.tolist() == pytest.approx(_hand_hard_concrete(log_alpha, u), abs=1e-6)
    # expected L0: P(z != 0) = sigmoid(log alpha - beta log(-gamma / zeta)), e.g. 0.8318 at 0
    p = [1 / (1 + math.exp(-(la - 2 / 3 * math.log(0.1 / 1.1)))) for la in log_alpha]
    assert p[2] == pytest.approx(0.8318, abs=1e-4)
    assert g.penalty().item() == pytest.approx(np.mean(p), abs=1e-6)
    assert g.scores().tolist() == pytest.approx(p, abs=1e-6)
    # the deterministic gate: clamp(sigmoid(log alpha) (zeta - gamma) + gamma, 0, 1)
    det = [min(1.0, max(0.0, 1.2 / (1 + math.exp(-la)) - 0.1)) for la in log_alpha]
    assert g.deterministic().tolist() == pytest.approx(det, abs=1e-6)
    assert det[0] == 0.0 and det[-1] == 1.0


def test_the_masked_forward_at_gate_values_is_the_per_edge_interpolation(tiny, ref):
    """What sp and edge-pruning optimise, ``faithfulness(problem, "kl")(z)``, equals KL(clean ||
    reference patched model at z) / KL(clean || ablated) for hard-concrete samples (exact 0s
    and 1s and values between), sigmoid gates and deterministic gates."""
    n = tiny.n_edges
    loss = faithfulness(tiny, "kl")
    with torch.no_grad():
        scale = ref.kl(ref.logits(torch.zeros(n, dtype=torch.float64))).item()
    gen = torch.Generator().manual_seed(0)
    theta = torch.randn(n, generator=gen, dtype=torch.float64) * 2
    hc = HardConcreteGates(n, 0.0)
    sg = SigmoidGates(n, 0.0)
    with torch.no_grad():
        hc.theta.copy_(theta.float())
        sg.theta.copy_(theta.float())
    torch.manual_seed(0)
    masks = [hc.sample().detach(), hc.sample().detach(), sg.sample().detach(), hc.deterministic()]
    masks += [torch.full((n,), v) for v in (0.0, 0.25, 1.0)]
    assert any(((m > 0) & (m < 1)).any() and (m == 0).any() for m in masks[:2])
    for z in masks:
        z = z.double()
        with torch.no_grad():
            expected = ref.kl(ref.logits(z)).item() / scale
            assert loss(z).item() == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_sp_and_edge_pruning_gradients_flow_through_the_same_interpolation(tiny, ref):
    """The descent's gradient: d loss / d z of the patched forward equals that of the
    reference at a hard-concrete sample (what both methods backpropagate through)."""
    n = tiny.n_edges
    hc = HardConcreteGates(n, 0.5)
    torch.manual_seed(1)
    z = hc.sample().detach().double()
    a = z.clone().requires_grad_(True)
    faithfulness(tiny, "kl")(a).backward()
    b = z.clone().requires_grad_(True)
    scale = ref.kl(ref.logits(torch.zeros(n, dtype=torch.float64))).detach()
    (ref.kl(ref.logits(b)) / scale).backward()
    torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-10)
