"""The network as two ONNX graphs that run without JAX: `encoder.onnx` and `head.onnx`.

  encoder.onnx: "image" uint8 [B, S, S, C] (grey: 0 ink, 255 paper; or RGB; `Siamese.prepare`) ->
                "embedding" float32 [B, E]
  head.onnx:    "embedding_a", "embedding_b" float32 [B, E] -> "probability" [B], "logit" [B]

The graphs are written with the `onnx` package's own builders from the model's explicit structure
(`model.Spec`), op for op as `model.encode` and `model.pair_logits` compute (NCHW inside). They score
each image once: the config's test-time augmentation is not part of them. Opset 17: ONNX Runtime
and every maintained runtime read it.
"""

from __future__ import annotations

import os

import numpy as np

from siamese_jax import model

OPSET = 17
GROUP_NORM_EPS = 1e-5  # as model.group_norm


class _Graph:
  """Nodes and initializers appended in order; `add` returns the new tensor's name."""

  def __init__(self):
    self.nodes, self.inits, self.count = [], [], 0

  def const(self, name: str, value) -> str:
    from onnx import numpy_helper  # pylint: disable=g-import-not-at-top

    self.inits.append(numpy_helper.from_array(np.asarray(value), name))
    return name

  def add(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
    from onnx import helper  # pylint: disable=g-import-not-at-top

    self.count += 1
    out = out or f"{op.lower()}_{self.count}"
    self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
    return out

  def model(self, name: str, inputs, outputs):
    from onnx import helper  # pylint: disable=g-import-not-at-top

    graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="siamese_jax")


def _group_norm(g: _Graph, x: str, gain: np.ndarray, bias: np.ndarray, i: int) -> str:
  """Group norm of x [B, C, H, W] with `gain` [G, C / G] and `bias` [C], as `model.group_norm`."""
  groups, c = gain.shape[0], gain.size
  shape = g.add("Shape", [x])
  grouped = g.add("Reshape", [x, g.const(f"conv{i}.groups", np.array([0, groups, -1], np.int64))])
  mean = g.add("ReduceMean", [grouped], axes=[2], keepdims=1)
  mean_sq = g.add("ReduceMean", [g.add("Mul", [grouped, grouped])], axes=[2], keepdims=1)
  var = g.add("Relu", [g.add("Sub", [mean_sq, g.add("Mul", [mean, mean])])])  # max(., 0)
  eps = g.const(f"conv{i}.eps", np.array(GROUP_NORM_EPS, np.float32))
  inv = g.add("Reciprocal", [g.add("Sqrt", [g.add("Add", [var, eps])])])
  xhat = g.add("Reshape", [g.add("Mul", [g.add("Sub", [grouped, mean]), inv]), shape])
  scale = g.const(f"conv{i}.g", gain.reshape(1, c, 1, 1).astype(np.float32))
  shift = g.const(f"conv{i}.b", bias.reshape(1, c, 1, 1).astype(np.float32))
  return g.add("Add", [g.add("Mul", [xhat, scale]), shift])


def encoder_model(params, spec: model.Spec):
  """The encoder of `params` (a `model.Spec` network) as an onnx.ModelProto."""
  from onnx import TensorProto, helper  # pylint: disable=g-import-not-at-top

  p = {k: {n: np.asarray(v, np.float32) for n, v in layer.items()} for k, layer in params.items()}
  g = _Graph()
  x = g.add("Cast", ["image"], to=TensorProto.FLOAT)
  x = g.add(
    "Sub", [g.const("one", np.array(1.0, np.float32)), g.add("Div", [x, g.const("255", np.array(255.0, np.float32))])]
  )
  x = g.add("Transpose", [x], perm=[0, 3, 1, 2])  # NHWC -> NCHW
  n = len(spec.features)
  for i in range(n):
    layer = p[f"conv{i}"]
    w = g.const(f"conv{i}.w", layer["w"].transpose(3, 2, 0, 1))  # HWIO -> OIHW
    if spec.norm_groups:
      x = _group_norm(g, g.add("Conv", [x, w]), layer["g"], layer["b"], i)
    else:
      x = g.add("Conv", [x, w, g.const(f"conv{i}.b", layer["b"])])
    if i < n - 1:
      x = g.add("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.add("Relu", [x])
  x = g.add("Flatten", [g.add("Transpose", [x], perm=[0, 2, 3, 1])], axis=1)  # flattened as NHWC, as in JAX
  x = g.add("Gemm", [x, g.const("embed.w", p["embed"]["w"]), g.const("embed.b", p["embed"]["b"])])
  g.add("Sigmoid", [x], out="embedding")
  s = spec.image_size
  inputs = [helper.make_tensor_value_info("image", TensorProto.UINT8, ["batch", s, s, spec.channels])]
  outputs = [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", spec.embed_dim])]
  return g.model("siamese_encoder", inputs, outputs)


def head_model(params, spec: model.Spec):
  """The pair head (`model.pair_logits` of `spec.head`, then a sigmoid) as an onnx.ModelProto."""
  from onnx import TensorProto, helper  # pylint: disable=g-import-not-at-top

  head = {n: np.asarray(v, np.float32) for n, v in params["head"].items()}
  g = _Graph()
  diff = g.add("Sub", ["embedding_a", "embedding_b"])
  b = g.const("head.b", head["b"][0])
  if spec.head == "euclidean":  # -s * |a - b|^2 + b
    sq = g.add("ReduceSum", [g.add("Mul", [diff, diff]), g.const("axes", np.array([1], np.int64))], keepdims=0)
    score = g.add("Mul", [sq, g.const("head.w", -head["w"][0, 0])])
  elif spec.head == "cosine":  # s * cos(a, b) + b
    tiny = g.const("tiny", np.array(1e-12, np.float32))
    unit = [
      g.add("Div", [e, g.add("Max", [g.add("ReduceL2", [e], axes=[1], keepdims=1), tiny])])
      for e in ("embedding_a", "embedding_b")
    ]
    cos = g.add("ReduceSum", [g.add("Mul", unit), g.const("axes", np.array([1], np.int64))], keepdims=0)
    score = g.add("Mul", [cos, g.const("head.w", head["w"][0, 0])])
  else:  # Koch's: w . |a - b| + b
    score = g.add("MatMul", [g.add("Abs", [diff]), g.const("head.w", head["w"][:, 0])])
  logit = g.add("Add", [score, b], out="logit")
  g.add("Sigmoid", [logit], out="probability")
  e = spec.embed_dim
  inputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["batch", e]) for k in ("embedding_a", "embedding_b")]
  outputs = [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["batch"]) for k in ("probability", "logit")]
  return g.model("siamese_head", inputs, outputs)


ENCODER_FILE, HEAD_FILE = "encoder.onnx", "head.onnx"


def write(params, spec: model.Spec, out: str) -> list[str]:
  """Writes encoder.onnx and head.onnx into the folder `out` (each checked, each atomically)."""
  import onnx  # pylint: disable=g-import-not-at-top

  from siamese_jax import workdir  # pylint: disable=g-import-not-at-top

  os.makedirs(out, exist_ok=True)
  paths = []
  for name, proto in ((ENCODER_FILE, encoder_model(params, spec)), (HEAD_FILE, head_model(params, spec))):
    onnx.checker.check_model(proto, full_check=True)
    path = os.path.join(out, name)
    with workdir.atomic_file(path, "wb") as f:
      f.write(proto.SerializeToString())
    paths.append(path)
  return paths


def export_workdir(workdir_path: str, out: str) -> list[str]:
  """Writes encoder.onnx, head.onnx and model.json (input size, embedding size, fitted threshold)."""
  from siamese_jax import api, workdir  # pylint: disable=g-import-not-at-top

  net = api.load(workdir_path, tta=False)
  paths = write(net.params, model.spec(net.config.model), out)
  results = workdir.read_eval(net.workdir) or {}
  fitted = results.get("verification", {}).get("fitted") if not int(net.config.eval.tta_copies) > 1 else None
  info = {
    "image_size": net.image_size,
    "channels": net.channels,
    "embed_dim": int(net.config.model.embed_dim),
    "input": "uint8 [B, S, S, channels] (grey: 0 ink, 255 paper), as Siamese.prepare gives",
    # The evaluation fitted its threshold for its own scorer; with test-time augmentation that is not this one.
    "threshold": float(fitted["threshold"]) if fitted else 0.5,
    "from": os.path.abspath(net.workdir),
  }
  path = os.path.join(out, "model.json")
  workdir.write_json(path, info)
  return [*paths, path]
