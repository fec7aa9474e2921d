"""Tables and figures of the paper (docs/method.md) from a run's saved files, and reports.

Reads only files (predictions.csv, features.npy, final.json, metrics.jsonl,
config.yaml); never a live model or dataset.

The public names are imported on first use: importing one submodule (say
`rdfer.analysis.run`) does not load matplotlib.
"""

import importlib

_PUBLIC = {
    "Skipped": "figures", "fig_confusion": "figures", "fig_sample_frames": "figures",
    "fig_training_curves": "figures", "fig_tsne": "figures",
    "compare_runs": "report", "comparison_table": "report", "write_report": "report",
    "Predictions": "run", "Run": "run", "load_run": "run", "read_predictions": "run",
    "Table": "tables", "table_v": "tables", "table_vii": "tables", "write_table": "tables",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"rdfer.analysis.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'rdfer.analysis' has no attribute {name!r}")
