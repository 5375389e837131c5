"""Load: concurrent simulated users through whole page views of the overview and the search-space pages.

Builds a SQLite MLflow store with one 10k-run experiment (``load_runs.build_store``: rows written straight
into MLflow's tables), starts the app under gunicorn (4 sync workers, loopback only, a shared diskcache
folder), then for 1, 25 and 50 users (each a thread that views pages back to back, no think time) drives
every request a browser makes for one page view:

  GET the page, GET ``/_dash-layout`` and ``/_dash-dependencies`` (together), then every callback POST to
  ``/_dash-update-component`` as Dash's renderer sends it: the callbacks a layout fires at load (not
  ``prevent_initial_call``), then those an answer's props trigger, each only once no pending callback can
  still change its inputs, up to 6 at a time per user (a browser's connections per host). Inputs and
  states are the props the layout and earlier answers gave, so the server sees a browser's payloads.

The sequence was checked against headless Chromium's own requests for both pages (the same callbacks, in the
same waves). A poll the page turns on (``dcc.Interval``, the search-space analysis computed in the background)
is fired every interval until the page turns it off: a page view ends when everything is drawn.
The browser's static assets (JS, CSS: fingerprinted, cached after the first view) and the live
tick every 4 s are left out. Prints, per page: the first views of ``--cold-users`` users at once on a server
that has read nothing (each worker used to compute the search-space analysis itself), then per number of
users: p50/p95/max per request type and per page view, errors, page views/s, gunicorn's CPU-seconds per view
(its workers' utime+stime from /proc, before and after) and the client's own, and the page-view p95 as a
ratio against the 1-user one of the same run. ``--ref REV`` also runs the same load against that git
revision of the app (a ``git archive`` of it): the old code path, measured in the same run on the same
machine. ``--without-response-cache`` also runs this tree with every answer computed (users in distinct
states). Gunicorn runs with the repo's ``app/gunicorn_conf.py`` but no worker recycling (``--max-requests``).
Bounded: ``--seconds`` per level (default 20), the store and cache in a temporary folder, loopback only,
every server stopped.

    python benchmarks/load_pages.py [--users 1 25 50] [--seconds 20] [--pages / /space] [--ref HEAD~3]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARALLEL = 6  # requests a browser keeps in flight per host
POLL_LIMIT_S = 300  # a page view that still polls after this long ends there
GUNICORN_CONF = ROOT / "app" / "gunicorn_conf.py"
Transport = Callable[[str, str, bytes | None], tuple[int, bytes]]  # (method, path, body) -> (status, body)


# -- one simulated browser ------------------------------------------------------------------------------


def http_transport(host: str, port: int, timeout: float = 120) -> Transport:
    """Plain HTTP/1.1 on loopback, a connection per request (gunicorn's sync workers close each one)."""

    def send(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    return send


def flask_transport(server) -> Transport:
    """The same requests through Flask's test client (for profiling the callbacks in-process)."""
    client = server.test_client()

    def send(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, data=body, content_type="application/json")
        return response.status_code, response.get_data()

    return send


def _components(node, found: dict[str, dict], graphs: set[str] | None = None) -> None:
    """Every component with an id in a Dash layout tree: id -> props (and the ids of the dcc.Graphs)."""
    if isinstance(node, list):
        for child in node:
            _components(child, found, graphs)
    elif isinstance(node, dict) and "props" in node and "type" in node and "namespace" in node:
        props = node["props"] or {}
        if isinstance(props.get("id"), str):
            found[props["id"]] = props
            if graphs is not None and node["type"] == "Graph":
                graphs.add(props["id"])
        for value in props.values():
            _components(value, found, graphs)


def _split(prop_id: str) -> tuple[str, str]:
    component, _, prop = prop_id.rpartition(".")
    return component, prop


class Callback:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.output = spec["output"]
        parts = self.output[2:-2].split("...") if self.output.startswith("..") else [self.output]
        self.outputs = [_split(p) for p in parts]  # (id, property with any @hash)
        self.inputs = [(i["id"], i["property"]) for i in spec["inputs"]]
        self.state = [(s["id"], s["property"]) for s in spec["state"]]
        self.initial = not spec.get("prevent_initial_call")
        self.name = (
            "cb "
            + ",".join(f"{c}.{p.split('@')[0]}" for c, p in self.outputs[:2])
            + (",…" if len(self.outputs) > 2 else "")
        )

    def written(self) -> set[tuple[str, str]]:
        return {(c, p.split("@")[0]) for c, p in self.outputs}


class Browser:
    """Dash's renderer, reduced to the requests it makes: which callbacks fire, in which order, with what."""

    def __init__(self, send: Transport, deps: list[dict], layout: dict) -> None:
        self.send = send
        # A clientside callback runs in the browser, no request: its outputs (the navigation's links) lead to
        # no server callback, so it is left out.
        self.callbacks = [Callback(d) for d in deps if not d.get("clientside_function")]
        self.shell = layout
        self.read = {p for cb in self.callbacks for p in (*cb.inputs, *cb.state)}
        self.by_input: dict[tuple[str, str], list[Callback]] = defaultdict(list)
        for cb in self.callbacks:
            for i in cb.inputs:
                self.by_input[i].append(cb)
        self.pool = ThreadPoolExecutor(PARALLEL)  # its connections: up to 6 requests at once
        # dcc.Interval components that pages start disabled and turn on while something is computed
        self.polls = {cb_id for cb in self.callbacks for cb_id, prop in cb.outputs if prop == "disabled"}

    def close(self) -> None:
        self.pool.shutdown()

    def page_view(self, path: str, query: str, record: Callable[[str, float, int, int], None]) -> bool:
        """One page view; ``record(kind, seconds, status, bytes)`` per request. True when every answer was good."""
        ok = True

        def get(kind: str, url: str) -> bytes:
            nonlocal ok
            t = time.perf_counter()
            status, body = self.send("GET", url, None)
            record(kind, time.perf_counter() - t, status, len(body))
            ok &= status == 200
            return body

        get("page", path + query)
        layout_f = self.pool.submit(get, "_dash-layout", "/_dash-layout")  # the renderer asks for both at once
        deps_f = self.pool.submit(get, "_dash-dependencies", "/_dash-dependencies")
        layout_f.result(), deps_f.result()
        props: dict[str, dict] = {}
        _components(json.loads(json.dumps(self.shell)), props)  # a fresh copy: answers change props
        # dcc.Location sets these on mount, together with the layout's own initial callbacks
        url = props.setdefault("url", {})
        url.update(pathname=path, search=query, href=f"http://127.0.0.1{path}{query}", hash="")
        pending: dict[str, tuple[Callback, set[str]]] = {}
        self._layout_callbacks(set(props), props, pending, changed={"url.pathname", "url.search", "url.href"})
        ok &= self._run(props, pending, record)
        # A poll the page turned on (the search-space analysis computed in the background): as the browser,
        # fire it every interval until the page turns it off; the view ends when everything is drawn.
        deadline = time.monotonic() + POLL_LIMIT_S
        while ok and time.monotonic() < deadline:
            polls = [c for c, p in props.items() if c in self.polls and "interval" in p and p.get("disabled") is False]
            if not polls:
                break
            time.sleep(min(props[c].get("interval", 1000) for c in polls) / 1000)
            for c in polls:
                props[c]["n_intervals"] = (props[c].get("n_intervals") or 0) + 1
            self._trigger({f"{c}.n_intervals" for c in polls}, props, pending)
            ok &= self._run(props, pending, record)
        return ok

    def _present(self, cb: Callback, props: dict[str, dict]) -> bool:
        return all(c in props for c, _ in (*cb.outputs, *cb.inputs))

    def _layout_callbacks(self, new_ids: set[str], props, pending, changed: set[str]) -> None:
        """A layout (or a chunk of it) arrived: callbacks with an output or input in it fire, unless
        ``prevent_initial_call``."""
        for cb in self.callbacks:
            if not cb.initial or not self._present(cb, props):
                continue
            if any(c in new_ids for c, _ in cb.outputs) or any(c in new_ids for c, _ in cb.inputs):
                entry = pending.setdefault(cb.output, (cb, set()))
                entry[1].update(f"{c}.{p}" for c, p in cb.inputs if f"{c}.{p}" in changed)

    def _ready(self, cb: Callback, active: list[Callback], props) -> bool:
        """Dash's rule: no input of ``cb`` (other than its own outputs) is an output that the pending and
        running callbacks, ``cb`` included, may still write, following callbacks present on the page."""
        touched: set[tuple[str, str]] = set()
        frontier = list(active)
        while frontier:
            # as in the renderer, an ``allow_duplicate`` output keeps its "@hash": it leads to no callback
            fresh = {o for c in frontier for o in c.outputs} - touched
            touched |= fresh
            frontier = [n for prop in fresh for n in self.by_input.get(prop, []) if self._present(n, props)]
        own = cb.written()
        return not any(i in touched for i in cb.inputs if i not in own)

    def _run(self, props, pending, record) -> bool:
        ok = True
        running: dict[Future, Callback] = {}
        pool = self.pool  # one per simulated browser, kept across its page views
        while pending or running:
            active = [*running.values(), *(c for c, _ in pending.values())]
            ready = [
                key
                for key, (cb, _) in pending.items()
                if not any(r.output == key for r in running.values()) and self._ready(cb, active, props)
            ]
            if not ready and not running:
                ready = self._break_cycle(pending)
            for key in ready[: max(0, PARALLEL - len(running))]:
                cb, changed = pending.pop(key)
                body = self._payload(cb, props, sorted(changed))
                running[pool.submit(self._post, cb, body, record)] = cb
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                cb = running.pop(future)
                status, answer = future.result()
                if status == 204:
                    continue  # PreventUpdate
                if status != 200:
                    ok = False
                    continue
                self._apply(cb, answer, props, pending)
        return ok

    @staticmethod
    def _break_cycle(pending: dict) -> list[str]:
        """Every pending callback waits on another (a loop such as picker -> URL -> picker): as the renderer
        does, take the first as ready, then each next one that none taken so far writes an input of."""
        taken: list[Callback] = []
        for cb, _ in pending.values():
            written = {p for t in taken for p in t.written()}
            if not any(i in written for i in cb.inputs if i not in cb.written()):
                taken.append(cb)
        return [cb.output for cb in taken]

    def _post(self, cb: Callback, body: bytes, record) -> tuple[int, dict | None]:
        t = time.perf_counter()
        status, raw = self.send("POST", "/_dash-update-component", body)
        record(cb.name, time.perf_counter() - t, status, len(raw))
        if status != 200:
            return status, None
        if not any((c, p.split("@")[0]) in self.read or p == "children" for c, p in cb.outputs):
            return status, {}  # nothing reads these props: no need to decode a large figure
        return status, json.loads(raw)

    def _payload(self, cb: Callback, props, changed: list[str]) -> bytes:
        def value(c: str, p: str) -> dict:
            item = {"id": c, "property": p}
            if p in props.get(c, {}):
                item["value"] = props[c][p]
            return item

        outputs = [{"id": c, "property": p} for c, p in cb.outputs]
        body = {
            "output": cb.output,
            "outputs": outputs if cb.output.startswith("..") else outputs[0],
            "inputs": [value(c, p) for c, p in cb.inputs],
            "changedPropIds": changed,
            "parsedChangedPropsIds": changed,
        }
        if cb.state:
            body["state"] = [value(c, p) for c, p in cb.state]
        return json.dumps(body).encode()

    def _apply(self, cb: Callback, answer: dict | None, props, pending) -> None:
        response = (answer or {}).get("response", {})
        changed: set[str] = set()
        mounted: set[str] = set()
        new_ids: set[str] = set()
        for component, updates in response.items():
            for prop, value in updates.items():
                props.setdefault(component, {})[prop] = value
                changed.add(f"{component}.{prop}")
                if prop == "children":
                    found: dict[str, dict] = {}
                    graphs: set[str] = set()
                    _components(value, found, graphs)
                    for cid, cprops in found.items():
                        props[cid] = dict(cprops)
                    new_ids |= set(found)
                    # a dcc.Graph reports its (empty) selection, click and restyle events once mounted
                    mounted |= {f"{g}.{p}" for g in graphs for p in ("selectedData", "clickData", "restyleData")}
        if new_ids:
            self._layout_callbacks(new_ids, props, pending, changed)
        self._trigger(changed, props, pending, by=cb)
        self._trigger(mounted, props, pending)

    def _trigger(self, changed: set[str], props, pending, by: Callback | None = None) -> None:
        """Callbacks an input of which changed; never one that writes that prop itself (as the renderer)."""
        for prop_id in sorted(changed):
            for nxt in self.by_input.get(_split(prop_id), []):
                if nxt is not by and _split(prop_id) not in nxt.written() and self._present(nxt, props):
                    pending.setdefault(nxt.output, (nxt, set()))[1].add(prop_id)


# -- the load --------------------------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.bytes: dict[str, list[int]] = defaultdict(list)

    def record(self, kind: str, seconds: float, status: int, size: int) -> None:
        with self.lock:
            self.times[kind].append(seconds)
            self.bytes[kind].append(size)
            if status not in (200, 204):
                self.errors[kind] += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def worker_cpu(master_pid: int) -> float:
    """utime + stime (s) of a gunicorn master's worker processes, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in children:
        with contextlib.suppress(FileNotFoundError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def gunicorn(
    tree: Path, uri: str, cache: Path, workers: int, env_extra: dict, max_requests: int = 0
) -> Iterator[tuple[int, int]]:
    """The app of ``tree`` under gunicorn on a free loopback port; yields (port, master pid); stops it."""
    port = free_port()
    env = {
        **os.environ,
        **env_extra,
        "PYTHONPATH": str(tree),
        "TRELLIS_TRACKING_URI": uri,
        "TRELLIS_CACHE": str(cache),
        "GIT_PYTHON_REFRESH": "quiet",
    }
    env.pop("TRELLIS_AUTH", None)
    conf = ["-c", str(GUNICORN_CONF)] if GUNICORN_CONF.exists() else []  # the team's settings, for both trees
    command = [sys.executable, "-m", "gunicorn", *conf, "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["--max-requests", str(max_requests)]
    # a revision from before everything moved under ``trellis.`` serves ``app.wsgi``
    wsgi = "trellis.app.wsgi:server" if (tree / "trellis").is_dir() else "app.wsgi:server"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [*command, "--timeout", "300", wsgi],
            cwd=tree,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        yield from _serve(server, port, log)


def _serve(server: subprocess.Popen, port: int, log) -> Iterator[tuple[int, int]]:
    try:
        deadline = time.time() + 180
        while True:
            try:
                status, _ = http_transport("127.0.0.1", port, timeout=5)("GET", "/_dash-dependencies", None)
                if status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError("gunicorn did not start:\n" + log.read().decode(errors="replace")[-3000:])
            time.sleep(0.3)
        yield port, server.pid
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_level(port: int, master: int, path: str, query: str, users: int, seconds: float) -> dict:
    """``users`` threads viewing ``path`` back to back for ``seconds``; the figures of that level."""
    send = http_transport("127.0.0.1", port)
    deps = json.loads(send("GET", "/_dash-dependencies", None)[1])
    layout = json.loads(send("GET", "/_dash-layout", None)[1])
    recorder = Recorder()
    views: list[float] = []
    failed = [0]
    lock = threading.Lock()
    stop = threading.Event()

    def user() -> None:
        browser = Browser(send, deps, layout)
        while not stop.is_set():
            t = time.perf_counter()
            try:
                good = browser.page_view(path, query, recorder.record)
            except OSError:
                good = False
            with lock:
                views.append(time.perf_counter() - t)
                failed[0] += not good
        browser.close()

    cpu0, wall0 = worker_cpu(master), time.perf_counter()
    own0 = time.process_time()
    threads = [threading.Thread(target=user, daemon=True) for _ in range(users)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=300)
    wall = time.perf_counter() - wall0
    cpu = worker_cpu(master) - cpu0
    n = len(views)
    return {
        "users": users,
        "views": n,
        "failed_views": failed[0],
        "errors": sum(recorder.errors.values()),
        "views_per_s": n / wall,
        "cpu_per_view": cpu / max(n, 1),
        "client_cpu_per_view": (time.process_time() - own0) / max(n, 1),
        "view": views,
        "requests": {k: v for k, v in recorder.times.items()},
        "bytes": {k: statistics.mean(v) for k, v in recorder.bytes.items()},
        "requests_per_view": sum(len(v) for v in recorder.times.values()) / max(n, 1),
    }


def cold_burst(port: int, path: str, query: str, users: int) -> list[float]:
    """``users`` first page views at once on a server that has read nothing yet: each view's seconds."""
    send = http_transport("127.0.0.1", port)
    deps = json.loads(send("GET", "/_dash-dependencies", None)[1])
    layout = json.loads(send("GET", "/_dash-layout", None)[1])

    def view(_) -> float:
        browser = Browser(send, deps, layout)
        t = time.perf_counter()
        browser.page_view(path, query, lambda *a: None)
        seconds = time.perf_counter() - t
        browser.close()
        return seconds

    with ThreadPoolExecutor(users) as pool:
        return sorted(pool.map(view, range(users)))


def warm(port: int, path: str, query: str, views: int = 4) -> None:
    """A few page views per worker before measuring: caches filled, the analysis computed."""
    send = http_transport("127.0.0.1", port)
    deps = json.loads(send("GET", "/_dash-dependencies", None)[1])
    layout = json.loads(send("GET", "/_dash-layout", None)[1])
    browsers = [Browser(send, deps, layout) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(views):
            list(pool.map(lambda b: b.page_view(path, query, lambda *a: None), browsers))
    for b in browsers:
        b.close()


def report(label: str, levels: list[dict]) -> None:
    base = levels[0]
    base_p95 = percentile(base["view"], 95) if base["view"] else float("nan")
    print(f"\n== {label}")
    print("users  views  views/s  view p50   p95      max      errors  failed  req/view  CPU-s/view  client CPU-s/view")
    for lv in levels:
        v = lv["view"] or [float("nan")]
        print(
            f"{lv['users']:>5}  {lv['views']:>5}  {lv['views_per_s']:7.1f}  {statistics.median(v):6.3f}  "
            f"{percentile(v, 95):6.3f}  {max(v):6.3f}  {lv['errors']:>6}  {lv['failed_views']:>6}  "
            f"{lv['requests_per_view']:8.1f}  {lv['cpu_per_view']:10.4f}  {lv['client_cpu_per_view']:10.4f}"
        )
    for lv in levels[1:]:
        v = lv["view"] or [float("nan")]
        print(f"  {lv['users']} users: page-view p95 = {percentile(v, 95) / base_p95:.1f} x the 1-user p95")
    for lv in levels:
        print(f"  -- {lv['users']} users, per request type: p50 / p95 / max (s), mean bytes")
        for kind, times in sorted(lv["requests"].items(), key=lambda kv: -statistics.mean(kv[1])):
            print(
                f"     {kind[:70]:<70} n={len(times):>5}  {statistics.median(times):6.3f} / "
                f"{percentile(times, 95):6.3f} / {max(times):6.3f}  {lv['bytes'][kind] / 1e3:8.1f} kB"
            )


def export_tree(rev: str, into: Path) -> Path:
    """The repository at ``rev`` as plain files (``git archive``): the old code path to compare with."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 25, 50])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per level")
    parser.add_argument("--pages", nargs="+", default=["/", "/space"])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--ref", help="also run the same load against this git revision (the old code path)")
    parser.add_argument("--ref-only", action="store_true", help="run only the reference revision")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=0,
        help="gunicorn's worker recycling (0: off, the default here: a recycled worker's CPU leaves the count)",
    )
    parser.add_argument("--cold-users", type=int, default=10, help="first views at once on a cold server (0: none)")
    parser.add_argument(
        "--without-response-cache",
        action="store_true",
        help="also run this tree with TRELLIS_RESPONSE_CACHE_MB=0 (every answer computed: users in distinct states)",
    )
    args = parser.parse_args()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    sys.path.insert(0, str(ROOT))
    from benchmarks.load_runs import build_store

    with tempfile.TemporaryDirectory(prefix="trellis-load-") as tmp:
        t = time.perf_counter()
        uri, exp = build_store(Path(tmp) / "runs.db", args.runs)
        print(f"store: {args.runs} runs in experiment {exp} ({uri}), built in {time.perf_counter() - t:.0f} s")
        trees = [("this tree", ROOT, {})]
        if args.without_response_cache:
            trees.append(("this tree, no shared answers", ROOT, {"TRELLIS_RESPONSE_CACHE_MB": "0"}))
        if args.ref:
            reference = (f"reference {args.ref}", export_tree(args.ref, Path(tmp) / "ref"), {})
            trees = [reference] if args.ref_only else [reference, *trees]
        for n, (label, tree, env) in enumerate(trees):
            for path in args.pages:
                cache = Path(tmp) / f"cache-{n}-{path.strip('/') or 'overview'}"  # each run starts cold
                with gunicorn(tree, uri, cache, args.workers, env, args.max_requests) as (port, master):
                    query = f"?exp={exp}"
                    if args.cold_users:
                        cold = cold_burst(port, path, query, args.cold_users)
                        print(
                            f"{label}: {path}{query}: {len(cold)} first views at once on a cold server: "
                            f"p50 {statistics.median(cold):.2f} s, max {max(cold):.2f} s",
                            flush=True,
                        )
                    warm(port, path, query)
                    levels = [run_level(port, master, path, query, n, args.seconds) for n in args.users]
                report(f"{label}: page {path}{query}, gunicorn -w {args.workers}, {args.runs} runs", levels)


if __name__ == "__main__":
    main()
