"""The command line: golden IR text, the JSON contract, the table, exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
GOLDEN = Path(__file__).parent / "golden"
# The shared examples that must always compile, language v2's (examples/v2/) included.
EXAMPLES = sorted((ROOT.parent / "shared" / "examples").glob("**/*.dl"))


def dlc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dlc.compiler.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


@pytest.mark.parametrize("name", ["lenet5", "tcn"])
def test_ir_matches_the_reviewed_golden_text(name):
    """The golden files were read line by line against the spec (shapes, padding, names)."""
    out = dlc("ir", SPECS / f"{name}.dl")
    assert out.returncode == 0, out.stderr
    assert out.stdout == (GOLDEN / f"{name}.ir").read_text()


def test_check_every_bundled_spec_and_shared_example():
    files = sorted(SPECS.glob("*.dl")) + EXAMPLES
    out = dlc("check", *files)
    assert out.returncode == 0, out.stderr
    assert out.stdout.count(": ok") == len(files)


def test_summary_json_contract():
    out = dlc("summary", SPECS / "resnet18.dl", "--format", "json", "--set", "classes=10")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["network"] == "ResNet18"
    assert data["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 3, 224, 224]}]
    assert data["outputs"][0]["shape"] == ["N", 10]
    # torchvision resnet18 with a 10-class head: 11,689,512 - 1000*513 + 10*513
    assert data["params"] == 11_689_512 - 513_000 + 5_130
    assert data["macs"] == 1_814_073_344 - 512_000 + 5_120
    assert data["buffers"] == 2 * 4800 + 20  # running mean/var of 4,800 channels, 20 counters
    layer = data["layers"][0]
    assert set(layer) >= {"name", "op", "shape", "params", "macs", "line"}
    assert layer == {
        **layer,
        "name": "conv2d_0",
        "op": "conv2d",
        "shape": ["N", 64, 112, 112],
        "params": 64 * 3 * 7 * 7,
        "line": 15,
    }
    assert sum(entry["params"] for entry in data["layers"]) == data["params"]


def test_summary_json_keeps_symbolic_macs_as_a_formula_unless_bound():
    lstm = SPECS / "sentiment_lstm.dl"
    free = json.loads(dlc("summary", lstm, "--format", "json").stdout)
    # 2 bidirectional layers: 4*256*(128+256)*2 + 4*256*(512+256)*2 per step, dense 512*2
    per_step = 4 * 256 * (128 + 256) * 2 + 4 * 256 * (512 + 256) * 2
    assert free["macs"] == f"{per_step}*T + 1024"
    bound = json.loads(dlc("summary", lstm, "--format", "json", "--dim", "T=128").stdout)
    assert bound["macs"] == per_step * 128 + 1024
    assert bound["inputs"][0]["shape"] == ["N", 128]


def test_summary_table_folds_repeated_blocks_and_prints_totals():
    out = dlc("summary", SPECS / "resnet18.dl")
    assert out.returncode == 0, out.stderr
    assert "basic ×2" in out.stdout and "basic_0…1" in out.stdout
    assert "11,689,512" in out.stdout and "1,814,073,344" in out.stdout
    tcn = dlc("summary", SPECS / "tcn.dl").stdout
    assert "receptive field: 253" in tcn  # 1 + sum over 6 levels of 2 convs * 2 * 2**i


def test_summary_does_not_import_torch():
    code = (
        "import sys; from dlc.compiler.cli import main; main(['summary', sys.argv[1]]); "
        "sys.stderr.write(str(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'onnx', 'onnxruntime'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(SPECS / "resnet18.dl")], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stderr.strip() == "[]"


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("check", SPECS / "lenet5.dl"), 0, ""),
        (("summary", SPECS / "missing.dl"), 2, "no such file"),
        (("summary", SPECS / "lenet5.dl", "--network", "LeNet"), 2, "did you mean 'LeNet5'"),
        (("summary", SPECS / "lenet5.dl", "--set", "clases=3"), 2, "did you mean 'classes'"),
        (("summary", SPECS / "lenet5.dl", "--set", "classes"), 2, "NAME=VALUE"),
        (("summary", SPECS / "lenet5.dl", "--dim", "N=x"), 2, "positive integer"),
        (("summary", SPECS / "lenet5.dl", "--format", "xml"), 2, "invalid choice"),
    ],
)
def test_exit_codes(args, code, words):
    out = dlc(*args)
    assert out.returncode == code, out.stderr
    assert words in out.stderr
    assert "Traceback" not in out.stderr


def test_spec_error_exit_code_and_format(tmp_path):
    bad = tmp_path / "bad.dl"
    bad.write_text("network Net() {\n  input x: float32[N, 4]\n  dense(0)\n}\n")
    out = dlc("check", bad)
    assert out.returncode == 1
    first, source, caret = out.stderr.splitlines()[:3]
    assert first == f"{bad}:3:9: error: dense: argument 'units' must be a positive integer, got 0"
    assert source.endswith("  dense(0)") and caret.endswith("^")
