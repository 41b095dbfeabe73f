"""Checkpoints without pickle: tensors (model, optimiser state, random-generator states) in
one safetensors file, everything else (epoch, step, schedule and early-stop state, history,
optimiser hyper-parameters) in JSON. Each checkpoint is a folder written under a temporary
name and renamed into place, so a crash mid-write leaves the previous checkpoints whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ..compiler.errors import DlcError

FOLDER = "checkpoints"


def name(epoch: int, step: int) -> str:
    """``e0003-s00000``: after ``epoch`` whole epochs and ``step`` batches of the next;
    names sort in training order."""
    return f"e{epoch:04d}-s{step:06d}"


def save(run_dir: Path, key: str, tensors: dict[str, torch.Tensor], state: dict, keep: int) -> Path:
    """Write checkpoint ``key`` into ``run_dir/checkpoints`` and keep only the ``keep``
    newest."""
    folder = run_dir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / key
    tmp = folder / f".{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in tensors.items()},
            tmp / "state.safetensors",
        )
        (tmp / "state.json").write_text(json.dumps(state, indent=1), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DlcError(f"cannot write checkpoint {final}: {exc.strerror or exc}") from None
    for old in sorted(p for p in folder.iterdir() if not p.name.startswith("."))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest(run_dir: Path) -> Path | None:
    folder = run_dir / FOLDER
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if (p / "state.json").is_file())
    return found[-1] if found else None


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        state = json.loads((path / "state.json").read_text(encoding="utf-8"))
        tensors = load_file(path / "state.safetensors")
    except (OSError, ValueError) as exc:  # safetensors' errors are ValueError subclasses
        raise DlcError(f"cannot read checkpoint {path}: {exc}") from None
    return tensors, state


def optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimiser's state as tensors (``optim.<param>.<key>``) and JSON (the rest)."""
    sd = opt.state_dict()
    tensors, plain = {}, {}
    for index, entry in sd["state"].items():
        for k, v in entry.items():
            if isinstance(v, torch.Tensor):
                tensors[f"optim.{index}.{k}"] = v
            else:
                plain[f"{index}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "plain": plain}


def load_optimizer_state(opt: torch.optim.Optimizer, tensors: dict, saved: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            index, k = key[len("optim.") :].split(".", 1)
            state.setdefault(int(index), {})[k] = v
    for key, v in saved["plain"].items():
        index, k = key.split(".", 1)
        state.setdefault(int(index), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
