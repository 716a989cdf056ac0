"""Tools run as `python -m siamese_jax.tools.<name>`: benchmarks, validation studies, tables and figures over runs."""
