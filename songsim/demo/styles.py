"""The demo catalogue's plan: its musical vocabulary, one style per artist, every track decided.

Nothing here makes a sound: :func:`plan_catalogue` turns a seed into one :class:`TrackSpec` per
clip (8 genres x 30 by default), every random choice made up front in the parent process, and
:mod:`songsim.demo.composer` and :mod:`songsim.demo.render` turn a spec into notes and audio.
The plan is what makes the catalogue *hard*, like a real corpus:

- **Genres overlap where real ones do.** Rock and metal share distorted guitars, kits and
  tempi; jazz and blues share swing, 7th chords, piano and organ; house and techno share
  four-on-the-floor kits, 120-140 bpm and synths; hip-hop borrows jazz's Rhodes and horns and
  techno's 808; folk shares acoustic guitars with rock and blues.
- **Artists differ within a genre** (three per genre, each a consistent :class:`Style`:
  instruments, tempo centre, keys and modes, swing, density, room) and **albums within an
  artist** (two per artist, years 1955-2020; the era is rendered audibly by
  :mod:`songsim.demo.render`).
- **Emotion cuts across genre.** Each track draws a mood that sets its mode, tempo, density,
  register and level; the emotion labels are computed later from what was rendered.

What lives here: the General-MIDI vocabulary (:data:`GM` programs, :data:`KITS`, drum keys,
how acoustic, voice-like or distorted an instrument is), harmony (:data:`SCALES`,
:data:`PROGRESSIONS` in Roman numerals, :func:`chord_timeline`), the artists' styles, made-up
names and titles, and the plan.

Units: tempo in bpm, levels in dB, times in seconds (``_s``) or beats, registers as MIDI keys,
pitch classes 0-11.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from songsim.errors import SongsimError

GENRES = ("rock", "metal", "jazz", "blues", "house", "techno", "hiphop", "folk")
ALBUMS_PER_ARTIST = 2
BUSES = ("drums", "bass", "comp", "lead", "pad")  # rendered and levelled separately

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
ACOUSTIC = {
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
VOICE_LIKE = {"choir"}  # instruments that sound like a voice
DISTORTED = {"overdrive_guitar", "distortion_guitar", "charang"}

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
class Chord:
    """One chord of a track's timeline: when it sounds (beats) and its pitch content."""

    start: float  # beats from the start of the clip
    length: float  # beats
    root: int  # pitch class 0-11
    intervals: tuple[int, ...]

    @property
    def pitch_classes(self) -> set[int]:
        return {(self.root + i) % 12 for i in self.intervals}


def chord_timeline(progression: str, tonic: int, n_bars: int, meter: int) -> list[list[Chord]]:
    """Chords of each bar: the progression repeated over ``n_bars`` bars."""
    bars = progression.split()
    timeline = []
    for b in range(n_bars):
        tokens = bars[b % len(bars)].split("-")
        length = meter / len(tokens)
        chords = []
        for k, token in enumerate(tokens):
            root, intervals = _parse_chord(token)
            chords.append(Chord(b * meter + k * length, length, (tonic + root) % 12, intervals))
        timeline.append(chords)
    return timeline


def place_pitch_class(pitch_class: int, low: int) -> int:
    """The lowest MIDI key of ``pitch_class`` at or above ``low``."""
    return low + (pitch_class - low) % 12


# ============================================================================================
# styles: one per artist


@dataclass(frozen=True)
class Style:
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


_STYLES: dict[str, tuple[Style, ...]] = {
    "rock": (
        Style("band", (1967, 1979), (118, 152), ("standard",), "rock", ("pick_bass",), "root8",
               ("overdrive_guitar", "rock_organ", "clean_guitar"), "power",
               ("overdrive_guitar", "rock_organ", "harmonica"),
               ("mixo_rock", "one_four_five", "blues12"), ("aeolian", "minor_cadence"),
               ("mixolydian", "minor_pent"), (4, 9, 2, 7), (0.45, 0.1, 0.3, 0.15),
               lead_register=69, room=(0.2, 0.8), jitter_ms=10, drive=1.2),
        Style("band", (1983, 1991), (108, 142), ("power", "standard"), "rock",
               ("finger_bass", "pick_bass"), "root8", ("distortion_guitar", "overdrive_guitar"),
               "power", ("distortion_guitar", "saw_lead", "overdrive_guitar"),
               ("power_major", "arena", "pop"), ("power_minor", "aeolian"),
               ("major", "minor"), (4, 9, 11, 2), (0.35, 0.1, 0.35, 0.2),
               pad=("synth_strings", "synth_brass"), lead_register=74, room=(0.35, 1.8),
               jitter_ms=5, drive=1.2),
        Style("band", (1996, 2012), (96, 150), ("room", "standard"), "rock", ("pick_bass",),
               "root8", ("clean_guitar", "steel_guitar", "piano"), "strum",
               ("clean_guitar", "piano", "glockenspiel", "violin"),
               ("pop", "sus_major", "one_four_five"), ("aeolian", "folk_minor"),
               ("major_pent", "minor"), (2, 7, 0, 9), (0.3, 0.25, 0.15, 0.3), meters=(4, 4, 3),
               lead_register=72, room=(0.15, 0.6), jitter_ms=7, motif_bars=2),
    ),
    "metal": (
        Style("dark", (1976, 1988), (120, 160), ("standard", "power"), "rock", ("pick_bass",),
               "gallop", ("distortion_guitar", "overdrive_guitar"), "power",
               ("overdrive_guitar", "distortion_guitar"), ("power_major", "mixo_rock"),
               ("power_minor", "aeolian", "andalusian"), ("major", "harmonic_minor"),
               (4, 9, 2), (0.15, 0.0, 0.7, 0.15), pad=("synth_strings",), lead_register=76,
               lead_grid=0.25, room=(0.3, 1.5), jitter_ms=5, drive=1.3),
        Style("dark", (1986, 2001), (146, 192), ("power", "standard"), "metal",
               ("pick_bass", "finger_bass"), "chug16", ("distortion_guitar",), "chug",
               ("distortion_guitar", "overdrive_guitar"), ("power_major",),
               ("phrygian_riff", "power_minor"), ("major", "phrygian"), (4, 6, 2),
               (0.05, 0.0, 0.85, 0.1), lead_register=71, lead_grid=0.25, room=(0.2, 0.9),
               jitter_ms=3, drive=2.0, mix=(0.0, -4.0, -2.0, -4.0, -9.0)),
        Style("dark", (1971, 2006), (58, 82), ("standard", "room"), "halftime",
               ("pick_bass",), "sustain", ("distortion_guitar", "overdrive_guitar"), "power",
               ("overdrive_guitar", "church_organ", "rock_organ"), ("mixo_rock",),
               ("doom", "power_minor"), ("mixolydian", "minor_pent"), (4, 2, 7),
               (0.0, 0.1, 0.3, 0.6), pad=("church_organ", "slow_strings"), lead_register=64,
               legato=1.0, density=(0.1, 0.6), room=(0.4, 2.2), jitter_ms=9, drive=1.6,
               motif_bars=2),
    ),
    "jazz": (
        Style("leader", (1956, 1966), (150, 220), ("jazz", "standard"), "swing_ride",
               ("acoustic_bass",), "walking", ("piano", "jazz_guitar"), "charleston",
               ("alto_sax", "trumpet", "tenor_sax"), ("rhythm_changes", "ii_v_i", "iii_vi_ii_v"),
               ("minor_ii_v_i",), ("major", "dorian"), (5, 10, 3, 0), (0.55, 0.2, 0.15, 0.1),
               swing=0.64, lead_register=70, room=(0.2, 1.0), jitter_ms=10,
               density=(0.4, 0.95), mix=(-4.0, -3.0, -5.0, 0.0, -9.0), motif_bars=2),
        Style("leader", (1959, 1979), (62, 104), ("brush", "jazz"), "brush",
               ("acoustic_bass", "fretless_bass"), "walking", ("piano", "jazz_guitar", "epiano"),
               "block", ("tenor_sax", "muted_trumpet", "vibes", "flute"),
               ("ii_v_i", "iii_vi_ii_v"), ("minor_ii_v_i", "dorian_vamp"),
               ("major", "dorian"), (5, 10, 3, 8), (0.1, 0.45, 0.0, 0.45), meters=(4, 4, 3),
               swing=0.6, lead_register=67, room=(0.3, 1.4), jitter_ms=12, legato=1.0,
               density=(0.15, 0.6), mix=(-6.0, -3.0, -4.0, 0.0, -9.0), motif_bars=2),
        Style("leader", (1965, 1978), (96, 140), ("standard", "room"), "shuffle",
               ("finger_bass", "acoustic_bass"), "walking", ("perc_organ", "epiano", "piano"),
               "shuffle_comp", ("tenor_sax", "jazz_guitar", "overdrive_guitar"),
               ("blues12", "ii_v_i", "neo_soul"), ("minor_blues", "dorian_vamp"),
               ("mixolydian", "dorian"), (5, 10, 0, 7), (0.4, 0.25, 0.2, 0.15),
               meters=(4, 4, 5), swing=0.6, lead_register=67, room=(0.2, 0.9), jitter_ms=8,
               mix=(-3.0, -3.0, -4.0, 0.0, -9.0)),
    ),
    "blues": (
        Style("bluesman", (1955, 1966), (68, 104), ("brush", "standard"), "brush",
               ("steel_guitar", "acoustic_bass"), "boogie",
               ("steel_guitar", "piano", "honky_tonk"), "shuffle_comp",
               ("harmonica", "steel_guitar", "clarinet"), ("blues12", "blues12_quick"),
               ("minor_blues",), ("blues", "minor_pent"), (4, 9, 7), (0.15, 0.3, 0.05, 0.5),
               swing=0.66, lead_register=67, call_response=True, room=(0.1, 0.5),
               jitter_ms=14, drumless=0.4, mix=(-6.0, -1.0, -4.0, 0.0, -9.0)),
        Style("bluesman", (1958, 1972), (96, 132), ("standard", "room"), "shuffle",
               ("finger_bass", "acoustic_bass"), "boogie", ("piano", "clean_guitar", "organ"),
               "shuffle_comp", ("overdrive_guitar", "harmonica", "tenor_sax"),
               ("blues12_quick", "blues12"), ("minor_blues",), ("blues", "minor_pent"),
               (4, 9, 7, 0), (0.4, 0.1, 0.3, 0.2), swing=0.64, lead_register=69,
               call_response=True, room=(0.2, 0.9), jitter_ms=9, drive=0.8),
        Style("bluesman", (1970, 1993), (58, 120), ("room", "standard"), "shuffle",
               ("pick_bass",), "root8", ("organ", "overdrive_guitar", "epiano"), "pad",
               ("overdrive_guitar", "distortion_guitar"), ("blues12", "mixo_rock"),
               ("minor_blues", "aeolian"), ("blues", "minor_pent"), (4, 9, 2),
               (0.1, 0.15, 0.35, 0.4), swing=0.62, lead_register=67, call_response=True,
               room=(0.3, 1.4), jitter_ms=8, drive=1.2, legato=1.0),
    ),
    "house": (
        Style("dj", (1987, 1994), (118, 126), ("tr808", "electronic"), "four_floor",
               ("synth_bass", "finger_bass"), "offbeat", ("piano", "organ", "epiano"), "stabs",
               ("choir", "synth_brass", "piano", "strings"), ("house_major", "pop", "doo_wop"),
               ("minor_vamp",), ("major_pent", "minor"), (0, 5, 7, 9), (0.65, 0.1, 0.15, 0.1),
               swing=0.55, swing_unit=0.25, lead_register=72, room=(0.15, 0.8), jitter_ms=2,
               pump=0.3, mix=(0.0, -2.0, -4.0, -4.0, -9.0)),
        Style("dj", (1996, 2007), (116, 124), ("electronic", "standard"), "four_floor",
               ("finger_bass", "synth_bass2"), "offbeat", ("epiano", "jazz_guitar"), "rhodes",
               ("alto_sax", "vibes", "flute"), ("neo_soul", "house_major"),
               ("minor_ninths", "minor_vamp"), ("major", "dorian"), (2, 9, 5, 0),
               (0.25, 0.45, 0.05, 0.25), swing=0.56, swing_unit=0.25, pad=("warm_pad",),
               lead_register=70, room=(0.3, 1.6), jitter_ms=3, pump=0.35,
               density=(0.15, 0.7), mix=(0.0, -2.0, -4.0, -3.0, -8.0)),
        Style("dj", (2009, 2018), (124, 130), ("electronic", "tr808"), "four_floor",
               ("synth_bass2", "synth_bass"), "offbeat", ("saw_lead", "poly_synth"), "stabs",
               ("square_lead", "fifths_lead", "saw_lead"), ("pop", "house_major"),
               ("aeolian", "techno_minor"), ("major", "minor"), (1, 6, 8, 10),
               (0.5, 0.0, 0.4, 0.1), pad=("halo_pad", "synth_strings"), lead_register=76,
               lead_grid=0.25, room=(0.25, 1.3), jitter_ms=0, pump=0.6,
               mix=(0.0, -2.0, -3.0, -4.0, -8.0)),
    ),
    "techno": (
        Style("machine", (1988, 1997), (124, 134), ("electronic", "tr808"), "techno",
               ("synth_bass", "synth_bass2"), "rolling16", ("synth_strings", "poly_synth"),
               "pad", ("poly_synth", "crystal", "square_lead"), ("sus_major",),
               ("techno_minor", "minor_vamp"), ("dorian", "minor"), (0, 5, 7, 9),
               (0.3, 0.2, 0.35, 0.15), lead_register=72, lead_grid=0.25, room=(0.2, 1.2),
               jitter_ms=1, pump=0.2, legato=0.5, mix=(0.0, -3.0, -6.0, -5.0, -9.0)),
        Style("machine", (2002, 2011), (122, 128), ("electronic", "tr808"), "techno",
               ("synth_bass2",), "offbeat", ("metal_pad", "kalimba", "epiano"), "stabs",
               ("kalimba", "marimba", "crystal"), ("sus_major",), ("one_chord", "techno_minor"),
               ("dorian", "minor_pent"), (2, 7, 9, 4), (0.05, 0.45, 0.2, 0.3),
               pad=("warm_pad",), lead_register=72, lead_grid=0.25, room=(0.3, 1.8),
               jitter_ms=0, pump=0.25, density=(0.05, 0.6), legato=0.4,
               mix=(0.0, -3.0, -7.0, -6.0, -9.0)),
        Style("machine", (2012, 2020), (132, 146), ("power", "tr808"), "techno",
               ("saw_lead", "synth_bass"), "rolling16", ("charang", "saw_lead",
                                                        "distortion_guitar"),
               "stabs", ("square_lead", "charang"), ("sus_major",),
               ("one_chord", "phrygian_riff"), ("phrygian", "phrygian"), (4, 5, 7),
               (0.0, 0.0, 0.8, 0.2), pad=("synth_strings",), lead_register=67,
               lead_grid=0.25, room=(0.2, 1.0), jitter_ms=0, drive=1.5, pump=0.4, legato=0.5,
               mix=(0.0, -3.0, -5.0, -5.0, -9.0)),
    ),
    "hiphop": (
        Style("mc", (1991, 1999), (84, 98), ("standard", "room"), "boombap",
               ("acoustic_bass", "finger_bass"), "hiphop", ("epiano", "vibes", "piano"),
               "rhodes", ("muted_trumpet", "alto_sax", "vibes", "flute"),
               ("neo_soul", "iii_vi_ii_v"), ("hiphop_minor", "minor_vamp"),
               ("major", "dorian"), (2, 5, 10, 0), (0.3, 0.2, 0.3, 0.2), swing=0.6,
               swing_unit=0.25, lead_register=70, room=(0.15, 0.8), jitter_ms=5,
               mix=(-1.0, -2.0, -4.0, -3.0, -9.0), motif_bars=2),
        Style("mc", (2014, 2020), (70, 86), ("brush", "jazz", "room"), "boombap",
               ("finger_bass", "acoustic_bass"), "hiphop", ("epiano", "nylon_guitar", "piano"),
               "rhodes", ("vibes", "flute", "epiano", "tenor_sax"), ("neo_soul", "ii_v_i"),
               ("minor_ninths", "minor_vamp"), ("major_pent", "dorian"), (5, 10, 3, 8),
               (0.1, 0.5, 0.0, 0.4), swing=0.62, swing_unit=0.25, pad=("warm_pad",),
               lead_register=72, room=(0.2, 1.0), jitter_ms=8, lofi=True,
               density=(0.1, 0.6), mix=(-1.0, -2.0, -3.0, -4.0, -10.0), motif_bars=2),
        Style("mc", (2015, 2020), (132, 150), ("tr808", "electronic"), "trap",
               ("synth_bass",), "trap808", ("choir", "warm_pad", "synth_strings"), "pad",
               ("music_box", "tubular_bells", "glockenspiel", "square_lead"), ("pop",),
               ("trap_minor", "aeolian"), ("major_pent", "harmonic_minor"), (1, 3, 6, 8),
               (0.0, 0.05, 0.6, 0.35), lead_register=79, lead_grid=0.25, room=(0.25, 1.5),
               jitter_ms=0, halftime=True, mix=(0.0, 0.0, -6.0, -5.0, -9.0), motif_bars=2),
    ),
    "folk": (
        Style("folk", (1958, 1975), (100, 144), ("brush", "standard"), "train",
               ("acoustic_bass",), "root_fifth", ("steel_guitar", "piano"), "strum",
               ("fiddle", "banjo", "harmonica"), ("folk_major", "country", "folk_long"),
               ("folk_minor",), ("major", "dorian"), (7, 2, 9, 0), (0.65, 0.2, 0.05, 0.1),
               meters=(4, 3), lead_register=74, lead_grid=0.25, room=(0.1, 0.5), jitter_ms=12,
               drumless=0.3, mix=(-5.0, -3.0, -2.0, 0.0, -9.0)),
        Style("songwriter", (1969, 1983), (66, 108), ("brush", "room"), "waltz",
               ("acoustic_bass", "fretless_bass"), "root_fifth",
               ("nylon_guitar", "steel_guitar", "piano"), "fingerpick",
               ("flute", "harmonica", "piano", "clean_guitar"), ("folk_major", "sus_major", "pop"),
               ("folk_minor", "aeolian"), ("major", "minor"), (2, 7, 4, 9),
               (0.2, 0.4, 0.0, 0.4), meters=(4, 3), pad=("strings",), lead_register=72,
               room=(0.2, 1.0), jitter_ms=15, drumless=0.5, legato=1.0, density=(0.1, 0.6),
               mix=(-6.0, -4.0, -1.0, 0.0, -9.0), motif_bars=2),
        Style("band_folk", (2004, 2016), (92, 150), ("room", "standard"), "stomp",
               ("finger_bass", "acoustic_bass"), "root_fifth", ("steel_guitar", "accordion"),
               "strum", ("fiddle", "whistle", "violin", "banjo"), ("folk_major", "pop"),
               ("celtic", "folk_minor"), ("major", "dorian"), (2, 7, 9, 4),
               (0.45, 0.15, 0.25, 0.15), meters=(4, 3, 3), lead_register=76, lead_grid=0.25,
               room=(0.3, 1.2), jitter_ms=9, mix=(-3.0, -3.0, -2.0, 0.0, -9.0)),
    ),
}

#: How steady and danceable each drum family is (0-1): the basis of danceability.
REGULARITY = {
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

    templates: dict[str, Callable[[], str]] = {  # only the chosen one draws from rng
        "band": lambda: f"The {pick('adj')} {pick('plural')}",
        "dark": lambda: f"{pick('dark')} {pick('dark_noun')}",
        "leader": lambda: f"{pick('first')} {pick('last')} {pick('ensemble')}",
        "bluesman": lambda: f"{pick('nick')} {pick('first')} {pick('last')}",
        "dj": lambda: f"DJ {pick('first')} {pick('adj')}",
        "machine": lambda: f"{pick('machine')} {int(rng.integers(2, 99))}",
        "mc": lambda: f"MC {pick('mc')}" if rng.random() < 0.5 else f"{pick('mc')} {pick('last')}",
        "band_folk": lambda: f"The {pick('noun')} {pick('plural')}",
    }
    return templates.get(kind, lambda: f"{pick('first')} {pick('last')}")()


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


def _plan_track(style: Style, rng: np.random.Generator, *, mood: str, **identity) -> TrackSpec:
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
        bus_offsets_db=tuple(float(v) for v in rng.normal(0.0, 2.5, len(BUSES))),
    )


def style_of(spec: TrackSpec) -> Style:
    """The style of the track's artist (``spec.artist_index`` within ``spec.genre``)."""
    return _STYLES[spec.genre][spec.artist_index]
