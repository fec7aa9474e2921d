"""Label auditing: which labels of a dataset are likely wrong, which clips are hard, and their correction.

One job, plain functions, in the order an audit runs (`rdfer audit`, docs/audit.md):

    folds.py     held-out predictions for every labelled clip: k folds of `fit` (run_audit_folds)
    verdict.py   rdfer's, cleanlab's and the combined verdicts from them (judge, read_out_of_fold)
    report.py    label_issues.csv, scores.md, report.md and its figures (rdfer.figures.audit), audit_summary.json
    review.py    a curator's decisions over an audit folder (AuditFolder, behind `rdfer app`)
    relabel.py   decisions -> corrected split lists (apply_decisions, `rdfer audit --apply`)
    curate.py    the paper's partition of predictions already made (`rdfer curate`, deprecated)

Nothing is imported here: the CLI reads `rdfer.audit.verdict.RANK_BY` while building its
parser without loading torch or matplotlib.
"""
