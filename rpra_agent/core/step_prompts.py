"""The instructions the step gives the small model at each stage (reconstructions, not the paper's text).

The RPRA paper describes its stages (reason, predict, reason again, answer/act) but its
prompt text was not available; these are ours, versioned by :data:`STEP_PROMPTS_VERSION`.
"""

from __future__ import annotations

from collections.abc import Sequence

from rpra_agent.core.prediction import Prediction

__all__ = [
    "ANSWER_PROMPT",
    "LEARN_PROMPT",
    "REASON_PROMPT",
    "SHARE_PROMPT",
    "STEP_PROMPTS_VERSION",
    "plan_prompt",
    "reason_again_prompt",
]

STEP_PROMPTS_VERSION = "rpra-agent-step-2"

REASON_PROMPT = (
    "Before responding, think step by step about the latest request: what is asked, what you "
    "know, what you lack, what could go wrong, and whether a tool is needed. Write only your "
    "reasoning; do not write the reply yet."
)
ANSWER_PROMPT = (
    "Your private reasoning (never quote it; the user cannot see it):\n{reasoning}\n\nNow take your step: "
    "reply to the user, or call a tool."
)
LEARN_PROMPT = (
    "You predicted that your reply would be graded low, so do not reply yet: call the one tool "
    "that best gathers or computes what you lack."
)
SHARE_PROMPT = "Private notes from a smaller assistant (may be wrong; never quote them):\n{reasoning}"


def plan_prompt(tool_names: Sequence[str], reasoning: str | None = None) -> str:
    """Ask for the step's plan: ``answer``, or the name of the tool to call."""
    notes = f"Your private reasoning:\n{reasoning}\n\n" if reasoning else ""
    names = ", ".join(tool_names)
    return (
        f"{notes}Decide what your next step is: answer the user directly, or call one of the tools "
        f"({names}). Reply with exactly one word: answer, or the tool's name."
    )


def reason_again_prompt(reasoning: str, prediction: Prediction | None, verdict: str) -> str:
    """The second reasoning's instruction: the first reasoning, the prediction and the policy's verdict."""
    if prediction is None:
        predicted = "Your grade could not be predicted."
    else:
        predicted = (
            f"You predicted that a judge would grade this step {prediction.grade!r} "
            f"(expected score {prediction.expected_score:.2f}, "
            f"probability of an acceptable grade {prediction.p_acceptable:.2f})."
        )
    return (
        f"Here is your earlier private reasoning:\n{reasoning}\n\n{predicted} {verdict}\n\n"
        "Reason again in the light of this: check the earlier reasoning for mistakes and plan the "
        "step so that it meets the rubric (accuracy, relevance, completeness, clarity, instruction "
        "following, formatting). Write only the revised reasoning; do not write the reply yet."
    )
