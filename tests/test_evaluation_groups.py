"""Per-group accuracy and MSLNet-inst routing of each sample to its instrument's model."""

import numpy as np
import pytest

from deepmars.errors import ConfigError, DataError
from deepmars.evaluation import accuracy, accuracy_by_group, route_by_group

GROUPS = np.array(["ML", "MH", "ML", "MR"])
TARGETS = np.array([0, 1, 1, 0])
# each model run on all four images; only its own instrument's rows should be used
BY_MODEL = {
    "ML": np.array([[0.9, 0.1], [0.9, 0.1], [0.2, 0.8], [0.9, 0.1]]),
    "MH": np.array([[0.1, 0.9], [0.3, 0.7], [0.1, 0.9], [0.1, 0.9]]),
    "MR": np.array([[0.1, 0.9], [0.1, 0.9], [0.1, 0.9], [0.6, 0.4]]),
}


def test_route_takes_each_row_from_its_group_model():
    routed = route_by_group(BY_MODEL, GROUPS)
    np.testing.assert_array_equal(routed, [[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(routed, TARGETS) == 1.0
    # any single model gets some of these wrong
    assert all(accuracy(p, TARGETS) < 1.0 for p in BY_MODEL.values())


def test_route_accepts_per_group_subsets_in_sample_order():
    subsets = {g: BY_MODEL[g][GROUPS == g] for g in BY_MODEL}
    np.testing.assert_array_equal(route_by_group(subsets, GROUPS), route_by_group(BY_MODEL, GROUPS))


def test_group_without_model_is_a_clear_error():
    groups = np.array(["ML", "NAV", "NAV", "ML"])
    with pytest.raises(ConfigError, match=r"no model for group\(s\) 'NAV' \(2 samples\).*\['MH', 'ML', 'MR'\]"):
        route_by_group(BY_MODEL, groups)


def test_models_must_agree_on_shape():
    with pytest.raises(DataError, match="number of classes"):
        route_by_group({"ML": np.zeros((4, 2)), "MH": np.zeros((4, 3)), "MR": np.zeros((4, 2))}, GROUPS)
    with pytest.raises(DataError, match="group 'ML': 3 rows"):
        route_by_group({"ML": np.zeros((3, 2)), "MH": np.zeros((4, 2)), "MR": np.zeros((4, 2))}, GROUPS)


def test_accuracy_by_group():
    probs = BY_MODEL["ML"]  # predicts 0, 0, 1, 0
    rows = accuracy_by_group(probs, TARGETS, GROUPS)
    assert [(g.group, g.n, g.correct) for g in rows] == [("MH", 1, 0), ("ML", 2, 2), ("MR", 1, 1)]
    assert rows[1].accuracy == 1.0
