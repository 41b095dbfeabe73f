"""Bad inputs through every backend and `dlc run`: one located or named message, the same
for NumPy, torch and onnxruntime, exit code 1 for bad data and 2 for bad usage, never a
traceback, and never a partial output file."""

import numpy as np
import pytest

from dlc.backends import numpy as numpy_backend
from dlc.compiler import load_source
from dlc.compiler.cli import main
from dlc.runtime.inputs import InputError
from dlc.runtime.weights import init_weights, save_weights

torch = pytest.importorskip("torch")
onnx_backend = pytest.importorskip("dlc.backends.onnx")
pytest.importorskip("onnxruntime")
from dlc.backends.torch import build  # noqa: E402

# Token ids read by an embedding (vocab 10) and a positional encoding (max_len 6), plus a
# float input that must share their [N, T]; and an image of static size.
SEQ = """network Seq(vocab = 10) {
  input ids: int64[N, T]
  input x: float32[N, T, 8]
  e = ids | embedding(vocab, 8) | positional_encoding(max_len=6)
  y = e + x
  output y | mean(axis=1) | dense(3)
}
"""
IMG = """network Img() {
  input img: float32[N, 3, 8, 8]
  conv2d(4, 3); relu; flatten; dense(2)
}
"""
BACKENDS = ["numpy", "torch", "onnxruntime"]

IDS = np.array([[1, 2, 3, 4, 5], [0, 9, 8, 7, 6]])
X = np.ones((2, 5, 8), np.float32)

# (spec, inputs, what the message says): each is a mistake every backend must reject alike.
MISTAKES = {
    "wrong H/W": (IMG, {"img": np.zeros((2, 3, 7, 8), np.float32)}, "input img: axis 2 must be 8"),
    "float64": (IMG, {"img": np.zeros((2, 3, 8, 8))}, "input img: expected float32"),
    "wrong rank": (IMG, {"img": np.zeros((3, 8, 8), np.float32)}, "input img: expected rank 4"),
    "dim of 0": (IMG, {"img": np.zeros((0, 3, 8, 8), np.float32)}, "axis 0 (N) must be >= 1"),
    "T differs": (SEQ, {"ids": IDS, "x": X[:, :4]}, "input x: axis 1 is T, which input ids"),
    "broadcast T": (SEQ, {"ids": IDS, "x": X[:, :1]}, "input x: axis 1 is T"),
    "negative id": (
        SEQ,
        {"ids": -IDS, "x": X},
        "input ids: token id -9 is out of range for vocab=10",
    ),
    "id = vocab": (SEQ, {"ids": IDS + 1, "x": X}, "input ids: token id 10 is out of range"),
    "too long": (
        SEQ,
        {"ids": np.zeros((2, 7), np.int64), "x": np.ones((2, 7, 8), np.float32)},
        "input ids (axis 1): sequence length T = 7 is out of range for max_len=6",
    ),
    "missing": (SEQ, {"ids": IDS}, "missing input x"),
}


@pytest.fixture(scope="module")
def nets():
    out = {}
    for name, src in (("seq", SEQ), ("img", IMG)):
        net = load_source(src, path=f"{name}.dl")
        out[src] = (net, init_weights(net, 0))
    return out


def forward(backend, net, weights):
    """The backend's Python API, called with NumPy arrays by name."""
    if backend == "numpy":
        return numpy_backend.compile(net, weights)
    if backend == "onnxruntime":
        return onnx_backend.compile(net, weights)
    module = build(net, weights).eval()

    def run(**inputs):
        with torch.no_grad():
            return module(**{k: torch.from_numpy(v) for k, v in inputs.items()}).numpy()

    return run


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_every_backend_rejects_a_mistake_with_one_message(nets, mistake):
    src, inputs, words = MISTAKES[mistake]
    problems = set()
    for backend in BACKENDS:
        with pytest.raises(InputError) as caught:
            forward(backend, *nets[src])(**inputs)
        assert words in caught.value.problem, (backend, caught.value.problem)
        problems.add(caught.value.problem)
    assert len(problems) == 1, problems  # the hint to cast may differ; the problem does not


def test_value_errors_point_at_the_op_that_reads_the_input(nets):
    with pytest.raises(InputError) as caught:
        numpy_backend.compile(*nets[SEQ])(ids=IDS + 1, x=X)
    assert str(caught.value).startswith("seq.dl:4:13: error: input ids: token id 10")


def test_int32_token_ids_work_everywhere_and_agree(nets):
    outs = [forward(b, *nets[SEQ])(ids=IDS.astype(np.int32), x=X) for b in BACKENDS]
    for out in outs[1:]:
        np.testing.assert_allclose(out, outs[0], rtol=1e-5, atol=1e-6)


def test_torch_compile_and_export_skip_the_value_checks_they_cannot_read(nets):
    """Token ids are data: while torch.compile or export traces, the checker reads no
    values (reading one breaks a full graph), and eager calls still check them."""
    net, weights = nets[SEQ]
    model = build(net, weights).eval()
    ids, x = torch.from_numpy(IDS), torch.from_numpy(X)
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # no inductor: fast
    batch = torch.export.Dim("batch", min=1, max=64)
    program = torch.export.export(model, (ids, x), dynamic_shapes=(({0: batch}, {0: batch}),))
    with torch.no_grad():
        torch.testing.assert_close(compiled(ids, x), model(ids, x))
        torch.testing.assert_close(program.module()(ids, x), model(ids, x))
    with pytest.raises(InputError, match="token id 10"):
        model(ids + 1, x)


# -- dlc run ------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    (tmp_path / "seq.dl").write_text(SEQ)
    (tmp_path / "img.dl").write_text(IMG)
    np.save(tmp_path / "ids.npy", IDS)
    np.save(tmp_path / "x.npy", X)
    return tmp_path


def dlc(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mistake", sorted(set(MISTAKES) - {"missing"}))
def test_dlc_run_exits_1_on_bad_data_and_writes_nothing(files, capsys, backend, mistake):
    src, inputs, words = MISTAKES[mistake]
    spec = files / ("seq.dl" if src == SEQ else "img.dl")
    flags = []
    for name, value in inputs.items():
        np.save(files / f"bad_{name}.npy", value)
        flags += ["-i", f"{name}={files / f'bad_{name}.npy'}"]
    out = files / "out.npz"
    code, _, err = dlc(capsys, "run", spec, *flags, "--backend", backend, "-o", out)
    assert code == 1 and words in err, err
    assert not out.exists() and not list(files.glob(".out.npz*"))


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "the file is empty"),
        (b"1 2 3\n", "not a .npy file"),
        (None, "Object arrays cannot be loaded"),  # a pickle inside: never loaded
        (b"\x93NUMPY\x01\x00\x76\x00{'descr'", "not a valid .npy or .npz file"),
    ],
)
def test_dlc_run_names_an_unreadable_data_file(files, capsys, content, words):
    bad = files / "bad.npy"
    if content is None:
        np.save(bad, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        bad.write_bytes(content)
    code, _, err = dlc(
        capsys, "run", files / "seq.dl", "-i", f"ids={bad}", "-i", f"x={files / 'x.npy'}"
    )
    assert code == 1 and f"--input ids={bad}" in err and words in err, err


def test_dlc_run_reads_an_npz_by_input_name_or_its_only_array(files, capsys):
    np.savez(files / "both.npz", ids=IDS, x=X)
    np.savez(files / "x_only.npz", anything=X)
    code, out, err = dlc(
        capsys,
        "run",
        files / "seq.dl",
        "-i",
        f"ids={files / 'both.npz'}",
        "-i",
        f"x={files / 'x_only.npz'}",
    )
    assert code == 0 and out.startswith("dense_0: float32[2, 3]"), err
    np.savez(files / "two.npz", a=X, b=X)
    code, _, err = dlc(
        capsys,
        "run",
        files / "seq.dl",
        "-i",
        f"ids={files / 'ids.npy'}",
        "-i",
        f"x={files / 'two.npz'}",
    )
    assert code == 1 and "holds 2 arrays (a, b), none named x" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("-i", "ids=nothing.npy"), "--input ids: cannot read nothing.npy"),
        (("-i", "y=nothing.npy"), "--input y: the network's inputs are ids, x"),
        ((), "missing --input for ids, x (or use --random-input)"),
        (("--random-input",), "--random-input: input ids (int64[1, T]) has symbolic dims: T"),
        (
            ("--random-input", "--dim", "N=10000000000", "--dim", "T=6"),
            "GiB (ids int64[10000000000, 6]",
        ),
        (("--time", "0", "--random-input", "--dim", "N=1", "--dim", "T=2"), "--time"),
        (
            ("--random-input", "-o", "no/such/dir/out.npz", "--dim", "N=1", "--dim", "T=2"),
            "no/such/dir",
        ),
    ],
)
def test_dlc_run_usage_errors_exit_2_naming_the_flag(files, capsys, monkeypatch, args, words):
    monkeypatch.chdir(files)
    code, _, err = dlc(capsys, "run", "seq.dl", *args)
    assert code == 2 and words in err, err


def test_dlc_run_output_folder_is_checked_before_running(files, capsys):
    code, _, err = dlc(
        capsys,
        "run",
        files / "seq.dl",
        "--random-input",
        "--dim",
        "N=1",
        "--dim",
        "T=2",
        "-o",
        files,
    )
    assert code == 2 and "is a directory" in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_dlc_run_random_input_and_time(files, capsys, backend):
    args = (
        "run",
        files / "seq.dl",
        "--random-input",
        "--dim",
        "N=2",
        "--dim",
        "T=6",
        "--backend",
        backend,
    )
    code, out, err = dlc(capsys, *args)
    assert code == 0, err
    digest, timing = out.splitlines()
    assert digest.startswith("dense_0: float32[2, 3]") and timing.startswith("time: ")
    assert timing.endswith(f"ms ({backend}, 1 run)")
    code, out, _ = dlc(capsys, *args, "--time", "3")
    assert code == 0 and out.splitlines()[1].endswith(f"ms ({backend}, median of 3 runs)")
    assert dlc(capsys, *args)[1].splitlines()[0] == digest  # seed 0 by default: the same ids


def test_random_token_ids_stay_within_the_vocab():
    from dlc.runtime.inputs import example_inputs

    net = load_source(SEQ.replace("N, T", "4, 6").replace("N, T, 8", "4, 6, 8"))
    ids = example_inputs(net.graph, np.random.default_rng(0))["ids"]
    assert ids.shape == (4, 6) and ids.dtype == np.int64 and 0 <= ids.min() and ids.max() < 10


def test_nan_weights_are_a_warning_not_an_error(files, capsys):
    """NaN or inf are valid floats that every backend computes with alike (a mask may hold
    -inf on purpose), so the run goes ahead; the warning names the tensors."""
    net = load_source(IMG)
    weights = init_weights(net, 0)
    weights["dense_0.bias"][0] = np.nan
    save_weights(weights, files / "w.safetensors")
    np.save(files / "img.npy", np.zeros((1, 3, 8, 8), np.float32))
    code, out, err = dlc(
        capsys,
        "run",
        files / "img.dl",
        "--weights",
        files / "w.safetensors",
        "-i",
        files / "img.npy",
    )
    assert code == 0 and "nan" in out
    assert "warning: weights" in err and "NaN or inf in 1 of 4 (dense_0.bias)" in err
