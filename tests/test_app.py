"""`rdfer app`: every page action through the HTTP API (FastAPI's test client), bad input included."""

import csv
import io
import json
import os
from pathlib import Path

import pytest
import torch
from fastapi.testclient import TestClient
from test_app_support import AUDIT_ROWS, make_audit_folder, page_client, read_decisions, wait_for_job
from test_predict_support import feat_videos, read_frames, write_video  # noqa: F401

import rdfer
from rdfer.app.server import STATIC, create_app
from rdfer.audit.verdict import ISSUE_COLUMNS
from rdfer.cli import main
from rdfer.labels import DFEW_CLASSES
from rdfer.models.checkpoint import model_state
from rdfer.synth import write_synthetic


@pytest.fixture
def client(tmp_path, one_torch_thread):
    return page_client(create_app(tmp_path / "work", max_upload_mb=5))


def _upload(client, job_id, name, data):
    return client.put(f"/api/predict/jobs/{job_id}/files", params={"name": name}, content=data)


# ----------------------------------------------------------------------------- predict


def test_predict_uploads_show_label_trust_timeline_thumbnails_and_downloads(client, feat_videos, tmp_path):  # noqa: F811
    job = client.post("/api/predict/jobs").json()
    for name in ("single_face.mp4", "no_face.mp4"):
        reply = _upload(client, job["id"], name, feat_videos[name].read_bytes())
        assert reply.status_code == 200, reply.text
    assert reply.json()["files"] == ["single_face.mp4", "no_face.mp4"]
    assert client.post(f"/api/predict/jobs/{job['id']}/start", json={}).json()["state"] == "running"
    done = wait_for_job(client, job["id"])
    assert done["state"] == "done" and done["done"] == done["total"] == 2
    face, no_face = done["results"]

    assert face["status"] == "ok" and len(face["tracks"]) == 1
    track = face["tracks"][0]
    saved = json.loads(client.get(face["downloads"]["json"]).content)  # what `rdfer predict` writes
    saved_track = saved["tracks"][0]
    assert track["id"] == saved_track["id"] and track["label"] == saved_track["label"] in DFEW_CLASSES
    assert track["probabilities"] == saved_track["probabilities"]
    assert (track["trust"], track["trust_name"]) == (saved_track["trust"], "trust") and 0 <= track["trust"] <= 1
    assert track["agreement"] == saved_track["agreement"]
    assert track["key_expression"] == saved_track["key_expression"]
    assert track["classes"] == list(DFEW_CLASSES)
    assert track["timeline"]["time_s"] == [e["time_s"] for e in saved_track["timeline"]]
    assert len(track["timeline"]["time_s"]) >= 65  # 72 frames, a face throughout
    assert track["timeline"]["probabilities"]["Happy"] == [(e["probabilities"] or {}).get("Happy")
                                                          for e in saved_track["timeline"]]
    assert 1 <= len(track["thumbnails"]) <= 10
    thumb = client.get(track["thumbnails"][0]["url"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"  # a JPEG
    video = client.get(face["downloads"]["annotated video"] + "?download=1")
    assert video.status_code == 200 and len(video.content) > 10000
    assert "attachment" in video.headers["content-disposition"]

    assert no_face["status"] == "no_face" and no_face["tracks"] == []
    assert "no face" in no_face["error"]
    table = list(csv.DictReader(io.StringIO(client.get(done["downloads"]["predictions.csv"]).text)))
    assert [r["status"] for r in table] == ["ok", "no_face"]
    frames = list(csv.DictReader(io.StringIO(client.get(done["downloads"]["frames.csv"]).text)))
    assert sum(r["label"] != "" for r in frames) >= 65


def test_bad_uploads_get_a_one_line_message(client, feat_videos):  # noqa: F811
    job = client.post("/api/predict/jobs").json()["id"]
    video = feat_videos["single_face.mp4"].read_bytes()
    cases = {
        ("notes.txt", b"hello"): (400, "not a video or image"),
        ("empty.mp4", b""): (400, "is empty"),
        ("cut.mp4", video[:4000]): (400, "cannot be decoded as a video"),
        ("fake.mp4", b"this is not a video at all" * 100): (400, "cannot be decoded as a video"),
        ("fake.jpg", b"not a picture" * 10): (400, "cannot be decoded as an image"),
        ("huge.mp4", b"\0" * (5 * 2**20 + 1)): (413, "larger than the upload limit of 5 MB"),
    }
    for (name, data), (status, text) in cases.items():
        reply = _upload(client, job, name, data)
        assert reply.status_code == status, (name, reply.text)
        assert text in reply.json()["error"] and "Traceback" not in reply.text
    assert client.get(f"/api/predict/jobs/{job}").json()["uploaded"] == []  # nothing refused was kept
    inputs = client.app.state.work.root / "jobs" / job / "inputs"
    assert [p.name for p in inputs.iterdir()] == []  # no partial files left either
    reply = client.post(f"/api/predict/jobs/{job}/start", json={})
    assert reply.status_code == 400 and "nothing to predict" in reply.json()["error"]


def test_an_upload_while_another_runs_is_refused_not_queued(client, feat_videos):  # noqa: F811
    jobs = client.app.state.jobs
    first = client.post("/api/predict/jobs").json()["id"]
    second = client.post("/api/predict/jobs").json()["id"]
    held = jobs.begin_upload(first, "slow.mp4", 10)  # an upload in progress in another tab
    reply = _upload(client, second, "single_face.mp4", feat_videos["single_face.mp4"].read_bytes())
    assert reply.status_code == 409 and "an upload (slow.mp4) is in progress" in reply.json()["error"]
    reply = client.post(f"/api/predict/jobs/{second}/start", json={"folder": str(feat_videos["single_face.mp4"].parent)})
    assert reply.status_code == 409
    with pytest.raises(Exception, match="interrupted"):
        jobs.end_upload(*held, "slow.mp4", 10, ok=False)
    assert _upload(client, second, "single_face.mp4", feat_videos["single_face.mp4"].read_bytes()).status_code == 200


def test_folder_checkpoint_and_job_errors_are_messages(client, tmp_path):
    job = client.post("/api/predict/jobs").json()["id"]
    (tmp_path / "novideos").mkdir()
    (tmp_path / "novideos" / "readme.txt").write_text("x")
    for body, text in (({"folder": str(tmp_path / "missing")}, "no such folder"),
                       ({"folder": str(tmp_path / "novideos")}, "no video"),
                       ({"folder": str(tmp_path / "novideos"), "checkpoint": "/nowhere/best.pt"}, "no video")):
        reply = client.post(f"/api/predict/jobs/{job}/start", json=body)
        assert reply.status_code == 400 and text in reply.json()["error"], reply.text
    (tmp_path / "novideos" / "a.mp4").write_bytes(b"x")
    reply = client.post(f"/api/predict/jobs/{job}/start",
                        json={"folder": str(tmp_path / "novideos"), "checkpoint": str(tmp_path / "best.pt")})
    assert reply.status_code == 400 and "no such file" in reply.json()["error"]
    (tmp_path / "best.pt").write_bytes(b"not a checkpoint")
    reply = client.post(f"/api/predict/jobs/{job}/start",
                        json={"folder": str(tmp_path / "novideos"), "checkpoint": str(tmp_path / "best.pt")})
    assert reply.status_code == 400 and "best.pt" in reply.json()["error"] and "Traceback" not in reply.text
    reply = client.get("/api/predict/jobs/nosuchjob")
    assert reply.status_code == 400 and "no prediction job" in reply.json()["error"]


def test_a_folder_is_read_in_place_and_a_broken_file_is_a_result_not_a_crash(client, feat_videos, tmp_path):  # noqa: F811
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(feat_videos["single_face.mp4"].read_bytes()[:4000])
    job = client.post("/api/predict/jobs").json()["id"]
    assert client.post(f"/api/predict/jobs/{job}/start", json={"folder": str(folder)}).status_code == 200
    done = wait_for_job(client, job)
    assert done["state"] == "done"
    [result] = done["results"]
    assert result["status"] == "error" and "broken.mp4" in result["error"]
    assert sorted(p.name for p in folder.iterdir()) == ["broken.mp4"]  # nothing written beside the input


# ----------------------------------------------------------------------------- serving files


def test_no_file_outside_the_work_folder_is_served(client, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    work = client.app.state.work.root
    (work / "jobs").mkdir(exist_ok=True)
    (work / "jobs" / "inside.txt").write_text("fine")
    os.symlink(secret, work / "jobs" / "link.txt")
    assert client.get("/files/jobs/inside.txt").text == "fine"
    for url in ("/files/../secret.txt", "/files/..%2Fsecret.txt", "/files/jobs/..%2F..%2Fsecret.txt",
                "/files/%2E%2E/%2E%2E/secret.txt", f"/files/{secret}", f"/files/%2F{str(secret)[1:]}",
                "/files/jobs/link.txt", "/static/..%2Fserver.py", "/static/server.py", "/files/jobs%00/x"):
        reply = client.get(url)
        assert reply.status_code in (400, 404), url
        assert "top secret" not in reply.text and "import" not in reply.text, url


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>rdfer</title>" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for name in ("index.html", "app.js", "app.css"):
        text = (STATIC / name).read_text()
        urls = [w for w in text.split() if "http://" in w or "https://" in w]
        assert [u for u in urls if "www.w3.org/2000/svg" not in u] == [], name
    for url in ("/docs", "/redoc", "/openapi.json"):  # FastAPI's docs pages load scripts from a CDN: off
        assert client.get(url).status_code == 404


def test_only_loopback_host_names_when_allowed_hosts_are_set(tmp_path):
    guarded = page_client(create_app(tmp_path / "work", allowed_hosts={"127.0.0.1", "localhost"}),
                         base_url="http://127.0.0.1:8765")
    assert guarded.get("/api/info").status_code == 200
    reply = guarded.get("/api/info", headers={"host": "attacker.example:8765"})
    assert reply.status_code == 400 and "refused" in reply.json()["error"]


# ----------------------------------------------------------------------------- audit


def test_audit_page_lists_clips_by_score_and_writes_every_decision(client, tmp_path):
    audit = make_audit_folder(tmp_path)
    opened = client.post("/api/audit/open", json={"folder": str(audit)}).json()
    key = opened["key"]
    assert [r["id"] for r in opened["rows"]] == ["00003", "00042", "00017", "00101"]  # score, highest first
    first = opened["rows"][0]
    assert (first["given_label"], first["suggested_label"], first["agreement"], first["kind"]) == \
        ("Neutral", "Angry", 1.0, "mislabelled")
    assert opened["classes"] == list(DFEW_CLASSES) and opened["kinds"] == ["hard", "mislabelled"]
    assert first["flagged_by"] == ["rdfer", "combined"]
    home = client.app.state.work.root / "audits" / key
    assert opened["decisions_file"] == str(home / "decisions.csv")

    preview = client.get(f"/api/audit/{key}/preview", params={"id": "00017"})
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"

    reply = client.post(f"/api/audit/{key}/decide", json={"id": "00017", "decision": "relabel", "new_label": "Sad"})
    assert reply.json() == {"id": "00017", "decision": "relabel", "new_label": "Sad", "decided": 1}
    client.post(f"/api/audit/{key}/decide", json={"id": "00003", "decision": "drop"})
    client.post(f"/api/audit/{key}/decide", json={"id": "00101", "decision": "keep", "new_label": "Happy"})
    rows = read_decisions(home)
    assert list(rows) == ["00003", "00042", "00017", "00101"]  # every listed clip, undecided ones empty
    assert (rows["00017"]["decision"], rows["00017"]["new_label"]) == ("relabel", "Sad")
    assert (rows["00003"]["decision"], rows["00101"]["decision"], rows["00101"]["new_label"]) == ("drop", "keep", "")
    assert rows["00042"]["decision"] == "" and rows["00017"]["given_label"] == "Happy"
    client.post(f"/api/audit/{key}/decide", json={"id": "00003", "decision": ""})  # undo
    assert read_decisions(home)["00003"]["decision"] == ""
    # No temporary file left; the audit's audit.json beside the decisions, for `rdfer audit --apply`.
    assert sorted(p.name for p in home.iterdir()) == ["audit.json", "decisions.csv", "previews"]
    assert (home / "audit.json").read_text() == (audit / "audit.json").read_text()

    # A reload, or a new server on the same work folder, shows the decisions made so far.
    again = page_client(create_app(client.app.state.work.root)).post("/api/audit/open", json={"folder": str(audit)})
    decided = {r["id"]: (r["decision"], r["new_label"]) for r in again.json()["rows"] if r["decision"]}
    assert decided == {"00017": ("relabel", "Sad"), "00101": ("keep", "")}
    assert len(AUDIT_ROWS) == len(again.json()["rows"])


def test_audit_bad_input_is_a_message(client, tmp_path):
    (tmp_path / "plain").mkdir()
    for folder, text in ((str(tmp_path / "plain"), "is not an rdfer audit folder"),
                         (str(tmp_path / "missing"), "no such folder"), ("", "give the path")):
        reply = client.post("/api/audit/open", json={"folder": folder})
        assert reply.status_code == 400 and text in reply.json()["error"]
    (tmp_path / "plain" / "label_issues.csv").write_text("a,b\n1,2\n")
    reply = client.post("/api/audit/open", json={"folder": str(tmp_path / "plain")})
    assert reply.status_code == 400 and "no id and given_label columns" in reply.json()["error"]

    audit = make_audit_folder(tmp_path / "x")
    key = client.post("/api/audit/open", json={"folder": str(audit)}).json()["key"]
    for body, text in (({"id": "nope", "decision": "keep"}, "is not in"),
                       ({"id": "00017", "decision": "burn"}, "choose keep, relabel or drop"),
                       ({"id": "00017", "decision": "relabel", "new_label": "Bored"}, "choose one of Happy")):
        reply = client.post(f"/api/audit/{key}/decide", json=body)
        assert reply.status_code == 400 and text in reply.json()["error"]
    assert not (client.app.state.work.root / "audits" / key / "decisions.csv").exists()
    for clip in (tmp_path / "x" / "clips" / "00042").iterdir():
        clip.unlink()
    reply = client.get(f"/api/audit/{key}/preview", params={"id": "00042"})
    assert reply.status_code == 400 and "no frames for clip 00042" in reply.json()["error"]
    assert client.get("/api/audit/unknown-key").status_code == 400


def test_cli_refuses_bad_options_with_one_line(capsys):
    assert main(["app", "--port", "70000"]) == 2
    assert "--port: 70000" in capsys.readouterr().err
    assert main(["app", "--max-upload-mb", "0"]) == 2


def test_a_checkpoint_of_your_own_and_an_image(client, feat_videos, tmp_path):  # noqa: F811
    torch.manual_seed(0)
    classes = ["Joy", "Gloom", "Calm", "Rage", "Shock", "Disgust", "Fear"]
    checkpoint = tmp_path / "best.pt"
    torch.save({**model_state(rdfer.create_model("rdfer_tiny")), "classes": classes}, checkpoint)
    clip = write_video(tmp_path / "clip.mp4", read_frames(feat_videos["single_face.mp4"], 20))
    job = client.post("/api/predict/jobs").json()["id"]
    for path in (clip, feat_videos["45-m7-di-ph.jpg"]):
        assert _upload(client, job, path.name, path.read_bytes()).status_code == 200
    assert client.post(f"/api/predict/jobs/{job}/start", json={"checkpoint": str(checkpoint)}).status_code == 200
    done = wait_for_job(client, job)
    assert done["state"] == "done" and "rdfer_tiny from checkpoint" in done["model"]
    video, image = done["results"]
    assert video["status"] == image["status"] == "ok"
    assert video["tracks"][0]["classes"] == classes and video["tracks"][0]["label"] in classes
    assert 18 <= len(video["tracks"][0]["timeline"]["time_s"]) <= 20
    assert image["num_frames"] == 1 and image["tracks"][0]["agreement"] is None  # agreement needs 4 face frames


def test_jobs_with_one_model_load_it_once(client, feat_videos, tmp_path, monkeypatch):  # noqa: F811
    """Two uploads in two jobs with the built-in model: one load; then a checkpoint: one more, and the same
    checkpoint again: none; rewritten on disk: loaded again."""
    import rdfer.inference.api as api

    loaded = []
    real = api.load_predictor
    monkeypatch.setattr(api, "load_predictor", lambda *a, **k: loaded.append(a[0]) or real(*a, **k))
    image = feat_videos["45-m7-di-ph.jpg"]
    checkpoint = tmp_path / "best.pt"
    torch.save(model_state(rdfer.create_model("rdfer_tiny")), checkpoint)

    def job(model=None):
        job = client.post("/api/predict/jobs").json()["id"]
        assert _upload(client, job, image.name, image.read_bytes()).status_code == 200
        assert client.post(f"/api/predict/jobs/{job}/start", json={"checkpoint": model}).status_code == 200
        assert wait_for_job(client, job)["state"] == "done"

    job()
    job()
    assert loaded == [None]
    job(str(checkpoint))
    job(str(checkpoint))
    assert loaded == [None, str(checkpoint)]
    torch.save(model_state(rdfer.create_model("rdfer_tiny")), checkpoint)
    os.utime(checkpoint, ns=(1, 1))  # another file now, whatever the clock's resolution
    job(str(checkpoint))
    assert loaded == [None, str(checkpoint), str(checkpoint)]


def test_the_predictor_cache_is_bounded_and_loads_once_under_threads():
    import threading
    import time

    from rdfer.app.predict import PredictorCache
    from rdfer.inference.predict import PredictOptions

    loads = []

    def load(checkpoint, **options):
        loads.append((checkpoint, options["detector"]))
        time.sleep(0.05)  # slow enough for the threads to ask at once
        return object()

    cache = PredictorCache(size=2, load=load)
    haar, mtcnn = PredictOptions(detector="haar"), PredictOptions()
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(None, haar))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [(None, "haar")] and len({id(g) for g in got}) == 1
    cache.get(None, mtcnn)  # a second model: both kept
    cache.get(None, haar)
    assert len(loads) == 2
    cache.get(None, PredictOptions(detector="haar", min_face=80))  # a third: the least recently used goes
    cache.get(None, haar)
    assert len(loads) == 3 and len(cache._items) == 2
    cache.get(None, mtcnn)  # it was dropped: loaded again
    assert len(loads) == 4


def test_every_face_of_a_group_photo_is_a_track_on_the_page(client, feat_videos):  # noqa: F811
    job = client.post("/api/predict/jobs").json()["id"]
    photo = feat_videos["multi_face.jpg"]
    assert _upload(client, job, photo.name, photo.read_bytes()).status_code == 200
    client.post(f"/api/predict/jobs/{job}/start", json={})
    [result] = wait_for_job(client, job)["results"]
    saved = json.loads(client.get(result["downloads"]["json"]).content)
    assert result["status"] == "ok" and len(result["tracks"]) == len(saved["tracks"]) >= 4
    assert [(t["id"], t["label"], t["trust"]) for t in result["tracks"]] == \
        [(t["id"], t["label"], t["trust"]) for t in saved["tracks"]]  # longest first, as rdfer predict
    # The page's headline is rdfer predict's: the group line, no main face on a group photo.
    assert result["summary"] == saved["summary"]["text"] and result["summary"].startswith(f"{len(saved['tracks'])} faces: ")
    assert result["main_face"] is None and not any(t["main"] for t in result["tracks"])
    assert len({t["thumbnails"][0]["url"] for t in result["tracks"]}) == len(result["tracks"])  # each its own face
    assert "annotated image" in result["downloads"]


def test_an_unexpected_failure_is_one_line_not_a_traceback(tmp_path, monkeypatch):
    app = create_app(tmp_path / "work")

    def broken(folder):
        raise ValueError("disk on fire")

    monkeypatch.setattr(app.state.audits, "open", broken)
    reply = page_client(app, raise_server_exceptions=False).post("/api/audit/open", json={"folder": "x"})
    assert reply.status_code == 500 and "Traceback" not in reply.text
    error = reply.json()["error"]
    assert error.startswith("unexpected ValueError while processing /api/audit/open: disk on fire") and "\n" not in error
    log = Path(error.split("the traceback is in ")[1].split(" (set RDFER_DEBUG")[0])
    assert "Traceback" in log.read_text() and "disk on fire" in log.read_text()  # the details: in a log file


def test_the_pages_decisions_are_what_rdfer_audit_apply_reads(client, tmp_path, capsys):
    """The loop a curator runs: an audit folder, two clicks on the page, then `rdfer audit --apply`."""
    root = tmp_path / "synth"
    write_synthetic(root, layout="dfew", clips=20, noise=0.3, seed=5, size=16, progress=False, workers=1)
    with open(root / "ground_truth.csv") as f:
        truth = {r["video_name"]: r for r in csv.DictReader(f)}
    relabel, drop = sorted(c for c, r in truth.items() if r["given_label"] != "3")[:2]
    audit = tmp_path / "audit"
    audit.mkdir()
    (audit / "audit.json").write_text(json.dumps({"settings": {"config": {"data": {"dataset": "dfew",
                                                                                    "root": str(root)}}}}))
    with open(audit / "label_issues.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ISSUE_COLUMNS)
        for rank, clip in enumerate((relabel, drop), 1):
            given = DFEW_CLASSES[int(truth[clip]["given_label"]) - 1]
            row = {"rank": rank, "id": clip, "given_label": given, "suggested_label": "Neutral", "score": 1 / rank,
                   "verdict": "mislabelled", "kind": "likely mislabelled"}
            writer.writerow([row.get(c, "") for c in ISSUE_COLUMNS])
    key = client.post("/api/audit/open", json={"folder": str(audit)}).json()["key"]
    client.post(f"/api/audit/{key}/decide", json={"id": relabel, "decision": "relabel", "new_label": "Neutral"})
    client.post(f"/api/audit/{key}/decide", json={"id": drop, "decision": "drop"})
    decisions = client.app.state.work.root / "audits" / key / "decisions.csv"
    capsys.readouterr()
    assert main(["audit", "--apply", str(decisions), "--out", str(tmp_path / "fixed")]) == 0  # no --config needed
    printed = capsys.readouterr().out
    assert "keep 0, relabel 1, drop 1" in printed and "2 clip(s) changed" in printed
    with open(tmp_path / "fixed" / "changes.csv") as f:
        changes = list(csv.DictReader(f))
    assert {(r["id"], r["decision"], r["new_label"]) for r in changes} == {(relabel, "relabel", "Neutral"),
                                                                           (drop, "drop", "")}
