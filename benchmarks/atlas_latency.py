"""Atlas latency on an archive-sized catalog: p50 / p95 of typical queries with concurrent clients.

    python benchmarks/atlas_latency.py [--images 3700000] [--scenes 16000] [--clients 4] [--requests 200]
                                       [--workdir DIR] [--baseline REV]

Generates (once per --workdir and catalog schema, in a temp folder by default, never in the
repository) a catalog of --images MSL-like predictions (25 classes, skewed like MSL v1, sols
0-3000, three instruments) and --scenes HiRISE scenes with about 62 landmarks each (1 M landmark
rows at 16,000 scenes), through the catalog's own schema and triggers, in big INSERT .. SELECT
transactions (a recursive CTE, no Python loop per row). Then serves it with `python atlas.py` in a
subprocess and times each query type with --clients threads for --requests requests, and the
server's memory while paging through 300 pages.

--baseline REV (a git revision, e.g. main): the same for that revision's code, served at the same
time; each query's requests alternate between the two servers in rounds, so both see the same
machine load, and the table puts them side by side. A revision of the same catalog schema serves
the very catalog file this one does (both read-only); one of another schema, a catalog its own
code generates.

--queries WORDS (comma-separated): only the queries whose name holds one of them, e.g.
`--queries "dark dunes,0.935"`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baseline_tree import baseline_tree, call_in_tree  # noqa: E402

from deepmars.catalog import SCHEMA_VERSION, Catalog, ModelInfo  # noqa: E402
from deepmars.web.atlas.filters import Cursor  # noqa: E402
from deepmars.web.server import free_port  # noqa: E402

MSL = ["apxs", "apxs cal target", "chemcam cal target", "chemin inlet open", "drill", "drill holes", "drt front",
       "drt side", "ground", "horizon", "inlet", "mahli", "mahli cal target", "mastcam", "mastcam cal target",
       "observation tray", "portion box", "portion tube", "portion tube opening", "rems uv sensor",
       "rover rear deck", "scoop", "sun", "turret", "wheel"]
HIRISE = ["other", "crater", "dark dune", "slope streak", "bright dune", "impact ejecta", "edge"]
MSL_MODEL, HIRISE_MODEL = "runs:/0000000000000000000000000000msl1", "runs:/00000000000000000000000000hirise"


def _case(values: list[str], expr: str) -> str:
    return "CASE " + " ".join(f"WHEN {expr} = {i} THEN '{v}'" for i, v in enumerate(values)) + " END"


def generate(path: Path, n_images: int, n_scenes: int) -> None:
    """Into ``path``; an interrupted generation keeps its committed image blocks and goes on from there."""
    with Catalog.open(path) as cat:  # schema, facet tables, FTS and triggers as any catalog has them
        cat.register_model(ModelInfo(MSL_MODEL, MSL, "msl", 1.0, {}, {}))
        cat.register_model(ModelInfo(HIRISE_MODEL, HIRISE, "hirise", 1.0, {}, {}))
        done = cat.conn.execute("SELECT count(*) FROM predictions").fetchone()[0]
        for table in ("landmark_counts", "landmarks", "landmark_images"):
            cat.conn.execute(f"DELETE FROM {table}")
    conn = __import__("sqlite3").connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    # class index: squaring a uniform number skews towards the first classes (ground-like imbalance)
    cls = _case(MSL, "(((i * 7919) % 1009) * ((i * 7919) % 1009) * 25) / 1018081")
    inst = "CASE i % 3 WHEN 0 THEN 'ML' WHEN 1 THEN 'MR' ELSE 'MH' END"
    step = 500_000
    for start in range(done, n_images, step):
        t = time.perf_counter()
        conn.execute("BEGIN")
        conn.execute(f"""
            WITH RECURSIVE seq(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM seq
                                      WHERE i < {min(start + step, n_images) - 1})
            INSERT INTO predictions (model_id, path, sha256, file_size, file_mtime_ns, width, height, sol, instrument,
                source_image, metadata, predicted_class, confidence, top_k, abstained, classified_at)
            SELECT '{MSL_MODEL}', printf('/archive/msl/%04d/%04d%s%016dE01_DRCL.JPG', i * 3000 / {n_images},
                   i * 3000 / {n_images}, {inst}, i), printf('%064x', i), 100000, 0, 256, 192, i * 3000 / {n_images},
                   {inst}, NULL, '{{}}', {cls},
                   0.3 + 0.7 * (1.0 - ((i * 104729) % 997) * ((i * 104729) % 997) / 994009.0),
                   '[]', 0.3 + 0.7 * (1.0 - ((i * 104729) % 997) * ((i * 104729) % 997) / 994009.0) < 0.5,
                   '2024-01-01T00:00:00Z' FROM seq""")
        conn.execute("COMMIT")
        print(f"  images {min(start + step, n_images):,} ({time.perf_counter() - t:.0f} s)", flush=True)
    per_scene = 62
    conn.execute("BEGIN")
    conn.execute(f"""
        WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < {n_scenes - 1})
        INSERT INTO landmark_images (model_id, sha256, source_image, path, file_size, file_mtime_ns, source_width,
            source_height, working_width, working_height, landmarks, notes, detector, overlay, classified_at)
        SELECT '{HIRISE_MODEL}', printf('%064x', i), printf('ESP_%06d_%04d_RED', i, 1000 + i % 9000),
               printf('/archive/hirise/ESP_%06d_%04d_RED.JP2', i, 1000 + i % 9000), 1, 0, 24000, 35000, 2048, 2987,
               {per_scene}, '', '{{}}', NULL, '2024-01-01T00:00:00Z' FROM seq""")
    lm_cls = _case(HIRISE, "(k * 31 + s) % 7")
    conn.execute(f"""
        WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < {n_scenes * per_scene - 1})
        INSERT INTO landmarks SELECT '{HIRISE_MODEL}', printf('%064x', s), k + 1,
               printf('ESP_%06d_%04d_RED', s, 1000 + s % 9000),
               NULL, (k * 97) % 1900, (k * 53) % 2800, 60, 60, 0, 0, 700, 700, 3600, 1.0, {lm_cls},
               0.6 + 0.4 * ((n * 7919) % 101) / 101.0, '[]', 0, '2024-01-01T00:00:00Z'
        FROM (SELECT n, n / {per_scene} AS s, n % {per_scene} AS k FROM seq)""")
    # one GROUP BY pass (a correlated count per row would walk the class index: hours)
    conn.execute(f"""
        INSERT INTO landmark_counts SELECT i.model_id, i.sha256, 0.9, c.value, i.source_image, IFNULL(g.n, 0)
        FROM landmark_images i CROSS JOIN json_each('{json.dumps(HIRISE)}') c
        LEFT JOIN (SELECT sha256, predicted_class, count(*) AS n FROM landmarks WHERE confidence >= 0.9
                   GROUP BY 1, 2) g ON g.sha256 = i.sha256 AND g.predicted_class = c.value""")
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("ANALYZE")
    conn.close()


def deep_cursor(path: Path, offset: int) -> str:
    conn = __import__("sqlite3").connect(path)
    conf, row_id = conn.execute("SELECT confidence, id FROM predictions WHERE model_id = ? AND abstained = 0 "
                                "ORDER BY confidence DESC, id DESC LIMIT 1 OFFSET ?", (MSL_MODEL, offset)).fetchone()
    conn.close()
    return Cursor(conf, row_id).encode()


def get(port: int, url: str) -> tuple[float, int, dict | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    t = time.perf_counter()
    conn.request("GET", url)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed, response.status, json.loads(body) if response.status == 200 else None


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


QUERIES = {  # name -> (route, parameters)
    "one facet (class=wheel)": ("search", {"class": "wheel"}),
    "two facets + slider (class, instrument, >= 0.9)": ("search", {"class": "drill holes", "instrument": "MH",
                                                                   "min_confidence": 0.9}),
    "free text 'drill hole'": ("search", {"q": "drill hole"}),
    "free text file name prefix '1500ML'": ("search", {"q": "1500ML"}),
    "deep page (row ~1.85 M, keyset)": ("search", {"after": None}),
    "sol range 1000-1499 + class": ("search", {"sol_min": 1000, "sol_max": 1499, "class": "ground"}),
    "scenes: >= 3 craters": ("search", {"kind": "scenes", "min_count": "crater:3"}),
    "scenes: >= 3 craters and >= 2 dark dunes": ("search", {"kind": "scenes",
                                                            "min_count": ["crater:3", "dark dune:2"]}),
    "facet counts, no filter": ("facets", {}),
    "facet counts, class + slider": ("facets", {"class": "wheel", "min_confidence": 0.8}),
    "facet counts, sol 1010-1234 (unaligned)": ("facets", {"sol_min": 1010, "sol_max": 1234}),
    "facet counts, >= 0.93 (off the slider's 0.05 steps)": ("facets", {"min_confidence": 0.93}),
    "facet counts, >= 0.935 (off every grid)": ("facets", {"min_confidence": 0.935}),
    "facet counts, scenes >= 3 craters": ("facets", {"kind": "scenes", "min_count": "crater:3"}),
    "facet counts, scenes >= 3 craters and >= 2 dark dunes": ("facets", {"kind": "scenes",
                                                                          "min_count": ["crater:3", "dark dune:2"]}),
    "facet counts, scenes, no filter": ("facets", {"kind": "scenes"}),
}


@dataclass
class Server:
    """One atlas.py process serving one catalog with one revision's code."""

    label: str
    root: Path
    catalog: Path
    process: subprocess.Popen | None = None
    port: int = 0

    def start(self, cache: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, str(self.root / "atlas.py"), f"catalog={self.catalog}", f"port={self.port}",
             f"cache_dir={cache}"], cwd=self.root, stdout=subprocess.PIPE, text=True)
        print(f"{self.label}: {self.process.stdout.readline().strip()}", flush=True)
        for _ in range(100):
            try:
                get(self.port, "/api/catalog")
                return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _url(route: str, params: dict, deep: str) -> str:
    params = {k: (deep if v is None else v) for k, v in params.items()}
    return f"/api/{route}?" + urlencode(params, doseq=True)


def _times(server: Server, url: str, clients: int, n: int) -> tuple[list[float], set[int], dict]:
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(lambda _: get(server.port, url), range(n)))
    return [r[0] * 1000 for r in results], {r[1] for r in results}, results[-1][2] or {}


def _p95(times: list[float]) -> float:
    return sorted(times)[max(0, int(0.95 * len(times)) - 1)]


def measure(servers: list[Server], deep: dict[str, str], clients: int, requests: int, rounds: int,
            queries: dict[str, tuple[str, dict]]) -> None:
    """Each query, every server, in alternating rounds; one table row per query."""
    head = " | ".join(f"{s.label} p50 ms | {s.label} p95 ms" for s in servers)
    print(f"\n{clients} concurrent clients, {requests} requests per query and server, in {rounds} alternating rounds; "
          f"load average before: {os.getloadavg()[0]:.1f}\n")
    print(f"| query | {head} | matching |\n|---|{'---|---|' * len(servers)}---|")
    for name, (route, params) in queries.items():
        times: dict[str, list[float]] = {s.label: [] for s in servers}
        totals, statuses = {}, set()
        for server in servers:
            get(server.port, _url(route, params, deep[server.label]))  # warm
        for r in range(rounds):
            for server in servers if r % 2 == 0 else servers[::-1]:
                got, status, body = _times(server, _url(route, params, deep[server.label]), clients,
                                           requests // rounds)
                times[server.label] += got
                statuses |= status
                totals[server.label] = body.get("total", "?")
        cells = " | ".join(f"{statistics.median(times[s.label]):.1f} | {_p95(times[s.label]):.1f}" for s in servers)
        matched = " / ".join(f"{totals[s.label]:,}" if isinstance(totals[s.label], int) else "?" for s in servers)
        print(f"| {name} | {cells} | {matched}{'' if statuses == {200} else f' status {statuses}'} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


def paging_memory(server: Server) -> str:
    url, marks = "/api/search", []
    for i in range(300):
        _, _, body = get(server.port, url)
        if not body or not body["next"]:
            break
        url = "/api/search?" + urlencode({"after": body["next"]})
        if i % 50 == 0 or i == 299:  # noqa: PLR2004
            marks.append(f"page {i + 1}: {rss_mb(server.process.pid):.0f} MB")
    return ", ".join(marks)


def schema_version(root: Path) -> int | None:
    """The catalog schema version of the tree at ``root`` (read from its source, not imported)."""
    found = re.search(r"^SCHEMA_VERSION = (\d+)$", (root / "deepmars/catalog/schema.py").read_text(), re.MULTILINE)
    return int(found.group(1)) if found else None


def chosen_queries(words: str | None) -> dict[str, tuple[str, dict]]:
    """QUERIES whose name holds one of the comma-separated ``words`` (all without words)."""
    if not words:
        return QUERIES
    wanted = [w.strip() for w in words.split(",") if w.strip()]
    chosen = {name: query for name, query in QUERIES.items() if any(w in name for w in wanted)}
    if not chosen:
        raise SystemExit(f"--queries: no query name holds any of {wanted}; the queries are: {', '.join(QUERIES)}")
    return chosen


def ensure_catalog(root: Path, catalog: Path, images: int, scenes: int) -> None:
    """Generate ``catalog`` with the code of the tree at ``root`` (this one, or a baseline's) once."""
    if catalog.is_file():
        return
    print(f"generating {catalog} ({images:,} images, {scenes:,} scenes)", flush=True)
    t = time.perf_counter()
    partial = catalog.with_suffix(".partial")
    if root == ROOT:
        generate(partial, images, scenes)
    else:
        call_in_tree(root, "atlas_latency", "generate", str(partial), images, scenes)
    partial.rename(catalog)
    print(f"generated in {time.perf_counter() - t:.0f} s, {catalog.stat().st_size / 2**30:.2f} GiB", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=3_700_000)
    ap.add_argument("--scenes", type=int, default=16_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds per query (with --baseline)")
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepmars-atlas-bench")
    ap.add_argument("--baseline", help="a git revision to measure side by side (e.g. main)")
    ap.add_argument("--queries", help="comma-separated words: only the queries whose name holds one of them")
    ap.add_argument("--no-memory", action="store_true", help="skip the paging memory measurement")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    name = f"catalog-{args.images}-{args.scenes}"
    catalog = args.workdir / f"{name}-schema{SCHEMA_VERSION}.sqlite"
    servers = [Server("now", ROOT, catalog)]
    if args.baseline:
        tree = baseline_tree(args.baseline, args.workdir)
        same_schema = schema_version(tree) == SCHEMA_VERSION
        servers.insert(0, Server(f"{args.baseline}", tree, catalog if same_schema else tree / f"{name}.sqlite"))
    queries = chosen_queries(args.queries)
    for server in servers:
        ensure_catalog(server.root, server.catalog, args.images, args.scenes)
    try:
        for server in servers:
            server.start(args.workdir / "cache")
        deep = {s.label: deep_cursor(s.catalog, args.images // 2) for s in servers}
        measure(servers, deep, args.clients, args.requests, args.rounds if args.baseline else 1, queries)
        if not args.no_memory:
            print("\nserver memory while paging (300 pages of 60, following `next`):")
            for server in servers:
                print(f"  {server.label}: {paging_memory(server)}")
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    main()
