"""The embedded demo catalogue: a deterministic, labelled corpus of synthesised music.

:func:`make_demo` composes and renders 8 genres x 30 clips (30 s, mono, 22 050 Hz, OGG Vorbis
or FLAC) with the General-MIDI SoundFont player of :mod:`songsim.synth`, and writes ``tracks.csv``
with genre, artist, album, year, emotion (DEAM valence/arousal and Thayer quadrant) and
Spotify-style audio features. It is a research instrument, so it is built to be *hard*:

- **Genres overlap where real ones do.** Rock and metal share distorted guitars, kits and
  tempi; jazz and blues share swing, 7th chords, piano and organ; house and techno share
  four-on-the-floor kits, 120-140 bpm and synths; hip-hop borrows jazz's Rhodes and horns and
  techno's 808; folk shares acoustic guitars with rock and blues.
- **Artists differ within a genre** (three per genre, each a consistent style: instruments,
  tempo centre, keys and modes, swing, density, room) and **albums within an artist** (two
  per artist, years 1955-2020 with an audible era: band-limited, hissy and dynamic before
  the 1990s; full-band and loudly limited after).
- **Emotion cuts across genre.** Each track draws a mood that sets its mode, tempo, density,
  register and level; valence and arousal (DEAM 1-9) are then *computed* from what was
  rendered, plus a little noise, and ``emotion`` is their Thayer quadrant.

Music: drums, bass, harmony and melody follow genre- and artist-typical patterns (rock
backbeat, metal double kick, jazz ride with walking bass, blues shuffle with boogie bass,
house offbeat bass and stabs, techno rolling 16ths, boom-bap swing, waltz and train beats),
progressions (12-bar blues, ii-V-I, power-chord riffs, minor vamps, folk I-IV-V), and
melodies built from motifs that repeat with variation over 4-bar phrases and 8-bar sections.
Each part is rendered on its own bus, levelled, lightly processed (drive, side-chain pump),
mixed into a room (exponentially decaying noise reverb) and mastered for its year.

Determinism: the same ``seed`` gives identical ``tracks.csv`` and identical decoded samples,
whatever ``n_jobs``; every random draw comes from a generator seeded by (seed, genre, track).

Units: times in seconds (``_s``) or beats, tempo in bpm, levels in dB re full scale.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import fft, signal

from songsim.config import CLIP_DURATION_S, SAMPLE_RATE_HZ
from songsim.errors import SongsimError
from songsim.files import atomic_write, read_json, write_json
from songsim.synth import DRUM_BANK, Note, SoundFont

GENERATOR_VERSION = 1  # bump whenever the output changes: a cached demo is then rebuilt
GENRES = ("rock", "metal", "jazz", "blues", "house", "techno", "hiphop", "folk")
ALBUMS_PER_ARTIST = 2
_BUSES = ("drums", "bass", "comp", "lead", "pad")  # rendered and levelled separately
TRACKS_CSV = "tracks.csv"
MANIFEST_JSON = "demo.json"
#: Clip formats: extension -> (soundfile container, subtype).
AUDIO_FORMATS = {"ogg": ("OGG", "VORBIS"), "flac": ("FLAC", "PCM_16")}
COLUMNS = (
    "track_id", "path", "title", "artist", "album", "year", "genre", "valence", "arousal",
    "emotion", "danceability", "energy", "loudness", "mode", "speechiness", "acousticness",
    "instrumentalness", "liveness", "tempo", "time_signature",
)
EMOTION_THRESHOLD = 5.0  # DEAM midpoint: happy V>5,A>5; calm V>5,A<=5; angry V<=5,A>5; sad

ProgressFn = Callable[[int, int, str], None]

# ============================================================================================
# General MIDI vocabulary

#: General-MIDI program numbers of the instruments the styles use.
GM = {
    "piano": 0, "honky_tonk": 3, "epiano": 4, "glockenspiel": 9, "music_box": 10, "vibes": 11,
    "marimba": 12, "tubular_bells": 14, "organ": 16, "perc_organ": 17, "rock_organ": 18,
    "church_organ": 19, "accordion": 21, "harmonica": 22, "nylon_guitar": 24,
    "steel_guitar": 25, "jazz_guitar": 26, "clean_guitar": 27, "overdrive_guitar": 29,
    "distortion_guitar": 30, "acoustic_bass": 32, "finger_bass": 33, "pick_bass": 34,
    "fretless_bass": 35, "synth_bass": 38, "synth_bass2": 39, "violin": 40, "strings": 48,
    "slow_strings": 49, "synth_strings": 50, "choir": 52, "trumpet": 56, "muted_trumpet": 59,
    "synth_brass": 62, "alto_sax": 65, "tenor_sax": 66, "clarinet": 71, "flute": 73,
    "whistle": 78, "square_lead": 80, "saw_lead": 81, "charang": 84, "fifths_lead": 86,
    "warm_pad": 89, "poly_synth": 90, "metal_pad": 93, "halo_pad": 94, "crystal": 98,
    "banjo": 105, "kalimba": 108, "fiddle": 110,
}
#: Drum kits of TimGM6mb.sf2 (bank 128): Standard, Room, Power, Electronic, TR-808, Jazz, Brush.
KITS = {"standard": 0, "room": 8, "power": 16, "electronic": 24, "tr808": 25, "jazz": 32,
        "brush": 40}
#: How acoustic an instrument sounds (1 acoustic, 0 electronic): the basis of acousticness.
_ACOUSTIC = {
    "piano": 1.0, "honky_tonk": 1.0, "epiano": 0.4, "glockenspiel": 1.0, "music_box": 1.0,
    "vibes": 1.0, "marimba": 1.0, "tubular_bells": 1.0, "organ": 0.3, "perc_organ": 0.3,
    "rock_organ": 0.3, "church_organ": 1.0, "accordion": 1.0, "harmonica": 1.0,
    "nylon_guitar": 1.0, "steel_guitar": 1.0, "jazz_guitar": 0.5, "clean_guitar": 0.3,
    "acoustic_bass": 1.0, "finger_bass": 0.3, "pick_bass": 0.3, "fretless_bass": 0.4,
    "violin": 1.0, "strings": 1.0, "slow_strings": 1.0, "choir": 1.0, "trumpet": 1.0,
    "muted_trumpet": 1.0, "alto_sax": 1.0, "tenor_sax": 1.0, "clarinet": 1.0, "flute": 1.0,
    "whistle": 1.0, "banjo": 1.0, "kalimba": 1.0, "fiddle": 1.0,
    "standard": 1.0, "room": 1.0, "power": 0.7, "jazz": 1.0, "brush": 1.0,  # drum kits
}
_VOICE_LIKE = {"choir"}  # instruments that sound like a voice
_DISTORTED = {"overdrive_guitar", "distortion_guitar", "charang"}

# Drum keys (General-MIDI percussion map).
KICK, RIM, SNARE, CLAP, LOW_TOM, HAT, HIGH_FLOOR_TOM, PEDAL_HAT = 36, 37, 38, 39, 41, 42, 43, 44
MID_TOM, OPEN_HAT, HIGH_TOM, CRASH, RIDE, TAMBOURINE, SHAKER = 47, 46, 50, 49, 51, 54, 70

# ============================================================================================
# harmony

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10), "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "major_pent": (0, 2, 4, 7, 9), "minor_pent": (0, 3, 5, 7, 10), "blues": (0, 3, 5, 6, 7, 10),
}
_QUALITIES = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "7": (0, 4, 7, 10), "m7": (0, 3, 7, 10),
    "maj7": (0, 4, 7, 11), "5": (0, 7, 12), "m7b5": (0, 3, 6, 10), "9": (0, 4, 7, 10, 14),
    "m9": (0, 3, 7, 10, 14), "maj9": (0, 4, 7, 11, 14), "sus2": (0, 2, 7),
}
#: Progressions in Roman numerals: one bar per space, chords within a bar split by "-".
PROGRESSIONS = {
    "pop": "I V vi IV", "mixo_rock": "I bVII IV I", "one_four_five": "I IV V IV",
    "doo_wop": "I vi IV V", "power_major": "I5 bVII5 IV5 I5", "arena": "I5 IV5 vi5 V5",
    "blues12": "I7 I7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7",
    "blues12_quick": "I7 IV7 I7 I7 IV7 IV7 I7 I7 V7 IV7 I7 V7",
    "ii_v_i": "ii7 V7 Imaj7 Imaj7", "rhythm_changes": "Imaj7-vi7 ii7-V7 Imaj7-vi7 ii7-V7",
    "iii_vi_ii_v": "iii7 vi7 ii7 V7", "neo_soul": "IVmaj7 iii7 ii7 Imaj7",
    "house_major": "Imaj7 IVmaj7 vi7 V7", "folk_major": "I IV I V",
    "folk_long": "I I IV I I I V I", "country": "I IV V I", "sus_major": "I Isus2 IV I",
    "aeolian": "i bVI bVII i", "andalusian": "i bVII bVI V", "minor_cadence": "i iv v i",
    "power_minor": "i5 bVI5 bVII5 i5", "phrygian_riff": "i5 bII5 i5 bVII5",
    "doom": "i5 i5 bVI5 V5", "minor_blues": "i7 i7 i7 i7 iv7 iv7 i7 i7 bVI7 V7 i7 V7",
    "minor_ii_v_i": "iim7b5 V7 i7 i7", "dorian_vamp": "i7 IV7 i7 IV7",
    "minor_vamp": "i7 iv7 i7 iv7", "minor_ninths": "i9 iv9 i9 bVImaj7",
    "one_chord": "i i i i", "techno_minor": "i i bVI bVII", "trap_minor": "i bVI i bVII",
    "hiphop_minor": "i7 bVImaj7 iv7 V7", "celtic": "i bVII i bVII",
    "folk_minor": "i bVII bVI bVII",
}
_ROMAN = re.compile(r"^(b?)(iii|ii|iv|vii|vi|v|i|III|II|IV|VII|VI|V|I)(.*)$")
_DEGREES = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}


def _parse_chord(token: str) -> tuple[int, tuple[int, ...]]:
    """``"bVII7"`` -> (root semitones above the tonic, chord intervals)."""
    match = _ROMAN.match(token)
    if match is None:
        raise SongsimError(f"demo: cannot parse chord {token!r}; use Roman numerals like bVII7.")
    flat, numeral, suffix = match.groups()
    root = (_DEGREES[numeral.lower()] - (1 if flat else 0)) % 12
    major = numeral.isupper()
    quality = {
        "": "maj" if major else "min", "7": "7" if major else "m7", "5": "5", "m7b5": "m7b5",
        "9": "9" if major else "m9", "maj7": "maj7", "maj9": "maj9", "sus2": "sus2",
    }[suffix]
    return root, _QUALITIES[quality]


@dataclass(frozen=True)
class _Chord:
    start: float  # beats from the start of the clip
    length: float  # beats
    root: int  # pitch class 0-11
    intervals: tuple[int, ...]

    @property
    def pitch_classes(self) -> set[int]:
        return {(self.root + i) % 12 for i in self.intervals}


def _chord_timeline(progression: str, tonic: int, n_bars: int, meter: int) -> list[list[_Chord]]:
    """Chords of each bar: the progression repeated over ``n_bars`` bars."""
    bars = progression.split()
    timeline = []
    for b in range(n_bars):
        tokens = bars[b % len(bars)].split("-")
        length = meter / len(tokens)
        chords = []
        for k, token in enumerate(tokens):
            root, intervals = _parse_chord(token)
            chords.append(_Chord(b * meter + k * length, length, (tonic + root) % 12, intervals))
        timeline.append(chords)
    return timeline


def _place(pitch_class: int, low: int) -> int:
    """The lowest MIDI key of ``pitch_class`` at or above ``low``."""
    return low + (pitch_class - low) % 12


# ============================================================================================
# styles: one per artist


@dataclass(frozen=True)
class _Style:
    """An artist's consistent musical identity (all choices are drawn from these)."""

    naming: str  # which name template the artist gets
    years: tuple[int, int]  # release year of album 1 and album 2
    tempo_bpm: tuple[float, float]
    kits: tuple[str, ...]
    drums: str  # drum pattern family
    bass: tuple[str, ...]  # bass instruments
    bass_style: str
    comp: tuple[str, ...]  # harmony instruments
    comp_style: str
    lead: tuple[str, ...]
    progressions_major: tuple[str, ...]
    progressions_minor: tuple[str, ...]
    scales: tuple[str, str]  # melody scale in major, in minor tracks
    keys: tuple[int, ...]  # preferred tonics (pitch classes)
    moods: tuple[float, float, float, float]  # weights of happy, calm, angry, sad
    meters: tuple[int, ...] = (4,)  # beats per bar, drawn uniformly per track
    swing: float = 0.5  # share of the beat pair taken by the first 8th (0.5 straight)
    swing_unit: float = 0.5  # the swung note value in beats: 0.5 (8ths) or 0.25 (16ths)
    pad: tuple[str, ...] = ()
    lead_register: int = 72  # MIDI key at the centre of the melody
    lead_grid: float = 0.5  # rhythmic grid of the melody in beats
    motif_bars: int = 1
    call_response: bool = False  # melody plays 2 bars, rests 2 (blues)
    legato: float = 0.9
    density: tuple[float, float] = (0.2, 0.9)  # range spanned from calm to aroused tracks
    room: tuple[float, float] = (0.15, 1.0)  # reverb send (0-1), decay RT60 in s
    jitter_ms: float = 8.0
    drive: float = 0.0  # extra tanh drive on guitar buses
    pump: float = 0.0  # side-chain ducking depth on bass and harmony
    lofi: bool = False  # deliberate band-limiting and crackle whatever the year
    drumless: float = 0.0  # probability that a track has no drums
    halftime: bool = False  # the perceived pulse is half the notated tempo
    mix: tuple[float, float, float, float, float] = (0.0, -3.0, -4.0, -2.0, -9.0)
    # bus levels in dB for drums, bass, comp, lead, pad


_STYLES: dict[str, tuple[_Style, ...]] = {
    "rock": (
        _Style("band", (1967, 1979), (118, 152), ("standard",), "rock", ("pick_bass",), "root8",
               ("overdrive_guitar", "rock_organ", "clean_guitar"), "power",
               ("overdrive_guitar", "rock_organ", "harmonica"),
               ("mixo_rock", "one_four_five", "blues12"), ("aeolian", "minor_cadence"),
               ("mixolydian", "minor_pent"), (4, 9, 2, 7), (0.45, 0.1, 0.3, 0.15),
               lead_register=69, room=(0.2, 0.8), jitter_ms=10, drive=1.2),
        _Style("band", (1983, 1991), (108, 142), ("power", "standard"), "rock",
               ("finger_bass", "pick_bass"), "root8", ("distortion_guitar", "overdrive_guitar"),
               "power", ("distortion_guitar", "saw_lead", "overdrive_guitar"),
               ("power_major", "arena", "pop"), ("power_minor", "aeolian"),
               ("major", "minor"), (4, 9, 11, 2), (0.35, 0.1, 0.35, 0.2),
               pad=("synth_strings", "synth_brass"), lead_register=74, room=(0.35, 1.8),
               jitter_ms=5, drive=1.2),
        _Style("band", (1996, 2012), (96, 150), ("room", "standard"), "rock", ("pick_bass",),
               "root8", ("clean_guitar", "steel_guitar", "piano"), "strum",
               ("clean_guitar", "piano", "glockenspiel", "violin"),
               ("pop", "sus_major", "one_four_five"), ("aeolian", "folk_minor"),
               ("major_pent", "minor"), (2, 7, 0, 9), (0.3, 0.25, 0.15, 0.3), meters=(4, 4, 3),
               lead_register=72, room=(0.15, 0.6), jitter_ms=7, motif_bars=2),
    ),
    "metal": (
        _Style("dark", (1976, 1988), (120, 160), ("standard", "power"), "rock", ("pick_bass",),
               "gallop", ("distortion_guitar", "overdrive_guitar"), "power",
               ("overdrive_guitar", "distortion_guitar"), ("power_major", "mixo_rock"),
               ("power_minor", "aeolian", "andalusian"), ("major", "harmonic_minor"),
               (4, 9, 2), (0.15, 0.0, 0.7, 0.15), pad=("synth_strings",), lead_register=76,
               lead_grid=0.25, room=(0.3, 1.5), jitter_ms=5, drive=1.3),
        _Style("dark", (1986, 2001), (146, 192), ("power", "standard"), "metal",
               ("pick_bass", "finger_bass"), "chug16", ("distortion_guitar",), "chug",
               ("distortion_guitar", "overdrive_guitar"), ("power_major",),
               ("phrygian_riff", "power_minor"), ("major", "phrygian"), (4, 6, 2),
               (0.05, 0.0, 0.85, 0.1), lead_register=71, lead_grid=0.25, room=(0.2, 0.9),
               jitter_ms=3, drive=2.0, mix=(0.0, -4.0, -2.0, -4.0, -9.0)),
        _Style("dark", (1971, 2006), (58, 82), ("standard", "room"), "halftime",
               ("pick_bass",), "sustain", ("distortion_guitar", "overdrive_guitar"), "power",
               ("overdrive_guitar", "church_organ", "rock_organ"), ("mixo_rock",),
               ("doom", "power_minor"), ("mixolydian", "minor_pent"), (4, 2, 7),
               (0.0, 0.1, 0.3, 0.6), pad=("church_organ", "slow_strings"), lead_register=64,
               legato=1.0, density=(0.1, 0.6), room=(0.4, 2.2), jitter_ms=9, drive=1.6,
               motif_bars=2),
    ),
    "jazz": (
        _Style("leader", (1956, 1966), (150, 220), ("jazz", "standard"), "swing_ride",
               ("acoustic_bass",), "walking", ("piano", "jazz_guitar"), "charleston",
               ("alto_sax", "trumpet", "tenor_sax"), ("rhythm_changes", "ii_v_i", "iii_vi_ii_v"),
               ("minor_ii_v_i",), ("major", "dorian"), (5, 10, 3, 0), (0.55, 0.2, 0.15, 0.1),
               swing=0.64, lead_register=70, room=(0.2, 1.0), jitter_ms=10,
               density=(0.4, 0.95), mix=(-4.0, -3.0, -5.0, 0.0, -9.0), motif_bars=2),
        _Style("leader", (1959, 1979), (62, 104), ("brush", "jazz"), "brush",
               ("acoustic_bass", "fretless_bass"), "walking", ("piano", "jazz_guitar", "epiano"),
               "block", ("tenor_sax", "muted_trumpet", "vibes", "flute"),
               ("ii_v_i", "iii_vi_ii_v"), ("minor_ii_v_i", "dorian_vamp"),
               ("major", "dorian"), (5, 10, 3, 8), (0.1, 0.45, 0.0, 0.45), meters=(4, 4, 3),
               swing=0.6, lead_register=67, room=(0.3, 1.4), jitter_ms=12, legato=1.0,
               density=(0.15, 0.6), mix=(-6.0, -3.0, -4.0, 0.0, -9.0), motif_bars=2),
        _Style("leader", (1965, 1978), (96, 140), ("standard", "room"), "shuffle",
               ("finger_bass", "acoustic_bass"), "walking", ("perc_organ", "epiano", "piano"),
               "shuffle_comp", ("tenor_sax", "jazz_guitar", "overdrive_guitar"),
               ("blues12", "ii_v_i", "neo_soul"), ("minor_blues", "dorian_vamp"),
               ("mixolydian", "dorian"), (5, 10, 0, 7), (0.4, 0.25, 0.2, 0.15),
               meters=(4, 4, 5), swing=0.6, lead_register=67, room=(0.2, 0.9), jitter_ms=8,
               mix=(-3.0, -3.0, -4.0, 0.0, -9.0)),
    ),
    "blues": (
        _Style("bluesman", (1955, 1966), (68, 104), ("brush", "standard"), "brush",
               ("steel_guitar", "acoustic_bass"), "boogie",
               ("steel_guitar", "piano", "honky_tonk"), "shuffle_comp",
               ("harmonica", "steel_guitar", "clarinet"), ("blues12", "blues12_quick"),
               ("minor_blues",), ("blues", "minor_pent"), (4, 9, 7), (0.15, 0.3, 0.05, 0.5),
               swing=0.66, lead_register=67, call_response=True, room=(0.1, 0.5),
               jitter_ms=14, drumless=0.4, mix=(-6.0, -1.0, -4.0, 0.0, -9.0)),
        _Style("bluesman", (1958, 1972), (96, 132), ("standard", "room"), "shuffle",
               ("finger_bass", "acoustic_bass"), "boogie", ("piano", "clean_guitar", "organ"),
               "shuffle_comp", ("overdrive_guitar", "harmonica", "tenor_sax"),
               ("blues12_quick", "blues12"), ("minor_blues",), ("blues", "minor_pent"),
               (4, 9, 7, 0), (0.4, 0.1, 0.3, 0.2), swing=0.64, lead_register=69,
               call_response=True, room=(0.2, 0.9), jitter_ms=9, drive=0.8),
        _Style("bluesman", (1970, 1993), (58, 120), ("room", "standard"), "shuffle",
               ("pick_bass",), "root8", ("organ", "overdrive_guitar", "epiano"), "pad",
               ("overdrive_guitar", "distortion_guitar"), ("blues12", "mixo_rock"),
               ("minor_blues", "aeolian"), ("blues", "minor_pent"), (4, 9, 2),
               (0.1, 0.15, 0.35, 0.4), swing=0.62, lead_register=67, call_response=True,
               room=(0.3, 1.4), jitter_ms=8, drive=1.2, legato=1.0),
    ),
    "house": (
        _Style("dj", (1987, 1994), (118, 126), ("tr808", "electronic"), "four_floor",
               ("synth_bass", "finger_bass"), "offbeat", ("piano", "organ", "epiano"), "stabs",
               ("choir", "synth_brass", "piano", "strings"), ("house_major", "pop", "doo_wop"),
               ("minor_vamp",), ("major_pent", "minor"), (0, 5, 7, 9), (0.65, 0.1, 0.15, 0.1),
               swing=0.55, swing_unit=0.25, lead_register=72, room=(0.15, 0.8), jitter_ms=2,
               pump=0.3, mix=(0.0, -2.0, -4.0, -4.0, -9.0)),
        _Style("dj", (1996, 2007), (116, 124), ("electronic", "standard"), "four_floor",
               ("finger_bass", "synth_bass2"), "offbeat", ("epiano", "jazz_guitar"), "rhodes",
               ("alto_sax", "vibes", "flute"), ("neo_soul", "house_major"),
               ("minor_ninths", "minor_vamp"), ("major", "dorian"), (2, 9, 5, 0),
               (0.25, 0.45, 0.05, 0.25), swing=0.56, swing_unit=0.25, pad=("warm_pad",),
               lead_register=70, room=(0.3, 1.6), jitter_ms=3, pump=0.35,
               density=(0.15, 0.7), mix=(0.0, -2.0, -4.0, -3.0, -8.0)),
        _Style("dj", (2009, 2018), (124, 130), ("electronic", "tr808"), "four_floor",
               ("synth_bass2", "synth_bass"), "offbeat", ("saw_lead", "poly_synth"), "stabs",
               ("square_lead", "fifths_lead", "saw_lead"), ("pop", "house_major"),
               ("aeolian", "techno_minor"), ("major", "minor"), (1, 6, 8, 10),
               (0.5, 0.0, 0.4, 0.1), pad=("halo_pad", "synth_strings"), lead_register=76,
               lead_grid=0.25, room=(0.25, 1.3), jitter_ms=0, pump=0.6,
               mix=(0.0, -2.0, -3.0, -4.0, -8.0)),
    ),
    "techno": (
        _Style("machine", (1988, 1997), (124, 134), ("electronic", "tr808"), "techno",
               ("synth_bass", "synth_bass2"), "rolling16", ("synth_strings", "poly_synth"),
               "pad", ("poly_synth", "crystal", "square_lead"), ("sus_major",),
               ("techno_minor", "minor_vamp"), ("dorian", "minor"), (0, 5, 7, 9),
               (0.3, 0.2, 0.35, 0.15), lead_register=72, lead_grid=0.25, room=(0.2, 1.2),
               jitter_ms=1, pump=0.2, legato=0.5, mix=(0.0, -3.0, -6.0, -5.0, -9.0)),
        _Style("machine", (2002, 2011), (122, 128), ("electronic", "tr808"), "techno",
               ("synth_bass2",), "offbeat", ("metal_pad", "kalimba", "epiano"), "stabs",
               ("kalimba", "marimba", "crystal"), ("sus_major",), ("one_chord", "techno_minor"),
               ("dorian", "minor_pent"), (2, 7, 9, 4), (0.05, 0.45, 0.2, 0.3),
               pad=("warm_pad",), lead_register=72, lead_grid=0.25, room=(0.3, 1.8),
               jitter_ms=0, pump=0.25, density=(0.05, 0.6), legato=0.4,
               mix=(0.0, -3.0, -7.0, -6.0, -9.0)),
        _Style("machine", (2012, 2020), (132, 146), ("power", "tr808"), "techno",
               ("saw_lead", "synth_bass"), "rolling16", ("charang", "saw_lead",
                                                        "distortion_guitar"),
               "stabs", ("square_lead", "charang"), ("sus_major",),
               ("one_chord", "phrygian_riff"), ("phrygian", "phrygian"), (4, 5, 7),
               (0.0, 0.0, 0.8, 0.2), pad=("synth_strings",), lead_register=67,
               lead_grid=0.25, room=(0.2, 1.0), jitter_ms=0, drive=1.5, pump=0.4, legato=0.5,
               mix=(0.0, -3.0, -5.0, -5.0, -9.0)),
    ),
    "hiphop": (
        _Style("mc", (1991, 1999), (84, 98), ("standard", "room"), "boombap",
               ("acoustic_bass", "finger_bass"), "hiphop", ("epiano", "vibes", "piano"),
               "rhodes", ("muted_trumpet", "alto_sax", "vibes", "flute"),
               ("neo_soul", "iii_vi_ii_v"), ("hiphop_minor", "minor_vamp"),
               ("major", "dorian"), (2, 5, 10, 0), (0.3, 0.2, 0.3, 0.2), swing=0.6,
               swing_unit=0.25, lead_register=70, room=(0.15, 0.8), jitter_ms=5,
               mix=(-1.0, -2.0, -4.0, -3.0, -9.0), motif_bars=2),
        _Style("mc", (2014, 2020), (70, 86), ("brush", "jazz", "room"), "boombap",
               ("finger_bass", "acoustic_bass"), "hiphop", ("epiano", "nylon_guitar", "piano"),
               "rhodes", ("vibes", "flute", "epiano", "tenor_sax"), ("neo_soul", "ii_v_i"),
               ("minor_ninths", "minor_vamp"), ("major_pent", "dorian"), (5, 10, 3, 8),
               (0.1, 0.5, 0.0, 0.4), swing=0.62, swing_unit=0.25, pad=("warm_pad",),
               lead_register=72, room=(0.2, 1.0), jitter_ms=8, lofi=True,
               density=(0.1, 0.6), mix=(-1.0, -2.0, -3.0, -4.0, -10.0), motif_bars=2),
        _Style("mc", (2015, 2020), (132, 150), ("tr808", "electronic"), "trap",
               ("synth_bass",), "trap808", ("choir", "warm_pad", "synth_strings"), "pad",
               ("music_box", "tubular_bells", "glockenspiel", "square_lead"), ("pop",),
               ("trap_minor", "aeolian"), ("major_pent", "harmonic_minor"), (1, 3, 6, 8),
               (0.0, 0.05, 0.6, 0.35), lead_register=79, lead_grid=0.25, room=(0.25, 1.5),
               jitter_ms=0, halftime=True, mix=(0.0, 0.0, -6.0, -5.0, -9.0), motif_bars=2),
    ),
    "folk": (
        _Style("folk", (1958, 1975), (100, 144), ("brush", "standard"), "train",
               ("acoustic_bass",), "root_fifth", ("steel_guitar", "piano"), "strum",
               ("fiddle", "banjo", "harmonica"), ("folk_major", "country", "folk_long"),
               ("folk_minor",), ("major", "dorian"), (7, 2, 9, 0), (0.65, 0.2, 0.05, 0.1),
               meters=(4, 3), lead_register=74, lead_grid=0.25, room=(0.1, 0.5), jitter_ms=12,
               drumless=0.3, mix=(-5.0, -3.0, -2.0, 0.0, -9.0)),
        _Style("songwriter", (1969, 1983), (66, 108), ("brush", "room"), "waltz",
               ("acoustic_bass", "fretless_bass"), "root_fifth",
               ("nylon_guitar", "steel_guitar", "piano"), "fingerpick",
               ("flute", "harmonica", "piano", "clean_guitar"), ("folk_major", "sus_major", "pop"),
               ("folk_minor", "aeolian"), ("major", "minor"), (2, 7, 4, 9),
               (0.2, 0.4, 0.0, 0.4), meters=(4, 3), pad=("strings",), lead_register=72,
               room=(0.2, 1.0), jitter_ms=15, drumless=0.5, legato=1.0, density=(0.1, 0.6),
               mix=(-6.0, -4.0, -1.0, 0.0, -9.0), motif_bars=2),
        _Style("band_folk", (2004, 2016), (92, 150), ("room", "standard"), "stomp",
               ("finger_bass", "acoustic_bass"), "root_fifth", ("steel_guitar", "accordion"),
               "strum", ("fiddle", "whistle", "violin", "banjo"), ("folk_major", "pop"),
               ("celtic", "folk_minor"), ("major", "dorian"), (2, 7, 9, 4),
               (0.45, 0.15, 0.25, 0.15), meters=(4, 3, 3), lead_register=76, lead_grid=0.25,
               room=(0.3, 1.2), jitter_ms=9, mix=(-3.0, -3.0, -2.0, 0.0, -9.0)),
    ),
}

#: How steady and danceable each drum family is (0-1): the basis of danceability.
_REGULARITY = {
    "four_floor": 0.95, "techno": 0.95, "boombap": 0.85, "trap": 0.7, "rock": 0.72,
    "halftime": 0.5, "shuffle": 0.7, "swing_ride": 0.55, "metal": 0.45, "brush": 0.5,
    "train": 0.65, "waltz": 0.45, "stomp": 0.75, "none": 0.2,
}

# ============================================================================================
# names

_WORDS = {
    "adj": ("Velvet", "Silver", "Broken", "Electric", "Hollow", "Golden", "Restless", "Paper",
            "Crimson", "Quiet", "Wild", "Neon", "Lonesome", "Midnight", "Distant", "Painted",
            "Faded", "Burning", "Gentle", "Rusty", "Northern", "Crooked", "Sleepless",
            "Wandering", "Blue", "Amber", "Heavy", "Sunday", "Low", "Bright"),
    "noun": ("Harbour", "Avenue", "River", "Satellite", "Garden", "Mirror", "Engine", "Lantern",
             "Highway", "Orchard", "Signal", "Window", "Horizon", "Letter", "Station", "Season",
             "Shadow", "Current", "Valley", "Compass", "Anthem", "Skyline", "Ember", "Tide",
             "Crossing", "Kingdom", "Parade", "Fever", "Ballroom", "Mountain"),
    "plural": ("Hounds", "Strangers", "Machines", "Sparrows", "Wolves", "Saints", "Drifters",
               "Ramblers", "Lights", "Echoes", "Thieves", "Comets", "Ravens", "Pilots"),
    "dark": ("Iron", "Grave", "Ashen", "Obsidian", "Black", "Serpent", "Storm", "Doom",
             "Blood", "Frost", "Morbid", "Cinder"),
    "dark_noun": ("Sepulchre", "Throne", "Monolith", "Altar", "Legion", "Warhead", "Crypt",
                  "Tyrant", "Abyss", "Hammer", "Gallows", "Covenant"),
    "first": ("Marcus", "Ella", "Otis", "Nina", "Clifford", "Ruby", "Walter", "June", "Lester",
              "Mavis", "Sonny", "Odetta", "Chet", "Etta", "Miles", "Hazel", "Ray", "Lorna",
              "Arlo", "Willa", "Dexter", "Iris"),
    "last": ("Reed", "Holloway", "Jenkins", "Carter", "Whitfield", "Monroe", "Baxter", "Lane",
             "Fairweather", "Dupree", "Calloway", "Hazlett", "Ashby", "Greer", "Sutton",
             "Wilder", "Marsh", "Booker"),
    "nick": ("Big", "Little", "Blind", "Lightnin'", "Smokey", "Slim", "T-Bone", "Memphis"),
    "ensemble": ("Quartet", "Trio", "Quintet", "Sextet", "Group"),
    "machine": ("Substrata", "Unit", "Polygon", "Cortex", "Vector", "Null", "Axis", "Sector",
                "Pulse", "Module", "Circuit", "Kinetic"),
    "mc": ("Solace", "Verse", "Kingpin", "Cipher", "Lowkey", "Prophet", "Smooth", "Dusty",
           "Jinx", "Ruckus", "Slick", "Haze"),
}


def _name(kind: str, rng: np.random.Generator) -> str:
    """A made-up artist name of a genre-typical shape (deterministic for a given rng)."""
    def pick(key: str) -> str:
        words = _WORDS[key]
        return words[int(rng.integers(len(words)))]

    if kind == "band":
        return f"The {pick('adj')} {pick('plural')}"
    if kind == "dark":
        return f"{pick('dark')} {pick('dark_noun')}"
    if kind == "leader":
        return f"{pick('first')} {pick('last')} {pick('ensemble')}"
    if kind == "bluesman":
        return f"{pick('nick')} {pick('first')} {pick('last')}"
    if kind == "dj":
        return f"DJ {pick('first')} {pick('adj')}"
    if kind == "machine":
        return f"{pick('machine')} {int(rng.integers(2, 99))}"
    if kind == "mc":
        return f"MC {pick('mc')}" if rng.random() < 0.5 else f"{pick('mc')} {pick('last')}"
    if kind == "band_folk":
        return f"The {pick('noun')} {pick('plural')}"
    return f"{pick('first')} {pick('last')}"


def _title(rng: np.random.Generator) -> str:
    """A plausible made-up song or album title."""
    templates = ("{adj} {noun}", "{noun} of the {noun2}", "The {adj} {noun}", "{adj} {noun2}s",
                 "{noun} Blues", "Back to the {noun}", "Song for the {noun}",
                 "{adj} and {adj2}")
    template = templates[int(rng.integers(len(templates)))]

    def two(words: tuple[str, ...]) -> tuple[str, str]:
        first = int(rng.integers(len(words)))
        return words[first], words[(first + 1 + int(rng.integers(len(words) - 1))) % len(words)]

    (adj, adj2), (noun, noun2) = two(_WORDS["adj"]), two(_WORDS["noun"])
    return template.format(adj=adj, adj2=adj2, noun=noun, noun2=noun2)


def _unique(draw: Callable[[], str], used: set[str]) -> str:
    """Draw until the result is not in ``used`` (which it then joins)."""
    while True:
        name = draw()
        if name not in used:
            used.add(name)
            return name


# ============================================================================================
# the plan: every choice of every track, made up front in the parent process

MOODS = ("happy", "calm", "angry", "sad")


@dataclass(frozen=True)
class TrackSpec:
    """Everything that determines one clip (picklable; rendered by a worker process).

    Units: tempo in bpm, levels in dB, times in seconds, registers as MIDI keys.
    """

    track_id: str
    genre: str
    genre_index: int
    artist_index: int  # 0-2 within the genre
    number: int  # 1-based within the genre
    seed: int
    title: str
    artist: str
    album: str
    year: int
    mood: str  # the drawn target; the label is computed from what was rendered
    major: bool
    tempo_bpm: float
    meter: int  # beats per bar
    tonic: int  # pitch class
    progression: str
    scale: str
    density: float  # 0-1: how busy every part is
    register_shift: int  # semitones added to the melody register
    level_db: float  # mastering level offset from the era's target
    kit: str
    bass_program: str
    comp_program: str
    lead_program: str
    pad_program: str | None
    drums: str  # drum pattern family ("none": drumless)
    intro_bars: int
    reverb_send: float  # 0-1
    reverb_rt60_s: float
    bus_offsets_db: tuple[float, ...]  # per-track deviation from the artist's bus levels
    eq_low_db: float  # the album's production: low shelf (below ~150 Hz) gain
    eq_high_db: float  # ... and high shelf (above ~3 kHz) gain


def _allocate(weights: tuple[float, ...], n: int, rng: np.random.Generator) -> list[int]:
    """``n`` category indices in proportion to ``weights`` (largest remainder), shuffled."""
    share = np.asarray(weights, dtype=float) / sum(weights) * n
    counts = np.floor(share).astype(int)
    remainder = share - counts
    for k in np.argsort(-remainder, kind="stable")[: n - int(counts.sum())]:
        counts[k] += 1
    order = np.repeat(np.arange(len(weights)), counts)
    return [int(k) for k in rng.permutation(order)]


def plan_catalogue(*, seed: int = 0, tracks_per_genre: int = 30) -> list[TrackSpec]:
    """Every track of the demo catalogue, decided up front (no audio).

    Track ``j`` of a genre goes to artist ``j % 3`` and to that artist's album
    ``(j // 3) % 2``, so every artist and album is represented as soon as there are 6 tracks.

    Parameters
    ----------
    seed : int, keyword-only
        Seed of every random choice.
    tracks_per_genre : int, keyword-only
        Clips per genre (at least 1).

    Returns
    -------
    list of TrackSpec [length=len(GENRES) * tracks_per_genre]
        In ``track_id`` order.
    """
    if tracks_per_genre < 1:
        raise SongsimError(f"demo: tracks_per_genre must be at least 1, got {tracks_per_genre}.")
    used_names: set[str] = set()  # artists, albums and titles are unique in the catalogue
    specs = []
    for g, genre in enumerate(GENRES):
        styles = _STYLES[genre]
        names = np.random.default_rng([seed, g, 0x5EED])
        artists = [_unique(lambda: _name(style.naming, names), used_names) for style in styles]
        albums = [[_unique(lambda: _title(names), used_names) for _ in range(ALBUMS_PER_ARTIST)]
                  for _ in styles]
        slots = [(j % len(styles), (j // len(styles)) % ALBUMS_PER_ARTIST)
                 for j in range(tracks_per_genre)]
        moods = {}
        for a, style in enumerate(styles):
            mine = [j for j, (artist, _) in enumerate(slots) if artist == a]
            allocation = _allocate(style.moods, len(mine), np.random.default_rng([seed, g, a]))
            moods.update({j: MOODS[k] for j, k in zip(mine, allocation)})
        order = sorted(range(tracks_per_genre), key=lambda j: (slots[j], j))
        for number, j in enumerate(order, start=1):
            a, album = slots[j]
            rng = np.random.default_rng([seed, g, j, 1])
            production = np.random.default_rng([seed, g, a, album, 7]).uniform(-4.0, 4.0, 2)
            specs.append(_plan_track(
                styles[a], rng, track_id=f"{genre}-{number:04d}", genre=genre, genre_index=g,
                artist_index=a, number=number, seed=seed,
                title=_unique(lambda: _title(rng), used_names), artist=artists[a],
                album=albums[a][album], year=styles[a].years[album] + int(rng.integers(0, 2)),
                mood=moods[j], eq_low_db=float(production[0] + rng.normal(0.0, 1.0)),
                eq_high_db=float(production[1] + rng.normal(0.0, 1.0))))
    return specs


def _plan_track(style: _Style, rng: np.random.Generator, *, mood: str, **identity) -> TrackSpec:
    """Draw one track's musical parameters from its artist's style and its mood."""
    positive = mood in ("happy", "calm")  # valence side
    aroused = mood in ("happy", "angry")  # arousal side
    major = positive if rng.random() < 0.9 else not positive

    def choice(options: tuple) -> object:
        return options[int(rng.integers(len(options)))]

    lo, hi = style.tempo_bpm
    span = (0.45, 1.0) if aroused else (0.0, 0.55)
    tempo = round(lo + (hi - lo) * rng.uniform(*span))
    dlo, dhi = style.density
    density = dlo + (dhi - dlo) * rng.uniform(*((0.5, 1.0) if aroused else (0.0, 0.5)))
    drums = "none" if rng.random() < style.drumless else style.drums
    meter = int(choice(style.meters))
    if drums == "train" and meter == 3:
        drums = "waltz"
    progression = choice(style.progressions_major if major else style.progressions_minor)
    if meter == 3 and len(PROGRESSIONS[progression].split()) == 12:
        meter = 4  # a 12-bar blues in 3/4 is not idiomatic
    send, rt60 = style.room
    return TrackSpec(
        **identity, mood=mood, major=major, tempo_bpm=float(tempo), meter=meter,
        tonic=int(choice(style.keys)), progression=progression,
        scale=style.scales[0 if major else 1], density=float(density),
        register_shift=int(rng.integers(0, 6) if positive else -rng.integers(0, 6)),
        level_db=float(rng.uniform(0.0, 2.5) if aroused else rng.uniform(-4.0, -1.0)),
        kit=str(choice(style.kits)), bass_program=str(choice(style.bass)),
        comp_program=str(choice(style.comp)), lead_program=str(choice(style.lead)),
        pad_program=str(choice(style.pad)) if style.pad and rng.random() < 0.7 else None,
        drums=drums, intro_bars=int(choice((0, 0, 2, 4))),
        reverb_send=float(send * rng.uniform(0.7, 1.3)),
        reverb_rt60_s=float(rt60 * rng.uniform(0.8, 1.2)),
        bus_offsets_db=tuple(float(v) for v in rng.normal(0.0, 2.5, len(_BUSES))),
    )


def _style(spec: TrackSpec) -> _Style:
    return _STYLES[spec.genre][spec.artist_index]


# ============================================================================================
# composition: events in beats

# (bank, program, key, velocity, onset in beats, length in beats)
_Event = tuple[int, int, int, int, float, float]

_FILLS = {"rock", "shuffle", "halftime", "metal", "stomp", "four_floor", "techno",
          "swing_ride", "brush"}
_CRASHES = {"rock", "shuffle", "halftime", "metal", "stomp", "four_floor", "techno", "trap"}
_DRUM_LENGTH_S = {HAT: 0.08, PEDAL_HAT: 0.08, OPEN_HAT: 0.35, CRASH: 2.5, RIDE: 1.2,
                  SHAKER: 0.1, TAMBOURINE: 0.2}


class _Composer:
    """Writes the parts of one track: lists of events in beats, bus by bus."""

    def __init__(self, spec: TrackSpec) -> None:
        self.spec = spec
        self.style = _style(spec)
        self.rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 3])
        self.meter = spec.meter
        beats = CLIP_DURATION_S * spec.tempo_bpm / 60.0
        self.n_bars = int(math.ceil(beats / self.meter)) + 1
        self.total_beats = self.n_bars * self.meter
        progression = PROGRESSIONS[spec.progression]
        self.section_bars = 12 if len(progression.split()) == 12 else 8
        self.timeline = _chord_timeline(progression, spec.tonic, self.n_bars, self.meter)
        self.density = spec.density
        self.dynamics = 0.8 + 0.3 * spec.density  # velocity scale of every part

    # ----------------------------------------------------------------------------- helpers
    def section(self, bar: int) -> int:
        """-1 for the intro, else the index of the (8- or 12-bar) section."""
        intro = self.spec.intro_bars
        return -1 if bar < intro else (bar - intro) // self.section_bars

    def bar_in_section(self, bar: int) -> int:
        """Position of ``bar`` within its section (0-based)."""
        return (bar - self.spec.intro_bars) % self.section_bars

    def velocity(self, base: float) -> int:
        """A MIDI velocity: ``base`` scaled by the track's dynamics, humanised."""
        return min(127, max(1, round(base * self.dynamics + self.rng.normal(0.0, 4.0))))

    def chord_at(self, beat: float) -> _Chord:
        """The chord sounding at ``beat``."""
        bar = min(int(beat // self.meter), self.n_bars - 1)
        chords = self.timeline[bar]
        return next((c for c in reversed(chords) if c.start <= beat + 1e-9), chords[0])

    def pick(self, options: tuple):
        """One of ``options``, drawn from the track's generator."""
        return options[int(self.rng.integers(len(options)))]

    # ------------------------------------------------------------------------------- drums
    def _drum_bar(self, family: str) -> list[tuple[float, int, float]]:
        """One bar of the track's groove as (beat, drum key, base velocity); drawn once."""
        m, d, rng = self.meter, self.density, self.rng
        beats = np.arange(m, dtype=float)
        down = [0.0] if m == 3 else [b for b in beats if b % 2 == 0]
        back = [1.0, 2.0] if m == 3 else [b for b in beats if b % 2 == 1]
        hits: list[tuple[float, int, float]] = []
        if family in ("rock", "shuffle", "stomp"):
            hits += [(b, KICK, 105) for b in (beats if family == "stomp" else down)]
            if family == "rock" and m == 4 and d > 0.55:
                hits.append((2.5, KICK, 85))
            hits += [(b, CLAP if family == "stomp" else SNARE, 80 if m == 3 else 108)
                     for b in back]
            step = 0.25 if family == "rock" and d > 0.75 else 0.5
            cymbal = TAMBOURINE if family == "stomp" else HAT
            hits += [(t, cymbal, 88 if t % 1 == 0 else 62) for t in np.arange(0, m, step)]
        elif family == "halftime":
            hits += [(0.0, KICK, 110), (m / 2, SNARE, 115)]
            if d > 0.4:
                hits.append((1.5 if m == 4 else m - 0.5, KICK, 85))
            step = 0.5 if d > 0.35 else 1.0
            hits += [(t, HAT, 80 if t % 1 == 0 else 60) for t in np.arange(0, m, step)]
        elif family == "metal":
            step = 0.25 if d > 0.5 else 0.5
            hits += [(t, KICK, 96) for t in np.arange(0, m, step)]
            hits += [(b, SNARE, 115) for b in back]
            hits += [(b, CRASH if d > 0.8 else RIDE, 85) for b in beats]
        elif family == "swing_ride":
            hits += [(b, RIDE, 88) for b in beats] + [(b + 0.5, RIDE, 70) for b in back]
            hits += [(b, PEDAL_HAT, 70) for b in back] + [(b, KICK, 28) for b in beats]
        elif family == "brush":
            hits += [(t, SNARE, 48 if t in back else 32) for t in np.arange(0, m, 0.5)]
            hits += [(0.0, KICK, 55)] + [(b, PEDAL_HAT, 55) for b in back]
        elif family in ("four_floor", "techno"):
            hits += [(b, KICK, 112) for b in beats]
            offbeat = OPEN_HAT if family == "four_floor" or d > 0.7 else HAT
            hits += [(b + 0.5, offbeat, 72 if offbeat == OPEN_HAT else 85) for b in beats]
            if d > 0.35:
                hits += [(b + q, HAT, 48) for b in beats for q in (0.25, 0.75)]
            if family == "four_floor" or d > 0.55:
                hits += [(b, CLAP, 95) for b in back]
            if family == "techno":
                grid = np.arange(0, m, 0.25)
                rims = rng.choice(grid, size=3 + int(3 * d), replace=False)
                hits += [(float(t), RIM, 72) for t in sorted(rims)]
            elif d > 0.75:
                hits += [(t, SHAKER, 45) for t in np.arange(0, m, 0.25)]
        elif family == "boombap":
            kicks = self.pick(((0.0, 1.75, 2.5), (0.0, 0.75, 2.25, 2.5), (0.0, 2.5, 2.75),
                               (0.0, 1.5, 2.25)))
            hits += [(k, KICK, 112) for k in kicks if k < m] + [(b, SNARE, 116) for b in back]
            step = 0.25 if d > 0.55 else 0.5
            hits += [(t, HAT, 82 if t % 0.5 == 0 else 55) for t in np.arange(0, m, step)]
        elif family == "trap":
            kicks = self.pick(((0.0, 0.75, 2.5), (0.0, 1.75, 2.25, 3.5), (0.0, 0.5, 2.75)))
            hits += [(k, KICK, 115) for k in kicks if k < m]
            hits += [(m / 2, CLAP, 112), (m / 2, SNARE, 80)]
            hits += [(t, HAT, 78 if t % 0.5 == 0 else 58) for t in np.arange(0, m, 0.25)]
        elif family == "train":
            hits += [(t, SNARE, 72 if t % 1 == 0.5 else 34) for t in np.arange(0, m, 0.25)]
            hits += [(b, KICK, 85) for b in down]
        elif family == "waltz":
            hits += [(0.0, KICK, 80)] + [(b, SNARE, 46) for b in beats[1:]]
            hits += [(b, RIDE, 50) for b in beats]
        return hits

    def drums(self) -> list[_Event]:
        """The kit: the groove bar repeated, with comping, rolls, fills and crashes."""
        family = self.spec.drums
        if family == "none":
            return []
        kit, m, rng = KITS[self.spec.kit], self.meter, self.rng
        groove = self._drum_bar(family)
        breakdown = family in ("four_floor", "techno") and rng.random() < 0.5
        beats_per_s = self.spec.tempo_bpm / 60.0
        events: list[_Event] = []
        for bar in range(self.n_bars):
            section, k = self.section(bar), self.bar_in_section(bar)
            hits = list(groove)
            if section % 2 == 1 and family in ("rock", "shuffle", "halftime"):
                hits = [(t, RIDE if key == HAT else key, v) for t, key, v in hits]
            if breakdown and section % 2 == 1 and k < 4:
                hits = [h for h in hits if h[1] != KICK]
            if family == "swing_ride":  # comping on snare and kick, new every bar
                slots = np.arange(0.5, m, 0.5)
                chosen = slots[rng.random(len(slots)) < 0.1 + 0.25 * self.density]
                hits += [(float(t), self.pick((SNARE, SNARE, KICK)), 52) for t in chosen]
            if family == "trap":  # hi-hat rolls
                roll_beat = float(rng.integers(m))
                if rng.random() < 0.5:
                    hits = [h for h in hits
                            if not (h[1] == HAT and roll_beat <= h[0] < roll_beat + 1)]
                    division = self.pick((6, 8))
                    hits += [(roll_beat + i / division, HAT, 50 + 6 * i) for i in range(division)]
            last_bar = ((section >= 0 and k == self.section_bars - 1)
                        or bar == self.spec.intro_bars - 1)
            if last_bar and family in _FILLS and self.density > 0.25:
                hits = self._fill(hits, family)
            if section >= 0 and k == 0 and family in _CRASHES:
                hits += [(0.0, CRASH, 100), (0.0, KICK, 105)]
            for t, key, v in hits:
                length = _DRUM_LENGTH_S.get(key, 0.5) * beats_per_s
                events.append((DRUM_BANK, kit, key, self.velocity(v), bar * m + t, length))
        return events

    def _fill(self, hits: list, family: str) -> list:
        """Replace the end of the bar by a fill: toms, a snare roll, or swung snare hits."""
        m = self.meter
        fill_beats = 2.0 if self.density > 0.7 and family in ("rock", "metal", "stomp") else 1.0
        start = m - fill_beats
        kept = [h for h in hits if h[0] < start or h[1] in (KICK, HAT, RIDE, PEDAL_HAT)]
        kept = [h for h in kept if h[0] < start or h[1] == KICK]
        steps = np.arange(start, m, 0.25)
        if family in ("four_floor", "techno"):
            return kept + [(float(t), CLAP if family == "four_floor" else SNARE,
                            60 + 40 * (t - start) / fill_beats) for t in steps]
        if family in ("swing_ride", "brush"):
            return kept + [(float(t), SNARE, 70) for t in np.arange(start, m, 0.5)]
        toms = (HIGH_TOM, HIGH_TOM, MID_TOM, MID_TOM, LOW_TOM, LOW_TOM, HIGH_FLOOR_TOM, SNARE)
        return kept + [(float(t), toms[int(i * len(toms) / len(steps))], 100)
                       for i, t in enumerate(steps)]

    # -------------------------------------------------------------------------------- bass
    def bass(self) -> list[_Event]:
        """The bass line, following the chords in the artist's idiom."""
        style, m, d = self.style.bass_style, self.meter, self.density
        program = GM[self.spec.bass_program]
        low = 40 if "guitar" in self.spec.bass_program else 28
        events: list[_Event] = []

        def add(key: int, beat: float, length: float, vel: float) -> None:
            if beat < self.total_beats:
                events.append((0, program, int(key), self.velocity(vel), beat, length))

        riff_mask = self.rng.random(16) < 0.55 + 0.4 * d  # for syncopated styles
        for bar in range(self.n_bars):
            for chord in self.timeline[bar]:
                root = _place(chord.root, low)
                third = root + (3 if 3 in chord.intervals else 4)
                fifth = root + (6 if 6 in chord.intervals else 7)
                seventh = root + (11 if 11 in chord.intervals else 10)
                t0, n = chord.start, chord.length
                nxt = self.chord_at(t0 + n)
                if style == "root8":
                    for i, t in enumerate(np.arange(t0, t0 + n, 0.5)):
                        key = root + 12 if d > 0.6 and i % 4 == 3 else root
                        if t >= t0 + n - 0.5 and d > 0.4 and nxt.root != chord.root:
                            key = _place(nxt.root, low) - self.pick((1, 2, -1, 5))
                        add(key, t, 0.45, 96 if t % 1 == 0 else 84)
                elif style == "chug16":
                    for t in np.arange(t0, t0 + n, 0.25):
                        add(root, t, 0.2, 100 if t % 1 == 0 else 80)
                elif style == "gallop":
                    for b in np.arange(t0, t0 + n, 1.0):
                        for q, v in ((0.0, 100), (0.5, 82), (0.75, 82)):
                            add(root, b + q, 0.22, v)
                elif style == "root_fifth":
                    step = 1.0 if d > 0.5 or m == 3 else 2.0
                    for i, t in enumerate(np.arange(t0, t0 + n, step)):
                        if m == 3 and i > 0 and d < 0.5:
                            break
                        key = root if i % 2 == 0 else fifth - 12 if fifth - 12 >= low else fifth
                        add(key, t, step * 0.85, 92)
                elif style == "walking":
                    line = self._walk(chord, nxt, root, third, fifth, seventh, low)
                    if d < 0.3:  # ballad "two feel": half notes
                        line = line[::2]
                    step = n / len(line)
                    for i, key in enumerate(line):
                        add(key, t0 + i * step, step * 0.92, 92 if i == 0 else 80)
                elif style == "boogie":
                    sixth = root + 9
                    figure = (root, third, fifth, sixth, seventh, sixth, fifth, third)
                    for i, t in enumerate(np.arange(t0, t0 + n, 0.5)):
                        add(figure[i % 8], t, 0.45, 94 if t % 1 == 0 else 78)
                elif style == "offbeat":
                    for i, b in enumerate(np.arange(t0, t0 + n, 1.0)):
                        add(root + (12 if d > 0.6 and i % 2 else 0), b + 0.5, 0.35, 100)
                        if d > 0.8:
                            add(root, b + 0.75, 0.2, 80)
                elif style == "rolling16":
                    for b in np.arange(t0, t0 + n, 1.0):
                        for q in (0.25, 0.5, 0.75):
                            add(root + (12 if q == 0.5 and d > 0.5 else 0), b + q, 0.2,
                                96 if q == 0.5 else 82)
                elif style == "hiphop":
                    for i, t in enumerate(np.arange(t0, t0 + n, 0.25)):
                        slot = int(round((t % 4) * 4)) % 16
                        if slot in (0, 6, 10, 11) and riff_mask[slot] or slot == 0:
                            add(root if slot != 11 else fifth, t, 0.7, 100 if slot == 0 else 84)
                elif style == "trap808":
                    for t in (t0, t0 + 1.75, t0 + 2.5):
                        if t < t0 + n:
                            add(root if t == t0 else self.pick((root, root + 12, fifth)),
                                t, 1.2 if t == t0 else 0.6, 110)
                elif style == "sustain":
                    add(root, t0, n * 0.98, 100)
                    if d > 0.4 and n >= 2:
                        add(root, t0 + n / 2 + 0.5, n / 2 - 0.6, 85)
        return events

    def _walk(self, chord: _Chord, nxt: _Chord, root: int, third: int, fifth: int,
              seventh: int, low: int) -> list[int]:
        """A walking-bass line over one chord: chord tones, then a chromatic approach."""
        n = max(1, int(round(chord.length)))
        if n == 1:
            return [root]
        target = _place(nxt.root, low)
        approach = target + self.pick((-1, 1, -2 if nxt.root != chord.root else 2))
        up = self.rng.random() < 0.5
        tones = [root, third, fifth, seventh] if up else [root + 12, seventh, fifth, third]
        line = tones[: n - 1] + [approach]
        return [k - 12 if k > low + 19 else k for k in line]

    # ----------------------------------------------------------------------------- harmony
    def _voicing(self, chord: _Chord, low: int, size: int, previous: list[int]) -> list[int]:
        """Close voicing of ``size`` chord tones at or above ``low``, near ``previous``."""
        pcs = list(dict.fromkeys((chord.root + i) % 12 for i in chord.intervals))[:size]
        best: list[int] = []
        best_cost = math.inf
        for rotation in range(len(pcs)):
            keys, floor = [], low
            for pc in pcs[rotation:] + pcs[:rotation]:
                keys.append(_place(pc, floor))
                floor = keys[-1] + 1
            cost = abs(np.mean(keys) - np.mean(previous)) if previous else rotation
            if cost < best_cost:
                best, best_cost = keys, cost
        return best

    def comp(self) -> list[_Event]:
        """The harmony instrument: voiced chords in the artist's rhythm (silent in the intro
        when the intro has drums)."""
        style, m, d = self.style.comp_style, self.meter, self.density
        program = GM[self.spec.comp_program]
        strum_beats = 0.012 * self.spec.tempo_bpm / 60.0  # 12 ms between strings
        events: list[_Event] = []
        previous: list[int] = []
        stab_rhythm = self.pick(((0.5, 1.5, 2.5, 3.5), (0.0, 0.75, 1.5, 2.5, 3.25),
                                 (0.5, 1.75, 2.5, 3.75), (1.5, 3.5)))
        chug_mask = self.rng.random(16) < 0.6 + 0.3 * d
        rhodes_rhythm = self.pick(((0.0, 1.5, 2.75), (0.0, 2.5), (0.0, 0.75, 2.0, 3.5)))

        def add(keys: Iterable[int], beat: float, length: float, vel: float,
                spread: float = 0.0) -> None:
            for i, key in enumerate(keys):
                if beat + i * spread < self.total_beats:
                    events.append((0, program, int(key), self.velocity(vel - 3 * i * (spread > 0)),
                                   beat + i * spread, length))

        for bar in range(self.n_bars):
            intro = self.section(bar) < 0
            if intro and self.spec.drums != "none":
                continue  # the intro is drums and bass
            for chord in self.timeline[bar]:
                t0, n = chord.start, chord.length
                if style in ("power", "chug"):
                    root = _place(chord.root, 40)
                    power = [root, root + 7, root + 12]
                    if style == "chug":
                        add(power, t0, 0.9, 105)
                        for t in np.arange(t0 + 1, t0 + n, 0.25):
                            if chug_mask[int(round((t % 4) * 4)) % 16]:
                                add(power[:2], t, 0.18, 96 if t % 1 == 0 else 84)
                    elif d >= 0.5:
                        for t in np.arange(t0, t0 + n, 0.5):
                            accent = t % 1 == 0
                            add(power, t, 0.4 if accent else 0.3, 100 if accent else 85)
                    else:
                        add(power, t0, n * 0.97, 100)
                elif style in ("strum", "fingerpick"):
                    root = _place(chord.root, 40)
                    shape = sorted({0, 7, 12} | {12 + i for i in chord.intervals
                                                 if i % 12 not in (0, 7)})
                    voicing = [root + i for i in shape[:6]]
                    if style == "fingerpick":
                        for b in np.arange(t0, t0 + n, 1.0):
                            thumb = voicing[0] if (b - t0) % 2 == 0 else voicing[1]
                            add([thumb], b, 1.6, 84)
                            add([voicing[-1 - int(b % 2)]], b + 0.5, 1.2, 70)
                        add(voicing[2:], t0, n, 64, strum_beats * 2)
                    else:
                        if m == 3:
                            rhythm = (0.0, 1.0, 2.0) if d < 0.6 else (0.0, 1.0, 1.5, 2.0, 2.5)
                        elif d < 0.35:
                            rhythm = (0.0, 2.0)
                        else:
                            rhythm = (0.0, 1.0, 1.5, 2.5, 3.0, 3.5)
                        hits = [t0 + r for r in rhythm if r < n]
                        for i, t in enumerate(hits):
                            length = (hits[i + 1] if i + 1 < len(hits) else t0 + n) - t
                            if t % 1 == 0:
                                add(voicing, t, length, 88, strum_beats)
                            else:
                                add(voicing[:-5:-1], t, length, 66, strum_beats)
                elif style == "block":
                    previous = self._voicing(chord, 57, 4, previous)
                    add([_place(chord.root, 36)] + previous, t0, n * 0.97, 80)
                    if d > 0.4 and n >= 2:
                        add(previous, t0 + n / 2, n / 2 * 0.95, 68)
                elif style == "charleston":
                    shell = [i for i in chord.intervals if i not in (0, 7)] + [14]
                    keys = [_place((chord.root + i) % 12, 55) for i in shell[:3]]
                    rhythm = self.pick(((0.0, 1.5), (0.0,), (1.5, 3.0), (0.5, 2.0), (2.5,),
                                        (1.0, 3.5), (0.0, 2.5)))
                    for r in rhythm:
                        if r < n:
                            add(sorted(keys), t0 + r, 0.5 if r % 1 else 0.7, 78)
                elif style == "shuffle_comp":
                    previous = self._voicing(chord, 55, 3, previous)
                    for t in np.arange(t0, t0 + n, 0.5):
                        if t % 1 == 0 and (t - t0) == 0 and d < 0.5:
                            continue
                        add(previous, t, 0.4, 85 if t % 2 == 1 else 70)
                elif style == "stabs":
                    previous = self._voicing(chord, 58, 4, previous)
                    for r in stab_rhythm:
                        if r < n and (d > 0.3 or r % 1 == 0.5):
                            add(previous, t0 + r, 0.3, 92)
                elif style == "rhodes":
                    previous = self._voicing(chord, 55, 5, previous)
                    for i, r in enumerate(rhodes_rhythm):
                        if r < n:
                            nxt = rhodes_rhythm[i + 1] if i + 1 < len(rhodes_rhythm) else n
                            add(previous, t0 + r, min(nxt, n) - r, 80 if i == 0 else 66,
                                0.01 * self.spec.tempo_bpm / 60)
                elif style == "pad":
                    previous = self._voicing(chord, 55, 4, previous)
                    add(previous, t0, n * 0.99, 75)
        return events

    def pad(self) -> list[_Event]:
        """Sustained chords on a pad (only for tracks that have one)."""
        if self.spec.pad_program is None:
            return []
        program = GM[self.spec.pad_program]
        events: list[_Event] = []
        previous: list[int] = []
        for bar in range(self.n_bars):
            for chord in self.timeline[bar]:
                previous = self._voicing(chord, 60, 4, previous)
                events += [(0, program, k, self.velocity(70), chord.start, chord.length * 0.99)
                           for k in previous]
        return events

    # ------------------------------------------------------------------------------ melody
    def _motif(self, length_beats: float, grid: float) -> list[tuple[float, float, int]]:
        """A motif: (onset, length, scale degree) with onsets on ``grid`` over ``length``."""
        rng, d = self.rng, self.density
        slots = np.arange(0.0, length_beats, grid)
        p = 0.2 + 0.6 * d
        probability = np.where(slots % 1 == 0, p + 0.15, np.where(slots % 0.5 == 0, p, 0.6 * p))
        onsets = slots[rng.random(len(slots)) < probability]
        if rng.random() < 0.5:  # breathe before the next motif
            onsets = onsets[onsets < length_beats - 1]
        start = 0.5 if rng.random() < 0.25 else 0.0  # sometimes a syncopated entry
        onsets = np.union1d(onsets[onsets > start], [start])
        if len(onsets) < 3:
            onsets = np.union1d(onsets, [start, 1.0, 1.5])
        ends = np.append(onsets[1:], min(onsets[-1] + 2.0, length_beats))
        degree = int(self.pick((0, 2, 4, 7)))
        motif = []
        for onset, end in zip(onsets, ends):
            motif.append((float(onset), float(end - onset), degree))
            degree = int(np.clip(degree + self.pick((-2, -1, -1, 0, 1, 1, 2, 3, -3)), -3, 10))
        return motif

    def lead(self) -> list[_Event]:
        """The melody: two motifs (A and B sections), repeated within 4-bar phrases with a
        sequence step, a varied answer phrase and a cadence on the tonic or fifth."""
        style, m, rng = self.style, self.meter, self.rng
        scale = SCALES[self.spec.scale]
        centre = style.lead_register + self.spec.register_shift
        tonic_key = _place(self.spec.tonic, centre - 8)
        program = GM[self.spec.lead_program]
        grid = style.lead_grid if self.density > 0.35 else 0.5
        span = style.motif_bars
        motifs = [self._motif(span * m, grid) for _ in range(2)]
        sequence_step = int(self.pick((1, -1, 2)))
        events: list[_Event] = []
        for bar in range(self.spec.intro_bars, self.n_bars, span):
            section, k = self.section(bar), self.bar_in_section(bar)
            if style.call_response and k % 4 >= 2:
                continue
            position = (k % 4) // span  # motif instance within the 4-bar phrase
            notes = list(motifs[section % 2])
            shift = 2 if section % 2 else 0  # the B section sits higher
            if position == 1:
                shift += sequence_step
            if position == 4 // span - 1 or (style.call_response and k % 4 == 2 - span):
                # cadence: the motif's first half, then a long note on the tonic or fifth
                half = span * m / 2
                notes = [nt for nt in notes if nt[0] < half]
                final = 0 if (k // 4) % 2 else 4
                notes.append((half, span * m - half - 0.5, final - shift))
            elif (k // 4) % 2 == 1 and len(notes) > 2:  # answer phrase: vary one note
                i = int(rng.integers(1, len(notes)))
                onset, length, degree = notes[i]
                notes[i] = (onset, length, degree + int(self.pick((-2, -1, 1, 2))))
            for onset, length, degree in notes:
                beat = bar * m + onset
                if beat >= self.total_beats:
                    break
                degree += shift
                key = tonic_key + scale[degree % len(scale)] + 12 * (degree // len(scale))
                if onset % 1 == 0:
                    key = self._snap(key, self.chord_at(beat))
                while key > centre + 12:
                    key -= 12
                while key < centre - 12:
                    key += 12
                accent = 96 if onset % 1 == 0 else 86
                events.append((0, program, key, self.velocity(accent), beat,
                               max(0.1, length * style.legato)))
        return events

    @staticmethod
    def _snap(key: int, chord: _Chord) -> int:
        """The chord tone nearest to ``key`` (strong beats land on the harmony)."""
        pcs = chord.pitch_classes
        for delta in (0, -1, 1, -2, 2, -3, 3):
            if (key + delta) % 12 in pcs:
                return key + delta
        return key


def _swung(beat: float, swing: float, unit: float) -> float:
    """Onset in straight beats -> swung beats: the first of each note pair takes
    ``swing`` of the pair (0.5 straight, 0.67 triplet feel)."""
    pair = 2 * unit
    base = math.floor(beat / pair) * pair
    offset = beat - base
    if offset < unit:
        return base + offset * 2 * swing
    return base + 2 * swing * unit + (offset - unit) * 2 * (1 - swing)


def compose(spec: TrackSpec) -> dict[str, list[Note]]:
    """The notes of one track, bus by bus.

    Parameters
    ----------
    spec : TrackSpec
        The track (see :func:`plan_catalogue`).

    Returns
    -------
    dict[str, list of Note]
        Keys ``drums``, ``bass``, ``comp``, ``lead``, ``pad`` (some may be empty); onsets and
        durations in seconds, swing and humanised timing applied.
    """
    composer = _Composer(spec)
    style = composer.style
    beat_s = 60.0 / spec.tempo_bpm
    timing = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 4])
    parts = {"drums": composer.drums(), "bass": composer.bass(), "comp": composer.comp(),
             "lead": composer.lead(), "pad": composer.pad()}
    buses: dict[str, list[Note]] = {}
    for bus, events in parts.items():
        jitter_s = style.jitter_ms / 1000.0 * (0.5 if bus == "drums" else 1.0)
        notes = []
        for bank, program, key, velocity, beat, length in events:
            onset_s = _swung(beat, style.swing, style.swing_unit) * beat_s
            onset_s += timing.normal(0.0, jitter_s) if jitter_s else 0.0
            notes.append(Note(bank, program, key, velocity, max(0.0, onset_s), length * beat_s))
        buses[bus] = notes
    return buses


# ============================================================================================
# rendering: buses -> mix -> room -> era master

_REFERENCE_RMS = 0.1  # bus level 0 dB in the mix, before mastering
_REVERB_DECIMATION = 4  # the reverb tail is computed at a quarter of the sample rate
PEAK_CEILING = 0.84  # -1.5 dBFS: the master's peak limit, headroom for the codec's overshoot


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.dot(x, x) / max(len(x), 1)))


def _reverb(send: np.ndarray, *, rt60_s: float, rng: np.random.Generator,
            sr_hz: int) -> np.ndarray:
    """A room: convolution with exponentially decaying, darkened noise.

    The tail is computed at a quarter of the sample rate (the room absorbs the top octaves
    anyway; the IR itself is low-passed), which makes the FFT convolution four times cheaper.

    Parameters
    ----------
    send : np.ndarray [shape=(n,), dtype=float32]
        What goes into the room.
    rt60_s : float
        Time for the tail to decay by 60 dB, in seconds (the IR is cut at 2.5 s).

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        The wet signal, at about the energy of ``send``.
    """
    factor = _REVERB_DECIMATION
    low_hz = sr_hz / factor
    n_ir = int(min(rt60_s, 2.5) * low_hz)
    t = np.arange(n_ir, dtype=np.float32) / np.float32(low_hz)
    noise = rng.standard_normal(n_ir, dtype=np.float32)
    ir = signal.lfilter([0.7], [1.0, -0.3], noise) * np.exp(np.float32(-6.91 / rt60_s) * t)
    ir = np.concatenate([np.zeros(int(0.015 * low_hz)), ir / np.sqrt(np.sum(ir**2))])
    n_low = -(-len(send) // factor)
    padded = np.zeros((n_low + 1) * factor, dtype=np.float32)
    padded[: len(send)] = send
    decimated = sum(padded[k::factor] for k in range(factor)) / np.float32(factor)
    size = fft.next_fast_len(n_low + len(ir) - 1, real=True)
    wet = fft.irfft(fft.rfft(decimated, size) * fft.rfft(ir.astype(np.float32), size),
                    size)[: n_low + 1].astype(np.float32)
    # back to the full rate: linear interpolation between the decimated samples
    ramp = np.arange(factor, dtype=np.float32) / np.float32(factor)
    full = wet[:-1, None] + (wet[1:] - wet[:-1])[:, None] * ramp[None, :]
    return full.ravel()[: len(send)]


def _era(year: int) -> tuple[float, float]:
    """How old a recording sounds: (age 0-1, loudness-war modernity 0-1)."""
    age = float(np.clip((1995 - year) / 40.0, 0.0, 1.0))
    return age, float(np.clip((year - 1975) / 35.0, 0.0, 1.0))


def render_track(spec: TrackSpec, *, soundfont: SoundFont | None = None,
                 sr_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """Render one track to a mastered mono clip.

    Parameters
    ----------
    spec : TrackSpec
        The track (see :func:`plan_catalogue`).
    soundfont : SoundFont, optional, keyword-only
        Default: :meth:`SoundFont.load` (the bundled General-MIDI SoundFont).
    sr_hz : int, keyword-only
        Output sample rate in Hz.

    Returns
    -------
    np.ndarray [shape=(round(CLIP_DURATION_S * sr_hz),), dtype=float32]
        Peak at most :data:`PEAK_CEILING` (-1.5 dBFS).
    """
    soundfont = soundfont or SoundFont.load()
    style = _style(spec)
    rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 5])
    n = int(round(CLIP_DURATION_S * sr_hz))
    mix = np.zeros(n, dtype=np.float32)
    send = np.zeros(n, dtype=np.float32)
    pump = None
    if style.pump:  # side-chain ducking on every beat (the kick)
        beat_s = 60.0 / spec.tempo_bpm
        since_beat = np.mod(np.arange(n, dtype=np.float32) / np.float32(sr_hz), beat_s)
        pump = 1.0 - np.float32(style.pump) * np.exp(since_beat * np.float32(-1.0 / 0.08))
    levels_db = np.add(style.mix, spec.bus_offsets_db)
    for (bus, notes), level_db in zip(compose(spec).items(), levels_db):
        x = soundfont.render(notes, duration_s=CLIP_DURATION_S, sr_hz=sr_hz)
        rms = _rms(x)
        if rms == 0.0:
            continue
        program = {"comp": spec.comp_program, "lead": spec.lead_program}.get(bus)
        if style.drive and program in _DISTORTED:
            x = np.tanh(np.float32(style.drive * 0.5 / rms) * x)
            rms = _rms(x)
        if pump is not None and bus in ("bass", "comp", "pad"):
            x *= pump
        x *= np.float32(_REFERENCE_RMS * 10.0 ** (level_db / 20.0) / rms)
        mix += x
        send += np.float32(0.4) * x if bus in ("drums", "bass") else x
    mix += np.float32(spec.reverb_send) * _reverb(send, rt60_s=spec.reverb_rt60_s, rng=rng,
                                                  sr_hz=sr_hz)
    return _master(mix, spec, style, rng, sr_hz)


def _master(mix: np.ndarray, spec: TrackSpec, style: _Style, rng: np.random.Generator,
            sr_hz: int) -> np.ndarray:
    """Master the mix for its album and year; fade the clip's edges.

    The chain: level (modern masters louder), the album's shelving EQ, a soft limiter (which
    only loud modern masters hit hard), tape hiss and the band-limited, bass-light medium of
    old recordings, and, for lo-fi artists, a dull sampler filter and vinyl crackle.

    Parameters
    ----------
    mix : np.ndarray [shape=(n,), dtype=float32]

    Returns
    -------
    np.ndarray [shape=(n,), dtype=float32]
        Peak at most :data:`PEAK_CEILING`.
    """
    age, modern = _era(spec.year)
    target_db = -21.0 + 12.0 * modern + spec.level_db
    y = mix * np.float32(10.0 ** (target_db / 20.0) / max(_rms(mix), 1e-9))
    production = np.vstack([_shelf(150.0, spec.eq_low_db, high=False, sr_hz=sr_hz),
                            _shelf(3000.0, spec.eq_high_db, high=True, sr_hz=sr_hz)])
    y = signal.sosfilt(production, y).astype(np.float32)
    ceiling = np.float32(PEAK_CEILING)
    y = ceiling * np.tanh(y / ceiling)
    medium = []
    if age > 0:
        y += np.float32(10.0 ** ((-75.0 + 27.0 * age) / 20.0)) * rng.standard_normal(
            len(y), dtype=np.float32)
        band = [30.0 + 90.0 * age, 11000.0 - 7000.0 * age]
        if band[1] < 0.95 * sr_hz / 2:
            medium.append(signal.butter(2, band, "bandpass", fs=sr_hz, output="sos"))
        else:
            medium.append(signal.butter(2, band[0], "highpass", fs=sr_hz, output="sos"))
    if style.lofi:
        medium.append(signal.butter(4, 4200.0, "lowpass", fs=sr_hz, output="sos"))
    if medium:
        y = signal.sosfilt(np.vstack(medium), y).astype(np.float32)
    if style.lofi:
        crackle = np.flatnonzero(rng.random(len(y), dtype=np.float32) < 4e-4)
        y[crackle] += rng.uniform(-0.1, 0.1, len(crackle)).astype(np.float32)
    fade_in, fade_out = int(0.01 * sr_hz), int(1.0 * sr_hz)
    y[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    y[-fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32) ** 2
    peak = float(np.max(np.abs(y)))
    if peak > PEAK_CEILING:
        y *= np.float32(PEAK_CEILING / peak)
    return y


def _shelf(corner_hz: float, gain_db: float, *, high: bool, sr_hz: int) -> np.ndarray:
    """A shelving biquad (RBJ Audio EQ Cookbook, slope 1) as one second-order section.

    Returns
    -------
    np.ndarray [shape=(1, 6)]
        ``[b0, b1, b2, 1, a1, a2]`` for :func:`scipy.signal.sosfilt`.
    """
    a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * corner_hz / sr_hz
    cos_w0, two_sqrt_a_alpha = math.cos(w0), math.sqrt(a) * math.sin(w0) * math.sqrt(2.0)
    sign = 1.0 if high else -1.0  # the high shelf mirrors the low shelf's cosine terms
    b = [a * ((a + 1) + sign * (a - 1) * cos_w0 + two_sqrt_a_alpha),
         -2.0 * sign * a * ((a - 1) + sign * (a + 1) * cos_w0),
         a * ((a + 1) + sign * (a - 1) * cos_w0 - two_sqrt_a_alpha)]
    den = [(a + 1) - sign * (a - 1) * cos_w0 + two_sqrt_a_alpha,
           2.0 * sign * ((a - 1) - sign * (a + 1) * cos_w0),
           (a + 1) - sign * (a - 1) * cos_w0 - two_sqrt_a_alpha]
    return np.array([b + den]) / den[0]


# ============================================================================================
# labels: emotion and Spotify-style features, from the plan and the measured loudness


def _labels(spec: TrackSpec, loudness_db: float) -> dict[str, object]:
    """Valence/arousal (DEAM 1-9), Thayer quadrant and Spotify-style features of a track.

    Valence rises with major mode, tempo and a higher melody, and falls with distortion;
    arousal rises with tempo, density, loudness and distortion. Each gets N(0, 0.35) noise.
    """
    style = _style(spec)
    rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 2])
    pulse_bpm = spec.tempo_bpm / 2 if style.halftime else spec.tempo_bpm
    tempo_z = float(np.clip((pulse_bpm - 110.0) / 40.0, -1.5, 1.5))
    programs = [spec.bass_program, spec.comp_program, spec.lead_program]
    if spec.pad_program:
        programs.append(spec.pad_program)
    distorted = float(any(p in _DISTORTED for p in programs))
    voice = float(spec.lead_program in _VOICE_LIKE or spec.pad_program in _VOICE_LIKE)
    valence = (5.0 + (1.5 if spec.major else -1.5) + 0.5 * tempo_z + 0.12 * spec.register_shift
               - 0.5 * distorted + rng.normal(0.0, 0.35))
    arousal = (5.0 + 1.0 * tempo_z + 1.5 * (2.0 * spec.density - 1.0)
               + 0.1 * (loudness_db + 14.0) + 0.6 * distorted
               - 0.4 * (spec.drums == "none") + rng.normal(0.0, 0.35))
    valence = round(float(np.clip(valence, 1.0, 9.0)), 2)
    arousal = round(float(np.clip(arousal, 1.0, 9.0)), 2)
    if spec.drums != "none":
        programs.append(spec.kit)
    acoustic = float(np.mean([_ACOUSTIC.get(p, 0.0) for p in programs]))
    danceability = (0.15 + 0.55 * _REGULARITY[spec.drums]
                    + 0.25 * (1.0 - min(abs(pulse_bpm - 118.0) / 50.0, 1.0))
                    - 0.1 * (spec.meter != 4) - 0.005 * style.jitter_ms)
    energy = (0.35 * spec.density + 0.25 * np.clip((pulse_bpm - 60.0) / 120.0, 0.0, 1.0)
              + 0.25 * np.clip((loudness_db + 30.0) / 25.0, 0.0, 1.0) + 0.15 * distorted)
    return {
        "valence": valence,
        "arousal": arousal,
        "emotion": _thayer(valence, arousal),
        "danceability": round(float(np.clip(danceability, 0.0, 1.0)), 3),
        "energy": round(float(np.clip(energy, 0.0, 1.0)), 3),
        "loudness": round(loudness_db, 2),
        "mode": int(spec.major),
        "speechiness": round(0.03 + 0.05 * voice + 0.02 * (spec.drums in ("boombap", "trap"))
                             + float(rng.uniform(0.0, 0.015)), 3),
        "acousticness": round(0.02 + 0.96 * acoustic, 3),
        "instrumentalness": round(0.9 - 0.3 * voice + float(rng.uniform(0.0, 0.08)), 3),
        "liveness": round(float(np.clip(0.05 + 0.7 * spec.reverb_send
                                        * spec.reverb_rt60_s / (spec.reverb_rt60_s + 1.0),
                                        0.0, 1.0)), 3),
        "tempo": spec.tempo_bpm,
        "time_signature": spec.meter,
    }


def _thayer(valence: float, arousal: float) -> str:
    """Thayer quadrant with threshold 5 (as :func:`songsim.catalogue.thayer_quadrant`)."""
    if valence > EMOTION_THRESHOLD:
        return "happy" if arousal > EMOTION_THRESHOLD else "calm"
    return "angry" if arousal > EMOTION_THRESHOLD else "sad"


# ============================================================================================
# the catalogue on disk


def _audio_path(spec: TrackSpec, audio_format: str) -> str:
    """The clip's path relative to the catalogue folder."""
    return f"audio/{spec.genre}/{spec.track_id}.{audio_format}"


def _render_to_file(spec: TrackSpec, out_dir: str, audio_format: str) -> tuple[str, float]:
    """Worker: render one clip and write it; return (track id, loudness in dB re full scale).

    A lossy codec can overshoot the master's peak by a decibel or so: an OGG clip is decoded
    again and, should its peak exceed full scale, encoded again a little quieter.
    """
    clip = render_track(spec)
    container, subtype = AUDIO_FORMATS[audio_format]
    while True:
        encoded = io.BytesIO()
        sf.write(encoded, clip, SAMPLE_RATE_HZ, format=container, subtype=subtype)
        if subtype != "VORBIS":
            break
        encoded.seek(0)
        peak = float(np.max(np.abs(sf.read(encoded, dtype="float32")[0])))
        if peak <= 1.0:
            break
        clip = clip * np.float32(0.98 / peak)
    with atomic_write(Path(out_dir) / _audio_path(spec, audio_format)) as handle:
        handle.write(encoded.getvalue())
    return spec.track_id, 20.0 * math.log10(max(_rms(clip), 1e-6))


def _manifest(seed: int, tracks_per_genre: int, audio_format: str) -> dict[str, object]:
    return {"generator": "songsim.demo", "version": GENERATOR_VERSION, "seed": seed,
            "tracks_per_genre": tracks_per_genre, "audio_format": audio_format,
            "genres": list(GENRES), "sample_rate_hz": SAMPLE_RATE_HZ,
            "clip_duration_s": CLIP_DURATION_S}


def _is_built(out_dir: Path, manifest: dict[str, object], specs: list[TrackSpec]) -> bool:
    audio_format = str(manifest["audio_format"])
    return (read_json(out_dir / MANIFEST_JSON) == manifest
            and (out_dir / TRACKS_CSV).is_file()
            and all((out_dir / _audio_path(spec, audio_format)).is_file() for spec in specs))


def make_demo(out_dir: Path | str, *, seed: int = 0, tracks_per_genre: int = 30,
              on_progress: ProgressFn | None = None, n_jobs: int | None = None,
              audio_format: str = "ogg") -> Path:
    """Write the demo catalogue: clips under ``out_dir/audio/`` and ``out_dir/tracks.csv``.

    Idempotent: when ``out_dir`` already holds a complete demo of this generator version,
    seed, size and format (``demo.json`` says so), nothing is rendered again.

    Parameters
    ----------
    out_dir : Path or str
        The catalogue folder (created if missing).
    seed : int, keyword-only
        Seed of every random choice; the same seed gives identical ``tracks.csv`` and
        identical decoded audio, whatever ``n_jobs``.
    tracks_per_genre : int, keyword-only
        Clips per genre (``len(GENRES)`` genres; 30 gives 240 clips).
    on_progress : callable, optional, keyword-only
        ``on_progress(done, total, message)``, called in the calling process as clips finish
        (and once with ``done == total`` when the demo was already built).
    n_jobs : int, optional, keyword-only
        Worker processes; default every available core. ``1`` renders in this process.
    audio_format : {"ogg", "flac"}, keyword-only
        ``"ogg"`` (Vorbis, about 5x smaller) or ``"flac"`` (lossless; encodes about ten times
        faster, which matters on a small machine: Vorbis encoding is most of the build time).

    Returns
    -------
    Path
        ``out_dir/tracks.csv``. Columns: :data:`COLUMNS`. ``path`` is relative to ``out_dir``
        (``audio/<genre>/<track_id>.<audio_format>``); clips are mono, ``SAMPLE_RATE_HZ`` Hz,
        ``CLIP_DURATION_S`` s.

    Raises
    ------
    SongsimError
        If ``tracks_per_genre < 1`` or ``audio_format`` is unknown.
    """
    if audio_format not in AUDIO_FORMATS:
        raise SongsimError(f"demo: audio_format must be one of {', '.join(AUDIO_FORMATS)}, "
                           f"got {audio_format!r}.")
    out_dir = Path(out_dir).expanduser().resolve()
    specs = plan_catalogue(seed=seed, tracks_per_genre=tracks_per_genre)
    manifest = _manifest(seed, tracks_per_genre, audio_format)
    csv_path = out_dir / TRACKS_CSV
    total = len(specs)
    if _is_built(out_dir, manifest, specs):
        if on_progress is not None:
            on_progress(total, total, "demo catalogue already built")
        return csv_path
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MANIFEST_JSON).unlink(missing_ok=True)  # a crash below leaves no stale claim
    loudness = dict(_render_all(specs, out_dir, audio_format=audio_format,
                                on_progress=on_progress, n_jobs=n_jobs))
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for spec in specs:
        writer.writerow({"track_id": spec.track_id, "path": _audio_path(spec, audio_format),
                         "title": spec.title, "artist": spec.artist, "album": spec.album,
                         "year": spec.year, "genre": spec.genre,
                         **_labels(spec, loudness[spec.track_id])})
    with atomic_write(csv_path) as handle:
        handle.write(table.getvalue().encode("utf-8"))
    write_json(out_dir / MANIFEST_JSON, manifest)  # last: it vouches for everything above
    return csv_path


def _render_all(specs: list[TrackSpec], out_dir: Path, *, audio_format: str,
                on_progress: ProgressFn | None,
                n_jobs: int | None) -> Iterable[tuple[str, float]]:
    """Render every clip (in worker processes unless one job), yielding results as they come.

    The workers are joblib's reusable loky processes (started by fork+exec, so safe inside a
    threaded host such as Streamlit, and shared with :mod:`songsim.features`); results do not
    depend on which worker renders which clip.
    """
    total = len(specs)
    workers = max(1, min(n_jobs or _available_cores(), total))
    if workers == 1:
        results = (_render_to_file(spec, str(out_dir), audio_format) for spec in specs)
    else:
        from joblib import Parallel, delayed  # imported here: the workers never need it

        results = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")(
            delayed(_render_to_file)(spec, str(out_dir), audio_format) for spec in specs)
    for done, result in enumerate(results, start=1):
        if on_progress is not None:
            on_progress(done, total, f"rendered {result[0]}")
        yield result


def _available_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
