"""Pass pipelines: the textual form (grammar in pipeline.lark), parsed and printed.

    >>> p = parse_pipeline("fold-constants, dce,fuse-activation{clip=false}")
    >>> str(p)
    'fold-constants,dce,fuse-activation{clip=false}'

``str(parse_pipeline(s))`` is canonical (no spaces, options in the order written, values
as ``format_value`` writes them) and ``parse_pipeline(str(p)) == p`` for every pipeline.
Pass names and options are checked against the registry while parsing, so every error
points at its place: unknown pass or option (with a close match), a value of the wrong
type or outside its range (naming what is allowed), unbalanced braces, stray characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import lark

from nvmc.ir.printer import json_string
from nvmc.ir.errors import ParseError, SourceSpan, did_you_mean

from .base import OptionError, OptionSpec, Pass, format_value, get_pass, options_of, registered_passes

_INT = re.compile(r"[+-]?[0-9]+\Z")
_READABLE = {"NAME": "pass or option name", "BARE": "value", "STRING": "quoted string", "COMMA": "','",
             "LBRACE": "'{'", "RBRACE": "'}'", "EQUAL": "'='", "$END": "end of pipeline"}


@dataclass(frozen=True)
class PassSpec:
    """One element of a pipeline: a pass name and the options written for it (typed values)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    def build(self) -> Pass:
        cls = get_pass(self.name)
        fields = {s.name: s.field for s in options_of(cls)}
        return cls(**{fields[k]: v for k, v in self.options})

    def __str__(self) -> str:
        if not self.options:
            return self.name
        return self.name + "{" + ",".join(f"{k}={format_value(v)}" for k, v in self.options) + "}"


@dataclass(frozen=True)
class Pipeline:
    passes: tuple[PassSpec, ...] = ()
    source: str = field(default="", compare=False)

    def build(self) -> list[Pass]:
        return [spec.build() for spec in self.passes]

    def names(self) -> list[str]:
        return [spec.name for spec in self.passes]

    def __str__(self) -> str:
        return ",".join(str(spec) for spec in self.passes)

    def __len__(self) -> int:
        return len(self.passes)


@lru_cache(maxsize=1)
def _parser() -> lark.Lark:
    grammar = Path(__file__).with_name("pipeline.lark").read_text()
    return lark.Lark(grammar, parser="lalr", maybe_placeholders=True)


def parse_pipeline(text: str | Pipeline, *, filename: str = "pipeline") -> Pipeline:
    """Parse and check a pipeline string; raises ParseError with the place of the problem."""
    if isinstance(text, Pipeline):
        return text
    _check_braces(text, filename)
    try:
        tree = _parser().parse(text)
    except lark.exceptions.UnexpectedInput as e:
        raise _syntax_error(e, text, filename) from None
    known = registered_passes()
    specs = []
    for name_tok, options_tree in _pairs(tree):
        name = str(name_tok)
        if name not in known:
            raise _error(text, filename, name_tok, f"unknown pass '{name}'{did_you_mean(name, known)}",
                         hint=_unknown_pass_hint(name))
        specs.append(PassSpec(name, _options(text, filename, name, options_tree)))
    return Pipeline(tuple(specs), source=text)


def _pairs(tree: lark.Tree | None):
    """The (first, second) children of each element of a pass list or option list, skipping empty ones."""
    return [tuple(child.children) for child in (tree.children if tree else ()) if child is not None]


def _unknown_pass_hint(name: str) -> str:
    from .plugins import plugin_failures

    failures = plugin_failures()
    if name in failures:
        return f"the plugin providing '{name}' failed to load: {failures[name]}"
    return "'nvmc passes' lists the available passes"


def _options(text: str, filename: str, pass_name: str, tree: lark.Tree | None) -> tuple[tuple[str, Any], ...]:
    specs = {s.name: s for s in options_of(get_pass(pass_name))}
    out: dict[str, Any] = {}
    for key_tok, value_tok in _pairs(tree):
        key = str(key_tok)
        if key not in specs:
            hint = f"options of '{pass_name}': {', '.join(specs)}" if specs else f"'{pass_name}' takes no options"
            raise _error(text, filename, key_tok,
                         f"pass '{pass_name}' has no option '{key}'{did_you_mean(key, specs)}", hint=hint)
        if key in out:
            raise _error(text, filename, key_tok, f"option '{key}' of '{pass_name}' is given twice")
        try:
            out[key] = specs[key].check(_convert(specs[key], value_tok), pass_name)
        except OptionError as e:
            raise _error(text, filename, value_tok, e.message) from None
        except ValueError as e:  # a bad escape in a quoted string (JSON syntax)
            raise _error(text, filename, value_tok, f"bad string: {getattr(e, 'msg', e)}") from None
    return tuple(out.items())


def _convert(spec: OptionSpec, tok: lark.Token) -> Any:
    """The token's text as the option's type; left as text when it is not one (check() says so)."""
    raw = str(tok)
    if tok.type == "STRING":
        return json_string(raw)
    if spec.type is bool:
        return {"true": True, "false": False}.get(raw, raw)
    if spec.type is float or (spec.type is int and _INT.match(raw)):
        try:
            return spec.type(raw)
        except ValueError:  # not a number, or an int of more than 4300 digits: check() says what it takes
            return raw
    return raw


# ------------------------------------------------------------------------------ errors
def _span(text: str, line: int, col: int, length: int, filename: str) -> SourceSpan:
    lines = text.splitlines() or [""]
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    return SourceSpan(filename, line, col, src, max(1, length))


def _error(text: str, filename: str, tok: lark.Token, message: str, hint: str | None = None) -> ParseError:
    return ParseError(message, where=_span(text, tok.line, tok.column, len(str(tok)), filename), hint=hint)


def _check_braces(text: str, filename: str) -> None:
    """'{' and '}' must pair up (outside quoted strings): say which one does not."""
    open_at: list[tuple[int, int]] = []
    line, col, in_string, escaped = 1, 0, False, False
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        if in_string:
            in_string = ch != '"' or escaped
            escaped = ch == "\\" and not escaped
            continue
        if ch == '"':
            in_string = True
        elif ch == "{":
            open_at.append((line, col))
        elif ch == "}":
            if not open_at:
                raise ParseError("unbalanced braces: this '}' closes nothing",
                                 where=_span(text, line, col, 1, filename))
            open_at.pop()
    if open_at:
        line, col = open_at[-1]
        raise ParseError("unbalanced braces: this '{' is never closed", where=_span(text, line, col, 1, filename),
                         hint="close the options with '}'")


def _syntax_error(e: lark.exceptions.UnexpectedInput, text: str, filename: str) -> ParseError:
    lines = text.splitlines() or [""]
    line = max(1, getattr(e, "line", 1) or 1)
    col = max(1, getattr(e, "column", 1) or 1)
    if isinstance(e, lark.exceptions.UnexpectedToken):
        tok = e.token
        if tok.type == "$END":
            line, col = len(lines), len(lines[-1]) + 1
            got, length = "end of pipeline", 1
        else:
            got, length = f"'{tok}'", len(str(tok))
        expected = sorted({_READABLE.get(t, t) for t in e.expected})
        message = f"unexpected {got}; expected {', '.join(expected)}"
    elif isinstance(e, lark.exceptions.UnexpectedCharacters):
        src = lines[line - 1] if line <= len(lines) else ""
        message, length = f"unexpected character {src[col - 1:col]!r}", 1
    else:
        line, col = len(lines), len(lines[-1]) + 1
        message, length = "unexpected end of pipeline", 1
    return ParseError(message, where=_span(text, line, col, length, filename),
                      hint="a pipeline looks like: fold-constants,dce,fuse-activation{clip=false}")
