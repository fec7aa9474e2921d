"""The shared helpers of rdfer.utils: one device resolver, one ground-truth reader, one checkpoint reader."""

import csv
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rdfer.errors import RdferError
from rdfer.utils.device import resolve_device
from rdfer.utils.ground_truth import read_ground_truth


def test_resolve_device_errors_say_how_the_user_spelt_it(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(RdferError, match=r"^unknown --device gpu0; use auto, cpu, cuda, cuda:N or mps$"):
        resolve_device("gpu0")  # the training engine's copy let torch's RuntimeError through
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RdferError, match=r"^--device cuda:1: no CUDA GPU is available here; use --device cpu$"):
        resolve_device("cuda:1")
    with pytest.raises(RdferError, match=r"^--set device=cuda: no CUDA GPU .*; use --set device=cpu$"):
        resolve_device("cuda", "--set device=")


GROUND_TRUTH = ("video_name,true_label,given_label,is_noisy,is_hard,apex_start,apex_end\n"
                "00001,2,5,1,0,3,9\n00002,3,3,true,True,3,9\n00003,4,4,0,false,3,9\n00004,1,6,True,0,3,9\n")


def test_ground_truth_flags_are_parsed_one_way_by_every_reader(tmp_path):
    from rdfer.audit.curate import curate
    from rdfer.audit.verdict import read_truth
    from rdfer.engine.outputs import ground_truth_for

    path = tmp_path / "ground_truth.csv"
    path.write_text(GROUND_TRUTH)
    rows = read_ground_truth(path)
    assert [r.noisy for r in rows.values()] == [True, True, False, True]
    assert [r.hard for r in rows.values()] == [False, True, False, False]
    assert [(r.true_class, r.given_class) for r in rows.values()] == [(1, 4), (2, 2), (3, 3), (0, 5)]

    # The engine (per training clip), the audit and curate read the same flags from it;
    # curate used to count only "1" and "True", the others also "true".
    manifest = SimpleNamespace(records=[SimpleNamespace(clip_id=c, num_frames=20) for c in ("1", "2", "3", "4", "9")])
    truth = ground_truth_for(SimpleNamespace(ground_truth=str(path), root=""), manifest)
    assert truth.noisy.tolist() == [True, True, False, True, False]  # clip 9 is not listed: clean
    assert truth.true_label.tolist() == [1, 2, 3, 0, -1]
    assert truth.apex[0].tolist() == [0.15, 0.5] and np.isnan(truth.apex[4]).all()  # frames 3-9 of 20
    noisy, hard = read_truth(path, ["00001", "00002", "00003", "00004"])
    assert noisy.tolist() == [True, True, False, True] and hard.tolist() == [False, True, False, False]

    predictions = tmp_path / "predictions.csv"
    with open(predictions, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "prediction", "agreement", "mu", "delta", "p_A", "p_B"])
        for clip in ("00001", "00002", "00003", "00004"):
            writer.writerow([clip, "", 0, 1, 1.0, "", "", 0.1, 0.9])
    summary = curate([predictions], tmp_path / "out", t_h=0.0, t_n=1.0, ground_truth=path)
    assert summary["truly_mislabelled"] == 3


def test_hard_kinds_are_read_and_scored_per_kind(tmp_path):
    from rdfer.engine.outputs import ground_truth_for, train_metrics
    from rdfer.utils.ground_truth import KIND_COLUMNS

    path = tmp_path / "ground_truth.csv"
    kinds = {"1": {"occluded"}, "2": {"occluded", "talking"}, "3": set(), "4": {"talking"}}
    lines = ["video_name,true_label,given_label,is_noisy,is_hard,apex_start,apex_end," + ",".join(KIND_COLUMNS)]
    for clip, held in kinds.items():
        flipped = int(clip == "1")  # clip 1's label is wrong: weighting it 0 discards no hard clip
        lines.append(f"{clip},1,{1 + flipped},{flipped},{int('occluded' in held)},3,9,"
                     + ",".join(str(int(k in held)) for k in KIND_COLUMNS))
    path.write_text("\n".join(lines) + "\n")
    assert [r.kinds for r in read_ground_truth(path).values()] == [frozenset(k) for k in kinds.values()]
    old = tmp_path / "old.csv"
    old.write_text(GROUND_TRUTH)
    assert all(r.kinds is None for r in read_ground_truth(old).values())  # files written before the kinds
    manifest = SimpleNamespace(records=[SimpleNamespace(clip_id=c, num_frames=20) for c in ("1", "2", "3", "4")])
    truth = ground_truth_for(SimpleNamespace(ground_truth=str(path), root=""), manifest)
    rows = {"index": np.arange(4), "label": np.zeros(4, int), "prediction": np.zeros(4, int),
            "clip_correct": np.full(4, 4), "agreement": np.ones(4), "kind": np.zeros(4, int),
            "weight": np.array([0.0, 1.5, 1.0, 1.5])}
    metrics = train_metrics(rows, truth, n1=4)
    # Over the clips with a right label: occluded is clip 2 (w=1.5; clip 1, w=0, is flipped);
    # talking: 2 (w=1.5) and 4 (w=1.5); mixed: none.
    assert metrics["hard_kinds"]["occluded"] == {"n": 1, "zeroed": 0.0, "upweighted": 1.0}
    assert metrics["hard_kinds"]["talking"] == {"n": 2, "zeroed": 0.0, "upweighted": 1.0}
    assert metrics["hard_kinds"]["mixed"] == {"n": 0, "zeroed": None, "upweighted": None}
    assert metrics["zeroed_hard"] == 0.0 and metrics["upweighted_hard"] == 1.0


def test_ground_truth_errors_name_file_line_and_column(tmp_path):
    path = tmp_path / "ground_truth.csv"
    with pytest.raises(RdferError, match=r"ground truth file \S+ not found: run rdfer synth$"):
        read_ground_truth(path, missing_hint="run rdfer synth")
    path.write_text("video_name,is_noisy\n1,1\n2,maybe\n")
    with pytest.raises(RdferError, match=r"ground_truth.csv line 3: is_noisy = 'maybe' is not 1 or 0$"):
        read_ground_truth(path)
    with pytest.raises(RdferError, match=r"needs the columns video_name, is_noisy, is_hard .*; it lacks is_hard$"):
        read_ground_truth(path, ("video_name", "is_noisy", "is_hard"))


def test_one_checkpoint_reader_gives_the_same_line_for_every_caller(tmp_path):
    from rdfer.engine.checkpoint import load_training_checkpoint
    from rdfer.models.checkpoint import load_model

    bad = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.zeros(3)}}, bad)
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    expected = f"checkpoint {bad} cannot be read: it is truncated or damaged (was it copied completely?)"
    for read in (load_model, load_training_checkpoint):
        with pytest.raises(RdferError) as error:
            read(bad)
        assert str(error.value) == expected, read.__qualname__
    pickled = tmp_path / "pickled.pt"
    torch.save({"model": {}, "extra": np.arange(3)}, pickled)  # an ndarray: refused by weights_only
    with pytest.raises(RdferError, match="holds Python objects besides tensors, which rdfer never loads"):
        load_training_checkpoint(pickled)
