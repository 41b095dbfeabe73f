"""Every bad command line, file and environment: one message naming the flag or file, exit
code 2 for usage and 1 for bad data, never a traceback, never a partial output file."""

import importlib.metadata
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dlc
from dlc import extras
from dlc.backends.torch_source import emit
from dlc.compiler import load, load_source
from dlc.compiler.cli import build_parser, main
from dlc.runtime.weights import (
    FINGERPRINT_KEY,
    NETWORK_KEY,
    WeightsError,
    _read,
    check_weights,
    init_weights,
    save_weights,
)

pytest.importorskip("safetensors")
ROOT = Path(__file__).resolve().parent.parent
LENET = ROOT / "specs" / "lenet5.dl"
SMALL = "network Small(h = 8) {\n  input x: float32[N, 4]\n  dense(h)\n}\n"
OTHER = "network Other() {\n  input x: float32[N, T, 4]\n  dense(3); dense(2)\n}\n"


def dlc_main(capsys, *args) -> tuple[int, str, str]:
    """``main`` in process (fast); argparse's own errors exit through SystemExit."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def specs(tmp_path):
    (tmp_path / "small.dl").write_text(SMALL)
    (tmp_path / "other.dl").write_text(OTHER)
    return tmp_path


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("check", LENET, "--set", "clases=5"), "did you mean 'classes'"),
        (("check", LENET.parent), "is a directory"),
        (("summary", LENET, "--depth", "-1"), "argument --depth: expected a non-negative"),
        (("summary", LENET, "--dim", "X=4"), "--dim X: no symbolic input dim X in network LeNet5"),
        (("ir", LENET, "--dim", "N=0"), "--dim N: expected a positive integer"),
        (("init", LENET, "--seed", "-1", "-o", "w.st"), "argument --seed"),
        (("init", LENET, "--max-memory", "lots", "-o", "w.st"), "argument --max-memory"),
        (("init", LENET, "-o", LENET), "is an input of the command"),
        (("init", LENET, "-o", "no/such/dir/w.st"), "-o: cannot write no/such/dir/w.st"),
        (("init", LENET, "-o", "."), "-o: cannot write .: it is a directory"),
        (("compile", LENET, "--target", "torch", "--weights", "/none", "-o", "m.py"), "--weights"),
        (("compile", LENET, "--target", "torch", "--opset", "9", "-o", "m.py"), "--opset: only"),
        (("compile", LENET, "--target", "torch", "--seed", "1", "-o", "m.py"), "--seed: only"),
        (("run", LENET, "--weights", LENET.parent, "--random-input"), "--weights: "),
        (("completion", "tcsh"), "invalid choice: 'tcsh'"),
    ],
)
def test_usage_errors_exit_2_naming_the_flag_and_write_nothing(
    args, words, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)
    code, out, err = dlc_main(capsys, *args)
    assert code == 2 and words in err and "Traceback" not in err, err
    assert "error:" in err and out == ""
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file


def test_dim_is_checked_against_every_network_given(specs, capsys):
    code, out, _ = dlc_main(capsys, "check", LENET, specs / "other.dl", "--dim", "T=3")
    assert code == 0 and out.count(": ok") == 2  # T is Other's
    code, _, err = dlc_main(capsys, "check", LENET, specs / "other.dl", "--dim", "L=3")
    assert code == 2 and "(dims: N, T)" in err


def test_missing_optional_packages_say_what_to_install(tmp_path):
    """Blocked imports in a subprocess stand for a base install: each flag that needs an
    optional package names it, and the pip command for this source checkout."""
    code = f"""
import json, sys
for m in ("torch", "onnx", "onnxruntime", "safetensors"):
    sys.modules[m] = None
from dlc.compiler.cli import main
spec, out = {str(LENET)!r}, {str(tmp_path)!r}
results = []
for args in (
    ["run", spec, "--backend", "torch", "--random-input", "--dim", "N=1"],
    ["run", spec, "--backend", "onnxruntime", "--random-input", "--dim", "N=1"],
    ["init", spec, "-o", out + "/w.st"],
    ["compile", spec, "--target", "onnx", "-o", out + "/m.onnx"],
    ["run", spec, "--weights", spec, "--random-input", "--dim", "N=1"],
):
    results.append(main(args))
from dlc.runtime.weights import read_weights
try:
    read_weights(spec)
except Exception as exc:
    sys.stderr.write(type(exc).__name__ + ": " + exc.message + "\\n")
print(json.dumps(results))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == [2] * 5
    missing = "which is not installed: pip install -e"
    assert run.stderr.splitlines() == [
        f'dlc: error: --backend torch needs torch, {missing} ".[torch]"',
        f'dlc: error: --backend onnxruntime needs onnx, {missing} ".[onnx]"',
        f'dlc: error: dlc init needs safetensors, {missing} ".[weights]"',
        f'dlc: error: --target onnx needs onnx, {missing} ".[onnx]"',
        f'dlc: error: --weights needs safetensors, {missing} ".[weights]"',
        f'MissingPackage: reading weights files needs safetensors, {missing} ".[weights]"',
    ]
    assert list(tmp_path.iterdir()) == []


def test_install_command_for_a_checkout_elsewhere_and_an_installed_package(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert extras.install_command("torch") == f'pip install -e "{ROOT}[torch]"'
    installed = tmp_path / "site-packages" / "dlc" / "extras.py"
    monkeypatch.setattr(extras, "__file__", str(installed))
    assert extras.install_command("torch") == 'pip install "dlc[torch]"'


def test_weights_files_name_their_network(specs, capsys):
    small, other = load(specs / "small.dl"), load(specs / "other.dl")
    path = save_weights(init_weights(other), specs / "other.st", other)
    assert _read(path)[1][NETWORK_KEY] == "Other()"
    assert len(_read(path)[1][FINGERPRINT_KEY]) == 16
    code, _, err = dlc_main(
        capsys,
        "compile",
        specs / "small.dl",
        "--target",
        "torch",
        "--weights",
        path,
        "-o",
        specs / "m.py",
    )
    assert code == 1 and not (specs / "m.py").exists()
    assert err.startswith(
        f"dlc: error: {path} holds weights for network Other(), not Small(h=8) (4 problems):"
    )
    # the same network with other parameters
    path = save_weights(init_weights(small), specs / "small.st", small)
    with pytest.raises(WeightsError, match=r"holds weights for network Small\(h=8\), not Small"):
        check_weights(load(specs / "small.dl", h=5), path)
    # a file saved without a network still gets the plain list
    path = save_weights(init_weights(small), specs / "plain.st")
    with pytest.raises(WeightsError, match=r"^error: weights do not match network Small\(h=5\)"):
        check_weights(load(specs / "small.dl", h=5), path)


def test_a_long_list_of_problems_is_cut(specs):
    many = load_source("network Many() {\n  input x: float32[N, 4]\n" + "  dense(4)\n" * 15 + "}")
    with pytest.raises(WeightsError) as err:
        check_weights(many, {})
    text = str(err.value)
    assert "(30 problems)" in text and text.endswith("... and 10 more")


def _safetensors_file(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("truncated", "truncated or damaged"),
        (b"hello, not weights\n", "not a safetensors file"),
        (
            b"\x80\x04\x95pickled",
            "not a safetensors file but a pickle (a torch.save checkpoint?), which dlc never loads",
        ),
    ],
)
def test_unreadable_weights_files_exit_1(specs, capsys, content, words):
    bad = specs / "bad.st"
    if content == "truncated":
        good = save_weights(init_weights(load(specs / "small.dl")), specs / "good.st")
        bad.write_bytes(good.read_bytes()[:-7])
    else:
        bad.write_bytes(content)
    code, _, err = dlc_main(
        capsys,
        "compile",
        specs / "small.dl",
        "--target",
        "torch",
        "--weights",
        bad,
        "-o",
        specs / "m.py",
    )
    assert code == 1 and f"cannot read weights file {bad}: {words}" in err, err
    assert "Traceback" not in err and not (specs / "m.py").exists()


def test_bfloat16_weights_exit_1(specs, capsys):
    header = {
        "dense_0.weight": {"dtype": "BF16", "shape": [8, 4], "data_offsets": [0, 64]},
        "dense_0.bias": {"dtype": "F32", "shape": [8], "data_offsets": [64, 96]},
    }
    bad = _safetensors_file(specs / "bf16.st", header, b"\0" * 96)
    code, _, err = dlc_main(
        capsys, "run", specs / "small.dl", "--weights", bad, "--random-input", "--dim", "N=1"
    )
    # NumPy has no bfloat16 unless ml_dtypes (which onnx imports) has registered one
    assert code == 1 and (
        "dense_0.weight is BF16, which NumPy cannot hold" in err
        or "wrong dtype: dense_0.weight expected float32, found bfloat16" in err
    ), err


def test_nonfinite_weights_are_a_warning(specs, capsys):
    w = init_weights(load(specs / "small.dl"))
    w["dense_0.weight"][0, 0] = np.nan
    path = save_weights(w, specs / "nan.st")
    code, _, err = dlc_main(
        capsys,
        "compile",
        specs / "small.dl",
        "--target",
        "torch",
        "--weights",
        path,
        "-o",
        specs / "m.py",
    )
    assert code == 0 and "warning" in err and "NaN or inf" in err


def test_init_refuses_weights_larger_than_memory(tmp_path, capsys):
    spec = tmp_path / "huge.dl"
    spec.write_text("network Huge() {\n  input x: float32[N, 32]\n  dense(1000000000)\n}\n")
    out = tmp_path / "w.st"
    code, _, err = dlc_main(capsys, "init", spec, "--max-memory", "64G", "-o", out)
    assert code == 1 and not out.exists()
    first, source = err.splitlines()[:2]
    assert first.startswith(f"{spec}:3:3: error: initialising the weights of Huge needs 361.4 GiB")
    assert "more than the limit of 64.0 GiB" in first
    assert "the biggest layer is dense_0, 122.9 GiB: dense_0.weight [1000000000, 32]" in first
    assert source.endswith("dense(1000000000)")
    code, _, err = dlc_main(capsys, "init", spec, "-o", out)  # the default: available memory
    assert code == 1 and "of memory available" in err
    code, _, _ = dlc_main(capsys, "init", LENET, "--max-memory", "1M", "-o", out)
    assert code == 0 and out.exists()


def test_compile_torch_says_how_to_load_weights(specs, capsys):
    out = specs / "m.py"
    code, stdout, _ = dlc_main(
        capsys, "compile", specs / "small.dl", "--target", "torch", "--set", "h=5", "-o", out
    )
    assert code == 0
    assert (
        f"weights: dlc init {specs / 'small.dl'} --set=h=5 -o {specs / 'm.safetensors'}" in stdout
    )
    assert "Small().load_state_dict(load_file(" in stdout


def test_emitted_source_names_the_spec_without_the_machine(tmp_path, monkeypatch):
    assert '"""Small(h=8), from small.dl."""' in emit(
        load_source(SMALL, path=str(tmp_path / "small.dl"))
    )
    folder = Path(*["a_folder_name_long_enough_to_fill_a_line"] * 3)
    (tmp_path / folder).mkdir(parents=True)
    (tmp_path / folder / "small.dl").write_text(SMALL)
    monkeypatch.chdir(tmp_path)
    source = emit(load(folder / "small.dl"))
    assert f"\n{folder}/small.dl.\n" in source  # whole, on a line of its own
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff:
        (tmp_path / "m.py").write_text(source)
        check = subprocess.run(
            [ruff, "check", "--isolated", "--select", "E,W,F", "m.py"],
            capture_output=True,
            text=True,
        )
        assert check.returncode == 0, check.stdout


def test_version_has_one_source(capsys):
    code, out, _ = dlc_main(capsys, "--version")
    assert code == 0 and out == f"dlc {dlc.__version__}\n"
    assert importlib.metadata.version("dlc") == dlc.__version__


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell, capsys):
    pytest.importorskip("shtab")
    code, out, _ = dlc_main(capsys, "completion", shell)
    assert code == 0 and "compile" in out and "--backend" in out and "onnxruntime" in out
    if shell == "bash" and shutil.which("bash"):
        syntax = subprocess.run(["bash", "-n"], input=out, capture_output=True, text=True)
        assert syntax.returncode == 0, syntax.stderr


def test_every_argument_has_help_and_every_command_an_example():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, parser in sub.choices.items():
        assert "example:\n  " in parser.format_help(), name
        for action in parser._actions:
            assert action.help, f"dlc {name} {action.dest}"
    run_help = sub.choices["run"].format_help()
    assert "np.save('x.npy', np.random.rand(1, 3, 32, 32).astype('float32'))" in run_help


def test_a_failure_no_check_foresaw_is_one_line_not_a_traceback(tmp_path, capsys):
    """Token ids computed by arithmetic are not checked before the run: torch's own error
    still ends as one `dlc: error:` line with exit code 1."""
    pytest.importorskip("torch")
    spec = tmp_path / "a.dl"
    spec.write_text("network A() {\n  input t: int64[N, 4]\n  (t + 5) | embedding(10, 3)\n}\n")
    np.save(tmp_path / "ids.npy", np.array([[1, 2, 3, 9]]))
    code = main(["run", str(spec), "--input", str(tmp_path / "ids.npy"), "--backend", "torch"])
    err = capsys.readouterr().err
    assert (
        code == 1 and err.startswith("dlc: error: dlc run failed: IndexError") and "\n" == err[-1]
    )
    assert "Traceback" not in err
