"""Atlas latency on an archive-sized catalog: p50 / p95 of typical queries with concurrent clients.

    python benchmarks/atlas_latency.py [--images 3700000] [--scenes 16000] [--clients 4] [--requests 200]

Generates (once per --workdir, in a temp folder by default, never in the repository) a catalog of
--images MSL-like predictions (25 classes, skewed like MSL v1, sols 0-3000, three instruments)
and --scenes HiRISE scenes with about 62 landmarks each (1 M landmark rows at 16,000 scenes),
through the catalog's own schema and triggers, in big INSERT .. SELECT transactions (a recursive
CTE, no Python loop per row). Then serves it with `python atlas.py` in a subprocess and times each
query type with --clients threads for --requests requests, and the server's memory while paging
through 300 pages.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deepmars.catalog import Catalog, ModelInfo  # noqa: E402
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
            WITH RECURSIVE seq(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM seq WHERE i < {min(start + step, n_images) - 1})
            INSERT INTO predictions (model_id, path, sha256, file_size, file_mtime_ns, width, height, sol, instrument,
                source_image, metadata, predicted_class, confidence, top_k, abstained, classified_at)
            SELECT '{MSL_MODEL}', printf('/archive/msl/%04d/%04d%s%016dE01_DRCL.JPG', i * 3000 / {n_images},
                   i * 3000 / {n_images}, {inst}, i), printf('%064x', i), 100000, 0, 256, 192, i * 3000 / {n_images},
                   {inst}, NULL, '{{}}', {cls}, 0.3 + 0.7 * (1.0 - ((i * 104729) % 997) * ((i * 104729) % 997) / 994009.0),
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
        INSERT INTO landmarks SELECT '{HIRISE_MODEL}', printf('%064x', s), k + 1, printf('ESP_%06d_%04d_RED', s, 1000 + s % 9000),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=3_700_000)
    ap.add_argument("--scenes", type=int, default=16_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "deepmars-atlas-bench")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    catalog = args.workdir / f"catalog-{args.images}-{args.scenes}.sqlite"
    if not catalog.is_file():
        print(f"generating {catalog} ({args.images:,} images, {args.scenes:,} scenes)", flush=True)
        t = time.perf_counter()
        generate(catalog.with_suffix(".partial"), args.images, args.scenes)
        catalog.with_suffix(".partial").rename(catalog)
        print(f"generated in {time.perf_counter() - t:.0f} s, {catalog.stat().st_size / 2**30:.2f} GiB", flush=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "atlas.py"), f"catalog={catalog}", f"port={port}",
                               f"cache_dir={args.workdir / 'cache'}"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        print(server.stdout.readline().strip(), flush=True)
        for _ in range(100):
            try:
                get(port, "/api/catalog")
                break
            except OSError:
                time.sleep(0.1)
        deep = deep_cursor(catalog, args.images // 2)
        queries = {
            "one facet (class=wheel)": {"class": "wheel"},
            "two facets + slider (class, instrument, >= 0.9)": {"class": "drill holes", "instrument": "MH",
                                                                "min_confidence": 0.9},
            "free text 'drill hole'": {"q": "drill hole"},
            "free text file name prefix '1500ML'": {"q": "1500ML"},
            "deep page (row ~1.85 M, keyset)": {"after": deep},
            "sol range 1000-1499 + class": {"sol_min": 1000, "sol_max": 1499, "class": "ground"},
            "scenes: >= 3 craters": {"kind": "scenes", "min_count": "crater:3"},
        }
        facet_queries = {
            "facet counts, no filter": {},
            "facet counts, class + slider": {"class": "wheel", "min_confidence": 0.8},
            "facet counts, sol 1010-1234 (unaligned)": {"sol_min": 1010, "sol_max": 1234},
            "facet counts, scenes >= 3 craters": {"kind": "scenes", "min_count": "crater:3"},
        }
        urls = {name: "/api/search?" + urlencode(p) for name, p in queries.items()}
        urls.update({name: "/api/facets?" + urlencode(p) for name, p in facet_queries.items()})
        print(f"\n{args.clients} concurrent clients, {args.requests} requests per query, 2-core machine\n")
        print("| query | p50 ms | p95 ms | result |\n|---|---|---|---|")
        for name, url in urls.items():
            get(port, url)  # warm
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                results = list(pool.map(lambda _: get(port, url), range(args.requests)))
            times = sorted(r[0] * 1000 for r in results)
            statuses = {r[1] for r in results}
            body = results[-1][2] or {}
            print(f"| {name} | {statistics.median(times):.1f} | {times[int(0.95 * len(times)) - 1]:.1f} | "
                  f"{body.get('total', '?'):,} rows{'' if statuses == {200} else f' status {statuses}'} |", flush=True)
        print("\nserver memory while paging (300 pages of 60, following `next`):")
        url, marks = "/api/search", []
        for i in range(300):
            _, _, body = get(port, url)
            if not body or not body["next"]:
                break
            url = "/api/search?" + urlencode({"after": body["next"]})
            if i % 50 == 0 or i == 299:  # noqa: PLR2004
                marks.append(f"page {i + 1}: {rss_mb(server.pid):.0f} MB")
        print("  " + ", ".join(marks))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
