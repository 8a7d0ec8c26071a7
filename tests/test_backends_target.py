"""Target files: loading, schema validation with located errors, --set overrides, hashing."""

from __future__ import annotations

import pytest

from nvmc.backends import TargetError, load_target, shipped_targets
from nvmc.ir.units import format_capacity, parse_capacity

GOOD = """\
schema = "nvmc.target/1"
name = "mine"
family = "gpu-llc"
description = "my GPU"

[llc]
technology = "sot-mram"
capacity = "4MiB"
"""


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(spec, sets=()) -> TargetError:
    with pytest.raises(TargetError) as info:
        load_target(spec, sets)
    return info.value


def test_shipped_targets_load():
    names = set(shipped_targets())
    assert {"sram", "stt-mram", "sot-mram"} <= names
    for name in ("sram", "stt-mram", "sot-mram"):
        t = load_target(name)
        assert t.family == "gpu-llc" and t.name == name
        # the SOT L2 is the SOT cell at VGSOT-4MTJ density (targets/sot-mram.toml says why)
        assert t["llc.technology"] == {"sot-mram": "vgsot-mram"}.get(name, name)
        assert t["llc.capacity"] == 2816 * 1024


def test_user_file_and_defaults(tmp_path):
    t = load_target(str(write(tmp_path, GOOD)))
    assert t.name == "mine" and t["llc.capacity"] == 4 * 2**20
    assert t["tiling.block_m"] == 128 and t.origins["tiling.block_m"] == "default"
    assert t["gpu.utilization"] is None          # filled from the device by the family
    assert t.origins["llc.capacity"].endswith("mine.toml:8")


@pytest.mark.parametrize("text,expected", [
    ("4MiB", 4 * 2**20), ("2816KiB", 2816 * 1024), ("1.5 MiB", 3 * 2**19), ("512kB", 512_000), ("4096", 4096),
    (4096, 4096),
])
def test_parse_capacity(text, expected):
    assert parse_capacity(text) == expected


@pytest.mark.parametrize("bad", ["4 parsecs", "-4MiB", "0MiB", True, 1.5, "MiB", "0.3B"])
def test_parse_capacity_rejects(bad):
    with pytest.raises(ValueError):
        parse_capacity(bad)


def test_format_capacity():
    assert format_capacity(4 * 2**20) == "4MiB" and format_capacity(2816 * 1024) == "2.75MiB"


def test_unknown_target_did_you_mean():
    e = error_of("sot-mrma")
    assert "unknown target 'sot-mrma'" in e.message and "did you mean 'sot-mram'" in e.message
    assert "sram" in e.hint


def test_missing_file():
    e = error_of("nowhere/mine.toml")
    assert "not found" in e.message and e.where == "nowhere/mine.toml"


def test_unknown_key_with_location(tmp_path):
    path = write(tmp_path, GOOD.replace("capacity =", "capacty ="))
    e = error_of(str(path))
    assert e.where == f"{path}:8"
    assert "unknown key 'capacty'" in e.message and "did you mean 'capacity'" in e.message


def test_unknown_section(tmp_path):
    e = error_of(str(write(tmp_path, GOOD + "\n[tilling]\nblock_m = 64\n")))
    assert "unknown key 'tilling'" in e.message and "did you mean 'tiling'" in e.message


def test_missing_required_field(tmp_path):
    path = write(tmp_path, GOOD.replace('technology = "sot-mram"\n', ""))
    e = error_of(str(path))
    assert "missing required key 'technology'" in e.message and str(path) in e.where


def test_missing_top_level_key(tmp_path):
    e = error_of(str(write(tmp_path, GOOD.replace('family = "gpu-llc"\n', ""))))
    assert "missing required key 'family'" in e.message


@pytest.mark.parametrize("line,fragment", [
    ('block_m = -4', "must be positive"),
    ('block_m = 64.5', "expected a whole number"),
    ('block_m = "64"', "expected a whole number"),
])
def test_negative_and_mistyped(tmp_path, line, fragment):
    path = write(tmp_path, GOOD + f"\n[tiling]\n{line}\n")
    e = error_of(str(path))
    assert fragment in e.message and "[tiling] block_m" in e.message
    assert e.where == f"{path}:11"


def test_bad_capacity_and_choice(tmp_path):
    e = error_of(str(write(tmp_path, GOOD.replace('"4MiB"', '"4 parsecs"'))))
    assert "[llc] capacity" in e.message and "not a capacity" in e.message
    e = error_of(str(write(tmp_path, GOOD + 'iso = "areaa"\n')))
    assert "did you mean 'area'" in e.message


def test_bad_schema_family_and_toml(tmp_path):
    assert "expected 'nvmc.target/1'" in error_of(str(write(tmp_path, GOOD.replace("target/1", "target/9")))).message
    e = error_of(str(write(tmp_path, GOOD.replace('"gpu-llc"', '"gpu-lcc"'))))
    assert "unknown family" in e.message and "did you mean 'gpu-llc'" in e.message
    assert "not valid TOML" in error_of(str(write(tmp_path, GOOD + "[llc\n"))).message


def test_set_overrides():
    t = load_target("sram", ["llc.capacity=8MiB", "tiling.block_n=64", "gpu.utilization=0.5"])
    assert t["llc.capacity"] == 8 * 2**20 and t["tiling.block_n"] == 64 and t["gpu.utilization"] == 0.5
    assert t.origins["llc.capacity"] == "--set"
    base = load_target("sram")
    assert t.hash != base.hash and base.hash == load_target("sram").hash


@pytest.mark.parametrize("item,fragment", [
    ("llc.capcity=8MiB", "did you mean 'llc.capacity'"),
    ("llc.capacity", "expected KEY=VALUE"),
    ("llc.capacity=-8MiB", "llc.capacity"),
    ("tiling.block_m=0", "must be positive"),
    ("gpu.utilization=1.5", "must be <= 1.0"),
    ("llc.iso=sideways", "expected one of"),
])
def test_bad_set(item, fragment):
    e = error_of("sram", [item])
    assert fragment in e.message and e.where.startswith("--set")


def test_plugin_family_through_entry_points(tmp_path, monkeypatch):
    """An out-of-tree family (entry-point group nvmc.targets) gets its targets listed and loaded."""
    import types

    from nvmc.backends import Field, registry

    (tmp_path / "toy.toml").write_text('schema = "nvmc.target/1"\nname = "toy"\nfamily = "toy-family"\n'
                                       '[array]\nrows = 8\n')
    plugin = types.SimpleNamespace(FAMILY="toy-family", TARGETS_DIR=tmp_path,
                                   SCHEMA={"array": {"rows": Field("int", "rows", required=True)}},
                                   estimate=lambda workload, target, batch=1: target["array.rows"],
                                   parameters=lambda target: [])
    monkeypatch.setattr(registry, "_plugins", lambda: {"toy-family": plugin})
    assert "toy-family" in registry.families() and "toy" in shipped_targets()
    t = load_target("toy", ["array.rows=16"])
    assert t["array.rows"] == 16
    from nvmc import backends

    assert backends.estimate(None, "toy") == 8
    with pytest.raises(TargetError, match="must be positive"):
        load_target("toy", ["array.rows=-4"])
