"""Realism of synthesized post-event images: FID/KID and change fidelity for Changen and both baselines.

Changen is measured twice: `changen regenerate` (the generator redraws the whole image, the paper's design) and
`changen keep` (the input kept outside the dilated change, the generated pixels colour-fitted inside).

Run: `.venv/bin/python bench/bench_realism.py [--model changen_gan_cpu|PATH] [--crops 96] [--size 256] [--out F]`.

Inputs are random crops of the real pre-disaster building tiles (`buildings/xbd_harvey`, `idabd`, `xbd_joplin`);
one event step per crop (30 % of the buildings removed, 3 created, seeded). The real reference set is a
*different* set of crops from the same tiles, so "unchanged input" gives the floor FID of this protocol. FID/KID use
EfficientNet-Lite0 ImageNet features (`core.realism`): compare rows with each other, not with published FIDs.
Fidelity columns are averages over crops of `core.realism.change_fidelity` (`removed~ring`: colour distance of
removed footprints to a 5-px ring around them afterwards; the input's own is `removed_to_ring_pre` in the JSON).
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.data.dataset import find_sources  # noqa: E402
from core.events.state import LabelState  # noqa: E402
from core.events.step import simulate_step  # noqa: E402
from core.paths import shared_data_dir  # noqa: E402
from core.synthesis.realism import FeatureExtractor, change_fidelity, image_set_distances  # noqa: E402
from core.synthesis.synthesize import synthesize_step  # noqa: E402

FOLDERS = ("xbd_harvey", "idabd", "xbd_joplin")


def random_crops(count: int, size: int, seed: int):
    from PIL import Image

    sources = find_sources([shared_data_dir() / "buildings" / name for name in FOLDERS])
    rng = np.random.default_rng(seed)
    crops = []
    while len(crops) < count:
        image_path, mask_path = sources[int(rng.integers(len(sources)))]
        image = np.asarray(Image.open(image_path).convert("RGB"))
        mask = np.asarray(Image.open(mask_path).convert("L")) > 0
        row, col = (int(rng.integers(n - size + 1)) for n in mask.shape)
        crop_mask = mask[row : row + size, col : col + size]
        if crop_mask.sum() >= 400:
            crops.append((image[row : row + size, col : col + size].copy(), crop_mask))
    return crops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="changen_gan_cpu", help="generator name or .safetensors path")
    parser.add_argument("--crops", type=int, default=96)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", help="also write the table as JSON here")
    args = parser.parse_args()

    from core.errors import InputError
    from core.synthesis.changen_gan import load_generator

    methods = {
        "copy-paste": ("copy-paste", "keep"),
        "inpainting": ("inpainting", "keep"),
        "changen regen.": ("changen", "regenerate"),
        "changen keep": ("changen", "keep"),
    }
    try:
        generator = load_generator(args.model, "cpu")
    except InputError as error:
        print(f"changen skipped: {error}")
        generator = None
        methods = {name: spec for name, spec in methods.items() if spec[0] != "changen"}
    inputs = random_crops(args.crops, args.size, seed=0)
    reference = [image for image, _ in random_crops(args.crops, args.size, seed=1)]
    extractor = FeatureExtractor()
    rows = {"unchanged input": image_set_distances(reference, [image for image, _ in inputs], extractor)}
    for name, (method, unchanged) in methods.items():
        started = time.perf_counter()
        posts, fidelity = [], []
        for index, (image, mask) in enumerate(inputs):
            state = LabelState.from_mask(mask)
            step = simulate_step(state, np.random.default_rng(index), remove=0.3, create=3, min_area=32)
            post = synthesize_step(
                method,
                image,
                state,
                step,
                np.random.default_rng(index),
                generator=generator,
                unchanged=unchanged,
            )
            posts.append(post)
            fidelity.append(change_fidelity(image, post, step.removed, step.created))
        row = image_set_distances(reference, posts, extractor)
        for key in fidelity[0]:
            row[key] = float(np.nanmean([scores.get(key, np.nan) for scores in fidelity]))
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows[name] = row
    columns = {
        "fid": "fid",
        "kid_x1000": "kid_x1000",
        "mad_removed": "mad_removed",
        "mad_created": "mad_created",
        "mad_outside": "mad_outside",
        "ssim_outside": "ssim_outside",
        "removed_to_ring_post": "removed~ring",
    }
    print(f"{'':<16}" + "".join(f"{label:>14}" for label in columns.values()))
    for name, row in rows.items():
        print(f"{name:<16}" + "".join(f"{row.get(key, float('nan')):>14.3f}" for key in columns))
    print(
        f"generator: {args.model}; {args.crops} crops of {args.size}² (reference: {args.crops} other crops)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
