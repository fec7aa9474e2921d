"""Issue 11, items 2, 3 and 8 (data): undecodable clips, missing split lists, one clip
under two names or in both splits, check-dataset decoding every frame. Each test builds
its own tiny dataset and failed on the code before the fix."""

import shutil

import pytest

from fixtures_data import make_dfew, make_ferv39k, write_frames
from rdfer.cli import build_parser, main
from rdfer.data import build_loader, build_manifest
from rdfer.data.check import check_dataset
from rdfer.data.manifest import check_disjoint
from rdfer.data.pack import write_pack
from rdfer.errors import RdferError


def _corrupt(folder, which=None):
    """Overwrite frames of a clip folder (all, or those at positions `which`) with bytes that do not decode."""
    frames = sorted(folder.iterdir(), key=lambda p: int(p.stem))
    for k, frame in enumerate(frames):
        if which is None or k in which:
            frame.write_bytes(b"\xff\xd8\xff garbage, not a JPEG")
    return frames


@pytest.fixture()
def dfew(tmp_path):
    return tmp_path, make_dfew(tmp_path, per_split=4)


@pytest.mark.parametrize("workers", [0, 1])
def test_undecodable_clip_is_skipped_and_named_under_skip_bad(dfew, workers, capsys):
    root, expected = dfew
    bad_id, _, _, folder = expected["train"][1]
    _corrupt(folder)
    manifest = build_manifest("dfew", root, "train")
    loader = build_loader(manifest, num_frames=8, train=False, batch_size=2, num_workers=workers, seed=0,
                          load_size=24, skip_bad=True)
    seen = [clip for batch in loader for clip in batch["clip_id"]]
    assert seen == [clip for clip, *_ in expected["train"] if clip != bad_id]
    assert list(loader.skipped) == [bad_id]
    assert f"skip_bad: leaving out dfew train clip {bad_id}: none of its" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [0, 1])
def test_undecodable_clip_without_skip_bad_is_one_line_naming_it(dfew, workers):
    root, expected = dfew
    bad_id, _, _, folder = expected["train"][2]
    _corrupt(folder)
    manifest = build_manifest("dfew", root, "train")
    loader = build_loader(manifest, num_frames=8, train=False, batch_size=2, num_workers=workers, seed=0,
                          load_size=24)
    with pytest.raises(RdferError) as error:
        list(loader)
    message = str(error.value)  # not a DataLoader worker traceback
    assert f"clip {bad_id}: none of its" in message and "--skip-bad" in message and "\n" not in message


def test_batch_whose_every_clip_is_undecodable_is_not_yielded(dfew):
    root, expected = dfew
    for _, _, _, folder in expected["train"][:2]:
        _corrupt(folder)
    manifest = build_manifest("dfew", root, "train")
    loader = build_loader(manifest, num_frames=8, train=False, batch_size=2, num_workers=0, seed=0,
                          load_size=24, skip_bad=True)
    batches = list(loader)
    assert len(batches) == 1 and batches[0]["video"].shape[0] == 2


@pytest.mark.parametrize("make, missing, name", [
    (make_dfew, "EmoLabel_DataSplit/test(single-labeled)/set_1.csv", "DFEW"),
    (make_ferv39k, "4_setups/All_scenes/test_All.csv", "FERV39K"),
])
def test_missing_split_list_never_falls_back_to_the_shipped_official_one(tmp_path, make, missing, name):
    make(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(RdferError, match=f"{name} split list .*test.* not found; if .* holds the official"):
        build_manifest(name.lower(), tmp_path, "test")
    assert build_manifest(name.lower(), tmp_path, "train").records  # the other split still reads


def test_dfew_ids_0004_and_4_are_one_clip(tmp_path):
    write_frames(tmp_path / "Clip" / "clip_224x224" / "00004", 6)
    write_frames(tmp_path / "Clip" / "clip_224x224" / "00005", 6)
    lists = tmp_path / "EmoLabel_DataSplit" / "train(single-labeled)"
    lists.mkdir(parents=True)
    (lists / "set_1.csv").write_text("video_name,label\n4,1\n5,2\n0004,3\n")
    with pytest.raises(RdferError, match=r"1 problem\(s\).*set_1.csv:4: clip 0004: listed again \(first on line 2"):
        build_manifest("dfew", tmp_path, "train")
    manifest = build_manifest("dfew", tmp_path, "train", skip_bad=True)
    assert [r.clip_id for r in manifest.records] == ["4", "5"]


def _dfew_with_shared_clip(root):
    expected = make_dfew(root, per_split=3)
    shared = expected["test"][0][0]
    train_list = root / "EmoLabel_DataSplit" / "train(single-labeled)" / "set_1.csv"
    train_list.write_text(train_list.read_text() + f"{shared.zfill(5)},1\n")  # the same clip, another spelling
    return expected, shared


def test_clip_in_both_train_and_test_is_reported(tmp_path):
    expected, shared = _dfew_with_shared_clip(tmp_path)
    train = build_manifest("dfew", tmp_path, "train")
    test = build_manifest("dfew", tmp_path, "test")
    with pytest.raises(RdferError, match=f"1 clip\\(s\\) are in both the train and the test split.*{shared}"):
        check_disjoint(train, test)
    with pytest.warns(UserWarning, match="also in the test split"):
        kept = check_disjoint(train, test, skip_bad=True)
    assert len(kept.records) == len(train.records) - 1
    report = check_dataset("dfew", tmp_path, progress=False)
    assert report["splits"]["test"]["overlap"] == 1
    assert any(p.kind == "overlap" and p.clip_id == shared for p in report["problems"])


def test_check_dataset_decodes_every_frame(dfew):
    root, expected = dfew
    middle_id, _, count, folder = expected["train"][0]
    _corrupt(folder, which={count // 2})        # first and last frames are fine
    dead_id, _, _, dead = expected["train"][2]
    _corrupt(dead)
    report = check_dataset("dfew", root, progress=False)
    kinds = {p.clip_id: p.kind for p in report["problems"]}
    assert kinds == {middle_id: "damaged", dead_id: "unreadable"}
    row = report["splits"]["train"]
    assert (row["found"], row["damaged"], row["unreadable"]) == (3, 1, 1)


def test_pack_stops_on_or_skips_an_undecodable_clip(dfew, tmp_path):
    root, expected = dfew
    bad_id, _, _, folder = expected["train"][1]
    _corrupt(folder)
    manifest = build_manifest("dfew", root, "train")
    out = tmp_path / "packs" / "train.rdfpack"
    with pytest.raises(RdferError, match=f"clip {bad_id}: none of its .*--skip-bad"):
        write_pack(manifest, out, load_size=24, progress=False)
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()
    stats = write_pack(manifest, out, load_size=24, progress=False, skip_bad=True)
    assert stats["skipped"] == [bad_id] and stats["clips"] == len(expected["train"]) - 1
    packed = build_manifest("packed", out, "train")
    assert bad_id not in [r.clip_id for r in packed.records]


def test_manifest_error_is_one_line_and_its_advice_is_accepted_by_train(dfew, capsys):
    root, expected = dfew
    shutil.rmtree(expected["train"][0][3])
    with pytest.raises(RdferError) as error:
        build_manifest("dfew", root, "train")
    assert "\n" not in str(error.value) and "--skip-bad" in str(error.value)
    for command in (["train", "--out", "x"], ["eval", "--checkpoint", "c", "--out", "x"], ["cv", "--config", "c",
                                                                                           "--out", "x"]):
        assert build_parser().parse_args(command + ["--skip-bad"]).skip_bad is True


def test_check_dataset_on_a_root_without_lists_is_one_line_exit_2(tmp_path, capsys):
    write_frames(tmp_path / "Clip" / "clip_224x224" / "00001", 3)
    code = main(["check-dataset", "--dataset", "dfew", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "split list" in err


@pytest.mark.parametrize("argv, expected", [
    (["check-dataset", "--workers", "-1"], "argument --workers: -1: give 1..256"),
    (["pack", "--out", "{tmp}/p.pack", "--quality", "0"], "argument --quality: 0: give 1..100"),
    (["pack", "--out", "{tmp}/p.pack", "--workers", "-2"], "argument --workers: -2: give 1..256"),
    (["bench", "data", "--clips", "0"], "argument --clips: 0: give 1..200000"),
    (["bench", "data", "--workers", "-1"], "argument --workers: -1: give 0..256"),
])
def test_data_command_bad_numbers_are_one_line_exit_2(dfew, tmp_path, capsys, argv, expected):
    root, _ = dfew
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    head = 2 if argv[0] == "bench" else 1  # the command: `pack` or `bench data`
    assert main(argv[:head] + ["--dataset", "dfew", "--root", str(root)] + argv[head:]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err


def test_synth_negative_seed_is_one_line(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "s"), "--seed", "-1"]) == 2
    assert capsys.readouterr().err == ("rdfer synth: error: argument --seed: -1: give 0..4294967295 "
                                       "(see rdfer synth --help)\n")
