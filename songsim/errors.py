"""The one exception family of songsim.

Every error a user can cause is a :class:`SongsimError` whose message names the file (or id)
at fault and the fix. The UI shows ``str(error)`` with ``st.error``; the CLI prints it to
stderr and exits non-zero. Nothing else should reach a user as a traceback.
"""

from __future__ import annotations


class SongsimError(Exception):
    """Base class: a problem the user can fix; the message says how."""


class AudioError(SongsimError):
    """An audio file cannot be used."""


class AudioDecodeError(AudioError):
    """The file is unreadable, corrupt, or not in a supported format."""


class EmptyAudioError(AudioError):
    """The file decodes to no samples."""


class SilentAudioError(AudioError):
    """The excerpt is digital silence or too quiet to analyse."""


class AudioTooShortError(AudioError):
    """The file is shorter than :data:`songsim.config.MIN_DURATION_S`."""


class AudioTooLongError(AudioError):
    """The file is longer than :data:`songsim.config.MAX_DURATION_S`."""


class CatalogueError(SongsimError):
    """``tracks.csv`` is missing or has bad rows; the message lists every bad row."""


class UnknownTrackError(SongsimError):
    """A track id that the catalogue does not hold."""


class UnknownSpaceError(SongsimError):
    """A space name that the registry does not know."""


class NotBuiltError(SongsimError):
    """A derived file (features, space, map) has not been built yet."""


class RatingError(SongsimError):
    """A rating that cannot be stored (candidate not in the query's pool, score out of range,
    empty rater); nothing is written."""


class RatingsFormatError(SongsimError):
    """``ratings.csv`` does not start with the ratings header, so songsim neither reads nor
    appends to it; the message names the file and the expected header."""
