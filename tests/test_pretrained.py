"""The 13 shipped checkpoints still load and give the outputs they gave when they were shipped.

``tests/data/pretrained_fingerprints.json`` was written with the code that trained them (before
the training loop, the task modules and the model folder were reorganised): for a fixed input,
the codec's indices and decoded log-mel at 5 and 24 stages and each word classifier's logits.
A refactoring that changes a layer's maths, a parameter name or the loading path fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from utils.models.vqvae import MelVQVAE
from utils.tasks import words as W

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "data" / "pretrained"
FINGERPRINTS = json.loads((Path(__file__).parent / "data" / "pretrained_fingerprints.json")
                          .read_text())


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_every_shipped_checkpoint_has_a_fingerprint():
    assert sorted(FINGERPRINTS) == sorted(p.name for p in PRETRAINED.glob("*.pt"))
    assert len(FINGERPRINTS) == 13


def test_codec_gives_the_shipped_indices_and_log_mel():
    model = MelVQVAE.from_checkpoint(PRETRAINED / "vqvae_speech.pt").eval()
    x = -2.5 + 1.2 * torch.randn(1, 80, 48, generator=torch.Generator().manual_seed(1234))
    for n_q, ref in FINGERPRINTS["vqvae_speech.pt"].items():
        with torch.no_grad():
            idx = model.encode_indices(x, int(n_q))
            y = model.decode_indices(idx, 48)
        assert idx.flatten().tolist() == ref["indices"]
        np.testing.assert_allclose(float(y.sum()), ref["sum"], rtol=1e-5)
        np.testing.assert_allclose(float(y.abs().sum()), ref["abs_sum"], rtol=1e-5)
        np.testing.assert_allclose(y.flatten()[::97].numpy(), ref["sample"], atol=1e-4)


@pytest.mark.parametrize("name", sorted(n for n in FINGERPRINTS if n.startswith("words_")))
def test_word_classifier_gives_the_shipped_logits(name):
    model, ckpt = W.load_model(PRETRAINED / name)
    model.eval()
    g = torch.Generator().manual_seed(4321)
    re = torch.randn(2, 1, 129, 63, generator=g)
    im = torch.randn(2, 1, 129, 63, generator=g)
    z = torch.complex(re, im) * 0.3
    with torch.no_grad():
        logits = model(W.model_input(z, ckpt["config"]["kind"]))
    np.testing.assert_allclose(logits.numpy(), FINGERPRINTS[name]["logits"], atol=1e-4)
