"""Writing outputs atomically: a temporary file beside the target, then a rename, so a
reader never sees a half-written file and a failure leaves the old one in place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..compiler.errors import DlcError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def target_folder(path: Path) -> Path:
    """The folder that ``path`` goes in, where a writer stages its temporary files; a
    DlcError when there is no such folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DlcError(f"cannot write {path}: no such directory {folder}")
    return folder


def atomic_write(path: str | Path, write: Callable[[str], object]) -> Path:
    """Call ``write(temporary path)``, then rename onto ``path``: a reader never sees a
    half-written file, and a failure leaves the old file in place."""
    path = Path(path)
    folder = target_folder(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise DlcError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; keep what open() would give
        os.replace(tmp, path)
    except OSError as exc:
        raise DlcError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
