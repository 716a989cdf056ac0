"""The folder data source: layouts, refusals, skipped and duplicate files, splits, and the same arrays
as the tfds path for the same images."""

import json
import os
import shutil

from conftest import character_image
import numpy as np
from PIL import Image
import pytest

from siamese_jax import images as images_lib
from siamese_jax import input_pipeline
from siamese_jax.folder import FolderDataError, loader, scan


def write_glyphs(root, classes=8, per_class=4, groups=None, size=64, start=0):
  """DIR/<class>/<i>.png (or DIR/<group>/<class>/) of `character_image` glyphs; returns the class folders."""
  folders = []
  for c in range(classes):
    name = f"c{start + c:03d}"
    folder = os.path.join(root, groups[c % len(groups)], name) if groups else os.path.join(root, name)
    os.makedirs(folder, exist_ok=True)
    for i in range(per_class):
      Image.fromarray(character_image(start + c, i, size)).convert("L").save(os.path.join(folder, f"{i}.png"))
    folders.append(folder)
  return folders


def test_refusals_of_a_bad_layout(tmp_path):
  with pytest.raises(FolderDataError, match="is not a folder"):
    scan.list_folder(str(tmp_path / "missing"))
  (tmp_path / "empty" / "a").mkdir(parents=True)
  with pytest.raises(FolderDataError, match="holds no image files"):
    scan.list_folder(str(tmp_path / "empty"))
  write_glyphs(str(tmp_path / "mixed"), classes=1)
  write_glyphs(str(tmp_path / "mixed"), classes=1, groups=["g"], start=5)
  with pytest.raises(FolderDataError, match="mixes"):
    scan.list_folder(str(tmp_path / "mixed"))
  deep = tmp_path / "deep" / "a" / "b" / "c"
  deep.mkdir(parents=True)
  (deep / "x.png").write_bytes(b"x")
  with pytest.raises(FolderDataError, match="too deep"):
    scan.list_folder(str(tmp_path / "deep"))


def test_layouts_name_classes_and_groups(tmp_path):
  write_glyphs(str(tmp_path / "flat"), classes=2, per_class=2)
  (tmp_path / "flat" / ".DS_Store").write_bytes(b"")
  flat = scan.list_folder(str(tmp_path / "flat"))
  assert flat.layout == scan.FLAT and {f[:2] for f in flat.files} == {(scan.NO_GROUP, "c000"), (scan.NO_GROUP, "c001")}
  write_glyphs(str(tmp_path / "grouped"), classes=2, per_class=2, groups=["g1", "g2"])
  grouped = scan.list_folder(str(tmp_path / "grouped"))
  assert grouped.layout == scan.GROUPED
  assert {f[:2] for f in grouped.files} == {("g1", os.path.join("g1", "c000")), ("g2", os.path.join("g2", "c001"))}


def test_images_of_any_size_and_mode_match_the_api(tmp_path, monkeypatch):
  """A folder's images are exactly what `prepare_images` gives for the same files."""
  folder = tmp_path / "f" / "a"
  folder.mkdir(parents=True)
  glyph = character_image(3, 0, 90)
  paths = [str(folder / n) for n in ("small.png", "wide.jpg", "rgba.png", "big.png")]
  Image.fromarray(glyph[:40, :60]).convert("1").save(paths[0])
  Image.fromarray(glyph[:, :70]).convert("RGB").save(paths[1])
  Image.fromarray(glyph).convert("RGBA").save(paths[2])
  Image.fromarray(glyph).convert("L").resize((1500, 1500)).save(paths[3])
  got = scan.read_images(scan.list_folder(str(tmp_path / "f")), 28)
  want = images_lib.prepare_images(sorted(paths), 28)
  np.testing.assert_array_equal(got.image, want)
  monkeypatch.setattr(scan, "PENDING_BYTES", 1)  # resized one image at a time: the same arrays
  np.testing.assert_array_equal(scan.read_images(scan.list_folder(str(tmp_path / "f")), 28).image, want)


def test_unreadable_files_are_skipped_and_listed_and_strict_refuses(tmp_path):
  root = str(tmp_path / "f")
  folders = write_glyphs(root, classes=4, per_class=3)
  with open(os.path.join(folders[0], "0.png"), "rb") as f:
    data = f.read()
  with open(os.path.join(folders[1], "truncated.png"), "wb") as f:
    f.write(data[: len(data) // 2])
  with open(os.path.join(folders[1], "notes.txt"), "w") as f:
    f.write("not an image")
  shutil.copy(os.path.join(folders[0], "0.png"), os.path.join(folders[2], "copy.png"))
  images = loader.prepare(root, 28, str(tmp_path / "tfds"))
  assert sorted(p for p, _ in images.skipped) == [
    os.path.join("c001", "notes.txt"),
    os.path.join("c001", "truncated.png"),
  ]
  assert images.duplicates == [(os.path.join("c000", "0.png"), os.path.join("c002", "copy.png"))]
  assert len(images.path) == 4 * 3 + 1
  with pytest.raises(FolderDataError, match="2 unreadable files .*data.strict"):
    loader.prepare(root, 28, str(tmp_path / "tfds"), strict=True)


def test_prepared_once_and_again_when_the_folder_changes(tmp_path, monkeypatch):
  root, data_dir = str(tmp_path / "f"), str(tmp_path / "tfds")
  write_glyphs(root, classes=3, per_class=2)
  first = loader.prepare(root, 28, data_dir)
  calls = []
  real = scan.read_images
  monkeypatch.setattr(scan, "read_images", lambda *a, **k: calls.append(1) or real(*a, **k))
  again = loader.prepare(root, 28, data_dir)
  assert not calls and np.array_equal(first.image, again.image)
  write_glyphs(root, classes=1, per_class=2, start=7)
  changed = loader.prepare(root, 28, data_dir)
  assert calls and len(changed.path) == 8


def test_split_by_class_and_by_group_and_single_image_classes(tmp_path):
  root = str(tmp_path / "f")
  write_glyphs(root, classes=20, per_class=3, groups=["g0", "g1", "g2", "g3"])
  os.makedirs(os.path.join(root, "g0", "lonely"))
  Image.fromarray(character_image(99, 0, 64)).save(os.path.join(root, "g0", "lonely", "0.png"))
  images = scan.read_images(scan.list_folder(root), 28)
  split = loader.split_classes(images, (0.6, 0.2, 0.2), seed=0)
  assert split.left_out == {os.path.join("g0", "lonely"): "one image only: no positive pair"}
  parts = [set(split.parts[p]) for p in loader.PARTS]
  assert [len(p) for p in parts] == [12, 4, 4] and not (
    parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]
  )
  assert split.parts == loader.split_classes(images, (0.6, 0.2, 0.2), seed=0).parts  # seeded
  by_group = loader.split_classes(images, (0.5, 0.25, 0.25), seed=1, by="group")
  groups = [{c.split(os.sep)[0] for c in by_group.parts[p]} for p in loader.PARTS]
  assert [len(g) for g in groups] == [2, 1, 1] and not (groups[0] & groups[1] or groups[0] & groups[2])


def test_split_file_lists_and_refusals(tmp_path):
  root = str(tmp_path / "f")
  write_glyphs(root, classes=6, per_class=2)
  images = scan.read_images(scan.list_folder(root), 28)
  path = tmp_path / "split.json"
  path.write_text(json.dumps({"train": ["c000", "c001", "c002"], "validation": ["c003"], "test": ["c004", "c005"]}))
  assert loader.split_classes(images, split_file=str(path)).parts["test"] == ["c004", "c005"]
  path.write_text(json.dumps({"train": ["c000", "c001"], "validation": ["c001"], "test": ["c004"]}))
  with pytest.raises(FolderDataError, match="c001 in both train and validation"):
    loader.split_classes(images, split_file=str(path))
  path.write_text(json.dumps({"train": ["c000", "nope"], "validation": [], "test": []}))
  with pytest.raises(FolderDataError, match=r"lacks \(or with a single image\): nope"):
    loader.split_classes(images, split_file=str(path))


def test_characters_keep_one_count_per_class(tmp_path):
  root = str(tmp_path / "f")
  write_glyphs(root, classes=4, per_class=3)
  write_glyphs(root, classes=2, per_class=5, start=4)
  images = scan.read_images(scan.list_folder(root), 28)
  split = loader.Split({"train": sorted(set(images.cls.tolist())), "validation": [], "test": []}, {})
  chars, info = loader.characters(images, split, "train")
  assert chars.images.shape == (6, 3, 28, 28, 1) and info["images_unused"] == 4
  chars, info = loader.characters(images, split, "train", images_per_class=5)
  assert chars.images.shape == (2, 5, 28, 28, 1) and sorted(info["left_out"]) == ["c000", "c001", "c002", "c003"]
  assert chars.alphabet_names == [scan.NO_GROUP]


def _folder_config(root, data_dir, **eval_overrides):
  from configs import folder

  cfg = folder.get_config("smoke")
  cfg.data.dir, cfg.data.data_dir = root, data_dir
  for k, v in eval_overrides.items():
    cfg.eval[k] = v
  return cfg


def test_too_few_classes_for_the_tasks_is_one_line_naming_both_numbers(tmp_path):
  root = str(tmp_path / "f")
  write_glyphs(root, classes=20, per_class=2)
  cfg = _folder_config(root, str(tmp_path / "tfds"), ways=(2, 5))  # test part: 3 of 20 classes
  with pytest.raises(FolderDataError, match=r"^config.eval.ways: 5-way tasks need 5 classes; the test part has 3$"):
    input_pipeline.held_out_characters(cfg.eval, cfg.data, 28)
  cfg = _folder_config(root, str(tmp_path / "tfds"), shots=(2,))
  with pytest.raises(FolderDataError, match="need 3 images per class; the test part keeps 2"):
    input_pipeline.held_out_characters(cfg.eval, cfg.data, 28)


def test_config_check_refusals_for_a_folder(tmp_path):
  from siamese_jax import config_check

  cfg = _folder_config(None, None)
  with pytest.raises(config_check.ConfigError, match="config.data.dir: data.source 'folder' needs a folder"):
    config_check.check(cfg)
  cfg = _folder_config(str(tmp_path), None)
  cfg.validation.split = "test"
  with pytest.raises(config_check.ConfigError, match="config.validation.split: is eval.split"):
    config_check.check(cfg)
  cfg = _folder_config(str(tmp_path), None)
  cfg.eval.alphabets = ("Tengwar",)
  with pytest.raises(config_check.ConfigError, match="config.eval.alphabets: must be None with a folder"):
    config_check.check(cfg)
  config_check.check(_folder_config(str(tmp_path), None))


@pytest.mark.slow
def test_omniglot_written_out_gives_the_tfds_arrays(real_omniglot, tmp_path):
  """An Omniglot alphabet as a grouped and as a flat folder: the same images, at 105 and 28 px, as the
  tfds path."""
  from siamese_jax.omniglot import loader as omniglot_loader
  from siamese_jax.tools import omniglot_folder

  manual, data_dir = real_omniglot
  for size in (105, 28):
    chars = omniglot_loader.load_characters(
      "evaluation", ["Tengwar"], image_size=size, data_dir=data_dir, manual_dir=manual
    )
    for layout, grouped in (("grouped", True), ("flat", False)):
      if size == 105:
        omniglot_folder.write_folder(chars, str(tmp_path / layout), grouped=grouped)
      images = loader.prepare(str(tmp_path / layout), size, str(tmp_path / "tfds"))
      got = images.image.reshape(chars.images.shape)  # files sort by class, then drawer
      np.testing.assert_array_equal(got, chars.images)


@pytest.mark.slow
def test_training_on_a_folder_learns_and_records_its_split(tmp_path):
  """The smoke preset on 40 glyph classes: validation above chance, data.json in the workdir, a resume
  on a changed folder refused; a second run fine-tunes from the first (`train.init_from`), and a
  network of other shapes is refused."""
  from siamese_jax import train, workdir

  root = str(tmp_path / "f")
  write_glyphs(root, classes=40, per_class=4, groups=["a", "b"])
  os.makedirs(os.path.join(root, "a", "lonely"))
  Image.fromarray(character_image(99, 0, 64)).save(os.path.join(root, "a", "lonely", "0.png"))
  with open(os.path.join(root, "b", "c001", "bad.png"), "wb") as f:
    f.write(b"\x89PNG broken")
  cfg = _folder_config(root, str(tmp_path / "tfds"))
  cfg.train.steps_per_epoch, cfg.train.max_epochs = 40, 3
  results = train.train_and_evaluate(cfg, str(tmp_path / "w"))
  report = json.loads((tmp_path / "w" / workdir.DATA_FILE).read_text())
  assert [len(report["parts"][p]["classes"]) for p in loader.PARTS] == [28, 6, 6]
  assert report["left_out_classes"] == {os.path.join("a", "lonely"): "one image only: no positive pair"}
  assert [p for p, _ in report["skipped_files"]] == [os.path.join("b", "c001", "bad.png")]
  metrics = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
  best = max(m["val_one_shot"] for m in metrics if "val_one_shot" in m)
  assert best > 70, best  # % of 2-way tasks: chance is 50
  across = [r for r in results["one_shot"] if r["set"] == "evaluation" and r["protocol"] == "across_alphabet"]
  assert across and across[0]["accuracy"] > 60, across

  write_glyphs(root, classes=1, per_class=2, groups=["a"], start=60)  # the folder changes under the workdir
  with pytest.raises(workdir.WorkdirError, match="changed since this workdir started"):
    train.train(cfg, str(tmp_path / "w"))

  cfg.train.init_from = str(tmp_path / "w")
  cfg.train.max_epochs = 1
  trained = workdir.load_params(str(tmp_path / "w"), cfg.model)
  start = train.initial_params(cfg.train.init_from, cfg.model)
  assert all(np.array_equal(a, b) for a, b in zip(*(jax_leaves(p) for p in (trained, start))))
  cfg.model.embed_dim = 16
  with pytest.raises(workdir.WorkdirError, match="^config.train.init_from: the parameters in .* do not fit"):
    train.initial_params(cfg.train.init_from, cfg.model)


def jax_leaves(tree):
  import jax

  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_the_folder_preset_fits_the_shipped_model():
  """`train.init_from=pretrained` works with configs/folder.py's network."""
  from configs import folder
  from siamese_jax import train

  params = train.initial_params("pretrained", folder.get_config().model)
  assert params["conv0"]["w"].shape[-1] == 64


@pytest.mark.slow
def test_an_rgb_network_learns_classes_that_differ_only_in_colour(tmp_path):
  """Classes of one shape in different colours: grey they look alike, in RGB (`model.channels=3`)
  validation is well above chance; Omniglot refuses RGB in one line."""
  from siamese_jax import config_check, train

  root = tmp_path / "f"
  rng = np.random.default_rng(0)
  for c in range(24):
    colour = rng.integers(0, 256, 3)
    os.makedirs(root / f"c{c:02d}")
    for i in range(3):
      img = np.full((40, 40, 3), 255, np.uint8)
      x, y = rng.integers(4, 16, 2)
      img[y : y + 20, x : x + 20] = np.clip(colour + rng.integers(-8, 9, 3), 0, 255)
      Image.fromarray(img).save(root / f"c{c:02d}" / f"{i}.png")
  cfg = _folder_config(str(root), str(tmp_path / "tfds"))
  cfg.model.channels = 3
  cfg.train.steps_per_epoch, cfg.train.max_epochs, cfg.validation.num_tasks = 40, 2, 200
  train.train(cfg, str(tmp_path / "w"))
  metrics = [json.loads(line) for line in (tmp_path / "w" / "metrics.jsonl").read_text().splitlines()]
  assert max(m["val_one_shot"] for m in metrics if "val_one_shot" in m) > 70
  omniglot = _folder_config(str(root), None)
  omniglot.data.source, omniglot.model.channels = "omniglot", 3
  with pytest.raises(config_check.ConfigError, match="config.model.channels: Omniglot is grey"):
    config_check.check(omniglot)


def test_independent_pairs_train_on_a_folder(tmp_path):
  """Both pair modes draw from a folder's classes: Koch's independent pairs (fresh and fixed) too."""
  import jax

  from siamese_jax import train

  root = str(tmp_path / "f")
  write_glyphs(root, classes=12, per_class=3)
  cfg = _folder_config(root, str(tmp_path / "tfds"))
  cfg.train.pair_mode, cfg.train.batch_size, cfg.train.hard_negatives = "independent", 8, 0.0
  chars = input_pipeline.training_characters(cfg.data, cfg.model.image_size, False)
  for fixed in (0, 64):
    cfg.train.fixed_pairs = fixed
    data = train.make_data(cfg, chars)
    state, opt = train.create_train_state(jax.random.PRNGKey(0), cfg)
    step = train.make_train_step(cfg, opt)
    for _ in range(2):
      state, out = step(state, data)
      assert np.isfinite(float(out["loss"]))
