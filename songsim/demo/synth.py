"""A small General-MIDI SoundFont 2 sample player in numpy.

The demo catalogue (:mod:`songsim.demo`) needs real instrument sounds without a native
synthesiser, so this module parses a SoundFont 2 (``.sf2``) file with :mod:`struct` and
:mod:`numpy` and plays its samples offline, note by note.

What is honoured (SoundFont 2.01 specification, section 8):

- the RIFF ``sfbk`` layout: 16-bit samples from ``sdta/smpl`` (an ``sm24`` chunk is ignored);
  ``phdr``, ``pbag``, ``pgen``, ``inst``, ``ibag``, ``igen`` and ``shdr`` from ``pdta``;
- global zones at preset and instrument level (their generators are the defaults of the
  local zones of the same preset or instrument);
- ``keyRange`` and ``velRange`` (intersected between the preset and the instrument zone);
- ``exclusiveClass``: a note chokes the sounding notes of its preset and class within
  :data:`CHOKE_S` (an open hi-hat stops when the closed one is played);
- ``sampleID``, ``instrument``, ``overridingRootKey``, ``coarseTune``, ``fineTune``,
  ``scaleTuning`` and the sample header's pitch correction;
- ``sampleModes`` 0 (no loop), 1 (loop) and 3 (loop while the key is held, then play on to
  the end of the sample);
- the eight sample address offset generators (fine and coarse start, end, loop start, loop
  end), at instrument level only, as the specification requires;
- ``initialAttenuation`` and the volume envelope ``delay``, ``attack``, ``hold``, ``decay``,
  ``sustain`` and ``release`` (timecents and centibels), with ``keynumToVolEnvHold`` and
  ``keynumToVolEnvDecay``;
- preset-level generators *add* to instrument-level ones, except the ranges, which
  intersect, and the generators the specification forbids at preset level, which are
  ignored there.

What is ignored: modulators (``pmod``/``imod``) other than the default velocity-to-attenuation
curve, which is approximated as ``40 log10(velocity / 127)`` dB; filters
(``initialFilterFc``/``Q``); the modulation envelope and both LFOs; chorus and reverb sends;
``pan`` and stereo sample links (output is mono: the left and right zones of
a stereo instrument are both played and summed); ``keynum``/``velocity`` overrides.

Rendered notes are cached, so a note's hold time is quantised first (to 10 ms up to 0.1 s,
then to a geometric grid of ratio :data:`DURATION_RATIO`, i.e. within +-2.5 %). A release tail
is cut at :data:`MAX_RELEASE_S` after note-off, and a note ends once its envelope falls
below -60 dB (with a 5 ms fade, so that a cut never clicks). A preset that the file lacks
falls back, as General-MIDI players do, to bank 0 (melodic) or to kit 0 of bank 128
(percussion).

Units: times in seconds (``_s``), sample rates in Hz (``_hz``), MIDI keys and velocities
0-127; the output is mono ``float32`` with full scale at 1.0.
"""

from __future__ import annotations

import functools
import importlib.resources
import math
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from songsim.config import SAMPLE_RATE_HZ
from songsim.errors import SoundFontError

DRUM_BANK = 128  # General-MIDI percussion kits live in bank 128
MAX_RELEASE_S = 3.0  # release tails are cut this long after note-off
NOTE_CACHE_BYTES = 256 * 2**20  # rendered notes kept per SoundFont object (LRU)
CHOKE_S = 0.005  # fade-out of a note choked by its exclusive class
DURATION_STEP_S = 0.01  # hold times up to 10 steps are quantised to this step...
DURATION_RATIO = 1.05  # ...and longer ones to this geometric grid (cache hits across tempi)
_FLOOR_AMPLITUDE = 1e-3  # -60 dB: a note ends once its envelope is below this
_ENVELOPE_STEP = 16  # samples between envelope control points (0.7 ms at 22 050 Hz)
_END_FADE_S = 0.005  # every note fades out over its last 5 ms (a cut tail must not click)

# Generator operators (SoundFont 2.01, section 8.1.2).
_START_OFFSET, _END_OFFSET, _LOOP_START_OFFSET, _LOOP_END_OFFSET = 0, 1, 2, 3
_START_COARSE, _END_COARSE = 4, 12
_DELAY_VOL, _ATTACK_VOL, _HOLD_VOL, _DECAY_VOL, _SUSTAIN_VOL, _RELEASE_VOL = range(33, 39)
_KEY_TO_HOLD, _KEY_TO_DECAY = 39, 40
_INSTRUMENT, _KEY_RANGE, _VEL_RANGE = 41, 43, 44
_LOOP_START_COARSE, _KEYNUM, _VELOCITY, _INITIAL_ATTENUATION = 45, 46, 47, 48
_LOOP_END_COARSE = 50
_COARSE_TUNE, _FINE_TUNE, _SAMPLE_ID, _SAMPLE_MODES = 51, 52, 53, 54
_SCALE_TUNING, _EXCLUSIVE_CLASS, _OVERRIDING_ROOT_KEY = 56, 57, 58

_DEFAULTS = {
    _DELAY_VOL: -12000,
    _ATTACK_VOL: -12000,
    _HOLD_VOL: -12000,
    _DECAY_VOL: -12000,
    _RELEASE_VOL: -12000,
    _SCALE_TUNING: 100,
    _OVERRIDING_ROOT_KEY: -1,
}
_UNSIGNED = {_INSTRUMENT, _SAMPLE_ID, _SAMPLE_MODES}
# Generators that are valid only in instrument zones (section 8.1.3): ignored in presets.
_INSTRUMENT_ONLY = {
    _START_OFFSET, _END_OFFSET, _LOOP_START_OFFSET, _LOOP_END_OFFSET, _START_COARSE,
    _END_COARSE, _LOOP_START_COARSE, _LOOP_END_COARSE, _KEYNUM, _VELOCITY, _SAMPLE_MODES,
    _EXCLUSIVE_CLASS, _OVERRIDING_ROOT_KEY, _SAMPLE_ID,
}

_PHDR = np.dtype([("name", "S20"), ("preset", "<u2"), ("bank", "<u2"), ("bag", "<u2"),
                  ("library", "<u4"), ("genre", "<u4"), ("morphology", "<u4")])
_BAG = np.dtype([("gen", "<u2"), ("mod", "<u2")])
_GEN = np.dtype([("oper", "<u2"), ("amount", "<u2")])
_INST = np.dtype([("name", "S20"), ("bag", "<u2")])
_SHDR = np.dtype([("name", "S20"), ("start", "<u4"), ("end", "<u4"), ("loop_start", "<u4"),
                  ("loop_end", "<u4"), ("rate", "<u4"), ("pitch", "u1"),
                  ("correction", "i1"), ("link", "<u2"), ("type", "<u2")])


class Note(NamedTuple):
    """One note to render.

    Attributes
    ----------
    bank : int
        MIDI bank; :data:`DRUM_BANK` (128) selects percussion kits.
    program : int
        General-MIDI program 0-127 (for bank 128, the kit number).
    key : int
        MIDI key 0-127 (60 = middle C; for kits, the drum sound).
    velocity : int
        MIDI velocity 1-127.
    start_s : float
        Onset in seconds from the start of the rendered buffer.
    duration_s : float
        Time in seconds until note-off; the release tail sounds after it.
    """

    bank: int
    program: int
    key: int
    velocity: int
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class _Region:
    """One playable zone: a sample with its fully resolved generators."""

    key_lo: int
    key_hi: int
    vel_lo: int
    vel_hi: int
    start: int  # absolute sample indices into the smpl chunk
    end: int
    loop_start: int
    loop_end: int
    rate_hz: int
    root_key: int
    tune_cents: float  # coarse * 100 + fine + sample pitch correction
    scale_tuning: int  # cents per key
    mode: int  # sampleModes: 0 none, 1 loop, 3 loop until release
    exclusive_class: int  # 0 none; a new note of the class chokes sounding ones (hi-hats)
    attenuation_cb: float
    delay_tc: int
    attack_tc: int
    hold_tc: int
    decay_tc: int
    sustain_cb: int
    release_tc: int
    key_to_hold: int
    key_to_decay: int


def _timecents_s(timecents: float) -> float:
    """Seconds for a SoundFont time in timecents (-32768 means zero)."""
    return 0.0 if timecents <= -32768 else 2.0 ** (timecents / 1200.0)


def _default_path() -> Path:
    return Path(str(importlib.resources.files("pretty_midi") / "TimGM6mb.sf2"))


def _subchunks(data: bytes, offset: int, end: int, path: Path) -> dict[bytes, tuple[int, int]]:
    """Map chunk id (or LIST type) to (payload offset, payload size) within one RIFF level."""
    found: dict[bytes, tuple[int, int]] = {}
    while offset + 8 <= end:
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        payload = offset + 8
        if payload + size > end:
            raise SoundFontError(f"{path}: chunk {chunk_id!r} runs past the end of the file; "
                                 "the file is truncated — download it again.")
        if chunk_id == b"LIST":
            found[data[payload:payload + 4]] = (payload + 4, size - 4)
        else:
            found[chunk_id] = (payload, size)
        offset = payload + size + (size & 1)
    return found


def _records(data: bytes, chunks: dict, name: bytes, dtype: np.dtype, path: Path) -> np.ndarray:
    if name not in chunks:
        raise SoundFontError(f"{path}: the pdta list has no {name.decode()!r} chunk; "
                             "this is not a valid SoundFont 2 file.")
    offset, size = chunks[name]
    return np.frombuffer(data, dtype=dtype, count=size // dtype.itemsize, offset=offset)


def _zones(bags: np.ndarray, gens: np.ndarray, first: int, stop: int) -> list[dict[int, int]]:
    """Generators of each zone (bag) in ``[first, stop)``, as {operator: raw u16 amount}."""
    zones = []
    for bag in range(first, stop):
        zone: dict[int, int] = {}
        for oper, amount in gens[bags["gen"][bag]:bags["gen"][bag + 1]].tolist():
            zone[oper] = amount
        zones.append(zone)
    return zones


def _split_global(zones: list[dict[int, int]], terminal: int) -> tuple[dict, list[dict]]:
    """A first zone without the terminal generator is the global zone (section 7.3/7.7)."""
    if zones and terminal not in zones[0]:
        return zones[0], [z for z in zones[1:] if terminal in z]
    return {}, [z for z in zones if terminal in z]


def _signed(oper: int, amount: int) -> int:
    if oper in _UNSIGNED or oper in (_KEY_RANGE, _VEL_RANGE):
        return amount
    return amount - 65536 if amount >= 32768 else amount


def _range(zone: dict[int, int], oper: int) -> tuple[int, int]:
    raw = zone.get(oper, 127 << 8)
    return raw & 0xFF, raw >> 8


class SoundFont:
    """A parsed SoundFont 2 file that renders notes to mono audio.

    Build it with :meth:`load`; the parsed file and a bounded cache of rendered notes are
    shared by every caller in the process. Rendering is thread-safe.

    Attributes
    ----------
    path : Path
        The ``.sf2`` file.
    presets : dict[tuple[int, int], str]
        ``(bank, program) -> preset name`` for every preset in the file.
    """

    def __init__(self, path: Path, samples: np.ndarray,
                 regions: dict[tuple[int, int], tuple[_Region, ...]],
                 presets: dict[tuple[int, int], str]) -> None:
        self.path = path
        self.presets = presets
        self._samples = samples
        self._regions = regions
        self._cache: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._cache_bytes = 0
        self._selections: dict[tuple[int, int, int, int], tuple] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: Path | str | None = None) -> SoundFont:
        """Parse a SoundFont 2 file, once per process and path.

        Parameters
        ----------
        path : Path or str, optional
            The ``.sf2`` file. Default: ``TimGM6mb.sf2``, the General-MIDI SoundFont that
            ships inside the ``pretty_midi`` package.

        Returns
        -------
        SoundFont
            The parsed file (shared: do not mutate).

        Raises
        ------
        SoundFontError
            If the file is missing or is not a valid SoundFont 2 file.
        """
        resolved = Path(path).expanduser().resolve() if path is not None else _default_path()
        return _load_cached(resolved)

    @classmethod
    def _parse(cls, path: Path) -> SoundFont:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise SoundFontError(f"{path}: cannot read the SoundFont ({error.strerror}); "
                                 "check the path, or pass path=None for the bundled "
                                 "TimGM6mb.sf2.") from error
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"sfbk":
            raise SoundFontError(f"{path}: not a SoundFont 2 file (no RIFF 'sfbk' header); "
                                 "pass a .sf2 file.")
        top = _subchunks(data, 12, min(len(data), 8 + struct.unpack_from("<I", data, 4)[0]),
                         path)
        if b"sdta" not in top or b"pdta" not in top:
            raise SoundFontError(f"{path}: the sdta or pdta list is missing; "
                                 "this is not a valid SoundFont 2 file.")
        sdta = _subchunks(data, top[b"sdta"][0], sum(top[b"sdta"]), path)
        if b"smpl" not in sdta:
            raise SoundFontError(f"{path}: the sdta list has no 'smpl' chunk; "
                                 "this is not a valid SoundFont 2 file.")
        offset, size = sdta[b"smpl"]
        samples = np.frombuffer(data, dtype="<i2", count=size // 2, offset=offset)
        samples = samples.astype(np.float32) / 32768.0
        pdta = _subchunks(data, top[b"pdta"][0], sum(top[b"pdta"]), path)
        phdr = _records(data, pdta, b"phdr", _PHDR, path)
        pbag = _records(data, pdta, b"pbag", _BAG, path)
        pgen = _records(data, pdta, b"pgen", _GEN, path)
        inst = _records(data, pdta, b"inst", _INST, path)
        ibag = _records(data, pdta, b"ibag", _BAG, path)
        igen = _records(data, pdta, b"igen", _GEN, path)
        shdr = _records(data, pdta, b"shdr", _SHDR, path)
        pgen_pairs = np.stack([pgen["oper"], pgen["amount"]], axis=1)
        igen_pairs = np.stack([igen["oper"], igen["amount"]], axis=1)

        instruments: list[list[tuple[dict[int, int], tuple[int, int], tuple[int, int]]]] = []
        for i in range(len(inst) - 1):  # the last record is the terminal "EOI"
            global_zone, local = _split_global(
                _zones(ibag, igen_pairs, inst["bag"][i], inst["bag"][i + 1]), _SAMPLE_ID)
            resolved = []
            for zone in local:
                merged = {**global_zone, **zone}
                gens = {op: _signed(op, v) for op, v in merged.items()}
                resolved.append((gens, _range(merged, _KEY_RANGE), _range(merged, _VEL_RANGE)))
            instruments.append(resolved)

        regions: dict[tuple[int, int], tuple[_Region, ...]] = {}
        presets: dict[tuple[int, int], str] = {}
        for p in range(len(phdr) - 1):  # the last record is the terminal "EOP"
            key = (int(phdr["bank"][p]), int(phdr["preset"][p]))
            presets[key] = phdr["name"][p].split(b"\0")[0].decode("latin-1").strip()
            global_zone, local = _split_global(
                _zones(pbag, pgen_pairs, phdr["bag"][p], phdr["bag"][p + 1]), _INSTRUMENT)
            found = []
            for zone in local:
                merged = {**global_zone, **zone}
                p_keys, p_vels = _range(merged, _KEY_RANGE), _range(merged, _VEL_RANGE)
                additive = {op: _signed(op, v) for op, v in merged.items()
                            if op not in _INSTRUMENT_ONLY
                            and op not in (_INSTRUMENT, _KEY_RANGE, _VEL_RANGE)}
                instrument = merged[_INSTRUMENT]
                if instrument >= len(instruments):
                    raise SoundFontError(f"{path}: preset {presets[key]!r} names instrument "
                                         f"{instrument}, which does not exist.")
                for gens, i_keys, i_vels in instruments[instrument]:
                    keys = (max(p_keys[0], i_keys[0]), min(p_keys[1], i_keys[1]))
                    vels = (max(p_vels[0], i_vels[0]), min(p_vels[1], i_vels[1]))
                    if keys[0] > keys[1] or vels[0] > vels[1] or gens[_SAMPLE_ID] >= len(shdr):
                        continue
                    total = {**_DEFAULTS, **gens}
                    for op, v in additive.items():
                        total[op] = total.get(op, _DEFAULTS.get(op, 0)) + v
                    found.append(_make_region(total, shdr[gens[_SAMPLE_ID]], keys, vels,
                                              len(samples)))
            regions[key] = tuple(found)
        return cls(path, samples, regions, presets)

    # --------------------------------------------------------------------------- rendering
    def render(self, notes: Iterable[Note | tuple], *, duration_s: float,
               sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
        """Mix notes into one mono buffer.

        Parameters
        ----------
        notes : iterable of Note or 6-tuples
            ``(bank, program, key, velocity, start_s, duration_s)``; see :class:`Note`.
            Notes are mixed in onset order (a stable sort of the input, which fixes the
            floating-point result).
        duration_s : float
            Length of the output in seconds; notes and tails beyond it are cut.
        sr_hz : int, keyword-only
            Output sample rate in Hz.

        Returns
        -------
        np.ndarray [shape=(round(duration_s * sr_hz),), dtype=float32]
            The mix, not normalised (many loud notes can exceed 1.0).
        """
        n_out = int(round(duration_s * sr_hz))
        out = np.zeros(n_out, dtype=np.float32)
        n_choke = max(1, int(round(CHOKE_S * sr_hz)))
        sounding: dict[tuple, tuple[int, np.ndarray]] = {}  # (preset, class) -> (at, added)
        for bank, program, key, velocity, start_s, note_s in sorted(notes, key=lambda n: n[4]):
            start = int(round(start_s * sr_hz))
            if start >= n_out or velocity <= 0:
                continue
            preset, indices, exclusive = self._select(int(bank), int(program), int(key),
                                                      int(velocity))
            wave = self._note_wave(preset, indices, int(key), float(note_s), sr_hz)
            skip = max(0, -start)
            stop = min(n_out, start + len(wave))
            if stop <= start + skip:
                continue
            added = _velocity_gain(int(velocity)) * wave[skip:stop - start]
            out[start + skip:stop] += added
            if exclusive:
                previous = sounding.get((preset, exclusive))
                if previous is not None and previous[0] + len(previous[1]) > start + skip:
                    at, sound = previous
                    tail = sound[start + skip - at:]
                    keep = np.clip(1.0 - np.arange(len(tail)) / n_choke, 0.0, 1.0)
                    out[start + skip:at + len(sound)] -= tail * (1.0 - keep).astype(np.float32)
                sounding[(preset, exclusive)] = (start + skip, added)
        return out

    def render_note(self, note: Note, *, sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
        """Render one note from its onset to the end of its release tail.

        Parameters
        ----------
        note : Note
            The note; its ``start_s`` is ignored (the result starts at the onset).
        sr_hz : int, keyword-only
            Output sample rate in Hz.

        Returns
        -------
        np.ndarray [shape=(n_samples,), dtype=float32]
            The note, including its release tail (at most :data:`MAX_RELEASE_S` after
            note-off), with velocity and attenuation applied.
        """
        preset, indices, _ = self._select(note.bank, note.program, note.key, note.velocity)
        wave = self._note_wave(preset, indices, note.key, note.duration_s, sr_hz)
        return (_velocity_gain(note.velocity) * wave).astype(np.float32)

    def _select(self, bank: int, program: int, key: int, velocity: int) -> tuple:
        """``(preset, region indices, exclusive class)`` that play key at velocity, memoised.

        A missing preset falls back to bank 0 (melodic) or kit 0 of bank 128 (percussion).
        """
        selection_key = (bank, program, key, velocity)
        selection = self._selections.get(selection_key)
        if selection is None:
            for preset in ((bank, program), (bank, 0) if bank == DRUM_BANK else (0, program)):
                if preset in self._regions:
                    break
            else:
                raise SoundFontError(
                    f"{self.path}: no preset for bank {bank}, program {program} (nor its "
                    f"General-MIDI fallback); choose one of SoundFont.presets.")
            indices = tuple(i for i, r in enumerate(self._regions[preset])
                            if r.key_lo <= key <= r.key_hi and r.vel_lo <= velocity <= r.vel_hi)
            exclusive = max((self._regions[preset][i].exclusive_class for i in indices),
                            default=0)
            selection = (preset, indices, exclusive)
            self._selections[selection_key] = selection
        return selection

    def _note_wave(self, preset: tuple[int, int], indices: tuple[int, ...], key: int,
                   duration_s: float, sr_hz: int) -> np.ndarray:
        """The note at velocity gain 1, cached by its regions and quantised duration."""
        held_s = _quantise_hold(duration_s)
        cache_key = (preset, indices, key, held_s, sr_hz)
        with self._lock:
            wave = self._cache.get(cache_key)
            if wave is not None:
                self._cache.move_to_end(cache_key)
                return wave
        parts = [_render_region(self._samples, self._regions[preset][i], key, held_s, sr_hz)
                 for i in indices]
        wave = np.zeros(max((len(p) for p in parts), default=0), dtype=np.float32)
        for part in parts:
            wave[:len(part)] += part
        wave.setflags(write=False)
        with self._lock:
            if cache_key not in self._cache:
                self._cache[cache_key] = wave
                self._cache_bytes += wave.nbytes
                while self._cache_bytes > NOTE_CACHE_BYTES and len(self._cache) > 1:
                    _, evicted = self._cache.popitem(last=False)
                    self._cache_bytes -= evicted.nbytes
        return wave


@functools.lru_cache(maxsize=4)
def _load_cached(path: Path) -> SoundFont:
    return SoundFont._parse(path)


def _make_region(gens: dict[int, int], header: np.void, keys: tuple[int, int],
                 vels: tuple[int, int], n_samples: int) -> _Region:
    def offset(fine: int, coarse: int) -> int:
        return gens.get(fine, 0) + 32768 * gens.get(coarse, 0)

    start = int(header["start"]) + offset(_START_OFFSET, _START_COARSE)
    end = int(header["end"]) + offset(_END_OFFSET, _END_COARSE)
    start = min(max(start, 0), n_samples - 2)
    end = min(max(end, start + 1), n_samples - 1)
    loop_start = int(header["loop_start"]) + offset(_LOOP_START_OFFSET, _LOOP_START_COARSE)
    loop_end = int(header["loop_end"]) + offset(_LOOP_END_OFFSET, _LOOP_END_COARSE)
    mode = gens.get(_SAMPLE_MODES, 0) & 3
    if mode == 2 or not start <= loop_start < loop_end <= end:
        mode = 0  # mode 2 is "unused, no loop"; a broken loop cannot be played
    root = gens[_OVERRIDING_ROOT_KEY]
    return _Region(
        key_lo=keys[0], key_hi=keys[1], vel_lo=vels[0], vel_hi=vels[1],
        start=start, end=end, loop_start=loop_start, loop_end=loop_end,
        rate_hz=max(1, int(header["rate"])),
        root_key=root if 0 <= root <= 127 else int(header["pitch"]),
        tune_cents=100.0 * gens.get(_COARSE_TUNE, 0) + gens.get(_FINE_TUNE, 0)
        + int(header["correction"]),
        scale_tuning=gens[_SCALE_TUNING], mode=mode,
        exclusive_class=gens.get(_EXCLUSIVE_CLASS, 0),
        attenuation_cb=float(max(0, gens.get(_INITIAL_ATTENUATION, 0))),
        delay_tc=gens[_DELAY_VOL], attack_tc=gens[_ATTACK_VOL], hold_tc=gens[_HOLD_VOL],
        decay_tc=gens[_DECAY_VOL], sustain_cb=min(max(gens.get(_SUSTAIN_VOL, 0), 0), 1440),
        release_tc=gens[_RELEASE_VOL], key_to_hold=gens.get(_KEY_TO_HOLD, 0),
        key_to_decay=gens.get(_KEY_TO_DECAY, 0),
    )


def _quantise_hold(duration_s: float) -> float:
    """Hold time in seconds on the cache grid: 10 ms steps to 0.1 s, then ratio 1.05."""
    floor_s = 10 * DURATION_STEP_S
    if duration_s <= floor_s:
        return max(1, round(duration_s / DURATION_STEP_S)) * DURATION_STEP_S
    return floor_s * DURATION_RATIO ** round(math.log(duration_s / floor_s)
                                             / math.log(DURATION_RATIO))


def _velocity_gain(velocity: int) -> float:
    """The default velocity-to-attenuation modulator, approximated as 40 log10(v / 127) dB."""
    return (min(max(velocity, 1), 127) / 127.0) ** 2


def _envelope(region: _Region, key: int, held_s: float, n: int, sr_hz: int) -> np.ndarray:
    """Volume envelope (amplitude, 1 = peak) over ``n`` samples; note-off at ``held_s``.

    Attack is linear in amplitude; decay and release are linear in decibels, 100 dB per
    decay/release time, as the specification defines. The envelope is computed every
    :data:`_ENVELOPE_STEP` samples and linearly interpolated in between.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
    """
    delay_s = _timecents_s(region.delay_tc)
    attack_s = max(_timecents_s(region.attack_tc), 1e-6)
    hold_s = _timecents_s(region.hold_tc + region.key_to_hold * (60 - key))
    decay_s = max(_timecents_s(region.decay_tc + region.key_to_decay * (60 - key)), 1e-3)
    release_s = max(_timecents_s(region.release_tc), 1e-3)
    sustain_db = -region.sustain_cb / 10.0

    def level_db(t: np.ndarray) -> np.ndarray:
        after_hold = np.maximum(t - delay_s - attack_s - hold_s, 0.0)
        decay_db = np.maximum(-100.0 * after_hold / decay_s, sustain_db)
        attack = np.clip((t - delay_s) / attack_s, 1e-10, 1.0)
        return np.where(t < delay_s + attack_s, 20.0 * np.log10(attack), decay_db)

    t = np.arange(0, n + _ENVELOPE_STEP, _ENVELOPE_STEP, dtype=np.float64) / sr_hz
    env_db = level_db(t)
    off = t >= held_s
    env_db[off] = level_db(np.array([held_s]))[0] - 100.0 * (t[off] - held_s) / release_s
    control = np.exp(env_db * (np.log(10.0) / 20.0)).astype(np.float32)
    ramp = np.arange(_ENVELOPE_STEP, dtype=np.float32) / _ENVELOPE_STEP
    env = control[:-1, None] + (control[1:] - control[:-1])[:, None] * ramp[None, :]
    return env.ravel()[:n]


def _render_region(samples: np.ndarray, region: _Region, key: int, held_s: float,
                   sr_hz: int) -> np.ndarray:
    """One region's note at unit velocity, resampled by linear interpolation.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        From the onset to the end of the release tail (or of an unlooped sample).
    """
    cents = (key - region.root_key) * region.scale_tuning + region.tune_cents
    step = 2.0 ** (cents / 1200.0) * region.rate_hz / sr_hz  # source samples per output
    release_s = min(_timecents_s(region.release_tc), MAX_RELEASE_S)
    n = int(np.ceil((held_s + release_s) * sr_hz)) + 1
    n_held = int(np.ceil(held_s * sr_hz))
    length = region.end - region.start  # source samples from region.start
    if region.mode == 0 or (region.mode == 3 and n_held < n):
        # The sample runs out: unlooped from the onset, mode 3 after note-off.
        n = min(n, int((length - 1) / step) + (n_held if region.mode == 3 else 0))
    env = _envelope(region, key, held_s, n, sr_hz)
    loud = np.flatnonzero(env > _FLOOR_AMPLITUDE)
    n = int(loud[-1]) + 1 if loud.size else 0
    pos = np.arange(n, dtype=np.float32)
    pos *= np.float32(step)
    if region.mode in (1, 3):
        loop_start = np.float32(region.loop_start - region.start)
        loop_end = region.loop_end - region.start
        first = min(n, int(np.ceil(loop_end / step)))  # first output sample past the loop
        if first < n:  # wrap into the loop (a floor-based modulo: np.mod is slow)
            period = np.float32(loop_end - loop_start)
            tail = pos[first:]
            tail -= loop_start
            tail -= np.floor(tail / period) * period
            tail += loop_start
        if region.mode == 3 and n_held < n:
            # After note-off the sample plays on from where the loop was, to its end.
            pos[n_held:] = pos[n_held] + np.arange(n - n_held, dtype=np.float32) * np.float32(step)
    np.minimum(pos, np.float32(length - 1.001), out=pos)
    index = pos.astype(np.int32)
    pos -= index  # now the fraction between samples
    index += region.start
    wave = np.take(samples, index)
    wave += (np.take(samples, index + 1) - wave) * pos
    wave *= env[:n]
    wave *= np.float32(10.0 ** (-region.attenuation_cb / 200.0))
    fade = min(n, int(_END_FADE_S * sr_hz))
    wave[n - fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return wave
