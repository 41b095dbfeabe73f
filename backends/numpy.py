"""NumPy backend: dlc's reference runtime, exact at float32 and fast on a CPU.

``compile(net, weights)`` plans once: it checks the weights, folds each batchnorm into the
conv or dense layer before it (when that layer feeds nothing else), fuses a relu into the
convolution before it (likewise), lets each op lay out its weights (``Op.numpy_prepare``),
drops nodes that no output needs, and works out where each value is read for the last time.
The callable it returns then runs many times: it checks the inputs (names, rank, dtype,
static dims, symbolic dims bound consistently, the graph's constraints, the ops' requirements
such as token ids within the vocab; runtime/inputs.py, as every backend does), walks the
steps calling each op's kernel (``Op.numpy``, next to its shape rule in compiler/ops), frees
each value after its last use, and lets an elementwise kernel write into an input that dies
there. ``run`` does both for one call.

An attribute may hold a symbolic dim (``expand(x.shape[0], -1, -1)`` holds ``N``): the
planner marks such nodes, and on each call their kernel gets the attributes with every
symbol evaluated at the bindings that the input check returns (``N`` = the batch the
inputs have). Other nodes keep the kernel made once when planning.

    from dlc.backends.numpy import compile
    net = load("specs/resnet18.dl")
    forward = compile(net, init_weights(net, seed=0))   # or a safetensors file
    logits = forward(images)            # images: float32 [N, 3, 224, 224]

Convolutions may share their GEMMs out among as many Python threads as the BLAS may use,
each task on a single-threaded BLAS (with threadpoolctl; compiler/ops/conv.py): faster when
another process holds a core, slower on an idle machine. A compiled network times both ways
and keeps the faster (``_GemmTuner``); the results are the same to the bit.

Float16 values are computed in float32 and rounded to float16 after each op; NumPy has no
bfloat16. Integer inputs accept int64 or int32 arrays (they are only ever indices).
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.ir.graph import Graph, Node
from ..compiler.ir.symbolic import Sym, evaluate
from ..compiler.ops import OPS
from ..compiler.ops.conv import SHARE_GEMMS
from ..runtime.inputs import InputChecker, dtype_name
from ..runtime.weights import check_weights

if TYPE_CHECKING:
    from ..compiler.network import Network

__all__ = ["Compiled", "compile", "run"]


@dataclass(frozen=True, slots=True)
class Step:
    node: Node
    kernel: Callable[..., np.ndarray]
    inputs: tuple[int, ...]  # environment slots
    out: int
    inplace: int | None  # the position in ``inputs`` of the array the kernel may overwrite
    free: tuple[int, ...]  # slots read for the last time here
    cast: Any  # the dtype to round the result to, or None
    # The kernel of given symbol bindings, for a node whose attributes hold symbolic dims.
    bind: Callable[[Mapping[str, int]], Callable[..., np.ndarray]] | None


class Compiled:
    """A network planned for NumPy: call it with the inputs, positionally or by name.
    ``steps`` is the plan, one ``Step`` a node, for inspection."""

    def __init__(self, graph: Graph, weights: Mapping[str, np.ndarray]):
        self.graph = graph
        weights = check_weights(graph, weights)
        for node in graph.nodes:
            if node.type.dtype == "bfloat16":
                raise DlcError(f"the NumPy backend has no bfloat16 ({node.name})", node.span)
        local = {n.name: {k: weights[n.param_name(k)] for k in n.params} for n in graph.nodes}
        alias = _fold_affine(graph, local)
        fused = _fuse_relu(graph, alias)
        nodes = _needed(graph, alias)
        slots = {name: i for i, name in enumerate(graph.inputs)}
        for n in nodes:
            slots[n.name] = len(slots)
        self._size = len(slots)
        self._outputs = tuple(slots[alias.get(o, o)] for o in graph.outputs)

        def ins(n: Node) -> list[str]:
            return [alias.get(i, i) for i in n.inputs]

        last, root, buffer_last = _lifetimes(graph, nodes, ins, alias)
        kept = {slots[alias.get(o, o)] for o in graph.outputs}

        steps = []
        for i, n in enumerate(nodes):
            op, names = OPS[n.op], ins(n)
            prepared = op.numpy_prepare(n.attrs, local[n.name])
            relu = {"relu": True} if n.name in fused else {}
            symbolic = _symbolic(n.attrs)
            inplace = None
            if op.numpy_inplace:
                for pos, name in enumerate(names):
                    alone = [root[other] for other in names].count(root[name]) == 1
                    if alone and buffer_last[root[name]] == i and graph.node(name).type == n.type:
                        inplace = pos
                        break
            free = {slots[name] for name in names if last[name] == i} - kept
            steps.append(
                Step(
                    node=n,
                    kernel=partial(op.numpy, n.attrs, prepared, **relu),
                    inputs=tuple(slots[name] for name in names),
                    out=slots[n.name],
                    inplace=inplace,
                    free=tuple(sorted(free)),
                    cast=np.float16 if n.type.dtype == "float16" else None,
                    bind=partial(_bound_kernel, op.numpy, n.attrs, prepared, relu)
                    if symbolic
                    else None,
                )
            )
        self.steps = tuple(steps)
        self._inputs = InputChecker(graph, "NumPy", "{name}.astype(np.{dtype})")
        self._tuner = _GemmTuner()

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        share = self._tuner.choose()
        token = SHARE_GEMMS.set(share)
        start = time.perf_counter()
        try:
            return self._run(args, kwargs)
        finally:
            SHARE_GEMMS.reset(token)
            self._tuner.record(share, time.perf_counter() - start)

    def _run(self, args: tuple, kwargs: dict) -> np.ndarray | tuple[np.ndarray, ...]:
        env: list[Any] = [None] * self._size
        env[: len(self.graph.inputs)], dims = self._check(args, kwargs)
        for step in self.steps:
            xs = [env[i] for i in step.inputs]
            kernel = step.kernel if step.bind is None else step.bind(dims)
            try:
                if step.inplace is None:
                    y = kernel(*xs)
                else:
                    y = kernel(*xs, out=xs[step.inplace])
            except Exception as exc:  # the node, as fx adds "While executing" in one place
                n = step.node
                raise DlcError(f"{n.op} {n.name}: {exc}", n.span, chain=n.chain) from exc
            env[step.out] = y if step.cast is None else y.astype(step.cast, copy=False)
            for i in step.free:
                env[i] = None
        outs = tuple(np.ascontiguousarray(env[i]) for i in self._outputs)
        return outs[0] if len(outs) == 1 else outs

    # -- inputs --------------------------------------------------------------------------
    def _check(self, args: tuple, kwargs: dict) -> tuple[list[np.ndarray], dict[str, int]]:
        """The inputs in declaration order, as arrays, and the symbols' bindings; or an
        InputError naming the first input that does not fit its declaration, the graph's
        constraints or the ops' requirements (runtime/inputs.py)."""
        xs = [np.asarray(x) for x in self._inputs.order(args, kwargs)]
        dims = self._inputs.check([x.shape for x in xs], [dtype_name(x.dtype) for x in xs], xs)
        return xs, dims


class _GemmTuner:
    """Picks, call by call, whether convolutions share their GEMMs out among Python threads
    (``conv.SHARE_GEMMS``): each way is timed on alternate calls at first, then the faster of
    the last few calls is kept, with the other tried again every ``PROBE``-th call, as the
    load on the machine changes. Both ways give the same bits."""

    PROBE = 16

    def __init__(self) -> None:
        self.calls = 0
        self.times: dict[bool, deque[float]] = {True: deque(maxlen=3), False: deque(maxlen=3)}

    def choose(self) -> bool:
        self.calls += 1
        if min(len(t) for t in self.times.values()) < 2:
            return self.calls % 2 == 1
        best = min(self.times, key=lambda way: statistics.median(self.times[way]))
        return (not best) if self.calls % self.PROBE == 0 else best

    def record(self, share: bool, seconds: float) -> None:
        self.times[share].append(seconds)


def compile(net: Network | Graph, weights: Mapping[str, Any] | str | Path) -> Compiled:
    """Plan ``net`` with ``weights`` (arrays by IR name, or a safetensors file) for NumPy."""
    graph = net.graph if hasattr(net, "graph") else net
    return Compiled(graph, weights)


def run(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path, *inputs: Any, **named: Any
) -> np.ndarray | tuple[np.ndarray, ...]:
    """``compile(net, weights)(*inputs, **named)``: one array, or a tuple in output order."""
    return compile(net, weights)(*inputs, **named)


# -- planning ------------------------------------------------------------------------------
def _uses(graph: Graph) -> dict[str, int]:
    """How many times each value is read, by nodes or as an output."""
    uses: dict[str, int] = {}
    for name in [*(i for n in graph.nodes for i in n.inputs), *graph.outputs]:
        uses[name] = uses.get(name, 0) + 1
    return uses


def _fold_affine(graph: Graph, local: dict[str, dict]) -> dict[str, str]:
    """Fold each per-channel affine op (inference batchnorm) into the layer before it when
    that layer feeds nothing else; rewrites ``local`` and returns folded name -> layer."""
    uses = _uses(graph)
    alias = {}
    for n in graph.nodes:
        affine = None if n.op == "input" else OPS[n.op].numpy_affine(n.attrs, local[n.name])
        if affine is None or uses[n.inputs[0]] != 1 or n.inputs[0] in graph.inputs:
            continue
        prev = graph.node(n.inputs[0])
        folded = OPS[prev.op].numpy_fold(prev.attrs, local[prev.name], *affine, n.type.rank)
        if folded is not None:
            local[prev.name] = folded
            alias[n.name] = prev.name
    return alias


def _fuse_relu(graph: Graph, alias: dict[str, str]) -> set[str]:
    """Fuse each relu into the layer before it (after folding) when that layer's kernel
    applies it (``numpy_relu``) and feeds nothing else: one pass less over its output, done
    while it is in cache. Adds relu -> layer to ``alias``; returns the layers."""
    uses = _uses(graph)
    fused = set()
    for n in graph.nodes:
        if n.op != "relu" or n.inputs[0] in graph.inputs or uses[n.inputs[0]] != 1:
            continue
        prev = graph.node(alias.get(n.inputs[0], n.inputs[0]))
        if OPS[prev.op].numpy_relu and prev.name not in fused and prev.type == n.type:
            alias[n.name] = prev.name
            fused.add(prev.name)
    return fused


def _lifetimes(graph: Graph, nodes: list[Node], ins, alias: dict[str, str]):
    """The last step that reads each value; the memory each value lives in (a view op's
    output shares its input's, named by the value that allocated it); and the last step
    that reads any value in each memory, which decides whether a kernel may overwrite it.
    Inputs, outputs and weights (a ``param``'s value is its weight array) live for ever:
    the caller's arrays are never written."""
    last: dict[str, int] = {}
    root = {name: name for name in graph.inputs}
    weights = []
    for i, n in enumerate(nodes):
        for name in ins(n):
            last[name] = i
        if not OPS[n.op].numpy_view:
            root[n.name] = n.name
        elif ins(n):
            root[n.name] = root[ins(n)[0]]
        else:
            root[n.name] = n.name
            weights.append(n.name)
    forever = len(nodes)
    buffer_last = dict.fromkeys([*graph.inputs, *weights], forever)
    for name, i in last.items():
        buffer_last[root[name]] = max(buffer_last.get(root[name], -1), i)
    for name in graph.outputs:
        buffer_last[root[alias.get(name, name)]] = forever
    return last, root, buffer_last


def _needed(graph: Graph, alias: dict[str, str]) -> list[Node]:
    """The nodes that some output depends on, folded ones excepted, in graph order."""
    need = {alias.get(o, o) for o in graph.outputs}
    out = []
    for n in reversed(graph.nodes):
        if n.name in need and n.op != "input":
            out.append(n)
            need.update(alias.get(i, i) for i in n.inputs)
    return out[::-1]


def _symbolic(value: Any) -> bool:
    """Whether an attribute value holds a symbolic dim (in a tuple, say)."""
    if isinstance(value, Sym):
        return True
    if isinstance(value, (tuple, list)):
        return any(map(_symbolic, value))
    return isinstance(value, Mapping) and any(map(_symbolic, value.values()))


def _evaluated(value: Any, dims: Mapping[str, int]) -> Any:
    """An attribute value with each symbolic dim evaluated at ``dims``."""
    if isinstance(value, Sym):
        return evaluate(value, dims)
    if isinstance(value, (tuple, list)):
        return type(value)(_evaluated(v, dims) for v in value)
    if isinstance(value, Mapping):
        return {k: _evaluated(v, dims) for k, v in value.items()}
    return value


def _bound_kernel(numpy, attrs, prepared, relu, dims: Mapping[str, int]):
    """An op's kernel with its attributes evaluated at the symbol bindings ``dims``."""
    return partial(numpy, _evaluated(attrs, dims), prepared, **relu)
