"""A fault-injection harness: run rdfer's real command line under a full disk, a kill -9 at a write point,
planted links and concurrent writers, and look for what a failure must never leave behind.

    done = run_rdfer("synth", "--out", out, disk_bytes=20_000)    # files may not grow past 20 kB (EFBIG)
    assert_one_line_error(done, "cannot write", str(out))
    assert debris(out) == []                                      # no temporary file left anywhere
    killed = kill_at_first_write(["predict", video, "--out", out, "--annotate"], out)
    victim = plant_link(tmp_path / ".out.lock")                   # a link to a file that must stay intact

A full disk is RLIMIT_FSIZE in the child (writes past the limit fail with EFBIG, as a full disk
fails them with ENOSPC; both go through the same error path), so the tests need no root and no
loop device.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
TEMPORARY = re.compile(r"^\.rdfer-tmp-\d+-|\.partial|\.part$|\.part\.|\.tmp$")  # every temporary rdfer ever wrote


def _limit_disk(limit: int):
    def apply():
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG) instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def command(*args) -> list[str]:
    return [sys.executable, "-m", "rdfer", *map(str, args)]


def run_rdfer(*args, disk_bytes: int | None = None, timeout: float = 600, cwd=None,
              env: dict | None = None) -> subprocess.CompletedProcess:
    """`rdfer ARGS` in a fresh process; with disk_bytes, on a "disk" where no file may grow past that size."""
    return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**ENV, **(env or {})}, preexec_fn=_limit_disk(disk_bytes) if disk_bytes else None)


def start_rdfer(*args, cwd=None) -> subprocess.Popen:
    return subprocess.Popen(command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                            env=ENV)


def debris(folder) -> list[str]:
    """Temporary files (of any rdfer version) left anywhere under `folder`, relative paths."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if TEMPORARY.search(p.name))


def error_lines(done) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def assert_one_line_error(done, *needles: str) -> str:
    """Exit 2, no traceback, and the last stderr line holds every needle (the one-line error); returns it."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    line = error_lines(done)[-1]
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def kill_at_first_write(args, folder, pattern: str = ".rdfer-tmp-", timeout: float = 300) -> subprocess.Popen:
    """Start `rdfer ARGS` and kill -9 it as soon as a file whose name holds `pattern` appears under `folder`
    (a write in progress); returns the finished process. Fails when the run ends before any such write."""
    folder = Path(folder)
    process = start_rdfer(*args)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"rdfer {args[0]} ended (exit {process.returncode}) before writing a "
                                     f"{pattern} file: {process.stderr.read()[-2000:]}")
            if folder.exists() and any(pattern in p.name for p in folder.rglob("*")):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return process
            time.sleep(0.005)
        raise AssertionError(f"no {pattern} file under {folder} within {timeout} s")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()


def plant_link(link: Path, victim: Path | None = None, text: str = "precious\n") -> Path:
    """A symbolic link at `link` to a file holding `text` (the victim, returned): it must stay intact."""
    link = Path(link)
    victim = Path(victim or link.parent / f"victim-of-{link.name.lstrip('.')}")
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text(text)
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(victim)
    return victim


class Holder:
    """Another process holding a lock of rdfer's, until `release()` (or 120 s):

        with Holder(f"run_lock({str(out)!r}, 'train')") as holder:   # or "update_lock(...)"
            ...                                                     # holder.pid names it
    """

    def __init__(self, lock: str):
        self.release_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"rdfer-holder-{os.getpid()}-{id(self)}"
        code = ("import os, time; from rdfer.utils.runlock import run_lock, update_lock\n"
                f"with {lock}:\n    print('held', flush=True)\n    deadline = time.time() + 120\n"
                f"    while not os.path.exists({str(self.release_file)!r}) and time.time() < deadline:\n"
                "        time.sleep(0.05)")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=ENV)
        self.pid = self.process.pid
        line = self.process.stdout.readline().strip()
        if line != "held":
            self.release()
            raise AssertionError(f"the holder did not take the lock ({line!r})")

    def release(self) -> None:
        self.release_file.touch()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.release_file.unlink(missing_ok=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
