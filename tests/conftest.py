"""Settings for the whole suite."""

from hypothesis import settings

# Hypothesis's per-example deadline (200 ms by default) is wall time: on shared CI cores one
# stalled example fails, and because its rerun is fast, Hypothesis reports it as Flaky. The
# bounds that matter are asserted where they are meant (on CPU time, in the fuzz tests) and
# measured in benchmarks/.
settings.register_profile("rpra", deadline=None)
settings.load_profile("rpra")
