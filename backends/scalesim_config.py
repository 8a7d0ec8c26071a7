"""A SCALE-Sim config (``.cfg``) as an nvmc target of the ``systolic`` family.

``--target scale.cfg`` (base ``systolic-sram-28nm``) or ``--target scale.cfg@BASE`` (any
systolic target: a shipped name or a .toml path) in ``nvmc compile`` / ``nvmc explain``,
and ``nvmc.compile(model, "scale.cfg")`` or :func:`load_scalesim_config` in Python.

SCALE-Sim v3 (scalesim 3.0.0, ``scalesim/scale_config.py: read_conf_file``) describes the
array and its three SRAMs; what it says replaces the base target's value, everything else
(memory technology, node, clock, energies, buffer word width, DRAM) is the base's:

=============================================  ======================================
SCALE-Sim                                      nvmc target key
=============================================  ======================================
``[architecture_presets] ArrayHeight``         ``array.rows``
``ArrayWidth``                                 ``array.cols``
``Dataflow`` (os / ws / is)                    ``array.dataflow``
``IfmapSramSzkB`` / ``FilterSramSzkB`` /       ``ifmap_buffer`` / ``filter_buffer`` /
``OfmapSramSzkB``                              ``ofmap_buffer.capacity`` (see words)
``[run_presets] InterfaceBandwidth``           ``interface.mode`` ("calc" | "user")
``[architecture_presets] Bandwidth``           ``interface.bandwidth_words_per_cycle``
=============================================  ======================================

**Words.** SCALE-Sim counts words (its ``single_layer_sim`` fixes ``word_size = 1`` byte), so
its "kB" are kilo-words. nvmc reads one word as one operand element at the model's precision:
a buffer of ``S`` kB holds ``S * 1024`` elements, i.e. ``S * 1024 * word_bytes`` bytes, with
``word_bytes = 1`` by default (an 8-bit model: SCALE-Sim's own word; a SCALE-Sim topology read by
nvmc is 8-bit for that reason). Give ``word_bytes=`` for another precision. The family's
``interface.bandwidth_words_per_cycle`` counts SCALE-Sim's one-byte words, so ``Bandwidth``
is multiplied by ``word_bytes`` too (unchanged at the default).

SCALE-Sim runs every layer from DRAM to DRAM, so the target sets ``buffers.activations =
"dram"`` too (a SCALE-Sim convention, not a line of the file). The target's description
and every estimate's notes say which values came from the config, which from SCALE-Sim's
conventions and which from the base; ``nvmc explain --target scale.cfg`` shows each key's
file and line.

Refused, because they change SCALE-Sim's numbers in ways nvmc does not model:
``SparsitySupport = true``, ``UseRamulatorTrace = True``, and custom SRAM layouts in USER
mode. Keys of SCALE-Sim's memory model nvmc has no use for are ignored: address offsets,
request-buffer sizes, bank counts (with custom layouts off), ``run_name`` (the target's name).

**Interface keys.** ``InterfaceBandwidth`` and ``Bandwidth`` set ``interface.mode`` and
``interface.bandwidth_words_per_cycle``, the systolic family's bandwidth-limited timing
(SCALE-Sim's USER mode; backends/systolic_bandwidth.py).
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nvmc.ir.errors import did_you_mean, first_line
from nvmc.ir.files import read_input

from .errors import TargetError
from .target import Target, load_target

FAMILY = "systolic"
DEFAULT_BASE = "systolic-sram-28nm"
MAX_CONFIG_BYTES = 1 << 20
ARCH = "architecture_presets"
RUN = "run_presets"
# (section, SCALE-Sim key, nvmc key): kilo-word buffer sizes, array, dataflow
_ARRAY = ((ARCH, "ArrayHeight", "array.rows"), (ARCH, "ArrayWidth", "array.cols"))
_BUFFERS = ((ARCH, "IfmapSramSzkB", "ifmap_buffer.capacity"), (ARCH, "FilterSramSzkB", "filter_buffer.capacity"),
            (ARCH, "OfmapSramSzkB", "ofmap_buffer.capacity"))
INTERFACE_KEYS = ("interface.mode", "interface.bandwidth_words_per_cycle")


def is_scalesim_config(spec: Any) -> bool:
    """Whether a ``--target`` value names a SCALE-Sim config: ``PATH.cfg`` or ``PATH.cfg@BASE``."""
    if not isinstance(spec, (str, os.PathLike)):
        return False
    return re.fullmatch(r"(?s).+\.cfg(@[^/\\]+)?", os.fspath(spec), flags=re.IGNORECASE) is not None


def split_spec(spec: str | os.PathLike) -> tuple[Path, str]:
    """``PATH.cfg[@BASE]`` -> (path, base target)."""
    text = os.fspath(spec)
    m = re.fullmatch(r"(?s)(.+\.cfg)(?:@([^/\\]+))?", text, flags=re.IGNORECASE)
    if m is None:
        raise TargetError("expected PATH.cfg or PATH.cfg@BASE_TARGET", where=text)
    return Path(m.group(1)), m.group(2) or DEFAULT_BASE


@dataclass(frozen=True)
class _Entry:
    value: str
    line: int


class _Config:
    """The cfg's values by (section, key), case-insensitive as configparser reads them, with lines."""

    def __init__(self, text: str, where: str):
        self.where = where
        parser = configparser.ConfigParser()  # SCALE-Sim's own reader (it uses the configparser backport)
        try:
            parser.read_string(text, source=where)
        except configparser.Error as e:
            line = getattr(e, "lineno", None) or next((n for n, _ in getattr(e, "errors", ())), None)
            first = first_line(e)
            raise TargetError(f"not a SCALE-Sim config (INI syntax): {first}",
                              where=f"{where}:{line}" if line else where) from None
        self.parser = parser
        self.lines = _key_lines(text)

    def has(self, section: str, key: str) -> bool:
        return self.parser.has_option(section, key)

    def get(self, section: str, key: str) -> _Entry:
        if not self.parser.has_section(section):
            raise TargetError(f"missing section [{section}]{did_you_mean(section, self.parser.sections())}",
                              where=self.where, hint="a SCALE-Sim config has [general], [architecture_presets], "
                                                     "[layout], [sparsity] and [run_presets] (SCALE-Sim's configs/scale.cfg)")
        if not self.parser.has_option(section, key):
            raise TargetError(f"[{section}] missing key '{key}'{did_you_mean(key.lower(), self.parser.options(section))}",
                              where=self.where, hint="see SCALE-Sim's configs/scale.cfg for the keys it reads")
        return _Entry(self.parser.get(section, key, raw=True).strip(), self.lines.get((section, key.lower()), 0))

    def at(self, entry: _Entry) -> str:
        return f"{self.where}:{entry.line}" if entry.line else self.where

    def whole(self, section: str, key: str) -> tuple[int, _Entry]:
        entry = self.get(section, key)
        try:
            value = int(entry.value)
        except ValueError:
            raise TargetError(f"[{section}] {key} = {entry.value!r}: expected a whole number", where=self.at(entry)) \
                from None
        if value < 1:
            raise TargetError(f"[{section}] {key} = {value}: must be at least 1", where=self.at(entry))
        return value, entry

    def flag(self, section: str, key: str) -> tuple[bool, _Entry | None]:
        if not self.has(section, key):
            return False, None
        entry = self.get(section, key)
        return entry.value.lower() == "true", entry


def _key_lines(text: str) -> dict[tuple[str, str], int]:
    """(section, lower-case key) -> 1-based line (configparser keeps no positions)."""
    lines, section = {}, None
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.match(r"\s*\[([^\]]+)\]", line)
        if m:
            section = m.group(1).strip()
            continue
        m = re.match(r"([^\s:=#;][^:=]*?)\s*[:=]", line)
        if m and section is not None:
            lines.setdefault((section, m.group(1).strip().lower()), number)
    return lines


def load_scalesim_config(spec: str | os.PathLike, base: str | os.PathLike | Target | None = None, *,
                         word_bytes: int = 1) -> Target:
    """The target a SCALE-Sim config describes on top of ``base`` (module docstring).

    ``spec``: ``PATH.cfg`` or ``PATH.cfg@BASE`` (an explicit ``base`` wins over ``@BASE``)."""
    path, named_base = split_spec(spec)
    if isinstance(word_bytes, bool) or not isinstance(word_bytes, int) or not 1 <= word_bytes <= 8:
        raise TargetError(f"word_bytes = {word_bytes!r}: expected 1 to 8 bytes per SCALE-Sim word", where=str(path))
    base_target = load_target(base if base is not None else named_base)
    if base_target.family != FAMILY:
        raise TargetError(f"base target '{base_target.name}' is of family '{base_target.family}'; a SCALE-Sim config "
                          f"describes a systolic array", where=f"{path}@{base_target.name}",
                          hint=f"choose a systolic base, e.g. {path}@{DEFAULT_BASE} (nvmc targets lists them)")
    data = read_input(path, "SCALE-Sim config", limit=MAX_CONFIG_BYTES, error=TargetError)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TargetError("not a UTF-8 text file (a SCALE-Sim config is INI text)", where=str(path)) from None
    cfg = _Config(text, str(path))
    return _build(cfg, path, data, base_target, word_bytes)


def _build(cfg: _Config, path: Path, data: bytes, base: Target, word_bytes: int) -> Target:
    from .registry import family_module

    schema = family_module(FAMILY).SCHEMA
    _refuse_unmodelled(cfg)
    values, origins = dict(base.values), dict(base.origins)
    provenance = dict(base.provenance)
    from_cfg: list[str] = []

    def put(key: str, value: Any, entry: _Entry, note: str) -> None:
        section, _, name = key.partition(".")
        try:
            values[key] = schema[section][name].check(value)
        except ValueError as e:
            raise TargetError(f"{key} (from the SCALE-Sim config): {e}", where=cfg.at(entry)) from None
        origins[key] = cfg.at(entry)
        provenance[key] = ("target", f"SCALE-Sim config {cfg.at(entry)}: {note}")
        from_cfg.append(key)

    for section, name, key in _ARRAY:
        value, entry = cfg.whole(section, name)
        put(key, value, entry, f"[{section}] {name} = {value}")
    values["array.size"], origins["array.size"] = None, "default"   # rows and cols say the size
    provenance.pop("array.size", None)
    entry = cfg.get(ARCH, "Dataflow")
    if entry.value not in ("os", "ws", "is"):
        raise TargetError(f"[{ARCH}] Dataflow = {entry.value!r}: expected os, ws or is{did_you_mean(entry.value, ('os', 'ws', 'is'))}",
                          where=cfg.at(entry))
    put("array.dataflow", entry.value, entry, f"[{ARCH}] Dataflow = {entry.value}")
    for section, name, key in _BUFFERS:
        kwords, entry = cfg.whole(section, name)
        put(key, kwords * 1024 * word_bytes, entry,
            f"[{section}] {name} = {kwords} kilo-words x 1024 x {word_bytes} B per word (1 word = 1 operand element)")

    notes = _interface(cfg, schema, put, word_bytes)
    values["buffers.activations"], origins["buffers.activations"] = "dram", "SCALE-Sim convention"
    provenance["buffers.activations"] = ("assumed", "SCALE-Sim runs every layer from DRAM to DRAM (a convention of "
                                                    "the simulator, not a line of the config)")
    run_name = cfg.get("general", "run_name").value if cfg.has("general", "run_name") else path.stem
    description = f"SCALE-Sim config {path.name} (run {run_name!r}) on base target '{base.name}'" \
        + "".join(f"; {n}" for n in notes)
    digest = hashlib.sha256(data + b"\nbase:" + base.hash.encode() + f"\nword_bytes:{word_bytes}".encode())
    return Target(run_name or path.stem, FAMILY, description, path, values, origins, digest.hexdigest(),
                  provenance=provenance)


def _interface(cfg: _Config, schema: dict, put, word_bytes: int) -> list[str]:
    """Map InterfaceBandwidth / Bandwidth; notes on what could not be mapped."""
    entry = cfg.get(RUN, "InterfaceBandwidth")
    mode = entry.value.upper()
    if mode not in ("CALC", "USER"):
        raise TargetError(f"[{RUN}] InterfaceBandwidth = {entry.value!r}: expected CALC or USER", where=cfg.at(entry))
    bandwidth = None
    if mode == "USER":
        bw_entry = cfg.get(ARCH, "Bandwidth")
        try:
            widths = [int(x) for x in bw_entry.value.split(",")]
        except ValueError:
            raise TargetError(f"[{ARCH}] Bandwidth = {bw_entry.value!r}: expected whole numbers of words per cycle "
                              "(comma-separated)", where=cfg.at(bw_entry)) from None
        if not widths or min(widths) < 1:
            raise TargetError(f"[{ARCH}] Bandwidth = {bw_entry.value!r}: must be at least 1 word per cycle",
                              where=cfg.at(bw_entry))
        bandwidth = (widths[0], bw_entry)
    put("interface.mode", mode.lower(), entry, f"[{RUN}] InterfaceBandwidth = {mode}")
    notes = []
    if bandwidth is not None:
        # the key counts SCALE-Sim's 1-byte words: a word of word_bytes operand bytes is word_bytes of them
        put("interface.bandwidth_words_per_cycle", bandwidth[0] * word_bytes, bandwidth[1],
            f"[{ARCH}] Bandwidth = {bandwidth[0]} words/cycle" + (f" x {word_bytes} B per word" if word_bytes > 1 else ""))
        reads = {name: cfg.get("layout", name).value for name in ("IfmapSRAMBankBandwidth", "FilterSRAMBankBandwidth")
                 if cfg.has("layout", name)}
        differ = {k: v for k, v in reads.items() if v != str(bandwidth[0])}
        if differ:
            notes.append("SCALE-Sim 3.0.0 in USER mode reads the ifmap and filter from DRAM at [layout] "
                         + ", ".join(f"{k} = {v}" for k, v in differ.items())
                         + f" words/cycle, not at Bandwidth = {bandwidth[0]}; nvmc's one interface uses Bandwidth")
    return notes


def _refuse_unmodelled(cfg: _Config) -> None:
    for section, key, what in (("sparsity", "SparsitySupport", "SCALE-Sim's structured-sparsity mapping"),
                               (RUN, "UseRamulatorTrace", "Ramulator DRAM traces")):
        on, entry = cfg.flag(section, key)
        if on:
            raise TargetError(f"[{section}] {key} = {entry.value}: nvmc does not model {what}", where=cfg.at(entry),
                              hint=f"set {key} to false to compare with nvmc")
    user = cfg.has(RUN, "InterfaceBandwidth") and cfg.get(RUN, "InterfaceBandwidth").value.upper() == "USER"
    for key in ("IfmapCustomLayout", "FilterCustomLayout"):
        on, entry = cfg.flag("layout", key)
        if on and user:
            raise TargetError(f"[layout] {key} = {entry.value}: in USER mode SCALE-Sim evaluates SRAM bank layouts, "
                              "which nvmc does not model", where=cfg.at(entry), hint=f"set {key} to False")


def origin_notes(target: Target) -> list[str]:
    """The estimate's note on where a config-made target's values came from: the config (file
    lines), SCALE-Sim's conventions, --set, or the base target (empty for other targets)."""
    if target.path is None or target.path.suffix.lower() != ".cfg" or target.family != FAMILY:
        return []
    where = str(target.path)
    from_cfg = [k for k, o in target.origins.items() if o.startswith(f"{where}:")]
    m = re.match(r"SCALE-Sim config .* on base target '(.*?)'(?:; (.*))?$", target.description, flags=re.S)
    if not from_cfg or m is None:
        return []
    sets = [k for k, o in target.origins.items() if o == "--set"]
    convention = [f"{k} = {target.values[k]}" for k, o in target.origins.items() if o == "SCALE-Sim convention"]
    return [f"target from SCALE-Sim config {target.path.name}: {', '.join(from_cfg)} from the config"
            + (f"; {', '.join(convention)} (SCALE-Sim convention)" if convention else "")
            + (f"; {', '.join(sets)} from --set" if sets else "")
            + f"; everything else (technology, node, clock, energies, word widths, DRAM) from base target "
              f"'{m.group(1)}'", *([m.group(2)] if m.group(2) else [])]
