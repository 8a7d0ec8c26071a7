"""Writing files safely: never over something the user gave us, never half-written.

Every file nvmc writes (.onnx, .nvir + .npz, JSON/CSV/HTML reports, sweep exports) goes
through :func:`atomic_write`: the bytes go to a temporary file in the same directory,
which is then renamed over the destination, so a crash or Ctrl-C leaves either the old
file or the new one, never a torn one. :func:`check_not_input` refuses an output path
that names one of the inputs (also through a symlink or a hard link), before anything is
written.

Graphs remember the files they were read from in ``graph.meta["files"]`` (the model,
its external-data files, its .npz sidecar), so a save can be checked against all of them.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import NvmcError

__all__ = ["atomic_write", "check_folder", "check_not_input", "same_file", "write_output"]


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are the same existing file (resolving links)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], *,
                    option: str = "-o") -> None:
    """Raise when writing ``output`` would replace one of ``inputs``."""
    if str(output) == "-":
        return
    for path in inputs:
        if path is not None and str(path) != "-" and same_file(output, path):
            raise NvmcError(f"the output would overwrite the input '{path}'", where=str(output),
                            hint=f"choose another {option} path")


def check_folder(path: str | os.PathLike, *, where: str | None = None) -> Path:
    """The directory ``path`` would be written in; raise when it does not exist."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NvmcError(f"cannot write '{path.name}': the directory '{folder}' does not exist",
                        where=where or str(path), hint="create the directory first or choose another path")
    return folder


def write_output(path: str | os.PathLike, text: str) -> None:
    """Write a text report: ``-`` is stdout, anything else a file written atomically; either
    way it ends with a newline."""
    text = text if text.endswith("\n") else text + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(path, text)


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a callable given the open binary file) to ``path``
    under a temporary name in the same directory, then rename it into place."""
    path = Path(path)
    folder = check_folder(path)
    if path.is_dir():
        raise NvmcError("cannot write: the path is a directory", where=str(path), hint="give a file name")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise NvmcError(f"cannot write: {e.strerror}", where=str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        if path.exists():  # keep the permissions of the file being replaced
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise NvmcError(f"cannot write: {e.strerror or e}", where=str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
