"""The state of one network or block invocation, and the limits of unrolling."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Chain, Span

# Unrolling is eager, so runaway loops must stop with an error rather than exhaust memory.
MAX_UNROLL = 1_000_000
MAX_NODES = 2_000_000


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
