"""Issue 28's targets at 100k and 1M runs x (10 params, 5 metrics), each against a floor measured in the same run.

Stores come from ``big_store.py`` (written straight into MLflow's tables; one Trellis search whose objective
``loss`` is Ishigami's function of x1..x3, so importance has a known answer). Printed per size:
  - read: Trellis' ``read_runs`` (no cache) against the bare fetch of the same rows (sqlite3 ``fetchall``);
  - refresh: 1k runs appended to a cached view, the cache's delta read against a full read;
  - analyse: ``trellis importance --pairs --json`` and ``trellis bounds --json`` in their own process (wall time
    and peak memory), against the read alone;
  - draw: the overview's first view (server time and bytes) and the search-space page's analysis, cold and warm.

    python benchmarks/million.py --sizes 100000 1000000 [--dir /tmp/stores] [--keep]

Stores are kept in ``--dir`` between runs (building 1M takes ~6 minutes), unless missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from big_store import ISHIGAMI_SHARES, append_runs, build_big_store  # noqa: E402


def store_at(folder: Path, n: int) -> tuple[str, str, str]:
    path = folder / f"runs{n}.db"
    if not path.exists():
        t = time.perf_counter()
        build_big_store(path, n)
        print(f"built {n} runs in {time.perf_counter() - t:.0f} s", flush=True)
    conn = sqlite3.connect(path)
    exp = str(conn.execute("SELECT experiment_id FROM experiments WHERE name = 'big'").fetchone()[0])
    parent = conn.execute("SELECT run_uuid FROM tags WHERE key = 'trellis.type' AND value = 'search'").fetchone()[0]
    conn.close()
    return f"sqlite:///{path}", exp, parent


def bare_fetch(path: str) -> float:
    """The floor: the same rows the reader reads, fetched with Python's sqlite3 and nothing done with them."""
    from trellis.tracking.reader import LINEAGE_TAGS

    conn = sqlite3.connect(path)
    marks = ", ".join("?" for _ in LINEAGE_TAGS)
    t = time.perf_counter()
    conn.execute("SELECT run_uuid, experiment_id, name, status, start_time, end_time FROM runs").fetchall()
    conn.execute("SELECT run_uuid, key, value FROM params").fetchall()
    conn.execute("SELECT run_uuid, key, value, is_nan FROM latest_metrics").fetchall()
    conn.execute(
        f"SELECT run_uuid, key, value FROM tags WHERE key IN ({marks}) OR key LIKE '%!_distribution' ESCAPE '!'",
        list(LINEAGE_TAGS),
    ).fetchall()
    conn.close()
    return time.perf_counter() - t


def remove_runs_from(path: str, first: int) -> None:
    """Take the appended trials (``first`` on) out again, so that the next run measures the same store."""
    from big_store import T0

    conn = sqlite3.connect(path)
    late = "SELECT run_uuid FROM runs WHERE start_time >= ?"
    for table in ("params", "metrics", "latest_metrics", "tags"):
        conn.execute(f"DELETE FROM {table} WHERE run_uuid IN ({late})", (T0 + first * 1000,))
    conn.execute("DELETE FROM runs WHERE start_time >= ?", (T0 + first * 1000,))
    conn.commit()
    conn.close()


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def in_process(args: list[str]) -> tuple[float, float, dict]:
    """A CLI command in its own process: (wall s, peak GB, its JSON)."""
    code = (
        "import sys, io, contextlib, json\n"
        "from trellis.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    main({args!r})\n"
        "hwm = [line for line in open('/proc/self/status') if line.startswith('VmHWM')][0]\n"
        "print(json.dumps({'peak': int(hwm.split()[1]) / 1e6, 'out': out.getvalue()}))\n"
    )
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return wall, result["peak"], json.loads(result["out"])


def bench(folder: Path, n: int) -> None:
    from trellis.app.context import AppContext
    from trellis.app.pages.overview import render_overview
    from trellis.tracking.cache import RunCache
    from trellis.tracking.reader import read_runs

    uri, exp, parent = store_at(folder, n)
    path = uri.removeprefix("sqlite:///")
    print(f"\n== {n} runs x (10 params, 5 metrics) ==", flush=True)
    floor = min(bare_fetch(path) for _ in range(2))
    read_s = min(timed(lambda: read_runs(uri, [exp]))[0] for _ in range(2))
    target = 15 if n >= 1_000_000 else 1
    print(f"read:     {read_s:6.2f} s; bare sqlite3 fetch {floor:6.2f} s; ratio {read_s / floor:.2f} (target <= 3), "
          f"target <= {target} s")  # fmt: skip

    cache = RunCache(uri)
    cache.table([exp])
    conn = sqlite3.connect(path)
    have = conn.execute("SELECT count(*) FROM runs WHERE experiment_id = ?", (int(exp),)).fetchone()[0] - 1
    append_runs(conn, exp, parent, have, 1000, seed=7)
    conn.close()
    try:
        refresh_s, table = timed(lambda: cache.table([exp]))
        assert cache.stats["delta_reads"] == 1 and len(table.runs) == have + 1001, cache.stats
    finally:
        remove_runs_from(path, have)
    print(f"refresh:  {refresh_s:6.2f} s for 1000 new runs into the cached view (target <= 1); "
          f"ratio {refresh_s / read_s:.3f} of a full read")  # fmt: skip

    common = ["--tracking-uri", uri, "--experiment", "big", "--metric", "loss", "--json"]
    imp_s, imp_peak, imp = in_process(["importance", *common, "--pairs"])
    bounds_s, bounds_peak, bounds = in_process(["bounds", *common])
    target = 30 if n >= 1_000_000 else 10
    error = max(abs(imp["singles"][k]["mean"] - v) for k, v in ISHIGAMI_SHARES.items())
    print(f"analyse:  importance {imp_s:5.1f} s, {imp_peak:.2f} GB peak; bounds {bounds_s:5.1f} s, {bounds_peak:.2f} GB"
          f" (targets <= {target} s, <= 2 GB); {imp['runs']} runs in the forests' sample; "
          f"largest single-share error against Ishigami's truth {error:.3f}")  # fmt: skip

    context = AppContext(uri, RunCache(uri))
    view = context.view([exp])
    overview_s, (_, *figures) = timed(
        lambda: render_overview(view, "loss", "min", "time_s", "min", "loss", "min", "loss", context)
    )
    size = sum(len(json.dumps(f)) for f in figures) / 1e6
    print(f"overview: {overview_s:6.2f} s server render (warm cache), figures {size:.2f} MB (targets <= 3 s, <= 5 MB)")
    selection = {"experiments": [exp], "searches": []}
    fresh = AppContext(uri, context.cache)  # the runs read (the overview came first), no analysis kept
    cold_s, report = timed(lambda: fresh.space_report(selection, "loss", "min", None, None))
    warm_s, _ = timed(lambda: fresh.space_report(selection, "loss", "min", None, None))
    sample = next((n for k, n in report.data.notes.items() if "sample" in k), 0)
    print(f"space:    analysis cold {cold_s:6.2f} s (the runs already read), warm {warm_s:6.3f} s "
          f"(targets <= 10 s, <= 1 s); {sample} runs left out of the forests' sample, as the page says")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path("/tmp/trellis-million"))
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    args.dir.mkdir(parents=True, exist_ok=True)
    for n in args.sizes:
        bench(args.dir, n)


if __name__ == "__main__":
    main()
