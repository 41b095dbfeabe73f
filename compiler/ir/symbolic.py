"""Symbolic integer dimensions.

A dimension is a Python ``int`` or a :class:`Sym`: an integer polynomial whose atoms are
symbols (``N``, ``T``) or floor divisions of a polynomial by a positive integer. Every
``Sym`` is kept in a canonical form, so two expressions that simplify to the same form
compare equal and hash alike; an arithmetic result that is constant comes back as an
``int``. The forms follow PyTorch's output-size formulas: a stride-2 convolution over
``T`` prints as ``(T - 1) // 2 + 1`` and two chained stride-2 pools fold to
``(T - 1) // 4 + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import reduce
from typing import Union

# A monomial is a sorted tuple of (atom, power); the constant monomial is ().
Monomial = tuple
Dim = Union[int, "Sym"]


class Atom:
    """A symbol or a floor division; atoms are ordered by ``key`` for canonical forms."""

    __slots__ = ("key", "_hash")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Atom) and self.key == other.key

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: Atom) -> bool:
        return self.key < other.key


class Var(Atom):
    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name
        self.key = (0, name)
        self._hash = hash(self.key)

    def evaluate(self, env: Mapping[str, int]) -> int:
        try:
            return env[self.name]
        except KeyError:
            raise KeyError(self.name) from None

    def __str__(self) -> str:
        return self.name


class FloorDiv(Atom):
    __slots__ = ("num", "den")

    def __init__(self, num: Sym, den: int):
        self.num, self.den = num, den
        self.key = (1, num._key, den)
        self._hash = hash(self.key)

    def evaluate(self, env: Mapping[str, int]) -> int:
        return evaluate(self.num, env) // self.den

    def __str__(self) -> str:
        num = str(self.num)
        return f"({num}) // {self.den}" if len(self.num.terms) > 1 else f"{num} // {self.den}"


class Sym:
    """A canonical integer polynomial over atoms (never a constant: those are ints)."""

    __slots__ = ("terms", "_key", "_hash")

    def __init__(self, terms: dict[Monomial, int]):
        self.terms = terms  # monomial -> non-zero coefficient
        self._key = tuple(sorted(terms.items(), key=_term_order))
        self._hash = hash(self._key)

    # -- construction -------------------------------------------------------------------
    @staticmethod
    def var(name: str) -> Sym:
        return Sym({((Var(name), 1),): 1})

    # -- arithmetic -----------------------------------------------------------------------
    def __add__(self, other: Dim) -> Dim:
        return _make(_add_terms(self.terms, _terms(other), 1))

    __radd__ = __add__

    def __sub__(self, other: Dim) -> Dim:
        return _make(_add_terms(self.terms, _terms(other), -1))

    def __rsub__(self, other: Dim) -> Dim:
        return _make(_add_terms(_terms(other), self.terms, -1))

    def __neg__(self) -> Dim:
        return _make({m: -c for m, c in self.terms.items()})

    def __mul__(self, other: Dim) -> Dim:
        return _make(_mul_terms(self.terms, _terms(other)))

    __rmul__ = __mul__

    def __floordiv__(self, other: Dim) -> Dim:
        if isinstance(other, int) and not isinstance(other, bool) and other > 0:
            return floordiv(self, other)
        raise TypeError(f"cannot divide the symbolic dim {self} by {other}")

    def __mod__(self, other: Dim) -> Dim:
        return self - (self // other) * other

    def __pow__(self, other: int) -> Dim:
        if not isinstance(other, int) or other < 0:
            raise TypeError(
                f"a symbolic dim can only be raised to a non-negative integer, got {other}"
            )
        return reduce(lambda a, b: a * b, [self] * other, 1)

    # -- comparison --------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    # -- inspection --------------------------------------------------------------------
    @property
    def symbols(self) -> frozenset[str]:
        out: set[str] = set()
        for mono in self.terms:
            for atom, _ in mono:
                out |= atom.num.symbols if isinstance(atom, FloorDiv) else {atom.name}
        return frozenset(out)

    def __str__(self) -> str:
        parts: list[tuple[int, str]] = []
        for mono, coeff in self._key:
            if mono == ():
                parts.append((coeff, str(abs(coeff))))
                continue
            factors = [
                _factor_str(atom, power, len(mono) > 1 or abs(coeff) != 1) for atom, power in mono
            ]
            body = "*".join(factors)
            parts.append((coeff, body if abs(coeff) == 1 else f"{abs(coeff)}*{body}"))
        out = ("-" if parts[0][0] < 0 else "") + parts[0][1]
        for coeff, text in parts[1:]:
            out += (" - " if coeff < 0 else " + ") + text
        return out

    def __repr__(self) -> str:
        return f"Sym({self})"


def _term_order(item: tuple[Monomial, int]):
    mono = item[0]
    # Highest-degree terms first, the constant last, atoms in key order.
    return (mono == (), -sum(p for _, p in mono), [a.key for a, _ in mono])


def _factor_str(atom: Atom, power: int, parenthesise: bool) -> str:
    text = str(atom)
    if isinstance(atom, FloorDiv) and (parenthesise or power > 1):
        text = f"({text})"
    return text if power == 1 else f"{text}**{power}"


def _terms(d: Dim) -> dict[Monomial, int]:
    if isinstance(d, Sym):
        return d.terms
    if isinstance(d, bool) or not isinstance(d, int):
        raise TypeError(f"expected an integer dimension, got {d!r}")
    return {(): d} if d else {}


def _add_terms(a: dict, b: dict, sign: int) -> dict:
    out = dict(a)
    for m, c in b.items():
        v = out.get(m, 0) + sign * c
        if v:
            out[m] = v
        else:
            out.pop(m, None)
    return out


def _mul_mono(a: Monomial, b: Monomial) -> Monomial:
    powers: dict[Atom, int] = dict(a)
    for atom, p in b:
        powers[atom] = powers.get(atom, 0) + p
    return tuple(sorted(powers.items()))


def _mul_terms(a: dict, b: dict) -> dict:
    out: dict[Monomial, int] = {}
    for ma, ca in a.items():
        for mb, cb in b.items():
            m = _mul_mono(ma, mb)
            v = out.get(m, 0) + ca * cb
            if v:
                out[m] = v
            else:
                out.pop(m, None)
    return out


def _make(terms: dict) -> Dim:
    if not terms:
        return 0
    if len(terms) == 1 and () in terms:
        return terms[()]
    return Sym(terms)


def floordiv(x: Dim, k: int) -> Dim:
    """``x // k`` for a positive integer ``k``, simplified exactly for integer symbols."""
    if isinstance(x, int):
        return x // k
    if k == 1:
        return x
    quotient: dict[Monomial, int] = {}
    rest: dict[Monomial, int] = {}
    for m, c in x.terms.items():
        if m == ():
            continue
        q, r = divmod(c, k)
        if q:
            quotient[m] = q
        if r:
            rest[m] = r
    const = x.terms.get((), 0)
    if not rest:
        return _make(_add_terms(quotient, {(): const // k}, 1))
    # Keep the constant left inside the floor in (-k, 0]: `(T - 1) // 2 + 1`, not `(T + 1) // 2`.
    q0 = -((-const) // k)
    const -= q0 * k
    if const:
        rest[()] = const
    if q0:
        quotient[()] = q0
    inner = Sym(rest)
    # (X // a + c) // b == (X + c*a) // (a*b) for positive integers a, b.
    nested = [(m, c) for m, c in rest.items() if m != ()]
    if len(nested) == 1 and nested[0][1] == 1 and len(nested[0][0]) == 1:
        atom, power = nested[0][0][0]
        if isinstance(atom, FloorDiv) and power == 1:
            return _make(
                _add_terms(
                    quotient,
                    _terms(floordiv(atom.num + rest.get((), 0) * atom.den, atom.den * k)),
                    1,
                )
            )
    return _make(_add_terms(quotient, {((FloorDiv(inner, k), 1),): 1}, 1))


def ceildiv(x: Dim, k: int) -> Dim:
    return floordiv(x + (k - 1), k)


def evaluate(d: Dim, env: Mapping[str, int]) -> int:
    """The value of ``d`` with every symbol bound by ``env`` (KeyError names a missing one)."""
    if isinstance(d, int):
        return d
    total = 0
    for mono, coeff in d.terms.items():
        v = coeff
        for atom, power in mono:
            v *= atom.evaluate(env) ** power
        total += v
    return total


def substitute(d: Dim, env: Mapping[str, int]) -> Dim:
    """``d`` with the symbols in ``env`` replaced by their values (others stay symbolic)."""
    if isinstance(d, int) or not (d.symbols & env.keys()):
        return d
    total: Dim = 0
    for mono, coeff in d.terms.items():
        v: Dim = coeff
        for atom, power in mono:
            if isinstance(atom, Var):
                a: Dim = env.get(atom.name, Sym.var(atom.name))
            else:
                a = floordiv(substitute(atom.num, env), atom.den)
            v = v * a**power if isinstance(a, Sym) else v * (a**power)
        total = total + v
    return total


def symbols(d: Dim) -> frozenset[str]:
    return d.symbols if isinstance(d, Sym) else frozenset()


def equal(a: Dim, b: Dim) -> bool | None:
    """True/False when ``a == b`` is decided for every value of the symbols, else None.

    A difference that is a non-zero constant can never be zero; a difference that simplifies
    to zero always is. Anything else (``H // 2`` against ``(H // 4)*2``) is undecided and
    becomes a run-time constraint.
    """
    if a == b:  # equal canonical forms: the difference is 0 (and is not worth building)
        return True
    diff = a - b
    if isinstance(diff, int):
        return diff == 0
    return None


def product(dims: Iterable[Dim]) -> Dim:
    # math.prod multiplies ints natively and, from the first Sym on, defers to Sym's own
    # arithmetic, exactly as a loop of ``out * d`` from 1 would.
    return math.prod(dims)


def fmt_shape(shape: Iterable[Dim]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
