"""Each failure class as a mechanism over several commands (tests/faults.py runs the real command line):
a full disk leaves no debris and names the file; a kill -9 at a write point leaves nothing the next run keeps;
a planted link is never followed; two writers lose nothing; resume trusts nothing it did not write."""

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from faults import Holder, assert_one_line_error, debris, kill_at_first_write, plant_link, run_rdfer, start_rdfer

TINY = ["data.num_workers=0", "optim.batch_size=8", "loss.warmup_epochs=0", "model.options.input_size=32",
        "device=cpu"]


def _sets(*items):
    return [arg for item in items for arg in ("--set", item)]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny synthetic DFEW (12 clips, 16 px), a 1-epoch run on it, and a decisions file for audit --apply."""
    base = tmp_path_factory.mktemp("faults")
    root = base / "data"
    done = run_rdfer("synth", "--out", root, "--clips", 12, "--size", 16, "--seed", 2)
    assert done.returncode == 0, done.stderr
    run = base / "run"
    done = run_rdfer("train", "--config", "demo", "--out", run, "--no-progress",
                     *_sets(f"data.root={root}", "optim.epochs=1", *TINY))
    assert done.returncode == 0, done.stderr[-2000:]
    with open(root / "ground_truth.csv") as f:
        clip = next(csv.DictReader(f))["video_name"]
    decisions = base / "decisions.csv"
    decisions.write_text(f"id,decision,new_label\n{clip},relabel,Neutral\n")
    return {"root": root, "run": run, "decisions": decisions}


def _commands(bench, out):
    """Commands that write into `out`, each with its arguments (tiny inputs)."""
    root, run = bench["root"], bench["run"]
    return {
        "synth": ["synth", "--out", out, "--clips", 8, "--size", 16],
        "eval": ["eval", "--checkpoint", run / "checkpoints" / "last.pt", "--out", out, "--no-progress",
                 "--workers", 0],
        "audit --apply": ["audit", "--apply", bench["decisions"], "--out", out, "--config", "demo",
                          *_sets(f"data.root={root}")],
        "train": ["train", "--config", "demo", "--out", out, "--no-progress",
                  *_sets(f"data.root={root}", "optim.epochs=1", *TINY)],
    }


COMMANDS = ("synth", "eval", "audit --apply", "train")


# ----------------------------------------------------------------------------- a full disk


@pytest.mark.parametrize("name", COMMANDS)
def test_a_full_disk_names_the_file_and_leaves_no_debris(bench, tmp_path, name):
    out = tmp_path / "out"
    done = run_rdfer(*_commands(bench, out)[name], disk_bytes=600)
    line = assert_one_line_error(done, "cannot write", str(out))
    assert "file too large" in line  # the cause, in words (a full disk says "no space left on device")
    assert debris(tmp_path) == []
    for path in out.rglob("*") if out.exists() else ():  # whatever is there is whole: under the limit
        assert not path.is_file() or path.stat().st_size < 600, path


# ----------------------------------------------------------------------------- planted links


@pytest.mark.parametrize("name", COMMANDS)
def test_a_lock_link_beside_out_is_refused_and_its_target_untouched(bench, tmp_path, name):
    out = tmp_path / "out"
    victim = plant_link(tmp_path / ".out.lock")
    done = run_rdfer(*_commands(bench, out)[name])
    assert_one_line_error(done, ".out.lock", "symbolic link")
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name, output", [("synth", "synth.json"), ("eval", "metrics.json"),
                                          ("audit --apply", "report.md"), ("train", "config.yaml")])
def test_a_link_planted_at_an_output_name_is_never_written_through(bench, tmp_path, name, output):
    out = tmp_path / "out"
    out.mkdir()
    victim = plant_link(out / output, tmp_path / "victim.txt")
    done = run_rdfer(*_commands(bench, out)[name])
    assert victim.read_text() == "precious\n"
    if done.returncode != 0:  # refused: one line
        assert_one_line_error(done)
    else:  # or replaced as a name (the link itself, never its target)
        assert not (out / output).is_symlink()


# ----------------------------------------------------------------------------- kill -9 at a write point


@pytest.mark.parametrize("name", ["synth", "train"])
def test_a_kill_at_a_write_point_leaves_nothing_after_the_next_run(bench, tmp_path, name):
    out = tmp_path / "out"
    args = _commands(bench, out)[name]
    killed = kill_at_first_write(args, out)
    if not debris(out):
        # The write was small enough to be renamed between the poll that saw its temporary file and
        # the kill: leave what a kill a moment earlier leaves, the dead process's temporary file.
        (out / f".rdfer-tmp-{killed.pid}-0a1b2c-{args[0]}.json").write_text("{\"half")
    assert debris(out)  # a temporary file of the killed run is there
    done = run_rdfer(*args)  # the same command again (train: its first write is config.yaml, before any epoch)
    assert done.returncode == 0, done.stderr[-2000:]
    assert debris(out) == []


# ----------------------------------------------------------------------------- resume


@pytest.fixture()
def stopped(bench, tmp_path):
    """A 2-epoch run stopped after its first epoch (a copy of the finished run's first epoch)."""
    run = tmp_path / "run"
    shutil.copytree(bench["run"], run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["optim"]["epochs"] = 2  # the config its checkpoint was trained with, asking for one more epoch
    (run / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    import torch

    state = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    state["train_config"]["optim"]["epochs"] = 2
    torch.save(state, run / "checkpoints" / "last.pt")
    (run / "final.json").unlink()
    return run


def test_resume_refuses_an_edited_config_naming_the_keys(stopped):
    config = yaml.safe_load((stopped / "config.yaml").read_text())
    config["loss"]["strategy"] = "ce" if config["loss"]["strategy"] != "ce" else "gce"
    (stopped / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    done = run_rdfer("train", "--resume", stopped, "--no-progress")
    assert_one_line_error(done, "config.yaml differs from the config", "loss.strategy")
    assert not (stopped / "final.json").exists()


def test_resume_repairs_a_torn_last_line_of_metrics(stopped):
    metrics = stopped / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + whole[: len(whole) // 2].rstrip("\n"))  # a second record cut off mid-write
    done = run_rdfer("train", "--resume", stopped, "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


def test_resume_from_a_checkpoint_of_another_model_is_one_line(stopped, tmp_path):
    import torch

    state = torch.load(stopped / "checkpoints" / "last.pt", weights_only=True)
    state.pop("train_config")  # an older checkpoint: nothing to compare the config with
    state["model"] = {"other.weight": torch.zeros(3, 3)}
    torch.save(state, stopped / "checkpoints" / "last.pt")
    done = run_rdfer("train", "--resume", stopped, "--no-progress")
    assert_one_line_error(done, "last.pt", "another model")


# ----------------------------------------------------------------------------- concurrent writers


def test_two_writers_into_one_out_lose_nothing(bench, tmp_path):
    """Two syntheses into one --out: one runs, the other stops at once naming it; what runs is whole."""
    out = tmp_path / "out"
    first, second = (start_rdfer(*_commands(bench, out)["synth"]) for _ in range(2))
    results = [(p.wait(timeout=600), p.stderr.read()) for p in (first, second)]
    for p in (first, second):
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    if codes == [0, 2]:
        assert "in use by another run" in next(err for code, err in results if code == 2)
    assert debris(out) == []
    with open(out / "ground_truth.csv") as f:
        assert len(list(csv.DictReader(f))) == 8


# ----------------------------------------------------------------------------- the app


@pytest.fixture()
def app_client(tmp_path):
    from test_app_support import page_client

    from rdfer.app.server import create_app

    return page_client(create_app(tmp_path / "work", max_upload_mb=5), raise_server_exceptions=False)


def _jobs(client):
    folder = client.app.state.work.root / "jobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("headers", [{"Origin": "http://evil.example"}, {"Origin": "null"},
                                     {"Referer": "http://evil.example/page.html"}, {"Sec-Fetch-Site": "cross-site"}])
@pytest.mark.parametrize("method, path, body", [("POST", "/api/predict/jobs", None),
                                                ("POST", "/api/audit/open", {"folder": "x"}),
                                                ("PUT", "/api/predict/jobs/x/files?name=a.mp4", b"data")])
def test_the_app_refuses_state_changes_from_other_sites(app_client, headers, method, path, body):
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body} if body else {}
    reply = app_client.request(method, path, headers=headers, **kwargs)
    assert reply.status_code == 403 and "refused" in reply.json()["error"] and "\n" not in reply.json()["error"]
    assert _jobs(app_client) == []  # a body-less POST created no job folder
    own = app_client.post("/api/predict/jobs", headers={"Origin": "http://testserver"})  # the page itself
    assert own.status_code == 200 and own.json()["id"] in _jobs(app_client)


@pytest.mark.parametrize("token", [None, "", "wrong", "a-page-of-an-earlier-server-0123456789abcdefghijk"])
@pytest.mark.parametrize("origin", [{}, {"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}])
@pytest.mark.parametrize("method, path, body", [("POST", "/api/predict/jobs", None),
                                                ("POST", "/api/audit/open", {"folder": "x"}),
                                                ("PUT", "/api/predict/jobs/x/files?name=a.mp4", b"data"),
                                                ("DELETE", "/api/predict/jobs/x", None),
                                                ("PATCH", "/api/audit/x/decide", {"id": "a", "decision": "drop"})])
def test_the_app_refuses_state_changes_without_its_page_token(app_client, token, origin, method, path, body):
    """Same-origin-looking (or header-less) requests without this server's token: 403, nothing created."""
    kwargs = {"json": body} if isinstance(body, dict) else {"content": body} if body else {}
    del app_client.headers["X-RDFER-Token"]
    headers = {**origin, **({} if token is None else {"X-RDFER-Token": token})}
    reply = app_client.request(method, path, headers=headers, **kwargs)
    assert reply.status_code == 403, reply.text
    assert "page token refused" in reply.json()["error"] and "\n" not in reply.json()["error"]
    assert _jobs(app_client) == [] and not (app_client.app.state.work.root / "audits").exists()


def test_the_page_carries_a_token_made_anew_for_each_server(tmp_path):
    from test_app_support import page_client

    from rdfer.app.server import create_app

    first, second = (page_client(create_app(tmp_path / "work")) for _ in range(2))
    tokens = [c.headers["X-RDFER-Token"] for c in (first, second)]
    assert tokens[0] != tokens[1] and min(map(len, tokens)) >= 40
    assert first.post("/api/predict/jobs").status_code == 200
    stale = first.post("/api/predict/jobs", headers={"X-RDFER-Token": tokens[1]})  # another server's page
    assert stale.status_code == 403 and "reload that page" in stale.json()["error"]
    ids = {first.post("/api/predict/jobs").json()["id"] for _ in range(3)} | \
        {second.post("/api/predict/jobs").json()["id"] for _ in range(3)}
    assert len(ids) == 6 and len(list((tmp_path / "work" / "jobs").iterdir())) == 7  # one folder each


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), RuntimeError("bug")])
def test_a_failed_upload_leaves_no_partial_file_and_frees_the_server(app_client, monkeypatch, failure):
    from rdfer.app import server

    job = app_client.post("/api/predict/jobs").json()["id"]

    class Failing:
        def __init__(self, path, mode):
            self.file = open(path, mode)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.file.close()

        def write(self, chunk):
            self.file.write(chunk[: len(chunk) // 2])
            raise failure

    monkeypatch.setattr(server, "open", Failing, raising=False)
    reply = app_client.put(f"/api/predict/jobs/{job}/files", params={"name": "clip.mp4"}, content=b"x" * 5000)
    assert reply.status_code in (400, 500) and "\n" not in reply.json()["error"]
    if isinstance(failure, OSError):
        assert reply.json()["error"].startswith("cannot write") and "clip.mp4: no space left" in reply.json()["error"]
    inputs = app_client.app.state.work.root / "jobs" / job / "inputs"
    assert list(inputs.iterdir()) == []  # no partial upload left to fill the disk
    monkeypatch.undo()
    again = app_client.put(f"/api/predict/jobs/{job}/files", params={"name": "clip.mp4"}, content=b"not a video")
    assert again.status_code == 400 and "cannot be decoded" in again.json()["error"]  # not 409: the server is free
    assert app_client.post(f"/api/predict/jobs/{job}/start", json={}).status_code == 400  # "nothing to predict"


def test_an_unexpected_cli_failure_is_one_line_with_the_traceback_in_a_log(tmp_path, monkeypatch):
    """The CLI's boundary: any exception of a command is one line naming the inputs, exit 2."""
    code = ("import sys, rdfer.cli.data as d\n"
            "def boom(args): raise KeyError('internal')\n"
            "real = d.register\n"
            "def register(sub):\n"
            "    real(sub); sub.choices['synth'].set_defaults(func=boom)\n"
            "d.register = register\n"
            "from rdfer.cli import main; sys.exit(main(sys.argv[1:]))\n")
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code, "synth", "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, env={**os.environ, "RDFER_LOG_DIR": str(tmp_path / "logs")}, timeout=120)
    line = assert_one_line_error(done, "unexpected KeyError", str(tmp_path / "o"), "traceback is in")
    assert "Traceback" in next((tmp_path / "logs").iterdir()).read_text(), line
    loud = subprocess.run([sys.executable, "-c", code, "synth", "--out", str(tmp_path / "o")], capture_output=True,
                          text=True, env={**os.environ, "RDFER_DEBUG": "1"}, timeout=120)
    assert loud.returncode == 2 and "Traceback" in loud.stderr


# ----------------------------------------------------------------------------- one bad input in a batch


@pytest.fixture(scope="module")
def three_clips(tmp_path_factory):
    from test_predict_support import fetch_videos, read_frames, write_video

    folder = tmp_path_factory.mktemp("clips")
    frames = read_frames(fetch_videos()["single_face.mp4"], 30)
    return [write_video(folder / f"clip{k}.mp4", frames[10 * k:10 * k + 10]) for k in range(3)]


@pytest.mark.parametrize("step", ["predict", "plot", "annotate"])
def test_one_failing_input_step_is_an_error_row_and_the_batch_goes_on(three_clips, tmp_path, monkeypatch, capsys,
                                                                      step):
    """Whatever step fails for one input (decoding, faces or the model inside predict_video, the plot, the
    annotated copy), that input gets status error, the others are predicted, the tables hold all three."""
    from rdfer.cli import main
    from rdfer.inference import api, runner

    name = {"predict": "predict_video", "plot": "plot_timeline", "annotate": "annotate_video"}[step]
    module = api if step == "predict" else runner
    real = getattr(module, name)

    def fails_on_clip1(*args, **kwargs):
        if "clip1" in str(args[0] if step == "predict" else args[0].video):
            raise ZeroDivisionError("degenerate input")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, fails_on_clip1)
    out = tmp_path / "out"
    code = main(["predict", *map(str, three_clips), "--out", str(out), "--plot", "--annotate", "--jobs", "1",
                 "--no-progress"])
    assert code == 1, capsys.readouterr().err  # 1: some input failed; the run itself completed
    with open(out / "predictions.csv") as f:
        rows = {Path(r["video"]).stem: r for r in csv.DictReader(f)}
    assert sorted(rows) == ["clip0", "clip1", "clip2"]
    assert rows["clip1"]["status"] == "error" and "degenerate input" in rows["clip1"]["error"]
    assert rows["clip0"]["status"] == rows["clip2"]["status"] == "ok"
    assert json.loads((out / "clip1.json").read_text())["status"] == "error"
    assert (out / "clip2_annotated.mp4").is_file() and debris(out) == []


# ----------------------------------------------------------------------------- shared outputs


def test_two_app_servers_sharing_a_work_folder_keep_each_others_decisions(tmp_path):
    from rdfer.app.work import AuditFolders, WorkFolder

    source = tmp_path / "audit"
    source.mkdir()
    (source / "label_issues.csv").write_text("id,given_label,suggested_label\n" +
                                             "".join(f"c{k},Happy,Sad\n" for k in range(6)))
    servers = [AuditFolders(WorkFolder(tmp_path / "work")) for _ in range(2)]
    folders = [server.open(str(source))[1] for server in servers]  # both opened before either decides
    for k in range(6):
        folders[k % 2].decide(f"c{k}", "drop" if k % 3 else "keep")
    with open(folders[0].decisions_path) as f:
        decided = {r["id"]: r["decision"] for r in csv.DictReader(f)}
    assert decided == {f"c{k}": "drop" if k % 3 else "keep" for k in range(6)}
    assert debris(tmp_path / "work") == [] and not list((tmp_path / "work").rglob("*.lock"))


def test_concurrent_appenders_to_one_table_lose_no_row(tmp_path):
    """Writers appending to shared batch tables (CsvTables.add) at once: every row of every writer is there."""
    import subprocess
    import sys

    from rdfer.inference.outputs import CsvTables

    CsvTables(tmp_path / "p.csv", tmp_path / "f.csv", ["A"])  # the header, once
    code = ("import sys; from pathlib import Path; from rdfer.inference.outputs import CsvTables\n"
            "from rdfer.inference.records import VideoPrediction\n"
            "t = CsvTables(Path(sys.argv[1]), Path(sys.argv[2]), ['A'])\n"
            "for k in range(25):\n"
            "    t.add(VideoPrediction(f'{sys.argv[3]}-{k}.mp4', None, 0, 0, 'error', 'x', 'm'))\n")
    writers = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "p.csv"), str(tmp_path / "f.csv"), w])
               for w in ("a", "b", "c")]
    assert [w.wait(timeout=300) for w in writers] == [0, 0, 0]
    with open(tmp_path / "p.csv") as f:
        videos = sorted(r["video"] for r in csv.DictReader(f))
    assert videos == sorted(f"{w}-{k}.mp4" for w in "abc" for k in range(25))
    assert debris(tmp_path) == []


def test_tables_of_another_model_merge_by_column(tmp_path):
    """A run with other classes adds its columns; every earlier row keeps its values, blank in the new ones."""
    from rdfer.inference.outputs import CsvTables
    from rdfer.inference.records import VideoPrediction

    CsvTables(tmp_path / "p.csv", tmp_path / "f.csv", ["A"]).add(VideoPrediction("a.mp4", None, 0, 0, "error", "x", "m1"))
    CsvTables(tmp_path / "p.csv", tmp_path / "f.csv", ["A", "B"]).add(VideoPrediction("b.mp4", None, 0, 0, "no_face",
                                                                                   None, "m2"))
    with open(tmp_path / "p.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["video"], r["status"], r["model"]) for r in rows] == [("a.mp4", "error", "m1"), ("b.mp4", "no_face", "m2")]
    assert list(rows[0])[-2:] == ["p_A", "p_B"] and rows[0]["p_B"] == ""


def test_two_writers_interleaved_keep_one_copy_of_a_video_and_every_other(tmp_path):
    """Writer A opens the tables; B adds w.mp4 and v.mp4; A adds v.mp4 (predicted again) and x.mp4: v's rows are
    A's only, w's (B's) are kept. A must notice B's rewrite instead of appending to what it last saw."""
    from rdfer.inference.outputs import CsvTables
    from rdfer.inference.records import VideoPrediction

    def record(video, model):
        return VideoPrediction(video, None, 0, 0, "error", "x", model)

    a = CsvTables(tmp_path / "p.csv", tmp_path / "f.csv", ["A"])
    b = CsvTables(tmp_path / "p.csv", tmp_path / "f.csv", ["A"])
    b.add(record("w.mp4", "B"))
    b.add(record("v.mp4", "B"))
    a.add(record("v.mp4", "A"))
    a.add(record("x.mp4", "A"))
    with open(tmp_path / "p.csv") as f:
        assert [(r["video"], r["model"]) for r in csv.DictReader(f)] == [("w.mp4", "B"), ("v.mp4", "A"), ("x.mp4", "A")]
    assert a.replaced == ["v.mp4"] and b.replaced == []


def _predict_inputs(clips, folder):
    """Four inputs for two runs: clip0, clip1 (run 1); clip2 and other/clip0.mp4, another video of the same
    name (run 2), so that both runs claim the name clip0 at about the same time."""
    other = folder / "other"
    other.mkdir()
    shutil.copyfile(clips[2], other / "clip0.mp4")
    return [clips[0], clips[1]], [clips[2], other / "clip0.mp4"]


def test_two_predict_runs_into_one_out_both_keep_every_video(three_clips, tmp_path):
    """Two `rdfer predict` started together into one --out: both finish, and the tables and the JSON files
    hold every video of both, none twice, none under another's name (the old behaviour: one was refused)."""
    out = tmp_path / "out"
    first, second = _predict_inputs(three_clips, tmp_path)
    runs = [start_rdfer("predict", *inputs, "--out", out, "--jobs", "1", "--no-progress") for inputs in (first, second)]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in runs]
    for p in runs:
        p.stdout.close()
        p.stderr.close()
    assert [code for code, _, _ in results] == [0, 0], results
    videos = {str(v) for v in first + second}
    with open(out / "predictions.csv") as f:
        assert sorted(r["video"] for r in csv.DictReader(f)) == sorted(videos)
    with open(out / "frames.csv") as f:
        frames = [r["video"] for r in csv.DictReader(f)]
    assert {v: frames.count(v) for v in videos} == {v: 10 for v in videos}
    written = {json.loads(p.read_text())["video"] for p in out.glob("*.json")}
    assert written == videos and len(list(out.glob("*.json"))) == 4  # clip0.json and clip0-2.json, one each
    assert debris(out) == [] and not list(out.glob(".*lock")) and not list(tmp_path.glob(".*lock"))


def _plant(out, kind):
    """Something in --out that is not a predict table rdfer may merge into; returns {name: bytes} to keep."""
    victim = out.parent / "victim.csv"
    victim.write_text("video,status\nsomeone else's,ok\n")
    if kind == "link":
        (out / "predictions.csv").symlink_to(victim)
    elif kind == "binary":
        (out / "predictions.csv").write_bytes(bytes(range(256)) * 4)
    elif kind == "other header":
        (out / "frames.csv").write_text("clip_id,path,label\n1,a,Happy\n")
        (out / "predictions.csv").write_text("video,status\n")  # rdfer's, but its partner is not
    elif kind == "folder":
        (out / "frames.csv").mkdir()
    return {p: p.read_bytes() for p in [victim, *out.iterdir()] if p.is_file()}


@pytest.mark.parametrize("kind", ["link", "binary", "other header", "folder"])
def test_predict_never_merges_into_what_is_not_its_table(three_clips, tmp_path, kind):
    out = tmp_path / "out"
    out.mkdir()
    kept = _plant(out, kind)
    done = run_rdfer("predict", three_clips[0], "--out", out, "--format", "csv", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "predictions.csv -> predictions-2.csv, frames.csv -> frames-2.csv (the first are not rdfer's" in done.stdout
    assert {p: p.read_bytes() for p in kept} == kept
    with open(out / "predictions-2.csv") as f:
        assert [r["video"] for r in csv.DictReader(f)] == [str(three_clips[0])]


def test_a_json_of_another_video_is_never_replaced(three_clips, tmp_path):
    """clip0.json in --out is rdfer's, but of another video of that name: the rerun takes clip0-2."""
    out = tmp_path / "out"
    out.mkdir()
    other = json.dumps({"video": "/elsewhere/clip0.mp4", "status": "ok"})
    (out / "clip0.json").write_text(other)
    done = run_rdfer("predict", three_clips[0], "--out", out, "--format", "json", "--no-progress")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "clip0.json").read_text() == other and "clip0.mp4 -> clip0-2.*" in done.stdout
    assert json.loads((out / "clip0-2.json").read_text())["video"] == str(three_clips[0])
    assert "replaced" not in done.stdout


def test_a_predict_run_waits_for_the_folders_writer_and_says_so(three_clips, tmp_path):
    """Another process holds the folder's output lock: predict waits, saying so in one line, and writes its
    outputs once the lock is let go; nothing is refused, nothing lost."""
    out = tmp_path / "out"
    out.mkdir()
    with Holder(f"update_lock({str(out / 'rdfer-predict')!r})") as holder:
        run = start_rdfer("predict", three_clips[0], "--out", out, "--no-progress")
        line = "start"
        while line and "waiting" not in line:  # the run blocks until it has said that it waits (or ended)
            line = run.stderr.readline()
        assert f"waiting for another rdfer process writing into {out} (process {holder.pid})" in line, line
        assert not (out / "predictions.csv").exists()  # nothing written while the other holds the lock
    assert run.wait(timeout=300) == 0, run.stderr.read()[-2000:]
    run.stdout.close()
    run.stderr.close()
    with open(out / "predictions.csv") as f:
        assert [r["video"] for r in csv.DictReader(f)] == [str(three_clips[0])]
    assert not list(out.glob(".*lock"))


def test_predict_shares_its_folder_with_predict_runs_only(tmp_path):
    """`predict` holds its --out shared: a second predict runs beside it, another command stops at once."""
    from rdfer.errors import RdferError
    from rdfer.utils.runlock import run_lock

    out = tmp_path / "out"
    with Holder(f"run_lock({str(out)!r}, 'predict', shared=True)") as holder:
        with pytest.raises(RdferError, match=f"in use by another run .rdfer predict, process {holder.pid}"):
            with run_lock(out, "train"):
                pass
        with run_lock(out, "predict", shared=True):
            pass
        assert (tmp_path / ".out.lock").exists()  # still the holder's: a shared holder leaving keeps it
    with run_lock(out, "train"):  # the holder is gone: free
        pass
    assert not (tmp_path / ".out.lock").exists()


@pytest.mark.parametrize("command", [["export", "--out", "{out}"], ["report", "{out}"],
                                     ["compare", "{out}", "{out}", "--out", "{out}"]])
def test_single_output_commands_refuse_an_output_in_use(tmp_path, capsys, command):
    """export (a model file and its sidecar), report and compare lock their output: a second writer (or a
    training still writing the run) stops at once instead of mixing its files with the other's."""
    from rdfer.cli import main

    out = tmp_path / ("model.onnx" if command[0] == "export" else "run")
    if command[0] != "export":
        out.mkdir()  # report and compare read the run (an input must exist) and write beside its files
    with Holder(f"run_lock({str(out)!r}, 'train')") as holder:
        assert main([part.format(out=out) for part in command]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"in use by another run (rdfer train, process {holder.pid})" in err
        assert (not out.exists()) if command[0] == "export" else list(out.iterdir()) == []


# ----------------------------------------------------------------------------- bounded inputs, early refusals

BOMB = "".join(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * 9) if k else 'x'}]\n" for k in range(9))


@pytest.mark.parametrize("text, needle", [(BOMB, "aliases expand to more than"),
                                          ("optim: " + "[" * 3000 + "]" * 3000, "not valid YAML"),
                                          ("# padding\n" * 150_000, "more than the")])
def test_a_hostile_config_is_one_line_before_any_work(tmp_path, capsys, text, needle):
    from rdfer.cli import main

    config = tmp_path / "hostile.yaml"
    config.write_text(text)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "hostile.yaml" in err and needle in err, err
    assert not (tmp_path / "run").exists()


def test_settings_whose_product_no_memory_holds_are_refused_before_loading(bench, tmp_path, capsys):
    from rdfer.cli import main

    code = main(["train", "--config", "demo", "--out", str(tmp_path / "run"), "--no-progress",
                 *_sets(f"data.root={bench['root']}", *TINY[:1], "optim.batch_size=16384",
                        "model.options.input_size=1024")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "GiB of frames" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_train_into_an_eval_folder_is_refused_before_replacing_it(bench, tmp_path, capsys):
    from rdfer.cli import main

    out = tmp_path / "eval"
    done = run_rdfer("eval", "--checkpoint", bench["run"] / "checkpoints" / "last.pt", "--out", out,
                     "--no-progress", "--workers", 0)
    assert done.returncode == 0, done.stderr[-2000:]
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code = main(["train", "--config", "demo", "--out", str(out), "--no-progress",
                 *_sets(f"data.root={bench['root']}", "optim.epochs=1", *TINY)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is an evaluation folder of rdfer eval" in err, err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_study_refuses_a_mistyped_set_before_rendering(tmp_path, capsys, monkeypatch):
    from rdfer.cli import main
    from rdfer.engine import study

    monkeypatch.setattr(study, "prepare_data", lambda *a, **k: pytest.fail("rendered before checking --set"))
    assert main(["study", "--out", str(tmp_path / "s"), "--set", "optim.lrr=1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "optim.lrr" in err, err


def _vfr_mkv(path):
    """20 frames, 10 at 25 fps then 10 at 6.25 fps, in Matroska declaring 25 fps: OpenCV announces ~47 frames."""
    from fractions import Fraction

    import av
    import numpy as np

    out = av.open(str(path), "w", format="matroska")
    stream = out.add_stream("mjpeg", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 64, "yuvj420p"
    for k, pts in enumerate([40 * i for i in range(10)] + [400 + 160 * i for i in range(10)]):
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 10 * k, np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return path


def test_a_complete_variable_frame_rate_matroska_is_not_called_cut_off(tmp_path):
    from rdfer.inference import predict_video
    from rdfer.inference.video import open_media

    whole = _vfr_mkv(tmp_path / "vfr.mkv")
    with open_media(whole) as reader:
        assert reader.frame_count_hint > 40  # the container's estimate: duration x nominal rate
    record = predict_video(whole, detector="haar")
    assert record.num_frames == 20 and record.warning is None, record.warning
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])  # a cut-off copy: it is warned about
    record = predict_video(cut, detector="haar")
    assert record.warning and "could be decoded" in record.warning


def test_a_kill_while_predict_annotates_leaves_nothing_after_the_next_run(three_clips, tmp_path):
    out = tmp_path / "out"
    args = ["predict", three_clips[0], "--out", out, "--annotate", "--format", "json", "--no-progress"]
    kill_at_first_write(args, out, pattern="_annotated.mp4")
    assert any("_annotated.mp4" in name for name in debris(out))  # the temporary video, mid-write
    done = run_rdfer(*args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert debris(out) == [] and (out / "clip0_annotated.mp4").is_file()
