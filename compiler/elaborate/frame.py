"""The state of one network or block invocation, and the limits of unrolling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Chain, DlcError, Span

# Unrolling is eager, so runaway programs must stop with an error rather than exhaust time
# or memory. MAX_UNROLL bounds both the iterations of the innermost body of nested loops
# (checked as each loop starts, so that loops nested in loops fail at once) and the work of
# a whole elaboration: statements run by loops, block bodies expanded and fn calls.
MAX_UNROLL = 1_000_000
MAX_NODES = 2_000_000
# Block and fn calls nested deeper than this are refused (block recursion is an error
# anyway); each level costs a dozen Python frames, of the 1,000 Python allows.
MAX_CALL_DEPTH = 40


class Overrun(DlcError):
    """A limit on the whole elaboration (MAX_UNROLL, MAX_NODES) was crossed: it stops the
    elaboration, since carrying on past the failed statement would only cross it again."""


class Frame:
    """One network or block invocation: its names, current value and naming scope."""

    def __init__(
        self,
        prefix: str,
        env: dict,
        current: Any,
        chain: Chain,
        inits: Mapping,
        stack: tuple[str, ...],
        is_network: bool,
    ):
        self.prefix, self.env, self.current, self.chain = prefix, env, current, chain
        self.input = current
        self.inits = inits
        self.stack = stack
        self.is_network = is_network
        self.counters: dict[str, int] = {}
        self.outputs: list[tuple[Any, Span]] = []
