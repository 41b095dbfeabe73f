"""Parameter, buffer, MAC and memory counts of an IR graph, per layer and in total.

Conventions (torchvision's, so published figures compare): MACs are the multiply-
accumulates of conv, dense, recurrent and attention matmuls for one example (axis 0 is
the batch and counts as 1); memory is weights in bytes and activations in bytes per
example. A count that depends on an unbound symbolic dim stays a formula in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..ir.graph import DTYPE_BYTES, Graph, Node
from ..ir.symbolic import Dim, Sym, evaluate, product
from ..ops import OPS

# Symbolic activation sizes are compared at this value of every symbol to find the peak.
PEAK_PROBE = 128


@dataclass(frozen=True)
class LayerCount:
    node: Node
    params: int
    buffers: int
    macs: Dim
    activation_bytes: Dim  # this layer's output, per example


@dataclass(frozen=True)
class Counts:
    layers: tuple[LayerCount, ...]
    params: int
    buffers: int
    macs: Dim
    weight_bytes: int  # parameters and buffers
    activation_bytes: Dim  # every value, inputs included, per example
    peak_activation_bytes: Dim  # most bytes live at once when running layer by layer
    receptive_field: int | None  # of the causal / dilated 1-D stack, if any


def count(graph: Graph) -> Counts:
    layers = []
    types = {}
    weight_bytes = 0
    for node in graph.nodes:
        params = buffers = 0
        for p in node.params.values():
            n = p.numel
            weight_bytes += n * DTYPE_BYTES[p.dtype]
            if p.buffer:
                buffers += n
            else:
                params += n
        macs: Dim = 0
        if node.op != "input":
            macs = OPS[node.op].macs(node.attrs, node.type, *(types[i] for i in node.inputs))
        types[node.name] = node.type
        layers.append(LayerCount(node, params, buffers, macs, _bytes_per_example(node)))
    return Counts(
        layers=tuple(layers),
        params=sum(lc.params for lc in layers),
        buffers=sum(lc.buffers for lc in layers),
        macs=sum((lc.macs for lc in layers), 0),
        weight_bytes=weight_bytes,
        activation_bytes=sum((lc.activation_bytes for lc in layers), 0),
        peak_activation_bytes=_peak(graph, {lc.node.name: lc.activation_bytes for lc in layers}),
        receptive_field=receptive_field(graph),
    )


def _bytes_per_example(node: Node) -> Dim:
    return product(node.type.shape[1:]) * DTYPE_BYTES[node.type.dtype]


def _probe(d: Dim) -> int:
    return evaluate(d, dict.fromkeys(d.symbols, PEAK_PROBE)) if isinstance(d, Sym) else d


def _peak(graph: Graph, size: dict[str, Dim]) -> Dim:
    """Peak of live activations: a value lives from its layer until its last consumer."""
    dies: dict[int, list[str]] = {}  # layer index -> values whose last consumer it is
    last_use = {name: i for i, node in enumerate(graph.nodes) for name in node.inputs}
    for name in graph.outputs:
        last_use[name] = len(graph.nodes)
    for name, i in last_use.items():
        dies.setdefault(i, []).append(name)
    live: Dim = 0
    peak: Dim = 0
    for i, node in enumerate(graph.nodes):
        live = live + size[node.name]
        if _probe(live) > _probe(peak):
            peak = live
        for name in dies.get(i, ()):
            live = live - size[name]
        if node.name not in last_use:  # never read: freed at once
            live = live - size[node.name]
    return peak


def receptive_field(graph: Graph) -> int | None:
    """Input steps that one output step of the 1-D convolution stack sees, or None."""
    field: dict[str, tuple[int, int]] = {}  # value -> (receptive field, jump)
    best = None
    for node in graph.nodes:
        if node.op == "input":
            field[node.name] = (1, 1)
            continue
        ins = [field[i] for i in node.inputs if i in field]
        if not ins or node.type.rank != 3:
            continue
        rf, jump = max(ins)
        xs = [graph.node(i).type for i in node.inputs]
        out = OPS[node.op].receptive(node.attrs, rf, jump, *xs)  # each op says how
        if out is not None:
            field[node.name] = out
            if out[0] > rf:
                best = max(best or 0, out[0])
    return best
