"""A folder of the user's images as a data set: `DIR/<class>/<image>` or `DIR/<group>/<class>/<image>`."""

from siamese_jax.folder.scan import FolderDataError

__all__ = ["FolderDataError"]
