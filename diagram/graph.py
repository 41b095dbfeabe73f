"""The drawable graph: the IR's nodes grouped by block call, closed and folded by depth.

A block call is identified as ``dlc summary`` identifies it: by the name prefix its layers
share (``basic_0.``, ``d4.double_conv_0.``), one ``Scope`` of the graph each; the number
of prefixes of a layer is the length of its ``Node.chain``. At ``depth`` D the calls
nested D levels deep are closed, each drawn as one node (its layers' totals, its output
shape), and the calls above them are open, drawn as boxes (clusters) around their
contents. Consecutive closed calls of one block that built identical layers, each fed by
the one before, fold into one node marked ``×N`` (as ``dlc summary`` folds its rows).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..compiler.analysis.counting import LayerCount
from ..compiler.errors import Span
from ..compiler.ir.graph import Node, TensorType
from ..compiler.ir.symbolic import Dim, Sym, fmt_shape
from ..compiler.ops import OPS

if TYPE_CHECKING:
    from ..compiler.network import Network


@dataclass
class Cluster:
    """An open block call: a box around the nodes it made."""

    id: str  # the call's name prefix without its final dot: "stage_0.block_1"
    block: str
    args: str
    span: Span | None
    parent: str | None  # the enclosing open call, if any

    @property
    def label(self) -> str:
        name = self.id.rsplit(".", 1)[-1]
        return f"{name}: {self.block}({self.args})" if self.block else name


@dataclass
class DrawNode:
    """One drawn node: a layer, an input, or a closed (possibly folded) block call."""

    id: str
    kind: str  # "input", "layer" or "block"
    family: str  # the op's family module ("conv", "norm", ...), "input" or "block"
    title: str  # the bold first words: the layer's (or call's) name
    subtitle: str  # the op, or the block and ×N
    shape: str  # the output shape
    counts: str  # parameters (and MACs when there are any)
    tooltip: str  # several lines: attributes, parameters, MACs, source
    clusters: tuple[str, ...]  # open calls containing it, outermost first
    members: tuple[Node, ...]
    count: int = 1  # block calls folded into this node
    output: bool = False

    @property
    def lines(self) -> tuple[str, ...]:
        return (f"{self.title}  {self.subtitle}", self.shape, self.counts)


@dataclass
class Drawing:
    name: str
    title: str  # "ResNet18(classes=1000)"
    totals: str  # "11,689,512 params · 1.814 G MACs"
    nodes: list[DrawNode]
    edges: list[tuple[str, str]]  # (from id, to id), each pair once, in IR order
    clusters: dict[str, Cluster] = field(default_factory=dict)  # outer calls first

    @property
    def heading(self) -> str:
        return f"{self.title}: {self.totals}"


def family(op: str) -> str:
    """The op's family: the registry module that defines it (``conv``, ``merge``, ...)."""
    if op == "input":
        return "input"
    return type(OPS[op]).__module__.rsplit(".", 1)[-1]


def si(n: Dim) -> str:
    """``1.814 G``: a count with an SI prefix (a formula stays a formula)."""
    if isinstance(n, Sym):
        return str(n)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.4g} {suffix}"
    return str(n)


def _shape(t: TensorType) -> str:
    # float32 is the common case and goes unsaid; token ids and masks say their dtype.
    return fmt_shape(t.shape) if t.dtype == "float32" else str(t)


def _counts_line(params: int, macs: Dim) -> str:
    text = f"{params:,} params"
    return f"{text} · {si(macs)} MACs" if macs != 0 else text


def _where(span: Span | None) -> str:
    return f"{span.source.path}:{span.line}" if span is not None else "?"


def _attr(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, tuple):
        return "(" + ", ".join(_attr(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def _prefixes(name: str) -> list[str]:
    """``a.b.c`` -> ``["a.", "a.b."]``: the block calls a layer is in, outermost first."""
    parts = name.split(".")[:-1]
    out, prefix = [], ""
    for part in parts:
        prefix += part + "."
        out.append(prefix)
    return out


def build(net: Network, depth: int | None = None) -> Drawing:
    """The drawing of ``net`` with calls nested ``depth`` levels deep closed (None: all open;
    0 is taken as 1, as ``dlc summary --depth`` does: the network itself is never closed)."""
    graph = net.graph
    layer = {lc.node.name: lc for lc in net.counts.layers}
    scopes = {s.prefix: s for s in graph.scopes}
    limit = None if depth is None else max(depth, 1)

    # Each IR node goes to a key: its own name, or the prefix of the closed call it is in.
    key_of: dict[str, str] = {}
    members: dict[str, list[Node]] = {}
    path_of: dict[str, tuple[str, ...]] = {}  # key -> open calls around it (prefixes)
    siblings: dict[tuple[str, ...], list[str]] = {}  # open call -> its keys in order
    for node in graph.nodes:
        prefixes = _prefixes(node.name)
        if limit is None or len(prefixes) < limit:
            key, path = node.name, tuple(prefixes)
        else:
            key, path = prefixes[limit - 1], tuple(prefixes[: limit - 1])
        key_of[node.name] = key
        members.setdefault(key, []).append(node)
        if key not in path_of:
            path_of[key] = path
            siblings.setdefault(path, []).append(key)

    folded = _fold(graph.nodes, graph.outputs, key_of, members, siblings, scopes)

    outputs = set(graph.outputs)
    clusters: dict[str, Cluster] = {}
    nodes: list[DrawNode] = []
    for key, calls in folded:
        path = path_of[key]
        for i, prefix in enumerate(path):
            if prefix[:-1] not in clusters:
                s = scopes.get(prefix)
                clusters[prefix[:-1]] = Cluster(
                    prefix[:-1],
                    s.block if s else "",
                    s.args if s else "",
                    s.span if s else None,
                    path[i - 1][:-1] if i else None,
                )
        inside = tuple(p[:-1] for p in path)
        if key.endswith("."):
            nodes.append(_block_node(calls, members, scopes, layer, inside))
        else:
            nodes.append(_layer_node(members[key][0], layer[key], inside))
        nodes[-1].output = any(n.name in outputs for n in nodes[-1].members)

    # Edges between drawn nodes, each pair once: at full depth, exactly the IR's edges.
    drawn = {key: calls[0][:-1] if key.endswith(".") else key for key, calls in folded}
    for key, calls in folded:
        for call in calls[1:]:
            drawn[call] = drawn[key]
    edges: dict[tuple[str, str], None] = {}
    for node in graph.nodes:
        to = drawn[key_of[node.name]]
        for value in node.inputs:
            src = drawn[key_of[value]]
            if src != to:
                edges[(src, to)] = None

    c = net.counts
    args = ", ".join(f"{k}={v}" for k, v in graph.args.items())
    title = f"{net.name}({args})"
    return Drawing(net.name, title, _counts_line(c.params, c.macs), nodes, list(edges), clusters)


def _fold(
    nodes: tuple[Node, ...],
    outputs: tuple[str, ...],
    key_of: dict[str, str],
    members: Mapping[str, list[Node]],
    siblings: Mapping[tuple[str, ...], list[str]],
    scopes: Mapping,
) -> list[tuple[str, list[str]]]:
    """(first key, keys folded into it) for each drawn node, in IR order."""
    consumers: dict[str, list[str]] = {}
    for node in nodes:
        for value in node.inputs:
            consumers.setdefault(value, []).append(node.name)
    names = {key: {n.name for n in ms} for key, ms in members.items()}

    def external_inputs(key: str) -> set[str]:
        return {v for n in members[key] for v in n.inputs if v not in names[key]}

    def foldable(prev: str, key: str) -> bool:
        """``key`` repeats ``prev`` and takes its place in a chain: identical layers, fed
        by ``prev`` (and by what fed ``prev``), and nothing else reads ``prev``, so that
        one node stands for both without hiding an edge or making a cycle."""
        if _signature(prev, members[prev], scopes) != _signature(key, members[key], scopes):
            return False
        ins = external_inputs(key)
        if not ins & names[prev] or not ins <= names[prev] | external_inputs(prev):
            return False
        for n in members[prev]:
            if n.name in outputs:
                return False
            if any(c not in names[prev] and c not in names[key] for c in consumers.get(n.name, ())):
                return False
        return True

    runs: dict[str, list[str]] = {}  # first key -> the keys of its run
    for keys in siblings.values():
        run: list[str] | None = None
        for key in keys:
            if key.endswith(".") and run and run[-1].endswith(".") and foldable(run[-1], key):
                run.append(key)
                continue
            run = runs[key] = [key]
    first = {k: head for head, run in runs.items() for k in run}
    order: dict[str, None] = {}
    for node in nodes:
        order[first[key_of[node.name]]] = None
    return [(key, runs[key]) for key in order]


def _signature(prefix: str, layers: list[Node], scopes: Mapping) -> tuple:
    """What makes two calls the same: the block, and each layer's local name, op, type,
    parameters and attributes (the test ``dlc summary`` folds its rows by)."""
    s = scopes.get(prefix)
    return (
        s.block if s else None,
        tuple(
            (
                n.name[len(prefix) :],
                n.op,
                n.type,
                tuple(n.params.items()),
                tuple(n.attrs.items()),
            )
            for n in layers
        ),
    )


def _layer_node(node: Node, lc: LayerCount, clusters: tuple[str, ...]) -> DrawNode:
    kind = "input" if node.op == "input" else "layer"
    tip = [f"{node.name} = {node.op}({', '.join(node.inputs)})" if node.inputs else node.name]
    if node.op == "input":
        tip[0] = f"input {node.name}"
    attrs = ", ".join(f"{k}={_attr(v)}" for k, v in node.attrs.items() if v is not None)
    if attrs:
        tip.append(attrs)
    tip.append(f"output: {node.type}")
    for local, p in node.params.items():
        what = "buffer" if p.buffer else "param"
        tip.append(f"  {what} {local or node.name}: {fmt_shape(p.shape)}")
    if kind == "layer":
        tip.append(f"params: {lc.params:,}" + (f", buffers: {lc.buffers:,}" if lc.buffers else ""))
        tip.append(f"MACs: {lc.macs:,}" if isinstance(lc.macs, int) else f"MACs: {lc.macs}")
    for block, span in node.chain:
        tip.append(f"in {block} called at {_where(span)}")
    tip.append(f"source: {_where(node.span)}")
    return DrawNode(
        id=node.name,
        kind=kind,
        family=family(node.op),
        title=node.name.rsplit(".", 1)[-1],
        subtitle=node.op,
        shape=fmt_shape(node.type.shape) if kind == "input" else _shape(node.type),
        counts=node.type.dtype if kind == "input" else _counts_line(lc.params, lc.macs),
        tooltip="\n".join(tip),
        clusters=clusters,
        members=(node,),
    )


def _block_node(
    calls: list[str],
    members: Mapping[str, list[Node]],
    scopes: Mapping,
    layer: Mapping[str, LayerCount],
    clusters: tuple[str, ...],
) -> DrawNode:
    nodes = tuple(n for call in calls for n in members[call])
    params = sum(layer[n.name].params for n in nodes)
    buffers = sum(layer[n.name].buffers for n in nodes)
    macs: Dim = sum((layer[n.name].macs for n in nodes), 0)
    s = scopes.get(calls[0])
    block = s.block if s else calls[0][:-1]
    name = calls[0][:-1].rsplit(".", 1)[-1]
    if len(calls) > 1:
        # As dlc summary writes a folded row: bottleneck_1…2.
        name = f"{name}…{calls[-1][:-1].rsplit('.', 1)[-1].rsplit('_', 1)[-1]}"
    last = nodes[-1].type
    tip = [
        f"{calls[0][:-1]}: {block}({s.args if s else ''})"
        + (f" ×{len(calls)}" if len(calls) > 1 else "")
    ]
    if len(calls) > 1:
        tip.append("calls: " + ", ".join(c[:-1] for c in calls))
    tip.append(f"layers: {len(nodes)}" + (f" ({len(nodes) // len(calls)} each)" * (len(calls) > 1)))
    tip.append(f"output: {last}")
    tip.append(f"params: {params:,}" + (f", buffers: {buffers:,}" if buffers else ""))
    tip.append(f"MACs: {macs:,}" if isinstance(macs, int) else f"MACs: {macs}")
    for call in calls:
        sc = scopes.get(call)
        tip.append(f"source: {_where(sc.span if sc else None)} ({call[:-1]})")
    return DrawNode(
        id=calls[0][:-1],
        kind="block",
        family="block",
        title=name,
        subtitle=f"{block} ×{len(calls)}" if len(calls) > 1 else block,
        shape=_shape(last),
        counts=_counts_line(params, macs),
        tooltip="\n".join(tip),
        clusters=clusters,
        members=nodes,
        count=len(calls),
    )
