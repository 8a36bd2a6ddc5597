"""An LSTM over the chromagram trained to predict the next frame (the chroma-LSTM baseline).

Input: batches of chromagram sections ``(batch, 12, n_frames)`` as returned by
:func:`songsim.features.chromagram` (one frame per 23 ms, values in ``[0, 1]``). A one-layer
LSTM (Hochreiter & Schmidhuber 1997) reads the frames in order; a linear layer maps its hidden
state at frame ``t`` to a prediction of frame ``t + 1``, trained with the L1 loss
(:func:`next_frame_l1`). The song's embedding is read from the recurrent *state*
``concat(h_t, c_t)`` (hidden and cell state, ``2 × hidden`` values): see
:meth:`ChromaLSTM.states`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ChromaLSTM", "ChromaLSTMConfig", "next_frame_l1"]


@dataclass(frozen=True)
class ChromaLSTMConfig:
    """Shape of a :class:`ChromaLSTM`.

    Attributes
    ----------
    n_chroma : int
        Pitch classes per frame (12).
    hidden : int
        LSTM units; the state, and so the embedding, has ``2 * hidden`` values.
    """

    n_chroma: int = 12
    hidden: int = 32


class ChromaLSTM(nn.Module):
    """Next-frame chroma predictor whose recurrent state embeds a song.

    Parameters
    ----------
    config : ChromaLSTMConfig
    """

    def __init__(self, config: ChromaLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.n_chroma, config.hidden, batch_first=True)
        self.predict = nn.Linear(config.hidden, config.n_chroma)

    def forward(self, chroma: torch.Tensor) -> torch.Tensor:
        """Predict every next frame.

        Parameters
        ----------
        chroma : torch.Tensor [shape=(batch, n_chroma, n_frames), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, n_chroma, n_frames), float32]
            Column ``t`` predicts input frame ``t + 1`` from frames ``0..t`` (the last
            column predicts past the end and is not scored).
        """
        hidden, _ = self.lstm(chroma.transpose(1, 2))
        return self.predict(hidden).transpose(1, 2)

    @torch.no_grad()
    def states(self, chroma: torch.Tensor) -> torch.Tensor:
        """The recurrent state after every frame, from a zero initial state.

        The hidden states come from one :class:`torch.nn.LSTM` pass; the cell states are
        rebuilt from them: the gates of every frame in one product (``W_ih x_t + W_hh h_{t−1}
        + b``), then the linear recurrence ``c_t = f_t c_{t−1} + i_t g_t`` frame by frame
        (cheap elementwise numpy steps instead of one LSTM call per frame).

        Parameters
        ----------
        chroma : torch.Tensor [shape=(batch, n_chroma, n_frames), float32]

        Returns
        -------
        torch.Tensor [shape=(batch, n_frames, 2 * hidden), float32]
            ``concat(h_t, c_t)`` after reading frame ``t``.
        """
        frames = chroma.transpose(1, 2)
        hidden, _ = self.lstm(frames)
        previous = F.pad(hidden, (0, 0, 1, 0))[:, :-1]
        lstm = self.lstm
        gates = frames @ lstm.weight_ih_l0.T + previous @ lstm.weight_hh_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0
        in_gate, forget_gate, candidate, _ = gates.chunk(4, dim=2)  # torch's order: i, f, g, o
        update = (torch.sigmoid(in_gate) * torch.tanh(candidate)).cpu().numpy()
        forget = torch.sigmoid(forget_gate).cpu().numpy()
        cells = np.empty_like(update)
        cell = np.zeros_like(update[:, 0])
        for t in range(frames.shape[1]):  # numpy: ~100 times less overhead per tiny step than torch
            cell = forget[:, t] * cell + update[:, t]
            cells[:, t] = cell
        return torch.cat([hidden, torch.from_numpy(cells).to(hidden.device)], dim=2)


def next_frame_l1(model: ChromaLSTM, chroma: torch.Tensor) -> torch.Tensor:
    """Mean absolute error of the next-frame predictions.

    Parameters
    ----------
    model : ChromaLSTM
    chroma : torch.Tensor [shape=(batch, n_chroma, n_frames), float32]
        ``n_frames >= 2``.

    Returns
    -------
    torch.Tensor [shape=()]
        ``mean |model(x)[..., :-1] − x[..., 1:]|`` over pitch classes, frames and batch.
    """
    return F.l1_loss(model(chroma)[..., :-1], chroma[..., 1:])
