"""CLIP ViT frame encoders (open_clip's image tower) and RDFER on them.

    encoder = build_frame_encoder("clip_vit_b16", pretrained="openai")     # ~/.cache/clip/ViT-B-16.pt
    encoder = build_frame_encoder("clip_vit_b16", pretrained="/weights/ViT-B-16.pt")
    model = rdfer.create_model("rdfer_clip_b16", pretrained="openai")
    model = rdfer.create_model("rdfer_clip_b16", encoder="clip_vit_l14", pretrained="openai")   # ViT-L/14

The encoder is open_clip's `VisionTransformer`, built from open_clip's own
architecture config ("ViT-B-16", "ViT-L-14"); only the image tower is built (no
text tower). It maps normalised frames (N, 3, S, S) to the projected CLIP image
embedding (N, 512) for B/16, (N, 768) for L/14. CLIP was trained at S = 224; a
model with another input_size (the paper's 112, say) gets a position grid of
S / patch cells, and pretrained position embeddings are resized to it (bicubic,
as open_clip and timm do).

Weights come only from a file the user has; nothing is downloaded (open_clip's
`pretrained=` tags would download, so they are never used):
  - OpenAI's released `ViT-B-16.pt` / `ViT-L-14.pt` (TorchScript archives, or the
    same weights saved as a state dict);
  - an open_clip checkpoint (`open_clip_pytorch_model.bin`, a training checkpoint
    with "state_dict" and "module." keys, ...);
  - a state dict of the image tower alone (what a fine-tuned rdfer encoder holds).
`pretrained="openai"` looks for OpenAI's file where OpenAI's `clip` package keeps
it (~/.cache/clip/) or in torch hub's checkpoints folder; without it, a one-line
error says where to put it.

OpenAI's models were trained with QuickGELU, as were open_clip checkpoints of
OpenAI weights: `clip_vit_b16` and `clip_vit_l14` use it. open_clip's own
LAION / DataComp checkpoints use nn.GELU: use `clip_vit_b16_gelu` / `clip_vit_l14_gelu`
(the parameters are the same, so a file loads into either; the activation must
match how it was trained).
"""

import logging
import math
import zipfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.models._builder import build_video_model
from rdfer.models._registry import register_model
from rdfer.models.encoders import check_keys, register_encoder
from rdfer.models.rdfer_net import ModelConfig, RDFERNet
from rdfer.utils.checkpoint import load_error_reason

log = logging.getLogger(__name__)

# CLIP's image normalisation (OpenAI's preprocess).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# encoder name -> (open_clip architecture, QuickGELU, OpenAI's file name)
ARCHITECTURES = {
    "clip_vit_b16": ("ViT-B-16", True, "ViT-B-16.pt"),
    "clip_vit_l14": ("ViT-L-14", True, "ViT-L-14.pt"),
    "clip_vit_b16_gelu": ("ViT-B-16", False, "ViT-B-16.pt"),
    "clip_vit_l14_gelu": ("ViT-L-14", False, "ViT-L-14.pt"),
}
OPENAI_URLS = {  # where OpenAI publishes them (named in the error message; never fetched here)
    "ViT-B-16.pt": "https://openaipublic.azureedge.net/clip/models/"
                   "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
    "ViT-L-14.pt": "https://openaipublic.azureedge.net/clip/models/"
                   "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
}


class ClipFrameEncoder(nn.Module):
    """open_clip's CLIP image tower: normalised frames (N, 3, S, S) -> image embeddings (N, out_features).

    Args:
        embed_dim: the projected embedding width (out_features).
        vision_cfg: open_clip's vision config (a dict of `CLIPVisionCfg` fields).
        quick_gelu: QuickGELU (OpenAI's weights) or nn.GELU.
    """

    def __init__(self, embed_dim: int, vision_cfg: dict, quick_gelu: bool):
        super().__init__()
        from open_clip.model import _build_vision_tower  # heavy (timm, huggingface_hub): only when built

        self.visual = _build_vision_tower(embed_dim, vision_cfg, quick_gelu=quick_gelu)
        self.image_size = int(vision_cfg.get("image_size", 224))
        self.out_features = embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, S, S) with S = image_size -> (N, out_features)."""
        if x.shape[-2:] != (self.image_size, self.image_size):
            raise RdferError(f"the CLIP encoder takes {self.image_size}x{self.image_size} frames, got "
                             f"{tuple(x.shape[-2:])}: set model.options.input_size={self.image_size}")
        return self.visual(x)

    def load_weights(self, path: str, what: str) -> None:
        """Load a CLIP checkpoint file (see the module docstring) into the image tower, strict keys."""
        state = read_clip_state_dict(path)
        own = self.visual.state_dict()
        if "positional_embedding" in state and state["positional_embedding"].shape != own["positional_embedding"].shape:
            state["positional_embedding"] = resize_position_grid(state["positional_embedding"],
                                                                 own["positional_embedding"].shape[0])
        check_keys(own, state, path, what, "pass weights of the same CLIP architecture (ViT-B/16 or ViT-L/14)")
        self.visual.load_state_dict({k: v.float() for k, v in state.items()})
        log.info("loaded %d tensors for the %s from %s", len(state), what, path)


def read_clip_state_dict(path) -> dict:
    """The image tower's state dict (open_clip's key names, without "visual.") from a CLIP weights file.

    Reads TorchScript archives (OpenAI's releases) with torch.jit.load, everything
    else with torch.load(weights_only=True). Raises RdferError (one line) for a
    missing, unreadable or non-CLIP file.
    """
    file = Path(path)
    if not file.is_file():
        raise RdferError(f"model.options.pretrained={path}: no such file; give OpenAI's ViT-B-16.pt / ViT-L-14.pt or an "
                         "open_clip checkpoint")
    try:
        if _is_torchscript(file):
            state = torch.jit.load(str(file), map_location="cpu").state_dict()
        else:
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for corrupt or pickled files
        raise RdferError(f"model.options.pretrained={path}: cannot read it as CLIP weights: "
                         f"{load_error_reason(error)}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise RdferError(f"model.options.pretrained={path}: the file does not hold a state dict (a dict of tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if any(k.startswith("visual.") for k in state):  # a whole CLIP model: keep its image tower
        state = {k.removeprefix("visual."): v for k, v in state.items() if k.startswith("visual.")}
    if "conv1.weight" not in state:
        raise RdferError(f"model.options.pretrained={path}: no CLIP ViT image tower in it (no visual.conv1.weight); give "
                         "OpenAI's ViT-B-16.pt / ViT-L-14.pt or an open_clip ViT checkpoint")
    return state


def resize_position_grid(embedding: torch.Tensor, tokens: int) -> torch.Tensor:
    """CLIP position embeddings (1 + g * g, D) resized to `tokens` = 1 + h * h (bicubic on the grid; class token kept)."""
    old, new = math.isqrt(embedding.shape[0] - 1), math.isqrt(tokens - 1)
    if old * old != embedding.shape[0] - 1 or new * new != tokens - 1:
        return embedding  # not a square grid: the strict key check reports the mismatch
    grid = embedding[1:].float().reshape(1, old, old, -1).permute(0, 3, 1, 2)  # (1, D, g, g)
    grid = nn.functional.interpolate(grid, size=(new, new), mode="bicubic", align_corners=False)
    return torch.cat([embedding[:1].float(), grid.permute(0, 2, 3, 1).reshape(new * new, -1)])  # (1 + h * h, D)


def _is_torchscript(file: Path) -> bool:
    """A TorchScript archive is a zip holding compiled code (`ARCHIVE/code/...`)."""
    if not zipfile.is_zipfile(file):
        return False
    with zipfile.ZipFile(file) as archive:
        return any("/code/" in name for name in archive.namelist())


def openai_weights_file(file_name: str) -> Path:
    """Where OpenAI's `file_name` is, in ~/.cache/clip or torch hub's checkpoints folder; RdferError if nowhere."""
    places = [Path.home() / ".cache" / "clip" / file_name, Path(torch.hub.get_dir()) / "checkpoints" / file_name]
    for place in places:
        if place.is_file():
            return place
    raise RdferError(
        f"the CLIP weights 'openai' ({file_name}) are not on this machine, and rdfer downloads nothing at run time. "
        f"On a machine with internet, download {OPENAI_URLS[file_name]} and copy it to {places[0]}, or pass "
        f"--set model.options.pretrained=PATH with the file (an open_clip checkpoint works too)")


def build_clip_encoder(name: str, pretrained: Optional[str] = None, input_size: Optional[int] = None, *,
                       vision_cfg: Optional[dict] = None, embed_dim: Optional[int] = None) -> ClipFrameEncoder:
    """CLIP encoder `name` (a key of ARCHITECTURES) with random weights, "openai", or a weights file.

    `input_size`: the frame side (None: the architecture's, 224). `vision_cfg` / `embed_dim`
    replace the architecture's (tests build a tiny ViT this way).
    """
    import open_clip

    architecture, quick_gelu, file_name = ARCHITECTURES[name]
    if pretrained not in (None, "openai") and not Path(pretrained).suffix and len(Path(pretrained).parts) == 1:
        raise RdferError(f"encoder {name!r} knows the weights 'openai' or a local file path, not {pretrained!r} "
                         "(open_clip's download tags are not used: rdfer downloads nothing at run time)")
    path = openai_weights_file(file_name) if pretrained == "openai" else pretrained  # before the slow build
    config = open_clip.get_model_config(architecture)
    vision_cfg = dict(vision_cfg or config["vision_cfg"])
    if input_size:
        vision_cfg["image_size"] = input_size
    encoder = ClipFrameEncoder(embed_dim or config["embed_dim"], vision_cfg, quick_gelu)
    if path is not None:
        encoder.load_weights(str(path), what=f"frame encoder {name!r}")
    return encoder


def _register(name: str) -> None:
    def builder(pretrained: Optional[str] = None, input_size: Optional[int] = None) -> nn.Module:
        return build_clip_encoder(name, pretrained, input_size)

    builder.__doc__ = f"open_clip {ARCHITECTURES[name][0]} image tower; weights 'openai' or a CLIP weights file."
    register_encoder(name, load=lambda encoder, path, what: encoder.load_weights(path, what), sized=True)(builder)


for _name in ARCHITECTURES:
    _register(_name)

# CLIP's 224 px frames and normalisation; the detector stays the tiny one (docs/method.md).
_CLIP_DEFAULTS = {"input_size": 224, "mean": CLIP_MEAN, "std": CLIP_STD}


@register_model
def rdfer_clip_b16(**cfg) -> RDFERNet:
    """RDFER with a CLIP ViT-B/16 frame encoder (open_clip) at 224 px; pretrained="openai" or a file."""
    return build_video_model(RDFERNet, ModelConfig, "rdfer_clip_b16", {"encoder": "clip_vit_b16", **_CLIP_DEFAULTS},
                             cfg)

# ViT-L/14 is the encoder "clip_vit_l14" of the same model (create_model("rdfer_clip_b16", encoder="clip_vit_l14")),
# not a variant of its own: every registered variant is built in the test suite, and L/14 takes 300 M parameters.
