"""Zero-shot evaluation: pooled pixel scores, both folder layouts, classical references, CLI and JSON."""

import json

import numpy as np
import pytest
from PIL import Image

from core.__main__ import main
from core.data.labelled_pairs import labelled_pairs
from core.detection.changestar import build_changestar
from core.detection.evaluate import evaluate_pairs, format_table
from core.detection.metrics import Scores
from core.errors import InputError
from core.weights import save_weights


def _make_pairs(root, count=3, size=64, seed=0):
    rng = np.random.default_rng(seed)
    for sub in ("A", "B", "label"):
        (root / sub).mkdir(parents=True)
    changed = 0
    for index in range(count):
        t1 = rng.integers(80, 120, size=(size, size, 3), dtype=np.uint8)
        t2 = t1.copy()
        label = np.zeros((size, size), np.uint8)
        label[10 : 20 + 5 * index, 10:30] = 255
        t2[label > 0] = 240
        changed += int((label > 0).sum())
        Image.fromarray(t1).save(root / "A" / f"p{index}.png")
        Image.fromarray(t2).save(root / "B" / f"p{index}.png")
        Image.fromarray(label).save(root / "label" / f"p{index}.png")
    return changed


def test_scores_are_pooled_counts():
    score = Scores.from_counts("m", tp=30, fp=10, fn=20, pixels=1000)
    assert score.precision == pytest.approx(0.75)
    assert score.recall == pytest.approx(0.6)
    assert score.f1 == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert score.iou == pytest.approx(30 / 60)


def test_classical_references_and_everything_changed(tmp_path):
    changed = _make_pairs(tmp_path / "pairs")
    report = evaluate_pairs(tmp_path / "pairs", model=None)
    scores = {score["method"]: score for score in report["scores"]}
    assert report["pairs"] == ["p0", "p1", "p2"]
    assert report["change_prevalence"] == pytest.approx(changed / (3 * 64 * 64))
    everything = scores["everything changed"]
    assert everything["recall"] == 1.0 and everything["precision"] == pytest.approx(
        report["change_prevalence"]
    )
    # An obvious synthetic change: both classical methods find it almost exactly.
    assert scores["CVA + Otsu"]["f1"] > 0.95 and scores["PCA-KMeans"]["f1"] > 0.9
    table = format_table(report)
    assert "CVA + Otsu" in table and "PCA-KMeans" in table


def test_cli_with_a_model_writes_json(tmp_path, capsys):
    _make_pairs(tmp_path / "pairs", count=2)
    model = build_changestar("efficientnet_lite0", fpn_channels=16, decoder_channels=16)
    save_weights(tmp_path / "m.safetensors", model.state_dict(), model.export_config(threshold=0.6))
    code = main(
        [
            "evaluate",
            "--pairs",
            str(tmp_path / "pairs"),
            "--model",
            str(tmp_path / "m.safetensors"),
            "--json",
            str(tmp_path / "out" / "scores.json"),
        ]
    )
    assert code == 0
    reports = json.loads((tmp_path / "out" / "scores.json").read_text())
    methods = [score["method"] for score in reports[0]["scores"]]
    assert methods[0] == "ChangeStar (m)" and reports[0]["threshold"] == 0.6
    assert "ChangeStar (m)" in capsys.readouterr().out


def test_bad_folders_say_what_is_expected(tmp_path):
    with pytest.raises(InputError, match="A/, B/ and label/"):
        list(labelled_pairs(tmp_path))
    for sub in ("A", "B", "label"):
        (tmp_path / sub).mkdir()
    with pytest.raises(InputError, match="no pairs"):
        list(labelled_pairs(tmp_path))


def test_real_xbd_layout_uses_pre_images_and_damage_classes(shared_data):
    pairs = labelled_pairs(shared_data / "change" / "xbd_damage")
    first = next(pairs)
    damage = np.asarray(Image.open(shared_data / "change" / "xbd_damage" / "masks" / f"{first.name}.png"))
    assert first.t1.shape == first.t2.shape == (*damage.shape, 3)
    assert np.array_equal(first.change, damage >= 2)
    assert not np.array_equal(first.t1, first.t2)


def test_real_levir_pairs_load(shared_data):
    pairs = list(labelled_pairs(shared_data / "change" / "levir_dev"))
    assert len(pairs) == 9
    assert all(pair.t1.shape == (256, 256, 3) and pair.change.dtype == bool for pair in pairs)
    assert 0.05 < np.mean([pair.change.mean() for pair in pairs]) < 0.5
