"""Classical references: they find an obvious change, pick the changed cluster, and score like their papers."""

import numpy as np
import pytest

from core.data.labelled_pairs import labelled_pairs
from core.detection.classical import cva_otsu, difference_magnitude, otsu_threshold, pca_kmeans
from core.errors import InputError


def _pair_with_square(seed: int = 0):
    rng = np.random.default_rng(seed)
    t1 = rng.integers(90, 140, size=(96, 128, 3), dtype=np.uint8)
    t2 = np.clip(t1.astype(int) + rng.integers(-8, 9, size=t1.shape), 0, 255).astype(np.uint8)
    truth = np.zeros(t1.shape[:2], bool)
    truth[30:60, 50:90] = True
    t2[truth] = rng.integers(200, 255, size=(int(truth.sum()), 3))
    return t1, t2, truth


def _iou(predicted, truth):
    predicted = predicted.astype(bool)
    return (predicted & truth).sum() / (predicted | truth).sum()


def test_otsu_splits_two_modes():
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.normal(10, 2, 5000), rng.normal(50, 3, 1000)])
    assert 16 < otsu_threshold(values) < 42


@pytest.mark.parametrize("method", [cva_otsu, pca_kmeans])
def test_finds_an_obvious_change(method):
    t1, t2, truth = _pair_with_square()
    predicted = method(t1, t2)
    assert predicted.dtype == np.uint8 and predicted.shape == truth.shape
    assert _iou(predicted, truth) > 0.8


def test_pca_kmeans_labels_the_larger_difference_as_change_whatever_the_cluster_order():
    t1, t2, truth = _pair_with_square(seed=3)
    # Mostly changed image: the unchanged part is now the minority cluster and must still be "no change".
    inverted_t2 = t2.copy()
    inverted_t2[~truth] = 255 - t1[~truth]
    inverted_t2[truth] = t1[truth]
    assert _iou(pca_kmeans(t1, inverted_t2), ~truth) > 0.8


def test_magnitude_is_the_change_vector_length():
    t1 = np.zeros((2, 2, 3), np.uint8)
    t2 = np.full((2, 2, 3), 4, np.uint8)
    assert np.allclose(difference_magnitude(t1, t2), np.sqrt(48))
    with pytest.raises(InputError, match="same"):
        cva_otsu(t1, t2[:1])


def test_on_real_dsifn_pairs_classical_methods_find_some_change(shared_data):
    counts = np.zeros((2, 3))
    for pair in labelled_pairs(shared_data / "change" / "dsifn"):
        for row, method in enumerate((cva_otsu, pca_kmeans)):
            predicted = method(pair.t1, pair.t2).astype(bool)
            counts[row] += [
                (predicted & pair.change).sum(),
                (predicted & ~pair.change).sum(),
                pair.change.sum(),
            ]
    precision = counts[:, 0] / (counts[:, 0] + counts[:, 1])
    recall = counts[:, 0] / counts[:, 2]
    prevalence = counts[0, 2] / (10 * 256 * 256)
    # Better than chance: precision above the change prevalence, and a real share of the change found.
    assert np.all(precision > prevalence + 0.05)
    assert np.all(recall > 0.2)
