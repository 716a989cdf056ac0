"""siamese_jax: Siamese networks for one-shot recognition on Omniglot (Koch et al., 2015) in JAX."""

from siamese_jax.api import Siamese, load, load_dataset

__all__ = ["Siamese", "load", "load_dataset"]
