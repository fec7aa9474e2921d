"""Analyses from a small fabricated run folder: tables by hand, figures, report, compare, CLI."""

import argparse
import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from rdfer.analysis import compare_runs, load_run, read_predictions, table_v, table_vii, write_report
from rdfer.cli import analysis as analysis_cli
from rdfer.errors import RdferError
from rdfer.metrics import summarize

CLASSES = ["Happy", "Sad", "Fear"]
# (label, prediction, agreement) of 12 test clips; worked through by hand below.
CLIPS = [
    (0, 0, 1.0), (0, 0, 1.0), (0, 1, 0.75), (0, 0, 0.5),
    (1, 1, 1.0), (1, 0, 0.75), (1, 1, 0.75), (1, 2, 0.5),
    (2, 2, 1.0), (2, 0, 0.5), (2, 1, 0.5), (0, 0, 1.0),
]
UNREADABLE = 9  # its path does not exist


def write_frames(folder, count, seed):
    """A folder of `count` JPEG frames: a face-like blob drifting over a coloured background."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, size=3)
    for t in range(count):
        image = np.empty((64, 64, 3), dtype=np.uint8)
        image[:] = base
        y, x = np.mgrid[:64, :64]
        blob = (y - 32) ** 2 + (x - 20 - 3 * t) ** 2 < 150
        image[blob] = (230, 190, 160)
        Image.fromarray(image).save(folder / f"{t + 1:05d}.jpg")


def write_video(path, count):
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for t in range(count):
        frame = np.full((48, 64, 3), 30 + 20 * t, dtype=np.uint8)
        writer.write(frame)
    writer.release()


def make_run(root, war_shift=0.0, with_frames=True):
    """Write a run folder the way the engine does (COMMON.md, ENGINE)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i, (label, prediction, agr) in enumerate(CLIPS):
        path = root / "frames" / f"clip{i:02d}"
        if i == 4:
            path = root / "frames" / "clip04.avi"
        if with_frames and i != UNREADABLE:
            if i == 4:
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, 12)
            else:
                write_frames(path, 8 + i, seed=i)
        probs = np.full(len(CLASSES), 0.1)
        probs[prediction] = 0.8
        majority = round(4 * agr)  # clips predicting `prediction`; the others differ from it and each other
        clip_preds = [prediction] * majority + [(prediction + 1 + k) % len(CLASSES) for k in range(4 - majority)]
        rows.append([f"clip{i:02d}", str(path), label, prediction, f"{agr:.2f}", "0.5000", "2.0000",
                     *(f"{p:.5f}" for p in probs), " ".join(map(str, clip_preds))])
    with open(root / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip_id", "path", "label", "prediction", "agreement", "mu", "delta",
                         *(f"p_{c}" for c in CLASSES), "clip_predictions"])
        writer.writerows(rows)
    labels = np.array([c[0] for c in CLIPS])
    np.save(root / "features.npy", (rng.normal(size=(len(CLIPS), 16)) + 3 * labels[:, None]).astype(np.float32))
    last = summarize(labels, [c[1] for c in CLIPS], CLASSES) | {"epoch": 3}
    best = dict(last, war=last["war"] + war_shift + 5, uar=last["uar"] + 5, epoch=2)
    (root / "final.json").write_text(json.dumps({"last": last, "best": best, "selection": "best = top test WAR"}))
    history = [{"epoch": e, "train_loss": 2.0 - 0.3 * e, "hard_share": 0.2, "noisy_share": 0.1,
                "noisy_precision": 0.2 * e, "noisy_recall": 0.1 * e, "war": 40.0 + 5 * e + war_shift,
                "uar": 35.0 + 5 * e, "clip_acc": 0.3 + 0.1 * e, "majority_match": 0.7 + 0.05 * e,
                "memorised": 0.05 * e, "flipped_true_acc": 0.5 - 0.05 * e,
                "train_agreement": {"0.25": 0.1, "0.50": 0.2, "0.75": 0.3, "1.00": 0.4},
                "test_agreement": {"0.25": 0.0, "0.50": 0.1, "0.75": 0.2 * e, "1.00": 0.9 - 0.2 * e}}
               for e in (1, 2, 3)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    config = {"data": {"dataset": "csv", "classes": CLASSES}, "model": {"name": "rdfer_tiny"},
              "loss": {"strategy": "agreement", "mode": "batch", "t_h": 0.2, "t_n": 0.1, "w_hard": 1.5,
                       "w_noisy": 0.0, "warmup_epochs": 1}}
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("runs") / "agreement")


def test_clip_predictions_column_is_read(run_dir):
    p = load_run(run_dir).predictions
    assert p.clip_predictions[0] == (0, 0, 0, 0) and p.clip_predictions[2] == (1, 1, 1, 2)


def test_table_v_by_hand(run_dir):
    t = table_v(load_run(run_dir).predictions)
    assert [label for label, _ in t.rows] == ["0.50", "0.75", "1.00", "Clips"]
    assert t.columns == ("Happy", "Sad", "Fear", "All")
    # Happy: 5 clips, 1 at 0.5, 1 at 0.75, 3 at 1.0. Sad: 4 clips, 1 / 2 / 1. Fear: 3 clips, 2 / 0 / 1.
    expected = {"0.50": (20.0, 25.0, 200 / 3, 100 * 4 / 12),
                "0.75": (20.0, 50.0, 0.0, 100 * 3 / 12),
                "1.00": (60.0, 25.0, 100 / 3, 100 * 5 / 12)}
    for level, values in expected.items():
        assert [t.value(level, c) for c in t.columns] == pytest.approx(values)
    assert dict(t.rows)["Clips"] == (5, 4, 3, 12)


def test_table_vii_by_hand(run_dir):
    t = table_vii(load_run(run_dir).predictions)
    assert [label for label, _ in t.rows] == ["0.50", "0.75", "1.00", "All"]
    # 0.5: Happy 1/1 right, Sad 0/1, Fear 0/2 -> 1 of 4. 0.75: Happy 0/1, Sad 1/2, no Fear -> 1 of 3.
    assert [t.value("0.50", c) for c in t.columns] == pytest.approx([100.0, 0.0, 0.0, 25.0])
    assert t.value("0.75", "Happy") == 0.0 and t.value("0.75", "Sad") == 50.0
    assert t.value("0.75", "Fear") is None
    assert t.value("0.75", "All") == pytest.approx(100 / 3)
    assert [t.value("1.00", c) for c in t.columns] == [100.0, 100.0, 100.0, 100.0]
    # Bottom row: per-class accuracy 4/5, 2/4, 1/3; bottom-right = WAR 7/12.
    assert [t.value("All", c) for c in t.columns] == pytest.approx([80.0, 50.0, 100 / 3, 100 * 7 / 12])
    assert "| 0.75 | 0.0 | 50.0 | – | 33.3 |" in t.to_markdown()


def assert_real_image(path):
    image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
    assert image.shape[0] >= 200 and image.shape[1] >= 200, path
    assert image.std() > 10, f"{path} is (almost) a blank image"


def test_report_links_tables_and_figures(run_dir, tmp_path):
    report = write_report(run_dir, tmp_path / "report")
    text = report.read_text()
    for png in ("training_curves.png", "agreement_histograms.png", "confusion.png", "tsne_by_agreement.png",
                "samples_by_agreement.png"):
        assert f"](report_files/{png})" in text
        assert_real_image(report.parent / "report_files" / png)
    # Both tables are in the report and beside it as Markdown and CSV.
    assert "Table V" in text and "Table VII" in text
    assert "](report_files/table_vii_agreement_accuracy.csv)" in text
    with open(report.parent / "report_files" / "table_vii_agreement_accuracy.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Agreement", "Happy", "Sad", "Fear", "All"]
    assert rows[2] == ["0.75", "0.0000", "50.0000", "", "33.3333"]
    assert (report.parent / "report_files" / "table_v_agreement_share.md").read_text().count("| 1.00 |") == 1
    # Last and best epochs are named, with their figures from final.json.
    final = json.loads((run_dir / "final.json").read_text())
    assert f"| last (epoch 3) | {final['last']['war']:.2f} | {final['last']['uar']:.2f} |" in text
    assert f"| best (epoch 2) | {final['best']['war']:.2f} |" in text
    assert "precision 60.0%, recall 30.0%" in text  # epoch 3 of metrics.jsonl
    # The clip without frames is reported, not fatal.
    assert "Notes" in text and "clip09" in text


def test_report_without_optional_files(tmp_path):
    run = make_run(tmp_path / "bare", with_frames=False)
    for name in ("features.npy", "final.json", "metrics.jsonl", "config.yaml"):
        (run / name).unlink()
    report = write_report(run)
    assert report == run / "report.md"  # default: in the run folder
    assert (run / "report_files" / "confusion.png").is_file()
    text = report.read_text()
    assert "t-SNE not drawn: no features.npy" in text
    assert "Agreement histograms not drawn: no metrics.jsonl" in text or "Agreement histograms not drawn" in text
    assert "Sample frames not drawn" in text
    assert "| last (from predictions.csv) | 58.33 |" in text  # WAR 7/12 from the CSV


def test_compare_runs(run_dir, tmp_path):
    other = make_run(tmp_path / "ce", war_shift=-10)
    config = yaml.safe_load((other / "config.yaml").read_text())
    config["loss"]["strategy"] = "ce"
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    text = compare_runs({"vanilla CE": other, "agreement": run_dir}, tmp_path / "cmp.md").read_text()
    lines = [line for line in text.splitlines() if line.startswith("| vanilla CE") or line.startswith("| agreement")]
    # Last epoch WAR and UAR, then the clip accuracy of the last epoch (epoch 3: 0.6).
    assert lines[0].startswith("| vanilla CE | ce | 3 | 58.33 |")
    assert lines[1].startswith("| agreement | agreement | 3 | 58.33 |")
    assert "| 60.0 | 2 |" in lines[0]
    # Memorised 15% (epoch 3: 0.05 * 3), noisy precision 60% and recall 30%.
    # No small-loss control recorded, no apex ground truth: no window columns.
    assert lines[0].endswith("| 15.0 | 60.0 | 30.0 | – | – | – | – | – | – |")
    best_war = json.loads((other / "final.json").read_text())["best"]["war"]
    assert f"| 2 | {best_war:.2f} |" in lines[0]


def test_missing_and_malformed_files(run_dir, tmp_path):
    with pytest.raises(RdferError, match="predictions.csv not found"):
        load_run(tmp_path)
    with pytest.raises(RdferError, match="not found"):
        load_run(tmp_path / "nowhere")
    bad = tmp_path / "predictions.csv"
    text = (run_dir / "predictions.csv").read_text().splitlines()
    text[3] = text[3].replace(",0.75,", ",high,")  # clip02, line 4
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(RdferError, match=r"predictions.csv, line 4"):
        read_predictions(bad)
    with pytest.raises(RdferError, match="config.yaml lists"):
        read_predictions(run_dir / "predictions.csv", classes=["A", "B", "C"])
    broken = make_run(tmp_path / "broken", with_frames=False)
    (broken / "metrics.jsonl").write_text('{"epoch": 1}\n{oops\n')
    with pytest.raises(RdferError, match=r"metrics.jsonl, line 2"):
        load_run(broken)
    (broken / "metrics.jsonl").unlink()
    np.save(broken / "features.npy", np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(RdferError, match="features.npy has shape"):
        load_run(broken)
    with pytest.raises(RdferError, match="final.json not found"):
        compare_runs({"x": tmp_path}, tmp_path / "c.md")


def run_cli(argv):
    parser = argparse.ArgumentParser()
    analysis_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_report_and_compare(run_dir, tmp_path, capsys):
    quick = make_run(tmp_path / "quick", with_frames=False)
    (quick / "features.npy").unlink()  # no t-SNE: the full report is tested above
    assert run_cli(["report", str(quick), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.md").is_file()
    assert f"wrote {tmp_path / 'r' / 'report.md'}" in capsys.readouterr().out
    assert run_cli(["compare", f"a={run_dir}", f"b={run_dir}", "--out", str(tmp_path / "c.md")]) == 0
    assert "| b | agreement |" in capsys.readouterr().out
    with pytest.raises(RdferError, match="NAME=RUN"):
        run_cli(["compare", str(run_dir), "--out", str(tmp_path / "c.md")])


def test_frame_source_reads_folders_and_videos(tmp_path):
    from rdfer.figures.base import FrameSource, Skipped

    folder = tmp_path / "clip"
    folder.mkdir()
    for t in range(11):  # frame t has grey level 20 * t; names sort naturally (img2 before img10)
        Image.fromarray(np.full((32, 48, 3), 20 * t, dtype=np.uint8)).save(folder / f"img{t}.png")
    source = FrameSource(folder)
    assert len(source) == 11
    frames = source.read([0, 2, 10], height=16)
    assert [int(f.mean().round()) for f in frames] == [0, 40, 200]
    assert frames[0].shape == (16, 24, 3)
    video = tmp_path / "clip.avi"
    write_video(video, 12)  # frame t has grey level 30 + 20 t
    source = FrameSource(video)
    assert len(source) == 12
    levels = [f.mean() for f in source.read([0, 5, 11])]
    assert abs(levels[0] - 30) < 8 and abs(levels[1] - 130) < 8 and abs(levels[2] - 250) < 8
    with pytest.raises(Skipped, match="not found"):
        FrameSource(tmp_path / "missing")


def test_model_frame_indices():
    from rdfer.figures.paper import model_frame_indices

    # mu 0.5, delta 4 is the uniform re-sampling: dense positions 2, 6, ..., 62 (SPEC 2).
    assert model_frame_indices(64, 0.5, 4.0).tolist() == list(range(2, 64, 4))
    # Dense frame d of a 128-frame clip is its segment centre 2d + 1.
    assert model_frame_indices(128, 0.5, 4.0).tolist() == list(range(5, 128, 8))
    # A window at the end is shifted inside the clip, not clipped: 16 distinct frames.
    assert model_frame_indices(64, 1.0, 1.0).tolist() == list(range(48, 64))
    # No re-sampling (mu, delta empty): the 16 segment centres.
    assert model_frame_indices(32).tolist() == list(range(1, 32, 2))
