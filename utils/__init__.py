"""Shared package of the sound-reconstruction notebook collection.

Modules (import what you need; nothing heavy is imported here):

- ``utils.audio``    loading with clear errors, STFT / mel / log-mel / MFCC and their inverses
- ``utils.plot``     waveform and spectrogram figures, audio player tables
- ``utils.metrics``  PESQ-WB, log-mel L1, STOI with alignment by cross-correlation
- ``utils.data``     datasets in the Speech Commands layout, download helper
- ``utils.vq``       vector quantizers (plain, EMA, residual)
- ``utils.models``   VQ-VAE and friends
- ``utils.complex``  complex-valued layers and architectures
- ``utils.train`` / ``utils.evaluate``   training and evaluation command lines
"""

__version__ = "0.1.0"
