"""The headline of a video: its faces, a group line, and a main face only when one clearly dominates.

    summary = summarise(record.tracks, fps=record.fps, num_frames=record.num_frames, cuts=record.cuts)
    summary["text"]        # "5 faces: 4 Happy, 1 Angry"  or  "main face 2: Happy p=0.75 trust=0.91 ...; 3 faces: ..."
    summary["main_face"]   # a track id, or None when no face dominates

One rule, computed here and only here; the console line, the JSON (`summary`,
the top-level `label`/`trust`, ...), the CSV tables (`main`, `summary`) and the
app render what it returns.

**The main face** (`MAIN_RATIO`, `MAIN_SHARE`): the only face of the video, or the
face on screen at least twice as long as any other face *and* for at least half
of the video. Otherwise there is no main face and the video is summarised by its
group line: a group photo or a scene of several people, or a video of several
shots (every track ends at a cut, so no track of a five-shot video covers half
of it), is not summarised by one of its faces.

**The group line** counts the faces by label, most common first:
"5 faces: 4 Happy, 1 Angry"; with shot cuts "6 faces in 3 shots: ..." (a face
is a track: a person seen in two shots counts twice).
"""

from collections import Counter

MAIN_RATIO = 2.0  # the main face is on screen at least this many times as long as any other face ...
MAIN_SHARE = 0.5  # ... and for at least this share of the video


def _on_screen_s(track, fps: float) -> float:
    return track.num_frames / fps


def main_face(on_screen: dict, duration_s: float):
    """The id of the face that dominates screen time by the rule above, or None.

    on_screen: {track id: seconds on screen}; duration_s: the video's length.
    """
    if not on_screen:
        return None
    ranked = sorted(on_screen.items(), key=lambda item: -item[1])
    best, seconds = ranked[0]
    if len(ranked) == 1:
        return best
    runner_up = ranked[1][1]
    if seconds >= MAIN_RATIO * runner_up and seconds >= MAIN_SHARE * duration_s - 1e-9:
        return best
    return None


def group_line(labels, shots: int = 1) -> str:
    """'5 faces: 4 Happy, 1 Angry' (labels most common first; ties in the order given)."""
    counts = Counter(labels)
    faces = f"{len(labels)} face{'s' if len(labels) != 1 else ''}" + (f" in {shots} shots" if shots > 1 else "")
    return faces + ": " + ", ".join(f"{n} {label}" for label, n in counts.most_common())


def summarise(tracks, fps: float, num_frames: int, cuts=()) -> dict:
    """The headline of one video from its face tracks (objects with id, label, probability, trust, num_frames).

    Returns a dict (the JSON's `summary`):
        text: the one-line headline;
        main_face: the main face's track id, or None;
        group: the group line; shots: number of shots;
        faces: [{id, label, probability, trust, on_screen_s}], longest on screen first;
        rule: the rule in words.
    """
    shots = len(cuts) + 1
    fps = fps or 1.0
    duration = num_frames / fps
    ordered = sorted(tracks, key=lambda t: (-t.num_frames, t.id))
    faces = [{"id": t.id, "label": t.label, "probability": round(float(t.probability), 4),
              "trust": round(float(t.trust), 4), "on_screen_s": round(_on_screen_s(t, fps), 3)} for t in ordered]
    main = main_face({t.id: _on_screen_s(t, fps) for t in ordered}, duration)
    group = group_line([t.label for t in ordered], shots) if ordered else "no face"
    text = group
    if main is not None:
        m = next(f for f in faces if f["id"] == main)
        head = f"{m['label']} p={m['probability']:.2f} trust={m['trust']:.2f}"
        text = head if len(faces) == 1 else (f"main face {main}: {head} (on screen {m['on_screen_s']:.1f} of "
                                              f"{duration:.1f} s); {group}")
    return {"text": text, "main_face": main, "group": group, "shots": shots, "faces": faces,
            "rule": f"main face: the only face, or one on screen >= {MAIN_RATIO:g}x as long as any other "
                    f"and >= {MAIN_SHARE:.0%} of the video"}


def faces_text(summary: dict, limit: int = 5, photo: bool = False) -> str:
    """'face 1 Happy 0.91/0.88 4.2 s, face 2 ...' for the console (label probability/trust, time on screen;
    no time for a photo)."""
    shown = [f"face {f['id']} {f['label']} {f['probability']:.2f}/{f['trust']:.2f}"
             + ("" if photo else f" {f['on_screen_s']:.1f} s") for f in summary["faces"][:limit]]
    more = len(summary["faces"]) - limit
    return ", ".join(shown) + (f", +{more} more" if more > 0 else "")
