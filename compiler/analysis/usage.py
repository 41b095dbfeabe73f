"""Which layers reach no output (LANGUAGE §10: a located warning, not an error; the layer
is still counted, as a ``torch.nn`` module that is never called still holds parameters)."""

from __future__ import annotations

from ..errors import DlcWarning
from ..ir.graph import Graph, Node


def unused_layers(graph: Graph) -> list[DlcWarning]:
    """A warning for each layer whose value nothing reads and that is no output: the end
    of each unused chain, once. One result of a several-result call (``a, b = chunk(2)``)
    is not reported while another of its results is used."""
    read = {name for n in graph.nodes for name in n.inputs} | set(graph.outputs)
    used_calls = {_call_of(n) for n in graph.nodes if n.name in read and _call_of(n)}
    out = []
    for n in graph.nodes:
        if n.op == "input" or n.name in read or _call_of(n) in used_calls:
            continue
        out.append(
            DlcWarning(
                f"layer '{n.name}' ({n.op}) reaches no output; it is still counted",
                n.span,
                chain=n.chain,
            )
        )
    return out


def _call_of(n: Node) -> tuple | None:
    """What the results of one several-result call share (all but their ``index``)."""
    if n.attrs.get("index") is None:
        return None
    rest = tuple((k, v) for k, v in n.attrs.items() if k != "index")
    return (n.op, n.inputs, rest)
