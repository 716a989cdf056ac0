"""Wall time of the evaluation harness with the full Koch network at 105x105.

Times (1) Lake's 20 official runs (800 encoder passes, embed-once) and (2) a
400-task 20-way within-alphabet one-shot sweep on the evaluation alphabets, and
reports how many encoder passes each needs against the naive pairwise way
(2 encodes per query x candidate pair).

  python experiments/eval_speed.py [--manual_dir=../shared/omniglot] [--data_dir=...]
"""

import time

from absl import app
from absl import flags
import jax

from configs import koch
from siamese_jax import evaluate, lake_runs, model, oneshot
from siamese_jax.omniglot import loader

flags.DEFINE_string("manual_dir", None, "Folder with the Omniglot zips and all_runs.zip.")
flags.DEFINE_string("data_dir", None, "tfds data dir.")
flags.DEFINE_integer("num_tasks", 400, "Tasks in the 20-way sweep.")
flags.DEFINE_string("preset", "koch", "Config preset whose network is timed.")
FLAGS = flags.FLAGS


def timed(fn):
  t = time.perf_counter()
  out = fn()
  return out, time.perf_counter() - t


def main(_):
  config = koch.get_config(FLAGS.preset)
  params = model.init(jax.random.PRNGKey(0), config.model)
  scorer = oneshot.model_scorer(params)
  manual = loader.resolve_manual_dir(FLAGS.manual_dir)
  runs = lake_runs.load_runs(lake_runs.find_runs_zip(None, manual, None))
  size = config.model.image_size
  print(f"network: {FLAGS.preset} preset, {model.num_params(params):,} parameters, {size}x{size};"
        f" devices: {jax.devices()}")

  # Warm-up compiles the encoder at the batch size used below.
  evaluate.score_lake_runs(scorer, runs[:1], size, config.eval.batch_size)
  res, secs = timed(lambda: evaluate.score_lake_runs(scorer, runs, size, config.eval.batch_size))
  naive = sum(len(r.test) * len(r.train) * 2 for r in runs)
  print(f"Lake's 20 runs: {secs:.2f} s, {res['encoder_passes']} encoder passes (naive: {naive})")

  chars = loader.load_characters("evaluation", image_size=size, data_dir=FLAGS.data_dir,
                                 manual_dir=FLAGS.manual_dir)
  (rows, passes), secs = timed(lambda: evaluate.sweep(
      scorer, chars, "evaluation", (20,), ("within_alphabet",), 1, FLAGS.num_tasks, 0,
      config.eval.batch_size))
  naive = FLAGS.num_tasks * 20 * 2
  print(f"{FLAGS.num_tasks}-task 20-way within-alphabet sweep: {secs:.2f} s, {passes} encoder passes"
        f" (naive: {naive}); accuracy of the untrained network {rows[0]['accuracy']:.1f}%")


if __name__ == "__main__":
  app.run(main)
