"""Loading .dl files: parse, follow imports (relative to the importing file), and collect
every block and network into one namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DlcError
from . import ast
from .parser import parse


@dataclass
class Program:
    """All the blocks, networks and functions visible from a root file (its imports
    included): one namespace."""

    root: str
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    functions: dict[str, ast.FnDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    root_networks: list[str] = field(default_factory=list)  # declared in the root file


def load_program(path: str | Path, text: str | None = None) -> Program:
    """Parse ``path`` (or ``text`` under that name) and everything it imports."""
    program = Program(str(path))
    errors: list[DlcError] = []
    _load(Path(path), text, program, (), errors, root=True)
    if errors:
        raise DlcError.group(errors)
    return program


def _load(
    path: Path,
    text: str | None,
    program: Program,
    stack: tuple[Path, ...],
    errors: list[DlcError],
    root: bool = False,
    seen: set | None = None,
) -> None:
    seen = set() if seen is None else seen
    if text is None:
        text = path.read_text(encoding="utf-8")
    module = parse(text, str(path))
    resolved = path.resolve()
    seen.add(resolved)
    for imp in module.imports:
        target = path.parent / imp.path
        key = target.resolve()
        if key in (*stack, resolved):
            chain = " -> ".join(p.name for p in (*stack, resolved, key))
            errors.append(DlcError(f"import cycle: {chain}", imp.span))
            continue
        if key in seen:
            continue
        if not target.is_file():
            errors.append(
                DlcError(f"cannot import '{imp.path}': no such file ({target})", imp.span)
            )
            continue
        try:
            _load(target, None, program, (*stack, resolved), errors, seen=seen)
        except DlcError as err:
            errors.extend(err.errors)
    from ..ops import OPS

    for kind, defs in (("block", module.blocks), ("fn", module.functions)):
        for d in defs:
            if d.name in OPS:
                errors.append(
                    DlcError(
                        f"{kind} '{d.name}' has the name of a built-in op; choose another name",
                        d.span,
                    )
                )
    for kind, table, defs in (
        ("block", program.blocks, module.blocks),
        ("network", program.networks, module.networks),
        ("fn", program.functions, module.functions),
    ):
        for d in defs:
            other = (
                program.blocks.get(d.name)
                or program.networks.get(d.name)
                or program.functions.get(d.name)
            )
            if other is not None:
                errors.append(
                    DlcError(f"{kind} '{d.name}' is already defined at {other.span}", d.span)
                )
                continue
            table[d.name] = d
            if root and kind == "network":
                program.root_networks.append(d.name)
