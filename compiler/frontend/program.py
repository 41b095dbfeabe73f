"""Loading .dl files: parse, follow imports (relative to the importing file), and collect
every block and network into one namespace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DlcError, Source, Span
from . import ast
from .parser import parse


@dataclass
class Program:
    """All the blocks, networks, functions and training recipes visible from a root file
    (its imports included): one namespace."""

    root: str
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    functions: dict[str, ast.FnDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef] = field(default_factory=dict)
    root_networks: list[str] = field(default_factory=list)  # declared in the root file
    recipes: dict[str, ast.TrainDef] = field(default_factory=dict)
    root_recipes: list[str] = field(default_factory=list)
    searches: dict[str, ast.SearchDef] = field(default_factory=dict)
    root_searches: list[str] = field(default_factory=list)

    def definition(self, name: str):
        """The block, network, fn, train or search section of that name, or None (one
        namespace: a name is defined once)."""
        for table in (self.blocks, self.networks, self.functions, self.recipes, self.searches):
            if name in table:
                return table[name]
        return None


# kind -> (the root file's names, every name, what messages call one, its flag)
_SECTIONS = {
    "network": ("root_networks", "networks", "network", "--network"),
    "train": ("root_recipes", "recipes", "train section", "--recipe"),
    "search": ("root_searches", "searches", "search section", "--search"),
}


def select(program: Program, kind: str, name: str | None) -> str:
    """The network / train / search section ``name`` of ``program``, or the root file's
    only one when ``name`` is None; a DlcError (without a place) saying what to choose."""
    from ..elaborate.values import suggest

    roots, table, word, flag = _SECTIONS[kind]
    names = getattr(program, roots)
    if name is None:
        if len(names) == 1:
            return names[0]
        if not names:
            raise DlcError(f"{program.root} defines no {word}")
        raise DlcError(
            f"{program.root} defines several {word}s ({', '.join(names)}); choose one with {flag}"
        )
    if name not in getattr(program, table):
        raise DlcError(
            f"no {word} '{name}' in {program.root}"
            + suggest(name, names)
            + f" ({word}s: {', '.join(names) or 'none'})"
        )
    return name


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
        text = read_source(path)
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
            what = "it is a directory" if target.is_dir() else "no such file"
            errors.append(DlcError(f"cannot import '{imp.path}': {what} ({target})", imp.span))
            continue
        try:
            _load(target, None, program, (*stack, resolved), errors, seen=seen)
        except DlcError as err:
            errors.extend(err.errors)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            errors.append(DlcError(f"cannot import '{imp.path}': {reason} ({target})", imp.span))
    from ..ops import OPS

    for kind, defs in (
        ("block", module.blocks),
        ("fn", module.functions),
        ("train", module.trains),
    ):
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
        ("train", program.recipes, module.trains),
        ("search", program.searches, module.searches),
    ):
        for d in defs:
            other = program.definition(d.name)
            if other is not None:
                errors.append(
                    DlcError(f"{kind} '{d.name}' is already defined at {other.span}", d.span)
                )
                continue
            table[d.name] = d
            if root and kind == "network":
                program.root_networks.append(d.name)
            elif root and kind == "train":
                program.root_recipes.append(d.name)
            elif root and kind == "search":
                program.root_searches.append(d.name)


def read_source(path: Path) -> str:
    """A source file's text: UTF-8 (a byte-order mark is allowed, and dropped by the
    parser); anything else is a located error at the first byte that is not text."""
    if path.is_dir():
        raise DlcError(f"{path} is a directory, not a .dl file")
    data = path.read_bytes()
    try:
        text, bad = data.decode("utf-8"), len(data)
    except UnicodeDecodeError as exc:
        text, bad = data.decode("utf-8", errors="replace"), exc.start  # the text to show
        why = f"byte 0x{data[bad]:02x} is not UTF-8 (save the file as UTF-8)"
    nul = data.find(b"\0", 0, bad)  # valid UTF-8, but a sign of a binary file
    if nul >= 0:
        bad, why = nul, "it holds a NUL byte (is it a binary file?)"
    if bad < len(data):
        pos = len(data[:bad].decode("utf-8"))  # in characters
        line = text.count("\n", 0, pos) + 1
        col = pos - text.rfind("\n", 0, pos)
        span = Span(Source(str(path), text), line, col, line, col + 1)
        raise DlcError(f"{path.name} is not UTF-8 text: {why}", span)
    return text
