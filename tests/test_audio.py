"""Tests for songsim.audio: decoding, excerpts, errors, fingerprints, writing, loudness."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from songsim.audio import (
    AudioInfo,
    audio_info,
    bytes_fingerprint,
    file_fingerprint,
    load_clip,
    rms_dbfs,
)
from songsim.config import (
    CLIP_DURATION_S,
    MAX_DURATION_S,
    MIN_DURATION_S,
    SAMPLE_RATE_HZ,
    SILENCE_DBFS,
)
from songsim.errors import (
    AudioDecodeError,
    AudioError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    SilentAudioError,
    SongsimError,
)


def _peak_hz(clip: np.ndarray, sr_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(clip.size)))
    return float(np.fft.rfftfreq(clip.size, 1.0 / sr_hz)[np.argmax(spectrum)])


# --- decoding ------------------------------------------------------------------------------


def test_load_resamples_to_22050_mono(tone_wav: Path) -> None:
    clip = load_clip(tone_wav)
    assert clip.dtype == np.float32
    assert clip.ndim == 1
    # 8 s at 44.1 kHz is shorter than the 30 s excerpt: returned whole, at 22.05 kHz.
    assert clip.shape == (8 * SAMPLE_RATE_HZ,)
    assert _peak_hz(clip, SAMPLE_RATE_HZ) == pytest.approx(220.0, abs=1.0)
    # Mono is the channel mean: left is amplitude 0.3, right 0.8 x 0.3 -> mean peak 0.27.
    stereo, sr = sf.read(tone_wav, dtype="float32")
    assert sr == 44_100
    assert np.max(np.abs(clip)) == pytest.approx(np.max(np.abs(stereo.mean(axis=1))), rel=0.02)


@pytest.mark.parametrize("sr_hz", [16_000, 44_100])
def test_load_other_rates(tone_wav: Path, sr_hz: int) -> None:
    clip = load_clip(tone_wav, sr_hz=sr_hz, duration_s=5.0)
    assert clip.shape == (5 * sr_hz,)
    assert _peak_hz(clip, sr_hz) == pytest.approx(220.0, abs=1.0)


def test_every_format_decodes_to_the_same_music(tone_files: dict[str, Path]) -> None:
    reference = load_clip(tone_files[".wav"])
    for suffix, path in tone_files.items():
        clip = load_clip(path)
        assert clip.dtype == np.float32 and clip.ndim == 1, suffix
        # Lossy codecs add or drop a few ms of padding; the music is the same tone.
        assert abs(clip.size - reference.size) < 0.1 * SAMPLE_RATE_HZ, suffix
        assert _peak_hz(clip, SAMPLE_RATE_HZ) == pytest.approx(220.0, abs=1.0), suffix
        assert rms_dbfs(clip) == pytest.approx(rms_dbfs(reference), abs=1.0), suffix


def test_bytes_equal_file(tone_files: dict[str, Path]) -> None:
    for suffix, path in tone_files.items():
        from_file = load_clip(path, duration_s=5.0)
        data = path.read_bytes()
        assert np.array_equal(load_clip(data, duration_s=5.0), from_file), suffix
        # Without a name libsndfile sniffs the format from the bytes.
        assert np.array_equal(load_clip(data, duration_s=5.0), from_file), suffix


def _ramp_file(path: Path, *, duration_s: float, sr_hz: int) -> np.ndarray:
    """A float WAV whose every sample is distinct: a slow ramp plus a tone (not silent)."""
    n = int(duration_s * sr_hz)
    t = np.arange(n) / sr_hz
    data = (0.5 * t / duration_s + 0.1 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)
    sf.write(path, data, sr_hz, subtype="FLOAT")
    return data


def test_middle_excerpt_position(audio_dir: Path) -> None:
    path = audio_dir / "ramp.wav"
    data = _ramp_file(path, duration_s=20.0, sr_hz=SAMPLE_RATE_HZ)
    n = 10 * SAMPLE_RATE_HZ
    middle = load_clip(path, duration_s=10.0)
    assert np.array_equal(middle, data[5 * SAMPLE_RATE_HZ : 5 * SAMPLE_RATE_HZ + n])
    start = load_clip(path, duration_s=10.0, position="start")
    assert np.array_equal(start, data[:n])
    whole = load_clip(path, duration_s=None)
    assert np.array_equal(whole, data)


def test_middle_excerpt_after_resampling(audio_dir: Path) -> None:
    # 40 s at 44.1 kHz; the middle 30 s span 5 s .. 35 s, the ramp's 0.0625 .. 0.4375.
    path = audio_dir / "ramp44.wav"
    _ramp_file(path, duration_s=40.0, sr_hz=44_100)
    clip = load_clip(path)
    assert clip.shape == (int(CLIP_DURATION_S * SAMPLE_RATE_HZ),)
    assert clip[: SAMPLE_RATE_HZ].mean() == pytest.approx(0.5 * 5.5 / 40, abs=0.01)
    assert clip[-SAMPLE_RATE_HZ:].mean() == pytest.approx(0.5 * 34.5 / 40, abs=0.01)


def test_mp3_middle_excerpt_matches_full_decode(make_tone) -> None:
    # libsndfile 1.2 garbles ~1 300 MP3 samples after every seek or read boundary; the
    # excerpt must still equal a slice of one whole-file decode.
    path = make_tone("long.mp3", duration_s=12.0)
    full, sr = sf.read(path, dtype="float32", always_2d=True)
    n = int(5.0 * sr)
    start = (full.shape[0] - n) // 2
    expected = full[start : start + n].mean(axis=1)
    clip = load_clip(path, sr_hz=sr, duration_s=5.0)
    assert np.array_equal(clip, expected.astype(np.float32))


# --- errors ----------------------------------------------------------------------------------


def _raises(error_class: type[Exception], path: Path, **kwargs) -> str:
    """Assert that ``load_clip(path)`` raises ``error_class`` naming the file; return its text."""
    with pytest.raises(error_class) as caught:
        load_clip(path, **kwargs)
    message = str(caught.value)
    assert path.name in message, message
    assert isinstance(caught.value, SongsimError)
    return message


def test_unsupported_extension(m4a_file: Path) -> None:
    message = _raises(AudioDecodeError, m4a_file, name=m4a_file.name)
    assert "ffmpeg" in message and ".m4a" in message
    for fmt in ("WAV", "FLAC", "OGG", "MP3"):
        assert fmt in message


def test_unsupported_extension_of_upload() -> None:
    with pytest.raises(AudioDecodeError, match=r"my song\.m4a.*ffmpeg"):
        load_clip(b"\x00" * 100, name="my song.m4a")


def test_corrupt_files(corrupt_wav: Path, corrupt_mp3: Path) -> None:
    for path in (corrupt_wav, corrupt_mp3):
        message = _raises(AudioDecodeError, path)
        assert "re-export" in message
        with pytest.raises(AudioDecodeError, match="upload.mp3"):
            load_clip(path.read_bytes(), name="upload.mp3")


def test_truncated_flac_is_a_decode_error(tone_flac: Path, audio_dir: Path) -> None:
    data = tone_flac.read_bytes()
    broken = audio_dir / "truncated.flac"
    broken.write_bytes(data[: len(data) // 2])
    _raises(AudioDecodeError, broken, duration_s=None)


def test_missing_file(audio_dir: Path) -> None:
    _raises(AudioDecodeError, audio_dir / "nowhere.wav")


def test_empty_files(empty_wav: Path, zero_byte_wav: Path) -> None:
    _raises(EmptyAudioError, empty_wav)
    _raises(EmptyAudioError, zero_byte_wav)
    with pytest.raises(EmptyAudioError, match="up.wav"):
        load_clip(b"", name="up.wav")


def test_too_short(short_wav: Path) -> None:
    message = _raises(AudioTooShortError, short_wav)
    assert f"{MIN_DURATION_S:g} s" in message


def test_too_long_is_rejected_from_the_header(audio_dir: Path, monkeypatch) -> None:
    path = audio_dir / "mix.wav"
    sr_hz = 1_000  # keep the file small: 20 min at 1 kHz, 8-bit
    sf.write(path, np.full(int((MAX_DURATION_S + 1) * sr_hz), 0.5), sr_hz, subtype="PCM_U8")

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file that the header already rejects")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    _raises(AudioTooLongError, path)


def test_silence(silent_wav: Path, make_tone) -> None:
    _raises(SilentAudioError, silent_wav)
    quiet = make_tone("quiet.wav", amplitude=10 ** ((SILENCE_DBFS - 10) / 20), subtype="FLOAT")
    _raises(SilentAudioError, quiet)
    audible = make_tone("audible.wav", amplitude=10 ** ((SILENCE_DBFS + 10) / 20), subtype="FLOAT")
    assert load_clip(audible).size > 0


def test_non_finite_samples(audio_dir: Path) -> None:
    data = 0.1 * np.sin(np.arange(8 * 22_050) / 5.0)
    data[1000] = np.nan
    path = audio_dir / "nan.wav"
    sf.write(path, data.astype(np.float32), 22_050, subtype="FLOAT")
    message = _raises(AudioDecodeError, path)
    assert "NaN" in message


def test_stereo_downmix_can_cancel(audio_dir: Path) -> None:
    t = np.arange(8 * 22_050) / 22_050
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    path = audio_dir / "phase.wav"
    sf.write(path, np.stack([left, -left], axis=1), 22_050, subtype="FLOAT")
    _raises(SilentAudioError, path)


def test_all_audio_errors_are_audio_errors() -> None:
    for cls in (AudioDecodeError, EmptyAudioError, SilentAudioError, AudioTooShortError,
                AudioTooLongError):  # fmt: skip
        assert issubclass(cls, AudioError)


def test_bad_arguments(tone_wav: Path) -> None:
    with pytest.raises(ValueError):
        load_clip(tone_wav, sr_hz=0)
    with pytest.raises(ValueError):
        load_clip(tone_wav, duration_s=-1.0)
    with pytest.raises(ValueError):
        load_clip(tone_wav, position="end")  # type: ignore[arg-type]


# --- info and fingerprints -----------------------------------------------------------------


def test_audio_info(tone_files: dict[str, Path]) -> None:
    for suffix, path in tone_files.items():
        info = audio_info(path)
        assert isinstance(info, AudioInfo)
        assert info.sr_hz == 44_100 and info.channels == 2, suffix
        assert info.format == suffix[1:].upper(), suffix
        assert info.duration_s == pytest.approx(8.0, abs=0.1), suffix
        assert audio_info(path.read_bytes()) == info


def test_audio_info_errors(corrupt_wav, m4a_file, empty_wav, zero_byte_wav, short_wav) -> None:
    for path in (corrupt_wav, m4a_file):
        with pytest.raises(AudioDecodeError, match=path.name):
            audio_info(path)
    for path in (empty_wav, zero_byte_wav):
        with pytest.raises(EmptyAudioError, match=path.name):
            audio_info(path)
    assert audio_info(short_wav).duration_s == pytest.approx(1.0)
    with pytest.raises(AudioTooShortError, match=short_wav.name):
        audio_info(short_wav, check_duration_limits=True)


def test_fingerprints(tone_wav: Path, tone_flac: Path) -> None:
    fingerprint = file_fingerprint(tone_wav)
    assert len(fingerprint) == 20 and int(fingerprint, 16) >= 0
    assert fingerprint == bytes_fingerprint(tone_wav.read_bytes())
    assert fingerprint == file_fingerprint(str(tone_wav))
    assert fingerprint != file_fingerprint(tone_flac)
    copy = tone_wav.with_name("copy.wav")
    copy.write_bytes(tone_wav.read_bytes())
    assert file_fingerprint(copy) == fingerprint
    with pytest.raises(AudioDecodeError, match="missing.wav"):
        file_fingerprint(tone_wav.with_name("missing.wav"))


# --- writing and loudness ------------------------------------------------------------------


def test_rms_dbfs() -> None:
    t = np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    assert rms_dbfs(np.sin(2 * np.pi * 100 * t)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.zeros(10)) == float("-inf")


# --- header and sample limits (issue 13, problem 8) ----------------------------------------


def test_sample_rates_outside_8_to_384_khz_are_refused_from_the_header(audio_dir: Path, monkeypatch) -> None:
    from songsim.config import MAX_SAMPLE_RATE_HZ, MIN_SAMPLE_RATE_HZ
    from songsim.errors import AudioRangeError

    one_hz = audio_dir / "one-hz.wav"  # 1 000 frames "lasting" 16.7 min: passes the length check
    sf.write(one_hz, 0.3 * np.sin(np.arange(1000) / 3.0), 1, subtype="PCM_16")
    fast = audio_dir / "fast.wav"
    sf.write(fast, 0.3 * np.sin(np.arange(6 * 400_000) / 3.0), 400_000, subtype="PCM_16")
    edge = audio_dir / "edge.wav"
    sf.write(edge, 0.3 * np.sin(np.arange(6 * MIN_SAMPLE_RATE_HZ) / 3.0), MIN_SAMPLE_RATE_HZ, subtype="PCM_16")
    assert load_clip(edge).size > 0  # 8 kHz (telephone audio) is still accepted
    assert MAX_SAMPLE_RATE_HZ == 384_000

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a file whose header is already refused")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    for path, rate in ((one_hz, "1 Hz"), (fast, "400,000 Hz")):
        message = _raises(AudioRangeError, path)
        assert rate in message and "8–384 kHz" in message
        with pytest.raises(AudioRangeError, match=path.name):
            audio_info(path)
        with pytest.raises(AudioRangeError, match="upload.wav"):
            audio_info(path.read_bytes(), name="upload.wav")


def test_float_samples_far_beyond_full_scale_are_refused(audio_dir: Path) -> None:
    from songsim.config import FULL_SCALE_TOLERANCE
    from songsim.errors import AudioRangeError

    t = np.arange(8 * 22_050) / 22_050
    huge = audio_dir / "huge.wav"
    sf.write(huge, (1e6 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22_050, subtype="FLOAT")
    message = _raises(AudioRangeError, huge)
    assert "±1e+06" in message and "Normalise" in message
    with pytest.raises(AudioRangeError, match="up.wav"):
        load_clip(huge.read_bytes(), name="up.wav")
    hot = audio_dir / "hot.wav"  # overs within the tolerance (a float master, a lossy decoder) pass
    sf.write(hot, (1.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 22_050, subtype="FLOAT")
    assert 1.2 <= 1.0 + FULL_SCALE_TOLERANCE and 1.19 < np.abs(load_clip(hot, sr_hz=22_050)).max() <= 1.2 + 1e-6


def test_decode_errors_of_bytes_name_the_upload_not_a_python_object() -> None:
    for data in (b"garbage!" * 100, b"RIFF" + bytes(100), b"fLaC" + b"\x01" * 200):
        for name in ("song.wav", "song.flac", "song.mp3"):
            with pytest.raises(AudioDecodeError) as caught:
                load_clip(data, name=name)
            assert str(caught.value).startswith(f"{name}: cannot be decoded"), caught.value
            assert "object at 0x" not in str(caught.value) and "BytesIO" not in str(caught.value)
            with pytest.raises(AudioDecodeError) as caught:
                audio_info(data, name=name)
            assert "object at 0x" not in str(caught.value)
        with pytest.raises(AudioDecodeError) as caught:
            load_clip(data)
        assert "object at 0x" not in str(caught.value) and str(caught.value).startswith("uploaded audio:")
