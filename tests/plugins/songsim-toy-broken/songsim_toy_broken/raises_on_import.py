"""A plug-in module that fails on import (like one whose own dependency is not installed)."""

raise ImportError("songsim_toy_broken needs the 'imaginary-model-weights' package, which is not installed")
