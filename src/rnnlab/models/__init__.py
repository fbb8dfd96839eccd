"""Models: the lab's recurrent classifiers and the LSTM written from its equations."""

from rnnlab.models.recurrent import RecurrentClassifier
from rnnlab.models.registry import build_model, count_parameters, new_model

__all__ = ["RecurrentClassifier", "build_model", "count_parameters", "new_model"]
