"""``dlc summary``: the layer table (rich) and the JSON contract.

The table nests layers under the block calls that made them, folds consecutive calls of
one block that built identical layers (``basic ×2``), and ends with the totals. The JSON
is the machine contract: see ``to_json`` for its keys.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..ir.symbolic import Dim, Sym, fmt_shape
from .counting import LayerCount

if TYPE_CHECKING:
    from ..network import Network


def dim_json(d: Dim) -> int | str:
    return str(d) if isinstance(d, Sym) else d


def to_json(net: Network) -> dict[str, Any]:
    c = net.counts

    def tensors(types):
        return [
            {"name": n, "dtype": t.dtype, "shape": [dim_json(d) for d in t.shape]}
            for n, t in types.items()
        ]

    return {
        "network": net.name,
        "args": {
            k: v if isinstance(v, (int, float, str, bool)) else repr(v)
            for k, v in net.graph.args.items()
        },
        "inputs": tensors(net.inputs),
        "outputs": tensors(net.outputs),
        "params": c.params,
        "buffers": c.buffers,
        "macs": dim_json(c.macs),
        "weight_bytes": c.weight_bytes,
        "activation_bytes": dim_json(c.activation_bytes),
        "peak_activation_bytes": dim_json(c.peak_activation_bytes),
        "receptive_field": c.receptive_field,
        "constraints": [str(k) for k in net.graph.constraints],
        "layers": [
            {
                "name": lc.node.name,
                "op": lc.node.op,
                "shape": [dim_json(d) for d in lc.node.type.shape],
                "dtype": lc.node.type.dtype,
                "params": lc.params,
                "buffers": lc.buffers,
                "macs": dim_json(lc.macs),
                "line": lc.node.span.line if lc.node.span else None,
            }
            for lc in c.layers
            if lc.node.op != "input"
        ],
    }


def to_json_text(net: Network) -> str:
    return json.dumps(to_json(net), indent=2)


# ---- the table ---------------------------------------------------------------------


@dataclass
class _Group:
    """A block call (or the network itself) and what it contains, in order."""

    name: str
    block: str
    args: str
    items: list = field(default_factory=list)  # LayerCount or _Group
    count: int = 1  # consecutive identical calls folded into this one
    last: str = ""  # the name of the last call folded in

    def layers(self):
        for item in self.items:
            yield from (item.layers() if isinstance(item, _Group) else (item,))

    def signature(self, prefix_len: int) -> tuple:
        return (
            self.block,
            tuple(
                (
                    lc.node.name[prefix_len:],
                    lc.node.op,
                    lc.node.type,
                    tuple(lc.node.params.items()),
                    tuple(lc.node.attrs.items()),
                )
                for lc in self.layers()
            ),
        )


def _tree(net: Network) -> _Group:
    root = _Group(net.name, "network", "")
    groups = {"": root}
    scopes = {s.prefix: s for s in net.graph.scopes}
    for lc in net.counts.layers:
        if lc.node.op == "input":
            continue
        parent = root
        prefix = ""
        for part in lc.node.name.split(".")[:-1]:
            prefix += part + "."
            if prefix not in groups:
                s = scopes.get(prefix)
                group = _Group(part, s.block if s else "", s.args if s else "")
                parent.items.append(group)
                groups[prefix] = group
            parent = groups[prefix]
        parent.items.append(lc)
    _fold(root)
    return root


def _fold(group: _Group) -> None:
    folded: list = []
    for item in group.items:
        if isinstance(item, _Group):
            _fold(item)
            prev = folded[-1] if folded else None
            if (
                isinstance(prev, _Group)
                and prev.block == item.block
                and prev.signature(len(prev.name)) == item.signature(len(item.name))
            ):
                prev.count += 1
                prev.last = item.name
                continue
        folded.append(item)
    group.items = folded


def _num(n: Dim) -> str:
    return f"{n:,}" if isinstance(n, int) else str(n)


def _si(n: Dim, unit: str = "") -> str:
    if isinstance(n, Sym):
        return str(n)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {suffix}{unit}"
    return f"{n} {unit}".strip()


def _bytes(n: Dim) -> str:
    if isinstance(n, Sym):
        return f"({n}) B"
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return f"{n / scale:.2f} {suffix}"
    return f"{n} B"


def to_table_text(net: Network, depth: int | None = None, width: int = 120) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{net.name}({', '.join(f'{k}={v}' for k, v in net.graph.args.items())})",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("layer", no_wrap=True)
    table.add_column("op")
    table.add_column("output shape")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")

    def add(group: _Group, level: int) -> None:
        for item in group.items:
            indent = "  " * level
            if isinstance(item, LayerCount):
                table.add_row(
                    indent + item.node.name.rsplit(".", 1)[-1],
                    item.node.op,
                    fmt_shape(item.node.type.shape),
                    _num(item.params),
                    _si(item.macs),
                )
                continue
            layers = list(item.layers())
            params = sum(lc.params for lc in layers) * item.count
            macs = sum((lc.macs for lc in layers), 0) * item.count
            times = f" ×{item.count}" if item.count > 1 else ""
            name = f"{item.name}…{item.last.rsplit('_', 1)[-1]}" if item.count > 1 else item.name
            table.add_row(
                f"[bold]{indent}{name}[/]",
                f"[bold]{item.block}{times}[/]",
                fmt_shape(layers[-1].node.type.shape) if layers else "",
                _num(params),
                _si(macs),
                style="",
            )
            if depth is None or level + 1 < depth:
                add(item, level + 1)

    add(_tree(net), 0)
    c = net.counts
    lines = [
        f"inputs:          {', '.join(f'{n}: {t}' for n, t in net.inputs.items())}",
        f"outputs:         {', '.join(f'{n}: {t}' for n, t in net.outputs.items())}",
        f"params:          {c.params:,} (all trainable)",
        f"buffers:         {c.buffers:,}",
        f"MACs / example:  {_num(c.macs)}"
        + (f" ({_si(c.macs)})" if isinstance(c.macs, int) else ""),
        f"weights:         {_bytes(c.weight_bytes)}",
        f"activations:     {_bytes(c.activation_bytes)} per example, "
        f"peak {_bytes(c.peak_activation_bytes)} live (inference)",
    ]
    if c.receptive_field is not None:
        lines.append(f"receptive field: {c.receptive_field} steps")
    for k in net.graph.constraints:
        lines.append(f"constraint:      {k}")
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=False, color_system=None)
    console.print(table)
    console.print("\n".join(lines), highlight=False, markup=False)
    return out.getvalue()
