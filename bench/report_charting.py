"""The charting library of `templog report --format html`: leather against pygal, matplotlib and plotly, each in a
fresh venv of its own (never in the project's), installed from PyPI at a pinned version with its dependencies.

Per library: what pip installs (distributions, and bytes on disk beyond an empty venv's), the time `import` adds to
a fresh process (median of RUNS, minus `python -c pass` in the same venv), the time to draw one chart like the
report's (a line of 500 points): the first in the process, with what the library imports only then, and the next
(median of 3); and what the output needs to be seen: its size,
whether it holds a script, and what it would load (a src or href outside the document, a CSS url() or @import).

Targets for the report's library (leather): <= 1 MB installed, <= 0.25 s import, no script, nothing to load.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import header, verdict

LIBRARIES = {  # name: (pip requirement, module to import)
    "leather": ("leather==0.4.1", "leather"),
    "pygal": ("pygal==3.1.3", "pygal"),
    "matplotlib": ("matplotlib==3.11.2", "matplotlib.pyplot"),
    "plotly": ("plotly==7.1.0", "plotly.graph_objects"),
}
SIZE_TARGET_MB = 1.0
IMPORT_TARGET_S = 0.25

# One chart like the report's, in each library's own words; prints the output's size, its script and URL counts
DRAW = {
    "leather": """
import leather
chart = leather.Chart()
chart.add_line(points)
output = chart.to_svg()
""",
    "pygal": """
import pygal
chart = pygal.XY()
chart.add("mean", points)
output = chart.render(is_unicode=True)
""",
    "matplotlib": """
import io, matplotlib
matplotlib.use("svg")
import matplotlib.pyplot as plt
figure, axes = plt.subplots(figsize=(7.6, 2.5))
axes.plot([p[0] for p in points], [p[1] for p in points])
buffer = io.StringIO()
figure.savefig(buffer, format="svg")
plt.close(figure)
output = buffer.getvalue()
""",
    "plotly": """
import plotly.graph_objects as go
figure = go.Figure(go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines"))
output = figure.to_html(include_plotlyjs=True, full_html=True)  # inline: "cdn" would load it from the network
""",
}
PROBE = """
import json, math, re, statistics, sys, time
points = [(i, 5 + math.sin(i / 40)) for i in range(500)]
times = []
for _ in range(4):
    started = time.perf_counter()
    exec(sys.argv[1])
    times.append(time.perf_counter() - started)
# what a browser would fetch: a src or href (but a #fragment in the document itself or data:), a CSS url() or @import,
# outside inline scripts (their code is no markup; that they must run to draw shows in the script count)
markup = re.sub(r"(<script[^>]*>).*?</script>", r"\\1", output, flags=re.S)
loads = re.findall(r"(?:src|href)\\s*=\\s*[\\x22']((?![#]|data:)[^\\x22']+)", markup)
loads += re.findall(r"url\\(\\s*[\\x22']?((?![#]|data:)[^\\x22')]+)", markup)
loads += re.findall(r"@import\\s+[\\x22']([^\\x22']+)", markup)
print(json.dumps({"first_s": times[0], "draw_s": statistics.median(times[1:]), "bytes": len(output.encode()),
                  "scripts": len(re.findall(r"<script", output)), "loads": sorted(set(loads))[:3]}))
"""


def run(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), *args], capture_output=True, text=True, check=True, timeout=600)


def site_packages_bytes(venv: Path) -> int:
    return sum(f.stat().st_size for f in venv.glob("lib/python*/site-packages/**/*") if f.is_file())


def import_seconds(python: Path, module: str, runs: int) -> float:
    """Median wall time of `python -c "import MODULE"` minus that of `python -c pass`, runs interleaved."""
    walls: dict[str, list[float]] = {"pass": [], "import": []}
    for _ in range(runs):
        for kind, code in (("pass", "pass"), ("import", f"import {module}")):
            started = time.perf_counter()
            run(python, "-c", code)
            walls[kind].append(time.perf_counter() - started)
    return statistics.median(walls["import"]) - statistics.median(walls["pass"])


def measure(name: str, scratch: Path, runs: int) -> dict:
    requirement, module = LIBRARIES[name]
    venv = scratch / name
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    before = site_packages_bytes(venv)
    listed = {d["name"] for d in json.loads(run(python, "-m", "pip", "list", "--format=json").stdout)}
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement)
    installed = {d["name"] for d in json.loads(run(python, "-m", "pip", "list", "--format=json").stdout)} - listed
    run(python, "-c", f"import {module}")  # compile its bytecode once, as pip's install of a wheel does
    figures = {"installed_mb": (site_packages_bytes(venv) - before) / 1e6, "distributions": sorted(installed),
               "import_s": import_seconds(python, module, runs)}
    figures.update(json.loads(run(python, "-c", PROBE, DRAW[name]).stdout))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per import time (default 5)")
    parser.add_argument("libraries", nargs="*", choices=[*LIBRARIES, []], help="default: all four")
    args = parser.parse_args()
    args.libraries = args.libraries or list(LIBRARIES)
    header(f"report charting: install size, import time (median of {args.runs}), one 500-point chart")
    scratch = Path(tempfile.mkdtemp(prefix="templog-bench-charting-", dir="/tmp"))
    try:
        results = {name: measure(name, scratch, args.runs) for name in args.libraries}
    finally:
        shutil.rmtree(scratch)
    print(f"{'library':<11} {'installed':>10} {'dists':>5} {'import':>8} {'1st chart':>9} {'next':>8} {'output':>10} "
          "scripts  loads")
    for name, r in results.items():
        print(f"{name:<11} {r['installed_mb']:>7.1f} MB {len(r['distributions']):>5} {r['import_s']:>6.3f} s "
              f"{r['first_s']:>7.3f} s {r['draw_s']:>6.3f} s {r['bytes'] / 1000:>7.0f} kB {r['scripts']:>7}  "
              f"{', '.join(r['loads']) or '-'}")
    for name, r in results.items():
        print(f"{name}: {', '.join(r['distributions'])}")
    if "leather" in results:
        r = results["leather"]
        verdict(f"leather installed {r['installed_mb']:.2f} MB", r["installed_mb"] <= SIZE_TARGET_MB,
                f"<= {SIZE_TARGET_MB:g} MB")
        verdict(f"leather import {r['import_s']:.3f} s", r["import_s"] <= IMPORT_TARGET_S, f"<= {IMPORT_TARGET_S} s")
        verdict(f"leather output: {r['scripts']} scripts, {len(r['loads'])} URLs to load,",
                not r["scripts"] and not r["loads"], "none of either")


if __name__ == "__main__":
    main()
