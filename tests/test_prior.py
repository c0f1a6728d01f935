"""The autoregressive code prior (utils/models/prior.py) and task ``prior``."""

from __future__ import annotations

import json
import math

import pytest
import torch

from utils.checkpoint import CheckpointError, save_atomic
from utils.models.prior import CodePrior, PriorConfig, codebook_fingerprint
from utils.models.vqvae import MelVQVAE


def tiny(**kw) -> CodePrior:
    torch.manual_seed(0)
    return CodePrior(PriorConfig(num_codes=16, words=("aa", "ee"), embed_dim=8, hidden=12,
                                 layers=2, dropout=0.0, **kw)).eval()


def test_the_prior_is_causal():
    model = tiny()
    codes = torch.randint(16, (3, 10), generator=torch.Generator().manual_seed(1))
    changed = codes.clone()
    changed[:, 6:] = (changed[:, 6:] + 5) % 16
    with torch.no_grad():
        a, b = model(codes, torch.tensor([0, 1, 2])), model(changed, torch.tensor([0, 1, 2]))
    # position t predicts code t from codes < t: positions 0..6 see no change
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_step_by_step_sampling_agrees_with_the_full_sequence_pass():
    model = tiny()
    labels = torch.tensor([0, 1, 2])
    # nearly greedy sampling: every drawn code is the argmax of the teacher-forced logits
    codes = model.sample(3, 12, labels, temperature=1e-4,
                         generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(codes, labels)
    assert torch.equal(codes, logits.argmax(-1))


def test_bits_per_code_is_the_cross_entropy_in_bits():
    model = tiny()
    codes = torch.randint(16, (2, 7), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logp = torch.log_softmax(model(codes), -1)
        by_hand = -logp.gather(-1, codes[..., None])[..., 0].mean(1) / math.log(2)
        assert torch.allclose(model.bits_per_code(codes), by_hand)
        # no label means the "no label" entry
        assert torch.equal(model(codes), model(codes, torch.tensor([2, 2])))


def test_labels_and_codes_out_of_range_are_refused():
    model = tiny()
    with pytest.raises(ValueError, match="labels"):
        model(torch.zeros(1, 4, dtype=torch.long), torch.tensor([3]))
    with pytest.raises(ValueError, match="codes"):
        model(torch.full((1, 4), 16))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, 4, temperature=0)


def _codec(seed: int) -> MelVQVAE:
    torch.manual_seed(seed)
    return MelVQVAE(channels=8, latent_dim=4, num_codes=16, num_quantizers=2, res_blocks=0)


def test_a_prior_refuses_another_codec_and_a_checkpoint_of_another_kind(tmp_path):
    codec, other = _codec(0), _codec(1)
    model = CodePrior(PriorConfig(num_codes=16, codec_fingerprint=codebook_fingerprint(codec)))
    model.check_codec(codec)
    with pytest.raises(CheckpointError, match="codes of codec"):
        model.check_codec(other)
    p = save_atomic(model.checkpoint(), tmp_path / "prior.pt")
    back = CodePrior.from_checkpoint(p)
    assert back.config == model.config
    c = save_atomic(codec.checkpoint(), tmp_path / "codec.pt")
    with pytest.raises(CheckpointError, match="mel-vqvae"):
        CodePrior.from_checkpoint(c)


def test_prior_task_trains_resumes_exactly_and_measures_bits(voiced_words, tmp_path, capsys,
                                                             assert_resumes_exactly):
    from utils.evaluate import main as eval_main
    from utils.train import main as train_main

    codec = save_atomic(_codec(0).checkpoint(), tmp_path / "codec.pt")

    def run(out, *extra):
        args = ["prior", "--codec", str(codec), "--data", str(voiced_words), "--out", str(out),
                "--batch-size", "4", "--val-every", "4", "--save-every", "2", "--log-every", "1",
                "--warmup", "1", "--threads", "1", "--no-progress", "--shifts", "0", "64",
                "--set", "hidden=8", "--set", "embed_dim=4", *extra]
        assert train_main(args) == 0

    assert_resumes_exactly(run, tmp_path)
    prior = CodePrior.from_checkpoint(tmp_path / "full" / "best.pt")
    assert prior.config.words == ("aa", "ee") and prior.config.num_codes == 16
    capsys.readouterr()
    assert eval_main(["prior", str(tmp_path / "full" / "best.pt"), str(voiced_words),
                      "--codec", str(codec), "--split", "train", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["bits_fixed"] == 4.0 and res["n_clips"] == 9 and res["n_failed"] == 0
    assert 0 < res["bits_conditional"] and 0 <= res["bits_unigram"] <= 4.0
    # the prior belongs to its codec: another one is refused with exit code 1 or 2
    other = save_atomic(_codec(1).checkpoint(), tmp_path / "other.pt")
    assert eval_main(["prior", str(tmp_path / "full" / "best.pt"), str(voiced_words),
                      "--codec", str(other), "--json"]) != 0
    assert "codes of codec" in capsys.readouterr().err


def test_prior_options_are_checked_before_data_loads(tmp_path, capsys):
    from utils.train import main as train_main

    code = train_main(["prior", "--codec", str(tmp_path / "none.pt"), "--data", str(tmp_path),
                       "--out", str(tmp_path / "o"), "--no-progress"])
    assert code == 2 and "--codec" in capsys.readouterr().err
    codec = save_atomic(_codec(0).checkpoint(), tmp_path / "codec.pt")
    code = train_main(["prior", "--codec", str(codec), "--data", str(tmp_path),
                       "--out", str(tmp_path / "o"), "--set", "dropout=1.5", "--no-progress"])
    assert code == 2 and "dropout" in capsys.readouterr().err
