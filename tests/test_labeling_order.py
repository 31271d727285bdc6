"""Uncertainty scores from catalog posteriors, and the simulation's ranking equal to the store's."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support import QUEUE_CLASSES

from deepmars.catalog.labels import LabelStore, NewItem
from deepmars.labeling.order import from_probabilities, from_top_k, random_key, rank, scores


def top_k(probs, k):
    ranked = sorted(enumerate(probs), key=lambda x: -x[1])[:k]
    return json.dumps([{"class": f"c{i}", "p": p} for i, p in ranked])


def test_full_top_k_gives_the_exact_scores():
    probs = [0.5, 0.3, 0.15, 0.05]
    exact = from_probabilities(probs)
    got = from_top_k(top_k(probs, 4), 4)
    assert got == pytest.approx(exact)
    assert exact.confidence == 0.5 and exact.margin == pytest.approx(0.2)
    assert exact.entropy == pytest.approx(-sum(p * math.log(p) for p in probs))


def test_truncated_top_k_keeps_confidence_and_margin_and_bounds_entropy_from_above():
    probs = [0.5, 0.3, 0.1, 0.06, 0.04]
    exact, got = from_probabilities(probs), from_top_k(top_k(probs, 2), 5)
    assert (got.confidence, got.margin) == pytest.approx((exact.confidence, exact.margin))
    assert exact.entropy < got.entropy <= exact.entropy + 0.2 * math.log(3 / 0.2) + 1e-9
    one = from_top_k(top_k(probs, 1), 5)  # the runner-up is estimated from the rest
    assert one.margin == pytest.approx(0.5 - 0.5 / 4)


def test_vectorised_scores_equal_the_single_ones():
    probs = np.random.default_rng(0).dirichlet(np.ones(6), size=20)
    assert scores(probs) == pytest.approx(np.array([from_probabilities(p) for p in probs]))


def test_random_key_depends_on_seed_and_path_only():
    assert random_key(0, "/a.jpg") == random_key(0, "/a.jpg") != random_key(1, "/a.jpg")


@pytest.mark.parametrize("order", ["random", "least_confident", "margin", "entropy"])
def test_rank_serves_images_in_the_store_s_order(tmp_path, order):
    probs = np.random.default_rng(1).dirichlet(np.ones(3) * 0.7, size=30)
    keys = np.array([random_key(3, f"/i{i}.jpg") for i in range(30)])
    with LabelStore.open(tmp_path / "q.sqlite", QUEUE_CLASSES, 1) as s:
        s.add_items([NewItem(f"/i{i}.jpg", f"i{i}.jpg", "/", keys[i], "m", "other", *from_probabilities(p), "[]")
                     for i, p in enumerate(probs)])
        served = []
        while (it := s.next_item("u", order)) is not None:
            served.append(int(it.name[1:-4]))
            s.label(it.item_id, "u", 0)
    assert served == list(rank(probs, keys, order))
