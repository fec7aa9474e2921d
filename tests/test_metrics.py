"""WAR, UAR, per-class accuracy and confusion matrices against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from rdfer.metrics import RunningConfusion, confusion_matrix, per_class_accuracy, summarize, uar, war

# Imbalanced: 6 of class 0 (5 right), 3 of class 1 (1 right), 1 of class 2 (0 right), none of class 3.
Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 1, 2]
Y_PRED = [0, 0, 0, 0, 0, 1, 1, 0, 2, 0]


def test_war_is_accuracy_over_clips():
    assert war(Y_TRUE, Y_PRED) == pytest.approx(60.0)  # 6 of 10


def test_uar_averages_present_classes_only():
    # Recalls 5/6, 1/3, 0/1; class 3 has no clip and is left out of the mean.
    expected = 100 * (5 / 6 + 1 / 3 + 0) / 3
    assert uar(Y_TRUE, Y_PRED, num_classes=4) == pytest.approx(expected)
    assert uar(Y_TRUE, Y_PRED, num_classes=4) != pytest.approx(war(Y_TRUE, Y_PRED))


def test_per_class_accuracy_and_confusion():
    acc = per_class_accuracy(Y_TRUE, Y_PRED, 4)
    np.testing.assert_allclose(acc[:3], [100 * 5 / 6, 100 / 3, 0.0])
    assert math.isnan(acc[3])
    expected = np.array([[5, 1, 0, 0],  # rows: true class, columns: predicted
                         [1, 1, 1, 0],
                         [1, 0, 0, 0],
                         [0, 0, 0, 0]])
    np.testing.assert_array_equal(confusion_matrix(Y_TRUE, Y_PRED, 4), expected)


def test_summarize_is_json_ready_percent():
    s = summarize(np.array(Y_TRUE), np.array(Y_PRED), ["a", "b", "c", "d"])
    assert s["war"] == pytest.approx(60.0)
    assert s["uar"] == pytest.approx(100 * (5 / 6 + 1 / 3) / 3)
    assert s["per_class"]["b"] == pytest.approx(100 / 3) and s["per_class"]["d"] is None
    assert s["confusion"][0] == [5, 1, 0, 0] and isinstance(s["confusion"][0][0], int)


def test_running_confusion_equals_one_shot():
    running = RunningConfusion(4)
    running.update(torch.tensor(Y_TRUE[:4]), torch.tensor(Y_PRED[:4]))
    running.update(Y_TRUE[4:], Y_PRED[4:])
    assert running.summarize("abcd") == summarize(Y_TRUE, Y_PRED, "abcd")


def test_bad_inputs():
    with pytest.raises(ValueError):
        war([0, 1], [0])
    with pytest.raises(ValueError):
        confusion_matrix([0, 5], [0, 1], 3)
    assert math.isnan(war([], []))
