"""The dual-stream hierarchical network (paper Sec. III-C, Fig. 2b; docs/method.md).

Short-term facial movements and long-term emotion changes are modelled by two
sequence models, S_m (movement) and S_e (emotion), shared by two streams:

    Algorithm 1 (Dual-Stream Hierarchical Network)
        R_me = rearrange(R, '(n1 n2) c -> n1 n2 c')   # clip i = frames i*n2 .. i*n2 + n2-1
        R_em = rearrange(R, '(n1 n2) c -> n2 n1 c')   # group j = frames j, j+n2, j+2*n2, ...
        f_me = S_e(S_m(R_me))                         # movement inside clips, then emotion over clips
        f_em = S_m(S_e(R_em))                         # emotion inside strided groups, then movement
        f    = f_me + f_em
"""

import torch
from torch import nn


class SequenceModel(nn.Module):
    """A BiLSTM whose output for a sequence is the mean over time of its outputs.

    Args:
        width: input features C'.
        hidden: hidden units per direction; the output has 2 * hidden features.
    """

    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(width, hidden, batch_first=True, bidirectional=True)

    def steps(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, width) -> per-step outputs (N, L, 2 * hidden)."""
        return self.lstm(x)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L, width) -> (N, 2 * hidden), the mean over time."""
        return self.steps(x).mean(dim=1)


class DualStreamHierarchical(nn.Module):
    """Algorithm 1 over n = n1 * n2 frame features, with the Table III ablations.

    Args:
        in_features: frame feature width C (the encoder's out_features).
        width: C', the width after the linear projection (512); also the output
            width of S_m and S_e, which take each other's outputs.
        hidden: hidden units per direction of each BiLSTM (256; width = 2 * hidden).
        n1: clips; n2: frames per clip.
        dual_stream: False -> single stream, f = S_e(S_m(R_me)) only.
        hierarchy: False -> no hierarchy, f = S_m(R) + S_e(R) over all n frames.
        fusion: "add" (f_me + f_em, Algorithm 1) or "concat" ([f_me, f_em]).
    """

    def __init__(
        self,
        in_features: int,
        width: int = 512,
        hidden: int = 256,
        n1: int = 4,
        n2: int = 4,
        dual_stream: bool = True,
        hierarchy: bool = True,
        fusion: str = "add",
    ):
        super().__init__()
        if width != 2 * hidden:
            raise ValueError(f"width ({width}) must be 2 * hidden ({hidden}): S_m and S_e read each other's outputs")
        if fusion not in ("add", "concat"):
            raise ValueError(f"fusion must be 'add' or 'concat', got {fusion!r}")
        self.n1, self.n2 = n1, n2
        self.dual_stream, self.hierarchy, self.fusion = dual_stream, hierarchy, fusion
        self.proj = nn.Linear(in_features, width)
        self.s_m = SequenceModel(width, hidden)  # movement
        self.s_e = SequenceModel(width, hidden)  # emotion
        two_outputs = fusion == "concat" and (dual_stream or not hierarchy)
        self.out_features = 2 * width if two_outputs else width

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse frame features into one video feature.

        Args:
            features: (B, n1 * n2, in_features), frames in time order.
        Returns:
            f: (B, out_features), the video feature.
            u: (B, n1, width), the clip features u_1..u_n1: S_m run inside each
               clip, so u_i depends on clip i's frames only (also without
               hierarchy, where S_m otherwise runs over all frames).
        """
        batch, n, _ = features.shape
        if n != self.n1 * self.n2:
            raise ValueError(f"expected n1 * n2 = {self.n1 * self.n2} frames, got {n}")
        r = self.proj(features)  # (B, n, C')
        width = r.shape[-1]

        # Clip features: S_m inside each clip (the first step of the movement-emotion stream).
        r_me = r.view(batch * self.n1, self.n2, width)  # (B*n1, n2, C'): '(n1 n2) c -> n1 n2 c'
        u = self.s_m(r_me).view(batch, self.n1, width)  # (B, n1, C') clip features
        if not self.hierarchy:
            # Ablation "w/o hierarchical architecture": two sequence models over all frames.
            # u still comes from each clip alone, for the clip predictions of the agreement.
            return self._fuse(self.s_m(r), self.s_e(r)), u

        # Movement-emotion stream: S_e over the clip features.
        f_me = self.s_e(u)  # (B, C')
        if not self.dual_stream:
            return f_me, u  # ablation "w/o dual-stream architecture"

        # Emotion-movement stream: S_e inside each strided group, then S_m over the groups.
        r_em = r.view(batch, self.n1, self.n2, width).transpose(1, 2)  # (B, n2, n1, C'): '(n1 n2) c -> n2 n1 c'
        groups = self.s_e(r_em.reshape(batch * self.n2, self.n1, width)).view(batch, self.n2, width)  # (B, n2, C')
        f_em = self.s_m(groups)  # (B, C')
        return self._fuse(f_me, f_em), u

    def _fuse(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """(B, C'), (B, C') -> (B, out_features): f = first + second, or concatenated."""
        return first + second if self.fusion == "add" else torch.cat([first, second], dim=1)
