"""The PyTorch captioner: the lab's LSTM reads the picture row by row, a recurrent decoder writes its caption.

    picture (N, 28, 112) ──► encoder: the lab's LSTM reads each 28-column slot row by row (28 steps of
                             28 pixels, as the lab reads a digit); the slots' last hidden states side
                             by side, batch-normalised, are the features (N, 4·E)
    features ──► h0 = features W_proj + b_proj (N, H)        (CS231n's CaptioningRNN, word for word)
    captions_in (N, T) ──► embedding (N, T, W) ──► decoder from h0 (c0 = 0) ──► scores (N, T, V)

The decoder is `nn.LSTM`, the lab's `ScratchLSTM` (the same equations, hand-written backward) or a
vanilla `nn.RNN` (tanh), chosen by name; it is trained with teacher forcing (it reads the true previous
word). For data that comes as feature vectors (CS231n's COCO files) there is no encoder: the model
reads the features directly. Decoding (greedy, beam search) is in `rnnlab.caption.decode`.

Why the batch normalisation: at initialisation the encoder's final states hardly differ from picture to
picture (a spread of ~0.02 around a common value), so h0 carries almost no signal, the decoder learns to
ignore it, and training sits on a plateau; standardising each feature over the batch gives h0 a usable
spread from the first step. Why slots: one LSTM reading whole 112-pixel rows must learn every digit at
every column; reading slot by slot it shares its weights across the four positions, and learns from
every digit of every picture (in exploration, several times fewer steps to the same accuracy).
"""

from __future__ import annotations

import torch
from torch import nn

DECODERS = ("lstm", "scratch-lstm", "rnn")


class RowEncoder(nn.Module):
    """The lab's LSTM reading each `slot_width`-column slot of a picture row by row.

    forward(x (N, rows, slots·slot_width)) → features (N, slots·hidden_size): each slot's top-layer
    last hidden state, slots left to right. All slots go through the LSTM as one batch of N·slots.
    """

    def __init__(self, slots: int = 4, slot_width: int = 28, hidden_size: int = 128, num_layers: int = 1):
        super().__init__()
        self.slots, self.slot_width = slots, slot_width
        self.lstm = nn.LSTM(slot_width, hidden_size, num_layers, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, rows, columns = x.shape
        if columns != self.slots * self.slot_width:
            raise ValueError(f"pictures of {columns} columns, not {self.slots}×{self.slot_width}")
        # (N, rows, slots·w) → (N·slots, rows, w): slot k of picture i is sequence i·slots + k.
        x = x.reshape(n, rows, self.slots, self.slot_width).transpose(1, 2).reshape(n * self.slots, rows, -1)
        _, (h_n, _) = self.lstm(x)
        return h_n[-1].reshape(n, self.slots * self.lstm.hidden_size)


def recurrent_decoder(name: str, wordvec_dim: int, hidden_dim: int) -> nn.Module:
    """One recurrent layer, batch_first, for `name` in `DECODERS`."""
    if name == "lstm":
        return nn.LSTM(wordvec_dim, hidden_dim, batch_first=True)
    if name == "scratch-lstm":
        from rnnlab.models.scratch_lstm import ScratchLSTM

        return ScratchLSTM(wordvec_dim, hidden_dim, 1, batch_first=True)
    if name == "rnn":
        return nn.RNN(wordvec_dim, hidden_dim, batch_first=True, nonlinearity="tanh")
    raise ValueError(f"unknown decoder {name!r}")


class ImageCaptioner(nn.Module):
    """Encoder (optional) + CS231n's captioning decoder, for a vocabulary of `vocab_size` words.

    `slots`/`slot_width`/`encoder_hidden`/`encoder_layers` describe the row encoder; `slots=None` means
    the input already is a feature vector of `feature_dim` entries (no encoder, no normalisation).
    """

    def __init__(self, vocab_size: int, decoder: str = "lstm", wordvec_dim: int = 64, hidden_dim: int = 128,
                 slots: int | None = 4, slot_width: int = 28, encoder_hidden: int = 128, encoder_layers: int = 1,
                 feature_dim: int | None = None):
        super().__init__()
        self.decoder_name = decoder
        if slots is not None:
            self.encoder = RowEncoder(slots, slot_width, encoder_hidden, encoder_layers)
            feature_dim = slots * encoder_hidden
            self.norm = nn.BatchNorm1d(feature_dim)
        else:
            if feature_dim is None:
                raise ValueError("without an encoder, give feature_dim")
            self.encoder, self.norm = None, nn.Identity()
        self.proj = nn.Linear(feature_dim, hidden_dim)
        self.embed = nn.Embedding(vocab_size, wordvec_dim)
        self.decoder = recurrent_decoder(decoder, wordvec_dim, hidden_dim)
        self.vocab = nn.Linear(hidden_dim, vocab_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pictures (N, rows, columns) → normalised features (N, F); feature vectors pass through unchanged."""
        return x if self.encoder is None else self.norm(self.encoder(x))

    def initial_state(self, features: torch.Tensor):
        """The decoder's state before the first word: h0 = features W_proj + b_proj, and c0 = 0 for an LSTM."""
        h0 = self.proj(features).unsqueeze(0)  # (1, N, H): one layer
        return h0 if self.decoder_name == "rnn" else (h0, torch.zeros_like(h0))

    def decode(self, words: torch.Tensor, state):
        """Words (N, T) read from `state` → scores (N, T, V) of each next word, and the state after them."""
        output, state = self.decoder(self.embed(words), state)
        return self.vocab(output), state

    def forward(self, x: torch.Tensor, captions_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: pictures or features `x`, captions_in (N, T) → scores (N, T, V)."""
        scores, _ = self.decode(captions_in, self.initial_state(self.features(x)))
        return scores

    def hparams(self) -> dict:
        """What `ImageCaptioner(**hparams)` needs to make this model again (saved with its weights)."""
        values = {"vocab_size": self.vocab.out_features, "decoder": self.decoder_name,
                  "wordvec_dim": self.embed.embedding_dim, "hidden_dim": self.proj.out_features}
        if self.encoder is None:
            return {**values, "slots": None, "feature_dim": self.proj.in_features}
        lstm = self.encoder.lstm
        return {**values, "slots": self.encoder.slots, "slot_width": self.encoder.slot_width,
                "encoder_hidden": lstm.hidden_size, "encoder_layers": lstm.num_layers}


def caption_loss(scores: torch.Tensor, targets: torch.Tensor, null: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """CS231n's temporal softmax loss: cross-entropy summed over the non-<NULL> steps, averaged over N.

    scores (N, T, V), targets (N, T). Returns (loss, the number of correctly predicted target words).
    """
    mask = targets != null
    losses = nn.functional.cross_entropy(scores.transpose(1, 2), targets, reduction="none")  # (N, T)
    loss = (losses * mask).sum() / targets.shape[0]
    correct = ((scores.detach().argmax(dim=2) == targets) & mask).sum()
    return loss, correct
