"""Subcommand: app (a local web page over predict and audit; docs/app.md)."""

from rdfer.cli.options import THREADS
from rdfer.utils.ranges import bounded


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "app", parents=[THREADS], help="a local web page: predict your videos, review an audit's flagged clips",
        description="Start a web server on this machine (127.0.0.1 by default) with two pages: predict (drop "
                    "videos or images, or give a folder: labels, trust, timelines, downloads) and audit (open an "
                    "`rdfer audit` folder, keep/relabel/drop its flagged clips into the decisions file "
                    "`rdfer audit --apply` reads). Works offline. See docs/app.md.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to your "
                        "network, with no password)")
    p.add_argument("--port", type=bounded(int, 0, 65535), default=8765, help="port (default 8765; 0: any free port)")
    p.add_argument("--work", default="rdfer_app",
                   help="work folder: uploads, outputs, decisions files (default ./rdfer_app); the server writes "
                        "nowhere else and serves no file outside it")
    p.add_argument("--max-upload-mb", type=bounded(float, 1, 1_000_000), default=500.0,
                   help="largest file the page accepts (default 500 MB; give a folder for bigger ones)")
    p.set_defaults(func=app)


def app(args) -> int:
    import cv2
    import torch

    from rdfer.app.server import serve
    from rdfer.inference.onnx_models import set_threads

    torch.set_num_threads(args.threads or 1)  # a checkpoint's model
    set_threads(args.threads or 1)  # the built-in model and MTCNN (onnxruntime)
    cv2.setNumThreads(args.threads or 1)
    serve(args.host, args.port, args.work, max_upload_mb=args.max_upload_mb)
    return 0
