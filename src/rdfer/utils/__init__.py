"""Small helpers shared across the package, one home each (they import only torch, numpy,
`rdfer.errors` and `rdfer.labels`, so every layer may use them):

- `device.resolve_device`: "auto" / "cpu" / "cuda:N" -> a torch.device, one-line errors.
- `distributed`: the DDP set-up under torchrun and every all-gather (objects, tensor rows).
- `checkpoint.read_checkpoint`: the one guarded `torch.load(weights_only=True)`.
- `ground_truth.read_ground_truth`: the synthetic benchmark's ground_truth.csv, parsed one way.
- `ranges`: the ranges of numeric options (config fields' `RANGES`, the CLI's `bounded`), checked one way.
- `bounded_yaml` / `bounded_tables`: every YAML, CSV, text list and JSON file a user gives is read within
  bounds (size, aliases, rows, fields, field length), with one line naming the file and line beyond them.
- `runlock.run_lock`: one run per output at a time (flock; released by the OS when a run dies; shared by
  `predict` runs, which merge);
  `runlock.update_lock`: one writer at a time of a file several writers share (read, merge, rewrite).
- `outputs`: `refuse_overwriting_inputs` (an output is never a file the command reads) and
  `atomic_output`, the one writer of every file (whole files or none, never through a link; a failed
  write names the file and leaves no temporary file; stale ones of killed runs are removed).
- `crash`: the error boundary of every entry point (an unexpected exception is one line; its traceback
  goes to a log file, or to the console under RDFER_DEBUG=1).
"""
