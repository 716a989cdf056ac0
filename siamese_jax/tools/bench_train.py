"""Speed of siamese_jax against PyTorch on the same network, batch and machine.

One command times, each measurement in a fresh child process (so peak memory is
per measurement and one framework's threads never compete with the other's):

  train    one full train step (both images of every pair forward, clamped BCE,
           backward, Adam) of our jitted step and of the identical PyTorch
           network (`siamese_jax.tools.torch_reference`), eager and `torch.compile`
           (inductor), for the Koch network at 105x105 and the `:cpu` preset's
           network (28x28), float32 and bfloat16 (ours: `model.dtype`, which is
           float32 on XLA:CPU, `model.compute_dtype`; PyTorch: autocast +
           channels_last), for each `--conv_impls` of ours ("xla" is the plain
           lax.conv_general_dilated path). Ratios are against the fastest PyTorch
           row of the same network and dtype. Both frameworks get the same
           allocator tuning (`siamese_jax.host.tune_allocator`) and every core.
  preset   the `:cpu` preset's real train step (all pairs of 32 characters x 4
           drawers, distortions, on-device sampling) and its per-epoch validation
           (2,000 20-way tasks + verification pairs on the validation alphabets),
           with validation's share of an epoch.
  scaling  our step time against batch size and input resolution (Koch network).
  eval     Lake's 20 runs and a 400-task 20-way sweep with the Koch network:
           embed-once (the harness) against the naive way (both images of every
           query x candidate pair through the network).

A row that does not finish within `--row_timeout` seconds says so. Warm-up (compilation)
is excluded; each figure is the median of `--repeats` timed blocks of at least `--steps`
steps and about `--min_block_s` seconds. GFLOP/s counts 3x the forward FLOPs per image
(forward, input gradient, weight gradient). Peak RSS is the child process's maximum
resident size (framework included); "XLA temp" is the step's scratch memory from XLA's
buffer assignment. Our step also samples its pairs on the device (distortions off here);
PyTorch gets ready-made batches.

  python -m siamese_jax.tools.bench_train --manual_dir=../shared/omniglot [--sections=train,preset,scaling,eval]

Writes bench.md, bench.json and bench_scaling.png to --out. PyTorch comes from the
`bench` extra (`pip install -e '.[bench]'`); without it the PyTorch rows say n/a.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import statistics
import time

from absl import (
  app,  # pylint: disable=g-import-not-at-top
  flags,
)
import numpy as np

from configs import koch  # pylint: disable=g-import-not-at-top
from siamese_jax import figures
from siamese_jax import workdir as workdir_lib
from siamese_jax.tools import timing  # pylint: disable=g-import-not-at-top

flags.DEFINE_list("sections", ["train", "preset", "scaling", "eval"], "Which parts to run.")
flags.DEFINE_list("preset_trees", ["."], "Trees whose `:cpu` step `preset` times, interleaved (first: reference).")
flags.DEFINE_integer("preset_rounds", 1, "Rounds over the preset trees.")
flags.DEFINE_list("torch_modes", ["eager", "compile"], "PyTorch execution modes in `train`.")
flags.DEFINE_integer("row_timeout", 420, "Seconds a measurement may take (compilation included) before it is dropped.")
flags.DEFINE_list("presets", ["koch", "cpu"], "Networks of these presets are timed in `train`.")
flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes in `train`.")
flags.DEFINE_list("conv_impls", ["xla", "auto"], "Our convolution implementations in `train`.")
flags.DEFINE_integer("train_rounds", 1, "Rounds over every `train` row, each a fresh process; the median is kept.")
flags.DEFINE_integer("batch", 32, "Pairs per step in `train`.")
flags.DEFINE_integer("repeats", 5, "Timed repeats; the median is reported.")
flags.DEFINE_integer("steps", 2, "Steps per timed repeat (at least).")
flags.DEFINE_float("min_block_s", 1.0, "Each timed repeat of `train` runs enough steps to last about this long.")
flags.DEFINE_list("scaling_batches", ["16", "32", "64", "128", "180"], "Batch sizes in `scaling`.")
flags.DEFINE_list("scaling_sizes", ["70", "84", "105", "128"], "Input sizes in `scaling` (batch 32).")
flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips and all_runs.zip (for `eval`).")
flags.DEFINE_string("data_dir", None, "tfds data dir.")
flags.DEFINE_integer("num_tasks", 400, "Tasks in the 20-way sweep of `eval`.")
flags.DEFINE_string("out", "runs/bench", "Folder for bench.md, bench.json and bench_scaling.png.")
FLAGS = flags.FLAGS


def forward_flops(m) -> float:
  """Multiply-adds x 2 of one image's forward pass through the encoder and head."""
  side, c_in, total = m.image_size, 1, 0.0
  n = len(m.features)
  for i, (c_out, k) in enumerate(zip(m.features, m.kernel_sizes)):
    side = side - k + 1
    total += 2.0 * side * side * k * k * c_in * c_out
    c_in = c_out
    if i < n - 1:
      side //= 2
  return total + 2.0 * side * side * c_in * m.embed_dim + 2.0 * m.embed_dim


def bench_config(preset: str, dtype: str, batch: int, image_size: int | None = None, conv_impl: str = "auto"):
  """The preset's network with a plain independent-pair Adam step (no distortions) of `batch` pairs."""
  c = koch.get_config(preset)
  c.model.dtype = dtype
  c.model.conv_impl = conv_impl
  if image_size:
    c.model.image_size = image_size
  c.augment.enabled = False
  c.augment.class_rotations = False
  c.train.pair_mode = "independent"
  c.train.fixed_pairs = 0
  c.train.batch_size = batch
  c.train.optimizer = "adam"
  c.train.learning_rate = 1e-4
  c.train.lr_schedule = "constant"
  c.train.steps_per_epoch = 1000
  return c


def _run_jax(spec: dict, params_np) -> dict:
  del params_np  # the same init from the same seed
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import input_pipeline, train  # pylint: disable=g-import-not-at-top
  from siamese_jax import model as model_lib  # pylint: disable=g-import-not-at-top

  c = bench_config(spec["preset"], spec["dtype"], spec["batch"], spec.get("image_size"), spec["conv_impl"])
  state, optimizer = train.create_train_state(jax.random.PRNGKey(0), c)
  s = c.model.image_size
  images = np.random.default_rng(0).integers(0, 256, (50, 20, s, s, 1), dtype=np.uint8)
  data = input_pipeline.make_data(c.train, c.seed, images)
  setup_rss = rss_bytes("VmRSS")  # libraries, parameters and data; before compiling the step
  step = train.make_train_step(c, optimizer)
  temp = step.lower(state, data).compile().memory_analysis().temp_size_in_bytes
  holder = {"state": state}

  def one():
    holder["state"], m = step(holder["state"], data)
    return m["loss"]

  times = timing.block_timings(one, spec["repeats"], spec["steps"], jax.block_until_ready, spec.get("min_block_s", 0.0))
  dtype = model_lib.compute_dtype(c.model.dtype)[0]
  return {
    "step_s": times,
    "xla_temp_bytes": int(temp),
    "setup_rss_bytes": setup_rss,
    "backend": jax.default_backend(),
    "computed_in": dtype.name,
  }


def _run_torch(spec: dict, params_np) -> dict:
  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  host.tune_allocator()  # the same allocator settings as ours
  import torch  # pylint: disable=g-import-not-at-top

  from siamese_jax.tools import torch_reference as tr  # pylint: disable=g-import-not-at-top

  torch.set_num_threads(os.cpu_count())
  torch.manual_seed(0)
  bf16 = spec["dtype"] == "bfloat16"
  net = tr.TorchSiamese(params_np)
  step = tr.make_step(net, lr=1e-4, bf16=bf16, compile=spec.get("torch_mode") == "compile")
  rng = np.random.default_rng(0)
  s, b = params_np["_image_size"], spec["batch"]
  x_a = tr.nchw(rng.random((b, s, s, 1), np.float32), bf16)
  x_b = tr.nchw(rng.random((b, s, s, 1), np.float32), bf16)
  labels = torch.from_numpy(rng.integers(0, 2, b).astype(np.float32))
  setup_rss = rss_bytes("VmRSS")  # libraries, parameters and data; before the first (compiling) step
  times = timing.block_timings(
    lambda: step(x_a, x_b, labels), spec["repeats"], spec["steps"], lambda r: r.item(), spec.get("min_block_s", 0.0)
  )
  threads, version = torch.get_num_threads(), torch.__version__
  return {"step_s": times, "setup_rss_bytes": setup_rss, "threads": threads, "version": version}


def rss_bytes(field: str = "VmHWM") -> int:
  """This process's resident size now (VmRSS) or at its peak (VmHWM; ru_maxrss would carry the
  forking parent's over exec)."""
  try:
    with open("/proc/self/status") as f:
      return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))
  except (OSError, StopIteration):
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(conn, framework: str, spec: dict, params_np) -> None:
  try:
    result = (_run_jax if framework == "jax" else _run_torch)(spec, params_np)
    result["peak_rss_bytes"] = rss_bytes()
  except Exception as e:  # pylint: disable=broad-except
    result = {"error": f"{type(e).__name__}: {e}"}
  conn.send(result)


def measure(framework: str, spec: dict, params_np=None) -> dict:
  """Runs one timing in a fresh process; returns its result with pairs/s and images/s added."""
  ctx = mp.get_context("spawn")
  parent, child = ctx.Pipe(duplex=False)
  proc = ctx.Process(target=_child, args=(child, framework, spec, params_np))
  proc.start()
  child.close()  # the child's end: a child that dies closes the pipe
  timeout = FLAGS.row_timeout if FLAGS.is_parsed() else 3600
  deadline = time.time() + timeout
  while not parent.poll(1.0) and proc.is_alive() and time.time() < deadline:
    pass
  try:
    result = parent.recv() if parent.poll(0) else None
  except EOFError:
    result = None
  if result is None and proc.is_alive():
    proc.kill()
    result = {"error": f"did not finish in {timeout} s"}
  proc.join()
  if result is None:
    result = {"error": f"the measuring process died (exit code {proc.exitcode})"}
  if "step_s" in result:
    result["median_step_s"] = statistics.median(result["step_s"])
    result["pairs_per_s"] = spec["batch"] / result["median_step_s"]
    result["images_per_s"] = 2 * result["pairs_per_s"]
  return {"framework": framework, **spec, **result}


def numpy_params(c) -> dict:
  """The preset's initial parameters as numpy (what PyTorch copies), plus the input size."""
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import model  # pylint: disable=g-import-not-at-top

  params = jax.tree_util.tree_map(np.asarray, model.init(jax.random.PRNGKey(0), c.model))
  params["_image_size"] = c.model.image_size
  return params


def torch_available() -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top

  if importlib.util.find_spec("torch") is None:
    return False
  return True


def _fmt(x, spec=".1f") -> str:
  return "n/a" if x is None else format(x, spec)


def _row_name(r: dict) -> str:
  if r["framework"] == "torch":
    name = "PyTorch " + ("torch.compile (inductor)" if r.get("torch_mode") == "compile" else "eager")
  else:
    name = f"siamese_jax conv_impl={r['conv_impl']}"
    if r.get("computed_in") and r["computed_in"] != r["dtype"]:
      name += f" (computes in {r['computed_in']}: `model.compute_dtype`)"
  return name + (f" ({r['error'][:60]})" if "error" in r else "")


def train_table(rows: list[dict]) -> str:
  """Markdown table of the `train` section; the ratio is against the fastest PyTorch row of the
  same network and dtype."""
  ref = {}
  for r in rows:
    if r["framework"] == "torch" and r.get("pairs_per_s"):
      key = (r["preset"], r["dtype"])
      ref[key] = max(ref.get(key, 0.0), r["pairs_per_s"])
  lines = [
    "| network | dtype | implementation | pairs/s | images/s | GFLOP/s | ours / best PyTorch | peak RSS MiB"
    " | peak - setup MiB | XLA temp MiB |",
    "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ]
  for r in rows:
    pps = r.get("pairs_per_s")
    name = _row_name(r)
    torch_pps = ref.get((r["preset"], r["dtype"]))
    ratio = pps / torch_pps if (r["framework"] == "jax" and pps and torch_pps) else None
    gflops = pps * 2 * 3 * r["fwd_flops"] / 1e9 if pps else None
    temp = r.get("xla_temp_bytes")
    peak, setup = r.get("peak_rss_bytes"), r.get("setup_rss_bytes")
    lines.append(
      f"| {r['preset']} {r['image_size_used']}px | {r['dtype']} | {name} | {_fmt(pps)} | "
      f"{_fmt(pps and 2 * pps)} | {_fmt(gflops, '.0f')} | {_fmt(ratio, '.2f')} | "
      f"{_fmt(peak and peak / 2**20, '.0f')} | {_fmt(peak and setup and (peak - setup) / 2**20, '.0f')} | "
      f"{_fmt(temp and temp / 2**20, '.0f')} |"
    )
  return "\n".join(lines)


def scaling_table(rows: list[dict], key: str) -> str:
  lines = [f"| {key} | step s | pairs/s | peak RSS MiB | XLA temp MiB |", "| ---: | ---: | ---: | ---: | ---: |"]
  for r in rows:
    lines.append(
      f"| {r[key]} | {_fmt(r.get('median_step_s'), '.3f')} | {_fmt(r.get('pairs_per_s'))} | "
      f"{_fmt(r.get('peak_rss_bytes') and r['peak_rss_bytes'] / 2**20, '.0f')} | "
      f"{_fmt(r.get('xla_temp_bytes') and r['xla_temp_bytes'] / 2**20, '.0f')} |"
    )
  return "\n".join(lines)


def _merge_rounds(results: list[dict]) -> dict:
  """One row from the same measurement in several fresh processes: the median over processes of
  their median step times (a process's own speed varies by up to a fifth on a shared machine)."""
  if len(results) == 1 or any("median_step_s" not in r for r in results):
    return next((r for r in results if "median_step_s" not in r), results[0])
  row = dict(results[-1])
  row["round_step_s"] = [r["median_step_s"] for r in results]
  row["median_step_s"] = statistics.median(row["round_step_s"])
  row["pairs_per_s"] = row["batch"] / row["median_step_s"]
  row["images_per_s"] = 2 * row["pairs_per_s"]
  return row


def run_train(log) -> list[dict]:
  have_torch = torch_available()
  specs = []  # (framework, spec, torch params)
  for preset in FLAGS.presets:
    c = bench_config(preset, "float32", FLAGS.batch)
    params_np = numpy_params(c) if have_torch else None
    for dtype in FLAGS.dtypes:
      base = {
        "preset": preset,
        "dtype": dtype,
        "batch": FLAGS.batch,
        "repeats": FLAGS.repeats,
        "steps": FLAGS.steps,
        "min_block_s": FLAGS.min_block_s,
        "fwd_flops": forward_flops(c.model),
        "image_size_used": c.model.image_size,
      }
      specs += [("jax", {**base, "conv_impl": impl}, None) for impl in FLAGS.conv_impls]
      specs += [("torch", {**base, "conv_impl": "n/a", "torch_mode": m}, params_np) for m in FLAGS.torch_modes]
  results = [[] for _ in specs]
  for round_ in range(FLAGS.train_rounds):
    for (framework, spec, params_np), out in zip(specs, results):
      if framework == "torch" and not have_torch:
        out.append({"framework": "torch", **spec, "error": "PyTorch not installed"})
        continue
      r = measure(framework, spec, params_np)
      log(
        f"  round {round_ + 1}: {spec['preset']} {spec['dtype']} {framework} "
        f"{spec.get('torch_mode', spec['conv_impl'])}: "
        + (f"{r['pairs_per_s']:.2f} pairs/s" if "pairs_per_s" in r else r.get("error", "?"))
      )
      out.append(r)
  return [_merge_rounds(r) for r in results]


def run_scaling(log) -> dict:
  out = {"batch": [], "image_size": []}
  for b in map(int, FLAGS.scaling_batches):
    spec = {"preset": "koch", "dtype": "float32", "batch": b, "conv_impl": "auto", "repeats": 3, "steps": 1}
    out["batch"].append(measure("jax", spec))
    log(f"  batch {b}: {out['batch'][-1].get('pairs_per_s', float('nan')):.2f} pairs/s")
  for s in map(int, FLAGS.scaling_sizes):
    spec = {
      "preset": "koch",
      "dtype": "float32",
      "batch": FLAGS.batch,
      "image_size": s,
      "conv_impl": "auto",
      "repeats": 3,
      "steps": 1,
    }
    out["image_size"].append(measure("jax", spec))
    log(f"  {s}x{s}: {out['image_size'][-1].get('pairs_per_s', float('nan')):.2f} pairs/s")
  return out


def plot_scaling(scaling: dict, path: str) -> None:
  plt = figures.pyplot()

  fig, axes = plt.subplots(1, 2, figsize=(10, 4))
  for ax, key, label in ((axes[0], "batch", "pairs per step"), (axes[1], "image_size", "input side (px), 32 pairs")):
    rows = [r for r in scaling[key] if "median_step_s" in r]
    ax.plot([r[key] for r in rows], [r["median_step_s"] for r in rows], "o-")
    ax.set_xlabel(label)
    ax.set_ylabel("seconds per train step")
    ax.grid(alpha=0.3)
  fig.suptitle("siamese_jax train step, Koch network, float32")
  fig.tight_layout()
  figures.save(fig, path)
  plt.close(fig)


def naive_predictions(params, spec, query: np.ndarray, candidates: np.ndarray, image_size: int, batch: int = 128):
  """argmax over candidates of score(query, candidate), every pair through the network (2 encodes a pair).

  query: uint8 [T, H, W, 1]; candidates: uint8 [T, N, H, W, 1]. Returns (int [T], encoder passes).
  """
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import model  # pylint: disable=g-import-not-at-top
  from siamese_jax.omniglot import loader  # pylint: disable=g-import-not-at-top

  t, n = candidates.shape[:2]
  a = loader.resize_images(np.repeat(query, n, axis=0), image_size)
  b = loader.resize_images(candidates.reshape((-1,) + candidates.shape[2:]), image_size)
  score = jax.jit(model.score, static_argnums=1)
  out = []
  for i in range(0, len(a), batch):
    ca, cb = a[i : i + batch], b[i : i + batch]
    pad = batch - len(ca)
    if pad:
      ca, cb = (np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)]) for x in (ca, cb))
    out.append(np.asarray(score(params, spec, ca, cb))[: batch - pad])
  return np.argmax(np.concatenate(out).reshape(t, n), axis=1), 2 * len(a)


def _timed(fn):
  t = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t


def compare_lake(params, spec, runs, image_size: int, batch_size: int) -> dict:
  """Lake's runs scored embed-once (the harness) and naively; times, encoder passes, same answers."""
  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  scorer = oneshot.model_scorer(params, spec)
  evaluate.score_lake_runs(scorer, runs[:1], image_size, batch_size)  # compile both paths
  naive_predictions(params, spec, runs[0].test[:1], runs[0].train[None, :1], image_size)
  fast, t_fast = _timed(lambda: evaluate.score_lake_runs(scorer, runs, image_size, batch_size))
  (preds, passes), t_naive = _timed(
    lambda: naive_predictions(
      params,
      spec,
      np.concatenate([r.test for r in runs]),
      np.stack([r.train for r in runs for _ in r.test]),
      image_size,
    )
  )
  naive_correct = int(np.sum(preds == np.concatenate([r.answer for r in runs])))
  return {
    "what": f"Lake's {len(runs)} runs",
    "embed_once_s": t_fast,
    "embed_once_passes": fast["encoder_passes"],
    "naive_s": t_naive,
    "naive_passes": passes,
    "same_accuracy": naive_correct == fast["correct"],
  }


def compare_sweep(params, spec, chars, image_size: int, n_way: int, num_tasks: int, batch_size: int) -> dict:
  """A within-alphabet N-way sweep embed-once (the harness) and naively on the very same tasks."""
  from siamese_jax import evaluate, oneshot  # pylint: disable=g-import-not-at-top

  scorer = oneshot.model_scorer(params, spec)
  args = ((n_way,), ("within_alphabet",), 1, num_tasks, 0)  # ways, protocols, shots, tasks, seed
  ((row,), fast_passes), t_fast = _timed(lambda: evaluate.nway_accuracy(scorer, chars, "evaluation", *args, batch_size))
  ((tasks, _),) = evaluate.nway_tasks(chars, *args)
  flat = chars.images.reshape((-1,) + chars.images.shape[2:])
  (preds, passes), t_naive = _timed(
    lambda: naive_predictions(params, spec, flat[tasks.query], flat[tasks.support[:, :, 0]], image_size)
  )
  return {
    "what": f"{num_tasks}-task {n_way}-way sweep",
    "embed_once_s": t_fast,
    "embed_once_passes": fast_passes,
    "naive_s": t_naive,
    "naive_passes": passes,
    "same_accuracy": int(np.sum(preds == tasks.target)) == row["correct"],
  }


def run_eval(log) -> list[dict]:
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import lake_runs, model  # pylint: disable=g-import-not-at-top
  from siamese_jax.omniglot import loader  # pylint: disable=g-import-not-at-top

  c = koch.get_config("koch")
  c.model.init = "he"  # untrained, but with scores far enough apart that float round-off decides no argmax
  size, bs = c.model.image_size, c.eval.batch_size
  params = model.init(jax.random.PRNGKey(0), c.model)
  manual_dir = loader.resolve_manual_dir(FLAGS.manual_dir)
  runs = lake_runs.load_runs(lake_runs.find_runs_zip(None, manual_dir, None))
  rows = [compare_lake(params, model.spec(c.model), runs, size, bs)]
  log(f"  Lake: embed-once {rows[-1]['embed_once_s']:.1f} s, naive {rows[-1]['naive_s']:.1f} s")
  chars = loader.load_characters("evaluation", image_size=size, data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir)
  rows.append(compare_sweep(params, model.spec(c.model), chars, size, 20, FLAGS.num_tasks, bs))
  log(f"  sweep: embed-once {rows[-1]['embed_once_s']:.1f} s, naive {rows[-1]['naive_s']:.1f} s")
  return rows


def eval_table(rows: list[dict]) -> str:
  lines = [
    "| evaluation | embed-once s | encoder passes | naive s | encoder passes | speed-up | same accuracy |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
  ]
  for r in rows:
    lines.append(
      f"| {r['what']} | {r['embed_once_s']:.1f} | {r['embed_once_passes']} | {r['naive_s']:.1f} | "
      f"{r['naive_passes']} | {r['naive_s'] / r['embed_once_s']:.1f}x | {r['same_accuracy']} |"
    )
  return "\n".join(lines)


def machine() -> str:
  """The CPU, its vector/matrix extensions among AVX2, AVX-512, AVX-512 BF16 and AMX, and the frameworks."""
  import jax  # pylint: disable=g-import-not-at-top

  from siamese_jax import host  # pylint: disable=g-import-not-at-top

  info = host.cpu_info()
  has = {e: e in info["extensions"] for e in host.CPU_EXTENSIONS}
  ext = ", ".join(f"{e} {'yes' if v else 'no'}" for e, v in has.items())
  torch_version = "not installed"
  if torch_available():
    import torch  # pylint: disable=g-import-not-at-top

    torch_version = torch.__version__
  return (
    f"{info['model']}, {info['cores']} cores ({ext}); jax {jax.__version__} ({jax.default_backend()}),"
    f" PyTorch {torch_version}"
  )


def main(argv):
  del argv
  os.makedirs(FLAGS.out, exist_ok=True)
  log = lambda s: print(s, flush=True)
  report = {
    "machine": machine(),
    "command": "python -m siamese_jax.tools.bench_train "
    + " ".join(f"--{k}={v}" for k, v in (("sections", ",".join(FLAGS.sections)),)),
  }
  md = [f"Machine: {report['machine']}", ""]
  if "train" in FLAGS.sections:
    log(
      f"train step, {FLAGS.batch} pairs, median of {FLAGS.repeats} blocks of >= {FLAGS.min_block_s:g} s"
      f" (>= {FLAGS.steps} steps), median over {FLAGS.train_rounds} process(es) interleaved:"
    )
    report["train"] = run_train(log)
    md += ["Train step:", "", train_table(report["train"]), ""]
  if "preset" in FLAGS.sections:
    from siamese_jax.tools import cpu_step  # pylint: disable=g-import-not-at-top

    log("the :cpu preset's train step and validation:")
    trees = [os.path.abspath(t) for t in FLAGS.preset_trees]
    results = cpu_step.interleaved(trees, FLAGS.preset_rounds, FLAGS.manual_dir, FLAGS.data_dir, log=log)
    report["preset"] = results
    md += ["The `:cpu` preset's train step and validation:", "", cpu_step.table(results), ""]
  if "scaling" in FLAGS.sections:
    log("scaling (Koch network, float32, conv_impl=auto):")
    report["scaling"] = run_scaling(log)
    plot_scaling(report["scaling"], os.path.join(FLAGS.out, "bench_scaling.png"))
    md += [
      "Step time against batch size (pairs):",
      "",
      scaling_table(report["scaling"]["batch"], "batch"),
      "",
      f"Step time against input size ({FLAGS.batch} pairs):",
      "",
      scaling_table(report["scaling"]["image_size"], "image_size"),
      "",
    ]
  if "eval" in FLAGS.sections:
    log("evaluation (Koch network):")
    report["eval"] = run_eval(log)
    md += ["Evaluation:", "", eval_table(report["eval"]), ""]
  text = "\n".join(md)
  print("\n" + text)
  with workdir_lib.atomic_file(os.path.join(FLAGS.out, "bench.md")) as f:
    f.write(text + "\n")
  with workdir_lib.atomic_file(os.path.join(FLAGS.out, "bench.json")) as f:
    json.dump(report, f, indent=1, default=str)
  log(f"wrote {FLAGS.out}/bench.md, bench.json" + (", bench_scaling.png" if "scaling" in FLAGS.sections else ""))


if __name__ == "__main__":
  app.run(main)
