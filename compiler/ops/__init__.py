"""The op registry: one module per op family, each op registered once into ``OPS``."""

from . import (  # noqa: F401
    activation,
    attention,
    conv,
    dense,
    merge,
    norm,
    pool,
    rearrange,
    recurrent,
    shape,
    tensor,
)
from .base import OPS, Op

__all__ = ["OPS", "Op"]
