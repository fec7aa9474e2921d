"""`rdfer models`: every registered model with its size and cost per clip."""

import argparse

from rdfer.errors import RdferError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list registered models with parameters and GFLOPs per clip",
        description="List every registered model with its parameters (millions) and its cost for one clip "
        "at its own input size and frame count. GMACs = multiply-adds; the paper's tables call these "
        "FLOPs. GFLOPs counts a multiply-add as 2.",
    )
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rdfer.utils.progress import progress_bar
    from rdfer.models import list_models  # imports torch: loaded when the command runs, not for --help

    names = args.names or list_models()
    unknown = sorted(set(names) - set(list_models()))
    if unknown:
        raise RdferError(f"unknown models {unknown}; known models: {', '.join(list_models())}")
    rows = [measure(name) for name in progress_bar(names, desc="measuring models", leave=False)]
    print(f"{'model':<28} {'params (M)':>10} {'GMACs/clip':>10} {'GFLOPs/clip':>11} {'frames':>6} {'size':>5}")
    for row in rows:
        print(f"{row['name']:<28} {row['params_m']:>10.2f} {row['gmacs']:>10.2f} {row['gflops']:>11.2f} "
              f"{row['num_frames']:>6} {row['input_size']:>5}")
    print("GMACs: multiply-adds for one clip (the paper's tables report these as 'FLOPs'); "
          "GFLOPs = 2 x GMACs, as torch.utils.flop_counter counts them.")
    return 0


def measure(name: str, **cfg) -> dict:
    """Parameters and cost of model `name` for one clip at its config's input size and frames.

    The model is built on the meta device where it can be (no memory, no compute),
    else on the CPU. Returns dict name, params_m, gflops, gmacs, num_frames, input_size.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from rdfer.models import create_model

    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                model = create_model(name, **cfg).eval()
                config = model.config
                video = torch.rand(1, config.num_frames, 3, config.input_size, config.input_size)
            counter = FlopCounterMode(display=False)
            with counter, torch.no_grad():
                model(video)
            break
        except (NotImplementedError, RuntimeError):
            if device == "cpu":
                raise
    flops = counter.get_total_flops()
    return {
        "name": name,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "gflops": flops / 1e9,
        "gmacs": flops / 2e9,
        "num_frames": config.num_frames,
        "input_size": config.input_size,
    }
