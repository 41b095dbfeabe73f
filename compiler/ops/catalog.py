"""The registry as documentation: each op's signature, defaults and one-line doc, for
``dlc ops`` (text, JSON) and the generated op index of docs/language.md (Markdown).

Everything here is read off the ``Op`` classes, so the listing cannot drift from what the
compiler accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .base import OPS, REQUIRED, Arg, Op

_FAMILY = "dlc.compiler.ops."


def description(op: Op) -> str:
    """The first paragraph of the op's docstring on one line, without reST markup."""
    text = (op.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(text.replace("``", "`").split())


def doc_line(op: Op) -> str:
    """The description's first sentence."""
    text = description(op)
    end = re.search(r"[.;:](\s|$)", text)
    return text[: end.start() + 1].rstrip(";:") if end else text


def _value(v: Any) -> str:
    """A default as .dl source writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(map(_value, v)) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def _arg(a: Arg) -> str:
    if a.variadic:
        return f"{a.name}..."
    if a.default is REQUIRED:
        return a.name
    if a.default is None:  # optional without a value of its own (its doc says what then)
        return f"[{a.name}]"
    return f"{a.name}={_value(a.default)}"


def signature(op: Op) -> str:
    """``conv2d(filters, kernel, stride=1, ...)``: what a call may pass besides tensors."""
    return f"{op.name}({', '.join(_arg(a) for a in op.signature)})"


def _inputs(op: Op) -> str:
    lo, hi = op.n_inputs
    if hi is None:
        return f"{lo} or more"
    return str(lo) if lo == hi else f"{lo} to {hi}"


def record(op: Op) -> dict[str, Any]:
    """One op as plain data (the JSON of ``dlc ops --format json``)."""
    return {
        "name": op.name,
        "family": type(op).__module__.removeprefix(_FAMILY),
        "signature": signature(op),
        "doc": doc_line(op),
        "description": description(op),
        "inputs": {"min": op.n_inputs[0], "max": op.n_inputs[1]},
        "layout": op.layout,
        "arguments": [
            {
                "name": a.name,
                "accepts": a.kind.describe if a.kind is not None else "",
                "required": a.default is REQUIRED,
                "default": None if a.default is REQUIRED else a.default,
                "variadic": a.variadic,
                "doc": a.doc,
            }
            for a in op.signature
        ],
    }


def _ordered() -> list[Op]:
    """By family (module), then by name."""
    return sorted(OPS.values(), key=lambda op: (type(op).__module__, op.name))


def as_json() -> str:
    return json.dumps([record(op) for op in _ordered()], indent=2, default=_value)


def as_text() -> str:
    """Each op's signature and doc, grouped by family."""
    lines: list[str] = []
    family = None
    for op in _ordered():
        if type(op).__module__ != family:
            family = type(op).__module__
            lines += [*([""] if lines else []), f"{family.removeprefix(_FAMILY)}:"]
        lines += [f"  {signature(op)}", f"      {doc_line(op)}"]
    return "\n".join(lines)


def as_markdown() -> str:
    """The op index table of docs/language.md."""
    rows = ["| op | call | tensor inputs | what it does |", "| --- | --- | --- | --- |"]
    for op in _ordered():
        doc = doc_line(op).replace("|", "\\|")
        rows.append(f"| `{op.name}` | `{signature(op)}` | {_inputs(op)} | {doc} |")
    return "\n".join(rows)


_INDEX = re.compile(r"(<!-- ops:begin[^>]*-->\n)(.*?)(\n<!-- ops:end -->)", re.S)


def update_index(path: str) -> bool:
    """Rewrite the op index between the ``ops:begin``/``ops:end`` markers of a Markdown
    file; whether it changed."""
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    if not _INDEX.search(text):
        raise SystemExit(f"{path}: no <!-- ops:begin --> / <!-- ops:end --> markers")
    new = _INDEX.sub(lambda m: m.group(1) + as_markdown() + m.group(3), text)
    Path(path).write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":  # python -m dlc.compiler.ops.catalog docs/language.md
    import sys

    for arg in sys.argv[1:]:
        print(f"{arg}: {'updated' if update_index(arg) else 'up to date'}")
