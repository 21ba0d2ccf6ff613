import json

import cv2
import numpy as np
import pytest
from PIL import Image

from core.__main__ import main
from core.cli.generate_dataset import parse_shard
from core.data.augment import (
    appearance_changes,
    building_lean,
    dihedral,
    follow_t2,
    misregister,
    random_crop,
    random_dihedral,
    random_dihedral_code,
    random_window,
    restyle,
    warp_mask,
)
from core.data.dataset import find_sources, generate
from core.data.pairs import PAIR_FILES
from core.data.recipes import Settings, make_pair
from core.data.sampling import BySource, stable_bucket
from core.errors import Canceled, InputError
from core.synthesis.inpaint import INPAINT_DILATION


@pytest.fixture(scope="module")
def sources(shared_data):
    return [str(shared_data / "buildings" / "xbd_harvey"), str(shared_data / "buildings" / "idabd")]


def _generate(sources, out, *options):
    arguments = ["generate-dataset", "--out", str(out), "--crop", "96", "--seed", "2"]
    for source in sources:
        arguments += ["--source", source]
    assert main(arguments + list(options)) == 0


def _pairs(out):
    return sorted(path.name for path in out.iterdir() if path.is_dir())


def _read(folder):
    return {name: np.asarray(Image.open(folder / name)) for name in PAIR_FILES if name.endswith(".png")}


def test_shards_cover_every_pair_once_and_match_an_unsharded_run(sources, tmp_path):
    for shard in ("0/3", "1/3", "2/3"):
        _generate(sources, tmp_path / "sharded", "--pairs", "7", "--shard", shard)
    _generate(sources, tmp_path / "whole", "--pairs", "7")
    assert _pairs(tmp_path / "sharded") == _pairs(tmp_path / "whole") == [f"{k:06d}" for k in range(7)]
    for name in _pairs(tmp_path / "whole"):
        assert sorted(p.name for p in (tmp_path / "whole" / name).iterdir()) == sorted(PAIR_FILES)
        sharded, whole = _read(tmp_path / "sharded" / name), _read(tmp_path / "whole" / name)
        for key in whole:
            np.testing.assert_array_equal(sharded[key], whole[key])
    assert json.loads((tmp_path / "whole" / "dataset.json").read_text())["pairs"] == 7


def test_shard_defaults_to_the_launcher_rank(sources, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    _generate(sources, tmp_path, "--pairs", "5", "--method", "copy-paste")
    assert _pairs(tmp_path) == ["000001", "000003"]


def test_resume_skips_finished_pairs_and_redoes_unfinished_ones(sources, tmp_path, capsys):
    _generate(sources, tmp_path, "--pairs", "4", "--method", "inpainting")
    finished = tmp_path / "000001" / "t2.png"
    stamp = finished.stat().st_mtime_ns
    before = _read(tmp_path / "000002")
    (tmp_path / "000002" / "meta.json").unlink()  # as if killed before the pair was complete
    (tmp_path / "000002" / "t2.png").unlink()
    capsys.readouterr()
    _generate(sources, tmp_path, "--pairs", "4", "--method", "inpainting")
    assert "1 pairs written, 3 already finished" in capsys.readouterr().out
    assert finished.stat().st_mtime_ns == stamp
    after = _read(tmp_path / "000002")
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("method", ["mixed", "copy-paste", "inpainting"])
def test_pairs_are_consistent_and_changed(shared_data, method):
    folders = [shared_data / "buildings" / "xbd_harvey", shared_data / "buildings" / "xbd_joplin"]
    # without misregistration the change is exactly the mask difference (with it, see follow_t2)
    settings = Settings(
        method=method, crop=128, seed=0, star=0.3 if method == "mixed" else 0.0, misregistration=0.0
    )
    kinds = set()
    changed_pairs = 0
    for index in range(10):
        pair = make_pair(find_sources(folders), settings, index)
        kinds.add(pair["meta"]["kind"])
        assert pair["t1"].shape == pair["t2"].shape == (128, 128, 3)
        np.testing.assert_array_equal(pair["change"], pair["mask_t1"] != pair["mask_t2"])
        changed_pairs += bool(pair["change"].any())
        assert (pair["t1"] != pair["t2"]).any()
    assert changed_pairs >= 7
    if method == "mixed":
        assert "star" in kinds and len(kinds) >= 3
    else:
        assert kinds == {method}


def test_without_tricks_unchanged_pixels_stay_identical(shared_data):
    settings = Settings(
        method="inpainting",
        crop=128,
        seed=1,
        star=0.0,
        jitter=False,
        misregistration=0.0,
        swap=False,
        appearance=0.0,
        lean=0.0,
        degrade=False,
    )
    sources = find_sources([shared_data / "buildings" / "xbd_harvey"])
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * INPAINT_DILATION + 1,) * 2)
    for index in range(4):
        pair = make_pair(sources, settings, index)
        differs = (pair["t1"] != pair["t2"]).any(axis=2)
        rim = cv2.dilate(pair["change"].astype(np.uint8), disk).astype(
            bool
        )  # inpainting's dilated footprints
        assert not differs[~rim].any()
        if pair["change"].any():
            assert differs[pair["change"]].mean() > 0.9


def test_appearance_changes_stay_away_from_the_labelled_change(shared_data):
    sources = find_sources([shared_data / "buildings" / "xbd_harvey"])
    settings = Settings(method="inpainting", crop=128, seed=4, star=0.0)
    pair = make_pair(sources, settings, 0)
    image, change = pair["t1"], pair["change"]
    kept = pair["mask_t1"] & pair["mask_t2"]
    changed_somewhere = False
    for seed in range(6):
        out = appearance_changes(image, kept, change, np.random.default_rng(seed), 3)
        differs = (out != image).any(axis=2)
        assert not differs[change].any()
        changed_somewhere |= differs.mean() > 0.01
    assert changed_somewhere


def test_remove_range_controls_change_prevalence(shared_data):
    sources = find_sources([shared_data / "buildings" / "xbd_harvey"])

    def mean_change(remove_range):
        settings = Settings(method="inpainting", crop=128, seed=3, star=0.0, remove_range=remove_range)
        return np.mean([make_pair(sources, settings, index)["change"].mean() for index in range(6)])

    assert mean_change((0.05, 0.1)) < 0.5 * mean_change((0.7, 0.9))


def test_building_lean_moves_kept_roofs_only(shared_data):
    sources = find_sources([shared_data / "buildings" / "xbd_harvey"])
    pair = make_pair(sources, Settings(method="inpainting", crop=128, seed=4, star=0.0), 0)
    kept = pair["mask_t1"] & pair["mask_t2"]
    assert kept.any()
    image = pair["t1"]
    out = building_lean(image, kept, pair["change"], np.random.default_rng(0))
    differs = (out != image).any(axis=2)
    near_roofs = cv2.dilate(kept.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    assert differs.any() and not differs[~near_roofs].any()
    assert not differs[pair["change"]].any()


def test_realism_helpers():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    jittered = restyle(image, rng, 0.7, haze=False, sensor=False)
    assert jittered.shape == image.shape and jittered.dtype == np.uint8 and (jittered != image).any()
    assert np.corrcoef(jittered[..., 1].ravel(), image[..., 1].ravel())[0, 1] > 0.9
    stripes = np.tile(np.arange(50, dtype=np.uint8)[None, :, None] * 5, (40, 1, 3))
    shifted, matrix = misregister(stripes, np.random.default_rng(3), 2.0)
    offset = np.abs(shifted[20, 10:40, 0].astype(float) - stripes[20, 10:40, 0]).mean() / 5
    assert 0 < offset <= 2.0 and abs(abs(matrix[0, 2]) - offset) < 0.1


def test_label_follows_what_t2_shows():
    mask_t1 = np.zeros((32, 32), bool)
    mask_t1[4:10, 4:10] = True  # removed: t1 shows it, so its label must not move
    mask_t2 = np.zeros((32, 32), bool)
    mask_t2[20:26, 20:26] = True  # created: t2 shows it, so its label moves with t2
    change = mask_t1 | mask_t2
    matrix = np.float32([[1, 0, 3], [0, 1, -2]])
    expected = mask_t1.copy()
    expected[18:24, 23:29] = True
    assert (follow_t2(change, mask_t1, matrix) == expected).all()
    assert (warp_mask(mask_t2, matrix) == (expected & ~mask_t1)).all()


def test_generate_reports_progress_and_stops_when_canceled(shared_data, tmp_path):
    sources = find_sources([shared_data / "buildings" / "xbd_harvey"])
    settings = Settings(method="copy-paste", crop=64, seed=0)
    seen = []
    with pytest.raises(Canceled):
        generate(sources, settings, 5, tmp_path, progress=seen.append, is_canceled=lambda: len(seen) == 2)
    assert seen == [20.0, 40.0] and _pairs(tmp_path) == ["000000", "000001"]
    assert generate(sources, settings, 5, tmp_path, show_progress=False) == {"written": 3, "skipped": 2}


def test_bad_options_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        parse_shard("3/3")
    with pytest.raises(InputError):
        parse_shard("one of two")
    with pytest.raises(InputError, match="images/ and masks/"):
        find_sources([tmp_path])


def test_random_crop_at_one_scale_is_a_window_and_pads_small_images():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    labels = rng.integers(0, 9, (50, 60), dtype=np.uint8)
    crop, crop_labels = random_crop([image, labels], 32, np.random.default_rng(1))
    top, left, side = random_window(image.shape, 32, np.random.default_rng(1))
    assert side == 32
    np.testing.assert_array_equal(crop, image[top : top + 32, left : left + 32])
    np.testing.assert_array_equal(crop_labels, labels[top : top + 32, left : left + 32])
    (padded,) = random_crop([image[:20, :20]], 32, rng)
    assert padded.shape == (32, 32, 3)


def test_random_crop_with_scale_jitter_resizes_images_by_area_and_labels_by_nearest():
    rng = np.random.default_rng(2)
    image = np.zeros((120, 100, 3), np.uint8)
    image[:, 50:] = 200
    labels = (image[..., 0] > 0).astype(np.uint8) * 7
    sides = set()
    for _ in range(20):
        state = rng.bit_generator.state
        crop, crop_labels = random_crop([image, labels], 64, rng, scale_range=(0.5, 1.0))
        rng.bit_generator.state = state
        sides.add(random_window(image.shape, 64, rng, (0.5, 1.0))[2])
        assert crop.shape == (64, 64, 3) and crop_labels.shape == (64, 64)
        assert set(np.unique(crop_labels)) <= {0, 7}  # nearest: no blended class ids
        assert ((crop[..., 0] > 100) == (crop_labels == 7)).mean() > 0.95
    assert min(sides) >= 64 and max(sides) <= 100 and len(sides) > 5  # 1× up to the largest fitting window


def test_dihedral_codes_are_the_eight_distinct_transforms_and_drawn_uniformly():
    array = np.arange(12).reshape(3, 4)
    images = {dihedral(array, code).tobytes() + bytes(dihedral(array, code).shape) for code in range(8)}
    assert len(images) == 8
    np.testing.assert_array_equal(dihedral(array, 5), np.rot90(array)[:, ::-1])
    rng = np.random.default_rng(0)
    counts = np.bincount([random_dihedral_code(rng) for _ in range(8000)], minlength=8)
    assert counts.min() > 850
    first, second = random_dihedral([array, array * 10], np.random.default_rng(3))
    np.testing.assert_array_equal(second, first * 10)


def test_sources_are_drawn_evenly_and_the_held_out_split_is_stable():
    items = [("big", i) for i in range(9)] + [("small", 0)]
    by_source = BySource(items, lambda item: item[0])
    rng = np.random.default_rng(0)
    draws = [by_source.draw(rng)[0] for _ in range(2000)]
    assert 900 < draws.count("small") < 1100
    # the trained autoencoder and denoiser hold out these files: the split must never move
    names = ["buildings/crowdai/images/a.png", "landcover/loveda/images/1.png", "unlabeled/levir_extra/x.png"]
    assert [stable_bucket(name, 10) for name in names] == [4, 9, 8]
