"""The results database: embedded SQLite (standard library), one row per design point.

Why it survives a kill: the sweep process is the only writer; a chunk's rows go in with one
transaction (WAL journal), so after a SIGKILL at any moment each point has either its whole
row or none. ``point_id`` (the hash of model bytes, target, pipeline, parameters, batch and
nvmc version; see spec.point_id) is the primary key, so a resumed sweep skips finished
points and can never write one twice. Several sweeps may share one database: a point that
another spec already computed is reused.

Tables::

    results(point_id PK, sweep, model, model_hash, input_shapes ("x=1x3x224x224" as bound; ""),
            target, family, target_hash, pipeline,
            params JSON, batch, nvmc_version, status 'ok'|'not_fitting'|'not_applicable'|'error', error,
            latency_s, energy_j, edp_js, throughput_ips, energy_per_inference_j, area_mm2 (NULL: the
            family models no area), macs, carbon_g_per_inference, cosine, sqnr_db, top1_agreement
            (the pipeline's measured error; NULL when every pass was exact or it could not be
            measured), approximate (1: an approximate pass changed the model, 0: every pass was
            exact; NULL in rows of older schemas),
            breakdown JSON (energy, latency, area by component; events; a generation sweep's
            figures under "generation": TTFT, per-token latency, tokens/s, J/token, KV cache),
            report BLOB (the point's full nvmc.report/1 JSON, zlib-compressed: decode_report),
            elapsed_s, host, finished_at)
    sweeps(name PK, spec, spec_sha256, points, nvmc_version, started_at, finished_at)
    meta(key PK, value)          -- schema = nvmc.sweepdb/3

A database of an older schema (1: no carbon column, no 'not_applicable' status; 2: no
'approximate' and 'input_shapes' columns) is read as it is and upgraded in place, in one transaction, the first
time a sweep writes to it.

Query it with any SQLite client, e.g.
``SELECT target, params, edp_js FROM results WHERE status='ok' ORDER BY edp_js LIMIT 5`` or
``SELECT json_extract(breakdown, '$.energy_j.l2_read') FROM results``. The full report (per
layer figures: tens of KiB for a 200-layer model) is compressed about tenfold.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import time
import urllib.parse
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

from nvmc.ir.errors import NvmcError
from nvmc.ir.files import check_output

DB_SCHEMA = "nvmc.sweepdb/3"
OLD_SCHEMAS = ("nvmc.sweepdb/1", "nvmc.sweepdb/2")   # read as they are, upgraded when written
STATUSES = ("ok", "not_fitting", "not_applicable", "error")
COLUMNS = ("point_id", "sweep", "model", "model_hash", "input_shapes", "target", "family", "target_hash", "pipeline",
           "params", "batch", "nvmc_version", "status", "error", "latency_s", "energy_j", "edp_js", "throughput_ips",
           "energy_per_inference_j", "area_mm2", "macs", "carbon_g_per_inference", "cosine", "sqnr_db",
           "top1_agreement", "approximate", "breakdown", "report", "elapsed_s", "host", "finished_at")
# the columns older schemas lack
_ADDED = {"carbon_g_per_inference", "cosine", "sqnr_db", "top1_agreement", "approximate", "input_shapes"}

_DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    point_id TEXT PRIMARY KEY,
    sweep TEXT NOT NULL, model TEXT NOT NULL, model_hash TEXT NOT NULL, input_shapes TEXT,
    target TEXT NOT NULL, family TEXT NOT NULL, target_hash TEXT, pipeline TEXT NOT NULL,
    params TEXT NOT NULL, batch INTEGER, nvmc_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN {STATUSES!r}), error TEXT,
    latency_s REAL, energy_j REAL, edp_js REAL, throughput_ips REAL, energy_per_inference_j REAL,
    area_mm2 REAL, macs INTEGER, carbon_g_per_inference REAL,
    cosine REAL, sqnr_db REAL, top1_agreement REAL, approximate INTEGER, breakdown TEXT,
    report BLOB CHECK (status IN ('error', 'not_applicable') OR report IS NOT NULL),
    elapsed_s REAL, host TEXT, finished_at TEXT
);
CREATE INDEX IF NOT EXISTS results_by_sweep ON results (sweep, status);
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY, spec TEXT, spec_sha256 TEXT, points INTEGER, nvmc_version TEXT,
    started_at TEXT, finished_at TEXT
);
"""


def encode_report(report: dict) -> bytes:
    return zlib.compress(json.dumps(report, allow_nan=False, separators=(",", ":")).encode(), 1)


def decode_report(blob: bytes | None) -> dict | None:
    """The full report of a row (``None`` for a failed point)."""
    return None if blob is None else json.loads(zlib.decompress(blob))


class StoreError(NvmcError):
    """The results database cannot be opened or is not an nvmc sweep database."""


class Store:
    """The results database. ``readonly=True`` (``nvmc results``, ``sweep --status``) opens an
    existing nvmc database with SQLite's ``mode=ro``: nothing is created, migrated or switched
    to WAL, so reading never writes. Writing (``nvmc sweep``) takes a regular file or a new
    name, not a link, and refuses a database of another schema before changing anything."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        self._check_path()
        try:
            if readonly:
                # No -wal beside it: every write is checkpointed into the file, and immutable=1
                # reads it without creating the -wal/-shm files a WAL reader otherwise makes.
                # With a -wal (a sweep running now, or killed), read through it, read-only.
                live = os.path.exists(f"{self.path}-wal")
                uri = "file:" + urllib.parse.quote(str(self.path.absolute())) + ("?mode=ro" if live else
                                                                                  "?mode=ro&immutable=1")
                self.db = sqlite3.connect(uri, uri=True, timeout=60, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            found = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"results", "meta"} <= found and (found or readonly):  # writing may create them
                raise StoreError("not an nvmc results database" + (" (it has other tables)" if found else ""),
                                 where=str(path),
                                 hint="give the --db that 'nvmc sweep' wrote" if readonly else "give another --db path")
            if not readonly:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
                self.db.executescript(_DDL)
                self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (DB_SCHEMA,))
            row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            schema = row[0] if row else None
            have = [r[1] for r in self.db.execute("PRAGMA table_info(results)")]
            old = schema in OLD_SCHEMAS and set(COLUMNS) - set(_ADDED) <= set(have)
            if old and not readonly:
                self._upgrade(have)
                schema, have = DB_SCHEMA, list(COLUMNS)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open the results database: {e}", where=str(path)) from None
        if not old and (schema != DB_SCHEMA or not set(COLUMNS) <= set(have)):
            missing = ", ".join(sorted(set(COLUMNS) - set(have)))
            self.db.close()
            raise StoreError(f"database schema {schema!r}{' lacking ' + missing if missing else ''}; this nvmc "
                             f"reads {DB_SCHEMA!r}", where=str(path), hint="write to a new --db")
        self.columns = [c for c in COLUMNS if c in have]  # a schema-1 database read as it is lacks the new ones

    def _upgrade(self, have: list[str]) -> None:
        """An older schema -> this one in one transaction: the results table rebuilt with the new
        status and columns (SQLite cannot alter a CHECK constraint), every row kept."""
        kept = ", ".join(c for c in COLUMNS if c in have)
        ddl = _DDL.split("CREATE TABLE IF NOT EXISTS results (", 1)[1].split(");", 1)[0]
        with self._transaction():
            self.db.execute(f"CREATE TABLE results_upgrade ({ddl})")
            self.db.execute(f"INSERT INTO results_upgrade ({kept}) SELECT {kept} FROM results")
            self.db.execute("DROP TABLE results")
            self.db.execute("ALTER TABLE results_upgrade RENAME TO results")
            self.db.execute("CREATE INDEX IF NOT EXISTS results_by_sweep ON results (sweep, status)")
            self.db.execute("UPDATE meta SET value=? WHERE key='schema'", (DB_SCHEMA,))

    def _check_path(self) -> None:
        if self.readonly:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                raise StoreError("results database not found", where=str(self.path),
                                 hint="run 'nvmc sweep SPEC --db PATH' first, or give the --db it used") from None
            except OSError as e:
                raise StoreError(f"cannot open the results database: {e.strerror}", where=str(self.path)) from None
            if not stat.S_ISREG(st.st_mode):
                raise StoreError("the results database is not a regular file", where=str(self.path))
            if st.st_size == 0:
                raise StoreError("not an nvmc results database (the file is empty)", where=str(self.path),
                                 hint="give the --db that 'nvmc sweep' wrote")
            # not an input a later write must spare: a database is the sweep's state (nvmc sweep writes it)
            return
        if self.path.is_symlink():
            raise StoreError("the results database is a symbolic link; nvmc writes databases only at their own "
                             "path", where=str(self.path), hint=f"give --db {os.path.realpath(self.path)}")
        check_output(self.path, option="--db")
        for suffix in ("-wal", "-shm", "-journal"):  # SQLite's own files beside it
            check_output(f"{self.path}{suffix}", option="--db")

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------- writing
    def write(self, rows: Iterable[dict]) -> int:
        """Insert finished points in one transaction; a point already present is left as it is."""
        rows = [tuple(r.get(c) for c in COLUMNS) for r in rows]
        sql = (f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
               "ON CONFLICT (point_id) DO NOTHING")
        with self._transaction():
            before = self.db.total_changes
            self.db.executemany(sql, rows)
            return self.db.total_changes - before

    def forget_errors(self, ids: Iterable[str]) -> int:
        """Delete the error rows among ``ids`` so that they run again."""
        ids = list(ids)
        removed = 0
        with self._transaction():
            for i in range(0, len(ids), 500):  # SQLite's limit on ? parameters
                chunk = ids[i:i + 500]
                cur = self.db.execute(f"DELETE FROM results WHERE status='error' AND point_id IN "
                                      f"({','.join('?' * len(chunk))})", chunk)
                removed += cur.rowcount
        return removed

    def start_sweep(self, spec) -> None:
        with self._transaction():
            self.db.execute("INSERT INTO sweeps (name, spec, spec_sha256, points, nvmc_version, started_at) "
                            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET spec=excluded.spec, "
                            "spec_sha256=excluded.spec_sha256, points=excluded.points, "
                            "nvmc_version=excluded.nvmc_version, started_at=excluded.started_at, finished_at=NULL",
                            (spec.name, spec.path, spec.sha256, len(spec.points), spec.version, timestamp()))

    def finish_sweep(self, name: str) -> None:
        with self._transaction():
            self.db.execute("UPDATE sweeps SET finished_at=? WHERE name=?", (timestamp(), name))

    @contextmanager
    def _transaction(self):
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error) on the autocommit connection."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # ---------------------------------------------------------- reading
    def statuses(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """point_id -> status, for ``ids`` (all rows when None)."""
        wanted = set(ids) if ids is not None else None
        return {pid: s for pid, s in self.db.execute("SELECT point_id, status FROM results")
                if wanted is None or pid in wanted}

    def rows(self, ids: Iterable[str] | None = None, *, report: bool = False) -> list[dict]:
        cols = [c for c in self.columns if report or c != "report"]
        missing = {c: None for c in COLUMNS if c not in self.columns and (report or c != "report")}
        cur = self.db.execute(f"SELECT {', '.join(cols)} FROM results ORDER BY rowid")
        wanted = set(ids) if ids is not None else None
        return [{**missing, **dict(zip(cols, r))} for r in cur if wanted is None or r[0] in wanted]

    def sweeps(self) -> list[dict]:
        cur = self.db.execute("SELECT name, spec, points, nvmc_version, started_at, finished_at FROM sweeps "
                              "ORDER BY started_at")
        return [dict(zip((d[0] for d in cur.description), r)) for r in cur]


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
