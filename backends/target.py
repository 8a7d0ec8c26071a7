"""Targets: TOML descriptions of hardware, validated against their family's schema.

A target file::

    schema = "nvmc.target/1"
    name = "sot-mram"
    family = "gpu-llc"
    description = "GTX 1080 Ti-class GPU, 2.75 MiB SOT-MRAM L2"

    [llc]
    technology = "sot-mram"
    capacity = "2816KiB"

The top-level keys are common to every target; the sections and their keys are declared by
the family (``SCHEMA`` in its module, a dict section -> key -> :class:`Field`). Loading
checks every key: an unknown one gets a did-you-mean, a missing, negative or mistyped one
an error naming the file, line and key. ``--set section.key=value`` overrides a key after
loading, with the same checks. Values left out take the family's default (often a cited
number of the technology library, resolved by the family).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

from nvmc.ir.errors import did_you_mean
from nvmc.ir.files import read_input
from nvmc.ir.limits import MAX_TOML_KEY_PARTS, toml_key_problem
from nvmc.ir.options import MAX_CAPACITY, MAX_COUNT, MAX_MAGNITUDE, MIN_MAGNITUDE, Option  # noqa: F401 - re-exported
from nvmc.ir.units import format_capacity

from .errors import TargetError

TARGET_SCHEMA = "nvmc.target/1"
TARGETS_DIR = Path(__file__).resolve().parent / "targets"
MAX_TARGET_BYTES = 4 << 20  # a target is a hand-written TOML file

_TOP_KEYS = ("schema", "name", "family", "description")


@dataclass(frozen=True)
class Field(Option):
    """One key of a target section: an :class:`~nvmc.ir.options.Option` held to nvmc's range
    (so no estimate overflows) whose numbers are > 0 unless ``minimum`` says otherwise, plus what
    the family needs to fill it in. ``kind`` is "str", "int", "float", "capacity" or "choice".
    ``default=None`` and not ``required`` means the family fills the value in (e.g. from the
    device in the technology library). ``check`` raises OptionValueError, a ValueError.
    """

    positive: bool = True
    nvmc_limits: bool = True
    required: bool = False
    unit: str = ""
    data: str = ""                  # "str" keys that name a data file: its folder under data/
    default_ref: tuple | None = None            # a default taken from the library (family.Params)
    default_provenance: tuple[str, str] | None = None   # (kind, note) of a default number


@dataclass
class Target:
    """A validated target: its values by dotted key, where each came from, and its hash."""

    name: str
    family: str
    description: str
    path: Path | None
    values: dict[str, Any]                      # "llc.capacity" -> 2883584 (None: family default)
    origins: dict[str, str]                     # "llc.capacity" -> "targets/sram.toml:9" | "--set"
    file_sha256: str
    overrides: tuple[tuple[str, Any], ...] = ()
    cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    provenance: dict[str, tuple[str, str]] = field(default_factory=dict)   # key -> (kind, note) written inline

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def hash(self) -> str:
        """sha256 of the target file's bytes plus the applied --set overrides (reproducibility)."""
        h = hashlib.sha256(self.file_sha256.encode())
        for key, value in self.overrides:
            h.update(f"\n{key}={json.dumps(value, sort_keys=True)}".encode())
        return h.hexdigest()

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "<memory>"

    @contextmanager
    def library_errors(self) -> Iterator[None]:
        """Report a technology-library error (unknown device, missing data) against this
        target's file, keeping the library's own location after it."""
        try:
            yield
        except TargetError as e:
            raise TargetError(e.message, where=f"{self.source}: {e.where}" if e.where else self.source,
                              hint=e.hint) from None

    def where(self, key: str) -> str:
        """Where ``key``'s value came from, for an error message: ``--set key=value`` or the file."""
        return f"--set {key}={self.describe(key)}" if self.origins.get(key) == "--set" else self.source

    def with_overrides(self, sets: Iterable[str | tuple[str, Any]]) -> "Target":
        """A copy with ``section.key=value`` overrides applied and checked."""
        from .registry import family_module

        module = family_module(self.family)
        schema = module.SCHEMA
        aliases = getattr(module, "SET_ALIASES", {})  # short spellings, e.g. systolic's 'array=128x128'
        values, origins, applied = dict(self.values), dict(self.origins), list(self.overrides)
        for item in sets:
            if isinstance(item, tuple):
                key, raw, text = item[0], item[1], f"{item[0]}={item[1]}"
            else:
                key, raw, text = _split_set(item)
            key = aliases.get(key, key)
            section, _, name = key.partition(".")
            known = [f"{s}.{k}" for s, keys in schema.items() for k in keys]
            if section not in schema or name not in schema[section]:
                raise TargetError(f"unknown key '{key}' for family '{self.family}'{did_you_mean(key, known)}",
                                  where=f"--set {text}", hint=f"keys: {', '.join(known)}")
            field = schema[section][name]
            if field.kind in ("str", "choice") and not isinstance(item, tuple) and not isinstance(raw, str):
                raw = text.partition("=")[2].strip()  # a name is text even when it reads as TOML (0x4, 1e3)
            try:
                values[key] = field.check(raw)
            except ValueError as e:
                raise TargetError(f"{key}: {e}", where=f"--set {text}") from None
            origins[key] = "--set"
            applied.append((key, values[key]))
        provenance = {k: v for k, v in self.provenance.items() if origins.get(k) != "--set"}
        return Target(self.name, self.family, self.description, self.path, values, origins, self.file_sha256,
                      tuple(applied), provenance=provenance)

    def describe(self, key: str) -> str:
        value = self.values.get(key)
        return format_capacity(value) if key.endswith("capacity") and isinstance(value, int) else str(value)


def _split_set(text: str) -> tuple[str, Any, str]:
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise TargetError("expected KEY=VALUE, e.g. llc.capacity=8MiB", where=f"--set {text}")
    return key, _parse_value(raw.strip()), text


def _parse_value(raw: str) -> Any:
    """A TOML value when it parses as one (8, 0.5, true, "x"), else the bare string (8MiB, sot-mram)."""
    if toml_key_problem(raw) is not None:  # tomllib is quadratic in a dotted key's parts
        raise TargetError(f"a dotted key of more than {MAX_TOML_KEY_PARTS} parts (a.b.c...) in a --set value",
                          where=f"--set ...={raw[:40]}…", hint="a --set value is a number, a name or a capacity")
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except ValueError:  # TOMLDecodeError, or an integer of more than 4300 digits
        return raw


# ------------------------------------------------------------------ loading
def shipped_targets() -> dict[str, Path]:
    """Name -> file of every shipped target (and those of plugin families)."""
    from .registry import plugin_target_dirs

    return dict(_targets_in((TARGETS_DIR, *map(Path, plugin_target_dirs()))))


@lru_cache(maxsize=8)
def _targets_in(folders: tuple[Path, ...]) -> tuple[tuple[str, Path], ...]:  # listed once per run
    found: dict[str, Path] = {}
    for folder in folders:
        for p in sorted(folder.glob("*.toml")):
            found.setdefault(p.stem, p)
    return tuple(found.items())


def load_target(spec: str | Path | Target, sets: Iterable[str] = ()) -> Target:
    """A shipped target by name, or a TOML file by path; then ``--set`` overrides."""
    if isinstance(spec, Target):
        return spec.with_overrides(sets) if sets else spec
    text = str(spec)
    shipped = shipped_targets()
    if text in shipped:
        path = shipped[text]
    elif text.endswith(".toml") or "/" in text or Path(text).exists():
        path = Path(text)
    else:
        raise TargetError(f"unknown target '{text}'{did_you_mean(text, shipped)}",
                          hint=f"shipped targets: {', '.join(shipped)} (nvmc targets lists them), "
                               "or give a path to a .toml file")
    target = parse_target(read_input(path, "target file", limit=MAX_TARGET_BYTES, error=TargetError), path)
    sets = list(sets)
    return target.with_overrides(sets) if sets else target


def parse_target(data: bytes, path: Path) -> Target:
    from .registry import families, family_module

    where = str(path)
    try:
        text = data.decode("utf-8")
        deep = toml_key_problem(text)  # tomllib would take minutes over a key of 60,000 parts
        if deep is not None:
            raise TargetError(f"line {deep}: a dotted key of more than {MAX_TOML_KEY_PARTS} parts (a.b.c...)",
                              where=where, hint="a target's keys nest two levels ([section] key): check for a "
                                                "runaway repetition")
        doc = tomllib.loads(text)
    except UnicodeDecodeError:
        raise TargetError("not a UTF-8 text file", where=where) from None
    except ValueError as e:  # TOMLDecodeError, or an integer of more than 4300 digits
        raise TargetError(f"not valid TOML: {e}", where=where) from None
    loc = _Locator(text, where)

    for key in _TOP_KEYS[:3]:
        if key not in doc:
            raise TargetError(f"missing required key '{key}'", where=where,
                              hint='a target starts with schema = "nvmc.target/1", name = "...", family = "..."')
    if doc["schema"] != TARGET_SCHEMA:
        raise TargetError(f"schema = {doc['schema']!r}: expected '{TARGET_SCHEMA}'", where=loc(None, "schema"))
    for key in _TOP_KEYS[1:]:
        if key in doc and (not isinstance(doc[key], str) or (key != "description" and not doc[key])):
            raise TargetError(f"{key} = {doc[key]!r}: expected a non-empty string", where=loc(None, key))
    if doc["family"] not in families():
        raise TargetError(f"family = '{doc['family']}': unknown family{did_you_mean(doc['family'], families())}",
                          where=loc(None, "family"), hint=f"families: {', '.join(families())}")
    schema = family_module(doc["family"]).SCHEMA

    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    provenance: dict[str, tuple[str, str]] = {}
    for key, entries in doc.items():
        if key in _TOP_KEYS:
            continue
        if key not in schema:
            allowed = [*_TOP_KEYS, *schema]
            raise TargetError(f"unknown key '{key}'{did_you_mean(key, allowed)}", where=loc(None, key),
                              hint=f"family '{doc['family']}' has sections: {', '.join(schema)}")
        if not isinstance(entries, dict):
            raise TargetError(f"'{key}' must be a section [{key}]", where=loc(None, key))
        for name, raw in entries.items():
            if name not in schema[key]:
                raise TargetError(f"[{key}] unknown key '{name}'{did_you_mean(name, schema[key])}",
                                  where=loc(key, name), hint=f"[{key}] keys: {', '.join(schema[key])}")
            if isinstance(raw, dict):  # { value = 16, source = "..." }: a number with its provenance
                raw, provenance[f"{key}.{name}"] = _with_provenance(raw, f"[{key}] {name}", loc(key, name))
            try:
                values[f"{key}.{name}"] = schema[key][name].check(raw)
            except ValueError as e:
                raise TargetError(f"[{key}] {name} = {_show(raw)}: {e}", where=loc(key, name)) from None
            origins[f"{key}.{name}"] = loc(key, name)
    for section, keys in schema.items():
        for name, spec in keys.items():
            dotted = f"{section}.{name}"
            if dotted in values:
                continue
            if spec.required:
                raise TargetError(f"[{section}] missing required key '{name}' ({spec.help})", where=where)
            values[dotted] = spec.check(spec.default) if spec.default is not None else None
            origins[dotted] = "default"
    return Target(doc["name"], doc["family"], doc.get("description", ""), path, values, origins,
                  hashlib.sha256(data).hexdigest(), provenance=provenance)


_PROVENANCE = ("source", "derived", "assumed")


def _with_provenance(raw: dict, what: str, where: str) -> tuple[Any, tuple[str, str]]:
    """(value, (kind, note)) of an inline table ``{ value = ..., source|derived|assumed = "..." }``."""
    kinds = [k for k in _PROVENANCE if k in raw]
    unknown = set(raw) - {"value", *_PROVENANCE}
    if "value" not in raw or len(kinds) != 1 or unknown:
        raise TargetError(f"{what}: a table here is {{ value = ..., source = \"...\" }} (or derived = / assumed = "
                          f"instead of source), got keys {', '.join(sorted(raw))}", where=where)
    note = raw[kinds[0]]
    if not isinstance(note, str) or not note.strip():
        raise TargetError(f"{what}: {kinds[0]} must say where the number comes from (a non-empty string)", where=where)
    return raw["value"], (kinds[0], note)


def _show(raw: Any) -> str:
    return json.dumps(raw) if isinstance(raw, (str, bool)) else repr(raw)


class _Locator:
    """file:line of a key in a TOML text (best effort: tomllib keeps no positions)."""

    def __init__(self, text: str, where: str):
        self.lines = text.splitlines()
        self.where = where

    def __call__(self, section: str | None, key: str) -> str:
        current = None
        key_re = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*=")
        header_re = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]")
        for i, line in enumerate(self.lines, start=1):
            m = header_re.match(line)
            if m:
                current = m.group(1)
                if section is None and current == key:
                    return f"{self.where}:{i}"
                continue
            if current == section and key_re.match(line):
                return f"{self.where}:{i}"
        return self.where
