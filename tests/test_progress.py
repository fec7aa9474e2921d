"""Progress of long steps in a log: a line per tenth of the work or per 30 s, with done/total and time left."""

import io
import re

import pytest

from rdfer.utils import progress
from rdfer.utils.progress import progress_bar


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(progress, "clock", clock)
    return clock


def test_a_long_step_logs_a_line_at_each_tenth_with_time_left(fake_clock):
    log = io.StringIO()  # a file, not a terminal
    for _ in progress_bar(range(100), desc="encoding train", file=log):
        fake_clock.now += 1.0  # one second per item: 100 s in all
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0] == "encoding train: 10/100 (10%), 10s elapsed, about 1m30s left"
    assert [re.match(r"encoding train: (\d+)/100", line).group(1) for line in lines[:-1]] == \
        [str(n) for n in range(10, 100, 10)]
    assert lines[-1] == "encoding train: 100/100 done in 1m40s"


def test_a_slow_step_logs_at_least_every_30_seconds(fake_clock):
    log = io.StringIO()
    bar = progress_bar(total=1000, desc="training", unit="batch", file=log)
    for _ in range(40):  # 40 of 1000 steps (4%), 10 s each: no tenth reached, 400 s gone
        fake_clock.now += 10.0
        bar.update()
    bar.set_postfix(loss="0.512")
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 400 // 30 + 1  # a line per 30 s, and the last one
    assert lines[0] == "training: 3/1000 (0%), 30s elapsed, about 2h46m left"
    assert lines[-1] == "training: 40/1000 done in 6m40s (loss=0.512)"


def test_a_short_step_prints_nothing_to_a_log(fake_clock):
    log = io.StringIO()
    for _ in progress_bar(range(50), desc="quick", file=log):
        fake_clock.now += 0.01
    assert log.getvalue() == ""


def test_a_terminal_gets_the_bar_and_no_progress_gets_nothing(fake_clock):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    for _ in progress_bar(range(3), desc="work", file=screen):
        fake_clock.now += 10
    assert "work" in screen.getvalue() and "\r" in screen.getvalue()  # tqdm's bar redraws its line
    for stream in (Terminal(), io.StringIO()):
        for _ in progress_bar(range(3), enabled=False, desc="work", file=stream):
            fake_clock.now += 10
        assert stream.getvalue() == ""


def test_rendering_logs_its_progress_when_stderr_is_a_file(monkeypatch, tmp_path, capsys):
    """The real step, not only the helper: `rdfer synth ... 2> log` prints done/total lines (no quiet start here)."""
    from rdfer.synth import write_synthetic

    monkeypatch.setattr(progress, "QUIET_START_S", 0.0)
    write_synthetic(tmp_path / "synth", layout="dfew", clips=10, seed=1, size=16, workers=1)
    err = capsys.readouterr().err
    assert re.search(r"^synth clips: 1/10 \(10%\), \d+s elapsed, about \d+s left$", err, re.M), err
    assert re.search(r"^synth clips: 10/10 done in \d+s$", err, re.M) and "\r" not in err
