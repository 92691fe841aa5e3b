"""VFM Lens against the plain upstream libraries, path by path (not a test; the equality guards are tests).

Each pair runs its contenders alternately in one process (`--repeats` rounds, ≥ 5: ours, then each plain one,
then ours again ...), so a load change on this shared machine hits all of them alike. Each round gives one figure
per contender; the table shows the median and the spread (min–max) over the rounds, and the pair's goals. The
table replaces the marked section of docs/PERFORMANCE.md (with device and date) unless `--dry-run`; the script
exits 1 when a goal is missed.

Pairs (`PAIRS`; add one by writing a function `(args) -> PairResult` and a line in `PAIRS`):
  knn             `core.store.search` (faiss IVF-Flat beside Lance, rows as a DataFrame) against plain faiss
                  IVFFlat (ids only, and ids + the rows read back from Lance) and plain Lance (IVF_PQ + refine),
                  at `--rows` × 384 clustered synthetic vectors (default 1,000,000)
  embed_clip, embed_dinov2, cache_hit, scatter_figure
                  from bench/pairs_embed.py: 40 photos → embeddings, decode included, vs PIL + the upstream
                  transform; the same 40 again (engine cache hit); the Scatter figure at 100k points vs `px.scatter`
  sam_encode, sam_click
                  from bench/pairs_sam.py: SAM ViT-B (random full-size weights) vs `SamPredictor.set_image` / `.predict`
  Pairs written as `() -> (ours, plain)` in a bench module (bench/pairs.py) join through `_simple` (one line each).

    .venv/bin/python -m bench.bench_vs_upstream [--pairs knn] [--rows 1000000] [--repeats 5] [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

os.environ.setdefault("VFM_LENS_OFFLINE", "1")

DOC = Path(__file__).resolve().parents[1] / "docs" / "PERFORMANCE.md"
START, END = "<!-- bench_vs_upstream:start -->", "<!-- bench_vs_upstream:end -->"
DEVICE = "2-core x86_64 CPU, shared"


# ---- running contenders alternately ---------------------------------------------------------
@dataclass
class Contender:
    """One way of doing the path's job. `run()` does one round and returns its figure (lower is better)."""

    name: str
    run: Callable[[], float]
    figures: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.figures)

    @property
    def spread(self) -> str:
        return f"{min(self.figures):.3g}–{max(self.figures):.3g}"


def alternate(contenders: list[Contender], repeats: int) -> None:
    """`repeats` rounds; in each, every contender once, in order."""
    for r in range(repeats):
        for c in contenders:
            c.figures.append(c.run())
        print(f"  round {r + 1}/{repeats}: " + ", ".join(f"{c.name} {c.figures[-1]:.3g}" for c in contenders))


@dataclass
class Goal:
    what: str
    value: float
    limit: float
    at_most: bool = True  # False: the value must be at least `limit`

    @property
    def met(self) -> bool:
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def describe(self) -> str:
        sign = "≤" if self.at_most else "≥"
        return f"{self.what} {self.value:.3g} ({sign} {self.limit:g}: {'met' if self.met else 'MISSED'})"


@dataclass
class PairResult:
    path: str  # the user's path, as in the table
    unit: str  # of the contenders' figures
    ours: Contender
    plain: list[Contender]
    goals: list[Goal]
    notes: list[str] = field(default_factory=list)

    def table_rows(self) -> list[str]:
        rows = []
        for c in [self.ours, *self.plain]:
            ratio = "" if c is self.ours else f"{c.median / self.ours.median:.2f}×"
            rows.append(f"| {self.path} | {c.name} | {c.median:.3g} {self.unit} | {c.spread} | {ratio} |")
        return rows


# ---- k-NN -------------------------------------------------------------------------------------
def clustered_vectors(n: int, dim: int = 384, seed: int = 1, clusters: int = 1000, intrinsic: int = 32) -> np.ndarray:
    """(n, dim) float32 rows like image embeddings: around `clusters` centres in an `intrinsic`-dimensional
    subspace (one fixed layout for every seed), plus small isotropic noise. Rows of another `seed` are fresh draws
    from the same distribution (queries that are not in the set)."""
    layout = np.random.default_rng(0)
    centres = 2.0 * layout.standard_normal((clusters, intrinsic), dtype=np.float32)
    lift = layout.standard_normal((intrinsic, dim), dtype=np.float32) / np.sqrt(intrinsic)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 100_000):
        m = min(100_000, n - s)
        z = centres[rng.integers(0, clusters, m)] + rng.standard_normal((m, intrinsic), dtype=np.float32)
        out[s : s + m] = z @ lift + 0.3 * rng.standard_normal((m, dim), dtype=np.float32)
    return out


def exact_neighbours(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) row offsets of the exact cosine top-k (faiss flat inner product on unit rows)."""
    import faiss

    from core.vector_index import unit_rows

    flat = faiss.IndexFlatIP(data.shape[1])
    for s in range(0, len(data), 100_000):
        flat.add(unit_rows(data[s : s + 100_000]))
    return flat.search(unit_rows(queries), k)[1]


def _latency_round(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray, found: list) -> float:
    """One round: every query once; returns the p50 latency in ms, and leaves the found ids in `found`."""
    times = []
    found.clear()
    for q in queries:
        start = time.perf_counter()
        ids = search(q)
        times.append(time.perf_counter() - start)
        found.append(ids)
    return 1e3 * float(np.median(times))


def pair_knn(args: argparse.Namespace) -> PairResult:
    tmp = Path(tempfile.mkdtemp(prefix="bench_knn_"))
    try:
        return _knn(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # two 1.5 GB Lance tables and our index


def _knn(args: argparse.Namespace, tmp: Path) -> PairResult:
    import faiss
    import lancedb
    from lancedb.index import IvfPq

    from core import store
    from core.vector_index import read_info, recall_at, unit_rows

    k, rows, dim = 10, args.rows, 384
    print(f"k-NN: {rows:,} × {dim} clustered vectors, {args.queries} fresh queries, k={k} (data in {tmp})")
    data, queries = clustered_vectors(rows, dim, seed=1), clustered_vectors(args.queries, dim, seed=2)
    truth = exact_neighbours(data, queries, k)
    ids = np.asarray([f"r{i:07d}" for i in range(rows)], dtype=object)
    paths = np.asarray([f"/data/photos/class_{i % 100:03d}/img_{i:07d}.jpg" for i in range(rows)], dtype=object)
    for s in range(0, rows, 100_000):  # both stores hold the same rows, written the same way
        part = store.images_rows(ids[s : s + 100_000], paths[s : s + 100_000], [None] * len(ids[s : s + 100_000]),
                                 "dinov2_small", "random", data[s : s + 100_000])  # fmt: skip
        store.append(tmp / "ours", store.IMAGES, part)
        store.append(tmp / "lance", store.IMAGES, part)

    ours_table = store.open_store(tmp / "ours").table
    start = time.perf_counter()
    built = store.build_index(ours_table)
    ours_build = time.perf_counter() - start
    print(f"  ours: {built}, built in {ours_build:.1f} s")
    lance_table = lancedb.connect(str(tmp / "lance")).open_table(store.IMAGES)
    start = time.perf_counter()
    lance_table.create_index("vector", config=IvfPq(distance_type="cosine"), replace=True)
    lance_build = time.perf_counter() - start
    print(f"  plain Lance IVF_PQ (defaults) built in {lance_build:.1f} s")
    start = time.perf_counter()
    lists = max(1, round(np.sqrt(rows)))
    plain = faiss.index_factory(dim, f"IVF{lists},Flat", faiss.METRIC_INNER_PRODUCT)
    unit = unit_rows(data)
    plain.train(unit[np.random.default_rng(0).choice(rows, min(rows, 40 * lists), replace=False)])
    plain.add(unit)
    del unit
    plain.nprobe = args.faiss_nprobe or read_info(tmp / "ours").nprobe  # default: ours, for the same recall
    faiss_build = time.perf_counter() - start
    print(f"  plain faiss IVF{lists},Flat built in {faiss_build:.1f} s; nprobe {plain.nprobe}")

    def ours(q: np.ndarray) -> np.ndarray:
        found = store.search(ours_table, q, k)
        return np.asarray([int(i[1:]) for i in found["id"]])

    def faiss_ids(q: np.ndarray) -> np.ndarray:
        return plain.search(unit_rows(q), k)[1][0]

    def faiss_rows(q: np.ndarray) -> np.ndarray:  # what a plain user needs on screen: the rows, not only ids
        offsets = plain.search(unit_rows(q), k)[1][0]
        rows_ = lance_table.take_offsets(offsets.tolist()).select(store.META_COLUMNS).to_pandas()
        return np.asarray([int(i[1:]) for i in rows_["id"]])

    def lance(q: np.ndarray) -> np.ndarray:
        found = (
            lance_table.search(q, vector_column_name="vector").distance_type("cosine").limit(k)
            .nprobes(store.NPROBES).refine_factor(store.REFINE_FACTOR).select([*store.META_COLUMNS, "_distance"])
            .to_pandas()
        )  # fmt: skip
        return np.asarray([int(i[1:]) for i in found["id"]])

    recalls: dict[str, list[float]] = {}

    def contender(name: str, search: Callable[[np.ndarray], np.ndarray]) -> Contender:
        found: list = []

        def run() -> float:
            p50 = _latency_round(search, queries, found)
            recalls.setdefault(name, []).append(recall_at(np.asarray(found), truth))
            return p50

        return Contender(name, run)

    ours_c = contender("VFM Lens `store.search` (rows)", ours)
    plain_cs = [
        contender("faiss IVFFlat, ids only", faiss_ids),
        contender("faiss IVFFlat + Lance `take_offsets` (rows)", faiss_rows),
        contender(f"Lance IVF_PQ, nprobes {store.NPROBES}, refine ×{store.REFINE_FACTOR} (rows)", lance),
    ]
    ours(queries[0]), faiss_ids(queries[0]), faiss_rows(queries[0]), lance(queries[0])  # warm up
    alternate([ours_c, *plain_cs], args.repeats)
    recall = {name: statistics.median(r) for name, r in recalls.items()}
    names = [ours_c.name, *(c.name for c in plain_cs)]
    builds = dict(zip(names, [ours_build, faiss_build, faiss_build, lance_build], strict=True))
    notes = [f"{name}: recall@10 {recall[name]:.3f}, index build {builds[name]:.0f} s" for name in recall]
    goals = [
        Goal("p50 ms", ours_c.median, 2.0),
        Goal("recall@10", recall[ours_c.name], 0.95, at_most=False),
        Goal("index build s", ours_build, 60.0),
        Goal("× faster than faiss + Lance rows", plain_cs[1].median / ours_c.median, 1.0, at_most=False),
        Goal("× faster than plain Lance", plain_cs[2].median / ours_c.median, 1.0, at_most=False),
    ]
    return PairResult(f"k-NN, {rows:,} × {dim}, k={k}", "ms p50", ours_c, plain_cs, goals, notes)


def _simple(
    module: str, name: str, path: str, goal: str, limit: float, ratio: bool = True
) -> Callable[[argparse.Namespace], PairResult]:
    """A pair from `bench.<module>.PAIRS[name]`: `() -> (ours, plain | None)`, each a round returning seconds.

    With `ratio`, the goal is plain / ours ≥ `limit` (× faster); without, ours' median ≤ `limit` seconds."""

    def run(args: argparse.Namespace) -> PairResult:
        import importlib

        ours, plain = importlib.import_module(f"bench.{module}").PAIRS[name]()
        ours_c = Contender("VFM Lens", ours)
        plain_cs = [Contender("plain upstream", plain)] if plain is not None else []
        alternate([ours_c, *plain_cs], args.repeats)
        if ratio and plain_cs:
            goals = [Goal(goal, plain_cs[0].median / ours_c.median, limit, at_most=False)]
        else:
            goals = [Goal(goal, ours_c.median, limit)]
        return PairResult(path, "s", ours_c, plain_cs, goals)

    return run


PAIRS: dict[str, Callable[[argparse.Namespace], PairResult]] = {
    "knn": pair_knn,
    "embed_clip": _simple("pairs_embed", "embed_clip", "40 photos → CLIP ViT-B/32, decode included", "× faster", 1.3),
    "embed_dinov2": _simple("pairs_embed", "embed_dinov2", "40 photos → DINOv2-S, decode included", "× faster", 1.3),
    "cache_hit": _simple("pairs_embed", "cache_hit", "cache hit, the same 40 photos", "seconds", 0.020, ratio=False),
    "sam_encode": _simple("pairs_sam", "sam_encode", "SAM ViT-B image embedding, 1500 × 2250 photo", "× faster", 1.3),
    "sam_click": _simple("pairs_sam", "sam_click", "SAM ViT-B click (20 clicks a round)", "× faster", 1.0),
    "scatter_figure": _simple(
        "pairs_embed",
        "scatter",
        "Embedding Scatter figure, 100k points",
        "plain time / ours (ours ≤ 1.2× plain)",
        0.833,
    ),
}


# ---- the report -------------------------------------------------------------------------------
def device() -> str:
    import torch

    return f"{DEVICE} ({platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, load {os.getloadavg()[0]:.1f})"


def markdown(results: list[PairResult], when: str) -> str:
    lines = [
        START,
        f"_Written by `python -m bench.bench_vs_upstream` on {when}; device: {device()}. Figures are upper bounds "
        "(other jobs shared the cores). Contenders alternate in one process; median and min–max over the rounds; "
        "ratio = the plain contender's median / ours (above 1: ours is faster)._",
        "",
        "| path | contender | median | spread | plain / ours |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines += r.table_rows()
    lines.append("")
    for r in results:
        lines.append(f"- **{r.path}**: goals — " + "; ".join(g.describe() for g in r.goals) + ".")
        lines += [f"  - {n}" for n in r.notes]
    lines.append(END)
    return "\n".join(lines)


def write_section(text: str, doc: Path = DOC) -> None:
    """Replace the marked section of `doc`, or append it under a heading of its own."""
    current = doc.read_text()
    if START in current and END in current:
        current = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: text, current, flags=re.S)
    else:
        current = current.rstrip("\n") + "\n\n## VFM Lens vs the plain libraries (`bench.bench_vs_upstream`)\n" + text
    doc.write_text(current + ("" if current.endswith("\n") else "\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="knn", help=f"comma-separated, of: {', '.join(PAIRS)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rows", type=int, default=1_000_000, help="k-NN: stored vectors")
    parser.add_argument("--queries", type=int, default=200, help="k-NN: queries a round")
    parser.add_argument("--faiss-nprobe", type=int, default=0, help="k-NN: plain faiss nprobe (0: the one ours chose)")
    parser.add_argument("--dry-run", action="store_true", help="print the table, leave docs/PERFORMANCE.md alone")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be at least 5")
    results = [PAIRS[name](args) for name in args.pairs.split(",")]
    text = markdown(results, datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    print(text)
    if not args.dry_run:
        write_section(text)
    missed = [g.describe() for r in results for g in r.goals if not g.met]
    if missed:
        print("goals missed: " + "; ".join(missed), file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
