"""CS231n's image-captioning RNN in plain NumPy: `CaptioningRNN`, with the assignment's interface.

The picture's feature vector sets the recurrent network's first hidden state; the network then reads
the caption one word at a time and scores the next word (N batch, D feature size, W word-vector size,
H hidden units, V vocabulary size, T caption length):

    h0     = features W_proj + b_proj                         (N, H)
    x      = W_embed[captions_in]                             (N, T, W)
    h      = rnn or lstm over x from h0 (Wx, Wh, b)           (N, T, H)
    scores = h W_vocab + b_vocab                              (N, T, V)
    loss   = softmax cross-entropy of scores against captions_out, <NULL> masked,
             summed over time, averaged over the batch

The layers are rnnlab's references: `numpy_rnn` (vanilla RNN), `numpy_lstm` (LSTM, gates i, f, o, g,
zero initial cell state) and `numpy_layers` (embedding, temporal affine, temporal softmax loss).
A course's own checks (fixed linspace weights, expected losses, numerical gradients) run unchanged.
"""

from __future__ import annotations

import numpy as np

from rnnlab.models.numpy_layers import (temporal_affine_backward, temporal_affine_forward, temporal_softmax_loss,
                                        word_embedding_backward, word_embedding_forward)
from rnnlab.models.numpy_lstm import lstm_backward, lstm_forward, lstm_step_forward
from rnnlab.models.numpy_rnn import rnn_backward, rnn_forward, rnn_step_forward


class CaptioningRNN:
    """Captions from image features with a vanilla RNN or an LSTM (CS231n assignment 3).

    `word_to_idx` maps each of the V words to an index in [0, V); it must hold "<NULL>" (padding,
    masked out of the loss), and "<START>"/"<END>" for `sample`. `params` holds W_embed (V, W),
    W_proj (D, H), b_proj (H,), Wx (W, kH), Wh (H, kH), b (kH,), W_vocab (H, V), b_vocab (V,)
    with k = 1 for "rnn" and 4 for "lstm". The initial weights are CS231n's scales, drawn from
    `np.random` (as the course does) or, given `seed`, from a generator of their own.
    """

    def __init__(self, word_to_idx, input_dim=512, wordvec_dim=128, hidden_dim=128, cell_type="rnn",
                 dtype=np.float32, seed: int | None = None):
        if cell_type not in {"rnn", "lstm"}:
            raise ValueError(f'Invalid cell_type "{cell_type}"')
        self.cell_type = cell_type
        self.dtype = dtype
        self.word_to_idx = word_to_idx
        self.idx_to_word = {i: w for w, i in word_to_idx.items()}
        self.params: dict[str, np.ndarray] = {}

        vocab_size = len(word_to_idx)
        self._null = word_to_idx["<NULL>"]
        self._start = word_to_idx.get("<START>", None)
        self._end = word_to_idx.get("<END>", None)

        rng = np.random if seed is None else np.random.RandomState(seed)
        k = {"lstm": 4, "rnn": 1}[cell_type]
        self.params["W_embed"] = rng.randn(vocab_size, wordvec_dim) / 100
        self.params["W_proj"] = rng.randn(input_dim, hidden_dim) / np.sqrt(input_dim)
        self.params["b_proj"] = np.zeros(hidden_dim)
        self.params["Wx"] = rng.randn(wordvec_dim, k * hidden_dim) / np.sqrt(wordvec_dim)
        self.params["Wh"] = rng.randn(hidden_dim, k * hidden_dim) / np.sqrt(hidden_dim)
        self.params["b"] = np.zeros(k * hidden_dim)
        self.params["W_vocab"] = rng.randn(hidden_dim, vocab_size) / np.sqrt(hidden_dim)
        self.params["b_vocab"] = np.zeros(vocab_size)
        for name, value in self.params.items():
            self.params[name] = value.astype(self.dtype)

    def loss(self, features, captions):
        """Training loss and gradients.

        Inputs: features (N, D); captions (N, T+1) word indices, each starting with <START>. The model
        reads captions[:, :-1] and is scored on predicting captions[:, 1:] (the word after each one),
        <NULL> positions excluded. Returns (loss, grads), grads keyed like `params`.
        """
        captions_in = captions[:, :-1]
        captions_out = captions[:, 1:]
        mask = captions_out != self._null
        p = self.params

        h0 = features @ p["W_proj"] + p["b_proj"]                                    # (N, H)
        x, embed_cache = word_embedding_forward(captions_in, p["W_embed"])           # (N, T, W)
        recurrent_forward = rnn_forward if self.cell_type == "rnn" else lstm_forward
        h, recurrent_cache = recurrent_forward(x, h0, p["Wx"], p["Wh"], p["b"])      # (N, T, H)
        scores, vocab_cache = temporal_affine_forward(h, p["W_vocab"], p["b_vocab"])  # (N, T, V)
        loss, dscores = temporal_softmax_loss(scores, captions_out, mask)

        grads = {}
        dh, grads["W_vocab"], grads["b_vocab"] = temporal_affine_backward(dscores, vocab_cache)
        recurrent_backward = rnn_backward if self.cell_type == "rnn" else lstm_backward
        dx, dh0, grads["Wx"], grads["Wh"], grads["b"] = recurrent_backward(dh, recurrent_cache)
        grads["W_embed"] = word_embedding_backward(dx, embed_cache)
        grads["W_proj"] = features.T @ dh0
        grads["b_proj"] = dh0.sum(axis=0)
        return loss, grads

    def sample(self, features, max_length=30):
        """Greedy captions: from <START>, feed back the highest-scoring word at each step.

        Inputs: features (N, D). Returns captions (N, max_length) of word indices, <START> not included.
        A caption stops at its first <END> (kept); every position after it is <NULL>.
        """
        N = features.shape[0]
        captions = np.full((N, max_length), self._null, dtype=np.int32)
        p = self.params
        prev_h = features @ p["W_proj"] + p["b_proj"]
        prev_c = np.zeros_like(prev_h)
        words = np.full(N, self._start, dtype=np.int32)
        done = np.zeros(N, dtype=bool)
        for t in range(max_length):
            x = p["W_embed"][words]                                                  # (N, W)
            if self.cell_type == "rnn":
                prev_h, _ = rnn_step_forward(x, prev_h, p["Wx"], p["Wh"], p["b"])
            else:
                prev_h, prev_c, _ = lstm_step_forward(x, prev_h, prev_c, p["Wx"], p["Wh"], p["b"])
            words = np.argmax(prev_h @ p["W_vocab"] + p["b_vocab"], axis=1).astype(np.int32)
            captions[~done, t] = words[~done]
            done |= words == self._end
            if done.all():
                break
        return captions
