"""Typed options: one spec and one checker for every value a user sets by name, whoever owns it:
a pass option (``quantize{bits=8}``), a target key (``[array] rows = 128``, ``--set array.rows=128``)
or a sweep spec key (``batch = [1, 8]``).

An :class:`Option` states a value's kind, its range or choices and its default. ``check`` returns
the value in its canonical form (a float for a float option given ``1``, whole bytes for a capacity
given ``"4MiB"``, parsed by :mod:`nvmc.ir.units`) or raises :class:`OptionValueError`, which says
what is wrong and carries the value given and what is allowed. The owner adds whose option it is
and where it was written (the pass, the target file and line, the sweep spec), since only it knows.

    >>> Option("int", minimum=2, maximum=16).check(8)
    8
    >>> Option("capacity", nvmc_limits=True).check("4MiB")
    4194304
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .errors import did_you_mean
from .units import parse_capacity

KINDS = ("bool", "int", "float", "str", "choice", "capacity", "list")
# nvmc's range, for options held to it (``nvmc_limits``): beyond it a cost model overflows (inf,
# NaN, int64 wrap-around) or allocates per-unit arrays of absurd size, and no real hardware lies
# there. An option's own ``maximum`` takes precedence over MAX_COUNT.
MAX_COUNT = 1 << 20            # whole numbers (array rows, PEs, banks, ...)
MAX_MAGNITUDE = 1e30           # |x| of a real number (Hz, B/s, J, s, ...)
MIN_MAGNITUDE = 1e-30          # |x| of a non-zero real number
MAX_CAPACITY = 1 << 60         # bytes (1 EiB)
MAX_NAME = 200                 # characters of a string value (a device, a technology)
_INT64 = 1 << 63               # an option without nvmc_limits is still a machine integer
_BARE_VALUE = re.compile(r"[A-Za-z0-9_.+\-][A-Za-z0-9_.+:\-]*\Z")  # a value a pipeline may write unquoted


class OptionValueError(ValueError):
    """A value an option does not allow. ``str()`` says what is wrong with it ("must be positive,
    got -4"); ``value`` is the value given, ``allowed`` the option's values in words and
    ``suggestion`` a close choice (" — did you mean 'os'?", or "")."""

    def __init__(self, reason: str, value: Any, allowed: str, suggestion: str = ""):
        super().__init__(reason + suggestion)
        self.value = value
        self.allowed = allowed
        self.suggestion = suggestion


@dataclass(frozen=True)
class Option:
    """One typed option: ``kind`` is one of KINDS ("choice" is a string from ``choices``;
    "capacity" is whole bytes, "4MiB" accepted). ``minimum``/``maximum`` bound numbers
    (inclusive); ``positive`` makes numbers > 0 where no ``minimum`` is given. ``nvmc_limits``
    holds the value to nvmc's range (MAX_COUNT, MAX_MAGNITUDE, MIN_MAGNITUDE, MAX_CAPACITY;
    strings non-empty names of at most MAX_NAME printable characters), as hardware data must be."""

    kind: str
    help: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    nvmc_limits: bool = False

    def allowed(self) -> str:
        """The allowed values in words: 'an integer in [1, 16]', 'one of channel, tensor'."""
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        noun = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
                "capacity": "a capacity such as '4MiB'", "list": "a list"}[self.kind]
        if self.positive and self.minimum is None:
            noun = noun.replace("an integer", "a positive integer").replace("a number", "a positive number")
        lo, hi = self.minimum, self.maximum
        if lo is None and hi is None:
            return noun
        if hi is None:
            return f"{noun} >= {format_value(lo)}"
        if lo is None:
            return f"{noun} <= {format_value(hi)}"
        return f"{noun} in [{format_value(lo)}, {format_value(hi)}]"

    def check(self, value: Any) -> Any:
        """The value in its canonical form; OptionValueError says what is wrong with it."""
        if self.kind == "bool":
            if not isinstance(value, bool):
                self._fail(f"expected true or false, got {value!r}", value)
            return value
        if self.kind in ("str", "choice"):
            return self._check_text(value)
        if self.kind == "list":
            if not isinstance(value, (list, tuple)):
                self._fail(f"expected a list, got {show_value(value)}", value)
            return value
        if self.kind == "capacity":
            try:
                value = parse_capacity(value)
            except ValueError as e:
                self._fail(str(e), value)
            if self.nvmc_limits and value > MAX_CAPACITY:
                self._fail(f"{value} bytes is beyond nvmc's range (at most 1 EiB = {MAX_CAPACITY} bytes)", value)
        elif self.kind == "int":
            value = self._check_int(value)
            if self.choices and value not in self.choices:
                self._fail(f"expected one of {', '.join(map(str, self.choices))}, got {value}", value)
        elif self.kind == "float":
            value = self._check_float(value)
        else:  # pragma: no cover - a spec bug
            raise AssertionError(self.kind)
        if self.minimum is None and self.positive and value <= 0:
            self._fail(f"must be positive, got {value}", value)
        if self.minimum is not None and value < self.minimum:
            self._fail(f"must be >= {self.minimum}, got {value}", value)
        if self.maximum is not None and value > self.maximum:
            self._fail(f"must be <= {self.maximum}, got {value}", value)
        return value

    def _check_text(self, value: Any) -> str:
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
                self._fail(f"expected one of {', '.join(map(repr, self.choices))}, got {value!r}", value, hint)
        elif not isinstance(value, str) or (self.nvmc_limits and not value):
            self._fail(f"expected a {'non-empty ' if self.nvmc_limits else ''}string, got {value!r}", value)
        elif self.nvmc_limits and (len(value) > MAX_NAME or not value.isprintable()):  # names of data files, sizes
            self._fail(f"expected a name of at most {MAX_NAME} printable characters, got {value[:40]!r}"
                       + ("..." if len(value) > 40 else ""), value)
        return value

    def _check_int(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self._fail(f"expected a whole number, got {value!r}", value)
        if self.nvmc_limits and self.maximum is None and value > MAX_COUNT:
            self._fail(f"must be <= {MAX_COUNT} (nvmc's range for a count), got {value}", value)
        if not self.nvmc_limits and not -_INT64 <= value < _INT64:  # no pass needs more (4300+ digits: no str())
            self._fail(f"expected a 64-bit integer, got {show_value(value)}", value)
        return value

    def _check_float(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self._fail(f"expected a number, got {value!r}", value)
        if self.nvmc_limits:
            if abs(value) > MAX_MAGNITUDE or not math.isfinite(value):  # abs first: a huge int has no float
                self._fail(f"expected a finite number of magnitude at most {MAX_MAGNITUDE:g}, got {value!r}", value)
            value = float(value)
            if value and abs(value) < MIN_MAGNITUDE:
                self._fail(f"{value!r} is too small for nvmc (a non-zero magnitude is at least {MIN_MAGNITUDE:g})",
                           value)
            return value
        if isinstance(value, int) and abs(value) >= 2**1024:  # beyond a float: float() would raise
            self._fail(f"expected a number a float holds, got {show_value(value)}", value)
        if value != value:
            self._fail("expected a number, got nan (nan is in no range)", value)
        return float(value)

    def _fail(self, reason: str, value: Any, suggestion: str = "") -> None:
        raise OptionValueError(reason, value, self.allowed(), suggestion)


def format_value(value: Any) -> str:
    """An option value as a pipeline writes it (and reads it back)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back to the same float
    if isinstance(value, str) and not _BARE_VALUE.match(value):
        return json.dumps(value)
    return str(value)


def show_value(value: Any) -> str:
    """A value as an error message quotes it: strings quoted and cut at 60 characters, integers
    beyond 64 bits by their size (one of 4300+ digits has no str())."""
    if isinstance(value, int) and not isinstance(value, bool) and not -_INT64 <= value < _INT64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, str):
        return f"'{value[:60]}'" + ("..." if len(value) > 60 else "")
    return format_value(value)
