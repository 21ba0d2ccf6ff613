"""Training pairs for the detector, mixed from generated pair folders, STAR pairs and restyled no-change pairs,
with appearance change and misregistration per date."""

from pathlib import Path

import cv2
import numpy as np
import torch
from scipy import ndimage

from ...data.augment import follow_t2, misregister, random_crop, random_dihedral, restyle, soft_blob
from ...data.buildings import BuildingTile
from ...data.pairs import is_validation_pair, read_pair_folder
from ...data.sampling import BySource
from ...errors import InputError

# between two real acquisitions: up to 2 px of shift, about 0.4° of rotation and 0.8 % of scale
MISREGISTRATION = {"max_shift": 2.0, "rotation_sigma": 0.4, "scale_sigma": 0.008}


class PairSampler:
    """Draws training pairs (t1, t2, change) as uint8 arrays from the configured mixture of sources."""

    def __init__(
        self,
        tiles: list[BuildingTile],
        pair_folders: list[Path],
        crop: int,
        star_fraction: float,
        no_change_fraction: float,
        local_star: float = 0.0,
        balance_sources: bool = False,
    ):
        if not tiles and not pair_folders:
            raise InputError("No training data: give --pairs folders and/or --star building tiles.")
        self.tiles = tiles
        self.pair_folders = pair_folders
        self.crop = crop
        self.star_fraction = star_fraction if pair_folders else 1.0
        self.no_change_fraction = no_change_fraction
        self.local_star = local_star
        self.tiles_by_source = BySource(
            tiles, (lambda tile: tile.source) if balance_sources else (lambda tile: "")
        )
        if not tiles:
            self.star_fraction = 0.0

    @classmethod
    def from_args(cls, args, tiles: list[BuildingTile], pair_folders: list[Path]) -> "PairSampler":
        """The mixture `train-detector`'s flags ask for (`--crop`, `--star-fraction`, …)."""
        return cls(
            tiles,
            pair_folders,
            args.crop,
            args.star_fraction,
            args.no_change_fraction,
            args.local_star,
            args.balance_sources,
        )

    def _tile(self, rng: np.random.Generator) -> BuildingTile:
        """A random tile; with `balance_sources` every source is drawn equally often, whatever its tile count."""
        return self.tiles_by_source.draw(rng)

    # Each source returns (t1, t2, change, t1 building mask); the mask tells which changed pixels t1 shows.
    def _star(self, rng: np.random.Generator):
        first, second = self._tile(rng), self._tile(rng)
        t1, m1 = random_crop([first.image, first.mask], self.crop, rng)
        t2, m2 = random_crop([second.image, second.mask], self.crop, rng)
        if rng.random() < self.local_star:
            return self._local(t1, m1, t2, m2, rng)
        return t1, t2, np.bitwise_xor(m1, m2), m1

    def _local(self, t1, m1, other, m_other, rng: np.random.Generator):
        """A STAR pair in one soft-edged region only, like a new neighbourhood beside an old one: inside it the
        ground, roads and lawns all change but only buildings (gone or new) are labelled."""
        side = self.crop
        inside = soft_blob(t1.shape[:2], rng, (0.25 * side, 0.6 * side))
        # whole buildings only: those mostly inside the region change completely, the others not at all
        components, count = ndimage.label(m1 | m_other)
        share = ndimage.mean(inside >= 0.5, components, index=np.arange(1, count + 1))
        changed = np.isin(components, 1 + np.flatnonzero(share > 0.5))
        kept = (components > 0) & ~changed
        ring = np.ones((5, 5), np.uint8)
        inside[cv2.dilate(kept.astype(np.uint8), ring).astype(bool)] = 0.0
        inside[cv2.dilate(changed.astype(np.uint8), ring).astype(bool)] = 1.0
        alpha = inside[..., None]
        t2 = np.clip(np.rint(t1 * (1.0 - alpha) + other * alpha), 0, 255).astype(np.uint8)
        return t1, t2, (np.bitwise_xor(m1, m_other).astype(bool) & changed).astype(np.uint8), m1

    def _no_change(self, rng: np.random.Generator):
        tile = self._tile(rng) if self.tiles else None
        if tile is not None:
            (t1,) = random_crop([tile.image], self.crop, rng)
        else:
            t1, _, _, _ = read_pair_folder(self.pair_folders[int(rng.integers(len(self.pair_folders)))])
            (t1,) = random_crop([t1], self.crop, rng)
        empty = np.zeros(t1.shape[:2], np.uint8)
        return t1, t1.copy(), empty, empty

    def _generated(self, rng: np.random.Generator):
        arrays = read_pair_folder(self.pair_folders[int(rng.integers(len(self.pair_folders)))])
        return tuple(random_crop(list(arrays), self.crop, rng))

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        draw = rng.random()
        if draw < self.no_change_fraction:
            source = self._no_change(rng)
        elif draw < self.no_change_fraction + (1 - self.no_change_fraction) * self.star_fraction:
            source = self._star(rng)
        else:
            source = self._generated(rng)
        t1, t2, change, mask_t1 = random_dihedral(list(source), rng)
        t1 = restyle(t1, rng, strength=0.6)
        t2, matrix = misregister(restyle(t2, rng), rng, **MISREGISTRATION)
        change = follow_t2(change.astype(bool), mask_t1.astype(bool), matrix).astype(np.uint8)
        if rng.random() < 0.5:
            t1, t2 = t2, t1
        return t1, t2, change

    def batch(self, size: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        return pairs_to_tensors([self.sample(rng) for _ in range(size)])


def pairs_to_tensors(pairs) -> tuple[torch.Tensor, torch.Tensor]:
    images = np.stack([np.concatenate([t1, t2], axis=2) for t1, t2, _ in pairs]).transpose(0, 3, 1, 2)
    labels = np.stack([change for _, _, change in pairs])[:, None]
    return torch.from_numpy(images.astype(np.float32)), torch.from_numpy(labels.astype(np.float32))


def build_validation_set(args, tiles, pair_folders) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed synthetic set (held-out generated pairs when there are any, else STAR pairs of a fixed seed),
    mixed like training so the change prevalence is the one the detector is trained for."""
    held_out = [folder for folder in pair_folders if is_validation_pair(folder)]
    sampler = PairSampler.from_args(args, tiles, held_out)
    rng = np.random.default_rng([args.seed, 99991])
    return sampler.batch(args.val_pairs, rng)
