"""Front-end benchmark (issue: parse -> IR -> shapes -> counts must be cheap).

Prints, measured in this one run on this machine:
  1. ResNet-50 in process: dlc's front end vs constructing the equivalent hand-written
     torch.nn model and summing its parameters (the ratio is the point);
  2. the whole `dlc summary specs/resnet18.dl` process, wall time, and which heavy modules
     that path imports (torch and numpy must not be; rich draws the table);
  3. generated chains of 100 / 1,000 / 10,000 layers, to show linear scaling.

    python bench/frontend.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from timing import median_time

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the hand-written torch references live there


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from dlc.compiler import load, load_source

    spec = ROOT / "specs" / "resnet50.dl"
    dlc_s = median_time(lambda: load(spec).params, args.repeat)
    print(f"ResNet-50 front end (parse, IR, shapes, counts): {dlc_s * 1e3:8.2f} ms")
    print("  by stage: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in stages(spec, args.repeat)))
    try:
        import torch
        from reference_models import REFERENCES

        torch.set_num_threads(2)
        factory = REFERENCES["resnet50.dl"][0]
        torch_s = median_time(lambda: sum(p.numel() for p in factory().parameters()), args.repeat)
        print(f"ResNet-50 torch.nn construction + param sum:     {torch_s * 1e3:8.2f} ms")
        print(f"  ratio torch / dlc: {torch_s / dlc_s:.1f}x (target >= 25x)")
    except ImportError:
        print("  (torch not installed: no comparison)")

    # As a user runs it: the `dlc` script beside this interpreter (not a version-manager
    # shim), with bytecode caching on (as installed packages have it; a warm-up call writes
    # the caches even where PYTHONDONTWRITEBYTECODE is set for development).
    script = Path(sys.executable).with_name("dlc")
    cmd = [str(script) if script.exists() else sys.executable, "summary"]
    if not script.exists():
        cmd[1:1] = ["-m", "dlc.compiler.cli"]
    cmd.append(str(ROOT / "specs" / "resnet18.dl"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    wall = median_time(lambda: subprocess.run(cmd, check=True, capture_output=True, env=env), 7)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, dlc.compiler.cli as c; c.main(['summary', sys.argv[1]]);"
            "print(*(f'{m}: {m in sys.modules}' for m in ('torch', 'numpy', 'rich', 'lark')),"
            " sep=', ', file=sys.stderr)",
            str(ROOT / "specs" / "resnet18.dl"),
        ],
        capture_output=True,
        text=True,
    )
    print(
        f"`dlc summary specs/resnet18.dl` whole process: {wall * 1e3:8.1f} ms (target <= 200 ms)\n"
        f"  imported on that path: {probe.stderr.strip()}"
    )

    print("generated chain of dense+relu layers (time should grow linearly):")
    base = None
    for layers in (100, 1_000, 10_000):
        body = "\n".join("  dense(64); relu" for _ in range(layers // 2))
        src = f"network Deep() {{\n  input x: float32[N, 64]\n{body}\n}}\n"
        s = median_time(lambda src=src: load_source(src).counts, 3 if layers > 1000 else 10)
        base = base or s / layers
        print(
            f"  {layers:>6} layers: {s * 1e3:9.1f} ms  ({s / layers * 1e6:6.1f} us/layer, "
            f"{s / layers / base:4.2f}x the 100-layer rate)"
        )


def stages(spec: Path, repeat: int) -> list[tuple[str, float]]:
    """Median seconds of each front-end stage on its own, each from the previous one's result."""
    from dlc.compiler.analysis.counting import count
    from dlc.compiler.elaborate.elaborator import elaborate
    from dlc.compiler.frontend.program import load_program

    program = load_program(spec)
    network = program.root_networks[0]
    graph = elaborate(program, network)
    return [
        ("parse", median_time(lambda: load_program(spec), repeat)),
        ("elaborate", median_time(lambda: elaborate(program, network), repeat)),
        ("count", median_time(lambda: count(graph), repeat)),
    ]


if __name__ == "__main__":
    main()
