"""The same Siamese network and loss in PyTorch, for side-by-side benchmarks.

`TorchSiamese(params)` copies a siamese_jax parameter pytree (numpy or JAX arrays)
into the layers PyTorch users would write: Conv2d (NCHW) (+ GroupNorm) + ReLU + max_pool2d,
Linear + sigmoid, and a Linear head on |e1 - e2|. The embedding layer's rows are
reordered from siamese_jax's (h, w, c) flattening to PyTorch's (c, h, w), so both
compute the same function (checked in tests/test_bench.py). Needs the `bench`
extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

EPS = float(np.finfo(np.float32).eps)


def _tensor(a) -> torch.Tensor:
  return torch.from_numpy(np.array(a, dtype=np.float32))


class TorchSiamese(nn.Module):
  """Twin encoder and |e1 - e2| head with the weights of a siamese_jax pytree."""

  def __init__(self, params):
    super().__init__()
    n = sum(1 for k in params if k.startswith("conv"))
    self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
    for i in range(n):
      p = params[f"conv{i}"]
      w = np.asarray(p["w"])  # [k, k, C_in, C_out]
      conv = nn.Conv2d(w.shape[2], w.shape[3], w.shape[0], bias="g" not in p)
      conv.weight.data = _tensor(w.transpose(3, 2, 0, 1))
      norm = nn.Identity()
      if "g" in p:  # group norm, gain [G, C / G], then the layer's bias
        norm = nn.GroupNorm(p["g"].shape[0], w.shape[3], eps=1e-5)
        norm.weight.data, norm.bias.data = _tensor(np.asarray(p["g"]).reshape(-1)), _tensor(p["b"])
      else:
        conv.bias.data = _tensor(p["b"])
      self.convs.append(conv)
      self.norms.append(norm)
    w = np.asarray(params["embed"]["w"])  # [side*side*C, E], rows in (h, w, c) order
    c_last = self.convs[-1].out_channels
    side = int(round((w.shape[0] // c_last) ** 0.5))
    w_chw = w.reshape(side, side, c_last, -1).transpose(2, 0, 1, 3).reshape(w.shape[0], -1)
    self.embed = nn.Linear(w.shape[0], w.shape[1])
    self.embed.weight.data = _tensor(w_chw.T)
    self.embed.bias.data = _tensor(params["embed"]["b"])
    self.head = nn.Linear(w.shape[1], 1)
    self.head.weight.data = _tensor(np.asarray(params["head"]["w"]).T)
    self.head.bias.data = _tensor(params["head"]["b"])

  def encode(self, x: torch.Tensor) -> torch.Tensor:
    """Ink images [B, 1, H, W] in [0, 1] -> embeddings [B, E] in (0, 1)."""
    for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
      x = F.relu(norm(conv(x)))
      if i < len(self.convs) - 1:
        x = F.max_pool2d(x, 2)
    return torch.sigmoid(self.embed(x.flatten(1)))

  def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
    """Pair logits [B]."""
    return self.head(torch.abs(self.encode(x_a) - self.encode(x_b))).squeeze(-1)


def clamped_bce(logits: torch.Tensor, labels: torch.Tensor, eps: float = EPS) -> torch.Tensor:
  """Mean BCE with p = clip(sigmoid(logit), eps, 1 - eps), as siamese_jax.losses."""
  p = torch.sigmoid(logits.float()).clamp(eps, 1.0 - eps)
  return -(labels * torch.log(p) + (1.0 - labels) * torch.log1p(-p)).mean()


def make_step(net: TorchSiamese, lr: float = 1e-4, bf16: bool = False, compile: bool = False):
  """One Adam train step step(x_a, x_b, labels) -> loss: forward of both images, loss, backward, update.

  bf16: autocast to bfloat16 with channels_last activations (parameters and Adam
  state stay float32), PyTorch's fast CPU path. compile: the forward and loss through
  `torch.compile` (inductor; the backward is compiled by AOTAutograd), Adam eager.
  """
  opt = torch.optim.Adam(net.parameters(), lr=lr)
  if bf16:
    net.to(memory_format=torch.channels_last)

  def forward_loss(x_a, x_b, labels):
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
      return clamped_bce(net(x_a, x_b), labels)

  if compile:
    forward_loss = torch.compile(forward_loss)

  def step(x_a, x_b, labels):
    opt.zero_grad(set_to_none=True)
    loss = forward_loss(x_a, x_b, labels)
    loss.backward()
    opt.step()
    return loss

  return step


def nchw(images: np.ndarray, channels_last: bool = False) -> torch.Tensor:
  """Float ink images [B, H, W, 1] (numpy) -> a [B, 1, H, W] tensor."""
  t = torch.from_numpy(np.ascontiguousarray(images, np.float32)).permute(0, 3, 1, 2).contiguous()
  return t.to(memory_format=torch.channels_last) if channels_last else t
