"""The compiled network: the public face of the front end (``dlc.compiler.load``)."""

from __future__ import annotations

import gc
from collections.abc import Mapping
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

from .analysis.counting import Counts, count
from .elaborate.elaborator import elaborate
from .errors import DlcError, DlcWarning
from .frontend.program import Program, load_program, select
from .ir.graph import Graph, TensorType
from .ir.symbolic import Dim


class Network:
    """One network of a .dl program, elaborated to IR, with shapes and counts."""

    def __init__(self, graph: Graph, program: Program):
        self.graph = graph
        self.program = program

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def inputs(self) -> dict[str, TensorType]:
        return {n: self.graph.node(n).type for n in self.graph.inputs}

    @property
    def outputs(self) -> dict[str, TensorType]:
        return {n: self.graph.node(n).type for n in self.graph.outputs}

    @cached_property
    def warnings(self) -> list[DlcWarning]:
        """Located warnings: layers that reach no output."""
        from .analysis.usage import unused_layers

        return unused_layers(self.graph)

    @cached_property
    def counts(self) -> Counts:
        with _no_gc():  # as compiling: many small objects, none in cycles
            return count(self.graph)

    @property
    def params(self) -> int:
        """Trainable parameters: PyTorch's ``sum(p.numel() for p in m.parameters())``."""
        return self.counts.params

    @property
    def buffers(self) -> int:
        return self.counts.buffers

    @property
    def macs(self) -> Dim:
        """Multiply-accumulates per example: an int, or a formula in unbound symbolic dims."""
        return self.counts.macs

    def ir(self) -> str:
        return self.graph.format()

    def summary(self, format: str = "table", depth: int | None = None) -> str:
        """The summary as text: a rich table (``format="table"``) or JSON (``"json"``)."""
        from .analysis import summary

        if format == "json":
            return summary.to_json_text(self)
        return summary.to_table_text(self, depth=depth)

    def draw(self, format: str = "svg", depth: int | None = None) -> str:
        """The network's diagram as SVG, DOT or HTML text (``dlc draw``)."""
        from ..diagram import render

        return render(self, format, depth=depth)

    def _repr_svg_(self) -> str:  # Jupyter: the diagram
        return self.draw("svg", depth=1)

    def _repr_html_(self) -> str:  # Jupyter: the summary table, then the diagram
        from ..diagram import notebook_html

        return notebook_html(self)

    def __repr__(self) -> str:
        return f"<Network {self.name}: {self.params:,} params, macs={self.macs}>"


def load(
    path: str | Path,
    network: str | None = None,
    *,
    dims: Mapping[str, int] | None = None,
    **overrides: Any,
) -> Network:
    """Compile ``network`` of the .dl file at ``path`` (the only one, if None).

    ``overrides`` set network parameters (``classes=10``); ``dims`` binds symbolic dims of
    the inputs (``{"T": 128}``). Raises DlcError, whose ``str()`` is the located message.
    """
    with _no_gc():
        try:
            program = load_program(path)
        except OSError as exc:
            raise DlcError(f"cannot read {path}: {exc.strerror or exc}") from None
        return _compile(program, network, dims, overrides)


def load_source(
    text: str,
    network: str | None = None,
    *,
    path: str = "<string>",
    dims: Mapping[str, int] | None = None,
    **overrides: Any,
) -> Network:
    """As ``load``, from source text (imports resolve relative to ``path``)."""
    with _no_gc():
        return _compile(load_program(path, text), network, dims, overrides)


@contextmanager
def _no_gc():
    """Compiling allocates many small objects and frees none of them in cycles; Python's
    cyclic collector would rescan them all again and again (time growing faster than the
    network), so it waits until the compile is done."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compile(program: Program, network: str | None, dims, overrides) -> Network:
    name = select(program, "network", network)
    return Network(elaborate(program, name, overrides, dims), program)
