"""The embedded demo catalogue: a deterministic, labelled corpus of synthesised music.

``python -m songsim demo DIR`` (and the app's first start) call
:func:`songsim.demo.render.make_demo`, which writes 8 genres x 30 clips (30 s, mono,
22 050 Hz, OGG Vorbis or FLAC) and their ``tracks.csv`` (genre, artist, album, year, emotion
as DEAM valence/arousal and Thayer quadrant, Spotify-style audio features). It is a research
instrument, so it is built to be *hard*: related genres overlap, artists differ within a genre
and albums within an artist, and emotion cuts across genre.

A track goes through the modules in this order (callers import the module they need; this
package re-exports nothing)::

    styles.py     plan_catalogue(seed) ──▶ one TrackSpec per clip: genre, artist's Style, album,
                  year, mood, tempo, key, progression, instruments, room (every choice made up
                  front); the General-MIDI vocabulary, scales, chords, progressions, names
    composer.py   compose(spec) ──▶ the notes of each bus (drums, bass, comp, lead, pad), in
                  seconds, swung and humanised
    synth.py      SoundFont.render(notes) ──▶ mono float32 audio: a General-MIDI SoundFont 2
                  sample player (the TimGM6mb.sf2 of the pretty_midi wheel), no native synth
    render.py     render_track(spec) ──▶ buses levelled, mixed into a room and mastered for the
                  album's era; make_demo ──▶ the audio files, tracks.csv (labels computed from
                  what was rendered) and the demo.json manifest that makes a rebuild a no-op

Determinism: the same seed gives identical ``tracks.csv`` and identical decoded samples,
whatever the number of worker processes. Change the output only together with
:data:`songsim.demo.render.GENERATOR_VERSION`, so cached demos are rebuilt.
"""
