"""Classical unsupervised change detection, the references a learned detector has to beat.

- Change-vector analysis (CVA): the per-pixel length of the t2 − t1 spectral difference, thresholded with Otsu.
- PCA-KMeans (Celik 2009, IEEE GRSL 6(4)): the difference image is cut into non-overlapping h×h blocks whose
  principal components span an eigenvector space; each pixel's h×h neighbourhood is projected onto the leading
  components (90% of the variance) and k-means (k = 2) splits the pixels; the cluster with the larger mean
  difference is "change".
Both take `(H, W, C)` images of equal shape and return `(H, W)` uint8 masks (1 = change).
"""

import numpy as np

from ..errors import InputError

PCA_BLOCK = 4
PCA_VARIANCE = 0.9
KMEANS_ITERATIONS = 30
KMEANS_FIT_PIXELS = 200_000


def _check_pair(t1: np.ndarray, t2: np.ndarray) -> None:
    if t1.shape != t2.shape or t1.ndim != 3:
        raise InputError(f"Both dates need the same (H, W, C) shape; got {t1.shape} and {t2.shape}.")


def difference_magnitude(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    """Length of the spectral change vector per pixel, in the images' units."""
    _check_pair(t1, t2)
    difference = t2.astype(np.float32) - t1.astype(np.float32)
    return np.sqrt(np.sum(difference * difference, axis=2))


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """The threshold that maximises the between-class variance of a 1-D sample."""
    values = np.asarray(values, dtype=np.float64).ravel()
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return high
    histogram, edges = np.histogram(values, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(histogram)
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(histogram * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[int(np.argmax(between[:-1])) + 1])


def cva_otsu(t1: np.ndarray, t2: np.ndarray) -> np.ndarray:
    magnitude = difference_magnitude(t1, t2)
    return (magnitude > otsu_threshold(magnitude)).astype(np.uint8)


def _neighbourhood_vectors(image: np.ndarray, size: int) -> np.ndarray:
    """(H*W, size*size) vectors of each pixel's size×size neighbourhood (edges mirrored)."""
    before = (size - 1) // 2
    padded = np.pad(image, ((before, size - 1 - before), (before, size - 1 - before)), mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size))
    return windows.reshape(-1, size * size)


def _nearest_centre(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return np.argmin((centres**2).sum(axis=1)[None] - 2 * features @ centres.T, axis=1)


def _two_means(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Lloyd's k-means with k = 2, started from the extremes of the first feature; returns the centres."""
    sample = features
    if len(features) > KMEANS_FIT_PIXELS:
        sample = features[rng.choice(len(features), KMEANS_FIT_PIXELS, replace=False)]
    centres = np.stack([sample[np.argmin(sample[:, 0])], sample[np.argmax(sample[:, 0])]]).astype(np.float64)
    for _ in range(KMEANS_ITERATIONS):
        assignment = _nearest_centre(sample, centres)
        updated = np.stack(
            [
                sample[assignment == k].mean(axis=0) if np.any(assignment == k) else centres[k]
                for k in range(2)
            ]
        )
        if np.allclose(updated, centres):
            break
        centres = updated
    return centres


def pca_kmeans(t1: np.ndarray, t2: np.ndarray, block: int = PCA_BLOCK, seed: int = 0) -> np.ndarray:
    magnitude = difference_magnitude(t1, t2)
    height, width = magnitude.shape
    if height < block or width < block:
        raise InputError(f"PCA-KMeans needs images of at least {block}×{block} pixels; got {height}×{width}.")
    rows, cols = height // block, width // block
    blocks = magnitude[: rows * block, : cols * block].reshape(rows, block, cols, block)
    blocks = blocks.transpose(0, 2, 1, 3).reshape(-1, block * block).astype(np.float64)
    mean = blocks.mean(axis=0)
    covariance = np.cov(blocks - mean, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
    explained = np.cumsum(eigenvalues) / max(float(eigenvalues.sum()), 1e-12)
    components = int(np.searchsorted(explained, PCA_VARIANCE) + 1)
    basis = eigenvectors[:, :components]
    features = (_neighbourhood_vectors(magnitude, block).astype(np.float64) - mean) @ basis
    # Orient the first component so that larger values mean larger differences (eigenvector signs are arbitrary).
    if basis[:, 0].sum() < 0:
        features[:, 0] = -features[:, 0]
    centres = _two_means(features, np.random.default_rng(seed))
    assignment = _nearest_centre(features, centres)
    flat = magnitude.ravel()
    means = [flat[assignment == k].mean() if np.any(assignment == k) else -np.inf for k in range(2)]
    change_cluster = int(np.argmax(means))
    return (assignment == change_cluster).reshape(height, width).astype(np.uint8)
