"""A screenshot of the labeling page for the README, on real images.

    python scripts/label_screenshot.py images=<catalog | landmarks output | folder> classes=<data set or class file>
        [order=margin] [answers=3] [out=docs/labeling_page.png]

Makes a throw-away queue and user, serves the page in-process on a free 127.0.0.1 port, signs in
with Debian's headless chromium (/usr/bin/chromium) through Playwright, answers a few images with
the model's suggestion (to show progress), turns the suggestion on and photographs the page; the
PNG is scaled to 960 px wide with a 128-colour palette.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from PIL import Image  # noqa: E402

from deepmars.labeling.cli import open_queue  # noqa: E402
from deepmars.labeling.options import label_options  # noqa: E402
from deepmars.labeling.users import add_user, read_users  # noqa: E402
from deepmars.web.label.app import create_label_app  # noqa: E402
from deepmars.web.server import free_port  # noqa: E402


def main() -> None:
    args = dict(a.split("=", 1) for a in sys.argv[1:])
    out = Path(args.pop("out", ROOT / "docs" / "labeling_page.png"))
    answers = int(args.pop("answers", 3))
    import uvicorn
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        users = Path(tmp) / "users.txt"
        token = add_user(users, "kiri")
        opts = label_options({"command": "add", "queue": f"{tmp}/q.sqlite", "users": str(users),
                              "cache_dir": f"{tmp}/cache", **args})
        open_queue(opts).close()
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_label_app(opts, read_users(users)), host="127.0.0.1",
                                               port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(f"{tmp}/profile", executable_path=str(CHROMIUM),
                                                           headless=True, args=CHROMIUM_ARGS,
                                                           viewport={"width": 1280, "height": 820})
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            page.wait_for_selector("body[data-state=ready]")
            page.check("#show-suggestion")
            for _ in range(answers):
                item = page.get_attribute("#figure", "data-item")
                page.click("#classes button.suggested")
                page.wait_for_function("b => document.body.dataset.state === 'ready' && "
                                       "document.querySelector('#figure').dataset.item !== b", arg=item)
            page.wait_for_timeout(300)
            page.screenshot(path=str(out))
            context.close()
        server.should_exit = True
    image = Image.open(out).convert("RGB")
    image.resize((960, round(image.height * 960 / image.width)), Image.LANCZOS).quantize(128).save(out, optimize=True)
    print(f"{out}: {out.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
