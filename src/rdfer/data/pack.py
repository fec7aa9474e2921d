"""`rdfer pack`: one file per split instead of many small JPEGs.

File layout (all integers little-endian int64):

    b"RDFPACK1"                         magic
    frame 0 bytes, frame 1 bytes, ...   encoded images (JPEG unless the source
                                        files were kept as they are)
    offsets (F + 1,)                    frame f is bytes [offsets[f], offsets[f+1])
    header                              UTF-8 JSON: dataset, split, fold, classes,
                                        root, load_size, quality, skipped, and
                                        clips [{clip_id, path, label, num_frames, first}]
                                        (clip c's frames are first .. first+num_frames-1)
    offsets_at, header_at, header_len   where the two blocks above start
    b"RDFPACK1"                         magic again (a truncated file is detected)

Frames are re-encoded at `load_size` (default 128: the loader's size, so
loading needs no resize and decodes a 4x smaller JPEG), or kept byte for byte
with `load_size=None`. An unreadable source frame is stored as 0 bytes, so
the loader meets it as unreadable and replaces it as it would on disk.
Readers map the file with np.memmap lazily in each process, so a dataset
reading a pack can be sent to DataLoader workers.

Read a pack with `build_manifest('packed', root=FILE, split=...)`; the
returned Manifest has `packed=FILE` and `ClipDataset` then reads from it.
"""

from __future__ import annotations

import json
import os
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from rdfer.data.frames import FolderClip, FrameDecoder, VideoClip, read_bytes
from rdfer.data.files import is_video_file
from rdfer.data.records import ClipRecord, Manifest
from rdfer.errors import RdferError
from rdfer.utils.outputs import atomic_output, refuse_overwriting_inputs
from rdfer.utils.progress import progress_bar
from rdfer.utils.runlock import run_lock

MAGIC = b"RDFPACK1"
_FOOTER = struct.Struct("<qqq8s")


def _encode(image_rgb: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR),
                              [cv2.IMWRITE_JPEG_QUALITY, quality])
    return buffer.tobytes() if ok else b""


def _clip_frame_bytes(record: ClipRecord, load_size: int | None, quality: int) -> list:
    """Encoded bytes of every frame of a clip, in order (b'' for unreadable frames)."""
    if is_video_file(record.path) and os.path.isfile(record.path):
        clip = VideoClip(record.path, load_size)
        return [_encode(image, quality) for image in clip.frames]
    clip = FolderClip(record.path, load_size)
    frames = []
    for j, name in enumerate(clip.names):
        if load_size is None:
            # Keep the file as it is, but store nothing for a file that does not decode.
            data = read_bytes(os.path.join(record.path, name))
            ok = data is not None and cv2.imdecode(data, cv2.IMREAD_REDUCED_GRAYSCALE_8) is not None
            frames.append(data.tobytes() if ok else b"")
            continue
        image = clip.read(j)
        frames.append(b"" if image is None else _encode(image, quality))
    return frames


def write_pack(manifest: Manifest, out, load_size: int | None = 128, quality: int = 90,
               fold: int | None = None, workers: int | None = None, progress: bool = True,
               skip_bad: bool = False, protect=()) -> dict:
    """Write every clip of `manifest` into one pack file.

    Args:
        manifest: the split to pack (its frames are read from record.path).
        out: output file path (written to OUT.tmp, then renamed).
        load_size: side the frames are re-encoded at; None keeps source bytes.
        quality: JPEG quality of re-encoded frames.
        fold: recorded in the header, for information.
        workers: encoding threads (OpenCV releases the GIL); default CPU count.
        progress: show a tqdm bar on stderr.
        skip_bad: leave out (and name on stderr) a clip none of whose frames
            decodes, instead of stopping.
        protect: more files `out` must not be (the dataset's other split lists).

    Returns:
        dict with clips, frames, bytes, unreadable (frames stored empty), skipped
        (clip ids left out).

    Raises:
        RdferError: `out` is a file the split is read from (its list, a clip); a
            clip none of whose frames decodes (without skip_bad); a write that
            fails (a full disk): the partial file is removed.
    """
    out = Path(out)
    refuse_overwriting_inputs([out], [*manifest.inputs(), *protect])
    out.parent.mkdir(parents=True, exist_ok=True)
    clips, offsets, skipped = [], [len(MAGIC)], []
    with run_lock(out, "pack"), atomic_output(out) as tmp:
        _write_pack_body(tmp, manifest, load_size, quality, fold, workers, progress, skip_bad, clips, offsets,
                         skipped)
    unreadable = sum(1 for start, end in zip(offsets, offsets[1:]) if start == end)
    return {"clips": len(clips), "frames": len(offsets) - 1, "bytes": out.stat().st_size,
            "unreadable": unreadable, "skipped": skipped}


def _write_pack_body(tmp, manifest, load_size, quality, fold, workers, progress, skip_bad, clips, offsets,
                     skipped) -> None:
    with open(tmp, "wb") as handle, ThreadPoolExecutor(workers or os.cpu_count()) as pool:
        handle.write(MAGIC)
        encoded = pool.map(lambda record: _clip_frame_bytes(record, load_size, quality),
                           manifest.records)
        bar = progress_bar(encoded, enabled=progress, total=len(manifest.records), desc=f"pack {manifest.split}",
                           unit="clip")
        for record, frames in zip(manifest.records, bar):
            if not any(frames):
                reason = f"clip {record.clip_id}: none of its {len(frames)} frames can be decoded ({record.path})"
                if not skip_bad:
                    raise RdferError(f"{reason}; re-extract its frames or remove it from the split list, "
                                     "or pass --skip-bad to leave such clips out")
                print(f"warning: skip_bad: leaving out {reason}", file=sys.stderr, flush=True)
                skipped.append(record.clip_id)
                continue
            clips.append({"clip_id": record.clip_id, "path": record.path, "label": record.label,
                          "num_frames": len(frames), "first": len(offsets) - 1})
            for data in frames:
                handle.write(data)
                offsets.append(offsets[-1] + len(data))
        offsets_at = handle.tell()
        handle.write(np.asarray(offsets, dtype="<i8").tobytes())
        header = json.dumps({
            "version": 1, "dataset": manifest.dataset, "split": manifest.split, "fold": fold,
            "classes": list(manifest.classes), "root": manifest.root, "load_size": load_size,
            "quality": quality, "skipped": list(manifest.skipped) + skipped, "clips": clips,
        }).encode("utf-8")
        header_at = handle.tell()
        handle.write(header)
        handle.write(_FOOTER.pack(offsets_at, header_at, len(header), MAGIC))


def read_pack_header(path) -> tuple:
    """(header dict, offsets int64 array (F + 1,)) of a pack file.

    Raises:
        RdferError: when the file is missing, truncated or not a pack.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if size < len(MAGIC) + _FOOTER.size or handle.read(len(MAGIC)) != MAGIC:
                raise RdferError(f"{path} is not an rdfer pack file (bad magic); "
                                 "write one with `rdfer pack`")
            handle.seek(size - _FOOTER.size)
            offsets_at, header_at, header_len, magic = _FOOTER.unpack(handle.read(_FOOTER.size))
            if magic != MAGIC or not 0 < offsets_at <= header_at <= size - _FOOTER.size:
                raise RdferError(f"{path} is truncated or damaged; write it again with `rdfer pack`")
            handle.seek(header_at)
            header = json.loads(handle.read(header_len).decode("utf-8"))
            handle.seek(offsets_at)
            offsets = np.frombuffer(handle.read(header_at - offsets_at), dtype="<i8")
    except FileNotFoundError:
        raise RdferError(f"pack file {path} not found; write it with `rdfer pack`")
    except (ValueError, UnicodeDecodeError) as error:
        raise RdferError(f"{path}: damaged pack header ({error}); write it again with `rdfer pack`")
    return header, offsets


def read_pack_manifest(path, split: str | None = None) -> Manifest:
    """Manifest of a pack file (records keep their original paths; packed=path)."""
    path = Path(path).resolve()
    header, _ = read_pack_header(path)
    if split is not None and split != header["split"]:
        raise RdferError(f"{path} holds split {header['split']!r}, not {split!r}; "
                         "pack each split into its own file")
    records = tuple(ClipRecord(clip["clip_id"], clip["path"], clip["label"], clip["num_frames"])
                    for clip in header["clips"])
    return Manifest(dataset=header["dataset"], split=header["split"],
                    classes=tuple(header["classes"]), records=records, root=header["root"],
                    skipped=tuple(header["skipped"]), packed=str(path))


class PackReader:
    """Random access to the frames of a pack file; safe to pickle into workers."""

    def __init__(self, path):
        self.path = str(path)
        header, self.offsets = read_pack_header(path)
        self.clips = {clip["clip_id"]: (clip["first"], clip["num_frames"]) for clip in header["clips"]}
        self._data = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_data"] = None  # each process maps the file itself
        return state

    def frame_bytes(self, first: int, j: int) -> np.ndarray:
        if self._data is None:
            self._data = np.memmap(self.path, dtype=np.uint8, mode="r")
        start, end = self.offsets[first + j], self.offsets[first + j + 1]
        return np.asarray(self._data[start:end])

    def clip(self, clip_id: str, load_size: int | None) -> "PackedClip":
        if clip_id not in self.clips:
            raise RdferError(f"clip {clip_id} is not in pack {self.path}")
        first, num_frames = self.clips[clip_id]
        return PackedClip(self, first, num_frames, load_size)


class PackedClip:
    """One clip's frames inside a pack (same interface as FolderClip)."""

    def __init__(self, reader: PackReader, first: int, num_frames: int, load_size: int | None):
        self.reader, self.first, self.num_frames = reader, first, num_frames
        self.decode = FrameDecoder(load_size)

    def read(self, j: int) -> np.ndarray | None:
        return self.decode(self.reader.frame_bytes(self.first, j))
