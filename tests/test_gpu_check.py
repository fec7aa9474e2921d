"""scripts/gpu_check.py in its CPU mode: the steps that are quick here run, and the report says what it measured."""

import pytest


@pytest.fixture(scope="module")
def gpu_check(load_script):
    return load_script("gpu_check")


def test_cpu_mode_measures_and_reports_each_figure_with_its_command(gpu_check, tmp_path):
    out = tmp_path / "performance.md"
    code = gpu_check.main(["--cpu", "--out", str(out), "--work", str(tmp_path / "work"),
                           "--only", "data,bench-data"])
    text = out.read_text()
    assert code == 0, text
    assert "torch " in text and "CPU mode" in text
    figures = [line for line in text.splitlines() if line.startswith("| ") and "`rdfer " in line]
    names = " ".join(line.split(" | ")[0] for line in figures)
    assert "full-scale synthetic DFEW" in names and "bench data" in names
    for line in figures:
        name, value, command, device, date = line.strip("| ").split(" | ")
        assert any(ch.isdigit() for ch in value), line  # a measured number, not a placeholder
        assert command.startswith("`rdfer ") and "CPU" in device and "UTC" in date


def test_a_failing_step_is_reported_and_the_run_exits_1(gpu_check, tmp_path, monkeypatch):
    def broken(*args):
        raise RuntimeError("rdfer bench-data exited 2: no clips")

    monkeypatch.setattr(gpu_check, "bench_data", broken)
    out = tmp_path / "performance.md"
    code = gpu_check.main(["--cpu", "--out", str(out), "--work", str(tmp_path / "work"), "--only", "bench-data"])
    assert code == 1
    assert "| step bench-data | **FAILED** | RuntimeError: rdfer bench-data exited 2: no clips |" in out.read_text()


def test_gpu_mode_without_a_gpu_and_cpu_mode_without_out_are_one_line_errors(gpu_check, capsys, monkeypatch):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    assert gpu_check.main([]) == 2
    assert gpu_check.main(["--cpu"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "--cpu" in errors[0] and "--out" in errors[1]
