"""Reviewing an audit: an `rdfer audit` folder's flagged clips and the curator's decisions (`rdfer app`'s page).

    folder = AuditFolder(Path("/data/audit"), home)     # RdferError (one line) if it is not an audit
    folder.clips()                                      # rows of label_issues.csv, by score, highest first
    folder.decide("00123", "relabel", "Happy")          # written at once to HOME/decisions.csv

The decisions file is the CSV `rdfer audit --apply DECISIONS` reads: a header with
`id` and `decision` (keep / relabel / drop; empty = undecided) and `new_label` (a
class name, for relabel); the other columns (given and suggested label, verdict,
score, path) are for people and ignored by --apply. It lives in the work folder
(WORK/audits/<name>-<hash>/decisions.csv: the server writes nowhere else), beside a
copy of the audit's audit.json (from which --apply learns the dataset), and is
rewritten whole, atomically (temporary file, fsync, rename), on every decision:
a reload, a crash or a killed server loses nothing that was acknowledged.
"""

import csv
import io
import math
import threading
from pathlib import Path

import cv2
import numpy as np

from rdfer.errors import RdferError
from rdfer.figures.base import FrameSource, Skipped
from rdfer.utils.bounded_tables import csv_table
from rdfer.utils.outputs import write_bytes, write_text
from rdfer.utils.runlock import update_lock

ISSUES_FILE = "label_issues.csv"
DECISIONS_FILE = "decisions.csv"
AUDIT_FILE = "audit.json"  # what the audit was run on (dataset, root, config)
DECISIONS = ("keep", "relabel", "drop")
DECISION_COLUMNS = ("id", "decision", "new_label", "given_label", "suggested_label", "kind", "score", "path")
ID_COLUMNS = ("id", "clip_id")  # label_issues.csv names it id (clip_id before)
PREVIEW_FRAMES, PREVIEW_HEIGHT = 8, 96


def _number(text) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _read_csv(path: Path) -> tuple[list, list]:
    try:
        with csv_table(path, dicts=True) as reader:
            return list(reader.fieldnames or []), list(reader)
    except OSError as error:
        raise RdferError(f"{path}: cannot be read as CSV ({error})") from None


class AuditFolder:
    """One opened audit folder and its decisions file."""

    def __init__(self, source: Path, home: Path):
        self.source, self.home = source, home
        self.decisions_path = home / DECISIONS_FILE
        self._lock = threading.Lock()
        columns, rows = _read_csv(source / ISSUES_FILE)
        id_column = next((c for c in ID_COLUMNS if c in columns), None)
        if id_column is None or "given_label" not in columns:
            raise RdferError(f"{source / ISSUES_FILE} has no id and given_label columns: is it the list "
                             "`rdfer audit` wrote?")
        self.rows = []
        for n, row in enumerate(rows):
            self.rows.append({
                "index": n, "id": row[id_column], "given_label": row.get("given_label") or "",
                "suggested_label": row.get("suggested_label") or "",
                # rdfer's verdict: mislabelled / hard / ok (the column kind says it in words; older lists have only kind)
                "kind": row.get("verdict") or row.get("kind") or "",
                "score": _number(row.get("score")), "agreement": _number(row.get("agreement")),
                "p_given": _number(row.get("p_given")), "p_suggested": _number(row.get("p_suggested")),
                "rank": _number(row.get("rank")), "path": row.get("path") or "",
                # the lists that flag it: rdfer, cleanlab, combined (columns <list>_issue = 1)
                "flagged_by": [c[:-len("_issue")] for c in columns if c.endswith("_issue") and row.get(c) == "1"],
            })
        # Sorted by score, highest first (clips without a score last, in file order).
        self.rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["index"]))
        self._by_id = {r["id"]: r for r in self.rows}
        self.classes = self._classes()
        self.decisions = self._read_decisions()
        # `rdfer audit --apply DECISIONS` learns the dataset from the audit.json beside DECISIONS: keep a copy there.
        if (source / AUDIT_FILE).is_file():
            write_text(home / AUDIT_FILE, (source / AUDIT_FILE).read_text(), newline="")

    def _classes(self) -> list[str]:
        """Class names: the p_<Class> columns of oof_predictions.csv, else the labels the list names."""
        oof = self.source / "oof_predictions.csv"
        if oof.is_file():
            with csv_table(oof) as rows:
                header = next(rows, [])
            classes = [c[2:] for c in header if c.startswith("p_")]
            if classes:
                return classes
        names = [r[k] for r in self.rows for k in ("given_label", "suggested_label") if r[k]]
        return list(dict.fromkeys(names))

    def _read_decisions(self) -> dict:
        """{id: (decision, new_label)} from the decisions file of an earlier session (nothing if none)."""
        if not self.decisions_path.is_file():
            return {}
        _, rows = _read_csv(self.decisions_path)
        return {r["id"]: ((r.get("decision") or "").strip().lower(), (r.get("new_label") or "").strip())
                for r in rows if r.get("id") and (r.get("decision") or "").strip()}

    def summary(self) -> dict:
        kinds = sorted({r["kind"] for r in self.rows if r["kind"]})
        return {"folder": str(self.source), "decisions_file": str(self.decisions_path), "classes": self.classes,
                "kinds": kinds, "clips": len(self.rows), "decided": len(self.decisions),
                "apply_command": f"rdfer audit --apply {self.decisions_path} --out CORRECTED"}

    def clips(self) -> list[dict]:
        out = []
        for r in self.rows:
            decision, new_label = self.decisions.get(r["id"], ("", ""))
            out.append({**{k: v for k, v in r.items() if k != "path"}, "decision": decision, "new_label": new_label})
        return out

    def decide(self, clip_id: str, decision: str, new_label: str = "") -> dict:
        """Record one decision (empty: undo) and rewrite the decisions file before returning."""
        if clip_id not in self._by_id:
            raise RdferError(f"clip {clip_id!r} is not in {self.source / ISSUES_FILE}")
        if decision not in DECISIONS + ("",):
            raise RdferError(f"decision {decision!r}: choose keep, relabel or drop")
        if decision == "relabel":
            if new_label not in self.classes:
                raise RdferError(f"relabel clip {clip_id} to {new_label!r}: choose one of {', '.join(self.classes)}")
        else:
            new_label = ""
        with self._lock, update_lock(self.decisions_path):  # servers sharing the work folder: none loses any
            self.decisions = self._read_decisions()  # what another server decided since is kept
            if decision:
                self.decisions[clip_id] = (decision, new_label)
            else:
                self.decisions.pop(clip_id, None)
            write_text(self.decisions_path, self._decisions_csv(), newline="")
        return {"id": clip_id, "decision": decision, "new_label": new_label, "decided": len(self.decisions)}

    def _decisions_csv(self) -> str:
        """Every listed clip in list order (undecided ones with an empty decision), then decided clips the list
        no longer names (kept, never dropped silently)."""
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(DECISION_COLUMNS)
        for r in self.rows:
            decision, new_label = self.decisions.get(r["id"], ("", ""))
            writer.writerow([r["id"], decision, new_label, r["given_label"], r["suggested_label"], r["kind"],
                             "" if r["score"] is None else r["score"], r["path"]])
        for clip_id, (decision, new_label) in self.decisions.items():
            if clip_id not in self._by_id:
                writer.writerow([clip_id, decision, new_label, "", "", "", "", ""])
        return text.getvalue()

    def preview(self, clip_id: str) -> Path:
        """A JPEG strip of PREVIEW_FRAMES evenly spaced frames of the clip, made once in the work folder."""
        row = self._by_id.get(clip_id)
        if row is None:
            raise RdferError(f"clip {clip_id!r} is not in {self.source / ISSUES_FILE}")
        path = self.home / "previews" / f"{row['index']}.jpg"
        if path.is_file():
            return path
        clip = Path(row["path"])
        if row["path"] and not clip.is_absolute() and not clip.exists():
            clip = self.source / clip
        try:
            source = FrameSource(clip)
            picks = np.linspace(0, len(source) - 1, min(PREVIEW_FRAMES, len(source))).round().astype(int)
            frames = source.read(picks, height=PREVIEW_HEIGHT)
        except Skipped as reason:
            raise RdferError(f"no frames for clip {clip_id}: {reason}") from None
        strip = cv2.cvtColor(np.concatenate(frames, axis=1), cv2.COLOR_RGB2BGR)
        ok, encoded = cv2.imencode(".jpg", strip, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise RdferError(f"no preview for clip {clip_id}: the frames could not be encoded")
        path.parent.mkdir(exist_ok=True)
        write_bytes(path, encoded.tobytes(), fsync=False)
        return path
