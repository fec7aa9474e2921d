"""`rdfer audit`, judging half: likely mislabelled and hard clips from out-of-fold predictions.

Three lists are drawn from the held-out predictions (OUT/oof_predictions.csv, and every
epoch's in OUT/oof_epochs.npz):

- rdfer (the default verdict, `rdfer_verdict`): the held-out probabilities pooled over
  the 4 clips, the video and the last 2/3 of the epochs; confident learning's per-class
  thresholds on them say how many labels are wrong (n); of the n clips whose label the
  pooled held-out predictions and the training passes believe least, those that
  confident learning over clip-level samples (4 clips and the video, every pooled
  epoch) flags at least half the time are *likely mislabelled*; of the rest, those
  whose pooled clip predictions disagree are *hard*.
- cleanlab: `cleanlab.filter.find_label_issues` (confident learning,
  prune_by_noise_rate) on the last epoch's video probabilities, as a cleanlab user
  would run it; score 1 - self-confidence = 1 - p_given.
- combined: flagged by both; score the mean of the two scores' percentile ranks.

scores.md also measures the alternatives the default was chosen against
(docs/audit.md): the paper's agreement partition (rdfer's verdict before), confident
learning on the pooled probabilities, and rdfer's list less its disagreeing clips.

OUT/label_issues.csv lists every clip that any of them flags (or calls hard),
ordered by the `rank_by` method (its flagged clips first, then by its score).
With a ground truth (the synthetic benchmark's ground_truth.csv), OUT/scores.md
gives each list's precision, recall and F1 against the truly flipped labels,
and how many truly hard (not flipped) clips it calls mislabelled.
"""

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from rdfer import stats
from rdfer.errors import RdferError
from rdfer.labels import clip_key
from rdfer.utils.bounded_tables import csv_table
from rdfer.utils.ground_truth import read_ground_truth

RANK_BY = ("rdfer", "cleanlab", "combined")
METHODS = ("rdfer", "cleanlab", "combined")
MISLABELLED, HARD, OK = "likely mislabelled", "hard", "ok"
# Lists measured beside them in scores.md (see judge).
MEASURED = METHODS + ("agreement", "pooled", "doubt", "votes", "agreeing")
VERDICT_WORDS = {MISLABELLED: "mislabelled", HARD: "hard", OK: "ok"}
ISSUE_COLUMNS = ("rank", "id", "given_label", "suggested_label", "verdict", "score", "agreement", "kind",
                 "p_given", "p_suggested", "rdfer_issue", "rdfer_score", "cleanlab_issue", "cleanlab_score",
                 "combined_issue", "combined_score", "fold", "path")


@dataclass(frozen=True)
class OutOfFold:
    """Held-out predictions, one row per audited clip (N clips, K classes)."""

    classes: tuple
    clip_id: tuple  # (N,) str
    path: tuple  # (N,) str
    fold: np.ndarray  # (N,) int
    label: np.ndarray  # (N,) int, the given label
    prediction: np.ndarray  # (N,) int
    agreement: np.ndarray  # (N,) float
    # (N,) share of the clip predictions that equal the given label; NaN where not written
    given_share: np.ndarray
    probabilities: np.ndarray  # (N, K) float64, rows sum to 1

    def __len__(self) -> int:
        return len(self.clip_id)


def read_out_of_fold(path) -> OutOfFold:
    path = Path(path)
    if not path.is_file():
        raise RdferError(f"{path} not found: run `rdfer audit --config CFG --out DIR` to make it")
    with csv_table(path, dicts=True) as reader:
        prob_columns = [c for c in reader.fieldnames or [] if c.startswith("p_")]
        rows = list(reader)
    if not rows or not prob_columns:
        raise RdferError(f"{path} holds no predictions; delete it and rerun rdfer audit")
    probs = np.array([[float(r[c]) for c in prob_columns] for r in rows], dtype=np.float64)
    probs /= probs.sum(1, keepdims=True)  # the file rounds to 5 decimals
    return OutOfFold(
        classes=tuple(c[2:] for c in prob_columns), clip_id=tuple(r["clip_id"] for r in rows),
        path=tuple(r["path"] for r in rows), fold=np.array([int(r["fold"]) for r in rows]),
        label=np.array([int(r["label"]) for r in rows]), prediction=np.array([int(r["prediction"]) for r in rows]),
        agreement=np.array([float(r["agreement"]) for r in rows]),
        given_share=np.array([_share(r["clip_predictions"], int(r["label"])) for r in rows]), probabilities=probs)


def _share(clip_predictions: str, label: int) -> float:
    votes = [int(k) for k in (clip_predictions or "").split()]
    return sum(v == label for v in votes) / len(votes) if votes else float("nan")


@dataclass(frozen=True)
class Evidence:
    """Every epoch's evidence (OUT/oof_epochs.npz), rows aligned with the OutOfFold table (E epochs).

    probabilities (E, N, K) and clip_probabilities (E, N, n1, K): the held-out predictions after
    each epoch of the fold that did not train on the clip. train_p_label (E, N): the clip's
    probability of its given label in each epoch's training pass, averaged over the folds that
    trained on it (None for an audit made before these were kept).
    """

    probabilities: np.ndarray
    clip_probabilities: np.ndarray
    train_p_label: Optional[np.ndarray] = None

    @property
    def epochs(self) -> int:
        return self.probabilities.shape[0]


def read_evidence(path, clips: int) -> Optional[Evidence]:
    """OUT/oof_epochs.npz, or None when the audit has none (made before per-epoch predictions were kept)."""
    path = Path(path)
    if not path.is_file():
        return None
    with np.load(path) as data:
        probabilities = data["probabilities"].astype(np.float64)
        if probabilities.shape[1] != clips or np.isnan(probabilities).any():
            raise RdferError(f"{path} does not match oof_predictions.csv ({probabilities.shape[1]} clips, not "
                             f"{clips}); delete it and rerun rdfer audit")
        train = data["train_p_label"].astype(np.float64) if "train_p_label" in data.files else None
        return Evidence(probabilities, data["clip_probabilities"].astype(np.float64), train)


# Chosen on the selection group of synthetic sets (docs/audit.md): the held-out predictions of
# the last 2/3 of the epochs are pooled; so is the training-pass probability of the label.
POOL_SHARE = 2 / 3


def _window(epochs: int, share: float = POOL_SHARE) -> slice:
    return slice(epochs - max(1, int(round(share * epochs))), epochs)


def pooled_probabilities(oof: OutOfFold, evidence: Optional[Evidence]) -> tuple:
    """Held-out class probabilities pooled over clips and epochs, and the pooled clip votes.

    Returns:
        (probabilities (N, K): the mean over the last POOL_SHARE of the epochs of
        (video + mean of the n1 clip probabilities) / 2, rows summing to 1;
        clip_votes (N, n1): each clip's class under its epoch-pooled probabilities, or None
        without per-epoch evidence, when the last epoch's video probabilities are returned).
    """
    if evidence is None:
        return oof.probabilities, None
    window = _window(evidence.epochs)
    video = evidence.probabilities[window].mean(0)
    clips = evidence.clip_probabilities[window].mean(0)  # (N, n1, K)
    pooled = 0.5 * video + 0.5 * clips.mean(1)
    return pooled / pooled.sum(1, keepdims=True), clips.argmax(-1)


def label_doubt(oof: OutOfFold, evidence: Optional[Evidence], pooled: np.ndarray) -> np.ndarray:
    """rdfer's score, higher = more likely mislabelled: 1 - the mean of the pooled held-out probability
    of the given label and its training-pass probability over the same epochs (a label the models
    that train on it fit late or never is doubtful), or 1 - the pooled held-out one alone."""
    held_out = pooled[np.arange(len(oof)), oof.label]
    if evidence is None or evidence.train_p_label is None:
        return 1.0 - held_out
    trained = evidence.train_p_label[_window(evidence.epochs)].mean(0)
    return 1.0 - 0.5 * (held_out + trained)


def agreement_issues(probabilities: np.ndarray, labels: np.ndarray, agreement: np.ndarray,
                     min_agreement: float = 0.75, given_share: Optional[np.ndarray] = None) -> tuple:
    """The paper's partition on held-out predictions (rdfer's verdict before issue 19; measured beside it).

    A clip whose clip predictions agree (agreement >= min_agreement) on a class that is
    not its given label, and whose video prediction is not its label either, is
    MISLABELLED; a clip whose clip predictions disagree is HARD.

    Args:
        probabilities: (N, K) held-out class probabilities.
        labels: (N,) given labels.
        agreement: (N,) share of the clip predictions equal to their most frequent class.
        min_agreement: agreement from which the clip predictions count as agreeing.
        given_share: (N,) share of the clip predictions equal to the given label (NaN or
            None: unknown). A clip whose clips agree on its given label is not mislabelled.

    Returns:
        (kinds, scores): (N,) str array of MISLABELLED / HARD / OK and (N,) float
        agreement * (1 - p_given), higher = more likely mislabelled.
    """
    check_min_agreement(min_agreement)
    rows = np.arange(len(labels))
    agree = agreement >= min_agreement - 1e-9  # agreement is written with 2 decimals
    kinds = np.full(len(labels), OK, dtype=object)
    kinds[~agree] = HARD
    against = probabilities.argmax(1) != labels
    if given_share is not None:
        # The agreeing clips must not be voting for the given label (e.g. 4 x given, video says other).
        against &= ~(given_share >= agreement - 1e-9)
    kinds[agree & against] = MISLABELLED
    return kinds, agreement * (1.0 - probabilities[rows, labels])


def check_min_agreement(min_agreement: float) -> None:
    if not 0.0 < min_agreement <= 1.0:
        raise RdferError(f"--min-agreement {min_agreement} is outside (0, 1]: e.g. 0.75 = 3 of 4 clips agree")


def cleanlab_issues(probabilities: np.ndarray, labels: np.ndarray) -> tuple:
    """cleanlab's `find_label_issues` (prune_by_noise_rate) and its self-confidence score.

    Returns:
        (issues, scores): (N,) bool and (N,) float 1 - p_given (higher = more likely an issue).
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "too few examples in class k": said once in the report instead
        issues = find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)
        quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    return np.asarray(issues, bool), 1.0 - np.asarray(quality, np.float64)


def top(scores: np.ndarray, count: int) -> np.ndarray:
    """(N,) bool: the `count` highest scores (ties broken by position)."""
    chosen = np.zeros(len(scores), bool)
    chosen[np.argsort(-scores, kind="stable")[:count]] = True
    return chosen


def clip_vote_share(oof: OutOfFold, evidence: Optional[Evidence]) -> np.ndarray:
    """Confident learning over clip-level probabilities: (N,) share of a clip's samples it flags.

    Each video contributes, for every epoch of the pooling window, its n1 clip probability
    vectors and its video probability vector as samples with the video's given label;
    cleanlab's find_label_issues (per-class thresholds = the mean probability of the class
    over the samples labelled with it) judges every sample, and a clip's share is the
    share of its samples flagged. Without per-epoch evidence: the last epoch's video
    probabilities alone (the share is 0 or 1).
    """
    labels = oof.label
    if evidence is None:
        return cleanlab_issues(oof.probabilities, labels)[0].astype(float)
    window = _window(evidence.epochs)
    clips = evidence.clip_probabilities[window]  # (E', N, n1, K)
    video = evidence.probabilities[window][:, :, None, :]  # (E', N, 1, K)
    samples = np.concatenate([clips, video], axis=2).transpose(1, 0, 2, 3)  # (N, E', n1 + 1, K)
    n, k = samples.shape[0], samples.shape[-1]
    samples = samples.reshape(n, -1, k)
    per_clip = samples.shape[1]
    rows = samples.reshape(-1, k)
    flags, _ = cleanlab_issues(rows / rows.sum(1, keepdims=True), np.repeat(labels, per_clip))
    return flags.reshape(n, per_clip).mean(1)


def rdfer_verdict(oof: OutOfFold, evidence: Optional[Evidence], min_agreement: float = 0.75) -> dict:
    """rdfer's verdict (the default list; docs/audit.md measures it against cleanlab and the alternatives).

    1. Pool the held-out probabilities over the 4 clips and the video, and over the last
       POOL_SHARE of the epochs (`pooled_probabilities`). Confident learning on them says
       how many labels are wrong: n = the number of clips find_label_issues flags.
    2. `label_doubt`: how little the pooled held-out predictions and the training passes
       believe the label. The n most doubtful clips are candidates.
    3. A candidate is *likely mislabelled* when confident learning over its clip-level
       probabilities flags at least half of its samples (`clip_vote_share` >= 0.5).
    4. A clip not called mislabelled whose pooled clip predictions disagree (agreement below
       `min_agreement`) is *hard*.

    Without per-epoch evidence (an older audit) the last epoch's video probabilities
    stand in for the pooled ones and the training passes are left out.

    Returns:
        dict of (N,) arrays: pooled (N, K), suggested, kind, issue, score (the doubt),
        pooled_agreement, and the measured alternatives pooled_issue (confident learning on
        the pooled probabilities), doubt_issue (step 2 alone), votes_issue (step 3 alone)
        and agreeing_issue (the verdict less the clips whose pooled clip predictions disagree).
    """
    check_min_agreement(min_agreement)
    pooled, votes = pooled_probabilities(oof, evidence)
    labels = oof.label
    pooled_issue, _ = cleanlab_issues(pooled, labels)
    score = label_doubt(oof, evidence, pooled)
    doubt_issue = top(score, int(pooled_issue.sum()))
    votes_issue = clip_vote_share(oof, evidence) >= 0.5
    issue = doubt_issue & votes_issue
    others = pooled.copy()
    others[np.arange(len(oof)), labels] = -1.0
    suggested = np.where(issue, others.argmax(1), pooled.argmax(1))
    if votes is None:
        agreement = oof.agreement
    else:
        agreement = np.array([np.bincount(v).max() / len(v) for v in votes])
    agreeing = agreement >= min_agreement - 1e-9
    kind = np.full(len(oof), OK, dtype=object)
    kind[~agreeing] = HARD
    kind[issue] = MISLABELLED
    return {"pooled": pooled, "suggested": suggested, "kind": kind, "issue": issue, "score": score,
            "pooled_agreement": agreement, "pooled_issue": pooled_issue, "doubt_issue": doubt_issue,
            "votes_issue": votes_issue, "agreeing_issue": issue & agreeing}


def percentile_ranks(scores: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1] (ties share their mean rank): the highest score gets 1."""
    from scipy.stats import rankdata

    return rankdata(scores) / len(scores)


def judge(oof: OutOfFold, min_agreement: float = 0.75, evidence: Optional[Evidence] = None) -> dict:
    """Every list's verdict on every clip: arrays of length N keyed by column name.

    The lists: rdfer (the default verdict, `rdfer_verdict`), cleanlab (find_label_issues on
    the last epoch's video probabilities, as a user of cleanlab would run it), combined (both
    flag), and, measured beside them, agreement (the paper's partition), pooled (confident
    learning on the pooled probabilities), doubt and votes (the two halves of rdfer's
    verdict alone) and agreeing (rdfer's list less the clips whose pooled clip predictions
    disagree).
    """
    probs, labels = oof.probabilities, oof.label
    rows = np.arange(len(oof))
    verdict = rdfer_verdict(oof, evidence, min_agreement)
    agreement_kind, agreement_score = agreement_issues(probs, labels, oof.agreement, min_agreement, oof.given_share)
    cl_issue, cl_score = cleanlab_issues(probs, labels)
    suggested = verdict["suggested"]
    pooled = verdict["pooled"]
    return {
        "suggested": suggested, "p_given": pooled[rows, labels], "p_suggested": pooled[rows, suggested],
        "kind": verdict["kind"], "rdfer_issue": verdict["issue"], "rdfer_score": verdict["score"],
        "pooled_agreement": verdict["pooled_agreement"],
        "cleanlab_issue": cl_issue, "cleanlab_score": cl_score,
        "combined_issue": verdict["issue"] & cl_issue,
        "combined_score": 0.5 * (percentile_ranks(verdict["score"]) + percentile_ranks(cl_score)),
        "agreement_issue": agreement_kind == MISLABELLED, "agreement_score": agreement_score,
        **{f"{name}_issue": verdict[f"{name}_issue"] for name in ("pooled", "doubt", "votes", "agreeing")},
    }


def ranking(judged: dict, rank_by: str) -> np.ndarray:
    """Clip indices in list order: the method's flagged clips first, each group by its score, highest first."""
    if rank_by not in RANK_BY:
        raise RdferError(f"--rank-by {rank_by!r}: use one of {', '.join(RANK_BY)}")
    issue, score = judged[f"{rank_by}_issue"], judged[f"{rank_by}_score"]
    return np.lexsort((-score, ~issue))


# ----------------------------------------------------------------------------- scoring


TRUTH_COLUMNS = ("video_name", "is_noisy", "is_hard")  # of a ground_truth.csv, to score the lists


def read_truth(path, clip_ids) -> tuple:
    """(is_noisy, is_hard) bool arrays aligned with `clip_ids`, from a ground_truth.csv.

    Raises:
        RdferError: missing file or columns, or an audited clip the file does not list.
    """
    truth = read_ground_truth(path, TRUTH_COLUMNS)
    missing = [c for c in clip_ids if clip_key(c) not in truth]
    if missing:
        raise RdferError(f"{path} does not list {len(missing)} audited clip(s), e.g. {missing[0]}: "
                         "is it the ground truth of this dataset?")
    rows = [truth[clip_key(c)] for c in clip_ids]
    return np.array([bool(r.noisy) for r in rows], bool), np.array([bool(r.hard) for r in rows], bool)


def precision_recall_f1(flagged: np.ndarray, truly: np.ndarray) -> tuple:
    """Precision, recall and F1 of a bool flag array against a bool truth array (0 where undefined)."""
    precision, recall, f1 = _resampled_scores(flagged, truly, np.arange(len(flagged))[None])
    return float(precision[0]), float(recall[0]), float(f1[0])


def _resampled_scores(flagged: np.ndarray, truly: np.ndarray, index: np.ndarray) -> tuple:
    """(precision, recall, F1), each (B,), of the clips in each row of the (B, N) index array (0 where undefined)."""
    flagged, truly = flagged[index], truly[index]  # (B, N)
    hits, listed, real = (flagged & truly).sum(1), flagged.sum(1), truly.sum(1)
    precision = np.where(listed > 0, hits / np.maximum(listed, 1), 0.0)
    recall = np.where(real > 0, hits / np.maximum(real, 1), 0.0)
    total = precision + recall
    f1 = np.where(total > 0, 2 * precision * recall / np.where(total > 0, total, 1), 0.0)
    return precision, recall, f1


SCORE_NAMES = ("precision", "recall", "f1")


def compare_lists(flagged_a: np.ndarray, flagged_b: np.ndarray, truly: np.ndarray, seed: int = 0) -> dict:
    """List B against list A on the same clips: precision, recall and F1 differences (B minus A) with
    paired bootstrap intervals over the clips, and the exact McNemar test of the clips each list
    judges right (flagged exactly when truly mislabelled); rdfer.stats, docs/statistics.md."""
    result = {}
    for k, name in enumerate(SCORE_NAMES):
        a = precision_recall_f1(flagged_a, truly)[k]
        b = precision_recall_f1(flagged_b, truly)[k]
        result[f"{name}_diff"] = b - a
        result[f"{name}_diff_ci"] = stats.bootstrap_interval(
            lambda index: _resampled_scores(flagged_b, truly, index)[k] - _resampled_scores(flagged_a, truly, index)[k],
            len(truly), seed=seed)
    result["mcnemar"] = stats.mcnemar_exact(flagged_a == truly, flagged_b == truly)
    return result


def score_lists(judged: dict, noisy: np.ndarray, hard: np.ndarray, prediction: np.ndarray,
                labels: np.ndarray) -> dict:
    """Each list against the truth, with 95% bootstrap intervals over the clips; "disagrees"
    (prediction != given label) is a reference list; "rdfer_vs_cleanlab": `compare_lists`."""
    clean_hard = hard & ~noisy  # a hard clip whose label is right: calling it mislabelled is wrong
    lists = {name: judged[f"{name}_issue"] for name in MEASURED if f"{name}_issue" in judged}
    # The control at equal list length: cleanlab's ranking (1 - self-confidence) cut at rdfer's list length.
    lists["cleanlab_top_k"] = top(judged["cleanlab_score"], int(judged["rdfer_issue"].sum()))
    lists["disagrees"] = prediction != labels
    scores = {"clips": int(len(noisy)), "truly_mislabelled": int(noisy.sum()), "hard_not_flipped": int(clean_hard.sum()),
              "lists": {}}
    for name, flagged in lists.items():
        precision, recall, f1 = precision_recall_f1(flagged, noisy)
        scores["lists"][name] = {"flagged": int(flagged.sum()), "correct": int((flagged & noisy).sum()),
                                 "precision": precision, "recall": recall, "f1": f1,
                                 "hard_called_mislabelled": int((flagged & clean_hard).sum()),
                                 "hard_per_flagged": float((flagged & clean_hard).sum() / flagged.sum())
                                 if flagged.any() else 0.0}
        for k, score in enumerate(SCORE_NAMES):
            scores["lists"][name][f"{score}_ci"] = stats.bootstrap_interval(
                lambda index: _resampled_scores(flagged, noisy, index)[k], len(noisy))
    for other in ("cleanlab", "cleanlab_top_k"):  # cleanlab's own list, and its ranking at rdfer's length
        if "rdfer" in lists and other in lists:
            scores[f"rdfer_vs_{other}"] = compare_lists(lists[other], lists["rdfer"], noisy)
    called_hard = judged["kind"] == HARD
    scores["rdfer_hard"] = {"called": int(called_hard.sum()), "truly_hard": int((called_hard & hard).sum()),
                            "flipped": int((called_hard & noisy).sum())}
    return scores

