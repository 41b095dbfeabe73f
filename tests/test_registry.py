"""The op registry, enumerated: every op is complete in every layer, and what an op says
about itself holds.

Each miss is named with what is missing and where it goes, so that adding an op is one
class in ``compiler/ops/`` plus its cases in ``tests/test_ops_torch.py`` (``CASES``: the
one grid every backend's parity test and the initialisation test run).

The op's declared facts are checked against behaviour, not taken on trust: the receptive
field it reports (``Op.receptive``, ``Op.pointwise``) against the influence of each input
step on the NumPy kernel's output (itself checked against torch op by op), and its default
initialisation against the torch layer's ``reset_parameters``.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from dlc.backends.numpy import run
from dlc.compiler import DlcError, load_source
from dlc.compiler.cli import main
from dlc.compiler.ops import OPS, Op
from dlc.runtime.weights import init_weights

torch = pytest.importorskip("torch")

from test_ops_torch import CASES, Case, dl, source  # noqa: E402  (needs torch)
from test_weights import close_distributions  # noqa: E402

ALL = [pytest.param(op, c, id=f"{op}-{c}") for op, cases in CASES.items() for c in cases]


def where(op: Op) -> str:
    return f"on class {type(op).__name__} in {type(op).__module__.replace('.', '/')}.py"


# What every op defines, each a check and the fix it names.
LAYERS = {
    "a docstring (its one-line doc in `dlc ops` and the docs' op table)": lambda op: bool(
        (type(op).__doc__ or op.__doc__ or "").strip()
    ),
    "a shape rule (`infer`)": lambda op: type(op).infer is not Op.infer,
    "a NumPy kernel (`numpy`)": lambda op: type(op).numpy is not Op.numpy,
    "a torch lowering (`torch_layer` and/or `torch_source`)": lambda op: (
        type(op).torch_layer is not Op.torch_layer or type(op).torch_source is not Op.torch_source
    ),
    "an ONNX lowering (`onnx`)": lambda op: type(op).onnx is not Op.onnx,
}


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_is_complete_in_every_layer(name):
    op = OPS[name]
    missing = [f"{what} {where(op)}" for what, has in LAYERS.items() if not has(op)]
    if not CASES.get(name):
        missing.append("parity cases: add CASES[" + repr(name) + "] in tests/test_ops_torch.py")
    assert not missing, f"op {name} lacks:\n  " + "\n  ".join(missing)


def test_cases_name_registered_ops():
    assert not set(CASES) - set(OPS), "cases in tests/test_ops_torch.py for unregistered ops"


# -- receptive field -------------------------------------------------------------------------
def influence(net, w, xs: list[np.ndarray]) -> list[set[int]]:
    """For each step p of the first input's last axis, the output steps (last axis) that
    change when that step changes (by a lot: a max pool must notice)."""
    base = run(net, w, *xs)
    out = []
    for p in range(xs[0].shape[-1]):
        x = xs[0].copy()
        x[..., p] += 1000.0
        with np.errstate(over="ignore"):  # exp(1000) is inf: a change all the same
            y = run(net, w, x, *xs[1:])
        changed = ~np.isclose(y, base, rtol=1e-6, atol=1e-6)
        out.append(set(np.nonzero(changed.reshape(-1, y.shape[-1]).any(axis=0))[0].tolist()))
    return out


def longer(c: Case, length: int, to: int = 40) -> Case:
    """The case with its signals' last axis (those of the first input's length) lengthened,
    so that the middle output step's window lies inside the input; as it is where the op
    rejects that."""
    inputs = tuple(
        (dt, (*s[:-1], to) if len(s) == 3 and s[-1] == length else s) for dt, s in c.inputs
    )
    grown = dataclasses.replace(c, inputs=inputs)
    try:
        load_source(source(grown))
    except DlcError:
        return c
    return grown


@pytest.mark.parametrize("op, c", ALL)
def test_declared_receptive_field_matches_the_kernel(op, c):
    """On a [N, C, L] signal: the steps of L that one output step sees (for a step in the
    middle, away from the padding) must be what the op's ``receptive`` says."""
    (dtype, shape), *_ = c.inputs
    if dtype != "float32" or len(shape) != 3:
        return
    c = longer(c, shape[-1])
    net = load_source(source(c))
    out = net.outputs["y"]
    if out.rank != 3:
        return
    shape = c.inputs[0][1]
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(np.float32) for _, s in c.inputs]
    seen_by = influence(net, init_weights(net, 0), xs)
    middle = out.shape[-1] // 2
    steps = [p for p, outs in enumerate(seen_by) if middle in outs]
    span = max(steps) - min(steps) + 1 if steps else 0
    node = net.graph.node("y")
    declared = OPS[op].receptive(node.attrs, 1, 1, *(net.graph.node(i).type for i in node.inputs))
    if declared is not None:
        assert declared[0] == span, (
            f"{op}: `receptive` says one output step sees {declared[0]} input steps, the "
            f"kernel reads {span} ({c.call}); fix `receptive` {where(OPS[op])}"
        )
    elif out.shape[-1] == shape[-1]:
        pointwise = all(outs == {p} for p, outs in enumerate(seen_by))
        assert not pointwise, (
            f"{op} is pointwise along the last axis ({c.call}) but does not say so: set "
            f"`pointwise = True` (or define `receptive`) {where(OPS[op])}"
        )


# -- default initialisation -------------------------------------------------------------------
SAMPLES = 4096  # elements per tensor, drawn over fresh initialisations, for the comparison


@pytest.mark.parametrize("op, c", [p for p in ALL if p.values[1].module is not None])
def test_default_initialisation_matches_torch_reset_parameters(op, c):
    """Every parameter and buffer of every case: dlc's ``init_weights`` and the torch
    layer's own initialisation, drawn until each has ``SAMPLES`` elements, agree in
    distribution (or exactly, for constants)."""
    net = load_source(source(c))
    first = init_weights(net, 0)
    if not first:
        return
    reps = max(1, min(200, -(-SAMPLES // min(v.size for v in first.values()))))
    ours = [first] + [init_weights(net, seed) for seed in range(1, reps)]
    torch.manual_seed(0)
    theirs = [c.module().state_dict() for _ in range(reps)]
    assert sorted(k.removeprefix("y.") for k in first) == sorted(theirs[0])
    for key in first:
        mine = np.concatenate([w[key].ravel() for w in ours]).astype(np.float64)
        ref = torch.cat([s[key.removeprefix("y.")].ravel() for s in theirs]).double().numpy()
        assert first[key].dtype == theirs[0][key.removeprefix("y.")].numpy().dtype, key
        if ref.std() > 0:
            close_distributions(mine, ref)
        else:
            assert (mine == ref).all(), f"{key}: {c.call}"


# -- dlc ops ------------------------------------------------------------------------------------
def with_arguments(call: str, extra: list[str]) -> str:
    """``conv2d(4, 3)`` + ``["stride=1"]`` -> ``conv2d(4, 3, stride=1)``."""
    if not call.endswith(")"):
        return f"{call}({', '.join(extra)})"
    head, inside = call[:-1].split("(", 1)
    return f"{head}({', '.join([*([inside] if inside.strip() else []), *extra])})"


def test_dlc_ops_lists_every_op_with_the_defaults_the_compiler_uses(capsys):
    """Each op's first case, recompiled with every default that ``dlc ops --format json``
    documents passed explicitly, gives the same node: the listing tells the truth."""
    assert main(["ops", "--format", "json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(listed) == sorted(OPS)
    for name, c in ((n, cs[0]) for n, cs in CASES.items()):
        given = set(re.findall(r"(\w+)=", c.call))
        extra = [
            f"{a['name']}={dl(a['default'])}"
            for a in listed[name]["arguments"]
            if not a["required"] and a["default"] is not None and a["name"] not in given
        ]
        if not extra:
            continue
        explicit = dataclasses.replace(c, call=with_arguments(c.call, extra))
        node = load_source(source(c)).graph.node("y")
        spelled = load_source(source(explicit)).graph.node("y")
        assert dict(spelled.attrs) == dict(node.attrs), f"{name}: {explicit.call}"
    assert main(["ops"]) == 0
    text = capsys.readouterr().out
    assert all(f"  {r['signature']}\n" in text for r in listed.values())
