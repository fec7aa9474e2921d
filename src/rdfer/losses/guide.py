"""The guide of the key-expression detector (docs/method.md, "Where the key expression is").

Through re-sampling alone the detector learns where to look only from how the
classification loss changes when the window moves a little, a weak signal that
left `mu` at r ~0.5 with the apex (issue 17). The guide gives it a direct one.
An evidence head (`KeyExpressionDetector.evidence`) reads each of the 16 scanned
frames and is trained to name the video's label; the frames where it is surest
of that label are the ones showing the expression, and the detector's scores
are pulled towards them:

    e_j    = evidence logits of scanned frame j                 (B, 16, C)
    q_j    = softmax_j(log p(y | e_j) / tau), no gradient       the teacher: where the label shows
    w_j    = softmax_j(score_j)                                 the detector's weights (mu, delta)
    L_i    = mean_j CE(e_j, y) + KL(q || w)                     per video

The label is only used in training; at test time the scores place the window by
themselves. A frame showing another expression (a distractor) has low evidence
for the label and is pushed out of the window.
"""

import torch
import torch.nn.functional as F


def guide_loss(evidence: torch.Tensor, log_weights: torch.Tensor, targets: torch.Tensor, tau: float) -> torch.Tensor:
    """Per-video guide loss (module docstring).

    Args:
        evidence: (B, K, C) class logits of the K scanned frames.
        log_weights: (B, K) log-softmax of the detector's scores over time.
        targets: (B,) class indices (the given labels).
        tau: temperature of the teacher; lower is sharper.
    Returns:
        (B,) mean frame CE of the evidence head plus KL(teacher || detector weights).
    """
    frames = evidence.shape[1]
    log_p = evidence.float().log_softmax(dim=-1)  # (B, K, C)
    log_p_label = log_p.gather(-1, targets[:, None, None].expand(-1, frames, 1)).squeeze(-1)  # (B, K)
    frame_ce = -log_p_label.mean(dim=1)  # (B,)
    teacher = (log_p_label.detach() / tau).softmax(dim=1)  # (B, K)
    kl = F.kl_div(log_weights.float(), teacher, reduction="none").sum(dim=1)  # (B,) KL(teacher || w)
    return frame_ce + kl
