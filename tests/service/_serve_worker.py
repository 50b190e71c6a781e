"""``rpra serve``'s stack in a process the SIGKILL test can kill: uvicorn, the engine, a sync store.

Usage: python _serve_worker.py DATABASE_URL SPOOL PORT

Built exactly as ``rpra serve`` builds it (``build_components`` -> ``ChatEngine`` ->
``create_app``), with the default settings (``durability=sync``), except that the models
are test doubles and the predictor is a keyword rule (no model weights needed).
"""

from __future__ import annotations

import sys

import uvicorn

from rpra_agent.service.app import create_app
from rpra_agent.service.config import Components, Settings
from rpra_agent.service.engine import ChatEngine
from rpra_agent.store import open_store
from tests.service.conftest import KeywordPredictor, replier


def main() -> None:
    url, spool, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    settings = Settings(small_model="test:small", large_model="test:large", database_url=url)
    store = open_store(url, spool_path=spool, durability=settings.durability, on_loss=settings.on_loss)
    from rpra_agent.core.policy import ThresholdPolicy

    components = Components(
        replier("small"), replier("large"), KeywordPredictor(), ThresholdPolicy(settings.threshold), store, settings
    )
    app = create_app(ChatEngine.from_components(components, model_name="rpra"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
