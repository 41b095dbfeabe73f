"""Emitted PyTorch source: ``emit(net)`` writes a standalone Python module that needs only
torch, as a PyTorch user would write the network by hand.

One ``nn.Module`` class per block, for each distinct body its calls build: the layer
arguments that differ between the calls of one body become constructor arguments (named
after the block's parameter whose values they are, or else after the torch argument), one
class for the network. Submodule attributes carry the IR's names, so ``state_dict()`` keys
are exactly ``build``'s, and each op's code is its ``torch_source``. In ``forward`` the
spec's named values are local variables; the rest flow through ``x``, ``h``, ``h2``, ...,
a variable reused once its value is dead, so a residual reads ``x = x + h``.

    dlc compile specs/resnet18.dl --target torch -o resnet18.py
"""

from __future__ import annotations

import functools
import keyword
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from ..compiler.elaborate.values import describe
from ..compiler.errors import DlcError
from ..compiler.ir.graph import Node, Scope
from ..compiler.ir.symbolic import Sym, symbols
from ..compiler.ops import OPS
from ..compiler.ops.base import literal

if TYPE_CHECKING:
    from ..compiler.network import Network

WIDTH = 100  # the line length the output keeps to (ruff format's, as the project's)
RESERVED = {"self", "torch", "nn", "F"}
_HOLE = re.compile("\x00(\\d+)\x00")


@dataclass
class Body:
    """The code of one block call (or the network), with holes for literals: ``\\0i\\0``
    stands for ``holes[i] = (name, value, in_forward)``."""

    scope: Scope | None
    params: list[str] = field(default_factory=list)  # of forward
    ctor: list[tuple[str, str, list[str]]] = field(default_factory=list)  # attr, callee, args
    forward: list[str] = field(default_factory=list)
    outputs: int = 1
    holes: list[tuple[str, Any, bool]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """What two calls must share to be one class: everything but the literals."""
        ctor = "\n".join(f"{a}={c}({', '.join(args)})" for a, c, args in self.ctor)
        return f"{self.params}\n{ctor}\n" + "\n".join(self.forward)


@dataclass
class Class:
    name: str
    params: list[tuple[str, type]]  # constructor parameter, the type of its values
    body: Body
    subst: list[str]  # each hole of the body, as this class writes it
    doc: str
    binds: list[int | None] = field(default_factory=list)  # the param that fills each hole


class Emitter:
    def __init__(self, net: Network):
        self.net, self.graph = net, net.graph
        graph = self.graph
        self.scopes = {s.prefix: s for s in graph.scopes}
        self.users: dict[str, list[str]] = {n.name: [] for n in graph.nodes}
        for n in graph.nodes:
            for x in n.inputs:
                self.users[x].append(n.name)
        self.calls: dict[str, tuple[str, list[Any]]] = {}  # prefix -> class, its arguments
        self.classes: list[Class] = []
        self.names = {graph.name}
        self.helpers: dict[str, str] = {}
        self.members: dict[str, list[Node]] = {}
        for n in graph.nodes:
            if n.op != "input":
                parts = n.name.split(".")
                for depth in range(len(parts)):
                    self.members.setdefault("".join(p + "." for p in parts[:depth]), []).append(n)

    # -- scopes ------------------------------------------------------------------------
    def nodes(self, prefix: str) -> list[Node]:
        """The nodes of a scope, its nested block calls' included."""
        return self.members.get(prefix, [])

    @functools.cache  # noqa: B019  (the emitter lives for one emit)
    def io(self, prefix: str) -> tuple[list[str], list[str]]:
        """The values a scope reads from outside (block inputs first), and the ones it
        gives out."""
        inner = self.nodes(prefix)
        made = {n.name for n in inner}
        used = list(dict.fromkeys(x for n in inner for x in n.inputs if x not in made))
        given = [v for _, v in self.scopes[prefix].inputs]
        ins = [v for v in dict.fromkeys(given) if v in used] + [v for v in used if v not in given]
        outs = [
            n.name
            for n in inner
            if n.name in self.graph.outputs or any(u not in made for u in self.users[n.name])
        ]
        return ins, outs or [inner[-1].name]

    def items(self, prefix: str) -> list[Node | str]:
        """A scope's own nodes and its block calls (as prefixes), in order."""
        out: list[Node | str] = []
        for n in self.nodes(prefix):
            rest = n.name[len(prefix) :]
            if "." not in rest:
                out.append(n)
            elif (child := prefix + rest.split(".", 1)[0] + ".") not in out:
                out.append(child)
        return out

    # -- one body ----------------------------------------------------------------------
    def body(self, prefix: str) -> Body:
        graph = self.graph
        if prefix:
            scope = self.scopes[prefix]
            ins, outs = self.io(prefix)
            names = {v: ("x" if k == "input" else k) for k, v in reversed(scope.inputs)}
            params = [_ident(names.get(v, "x")) for v in ins]
        else:
            scope, ins, outs = None, list(graph.inputs), list(graph.outputs)
            params = [_ident(v) for v in ins]
        body = Body(scope, outputs=len(outs))
        items = self.items(prefix)
        reads = [self.io(i)[0] if isinstance(i, str) else list(i.inputs) for i in items]
        gives = [self.io(i)[1] if isinstance(i, str) else [i.name] for i in items]
        last = {v: k for k, vs in enumerate(reads) for v in vs}
        last.update((v, len(items)) for v in outs)
        var: dict[str, str] = {}
        for v, p in zip(ins, params):
            var[v] = p if p not in var.values() else f"{p}_{len(var)}"
        body.params = [var[v] for v in ins]
        holds = {var[v]: v for v in ins}  # each variable's current value
        taken = RESERVED | self.helpers_all() | set(body.params)
        named: dict[str, str] = {}  # the spec's names for values, kept as local variables
        for vs, item in zip(gives, items):
            if len(vs) > 1:  # several results flow through generic names
                continue
            v = vs[0]
            if self.named(v, item):
                name = _local(v, item)
                while name in taken:
                    name += "_"
                named[v] = name
                taken.add(name)
        generic = {p for p in body.params if p == "x"}  # the flowing value may be reused
        free: list[str] = []
        if not prefix:
            body.forward += self.constraint_checks(var)
        for k, (item, vs, results) in enumerate(zip(items, reads, gives)):
            args = [var[x] for x in vs]
            dying = [var[x] for x in dict.fromkeys(vs) if last[x] == k]
            if isinstance(item, str):
                expr = self.call(body, item, args)
            else:
                expr = self.node_expr(body, item, args, holds)
            targets = []
            for v in results:
                if v not in last:
                    targets.append(None)
                    continue
                if v in named:
                    target = named[v]
                else:
                    reuse = [d for d in dying if d in generic and d not in targets]
                    target = reuse[0] if reuse else (free.pop(0) if free else _fresh(taken))
                    taken.add(target)
                    generic.add(target)
                targets.append(target)
                var[v] = target
                holds[target] = v
            for d in dying:
                if d in generic and d not in targets:
                    free.append(d)
            free.sort(key=_generic_order)
            if len(targets) > 1:  # a block call with several results: unpack them
                names = ", ".join(x or "_" for x in targets)
                body.forward.append(f"{names} = {expr}")
            elif targets[0] is None:
                if isinstance(item, str) or item.params:  # batchnorm statistics, say
                    body.forward.append(expr)
            elif expr != targets[0]:
                body.forward.append(f"{targets[0]} = {expr}")
        body.forward.append("return " + ", ".join(var[v] for v in outs))
        return body

    def node_expr(self, body: Body, node: Node, args: list[str], holds: dict[str, str]) -> str:
        """The node's expression; ``holds`` maps the variables in scope to their values."""
        op = OPS[node.op]
        attr = node.name.rsplit(".", 1)[-1]
        types = [self.graph.node(x).type for x in node.inputs]
        layer = op.torch_layer(node.attrs, node.params, *types)
        m = None
        if layer is not None:
            m = f"self.{attr}"
            cls, pos, kw = layer
            if cls == "Parameter":  # a learnable tensor: zeros until weights are loaded
                dims = ", ".join(_hole(body, "dim", d, False) for d in pos["dims"])
                hole_args = [f"torch.zeros({dims})"]
            else:
                hole_args = [_hole(body, k, v, False) for k, v in pos.items()]
                hole_args += [f"{k}={_hole(body, k, v, False)}" for k, v in kw.items()]
            body.ctor.append((attr, f"nn.{cls}", hole_args))

        def lit(value: Any, name: str = "") -> str:
            # A symbolic dim is code, not a literal: written into the body's text, so that
            # calls share a class only where it reads the same there (``Body.key``).
            if isinstance(value, Sym):
                return self.dim_source(value, holds, node)
            return _hole(body, name or "value", value, True)

        expr = op.torch_source(node.attrs, m, *args, lit=lit)
        for name, src in op.torch_helpers.items():
            if f"{name}(" in expr:
                self.helpers[name] = src
        return expr

    def call(self, body: Body, prefix: str, args: list[str]) -> str:
        cls = next(c for c in self.classes if c.name == self.calls[prefix][0])
        values = self.calls[prefix][1]
        hole_args = [_hole(body, name, v, False) for (name, _), v in zip(cls.params, values)]
        attr = prefix[:-1].rsplit(".", 1)[-1]
        body.ctor.append((attr, cls.name, hole_args))
        return f"self.{attr}({', '.join(args)})"

    def dim_source(self, d: Sym, holds: dict[str, str], node: Node) -> str:
        """A symbolic dim as Python over the tensors in scope: ``x.shape[0]`` where one has
        it, else its expression over dims of such tensors (``2 * (x.shape[2] // 16)``)."""

        def read(s: Sym) -> str | None:
            for name, v in holds.items():
                shape = self.graph.node(v).type.shape
                if s in shape:
                    return f"{name}.shape[{shape.index(s)}]"
            return None

        if (whole := read(d)) is not None:
            return whole
        reads = {s: read(Sym.var(s)) for s in sorted(d.symbols)}
        missing = [s for s, r in reads.items() if r is None]
        if missing:
            raise DlcError(
                f"{node.op} {node.name} needs the dim {d} at run time, and no tensor in scope "
                f"there has {', '.join(missing)} as a dim to read it from",
                node.span,
                chain=node.chain,
            )
        return re.sub(r"[A-Za-z_]\w*", lambda m: reads[m.group()], _py(d))

    def constraint_checks(self, var: dict[str, str]) -> list[str]:
        """What the compiler could not decide about the input shapes, checked on arrival."""
        constraints = self.graph.constraints
        needed = sorted(set().union(*(symbols(c.a) | symbols(c.b) for c in constraints)))
        if not needed:
            return []
        where = {}
        for name in self.graph.inputs:
            for axis, d in enumerate(self.graph.node(name).type.shape):
                if isinstance(d, Sym) and str(d) in needed:
                    where.setdefault(str(d), f"{var[name]}.shape[{axis}]")
        bound = ", ".join(f"{s}={{{s}}}" for s in needed)
        what = f"{self.graph.name}: the spec's shape constraints do not hold for {bound}"
        return [
            f"{', '.join(needed)} = {', '.join(where[s] for s in needed)}",
            "if (",
            *(
                f"    {'or ' if i else ''}{_py(c.a)} != {_py(c.b)}"
                for i, c in enumerate(constraints)
            ),
            "):",
            f'    raise ValueError(f"{what}")',
        ]

    def named(self, value: str, item: Node | str) -> bool:
        """Whether the spec named this value (``e1 = ...``) rather than the compiler."""
        if isinstance(item, str):
            last, base = item[:-1].rsplit(".", 1)[-1], self.scopes[item].block
        else:
            last, base = value.rsplit(".", 1)[-1], item.op
        return not re.fullmatch(rf"{re.escape(base)}_\d+", last)

    def helpers_all(self) -> set[str]:
        return {name for op in OPS.values() for name in op.torch_helpers}

    # -- classes -----------------------------------------------------------------------
    def block_order(self) -> list[str]:
        """Block names, each after every block it calls."""
        calls: dict[str, set[str]] = {}
        for prefix, scope in self.scopes.items():
            calls.setdefault(scope.block, set())
            parent = prefix[:-1].rpartition(".")[0]
            if parent:
                calls.setdefault(self.scopes[parent + "."].block, set()).add(scope.block)
        order: list[str] = []

        def visit(b: str) -> None:
            if b not in order:
                for c in sorted(calls[b]):
                    visit(c)
                order.append(b)

        for b in calls:
            visit(b)
        return order

    def make_classes(self, block: str) -> None:
        prefixes = [p for p, s in self.scopes.items() if s.block == block and self.nodes(p)]
        groups: dict[str, list[tuple[str, Body]]] = {}
        for p in prefixes:
            body = self.body(p)
            groups.setdefault(body.key, []).append((p, body))
        for members in groups.values():
            cls = self.make_class(block, [b for _, b in members])
            self.classes.append(cls)
            for p, b in members:
                values: list[Any] = [None] * len(cls.params)
                for (_, value, _), param in zip(b.holes, cls.binds):
                    if param is not None:
                        values[param] = value
                self.calls[p] = (cls.name, values)

    def make_class(self, block: str, bodies: list[Body]) -> Class:
        first = bodies[0]
        decl = self.net.program.blocks.get(block)
        block_params = [p.name for p in decl.params] if decl else []
        shown = [_parse_args(b.scope.args) for b in bodies]
        by_vector: dict[tuple, str] = {}  # a hole's values in the calls -> its parameter
        named: list[tuple[str, Any]] = []
        subst, hole_param = [], []
        for j, (what, value, in_forward) in enumerate(first.holes):
            vector = tuple(repr(b.holes[j][1]) for b in bodies)
            if len(set(vector)) == 1:
                subst.append(literal(value))
                hole_param.append(None)
                continue
            if vector not in by_vector:
                values = [b.holes[j][1] for b in bodies]
                match = [
                    p
                    for p in block_params
                    if all(s.get(p) == describe(v) for s, v in zip(shown, values))
                ]
                name = _ident(match[0] if match else what)
                while name in {n for n, _ in named}:
                    name += "_"
                by_vector[vector] = name
                kinds = {type(b.holes[j][1]) for b in bodies}
                named.append((name, kinds.pop() if len(kinds) == 1 else object))
            subst.append(f"self.{by_vector[vector]}" if in_forward else by_vector[vector])
            hole_param.append(by_vector[vector])
        rank = {p: i for i, p in enumerate(block_params)}
        named.sort(key=lambda nv: rank.get(nv[0], len(rank)))
        index = {n: i for i, (n, _) in enumerate(named)}
        where = f" of {_spec_name(decl.span.source.path)}:{decl.span.line}" if decl else ""
        doc = f"Block `{block}({', '.join(block_params)})`{where}."
        binds = [None if p is None else index[p] for p in hole_param]
        return Class(self.class_name(block), named, first, subst, doc, binds)

    def class_name(self, block: str) -> str:
        base = "".join(part[:1].upper() + part[1:] for part in block.split("_")) or "Block"
        name, k = base, 1
        while name in self.names or name in RESERVED or name in self.helpers_all():
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    # -- the module --------------------------------------------------------------------
    def module(self) -> str:
        for block in self.block_order():
            self.make_classes(block)
        net = self.net
        body = self.body("")
        graph = self.graph
        args = ", ".join(f"{k}={describe(v)}" for k, v in graph.args.items())
        path = _spec_name(net.program.root)
        network = Class(graph.name, [], body, [literal(v) for _, v, _ in body.holes], "")
        network.doc = f"{graph.name}({args}), from {path}."
        macs = f"{net.macs:,}" if isinstance(net.macs, int) else str(net.macs)
        doc = _docstring(
            f"{graph.name}({args}), in PyTorch.",
            f"Generated by dlc from {path}.",
            f"Parameters: {net.params:,}. Multiply-accumulates per example: {macs}.",
        )
        parts = [_render(c) for c in [*self.classes, network]]
        parts[:0] = [src.strip("\n") for src in self.helpers.values()]
        imports = ["import torch"]
        if re.search(r"\bF\.", "".join(parts)):
            imports.append("import torch.nn.functional as F")
        imports.append("from torch import nn")
        head = "\n".join([*doc, "", *imports])
        return "\n\n\n".join([head, *parts]) + "\n"


def emit(net: Network) -> str:
    """The network as the source of a Python module that imports only torch."""
    taken = _module_attributes()
    for n in net.graph.nodes:
        for part in n.name.split("."):
            if keyword.iskeyword(part) or part in RESERVED:
                raise DlcError(f"the layer name '{part}' cannot be a Python attribute", n.span)
            if part in taken:
                raise DlcError(
                    f"the layer name '{part}' is an attribute of torch.nn.Module: rename it",
                    n.span,
                )
    return Emitter(net).module()


@functools.cache
def _module_attributes() -> frozenset[str]:
    """What a layer may not be called, as an attribute of every ``nn.Module``; nothing
    where torch is not installed (emitting source does not need it)."""
    try:
        from torch import nn
    except ImportError:
        return frozenset()
    return frozenset(dir(nn.Module()))


# -- helpers -----------------------------------------------------------------------------
def _hole(body: Body, name: str, value: Any, in_forward: bool) -> str:
    body.holes.append((name, value, in_forward))
    return f"\x00{len(body.holes) - 1}\x00"


def _local(value: str, item: Node | str) -> str:
    name = item[:-1] if isinstance(item, str) else value
    return _ident(name.rsplit(".", 1)[-1])


def _ident(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) or name in RESERVED else name


def _py(d: Sym) -> str:
    """A symbolic dim as Python, spaced as ruff format writes it: ``2 * (H // 16)``."""
    return re.sub(r"(?<!\*)\*(?!\*)", " * ", str(d))


def _generic_order(name: str) -> tuple[int, str]:
    return (0 if name == "x" else 1, name.rjust(8))


def _fresh(taken: set[str]) -> str:
    for name in ("x", "h", *(f"h{i}" for i in range(2, 1000))):
        if name not in taken:
            return name
    raise AssertionError("unreachable")


def _parse_args(text: str) -> dict[str, str]:
    """``Scope.args`` (``c=64, stride=(1, 2)``) back into its parts, as ``describe`` wrote
    them."""
    parts = re.split(r", (?=[A-Za-z_]\w*=)", text) if text else []
    return dict(p.split("=", 1) for p in parts)


def _bracketed(head: str, args: list[str], tail: str, indent: str) -> list[str]:
    """``head(args)tail`` at ``indent``, wrapped as ruff format would where it is too long."""
    line = f"{indent}{head}({', '.join(args)}){tail}"
    if len(line) <= WIDTH:
        return [line]
    inner = f"{indent}    {', '.join(args)}"
    if len(inner) <= WIDTH:
        return [f"{indent}{head}(", inner, f"{indent}){tail}"]
    return [f"{indent}{head}(", *(f"{indent}    {a}," for a in args), f"{indent}){tail}"]


def _docstring(*paragraphs: str, indent: str = "") -> list[str]:
    """A docstring of ``paragraphs``, wrapped to the line length."""
    lines: list[str] = []
    for p in paragraphs:
        lines += [""] if lines else []
        lines += _wrap(p, WIDTH - len(indent) - 3)
    if len(lines) == 1:
        if len(indent) + len(lines[0]) + 6 <= WIDTH:
            return [f'{indent}"""{lines[0]}"""']
        # Too long for one line with both quotes: two lines (ruff format keeps those).
        lines = _wrap(lines[0], WIDTH - len(indent) - 6)
    return [
        f'{indent}"""{lines[0]}',
        *(f"{indent}{x}" if x else "" for x in lines[1:]),
        f'{indent}"""',
    ]


def _spec_name(path: str) -> str:
    """A spec's path as the user gave it, but an absolute one as its file name: the emitted
    source must not depend on the machine's folders."""
    given = PurePath(path)
    return given.name if given.is_absolute() else given.as_posix()


def _wrap(text: str, width: int) -> list[str]:
    # A word longer than a line (a spec's path) stays whole, alone on its line: ruff's E501
    # allows such lines, and a path cut in two would no longer name the file.
    return textwrap.wrap(text, width, break_on_hyphens=False, break_long_words=False)


def _type(kind: type) -> str:
    return f": {kind.__name__}" if kind in (bool, int, float, str) else ""


def _render(cls: Class) -> str:
    body = cls.body

    def fill(text: str) -> str:
        return _HOLE.sub(lambda m: cls.subst[int(m.group(1))], text)

    params = ["self", *(f"{name}{_type(v)}" for name, v in cls.params)]
    lines = [f"class {cls.name}(nn.Module):", *_docstring(cls.doc, indent="    "), ""]
    lines += [*_bracketed("def __init__", params, ":", "    "), "        super().__init__()"]
    for name, _ in cls.params:
        if f"self.{name}" in cls.subst:
            lines.append(f"        self.{name} = {name}")
    for attr, callee, args in body.ctor:
        lines += _bracketed(f"self.{attr} = {callee}", [fill(a) for a in args], "", "        ")
    outs = body.outputs
    ret = "torch.Tensor" if outs == 1 else f"tuple[{', '.join(['torch.Tensor'] * outs)}]"
    args = ["self", *(f"{p}: torch.Tensor" for p in body.params)]
    lines += ["", *_bracketed("def forward", args, f" -> {ret}:", "    ")]
    lines += [f"        {fill(s)}" for s in body.forward]
    return "\n".join(lines)
