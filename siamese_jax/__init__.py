"""siamese_jax: Siamese networks for one-shot recognition on Omniglot (Koch et al., 2015) in JAX.

`siamese_jax.load`, `Siamese` and `load_dataset` come from `siamese_jax.api` and `Gallery` from
`siamese_jax.gallery`, each imported on first use:
a command-line tool can refuse bad input in one line before jax is imported.
"""

__all__ = ["Gallery", "Siamese", "load", "load_dataset"]


def __getattr__(name: str):
  if name == "Gallery":
    from siamese_jax.gallery import Gallery  # pylint: disable=g-import-not-at-top

    return Gallery
  if name in __all__:
    from siamese_jax import api  # pylint: disable=g-import-not-at-top

    return getattr(api, name)
  raise AttributeError(f"module 'siamese_jax' has no attribute {name!r}")
