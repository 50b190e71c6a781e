"""Question answering: the small model answers or defers to the large one; no tools.

Environment: RPRA_SMALL_MODEL, RPRA_LARGE_MODEL (required), RPRA_DATABASE_URL,
RPRA_PARADIGM, RPRA_THRESHOLD or RPRA_CALIBRATION (a calibration stored in the decision
log), RPRA_MAX_STEPS (see rpra_agent.service.config).
"""

from rpra_agent.service.config import Settings, build_components, build_graph

components = build_components(Settings.from_env())
graph = build_graph(components, name="rpra_qa")
