"""rdfer audit --apply: a curator's decisions turned into corrected split lists in the official layout."""

import csv
from pathlib import Path

import pytest

from rdfer.cli import main
from rdfer.data import build_manifest
from rdfer.data.layouts import DFEW, MAFW
from rdfer.audit.relabel import _relabel_line, apply_decisions, dataset_lists
from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES


@pytest.fixture(scope="module")
def dfew_root(tmp_path_factory):
    """20 clips in the DFEW layout, 30% of the train labels flipped (train lists: given, test lists: true)."""
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("apply") / "synth"
    write_synthetic(root, layout="dfew", clips=20, noise=0.3, seed=5, size=16, progress=False, workers=1)
    return root


def _truth(root) -> dict:
    with open(Path(root) / "ground_truth.csv") as f:
        return {r["video_name"]: r for r in csv.DictReader(f)}


def _labels(root, split: str, fold: int) -> dict:
    return {r.clip_id: r.label for r in build_manifest("dfew", root, split, fold=fold).records}


def test_relabel_drop_keep_rewrite_every_list_and_nothing_else(dfew_root, tmp_path):
    truth = _truth(dfew_root)
    flipped = sorted(c for c, r in truth.items() if r["is_noisy"] == "1")
    clean = sorted(c for c, r in truth.items() if r["is_noisy"] == "0")
    relabel, drop, keep = flipped[0], clean[0], clean[1]
    true_name = DFEW_CLASSES[int(truth[relabel]["true_label"]) - 1]
    decisions = tmp_path / "decisions.csv"
    # label_issues.csv-like extra columns are ignored; an empty decision is undecided.
    decisions.write_text("rank,id,given_label,decision,new_label\n"
                         f"1,{relabel},x,Relabel,{true_name.lower()}\n2,{drop},x,DROP,\n3,{keep},x,keep,\n"
                         f"4,{clean[2]},x,,Happy\n")
    out = tmp_path / "out"
    applied = apply_decisions("dfew", dfew_root, decisions, out)
    corrected = out / "corrected"
    for fold in DFEW.folds:
        for split in ("train", "test"):
            original = DFEW.list_file(dfew_root, split, fold)
            assert (out / "original" / original.relative_to(dfew_root)).read_bytes() == original.read_bytes()
            before, after = _labels(dfew_root, split, fold), _labels(corrected, split, fold)
            assert drop not in after and set(after) == set(before) - {drop}
            for clip, label in after.items():
                expected = DFEW_CLASSES.index(true_name) if clip == relabel else before[clip]
                assert label == expected, (split, fold, clip)
            # Untouched lines stay byte for byte: only the relabelled and dropped clips' lines differ.
            old_lines = original.read_text().splitlines()
            new_lines = (corrected / original.relative_to(dfew_root)).read_text().splitlines()
            assert [line for line in old_lines if line.split(",")[0] not in (relabel, drop)] == \
                [line for line in new_lines if line.split(",")[0] != relabel]
    # The corrected root reads the same frames (a link), so training can point data.root at it.
    record = build_manifest("dfew", corrected, "train", fold=1).records[0]
    assert Path(record.path).resolve() == (dfew_root / "Clip" / "clip_224x224" / record.clip_id.zfill(5)).resolve()
    given_name = DFEW_CLASSES[int(truth[relabel]["given_label"]) - 1]
    assert applied.decided == {"keep": 1, "relabel": 1, "drop": 1}
    assert [c[:3] for c in applied.changes] == [(relabel, given_name, "relabel"),
                                               (drop, DFEW_CLASSES[int(truth[drop]["given_label"]) - 1], "drop")]
    assert applied.counts[given_name]["relabelled_from"] == 1 and applied.counts[true_name]["relabelled_to"] == 1
    assert sum(c["after"] for c in applied.counts.values()) == 19
    # Never over anything: a second apply into the same folder is refused.
    with pytest.raises(RdferError, match="not an empty folder"):
        apply_decisions("dfew", dfew_root, decisions, out)


def test_bad_decisions_get_one_line_each_with_file_and_line(dfew_root, tmp_path):
    clip = sorted(_truth(dfew_root))[0]
    decisions = tmp_path / "bad.csv"
    decisions.write_text("id,decision,new_label\n"
                         f"{clip},relabel,Happy\n"  # fine
                         "99999,drop,\n"  # unknown clip
                         f"{clip},keep,\n"  # decided twice
                         f"{sorted(_truth(dfew_root))[1]},relabel,Joyful\n"  # unknown class
                         f"{sorted(_truth(dfew_root))[2]},relabel,\n"  # relabel without a class
                         f"{sorted(_truth(dfew_root))[3]},maybe,\n")  # bad decision word
    with pytest.raises(RdferError) as error:
        apply_decisions("dfew", dfew_root, decisions, tmp_path / "out")
    lines = str(error.value).splitlines()
    assert lines[0].startswith("5 problem(s)")
    assert [line.split(": ")[0] for line in lines[1:]] == [f"{decisions}:{n}" for n in (3, 4, 5, 6, 7)]
    for line, word in zip(lines[1:], ("unknown clip", "decided twice", "unknown class", "without a new_label",
                                      "not one of")):
        assert word in line
    assert not (tmp_path / "out").exists()
    headerless = tmp_path / "headerless.csv"
    headerless.write_text(f"{clip},drop\n")
    with pytest.raises(RdferError, match=r"headerless.csv:1: no column 'id'"):
        apply_decisions("dfew", dfew_root, headerless, tmp_path / "out")


def test_label_fields_are_written_as_each_layout_writes_them():
    assert _relabel_line(DFEW, "123,4", 0) == "123,1"
    assert _relabel_line(MAFW, "00025.mp4 anger", 3) == "00025.mp4 happiness"
    assert _relabel_line(MAFW, "00025.mp4 Anger", 3) == "00025.mp4 Happiness"
    assert _relabel_line(MAFW, "00025.mp4 1", 3) == "00025.mp4 4"


def test_cli_apply_prints_changes_by_class(dfew_root, tmp_path, capsys):
    clip = next(c for c, r in _truth(dfew_root).items() if r["given_label"] != "3")
    decisions = tmp_path / "d.csv"
    decisions.write_text(f"id,decision,new_label\n{clip},relabel,Neutral\n")
    out = tmp_path / "corr"
    assert main(["audit", "--apply", str(decisions), "--out", str(out), "--config", "demo",
                 "--set", f"data.root={dfew_root}"]) == 0
    printed = capsys.readouterr().out
    assert "1 clip(s) changed" in printed and "| Neutral |" in printed and (out / "report.md").is_file()
    assert _labels(out / "corrected", "train", 1 if clip not in _labels(dfew_root, "test", 1) else 2)[clip] == 2
    # Without a config and no audit.json beside the decisions: a one-line error.
    assert main(["audit", "--apply", str(decisions), "--out", str(tmp_path / "x")]) == 2
    assert "audit.json" in capsys.readouterr().err
    assert len(dataset_lists("dfew", dfew_root).files) == 10
