"""Omniglot through tensorflow-datasets, with the drawer kept."""

from siamese_jax.omniglot.constants import OmniglotDataError
from siamese_jax.omniglot.loader import CharacterArray, load_characters, load_split, prepare

__all__ = ["OmniglotDataError", "CharacterArray", "load_characters", "load_split", "prepare"]
