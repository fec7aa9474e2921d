"""Small helpers shared across the package, one home each (they import only torch, numpy,
`rdfer.errors` and `rdfer.labels`, so every layer may use them):

- `device.resolve_device`: "auto" / "cpu" / "cuda:N" -> a torch.device, one-line errors.
- `distributed`: the DDP set-up under torchrun and every all-gather (objects, tensor rows).
- `checkpoint.read_checkpoint`: the one guarded `torch.load(weights_only=True)`.
- `ground_truth.read_ground_truth`: the synthetic benchmark's ground_truth.csv, parsed one way.
"""
