"""Stage 3, the runs: the recorded data (replay) or live models through the actual RPRA graph.

- :mod:`.pipeline`: :func:`run_replay_eval` (``rpra eval --dataset NAME``).
- :mod:`.live`: :func:`run_live_eval` (``rpra eval --small --large --judge``).
- :mod:`.replay`: the replay chat models and judge that answer from a recording.
- :mod:`.crossfit`: fold assignment and the cross-fitted report cards.
- :mod:`.calibrate`: the run's threshold, chosen and stored as a calibration artifact.
- :mod:`.judged`: judged keep-scores from a dataset or a store, for ``rpra calibrate``.
- :mod:`.routers`: the routers an evaluation compares, by name.

Import the submodules directly: this package does not import them eagerly, so that
loading one stage does not load LangGraph.
"""

__all__: list[str] = []
