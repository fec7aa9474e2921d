"""rdfer audit: the rdfer/cleanlab/combined lists on hand-made tables, scoring, folds, and a tiny end-to-end run."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from fixtures_data import write_frames

from rdfer.audit.folds import collect_clips, stratified_folds
from rdfer.audit.report import write_label_issues
from rdfer.audit.verdict import (HARD, MISLABELLED, OK, Evidence, OutOfFold, agreement_issues, clip_vote_share, judge,
                                 label_doubt, percentile_ranks, pooled_probabilities, precision_recall_f1, ranking,
                                 rdfer_verdict, read_evidence, read_out_of_fold, score_lists)
from rdfer.cli import main
from rdfer.config import load_config
from rdfer.errors import RdferError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "rdfer" / "configs"

# Five clips, three classes. Expected verdicts worked out by hand (min_agreement 0.75):
#   0: clips agree (1.0) on class 1, video says 1, label 0          -> likely mislabelled, score 1.0 * 0.9
#   1: clips agree, video says 0 = label                             -> ok,                 score 1.0 * 0.3
#   2: clips disagree (0.5)                                          -> hard,               score 0.5 * 0.8
#   3: 3 of 4 clips vote for the label 0, the video says 1           -> ok (clips back the label), 0.75 * 0.7
#   4: 3 of 4 clips agree, not on label 1; video says 2              -> likely mislabelled, score 0.75 * 0.8
PROBS = np.array([[0.1, 0.8, 0.1], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5], [0.3, 0.6, 0.1], [0.2, 0.2, 0.6]])
LABELS = np.array([0, 0, 0, 0, 1])
AGREEMENT = np.array([1.0, 1.0, 0.5, 0.75, 0.75])
GIVEN_SHARE = np.array([0.0, 1.0, 0.25, 0.75, 0.25])


def test_agreement_verdicts_and_scores_match_hand_computed_values():
    kinds, scores = agreement_issues(PROBS, LABELS, AGREEMENT, 0.75, GIVEN_SHARE)
    assert list(kinds) == [MISLABELLED, OK, HARD, OK, MISLABELLED]
    np.testing.assert_allclose(scores, [0.9, 0.3, 0.4, 0.525, 0.6])
    # Without clip votes, clip 3 (video against the label, clips agreeing) is called mislabelled too.
    kinds, _ = agreement_issues(PROBS, LABELS, AGREEMENT, 0.75)
    assert list(kinds) == [MISLABELLED, OK, HARD, MISLABELLED, MISLABELLED]
    # At min_agreement 0.5 clip 2 counts as agreeing, and its prediction (2) is not its label.
    kinds, _ = agreement_issues(PROBS, LABELS, AGREEMENT, 0.5, GIVEN_SHARE)
    assert list(kinds) == [MISLABELLED, OK, MISLABELLED, OK, MISLABELLED]
    with pytest.raises(RdferError, match="min-agreement"):
        agreement_issues(PROBS, LABELS, AGREEMENT, 0.0)


def _table(probs, labels, agreement, given_share=None, clip_ids=None) -> OutOfFold:
    n = len(labels)
    return OutOfFold(classes=tuple(f"c{k}" for k in range(probs.shape[1])),
                     clip_id=tuple(clip_ids or (str(i + 1) for i in range(n))),
                     path=tuple(f"/nowhere/{i}" for i in range(n)), fold=np.ones(n, int), label=labels,
                     prediction=probs.argmax(1), agreement=agreement,
                     given_share=np.full(n, np.nan) if given_share is None else given_share, probabilities=probs)


def test_rankings_and_combined_score_by_hand():
    judged = judge(_table(PROBS, LABELS, AGREEMENT, GIVEN_SHARE))
    # cleanlab's score is 1 - p_given: 0.9, 0.3, 0.8, 0.7, 0.8; without per-epoch evidence rdfer's is the same.
    np.testing.assert_allclose(judged["cleanlab_score"], [0.9, 0.3, 0.8, 0.7, 0.8])
    np.testing.assert_allclose(judged["rdfer_score"], judged["cleanlab_score"])
    # Ranking: flagged clips first, each group by score; ties keep table order.
    flagged = judged["rdfer_issue"]
    order = list(ranking(judged, "rdfer"))
    assert [flagged[i] for i in order] == sorted(flagged, reverse=True)
    # Percentile ranks (ties share their mean): [5,1,3.5,2,3.5]/5.
    np.testing.assert_allclose(percentile_ranks(judged["cleanlab_score"]), [1.0, 0.2, 0.7, 0.4, 0.7])
    np.testing.assert_allclose(judged["combined_score"], [1.0, 0.2, 0.7, 0.4, 0.7])
    assert list(judged["combined_issue"]) == list(judged["rdfer_issue"] & judged["cleanlab_issue"])
    # The paper's partition is measured beside it: clips 0 and 4 (see agreement_issues above).
    assert list(np.flatnonzero(judged["agreement_issue"])) == [0, 4]
    with pytest.raises(RdferError, match="rank-by"):
        ranking(judged, "magic")


def test_pooling_over_clips_and_epochs_and_the_doubt_score_by_hand():
    """3 epochs, 2 clips, 2 classes: the last 2 epochs are pooled (2/3 of 3)."""
    video = np.array([[[0.9, 0.1], [0.2, 0.8]],   # epoch 1: left out of the pool
                      [[0.6, 0.4], [0.4, 0.6]],
                      [[0.8, 0.2], [0.2, 0.8]]])  # (E=3, N=2, K=2)
    clips = np.stack([video, video[..., ::-1]], axis=2)  # clip 1 = video, clip 2 = its mirror: (3, 2, 2, 2)
    clips[:, 1, 1] = clips[:, 1, 0]  # clip 2 of clip-row 1 agrees with clip 1
    evidence = Evidence(video, clips, train_p_label=np.array([[0.5, 0.5], [0.9, 0.1], [0.7, 0.3]]))
    oof = _table(video[-1], np.array([0, 0]), np.ones(2))
    pooled, votes = pooled_probabilities(oof, evidence)
    # Row 0: video mean (0.7, 0.3); clips mean over (0.7,0.3) and (0.3,0.7) = (0.5, 0.5) -> (0.6, 0.4).
    # Row 1: video mean (0.3, 0.7); both clips (0.3, 0.7) -> (0.3, 0.7).
    np.testing.assert_allclose(pooled, [[0.6, 0.4], [0.3, 0.7]])
    assert votes.tolist() == [[0, 1], [1, 1]]
    # Doubt: 1 - (pooled p_label + mean training p_label of epochs 2-3) / 2.
    np.testing.assert_allclose(label_doubt(oof, evidence, pooled), [1 - (0.6 + 0.8) / 2, 1 - (0.3 + 0.2) / 2])
    verdict = rdfer_verdict(oof, evidence)
    np.testing.assert_allclose(verdict["pooled_agreement"], [0.5, 1.0])
    assert verdict["doubt_issue"].sum() == verdict["pooled_issue"].sum()
    assert np.array_equal(verdict["issue"], verdict["doubt_issue"] & verdict["votes_issue"])
    # Without training-pass evidence the doubt is the pooled held-out one alone.
    bare = Evidence(video, clips)
    np.testing.assert_allclose(label_doubt(oof, bare, pooled), [0.4, 0.7])


def test_clip_vote_share_is_confident_learning_over_clip_and_video_samples():
    """2 epochs (both pooled: round(2/3 * 2) = 1 -> the last one only), 2 clips per video."""
    from cleanlab.filter import find_label_issues

    rng = np.random.default_rng(1)
    n, k = 40, 3
    labels = np.arange(n) % k
    video = rng.dirichlet(np.ones(k), size=(2, n))
    video[:, np.arange(n), labels] += 1.5
    video /= video.sum(-1, keepdims=True)
    clips = rng.dirichlet(np.ones(k), size=(2, n, 2))
    oof = _table(video[-1], labels, np.ones(n))
    share = clip_vote_share(oof, Evidence(video, clips))
    samples = np.concatenate([clips[1], video[1][:, None]], axis=1)  # (N, 3, K): clip 1, clip 2, video
    flags = find_label_issues(np.repeat(labels, 3), samples.reshape(-1, k), filter_by="prune_by_noise_rate")
    np.testing.assert_allclose(share, flags.reshape(n, 3).mean(1))
    assert 0 < share.mean() < 1


def test_precision_recall_f1_and_hard_clips_called_mislabelled():
    flagged = np.array([1, 1, 0, 0, 1], bool)
    truly = np.array([1, 0, 1, 0, 1], bool)
    precision, recall, f1 = precision_recall_f1(flagged, truly)
    assert (precision, recall, f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert precision_recall_f1(np.zeros(5, bool), truly) == (0.0, 0.0, 0.0)
    judged = {"rdfer_issue": flagged, "cleanlab_issue": np.array([1, 0, 1, 0, 0], bool),
              "combined_issue": np.array([1, 0, 0, 0, 0], bool),
              "cleanlab_score": np.array([0.9, 0.1, 0.8, 0.3, 0.2]),
              "kind": np.array([MISLABELLED, MISLABELLED, HARD, HARD, MISLABELLED], object)}
    hard = np.array([0, 1, 1, 1, 0], bool)  # clip 2 is hard and flipped: calling it mislabelled is right
    scores = score_lists(judged, truly, hard, prediction=np.array([1, 1, 1, 0, 0]), labels=np.zeros(5, int))
    assert scores["hard_not_flipped"] == 2
    assert scores["lists"]["rdfer"]["hard_called_mislabelled"] == 1  # clip 1
    assert scores["lists"]["rdfer"]["hard_per_flagged"] == pytest.approx(1 / 3)
    cleanlab = scores["lists"]["cleanlab"]
    assert {k: v for k, v in cleanlab.items() if not k.endswith("_ci")} == {
        "flagged": 2, "correct": 2, "precision": 1.0, "recall": 2 / 3, "f1": pytest.approx(0.8),
        "hard_called_mislabelled": 0, "hard_per_flagged": 0.0}
    for key in ("precision", "recall", "f1"):  # bootstrap intervals over the 5 clips
        low, high = cleanlab[f"{key}_ci"]
        assert 0 <= low <= cleanlab[key] <= high <= 1
    # The control at equal length: cleanlab's 3 highest scores (clips 0, 2, 3), as many as rdfer flags.
    equal = scores["lists"]["cleanlab_top_k"]
    assert (equal["flagged"], equal["correct"], equal["hard_called_mislabelled"]) == (3, 2, 1)  # clip 3 is hard
    assert (equal["precision"], equal["recall"]) == pytest.approx((2 / 3, 2 / 3))
    # rdfer minus cleanlab: precision 2/3 - 1, recall 0, F1 2/3 - 0.8; judged right (flag == truth):
    # cleanlab alone on clips 1 and 2, rdfer alone on clip 4 -> McNemar 2 * P(X <= 1 | 3, 1/2) = 1.
    versus = scores["rdfer_vs_cleanlab"]
    assert versus["precision_diff"] == pytest.approx(-1 / 3) and versus["recall_diff"] == pytest.approx(0.0)
    assert versus["f1_diff"] == pytest.approx(2 / 3 - 0.8)
    assert versus["mcnemar"] == {"only_a": 2, "only_b": 1, "both": 2, "neither": 0, "p": pytest.approx(1.0)}
    for key in ("precision", "recall", "f1"):
        low, high = versus[f"{key}_diff_ci"]
        assert low <= versus[f"{key}_diff"] <= high
    # Against cleanlab's top 3: equal precision and recall; right alone: top k on clips 1, 2, rdfer on 3, 4.
    at_length = scores["rdfer_vs_cleanlab_top_k"]
    assert at_length["precision_diff"] == pytest.approx(0.0) and at_length["recall_diff"] == pytest.approx(0.0)
    assert at_length["mcnemar"] == {"only_a": 2, "only_b": 2, "both": 1, "neither": 0, "p": pytest.approx(1.0)}
    assert scores["lists"]["disagrees"]["flagged"] == 3  # predictions 1, 1, 1 against label 0
    assert scores["rdfer_hard"] == {"called": 2, "truly_hard": 2, "flipped": 1}


def test_cleanlab_finds_the_flips_of_a_table_whose_answer_is_known(tmp_path):
    """Confident held-out predictions on the true class; 20 of 300 labels flipped: cleanlab flags exactly those."""
    from cleanlab.filter import find_label_issues

    rng = np.random.default_rng(0)
    n, k = 300, 3
    true = np.arange(n) % k
    probs = np.full((n, k), 0.05)
    probs[np.arange(n), true] = 0.9
    flipped = rng.choice(n, 20, replace=False)
    given = true.copy()
    given[flipped] = (true[flipped] + 1 + rng.integers(0, k - 1, 20)) % k
    agreement = np.ones(n)
    judged = judge(_table(probs, given, agreement))
    expected = np.zeros(n, bool)
    expected[flipped] = True
    assert np.array_equal(judged["cleanlab_issue"], expected)
    assert np.array_equal(judged["cleanlab_issue"], find_label_issues(given, probs, filter_by="prune_by_noise_rate"))
    assert np.array_equal(judged["rdfer_issue"], expected)
    # The CSV carries the same verdicts, in the ranking asked for.
    oof = _table(probs, given, agreement)
    assert write_label_issues(tmp_path / "issues.csv", oof, judged, "cleanlab") == 20
    with open(tmp_path / "issues.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["id"]) - 1 for r in rows) == sorted(flipped.tolist())
    assert all(r["cleanlab_issue"] == "1" and r["kind"] == MISLABELLED for r in rows)
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 21)]


def test_stratified_folds_balance_classes():
    labels = np.repeat(np.arange(3), [10, 7, 4])
    folds = stratified_folds(labels, 5, seed=0)
    assert sorted(set(folds)) == [1, 2, 3, 4, 5]
    assert max(np.bincount(folds)[1:]) - min(np.bincount(folds)[1:]) <= 1
    for c, size in enumerate((10, 7, 4)):
        per_fold = np.bincount(folds[labels == c], minlength=6)[1:]
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == size
    assert np.array_equal(folds, stratified_folds(labels, 5, seed=0))


@pytest.fixture(scope="module")
def tiny_synth(tmp_path_factory):
    """30 clips in the DFEW layout, 20% of the train labels flipped (train lists: given, test lists: true)."""
    from rdfer.synth import write_synthetic

    root = tmp_path_factory.mktemp("audit") / "synth"
    write_synthetic(root, layout="dfew", clips=30, noise=0.2, seed=3, size=40, progress=False, workers=1)
    return root


def _truth(root) -> dict:
    with open(Path(root) / "ground_truth.csv") as f:
        return {r["video_name"]: r for r in csv.DictReader(f)}


def test_official_folds_audit_the_given_label_not_the_test_lists_true_one(tiny_synth):
    from rdfer.labels import DFEW_CLASSES

    config = load_config(CONFIGS / "demo.yaml", (f"data.root={tiny_synth}",))
    classes, clips, official = collect_clips(config)
    truth = _truth(tiny_synth)
    assert official and classes == DFEW_CLASSES and len(clips) == 30
    assert {c.clip_id for c in clips} == set(truth)
    assert any(truth[c]["is_noisy"] == "1" for c in truth)
    for clip in clips:
        assert clip.label == int(truth[clip.clip_id]["given_label"]) - 1, clip.clip_id
    # Each clip's fold is the test list it is in.
    for fold in range(1, 6):
        with open(tiny_synth / "EmoLabel_DataSplit" / "test(single-labeled)" / f"set_{fold}.csv") as f:
            listed = {r["video_name"] for r in csv.DictReader(f)}
        assert listed == {c.clip_id for c in clips if c.fold == fold}
    # A number of folds replaces the official ones by seeded, class-stratified folds.
    _, clips3, official3 = collect_clips(config, folds=3)
    assert not official3 and sorted({c.fold for c in clips3}) == [1, 2, 3]
    with pytest.raises(RdferError, match="too few"):
        collect_clips(config, folds=20)


def test_csv_manifest_gets_seeded_folds(tiny_synth, tmp_path):
    folders = sorted((tiny_synth / "Clip" / "clip_224x224").iterdir())[:12]
    manifest = tmp_path / "clips.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},{('Happy', 'Sad', 'Angry')[i % 3]}\n"
                                                  for i, p in enumerate(folders)))
    config = load_config(CONFIGS / "demo.yaml", ("data.dataset=csv", f"data.csv={manifest}"))
    classes, clips, official = collect_clips(config, folds=2)
    assert not official and len(clips) == 12
    assert [classes[c.label] for c in clips] == [("Happy", "Sad", "Angry")[i % 3] for i in range(12)]
    assert sorted(np.bincount([c.fold for c in clips])[1:]) == [6, 6]


def _write_mafw(root: Path, labels: list, given: dict) -> None:
    """A MAFW layout of len(labels) clips, fold f testing clips f-1 and f+4 (true labels in the
    test lists, `given` overriding some in the train lists)."""
    from rdfer.labels import MAFW_CLASSES

    for i in range(len(labels)):
        write_frames(root / "data" / "faces" / f"{i + 1:05d}", 3)
    for fold in range(1, 6):
        lists = {"train": [], "test": []}
        for i, label in enumerate(labels):
            split = "test" if i % 5 == fold - 1 else "train"
            shown = label if split == "test" else given.get(i, label)
            lists[split].append(f"{i + 1:05d}.mp4 {MAFW_CLASSES[shown].lower()}")
        for split, lines in lists.items():
            path = root / "split" / "single" / "no_caption" / f"set_{fold}" / f"{split}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n")


def test_mafw_official_folds_and_train_list_labels(tmp_path):
    from rdfer.labels import MAFW_CLASSES

    labels = [i % 11 for i in range(10)]
    _write_mafw(tmp_path / "mafw", labels, given={3: 7})
    config = load_config(CONFIGS / "demo.yaml", ("data.dataset=mafw", f"data.root={tmp_path / 'mafw'}"))
    classes, clips, official = collect_clips(config)
    assert official and classes == MAFW_CLASSES
    by_id = {c.clip_id: c for c in clips}
    assert sorted(by_id) == [f"{i + 1:05d}" for i in range(10)]
    assert by_id["00004"].label == 7 and by_id["00001"].label == 0  # the train lists' label, not the test list's
    assert [by_id[f"{i + 1:05d}"].fold for i in range(10)] == [i % 5 + 1 for i in range(10)]
    # Train lists that disagree about a clip are an error naming it.
    (tmp_path / "mafw" / "split" / "single" / "no_caption" / "set_2" / "train.txt").write_text(
        "".join(f"{i + 1:05d}.mp4 {MAFW_CLASSES[(labels[i] + (i == 2)) % 11].lower()}\n"
                for i in range(10) if i % 5 != 1))
    with pytest.raises(RdferError, match="clip 00003"):
        collect_clips(config)


def test_ferv39k_audits_train_and_test_lists_together(tmp_path):
    from rdfer.synth import write_synthetic

    root = write_synthetic(tmp_path / "ferv", layout="ferv39k", clips=20, noise=0.3, seed=1, size=24,
                           progress=False, workers=1)
    config = load_config(CONFIGS / "demo.yaml", ("data.dataset=ferv39k", f"data.root={root}"))
    classes, clips, official = collect_clips(config, folds=2)
    truth = _truth(root)
    assert not official and sorted(c.clip_id for c in clips) == sorted(truth)
    assert all(c.label == int(truth[c.clip_id]["given_label"]) - 1 for c in clips)
    assert sorted({c.fold for c in clips}) == [1, 2]


def _audit_args(root, out, *extra):
    return ["audit", "--config", "demo", "--out", str(out), "--folds", "2", "--no-progress",
            "--set", f"data.root={root}", "--set", "data.num_workers=0", "--set", "optim.epochs=1",
            "--set", "optim.batch_size=8", "--set", "loss.warmup_epochs=1", "--set", "model.options.input_size=32",
            *extra]


def test_audit_end_to_end_two_folds(tiny_synth, tmp_path, capsys):
    out = tmp_path / "audit"
    assert main(_audit_args(tiny_synth, out)) == 0
    printed = capsys.readouterr().out
    assert "fold 2/2: done" in printed and "scoring against" in printed
    for name in ("audit.json", "clips.csv", "oof_predictions.csv", "label_issues.csv", "report.md", "scores.md",
                 "audit_summary.json", "report_files/per_class.png", "report_files/relabels.png"):
        assert (out / name).is_file(), name

    # Every clip once, held out by the fold that did not train on it, with its given label.
    truth = _truth(tiny_synth)
    oof = read_out_of_fold(out / "oof_predictions.csv")
    assert sorted(oof.clip_id) == sorted(truth)
    for i, clip in enumerate(oof.clip_id):
        assert oof.label[i] == int(truth[clip]["given_label"]) - 1
        with open(out / "folds" / f"fold_{oof.fold[i]}.csv") as f:
            split = {r["path"]: r["split"] for r in csv.DictReader(f)}
        assert split[oof.path[i]] == "test"
    np.testing.assert_allclose(oof.probabilities.sum(1), 1.0)

    # Precision and recall recomputed from label_issues.csv and ground_truth.csv match scores.
    summary = json.loads((out / "audit_summary.json").read_text())
    with open(out / "label_issues.csv") as f:
        rows = list(csv.DictReader(f))
    noisy = {c for c, r in truth.items() if r["is_noisy"] == "1"}
    for method in ("rdfer", "cleanlab", "combined"):
        flagged = {r["id"] for r in rows if r[f"{method}_issue"] == "1"}
        s = summary["scores"]["lists"][method]
        assert s["flagged"] == len(flagged) and s["correct"] == len(flagged & noisy)
        assert s["recall"] == pytest.approx(len(flagged & noisy) / len(noisy))
    evidence = read_evidence(out / "oof_epochs.npz", len(oof))
    assert evidence.probabilities.shape == (1, 30, 7) and evidence.clip_probabilities.shape == (1, 30, 4, 7)
    assert evidence.train_p_label.shape == (1, 30) and 0 < evidence.train_p_label.min() < 1
    # The last epoch's pooled video probabilities are the ones oof_predictions.csv holds.
    np.testing.assert_allclose(evidence.probabilities[-1], oof.probabilities, atol=1e-4)
    assert {r["id"] for r in rows if r["kind"] == HARD} == set(np.array(oof.clip_id)[
        judge(oof, evidence=evidence)["kind"] == HARD])
    assert {r["verdict"] for r in rows} <= {"mislabelled", "hard", "ok"}
    assert "| rdfer (default verdict) |" in (out / "scores.md").read_text()

    # A rerun reuses both folds (nothing retrained) and may rank differently.
    before = (out / "folds" / "fold_1" / "predictions.csv").stat().st_mtime_ns
    assert main(_audit_args(tiny_synth, out, "--rank-by", "combined")) == 0
    assert capsys.readouterr().out.count("finished earlier") == 2
    assert (out / "folds" / "fold_1" / "predictions.csv").stat().st_mtime_ns == before
    with open(out / "label_issues.csv") as f:
        ranked = list(csv.DictReader(f))
    scores = [float(r["combined_score"]) for r in ranked if r["combined_issue"] == "1"]
    assert scores == sorted(scores, reverse=True) and ranked[0]["score"] == ranked[0]["combined_score"]

    # Another config in the same folder is refused: its folds would mix two audits.
    assert main(_audit_args(tiny_synth, out, "--set", "optim.lr=0.1")) == 2
    assert "optim.lr" in capsys.readouterr().err


def test_audit_refuses_bad_input_before_training(tiny_synth, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    assert main(_audit_args(tiny_synth, other)) == 2
    assert "holds no audit" in capsys.readouterr().err
    assert sorted(p.name for p in other.iterdir()) == ["keep.txt"]
    bad_truth = tmp_path / "truth.csv"
    bad_truth.write_text("video_name,label\n1,2\n")
    assert main(_audit_args(tiny_synth, tmp_path / "new", "--ground-truth", str(bad_truth))) == 2
    assert "is_hard" in capsys.readouterr().err and not (tmp_path / "new").exists()
    assert main(_audit_args(tiny_synth, tmp_path / "new", "--min-agreement", "1.5")) == 2
    assert "min-agreement" in capsys.readouterr().err
    assert main(_audit_args(tiny_synth, tmp_path / "new", "--set", "data.dataset=packed")) == 2
    assert "packed" in capsys.readouterr().err


def test_settings_added_to_rdfer_since_an_audit_do_not_block_its_reuse():
    from rdfer.audit.folds import _differences

    before = {"config": {"loss": {"t_h": 0.2}, "seed": 0}}
    assert _differences(before, {"config": {"loss": {"t_h": 0.2, "gce_q": 0.7}, "seed": 0}}) == []
    assert _differences(before, {"config": {"loss": {"t_h": 0.3}, "seed": 0}}) == ["config.loss.t_h"]
    assert _differences(before, {"config": {"loss": {}, "seed": 0}}) == ["config.loss.t_h"]
