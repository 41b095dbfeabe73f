"""What an op is: an argument schema, a shape rule, parameter shapes and a MAC rule.

Each op is one ``Op`` subclass instance in the registry ``OPS``; a family of ops (conv,
pooling, recurrent, ...) lives in one module of this package. The argument schema is
declared once, as a tuple of ``Arg``; it validates and normalises the call's arguments,
and the docs and error messages are generated from it. Shape rules work on symbolic dims
(compiler.ir.symbolic) and report problems by raising ``ShapeError`` with the arithmetic
behind them; the elaborator adds the source span and block call chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ShapeError
from ..ir.graph import FLOAT_DTYPES, Init, Param, TensorType
from ..ir.symbolic import Dim, Sym, equal, fmt_shape, product

REQUIRED = object()

ROLE_DEFAULTS = {
    "weight": Init("kaiming_uniform", (("a", math.sqrt(5)),)),
    "table": Init("normal", (("mean", 0.0), ("std", 1.0))),
    "scale": Init("ones"),
    "shift": Init("zeros"),
    "stat_mean": Init("zeros"),
    "stat_var": Init("ones"),
    "stat_count": Init("zeros"),
    "param": Init("zeros"),
}


class ArgError(Exception):
    """An argument value outside its constraint; the message is the constraint."""


@dataclass(frozen=True)
class Kind:
    """A validator of argument values: ``describe`` is the constraint in words."""

    describe: str
    convert: Callable[[Any], Any]

    def __call__(self, value: Any) -> Any:
        out = self.convert(value)
        if out is _BAD:
            raise ArgError(self.describe)
        return out


_BAD = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(min: int | None = None) -> Kind:
    words = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}
    describe = words.get(min, f"an integer >= {min}")
    return Kind(describe, lambda v: v if _is_int(v) and (min is None or v >= min) else _BAD)


def ints(n: int, min: int | None = None) -> Kind:
    """An integer, or a tuple of ``n`` integers; normalised to the tuple."""
    one = integer(min)

    def convert(v):
        if _is_int(v):
            v = (v,) * n
        if isinstance(v, (tuple, list)) and len(v) == n and all(_is_int(x) for x in v):
            if min is None or all(x >= min for x in v):
                return tuple(v)
        return _BAD

    return Kind(f"{one.describe} or a tuple of {n}" if n > 1 else one.describe, convert)


def real(
    lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False
) -> Kind:
    if lo is not None and hi is not None:
        describe = f"a number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo is not None:
        describe = f"a number {'>' if lo_open else '>='} {lo}"
    else:
        describe = "a number"

    def convert(v):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return _BAD
        if lo is not None and (v < lo or (lo_open and v == lo)):
            return _BAD
        if hi is not None and (v > hi or (hi_open and v == hi)):
            return _BAD
        return float(v)

    return Kind(describe, convert)


BOOL = Kind("true or false", lambda v: v if isinstance(v, bool) else _BAD)


def choice(*options: str) -> Kind:
    return Kind(
        "one of " + ", ".join(f'"{o}"' for o in options), lambda v: v if v in options else _BAD
    )


def padding(n: int) -> Kind:
    """An integer, a tuple of ``n``, "same" or "valid"."""
    as_ints = ints(n, 0)

    def convert(v):
        if v in ("same", "valid"):
            return v
        try:
            return as_ints(v)
        except ArgError:
            return _BAD

    return Kind(f'a non-negative integer, a tuple of {n}, "same" or "valid"', convert)


INIT = Kind(
    "an initialiser such as xavier_uniform or normal(0, 0.02)",
    lambda v: v if v is None or isinstance(v, Init) else _BAD,
)


@dataclass(frozen=True)
class Arg:
    name: str
    kind: Kind
    default: Any = REQUIRED
    doc: str = ""
    variadic: bool = False  # takes all remaining positional arguments (reshape's dims)


# Arguments every layer with weights accepts: per-layer initialisers (LANGUAGE §6).
INIT_ARGS = (
    Arg("init", INIT, None, "initialiser of the weight"),
    Arg("bias_init", INIT, None, "initialiser of the bias"),
)


@dataclass(frozen=True)
class Require:
    """What an op requires at run time of its input ``input`` beyond its type: that the
    size of ``axis`` (or, with ``axis`` None, every value) lies in ``[lo, hi]``. ``what``
    names the quantity and ``bound`` the argument behind the limit, for the message
    ("token id 7 is out of range for vocab=5"). runtime/inputs.py checks these on arrival,
    for every backend."""

    input: int
    axis: int | None
    lo: int
    hi: int
    what: str
    bound: str


class InferCtx:
    """What a shape rule may call besides raising: record equalities it cannot decide."""

    __slots__ = ("constraints",)

    def __init__(self) -> None:
        self.constraints: list[tuple[Dim, Dim, str]] = []

    def same(self, a: Dim, b: Dim, what: str) -> None:
        """Require ``a == b``; an undecidable equality becomes a run-time constraint."""
        verdict = equal(a, b)
        if verdict is False:
            raise ShapeError(f"{what}: {a} != {b}")
        if verdict is None:
            self.constraints.append((a, b, what))


def literal(value: Any, name: str = "") -> str:
    """A literal of emitted torch source; ``name`` says what it is, should it vary."""
    if isinstance(value, str) and '"' not in value and "\\" not in value:
        return f'"{value}"'  # the quotes ruff format writes
    return repr(value)


def short(v: Any) -> Any:
    """``(3, 3)`` -> ``3``: a per-axis tuple as PyTorch takes it when all axes agree."""
    if isinstance(v, tuple) and v and all(x == v[0] and _is_int(x) for x in v):
        return v[0]
    return v


def given(defaults: Mapping[str, Any], **kwargs: Any) -> dict[str, Any]:
    """``kwargs`` (``short``-ened) without those equal to their PyTorch default."""
    out = {k: short(v) for k, v in kwargs.items()}
    return {k: v for k, v in out.items() if k not in defaults or v != defaults[k]}


class Op:
    """One primitive op. Subclasses set ``name``, ``signature`` and the rules below."""

    name: ClassVar[str] = ""
    signature: ClassVar[tuple[Arg, ...]] = ()
    n_inputs: ClassVar[tuple[int, int | None]] = (1, 1)  # min and max tensor inputs
    layout: ClassVar[str] = ""  # the input layout in words, for rank errors
    # Which input axes may vary at run time (stay symbolic): "sequence" is axis 1 of
    # [N, T, D], "spatial" the axes after [N, C]; "" the op has no such axes of its own.
    lengths: ClassVar[str] = ""
    # Each output step depends only on the same step of the inputs (along the last axis of
    # a [N, C, L] signal): the receptive field passes through unchanged.
    pointwise: ClassVar[bool] = False
    sig: Signature  # the signature prepared for binding, set by ``register``
    defaults: dict[str, Any]  # its normalised defaults

    def normalize(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """Cross-argument checks and normal forms (raise ArgError naming the argument)."""
        return attrs

    def infer(self, ctx: InferCtx, a: Mapping[str, Any], *xs: TensorType) -> TensorType:
        raise NotImplementedError

    def params(self, a: Mapping[str, Any], *xs: TensorType) -> dict[str, Param]:
        return {}

    def default_inits(self, a: Mapping[str, Any], params: Mapping[str, Param]) -> dict[str, Init]:
        """PyTorch's default initialiser of each parameter, by role (``reset_parameters``):
        weights kaiming_uniform(a=sqrt(5)), biases uniform(+-1/sqrt(fan_in of the weight)),
        norm scales ones and shifts zeros, embedding tables normal(0, 1), statistics 0/1."""
        out = {}
        for name, p in params.items():
            if p.role == "bias":
                weight = params[name.replace("bias", "weight")].shape
                bound = 1 / math.sqrt(weight[1] * math.prod(weight[2:]))
                out[name] = Init("uniform", (("a", -bound), ("b", bound)))
            else:
                out[name] = ROLE_DEFAULTS[p.role]
        return out

    def receptive(
        self, a: Mapping[str, Any], field: int, jump: int, *xs: TensorType
    ) -> tuple[int, int] | None:
        """The (receptive field, jump) of one output step along the last axis of a
        [N, C, L] signal, given the input's: steps of the original input that one step
        sees, and how far apart adjacent steps' windows are. None: the op ends the 1-D
        stack (compiler/analysis/counting.py stops following it)."""
        return (field, jump) if self.pointwise else None

    def requires(self, a: Mapping[str, Any], *xs: TensorType) -> tuple[Require, ...]:
        """The run-time requirements on the inputs' sizes and values that their types cannot
        express (an index within a table, a length within a precomputed one)."""
        return ()

    def macs(self, a: Mapping[str, Any], y: TensorType, *xs: TensorType) -> Dim:
        """Multiply-accumulates per example (the batch dim, axis 0, counts as 1)."""
        return 0

    # -- NumPy kernel (backends/numpy.py is the driver) ------------------------------------
    # ``numpy_inplace``: the kernel takes ``out=``, one of its inputs with the output's shape
    # and dtype that it may overwrite (the driver passes one only when that input dies here).
    # ``numpy_view``: the kernel may return a view of its input rather than a new array.
    # ``numpy_relu``: the kernel takes ``relu=True`` to apply a relu that follows it, while its
    # result is still in cache (the driver fuses it where the relu is the only reader).
    numpy_inplace: ClassVar[bool] = False
    numpy_view: ClassVar[bool] = False
    numpy_relu: ClassVar[bool] = False

    def numpy_prepare(self, a: Mapping[str, Any], w: Mapping[str, Any]) -> dict[str, Any]:
        """The weights laid out for ``numpy``, once per compiled network."""
        return dict(w)

    def numpy(self, a: Mapping[str, Any], w: Mapping[str, Any], *xs: Any) -> Any:
        """The op at inference on NumPy arrays; ``w`` holds what ``numpy_prepare`` made."""
        raise NotImplementedError(f"{self.name} has no NumPy kernel")

    def numpy_affine(self, a: Mapping[str, Any], w: Mapping[str, Any]) -> Any:
        """``(scale, shift)`` in float64 where the op is ``x * scale + shift`` per channel
        (axis 1), so that the driver may fold it into the layer before; else None."""
        return None

    def numpy_fold(
        self, a: Mapping[str, Any], w: Mapping[str, Any], scale: Any, shift: Any, rank: int
    ) -> dict[str, Any] | None:
        """The weights of this layer followed by ``y * scale + shift`` on axis 1 of its
        rank-``rank`` output, or None where they cannot absorb it."""
        return None

    def __reduce__(self):
        # An op is a stateless singleton of OPS: copies and pickles (of a built torch
        # module, which holds ops) refer to it by name.
        return registered, (self.name,)

    # -- PyTorch lowering ----------------------------------------------------------------
    # One description, as source: backends/torch_source.py writes a module from these two
    # and backends/torch.py executes exactly that text. Torch is never imported here.
    # ``torch_helpers``: module-level functions (name -> source) that ``torch_source`` calls.
    torch_helpers: ClassVar[Mapping[str, str]] = {}

    def torch_layer(
        self, a: Mapping[str, Any], params: Mapping[str, Param], *xs: TensorType
    ) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        """The node's stock ``torch.nn`` layer as (class name, positional arguments by name,
        keyword arguments at other than PyTorch's defaults); its ``state_dict`` keys are the
        node's parameter names. None where ``torch_source`` needs no module."""
        return None

    def torch_source(self, a: Mapping[str, Any], m: str | None, *xs: str, lit=literal) -> str:
        """The op as a Python expression over the variables ``xs`` and the module attribute
        ``m`` (in scope: ``torch``, ``nn``, ``F`` and ``torch_helpers``). ``lit(value, name)``
        writes a literal that may differ between calls of a block. By default the layer is
        the whole op."""
        return f"{m}({', '.join(xs)})"

    # -- ONNX lowering (backends/onnx.py is the driver) -----------------------------------
    def onnx(self, g: Any, a: Mapping[str, Any], node: Any, *xs: str) -> str:
        """Emit the op through ``g`` (``backends.onnx.Lowering``) on the ONNX values ``xs``
        and return the name of its output value (an input's name to pass it through)."""
        raise NotImplementedError(f"{self.name} has no ONNX lowering")

    # -- helpers for rules ---------------------------------------------------------------
    def expect_rank(self, x: TensorType, *ranks: int) -> None:
        if x.rank not in ranks:
            want = " or ".join(str(r) for r in ranks)
            layout = f" {self.layout}" if self.layout else ""
            raise ShapeError(
                f"{self.name} expects a rank-{want} input{layout}, got {fmt_shape(x.shape)}"
            )

    def expect_float(self, x: TensorType) -> None:
        if x.dtype not in FLOAT_DTYPES:
            raise ShapeError(
                f"{self.name} expects a floating-point input, got {x.dtype}"
                + (" (token ids go through `embedding` first)" if x.dtype.startswith("int") else "")
            )

    def known(self, d: Dim, what: str) -> int:
        """A dim that must be a known integer (a layer's input size)."""
        if isinstance(d, Sym):
            raise ShapeError(f"{self.name} needs a known {what}, got the symbolic dim {d}")
        return d


class Signature:
    """A signature prepared for binding calls: positional order, names, normalised defaults
    (``stride=1`` becomes ``(1, 1)`` once, not on every call)."""

    __slots__ = ("args", "positional", "variadic", "names", "defaults", "required", "template")

    def __init__(self, args: tuple[Arg, ...], normalise: bool = True):
        self.args = args
        self.positional = tuple(p for p in args if not p.variadic)
        self.variadic = next((p for p in args if p.variadic), None)
        self.names = tuple(p.name for p in args)
        self.required = tuple(p.name for p in self.positional if p.default is REQUIRED)
        self.defaults = {
            p.name: p.kind(p.default)
            if normalise and p.default not in (None, REQUIRED)
            else p.default
            for p in self.positional
            if p.default is not REQUIRED
        }
        # Every argument at its default, in order: a call's attributes start as a copy.
        self.template = {name: self.defaults.get(name) for name in self.names}


OPS: dict[str, Op] = {}


def registered(name: str) -> Op:
    """The op of the registry named ``name`` (how an op pickles: by name)."""
    return OPS[name]


def register(op: Op | type[Op]) -> Any:
    """Add an op to the registry (usable as a class decorator for ops without arguments)."""
    instance = op() if isinstance(op, type) else op
    if instance.name in OPS:
        raise ValueError(f"op {instance.name!r} registered twice")
    instance.sig = Signature(instance.signature)
    instance.defaults = instance.sig.defaults
    OPS[instance.name] = instance
    return op


def per_example(shape: tuple[Dim, ...]) -> Dim:
    """Elements of one example: the batch dim (axis 0) excluded."""
    return product(shape[1:])
