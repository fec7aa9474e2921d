"""Issue 23: the mechanisms behind README's "What rdfer guarantees", each tested through the real
`rdfer` command line (in process where one process suffices; a second process where the case needs
one: a run holding a lock, a crash, a file size limit, a segfault in OpenCV).

1. outputs never overwrite inputs   (rdfer.utils.outputs.refuse_overwriting_inputs)
2. one run per output at a time     (rdfer.utils.runlock.run_lock)
3. reruns reuse only matching work  (config.check_reusable, study.json, feature cache stamps)
4. numbers checked when read        (rdfer.utils.ranges), a nan/inf loss stops the run (engine.fit)
5. damaged or unusual files         (truncated caches, full disks, WebM/Matroska counts, pipes,
                                     non-UTF-8 names)
6. CSV columns and folds            (data.manifest, engine.cv)

Every test here failed on the code before issue 23.
"""

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

import rdfer
from rdfer.cli import main
from rdfer.config import load_config, save_config

SRC = Path(rdfer.__file__).resolve().parents[1]  # second processes run the code under test too
ENV = {**os.environ, "PYTHONPATH": str(SRC)}
TINY = ["data.num_workers=0", "optim.epochs=1", "optim.batch_size=8", "loss.warmup_epochs=0",
        "model.options.input_size=32", "device=cpu", "threads=1"]


def run_cli(capsys, *argv) -> tuple:
    """(exit status, the last stderr line) of `rdfer ARGV` run in this process."""
    code = main([str(a) for a in argv])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, (err[-1] if err else "")


def assert_one_line_error(code, line, *needles):
    assert code == 2, line
    assert line.startswith("rdfer ") and ": error: " in line, line
    for needle in needles:
        assert needle in line, line


def sets(*items):
    return [arg for item in items for arg in ("--set", item)]


def split_list(root, split="train", fold=1) -> Path:
    return Path(root) / "EmoLabel_DataSplit" / f"{split}(single-labeled)" / f"set_{fold}.csv"


def hold_lock(target, command="train"):
    """A second process holding the run lock of `target`; returns it once it holds the lock."""
    code = ("import sys, time; from rdfer.utils.runlock import run_lock\n"
            f"with run_lock({str(target)!r}, {command!r}):\n    print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], env=ENV, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


# ----------------------------------------------------------------------------- 1. outputs vs inputs


@pytest.mark.parametrize("which", ["train list", "test list", "other fold's list", "config", "link to the list"])
def test_features_out_never_replaces_what_it_reads(data, tmp_path, capsys, which):
    config = tmp_path / "mine.yaml"
    config.write_text("base: study\n")
    target = {"train list": split_list(data), "test list": split_list(data, "test"),
              "other fold's list": split_list(data, "train", 3), "config": config}.get(which)
    if which == "link to the list":
        target = tmp_path / "link.npz"
        target.symlink_to(split_list(data))
    before = Path(target).read_bytes()
    code, line = run_cli(capsys, "features", "--config", config, *sets(f"data.root={data}"), "--out", target)
    assert_one_line_error(code, line, "which this command reads", "give another path")
    assert Path(target).read_bytes() == before


def test_pack_out_never_replaces_a_split_list_or_a_clip(data, tmp_path, capsys):
    test_list = split_list(data, "test")
    before = test_list.read_bytes()
    code, line = run_cli(capsys, "pack", "--dataset", "dfew", "--root", data, "--split", "train", "--out", test_list)
    assert_one_line_error(code, line, str(test_list))
    assert test_list.read_bytes() == before
    video = tmp_path / "clip.avi"  # a CSV dataset of a video: --out at the video itself
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 32))
    for i in range(6):
        writer.write(np.full((32, 32, 3), 40 * i, np.uint8))
    writer.release()
    (tmp_path / "m.csv").write_text(f"path,label\n{video},happy\n")
    before = video.read_bytes()
    code, line = run_cli(capsys, "pack", "--dataset", "csv", "--csv", tmp_path / "m.csv", "--split", "all",
                         "--out", video)
    assert_one_line_error(code, line, "clip.avi")
    assert video.read_bytes() == before


def test_train_out_never_replaces_its_csv_manifest(data, tmp_path, capsys):
    from rdfer.data import build_manifest

    run = tmp_path / "run"
    run.mkdir()
    manifest = run / "predictions.csv"  # what the run writes at its end
    lines = ["path,label,split"] + [f"{r.path},{r.label},{split}" for split in ("train", "test")
                                    for r in build_manifest("dfew", data, split).records]
    manifest.write_text("\n".join(lines) + "\n")
    before = manifest.read_bytes()
    code, line = run_cli(capsys, "train", "--config", "demo", "--out", run,
                         *sets("data.dataset=csv", f"data.csv={manifest}", *TINY))
    assert_one_line_error(code, line, "predictions.csv", "which this command reads")
    assert manifest.read_bytes() == before and not (run / "checkpoints").exists()


def test_curate_out_never_replaces_its_predictions(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    predictions = out / "hard.csv"  # a file curate writes into --out
    rows = ["clip_id,path,label,prediction,agreement,clip_predictions,clip_majority,mu,delta,p_A,p_B"]
    rows += [f"c{i},x/{i},{i % 2},{i % 2},1.00,{i % 2} {i % 2} {i % 2} {i % 2},{i % 2},,,0.5,0.5" for i in range(6)]
    predictions.write_text("\n".join(rows) + "\n")
    before = predictions.read_bytes()
    code, line = run_cli(capsys, "curate", "--predictions", predictions, "--out", out)
    assert_one_line_error(code, line, "hard.csv", "which this command reads")
    assert predictions.read_bytes() == before


# ----------------------------------------------------------------------------- 2. one run per output


def test_a_second_run_into_a_held_folder_stops_at_once_naming_the_other_run(data, tmp_path, capsys):
    run = tmp_path / "run"
    holder = hold_lock(run, "train")
    try:
        code, line = run_cli(capsys, "train", "--config", "demo", *sets(f"data.root={data}", *TINY), "--out", run)
        assert_one_line_error(code, line, str(run), f"process {holder.pid}", "rdfer train")
        assert not run.exists()  # nothing of the second run was written
        (tmp_path / "clip.mp4").write_bytes(b"not decoded: the lock stops the run first")
        code, line = run_cli(capsys, "predict", tmp_path / "clip.mp4", "--out", run)
        assert_one_line_error(code, line, "in use by another run")
        code, line = run_cli(capsys, "cv", "--config", "demo", *sets(f"data.root={data}"), "--out", run)
        assert_one_line_error(code, line, "in use by another run")
        code, line = run_cli(capsys, "study", "--out", run, "--clips", 50)
        assert_one_line_error(code, line, "in use by another run")
        code, line = run_cli(capsys, "audit", "--config", "audit_synth", *sets(f"data.root={data}"), "--out", run)
        assert_one_line_error(code, line, "in use by another run")
    finally:
        holder.kill()
        holder.wait()
    cache = tmp_path / "f.npz"
    holder = hold_lock(cache, "features")
    try:
        code, line = run_cli(capsys, "features", "--config", "study", *sets(f"data.root={data}"), "--out", cache)
        assert_one_line_error(code, line, "rdfer features", "in use")
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_run_leaves_no_stuck_lock(tmp_path):
    from rdfer.utils.runlock import run_lock

    holder = hold_lock(tmp_path / "run")
    holder.send_signal(signal.SIGKILL)  # no clean-up runs: the OS releases the lock
    holder.wait()
    with run_lock(tmp_path / "run", "train"):  # would raise "in use" if the lock were stuck
        pass


def test_two_trainings_started_together_into_one_folder_never_mix(data, tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "rdfer", "train", "--config", "demo", "--out", str(run), "--no-progress",
               *sets(f"data.root={data}", *TINY)]
    first, second = (subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2))
    results = [(p.wait(timeout=600), p.stderr.read()) for p in (first, second)]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    refused = next(err for code, err in results if code == 2)
    assert "in use by another run" in refused
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [1] and (run / "final.json").is_file()


# ----------------------------------------------------------------------------- 3. reruns


def _finished_fold(out, config):
    fold = Path(out) / "fold_1"
    fold.mkdir(parents=True)
    save_config(config, fold / "config.yaml")
    final = {"last": {"war": 50.0, "uar": 40.0}, "best": {"war": 55.0, "uar": 45.0}}
    (fold / "final.json").write_text(json.dumps(final))


def test_cv_rerun_with_other_settings_is_refused_not_reported_as_finished(data, tmp_path, capsys):
    out = tmp_path / "cv"
    _finished_fold(out, load_config(Path(SRC / "rdfer" / "configs" / "demo.yaml"),
                                    (f"data.root={data}", "optim.lr=0.001")))
    code, line = run_cli(capsys, "cv", "--config", "demo", *sets(f"data.root={data}", "optim.lr=0.002"),
                         "--out", out, "--folds", "1")
    assert_one_line_error(code, line, "optim.lr 0.001 -> 0.002", "new --out")
    assert not (out / "cv_summary.json").exists()
    # The same settings (and where the work runs: threads, workers) reuse the finished fold.
    code = main(["cv", "--config", "demo", *sets(f"data.root={data}", "optim.lr=0.001", "threads=2"),
                 "--out", str(out), "--folds", "1"])
    assert code == 0 and "already finished" in capsys.readouterr().out


def test_study_rerun_with_other_clips_or_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"clips": 1000, "overrides": [], "seeds": [0]}))
    code, line = run_cli(capsys, "study", "--out", out, "--clips", 60)
    assert_one_line_error(code, line, "--clips 1000", "--clips 60", "new --out")
    code, line = run_cli(capsys, "study", "--out", out, "--set", "optim.epochs=3")
    assert_one_line_error(code, line, "optim.epochs=3", "new --out")


def test_a_feature_cache_of_clips_rewritten_since_is_refused(data, tmp_path, capsys):
    cache = tmp_path / "f.npz"
    assert main(["features", "--config", "study", "--set", f"data.root={data}", "--out", str(cache),
                 "--no-progress"]) == 0
    capsys.readouterr()
    clip = sorted((data / "Clip" / "clip_224x224").iterdir())[2]
    frame = sorted(clip.iterdir())[0]
    frame.write_bytes(frame.read_bytes())  # rewritten (as rdfer synth into the same folder does)
    os.utime(frame, ns=(time.time_ns(), time.time_ns() + 10**9))
    code, line = run_cli(capsys, "train", "--config", "study", "--no-progress", "--out", tmp_path / "run",
                         *sets(f"data.root={data}", f"data.features={cache}", "optim.epochs=1"))
    assert_one_line_error(code, line, "out of date", "1 of", "rebuild it")


# ----------------------------------------------------------------------------- 4. numbers


@pytest.mark.parametrize("item, needle", [
    ("optim.lr=.inf", "give a finite number"), ("optim.lr=.nan", "give a finite number"),
    ("optim.weight_decay=1e300", "optim.weight_decay"), ("loss.w_hard=.inf", "loss.w_hard"),
    ("model.options.n1=0", "n1 = 0"), ("model.options.d_min=-3", "d_min = -3"),
    ("model.options.d_min=9", "d_min (9.0) must be below d_max"), ("model.options.input_size=0", "input_size"),
    ("threads=100000", "threads"), ("data.num_workers=100000", "data.num_workers"),
])
def test_numeric_options_out_of_range_are_one_line(data, tmp_path, capsys, item, needle):
    code, line = run_cli(capsys, "train", "--config", "demo", *sets(f"data.root={data}", *TINY, item),
                         "--out", tmp_path / "run")
    assert_one_line_error(code, line, needle)


@pytest.mark.parametrize("argv, needle", [
    (["predict", "x.mp4", "--threads", "-2"], "--threads: -2: give 1..1024"),
    (["predict", "x.mp4", "--threads", "100000"], "--threads: 100000"),
    (["predict", "x.mp4", "--margin", "nan"], "--margin: nan: give a finite number"),
    (["synth", "--out", "s", "--noise", "1.5"], "--noise: 1.5"),
    (["curate", "--predictions", "p.csv", "--out", "o", "--t-h", "inf"], "--t-h: inf"),
    (["check-dataset", "--dataset", "dfew", "--root", ".", "--fold", "9"], "--fold: 9: give 1..5"),
    (["audit", "--config", "demo", "--out", "a", "--folds", "1"], "--folds: 1"),
])
def test_numeric_command_line_options_out_of_range_are_one_line(capsys, argv, needle):
    code = main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines


def test_a_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_good_epoch(data, tmp_path, monkeypatch):
    import torch

    from rdfer.engine import fit
    from rdfer.errors import RdferError
    from rdfer.losses import ReweightedLoss

    forward = ReweightedLoss.forward

    def diverging(self, logits, clip_logits, targets, indices, epoch, **guide):
        loss, info = forward(self, logits, clip_logits, targets, indices, epoch, **guide)
        return (loss * float("nan") if epoch == 1 else loss), info

    monkeypatch.setattr(ReweightedLoss, "forward", diverging)
    config = load_config(SRC / "rdfer" / "configs" / "demo.yaml", (f"data.root={data}", *TINY, "optim.epochs=3"))
    run = tmp_path / "run"
    with pytest.raises(RdferError, match=r"loss became nan at step 1 of epoch 2 .*last.pt keeps epoch 1") as error:
        fit(config, run, progress=False)
    assert "\n" not in str(error.value)
    assert torch.load(run / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 0  # epoch 1, 0-based
    assert [json.loads(x)["epoch"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1]
    assert not (run / "final.json").exists()


# ----------------------------------------------------------------------------- 5. damaged and unusual files


def test_a_truncated_feature_cache_is_one_line(data, tmp_path, capsys):
    cache = tmp_path / "f.npz"
    np.savez(cache, features=np.zeros((1000, 8), np.float32), offsets=np.zeros(3, np.int64))
    cache.write_bytes(cache.read_bytes()[:900])
    code, line = run_cli(capsys, "train", "--config", "study", "--no-progress", "--out", tmp_path / "run",
                         *sets(f"data.root={data}", f"data.features={cache}"))
    assert_one_line_error(code, line, str(cache), "cut off", "rebuild it")


def test_features_on_a_full_disk_names_the_file_and_leaves_no_part(data, tmp_path):
    import resource

    cache = tmp_path / "f.npz"

    def small_disk():  # writes past 64 kB fail with EFBIG, as a full disk fails them with ENOSPC
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    done = subprocess.run([sys.executable, "-m", "rdfer", "features", "--config", "study", "--set",
                           f"data.root={data}", "--out", str(cache), "--no-progress"], env=ENV,
                          capture_output=True, text=True, preexec_fn=small_disk, timeout=600)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and lines[-1].startswith("rdfer features: error: cannot write"), done.stderr
    assert str(cache) in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no f.npz, no f.npz.part, no lock


def test_a_checkpoint_on_a_full_disk_names_the_file_and_leaves_no_tmp(tmp_path):
    import resource

    def small_disk():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64_000, 64_000))

    code = ("import torch; from rdfer.engine.checkpoint import atomic_save; from rdfer.errors import RdferError\n"
            "try:\n    atomic_save({'w': torch.zeros(100_000)}, 'run/checkpoints/last.pt')\n"
            "except RdferError as error:\n    print(error)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                          preexec_fn=small_disk, timeout=300)
    assert done.stdout.startswith("cannot write run/checkpoints/last.pt"), (done.stdout, done.stderr[-500:])
    assert list((tmp_path / "run" / "checkpoints").iterdir()) == []


def _mkv_patched(path: Path, fourcc: str, duration_scale):
    """A 12-frame Matroska/WebM file whose header duration is scaled (a wrong, VFR-like estimate)
    or, with None, removed (as live encoders write WebM)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 24, (48, 48))
    for i in range(12):
        writer.write(np.full((48, 48, 3), 20 * i, np.uint8))
    writer.release()
    raw = bytearray(path.read_bytes())
    at = raw.find(b"\x44\x89\x88")  # the Duration element: ID, size 8, a big-endian double
    assert at > 0
    if duration_scale is None:
        raw[at:at + 11] = b"\xec\x89" + bytes(9)  # a Void element of the same length
    else:
        (duration,) = struct.unpack(">d", raw[at + 3:at + 11])
        raw[at + 3:at + 11] = struct.pack(">d", duration * duration_scale)
    path.write_bytes(raw)
    return path


def test_webm_without_duration_and_vfr_mkv_are_counted_by_decoding(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    _mkv_patched(videos / "live.webm", "VP80", None)
    _mkv_patched(videos / "vfr.mkv", "MJPG", 2.0)  # the header says 24 frames, 12 are there
    (tmp_path / "m.csv").write_text("path,label,split\nvideos/live.webm,happy,train\nvideos/vfr.mkv,sad,train\n")
    code = main(["check-dataset", "--dataset", "csv", "--csv", str(tmp_path / "m.csv")])
    out = capsys.readouterr().out
    assert code == 0 and "no problems found" in out, out
    from rdfer.data import build_manifest

    frames = {Path(r.path).name: r.num_frames for r in build_manifest("csv", tmp_path / "m.csv", "train").records}
    assert frames == {"live.webm": 12, "vfr.mkv": 12}


def test_a_named_pipe_is_named_as_such(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.mp4")
    (tmp_path / "m.csv").write_text("path,label\npipe.mp4,happy\n")
    code, line = run_cli(capsys, "pack", "--dataset", "csv", "--csv", tmp_path / "m.csv", "--split", "all",
                         "--out", tmp_path / "p.pack")
    assert_one_line_error(code, line, "is a named pipe (FIFO)")
    code = main(["predict", str(tmp_path / "pipe.mp4"), "--out", str(tmp_path / "out"), "--detector", "haar",
                 "--no-progress"])
    record = json.loads((tmp_path / "out" / "pipe.json").read_text())
    assert code == 1 and "named pipe" in record["error"]


def test_a_non_utf8_file_name_neither_crashes_predict_nor_stops_the_batch(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in (b"a-caf\xe9.avi", b"b-ok.avi"):  # latin-1 bytes: not UTF-8
        writer = cv2.VideoWriter(str(videos / "tmp.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
        for i in range(5):
            writer.write(np.full((64, 64, 3), 30 * i, np.uint8))
        writer.release()
        os.rename(bytes(videos / "tmp.avi"), bytes(videos) + b"/" + name)  # OpenCV itself cannot take the name
    done = subprocess.run([sys.executable, "-m", "rdfer", "predict", str(videos), "--out", str(tmp_path / "out"),
                           "--detector", "haar", "--format", "csv", "--no-progress"], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]  # a segfault (-11) before
    rows = (tmp_path / "out" / "predictions.csv").read_text(errors="replace").splitlines()
    assert len(rows) == 3 and all("no_face" in row for row in rows[1:])


def test_a_video_that_crashes_the_decoder_spares_the_rest_of_the_batch(tmp_path, monkeypatch, capsys):
    from rdfer.inference import probe

    # The probe's child crashes (SIGSEGV) on the file named b-boom.avi, as OpenCV did on a non-UTF-8 name.
    crashing = probe._CHILD.replace('    with opencv_path(path)', '    if path.endswith("b-boom.avi"):\n'
                                    '        import signal; os.kill(os.getpid(), signal.SIGSEGV)\n'
                                    '    with opencv_path(path)')
    monkeypatch.setattr(probe, "_CHILD", crashing)
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("a.avi", "b-boom.avi", "c.avi"):
        writer = cv2.VideoWriter(str(videos / name), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 64))
        for i in range(4):
            writer.write(np.full((64, 64, 3), 30 * i, np.uint8))
        writer.release()
    code = main(["predict", str(videos), "--out", str(tmp_path / "out"), "--detector", "haar", "--format", "json",
                 "--no-progress"])
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "out").glob("*.json")}
    assert code == 1 and sorted(records) == ["a", "b-boom", "c"]
    assert records["b-boom"]["status"] == "error" and "SIGSEGV" in records["b-boom"]["error"]
    assert records["a"]["status"] == records["c"]["status"] == "no_face"


# ----------------------------------------------------------------------------- 6. CSV columns and folds


@pytest.mark.parametrize("header", ["video,label,split", "path,emotion,split", "file,class"])
def test_a_csv_header_rdfer_does_not_read_is_one_line_listing_the_columns(tmp_path, capsys, header):
    (tmp_path / "m.csv").write_text(f"{header}\nclip1,happy,train\n")
    code, line = run_cli(capsys, "train", "--config", "demo", "--out", tmp_path / "run",
                         *sets("data.dataset=csv", f"data.csv={tmp_path / 'm.csv'}", *TINY))
    assert_one_line_error(code, line, f"the header '{header}'", "path, label, split")


@pytest.mark.parametrize("dataset", ["csv", "ferv39k"])
def test_cv_refuses_a_dataset_without_folds(tmp_path, capsys, dataset):
    code, line = run_cli(capsys, "cv", "--config", "demo", "--out", tmp_path / "cv",
                         *sets(f"data.dataset={dataset}", f"data.root={tmp_path}", f"data.csv={tmp_path / 'm.csv'}"))
    assert_one_line_error(code, line, f"data.dataset {dataset} has none", "rdfer audit --folds")
    assert not (tmp_path / "cv").exists()
