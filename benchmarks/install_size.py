"""What `pip install trellis-hpo` costs: wall time, site-packages size and package count of fresh venvs, each
against `pip install mlflow` alone measured in the same run.

    python benchmarks/install_size.py [--with-all]

Builds the wheel from this checkout, then installs into fresh venvs: mlflow alone, the Trellis core, and
(--with-all) `[all]` with torch's CPU build first, as ./dev does. pip's cache is shared, so each install is
mostly unpacking (what a second user on the same machine sees); the sizes do not depend on it. Prints the
ratios and the difference to MLflow alone; the goal is a core that adds at most 150 MB beyond MLflow.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_MB = 150


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink()) / 1e6


def _install(base: Path, name: str, requirements: list[list[str]]) -> dict:
    venv = base / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = next((venv / "lib").glob("python3*/site-packages"))
    before = {p.name for p in site.glob("*.dist-info")}
    start = time.perf_counter()
    for args in requirements:
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", *args], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    wall = time.perf_counter() - start
    packages = {p.name for p in site.glob("*.dist-info")} - before
    return {"name": name, "wall_s": wall, "mb": _size_mb(site), "packages": len(packages)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--with-all", action="store_true", help="also [all] with torch (about 2 GB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trellis-install-") as tmp:
        base = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(base), str(ROOT)],
            check=True,
            capture_output=True,
        )
        (wheel,) = base.glob("trellis_hpo-*.whl")
        rows = [
            _install(base, "mlflow", [["mlflow"]]),
            _install(base, "trellis-core", [[str(wheel)]]),
        ]
        if args.with_all:
            rows.append(_install(base, "trellis-all", [["torch==2.13.0"], [f"{wheel}[all]"]]))
    ref = rows[0]
    print(f"{'install':<14} {'wall s':>7} {'MB':>8} {'packages':>9} {'MB vs mlflow':>13} {'ratio':>6}")
    for row in rows:
        extra = row["mb"] - ref["mb"]
        print(
            f"{row['name']:<14} {row['wall_s']:7.1f} {row['mb']:8.0f} {row['packages']:9d} {extra:+13.0f} "
            f"{row['mb'] / ref['mb']:6.2f}"
        )
    core = rows[1]["mb"] - ref["mb"]
    verdict = "met" if core <= GOAL_MB else "MISSED"
    print(f"the core adds {core:.0f} MB beyond MLflow (goal: at most {GOAL_MB} MB): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
