"""The one atomic-write helper (rdfer.utils.outputs): whole files or none, no debris, no links followed."""

import os
import subprocess
import sys

import pytest

from rdfer.errors import RdferError
from rdfer.utils import outputs
from rdfer.utils.outputs import atomic_open, atomic_output, remove_stale_temporaries, write_text


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), ValueError("bug"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, failure):
    target = tmp_path / "out.csv"
    target.write_text("old")
    expected = RdferError if isinstance(failure, OSError) else type(failure)
    with pytest.raises(expected) as raised:
        with atomic_output(target) as temp:
            temp.write_text("half")
            raise failure
    if isinstance(failure, OSError):  # one line: the file and the cause
        assert str(raised.value).startswith(f"cannot write {target}: no space left on device")
        assert "\n" not in str(raised.value)
    assert target.read_text() == "old" and _names(tmp_path) == ["out.csv"]
    write_text(target, "new")
    assert target.read_text() == "new" and _names(tmp_path) == ["out.csv"]


def test_the_temporary_name_is_recognisable_and_keeps_the_extension(tmp_path):
    with atomic_output(tmp_path / "clip_annotated.mp4") as temp:
        assert temp.parent == tmp_path and temp.name.startswith(f".rdfer-tmp-{os.getpid()}-")
        assert temp.name.endswith("-clip_annotated.mp4") and temp.is_file() and not temp.is_symlink()
        temp.write_bytes(b"x")
    assert _names(tmp_path) == ["clip_annotated.mp4"]


@pytest.mark.parametrize("kind", ["symlink", "dangling", "folder", "fifo"])
def test_a_target_that_is_not_a_regular_file_is_refused_and_never_written_through(tmp_path, kind):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    if kind == "symlink":
        target.symlink_to(victim)
    elif kind == "dangling":
        target.symlink_to(tmp_path / "created-through-the-link")
    elif kind == "folder":
        target.mkdir()
    else:
        os.mkfifo(target)
    with pytest.raises(RdferError, match=r"cannot write .*out.json: it is a"):
        write_text(target, "payload")
    assert victim.read_text() == "precious" and not (tmp_path / "created-through-the-link").exists()
    assert not any(name.startswith(".rdfer-tmp-") for name in _names(tmp_path))


def test_stale_temporaries_of_dead_processes_are_removed_by_the_next_write(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f".rdfer-tmp-{dead}-abcdef-predictions.csv"
    legacy = tmp_path / f".clip.{dead}.partial.mp4"  # what predict --annotate left before
    live = tmp_path / f".rdfer-tmp-{os.getppid()}-abcdef-frames.csv"  # a writer still running: kept
    mine = tmp_path / "notes.rdfer-tmp-1-abcdef-x"  # not rdfer's pattern: kept
    for path in (stale, legacy, live, mine):
        path.write_text("partial")
    outputs._cleaned.discard(os.path.abspath(tmp_path))
    write_text(tmp_path / "out.txt", "x")
    assert _names(tmp_path) == sorted([live.name, mine.name, "out.txt"])
    assert remove_stale_temporaries(tmp_path) == []


def test_atomic_open_writes_text_and_binary(tmp_path):
    with atomic_open(tmp_path / "a.csv", "w", newline="") as f:
        f.write("a,b\r\n")
    with atomic_open(tmp_path / "b.bin", "wb") as f:
        f.write(b"\0\1")
    assert (tmp_path / "a.csv").read_bytes() == b"a,b\r\n" and (tmp_path / "b.bin").read_bytes() == b"\0\1"
