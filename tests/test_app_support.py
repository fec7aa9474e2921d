"""Shared by the `rdfer app` tests: a small `rdfer audit` folder and a job-polling helper. No tests here."""

import csv
import re
import time
from pathlib import Path

from fixtures_data import write_frames

from rdfer.audit.verdict import HARD, ISSUE_COLUMNS, MISLABELLED, VERDICT_WORDS
from rdfer.labels import DFEW_CLASSES

# (clip_id, given, suggested, score, agreement, kind): deliberately not in score order in the file.
AUDIT_ROWS = (
    ("00017", "Happy", "Sad", 0.42, 0.75, MISLABELLED),
    ("00003", "Neutral", "Angry", 0.91, 1.00, MISLABELLED),
    ("00101", "Fear", "Surprise", 0.30, 0.50, HARD),
    ("00042", "Sad", "Sad", 0.65, 0.50, HARD),
)


def make_audit_folder(root: Path) -> Path:
    """An audit folder as `rdfer audit` writes it (label_issues.csv with an extra column, oof_predictions.csv
    header, clips as frame folders); returns the folder."""
    audit = root / "audit"
    audit.mkdir(parents=True)
    with open(audit / "label_issues.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*ISSUE_COLUMNS, "reviewer_note"])  # a column the page must not trip over
        for rank, (clip_id, given, suggested, score, agreement, kind) in enumerate(AUDIT_ROWS, 1):
            frames = root / "clips" / clip_id
            write_frames(frames, 10, size=64)
            values = {"rank": rank, "id": clip_id, "clip_id": clip_id, "given_label": given, "suggested_label": suggested,
                      "score": score, "agreement": agreement, "kind": kind, "verdict": VERDICT_WORDS[kind],
                      "p_given": 0.1, "p_suggested": 0.8,
                      "fold": 1, "path": str(frames), "rdfer_issue": int(kind == MISLABELLED),
                      "combined_issue": int(kind == MISLABELLED)}
            writer.writerow([values.get(c, 0) for c in ISSUE_COLUMNS] + ["looked at it"])
    (audit / "audit.json").write_text('{"settings": {"config": {"data": {"dataset": "dfew", "root": "/data"}}}}')
    with open(audit / "oof_predictions.csv", "w", newline="") as f:
        csv.writer(f).writerow(["clip_id", "path", "fold", "label", "prediction", "agreement", "clip_predictions",
                                *(f"p_{c}" for c in DFEW_CLASSES)])
    return audit


def read_decisions(audit_home: Path) -> dict:
    with open(audit_home / "decisions.csv", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def wait_for_job(client, job_id: str, timeout: float = 180.0) -> dict:
    """Poll a prediction job until it is done or failed."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/predict/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout} s: {job}")


def page_client(app, **kwargs):
    """A test client that sends what the app's own page sends: the page token read from the served page
    (its meta tag) on every request."""
    from fastapi.testclient import TestClient

    client = TestClient(app, **kwargs)
    token = re.search(r'<meta name="rdfer-token" content="([^"]+)">', client.get("/").text).group(1)
    client.headers["X-RDFER-Token"] = token
    return client
