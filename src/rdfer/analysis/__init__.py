"""Tables and figures of the paper (SPEC 6) from a run's saved files, and reports.

Reads only files (predictions.csv, features.npy, final.json, metrics.jsonl,
config.yaml); never a live model or dataset.
"""

from rdfer.analysis.figures import Skipped, fig_confusion, fig_sample_frames, fig_training_curves, fig_tsne
from rdfer.analysis.report import compare_runs, comparison_table, write_report
from rdfer.analysis.run import Predictions, Run, load_run, read_predictions
from rdfer.analysis.tables import Table, table_v, table_vii, write_table

__all__ = [
    "Predictions", "Run", "Skipped", "Table", "compare_runs", "comparison_table", "fig_confusion", "fig_sample_frames",
    "fig_training_curves", "fig_tsne", "load_run", "read_predictions", "table_v", "table_vii", "write_report",
    "write_table",
]
