"""Decode, resample and excerpt audio; clear errors for bad files.

Every clip in songsim is a mono ``float32`` array at :data:`songsim.config.SAMPLE_RATE_HZ`
(22 050 Hz) with samples in [-1, 1] (full scale). Decoding goes through **soundfile**
(libsndfile: WAV, FLAC, OGG/Vorbis and MP3, no ffmpeg needed) and resampling through
**soxr** ("HQ" quality); librosa's loader and audioread are not used.

Units: durations in seconds (``*_s``), rates in hertz (``*_hz``), levels in dB relative to
full scale (``*_dbfs``; a full-scale sine is -3 dBFS RMS).

Every problem a user can cause raises a :class:`songsim.errors.AudioError` subclass whose
message names the file (for bytes: the ``name=`` given, e.g. the upload's file name) and says
what to do: an unsupported format, a corrupt file, a length outside 5 s – 20 min or a sample
rate outside 8–384 kHz (both read from the header before anything is decoded), samples far
beyond full scale, silence; programming errors (a negative sample rate, an
unknown ``position``) raise :class:`ValueError`.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import soxr

from songsim.config import (
    AUDIO_EXTENSIONS,
    CLIP_DURATION_S,
    FULL_SCALE_TOLERANCE,
    MAX_DURATION_S,
    MAX_SAMPLE_RATE_HZ,
    MIN_DURATION_S,
    MIN_SAMPLE_RATE_HZ,
    SAMPLE_RATE_HZ,
    SILENCE_DBFS,
)
from songsim.errors import (
    AudioDecodeError,
    AudioRangeError,
    AudioTooLongError,
    AudioTooShortError,
    EmptyAudioError,
    SilentAudioError,
)

__all__ = [
    "AudioInfo",
    "AudioSource",
    "FINGERPRINT_LENGTH",
    "audio_info",
    "bytes_fingerprint",
    "check_duration",
    "check_sample_rate",
    "file_fingerprint",
    "load_clip",
    "rms_dbfs",
]

AudioSource = str | os.PathLike | bytes
"""A file path, or the raw bytes of an encoded file (e.g. a Streamlit upload)."""

FINGERPRINT_LENGTH = 20  # hex characters of the sha256 digest kept in a fingerprint
_HASH_CHUNK_BYTES = 1 << 20  # read files in 1 MiB chunks when hashing
_RESAMPLE_QUALITY = "HQ"  # soxr quality preset
_FORMATS_TEXT = "WAV, FLAC, OGG/Vorbis or MP3"
# libsndfile format name for each supported extension (used for writing and for bytes).
_FORMAT_BY_EXTENSION = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
# The default subtype written for each format (soundfile's defaults, spelled out).
_DEFAULT_SUBTYPE = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}
# Formats whose libsndfile seek/chunked reads are not sample-accurate (see load_clip).
_NO_SEEK_FORMATS = frozenset({"MP3"})


@dataclass(frozen=True)
class AudioInfo:
    """What the file header says, without decoding the audio.

    Attributes
    ----------
    duration_s : float
        Length in seconds (``frames / sr_hz``). For MP3 this comes from the stream header
        and can over-state the length of a truncated file.
    sr_hz : int
        Native sample rate of the file in hertz.
    channels : int
        Number of channels (1 = mono, 2 = stereo, ...).
    format : str
        libsndfile's container name: ``"WAV"``, ``"FLAC"``, ``"OGG"`` or ``"MP3"``.
    frames : int
        Number of samples per channel.
    """

    duration_s: float
    sr_hz: int
    channels: int
    format: str
    frames: int = 0


# --------------------------------------------------------------------------------------------
# errors and labels


def _label(source: AudioSource, name: str | None) -> str:
    """How a source is named in error messages: ``name`` if given, else the path."""
    if name:
        return str(name)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "uploaded audio"
    return str(source)


def _check_extension(source: AudioSource, name: str | None, label: str) -> str | None:
    """Return the libsndfile format implied by the extension, or raise for an unsupported one.

    Bytes without a ``name`` have no extension to check: ``None`` is returned and libsndfile
    detects the format from the data.
    """
    if isinstance(source, (bytes, bytearray, memoryview)) and not name:
        return None
    suffix = Path(name if name else os.fspath(source)).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        shown = f"'{suffix}'" if suffix else "no extension"
        raise AudioDecodeError(
            f"{label}: unsupported audio format ({shown}). songsim reads {_FORMATS_TEXT} files "
            f"({', '.join(AUDIO_EXTENSIONS)}). Convert the file first, e.g. with ffmpeg on "
            f"another machine: ffmpeg -i '{Path(label).name}' '{Path(label).stem}.flac'"
        )
    return _FORMAT_BY_EXTENSION[suffix]


# libsndfile names what it opened: "Error opening <_io.BytesIO object at 0x7f…>: …" for bytes,
# "Error opening '/server/path/x.wav': …" for a file. The label already names the file.
_OPENED_PREFIX = re.compile(r"^Error opening (?:<[^>]*>|'[^']*'|\"[^\"]*\"|\S+): *")
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def _decode_error(label: str, reason: object) -> AudioDecodeError:
    text = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
    text = _OBJECT_REPR.sub("the file", _OPENED_PREFIX.sub("", text)).strip() or type(reason).__name__
    return AudioDecodeError(
        f"{label}: cannot be decoded as audio ({text}). Check that it is a complete, "
        f"uncorrupted {_FORMATS_TEXT} file whose extension matches its content; "
        "re-export or re-download it."
    )


def check_duration(duration_s: float, *, name: str) -> None:
    """Raise if a duration is outside [MIN_DURATION_S, MAX_DURATION_S].

    Parameters
    ----------
    duration_s : float
        Length of the file in seconds.
    name : str
        File name shown in the error message.

    Raises
    ------
    EmptyAudioError
        ``duration_s`` is 0 (no samples).
    AudioTooShortError
        ``duration_s < MIN_DURATION_S``.
    AudioTooLongError
        ``duration_s > MAX_DURATION_S``.
    """
    if duration_s <= 0:
        raise EmptyAudioError(
            f"{name}: the file holds no audio samples. Re-export it with its audio content."
        )
    if duration_s < MIN_DURATION_S:
        raise AudioTooShortError(
            f"{name}: {duration_s:.2f} s long, shorter than the minimum of "
            f"{MIN_DURATION_S:g} s. Use a longer recording (songsim analyses a "
            f"{CLIP_DURATION_S:g} s excerpt of each song)."
        )
    if duration_s > MAX_DURATION_S:
        raise AudioTooLongError(
            f"{name}: {duration_s / 60:.1f} min long, longer than the maximum of "
            f"{MAX_DURATION_S / 60:g} min, so probably not a single song (a mix, a podcast?). "
            "Cut out the song you want to use and load that file."
        )


def check_sample_rate(sr_hz: int, *, name: str) -> None:
    """Raise if a native sample rate is outside [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ].

    A header can claim any rate: a WAV of 1 000 frames at 1 Hz "lasts" 16.7 min and would
    otherwise pass the duration check and be resampled into 22 050 × 1 000 samples.

    Raises
    ------
    AudioRangeError
        ``sr_hz`` below 8 kHz or above 384 kHz.
    """
    if not MIN_SAMPLE_RATE_HZ <= sr_hz <= MAX_SAMPLE_RATE_HZ:
        raise AudioRangeError(
            f"{name}: its header gives a sample rate of {sr_hz:,} Hz, outside the "
            f"{MIN_SAMPLE_RATE_HZ // 1000}–{MAX_SAMPLE_RATE_HZ // 1000} kHz songsim accepts, so it is "
            "not a usable recording (a damaged or hand-made header?). Re-export it at a standard rate "
            "(44.1 or 48 kHz)."
        )


def _check_peak(data: np.ndarray, *, name: str) -> None:
    """Raise if decoded samples lie more than FULL_SCALE_TOLERANCE beyond full scale (±1)."""
    peak = float(np.max(np.abs(data))) if data.size else 0.0
    if peak > 1.0 + FULL_SCALE_TOLERANCE:
        raise AudioRangeError(
            f"{name}: its samples reach ±{peak:.3g}, far beyond full scale (±1; songsim accepts up to "
            f"±{1.0 + FULL_SCALE_TOLERANCE:g}), so they are not audio levels songsim can compare (a float "
            "file written without normalising?). Normalise it to a peak of at most 0 dBFS, or export "
            "it as 16- or 24-bit PCM."
        )


# --------------------------------------------------------------------------------------------
# opening files


def _open(source: AudioSource, name: str | None) -> tuple[sf.SoundFile, str]:
    """Open ``source`` with libsndfile after the cheap checks; return (file, label)."""
    label = _label(source, name)
    fmt = _check_extension(source, name, label)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) == 0:
            raise EmptyAudioError(f"{label}: the upload is empty (0 bytes). Upload the file again.")
        handle: object = io.BytesIO(data)
    else:
        path = Path(os.fspath(source))
        if not path.is_file():
            raise AudioDecodeError(
                f"{label}: no such file. Check the path (and that the catalogue folder was "
                "copied completely)."
            )
        if path.stat().st_size == 0:
            raise EmptyAudioError(
                f"{label}: the file is empty (0 bytes). Re-export or re-copy it."
            )
        handle = str(path)
    try:
        if fmt == "MP3" and isinstance(handle, io.BytesIO):
            # libsndfile sniffs WAV/FLAC/OGG from the header; MP3 has no magic number to
            # rely on (ID3 tags, bare frame sync), so pass the format the name implies.
            try:
                return sf.SoundFile(handle, format="MP3"), label
            except (sf.SoundFileError, RuntimeError, TypeError, ValueError):
                handle.seek(0)
        return sf.SoundFile(handle), label
    except (sf.SoundFileError, RuntimeError, TypeError, ValueError) as error:
        raise _decode_error(label, error) from error


def audio_info(
    source: AudioSource, *, name: str | None = None, check_duration_limits: bool = False
) -> AudioInfo:
    """Read a file's header (duration, rate, channels, format) without decoding the audio.

    Cheap (a few milliseconds): meant for validating a whole catalogue up front.

    Parameters
    ----------
    source : str, path-like or bytes
        Path of a WAV/FLAC/OGG/MP3 file, or the bytes of one.
    name : str, optional
        File name used in error messages (and for the extension check) when ``source`` is
        bytes, e.g. an upload's name.
    check_duration_limits : bool
        Also raise :class:`AudioTooShortError` / :class:`AudioTooLongError` when the duration
        is outside [MIN_DURATION_S, MAX_DURATION_S].

    Returns
    -------
    AudioInfo

    Raises
    ------
    AudioDecodeError
        Unsupported extension, missing, unreadable or corrupt file.
    EmptyAudioError
        The file is 0 bytes or holds no samples.
    AudioRangeError
        The header's sample rate is outside [MIN_SAMPLE_RATE_HZ, MAX_SAMPLE_RATE_HZ].
    AudioTooShortError, AudioTooLongError
        Only with ``check_duration_limits=True``.
    """
    f, label = _open(source, name)
    with f:
        frames, sr_hz, channels, fmt = int(f.frames), int(f.samplerate), int(f.channels), f.format
    if frames <= 0 or sr_hz <= 0:
        raise EmptyAudioError(
            f"{label}: the file holds no audio samples. Re-export it with its audio content."
        )
    info = AudioInfo(
        duration_s=frames / sr_hz, sr_hz=sr_hz, channels=channels, format=fmt, frames=frames
    )
    if check_duration_limits:
        check_duration(info.duration_s, name=label)
    check_sample_rate(sr_hz, name=label)
    return info


# --------------------------------------------------------------------------------------------
# decoding


def rms_dbfs(clip: np.ndarray) -> float:
    """Root-mean-square level of ``clip`` in dBFS (``-inf`` for digital silence).

    Parameters
    ----------
    clip : np.ndarray [shape=(n_samples,)]
        Samples in full-scale units ([-1, 1]).

    Returns
    -------
    float
        ``20 * log10(rms)``; a full-scale sine is about -3 dBFS.
    """
    if clip.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def load_clip(
    source: AudioSource,
    *,
    name: str | None = None,
    sr_hz: int = SAMPLE_RATE_HZ,
    duration_s: float | None = CLIP_DURATION_S,
    position: Literal["middle", "start"] = "middle",
    max_start_s: float | None = None,
) -> np.ndarray:
    """Decode an excerpt of an audio file as a mono float32 clip at ``sr_hz``.

    The duration is checked from the header before anything is decoded, and only the
    excerpt is decoded (seeking for WAV/FLAC/OGG; MP3 is decoded from the start, because
    libsndfile's MP3 decoder is not sample-accurate after a seek, and the excerpt is read
    in one call). Channels are averaged to mono, then the
    excerpt is resampled with soxr ("HQ"). Decoding bytes and decoding the same file from
    disk give identical clips.

    Parameters
    ----------
    source : str, path-like or bytes
        Path of a ``.wav``, ``.flac``, ``.ogg`` (Vorbis) or ``.mp3`` file, or the bytes of one
        (an upload).
    name : str, optional
        File name for error messages and the extension check when ``source`` is bytes (e.g.
        the upload's name). Without it, bytes are sniffed by libsndfile.
    sr_hz : int
        Output sample rate in hertz.
    duration_s : float or None
        Length of the excerpt in seconds. A file shorter than this (but at least
        ``MIN_DURATION_S``) is returned whole; ``None`` returns the whole file.
    position : {"middle", "start"}
        Where the excerpt is taken from: centred in the file, or from its first sample.
    max_start_s : float, optional
        With ``position="middle"``: the excerpt starts at this many seconds at the latest
        (centred in a short file, from ``max_start_s`` in a long one) -- Musly's own excerpt
        rule, ``musly -a`` analysing 30 s from ``min(48 s, (duration - 30 s) / 2)``.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        Mono samples in full-scale units; ``n_samples == round(duration_s * sr_hz)`` when the
        file is long enough.

    Raises
    ------
    AudioDecodeError
        Unsupported extension (e.g. ``.m4a``), missing, unreadable or corrupt file, or
        non-finite samples.
    EmptyAudioError
        The file is 0 bytes or decodes to no samples.
    AudioTooShortError
        Shorter than :data:`~songsim.config.MIN_DURATION_S`.
    AudioTooLongError
        Longer than :data:`~songsim.config.MAX_DURATION_S` (checked before decoding).
    AudioRangeError
        A native sample rate outside 8–384 kHz (checked before decoding), or decoded
        samples beyond ±(1 + :data:`~songsim.config.FULL_SCALE_TOLERANCE`) (refused, not
        normalised: the excerpt's peak is checked).
    SilentAudioError
        The excerpt's RMS level is below :data:`~songsim.config.SILENCE_DBFS`.

    Examples
    --------
    >>> clip = load_clip("song.flac")  # doctest: +SKIP
    >>> clip.shape, clip.dtype  # doctest: +SKIP
    ((661500,), dtype('float32'))
    """
    if int(sr_hz) != sr_hz or sr_hz <= 0:
        raise ValueError(f"sr_hz must be a positive integer, got {sr_hz!r}")
    if duration_s is not None and not (np.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number or None, got {duration_s!r}")
    if position not in ("middle", "start"):
        raise ValueError(f"position must be 'middle' or 'start', got {position!r}")
    if max_start_s is not None and not (np.isfinite(max_start_s) and max_start_s >= 0):
        raise ValueError(f"max_start_s must be a non-negative number or None, got {max_start_s!r}")
    sr_hz = int(sr_hz)

    f, label = _open(source, name)
    with f:
        native_hz = int(f.samplerate)
        frames = int(f.frames)
        if native_hz <= 0 or frames <= 0:
            raise EmptyAudioError(
                f"{label}: the file holds no audio samples. Re-export it with its audio content."
            )
        check_duration(frames / native_hz, name=label)
        check_sample_rate(native_hz, name=label)

        want = frames
        if duration_s is not None:
            want = min(frames, int(round(duration_s * native_hz)))
        start = (frames - want) // 2 if position == "middle" else 0
        if max_start_s is not None:
            start = min(start, int(round(max_start_s * native_hz)))
        try:
            if f.seekable() and f.format not in _NO_SEEK_FORMATS:
                f.seek(start)
                data = f.read(want, dtype="float32", always_2d=True)
            else:
                # libsndfile 1.2's MP3 decoder garbles the first ~1 300 samples returned by
                # any read() that follows a seek() or a previous read(). Decode up to 1 s
                # before the excerpt, then read that second and the excerpt in ONE call and
                # drop the second: the result equals slicing a whole-file decode.
                margin = min(start, native_hz)
                _skip(f, start - margin)
                data = f.read(margin + want, dtype="float32", always_2d=True)[margin:]
        except (sf.SoundFileError, RuntimeError, ValueError, MemoryError) as error:
            raise _decode_error(label, error) from error

    if data.shape[0] == 0:
        raise EmptyAudioError(
            f"{label}: the file decodes to no audio samples (a truncated file?). Re-export it."
        )
    if data.shape[0] < want:
        # The header over-stated the length (a truncated MP3): judge what is really there.
        check_duration((start + data.shape[0]) / native_hz, name=label)
    if not np.all(np.isfinite(data)):
        raise _decode_error(label, "the file contains NaN or infinite sample values")
    _check_peak(data, name=label)

    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if native_hz != sr_hz:
        mono = soxr.resample(mono, native_hz, sr_hz, quality=_RESAMPLE_QUALITY)
    if (
        duration_s is not None
        and data.shape[0] == want
        and want == int(round(duration_s * native_hz))
    ):
        # The file was long enough for a full excerpt: make its length exact (soxr rounds).
        n_out = int(round(duration_s * sr_hz))
        if mono.shape[0] >= n_out:
            mono = mono[:n_out]
        else:
            mono = np.pad(mono, (0, n_out - mono.shape[0]))
    clip = np.ascontiguousarray(mono, dtype=np.float32)

    level_dbfs = rms_dbfs(clip)
    if level_dbfs < SILENCE_DBFS:
        shown = "digital silence" if level_dbfs == float("-inf") else f"{level_dbfs:.1f} dBFS"
        raise SilentAudioError(
            f"{label}: the analysed excerpt is silent ({shown}, below the "
            f"{SILENCE_DBFS:g} dBFS threshold). Check that the file has audible content and "
            "is not a silent placeholder; trim long silences or raise its level."
        )
    return clip


def _skip(f: sf.SoundFile, n_frames: int) -> None:
    """Advance ``f`` by decoding and discarding ``n_frames`` frames."""
    block = 1 << 16
    remaining = n_frames
    while remaining > 0:
        got = f.read(min(block, remaining), dtype="float32", always_2d=True).shape[0]
        if got == 0:
            return
        remaining -= got


# --------------------------------------------------------------------------------------------
# fingerprints


def bytes_fingerprint(data: bytes) -> str:
    """Content hash of some bytes: the first :data:`FINGERPRINT_LENGTH` hex digits of sha256.

    Parameters
    ----------
    data : bytes
        Raw file content.

    Returns
    -------
    str
        Lower-case hex, equal to :func:`file_fingerprint` of a file holding ``data``.
    """
    return hashlib.sha256(bytes(data)).hexdigest()[:FINGERPRINT_LENGTH]


def file_fingerprint(path: str | os.PathLike) -> str:
    """Content hash of a file (streamed): the first 20 hex digits of its sha256.

    Keys caches (features, uploads) by content, so renaming or moving a file keeps its
    derived data and editing it invalidates them.

    Parameters
    ----------
    path : str or path-like
        Any file.

    Returns
    -------
    str
        Lower-case hex, equal to :func:`bytes_fingerprint` of the file's bytes.

    Raises
    ------
    AudioDecodeError
        The file does not exist or cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
    except OSError as error:
        raise AudioDecodeError(
            f"{path}: cannot be read ({error.strerror or error}). Check the path and permissions."
        ) from error
    return digest.hexdigest()[:FINGERPRINT_LENGTH]
