"""tensorflow-datasets builder for a folder of images, one config per folder state and image size.

tfds's own `ImageFolder` wants `DIR/<split>/<class>/<image>` and images of one size; here the
classes, not the images, are split later (`folder.loader.split_classes`), classes may sit in groups,
and every image is squared, greyed and resized by the API's intake. The config name holds the
folder's fingerprint, so a changed folder is prepared again and an unchanged one never is.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from siamese_jax.folder import scan


def config_name(fingerprint: str, image_size: int, channels: int = 1) -> str:
  return f"f{fingerprint}_{image_size}px" + ("_rgb" if channels == 3 else "")


class FolderImages(tfds.core.GeneratorBasedBuilder):
  """The readable images of one folder at one size, with their group, class and file path.

  The files left out (unreadable) and the byte-identical files in different classes are kept in
  the data set's metadata (`info.metadata["skipped"]`, `["duplicates"]`).
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def __init__(
    self, *, fingerprint: str, image_size: int, channels: int = 1, images: scan.Images | None = None, **kwargs
  ):
    self._image_size, self._channels = image_size, channels
    self._images = images
    name = config_name(fingerprint, image_size, channels)
    super().__init__(config=tfds.core.BuilderConfig(name=name), **kwargs)

  def _info(self) -> tfds.core.DatasetInfo:
    s = self._image_size
    return self.dataset_info_from_configs(
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(s, s, self._channels), encoding_format="png"),
          "group": tfds.features.Text(),
          "class": tfds.features.Text(),
          "path": tfds.features.Text(),
        }
      ),
      metadata=tfds.core.MetadataDict(),
      description="A folder of images: DIR/<class>/<image> or DIR/<group>/<class>/<image>.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    if self._images is None:
      raise scan.FolderDataError("FolderImages needs the folder's images to prepare (folder.loader.prepare)")
    self.info.metadata["skipped"] = [list(x) for x in self._images.skipped]
    self.info.metadata["duplicates"] = [list(x) for x in self._images.duplicates]
    return {"images": self._generate_examples()}

  def _generate_examples(self):
    im = self._images
    for i in range(len(im.path)):
      yield str(im.path[i]), {"image": im.image[i], "group": im.group[i], "class": im.cls[i], "path": im.path[i]}


def read(builder: FolderImages) -> scan.Images:
  """A prepared builder's images as arrays, in file order."""
  arrays = tfds.as_numpy(builder.as_dataset(split="images", batch_size=-1, shuffle_files=False))
  order = np.argsort(arrays["path"])
  text = lambda k: np.array([v.decode() for v in arrays[k][order]])  # noqa: E731
  meta = builder.info.metadata or {}
  return scan.Images(
    image=np.asarray(arrays["image"][order]),
    group=text("group"),
    cls=text("class"),
    path=text("path"),
    skipped=[tuple(x) for x in meta.get("skipped", [])],
    duplicates=[tuple(x) for x in meta.get("duplicates", [])],
  )
