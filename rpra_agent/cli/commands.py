"""Imports every command module so that each registers its commands on ``app``.

Each feature area owns one module under ``rpra_agent/cli/`` and adds one import here.
"""

from __future__ import annotations
