"""Tests of the SoundFont 2 sample player (songsim.demo.synth) on the bundled TimGM6mb.sf2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from songsim.demo.synth import DRUM_BANK, MAX_RELEASE_S, Note, SoundFont
from songsim.errors import SoundFontError

SR_HZ = 22_050
GM_KITS = (0, 8, 16, 24, 25, 32, 40)  # Standard, Room, Power, Electronic, TR-808, Jazz, Brush


@pytest.fixture(scope="module")
def soundfont() -> SoundFont:
    return SoundFont.load()


def _f0_hz(wave: np.ndarray, sr_hz: int, *, fmin_hz: float, fmax_hz: float) -> float:
    """Fundamental frequency by autocorrelation with parabolic peak interpolation."""
    x = wave - wave.mean()
    spectrum = np.fft.rfft(x, 2 * len(x))
    ac = np.fft.irfft(np.abs(spectrum) ** 2)[: len(x)]
    lo, hi = int(sr_hz / fmax_hz), int(sr_hz / fmin_hz)
    lag = lo + int(np.argmax(ac[lo:hi]))
    a, b, c = ac[lag - 1], ac[lag], ac[lag + 1]
    return sr_hz / (lag + 0.5 * (a - c) / (a - 2 * b + c))


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_load_parses_the_general_midi_presets(soundfont: SoundFont) -> None:
    assert all((0, program) in soundfont.presets for program in range(128))
    assert "piano" in soundfont.presets[(0, 0)].lower()
    assert "bass" in soundfont.presets[(0, 33)].lower()
    assert all((DRUM_BANK, kit) in soundfont.presets for kit in GM_KITS)


def test_load_is_cached_per_process() -> None:
    assert SoundFont.load() is SoundFont.load()


@pytest.mark.parametrize(("program", "key", "expected_hz"), [
    (0, 69, 440.0),  # piano A4
    (0, 57, 220.0),  # piano A3
    (24, 69, 440.0),  # nylon guitar
    (40, 69, 440.0),  # violin
    (73, 81, 880.0),  # flute A5
    (33, 45, 110.0),  # fingered bass A2
])
def test_rendered_note_has_the_pitch_of_its_key(soundfont: SoundFont, program: int, key: int,
                                                expected_hz: float) -> None:
    wave = soundfont.render_note(Note(0, program, key, 100, 0.0, 1.0), sr_hz=SR_HZ)
    segment = wave[int(0.1 * SR_HZ): int(0.5 * SR_HZ)]
    f0 = _f0_hz(segment, SR_HZ, fmin_hz=expected_hz / 1.6, fmax_hz=expected_hz * 1.6)
    cents = 1200 * np.log2(f0 / expected_hz)
    assert abs(cents) < 20, f"{soundfont.presets[(0, program)]} key {key}: {f0:.1f} Hz"


def test_a_loop_sustains_a_long_note_until_note_off(soundfont: SoundFont) -> None:
    held_s = 6.0
    wave = soundfont.render_note(Note(0, 16, 60, 100, 0.0, held_s), sr_hz=SR_HZ)  # organ
    assert len(wave) >= held_s * SR_HZ  # the sample is far shorter: only its loop can last
    early = _rms(wave[int(0.5 * SR_HZ): int(1.5 * SR_HZ)])
    late = _rms(wave[int(4.5 * SR_HZ): int(5.5 * SR_HZ)])
    assert late > 0.5 * early
    tail = wave[int((held_s + 0.5) * SR_HZ):]
    assert len(wave) <= (held_s + MAX_RELEASE_S) * SR_HZ + 64
    assert tail.size == 0 or _rms(tail) < 0.5 * late  # released after note-off


def test_render_mixes_notes_at_their_onsets(soundfont: SoundFont) -> None:
    notes = [Note(0, 0, 60, 100, 0.5, 0.4), Note(0, 0, 64, 100, 1.0, 0.4),
             Note(DRUM_BANK, 0, 36, 110, 1.5, 0.2)]
    out = soundfont.render(notes, duration_s=3.0, sr_hz=SR_HZ)
    assert out.shape == (3 * SR_HZ,) and out.dtype == np.float32
    assert np.all(out[: int(0.5 * SR_HZ)] == 0.0)
    assert _rms(out[int(0.5 * SR_HZ): int(0.9 * SR_HZ)]) > 1e-3
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out, soundfont.render(notes, duration_s=3.0, sr_hz=SR_HZ))


def test_velocity_sets_the_level(soundfont: SoundFont) -> None:
    loud = soundfont.render_note(Note(0, 0, 60, 127, 0.0, 0.5), sr_hz=SR_HZ)
    soft = soundfont.render_note(Note(0, 0, 60, 40, 0.0, 0.5), sr_hz=SR_HZ)
    assert _rms(loud) / _rms(soft) == pytest.approx((127 / 40) ** 2, rel=0.05)


def test_a_closed_hi_hat_chokes_the_open_one(soundfont: SoundFont) -> None:
    open_hat = Note(DRUM_BANK, 0, 46, 100, 0.0, 0.3)
    closed_hat = Note(DRUM_BANK, 0, 42, 100, 0.5, 0.05)
    alone = soundfont.render([open_hat], duration_s=2.0, sr_hz=SR_HZ)
    choked = soundfont.render([open_hat, closed_hat], duration_s=2.0, sr_hz=SR_HZ)
    after = slice(int(1.0 * SR_HZ), None)
    assert _rms(alone[after]) > 1e-4
    assert _rms(choked[after]) < 0.01 * _rms(alone[after])


def test_a_missing_preset_falls_back_as_general_midi_players_do(soundfont: SoundFont) -> None:
    note = Note(DRUM_BANK, 99, 38, 100, 0.0, 0.2)  # no kit 99: kit 0's snare
    standard = Note(DRUM_BANK, 0, 38, 100, 0.0, 0.2)
    np.testing.assert_array_equal(soundfont.render_note(note), soundfont.render_note(standard))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SoundFontError, match="cannot read"):
        SoundFont.load(tmp_path / "nope.sf2")


def test_a_file_that_is_not_a_soundfont_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x04\x00\x00\x00WAVE" + bytes(64))
    with pytest.raises(SoundFontError, match="not a SoundFont 2 file"):
        SoundFont.load(fake)
