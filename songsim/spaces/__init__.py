"""Embedding spaces: the contract, the registry, where fits are stored, and every built-in.

=================  ==============================================================================
module             what it holds
=================  ==============================================================================
``base``           the ``Space`` contract (class attributes say what a space is), the registry
                   (``register_space``, ``space_names``, ``space_type``), ``TrainingOptions``
``store``          a catalogue's fitted spaces, maps and indexes on disk; fit keys (when a
                   stored fit is current); ``load_built_space``, ``open_index``
``inputs``         the named inputs spaces consume (features, metadata, keys, other spaces),
                   one registered resolver each, for catalogue songs and uploads alike
``baseline``       ``handcrafted`` (librosa statistics + PCA) and ``random`` (the floor)
``learned``        the CNN genre/emotion, metadata, fusion-AE, ae-2d and triplet spaces
``literature``     the raw-spectrogram, WaveNet, chroma-LSTM and ALI spaces
``pretrained``     ``musicnn``: the MusiCNN tagger trained on the Million Song Dataset (torch port)
``heads``          ``musicnn-triplet``: a head trained by metric learning over the frozen musicnn
                   embedding (the catalogue's genres, and artists)
``musly``          ``musly``: Musly's timbre distances with mutual proximity (a distance-based space)
``plugins``        discovery of the plug-in spaces installed packages declare (entry-point
                   group ``songsim.spaces``); ``plugin_problems`` lists those it refused
=================  ==============================================================================

Importing this package registers every built-in space, so the registry is complete whatever a
caller imports first. **Adding a space** is one new module here with a ``@register_space``
class, plus one import line below (README, "Add a space"), or a package of its own that
declares it as a plug-in (README, "Plug-in spaces"). Modules inside ``songsim`` import
from the submodules (``songsim.spaces.base``, ``songsim.spaces.store``), never from this
package, so no import cycle runs through it.
"""

from songsim.spaces.base import Space, TrainingOptions, register_space, space_names, space_type
from songsim.spaces.baseline import HandcraftedSpace, RandomSpace
from songsim.spaces import learned, literature  # noqa: F401 - register the learned and literature spaces
from songsim.spaces import pretrained  # noqa: F401 - register the pretrained spaces (musicnn)
from songsim.spaces import heads  # noqa: F401 - register musicnn-triplet (after musicnn, its input)
from songsim.spaces import musly  # noqa: F401 - register the musly space (distances)

__all__ = [
    "HandcraftedSpace",
    "RandomSpace",
    "Space",
    "TrainingOptions",
    "register_space",
    "space_names",
    "space_type",
]

# last, after every built-in: installed plug-in spaces (entry-point group "songsim.spaces"),
# whose names must not clash with the built-ins'; problems go to plugins.plugin_problems()
from songsim.spaces.plugins import discover_plugins  # noqa: E402

discover_plugins()
