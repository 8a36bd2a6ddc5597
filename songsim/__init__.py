"""songsim: listening-based evaluation of song-similarity models."""

__version__ = "0.1.0"
