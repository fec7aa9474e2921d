"""Manifests: official layouts from real split-list lines, CSV, and bad input."""

import shutil

import pytest

from fixtures_data import make_csv, make_dfew, make_ferv39k, make_mafw, write_frames
from rdfer.data import build_manifest
from rdfer.data.files import list_frames
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES, MAFW_CLASSES


def _as_tuples(manifest):
    return [(r.clip_id, r.label, r.num_frames) for r in manifest.records]


@pytest.mark.parametrize("frames_dir", ["Clip/clip_224x224", "Clip/clip_224x224/clip_224x224",
                                        "Clip/clip_224x224_16f"])
def test_dfew_layouts_read_real_lines(tmp_path, frames_dir):
    expected = make_dfew(tmp_path, fold=2, frames_dir=frames_dir)
    for split in ("train", "test"):
        manifest = build_manifest("dfew", tmp_path, split, fold=2)
        assert manifest.classes == DFEW_CLASSES
        assert _as_tuples(manifest) == [(c, l, n) for c, l, n, _ in expected[split]]
        assert [r.path for r in manifest.records] == [str(f.resolve()) for *_, f in expected[split]]
        assert manifest.skipped == ()


def test_ferv39k_with_and_without_header(tmp_path):
    for header in (False, True):
        root = tmp_path / str(header)
        expected = make_ferv39k(root, header=header)
        for split in ("train", "test"):
            manifest = build_manifest("ferv39k", root, split)
            assert _as_tuples(manifest) == [(c, l, n) for c, l, n, _ in expected[split]]
            assert manifest.classes == DFEW_CLASSES


def test_mafw_names_and_one_based_numbers(tmp_path):
    expected = make_mafw(tmp_path, fold=3)
    for split in ("train", "test"):
        manifest = build_manifest("mafw", tmp_path, split, fold=3)
        assert manifest.classes == MAFW_CLASSES and len(manifest.classes) == 11
        assert _as_tuples(manifest) == [(c, l, n) for c, l, n, _ in expected[split]]
    # "01203.mp4 11" is the last class, Disappointment
    train = build_manifest("mafw", tmp_path, "train", fold=3)
    assert MAFW_CLASSES[train.records[2].label] == "Disappointment"


def test_csv_folders_videos_and_splits(tmp_path):
    csv_path, expected = make_csv(tmp_path)
    for split in ("train", "test"):
        manifest = build_manifest("csv", None, split, csv_path=csv_path)
        assert _as_tuples(manifest) == expected[split]
    assert len(build_manifest("csv", csv_path, "all")) == 4


def test_frames_sorted_naturally(tmp_path):
    write_frames(tmp_path, 12)
    assert list_frames(tmp_path)[:4] == ["1.jpg", "2.jpg", "3.jpg", "4.jpg"]
    assert list_frames(tmp_path)[-1] == "12.jpg"


def test_bad_input_one_error_listing_every_problem(tmp_path):
    expected = make_dfew(tmp_path, per_split=5)
    train = expected["train"]
    shutil.rmtree(train[0][3])                      # missing folder
    for frame in train[1][3].iterdir():             # empty folder
        frame.unlink()
    split_csv = tmp_path / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    lines = split_csv.read_text().splitlines()
    lines[3] = f"{train[2][0]},9"                   # unknown label
    lines.append("not a line")                      # malformed
    split_csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(RdferError) as info:
        build_manifest("dfew", tmp_path, "train")
    message = str(info.value)
    assert message.startswith("4 problem(s)")
    assert f"set_1.csv:2: clip {train[0][0]}: frame folder" in message and "does not exist" in message
    assert f"set_1.csv:3: clip {train[1][0]}:" in message and "no image files" in message
    assert f"set_1.csv:4: clip {train[2][0]}: unknown label 9" in message
    assert f"set_1.csv:{len(lines)}:" in message and "malformed line 'not a line'" in message

    with pytest.warns(UserWarning, match="skipped 4"):
        manifest = build_manifest("dfew", tmp_path, "train", skip_bad=True)
    assert [r.clip_id for r in manifest.records] == [c for c, *_ in train[3:]]
    assert len(manifest.skipped) == 4 and any("unknown label 9" in s for s in manifest.skipped)


def test_csv_unknown_label_and_duplicate(tmp_path):
    write_frames(tmp_path / "a", 3)
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("a,Happy\na,Sad\na,Bored\n")
    with pytest.raises(RdferError, match=r"2 problem\(s\)") as info:
        build_manifest("csv", csv_path, "all", classes="dfew")
    assert "m.csv:2: clip a: listed again" in str(info.value)
    assert "m.csv:3: clip a: unknown label 'Bored'" in str(info.value)


def test_missing_frame_root_and_bad_split(tmp_path):
    with pytest.raises(RdferError, match="DFEW frames not found"):
        build_manifest("dfew", tmp_path, "train")
    make_dfew(tmp_path)
    with pytest.raises(RdferError, match="unknown split 'val'"):
        build_manifest("dfew", tmp_path, "val")
    with pytest.raises(RdferError, match="fold must be 1..5"):
        build_manifest("dfew", tmp_path, "train", fold=6)


def test_layouts_are_declared_once_and_load_neither_torch_nor_opencv():
    import subprocess
    import sys
    from pathlib import Path

    from rdfer.data.layouts import DATASETS, DFEW, FERV39K, LAYOUTS, MAFW

    assert DATASETS == ("dfew", "ferv39k", "mafw", "csv") and sorted(LAYOUTS) == ["dfew", "ferv39k", "mafw"]
    assert DFEW.list_file("R", "test", 3) == Path("R/EmoLabel_DataSplit/test(single-labeled)/set_3.csv")
    assert DFEW.written_clip("23") == "Clip/clip_224x224/00023"
    assert FERV39K.list_file("R", "train") == Path("R/4_setups/All_scenes/train_All.csv")
    assert FERV39K.written_clip("Lab/Happy/0001") == "2_ClipsforFaceCrop/Lab/Happy/0001"
    assert MAFW.list_file("R", "train", 2) == Path("R/split/single/no_caption/set_2/train.txt")
    assert DFEW.shipped_list("train", 1).is_file() and FERV39K.shipped_list("test").is_file()
    # The CLI reads DATASETS while building its parser: no heavy import on every command.
    code = "import sys, rdfer.data.layouts; print(sorted(m for m in ('torch', 'cv2') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
