"""Files nvmc reads and writes: inputs are remembered, outputs never destroy anything.

One policy for every file (the model, its external data and .npz sidecar, target and
technology TOMLs, calibration data, sweep specs and databases, every report and model out):

* **Reading** goes through :func:`read_input` (or :func:`note_input` where a library opens
  the file): only a regular file is read, never a FIFO (which would block), a device or a
  directory, and its identity (device, inode) joins the run's inputs.
* **Writing** goes through :func:`atomic_write`: the destination must be a regular file or a
  new name (``-`` is stdout); a device, FIFO, socket or directory is refused, and so is any
  path that is, by any spelling or link, a file this process read as an input or one the
  caller names. The bytes go to a temporary file in the same directory, which is then
  renamed over the destination, so a crash or Ctrl-C leaves the old file or the new one.
  :func:`check_output` makes the same check early, before slow work runs.

Graphs also remember the files they were read from in ``graph.meta["files"]``, so a save
can be checked against them in a process that read other things in between.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import NvmcError

__all__ = ["INPUTS_NPZ_BYTES", "atomic_write", "check_folder", "check_output", "forget_inputs", "load_npz",
           "note_input", "read_input", "same_file", "write_output"]

# Input arrays (.npz given with --inputs or quantize{inputs=...}) unpack to at most this much.
INPUTS_NPZ_BYTES = 1 << 30

# (st_dev, st_ino) of every file this process has read as an input -> the path it was read by.
_INPUTS: dict[tuple[int, int], str] = {}


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None if stat.S_ISREG(mode) else "not a regular file"


def _os_error(e: OSError, verb: str, path, hint: str | None = None) -> NvmcError:
    reason = "the file name is too long" if e.errno == errno.ENAMETOOLONG else (e.strerror or str(e))
    return NvmcError(f"cannot {verb}: {reason}", where=str(path), hint=hint)


def note_input(path: str | os.PathLike) -> None:
    """Remember ``path`` (a file a library opened for us) as one of this run's inputs."""
    try:
        st = os.stat(path)
    except OSError:
        return
    _INPUTS.setdefault((st.st_dev, st.st_ino), str(path))


def forget_inputs() -> None:
    """Start a new run: nothing read so far counts as an input (tests, long-lived processes)."""
    _INPUTS.clear()


def read_input(path: str | os.PathLike, what: str = "file", *, limit: int | None = None,
               error: type[NvmcError] = NvmcError) -> bytes:
    """The bytes of a regular file the user gave, remembered as an input of this run.

    Refuses, with one message naming ``what``: a missing file, a directory, a FIFO or device
    (never opened, so never blocks), a file larger than ``limit`` bytes."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{what} not found", where=str(path), hint="check the path") from None
    except OSError as e:
        raise _os_error(e, f"read the {what}", path) from None
    kind = _kind(st.st_mode)
    if kind:
        raise error(f"the {what} is {kind}; nvmc reads regular files only", where=str(path),
                    hint="give the path of a regular file")
    if limit is not None and st.st_size > limit:
        raise error(f"the {what} has {st.st_size:,} bytes; nvmc reads at most {limit:,} here", where=str(path))
    try:  # O_NONBLOCK: should the path have become a FIFO since the stat, opening does not wait
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise _os_error(e, f"read the {what}", path) from None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise error(f"the {what} is {_kind(st.st_mode)}; nvmc reads regular files only", where=str(path))
        data = f.read(limit + 1 if limit is not None else -1)
    if limit is not None and len(data) > limit:
        raise error(f"the {what} has more than {limit:,} bytes; nvmc reads at most {limit:,} here", where=str(path))
    _INPUTS.setdefault((st.st_dev, st.st_ino), str(path))
    return data


def load_npz(path: str | os.PathLike, what: str = ".npz file", *, max_bytes: int,
             error: type[NvmcError] = NvmcError) -> dict:
    """The arrays of an .npz archive, without pickles and without unpacking more than
    ``max_bytes`` in all (the sizes in the zip directory bound what decompression yields)."""
    import numpy as np

    data = read_input(path, what, error=error)
    if data[:4] != b"PK\x03\x04":  # else np.load would try it as a pickle and say so
        raise error(f"the {what} is not an .npz archive", where=str(path))
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(info.file_size for info in z.infolist())
            if unpacked > max_bytes:
                raise error(f"the {what} unpacks to {unpacked:,} bytes, more than the {max_bytes:,} it may hold here",
                            where=str(path), hint="is it the right file? (a zip bomb is refused)")
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
    except NvmcError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, RuntimeError) as e:
        raise error(f"the {what} cannot be read: {e}", where=str(path)) from None


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` are the same existing file (resolving links)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output(output: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *,
                 option: str = "-o") -> None:
    """Raise unless writing ``output`` is safe: ``-`` (stdout), a new name, or a regular file
    that is neither one of ``inputs`` nor any input this process has read."""
    if str(output) == "-":
        return
    hint = f"choose another {option} path" + (" ('-' writes to standard output)" if option not in ("-o", "--timeloop-dir")
                                              else "")
    st = _replaced_file(output, hint, hint)
    if st is not None:
        read = _INPUTS.get((st.st_dev, st.st_ino))
        named = next((p for p in inputs if p is not None and str(p) != "-" and same_file(output, p)), None)
        if read is not None or named is not None:
            raise NvmcError(f"the output would overwrite the input '{named if named is not None else read}'",
                            where=str(output), hint=hint)
    check_folder(output, where=str(output) if option == "-o" else f"{option} {output}")




def check_folder(path: str | os.PathLike, *, where: str | None = None) -> Path:
    """The directory ``path`` would be written in; raise when it does not exist."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        ok = folder.is_dir()
    except OSError as e:
        raise _os_error(e, "write", where or path) from None
    if not ok:
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


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], *,
                 inputs: Iterable[str | os.PathLike | None] = (), overwrite_inputs: bool = False) -> Path:
    """Write ``data`` (bytes, text as UTF-8, or a callable given the open binary file) to ``path``
    under a temporary name in the same directory, then rename it into place.

    The path must pass :func:`check_output` (``overwrite_inputs`` waives the input check, not
    the one for devices and FIFOs)."""
    path = Path(path)
    _check_destination(path, inputs, overwrite_inputs)
    folder = check_folder(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp", dir=folder)
    except OSError as e:
        raise _os_error(e, "write", path) from None
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
        _check_destination(path, inputs, overwrite_inputs)  # it may have changed while we wrote
        try:
            mode = os.stat(path).st_mode & 0o7777  # keep the permissions of the file being replaced
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _os_error(e, "write", path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_destination(path: Path, inputs, overwrite_inputs: bool) -> None:
    if overwrite_inputs:
        _replaced_file(path, "choose another path", None)
    else:
        check_output(path, inputs)


def _replaced_file(path: str | os.PathLike, hint: str, os_error_hint: str | None) -> os.stat_result | None:
    """The stat of the file writing ``path`` would replace (None: a new name); raise unless it
    is a regular file."""
    try:
        st = os.stat(path)  # follows links: a link to a device is the device
    except FileNotFoundError:
        return None
    except OSError as e:
        raise _os_error(e, "write", path, os_error_hint) from None
    kind = _kind(st.st_mode)
    if kind:
        raise NvmcError(f"cannot write: the path is {kind}; nvmc writes only regular files or new names",
                        where=str(path), hint=hint)
    return st
