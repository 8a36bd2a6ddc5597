"""Adversarially Learned Inference (ALI) on log-mel segments.

ALI (Dumoulin et al., "Adversarially learned inference", ICLR 2017; Donahue et al.'s BiGAN)
trains an *encoder* ``E: x → z``, a *decoder* ``G: z → x`` and a *joint discriminator*
``D(x, z)`` that tells encoder pairs ``(x, E(x))`` (x a real segment) from decoder pairs
``(G(z), z)`` (z drawn from ``N(0, I)``). At the equilibrium the two joint distributions
match, so the encoder inverts the decoder; its mean ``μ(x)`` is the song embedding.

The stabilising choices of the song2vec work, all here:

- the **least-squares** objective (LSGAN, Mao et al., ICCV 2017), :func:`lsgan_losses`;
- one-sided **label smoothing**: the discriminator's target for encoder pairs is
  ``real_target`` (0.9), not 1;
- Gaussian **noise on the discriminator's inputs** (both ``x`` and ``z``; its scale is set by
  the caller, e.g. annealed to 0);
- **more generator than discriminator steps** (the training loop's ``generator_steps``).

Input: log-mel segments ``(batch, n_mels, segment_frames)`` in dB (64 × 216 ≈ 5 s). The model
standardises every band with statistics it stores (``standardise``, a
:class:`~songsim.models.standardise.BandStandardiser`) and
average-pools ``pool_bands × pool_frames`` (4 × 8): the networks see a ``16 × 27`` grid (432
values; cells of 4 mel bands × 186 ms), enough for the spectral envelope and the coarse rhythm
of a segment.

Networks (multi-layer perceptrons over the flattened grid; ``hidden = (512, 256)``): the
encoder ``432 → 512 → 256 → 2 × latent_dim`` (mean and log standard deviation of
``q(z | x)``), the decoder ``latent_dim → 256 → 512 → 432``, and the discriminator with an
``x`` branch ``432 → 512 → 256``, a ``z`` branch ``latent_dim → 256`` and a joint
``512 → 256 → 1``, leaky ReLU (0.2) throughout and dropout in the discriminator, as in ALI.
Convolutional networks (as in ALI's image models) were measured 40–100 times slower per step
on 2 CPU cores: too slow to reach an equilibrium within the 3-minute training budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from songsim.models.standardise import BandStandardiser

__all__ = ["ALI", "ALIConfig", "ali_loss", "lsgan_losses"]


@dataclass(frozen=True)
class ALIConfig:
    """Shape of an :class:`ALI` model.

    Attributes
    ----------
    n_mels : int
        Mel bands of the input.
    segment_frames : int
        Frames per segment (216 ≈ 5.0 s at 23 ms per frame).
    pool_bands, pool_frames : int
        Average pooling of the standardised segment before the networks.
    hidden : tuple of int
        Hidden widths of the encoder and of the discriminator's ``x`` branch (the decoder
        uses them reversed).
    latent_dim : int
        Width of ``z``, the embedding.
    dropout : float
        Dropout in the discriminator.
    """

    n_mels: int = 64
    segment_frames: int = 216
    pool_bands: int = 4
    pool_frames: int = 8
    hidden: tuple[int, ...] = (512, 256)
    latent_dim: int = 64
    dropout: float = 0.2


def _mlp(widths: list[int], *, dropout: float = 0.0, last_activation: bool = False) -> nn.Sequential:
    """Linear layers between ``widths`` with leaky ReLU (and dropout) after each hidden one."""
    layers: list[nn.Module] = []
    for index, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if last_activation or index < len(widths) - 2:
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ALI(nn.Module):
    """Encoder, decoder and joint discriminator of ALI.

    Parameters
    ----------
    config : ALIConfig
    """

    def __init__(self, config: ALIConfig) -> None:
        super().__init__()
        self.config = config
        self.standardise = BandStandardiser(config.n_mels)
        self.grid = (config.n_mels // config.pool_bands, config.segment_frames // config.pool_frames)
        flat = math.prod(self.grid)
        hidden = list(config.hidden)
        self.encoder = _mlp([flat, *hidden, 2 * config.latent_dim])
        self.decoder = _mlp([config.latent_dim, *hidden[::-1], flat])
        self.discriminator_x = _mlp([flat, *hidden], dropout=config.dropout, last_activation=True)
        self.discriminator_z = _mlp([config.latent_dim, 256], dropout=config.dropout, last_activation=True)
        self.discriminator_joint = _mlp([hidden[-1] + 256, 256, 1], dropout=config.dropout)

    @property
    def generator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder and the decoder (one player)."""
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    @property
    def discriminator_parameters(self) -> list[nn.Parameter]:
        """Parameters of the joint discriminator (the other player)."""
        return [*self.discriminator_x.parameters(), *self.discriminator_z.parameters(), *self.discriminator_joint.parameters()]

    def prepare(self, mel: torch.Tensor) -> torch.Tensor:
        """Standardise, pool and flatten log-mel segments.

        Parameters
        ----------
        mel : torch.Tensor [shape=(batch, n_mels, segment_frames), float32]
            Log-mel segments in dB.

        Returns
        -------
        torch.Tensor [shape=(batch, grid_bands * grid_frames), float32]
            What the networks see and the decoder reproduces (unitless, about unit variance;
            ``grid = (n_mels // pool_bands, segment_frames // pool_frames)``, band-major).
        """
        x = self.standardise(mel)
        return F.avg_pool2d(x[:, None], (self.config.pool_bands, self.config.pool_frames)).flatten(1)

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log standard deviation of ``q(z | x)``, each (batch, latent_dim), for
        prepared segments ``x`` (see :meth:`prepare`)."""
        mean, log_std = self.encoder(x).chunk(2, dim=1)
        return mean, log_std.clamp(-5.0, 2.0)

    def encode(self, mel: torch.Tensor) -> torch.Tensor:
        """The embedding of log-mel segments: the encoder's mean.

        Parameters
        ----------
        mel : torch.Tensor [shape=(batch, n_mels, segment_frames), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, latent_dim), float32]
        """
        return self.encode_distribution(self.prepare(mel))[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Prepared segments (batch, grid_bands * grid_frames) generated from codes ``z``
        (batch, latent_dim)."""
        return self.decoder(z)

    def discriminate(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Score of (prepared segment, code) pairs: (batch,) float, high = "an encoder pair"."""
        joint = torch.cat([self.discriminator_x(x), self.discriminator_z(z)], dim=1)
        return self.discriminator_joint(joint)[:, 0]


def lsgan_losses(encoder_scores: torch.Tensor, decoder_scores: torch.Tensor, *, real_target: float = 0.9) -> tuple[torch.Tensor, torch.Tensor]:
    """Least-squares adversarial losses of ALI.

    .. math:: L_D = \\tfrac12 E[(D(x, E(x)) - t)^2] + \\tfrac12 E[D(G(z), z)^2], \\quad
              L_G = \\tfrac12 E[D(x, E(x))^2] + \\tfrac12 E[(D(G(z), z) - 1)^2]

    (Mao et al. 2017 with labels 0/1 swapped for the generator), ``t = real_target`` < 1
    being one-sided label smoothing.

    Parameters
    ----------
    encoder_scores, decoder_scores : torch.Tensor [shape=(batch,)]
        ``D(x, E(x))`` and ``D(G(z), z)``.
    real_target : float

    Returns
    -------
    (discriminator loss, generator loss) : two torch.Tensor [shape=()]
    """
    discriminator = 0.5 * ((encoder_scores - real_target) ** 2).mean() + 0.5 * (decoder_scores**2).mean()
    generator = 0.5 * (encoder_scores**2).mean() + 0.5 * ((decoder_scores - 1.0) ** 2).mean()
    return discriminator, generator


def ali_loss(model: ALI, mel: torch.Tensor, *, player: str, noise_std: float, real_target: float = 0.9) -> torch.Tensor:
    """One player's LSGAN loss on a batch of segments.

    Draws ``z ~ N(0, I)`` and the encoder's reparameterised sample ``μ + σ ε``, adds Gaussian
    noise of ``noise_std`` to the discriminator's inputs (both ``x`` and ``z``), and returns the
    ``player``'s loss of :func:`lsgan_losses`. For the discriminator the encoder and decoder
    run without gradients.

    Parameters
    ----------
    model : ALI
    mel : torch.Tensor [shape=(batch, n_mels, segment_frames), float32]
        Log-mel segments in dB.
    player : {"discriminator", "generator"}
    noise_std : float
        Standard deviation of the instance noise, in prepared (standardised) units.
    real_target : float

    Returns
    -------
    torch.Tensor [shape=()]
    """
    if player not in ("discriminator", "generator"):
        raise ValueError(f"player must be 'discriminator' or 'generator', got {player!r}")
    x = model.prepare(mel)
    with torch.set_grad_enabled(torch.is_grad_enabled() and player == "generator"):
        mean, log_std = model.encode_distribution(x)
        z_encoded = mean + log_std.exp() * torch.randn_like(mean)
        z_prior = torch.randn_like(mean)
        x_decoded = model.decode(z_prior)

    def noisy(t: torch.Tensor) -> torch.Tensor:
        return t + noise_std * torch.randn_like(t) if noise_std > 0 else t

    encoder_scores = model.discriminate(noisy(x), noisy(z_encoded))
    decoder_scores = model.discriminate(noisy(x_decoded), noisy(z_prior))
    discriminator, generator = lsgan_losses(encoder_scores, decoder_scores, real_target=real_target)
    return discriminator if player == "discriminator" else generator
