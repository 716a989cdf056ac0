"""The tfds Omniglot builder and loader: contents, caching, clear errors."""

import os
import zipfile

from conftest import TINY_DRAWERS, write_tiny_omniglot
import numpy as np
import pytest
import tensorflow_datasets as tfds

from siamese_jax.omniglot import OmniglotDataError, loader
from siamese_jax.omniglot.constants import ALPHABETS, SPLIT_COUNTS


def test_tiny_builder_keeps_every_field(tiny_omniglot):
  _, data_dir, counts = tiny_omniglot
  for split, want in counts.items():
    s = loader.load_split(split, data_dir)
    assert s["image"].shape == (want["images"], 105, 105, 1)
    assert s["image"].dtype == np.uint8
    assert len(np.unique(s["label"])) == want["characters"]
    assert len(np.unique(s["alphabet"])) == want["alphabets"]
    assert sorted(np.unique(s["drawer"])) == list(range(1, TINY_DRAWERS + 1))
  bg = loader.load_split("background", data_dir)
  # Latin character 2 is global number 2 (label 1); drawer 7's image is the one written.
  from conftest import character_image

  i = np.flatnonzero((bg["label"] == 1) & (bg["drawer"] == 7))
  assert len(i) == 1
  assert ALPHABETS[bg["alphabet"][i[0]]] == "Latin" and bg["character"][i[0]] == 1
  np.testing.assert_array_equal(bg["image"][i[0], :, :, 0] > 0, character_image(2, 7))


def test_second_prepare_does_not_read_zips(tiny_omniglot, tmp_path):
  _, data_dir, _ = tiny_omniglot
  # No manual dir and no network needed: the prepared data set is reused.
  builder = loader.prepare(data_dir, manual_dir=None)
  assert builder.is_prepared()


def test_group_by_character(tiny_omniglot):
  _, data_dir, _ = tiny_omniglot
  chars = loader.load_characters(
    "background", alphabets=["Greek"], drawers=range(1, 13), image_size=32, data_dir=data_dir
  )
  assert chars.images.shape == (3, 12, 32, 32, 1)
  assert chars.alphabet_names == ["Greek"]
  assert list(chars.drawers) == list(range(1, 13))
  with pytest.raises(OmniglotDataError, match="not in this split"):
    loader.load_characters("background", alphabets=["Tengwar"], data_dir=data_dir)


def test_training_characters_join_evaluation_alphabets(tiny_omniglot):
  from configs import koch
  from siamese_jax import input_pipeline

  data = koch.get_config("cpu").data
  data.data_dir, data.manual_dir = tiny_omniglot[1], tiny_omniglot[0]
  data.extra_train_alphabets = ()
  plain = input_pipeline.training_characters(data, 32, class_rotations=False)
  data.extra_train_alphabets = ("Angelic",)
  chars = input_pipeline.training_characters(data, 32, class_rotations=True)
  assert chars.images.shape == (4 * (plain.num_characters + 3), 20, 32, 32, 1)
  assert sorted(chars.alphabet_names) == ["Angelic", "Greek", "Latin"]
  assert len(set(chars.labels.tolist())) == len(chars.labels)  # background and evaluation numbers differ
  np.testing.assert_array_equal(chars.images[: plain.num_characters], plain.images)


def _prepare_error(manual_dir, tmp_path):
  with pytest.raises(OmniglotDataError) as e:
    loader.prepare(str(tmp_path / "tfds"), manual_dir)
  return str(e.value)


def test_missing_zip_is_named(tmp_path):
  manual = str(tmp_path / "zips")
  write_tiny_omniglot(manual)
  os.remove(os.path.join(manual, "images_evaluation.zip"))
  assert "images_evaluation.zip" in _prepare_error(manual, tmp_path)


def test_missing_manual_dir(tmp_path):
  assert "does not exist" in _prepare_error(str(tmp_path / "nowhere"), tmp_path)


def test_corrupt_zip(tmp_path):
  manual = str(tmp_path / "zips")
  write_tiny_omniglot(manual)
  with open(os.path.join(manual, "images_background_small1.zip"), "wb") as f:
    f.write(b"this is not a zip")
  msg = _prepare_error(manual, tmp_path)
  assert "images_background_small1.zip" in msg and "not a valid zip" in msg


def test_truncated_member(tmp_path):
  manual = str(tmp_path / "zips")
  write_tiny_omniglot(manual)
  path = os.path.join(manual, "images_background_small2.zip")
  data = bytearray(open(path, "rb").read())
  with zipfile.ZipFile(path) as zf:
    info = zf.infolist()[3]
  start = info.header_offset + 30 + len(info.filename.encode())
  data[start + 40 : start + 60] = bytes(20)  # Damage one member's bytes: CRC mismatch.
  open(path, "wb").write(bytes(data))
  assert "images_background_small2.zip" in _prepare_error(manual, tmp_path)


def test_wrong_image_size(tmp_path):
  manual = str(tmp_path / "zips")
  write_tiny_omniglot(manual, bad_image=("evaluation", "Keble", 2, 5))
  msg = _prepare_error(manual, tmp_path)
  assert "105x50" in msg and "expected 105x105" in msg and "Keble/character02" in msg


def test_no_network_and_no_manual_dir(tmp_path, monkeypatch):
  def offline(*args, **kwargs):
    raise ConnectionError("network is unreachable")

  monkeypatch.setattr(tfds.download.DownloadManager, "download", offline)
  msg = _prepare_error(None, tmp_path)
  assert "could not download" in msg and "images_background.zip" in msg
  assert "OMNIGLOT_DIR" in msg


def test_real_omniglot_split_counts(real_omniglot):
  _, data_dir = real_omniglot
  builder = loader.prepare(data_dir)
  assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
    "background": 19280,
    "evaluation": 13180,
    "small1": 2720,
    "small2": 3120,
  }
  for split, want in SPLIT_COUNTS.items():
    s = loader.load_split(split, data_dir)
    assert len(s["image"]) == want["images"]
    assert len(np.unique(s["label"])) == want["characters"]
    assert len(np.unique(s["alphabet"])) == want["alphabets"]
    chars = loader.group_by_character(s)
    assert chars.images.shape[:2] == (want["characters"], 20)


def test_damaged_prepared_data_is_one_line_naming_the_folder(tiny_omniglot, tmp_path):
  import shutil

  _, data_dir, _ = tiny_omniglot
  copy = tmp_path / "tfds"
  shutil.copytree(data_dir, copy)
  shards = sorted(p for p in copy.rglob("*.tfrecord*") if "background" in p.name)
  shards[0].write_bytes(shards[0].read_bytes()[: shards[0].stat().st_size // 2])  # truncated
  with pytest.raises(OmniglotDataError, match="cannot be read .* delete .* and run again to prepare it anew") as e:
    loader.load_split("background", str(copy))
  assert "\n" not in str(e.value) and "omniglot_drawers" in str(e.value)
