"""The labeling page in headless Chromium: two users at once, keys, Later, undo, the suggestion,
and labels given on the page training with train.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import LABEL_HOSTILE

from deepmars.catalog.labels import LabelStore, NewItem
from deepmars.config import sample_root
from deepmars.labeling.cli import main as label_main
from deepmars.labeling.order import from_probabilities

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]


def sign_in(tab, base: str, token: str) -> None:
    tab.goto(base + "/")
    tab.fill("#token", token)
    tab.click("#login button[type=submit]")
    tab.wait_for_selector("body[data-state=ready], body[data-state=done]")


def shown(tab) -> int:
    return int(tab.get_attribute("#figure", "data-item"))


def answered(tab, before: int) -> None:
    """Wait until the page shows another image (or nothing is left)."""
    tab.wait_for_function(
        "b => document.body.dataset.state === 'done' || (document.body.dataset.state === 'ready'"
        " && document.querySelector('#figure').dataset.item !== String(b))", arg=before)


def second_tab(browser_context):
    tab = browser_context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return tab, errors


def test_two_users_at_once_get_disjoint_images_and_every_click_is_stored(tmp_path, live_server, page, browser_context,
                                                                         make_queue, label_app, label_events):
    cfg, tokens = make_queue(tmp_path, n=8)
    base = live_server(label_app(cfg))
    other, errors = second_tab(browser_context)
    sign_in(page, base, tokens["alice"])
    sign_in(other, base, tokens["bob"])
    assert page.inner_text("#who") == "alice" and other.inner_text("#who") == "bob"
    clicks = []
    for round_ in range(4):
        for tab, user in ((page, "alice"), (other, "bob")):
            item = shown(tab)
            class_id = (round_ + len(clicks)) % 3
            if round_ % 2:
                tab.keyboard.press(str(class_id))
            else:
                tab.click(f'#classes button[data-class="{class_id}"]')
            answered(tab, item)
            clicks.append((item, user, "label", class_id, False))
    ids = {user: {c[0] for c in clicks if c[1] == user} for user in ("alice", "bob")}
    assert len(ids["alice"]) == len(ids["bob"]) == 4 and not ids["alice"] & ids["bob"]
    assert sorted(label_events(cfg)) == sorted(clicks)
    assert page.get_attribute("body", "data-state") == "done" and other.get_attribute("body", "data-state") == "done"
    page.reload()
    page.wait_for_selector("body[data-state=done]")  # the tab keeps its sign-in
    assert page.inner_text("#p-labeled") == "8" and page.inner_text("#p-mine") == "4"
    other.close()
    assert not errors


def test_later_undo_and_the_progress_on_the_page(tmp_path, live_server, page, make_queue, label_app, label_events):
    cfg, tokens = make_queue(tmp_path, n=3)
    base = live_server(label_app(cfg))
    sign_in(page, base, tokens["alice"])
    assert (page.inner_text("#p-labeled"), page.inner_text("#p-left")) == ("0", "3")
    first = shown(page)
    page.keyboard.press("L")
    answered(page, first)
    assert page.inner_text("#p-skipped") == "1"
    second = shown(page)
    page.keyboard.press("1")
    answered(page, second)
    assert page.inner_text("#p-labeled") == "1"
    third = shown(page)
    page.keyboard.press("U")
    page.wait_for_function("s => document.querySelector('#figure').dataset.item === String(s)", arg=second)
    assert page.inner_text("#p-labeled") == "0" and "back" in page.inner_text("#status")
    page.click("#classes button[data-class='2']")
    answered(page, second)
    assert shown(page) == third  # the queue goes on where it was
    page.keyboard.press("0")
    answered(page, third)
    assert shown(page) == first  # put off with Later: shown again at the end
    page.click("#later")
    page.wait_for_selector("body[data-state=ready]")
    assert label_events(cfg) == [(first, "alice", "later", None, False), (second, "alice", "label", 1, True),
                           (second, "alice", "label", 2, False), (third, "alice", "label", 0, False),
                           (first, "alice", "later", None, False)]


def test_the_suggestion_is_hidden_until_asked_for_and_names_are_text(tmp_path, live_server, page, make_queue,
                                                                     label_app):
    cfg, tokens = make_queue(tmp_path, n=1)
    with LabelStore.open(cfg["queue"]) as store:
        item = store.items()[0]
        u = from_probabilities([0.1, 0.8, 0.05, 0.05])
        store.add_items([NewItem(item.path, item.name, item.image_root, item.random_key, "runs:/abc", "crater",
                                 u.confidence, u.margin, u.entropy, '[{"class": "crater", "p": 0.8}]')])
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    base = live_server(label_app(cfg))
    sign_in(page, base, tokens["alice"])
    assert page.is_hidden("#suggestion")  # no anchoring by default
    assert page.locator("#classes button.suggested").count() == 0
    page.check("#show-suggestion")
    assert "crater" in page.inner_text("#suggestion") and "80.0%" in page.inner_text("#suggestion")
    assert page.inner_text("#classes button.suggested") .endswith("crater")
    assert page.inner_text('#classes button[data-class="3"]').endswith(LABEL_HOSTILE) and not dialogs
    page.reload()
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_checked("#show-suggestion")  # the user's choice is remembered


def test_a_wrong_token_is_refused_and_an_undecodable_image_is_skipped(tmp_path, live_server, page, make_queue,
                                                                      label_app):
    cfg, tokens = make_queue(tmp_path, n=1, check_images=False)
    (tmp_path / "images" / "img00.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    base = live_server(label_app(cfg))
    page.goto(base + "/")
    page.fill("#token", "guess")
    page.click("#login button[type=submit]")
    page.wait_for_selector("body[data-state=login]")
    assert "not a user's" in page.inner_text("#login-error")
    sign_in(page, base, tokens["alice"])
    page.wait_for_selector("body[data-state=done]")
    assert "Skipped img00.jpg" in page.inner_text("#status") and page.inner_text("#p-unlabelable") == "1"


def test_labels_given_on_the_page_train_with_train_py(tmp_path, live_server, page, label_config, label_app):
    sample = Path(sample_root("hirise"))
    truth = dict(line.split() for line in (sample / "labels-map-proj.txt").read_text().splitlines())
    crops = sorted(truth)[::4]  # 36 crops of many source images, every class
    (tmp_path / "crops").mkdir()
    for name in crops:
        shutil.copyfile(sample / "map-proj" / name, tmp_path / "crops" / name)
    users = tmp_path / "users.txt"
    from deepmars.labeling.users import add_user

    token = add_user(users, "kiri")
    cfg = {"queue": str(tmp_path / "q.sqlite"), "images": str(tmp_path / "crops"), "classes": "hirise",
           "users": str(users), "cache_dir": str(tmp_path / "cache")}
    assert label_main(label_config("command=add", *(f"{k}={v}" for k, v in cfg.items()))) == 0
    base = live_server(label_app({**cfg, "classes": None, "images": None}))
    sign_in(page, base, token)
    for _ in crops:
        item, name = shown(page), page.inner_text("#name")
        page.keyboard.press(truth[name])
        answered(page, item)
    assert page.get_attribute("body", "data-state") == "done"
    export = tmp_path / "labeled"
    assert label_main(label_config("command=export", f"queue={cfg['queue']}", "format=dataset",
                                   f"output={export}")) == 0
    assert (export / "labels-map-proj.txt").read_text().count("\n") == len(crops)
    done = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "dataset=hirise", f"dataset.root={export}", "split=random",
         "model=tiny", "trainer.max_iters=2", "trainer.epochs=null", "trainer.batch_size=8", "trainer.eval_every=2",
         "trainer.checkpoint_every=2", "trainer.threads=1", "trainer.progress=log", "trainer.eval_splits=[val]",
         f"trainer.checkpoint_dir={tmp_path}/ckpt", "tracking=none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
