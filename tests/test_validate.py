"""`nvmc validate`: the rules that give a row its status, and the command's outputs. The
studies' own rows are tested beside them (tests/test_validate_*.py); docs/validation.md is
checked for staleness with the other generated pages (tests/test_report_docs.py)."""

from __future__ import annotations

import json
import math

import pytest

from nvmc.validate import STATUSES, judge, row, run_all


@pytest.mark.parametrize("published, value, tol, hinges, expected", [
    (3.8, 3.5, 0.25, "", "reproduced"),            # within 25 %
    (3.8, 2.0, 0.25, "", "partly"),                # the same side of 1, outside the tolerance
    (3.8, 0.7, 0.25, "", "not reproduced"),        # the other design wins
    (23.0, 22.7, 0.25, "link bandwidth (assumed)", "not reproduced"),   # close, but through an unsourced setting
    (3.8, math.nan, 0.25, "", "not reproduced"),
    (3.8, None, 0.25, "", "not reproduced"),
])
def test_judge_follows_the_rules(published, value, tol, hinges, expected):
    assert judge(published, value, tol, hinges_on=hinges) == expected


def test_a_saving_in_percent_pivots_on_zero_and_qualitative_claims_on_their_direction():
    assert judge(24.0, 20.0, 0.25, pivot=0.0) == "reproduced"
    assert judge(24.0, -0.7, 0.25, pivot=0.0) == "not reproduced"
    assert judge(None, 1.4, None, higher_is_better=True) == "reproduced"
    assert judge(None, 0.8, None, higher_is_better=True) == "not reproduced"


def test_a_row_not_reproduced_always_says_why():
    r = row(1, "x", 3.8, 0.7, "x", 0.25, "setup")
    assert r.status == "not reproduced" and r.cause
    r = row(5, "x", 23.0, 22.0, "x", 0.25, "setup", hinges_on="gpu.host_link (assumed)")
    assert r.status == "not reproduced" and "gpu.host_link" in r.cause


def test_every_row_is_complete_and_computed():
    rows = run_all()
    assert rows, "no study registered"
    for r in rows:
        assert r.status in STATUSES and r.claim and r.setup, r
        assert r.nvmc is None or math.isfinite(r.nvmc), r
        if r.status != "reproduced":
            assert r.cause, r
        if r.hinges_on:
            assert r.status == "not reproduced", r


def test_validate_json_and_filter(tmp_path):
    """In process (click's runner): the studies ran once already for this test session."""
    from click.testing import CliRunner

    from nvmc.cli import cli

    out = tmp_path / "v.json"
    result = CliRunner().invoke(cli, ["validate", "--json", str(out), "--markdown", str(tmp_path / "v.md")])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["schema"] == "nvmc.validate/1" and len(doc["rows"]) == len(run_all())
    keys = {"paper", "claim", "published", "nvmc", "tolerance", "status", "hinges_on", "command"}
    assert all(keys <= set(r) for r in doc["rows"])
    papers = [r["paper"] for r in doc["rows"]]
    seeds = [p for p in papers if isinstance(p, int)]
    assert seeds == sorted(seeds) and papers[:len(seeds)] == seeds     # seeds by number, then the peers
    only = CliRunner().invoke(cli, ["validate", "--paper", "12", "--json", "-"])
    assert {r["paper"] for r in json.loads(only.output)["rows"]} == {12}


def test_a_bound_claim_is_met_or_falls_short():
    assert judge(30.0, 53.8, None, pivot=0.0, at_least=True) == "reproduced"
    assert judge(80.0, 37.5, None, pivot=0.0, at_least=True) == "partly"
    assert judge(80.0, -0.7, None, pivot=0.0, at_least=True) == "not reproduced"


def test_the_terminal_table_numbers_its_rows_and_says_why_below():
    from click.testing import CliRunner

    from nvmc.cli import cli

    out = CliRunner().invoke(cli, ["validate"], env={"COLUMNS": "120"}).output
    rows = run_all()
    why = [i for i, r in enumerate(rows, 1) if r.cause]
    assert why and all(f"#{i} " in out for i in why)
    assert f"{len(rows)} rows:" in out


def test_an_unknown_paper_is_an_error_naming_the_known_ones():
    from click.testing import CliRunner

    from nvmc.cli import cli

    from nvmc.ir.errors import NvmcError

    result = CliRunner().invoke(cli, ["validate", "--paper", "SCALE-sin"])  # in process: the error, not exit 2
    assert isinstance(result.exception, NvmcError)
    assert "no row for paper 'SCALE-sin'" in str(result.exception) and "SCALE-Sim" in str(result.exception)
