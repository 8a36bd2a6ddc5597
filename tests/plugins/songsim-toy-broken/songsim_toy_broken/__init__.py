"""Broken plug-in spaces, one per problem songsim must report by name without breaking."""
