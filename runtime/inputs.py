"""A network's inputs checked on arrival, the same way for every backend that runs it.

``InputChecker(graph, ...)`` is made once per compiled network. ``order(args, kwargs)`` puts
the values given positionally or by name in declaration order; ``check(shapes, dtypes)``
checks them against the declared inputs (rank, dtype, static dims, each symbolic dim bound to
one size >= 1 by every input that has it, dims declared as expressions of others) and then,
once per binding of the symbols, that every value's size stays positive and that the graph's
recorded constraints hold. The backend gives shapes as tuples and dtypes as the IR's names
(``float32``, ``int64``); the first mismatch is an ``InputError``.

A dim that is not a Python int (a tracer's symbolic size, under ``torch.export``) is not
checked: the tracer knows only its range, and it checks its own guards.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from ..compiler.errors import DlcError
from ..compiler.ir.graph import INT_DTYPES, Graph
from ..compiler.ir.symbolic import Sym, evaluate, fmt_shape

__all__ = ["InputChecker", "InputError"]

_CHECKED_ENVS = 256  # symbolic-dim bindings whose derived checks are remembered


class InputError(DlcError, ValueError):
    """Inputs that do not fit the network's declared inputs or its shape constraints."""


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

    def check(self, shapes: Sequence[tuple], dtypes: Sequence[str]) -> dict[str, int]:
        """The symbol bindings (``{"N": 2}``) of inputs with these shapes and dtypes, in
        declaration order, or an InputError naming the first one that does not fit its
        declaration or the graph's constraints."""
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
                    f"input {name}: expected {t.dtype} ({t}), got {dtype} (the {self.backend} "
                    f"backend does not cast: pass {cast})"
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
        key = tuple(sorted(env.items()))
        if key not in self._checked:
            self._check_dims(env)
            if len(self._checked) >= _CHECKED_ENVS:
                self._checked.clear()
            self._checked.add(key)
        return env

    def _check_dims(self, env: dict[str, int]) -> None:
        """Every value's size, then the graph's recorded constraints, for these bindings
        (a size that reaches 0 breaks constraints too; it is the better message)."""
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


def _var(d: Sym) -> str | None:
    """The symbol's name when ``d`` is a plain symbol (``N``), else None."""
    (name,) = d.symbols if len(d.symbols) == 1 else (None,)
    return name if name is not None and d == Sym.var(name) else None
