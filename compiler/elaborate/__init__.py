"""Elaboration: a program's AST -> a flat IR graph (blocks called, loops and conditionals
unrolled, each op's shape rule applied)."""

from .elaborator import constant, elaborate

__all__ = ["constant", "elaborate"]
