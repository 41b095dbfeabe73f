"""Hover: a layer call's output shape, parameters and MACs (as ``dlc summary`` shows them)
with the op's signature and doc; a bound name's layer or value; any op, builtin, block,
network, fn or recipe word's signature and doc.
"""

from __future__ import annotations

from typing import Any

from lsprotocol import types

from ..compiler.errors import Span
from ..compiler.frontend import ast
from ..compiler.frontend.program import Program
from ..compiler.ir.graph import Node, Scope
from ..compiler.ir.symbolic import Dim, fmt_shape
from ..compiler.network import Network
from ..compiler.recipe import schema
from . import vocabulary as V
from .analysis import Analysis, key
from .syntax import Binding, bindings, contains, enclosing_def, path_at, resolve
from .tokens import section_at, sections, token_at


def _num(n: Dim) -> str:
    """As ``dlc summary`` prints counts: 1,234 or a formula in symbolic dims."""
    return f"{n:,}" if isinstance(n, int) else str(n)


def _markdown(value: str, a: Analysis, span: Span | None) -> types.Hover:
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=value),
        range=a.index.span_range(span) if span is not None and a.here(span) else None,
    )


def hover(a: Analysis, pos: types.Position, program: Program | None) -> types.Hover | None:
    """What to show at ``pos``; ``program`` is the last one that loaded (for words whose
    definitions the current text, if it does not parse, cannot give)."""
    line, col = a.index.cursor(pos)
    if a.module is not None:
        found = _from_tree(a, line, col)
        if found is not None:
            return found
    tok = token_at(a.tokens, a.index.offset(line, col), ("NAME",))
    if tok is None:
        return None
    sec = section_at(sections(a.tokens), tok.offset)
    text = word_markdown(tok.value, a.program or program, sec.kind if sec else None)
    if text is None:
        return None
    rng = types.Range(
        start=a.index.position(tok.line - 1, tok.col - 1),
        end=a.index.position(tok.line - 1, tok.end_col - 1),
    )
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=text), range=rng
    )


def word_markdown(word: str, program: Program | None, section: str | None = None) -> str | None:
    """What any word of the language is: an op, builtin, definition, recipe word."""
    if section in ("train", "search"):
        text = _recipe_word(word, section)
        if text:
            return text
    found = program.definition(word) if program is not None else None
    if found is not None:
        return V.def_markdown(found)
    if word in V.OPS:
        return V.op_markdown(V.OPS[word])
    if word in V.BUILTIN_DOCS:
        return f"builtin `{word}`\n\n{V.BUILTIN_DOCS[word]}"
    if word in V.INITIALIZERS:
        return f"initialiser\n\n```dl\n{V.initializer_signature(word)}\n```"
    return None


def _recipe_word(word: str, section: str) -> str | None:
    if section == "train" and word in schema.KEYS:
        return V.recipe_key_doc(word)
    if section == "search" and word in V.SEARCH_FUNCTIONS:
        return f"`{word}`: {V.SEARCH_FUNCTIONS[word]}"
    if section == "search" and word in V.SETTINGS:
        return f"search setting `{word}`"
    fn = V.recipe_function(word)
    if fn is not None:
        return f"{fn.kind} \n\n```dl\n{V.recipe_signature(fn)}\n```\n\n{fn.doc}"
    return None


def _from_tree(a: Analysis, line: int, col: int) -> types.Hover | None:
    """Hover from the syntax tree: the innermost construct under the cursor that has
    something to say."""
    assert a.module is not None
    path = path_at(a.module, line, col, a.extents)
    if not path:
        return None
    d = path[0]
    for i in range(len(path) - 1, -1, -1):
        node, parent = path[i], path[i - 1] if i else None
        found = _node_hover(a, d, node, parent, line, col)
        if found is not None:
            return found
    return None


def _node_hover(a: Analysis, d: Any, node: Any, parent: Any, line: int, col: int):
    if isinstance(node, ast.Name):
        if isinstance(parent, ast.Call) and parent.func is node:
            return _layer(a, parent.span, node.id, node.span)
        if key(node.span) in a.layers or key(node.span) in a.scopes:  # `relu`, `| relu`
            return _layer(a, node.span, node.id, node.span)
        b = resolve(d, node.id, line, col) if not isinstance(d, ast.Import) else None
        if b is not None:
            return _binding(a, b, node.span)
        text = word_markdown(node.id, a.program, V.KIND_OF.get(type(d)))
        return _markdown(text, a, node.span) if text else None
    if isinstance(node, ast.Kwarg):
        s = node.span
        name_span = Span(s.source, s.line, s.col, s.line, s.col + len(node.name))
        if contains(name_span, line, col) and isinstance(parent, ast.Call):
            return _argument(a, parent, node, name_span)
        return None
    if isinstance(node, (ast.Param, ast.Assign, ast.Let, ast.InputDecl, ast.For, ast.Destructure)):
        for b in _bindings_of(d, node):
            if contains(b.span, line, col):
                return _binding(a, b, b.span)
    if isinstance(node, (ast.NetworkDef, ast.BlockDef, ast.FnDef, ast.TrainDef, ast.SearchDef)):
        if contains(node.span, line, col):  # a definition's span is its name's
            return _markdown(_def_with_totals(a, node), a, node.span)
        return None
    if key(node.span) in a.layers or key(node.span) in a.scopes:
        # Anything else that made layers: a call on its parentheses, `a + b`, a `residual`
        # statement (its sum), an input declaration.
        func = node.func if isinstance(node, ast.Call) else None
        callee = func.id if isinstance(func, ast.Name) else ""
        return _layer(a, node.span, callee, node.span)
    return None


def _bindings_of(d: Any, stmt: Any) -> list[Binding]:
    return [b for b in bindings(d) if b.stmt is stmt]


def _argument(a: Analysis, call: ast.Call, kw: ast.Kwarg, span: Span) -> types.Hover | None:
    if not isinstance(call.func, ast.Name):
        return None
    name = call.func.id
    text = None
    if name in V.OPS:
        text = V.arg_doc(V.OPS[name], kw.name)
    elif a.program is not None and name in a.program.blocks:
        for p in a.program.blocks[name].params:
            if p.name == kw.name:
                text = f"parameter of block `{name}`: `{V.param_text(p)}`"
    else:
        fn = V.recipe_function(name)
        if fn is not None:
            for p in fn.params:
                if p.name == kw.name:
                    shown = "required" if p.default is schema.REQUIRED else V.value_text(p.default)
                    text = f"`{name}({p.name}=…)`: {getattr(p.check, '__name__', '')} ({shown})"
    return _markdown(text, a, span) if text else None


# ---- layers --------------------------------------------------------------------------


def _layer(a: Analysis, span: Span, callee: str, shown: Span, title: str | None = None):
    """The layers a call made (several in loops, blocks called repeatedly, or several
    networks): the first one's shape, params and MACs, and how many there are."""
    parts: list[str] = []
    entries = a.layers.get(key(span), [])
    scopes = a.scopes.get(key(span), [])
    if entries:
        parts.append(_node_text(a, entries, title))
    elif scopes:
        parts.append(_scope_text(a, scopes, title))
    about = word_markdown(callee, a.program) if callee else None
    if about:
        parts.append(about)
    if not parts:
        return None
    return _markdown("\n\n---\n\n".join(parts), a, shown)


def _where(net: Network, partial: set[int], several: bool) -> str:
    text = f" (network {net.name})" if several else ""
    if id(net) in partial:
        text += " (elaborated up to an error)"
    return text


def _partial(a: Analysis) -> set[int]:
    return {id(c.network) for c in a.networks if c.partial}


def _node_text(a: Analysis, entries: list[tuple[Network, Node]], title: str | None) -> str:
    net, node = entries[0]
    several = len(a.networks) > 1
    name = title or node.name
    lines = [f"**{name}**: `{node.op}` → `{fmt_shape(node.type.shape)}` `{node.type.dtype}`"]
    lc = a.layer_count(net, node)
    if lc is not None:
        lines.append(f"params {_num(lc.params)} · MACs {_num(lc.macs)}")
    if title and title != node.name:
        lines.append(f"layer `{node.name}`")
    lines[-1] += _where(net, _partial(a), several)
    if len(entries) > 1:
        shapes = list(dict.fromkeys(fmt_shape(n.type.shape) for _, n in entries))
        more = f"×{len(entries)} layers from this call (the first shown)"
        if len(shapes) > 1:
            more += ": " + ", ".join(f"`{s}`" for s in shapes[:6])
            more += ", …" if len(shapes) > 6 else ""
        lines.append(more)
    return "  \n".join(lines)


def _scope_layers(net: Network, scope: Scope) -> list[Node]:
    return [n for n in net.graph.nodes if n.name.startswith(scope.prefix) and n.op != "input"]


def _scope_text(a: Analysis, scopes: list[tuple[Network, Scope]], title: str | None) -> str:
    """A block call, as the summary's row for it: the last layer's shape, the sums."""
    net, scope = scopes[0]
    layers = _scope_layers(net, scope)
    name = title or scope.prefix.rstrip(".")
    shape = f" → `{fmt_shape(layers[-1].type.shape)}`" if layers else ""
    lines = [f"**{name}**: block `{scope.block}({scope.args})`{shape}"]
    counts = [a.layer_count(net, n) for n in layers]
    if layers and all(c is not None for c in counts):
        params = sum(c.params for c in counts)
        macs = sum((c.macs for c in counts), 0)
        lines.append(f"params {_num(params)} · MACs {_num(macs)} · {len(layers)} layers")
    lines[-1] += _where(net, _partial(a), len(a.networks) > 1)
    if len(scopes) > 1:
        lines.append(f"×{len(scopes)} calls from here (the first shown)")
    return "  \n".join(lines)


def _result_span(value: Any) -> Span | None:
    """The span of the call whose layer a binding names: a pipeline's last stage."""
    if isinstance(value, ast.Pipe) and value.stages:
        return value.stages[-1].span
    return getattr(value, "span", None)


def _binding(a: Analysis, b: Binding, shown: Span, depth: int = 0) -> types.Hover | None:
    if b.kind == "assign" and isinstance(b.value, ast.Name) and depth < 8 and a.module:
        # `total = s`: the layer ``s`` names, if it names one
        d = enclosing_def(a.module, b.span.line, b.span.col, a.extents)
        target = resolve(d, b.value.id, b.value.span.line, b.value.span.col) if d else None
        if target is not None and target is not b:
            found = _binding(a, target, shown, depth + 1)
            if found is not None and target.kind in ("assign", "destructure", "input"):
                return found
    if b.kind == "input":
        entries = a.layers.get(key(b.stmt.span), [])
        if entries:
            return _markdown(_node_text(a, entries, b.name), a, shown)
    if b.kind in ("assign", "destructure") and b.value is not None:
        span = _result_span(b.value)
        if span is not None and (key(span) in a.layers or key(span) in a.scopes):
            entries = a.layers.get(key(span), [])
            if b.kind == "destructure" and len(entries) == len(b.stmt.names):
                entries = entries[b.stmt.names.index(b.name) :][:1]
            callee = ""
            call = b.value.stages[-1] if isinstance(b.value, ast.Pipe) else b.value
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                callee = call.func.id
            elif isinstance(call, ast.Name):
                callee = call.id
            if entries:
                text = _node_text(a, entries, b.name)
            else:
                text = _scope_text(a, a.scopes[key(span)], b.name)
            about = word_markdown(callee, a.program) if callee else None
            return _markdown(text + (f"\n\n---\n\n{about}" if about else ""), a, shown)
    value = V.source_text(b.value.span) if b.value is not None else ""
    value = " ".join(value.split())
    if len(value) > 200:
        value = value[:200] + " …"
    code = {
        "param": f"parameter {b.name}" + (f" = {value}" if value else ""),
        "let": f"let {b.name} = {value}",
        "for": f"for {b.name} in {value}",
        "input": f"input {b.name}",
    }.get(b.kind, f"{b.name} = {value}")
    where = f"{b.span.line}:{b.span.col}"
    return _markdown(f"```dl\n{code}\n```\n\nbound at {where}", a, shown)


def _def_with_totals(a: Analysis, d: Any) -> str:
    text = V.def_markdown(d)
    if isinstance(d, ast.NetworkDef):
        for c in a.networks:
            net = c.network
            if net.name != d.name or c.partial:
                continue
            try:
                ins = ", ".join(f"{n}: {t}" for n, t in net.inputs.items())
                outs = ", ".join(f"{n}: {t}" for n, t in net.outputs.items())
                text += (
                    f"\n\ninputs {ins}  \noutputs {outs}  \n"
                    f"params {_num(net.params)} · buffers {_num(net.buffers)} · "
                    f"MACs {_num(net.macs)}"
                )
            except Exception:  # counting failed: the signature alone
                pass
    return text
