"""The technology library: every number traceable, malformed data refused, array tables."""

from __future__ import annotations

import numpy as np
import pytest

from nvmc.backends import TechLibError
from nvmc.backends.techlib import PROVENANCE_KINDS, Library, library, load_data_file

MIB = 2**20


def tech_file(tmp_path, body: str, name: str = "mytech"):
    (tmp_path / "tech").mkdir(exist_ok=True)
    path = tmp_path / "tech" / f"{name}.toml"
    path.write_text(f'schema = "nvmc.tech/1"\nname = "{name}"\n{body}')
    return path


def test_shipped_library_loads_and_every_number_is_traceable():
    lib = library()
    assert {"sram", "stt-mram", "sot-mram", "vgsot-mram", "rram", "dram", "racetrack"} <= set(lib.techs)
    assert "gtx-1080-ti" in lib.devices
    for entry in [*lib.techs.values(), *lib.devices.values()]:
        for p in entry.params.values():
            assert p.kind in PROVENANCE_KINDS and p.note.strip(), p


def test_derived_formulas():
    dev = library().device("gtx-1080-ti")
    assert dev["compute.peak_macs_per_s"] == pytest.approx(3584 * 1.582e9)
    assert dev["compute.mac_energy_j"] == pytest.approx((3.7e-12 + 0.9e-12) * 0.174)
    assert dev.param("compute.mac_energy_j").kind == "derived"
    assert library().tech("dram")["access.energy_per_bit_j"] == pytest.approx(20e-12)


@pytest.mark.parametrize("body,fragment", [
    ("[cell]\narea_f2 = 54\n", "a number without a source"),
    ('[cell]\narea_f2 = { value = 54 }\n', "exactly one of source / derived / assumed"),
    ('[cell]\narea_f2 = { value = 54, source = "a", assumed = "b" }\n', "exactly one of"),
    ('[cell]\narea_f2 = { value = 54, sorce = "a" }\n', "did you mean 'source'"),
    ('[cell]\narea_f2 = { value = "54", source = "a" }\n', "'value' must be a number"),
    ('[cell]\na = { value = 2, source = "x" }\nb = { value = 5, formula = "cell.a * 2", derived = "2a" }\n',
     "disagrees with its formula"),
    ('[cell]\nb = { formula = "cell.aa * 2", derived = "2a" }\n', "unknown 'cell.aa'"),
    ('[cell]\nb = { formula = "__import__(1)", derived = "no" }\n', "cannot evaluate"),
])
def test_malformed_numbers_are_load_errors(tmp_path, body, fragment):
    path = tech_file(tmp_path, body)
    with pytest.raises(TechLibError) as info:
        load_data_file(path)
    assert fragment in info.value.message
    assert "mytech.toml" in str(info.value.where)


def test_name_must_match_file(tmp_path):
    path = tech_file(tmp_path, "", name="x")
    path.write_text('schema = "nvmc.tech/1"\nname = "y"\n')
    with pytest.raises(TechLibError, match="differs from the file name"):
        load_data_file(path)


def test_unknown_technology_did_you_mean():
    with pytest.raises(TechLibError, match="did you mean 'stt-mram'"):
        library().tech("stt-mrma")


def test_technology_without_array_data():
    with pytest.raises(TechLibError, match="no cache-array data"):
        library().array_table("rram")


def test_array_table_interpolation():
    table = library().array_table("sram")
    lo, hi = table.capacity_range
    assert lo <= 1 * MIB and hi >= 32 * MIB
    rows = {int(c): i for i, c in enumerate(table.capacities)}
    p2, p4 = table.at(2 * MIB), table.at(4 * MIB)
    assert p2.area_mm2 == pytest.approx(table.columns["area_mm2"][rows[2 * MIB]])
    assert "row of" in p2.note
    mid = table.at(int(2.75 * MIB))
    assert "interpolation" in mid.note
    for field in ("area_mm2", "leakage_w", "read_energy_j"):
        a, b, m = getattr(p2, field), getattr(p4, field), getattr(mid, field)
        assert min(a, b) <= m <= max(a, b)
        # log-log: the value at x is a^(1-t) b^t with t = log2(2.75/2)
        t = np.log2(2.75 / 2)
        assert m == pytest.approx(a ** (1 - t) * b ** t, rel=1e-9)
    with pytest.raises(TechLibError, match="the table covers"):
        table.at(hi * 2)


def test_capacity_for_area_inverts_area():
    table = library().array_table("stt-mram")
    cap = 6 * MIB
    area = table.at(cap).area_mm2
    assert table.capacity_for_area(area) == pytest.approx(cap, rel=1e-9)
    assert table.capacity_for_area(1e6) is None


def test_mram_is_denser_and_leaks_less_than_sram():
    lib = library()
    for cap in (1 * MIB, 4 * MIB, 16 * MIB):
        s = lib.array_table("sram").at(cap)
        for tech in ("stt-mram", "sot-mram"):
            m = lib.array_table(tech).at(cap)
            assert m.area_mm2 < s.area_mm2 and m.leakage_w < s.leakage_w


def test_private_library_folder(tmp_path):
    tech_file(tmp_path, '[cell]\narea_f2 = { value = 54, assumed = "testing" }\n')
    lib = Library(tmp_path)
    assert lib.tech("mytech").param("cell.area_f2").assumed


@pytest.mark.parametrize("tech,label", [("sram", "SRAM"), ("stt-mram", "STT-MRAM"), ("sot-mram", "SOT-MRAM")])
def test_nvsim_table_reproduces_the_dh_sanity_runs(tech, label):
    """Our NVSim 4 MiB / 64 B-line rows against the DH course project's NVSim outputs (params.md §2):
    same tool, same settings, so they agree to the printed digits."""
    from nvmc.backends.techlib import DATA_DIR, _read_table

    lib = library()
    row = _read_table(DATA_DIR / "nvsim" / "llc_tables.csv", label, 64, "").at(4 * MIB)
    dh = lib.tech(tech)
    for field in ("area_mm2", "read_latency_s", "write_latency_s", "read_energy_j", "write_energy_j", "leakage_w"):
        assert getattr(row, field) == pytest.approx(dh[f"dh_4mb_22nm.{field}"], rel=2e-3), field


def test_shipped_cells_and_variants():
    lib = library()
    assert lib.tech("stt-mram")["cell.area_f2"] == 54 and lib.tech("sot-mram")["cell.area_f2"] == 81.5
    for tech in ("stt-mram-57f2", "sot-mram-61f2"):
        assert lib.array_table(tech).at(4 * MIB).area_mm2 < lib.array_table("sram").at(4 * MIB).area_mm2
