"""The Atlas in headless Chromium: facets, sliders, free text, and a scene's boxes."""

from __future__ import annotations

import re

import pytest
from support import ATLAS_HOSTILE, ATLAS_SCENES

pytestmark = pytest.mark.slow


@pytest.fixture
def base(tmp_path, live_server, atlas_app, make_atlas_catalog):
    return live_server(atlas_app(make_atlas_catalog(tmp_path), tmp_path / "cache"))


def _count(page, facet: str, value: str) -> int:
    return int(page.locator(f'#facet-{facet} label[data-value="{value}"] .count').inner_text().replace(",", ""))


def _total(page) -> int:
    return int(re.match(r"([\d,]+)", page.locator("#summary").inner_text()).group(1).replace(",", ""))


def _slide(page, selector: str, value) -> None:
    page.eval_on_selector(selector, "(e, v) => { e.value = v; e.dispatchEvent(new Event('input'));"
                                    " e.dispatchEvent(new Event('change')); }", str(value))


def _settled(page, before: str) -> None:
    page.wait_for_function("b => { const s = document.querySelector('#summary').textContent;"
                           " return s !== b && /^[0-9]/.test(s); }", arg=before)


def test_a_class_facet_filters_and_updates_the_other_counts(page, base):
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(base + "/")
    page.wait_for_selector('#facet-class label[data-value="wheel"]')
    total, mh = _total(page), _count(page, "instrument", "MH")
    summary = page.locator("#summary").inner_text()
    page.locator('#facet-class label[data-value="wheel"] input').check()
    _settled(page, summary)
    assert _total(page) < total and _count(page, "instrument", "MH") < mh
    assert "class=wheel" in page.url
    cards = page.locator("#results .card .class").all_inner_texts()
    assert cards and all(c.startswith("wheel") for c in cards)
    # the hostile class name is shown as text, and nothing ran
    assert page.locator(f'#facet-class label[data-value="{ATLAS_HOSTILE}"] .name').inner_text() == ATLAS_HOSTILE
    assert not dialogs

    summary = page.locator("#summary").inner_text()
    _slide(page, "#confidence", 0.9)
    _settled(page, summary)
    assert re.search(r"min_confidence=0\.9(&|$)", page.url)
    confidences = [float(re.search(r"([\d.]+)%", c).group(1)) for c in page.locator("#results .card .class").all_inner_texts()]
    assert confidences and min(confidences) >= 90


def test_a_link_with_a_threshold_off_the_slider_keeps_it_exactly(page, base):
    page.goto(base + "/?kind=images&min_confidence=0.935&abstained=true")
    page.wait_for_selector("#results .card")
    assert page.locator("#confidence-value").inner_text() == "0.935"
    summary = page.locator("#summary").inner_text()
    page.locator('#facet-class label[data-value="apxs"] input').check()  # any change: the threshold goes along
    _settled(page, summary)
    assert "min_confidence=0.935" in page.url
    confidences = [float(re.search(r"([\d.]+)%", c).group(1)) for c in page.locator("#results .card .class").all_inner_texts()]
    assert confidences and min(confidences) >= 93.5  # the fixture's 0.91 rows stay out


def test_free_text_with_a_typo_offers_the_class_and_finds_it(page, base):
    page.goto(base + "/")
    page.wait_for_selector('#facet-class label')
    page.fill("#q", "cratr")
    summary = page.locator("#summary").inner_text()
    page.press("#q", "Enter")
    _settled(page, summary)
    assert _total(page) == 0
    summary = page.locator("#summary").inner_text()
    page.locator("#suggestions button", has_text="crater").click()
    _settled(page, summary)
    assert _total(page) > 0 and "text names crater" in page.locator("#summary").inner_text()


def test_scenes_min_count_slider_and_the_boxes_on_a_scene_page(page, base):
    page.goto(base + "/?kind=scenes")
    page.wait_for_selector('.min-count-slider[data-class="crater"]')
    assert page.locator("#results .card").count() == len(ATLAS_SCENES)
    summary = page.locator("#summary").inner_text()
    _slide(page, '.min-count-slider[data-class="crater"]', 3)
    _settled(page, summary)
    assert page.locator("#results .card .class").all_inner_texts() == [ATLAS_SCENES[0]]

    page.locator("#results .card").first.click()
    page.wait_for_selector("#boxes rect")
    assert page.locator("#boxes rect").count() == 4
    assert page.locator("#crops figure").count() == 4
    page.wait_for_function("document.querySelector('#image').complete && document.querySelector('#image').naturalWidth > 0")
    page.locator('#boxes rect[data-class="crater"]').first.hover()
    assert page.locator("#tooltip").inner_text().startswith("crater 97.0%")
    page.locator('#toggles input[data-class="crater"]').uncheck()
    assert page.locator("#boxes rect:visible").count() == 1
    page.locator('#toggles input[data-class="crater"]').check()
    assert page.locator("#boxes rect:visible").count() == 4


def test_an_image_page_shows_posterior_bars(page, base):
    page.goto(base + "/images/1")
    page.wait_for_selector("#posteriors .bar")
    assert page.locator("#posteriors .bar").count() == 2
    assert page.locator("#title").inner_text().startswith("apxs 97.0%")
