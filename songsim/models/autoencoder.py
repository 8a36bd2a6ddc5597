"""Dense autoencoders: the fusion space (code of 64) and the 2-D map/space (code of 2).

The encoder is ``input_dim → hidden[0] → … → code_dim`` with ReLU between layers and a
linear code; the decoder mirrors it (``code_dim → … → hidden[0] → input_dim``, linear
output), trained with the mean squared reconstruction error. With ``n_classes > 0`` a linear
classifier reads the code too (a *supervised autoencoder*: reconstruction plus a label loss
on the code, Le, Patterson & White, NeurIPS 2018), which the 2-D space uses so that two
dimensions keep the genres apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["AutoencoderConfig", "DenseAutoencoder"]


@dataclass(frozen=True)
class AutoencoderConfig:
    """Shape of a :class:`DenseAutoencoder`.

    Attributes
    ----------
    input_dim : int
        Width of the input (and of the reconstruction).
    hidden : tuple of int
        Hidden widths of the encoder, outermost first (the decoder uses them reversed).
    code_dim : int
        Width of the code, the embedding.
    n_classes : int
        Classes of the linear classifier on the code (0: none, a plain autoencoder).
    """

    input_dim: int
    hidden: tuple[int, ...] = (248, 128)
    code_dim: int = 64
    n_classes: int = 0


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers between consecutive ``widths`` with ReLU between them (not after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DenseAutoencoder(nn.Module):
    """A symmetric dense autoencoder.

    Parameters
    ----------
    config : AutoencoderConfig
    """

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.input_dim, *config.hidden, config.code_dim]
        self.encoder = _mlp(widths)
        self.decoder = _mlp(widths[::-1])
        self.classifier = nn.Linear(config.code_dim, config.n_classes) if config.n_classes else None

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code of each row.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, input_dim), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, code_dim), float32]
        """
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct ``x`` through the code.

        Parameters
        ----------
        x : torch.Tensor [shape=(batch, input_dim), float32]

        Returns
        -------
        reconstruction : torch.Tensor [shape=(batch, input_dim), float32]
        code : torch.Tensor [shape=(batch, code_dim), float32]
        """
        code = self.encoder(x)
        return self.decoder(code), code

    def classify(self, code: torch.Tensor) -> torch.Tensor:
        """Class logits of codes (only with ``n_classes > 0``).

        Parameters
        ----------
        code : torch.Tensor [shape=(batch, code_dim), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, n_classes), float32]
        """
        if self.classifier is None:
            raise ValueError("this autoencoder has no classifier (n_classes = 0)")
        return self.classifier(code)
