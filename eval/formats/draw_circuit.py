"""Renderers of a :class:`eval.formats.circuits.Circuit`: text, Graphviz source, and a layered
drawing.

- ``text``: one line per destination, grouped by layer, sources most important first, as IPD's
  first write-up printed its IOI circuit: ``a9.h9.q <- a8.h6 a7.h9 embed``;
- ``dot``: Graphviz source (``dot -Tpng``), for those who have Graphviz;
- ``png`` / ``svg``: drawn with matplotlib (no system Graphviz): every node of the model by layer
  (embedding at the bottom, logits at the top, a layer's heads in a row, its MLP above them),
  edges from a source to the q/k/v input of a head (left/middle/right of the box), width by
  |score|, colour by q/k/v, a lighter dashed line for a negative score. Every edge runs upwards
  (a source writes before its destination reads), so there are no arrowheads. With a ground
  truth a second panel draws it, true positives green and missed edges red, and false
  positives are crossed in the first.

Renderers only read the circuit; :data:`FORMATS` maps a format name to its renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import PathPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from eval.formats.circuits import Circuit  # noqa: E402
from patching.names import EMBED, LOGITS, QKV, depth, parse_edge, parse_node, without_role  # noqa: E402

ROLE_COLOURS = {"q": "#1f77b4", "k": "#2ca02c", "v": "#9467bd", None: "#444444"}
NEGATIVE_COLOURS = {"q": "#8fbbd9", "k": "#95cf95", "v": "#c9b3de", None: "#a0a0a0"}
TP_COLOUR, MISSED_COLOUR, FP_COLOUR = "#2ca02c", "#d62728", "#d62728"
LEGEND = dict(loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3, fontsize=7, frameon=False)
MISS = (MISSED_COLOUR, 1.6, ":")  # colour, width, style of a missed ground-truth edge
ROLE_OFFSET = {"q": -0.22, "k": 0.0, "v": 0.22, None: 0.0}


# ----- shared helpers ----------------------------------------------------------------------------
def _dst_key(name: str) -> tuple:
    """Reading order of a destination: by layer (logits last), heads before the MLP, q/k/v."""
    node = parse_node(name)
    layer = math.inf if node.layer is None else node.layer
    role = -1 if node.role is None else QKV.index(node.role)
    return (layer, node.kind != "head", node.head or 0, role)


def _end(name: str, position: int | None) -> str:
    return name if position is None else f"{name}@{position}"


def summary_lines(c: Circuit) -> list[str]:
    """The circuit's header: what was kept, and how it compares with the ground truth."""
    lines = [f"{c.title}: {c.size_note} (ranked by {'score' if c.signed else '|score|'})"]
    if c.truth is not None:
        marks = c.marks()
        tp = sum(m == "TP" for m in marks.values())
        lines.append(
            f"ground truth {len(c.truth)} edges: {tp} in the circuit (TP), "
            f"{len(marks) - tp} not in the truth (FP), {len(c.missed())} missed"
        )
    return lines


# ----- text --------------------------------------------------------------------------------------
def to_text(c: Circuit) -> str:
    """``dst <- src src ...`` per destination, grouped under ``# layer L`` (and ``# logits``).
    In a per-position graph the destination carries the edge's position: ``a1.h0.k@3 <- a0.h2``
    (the sources are read at that position too)."""
    by_dst: dict[tuple[str, int | None], list[str]] = {}
    for name in c.edges:  # most important first
        e = parse_edge(name)
        by_dst.setdefault((e.dst.name, e.position), []).append(e.src.name)
    lines = [f"# {line}" for line in summary_lines(c)]
    group = None
    for dst, position in sorted(by_dst, key=lambda d: (_dst_key(d[0]), d[1] or 0)):
        layer = parse_node(dst).layer
        heading = "# logits" if layer is None else f"# layer {layer}"
        if heading != group:
            lines.append(heading)
            group = heading
        lines.append(f"{_end(dst, position)} <- {' '.join(by_dst[dst, position])}")
    if not by_dst:
        lines.append(
            "# no edge is left at this size: none of the top edges is on a path to the logits"
        )
    return "\n".join(lines) + "\n"


# ----- dot ---------------------------------------------------------------------------------------
def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _width(score: float, top: float) -> float:
    return 0.5 + 2.5 * abs(score) / top if top > 0 else 1.0


def to_dot(c: Circuit) -> str:
    """Graphviz source: nodes ranked by layer bottom-up, an edge per kept edge (label q/k/v,
    colour by role, dashed when its score is negative, penwidth by |score|, TP/FP when the task
    has a ground truth) and a dotted edge per missed ground-truth edge."""
    top = max((abs(s) for s in c.scores), default=0.0)
    marks = c.marks()
    shown = [(n, s, marks.get(n, "")) for n, s in zip(c.edges, c.scores, strict=True)]
    shown += [(n, None, "missed") for n in c.missed()]
    lines = [f"// {line}" for line in summary_lines(c)]
    lines += ["digraph circuit {", "  rankdir=BT;", '  node [shape=box, style="rounded"];']
    nodes: set[str] = set()
    for name, _, _ in shown:
        e = parse_edge(name)
        nodes.update((e.src.name, without_role(e.dst.name)))
    ranks: dict[float, list[str]] = {}
    for n in nodes:
        ranks.setdefault(math.inf if n == LOGITS else depth(n), []).append(n)
    for d in sorted(ranks):
        lines.append("  { rank=same; " + " ".join(f"{_q(n)};" for n in sorted(ranks[d])) + " }")
    for name, score, mark in shown:
        e = parse_edge(name)
        role = e.dst.role
        label = (role or "") + ("" if e.position is None else f"@{e.position}")
        if mark:
            label = f"{label} {mark}".strip()
        if score is None:
            attrs = f'color="{MISSED_COLOUR}", style=dotted, penwidth=1.0'
        else:
            colour = (ROLE_COLOURS if score >= 0 else NEGATIVE_COLOURS)[role]
            style = "solid" if score >= 0 else "dashed"
            attrs = f'color="{colour}", style={style}, penwidth={_width(score, top):.2f}'
            attrs += f", tooltip={_q(f'{name} score {score:.4g}')}"
        src, dst = _q(e.src.name), _q(without_role(e.dst.name))
        lines.append(f"  {src} -> {dst} [label={_q(label)}, {attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ----- matplotlib --------------------------------------------------------------------------------
def layout(graph_edges) -> dict[str, tuple[float, float]]:
    """(x, y) of every node of the graph: one row per writing depth (embed, each layer's heads,
    each layer's MLP), logits on top; a head at x = its index, an MLP right of its layer's
    heads, embed and logits centred."""
    sources = {parse_edge(n).src.name for n in graph_edges}
    rows = sorted({depth(s) for s in sources})
    y_of = {d: float(i) for i, d in enumerate(rows)}
    n_heads = 1 + max(
        (parse_node(s).head for s in sources if parse_node(s).head is not None), default=-1
    )
    centre = (n_heads - 1) / 2 if n_heads else 0.0
    pos = {}
    for s in sources:
        node = parse_node(s)
        x = centre if node.kind == "embed" else node.head if node.kind == "head" else n_heads
        pos[s] = (float(x), y_of[depth(s)])
    pos[LOGITS] = (centre, float(len(rows)))
    pos.setdefault(EMBED, (centre, y_of.get(-1.0, 0.0)))
    return pos


def _edge_path(pos, name: str) -> tuple[MplPath, tuple[float, float]]:
    """The curve of edge ``name`` from the top of its source to the q/k/v side of its
    destination, and the point halfway along it. An edge that skips rows bends (a quadratic
    curve), so that it does not run through the nodes between its ends."""
    e = parse_edge(name)
    (x0, y0), (x1, y1) = pos[e.src.name], pos[without_role(e.dst.name)]
    x1 += ROLE_OFFSET[e.dst.role]
    y0, y1 = y0 + 0.17, y1 - 0.17
    dx, dy = x1 - x0, y1 - y0
    bend = 0.0 if abs(dy) <= 1 else 0.08 + 0.02 * min(abs(dy), 8)
    mid = ((x0 + x1) / 2, (y0 + y1) / 2)
    ctrl = (mid[0] + bend * dy, mid[1] - bend * dx)
    path = MplPath([(x0, y0), ctrl, (x1, y1)], [MplPath.MOVETO, MplPath.CURVE3, MplPath.CURVE3])
    return path, ((mid[0] + ctrl[0]) / 2, (mid[1] + ctrl[1]) / 2)


def _draw_edges(ax, edges: list[tuple[MplPath, str, float, str]]) -> None:
    """(curve, colour, width, line style) per edge, as one collection: every edge runs upwards
    (a source writes before its destination reads), so no arrowheads are needed, and one
    collection draws thousands of edges (a GPT-2 circuit) in seconds."""
    patches = [
        PathPatch(path, fill=False, ec=colour, lw=lw, ls=style, alpha=0.85, capstyle="round")
        for path, colour, lw, style in edges
    ]
    ax.add_collection(PatchCollection(patches, match_original=True, zorder=2))


def _nodes(ax, pos, used: set[str]) -> None:
    for name, (x, y) in pos.items():
        on = name in used
        ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=7 if on else 6,
            zorder=3,
            color="black" if on else "#aaaaaa",
            bbox=dict(
                boxstyle="round,pad=0.25",
                fc="white" if on else "#f6f6f6",
                ec="black" if on else "#dddddd",
                lw=0.8,
            ),
        )


def _frame(ax, pos, title: str) -> None:
    xs, ys = [p[0] for p in pos.values()], [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(min(ys) - 0.6, max(ys) + 0.6)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _used(names) -> set[str]:
    out = set()
    for n in names:
        e = parse_edge(n)
        out.update((e.src.name, without_role(e.dst.name)))
    return out


def figure(c: Circuit):
    """The matplotlib figure of ``c`` (one panel, or circuit | ground truth)."""
    pos = layout(c.graph_edges)
    panels = 1 if c.truth is None else 2
    xs = {p[0] for p in pos.values()}
    ys = {p[1] for p in pos.values()}
    width = max(4.0, 0.75 * (max(xs) - min(xs) + 2)) * panels
    fig, axes = plt.subplots(
        1, panels, figsize=(width, max(3.5, 0.75 * len(ys) + 1)), squeeze=False
    )
    ax = axes[0, 0]
    top = max((abs(s) for s in c.scores), default=0.0)
    marks = c.marks()
    drawn, false_pos = [], []
    for name, score in zip(c.edges, c.scores, strict=True):
        role = parse_edge(name).dst.role
        colours, style = (ROLE_COLOURS, "-") if score >= 0 else (NEGATIVE_COLOURS, "--")
        path, mid = _edge_path(pos, name)
        drawn.append((path, colours[role], _width(score, top), style))
        if marks.get(name) == "FP":
            false_pos.append(mid)
    _draw_edges(ax, drawn)
    if false_pos:
        xs, ys = zip(*false_pos, strict=True)
        ax.plot(xs, ys, ls="", marker="x", color=FP_COLOUR, ms=6, mew=1.5, zorder=4)
    _nodes(ax, pos, _used(c.edges))
    _frame(ax, pos, f"{c.title}: {len(c.edges)} edges\n({c.size_note})")
    handles = [Line2D([], [], color=ROLE_COLOURS[r], lw=2, label=f"into {r}") for r in QKV]
    handles += [Line2D([], [], color=ROLE_COLOURS[None], lw=2, label="into MLP / logits")]
    handles += [Line2D([], [], color=NEGATIVE_COLOURS[None], lw=2, ls="--", label="score < 0")]
    if c.truth is not None:
        handles += [Line2D([], [], color=FP_COLOUR, marker="x", lw=0, label="false positive")]
    ax.legend(handles=handles, **LEGEND)
    if c.truth is not None:
        ax = axes[0, 1]
        kept = set(c.edges)
        truth = [n for n in c.graph_edges if n in c.truth]
        _draw_edges(
            ax,
            [
                (_edge_path(pos, n)[0], *((TP_COLOUR, 1.6, "-") if n in kept else MISS))
                for n in truth
            ],
        )
        _nodes(ax, pos, _used(truth))
        tp = sum(n in kept for n in truth)
        _frame(ax, pos, f"ground truth: {tp} of {len(truth)} edges found")
        ax.legend(
            handles=[
                Line2D([], [], color=TP_COLOUR, lw=2, label="found (true positive)"),
                Line2D([], [], color=MISSED_COLOUR, lw=2, ls=":", label="missed"),
            ],
            **LEGEND,
        )
    fig.tight_layout()
    return fig


def _save(fmt: str) -> Callable[[Circuit, Path], Path]:
    def save(c: Circuit, path: Path) -> Path:
        fig = figure(c)
        try:
            fig.savefig(path, format=fmt, dpi=150)
        finally:
            plt.close(fig)
        return path

    return save


def _write(render: Callable[[Circuit], str]) -> Callable[[Circuit, Path], Path]:
    def write(c: Circuit, path: Path) -> Path:
        path.write_text(render(c))
        return path

    return write


# format -> (text renderer or None, file writer)
TEXT_FORMATS: dict[str, Callable[[Circuit], str]] = {"text": to_text, "dot": to_dot}
FORMATS: dict[str, Callable[[Circuit, Path], Path]] = {
    "text": _write(to_text),
    "dot": _write(to_dot),
    "png": _save("png"),
    "svg": _save("svg"),
}
SUFFIX = {"text": "txt", "dot": "dot", "png": "png", "svg": "svg"}
