"""dlc's front end: parse (grammar/dl.lark) -> elaborate (blocks, loops and conditionals
unrolled) -> IR (compiler.ir) -> shape inference (each op's rule, compiler.ops) ->
counting (compiler.counting). Backends (dlc.backends) lower the IR.

    from dlc.compiler import load
    net = load("specs/resnet18.dl")
    net.params, net.macs, print(net.summary())
"""

from .errors import DlcError, Span
from .network import Network, load, load_source

__all__ = ["DlcError", "Network", "Span", "load", "load_source"]
