"""Datasets in the Speech Commands folder layout, and a safe download of the real Speech Commands.

Any folder laid out like Google Speech Commands works, the bundled ``data/speech_words`` as well
as the real dataset::

    <root>/<word>/<speaker>_nohash_<n>.wav|.flac     one clip per file, the folder is the label
    <root>/validation_list.txt                        optional: "word/file.wav" per line
    <root>/testing_list.txt                           optional (training = listed in neither)
    <root>/_background_noise_/...                     folders starting with "_" are ignored

Splits come from the two list files when the root has them; otherwise from the official
Speech Commands rule (:func:`which_set`): a hash of the speaker id, so that every clip of one
speaker lands in the same split. The 2022 seed trained on 699 clips of the *test* list only,
dropping the first one (``iloc[1:700]``) and with no validation split; here a split is a
property of the file, the same in every run.

A file that cannot be loaded (corrupt, empty, NaN samples, ...) never crashes a run: the
dataset checks every file once when it is built, skips the bad ones with ONE warning
(:class:`SkippedFilesWarning`) and lists them in :meth:`SpeechCommands.report`.

Where each part lives (every name is importable from ``utils.data`` too):

- :mod:`utils.data.splits`           the speaker of a clip and its split (list files, hash rule)
- :mod:`utils.data.files`            finding the clips of a folder, and any audio file
- :mod:`utils.data.speech_commands`  the ``SpeechCommands`` dataset and ``collate``
- :mod:`utils.data.download`         the verified, resumable download of Speech Commands

Notebook: notebooks/02_vq_vae.ipynb
"""

from utils.data.download import (
    SPEECH_COMMANDS,
    DownloadError,
    default_cache_dir,
    download_speech_commands,
)
from utils.data.files import AUDIO_SUFFIXES, find_audio, find_clips
from utils.data.speech_commands import SkippedFilesWarning, SpeechCommands, collate
from utils.data.splits import MAX_NUM_WAVS_PER_CLASS as MAX_NUM_WAVS_PER_CLASS
from utils.data.splits import SPLITS as SPLITS
from utils.data.splits import read_split_lists, speaker_of, split_of, which_set

__all__ = [
    "SpeechCommands",
    "SkippedFilesWarning",
    "DownloadError",
    "collate",
    "find_clips",
    "find_audio",
    "AUDIO_SUFFIXES",
    "speaker_of",
    "which_set",
    "split_of",
    "read_split_lists",
    "download_speech_commands",
    "default_cache_dir",
    "SPEECH_COMMANDS",
]
