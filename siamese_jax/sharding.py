"""Data parallelism with jax.sharding: a 1-D mesh over all devices, batches split along axis 0."""

from __future__ import annotations

import os

from absl import logging
import jax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = "data"
# Environment variables whose presence means a multi-process cluster (set by the launcher).
CLUSTER_ENV = ("JAX_COORDINATOR_ADDRESS", "SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")


def maybe_initialize_distributed() -> None:
  """Calls jax.distributed.initialize() when a cluster launcher's environment is present."""
  present = [v for v in CLUSTER_ENV if os.environ.get(v)]
  if present and not (present == ["SLURM_NTASKS"] and os.environ["SLURM_NTASKS"] == "1"):
    logging.info("multi-process environment (%s): jax.distributed.initialize()", ", ".join(present))
    jax.distributed.initialize()


def make_mesh(devices=None) -> Mesh:
  """A 1-D mesh named "data" over `devices` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def describe(mesh: Mesh) -> str:
  """The mesh's devices in words, e.g. "1 x NVIDIA H100 80GB HBM3 (gpu)" or "2 x cpu (cpu)"."""
  kinds = sorted({(d.device_kind, d.platform) for d in mesh.devices.flat})
  return ", ".join(f"{sum(d.device_kind == k for d in mesh.devices.flat)} x {k} ({p})" for k, p in kinds)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def constrain_batch(mesh: Mesh | None):
  """A function that marks an array's first axis as split across the mesh (identity if None)."""
  if mesh is None or mesh.size == 1:
    return lambda x: x
  return lambda x: jax.lax.with_sharding_constraint(x, batch_sharded(mesh))


def replicate(tree, mesh: Mesh):
  """Places every array of a pytree, whole, on every device of the mesh."""
  return jax.device_put(tree, replicated(mesh))
