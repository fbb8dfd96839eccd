"""How good the captions are: exact match, per-word accuracy, BLEU-4, and each by caption length.

* exact match: the generated words equal a reference caption's words (the whole caption right);
* per-word accuracy: position by position against the (first) reference, counting its words and its
  `<END>`, so a caption that is too long (a wrong word where `<END>` belongs) or too short (missing
  words) loses those positions;
* BLEU-4: sacrebleu's corpus BLEU (uniform weights on 1- to 4-gram precisions summed over the whole test
  set, brevity penalty, words split on spaces), every reference of a picture counted, as a fraction.
  Why not NLTK's `corpus_bleu`: it counts a caption shorter than n words as one n-gram that does not
  match, so on digit strings (1-4 words) a set of perfect captions scores 0.56, not 1.
"""

from __future__ import annotations

import numpy as np

from rnnlab.caption.vocab import END, NULL, words_of


def per_word(generated: np.ndarray, reference: np.ndarray, null: int) -> tuple[np.ndarray, np.ndarray]:
    """Position-wise comparison: generated (N, L) and reference (N, L') word indices without `<START>`,
    both ending at `<END>` then `<NULL>`. Returns (correct (N,), counted (N,)) positions per caption."""
    length = max(generated.shape[1], reference.shape[1])
    pad = np.full((len(generated), length), null, dtype=np.int64)
    gen, ref = pad.copy(), pad.copy()
    gen[:, :generated.shape[1]] = generated
    ref[:, :reference.shape[1]] = reference
    counted = ref != null
    return ((gen == ref) & counted).sum(axis=1), counted.sum(axis=1)


def bleu4(generated_words: list[list[str]], references: list[list[list[str]]]) -> float:
    """Corpus BLEU-4 (sacrebleu) of generated word lists against each picture's reference word lists, in [0, 1]."""
    from sacrebleu.metrics import BLEU

    # sacrebleu takes reference *streams* (the k-th reference of every picture); a picture with fewer
    # references than the most has None in the streams it lacks (sacrebleu's variable-reference form).
    most = max(len(refs) for refs in references)
    streams = [[" ".join(refs[k]) if k < len(refs) else None for refs in references] for k in range(most)]
    hypotheses = [" ".join(words) for words in generated_words]
    return BLEU(tokenize="none", max_ngram_order=4).corpus_score(hypotheses, streams).score / 100.0


def score_captions(generated: np.ndarray, task, lengths: np.ndarray | None = None) -> dict:
    """Every figure for `generated` (N, L) word indices (no `<START>`) against `task`'s test references.

    Returns {"pictures", "exact_match", "per_word_accuracy", "bleu4", "by_length": {n: {...}}}, where
    n is the number of words in the (first) reference caption (digits: the number of digits shown).
    """
    idx_to_word = task.idx_to_word
    null = task.word_to_idx[NULL]
    generated = np.asarray(generated, dtype=np.int64)
    words = [words_of(row, idx_to_word) for row in generated]
    exact = np.array([w in refs for w, refs in zip(words, task.test_references)])
    correct, counted = per_word(generated, np.asarray(task.test_captions)[:, 1:], null)
    lengths = np.asarray(task.test_lengths if lengths is None else lengths)
    result = {"pictures": len(generated), "exact_match": float(exact.mean()),
              "per_word_accuracy": float(correct.sum() / max(1, counted.sum())),
              "bleu4": bleu4(words, task.test_references), "by_length": {}}
    for n in sorted(set(lengths.tolist())):
        chosen = lengths == n
        result["by_length"][str(n)] = {
            "pictures": int(chosen.sum()), "exact_match": float(exact[chosen].mean()),
            "per_word_accuracy": float(correct[chosen].sum() / max(1, counted[chosen].sum()))}
    return result


def caption_strings(generated: np.ndarray, idx_to_word) -> list[str]:
    """Word indices (N, L) → "seven two nine" strings (a missing `<END>` is shown as "…")."""
    strings = []
    for row in np.asarray(generated):
        text = " ".join(words_of(row, idx_to_word))
        ended = any(idx_to_word[i] == END for i in row.tolist())
        strings.append(text if ended else text + " …")
    return strings


def summary_line(scores: dict) -> str:
    return (f"exact match {100 * scores['exact_match']:.1f}%, per-word {100 * scores['per_word_accuracy']:.2f}%, "
            f"BLEU-4 {scores['bleu4']:.3f} on {scores['pictures']} test pictures")
