"""Terminal rendering with rich. Data structures never print themselves; this module does.

Colours follow rich's rules: off when the stream is not a terminal, off with NO_COLOR.
"""

from __future__ import annotations

import re
from functools import lru_cache

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nvmc.ir.units import binary, si  # noqa: F401 - the formatters every renderer uses

# What a terminal would act on instead of showing: C0 controls but tab and newline, DEL, C1
# (ESC starts colour, title and clear-screen sequences; CR overwrites a line), the Unicode
# line and paragraph separators (rich breaks a line at them) and the bidirectional overrides
# that reorder what is shown ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_UNSAFE_IN_NAME = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _escape_char(m: re.Match) -> str:
    c = ord(m.group())
    return {9: "\\t", 10: "\\n", 13: "\\r"}.get(c) or (f"\\x{c:02x}" if c < 256 else f"\\u{c:04x}")


def visible(text: str) -> str:
    """``text`` with every character a terminal would act on shown as an escape (``\\x1b``);
    tabs and newlines are kept."""
    return _UNSAFE.sub(_escape_char, text)


def one_line(text: str, limit: int = 200) -> str:
    """A name from a model or a file as one visible line: controls, tabs and newlines escaped,
    and at most ``limit`` characters (the middle elided: both ends identify a name)."""
    text = _UNSAFE_IN_NAME.sub(_escape_char, str(text))
    if len(text) > limit:
        keep = (limit - 1) // 2
        text = f"{text[:keep]}…{text[-keep:]}"
    return text


def styled(*parts: str | tuple[str, str]) -> Text:
    """Rich text from plain pieces and (piece, style) pairs; nothing in a piece is markup."""
    return Text.assemble(*((visible(p), "") if isinstance(p, str) else (visible(p[0]), p[1]) for p in parts))


class SafeConsole(Console):
    """A rich Console for text that holds names from models and files: markup and emoji codes
    are never interpreted, and control characters are shown escaped, on a terminal or not.
    Styling is done with :func:`styled` (rich ``Text``), never with markup in strings."""

    def __init__(self, **kwargs) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(visible(text), **kwargs)


@lru_cache(maxsize=None)
def console() -> Console:
    return SafeConsole()


@lru_cache(maxsize=None)
def err_console() -> Console:
    return SafeConsole(stderr=True)


MAX_MESSAGE_LINE = 2000  # characters: one error line is read by a person, not a 7.9 MB dump


def print_error(text: str) -> None:
    """An error's rendering on stderr; a line over MAX_MESSAGE_LINE characters keeps its two
    ends (where the file and the reason are) and says how much of the middle it left out."""
    half = MAX_MESSAGE_LINE // 2
    # escaped first (an escape is 4 characters long); only \n ends a line (splitlines would
    # also break one at a CR, a form feed or U+2028 from a name)
    lines = [ln if len(ln) <= MAX_MESSAGE_LINE else
             f"{ln[:half]} …({len(ln) - 2 * half:,} characters left out)… {ln[-half:]}"
             for ln in visible(text).split("\n")]
    err_console().print("\n".join(lines), soft_wrap=True)


def print_notices(notices) -> None:
    for notice in notices:
        print_error(f"note: {notice}")


def progress(text: str, *, quiet: bool = False):
    """A spinner on stderr while long work runs; nothing when quiet or stderr is not a terminal."""
    from contextlib import nullcontext

    if quiet or not err_console().is_terminal:
        return nullcontext()
    return err_console().status(styled(text), spinner="dots")


def report_table(title: str | None, columns, *, text=(), **kwargs) -> Table:
    """A report table that never loses what identifies a row. A text column (node, op, target,
    pipeline, prose; ``text``) wraps at words and folds a word too long for it onto more lines
    instead of cutting it; every other column is a number: right-aligned and never wrapped, so
    that on a narrow terminal rich narrows the text columns, not the figures."""
    table = Table(title=title, title_justify="left", **kwargs)
    for col in columns:
        if col in text:
            table.add_column(col, overflow="fold")
        else:
            table.add_column(col, justify="right", no_wrap=True)
    return table


def workload_table(workload, title: str, top: int = 10) -> Table:
    totals = workload.totals
    table = report_table(f"{title}: {totals['nodes']} nodes, {si(totals['macs'], 'MAC')}, "
                         f"{si(totals['params'], 'params')}, weights {binary(totals['weight_bytes'])}",
                         ("node", "op", "MACs", "share", "non-MAC ops", "params", "weights", "out act."),
                         text=("node", "op"))
    c = workload.columns
    macs = c["macs"]
    nonmac = sum(workload.nonmac.values())
    import numpy as np

    order = np.argsort(-(macs + nonmac), kind="stable")[:top]
    total = max(1, totals["macs"])
    for i in order:
        table.add_row(one_line(workload.names[i]), one_line(workload.ops[i]), si(int(macs[i]), ""),
                      f"{100 * macs[i] / total:.1f}%", si(int(nonmac[i]), ""), si(int(c["params"][i]), ""),
                      binary(c["weight_bytes"][i]), binary(c["output_bytes"][i]))
    return table
