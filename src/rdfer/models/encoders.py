"""Frame encoders: 2D backbones that turn one frame into one feature vector.

Every encoder maps normalised frames float (N, 3, H, W) to features (N, D) and
carries `out_features = D`. Encoders are registered by name:

    @register_encoder("resnet18")
    def resnet18(pretrained=None) -> nn.Module: ...

    encoder = build_frame_encoder("resnet18", pretrained="imagenet")

`pretrained` is None (random init), a weights name the encoder knows (the
ResNets know "imagenet"), or the path of a local state-dict file, which
`build_frame_encoder` loads for every encoder alike (builders never see paths).
"""

import functools
import logging
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.utils.checkpoint import load_error_reason

log = logging.getLogger(__name__)

_ENCODERS: dict[str, Callable[[Optional[str]], nn.Module]] = {}
_LOADERS: dict[str, Callable[[nn.Module, str, str], None]] = {}
_SIZED: set[str] = set()


def register_encoder(name: str, load: Optional[Callable[[nn.Module, str, str], None]] = None,
                     sized: bool = False) -> Callable:
    """Register `fn(pretrained: str | None) -> nn.Module` as frame encoder `name`.

    The builder receives None or a weights *name* (never a path) and must raise
    RdferError for a name it does not know. The module it returns maps
    (N, 3, H, W) to (N, out_features) and has the attribute `out_features`.
    `load(encoder, path, what)` reads a local weights file into it; default
    `load_local_state_dict` (CLIP encoders read their own formats, models/clip.py).
    `sized`: the builder also takes `input_size` (a ViT builds its position grid for it).
    """

    def decorator(fn: Callable) -> Callable:
        if name in _ENCODERS:
            raise ValueError(f"frame encoder {name!r} is registered twice")
        _ENCODERS[name] = fn
        if load is not None:
            _LOADERS[name] = load
        if sized:
            _SIZED.add(name)
        return fn

    return decorator


def list_encoders() -> list[str]:
    """Names of every registered frame encoder, sorted."""
    return sorted(_ENCODERS)


def build_frame_encoder(name: str, pretrained: Optional[str] = None, input_size: Optional[int] = None) -> nn.Module:
    """Build frame encoder `name`, optionally with weights.

    Args:
        name: a registered encoder ("resnet50", "resnet18", "tiny", ...).
        pretrained: None, a weights name ("imagenet"), or a local state-dict file
            (anything with a path separator or a file suffix, or an existing file).
        input_size: the frame side the model feeds it; used by encoders registered `sized`.

    Returns:
        nn.Module mapping float (N, 3, H, W) to (N, out_features).
    """
    if name not in _ENCODERS:
        raise RdferError(f"unknown frame encoder {name!r}; known encoders: {', '.join(list_encoders())}")
    build = _ENCODERS[name]
    if name in _SIZED:
        build = functools.partial(build, input_size=input_size)
    if pretrained is None or not _looks_like_path(pretrained):
        return build(pretrained)
    encoder = build(None)
    _LOADERS.get(name, load_local_state_dict)(encoder, pretrained, f"frame encoder {name!r}")
    return encoder


def _looks_like_path(pretrained: str) -> bool:
    path = Path(pretrained)
    return path.exists() or path.suffix != "" or len(path.parts) > 1


# Keys of a classification head that a local file may carry but an encoder has
# removed (torchvision ResNet `fc`, Keras-converted `classifier`).
_HEAD_PREFIXES = ("fc.", "classifier.", "head.")


def load_local_state_dict(module: nn.Module, path: str, what: str) -> None:
    """Load the state dict in file `path` into `module` (strict, after dropping a head).

    Accepts a plain state dict or a dict holding one under "state_dict" or
    "model"; strips a DataParallel "module." prefix. Logs how many tensors matched.
    Raises RdferError when the file is missing or unreadable, or when its keys or
    shapes do not match `module`.
    """
    file = Path(path)
    if not file.is_file():
        raise RdferError(f"model.options.pretrained={path}: no such file; give the path of a PyTorch state-dict "
                         f"file for the {what}")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or pickled files
        raise RdferError(
            f"model.options.pretrained={path}: cannot read it as a PyTorch state dict: {load_error_reason(error)}; "
            "save the weights with torch.save(model.state_dict(), PATH)"
        ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise RdferError(f"model.options.pretrained={path}: the file does not hold a state dict (a dict of tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}

    own = module.state_dict()
    dropped = sorted(k for k in state if k not in own and k.startswith(_HEAD_PREFIXES))
    state = {k: v for k, v in state.items() if k not in dropped}
    check_keys(own, state, path, what, "pass a state dict saved from the same architecture")
    module.load_state_dict(state)
    log.info("loaded %d/%d tensors for the %s from %s (ignored head keys: %s)",
             len(state), len(own), what, path, ", ".join(dropped) or "none")


def check_keys(own: dict, state: dict, path, what: str, advice: str) -> None:
    """RdferError (one line) unless `state` has exactly the keys and shapes of the module's state dict `own`."""
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own)
    wrong_shape = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    if missing or unexpected or wrong_shape:
        raise RdferError(
            f"model.options.pretrained={path} does not fit the {what}: "
            f"{len(missing)} missing keys {missing[:3]}, {len(unexpected)} unexpected keys {unexpected[:3]}, "
            f"{len(wrong_shape)} keys with another shape {wrong_shape[:3]}; {advice}"
        )


def torchvision_state_dict(weights, what: str = "ImageNet weights") -> dict:
    """torchvision weights enum -> state dict; a failed download becomes a clear RdferError."""
    try:
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as error:  # URLError, socket errors, hash mismatch, ...
        cache = Path(torch.hub.get_dir()) / "checkpoints"
        raise RdferError(
            f"could not download the {what} ({weights}) from {weights.url} "
            f"({type(error).__name__}: {error}). On a machine with internet, download that file and copy it "
            f"into {cache} (torchvision then finds it offline), or give --set model.options.pretrained=PATH to "
            "load a local state dict (for example the downloaded file itself)."
        ) from error


def _torchvision_resnet(arch: str, weights_enum, pretrained: Optional[str]) -> nn.Module:
    import torchvision

    if pretrained not in (None, "imagenet"):
        raise RdferError(f"encoder {arch!r} knows the weights 'imagenet' or a local file path, not {pretrained!r}")
    net = getattr(torchvision.models, arch)(weights=None)
    if pretrained == "imagenet":
        # Default V2 weights where torchvision has them (ResNet-50: IMAGENET1K_V2).
        net.load_state_dict(torchvision_state_dict(weights_enum.DEFAULT))
    net.out_features = net.fc.in_features
    net.fc = nn.Identity()  # (N, 3, H, W) -> (N, out_features) pooled features
    return net


@register_encoder("resnet50")
def resnet50(pretrained: Optional[str] = None) -> nn.Module:
    """torchvision ResNet-50 without its classifier: (N, 3, H, W) -> (N, 2048). The paper's encoder."""
    import torchvision

    return _torchvision_resnet("resnet50", torchvision.models.ResNet50_Weights, pretrained)


@register_encoder("resnet18")
def resnet18(pretrained: Optional[str] = None) -> nn.Module:
    """torchvision ResNet-18 without its classifier: (N, 3, H, W) -> (N, 512). CPU default."""
    import torchvision

    return _torchvision_resnet("resnet18", torchvision.models.ResNet18_Weights, pretrained)


class TinyEncoder(nn.Module):
    """Four stride-2 conv-bn-relu stages (widths 16-32-64-128) and a global average pool.

    About 4 MMACs per 64x64 frame: it trains on 2 CPU cores in minutes, and it is
    the default backbone of the key-expression detecting network (docs/method.md).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        layers, in_channels = [], 3
        for width in widths:
            layers += [
                nn.Conv2d(in_channels, width, kernel_size=3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            in_channels = width
        self.features = nn.Sequential(*layers)
        self.out_features = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, out_features)."""
        return self.features(x).mean(dim=(2, 3))


@register_encoder("tiny")
def tiny(pretrained: Optional[str] = None) -> nn.Module:
    """TinyEncoder; it has no named weights (a local file path works)."""
    if pretrained is not None:
        raise RdferError(f"encoder 'tiny' has no named weights {pretrained!r}; pass a local state-dict file path")
    return TinyEncoder()
