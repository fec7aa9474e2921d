"""Every table, list and JSON file rdfer is given is read within bounds (rdfer.utils.bounded_tables).

Each reader is given a file beyond one bound (the bound lowered for the test, so
the files stay small): it must stop with one line naming the file (and the line
where there is one). A reader that stops going through the bounded helper, or a
bound that is removed, fails here. The config side (every key's type, range and
list length) is tested in test_config_bounds.py.
"""

import pytest

import rdfer.utils.bounded_tables as bounded
from rdfer.analysis.run import _read_json, read_predictions
from rdfer.audit.relabel import read_decisions
from rdfer.audit.review import _read_csv
from rdfer.audit.verdict import read_out_of_fold
from rdfer.cli import main
from rdfer.data.layouts import read_lines
from rdfer.data.manifest import _csv_rows
from rdfer.errors import RdferError
from rdfer.inference.onnx_models import _read_mapping
from rdfer.utils.ground_truth import read_ground_truth

# reader name -> (call, the header of a file of its kind, one row of it)
CSV_READERS = {
    "split list": (read_lines, None, "clip_0001 3"),
    "csv manifest": (_csv_rows, "path,label,split", "a/clip1,Happy,train"),
    "decisions": (lambda path: read_decisions(path, None), "id,decision,new_label", "clip1,keep,"),
    "ground truth": (read_ground_truth, "video_name,is_noisy", "clip1,0"),
    "predictions": (read_predictions, "clip_id,path,label,prediction,agreement,p_A,p_B", "clip1,a,0,0,1,0.5,0.5"),
    "out-of-fold": (read_out_of_fold, "clip_id,label,fold,p_A,p_B", "clip1,0,1,0.5,0.5"),
    "audit issues/decisions (app, review)": (_read_csv, "id,decision", "clip1,keep"),
}
BOUNDS = {  # bound lowered -> (value, what the file then has too much of, text of the error)
    "rows": ("MAX_ROWS", 3, "rows"),
    "fields": ("MAX_FIELDS", 3, "fields"),
    "field": ("MAX_FIELD_CHARS", 40, "characters"),
    "size": ("MAX_TABLE_BYTES", 200, "bytes"),
}


def _write(path, header, row, bound):
    rows = [row] * (10 if bound in ("rows", "size") else 1)
    if bound == "size":
        rows = [row] * 40
    if bound == "fields":
        row = row + "," * 5 if header is None else row
        header = None if header is None else header + ",x,y,z,w"
        rows = [row + ",1,2,3,4" if header else row.replace(" ", ",") + ",1,2,3,4"]
    if bound == "field":
        rows = [row.replace("clip1", "c" * 60).replace("clip_0001", "c" * 60)]
    lines = ([header] if header else []) + rows
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("bound", sorted(BOUNDS))
@pytest.mark.parametrize("reader", sorted(CSV_READERS))
def test_every_reader_stops_at_every_bound_with_one_line(reader, bound, tmp_path, monkeypatch):
    call, header, row = CSV_READERS[reader]
    if reader == "split list" and bound == "fields":
        pytest.skip("a split list is lines, not fields")
    name, value, text = BOUNDS[bound]
    monkeypatch.setattr(bounded, name, value)
    path = tmp_path / "input.csv"
    _write(path, header, row, bound)
    with pytest.raises(RdferError) as error:
        call(path)
    message = str(error.value)
    assert str(path) in message and "\n" not in message, message
    assert text in message, message
    if bound != "size":
        assert " line " in message, message


def test_the_same_files_within_the_bounds_are_read(tmp_path):
    """The control: each file above, at the default bounds, is read (or refused for its content, not its size)."""
    for reader, (call, header, row) in CSV_READERS.items():
        path = tmp_path / f"{reader.split()[0]}.csv"
        _write(path, header, row, "rows")
        try:
            call(path)
        except Exception as error:  # noqa: BLE001 - refused for what it holds (a reader's own checks), not its size
            assert "more than" not in str(error), (reader, error)


@pytest.mark.parametrize("reader", [_read_json, _read_mapping], ids=["run json", "model spec"])
def test_json_files_are_bounded_in_size(reader, tmp_path, monkeypatch):
    monkeypatch.setattr(bounded, "MAX_JSON_BYTES", 100)
    path = tmp_path / "spec.json"
    path.write_text('{"classes": [' + ", ".join(['"x"'] * 100) + "]}")
    with pytest.raises(RdferError) as error:
        reader(path)
    assert str(path) in str(error.value) and "bytes" in str(error.value)


def test_a_field_longer_than_csvs_own_limit_is_one_line(tmp_path):
    path = tmp_path / "decisions.csv"
    path.write_text("id,decision\n" + "x" * 200_000 + ",keep\n")
    with pytest.raises(RdferError) as error:
        read_decisions(path, None)
    assert str(path) in str(error.value) and "line 2" in str(error.value)


def test_not_utf8_is_one_line_naming_the_file(tmp_path):
    path = tmp_path / "ground_truth.csv"
    path.write_bytes(b"video_name,is_noisy\n\xff\xfe\x00clip,1\n")
    with pytest.raises(RdferError) as error:
        read_ground_truth(path)
    assert str(path) in str(error.value) and "UTF-8" in str(error.value)


def test_the_cli_refuses_an_oversized_ground_truth_file_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bounded, "MAX_ROWS", 5)
    root = tmp_path / "data"
    root.mkdir()
    truth = tmp_path / "ground_truth.csv"
    truth.write_text("video_name,is_noisy,is_hard\n" + "clip,0,0\n" * 20)
    code = main(["audit", "--config", "demo", "--set", f"data.root={root}", "--ground-truth", str(truth),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(truth) in err[0] and "rows" in err[0], err
    assert not (tmp_path / "out").exists()
