"""Test tiers: `make test-fast` leaves out the tests conftest.SLOW names; `make test` runs them all."""

import re
from pathlib import Path

import conftest

TESTS = Path(__file__).resolve().parent


def test_every_test_named_slow_exists():
    """A renamed or removed test must leave the list too (else a slow test would slip into the fast tier)."""
    missing = []
    for module, names in conftest.SLOW.items():
        source = (TESTS / module).read_text()
        if names == conftest.ALL:
            continue
        missing += [f"{module}::{name}" for name in names if not re.search(rf"^def {name}\(", source, re.M)]
    assert not missing, missing


def test_make_test_runs_everything_and_test_fast_leaves_out_the_slow_tier():
    makefile = (TESTS.parent / "Makefile").read_text()
    fast = re.search(r"^test-fast:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    full = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert '-m "not slow"' in fast and "-m" not in full.split("pytest", 1)[1]
    assert "slow:" in (TESTS.parent / "pyproject.toml").read_text()  # the marker is registered
