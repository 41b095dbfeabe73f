"""PyTorch backend: ``build(net)`` makes a ``torch.nn.Module`` that runs the IR.

Each node's layer is the stock ``torch.nn`` module its op lowers to (``Op.torch_module``),
nested by the IR's dotted names, so ``state_dict()`` holds exactly the IR's parameter and
buffer names, in the spec's order. ``forward`` walks a schedule made once: each step calls
its op's ``torch_forward`` and drops the values no later step reads.

    from dlc.backends.torch import build
    model = build(load("specs/resnet18.dl"), "resnet18.safetensors").eval()
    logits = model(images)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..compiler.errors import DlcError
from ..compiler.ir.graph import Graph, Init
from ..compiler.ops import OPS, Op
from ..runtime.inputs import InputChecker, InputError
from ..runtime.weights import check_weights

if TYPE_CHECKING:
    from ..compiler.network import Network

__all__ = ["Block", "CompiledModule", "InputError", "build"]

# Initialiser arguments whose torch.nn.init keyword has another name.
_INIT_KEYWORDS = {"value": "val"}


class Block(nn.Module):
    """The layers of one block call, under the call's name (``basic_0``)."""

    def __init__(self, block: str):
        super().__init__()
        self._dlc_block = block

    def _get_name(self) -> str:  # what print(model) shows
        return self._dlc_block


class CompiledModule(nn.Module):
    """A dlc network as a module: ``forward(*inputs)`` in declaration order (or by name),
    returning the output, or a tuple of the outputs in declaration order."""

    def __init__(self, graph: Graph):
        super().__init__()
        self._dlc_name = graph.name
        self._dlc_check = InputChecker(graph, "PyTorch", "{name}.to(torch.{dtype})")
        blocks = {s.prefix[:-1]: s.block for s in graph.scopes}
        slot = {n.name: i for i, n in enumerate(graph.nodes)}
        last_use = {name: i for i, n in enumerate(graph.nodes) for name in n.inputs}
        kept = set(graph.outputs)
        steps = []
        for i, node in enumerate(graph.nodes):
            if node.op == "input":
                continue
            op = OPS[node.op]
            types = [graph.node(x).type for x in node.inputs]
            module = op.torch_module(node.attrs, node.params, *types)
            if module is None and (node.params or type(op).torch_forward is Op.torch_forward):
                raise DlcError(f"{node.op} has no torch lowering", node.span)
            if module is not None:
                self._place(node, module, blocks)
            dead = [x for x in dict.fromkeys(node.inputs) if last_use[x] == i and x not in kept]
            if node.name not in last_use and node.name not in kept:
                dead.append(node.name)  # run for its side effects (batchnorm statistics) only
            call = op.torch_bind(node.attrs, module, *types)
            steps.append((call, tuple(slot[x] for x in node.inputs), i, [slot[x] for x in dead]))
        self._dlc_steps = steps
        self._dlc_size = len(graph.nodes)
        self._dlc_inputs = [slot[name] for name in graph.inputs]
        self._dlc_outputs = [slot[name] for name in graph.outputs]

    def _place(self, node, module: nn.Module, blocks: Mapping[str, str]) -> None:
        *path, last = node.name.split(".")
        parent: nn.Module = self
        for depth, part in enumerate(path):
            child = parent._modules.get(part)
            if child is None:
                child = Block(blocks[".".join(path[: depth + 1])])
                self._add(parent, part, child, node)
            parent = child
        self._add(parent, last, module, node)

    @staticmethod
    def _add(parent: nn.Module, name: str, module: nn.Module, node) -> None:
        try:
            parent.add_module(name, module)
        except KeyError:
            raise DlcError(
                f"the layer name '{name}' is an attribute of torch.nn.Module: rename it",
                node.span,
            ) from None

    def _get_name(self) -> str:
        return self._dlc_name

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor):
        env: list[Any] = [None] * self._dlc_size
        for i, x in zip(self._dlc_inputs, self._check(args, kwargs)):
            env[i] = x
        for call, ins, out, dead in self._dlc_steps:
            if len(ins) == 1:  # most nodes: spare building an argument list
                env[out] = call(env[ins[0]])
            else:
                env[out] = call(*[env[i] for i in ins])
            for i in dead:
                env[i] = None
        if len(self._dlc_outputs) == 1:
            return env[self._dlc_outputs[0]]
        return tuple(env[i] for i in self._dlc_outputs)

    def _check(self, args: tuple, kwargs: dict) -> list:
        """The inputs in declaration order, checked as every backend checks them (names,
        rank, dtype, dims, the graph's constraints: runtime/inputs.py), or an InputError.
        Under torch.export a dynamic dim is symbolic: the checker leaves it to export."""
        xs = self._dlc_check.order(args, kwargs)
        self._dlc_check.check([tuple(x.shape) for x in xs], [_dtype_name(x) for x in xs])
        return xs


def _dtype_name(x: torch.Tensor) -> str:
    """The IR's name of a tensor's dtype (``torch.float32`` -> ``float32``)."""
    return str(x.dtype).removeprefix("torch.")


def build(net: Network | Graph, weights: Mapping[str, Any] | str | Path | None = None):
    """The network as a ``torch.nn.Module`` (a ``CompiledModule``).

    ``weights``: a dict of arrays or a safetensors path, keyed by IR name, validated as
    every backend does (``check_weights``). Without weights, each layer keeps PyTorch's
    default initialisation, except parameters with an ``init`` in the spec.
    """
    graph = net.graph if hasattr(net, "graph") else net
    module = CompiledModule(graph)
    if weights is not None:
        arrays = check_weights(graph, weights)
        state = {k: torch.tensor(np.asarray(v)) for k, v in arrays.items()}
        module.load_state_dict(state, strict=True)
    else:
        state = module.state_dict(keep_vars=True)
        with torch.no_grad():
            for name, p in graph.params():
                if p.init is not None:
                    _initialise(state[name], p.init)
    return module


def _initialise(tensor: torch.Tensor, init: Init) -> None:
    kwargs = {_INIT_KEYWORDS.get(k, k): v for k, v in init.args}
    getattr(nn.init, f"{init.name}_")(tensor, **kwargs)
