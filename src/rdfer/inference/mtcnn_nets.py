"""MTCNN's three networks in PyTorch, with facenet-pytorch's weights, and their ONNX export.

The cascade around them is rdfer.inference.mtcnn (numpy); the default detector runs
the ONNX files written by `export_mtcnn_onnx` (onnxruntime, no torch at run time;
model_cache.py keeps them), this module's `TorchNets` runs the same weights in
PyTorch (the reference the ONNX files are checked against, and the detector of
the PyTorch path).
"""

from pathlib import Path

import numpy as np
import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.inference.export import largest_difference, onnx_export
from rdfer.inference.mtcnn import NETS
from rdfer.inference.onnx_models import cpu_session
from rdfer.utils.checkpoint import load_error_reason
from rdfer.utils.outputs import atomic_output
from rdfer.utils.package_data import facenet_weights

OUTPUTS = ("regression", "probabilities")
EXAMPLE_SIDES = {"pnet": None, "rnet": 24, "onet": 48}  # input side of R-Net and O-Net; P-Net's is free


class _PNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), self.conv4_1(x).softmax(1)


class _RNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.dense5_1(x).softmax(1)


class _ONet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x):
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).flatten(1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_1(x).softmax(1)


def _load(net: nn.Module, path: Path) -> nn.Module:
    reinstall = "reinstall facenet-pytorch==2.6.0 with --no-deps"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # missing, truncated or pickled-with-code files raise many types
        raise RdferError(f"cannot load MTCNN weights {path}: {load_error_reason(error)}; {reinstall}") from None
    try:
        # facenet-pytorch's files name the (parameter-free) softmax layers too; nothing to load there.
        net.load_state_dict({k: v for k, v in state.items() if not k.startswith("softmax")})
    except (AttributeError, RuntimeError) as error:
        raise RdferError(f"MTCNN weights {path} do not fit the network ({' '.join(str(error).split())[:200]}); "
                         f"{reinstall}") from None
    return net.eval()


def load_networks(folder: Path | None = None) -> dict[str, nn.Module]:
    """{"pnet", "rnet", "onet"}: the networks with facenet-pytorch's weights (from `folder`, default its data)."""
    folder = facenet_weights() if folder is None else Path(folder)
    return {name: _load(net(), folder / f"{name}.pt") for name, net in zip(NETS, (_PNet, _RNet, _ONet))}


class _Runner:
    def __init__(self, net: nn.Module):
        self.net = net

    @torch.no_grad()
    def __call__(self, images: np.ndarray):
        # A channels-last view, as facenet-pytorch feeds its networks (the convolutions' last bits depend on it).
        reg, prob = self.net(torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2))
        return reg.numpy(), prob.numpy()


class TorchNets:
    """P-Net, R-Net and O-Net in PyTorch on the CPU, for `LeanMTCNN` (numpy in, numpy out)."""

    def __init__(self, networks: dict[str, nn.Module] | None = None):
        networks = networks or load_networks()
        self.pnet, self.rnet, self.onet = (_Runner(networks[name]) for name in NETS)


def export_mtcnn_onnx(folder, networks: dict[str, nn.Module] | None = None, seed: int = 0) -> dict:
    """Write pnet.onnx (input (1, 3, H, W), H and W free), rnet.onnx and onet.onnx (batch free) into `folder`,
    each checked against PyTorch with onnxruntime before it is renamed into place.

    Inputs are the normalised NCHW images; outputs `regression` and `probabilities`, as the
    PyTorch networks give them. Returns {"files": {name: Path}, "max_difference": largest |difference|
    of any output}. Raises RdferError when onnxruntime and PyTorch differ by more than export.TOLERANCE.
    """
    networks = networks or load_networks()
    generator = torch.Generator().manual_seed(seed)
    files, worst = {}, 0.0
    for name in NETS:
        side = EXAMPLE_SIDES[name]
        if side is None:  # P-Net: checked on other image sizes than the traced one
            example, checks = torch.zeros(1, 3, 37, 53), [(1, 3, 12, 12), (1, 3, 61, 45)]
            dynamic = {2: torch.export.Dim("height", min=12, max=8192), 3: torch.export.Dim("width", min=12, max=8192)}
        else:
            example, checks = torch.zeros(2, 3, side, side), [(1, 3, side, side), (5, 3, side, side)]
            dynamic = {0: torch.export.Dim("batch", min=1, max=65536)}
        path = Path(folder) / f"{name}.onnx"
        with atomic_output(path) as temp:
            onnx_export(networks[name], example, temp, OUTPUTS, dynamic)
            inputs = [torch.rand(shape, generator=generator) * 2 - 1 for shape in checks]  # the normalised range
            worst = max(worst, largest_difference(networks[name], cpu_session(temp, 1, f"MTCNN {name}"),
                                                  inputs, OUTPUTS, path))
        files[name] = path
    return {"files": files, "max_difference": worst}
