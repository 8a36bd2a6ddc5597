"""The one exception family of songsim.

Every error a user can cause is a :class:`SongsimError` whose message names the file (or id)
at fault and the fix. The UI shows ``str(error)`` with ``st.error``; the CLI prints it to
stderr and exits non-zero. Nothing else should reach a user as a traceback.
"""

from __future__ import annotations

import re


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


class AudioRangeError(AudioError):
    """The file's sample rate is outside [:data:`~songsim.config.MIN_SAMPLE_RATE_HZ`,
    :data:`~songsim.config.MAX_SAMPLE_RATE_HZ`], or its samples lie far beyond full scale
    (more than :data:`~songsim.config.FULL_SCALE_TOLERANCE` over ±1)."""


class CatalogueRegistryError(SongsimError):
    """The registry of known catalogues (``catalogues.json``) is unreadable, or a request on
    it makes no sense."""


class OutsideRootsError(SongsimError):
    """A folder or file the app was asked to read or write lies outside the configured roots
    (:func:`songsim.config.allowed_roots`, ``SONGSIM_ROOTS``); nothing was read or created."""


class CatalogueError(SongsimError):
    """``tracks.csv`` is missing or has bad rows; the message lists every bad row."""


class UnknownTrackError(SongsimError):
    """A track id that the catalogue does not hold."""


class UnknownSpaceError(SongsimError):
    """A space name that the registry does not know."""


class PluginError(SongsimError):
    """An installed plug-in space (entry-point group ``songsim.spaces``) that songsim cannot
    use: its module fails to import, it is not a ``Space`` subclass, a class attribute is
    missing or wrong, or its name is taken; the message names the entry point, its package and
    the fix. Discovery collects these instead of raising them
    (:func:`songsim.spaces.plugins.plugin_problems`)."""


class SpaceOutputError(SongsimError):
    """A space's ``fit`` or ``transform`` returned vectors of the wrong shape or type, or with
    NaN/inf; the message names the space, the package it comes from and the fix."""


class FeatureExtractionError(SongsimError):
    """Some files could not be turned into features; all the others were cached.

    Attributes
    ----------
    failures : dict[str, str]
        File path -> reason, for every failed file, in input order.
    """

    def __init__(self, failures: dict[str, str], n_tracks: int) -> None:
        self.failures = dict(failures)
        lines = [f"  - {path}: {reason}" for path, reason in self.failures.items()]
        super().__init__(
            f"{len(self.failures)} of {n_tracks} audio files could not be analysed (the other "
            f"{n_tracks - len(self.failures)} are cached; fix or remove these files and run "
            "again, only they will be computed):\n" + "\n".join(lines)
        )


class ImportedSpaceError(SongsimError):
    """A vectors file that cannot become an imported space (unreadable, malformed, unknown or
    duplicated ids, non-finite values); the message names the file, the row and the fix."""


class TensorBundleError(SongsimError):
    """A TensorFlow checkpoint (tensor bundle) is missing, truncated, damaged (a CRC-32C
    mismatch) or in a form the reader does not handle (:mod:`songsim.models.tf_bundle`)."""


class MusicnnNotInstalledError(SongsimError):
    """The ``musicnn`` wheel, which ships the pretrained MusiCNN weights, is not installed
    (``pip install --no-deps -r requirements-models.txt``)."""


class MuslyNotInstalledError(SongsimError):
    """The ``pymusly`` package, which the ``musly`` space runs, is not installed
    (``pip install -r requirements.txt``)."""


class NotBuiltError(SongsimError):
    """A derived file (features, space, map) has not been built yet."""


class UntrustedFileError(NotBuiltError):
    """A stored space or map this installation did not sign (unsigned, signed with another
    installation's key, or changed since): it is never unpickled, and counts as not built
    until a rebuild replaces it (:mod:`songsim.signed`)."""


class RatingError(SongsimError):
    """A rating that cannot be stored (candidate not in the query's pool, score out of range,
    empty rater); nothing is written."""


class RatingsFormatError(SongsimError):
    """``ratings.csv``'s first line lacks a ratings column (or names one twice), so songsim
    neither reads nor appends to it; the message names the file, the columns and the fix."""


class StudyError(SongsimError):
    """A study that cannot be created, found, read or changed; the message says why and the fix."""


class SoundFontError(SongsimError):
    """The SoundFont file is missing, not a SoundFont 2 file, or structurally broken."""


def os_error_message(error: OSError) -> str:
    """What went wrong with a file, naming it, and the fix, for a person (no traceback).

    ``error`` is any :class:`OSError` (permission denied, file exists, disk full, read-only
    file system, missing folder …); the message starts with the file's path when it has one.
    """
    path = error.filename if error.filename is not None else ""
    what = error.strerror or str(error) or type(error).__name__
    if isinstance(error, PermissionError):
        fix = "choose a folder you may write to, or fix its permissions"
    elif isinstance(error, FileExistsError):
        fix = "remove it first, or choose another path"
    elif isinstance(error, FileNotFoundError):
        fix = "check the path (its folder must exist)"
    elif isinstance(error, IsADirectoryError):
        fix = "give a file, not a folder"
    elif error.errno == 28:  # ENOSPC
        fix = "free disk space and try again"
    elif error.errno == 30:  # EROFS
        fix = "choose a folder on a writable disk"
    else:
        fix = "check the path and try again"
    return f"{path}: {what.lower()}; {fix}." if path else f"{what}; {fix}."


# An absolute path in a message: POSIX (/srv/music/x.wav), home-relative (~/x) or Windows
# (C:\\music\\x.wav); it ends at white space, a quote, a bracket or ": " / ", " / "; ".
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~/\\:])(?:~|[A-Za-z]:)?[/\\](?:[^\s'\"`()\[\]{}<>,;:]|:(?!\s|$)|,(?!\s|$))+")


def redact_paths(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (``/srv/cat/tracks.csv`` →
    ``tracks.csv``): what a rater, on another machine, may be shown of a server's message."""

    def last_part(match: re.Match) -> str:
        parts = [part for part in re.split(r"[/\\]", match.group(0)) if part and part != "~" and not part.endswith(":")]
        return parts[-1] if parts else "a server folder"

    return _ABSOLUTE_PATH.sub(last_part, text)
