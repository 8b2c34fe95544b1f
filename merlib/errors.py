"""merlib's own errors, and the checks every command makes on the folder it writes into.

An error of the kinds below is a problem with what the user gave — a corpus, a media file, a setting, a
checkpoint, an output folder — not a bug in merlib. Its message says what is wrong, names the file, and says
what to do. The ``merlib`` command line prints such an error as one line and exits with status 2; any other
exception is a bug and keeps its traceback (``merlib --debug …`` shows the traceback of every error).

    MerlibError                    the base class: "the input is wrong, here is the fix"
    ├── DataError                  a corpus file or folder: unreadable, misnamed, missing, wrong layout
    │   └── MediaError             a wav/flac/mp4 that cannot be decoded (merlib.data.media)
    ├── ConfigError                a setting or option that cannot work
    ├── CheckpointError            a weights file that cannot be read or does not fit the model
    └── OutputError                an output path that is a file, cannot be written, or holds another build

``DataError``, ``ConfigError``, ``CheckpointError`` and ``OutputError`` are also ``ValueError`` s and
``MediaError`` a ``RuntimeError``, as they were before this module existed, so ``except ValueError`` in code
that uses merlib keeps working.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class MerlibError(Exception):
    """A problem with the user's input; the message names the file and the fix."""


class DataError(MerlibError, ValueError):
    """A corpus file or folder merlib cannot use: unreadable, misnamed, missing, or laid out wrongly."""


class MediaError(DataError, RuntimeError):
    """A media file could not be decoded; the message names the file and what to do."""


class ConfigError(MerlibError, ValueError):
    """A setting, or a combination of settings, that cannot work."""


class CheckpointError(MerlibError, ValueError):
    """A checkpoint that cannot be read (truncated, not a checkpoint) or does not fit the model asked for."""


class OutputError(MerlibError, ValueError):
    """An output path that is an existing file, cannot be written, or holds a different build."""


#: OSError numbers that describe the user's disk or permissions rather than a bug: reported like MerlibError.
USER_OS_ERRORS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EISDIR,
                  errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ENOTEMPTY}


def is_user_error(err: BaseException) -> bool:
    """True for errors the command line reports in one line: merlib's own, and the disk's (a missing file,
    no permission, a full disk, a read-only file system)."""
    if isinstance(err, (MerlibError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                        NotADirectoryError)):
        return True
    return isinstance(err, OSError) and err.errno in USER_OS_ERRORS


def describe(err: BaseException) -> str:
    """The one-line message for :func:`is_user_error` errors, with the fix added to the disk's own errors."""
    if isinstance(err, MerlibError) or not isinstance(err, OSError) or err.errno is None:
        return str(err)  # merlib's own message, already naming the file and the fix
    where = f" {err.filename}" if err.filename else ""
    what = err.strerror or str(err)
    fix = {
        errno.ENOSPC: "free some space or write somewhere else (--out); a rerun resumes where this stopped",
        errno.EDQUOT: "free some space or write somewhere else (--out); a rerun resumes where this stopped",
        errno.EROFS: "this file system is read-only; choose an output folder you can write to",
        errno.EACCES: "you may not write or read there; choose another folder or fix its permissions",
        errno.EPERM: "you may not write or read there; choose another folder or fix its permissions",
        errno.ENOENT: "check the path (a typo? a download that did not finish?)",
        errno.ENOTDIR: "a part of this path is a file, not a folder; check the path",
    }.get(err.errno, "check the path")
    return f"{what}:{where}; {fix}"


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Refuse an output folder merlib cannot write: an existing file, or a folder (or the nearest existing
    parent of one to be created) without write permission. Returns the path; creates nothing.

    Raises:
        OutputError: naming the path, the option it came from, and what to do.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is an existing file, not a folder; give a folder path "
                          "(a new one is created)")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(f"{option} {path}: {probe} is a file, so no folder can be made below it; "
                          "choose another path")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {probe} (permission denied); choose a folder "
                          "you can write to")
    return path
