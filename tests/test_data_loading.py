"""ClipDataset, build_loader, corrupt frames and the packed format."""

import numpy as np
import pytest
import torch

from fixtures_data import frame_value, make_csv, make_dfew, write_frames
from rdfer.data import ClipDataset, build_loader, build_manifest
from rdfer.data.frames import read_clip
from rdfer.data.pack import write_pack
from rdfer.errors import RdferError


def _frame_numbers(video):
    """Which fixture frame each loaded frame is, from its red level."""
    red = video[:, 0].float().mean(dim=(-2, -1)).numpy()
    return np.round((red - frame_value(0)) / 10).astype(int).tolist()


@pytest.fixture()
def dfew(tmp_path):
    expected = make_dfew(tmp_path)
    return tmp_path, expected


def test_items_have_sampled_frames_in_natural_order(dfew):
    root, expected = dfew
    manifest = build_manifest("dfew", root, "train")
    dataset = ClipDataset(manifest, num_frames=16, train=False, load_size=24)
    for i, (clip_id, label, count, _) in enumerate(expected["train"]):
        item = dataset[i]
        assert item["video"].shape == (16, 3, 24, 24) and item["video"].dtype == torch.uint8
        assert (item["label"], item["index"], item["clip_id"], item["bad_frames"]) == (label, i, clip_id, 0)
        centres = np.floor((np.arange(16) + 0.5) * count / 16).astype(int).tolist()
        assert _frame_numbers(item["video"]) == centres
        # RGB order: green is 255 - red in the fixture
        assert abs(float(item["video"][0, 1].float().mean()) - (255 - frame_value(centres[0]))) < 4


def test_large_frames_decode_at_reduced_size(tmp_path):
    import cv2

    from rdfer.data.frames import FolderClip

    write_frames(tmp_path / "clip", 6, size=64)
    clip = FolderClip(str(tmp_path / "clip"), load_size=16)
    video, bad = read_clip(clip, np.arange(6), "clip")
    assert clip.decode.flag == cv2.IMREAD_REDUCED_COLOR_4  # 64 px stored, 16 px wanted
    assert video.shape == (6, 3, 16, 16) and bad == 0
    assert _frame_numbers(video) == list(range(6))


def test_video_file_clips_load(tmp_path):
    csv_path, _ = make_csv(tmp_path)
    manifest = build_manifest("csv", csv_path, "train")
    item = ClipDataset(manifest, num_frames=9, train=False, load_size=16)[2]
    assert item["clip_id"] == "videos/d.avi" and item["video"].shape == (9, 3, 16, 16)
    assert _frame_numbers(item["video"]) == list(range(9))


def test_corrupt_frame_replaced_by_neighbour_and_counted(dfew):
    root, expected = dfew
    clip_id, _, count, folder = expected["train"][0]  # 12 frames
    (folder / "5.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "6.jpg").write_bytes(b"")
    manifest = build_manifest("dfew", root, "train")
    item = ClipDataset(manifest, num_frames=count, train=False, load_size=24)[0]
    frames = _frame_numbers(item["video"])
    # frame 4 (5.jpg) -> nearest readable is 3 (4.jpg); frame 5 (6.jpg) -> 6 (7.jpg) beats 3
    assert frames[4] == 3 and frames[5] == 6
    assert item["bad_frames"] == 2


def test_clip_without_any_readable_frame_names_the_clip(dfew):
    root, expected = dfew
    clip_id, _, _, folder = expected["train"][1]
    for frame in folder.iterdir():
        frame.write_bytes(b"not a jpeg")
    manifest = build_manifest("dfew", root, "train")
    item = ClipDataset(manifest, num_frames=8, train=False, load_size=24)[1]
    assert f"clip {clip_id}: none of its" in item["unusable"]  # decided in the main process, see below
    loader = build_loader(manifest, num_frames=8, train=False, batch_size=2, num_workers=0, seed=0, load_size=24)
    with pytest.raises(RdferError, match=f"clip {clip_id}: none of its.*--skip-bad"):
        list(loader)


@pytest.mark.parametrize("workers", [0, 1])
def test_loader_batches_and_is_repeatable(dfew, workers):
    root, _ = dfew
    manifest = build_manifest("dfew", root, "train")

    def run(seed):
        loader = build_loader(manifest, num_frames=8, train=True, batch_size=2,
                              num_workers=workers, seed=seed, load_size=16)
        assert loader.persistent_workers == (workers > 0)
        return list(loader)

    first, second, other = run(3), run(3), run(4)
    batch = first[0]
    assert batch["video"].shape == (2, 8, 3, 16, 16) and batch["video"].dtype == torch.uint8
    assert batch["label"].shape == (2,) and batch["index"].shape == (2,)
    assert isinstance(batch["clip_id"], list) and batch["bad_frames"].tolist() == [0, 0]
    assert sorted(sum((b["index"].tolist() for b in first), [])) == [0, 1, 2, 3]
    for a, b in zip(first, second):
        assert torch.equal(a["video"], b["video"]) and a["clip_id"] == b["clip_id"]
    assert not all(torch.equal(a["video"], b["video"]) for a, b in zip(first, other))


def test_pack_round_trip_equals_direct_loading(dfew, tmp_path):
    root, expected = dfew
    (expected["train"][0][3] / "3.jpg").write_bytes(b"broken")
    manifest = build_manifest("dfew", root, "train")
    out = tmp_path / "train.rdfpack"
    stats = write_pack(manifest, out, load_size=None, progress=False)
    assert stats["clips"] == 4 and stats["unreadable"] == 1
    packed = build_manifest("packed", out, "train")
    assert packed.packed == str(out.resolve()) and packed.records == manifest.records
    assert packed.classes == manifest.classes and packed.dataset == "dfew"
    direct = ClipDataset(manifest, num_frames=16, train=False, load_size=24)
    from_pack = ClipDataset(packed, num_frames=16, train=False, load_size=24)
    for i in range(len(direct)):
        a, b = direct[i], from_pack[i]
        assert torch.equal(a["video"], b["video"]) and a["bad_frames"] == b["bad_frames"]
    assert from_pack[0]["bad_frames"] == 1
    # re-encoded at load size: close to direct loading, and readable by loader workers
    write_pack(manifest, out, load_size=24, quality=95, progress=False)
    packed = build_manifest("packed", out, "train")
    loader = build_loader(packed, num_frames=16, train=False, batch_size=4, num_workers=1, seed=0,
                          load_size=24)
    videos = next(iter(loader))["video"]
    direct_videos = torch.stack([direct[i]["video"] for i in range(4)])
    assert (videos.float() - direct_videos.float()).abs().mean() < 3


def test_pack_errors(tmp_path, dfew):
    root, _ = dfew
    with pytest.raises(RdferError, match="not found"):
        build_manifest("packed", tmp_path / "none.rdfpack", "train")
    bad = tmp_path / "bad.rdfpack"
    bad.write_bytes(b"hello world, not a pack at all, really not")
    with pytest.raises(RdferError, match="not an rdfer pack"):
        build_manifest("packed", bad, "train")
    out = tmp_path / "t.rdfpack"
    write_pack(build_manifest("dfew", root, "train"), out, progress=False)
    with pytest.raises(RdferError, match="holds split 'train'"):
        build_manifest("packed", out, "test")
    out.write_bytes(out.read_bytes()[:-10])
    with pytest.raises(RdferError, match="truncated or damaged"):
        build_manifest("packed", out, "train")


def test_loader_batches_do_not_depend_on_the_worker_count(dfew):
    # One loader path for every caller: training's seeding (each clip's offsets from seed, epoch and
    # index), so bench, eval and tests load what a training run with any worker count would.
    root, _ = dfew
    manifest = build_manifest("dfew", root, "train")
    runs = []
    for workers in (0, 2):
        loader = build_loader(manifest, num_frames=8, train=True, batch_size=2, num_workers=workers, seed=5,
                              load_size=16)
        loader.batch_sampler.sampler.set_epoch(3)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 2
    for a, b in zip(*runs):
        assert a["clip_id"] == b["clip_id"] and torch.equal(a["video"], b["video"])
