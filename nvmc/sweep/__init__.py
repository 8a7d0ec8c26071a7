"""Design-space sweeps: models x targets x pipelines x parameter grids, into SQLite.

    >>> from nvmc import sweep
    >>> spec = sweep.load_spec("examples/sweeps/llc_capacity.toml")
    >>> with sweep.Store("llc.sqlite") as store:
    ...     summary = sweep.run_sweep(spec, store, workers=2)      # or scheduler="tcp://host:8786"
    >>> summary.counts
    {'ok': 198, 'not_fitting': 18, 'not_applicable': 0, 'error': 0, 'pending': 0}

``spec`` reads and expands the TOML spec into points with stable identities; ``worker``
costs a chunk of points (import and analysis once per model and pipeline); ``run`` sends
chunks to a runner (in-process, a local process pool, or a Dask cluster) and writes rows
as they come back; ``store`` is the SQLite database (resumable: a killed sweep picks up
where it stopped); ``export`` makes tables, the Pareto front and the HTML plot.
"""

from .export import mark_pareto, pareto_mask, write_csv, write_html, write_json
from .run import Summary, make_tasks, run_sweep
from .spec import SPEC_SCHEMA, ModelRef, Point, SpecError, SweepSpec, TargetRef, load_spec
from .store import DB_SCHEMA, Store, StoreError, decode_report

__all__ = ["DB_SCHEMA", "ModelRef", "Point", "SPEC_SCHEMA", "SpecError", "Store", "StoreError", "Summary",
           "SweepSpec", "TargetRef", "decode_report", "load_spec", "make_tasks", "mark_pareto", "pareto_mask",
           "run_sweep", "write_csv", "write_html", "write_json"]
