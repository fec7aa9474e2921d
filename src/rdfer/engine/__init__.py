"""Training and evaluation engine: plain functions over explicit arguments.

`fit` runs a whole training run into a run folder; `train_one_epoch` and
`evaluate` are its two loops; `evaluate_checkpoint` and `run_cv` back the
`rdfer eval` and `rdfer cv` commands.
"""

from rdfer.engine.cv import run_cv
from rdfer.engine.evaluation import evaluate_checkpoint
from rdfer.engine.fit import fit
from rdfer.engine.loop import evaluate, train_one_epoch

__all__ = ["fit", "train_one_epoch", "evaluate", "evaluate_checkpoint", "run_cv"]
