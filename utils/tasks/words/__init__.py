"""Spoken-word classification on the complex STFT: complex networks against their real twins.

The question this package lets us measure: does a complex network that sees the **phase** of the
STFT classify spoken words better than a parameter-matched real network that sees only the
magnitude? Everything needed is here, one concept per module, used alike by the command line,
the tests and the notebook (every name below is importable from ``utils.tasks.words``):

* **Features** (``features.py``, :func:`complex_features`): the clip is resampled to 8 kHz,
  centred on its energy in a 1 s window and peak-normalised (:func:`prepare_clip`), then
  ``X = STFT(y)`` with a 256-point Hann window and a 128-sample hop (32 ms / 16 ms:
  ``[1, 129, 63]`` complex64 per clip, 31 Hz bins up to 4 kHz). Why these numbers: the hop is
  half the window, so the Hann windows overlap-add to a constant and the STFT is exactly
  invertible (the features carry the whole signal, phase included); the telephone band
  (0-4 kHz) keeps the words intelligible and halves the input of the 16 kHz / 16 ms
  alternative (``[1, 129, 126]``), which keeps training of all the shipped checkpoints within
  minutes on one CPU thread. (A check with one seed of each LeNet, 8 epochs: test accuracy
  81 / 84 % (complex / real) at 16 kHz against 78 / 84 % at 8 kHz, but 4 / 7 % against
  21 / 41 % on the real recordings of one speaker (``one_speaker_words``, see
  ``data/README.md``); presumably the synthetic voices' top octave is the least like a
  microphone's.)
  The magnitude is compressed with a power law that **keeps the phase** (:func:`compress`)::

      F = |X|^c · e^{i∠X},   c = 0.3

  which maps the ~60 dB dynamic range of speech to ~18 "dB" (like a log) but, unlike a log, is
  exactly invertible, zero at zero, and acts on the modulus only. A complex model gets ``F``; its
  real twin gets the compressed magnitude ``|F| = |X|^c`` (:func:`magnitude_features`), so the
  two differ exactly by the phase.
* **Models** (``classifiers.py``, :func:`build_model`, :class:`WordsConfig`):
  :class:`~utils.models.complex_cnn.ComplexLeNet` and a small
  :class:`~utils.models.complex_cnn.ComplexVGG`, and their real twins with the parameter count
  matched (:func:`~utils.models.complex_cnn.matched_width_scale`).
* **Training** (``task.py``, :class:`WordsTask` in the collection's one loop,
  :func:`utils.training.train`): AdamW, linear warm-up + cosine learning rate, random time
  shifts by whole STFT frames (an exact time shift of the signal), every batch a pure function
  of (seed, step); ``best.pt`` holds the weights of the best validation accuracy.
* **Evaluation** (``evaluation.py``, :func:`evaluate`): accuracy, loss and confusion matrix.
* **The comparison** (``study.py``): saved classifiers measured on a folder, possibly of other
  recordings whose words are a subset of the classes (:func:`evaluate_checkpoints`), mean ± std
  over seeds per (arch, kind) (:func:`summarize`), a run's history from its log
  (:func:`run_records`).
* **Checkpoints** (``checkpoints.py``, :func:`save_model` / :func:`load_model`):
  ``kind = "spoken-words"`` dicts with the config, the history and the weights stored as
  float16 (half the size; the accuracies in ``data/pretrained/README.md`` are measured on the
  stored weights).

Command lines (``commands.py``; the first trains every combination, keeps each run in
``OUT/runs/``, saves ``OUT/words_<arch>_<kind>_s<seed>.pt`` and prints the test table; the
second measures saved classifiers on any folder)::

    python -m utils.train words --arch lenet vgg --kind complex real ri --seeds 0 1 2 \\
        --epochs 10 --out data/pretrained/
    python -m utils.evaluate words data/pretrained/words_*.pt data/speech_words --split testing

Notebook: notebooks/06_complex_networks.ipynb
"""

from utils.tasks.words.checkpoints import KIND, checkpoint_name, load_model, save_model
from utils.tasks.words.classifiers import ARCHS, WordsConfig, build_model
from utils.tasks.words.commands import (
    DEFAULT_LR,
    SUMMARY,
    TRAIN_DEFAULTS,
    add_eval_arguments,
    add_train_arguments,
    evaluate_command,
    train_command,
)
from utils.tasks.words.commands import TRAIN_SKIP as TRAIN_SKIP
from utils.tasks.words.evaluation import evaluate
from utils.tasks.words.features import (
    KINDS,
    WORD_FEATURES,
    WordData,
    WordFeatures,
    complex_features,
    compress,
    decompress,
    load_words,
    magnitude_features,
    model_input,
    prepare_clip,
)
from utils.tasks.words.features import REAL_IN_CHANNELS as REAL_IN_CHANNELS
from utils.tasks.words.study import evaluate_checkpoints, run_records, summarize
from utils.tasks.words.task import WordsTask, shift_frames

__all__ = [
    "KIND",
    "ARCHS",
    "KINDS",
    "DEFAULT_LR",
    "SUMMARY",
    "TRAIN_DEFAULTS",
    "WordFeatures",
    "WORD_FEATURES",
    "WordData",
    "WordsConfig",
    "WordsTask",
    "prepare_clip",
    "compress",
    "decompress",
    "complex_features",
    "magnitude_features",
    "model_input",
    "load_words",
    "build_model",
    "shift_frames",
    "evaluate",
    "save_model",
    "load_model",
    "evaluate_checkpoints",
    "summarize",
    "run_records",
    "checkpoint_name",
    "add_train_arguments",
    "train_command",
    "add_eval_arguments",
    "evaluate_command",
]
