"""ONNX backend: the IR lowered straight to an ONNX graph with the ``onnx`` package.

The driver walks the IR once; each op's ``onnx(g, a, node, *xs)`` (compiler/ops) emits its
ONNX nodes through ``Lowering``, the small context below, so op files never touch protobuf.
Symbolic input dims become ``dim_param`` names, so the batch and sequence lengths stay
dynamic; initializers carry the IR parameter names (``conv2d_0.weight``), or, where a layout
differs from PyTorch's (recurrent gates, transposed projections), ``layer.label`` with a
doc string saying what they were derived from. Every export passes ``onnx.checker`` and a
comparison of ONNX shape inference with the front end's types (see ``check``).

Exports are fast at any model size because the weights are copied once, by the kernel:
the lowering keeps every tensor over ``INLINE_BYTES`` as the array it was given, and the
writer streams those buffers into the file between serialised protobuf pieces, giving the
very bytes ``to_model(...).SerializeToString(deterministic=True)`` would.

    from dlc.backends.onnx import export
    export(net, weights, "model.onnx", opset=17)

``compile(net, weights)`` loads the model in an onnxruntime session behind the input checks
every backend runs (runtime/inputs.py): onnxruntime checks less (a wrong dim of 1
broadcasts, a negative token id indexes from the end) and reports the rest in its own words.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.errors import DlcError
from ..compiler.ir.graph import FLOAT_DTYPES, Graph, Node, TensorType
from ..compiler.ir.symbolic import Dim, FloorDiv, Sym
from ..extras import require
from ..runtime.files import target_folder
from ..runtime.inputs import InputChecker, dtype_name
from ..runtime.weights import NP_DTYPES

if TYPE_CHECKING:
    import onnx

    from ..compiler.network import Network

# The oldest opset whose versions of every ONNX op used here (Reshape, BatchNormalization,
# the recurrent ops) mean what the lowerings assume; ops newer than the requested opset
# (LayerNormalization: 17) are reported by the op that needs them.
MIN_OPSET = 14
DEFAULT_OPSET = 17
# Protobuf cannot serialise a message over 2 GiB: larger models keep their tensors in a
# side file (``model.onnx.data``); the margin leaves room for the graph itself.
EXTERNAL_DATA_BYTES = 2**31 - 2**26
# Tensors up to this size (shape constants, small biases) are held inside the model proto
# from the start, and stay there when the rest go to the side file (as with onnx.save_model).
INLINE_BYTES = 1024


def _onnx():
    return require("onnx", "ONNX export")


def _np_dtype(dtype: str):
    if dtype == "bfloat16":
        import ml_dtypes  # a dependency of onnx, which needs it for this very type

        return ml_dtypes.bfloat16
    return NP_DTYPES[dtype]


_TYPE_NAMES = {"float32": "float"}  # ONNX's names where they differ from the IR's


@functools.cache
def _schemas() -> dict[str, list]:
    out: dict[str, list] = {}
    for s in _onnx().defs.get_all_schemas_with_history():
        if s.domain == "":
            out.setdefault(s.name, []).append(s)
    return out


@functools.cache
def _versions(op_type: str, index: int = 0, dtype: str | None = None) -> tuple[int, ...]:
    """The versions (opsets they start at) of ONNX ``op_type``, or only those whose input
    ``index`` takes ``dtype``."""
    out = []
    for s in _schemas()[op_type]:
        if dtype is not None:
            formal = s.inputs[min(index, len(s.inputs) - 1)]
            allowed = {c.type_param_str: c.allowed_type_strs for c in s.type_constraints}
            want = f"tensor({_TYPE_NAMES.get(dtype, dtype)})"
            if want not in allowed.get(formal.type_str, [formal.type_str]):
                continue
        out.append(s.since_version)
    return tuple(sorted(out))


def _dims(shape: Sequence[Any]) -> list[int | str]:
    """ONNX dims: an int, or the symbolic expression's text as a ``dim_param``."""
    return [d if isinstance(d, int) else str(d) for d in shape]


def _where(node: Node) -> str:
    span = node.span
    return f"{span.source.path.rsplit('/', 1)[-1]}:{span.line}" if span is not None else ""


class Lowering:
    """The context an op's ``onnx`` method emits through.

    ``op`` adds a node and returns its output name(s); ``const`` a constant; ``param`` the
    initializer of one of the layer's parameters; ``weight`` its values, and ``derived`` an
    initializer computed from them; ``dim`` a dim of a value as an int64 tensor (a constant
    when it is known); ``type`` the front end's type of a value. Names are deterministic:
    ``layer/OpType`` (``_1``, ``_2``, ... when repeated) for the nodes of one layer, and the
    node producing the layer's value is renamed to the layer's name.
    """

    def __init__(self, weights: Mapping[str, np.ndarray], opset: int):
        onnx = _onnx()
        self._helper = onnx.helper
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        # Initializers are made in place inside the model, as headers (name, type, dims);
        # the values of those over INLINE_BYTES stay in ``values`` until they are written.
        self.model = onnx.ModelProto()
        self.initializers: dict[str, onnx.TensorProto] = {}
        self.values: dict[str, np.ndarray] = {}
        self.types: dict[str, TensorType] = {}
        self._weights = weights
        self._node: Node | None = None
        self._first = 0  # index in ``nodes`` of the current layer's first node
        self._float = "float32"  # the current layer's float type, for constants and weights
        self._names: set[str] = set()

    # -- for the driver ------------------------------------------------------------------
    def begin(self, node: Node) -> None:
        self._node, self._first = node, len(self.nodes)
        self._float = node.type.dtype if node.type.dtype in FLOAT_DTYPES else "float32"

    def finish(self, out: str) -> str:
        """Give the layer's value the layer's name, when this layer produced it."""
        name = self._node.name
        for n in self.nodes[self._first :]:
            if out in n.output:
                n.output[list(n.output).index(out)] = name
                n.name = name
                self.types[name] = self._node.type
                return name
        return out  # an op that passes its input through (dropout, identity)

    # -- for op lowerings ----------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], outputs: int = 1, **attrs: Any):
        """Add an ONNX node; its output name, or a tuple of ``outputs`` names."""
        versions = _versions(op_type)
        if versions[0] > self.opset:
            asked = f"the export asked for opset {self.opset}"
            self._refuse(f"{op_type}, which needs opset >= {versions[0]}; {asked}", versions[0])
        current = max(v for v in versions if v <= self.opset)
        for i, x in enumerate(inputs):
            dtype = self.types[x].dtype if x in self.types else None
            if dtype and current not in _versions(op_type, i, dtype):
                later = [v for v in _versions(op_type, i, dtype) if v > self.opset]
                self._refuse(
                    f"{op_type}, which does not take {dtype} at opset {self.opset}", *later[:1]
                )
        name = self._fresh(f"{self._node.name}/{op_type}")
        outs = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        self.nodes.append(
            self._helper.make_node(
                op_type, list(inputs), outs, name=name, doc_string=_where(self._node), **attrs
            )
        )
        return outs[0] if outputs == 1 else tuple(outs)

    def const(self, value: Any, dtype: str | None = None) -> str:
        """A constant: ints are int64 and floats the layer's float type unless ``dtype``."""
        array = np.asarray(value)
        if dtype is None:
            dtype = self._float if array.dtype.kind == "f" else "int64"
        return self._add(self._fresh(f"{self._node.name}/const"), array.astype(_np_dtype(dtype)))

    def weight(self, local: str) -> np.ndarray:
        """The values of one of the layer's parameters (``weight``, ``bias_ih_l0``)."""
        return np.asarray(self._weights[self._node.param_name(local)])

    def param(self, local: str) -> str:
        """The initializer of one of the layer's parameters, named as in the IR."""
        name = self._node.param_name(local)
        if name not in self.initializers:
            self._add(name, self._cast(self.weight(local)))
        return name

    def derived(self, label: str, array: np.ndarray, doc: str) -> str:
        """An initializer computed from the layer's parameters: ``layer.label``."""
        name = f"{self._node.name}.{label}"
        return self._add(name, self._cast(array), doc)

    def dim(self, x: str, axis: int, scalar: bool = False) -> str:
        """Dim ``axis`` of ``x`` as an int64 tensor of shape [1] (or a scalar)."""
        d = self.types[x].shape[axis]
        index = np.array(axis if scalar else [axis])
        if isinstance(d, int):
            return self.const(np.array(d if scalar else [d]))
        return self.op("Gather", [self.op("Shape", [x]), self.const(index)], axis=0)

    def shape(self, dims: Sequence[Dim]) -> str:
        """``dims`` as an int64 tensor: known dims as constants, each symbolic one read at
        run time off a value lowered so far that has it (an input, at the latest)."""
        pieces: list[str] = []
        known: list[int] = []
        for d in dims:
            if isinstance(d, int):
                known.append(d)
                continue
            if known:
                pieces.append(self.const(known))
                known = []
            pieces.append(self._symbolic(d))
        if known:
            pieces.append(self.const(known))
        return pieces[0] if len(pieces) == 1 else self.op("Concat", pieces, axis=0)

    def _symbolic(self, d: Sym) -> str:
        """The symbolic dim ``d`` as an int64 tensor of shape [1]: read off a value that has
        it, else computed from its polynomial over the dims of values that have its
        symbols (integer Div is floor division here: the numerators of dims are >= 0)."""
        for x, t in self.types.items():
            if d in t.shape:
                return self.dim(x, t.shape.index(d))
        if d == Sym.var(min(d.symbols)):
            node = self._node
            raise DlcError(
                f"{node.op} ({node.name}) needs the dim {d} at run time, and no value before "
                f"it has that dim to read it from",
                node.span,
                chain=node.chain,
            )
        terms = []
        for mono, coeff in d.terms.items():
            factors = [self.const([coeff])] if coeff != 1 or not mono else []
            for atom, power in mono:
                if isinstance(atom, FloorDiv):
                    base = self.op("Div", [self._symbolic(atom.num), self.const([atom.den])])
                else:
                    base = self._symbolic(Sym.var(atom.name))
                factors += [base] * power
            terms.append(functools.reduce(lambda a, b: self.op("Mul", [a, b]), factors))
        return functools.reduce(lambda a, b: self.op("Add", [a, b]), terms)

    def type(self, x: str) -> TensorType:
        return self.types[x]

    def cast(self, x: str, dtype: str) -> str:
        """``x`` as ``dtype`` (itself where it has that type already)."""
        if self.types[x].dtype == dtype:
            return x
        out = self.op("Cast", [x], to=_elem(dtype))
        self.types[out] = TensorType(dtype, self.types[x].shape)
        return out

    # -- internals -----------------------------------------------------------------------
    def _refuse(self, what: str, newer: int | None = None) -> None:
        node = self._node
        hint = f" (use --opset {newer})" if newer else ""
        raise DlcError(
            f"{node.op} ({node.name}) lowers to ONNX {what}{hint}",
            node.span,
            chain=node.chain,
        )

    def _fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def _cast(self, array: np.ndarray) -> np.ndarray:
        # Parameters are float32 in the IR; a float16 network computes in float16.
        float_type = _np_dtype(self._float)
        return array.astype(float_type, copy=False) if array.dtype.kind == "f" else array

    def _add(self, name: str, array: np.ndarray, doc: str = "") -> str:
        array = np.asarray(array)
        tensor = self.model.graph.initializer.add()
        tensor.name = name
        tensor.data_type = self._helper.np_dtype_to_tensor_dtype(array.dtype)
        tensor.dims.extend(array.shape)
        if doc:
            tensor.doc_string = doc
        # raw_data is little-endian and dense; for the usual arrays this copies nothing.
        data = np.ascontiguousarray(array, array.dtype.newbyteorder("<"))
        if data.nbytes <= INLINE_BYTES:
            tensor.raw_data = data.tobytes()
        else:
            self.values[name] = data
        self.initializers[name] = tensor
        return name


def _elem(dtype: str) -> int:
    """The ONNX element type of an IR dtype."""
    return _onnx().helper.np_dtype_to_tensor_dtype(np.dtype(_np_dtype(dtype)))


def _value_info(name: str, t: TensorType, doc: str = ""):
    return _onnx().helper.make_tensor_value_info(
        name, _elem(t.dtype), _dims(t.shape), doc_string=doc
    )


def _lower(
    graph: Graph, weights: Mapping[str, Any] | str | Path, opset: int
) -> tuple[onnx.ModelProto, dict[str, np.ndarray]]:
    """The model with only its small tensors' values, and the large ones' by name."""
    from importlib.metadata import version

    from ..compiler.ops import OPS, Op
    from ..runtime.weights import check_weights

    onnx = _onnx()
    newest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= newest:
        raise DlcError(
            f"ONNX export supports opsets {MIN_OPSET} to {newest} "
            f"(onnx {onnx.__version__}); got {opset}"
        )
    g = Lowering(check_weights(graph, weights), opset)
    env: dict[str, str] = {}
    inputs = []
    for node in graph.nodes:
        if node.op == "input":
            env[node.name] = node.name
            g.types[node.name] = node.type
            inputs.append(_value_info(node.name, node.type, _where(node)))
            continue
        op = OPS[node.op]
        if type(op).onnx is Op.onnx:
            raise DlcError(f"the ONNX backend cannot lower {node.op} yet", node.span)
        g.begin(node)
        env[node.name] = g.finish(op.onnx(g, node.attrs, node, *(env[i] for i in node.inputs)))
        g.types.setdefault(env[node.name], node.type)  # a parameter's value, passed through

    outputs = []
    for name in graph.outputs:
        node = graph.node(name)
        if env[name] != name:  # a passed-through value: the output still bears its name
            g.begin(node)
            env[name] = g.finish(g.op("Identity", [env[name]]))
        outputs.append(_value_info(name, node.type, _where(node)))
    value_info = [
        _value_info(n.name, n.type)
        for n in graph.nodes
        if n.op != "input" and env[n.name] == n.name and n.name not in graph.outputs
    ]
    header = graph.format().splitlines()[0]
    doc = "\n".join(
        [header] + [f"constraint (not checked by this graph): {c}" for c in graph.constraints]
    )
    model = g.model  # filled in place (see Lowering.__init__), as make_graph/make_model would
    model.graph.node.extend(g.nodes)
    model.graph.name = graph.name
    model.graph.input.extend(inputs)
    model.graph.output.extend(outputs)
    model.graph.value_info.extend(value_info)
    model.graph.doc_string = doc
    opsets = [onnx.helper.make_opsetid("", opset)]
    model.opset_import.extend(opsets)
    model.producer_name, model.producer_version = "dlc", version("dlc")
    model.doc_string = header
    # The oldest IR version that can hold this opset, for older runtimes' sake.
    model.ir_version = onnx.helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    return model, g.values


def to_model(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path, opset: int = DEFAULT_OPSET
) -> onnx.ModelProto:
    """The ONNX model of ``net`` with ``weights`` (a dict or a safetensors file), unchecked."""
    model, values = _lower(net.graph if hasattr(net, "graph") else net, weights, opset)
    for tensor in model.graph.initializer:
        if tensor.name in values:
            tensor.raw_data = values[tensor.name].tobytes()
    return model


def _nbytes(tensor: onnx.TensorProto) -> int:
    """The size of a tensor's values, from its header alone."""
    itemsize = _onnx().helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return itemsize * math.prod(tensor.dims)


def _weightless(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its tensors over INLINE_BYTES as typed graph inputs instead.

    Neither the checker nor shape inference needs those values, and copying them into the
    model they are handed costs more than both; the small ones (shape constants) are kept
    for data propagation.
    """
    helper, g = _onnx().helper, model.graph
    large = [t for t in g.initializer if _nbytes(t) > INLINE_BYTES]
    typed = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in large]
    small = [t for t in g.initializer if _nbytes(t) <= INLINE_BYTES]
    bare = helper.make_model(
        helper.make_graph(
            list(g.node),
            g.name,
            [*g.input, *typed],
            list(g.output),
            small,
            value_info=list(g.value_info),
        ),
        opset_imports=list(model.opset_import),
    )
    bare.ir_version = model.ir_version
    return bare


def check(model: onnx.ModelProto, graph: Graph) -> None:
    """The model must be valid and its types those of the front end.

    ``onnx.checker`` and strict, type-checking shape inference (what ``full_check`` runs)
    see the model less its large tensors' values (``_weightless``); those are well formed
    by construction, dims and bytes coming from one array. Inference runs without our
    declared types, so that it checks them: where both sides know a dim they must agree,
    a symbolic dim must neither be frozen to a number nor named after another input
    symbol, and element types must match.
    """
    onnx = _onnx()
    bare = _weightless(model)
    try:
        onnx.checker.check_model(bare)
    except Exception as exc:  # ValidationError: a lowering bug
        raise DlcError(
            f"internal error: the ONNX model of {graph.name} is invalid: {exc}"
        ) from None
    del bare.graph.value_info[:]
    for output in bare.graph.output:
        output.type.tensor_type.ClearField("shape")
    try:
        inferred = onnx.shape_inference.infer_shapes(
            bare, check_type=True, strict_mode=True, data_prop=True
        )
    except Exception as exc:  # InferenceError and friends: a lowering bug
        raise DlcError(
            f"internal error: ONNX shape inference fails on {graph.name}: {exc}"
        ) from None
    found = {
        v.name: v.type.tensor_type for v in (*inferred.graph.value_info, *inferred.graph.output)
    }
    symbols = {str(d) for n in graph.inputs for d in graph.node(n).type.shape if isinstance(d, Sym)}
    for node in graph.nodes:
        t = found.get(node.name)
        if node.op != "input" and t is not None:
            _compare(node, t, symbols)


def _compare(node: Node, t: Any, symbols: set[str]) -> None:
    """Inferred tensor type ``t`` must agree with ``node``'s type (see ``check``)."""
    problem = None
    if t.elem_type and t.elem_type != _elem(node.type.dtype):
        problem = f"element type {_onnx().helper.tensor_dtype_to_string(t.elem_type)}"
    elif t.HasField("shape") and len(t.shape.dim) != node.type.rank:
        problem = f"rank {len(t.shape.dim)}"
    elif t.HasField("shape"):
        for i, (d, want) in enumerate(zip(t.shape.dim, node.type.shape)):
            if d.HasField("dim_value") and (isinstance(want, Sym) or d.dim_value != want):
                problem = problem or f"dim {i} = {d.dim_value}"
            elif d.dim_param in symbols and d.dim_param != str(want):
                problem = problem or f"dim {i} = {d.dim_param}"
    if problem:
        raise DlcError(
            f"internal error: ONNX shape inference gives {problem} for {node.name} "
            f"({node.op}), whose type is {node.type}",
            node.span,
        )


def export(
    net: Network | Graph,
    weights: Mapping[str, Any] | str | Path,
    path: str | Path,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``net`` with ``weights`` as an ONNX model at ``path``, checked, atomically.

    The same network and weights give the same bytes. Models whose tensors exceed
    ``EXTERNAL_DATA_BYTES`` keep them in ``<path>.data`` beside the model.
    """
    graph = net.graph if hasattr(net, "graph") else net
    model, values = _lower(graph, weights, opset)
    check(model, graph)
    path = Path(path)
    folder = target_folder(path)
    try:
        with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=folder) as tmp:
            staged = Path(tmp) / path.name
            if sum(v.nbytes for v in values.values()) > EXTERNAL_DATA_BYTES:
                data = f"{path.name}.data"
                _write_external(model, values, staged, data)
                os.replace(Path(tmp) / data, folder / data)
            else:
                with open(staged, "wb") as f:
                    f.writelines(_serialised(model, values))
            # Replaced last, so a reader never sees the new model before its data.
            os.replace(staged, path)
    except OSError as exc:
        raise DlcError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def _serialised(model: onnx.ModelProto, values: Mapping[str, np.ndarray]) -> list:
    """``model`` with ``values`` as raw_data, serialised (deterministically), in pieces.

    Protobuf can only serialise data it holds, so each message is serialised around its
    one large field (``_around``) and the values' own buffers go in between: they are
    copied once, into the file. Fields stay in number order, as protobuf writes them.
    """
    onnx = _onnx()
    initializer = onnx.GraphProto.INITIALIZER_FIELD_NUMBER
    tensors = []
    for tensor in model.graph.initializer:
        tensors += _field(initializer, _tensor_pieces(tensor, values.get(tensor.name)))
    graph_head, graph_tail = _around(model.graph, initializer)
    number = onnx.ModelProto.GRAPH_FIELD_NUMBER
    head, tail = _around(model, number)
    return [head, *_field(number, [graph_head, *tensors, graph_tail]), tail]


def _tensor_pieces(tensor: onnx.TensorProto, value: np.ndarray | None) -> list:
    """A TensorProto serialised, with ``value`` (if any) as its raw_data."""
    if value is None:
        return [tensor.SerializeToString(deterministic=True)]
    head, tail = _around(tensor, tensor.RAW_DATA_FIELD_NUMBER)
    return [head, *_field(tensor.RAW_DATA_FIELD_NUMBER, [_bytes(value)]), tail]


def _bytes(array: np.ndarray) -> memoryview:
    """A dense array's buffer as bytes, no copy; a byte view, so any dtype (bfloat16 too)
    can pass as a buffer."""
    return memoryview(array.reshape(-1).view(np.uint8))


def _around(message: Any, number: int) -> tuple[bytes, bytes]:
    """``message`` less field ``number``, serialised as the fields before it and after it."""
    head, tail = type(message)(), type(message)()
    head.CopyFrom(message)
    tail.CopyFrom(message)
    for field, _ in message.ListFields():
        if field.number >= number:
            head.ClearField(field.name)
        if field.number <= number:
            tail.ClearField(field.name)
    return head.SerializeToString(deterministic=True), tail.SerializeToString(deterministic=True)


def _field(number: int, pieces: list) -> list:
    """``pieces`` (bytes-like) as one length-delimited protobuf field: key, length, pieces."""
    return [_varint(number << 3 | 2) + _varint(sum(map(len, pieces))), *pieces]


def _varint(n: int) -> bytes:
    """Protobuf's base-128 varint: seven bits a byte, low first, high bit = more follow."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _write_external(
    model: onnx.ModelProto, values: Mapping[str, np.ndarray], staged: Path, data: str
) -> None:
    """Write ``values`` to ``data`` beside ``staged`` and the model, pointing at them, there.

    The layout is onnx.save_model's: the tensors over INLINE_BYTES one after another, each
    referred to by location, offset and length.
    """
    onnx = _onnx()
    offset = 0
    with open(staged.parent / data, "wb") as f:
        for tensor in model.graph.initializer:
            if tensor.name not in values:
                continue
            size = f.write(_bytes(values[tensor.name]))
            tensor.data_location = onnx.TensorProto.EXTERNAL
            for key, value in (("location", data), ("offset", offset), ("length", size)):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, str(value)
            offset += size
    staged.write_bytes(model.SerializeToString(deterministic=True))


# -- running with onnxruntime --------------------------------------------------------------
class Compiled:
    """A network in an onnxruntime session: call it with the inputs, positionally or by
    name; they are checked first (runtime/inputs.py). Returns one array, or a tuple in
    output order."""

    def __init__(self, graph: Graph, weights: Mapping[str, Any] | str | Path, opset: int):
        ort = require("onnxruntime", "running ONNX models")
        model, values = _lower(graph, weights, opset)
        self.graph = graph
        self._inputs = InputChecker(graph, "onnxruntime", "{name}.astype(np.{dtype})")
        self._session = ort.InferenceSession(
            b"".join(_serialised(model, values)), providers=["CPUExecutionProvider"]
        )

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        xs = [np.asarray(x) for x in self._inputs.order(args, kwargs)]
        self._inputs.check([x.shape for x in xs], [dtype_name(x.dtype) for x in xs], xs)
        # Integer inputs may come as int32, as with the other backends; the model's are int64.
        feed = {
            name: x.astype(_np_dtype(t.dtype), copy=False)
            for name, t, x in zip(self._inputs.names, self._inputs.types, xs)
        }
        outs = tuple(self._session.run(list(self.graph.outputs), feed))
        return outs[0] if len(outs) == 1 else outs


def compile(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path, opset: int = DEFAULT_OPSET
) -> Compiled:
    """``net`` with ``weights`` (arrays by IR name, or a safetensors file) in onnxruntime."""
    return Compiled(net.graph if hasattr(net, "graph") else net, weights, opset)


def run(
    net: Network | Graph, weights: Mapping[str, Any] | str | Path, *inputs: Any, **named: Any
) -> np.ndarray | tuple[np.ndarray, ...]:
    """``compile(net, weights)(*inputs, **named)``: one array, or a tuple in output order."""
    return compile(net, weights)(*inputs, **named)
