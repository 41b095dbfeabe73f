"""The op registry: one module per op family, each op registered once into ``OPS``."""

from . import activation, attention, conv, dense, merge, norm, pool, recurrent, shape  # noqa: F401
from .base import OPS, Op

__all__ = ["OPS", "Op"]
