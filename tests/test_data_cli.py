"""check-dataset, pack, bench data and synth subcommands on tiny datasets."""

import argparse
import shutil

import pytest

from fixtures_data import make_dfew, make_ferv39k
from rdfer.cli import data as data_cli
from rdfer.data import build_manifest


def run(argv):
    parser = argparse.ArgumentParser(prog="rdfer")
    subparsers = parser.add_subparsers(dest="command", required=True)
    data_cli.register(subparsers)
    data_cli.register_bench(subparsers.add_parser("bench").add_subparsers(dest="benchmark"), subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


def test_check_dataset_clean_dfew_compares_with_official_sizes(tmp_path, capsys):
    make_dfew(tmp_path, fold=1)
    assert run(["check-dataset", "--dataset", "dfew", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    train = next(line for line in lines if line.startswith("train "))
    assert train.split() == ["train", "4", "4", "0", "0", "0", "0", "0", "0", "0", "0", "9356"]
    test = next(line for line in lines if line.startswith("test "))
    assert test.split()[-1] == "2341"
    happy = next(line for line in lines if line.startswith("Happy"))
    assert happy.split() == ["Happy", "1", "1956", "0", "489"]  # official fold-1 Happy counts
    assert "no problems found" in out


def test_check_dataset_counts_each_kind_of_problem(tmp_path, capsys):
    expected = make_dfew(tmp_path, per_split=5)
    train = expected["train"]
    shutil.rmtree(train[0][3])
    for frame in train[1][3].iterdir():
        frame.unlink()
    last = sorted(train[2][3].iterdir(), key=lambda p: int(p.stem))[-1]
    last.write_bytes(last.read_bytes()[:40])  # truncated JPEG
    assert run(["check-dataset", "--dataset", "dfew", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("train ")).split()
    # listed found missing empty unreadable damaged: a cut-off frame is replaced by the loader
    assert row[:7] == ["train", "5", "3", "1", "1", "0", "1"]
    assert "3 problem(s)" in out and "[damaged]" in out and train[2][0] in out


def test_check_dataset_ferv39k(tmp_path, capsys):
    make_ferv39k(tmp_path)
    assert run(["check-dataset", "--dataset", "ferv39k", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "31088" in out and "7847" in out


def test_pack_then_bench_data_prints_both_loaders_and_ratio(tmp_path, capsys):
    make_dfew(tmp_path / "dfew")
    pack = tmp_path / "train.rdfpack"
    assert run(["pack", "--dataset", "dfew", "--root", str(tmp_path / "dfew"), "--split", "train",
                "--out", str(pack), "--load-size", "32"]) == 0
    assert len(build_manifest("packed", pack, "train")) == 4
    capsys.readouterr()
    assert run(["bench", "data", "--dataset", "dfew", "--root", str(tmp_path / "dfew"), "--clips", "4",
                "--workers", "0", "--frames", "8", "--batch-size", "2", "--load-size", "32",
                "--packed", str(pack)]) == 0
    out = capsys.readouterr().out
    ours = next(line for line in out.splitlines() if line.startswith("rdfer ("))
    reference = next(line for line in out.splitlines() if line.startswith("reference ("))
    assert float(ours.split()[-2]) > 0 and float(reference.split()[-2]) > 0
    assert "ratio:" in out and "x clips/s" in out


def test_synth_output_is_read_by_the_dfew_loader(tmp_path, capsys):
    out = tmp_path / "synth"
    assert run(["synth", "--out", str(out), "--layout", "dfew", "--clips", "7", "--size", "24",
                "--seed", "2"]) == 0
    assert "Synthetic DFER benchmark" in capsys.readouterr().out
    train = build_manifest("dfew", out, "train", fold=1)
    test = build_manifest("dfew", out, "test", fold=1)
    assert len(train) + len(test) == 7
    gt = (out / "ground_truth.csv").read_text().splitlines()
    given = {line.split(",")[0]: int(line.split(",")[2]) - 1 for line in gt[1:]}
    assert all(given[r.clip_id] == r.label for r in train.records + test.records)


def test_cli_errors_are_rdfer_errors(tmp_path):
    from rdfer.errors import RdferError

    with pytest.raises(RdferError, match="DFEW frames not found"):
        run(["check-dataset", "--dataset", "dfew", "--root", str(tmp_path)])
