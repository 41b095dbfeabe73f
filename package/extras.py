"""Optional packages: which extra of pyproject.toml brings each one, and the pip command
that installs it here (a source checkout or an installed package)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from .compiler.errors import DlcError

# Importable name -> the extra that installs it.
EXTRAS = {
    "torch": "torch",
    "onnx": "onnx",
    "onnxruntime": "onnx",
    "safetensors": "weights",
    "PIL": "train",
    "matplotlib": "plot",
    "tensorboard": "tensorboard",
    "optuna": "search",
    "pygls": "lsp",
    "lsprotocol": "lsp",
}


class MissingPackage(DlcError):
    """An optional package is not installed; the message says how to install it."""

    def __init__(self, package: str, purpose: str, extra: str | None = None):
        command = install_command(extra or EXTRAS[package])
        super().__init__(f"{purpose} needs {package}, which is not installed: {command}")


def install_command(extra: str) -> str:
    """``pip install -e "CHECKOUT[extra]"`` in a source checkout, else
    ``pip install "dlc[extra]"``."""
    root = Path(__file__).resolve().parent.parent
    # Only a checkout has pyproject.toml beside the package's folder (an installed copy
    # lives in site-packages).
    if not (root / "pyproject.toml").is_file():
        return f'pip install "dlc[{extra}]"'
    where = "." if root == Path.cwd().resolve() else str(root)
    return f'pip install -e "{where}[{extra}]"'


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` (of an optional package), or raise MissingPackage saying that
    ``purpose`` (``"--backend torch"``, ``"reading weights"``) needs it."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name not in EXTRAS:  # some other module is missing: not ours to explain
            raise
        raise MissingPackage(exc.name, purpose) from None


def check_installed(package: str, purpose: str, extra: str | None = None) -> None:
    """Raise MissingPackage unless ``package`` can be imported (without importing it: the
    CLI checks its flags before doing any work). ``extra``: the one to suggest, when the
    purpose needs more than the package's own (``dlc train``: torch and the rest)."""
    if importlib.util.find_spec(package) is None:
        raise MissingPackage(package, purpose, extra)
