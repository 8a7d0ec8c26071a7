"""`nvmc sweep` and `nvmc results`: design-space sweeps into a resumable SQLite database.

    nvmc sweep examples/sweeps/llc_capacity.toml                      # local process pool
    nvmc sweep spec.toml --db runs.sqlite --workers 4
    nvmc sweep spec.toml --scheduler tcp://10.0.0.5:8786              # an existing Dask cluster
    nvmc sweep spec.toml --status                                     # progress of the spec
    nvmc results spec.toml --csv points.csv --html pareto.html        # or: nvmc results runs.sqlite

Registered on the ``cli`` group of nvmc/cli.py. Exit codes: 0 when every point ran (a
target that does not fit or cannot run the model is a result), 1 when some points failed
(their errors are stored and listed) or stayed pending (a worker or the cluster lost their
task), 2 on bad input, 4 when points break the spec's accuracy gate ([accuracy]; ``nvmc
results --min-cosine ...`` the same for a database), 130 when interrupted (finished points
are kept; run the same command again to resume).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from nvmc.cli import EXIT_ACCURACY, accuracy_gate_option, check_output_path, cli, path_option
from nvmc.ir.errors import NvmcError
from nvmc.render import (MAX_MESSAGE_LINE, console, err_console, one_line, print_error, report_table, si,
                         styled)


STATUSES = ("ok", "not_fitting", "not_applicable", "error", "pending")   # a point's, in the order tables list them


def _default_db(spec: Path) -> Path:
    return Path.cwd() / f"{spec.stem}.sqlite"


@cli.command("sweep")
@click.argument("spec", type=click.Path(path_type=Path))
@path_option("--db",
              help="Results database (default: SPEC's file name with .sqlite, in the current directory).")
@click.option("--scheduler", metavar="ADDRESS", help="Run on an existing Dask cluster, e.g. tcp://host:8786.")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local worker processes (default: CPU count; 0: run in this process).")
@click.option("--chunk", type=click.IntRange(min=1), default=None,
              help="Points per task (default: balanced, at most 32; a kill loses the tasks in flight).")
@click.option("--retry-errors", is_flag=True, help="Run the points that failed before once more.")
@click.option("--status", "status_only", is_flag=True, help="Show how far the sweep is; run nothing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def sweep_cmd(spec: Path, db: Path | None, scheduler: str | None, workers: int | None, chunk: int | None,
              retry_errors: bool, status_only: bool, quiet: bool) -> None:
    """Cost every point of the sweep SPEC (models x targets x pipelines x grid) into a database.

    Finished points are saved as they complete; a killed or interrupted sweep resumes where it
    stopped when run again (no point is lost or stored twice). Exits 0 when every point ran
    (not fitting is a result), 1 when some failed or stayed pending, 2 on bad input, 4 when
    points break the spec's [accuracy] gate.
    """
    from nvmc.sweep import Store, load_spec, run_sweep
    from nvmc.sweep.run import Summary, fill_status

    if db is not None and str(db) == "-":
        raise NvmcError("--db is a database file, not stdout", where="--db", hint="give a path, e.g. runs.sqlite")
    plan = load_spec(spec)
    db = db or _default_db(spec)
    if status_only:  # reads the database, never writes it
        summary = Summary(len(plan.points), 0, 0, 0.0)
        started = os.path.lexists(db)
        if started:
            with Store(db, readonly=True) as store:
                fill_status(plan, store, summary)
                _status_table(plan, store)
        else:
            summary.counts = {**dict.fromkeys(STATUSES, 0), "pending": len(plan.points)}
        _print_counts(summary, db, started=started)
        return
    check_output_path(db, spec, *(m.path for m in plan.models), option="--db")
    if scheduler:
        from nvmc.sweep.run import check_scheduler

        check_scheduler(scheduler)
    with Store(db) as store, _Progress(quiet) as progress:
        try:
            summary = run_sweep(plan, store, workers=workers, scheduler=scheduler, chunk=chunk,
                                retry_errors=retry_errors, on_start=progress.start, on_progress=progress.advance)
        except KeyboardInterrupt:
            progress.stop()
            err_console().print(f"interrupted: the finished points are saved in {db}; run the same command "
                                "again to resume")
            sys.exit(130)
    _print_summary(summary, db)
    rejected = _judge(plan, db)
    if summary.counts.get("error") or summary.counts.get("pending"):
        sys.exit(1)
    if rejected:
        sys.exit(EXIT_ACCURACY)


def _judge(plan, db: Path) -> int:
    """Apply the spec's [accuracy] gate to its finished points and say which break it."""
    from nvmc.sweep import Store
    from nvmc.sweep.export import apply_gate

    if plan.gate is None or not plan.gate.active:
        return 0
    with Store(db, readonly=True) as store:
        rows = store.rows([p.id for p in plan.points])
    return _say_rejected(rows, apply_gate(rows, plan.gate))


def _say_rejected(rows: list[dict], rejected: int) -> int:
    from nvmc.sweep.export import label_of

    if rejected:
        print_error(f"error: {rejected} point(s) break the accuracy gate and are left off the Pareto front "
                    f"(exit {EXIT_ACCURACY}):")
        for r in [r for r in rows if r["status"] == "rejected"][:5]:
            print_error(f"  {label_of(r)}: {r['error']}")
    return rejected


class _Progress:
    """A rich progress bar with rate and ETA on stderr (static when stderr is not a terminal).

    The ETA is the points left at the mean rate of this run so far, not rich's recent-speed
    estimate: points finish in bursts (a task's analysis, then its cheap points), so a recent
    window said "1 s" with the slow points still to come."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None
        self.task = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, total: int, done: int) -> None:
        if done and done < total:
            err_console().print(f"{done} of {total} points already in the database; running the other "
                                f"{total - done}")
        if self.quiet or total == done:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("{task.fields[eta]}"),
                            console=err_console(), transient=False)
        self.task = self.bar.add_task("sweep", total=total - done, rate="", eta="ETA —")
        self.bar.start()

    def advance(self, n: int, ran: int) -> None:
        if self.bar is None:
            return
        self.bar.advance(self.task, n)
        task = self.bar.tasks[0]
        elapsed = task.elapsed or 0
        if elapsed > 0 and ran > 0:
            self.bar.update(self.task, rate=f"{ran / elapsed:.1f} points/s",
                            eta=f"ETA ~{_duration(elapsed / ran * (task.total - task.completed))} at that rate")

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 20 s``, ``2 h 05 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _print_counts(summary, db: Path, *, started: bool = True) -> None:
    c = summary.counts
    out = console()
    line = (f"{_n(summary.total, 'point')}: {c['ok']} ok, {c['not_fitting']} not fitting, "
            f"{c.get('not_applicable', 0)} not applicable, {c['error']} failed, {c['pending']} pending")
    out.print(line + ("" if started else f" (no database yet at {db})"), soft_wrap=True)
    for where, message in summary.errors:  # on stderr, so `-q` and redirected stdout still show them
        first = (str(message).splitlines() or ["(no message)"])[0]
        print_error(f"failed: {where}: {first}")  # a stored message quotes names: shortened like any error


def _n(count: int, noun: str) -> str:
    """``1 point``, ``2 points``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _print_summary(summary, db: Path) -> None:
    if summary.ran or summary.lost:
        how = {"local": f"{summary.workers} local worker process(es)", "serial": "this process",
               "dask": "the Dask cluster"}[summary.runner]
        rate = f" ({summary.rate:.1f} points/s)" if summary.ran else ""
        console().print(f"ran {_n(summary.ran, 'point')} in {summary.seconds:.2f} s{rate} on {how}; "
                        f"{summary.skipped} were already done; results in {db}", soft_wrap=True)
    else:  # nothing left to run: no worker started, none to name
        console().print(f"nothing to run: all {_n(summary.skipped, 'point')} are in {db}", soft_wrap=True)
    _print_counts(summary, db)
    for why in summary.lost[:5]:
        err_console().print(f"lost (pending; run the same command again to resume them): {why}", soft_wrap=True,
                            markup=False, highlight=False)


def _status_table(plan, store) -> None:
    statuses = store.statuses(p.id for p in plan.points)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for p in plan.points:
        key = (plan.models[p.model].label, plan.targets[p.target].name)
        row = counts.setdefault(key, dict.fromkeys(STATUSES, 0))
        row[statuses.get(p.id, "pending")] += 1
    table = report_table(f"sweep {one_line(plan.name)}: progress by model and target",
                         ("model", "target", "ok", "not fitting", "n/a", "failed", "pending"), text=("model", "target"))
    for (model, target), c in counts.items():
        table.add_row(one_line(model), one_line(target), *(str(c[k]) for k in STATUSES))
    console().print(table)


# ------------------------------------------------------------------ results
@cli.command("results")
@click.argument("source", type=click.Path(path_type=Path))
@path_option("--db", help="With a SPEC: its database (default: as for nvmc sweep).")
@path_option("--csv", "csv_path", help="Write one row per point as CSV ('-': stdout).")
@path_option("--json", "json_path", help="Write the points as JSON ('-': stdout).")
@click.option("--reports", is_flag=True, help="With --json: include each point's full report (per-layer figures).")
@path_option("--html", "html_path",
              help="Write a self-contained HTML page: energy vs latency vs area per model, Pareto front marked.")
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True,
              help="Pareto-optimal points to list per model.")
@accuracy_gate_option
def results_cmd(source: Path, db: Path | None, csv_path: Path | None, json_path: Path | None, reports: bool,
                html_path: Path | None, top: int, gate) -> None:
    """Export the results of a sweep: SOURCE is its spec (.toml) or a results database.

    Points whose measured error breaks the accuracy gate (the spec's [accuracy], or
    --min-cosine, --min-sqnr, --min-top1) are 'rejected': listed, off the Pareto front; the
    command then exits 4 after writing what was asked."""
    from nvmc.sweep import Store, load_spec, write_csv, write_html, write_json
    from nvmc.sweep.export import apply_gate

    if reports and json_path is None:
        raise NvmcError("--reports adds each point's full report to --json", where="--reports",
                        hint="add --json FILE (or --json - for stdout)")
    if html_path is not None and str(html_path) == "-":
        raise NvmcError("--html writes a file, not stdout", where="--html", hint="give a path, e.g. pareto.html")
    ids = None
    if source.suffix == ".toml":
        plan = load_spec(source)
        db = db or _default_db(source)
        ids = [p.id for p in plan.points]
        title = f"sweep {plan.name}"
        gate = gate if gate.active or plan.gate is None else plan.gate
    else:
        if db is not None:
            raise NvmcError("--db goes with a spec; SOURCE is already a database", where=str(source))
        db = source
        title = f"sweep results {source.name}"
    for path, option in ((csv_path, "--csv"), (json_path, "--json"), (html_path, "--html")):
        check_output_path(path, source, db, option=option)
    with Store(db, readonly=True) as store:
        rows = store.rows(ids, report=reports and json_path is not None)
        sweeps = store.sweeps()
    rejected = apply_gate(rows, gate)
    if csv_path is not None:
        write_csv(rows, csv_path)
    if json_path is not None:
        write_json(rows, json_path, meta={"database": str(db), "sweeps": sweeps,
                                          "planned": len(ids) if ids is not None else None})
    if html_path is not None:
        write_html(rows, html_path, title=title)
        err_console().print(f"wrote {html_path}")
    if "-" not in (str(csv_path), str(json_path)):
        _print_results(rows, ids, title, top)
    if _say_rejected(rows, rejected):
        sys.exit(EXIT_ACCURACY)


def _print_results(rows: list[dict], ids, title: str, top: int) -> None:
    from nvmc.sweep import mark_pareto
    from nvmc.sweep.export import accuracy_cell, axes_text, generation_of, model_title, show_params, status_counts
    from nvmc.sweep.run import label

    out = console()
    mark_pareto(rows)
    counts = status_counts(rows)
    planned = f" of {len(ids)} planned" if ids is not None else ""
    rejected = f"{counts['rejected']} rejected by the accuracy gate, " if counts["rejected"] else ""
    out.print(styled((one_line(title), "bold"), f": {len(rows)} points{planned}: {counts['ok']} ok, "
                     f"{counts['not_fitting']} not fitting, {counts['not_applicable']} not applicable, "
                     f"{rejected}{counts['error']} failed"), soft_wrap=True)
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        if r["pareto"]:
            by_model.setdefault(model_title(r), []).append(r)
    for model, front in by_model.items():
        front.sort(key=lambda r: r["edp_js"])
        generation = generation_of(front[0]) is not None   # a group is all generation or all forward pass
        axes = axes_text(front[0]["pareto_axes"])
        if generation:  # latency is the whole generation's, energy/inference is per generated token
            axes = axes.replace("latency", "generation latency").replace("energy/inference", "energy/token")
        head = (("target", "pipeline", "parameters", "latency", "TTFT", "per token", "tokens/s", "J/token", "area",
                 "cosine") if generation else
                ("target", "pipeline", "parameters", "latency", "energy/inf", "area", "EDP", "cosine"))
        table = report_table(f"{one_line(model)}: {len(front)} Pareto-optimal points over {axes}; best "
                             f"{min(top, len(front))} by EDP", head, text=("target", "pipeline", "parameters", "area"))
        for r in front[:top]:
            params = show_params(r["params"])
            area = "not modelled" if r["area_mm2"] is None else f"{r['area_mm2']:.3g} mm²"
            if generation:
                g = generation_of(r)
                median = (g.get("per_token_latency_s") or {}).get("median")
                figures = (si(r["latency_s"], "s"), si(g["ttft_s"], "s"), "—" if median is None else si(median, "s"),
                           f"{r['throughput_ips']:.4g}", si(r["energy_per_inference_j"], "J"))
            else:
                figures = (si(r["latency_s"], "s"), si(r["energy_per_inference_j"], "J"))
            edp = () if generation else (si(r["edp_js"], "J·s"),)   # generation: the row is wide enough
            table.add_row(one_line(r["target"]), one_line(r["pipeline"] or "—"), params or "—", *figures, area,
                          *edp, accuracy_cell(r))
        out.print(table)
    for r in [r for r in rows if r["status"] == "error"][:5]:
        out.print(one_line(f"failed: {label(r)}: {((r['error'] or '').splitlines() or [''])[0]}", MAX_MESSAGE_LINE),
                  soft_wrap=True, markup=False, highlight=False)
