"""The exception hierarchy every user-facing nvmc error belongs to.

An error renders as one first line ``error: <where>: <message>``, optionally followed by
the offending source line with a caret under the place, and a hint. The CLI prints
``render()`` and exits with code 2; nothing else of an ``NvmcError`` reaches the user.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceSpan:
    """A place in a text the user wrote: file (or 'pipeline', '<text>'), 1-based line and column."""

    file: str
    line: int
    col: int
    source_line: str = ""
    length: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def caret(self) -> str:
        if not self.source_line:
            return ""
        return f"  {self.source_line}\n  {' ' * (self.col - 1)}{'^' * max(1, self.length)}"


class NvmcError(Exception):
    """Base of every error caused by user input (files, options, models, targets)."""

    exit_code = 2  # bad input; 70 where the error is a bug in nvmc or a plug-in that it names

    def __init__(self, message: str, *, where: str | SourceSpan | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def render(self) -> str:
        where = f"{_shorten(_flat(str(self.where)))}: " if self.where else ""
        lines = [f"error: {where}{_flat(self.message)}"]
        if isinstance(self.where, SourceSpan) and self.where.source_line:
            lines.append(self.where.caret())
        if self.hint:
            lines.append(f"  hint: {_flat(self.hint)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def _flat(text: str) -> str:
    """One line: a newline or CR in a name quoted by a message (a file, a node) shown escaped."""
    return text.replace("\r", "\\r").replace("\n", "\\n") if "\n" in text or "\r" in text else text


def _shorten(text: str, limit: int = 240) -> str:
    """A place (a path, ``--set KEY=VALUE``) as given, its middle left out past ``limit`` characters."""
    if len(text) <= limit:
        return text
    half = (limit - 20) // 2
    return f"{text[:half]}…({len(text) - 2 * half:,} more)…{text[-half:]}"


class ModelError(NvmcError):
    """The model file cannot be read or imported (not ONNX, truncated, unsupported construct)."""


class ParseError(NvmcError):
    """A syntax error in a text form (.nvir, pipeline string); ``where`` is a SourceSpan."""


class VerifyError(NvmcError):
    """The graph breaks an IR invariant (SSA, acyclicity, types, op invariants)."""


class ShapeError(NvmcError):
    """A step needs a concrete dimension that the model leaves unbound."""


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (a library's can run to pages), or its type's name."""
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def did_you_mean(word: str, choices) -> str:
    """' — did you mean 'x'?' when a close match exists, else ''."""
    import difflib

    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" — did you mean '{match[0]}'?" if match else ""
