"""Parameter, buffer, MAC and memory counts of an IR graph, per layer and in total.

Conventions (torchvision's, so published figures compare): MACs are the multiply-
accumulates of conv, dense, recurrent and attention matmuls for one example (axis 0 is
the batch and counts as 1); memory is weights in bytes and activations in bytes per
example. A count that depends on an unbound symbolic dim stays a formula in it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from ..ir.graph import DTYPE_BYTES, EMPTY, Graph, Node, Param, TensorType
from ..ir.symbolic import Dim, Sym, evaluate
from ..ops import OPS

# Symbolic activation sizes are compared at this value of every symbol to find the peak.
PEAK_PROBE = 128


class LayerCount(NamedTuple):
    """One layer's counts (a tuple, not a dataclass: one is made per node, cheaply)."""

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
    """Every layer's counts and the network's totals (one pass over the nodes)."""
    layers = []
    types: dict[str, TensorType] = {}
    sizes: dict[str, Dim] = {}
    weight_bytes = params = buffers = 0
    macs: Dim = 0
    activations: Dim = 0
    weights = {id(EMPTY): (0, 0, 0)}  # by mapping: a replayed block call shares its params
    for node in graph.nodes:
        w = weights.get(id(node.params))
        if w is None:
            w = weights[id(node.params)] = _weights(node.params)
        p_n, b_n, w_n = w
        t = node.type
        m: Dim = 0
        if node.op != "input":
            m = OPS[node.op].macs(node.attrs, t, *[types[i] for i in node.inputs])
        # math.prod multiplies ints natively and defers to Sym for symbolic dims.
        size = math.prod(t.shape[1:]) * DTYPE_BYTES[t.dtype]
        types[node.name] = t
        sizes[node.name] = size
        layers.append(LayerCount(node, p_n, b_n, m, size))
        params += p_n
        buffers += b_n
        weight_bytes += w_n
        macs = macs + m
        activations = activations + size
    return Counts(
        layers=tuple(layers),
        params=params,
        buffers=buffers,
        macs=macs,
        weight_bytes=weight_bytes,
        activation_bytes=activations,
        peak_activation_bytes=_peak(graph, sizes),
        receptive_field=receptive_field(graph, types),
    )


def _weights(params: Mapping[str, Param]) -> tuple[int, int, int]:
    """(parameter elements, buffer elements, bytes of both) of one node."""
    n_params = n_buffers = n_bytes = 0
    for p in params.values():
        n = math.prod(p.shape)
        n_bytes += n * DTYPE_BYTES[p.dtype]
        if p.buffer:
            n_buffers += n
        else:
            n_params += n
    return n_params, n_buffers, n_bytes


def _probe(d: Dim) -> int:
    return evaluate(d, dict.fromkeys(d.symbols, PEAK_PROBE)) if isinstance(d, Sym) else d


def _peak(graph: Graph, size: dict[str, Dim]) -> Dim:
    """Peak of live activations: a value lives from its layer until its last consumer.

    Evaluating at the probe is additive (a sum's value is the sum of the values), so the
    live total is probed by adding each value's probe once, not by re-evaluating it."""
    nodes = graph.nodes
    dies: dict[int, list[str]] = {}  # layer index -> values whose last consumer it is
    last_use = {name: i for i, node in enumerate(nodes) for name in node.inputs}
    for name in graph.outputs:
        last_use[name] = len(nodes)
    for name, i in last_use.items():
        dies.setdefault(i, []).append(name)
    probe = {name: d if type(d) is int else _probe(d) for name, d in size.items()}
    live: Dim = 0
    peak: Dim = 0
    live_probe = peak_probe = 0
    for i, node in enumerate(nodes):
        name = node.name
        live = live + size[name]
        live_probe += probe[name]
        if live_probe > peak_probe:
            peak, peak_probe = live, live_probe
        for dead in dies.get(i, ()):
            live = live - size[dead]
            live_probe -= probe[dead]
        if name not in last_use:  # never read: freed at once
            live = live - size[name]
            live_probe -= probe[name]
    return peak


def receptive_field(graph: Graph, types: Mapping[str, TensorType]) -> int | None:
    """Input steps that one output step of the 1-D convolution stack sees, or None
    (``types``: each value's type)."""
    field: dict[str, tuple[int, int]] = {}  # value -> (receptive field, jump)
    best = None
    for node in graph.nodes:
        if node.op == "input":
            field[node.name] = (1, 1)
            continue
        if len(node.type.shape) != 3:  # checked first: most layers of most networks
            continue
        ins = [field[i] for i in node.inputs if i in field]
        if not ins:
            continue
        rf, jump = max(ins)
        xs = [types[i] for i in node.inputs]
        out = OPS[node.op].receptive(node.attrs, rf, jump, *xs)  # each op says how
        if out is not None:
            field[node.name] = out
            if out[0] > rf:
                best = max(best or 0, out[0])
    return best
