"""The package's structure: what building the CLI parser loads (start-up time)."""

import subprocess
import sys

HEAVY = ("torch", "torchvision", "matplotlib", "cv2", "sklearn", "cleanlab", "omegaconf")


def test_building_the_cli_parser_imports_no_heavy_module():
    # Every rdfer command builds the whole parser first: a heavy import here costs every command
    # (matplotlib through rdfer.analysis cost 0.5 s before).
    code = ("import sys; from rdfer.cli import build_parser; build_parser(); "
            f"print(' '.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
