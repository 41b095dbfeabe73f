"""Block-call memoisation: calls of one block with equal compile-time arguments, input
type and ``init`` rules build the same layers up to names, so the second is replayed from
the first (checked in the tests to give exactly the IR that elaboration gives)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Chain, Span
from ..frontend import ast
from ..ir.graph import Node, Scope
from .frame import MAX_NODES, Frame, Overrun
from .values import Poison, Tensor

# Tests switch replay off to check that it gives exactly the IR that elaboration gives.
MEMOIZE_BLOCKS = True


@dataclass(frozen=True)
class Template:
    """What one block call added to the graph, to be replayed under another prefix."""

    prefix: str
    input: str
    result: str
    depth: int  # length of the caller's chain
    nodes: list
    scopes: list
    constraints: list

    def closed(self) -> bool:
        """Whether the call reads only its input and its own values (always, unless a
        value from outside reached it some other way): only then can names be mapped."""
        own = {self.input, *(n.name for n in self.nodes)}
        return self.result in own and all(i in own for n in self.nodes for i in n.inputs)


def _typed(value: Any) -> Any:
    """A memo key part that tells 1, 1.0 and true apart (they are equal in Python)."""
    if isinstance(value, tuple):
        return ("tuple", tuple(_typed(v) for v in value))
    return (type(value).__name__, value)


class Memo:
    """Replaying repeated block calls (a mixin of ``Elaborator``)."""

    def _memo_lookup(
        self, block: ast.BlockDef, env: dict, x: Any, frame: Frame
    ) -> tuple[tuple | None, Template | None]:
        """(memo key, template to replay): calls of one block with equal compile-time
        arguments, input type and ``init`` rules build the same layers, up to names, so the
        second one replays the first. The key is None where the call cannot be memoised."""
        if self.memo is None or not isinstance(x, Tensor):
            return None, None
        values = tuple(env[p.name] for p in block.params)
        if any(isinstance(v, (Tensor, Poison)) for v in values):
            return None, None
        key = (block.name, _typed(values), x.type, tuple(frame.inits.items()))
        try:
            return key, self.memo.get(key)
        except TypeError:  # a list argument: not worth a canonical form
            return None, None

    def _replay(self, t: Template, name: str, x: Tensor, span: Span, frame: Frame) -> Tensor:
        old, new = t.prefix, name + "."

        def rename(value: str) -> str:
            return x.name if value == t.input else new + value[len(old) :]

        if len(self.nodes) + len(t.nodes) > MAX_NODES:
            raise Overrun(f"the network exceeds {MAX_NODES:,} layers", span)
        made = {}
        chains: dict[int, Chain] = {}  # the nodes of one inner call share their chain
        for n in t.nodes:
            chain = chains.get(id(n.chain))
            if chain is None:
                cut = len(n.chain) - t.depth - 1  # the chain ends with this call, then callers
                chain = (*n.chain[:cut], (n.chain[cut][0], span), *frame.chain)
                chains[id(n.chain)] = chain
            name = rename(n.name)
            node = Node(
                name,
                n.op,
                tuple([rename(i) for i in n.inputs]),
                n.attrs,
                n.type,
                n.params,
                n.span,
                chain,
            )
            self.nodes.append(node)
            self.names.add(name)
            made[name] = node
        for sc in t.scopes:
            prefix = new + sc.prefix[len(old) :]
            self.names.add(prefix[:-1])
            self.scopes.append(
                Scope(
                    prefix,
                    sc.block,
                    sc.args,
                    span if sc.prefix == old else sc.span,
                    tuple((k, rename(v)) for k, v in sc.inputs),
                )
            )
        self.constraints.extend(t.constraints)
        result = rename(t.result)
        return x if result == x.name else Tensor(result, made[result].type, made[result])
