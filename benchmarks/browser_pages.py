"""How long headless Chromium takes to draw each page's figures once their data arrived, and how large the
gunicorn worker grows serving them (issue 28's browser and memory targets).

The app runs under gunicorn (the repository's settings, one worker) over a given store. Before any page script
runs, a hook wraps plotly's ``newPlot``/``react``: each call's start (the figure's data has arrived, Dash hands
it to plotly) and the end of its drawing (the returned promise resolves, as plotly's ``afterplot`` fires) are
recorded. Per page: the slowest figure's draw, the page's figures all drawn (from navigation start), the
worker's resident memory.

    python benchmarks/browser_pages.py --uri sqlite:////tmp/trellis-million/runs1000000.db --exp 1 \\
        --pages / /space
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT))

HOOK = """
window.__draws = [];
(function () {
  let real;
  const wrap = (P) => {
    for (const name of ['newPlot', 'react']) {
      const original = P[name];
      if (!original || original.__timed) continue;
      const timed = function (gd, ...rest) {
        const start = performance.now();
        const id = (typeof gd === 'string') ? gd : (gd && gd.id) || '?';
        const done = original.call(this, gd, ...rest);
        Promise.resolve(done).then(() => window.__draws.push({id, start, end: performance.now()}));
        return done;
      };
      timed.__timed = true;
      P[name] = timed;
    }
    return P;
  };
  Object.defineProperty(window, 'Plotly', {
    configurable: true,
    get() { return real; },
    set(value) { real = value && wrap(value); },
  });
})();
"""


def rss_of_workers(master: int) -> tuple[float, float]:
    """(current, peak) resident memory in GB of the largest gunicorn worker under ``master``."""
    children = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()
    best = (0.0, 0.0)
    for pid in children:
        try:
            status = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1] for line in status if line.startswith(("VmRSS", "VmHWM"))}
        best = max(best, (int(fields["VmRSS"]) / 1e6, int(fields["VmHWM"]) / 1e6))
    return best


def settle(driver, quiet_s: float = 2.5, timeout: float = 180.0) -> list[dict]:
    """Wait until no figure was drawn for ``quiet_s`` and nothing is loading; the draws recorded."""
    t0, last, count = time.monotonic(), time.monotonic(), -1
    while time.monotonic() - t0 < timeout:
        draws = driver.execute_script("return window.__draws || []")
        loading = driver.execute_script("return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length")
        if len(draws) != count or loading:
            count, last = len(draws), time.monotonic()
        elif time.monotonic() - last >= quiet_s and draws:
            return draws
        time.sleep(0.25)
    return driver.execute_script("return window.__draws || []")


def main() -> None:
    from tests.browser import free_port, make_driver

    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--exp", required=True, help="experiment id(s), comma-separated")
    parser.add_argument("--pages", nargs="+", default=["/", "/space", "/curves", "/exploration", "/control"])
    parser.add_argument("--target", type=float, default=1.0, help="seconds a figure may take to draw")
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRELLIS_TRACKING_URI": args.uri}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "app" / "gunicorn_conf.py"), "-w", "1", "-t", "600",
         "-b", f"127.0.0.1:{port}", "trellis.app.wsgi:server"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(base + "/", timeout=5)
                break
            except OSError:
                time.sleep(0.5)
        driver = make_driver()
        driver.set_script_timeout(300)
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
        print(f"{'page':<14} {'figures':>7} {'slowest draw':>13} {'all drawn':>10}  worker RSS / peak")
        for page in args.pages:
            driver.get(f"{base}{page}?exp={args.exp}")
            draws = settle(driver)
            slowest = max((d["end"] - d["start"] for d in draws), default=0.0) / 1000
            done = max((d["end"] for d in draws), default=0.0) / 1000
            rss, peak = rss_of_workers(server.pid)
            sizes = driver.execute_script(
                "return performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('_dash-update-component') || e.name.includes('_dash-layout'))"
                ".map(e => [e.name.split('/').pop(), e.encodedBodySize, e.decodedBodySize, e.duration])"
            )
            biggest = sorted(sizes, key=lambda e: -e[2])[:3]
            print(f"    sent by the server: {sum(e[1] for e in sizes) / 1e6:.2f} MB on the wire, "
                  f"{sum(e[2] for e in sizes) / 1e6:.2f} MB decoded; largest answers (MB, s): "
                  f"{[(round(e[2] / 1e6, 2), round(e[3] / 1000, 1)) for e in biggest]}")  # fmt: skip
            flag = "" if slowest <= args.target else f"  (over {args.target:g} s)"
            print(f"{page:<14} {len(draws):>7} {slowest:>11.2f} s {done:>8.1f} s  {rss:.2f} / {peak:.2f} GB{flag}")
            slow = sorted(draws, key=lambda d: d["start"] - d["end"])[:3]
            print(
                "    slowest figures:", json.dumps([(d["id"], round((d["end"] - d["start"]) / 1000, 2)) for d in slow])
            )
        driver.quit()
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
