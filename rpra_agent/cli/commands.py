"""Imports every command module so that each registers its commands on ``app``.

Each feature area owns one module under ``rpra_agent/cli/`` and adds one import here.
"""

from __future__ import annotations

from rpra_agent.cli import ask as ask  # noqa: F401  (rpra ask)
from rpra_agent.cli import calibrate as calibrate  # noqa: F401  (rpra calibrate)
from rpra_agent.cli import data as data  # noqa: F401  (rpra data list|convert)
from rpra_agent.cli import eval as eval_cli  # noqa: F401  (rpra eval)
from rpra_agent.cli import experiment as experiment  # noqa: F401  (rpra experiment)
from rpra_agent.cli import feedback  # noqa: F401  (rpra judge, report-card, export-sft, finetune)
from rpra_agent.cli import learned as learned  # noqa: F401  (rpra train-predictor)
from rpra_agent.cli import serve as serve  # noqa: F401  (rpra serve)
from rpra_agent.cli import store_cmds as store_cmds  # noqa: F401  (rpra stats, rpra log export|replay, rpra db upgrade|current)
from rpra_agent.cli.app import app, reflow_help  # noqa: E402  (after every command has registered)

reflow_help(app)
