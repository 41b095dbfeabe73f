"""A network's inputs checked on arrival, the same way for every backend that runs it.

``InputChecker(graph, ...)`` is made once per compiled network. ``order(args, kwargs)`` puts
the values given positionally or by name in declaration order; ``check(shapes, dtypes,
values)`` checks them against the declared inputs (rank, dtype, static dims, each symbolic dim
bound to one size >= 1 by every input that has it, dims declared as expressions of others) and
then, once per binding of the symbols, that every value's size stays positive, that the
graph's recorded constraints hold and that each op's size requirements (``Op.requires``: a
sequence within ``positional_encoding``'s ``max_len``) do. Last come the requirements on
values (token ids within an ``embedding``'s vocab), on the graph inputs that the requiring op
reads directly or through views (reshape, slices, ...). The backend gives shapes as tuples
and dtypes as the IR's names (``float32``, ``int64``); the first mismatch is an
``InputError``. ``example_inputs(graph, rng)`` makes inputs that pass every check (``dlc
run --random-input``).

A dim that is not a Python int (a tracer's symbolic size, under ``torch.export``) is not
checked: the tracer knows only its range, and it checks its own guards. Nor are values when
the backend passes none (a tracer's tensors have no values to read).
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.ir.graph import INT_DTYPES, Graph, TensorType
from ..compiler.ir.symbolic import Sym, evaluate, fmt_shape, substitute
from ..compiler.ops import OPS
from .weights import NP_DTYPES

__all__ = ["InputChecker", "InputError", "dtype_name", "example_inputs"]

_CHECKED_ENVS = 256  # symbolic-dim bindings whose derived checks are remembered
_EXAMPLE_INTS = 10  # example integer inputs that no op bounds are drawn from [0, 10)


class InputError(DlcError, ValueError):
    """Inputs that do not fit the network's declared inputs, its shape constraints or its
    ops' requirements. ``hint``: the fix in the terms of the backend's API, after the
    message; ``problem`` is the message without it (what the command line shows, whose
    inputs are files)."""

    def __init__(self, message: str, span=None, *, hint: str = "", chain=()):
        super().__init__(f"{message} ({hint})" if hint else message, span, chain=chain)
        self.problem = message


class InputChecker:
    """The checks of one graph's inputs.

    ``backend`` and ``cast`` word the dtype message: ``cast`` is how a user of that backend
    converts a value, with ``{name}`` and ``{dtype}`` (an IR dtype name) to fill in, as in
    ``"{name}.astype(np.{dtype})"``. Integer inputs accept int64 and int32 (they are only
    ever indices).
    """

    def __init__(self, graph: Graph, backend: str, cast: str):
        # What the checks need of the graph, which a module holding this must copy and pickle.
        self.network, self.backend, self.cast = graph.name, backend, cast
        self.names = tuple(graph.inputs)
        self.types = tuple(graph.node(name).type for name in self.names)
        self._values = tuple((n.op, n.name, n.type.shape, n.span, n.chain) for n in graph.nodes)
        self._constraints = tuple(graph.constraints)
        self._sizes, self._values_required = _requirements(graph)
        self._checked: set[tuple] = set()

    def order(self, args: Sequence[Any], kwargs: dict[str, Any]) -> list[Any]:
        """The values in declaration order, or an InputError for too many, unknown, repeated
        or missing ones."""
        names = self.names
        listing = f"{self.network} takes {len(names)} input{'s' * (len(names) != 1)} " + (
            f"({', '.join(names)})"
        )
        if len(args) > len(names):
            raise InputError(f"{listing}, got {len(args)} positional arguments")
        given = dict(zip(names, args))
        for name, x in kwargs.items():
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise InputError(f"unknown input '{name}'{hint} ({listing})")
            if name in given:
                raise InputError(f"input {name} is given twice, by position and by name")
            given[name] = x
        missing = [name for name in names if name not in given]
        if missing:
            raise InputError(f"missing input{'s' * (len(missing) > 1)} {', '.join(missing)}")
        return [given[name] for name in names]

    def check(
        self, shapes: Sequence[tuple], dtypes: Sequence[str], values: Sequence[Any] | None = None
    ) -> dict[str, int]:
        """The symbol bindings (``{"N": 2}``) of inputs with these shapes and dtypes, in
        declaration order, or an InputError naming the first one that does not fit its
        declaration, the graph's constraints or the ops' requirements. ``values``: the
        inputs themselves (arrays or tensors: anything with ``min()`` and ``max()``), for
        the requirements on values; None skips those."""
        env: dict[str, int] = {}
        where: dict[str, str] = {}  # which input bound each symbolic dim, for messages
        concrete = True
        for name, t, shape, dtype in zip(self.names, self.types, shapes, dtypes):
            if len(shape) != t.rank:
                raise InputError(
                    f"input {name}: expected rank {t.rank} ({t}), got shape {list(shape)}"
                )
            ok = dtype in INT_DTYPES if t.dtype in INT_DTYPES else dtype == t.dtype
            if not ok:
                cast = self.cast.format(name=name, dtype=t.dtype)
                raise InputError(
                    f"input {name}: expected {t.dtype} ({t}), got {dtype}",
                    hint=f"the {self.backend} backend does not cast: pass {cast}",
                )
            for axis, (d, got) in enumerate(zip(t.shape, shape)):
                if not isinstance(got, int):
                    concrete = False
                elif isinstance(d, int):
                    if got != d:
                        raise InputError(f"input {name}: axis {axis} must be {d} ({t}), got {got}")
                elif _var(d) is not None:
                    sym = _var(d)
                    if got < 1:
                        raise InputError(
                            f"input {name}: axis {axis} ({sym}) must be >= 1, got {got}"
                        )
                    if env.setdefault(sym, got) != got:
                        raise InputError(
                            f"input {name}: axis {axis} is {sym}, which input {where[sym]} "
                            f"binds to {env[sym]}; got {got}"
                        )
                    where.setdefault(sym, f"{name} (axis {axis})")
        if not concrete:
            return env
        for name, t, shape in zip(self.names, self.types, shapes):  # dims that are expressions
            for axis, (d, got) in enumerate(zip(t.shape, shape)):
                if isinstance(d, Sym) and _var(d) is None and evaluate(d, env) != got:
                    raise InputError(
                        f"input {name}: axis {axis} must be {d} = {evaluate(d, env)}, got {got}"
                    )
        key = tuple(env.items())  # bound in declaration order: no need to sort
        if key not in self._checked:
            self._check_dims(env, where)
            if len(self._checked) >= _CHECKED_ENVS:
                self._checked.clear()
            self._checked.add(key)
        if values is not None:
            self._check_values(values)
        return env

    def _check_values(self, values: Sequence[Any]) -> None:
        """The ops' requirements on the values of the inputs they read."""
        for r, i, op, node, span, chain in self._values_required:
            lo, hi = int(values[i].min()), int(values[i].max())
            if lo < r.lo or hi > r.hi:
                raise InputError(
                    f"input {self.names[i]}: {r.what} {lo if lo < r.lo else hi} is out of "
                    f"range for {r.bound} ({op} {node} reads it)",
                    span,
                    chain=chain,
                )

    def _check_dims(self, env: dict[str, int], where: dict[str, str]) -> None:
        """Every value's size, then the graph's recorded constraints, then the ops' size
        requirements, for these bindings (a size that reaches 0 breaks constraints too; it
        is the better message)."""
        bound = ", ".join(f"{k}={v}" for k, v in env.items())
        for op, name, declared, span, chain in self._values:
            shape = [evaluate(d, env) for d in declared]
            if any(d < 1 for d in shape):
                raise InputError(
                    f"inputs with {bound} are too small: {op} {name} would output "
                    f"{fmt_shape(declared)} = {shape}",
                    span,
                    chain=chain,
                )
        for c in self._constraints:
            a, b = evaluate(c.a, env), evaluate(c.b, env)
            if a != b:
                raise InputError(
                    f"inputs with {bound} break a constraint of {self.network}: {c.what}: "
                    f"{c.a} == {c.b} does not hold ({a} != {b})",
                    c.span,
                )
        for r, dim, op, node, span, chain in self._sizes:
            got = evaluate(dim, env)
            if not r.lo <= got <= r.hi:
                sym = _var(dim) if isinstance(dim, Sym) else None
                whose = f"input {where[sym]}" if sym in where else f"inputs with {bound}"
                raise InputError(
                    f"{whose}: {r.what} {dim} = {got} is out of range for {r.bound} "
                    f"({op} {node} reads it)",
                    span,
                    chain=chain,
                )


def _requirements(graph: Graph) -> tuple[tuple, tuple]:
    """The ops' requirements (``Op.requires``) with what checking them needs: those on a
    size with the dim they name (symbolic), those on values with the graph input (its
    index) whose values the op reads; each with the op's name, node, span and chain."""
    sizes, values = [], []
    for n in graph.nodes:
        if n.op == "input":
            continue
        xs = [graph.node(i).type for i in n.inputs]
        for r in OPS[n.op].requires(n.attrs, *xs):
            if r.axis is not None:
                sizes.append((r, xs[r.input].shape[r.axis], n.op, n.name, n.span, n.chain))
            elif (source := _source(graph, n.inputs[r.input])) is not None:
                i = graph.inputs.index(source)
                values.append((r, i, n.op, n.name, n.span, n.chain))
    return tuple(sizes), tuple(values)


def example_inputs(
    graph: Graph, rng: np.random.Generator, dims: Mapping[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Random inputs that pass the checks, by name: floats normal(0, 1), integers uniform
    within what the ops allow (token ids within the vocab), else in [0, 10). Every dim must
    be known, or bound by ``dims``, and the inputs may take at most half this machine's
    memory, the network's values needing as much again at least (else an InputError)."""
    names = list(graph.inputs)
    low, high = [0] * len(names), [_EXAMPLE_INTS - 1] * len(names)
    for r, i, *_ in _requirements(graph)[1]:
        low[i], high[i] = max(low[i], r.lo), min(high[i], r.hi)
    types = [graph.node(name).type for name in names]
    if dims:
        types = [TensorType(t.dtype, tuple(substitute(d, dims) for d in t.shape)) for t in types]
    for name, t in zip(names, types):
        symbolic = [str(d) for d in t.shape if not isinstance(d, int)]
        if symbolic:
            raise InputError(f"input {name} ({t}) has symbolic dims: {', '.join(symbolic)}")
        if t.dtype not in NP_DTYPES:
            raise InputError(f"input {name}: NumPy has no {t.dtype}")
    size = sum(math.prod(t.shape) * np.dtype(NP_DTYPES[t.dtype]).itemsize for t in types)
    if size > _memory() / 2:
        listing = ", ".join(f"{n} {t}" for n, t in zip(names, types))
        raise InputError(f"inputs of {size / 2**30:,.1f} GiB ({listing}) are too large")
    out = {}
    for i, (name, t) in enumerate(zip(names, types)):
        dtype = NP_DTYPES[t.dtype]
        if t.dtype in INT_DTYPES:
            out[name] = rng.integers(low[i], high[i], t.shape, dtype, endpoint=True)
        else:
            out[name] = rng.standard_normal(t.shape, np.float32).astype(dtype)
    return out


def _memory() -> float:
    """This machine's physical memory in bytes (infinite where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return math.inf


def dtype_name(dtype: np.dtype) -> str:
    """The IR's name of a NumPy dtype (``float32``); a byte order other than the machine's
    is not one of them (``>f4``)."""
    return dtype.name if dtype.isnative else dtype.str


def _source(graph: Graph, name: str) -> str | None:
    """The graph input whose values ``name`` holds, directly or through views of it (a
    view holds only its input's values), or None."""
    while name not in graph.inputs:
        node = graph.node(name)
        if not (OPS[node.op].numpy_view and len(node.inputs) == 1):
            return None
        name = node.inputs[0]
    return name


def _var(d: Sym) -> str | None:
    """The symbol's name when ``d`` is a plain symbol (``N``), else None."""
    (name,) = d.symbols if len(d.symbols) == 1 else (None,)
    return name if name is not None and d == Sym.var(name) else None
