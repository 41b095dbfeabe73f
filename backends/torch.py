"""PyTorch backend: ``build(net)`` makes a ``torch.nn.Module`` that runs the IR.

One description, as torch.fx does it: ``torch_source.emit`` writes the network as Python
source (one ``nn.Module`` class per distinct block body, each op's ``torch_source``), and
``build`` executes exactly that text, registered with ``linecache`` so that tracebacks and
``inspect.getsource`` show it. ``build(net)`` and ``dlc compile --target torch`` are thus
the same module by construction: the same classes, ``state_dict`` keys (the IR's names),
outputs, and ``torch.compile``/``torch.export`` behaviour. The one addition is a subclass of
the network's class that checks the inputs on arrival as every backend does
(runtime/inputs.py) and accepts them by name.

Why not derive source and module from a declarative per-op description instead: the
source is already the complete description (a layer constructor and a forward
expression), and executing it costs no more than building the layers directly (the text
is compiled once per distinct network and cached).

    from dlc.backends.torch import build
    model = build(load("specs/resnet18.dl"), "resnet18.safetensors").eval()
    logits = model(images)
"""

from __future__ import annotations

import functools
import hashlib
import linecache
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.ir.graph import Init
from ..extras import require
from ..runtime.inputs import InputChecker, InputError
from ..runtime.weights import check_weights
from .torch_source import emit

torch = require("torch", "the PyTorch backend (dlc.backends.torch)")
nn = torch.nn

if TYPE_CHECKING:
    from ..compiler.network import Network

__all__ = ["CompiledModule", "InputError", "build"]

# Initialiser arguments whose torch.nn.init keyword has another name.
_INIT_KEYWORDS = {"value": "val"}


class CompiledModule(nn.Module):
    """The checking layer over a generated network class: ``forward(*inputs)`` in
    declaration order (or by name), checked, then the generated ``forward``."""

    _dlc_check: InputChecker

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor):
        xs = self._dlc_check.order(args, kwargs)
        for name, x in zip(self._dlc_check.names, xs):
            if not isinstance(x, torch.Tensor):
                raise InputError(f"input {name}: expected a torch.Tensor, got {type(x).__name__}")
        # Under torch.export a dynamic dim is symbolic: the checker leaves it to export. While
        # torch.compile or torch.export traces, tensors have no values to read (reading one
        # would break the graph), so the checks on values (token ids) run in eager mode only.
        values = None if torch.compiler.is_compiling() else xs
        self._dlc_check.check([tuple(x.shape) for x in xs], [_dtype_name(x) for x in xs], values)
        return super().forward(*xs)


def _dtype_name(x: torch.Tensor) -> str:
    """The IR's name of a tensor's dtype (``torch.float32`` -> ``float32``)."""
    return str(x.dtype).removeprefix("torch.")


@functools.lru_cache(maxsize=64)
def _classes(source: str, network: str) -> dict[str, type]:
    """The classes of emitted ``source``, executed once per distinct text, and the checked
    network class (under the key ``""``)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    filename = f"<dlc {network} {digest}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    # A real module in sys.modules: torch.compile looks the code's globals up by name.
    module = types.ModuleType(f"dlc_generated_{digest}")
    exec(compile(source, filename, "exec"), module.__dict__)  # our emitted text, never a spec's
    sys.modules[module.__name__] = module
    classes = {k: v for k, v in vars(module).items() if isinstance(v, type)}
    checked = type(network, (CompiledModule, classes[network]), {})
    classes[""] = checked
    for name, cls in classes.items():
        cls.__reduce_ex__ = functools.partialmethod(_reduce, source, network, name)
    return classes


def _reduce(self: nn.Module, source: str, network: str, key: str, protocol: int):
    """Pickle a generated module by its source (its class cannot be imported by name)."""
    return _restore, (source, network, key), self.__getstate__()


def _restore(source: str, network: str, key: str) -> nn.Module:
    cls = _classes(source, network)[key]
    return cls.__new__(cls)


def build(
    net: Network,
    weights: Mapping[str, Any] | str | Path | None = None,
    *,
    check_inputs: bool = True,
) -> nn.Module:
    """The network as a ``torch.nn.Module`` (a ``CompiledModule``).

    ``check_inputs=False`` gives the generated class itself, without the checking layer
    (the training loop checks its data once, before the first step, not every call).

    ``weights``: a dict of arrays or a safetensors path, keyed by IR name, validated as
    every backend does (``check_weights``). Without weights, each layer keeps PyTorch's
    default initialisation, except parameters with an ``init`` in the spec.
    """
    graph = net.graph
    module = _classes(emit(net), graph.name)["" if check_inputs else graph.name]()
    if check_inputs:
        module._dlc_check = InputChecker(graph, "PyTorch", "{name}.to(torch.{dtype})")
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
