"""Screenshots of the Atlas for the README: the search page and the scene with the most landmarks.

    python scripts/atlas_screenshots.py [catalog=atlas_demo/catalog.sqlite] [out=docs]

Serves the catalog in-process on a free 127.0.0.1 port and photographs it with Debian's headless
chromium (/usr/bin/chromium) through Playwright; PNGs are scaled to 960 px wide with a 128-colour palette.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from PIL import Image  # noqa: E402

from deepmars.web.atlas.app import create_atlas_app  # noqa: E402
from deepmars.web.atlas.options import atlas_options  # noqa: E402
from deepmars.web.server import free_port  # noqa: E402


def atlas_app(catalog: Path, cache: Path):
    """The Atlas over ``catalog``, configured as ``python atlas.py catalog=...`` configures it."""
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "atlas"), version_base="1.3"):
        cfg = compose(config_name="atlas", overrides=[f"catalog={catalog}", f"cache_dir={cache}"])
    return create_atlas_app(atlas_options(OmegaConf.to_container(cfg, resolve=True)))


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    catalog = Path(args.get("catalog", "atlas_demo/catalog.sqlite"))
    out = Path(args.get("out", ROOT / "docs"))
    import uvicorn
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = uvicorn.Server(uvicorn.Config(atlas_app(catalog, Path(tmp) / "cache"), host="127.0.0.1", port=port,
                                               log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        with sqlite3.connect(catalog) as conn:
            scene = conn.execute("SELECT id FROM landmark_images ORDER BY landmarks DESC, id LIMIT 1").fetchone()[0]
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path=str(CHROMIUM),
                                                           headless=True, args=CHROMIUM_ARGS,
                                                           viewport={"width": 1280, "height": 820})
            page = context.new_page()
            shots = {"atlas_search.png": base + "/?kind=images&min_confidence=0.50",
                     "atlas_scene.png": f"{base}/scenes/{scene}"}
            for name, url in shots.items():
                page.goto(url)
                page.wait_for_load_state("networkidle")
                page.wait_for_timeout(500)
                page.screenshot(path=str(out / name))
                image = Image.open(out / name).convert("RGB")
                image = image.resize((960, round(image.height * 960 / image.width)), Image.LANCZOS).quantize(128)
                image.save(out / name, optimize=True)
                print(f"{out / name}: {(out / name).stat().st_size / 1024:.0f} KB")
            context.close()
        server.should_exit = True


if __name__ == "__main__":
    main()
