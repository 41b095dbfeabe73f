"""Argument binding: positional and keyword arguments matched to a signature, validated
and normalised by its ``Arg`` kinds; initialiser calls."""

from __future__ import annotations

from typing import Any

from ..errors import DlcError, Span
from ..ir.graph import Init
from ..ir.initializers import INITIALIZERS
from ..ops.base import Arg, ArgError, Kind, Signature
from .frame import Frame
from .values import POISON, Callee, Poison, describe, suggest

_INIT_SIGNATURES = {name: Signature(args) for name, args in INITIALIZERS.items()}
# Argument values whose conversions are remembered (see ``_convert``): not floats, as
# 0.0 and -0.0 are one key but print differently.
_REMEMBERED = (int, bool, str)
_UNSEEN = object()


class Poisoned(Exception):
    """An argument depends on an error already reported: skip the call quietly."""


class Binding:
    """Binding call arguments (a mixin of ``Elaborator``)."""

    def bind_args(self, what: str, sig: Signature, span: Span, args, kwargs) -> dict[str, Any]:
        """Match positional and keyword arguments to a signature: {name: (value, span)}, where
        arguments left out are absent (their defaults are ``sig.defaults``)."""
        positional = sig.positional
        if sig.variadic is not None:
            bound = {sig.variadic.name: (tuple(v for v, _ in args), args[0][1] if args else span)}
        else:
            if len(args) > len(positional):
                if not positional:
                    raise DlcError(f"{what} takes no arguments", args[0][1])
                raise DlcError(
                    f"{what} takes at most {len(positional)} positional argument"
                    f"{'s' if len(positional) != 1 else ''}, got {len(args)}",
                    args[len(positional)][1],
                )
            bound = dict(zip(sig.names, args))  # (no variadic: the names are the positions)
        bad = []  # every bad keyword of the call is reported, not only the first
        for k, (v, s) in kwargs.items():
            if k not in sig.names:
                bad.append(
                    DlcError(
                        f"{what} has no argument '{k}'"
                        + suggest(k, sig.names)
                        + (f" (arguments: {', '.join(sig.names)})" if sig.names else ""),
                        s,
                    )
                )
            elif k in bound:
                bad.append(
                    DlcError(f"{what}: argument '{k}' given both by position and by name", s)
                )
            else:
                bound[k] = (v, s)
        if bad:
            raise DlcError.group(bad)
        for name in sig.required:
            if name not in bound:
                raise DlcError(f"{what} is missing its argument '{name}'", span)
        return bound

    def check_args(self, what: str, sig: Signature, bound) -> dict:
        """The call's attributes in signature order (the IR prints them so): the given
        arguments validated and normalised, the others at their defaults (``bind_args``
        has bound every argument that has none)."""
        attrs = sig.template.copy()
        for p in sig.args:  # in order: of two bad arguments, the first is reported
            if p.name in bound:
                value, vspan = bound[p.name]
                attrs[p.name] = self._check_arg(what, p, value, vspan)
        return attrs

    def _check_arg(self, what: str, p: Arg, value: Any, span: Span) -> Any:
        if isinstance(value, Poison) or (isinstance(value, tuple) and POISON in value):
            raise Poisoned
        if value is None and p.default is None:  # `none`: as if the argument were left out
            return None
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, Callee) and value.kind == "init":
            value = Init(value.name)
        try:
            if type(value) in _REMEMBERED:
                return self._convert(p.kind, value)
            return p.kind(value)
        except ArgError as exc:
            raise DlcError(
                f"{what}: argument '{p.name}' must be {exc}, got {describe(value)}", span
            ) from None

    def _convert(self, kind: Kind, value: Any) -> Any:
        """``kind(value)``, worked out once per elaboration: the same few values recur in
        every block (``bias=false``, ``stride=2``), and a conversion is a pure function."""
        key = (id(kind), type(value), value)
        out = self.conversions.get(key, _UNSEEN)
        if out is _UNSEEN:
            out = self.conversions[key] = kind(value)
        return out

    def make_init(self, name: str, span: Span, args, kwargs) -> Init:
        sig = _INIT_SIGNATURES[name]
        bound = self.bind_args(name, sig, span, args, kwargs)
        try:
            attrs = self.check_args(name, sig, bound)
        except Poisoned:
            raise DlcError(f"{name}: argument depends on an earlier error", span) from None
        return Init(name, tuple((k, attrs[k]) for k in sig.names if k in bound))

    def eval_init(self, expr, frame: Frame) -> Init:
        v = self.eval(expr, frame)
        if isinstance(v, Callee) and v.kind == "init":
            v = Init(v.name)
        if not isinstance(v, Init):
            raise DlcError(
                f"expected an initialiser ({', '.join(INITIALIZERS)}), got {describe(v)}", expr.span
            )
        return v
