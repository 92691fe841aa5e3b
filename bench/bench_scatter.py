"""Is a 50k-point Embedding Scatter interactive? Time its figure in headless Chromium (not a test).

Builds the page's own figure (`components.charts.scatter_figure`) for N random 2-D points in 10 classes,
then in Chromium (WebGL, software-rendered when there is no GPU) times: the first draw (`Plotly.newPlot`), a
zoom (`Plotly.relayout`) and a lasso-sized selection redraw (`Plotly.restyle` of selectedpoints). Server side:
building the figure and its JSON.

    .venv/bin/python -m bench.bench_scatter [--points 50000 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time

import numpy as np
from playwright.sync_api import sync_playwright
from plotly.offline import get_plotlyjs

from components.charts import scatter_figure
from tests.browser.server import CHROMIUM_ARGS

_TIME = """async ([figure, repeats]) => {
  const el = document.getElementById('plot');
  const t0 = performance.now();
  await Plotly.newPlot(el, figure.data, figure.layout);
  const draw = performance.now() - t0;
  const zooms = [], selects = [];
  for (let i = 0; i < repeats; i++) {
    let t = performance.now();
    await Plotly.relayout(el, {'xaxis.range': [-1 - i * 0.1, 1 + i * 0.1], 'yaxis.range': [-1, 1]});
    zooms.push(performance.now() - t);
    t = performance.now();
    const picked = el._fullData.map((trace, j) =>
      Array.from({length: trace._length}, (_, k) => k).filter(k => (k + i + j) % 7 === 0));
    await Plotly.restyle(el, {selectedpoints: picked});
    selects.push(performance.now() - t);
  }
  const webgl = !!document.createElement('canvas').getContext('webgl');
  return {draw, zooms, selects, webgl};
}"""


def _figure_json(n: int) -> tuple[dict, float, int]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n).astype(str)
    coords = rng.normal(size=(n, 2)).astype(np.float32) + labels.astype(int)[:, None] * 0.3
    names = np.array([f"img_{i}.png" for i in range(n)])
    start = time.perf_counter()
    figure, _ = scatter_figure(coords, labels, names, np.zeros(n, bool), np.arange(n))
    text = figure.to_json()
    build = time.perf_counter() - start
    return json.loads(text), build, len(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, nargs="+", default=[50_000, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}, headless Chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_content(f"<html><body><div id='plot'></div><script>{get_plotlyjs()}</script></body></html>")
        for n in args.points:
            figure, build, size = _figure_json(n)
            timing = page.evaluate(_TIME, [figure, args.repeats])
            print(
                f"{n:>7,} points: figure + JSON {build * 1000:.0f} ms ({size / 2**20:.1f} MB); "
                f"first draw {timing['draw']:.0f} ms; zoom median {np.median(timing['zooms']):.0f} ms; "
                f"selection redraw median {np.median(timing['selects']):.0f} ms; WebGL: {timing['webgl']}"
            )
        browser.close()


if __name__ == "__main__":
    main()
