"""The app as Streamlit's AppTest drives it, on a catalogue of the tests: shared by the page
tests (tests/app) and the tests of spaces that check their Explore page."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from streamlit.testing.v1 import AppTest

#: the Streamlit entry point
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def open_app(catalogue: Path, monkeypatch: pytest.MonkeyPatch, *, space: str | None = None, method: str | None = None) -> AppTest:
    """The app serving ``catalogue``, after its first run (on Explore) without an exception.

    Parameters
    ----------
    catalogue : Path
        The catalogue folder (``SONGSIM_CATALOGUE`` for this test).
    monkeypatch : pytest.MonkeyPatch
    space : str, optional
        Chosen in the sidebar's space selector (its key ``"space"``) before the first run.
    method : str, optional
        Then picked in Explore's map control (key ``"method"``), run again without an exception.
    """
    monkeypatch.setenv("SONGSIM_CATALOGUE", str(catalogue))
    at = AppTest.from_file(APP, default_timeout=180)
    if space is not None:
        at.session_state["space"] = space
    at.run()
    assert not at.exception, at.exception
    if method is not None:
        at.radio(key="method").set_value(method).run()
        assert not at.exception, at.exception
    return at


def tune_wav() -> bytes:
    """An upload: 8 s of a 330 Hz tone struck four times a second (mono, 22 050 Hz, WAV bytes)."""
    sr_hz = 22_050
    t = np.arange(sr_hz * 8) / sr_hz
    buffer = io.BytesIO()
    sf.write(buffer, (0.4 * np.sin(2 * np.pi * 330 * t) * np.exp(-((t * 4) % 1) * 6)).astype(np.float32), sr_hz, format="WAV")
    return buffer.getvalue()
