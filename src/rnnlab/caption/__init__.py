"""Image captioning, as the lab sheet promises: CS231n's captioning model, trained offline on MNIST digit strings.

digits.py (the task: 1-4 MNIST digits side by side, captioned with their names), coco.py (CS231n's COCO
files), vocab.py, model.py (the PyTorch captioner: the lab's LSTM reads, a decoder writes), decode.py
(greedy, beam search), trainers.py (torch and NumPy captioners behind one interface), train.py (the run
folder, resumable), metrics.py (exact match, per-word, BLEU-4), report.py, figures.py, sample.py (your
own pictures), config.py, cli.py (`rnnlab caption ...`). The NumPy model is
`rnnlab.models.numpy_captioning.CaptioningRNN`.
"""
