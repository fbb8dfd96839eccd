"""Training: the loop, evaluation, checkpoints and data parallelism."""

from rnnlab.training.evaluate import Evaluation, evaluate
from rnnlab.training.fit import Progress, TrainingDiverged, TrainingInterrupted, fit

__all__ = ["Evaluation", "Progress", "TrainingDiverged", "TrainingInterrupted", "evaluate", "fit"]
