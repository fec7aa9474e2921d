"""A curator's decisions applied to a dataset's split lists (`rdfer audit --apply`).

The decisions file (contract in docs/audit.md): a CSV with a header holding at
least `id` and `decision`; `decision` is keep / relabel / drop
(case-insensitive) or empty (undecided, ignored); a relabel row names the new
class in `new_label` (a class name of the dataset). Other columns are ignored,
so `rdfer audit`'s label_issues.csv with those two columns added is one.

`apply_decisions` writes, under OUT (never over the dataset's own lists):

  original/<lists>      a byte-for-byte copy of the dataset's split lists
  corrected/<lists>     the same lists, each relabelled clip's label rewritten on
                        every line that lists it, each dropped clip's lines removed,
                        every other line untouched (headers, order, line endings)
  corrected/<frames>    a link to the dataset's frame folder, so that
                        `--set data.root=OUT/corrected` trains on the corrected lists
  changes.csv           id, given_label, decision, new_label, lines_changed of each decided clip

The lists are found with the layouts registry (`rdfer.data.layouts`).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from rdfer.data.layouts import LAYOUTS, SPLITS, Layout
from rdfer.errors import RdferError
from rdfer.labels import MAFW_CLASSES, clip_key
from rdfer.utils.bounded_tables import csv_table
from rdfer.utils.outputs import atomic_open, atomic_output, write_text

DECISIONS = ("keep", "relabel", "drop")
MAX_PROBLEMS = 50  # problem lines shown; the rest are counted


@dataclass(frozen=True)
class Decision:
    clip_id: str  # as the decisions file writes it
    decision: str  # keep / relabel / drop
    label: int | None  # new class index of a relabel
    line: int  # line of the decisions file


@dataclass(frozen=True)
class ListLine:
    """One clip line of a split list: which clip, its label, and where it is."""

    clip_id: str
    label: int
    split: str  # train / test
    file: Path  # the list file
    line: int  # 1-based line number


@dataclass(frozen=True)
class DatasetLists:
    """A dataset's split lists and the clips they name."""

    classes: tuple
    files: tuple  # (Path, ...) every list file, absolute
    root: Path  # the folder the list paths are relative to
    lines: tuple  # (ListLine, ...)
    layout: Layout
    frames: Path | None  # the frame folder to link beside the corrected lists

    def given_labels(self) -> dict:
        """clip key -> its label: the train lists' label where a clip has one (what a model trains on)."""
        given = {}
        for entry in sorted(self.lines, key=lambda e: e.split != "train"):  # stable: train lines first
            given.setdefault(clip_key(entry.clip_id), entry.label)
        return given


def dataset_lists(dataset: str, root) -> DatasetLists:
    """Every split list of the dataset at ROOT (DFEW/MAFW: all folds; FERV39K: train and test)."""
    dataset = dataset.lower()
    if dataset not in LAYOUTS:
        raise RdferError(f"--apply rewrites the official split lists of {', '.join(LAYOUTS)}; data.dataset is "
                         f"{dataset!r} (a CSV manifest is one file: edit its label column)")
    layout = LAYOUTS[dataset]
    root = Path(root)
    pairs = [(split, layout.list_file(root, split, fold)) for fold in (layout.folds or (1,)) for split in SPLITS]
    files = [path for _, path in pairs]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise RdferError(f"{missing[0]} not found: is {root} the {layout.title} root? ({len(missing)} of "
                         f"{len(files)} split lists missing)")
    lines, problems = [], []
    for split, path in pairs:
        entries, bad = layout.parse(path, None)
        problems += bad
        lines += [ListLine(e.clip_id, e.label, split, path, e.line) for e in entries]
    if problems:
        raise RdferError(f"{problems[0].file}:{problems[0].line}: {problems[0].message} "
                         f"({len(problems)} bad line(s) in the split lists; fix them first)")
    return DatasetLists(layout.classes, tuple(files), root, tuple(lines), layout, layout.frames_root(root))


def read_decisions(path, lists: DatasetLists) -> dict:
    """clip key -> Decision, with every problem of the file reported at once.

    Raises:
        RdferError: one line per problem, `FILE:LINE: what`: unknown clip, unknown class,
            a clip decided twice, a relabel without new_label, a decision word not in DECISIONS;
            or a file that is not such a CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"decisions file {path} not found")
    with csv_table(path) as table:
        rows = list(table)
    if not rows:
        raise RdferError(f"{path}: empty; expected a header with the columns id and decision")
    header = [name.strip().lower() for name in rows[0]]
    for needed in ("id", "decision"):
        if needed not in header:
            raise RdferError(f"{path}:1: no column {needed!r} in the header ({', '.join(rows[0])}); a decisions file "
                             "needs id and decision (and new_label for relabel rows)")
    col = {name: header.index(name) for name in ("id", "decision", "new_label") if name in header}
    by_name = {name.lower(): index for index, name in enumerate(lists.classes)}
    known = {clip_key(e.clip_id) for e in lists.lines}
    decisions, seen, problems = {}, {}, []
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(name: str) -> str:
            return row[col[name]].strip() if name in col and col[name] < len(row) else ""

        clip_id, word = cell("id"), cell("decision").lower()
        where = f"{path}:{number}"
        if not word:
            continue  # undecided
        if word not in DECISIONS:
            problems.append(f"{where}: decision {cell('decision')!r} for clip {clip_id!r} is not one of "
                            f"{', '.join(DECISIONS)} (or empty: undecided)")
            continue
        key = clip_key(clip_id)
        if key not in known:
            problems.append(f"{where}: unknown clip {clip_id!r}: no split list of {lists.root} names it")
            continue
        if key in seen:
            problems.append(f"{where}: clip {clip_id!r} is decided twice (first on line {seen[key]})")
            continue
        seen[key] = number
        label = None
        if word == "relabel":
            name = cell("new_label")
            if not name:
                problems.append(f"{where}: relabel of clip {clip_id!r} without a new_label")
                continue
            if name.lower() not in by_name:
                problems.append(f"{where}: unknown class {name!r} for clip {clip_id!r}; the classes are "
                                f"{', '.join(lists.classes)}")
                continue
            label = by_name[name.lower()]
        decisions[key] = Decision(clip_id, word, label, number)
    if problems:
        shown = problems[:MAX_PROBLEMS]
        more = f"\n... and {len(problems) - MAX_PROBLEMS} more" if len(problems) > MAX_PROBLEMS else ""
        raise RdferError(f"{len(problems)} problem(s) in {path}; nothing was written:\n" + "\n".join(shown) + more)
    return decisions


def _label_text(layout: Layout, label: int, before: str) -> str:
    """A class index written as `layout`'s lists write labels (MAFW: as the line did, number or name)."""
    if layout.name == "dfew":
        return str(label + 1)
    if layout.name == "mafw":
        if before.isdigit():
            return str(label + 1)
        name = MAFW_CLASSES[label]
        return name.lower() if before == before.lower() else name
    return layout.classes[label]  # FERV39K: the emotion's name


_LAST_FIELD = re.compile(r"([^,\s]+)(\s*)$")


def _relabel_line(layout: Layout, text: str, label: int) -> str:
    """The list line `text` (without its line ending) with its label field, the last one, replaced."""
    match = _LAST_FIELD.search(text)
    return text[:match.start(1)] + _label_text(layout, label, match.group(1)) + match.group(2)


@dataclass(frozen=True)
class Applied:
    """What apply_decisions wrote and changed."""

    out: Path
    corrected_root: Path
    changes: tuple  # (id, given class, decision, new class or "", lines changed) of each clip that changed
    counts: dict  # class name -> {"clips", "relabelled_from", "relabelled_to", "dropped", "after"}
    decided: dict  # decision word -> clips


def apply_decisions(dataset: str, root, decisions_path, out) -> Applied:
    """Write OUT/original (copies) and OUT/corrected (decided) split lists; see the module docstring."""
    root, out = Path(root).resolve(), Path(out)
    lists = dataset_lists(dataset, root)
    decisions = read_decisions(decisions_path, lists)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RdferError(f"--out {out} exists and is not an empty folder; give a new folder (the corrected lists "
                         "are written beside a copy of the originals, never over anything)")
    given = lists.given_labels()
    by_file = {}
    for entry in lists.lines:
        by_file.setdefault(entry.file, {})[entry.line] = entry
    changed_lines = {}
    for path in lists.files:
        relative = path.relative_to(root)
        copy = out / "original" / relative
        copy.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(copy, fsync=False) as tmp:
            shutil.copy2(path, tmp)
        raw = path.read_bytes().decode("utf-8-sig")
        bom = "\ufeff" if path.read_bytes().startswith(b"\xef\xbb\xbf") else ""
        kept = []
        for number, line in enumerate(raw.splitlines(keepends=True), 1):
            entry = by_file[path].get(number)
            decision = decisions.get(clip_key(entry.clip_id)) if entry else None
            if decision is None or decision.decision == "keep":
                kept.append(line)
                continue
            key = clip_key(entry.clip_id)
            if decision.decision == "drop":
                changed_lines[key] = changed_lines.get(key, 0) + 1
                continue
            body = line.rstrip("\r\n")
            if entry.label != decision.label:
                changed_lines[key] = changed_lines.get(key, 0) + 1
                body = _relabel_line(lists.layout, body, decision.label)
            kept.append(body + line[len(line.rstrip("\r\n")):])
        target = out / "corrected" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text(target, bom + "".join(kept), encoding="utf-8", newline="")
    corrected_root = out / "corrected"
    if lists.frames is not None:
        link = corrected_root / lists.frames.relative_to(root)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(lists.frames, link, target_is_directory=True)
    classes = lists.classes
    counts = {name: {"clips": 0, "relabelled_from": 0, "relabelled_to": 0, "dropped": 0, "after": 0}
              for name in classes}
    for label in given.values():
        counts[classes[label]]["clips"] += 1
    changes = []
    for key, decision in sorted(decisions.items(), key=lambda item: item[1].line):
        before = classes[given[key]]
        if decision.decision == "drop":
            counts[before]["dropped"] += 1
        elif decision.decision == "relabel" and decision.label != given[key]:
            counts[before]["relabelled_from"] += 1
            counts[classes[decision.label]]["relabelled_to"] += 1
        if changed_lines.get(key) or decision.decision == "drop":
            changes.append((decision.clip_id, before, decision.decision,
                            classes[decision.label] if decision.label is not None else "", changed_lines.get(key, 0)))
    for row in counts.values():
        row["after"] = row["clips"] - row["relabelled_from"] - row["dropped"] + row["relabelled_to"]
    with atomic_open(out / "changes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "given_label", "decision", "new_label", "lines_changed"])
        writer.writerows(changes)
    decided = {word: sum(d.decision == word for d in decisions.values()) for word in DECISIONS}
    return Applied(out, corrected_root, tuple(changes), counts, decided)


def applied_markdown(applied: Applied, dataset: str, root, decisions_path) -> str:
    """The changes by class, as printed and written to OUT/report.md."""
    decided = ", ".join(f"{word} {n}" for word, n in applied.decided.items())
    lines = [f"Decisions {decisions_path} applied to the {dataset} lists of {root}: {decided} "
             f"(undecided rows ignored); {len(applied.changes)} clip(s) changed.", "",
             "| class | clips before | relabelled away | relabelled into | dropped | clips after |",
             "|---|---|---|---|---|---|"]
    for name, c in applied.counts.items():
        lines.append(f"| {name} | {c['clips']} | {c['relabelled_from']} | {c['relabelled_to']} | {c['dropped']} | "
                     f"{c['after']} |")
    total = {key: sum(c[key] for c in applied.counts.values()) for key in next(iter(applied.counts.values()))}
    lines.append(f"| all | {total['clips']} | {total['relabelled_from']} | {total['relabelled_to']} | "
                 f"{total['dropped']} | {total['after']} |")
    lines += ["", f"Corrected lists: {applied.corrected_root} (frames linked from the dataset); copies of the "
                  f"original lists: {applied.out / 'original'}; each change: {applied.out / 'changes.csv'}.",
              f"Train on them: rdfer train --config CFG --set data.root={applied.corrected_root} --out RUN"]
    return "\n".join(lines) + "\n"
