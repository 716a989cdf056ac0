"""Placeholder until the evaluation harness lands."""


def evaluate_workdir(config, workdir, params=None):
  return {}
