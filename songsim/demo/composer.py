"""The demo catalogue's composer: one :class:`~songsim.demo.styles.TrackSpec` in, its notes out.

Drums, bass, harmony and melody follow genre- and artist-typical patterns (rock backbeat,
metal double kick, jazz ride with walking bass, blues shuffle with boogie bass, house offbeat
bass and stabs, techno rolling 16ths, boom-bap swing, waltz and train beats), progressions
(12-bar blues, ii-V-I, power-chord riffs, minor vamps, folk I-IV-V), and melodies built from
motifs that repeat with variation over 4-bar phrases and 8-bar sections. :func:`compose`
writes every part in beats, then applies the artist's swing and humanised timing and returns
:class:`~songsim.demo.synth.Note` lists in seconds, one per bus, for
:func:`songsim.demo.render.render_track`.

Determinism: every draw comes from a generator seeded by (seed, genre, track number).

Units: onsets and lengths in beats inside the composer, in seconds in the returned notes;
tempo in bpm; MIDI keys and velocities 0-127.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from songsim.config import CLIP_DURATION_S
from songsim.demo.styles import (
    CLAP,
    CRASH,
    GM,
    HAT,
    HIGH_FLOOR_TOM,
    HIGH_TOM,
    KICK,
    KITS,
    LOW_TOM,
    MID_TOM,
    OPEN_HAT,
    PEDAL_HAT,
    PROGRESSIONS,
    RIDE,
    RIM,
    SCALES,
    SHAKER,
    SNARE,
    TAMBOURINE,
    Chord,
    TrackSpec,
    chord_timeline,
    place_pitch_class,
    style_of,
)
from songsim.demo.synth import DRUM_BANK, Note

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
        self.style = style_of(spec)
        self.rng = np.random.default_rng([spec.seed, spec.genre_index, spec.number, 3])
        self.meter = spec.meter
        beats = CLIP_DURATION_S * spec.tempo_bpm / 60.0
        self.n_bars = int(math.ceil(beats / self.meter)) + 1
        self.total_beats = self.n_bars * self.meter
        progression = PROGRESSIONS[spec.progression]
        self.section_bars = 12 if len(progression.split()) == 12 else 8
        self.timeline = chord_timeline(progression, spec.tonic, self.n_bars, self.meter)
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

    def chord_at(self, beat: float) -> Chord:
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
                root = place_pitch_class(chord.root, low)
                third = root + (3 if 3 in chord.intervals else 4)
                fifth = root + (6 if 6 in chord.intervals else 7)
                seventh = root + (11 if 11 in chord.intervals else 10)
                t0, n = chord.start, chord.length
                nxt = self.chord_at(t0 + n)
                if style == "root8":
                    for i, t in enumerate(np.arange(t0, t0 + n, 0.5)):
                        key = root + 12 if d > 0.6 and i % 4 == 3 else root
                        if t >= t0 + n - 0.5 and d > 0.4 and nxt.root != chord.root:
                            key = place_pitch_class(nxt.root, low) - self.pick((1, 2, -1, 5))
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

    def _walk(self, chord: Chord, nxt: Chord, root: int, third: int, fifth: int,
              seventh: int, low: int) -> list[int]:
        """A walking-bass line over one chord: chord tones, then a chromatic approach."""
        n = max(1, int(round(chord.length)))
        if n == 1:
            return [root]
        target = place_pitch_class(nxt.root, low)
        approach = target + self.pick((-1, 1, -2 if nxt.root != chord.root else 2))
        up = self.rng.random() < 0.5
        tones = [root, third, fifth, seventh] if up else [root + 12, seventh, fifth, third]
        line = tones[: n - 1] + [approach]
        return [k - 12 if k > low + 19 else k for k in line]

    # ----------------------------------------------------------------------------- harmony
    def _voicing(self, chord: Chord, low: int, size: int, previous: list[int]) -> list[int]:
        """Close voicing of ``size`` chord tones at or above ``low``, near ``previous``."""
        pcs = list(dict.fromkeys((chord.root + i) % 12 for i in chord.intervals))[:size]
        best: list[int] = []
        best_cost = math.inf
        for rotation in range(len(pcs)):
            keys, floor = [], low
            for pc in pcs[rotation:] + pcs[:rotation]:
                keys.append(place_pitch_class(pc, floor))
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
                    root = place_pitch_class(chord.root, 40)
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
                    root = place_pitch_class(chord.root, 40)
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
                    add([place_pitch_class(chord.root, 36)] + previous, t0, n * 0.97, 80)
                    if d > 0.4 and n >= 2:
                        add(previous, t0 + n / 2, n / 2 * 0.95, 68)
                elif style == "charleston":
                    shell = [i for i in chord.intervals if i not in (0, 7)] + [14]
                    keys = [place_pitch_class((chord.root + i) % 12, 55) for i in shell[:3]]
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
        tonic_key = place_pitch_class(self.spec.tonic, centre - 8)
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
    def _snap(key: int, chord: Chord) -> int:
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
