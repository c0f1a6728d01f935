"""Shared package of the sound-reconstruction notebook collection.

Modules (import what you need; nothing heavy is imported here):

- ``utils.audio``        loading with clear errors, STFT / mel / log-mel / MFCC and inverses
- ``utils.metrics``      the scores of one pair: PESQ-WB, ViSQOL, log-mel L1, STOI, DNSMOS
- ``utils.delay``        known delays compensated; a phase-blind estimate for foreign files
- ``utils.scoring``      the one scorer of every system on a folder of clips (the yardstick)
- ``utils.baselines``    the anchors Codec 2 and Opus, with measured bits and delays
- ``utils.stats``        bootstrap intervals, paired differences, Welch + Holm
- ``utils.plot``         figures: waveform, spectrogram, rows of log-mels
- ``utils.players``      audio player tables, result tables, notebook callbacks
- ``utils.data``         datasets in the Speech Commands layout, audio file finder, download
- ``utils.vq``           vector quantizers (plain, EMA, residual) and codebook statistics
- ``utils.complex``      complex-valued layers only
- ``utils.models``       every model, one module per family (``vqvae``, ``complex_cnn``)
- ``utils.training``     the one training loop (``TrainConfig``, ``Task``, ``train``)
- ``utils.tasks``        the tasks it trains (``codec``, ``words``)
- ``utils.train`` / ``utils.evaluate``   ``python -m utils.train TASK`` / ``... evaluate TASK``
- ``utils.checkpoint``, ``utils.distributed``, ``utils.errors``   safe checkpoints, devices and
  processes, the one project error
"""

__version__ = "0.1.0"
