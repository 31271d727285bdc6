"""The frozen recipe's head: C chosen on val with the head fitted on train, then the optional refit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from deepmars.training.frozen import fit_frozen_head, split_logits, view_logits
from deepmars.training.head_init import fit_probe

CHOICES = (0.001, 0.03, 1.0, 30.0)


def drifting_features(seed: int = 0, n_classes: int = 3, dim: int = 6, views: int = 2):
    """Train, val and test (N, V, D) features whose class centres move from one split to the next."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.5, (n_classes, dim))
    drift = rng.normal(0, 1.0, (n_classes, dim))

    def split(n_per: int, shift: float):
        y = np.repeat(np.arange(n_classes), n_per)
        x = centres[y] + shift * drift[y] + rng.normal(0, 1.2, (len(y), dim))
        return (x[:, None, :] + rng.normal(0, 0.3, (len(y), views, dim))).astype(np.float32), y

    return split(40, 0.0), split(30, 1.0), split(30, 2.0)


def val_accuracy_of_train_only_head(train, val, c: float) -> float:
    clf = LogisticRegression(C=c, max_iter=2000).fit(train[0].mean(1), train[1])
    probs = np.mean([clf.predict_proba(val[0][:, v]) for v in range(val[0].shape[1])], axis=0)
    return float((clf.classes_[probs.argmax(1)] == val[1]).mean())


def test_c_is_chosen_on_val_by_the_train_only_head_and_the_saved_head_is_refit_on_train_and_val():
    train, val, test = drifting_features()
    fitted = fit_frozen_head(*train, *val, 3, CHOICES, refit_on_train_val=True)

    expected = {c: val_accuracy_of_train_only_head(train, val, c) for c in CHOICES}
    assert len(set(expected.values())) > 1  # the choice is not a tie between every C
    assert fitted.val_acc_by_c == pytest.approx(expected)
    best = max(expected.values())
    assert fitted.c == next(c for c in CHOICES if expected[c] == best) and fitted.val_acc == pytest.approx(best)

    weight, bias, _ = fit_probe(train[0].mean(1), train[1], 3, fitted.c)
    np.testing.assert_array_equal(fitted.weight, weight)
    np.testing.assert_array_equal(fitted.bias, bias)
    both = np.concatenate([train[0].mean(1), val[0].mean(1)]), np.concatenate([train[1], val[1]])
    refit_weight, refit_bias, refit_acc = fit_probe(*both, 3, fitted.c)
    np.testing.assert_array_equal(fitted.final_weight, refit_weight)
    np.testing.assert_array_equal(fitted.final_bias, refit_bias)
    assert fitted.refit_train_val_acc == pytest.approx(refit_acc)
    assert not np.allclose(fitted.final_weight, fitted.weight, atol=1e-3)  # the refit moved the head

    # val is reported as the train-only head saw it, test by the refit head
    np.testing.assert_array_equal(split_logits(fitted, "val", val[0]), view_logits(val[0], weight, bias))
    np.testing.assert_array_equal(split_logits(fitted, "test", test[0]), view_logits(test[0], refit_weight, refit_bias))
    with_test = np.concatenate([both[0], test[0].mean(1)]), np.concatenate([both[1], test[1]])
    assert not np.allclose(fitted.final_weight, fit_probe(*with_test, 3, fitted.c)[0], atol=1e-3)


def test_without_refit_the_saved_head_is_the_one_fitted_on_train():
    train, val, test = drifting_features(seed=1)
    fitted = fit_frozen_head(*train, *val, 3, CHOICES)
    weight, bias, _ = fit_probe(train[0].mean(1), train[1], 3, fitted.c)
    np.testing.assert_array_equal(fitted.final_weight, weight)
    np.testing.assert_array_equal(fitted.final_bias, bias)
    assert fitted.refit_train_val_acc is None
    np.testing.assert_array_equal(split_logits(fitted, "test", test[0]), view_logits(test[0], weight, bias))


def imbalanced_features(seed: int = 0, dim: int = 6, views: int = 2):
    """Train with one common class and two rare ones whose images overlap the common class's."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1.0, (3, dim))

    def split(counts):
        y = np.repeat(np.arange(3), counts)
        x = centres[y] + rng.normal(0, 1.5, (len(y), dim))
        return (x[:, None, :] + rng.normal(0, 0.3, (len(y), views, dim))).astype(np.float32), y

    return split([300, 15, 15]), split([20, 20, 20])


def test_class_balanced_head_weighs_each_class_equally_in_choice_and_refit():
    train, val = imbalanced_features()
    fitted = fit_frozen_head(*train, *val, 3, CHOICES, refit_on_train_val=True, class_balanced=True)
    weights = len(train[1]) / (3 * np.bincount(train[1]))[train[1]]
    for c, acc in fitted.val_acc_by_c.items():  # each C scored by the balanced train-only head
        clf = LogisticRegression(C=c, max_iter=2000).fit(train[0].mean(1), train[1], sample_weight=weights)
        probs = np.mean([clf.predict_proba(val[0][:, v]) for v in range(2)], axis=0)
        assert acc == pytest.approx(float((probs.argmax(1) == val[1]).mean()))
    both = np.concatenate([train[0].mean(1), val[0].mean(1)]), np.concatenate([train[1], val[1]])
    np.testing.assert_array_equal(fitted.final_weight, fit_probe(*both, 3, fitted.c, class_balanced=True)[0])

    plain = fit_frozen_head(*train, *val, 3, (fitted.c,))
    rare = lambda w, b: int(np.isin(view_logits(val[0], w, b).argmax(1), [1, 2]).sum())  # noqa: E731
    assert rare(fitted.weight, fitted.bias) > rare(plain.weight, plain.bias)  # balancing recovers the rare classes
