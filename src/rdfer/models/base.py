"""What every video model shares: its config fields, its base class and its output.

    VideoConfig   the fields and checks common to every model's config (RDFERNet's
                  ModelConfig and the baselines' BaselineConfig extend it)
    VideoModel    the base class: normalisation inside the model, the input check, the
                  optional key expression detector and its summary gate, the linear head
    ModelOutput   what every model's forward returns

A model is built from its config alone (`_builder.build_video_model`), and the
config is stored in every checkpoint (`checkpoint.py`), so a checkpoint rebuilds
the same architecture with the same preprocessing.
"""

from dataclasses import dataclass, fields
from typing import ClassVar, Optional

import torch
from torch import nn

from rdfer.errors import RdferError
from rdfer.models.detector import KERNELS, LOCATORS, KeyExpressionDetector
from rdfer.utils.ranges import Range

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class VideoConfig:
    """The config fields every video model has; a model's config dataclass extends it."""

    name: str  # registered model name that built this config
    num_classes: int = 7  # output classes (7 for DFEW / FERV39K, 11 for MAFW)
    pretrained: Optional[str] = None  # encoder or backbone weights: None, a name (see each model) or a state-dict path
    input_size: int = 112  # frame side in pixels that preprocessing resizes/crops to
    num_frames: Optional[int] = None  # frames the model takes; None -> 64 with re-sampling, else n1 * n2
    mean: tuple = IMAGENET_MEAN  # per-channel mean used to normalise [0, 1] frames inside the model
    std: tuple = IMAGENET_STD  # per-channel std used to normalise [0, 1] frames inside the model
    resample: bool = True  # key expression re-sampling (the detector) in front; False = Table III "w/o re-sampling"
    summary: bool = True  # global summary S (eq. 5) gating the features; forced False without re-sampling
    detector_encoder: str = "tiny"  # tiny backbone F_b of the detecting network
    detector_pretrained: Optional[str] = None  # F_b weights, like `pretrained`
    d_min: float = 0.5  # smallest stride delta, dense frames
    d_max: float = 4.0625  # largest stride; docs/method.md says 4, but sigmoid never reaches it (detector.py)
    # How the detector finds and re-samples the key expression (detector.py, docs/method.md): F_d
    # "moments" (per-frame scores, mu and delta their mean and spread over time) or "linear" (SPEC 2:
    # one linear layer over the flattened (16, D)) or "uniform" (no F_d: the uniform window, the control
    # for what detection adds); a temporal convolution this many scanned frames
    # wide in front of F_d (1: none); re-sampling by a "gaussian" of width delta / 2 or a "linear"
    # blend of two neighbours. The defaults are the variant that learned where the apex is (issue 17).
    detector_locator: str = "moments"
    detector_context: int = 3
    detector_kernel: str = "gaussian"
    # The evidence head that guides the detector's scores towards the frames that show the label
    # (rdfer.losses.guide; loss.guide_weight weighs it); needs detector_locator "moments".
    detector_guide: bool = True
    # Dense frames added to the time of each scanned frame (locator "moments"): 0, scanned frame j is
    # at 4j, the frame it is; checkpoints written before that was fixed load with 2 (checkpoint.py).
    detector_scan_offset: float = 0.0
    n1: int = 4  # clips (and clip logits) per video
    n2: int = 4  # frames per clip; the model's temporal part sees n1 * n2 frames

    # Checked when options are read (rdfer.schema.typed_fields); strides are in dense frames. The
    # maxima are far above any recipe (7 or 11 classes, 112..224 px, 16..64 frames, n1 = n2 = 4) and
    # keep one setting from asking for unbounded work or memory.
    RANGES: ClassVar[dict] = {"num_classes": Range(1, 1000), "input_size": Range(8, 1024),
                              "num_frames": Range(1, 1024), "mean": Range(0, 1, max_items=3),
                              "std": Range(0, 10, low_open=True, max_items=3),
                              "d_min": Range(0, 1024, low_open=True), "d_max": Range(0, 1024, low_open=True),
                              "n1": Range(1, 64), "n2": Range(1, 64), "detector_context": Range(1, 255),
                              "detector_scan_offset": Range(0, 64)}

    def __post_init__(self):
        # Checkpoints and YAML store lists; keep tuples so the config stays hashable.
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        object.__setattr__(self, "summary", self.summary and self.resample)
        if len(self.mean) != 3 or len(self.std) != 3:
            raise RdferError(f"model {self.name}: mean and std need 3 values (R, G, B), got {list(self.mean)} and "
                             f"{list(self.std)}")
        if self.d_min >= self.d_max:
            raise RdferError(f"model {self.name}: d_min ({self.d_min}) must be below d_max ({self.d_max})")
        clip_frames = self.n1 * self.n2
        if (self.detector_locator not in LOCATORS or self.detector_kernel not in KERNELS
                or self.detector_context < 1 or self.detector_context % 2 == 0):
            raise RdferError(f"model {self.name}: detector_locator must be one of {', '.join(LOCATORS)}, "
                             f"detector_kernel one of {', '.join(KERNELS)} and detector_context odd and >= 1; "
                             f"got {self.detector_locator!r}, {self.detector_kernel!r}, {self.detector_context}")
        if self.resample and self.detector_guide and self.detector_locator != "moments":
            raise RdferError(f"model {self.name}: detector_guide needs detector_locator 'moments' (per-frame "
                             f"scores to guide), got {self.detector_locator!r}; set detector_guide: false")
        if self.num_frames is None:
            object.__setattr__(self, "num_frames", 64 if self.resample else clip_frames)
        if not self.resample and self.num_frames != clip_frames:
            raise RdferError(f"model {self.name}: without re-sampling num_frames must be n1 * n2 = {clip_frames}, "
                             f"got {self.num_frames}")
        if self.resample and self.num_frames % clip_frames:
            raise RdferError(f"model {self.name}: num_frames ({self.num_frames}) must be a multiple of "
                             f"n1 * n2 = {clip_frames} for the detector")


@dataclass(frozen=True)
class ModelOutput:
    """What a video model's forward returns, for B videos, C classes and n1 clips.

    logits: (B, C), the video prediction.
    clip_logits: (B, n1, C), the prediction E_i = f(V_i) for each clip (eq. 1),
        whose agreement reweights the loss (rdfer.losses).
    features: (B, D), the classifier's input.
    mu, delta: (B,), the key expression window's centre and stride, or None
        without re-sampling.
    evidence, log_weights: a guided detector's (B, 16, C) class logits of each
        scanned frame and (B, 16) log-softmax of its scores (rdfer.losses.guide), or None.
    """

    logits: torch.Tensor
    clip_logits: torch.Tensor
    features: torch.Tensor
    mu: Optional[torch.Tensor] = None
    delta: Optional[torch.Tensor] = None
    evidence: Optional[torch.Tensor] = None
    log_weights: Optional[torch.Tensor] = None

    def to(self, device) -> "ModelOutput":
        """The same outputs on `device` (None stays None)."""
        values = (getattr(self, field.name) for field in fields(self))
        return ModelOutput(*(None if value is None else value.to(device) for value in values))


class VideoModel(nn.Module):
    """The base class of every video model: video (B, num_frames, 3, H, W) in [0, 1] -> ModelOutput.

    A subclass builds its modules in `__init__` (the optional detector with
    `key_expression_detector`, then `self.classifier`) and writes `forward` with
    `inputs` (check and normalise), `detect` (re-sample, eqs. 3-5), `fuse_summary`
    (the gate f * S) and `classify` (the head on the video and clip features).
    """

    def __init__(self, config: VideoConfig):
        super().__init__()
        self.config = config
        # Normalisation lives in the model so a checkpoint carries its preprocessing.
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 1, 3, 1, 1), persistent=False)
        self.detector: Optional[KeyExpressionDetector] = None

    def key_expression_detector(self, summary_width: int,
                                feature_width: Optional[int] = None) -> Optional[KeyExpressionDetector]:
        """The key expression detecting network of the config, or None without re-sampling.

        Args:
            summary_width: width of the summary S, that of the features it gates.
            feature_width: None for frames; the frame features' width for a detector
                that takes features (B, T, D) (RDFERNet's frozen encoder).
        """
        config = self.config
        if not config.resample:
            return None
        return KeyExpressionDetector(
            summary_width, config.detector_encoder, num_dense=config.num_frames,
            num_out=config.n1 * config.n2, d_min=config.d_min, d_max=config.d_max,
            summary=config.summary, pretrained=config.detector_pretrained, feature_width=feature_width,
            locator=config.detector_locator, context=config.detector_context, kernel=config.detector_kernel,
            guide=config.detector_guide, num_classes=config.num_classes, scan_offset=config.detector_scan_offset,
        )

    def check_video(self, video: torch.Tensor) -> None:
        """RdferError unless `video` is (B, num_frames, 3, H, W)."""
        config = self.config
        if video.dim() != 5 or video.shape[1] != config.num_frames or video.shape[2] != 3:
            raise RdferError(f"model {config.name} takes video (B, {config.num_frames}, 3, H, W), "
                             f"got {tuple(video.shape)}")

    def normalise(self, video: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, 3, H, W) in [0, 1] normalised with the config's mean and std."""
        return (video - self.mean) / self.std  # (B, T, 3, H, W)

    def inputs(self, video: torch.Tensor) -> torch.Tensor:
        """Check video (B, num_frames, 3, H, W) in [0, 1] and normalise it."""
        self.check_video(video)
        return self.normalise(video)

    def detect(self, x: torch.Tensor) -> dict:
        """Re-sample the key expression (eqs. 3-5).

        Args:
            x: (B, num_frames, ...) normalised frames or frame features.
        Returns:
            the detector's dict (`KeyExpressionDetector.forward`): "frames", x re-sampled to
            (B, n1 * n2, ...), "mu", "delta", "summary" (None when the config has none) and the
            guide's "evidence" and "log_weights"; without re-sampling "frames" is x unchanged
            and the rest None.
        """
        if self.detector is None:
            return {"frames": x, **dict.fromkeys(("mu", "delta", "summary", "evidence", "log_weights"))}
        return self.detector(x)

    def fuse_summary(self, f: torch.Tensor, summary: Optional[torch.Tensor]) -> torch.Tensor:
        """The summary gate f * S; f unchanged without a summary.

        Args:
            f: a video feature (B, C) or clip features (B, n1, C).
            summary: S (B, C) or None.
        """
        if summary is None:
            return f
        return f * (summary if f.dim() == 2 else summary[:, None])  # (B, C) or (B, n1, C)

    def classify(self, features: torch.Tensor, clip_features: torch.Tensor, detected: dict) -> ModelOutput:
        """The linear head on the video feature (B, D) and on each clip feature (B, n1, D); the
        window and the guide's outputs from `detect`'s dict."""
        return ModelOutput(self.classifier(features), self.classifier(clip_features), features, detected["mu"],
                           detected["delta"], detected["evidence"], detected["log_weights"])
