"""Exceptions with a short ``reason`` code (the Prometheus label) and a specific message."""

from __future__ import annotations

from pathlib import Path

FAILURE_REASONS = (
    "empty",
    "not_hdf5",
    "truncated",
    "wrong_layout",
    "no_data",
    "too_large",
    "read_error",
    "missing",
    "not_wfm",
    "unsupported",
    "not_ready",
    "config",
    "internal",
    "no_time_column",
    "non_numeric",
    "unequal_lengths",
    "time_not_increasing",
    "bad_sidecar",
    "not_npz",
    "worker_lost",
    "unwritten_rows",
    "stalled",
)
"""Every ``reason`` a failed file can be counted under (``wavedqm_files_failed_total``)."""


class WavedqmError(Exception):
    """Base class of wavedqm's own errors."""


class ConfigError(WavedqmError):
    """A configuration key, value or type is wrong: the message names key, value, expectation."""


class UsageError(ConfigError):
    """A command-line option's value is wrong: the message starts with the option."""


class FileNotReady(WavedqmError):
    """The file is still being written (HDF5 lock held, size changing): retry later."""

    def __init__(self, path: Path | str, why: str) -> None:
        self.path = Path(path)
        self.why = why
        super().__init__(f"{self.path}: not ready: {why}")


class InputFileError(WavedqmError):
    """A bad input file. ``reason`` is a short label (``not_hdf5``, ``truncated``, ``empty``,
    ``wrong_layout``, ``no_data``, ``too_large``, ``read_error``, ``not_wfm``, ``unsupported``)."""

    def __init__(self, path: Path | str, reason: str, what: str, expected: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.what = what
        self.expected = expected
        msg = f"{self.path}: {what}"
        if expected:
            msg += f" (expected {expected})"
        super().__init__(msg)

    def __reduce__(self) -> tuple:
        """Pickled with its fields (it crosses from a ``wavedqm reprocess`` worker)."""
        return (type(self), (self.path, self.reason, self.what, self.expected))


class OutputError(WavedqmError, OSError):
    """Writing one of our outputs or state files failed for a reason that is not the input
    file's fault (disk full, quota, read-only or vanished folder, I/O error): the file is
    retried later, never recorded as failed. An ``OSError`` too, so that code catching
    write errors still does."""

    def __init__(self, target: Path | str, why: str) -> None:
        self.target = Path(target)
        self.why = why
        super().__init__(f"cannot write {self.target}: {why}")

    def __reduce__(self) -> tuple:
        return (type(self), (self.target, self.why))

    def __str__(self) -> str:
        return f"cannot write {self.target}: {self.why}"


class CountedFileError(InputFileError):
    """A file that failed and was already counted (by the router): ``str()`` is the full
    message, ``reason`` its label; whoever records it must not count it again."""

    def __init__(self, path: Path | str, reason: str, message: str) -> None:
        super().__init__(path, reason, message)
        self.args = (message,)

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.reason, str(self)))

    def __str__(self) -> str:
        return str(self.args[0])
