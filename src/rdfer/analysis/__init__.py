"""Tables of the paper (docs/method.md) and reports from a run's saved files; the figures are rdfer.figures.

Reads only files (predictions.csv, features.npy, final.json, metrics.jsonl,
config.yaml); never a live model or dataset.

The public names are imported on first use: importing one submodule (say
`rdfer.analysis.run`) does not load matplotlib.
"""

import importlib

_PUBLIC = {
    "Skipped": "rdfer.figures.base", "fig_confusion": "rdfer.figures.paper", "fig_sample_frames": "rdfer.figures.paper",
    "fig_training_curves": "rdfer.figures.paper", "fig_tsne": "rdfer.figures.paper",
    "compare_runs": "rdfer.analysis.report", "comparison_table": "rdfer.analysis.report",
    "write_report": "rdfer.analysis.report",
    "Predictions": "rdfer.analysis.run", "Run": "rdfer.analysis.run", "load_run": "rdfer.analysis.run",
    "read_predictions": "rdfer.analysis.run",
    "Table": "rdfer.analysis.tables", "table_v": "rdfer.analysis.tables", "table_vii": "rdfer.analysis.tables",
    "write_table": "rdfer.analysis.tables",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'rdfer.analysis' has no attribute {name!r}")
