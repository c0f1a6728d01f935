"""Tasks: what each model family brings to the two commands, and what the commands share.

``python -m utils.train TASK ...`` and ``python -m utils.evaluate TASK ...`` look the task up
here. Each task module has ``SUMMARY`` (one line for ``--help``), ``TRAIN_DEFAULTS`` (its
defaults of the shared :class:`utils.training.TrainConfig`), ``add_train_arguments`` /
``train_command`` and ``add_eval_arguments`` / ``evaluate_command``.

Notebook: notebooks/02_vq_vae.ipynb
"""

from __future__ import annotations

import importlib
import json
import math
from types import ModuleType
from typing import Any

__all__ = ["TASKS", "get", "json_line"]

#: Task name → module, in the order ``--help`` lists them.
TASKS: dict[str, str] = {
    "codec": "utils.tasks.codec",
    "words": "utils.tasks.words",
    "vae": "utils.tasks.vae",
    "prior": "utils.tasks.prior",
    "enhance": "utils.tasks.enhance",
    "vocoder": "utils.tasks.vocoder",
    "degli": "utils.tasks.degli",
    "wavenet": "utils.tasks.wavenet",
}


def get(name: str) -> ModuleType:
    """The module of task ``name``.

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return importlib.import_module(TASKS[name])


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def json_line(obj: Any) -> str:
    """One line of strict JSON: NaN and infinities become ``null`` (bare ``NaN`` is not JSON).

    Notebook: notebooks/02_vq_vae.ipynb
    """
    return json.dumps(_finite(obj), allow_nan=False, default=str)
