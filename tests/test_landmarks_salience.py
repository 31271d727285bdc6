"""Salience equals the published formula, sum_i h(i) * |I(p) - i| over the window, exactly."""

import numpy as np
import pytest

from deepmars.landmarks.salience import mean_salience, salience_sum


def brute_force(image: np.ndarray, radius: int, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The formula read literally: every valid window pixel, absolute difference, summed."""
    height, width = image.shape
    total = np.zeros(image.shape, dtype=np.int64)
    count = np.zeros(image.shape, dtype=np.int64)
    for y in range(height):
        for x in range(width):
            win = (slice(max(0, y - radius), y + radius + 1), slice(max(0, x - radius), x + radius + 1))
            values = image[win].astype(np.int64)[valid[win]]
            count[y, x] = values.size
            total[y, x] = np.abs(values - int(image[y, x])).sum() if valid[y, x] else 0
    return total, count


def test_hand_computed_row():
    # p0=0 sees {0,10}: 10. p1=10 sees {0,10,30}: 10+0+20=30. p2=30 sees {10,30}: 20.
    total, count = salience_sum(np.array([[0, 10, 30]], dtype=np.uint8), radius=1)
    assert total.tolist() == [[10, 30, 20]]
    assert count.tolist() == [[2, 3, 2]]


def test_hand_computed_square_with_mask():
    image = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
    total, count = salience_sum(image, radius=1)
    assert total[1, 1] == 4 + 3 + 2 + 1 + 0 + 1 + 2 + 3 + 4  # centre 5 against 1..9
    assert total[0, 0] == 0 + 1 + 3 + 4  # corner 1 against {1, 2, 4, 5}
    assert total[2, 2] == 4 + 3 + 1 + 0  # corner 9 against {5, 6, 8, 9}
    valid = np.ones((3, 3), dtype=bool)
    valid[2, 2] = False  # the 9 leaves every window, and its own salience is 0
    total, count = salience_sum(image, radius=1, valid=valid)
    assert total[1, 1] == 20 - 4 and count[1, 1] == 8
    assert total[2, 2] == 0
    assert total[2, 1] == 4 + 3 + 2 + 1 + 0  # 8 against {4, 5, 6, 7, 8}


def test_window_larger_than_image_compares_with_every_pixel():
    image = np.arange(1, 10, dtype=np.uint8).reshape(3, 3)
    total, count = salience_sum(image, radius=5)
    assert total[0, 0] == sum(range(9))  # 1 against 1..9
    assert (count == 9).all()


@pytest.mark.parametrize("radius", [1, 2, 7])
def test_equals_brute_force_on_random_images_with_masks(radius):
    rng = np.random.default_rng(radius)
    for shape in [(1, 1), (5, 40), (23, 17)]:
        image = rng.integers(0, 256, size=shape).astype(np.uint8)
        image[rng.random(shape) < 0.2] = 255  # ties and extremes
        valid = rng.random(shape) > 0.25
        total, count = salience_sum(image, radius, valid)
        expected_total, expected_count = brute_force(image, radius, valid)
        np.testing.assert_array_equal(total, expected_total)
        np.testing.assert_array_equal(count, expected_count)


def test_mean_salience_is_sum_over_count_and_zero_on_no_data():
    image = np.array([[0, 10, 30]], dtype=np.uint8)
    valid = np.array([[True, True, False]])
    mean = mean_salience(image, 1, valid)
    assert mean.tolist() == [[5.0, 5.0, 0.0]]  # p0: 10/2; p1: (10+0)/2; p2 masked


def test_flat_image_has_zero_salience():
    total, _ = salience_sum(np.full((9, 9), 77, dtype=np.uint8), radius=3)
    assert not total.any()


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint16), np.zeros((4, 4, 3), np.uint8)])
def test_rejects_non_8bit_or_non_2d(bad):
    with pytest.raises(ValueError, match="2-D uint8"):
        salience_sum(bad, 1)


def test_rejects_bad_radius():
    with pytest.raises(ValueError, match="radius"):
        salience_sum(np.zeros((4, 4), np.uint8), 0)
