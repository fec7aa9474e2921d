"""RDFER: key expression re-sampling + dual-stream hierarchical network.

Read top to bottom, a forward pass is the paper's Fig. 2:

    video (B, 64, 3, H, W) in [0, 1] --normalise-->
    KeyExpressionDetector (detector.py): F = F_b(V) of 16 scanned frames, time kept, eq. (3);
        mu, delta = F_d(F) eq. (4); 16 frames re-sampled around mu with stride delta;
        S = sigmoid(F_s(f)), f the time mean of F, eq. (5)
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
re-samples *features* the way it re-samples frames. Because a frame's feature then
depends on that frame alone, the model also takes precomputed features
(B, T, D) instead of video, which is what `rdfer features` caches: cached and
uncached runs compute the same thing.
"""

from dataclasses import dataclass
from typing import ClassVar, Optional

import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.models._builder import build_video_model
from rdfer.models._registry import register_model
from rdfer.models.base import ModelOutput, VideoConfig, VideoModel
from rdfer.models.dual_stream import DualStreamHierarchical
from rdfer.models.encoders import build_frame_encoder
from rdfer.utils.ranges import Range


@dataclass(frozen=True)
class ModelConfig(VideoConfig):
    """Everything needed to rebuild an RDFER model; stored in every checkpoint.

    The fields every model has (num_classes, pretrained = the encoder's weights:
    None, "imagenet" or a state-dict path, input_size, num_frames, mean, std,
    resample, summary, the detector's, n1, n2) are VideoConfig's (base.py).
    """

    encoder: str = "resnet18"  # frame encoder of the dual-stream network (encoders.py)
    summary_fusion: str = "gate"  # how S meets f: "gate" (f * S, the default of docs/method.md) or "concat" ([f, S])
    dual_stream: bool = True  # both streams; False = Table III "w/o dual-stream" (S_e(S_m(.)) only)
    hierarchy: bool = True  # Algorithm 1; False = Table III "w/o hierarchical" (S_m(R) + S_e(R))
    fusion: str = "add"  # stream fusion: "add" (f_me + f_em, Algorithm 1) or "concat"
    width: int = 512  # C', the projection width and the BiLSTM output width
    hidden: int = 256  # BiLSTM hidden units per direction (width = 2 * hidden)
    # Fixed encoder (eval mode, no gradient) whose per-frame features drive the detector and the
    # dual-stream network; the model then also takes cached features (B, T, D). See the module docstring.
    frozen_encoder: bool = False

    RANGES: ClassVar[dict] = {**VideoConfig.RANGES, "width": Range(2, 8192), "hidden": Range(1, 4096)}

    def __post_init__(self):
        super().__post_init__()
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


class RDFERNet(VideoModel):
    """The RDFER network; see the module docstring for the data flow."""

    def __init__(self, config: ModelConfig):
        super().__init__(config)
        self.encoder = build_frame_encoder(config.encoder, config.pretrained, input_size=config.input_size)
        if config.frozen_encoder:
            self.encoder.requires_grad_(False)
        self.dual_stream = DualStreamHierarchical(
            self.encoder.out_features, config.width, config.hidden, config.n1, config.n2,
            dual_stream=config.dual_stream, hierarchy=config.hierarchy, fusion=config.fusion,
        )
        feature_width = self.dual_stream.out_features
        self.detector = self.key_expression_detector(
            feature_width, feature_width=self.encoder.out_features if config.frozen_encoder else None)
        concat_summary = config.summary and config.summary_fusion == "concat"
        self.out_features = 2 * feature_width if concat_summary else feature_width
        self.classifier = nn.Linear(self.out_features, config.num_classes)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.config.frozen_encoder:
            self.encoder.eval()  # frozen: its batch-norm statistics stay those it was trained with
        return self

    def forward(self, video: torch.Tensor) -> ModelOutput:
        """Classify clips.

        Args:
            video: float (B, num_frames, 3, H, W) in [0, 1]; with `frozen_encoder`,
                also the encoder's features of those frames, float (B, num_frames, D).
        Returns:
            ModelOutput: logits (B, num_classes); clip_logits (B, n1, num_classes);
            features (B, out_features), the classifier's input; mu and delta
            (B,) or None without re-sampling.
        """
        x = self.inputs(video)  # (B, T, 3, H, W) normalised frames, or (B, T, D) frozen features
        detected = self.detect(x)  # eqs. (3)-(5): 16 re-sampled frames (or features), mu, delta, S
        x, summary = detected["frames"], detected["summary"]
        if x.dim() == 5:
            batch, frames = x.shape[:2]  # frames = n1 * n2 = 16
            x = self.encoder(x.flatten(0, 1)).view(batch, frames, -1)  # (B, 16, D)
        f, u = self.dual_stream(x)  # Algorithm 1: (B, C'), (B, n1, C')
        features = self.fuse_summary(f, summary)  # (B, out_features)

        # Eq. (1): E_i = f(V_i), the prediction for clip i, is the same head applied to u_i
        # (no extra forward pass). Where the streams are concatenated, u_i fills both
        # slots: what the head would say if every stream had seen only clip i.
        if self.dual_stream.out_features != u.shape[-1]:
            u = torch.cat([u, u], dim=-1)  # (B, n1, 2 C')
        clip_features = self.fuse_summary(u, summary)  # (B, n1, out_features)
        return self.classify(features, clip_features, detected)

    def inputs(self, video: torch.Tensor) -> torch.Tensor:
        """Check the input; normalised frames, or (frozen encoder) the features of every frame."""
        config, width = self.config, self.encoder.out_features
        if config.frozen_encoder and video.dim() == 3:
            if video.shape[1:] != (config.num_frames, width):
                raise RdferError(f"model {config.name} takes features (B, {config.num_frames}, {width}), "
                                 f"got {tuple(video.shape)}: were they cached with another encoder?")
            return video
        self.check_video(video)
        if not config.frozen_encoder:
            return self.normalise(video)  # (B, T, 3, H, W)
        return self.frame_features(video)

    @torch.no_grad()
    def frame_features(self, video: torch.Tensor) -> torch.Tensor:
        """Frozen-encoder features of frames: video (B, T, 3, H, W) in [0, 1] -> (B, T, D).

        What `rdfer features` caches; frames are encoded 256 at a time.
        """
        batch, count = video.shape[:2]
        flat = self.normalise(video).flatten(0, 1)  # (B*T, 3, H, W)
        return torch.cat([self.encoder(part) for part in flat.split(256)]).view(batch, count, -1)

    def fuse_summary(self, f: torch.Tensor, summary: Optional[torch.Tensor]) -> torch.Tensor:
        """Fuse the global summary S (B, C) into a feature (B, C) or (B, n1, C): gate f * S or concat [f, S]."""
        if summary is None or self.config.summary_fusion == "gate":
            return super().fuse_summary(f, summary)
        summary = summary if f.dim() == 2 else summary[:, None]  # (B, C) or (B, 1, C)
        return torch.cat([f, summary.expand_as(f)], dim=-1)


# The loss of eq. (2), reweighted by the agreement of the clip logits, lives in rdfer.losses.


@register_model
def rdfer_r50(**cfg) -> RDFERNet:
    """The paper's RDFER: ResNet-50 frame encoder at 112 px, tiny detector."""
    return build_video_model(RDFERNet, ModelConfig, "rdfer_r50", {"encoder": "resnet50"}, cfg)


@register_model
def rdfer_r18(**cfg) -> RDFERNet:
    """RDFER with a ResNet-18 frame encoder: the CPU-friendly default."""
    return build_video_model(RDFERNet, ModelConfig, "rdfer_r18", {"encoder": "resnet18"}, cfg)


@register_model
def rdfer_tiny(**cfg) -> RDFERNet:
    """RDFER with the tiny encoder at 64 px and narrow BiLSTMs: trains on 2 CPU cores in minutes."""
    defaults = {"encoder": "tiny", "input_size": 64, "width": 128, "hidden": 64}
    return build_video_model(RDFERNet, ModelConfig, "rdfer_tiny", defaults, cfg)
