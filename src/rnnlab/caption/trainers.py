"""The two captioners behind one interface: the PyTorch `ImageCaptioner` and NumPy's `CaptioningRNN`.

A trainer holds a model and its optimiser and offers what the training loop and the report need:

    train_step(inputs, captions) -> (loss, correct words, target words)   one Adam step, teacher forcing
    caption(inputs, beam_size=1)  -> (N, max_length) word indices           greedy (1) or beam search
    state() / load_state(state)                                            everything a checkpoint keeps
    weights() / from_weights(...)                                          what model.pt keeps

`inputs` are what the task hands out: uint8 pictures (N, 28, 112) for digit strings, float32 feature
vectors (N, D) for COCO. Everything saved is tensors, numbers, strings, lists and dicts, so that
`torch.load(weights_only=True)` reads it back.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.caption.decode import beam_decode, greedy_decode
from rnnlab.caption.digits import picture_inputs
from rnnlab.caption.model import ImageCaptioner, caption_loss
from rnnlab.caption.vocab import END, NULL, START


def model_inputs(inputs) -> torch.Tensor:
    """uint8 pictures → the lab's normalised rows; feature vectors → float32 as they are."""
    array = np.asarray(inputs)
    return picture_inputs(array) if array.dtype == np.uint8 else torch.as_tensor(array, dtype=torch.float32)


class TorchTrainer:
    """The PyTorch captioner (row encoder + decoder) with Adam and gradient-norm clipping."""

    def __init__(self, config, task, model: ImageCaptioner | None = None):
        self.word_to_idx, self.max_length, self.grad_clip = task.word_to_idx, task.max_length, config.grad_clip
        if model is None:
            torch.manual_seed(config.seed)
            sizes = (len(task.word_to_idx), config.decoder, config.wordvec_dim, config.hidden_size)
            if task.feature_dim is None:  # pictures: the row-by-row encoder reads them, slot by slot
                model = ImageCaptioner(*sizes, slots=task.slots, slot_width=task.slot_width,
                                       encoder_hidden=config.encoder_hidden, encoder_layers=config.encoder_layers)
            else:
                model = ImageCaptioner(*sizes, slots=None, feature_dim=task.feature_dim)
        self.model = model
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    def train_step(self, inputs, captions, lr: float) -> tuple[float, int, int]:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        captions = torch.as_tensor(np.asarray(captions), dtype=torch.long)
        scores = self.model(model_inputs(inputs), captions[:, :-1])
        loss, correct = caption_loss(scores, captions[:, 1:], self.word_to_idx[NULL])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()
        return loss.item(), int(correct), int((captions[:, 1:] != self.word_to_idx[NULL]).sum())

    def caption(self, inputs, beam_size: int = 1, batch_size: int = 500) -> np.ndarray:
        tokens = self.word_to_idx[START], self.word_to_idx[END], self.word_to_idx[NULL]
        out = []
        for i in range(0, len(inputs), batch_size):
            x = model_inputs(inputs[i:i + batch_size])
            if beam_size == 1:
                out.append(greedy_decode(self.model, x, self.max_length, *tokens))
            else:
                out.append(beam_decode(self.model, x, self.max_length, *tokens, beam_size=beam_size))
        return torch.cat(out).numpy()

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def weights(self) -> dict:
        return {"kind": "torch", "hparams": self.model.hparams(),
                "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()}}

    @classmethod
    def from_weights(cls, weights: dict, config, task) -> "TorchTrainer":
        model = ImageCaptioner(**weights["hparams"])
        model.load_state_dict(weights["state_dict"])
        model.eval()
        return cls(config, task, model)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


class NumpyTrainer:
    """CS231n's `CaptioningRNN` (NumPy, float32) with the lab's NumPy Adam.

    Its features are the flattened pictures, or, with `encoder` (a trained torch captioner, frozen),
    that captioner's normalised encoder features: CS231n's set-up, where the captioning RNN reads
    features that a trained network extracted. COCO's inputs already are feature vectors.
    """

    def __init__(self, config, task, encoder: ImageCaptioner | None = None, params: dict | None = None):
        from rnnlab.models.numpy_captioning import CaptioningRNN
        from rnnlab.models.numpy_lstm import Adam

        self.encoder = encoder.eval() if encoder is not None else None
        self.max_length = task.max_length
        # The feature size: the saved weights' W_proj, or what the features of one test input measure.
        input_dim = params["W_proj"].shape[0] if params is not None else self.features(task.test_inputs[:1]).shape[1]
        self.model = CaptioningRNN(task.word_to_idx, input_dim=input_dim, wordvec_dim=config.wordvec_dim,
                                   hidden_dim=config.hidden_size, cell_type=config.decoder, dtype=np.float32,
                                   seed=config.seed)
        if params is not None:
            for name, value in params.items():
                self.model.params[name] = np.asarray(value, dtype=np.float32).copy()
        self.optimizer = Adam(self.model.params, lr=config.lr)
        self.grad_clip = config.grad_clip

    def features(self, inputs) -> np.ndarray:
        """Inputs → (N, D) float32 feature vectors (the frozen encoder's, or flattened [-1, 1] pixels)."""
        x = model_inputs(inputs)
        if self.encoder is not None:
            with torch.no_grad():
                x = self.encoder.features(x)
        return x.reshape(len(x), -1).numpy().astype(np.float32, copy=False)

    def train_step(self, inputs, captions, lr: float) -> tuple[float, int, int]:
        self.optimizer.lr = lr
        captions = np.asarray(captions)
        loss, grads = self.model.loss(self.features(inputs), captions)
        if self.grad_clip:  # the same clipping as the torch trainer: the global norm of every gradient
            norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
            if norm > self.grad_clip:
                grads = {k: g * (self.grad_clip / norm) for k, g in grads.items()}
        self.optimizer.step(grads)
        # Teacher-forced word accuracy is not part of CaptioningRNN.loss; the loop reports the loss.
        return float(loss), 0, int((captions[:, 1:] != self.model._null).sum())

    def caption(self, inputs, beam_size: int = 1, batch_size: int = 500) -> np.ndarray:
        out = [self.model.sample(self.features(inputs[i:i + batch_size]), self.max_length)
               for i in range(0, len(inputs), batch_size)]
        return np.concatenate(out).astype(np.int64)

    def state(self) -> dict:
        as_tensors = lambda d: {k: torch.from_numpy(np.array(v)) for k, v in d.items()}  # noqa: E731
        return {"params": as_tensors(self.model.params), "m": as_tensors(self.optimizer.m),
                "v": as_tensors(self.optimizer.v), "t": self.optimizer.t}

    def load_state(self, state: dict) -> None:
        for name in self.model.params:
            self.model.params[name][...] = state["params"][name].numpy()
            self.optimizer.m[name][...] = state["m"][name].numpy()
            self.optimizer.v[name][...] = state["v"][name].numpy()
        self.optimizer.t = int(state["t"])

    def weights(self) -> dict:
        encoder = None
        if self.encoder is not None:  # the whole frozen captioner (small), so that the run stands alone
            encoder = {"hparams": self.encoder.hparams(),
                       "state_dict": {k: v.detach().cpu() for k, v in self.encoder.state_dict().items()}}
        return {"kind": "numpy", "cell_type": self.model.cell_type, "encoder": encoder,
                "params": {k: torch.from_numpy(np.array(v)) for k, v in self.model.params.items()}}

    @classmethod
    def from_weights(cls, weights: dict, config, task) -> "NumpyTrainer":
        encoder = None
        if weights.get("encoder"):
            encoder = ImageCaptioner(**weights["encoder"]["hparams"])
            encoder.load_state_dict(weights["encoder"]["state_dict"])
        return cls(config, task, encoder, {k: v.numpy() for k, v in weights["params"].items()})

    def parameter_count(self) -> int:
        return sum(v.size for v in self.model.params.values())
