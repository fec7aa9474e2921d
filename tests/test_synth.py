"""Synthetic DFER benchmark: determinism, official layouts, ground truth, expressions, full scale."""

import csv
from pathlib import Path

import numpy as np
import pytest

from rdfer import synth
from rdfer.synth import describe_synthetic, plan_clip, render_frames, write_synthetic
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES, FERV39K_TO_DFEW
from rdfer.synth.plan import HARD_KINDS
from rdfer.utils.ground_truth import KIND_COLUMNS, read_ground_truth

SPLITS = Path(synth.__file__).resolve().parent.parent / "splits"


def _files(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _dfew_lists(root: Path) -> dict:
    """(split, fold) -> list of (video_name, label) in file order; checks the header."""
    lists = {}
    for split in ("train", "test"):
        for fold in range(1, 6):
            path = root / "EmoLabel_DataSplit" / f"{split}(single-labeled)" / f"set_{fold}.csv"
            lines = path.read_text().splitlines()
            assert lines[0] == "video_name,label"
            lists[split, fold] = [tuple(line.split(",")) for line in lines[1:]]
    return lists


def _ground_truth(root: Path) -> dict:
    with open(root / "ground_truth.csv", newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == ["video_name", "true_label", "given_label", "is_noisy",
                                     "is_hard", "apex_start", "apex_end", *KIND_COLUMNS]
        return {r["video_name"]: {k: (v if k == "video_name" else int(v)) for k, v in r.items()}
                for r in reader}


@pytest.fixture(scope="module")
def dfew(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth") / "dfew"
    write_synthetic(root, layout="dfew", clips=40, noise=0.25, seed=3, size=32, progress=False,
                    workers=2)
    return root


def test_same_seed_same_bytes_whatever_the_worker_count(dfew, tmp_path):
    again = write_synthetic(tmp_path / "again", layout="dfew", clips=40, noise=0.25, seed=3,
                            size=32, progress=False, workers=1)
    first, second = _files(dfew), _files(again)
    assert first.keys() == second.keys()
    assert all(first[k] == second[k] for k in first)
    other = write_synthetic(tmp_path / "other", layout="dfew", clips=40, noise=0.25, seed=4,
                            size=32, progress=False, workers=1)
    assert (other / "ground_truth.csv").read_bytes() != (dfew / "ground_truth.csv").read_bytes()


def test_dfew_layout_folds_partition_the_clips(dfew):
    import cv2

    lists = _dfew_lists(dfew)
    names = {n for n, _ in lists["test", 1] + lists["train", 1]}
    assert len(names) == 40
    tests = [{n for n, _ in lists["test", k]} for k in range(1, 6)]
    assert set().union(*tests) == names and sum(map(len, tests)) == 40  # each clip in one test fold
    for k in range(1, 6):
        train = {n for n, _ in lists["train", k]}
        assert train.isdisjoint(tests[k - 1]) and train | tests[k - 1] == names
        assert all(1 <= int(label) <= 7 for _, label in lists["train", k] + lists["test", k])
    folders = sorted(p.name for p in (dfew / "Clip" / "clip_224x224").iterdir())
    assert folders == sorted(f"{int(n):05d}" for n in names)
    assert all(len(f) == 5 and f.isdigit() for f in folders)
    for folder in (dfew / "Clip" / "clip_224x224").iterdir():
        frames = sorted(p.name for p in folder.iterdir())
        assert frames == [f"{i:05d}.jpg" for i in range(1, len(frames) + 1)]
    assert cv2.imread(str(dfew / "Clip" / "clip_224x224" / folders[0] / "00001.jpg")).shape == (32, 32, 3)


def test_ground_truth_matches_the_split_lists(dfew):
    gt = _ground_truth(dfew)
    lists = _dfew_lists(dfew)
    assert len(gt) == 40
    noisy = [r for r in gt.values() if r["is_noisy"]]
    assert len(noisy) == round(0.25 * 40)
    for r in gt.values():
        assert (r["given_label"] != r["true_label"]) == bool(r["is_noisy"])
        frames = len(list((dfew / "Clip" / "clip_224x224" / r["video_name"].zfill(5)).glob("*.jpg")))
        assert 0 <= r["apex_start"] <= r["apex_end"] < frames
    for k in range(1, 6):
        # The given (possibly wrong) label in every train list, the true one in the test list.
        assert all(int(label) == gt[name]["given_label"] for name, label in lists["train", k])
        assert all(int(label) == gt[name]["true_label"] for name, label in lists["test", k])


def test_ground_truth_names_each_clips_difficulties(dfew):
    gt = _ground_truth(dfew)
    for name, r in gt.items():
        frames = len(list((dfew / "Clip" / "clip_224x224" / name.zfill(5)).glob("*.jpg")))
        plan = plan_clip(3, name, r["true_label"] - 1, frames)
        assert {k for k in KIND_COLUMNS if r[k]} == set(plan.kinds)
        # is_hard: holds a kind that makes clip predictions vary (docs/method.md).
        assert r["is_hard"] == int(bool(set(plan.kinds) & set(HARD_KINDS)))
        assert ("occluded" in plan.kinds) == (plan.occluder is not None)
        assert ("mixed" in plan.kinds) == (plan.mixed_with >= 0)
        assert ("short_apex" in plan.kinds) == (plan.apex_end - plan.apex_start + 1 < 0.2 * frames)
    for kind in ("occluded", "distractor", "lively_motion", "talking", "short_apex"):
        assert any(r[kind] for r in gt.values()), kind  # 40 clips of the full benchmark hold each
    assert 0 < sum(r["is_hard"] for r in gt.values()) < 40
    rows = read_ground_truth(dfew / "ground_truth.csv", ("video_name", "is_noisy", *KIND_COLUMNS))
    assert all(row.kinds == {k for k in KIND_COLUMNS if gt[row.video_name][k]} for row in rows.values())


def test_ferv39k_layout_noise_only_in_train(tmp_path):
    root = write_synthetic(tmp_path / "ferv", layout="ferv39k", clips=30, noise=0.3, seed=1,
                           size=24, progress=False, workers=1)
    gt = _ground_truth(root)
    lines = {}
    for split in ("train", "test"):
        text = (root / "4_setups" / "All_scenes" / f"{split}_All.csv").read_text().splitlines()
        lines[split] = [line.split(" ") for line in text]
    assert all(len(parts) == 2 for parts in lines["train"] + lines["test"])  # no header
    assert len(lines["train"]) + len(lines["test"]) == 30 and lines["test"]
    for split, rows in lines.items():
        for name, emotion in rows:
            scene, folder_emotion, clip = name.split("/")
            assert folder_emotion == emotion and len(clip) == 4
            assert any((root / "2_ClipsforFaceCrop" / name).glob("*.jpg"))
            assert FERV39K_TO_DFEW[emotion] + 1 == gt[name]["given_label"]
            if split == "test":
                assert gt[name]["is_noisy"] == 0
    assert sum(r["is_noisy"] for r in gt.values()) == round(0.3 * len(lines["train"]))
    assert "30 clips" in describe_synthetic(root)
    assert "a new person per clip; nuisance 1 " in describe_synthetic(root)


def test_symmetric_noise_is_unchanged_by_the_noise_type_option(dfew):
    # The default (symmetric) flips the very labels it flipped before --noise-type existed.
    gt = _ground_truth(dfew)
    flips = sorted((r["video_name"], r["true_label"], r["given_label"]) for r in gt.values() if r["is_noisy"])
    assert flips == [("10", 4, 2), ("13", 6, 3), ("15", 4, 6), ("17", 3, 6), ("25", 1, 4), ("3", 6, 5),
                     ("32", 5, 7), ("35", 7, 5), ("4", 3, 7), ("40", 2, 7)]
    assert (dfew / "synth.json").read_text().count('"noise_type": "symmetric"') == 1
    assert "(symmetric noise, each to a uniformly drawn other class)" in describe_synthetic(dfew)


def test_pair_noise_flips_each_label_to_its_confusable_class(dfew, tmp_path):
    import argparse
    import json

    from rdfer.cli import data as data_cli

    root = tmp_path / "pair"
    parser = argparse.ArgumentParser(prog="rdfer")
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["synth", "--out", str(root), "--clips", "40", "--noise", "0.25",
                              "--noise-type", "pair", "--seed", "3", "--size", "16"])
    assert args.func(args) == 0
    pair, symmetric = _ground_truth(root), _ground_truth(dfew)
    confusable = {"Happy": "Neutral", "Sad": "Neutral", "Neutral": "Sad", "Angry": "Disgust",
                  "Disgust": "Angry", "Surprise": "Fear", "Fear": "Surprise"}
    for name, row in pair.items():
        # Same clips flipped and the same hard clips as symmetric noise with this seed; only the new label differs.
        assert (row["is_noisy"], row["is_hard"]) == (symmetric[name]["is_noisy"], symmetric[name]["is_hard"])
        true, given = DFEW_CLASSES[row["true_label"] - 1], DFEW_CLASSES[row["given_label"] - 1]
        assert given == (confusable[true] if row["is_noisy"] else true)
    assert sum(r["is_noisy"] for r in pair.values()) == 10
    train = dict(_dfew_lists(root)["train", 1])
    assert all(int(label) == pair[name]["given_label"] for name, label in train.items())
    assert json.loads((root / "synth.json").read_text())["noise_type"] == "pair"
    text = describe_synthetic(root)
    assert "(pair noise, each to its most confusable class: " in text and "Surprise->Fear" in text
    with pytest.raises(RdferError, match="noise-type 'class'"):
        write_synthetic(tmp_path / "bad", clips=7, noise=0.2, noise_type="class", progress=False)


def test_description_names_the_actor_pool_and_nuisance(tmp_path):
    root = write_synthetic(tmp_path / "easy", clips=10, seed=2, size=24, progress=False, workers=1,
                           actors=3, nuisance=0.3)
    assert "People: a pool of 3 actors; nuisance 0.3 " in describe_synthetic(root)


def _plain_plan(label: int):
    """A clip plan with no mixed second expression and no occluder (same person for any label)."""
    for i in range(200):
        plan = plan_clip(0, f"probe{i}", label, 30)
        if plan.mixed_with < 0 and plan.occluder is None and plan.peak > 0.7:
            return i
    raise AssertionError("no plain clip found")


def test_expressions_differ_in_the_face_at_apex():
    i = _plain_plan(0)
    plans = [plan_clip(0, f"probe{i}", label, 30) for label in range(len(DFEW_CLASSES))]
    assert len({(p.apex_start, p.apex_end, p.peak) for p in plans}) == 1  # same timing and person
    apex = (plans[0].apex_start + plans[0].apex_end) // 2
    frames = np.stack([render_frames(p, 64)[apex] for p in plans]).astype(np.float32)  # (7, H, W, 3)
    happy, sad = frames[DFEW_CLASSES.index("Happy")], frames[DFEW_CLASSES.index("Sad")]
    diff = np.abs(happy - sad).mean(axis=2)  # (H, W)
    lower_face, border = diff[36:56, 16:48], diff[:, :6]
    assert lower_face.mean() > 1.0 and lower_face.mean() > 5 * border.mean()
    # Every pair of expressions looks different.
    for a in range(len(frames)):
        for b in range(a + 1, len(frames)):
            assert np.abs(frames[a] - frames[b]).mean() > 0.3, (DFEW_CLASSES[a], DFEW_CLASSES[b])


def test_full_scale_subset_follows_the_real_lists(tmp_path):
    root = write_synthetic(tmp_path / "full", layout="dfew", clips=9, full_scale=True, seed=0,
                           size=16, progress=False, workers=1)
    real_fold, real_label = {}, {}
    for fold in range(1, 6):
        path = SPLITS / "dfew" / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{fold}.csv"
        for row in csv.DictReader(open(path, newline="")):
            real_fold[row["video_name"]], real_label[row["video_name"]] = fold, int(row["label"])
    with open(SPLITS / "dfew" / "frame_counts.csv", newline="") as f:
        counts = {r["video_name"]: int(r["num_frames"]) for r in csv.DictReader(f)}
    lists = _dfew_lists(root)
    gt = _ground_truth(root)
    assert len(gt) == 9 and len({r["true_label"] for r in gt.values()}) == 7  # stratified
    for fold in range(1, 6):
        for name, label in lists["test", fold]:
            assert real_fold[name] == fold and real_label[name] == int(label)
    for name, row in gt.items():
        assert row["true_label"] == real_label[name]
        frames = list((root / "Clip" / "clip_224x224" / name.zfill(5)).glob("*.jpg"))
        assert len(frames) == counts[name.zfill(5)]


def test_full_scale_ferv39k_subset(tmp_path):
    root = write_synthetic(tmp_path / "fullf", layout="ferv39k", clips=8, full_scale=True,
                           size=16, progress=False, workers=1)
    real = {}
    for split in ("train", "test"):
        for line in open(SPLITS / "ferv39k" / "4_setups" / "All_scenes" / f"{split}_All.csv"):
            name, emotion = line.split()
            real[name] = (split, emotion)
    for split in ("train", "test"):
        for line in open(root / "4_setups" / "All_scenes" / f"{split}_All.csv"):
            name, emotion = line.split()
            assert real[name] == (split, emotion)


def test_loader_reads_the_output_back(dfew):
    from rdfer.data import build_manifest

    gt = _ground_truth(dfew)
    lists = _dfew_lists(dfew)
    for fold in (1, 5):
        for split in ("train", "test"):
            manifest = build_manifest("dfew", dfew, split, fold=fold)
            assert len(manifest.records) == len(lists[split, fold])
            for record in manifest.records:
                row = gt[record.clip_id]
                label = row["given_label"] if split == "train" else row["true_label"]
                assert record.label == label - 1
                assert record.num_frames == len(list(Path(record.path).glob("*.jpg")))


def test_bad_options_and_foreign_folders(tmp_path):
    (tmp_path / "mine.txt").write_text("not a benchmark")
    with pytest.raises(RdferError, match="not empty"):
        write_synthetic(tmp_path, clips=7, size=16, progress=False)
    with pytest.raises(RdferError, match="noise"):
        write_synthetic(tmp_path / "x", noise=1.5, clips=7, progress=False)
    with pytest.raises(RdferError, match="layout"):
        write_synthetic(tmp_path / "x", layout="mafw", clips=7, progress=False)
    # An earlier benchmark in the folder is replaced, not mixed with the new one.
    root = write_synthetic(tmp_path / "re", clips=14, size=16, progress=False, workers=1)
    # Bad options are refused before the earlier benchmark is touched.
    for bad in ({"actors": 0}, {"nuisance": -0.1}):
        with pytest.raises(RdferError, match=next(iter(bad))):
            write_synthetic(root, clips=7, size=16, progress=False, workers=1, **bad)
        assert len(list((root / "Clip" / "clip_224x224").iterdir())) == 14
    write_synthetic(root, clips=7, size=16, progress=False, workers=1)
    assert len(list((root / "Clip" / "clip_224x224").iterdir())) == 7


def test_parallel_rendering_survives_a_parent_that_used_opencv_threads(tmp_path):
    # Regression: forked workers calling cv2.setNumThreads after the parent had run a
    # parallel OpenCV call blocked forever (a CI run hung here). Run in a fresh
    # interpreter with a time limit so a hang fails this test instead of the suite.
    import subprocess
    import sys

    script = (
        "import cv2, numpy as np\n"
        "from rdfer.synth import write_synthetic\n"
        "cv2.setNumThreads(2)\n"
        "image = np.random.rand(1500, 1500).astype(np.float32)\n"
        "for _ in range(3): cv2.resize(image, (2500, 2500)); cv2.GaussianBlur(image, (15, 15), 0)\n"
        f"write_synthetic({str(tmp_path / 'out')!r}, clips=12, seed=1, size=32, progress=False, workers=2)\n"
    )
    try:
        subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("parallel synth rendering hung after the parent used OpenCV's thread pool")
    assert (tmp_path / "out" / "ground_truth.csv").exists()


def test_nuisance_scales_what_is_not_the_expression():
    full = [plan_clip(5, f"{i:05d}", i % 7, 40) for i in range(60)]
    clean = [plan_clip(5, f"{i:05d}", i % 7, 40, nuisance=0.0) for i in range(60)]
    # The full benchmark has occluders, distractors, subtle peaks and head motion ...
    assert any(p.occluder for p in full) and any(p.distractor >= 0 for p in full)
    assert any(p.peak < 0.5 for p in full) and max(float(p.pose[:, 2].std()) for p in full) > 1.0
    # ... nuisance 0 has none of them and a longer apex; it keeps each clip's person and mixed clips.
    for f, c in zip(full, clean):
        assert c.occluder is None and c.distractor == -1 and c.noise_sigma == 0.0 and c.peak >= 0.6
        assert np.allclose(c.pose[:, :3], 0.0) and np.allclose(c.pose[:, 3], 1.0)
        assert c.identity == f.identity and c.mixed_with == f.mixed_with
        assert c.apex_end - c.apex_start >= f.apex_end - f.apex_start
        assert set(c.kinds) <= {"mixed"}  # no other difficulty is left at nuisance 0
    hold = lambda plans: np.mean([(p.apex_end - p.apex_start + 1) / p.num_frames for p in plans])  # noqa: E731
    assert hold(clean) > hold(full) + 0.25
    with pytest.raises(RdferError, match="nuisance"):
        write_synthetic("unused", clips=10, nuisance=1.5)
