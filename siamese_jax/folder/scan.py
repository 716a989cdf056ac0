"""Reads a folder of images: its layout, a fingerprint of its files, and every image at one size.

Layouts: `DIR/<class>/<image>` (flat) or `DIR/<group>/<class>/<image>` (grouped: a group plays an
alphabet's part, so tasks within a group are possible). Hidden files and folders are ignored. Each
file goes through the same intake as the API (`siamese_jax.images`): any format and mode PIL reads,
any size, grey with dark ink on light paper. Files that cannot be read are listed, not fatal.
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import hashlib
import os

import numpy as np

from siamese_jax import images as images_lib
from siamese_jax.omniglot.constants import OmniglotDataError

FLAT, GROUPED = "flat", "grouped"
NO_GROUP = "(all)"  # the one group of a flat folder


class FolderDataError(OmniglotDataError):
  """A folder data set is missing, empty, laid out wrongly or too small for the config."""


@dataclasses.dataclass(frozen=True)
class Listing:
  """The image files of a folder, sorted: `files[i]` is (group, class, path relative to root)."""

  root: str
  layout: str
  files: tuple[tuple[str, str, str], ...]

  def fingerprint(self) -> str:
    """12 hex digits that change when any file is added, removed, renamed, resized or rewritten."""
    h = hashlib.sha256(self.layout.encode())
    for _, _, rel in self.files:
      st = os.stat(os.path.join(self.root, rel))
      h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


def _visible(names) -> list[str]:
  return sorted(n for n in names if not n.startswith((".", "_")))


def list_folder(root: str, what: str = "data.dir") -> Listing:
  """The folder's layout and files; FolderDataError (naming `what` the folder is) for a missing,
  empty or mixed folder."""
  root = os.path.abspath(os.path.expanduser(root or ""))
  if not os.path.isdir(root):
    raise FolderDataError(f"{what} {root} is not a folder (want DIR/<class>/<image> or DIR/<group>/<class>/<image>)")
  files, depths = [], set()
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = _visible(dirnames)
    parts = os.path.relpath(dirpath, root).split(os.sep)
    for name in _visible(filenames):
      if parts == ["."]:
        raise FolderDataError(f"{root} holds the file {name} at its top; put images in DIR/<class>/ folders")
      if len(parts) > 2:
        raise FolderDataError(f"{os.path.join(dirpath, name)} is nested too deep (at most DIR/<group>/<class>/<image>)")
      depths.add(len(parts))
      group, cls = (NO_GROUP, parts[0]) if len(parts) == 1 else (parts[0], os.path.join(*parts))
      files.append((group, cls, os.path.relpath(os.path.join(dirpath, name), root)))
  if not files:
    raise FolderDataError(f"{root} holds no image files (want DIR/<class>/<image> or DIR/<group>/<class>/<image>)")
  if len(depths) > 1:
    raise FolderDataError(f"{root} mixes DIR/<class>/<image> and DIR/<group>/<class>/<image>; use one layout")
  return Listing(root, FLAT if depths == {1} else GROUPED, tuple(sorted(files)))


@dataclasses.dataclass
class Images:
  """The readable images of a folder at one size, and what was left out.

  image: uint8 [N, S, S, C] (grey: 0 ink, 255 paper; or RGB); group, cls, path: str [N] each (a class is named by
  its folder, `group/class` in a grouped folder); skipped: (path, reason) of the unreadable files;
  duplicates: (path, path) pairs of byte-identical files in different classes.
  """

  image: np.ndarray
  group: np.ndarray
  cls: np.ndarray
  path: np.ndarray
  skipped: list = dataclasses.field(default_factory=list)
  duplicates: list = dataclasses.field(default_factory=list)


PENDING_BYTES = 64 << 20  # squared images held before they are resized (in groups of one size)


def read_images(
  listing: Listing, image_size: int, progress: Callable[[int, int], None] | None = None, channels: int = 1
) -> Images:
  """Every file of `listing` squared, greyed (or RGB, `channels=3`) and resized as the API does
  (`images.prepare_images`); at most PENDING_BYTES of full-size squares are held at a time."""
  out, kept, skipped, seen, duplicates = [], [], [], {}, []
  pending, pending_bytes = [], 0  # squares of the last kept files, not yet resized

  for i, (group, cls, rel) in enumerate(listing.files):
    if progress:
      progress(i + 1, len(listing.files))
    path = os.path.join(listing.root, rel)
    try:
      with open(path, "rb") as f:
        digest = hashlib.sha1(f.read()).hexdigest()
      square = images_lib.squared(path, channels)
    except (ValueError, OSError) as e:
      skipped.append((rel, str(e).replace(path, "").strip(" :") or type(e).__name__))
      continue
    first = seen.setdefault(digest, (cls, rel))
    if first[0] != cls:
      duplicates.append((first[1], rel))
    kept.append((group, cls, rel))
    pending.append(square)
    pending_bytes += square.nbytes
    if pending_bytes > PENDING_BYTES:
      out.extend(images_lib.resize_squares(pending, image_size))
      pending, pending_bytes = [], 0
  if not kept:
    raise FolderDataError(f"none of the {len(listing.files)} files in {listing.root} is a readable image")
  if pending:
    out.extend(images_lib.resize_squares(pending, image_size))
  group, cls, rel = (np.array(col) for col in zip(*kept))
  return Images(np.stack(out), group, cls, rel, skipped, duplicates)
