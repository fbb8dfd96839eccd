"""Writing captions with a trained `ImageCaptioner`: greedy decoding and beam search.

Both start from `<START>` and the state the picture's features give, and return word indices
(N, max_length) without `<START>`, in CS231n's `sample` convention: a caption stops at its first
`<END>` (kept) and `<NULL>` fills every position after it.
"""

from __future__ import annotations

import torch

from rnnlab.caption.model import ImageCaptioner


def _select_state(state, index: torch.Tensor):
    """Rows `index` of a decoder state (an RNN's h, or an LSTM's (h, c), each (1, N, H))."""
    if isinstance(state, tuple):
        return tuple(s[:, index] for s in state)
    return state[:, index]


@torch.no_grad()
def greedy_decode(model: ImageCaptioner, x: torch.Tensor, max_length: int, start: int, end: int,
                  null: int) -> torch.Tensor:
    """At each step the single highest-scoring word, fed back as the next input.

    x: pictures (N, rows, columns) or features (N, F). Returns (N, max_length) int64.
    """
    model.eval()
    state = model.initial_state(model.features(x))
    n = x.shape[0]
    words = torch.full((n, 1), start, dtype=torch.long, device=x.device)
    captions = torch.full((n, max_length), null, dtype=torch.long, device=x.device)
    done = torch.zeros(n, dtype=torch.bool, device=x.device)
    for t in range(max_length):
        scores, state = model.decode(words, state)
        words = scores[:, -1].argmax(dim=1, keepdim=True)
        captions[:, t] = torch.where(done, null, words[:, 0])
        done |= words[:, 0] == end
        if bool(done.all()):
            break
    return captions


@torch.no_grad()
def beam_decode(model: ImageCaptioner, x: torch.Tensor, max_length: int, start: int, end: int, null: int,
                beam_size: int = 3) -> torch.Tensor:
    """Beam search: keep the `beam_size` most probable partial captions (sum of log-probabilities) at each
    step; a caption that has written `<END>` is finished and keeps its score. Returns the most probable
    caption of each picture, (N, max_length) int64. `beam_size=1` is greedy decoding.

    No length normalisation: for digit strings the true caption's length is what the picture shows,
    and a bonus for long captions would only add digits.
    """
    model.eval()
    n, k = x.shape[0], beam_size
    features = model.features(x)
    # Every picture's k beams as rows of one batch: row i·k + j is beam j of picture i.
    state = _select_state(model.initial_state(features), torch.arange(n, device=x.device).repeat_interleave(k))
    tokens = torch.full((n * k, max_length), null, dtype=torch.long, device=x.device)
    # At the start only beam 0 is live, so the first step does not pick the same word k times.
    scores = torch.full((n, k), float("-inf"), device=x.device)
    scores[:, 0] = 0.0
    scores = scores.reshape(n * k)
    finished = torch.zeros(n * k, dtype=torch.bool, device=x.device)
    words = torch.full((n * k, 1), start, dtype=torch.long, device=x.device)
    for t in range(max_length):
        logits, state = model.decode(words, state)
        log_probs = torch.log_softmax(logits[:, -1].float(), dim=1)          # (n·k, V)
        vocab = log_probs.shape[1]
        # A finished beam can only "write" <NULL>, at no cost: it stays one candidate with its score.
        log_probs = torch.where(finished[:, None], torch.full_like(log_probs, float("-inf")), log_probs)
        log_probs[finished, null] = 0.0
        candidates = (scores[:, None] + log_probs).reshape(n, k * vocab)
        best, flat = candidates.topk(k, dim=1)                               # (n, k)
        parent = (flat // vocab) + torch.arange(n, device=x.device)[:, None] * k
        word = flat % vocab
        parent, word = parent.reshape(-1), word.reshape(-1)
        tokens = tokens[parent]
        tokens[:, t] = word
        finished = finished[parent] | (word == end)
        scores = best.reshape(-1)
        state = _select_state(state, parent)
        words = word[:, None]
        if bool(finished.all()):
            break
    best_beam = scores.reshape(n, k).argmax(dim=1) + torch.arange(n, device=x.device) * k
    return tokens[best_beam]
