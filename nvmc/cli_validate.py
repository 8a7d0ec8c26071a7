"""`nvmc validate`: the seed papers' figures and the peer tools' results beside nvmc's (nvmc/validate)."""

from __future__ import annotations

from pathlib import Path

import click

from nvmc.cli import check_output_path, cli, path_option, write_output
from nvmc.ir.errors import NvmcError, did_you_mean
from nvmc.render import console, one_line, report_table, styled

_STYLE = {"reproduced": "green", "partly": "yellow", "not reproduced": "red"}


@cli.command("validate")
@path_option("--json", "json_path",
              help='Write {"schema": "nvmc.validate/1", "rows": [...]} (\'-\': stdout).')
@path_option("--markdown", "md_path", help="Write the table as Markdown (docs/validation.md is this page).")
@click.option("--paper", "papers", multiple=True, metavar="N|TOOL",
              help="Only these rows: a seed paper's number or a peer tool's name (repeatable).")
def validate_cmd(json_path: Path | None, md_path: Path | None, papers: tuple[str, ...]) -> None:
    """Every published figure nvmc models, and every peer-tool comparison, beside nvmc's own
    figure computed now: claim, nvmc, tolerance, status (reproduced / partly / not
    reproduced), what a figure hinges on and a command that shows it. Takes seconds."""
    from nvmc.ir.dataout import json_text
    from nvmc.validate import STATUSES, format_figure, run_all, to_json, to_markdown

    check_output_path(json_path, option="--json")
    check_output_path(md_path, option="--markdown")
    rows = run_all()
    if papers:
        known = {str(r.paper).lower(): str(r.paper) for r in rows}
        for p in papers:
            if p.lower() not in known:
                raise NvmcError(f"no row for paper '{p}'{did_you_mean(p, known.values())}", where="--paper",
                                hint=f"papers and tools: {', '.join(dict.fromkeys(known.values()))}")
        wanted = {p.lower() for p in papers}
        rows = tuple(r for r in rows if str(r.paper).lower() in wanted)
    if json_path is not None:
        write_output(json_path, json_text(to_json(rows)))
    if md_path is not None:
        write_output(md_path, to_markdown(rows))
    if "-" in (str(json_path), str(md_path)):
        return
    out = console()
    table = report_table("nvmc validate: published figures and peer tools beside nvmc (why: below the table)",
                         ("#", "paper", "claim", "published", "nvmc", "status", "hinges on"),
                         text=("paper", "claim", "status", "hinges on"))
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), one_line(str(r.paper)), r.claim, format_figure(r.published, r.unit),
                      format_figure(r.nvmc, r.unit), styled((r.status, _STYLE[r.status])), r.hinges_on or "—")
    out.print(table)
    for i, r in enumerate(rows, 1):  # the causes are prose: one wrapped paragraph each, not a column
        if r.cause:
            out.print(styled((f"#{i} ", "bold"), f"{r.cause} (shown by: {r.command or 'the setup above'})"),
                      soft_wrap=True)
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    out.print(f"{len(rows)} rows: {counts['reproduced']} reproduced, {counts['partly']} partly, "
              f"{counts['not reproduced']} not reproduced; setups and commands: --json or docs/validation.md",
              soft_wrap=True)
