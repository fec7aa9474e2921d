"""Subcommand: export (a model to ONNX, for `rdfer predict --model` or any ONNX runtime)."""


from rdfer.cli.options import add_out
from rdfer.cli.preflight import expect_inputs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="write a model as an ONNX file (with a sidecar JSON), checked against PyTorch",
        description="Export the built-in per-frame model (no --checkpoint) or a video model trained with "
                    "`rdfer train` to ONNX, with a sidecar FILE.json saying its classes, input and normalisation. "
                    "onnxruntime and PyTorch run the same inputs before the file is kept; the largest difference "
                    "of their probabilities is printed. `rdfer predict --model FILE.onnx` runs the file.")
    p.add_argument("--checkpoint", help="a checkpoint written by `rdfer train` (default: the built-in FER2013 "
                                        "mini-Xception per frame)")
    add_out(p, "the ONNX file to write (and FILE.json beside it)", required=True, metavar="FILE.onnx")
    p.set_defaults(func=export)
    expect_inputs(p, checkpoint="file")


def export(args) -> int:
    from rdfer.inference.export import TOLERANCE, export_onnx

    from rdfer.utils.runlock import run_lock

    with run_lock(args.out, "export"):  # two exports to one file never mix one's model with the other's sidecar
        r = export_onnx(args.out, checkpoint=args.checkpoint)
    print(f"rdfer export: wrote {r['out']} and {r['sidecar']} ({r['kind']} model: {r['name']}; classes "
          f"{', '.join(r['classes'])})")
    print(f"checked with onnxruntime against PyTorch on batches of {' and '.join(map(str, r['checked']))}: "
          f"max difference {r['max_difference']:.2e} (allowed {TOLERANCE:g})")
    return 0
