"""Host: the CPU's extensions and the allocator settings for XLA:CPU."""

from siamese_jax import host


def test_tune_allocator(monkeypatch):

  monkeypatch.setenv("SIAMESE_JAX_NO_MALLOC_TUNING", "1")
  assert host.tune_allocator() is False
  monkeypatch.delenv("SIAMESE_JAX_NO_MALLOC_TUNING")
  import ctypes.util
  import sys

  expected = sys.platform.startswith("linux") and "musl" not in (ctypes.util.find_library("c") or "")
  assert host.tune_allocator() is expected
