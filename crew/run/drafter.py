"""The direct line to the developer's model: attempts at the module asked as one plain message (implement's
retries, the consensus, second opinions, verdict and assumed-example attempts), outside CrewAI's task loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crew.answers import answers
from crew.answers.task import ParsedTask

DRAFT_TEMPERATURE = 0.8
DRAFT_SEED_OFFSET = 1000  # drafts' seeds never coincide with the guardrail retries' (seed + 1, + 2, …)


# The direct request: the task and one sentence, what one shot is asked (benchmarks/bench_quality.py). Longer
# instructions (a `# file:` first line, "do not print at module level") made the 0.5B model echo the task's
# stub back (HumanEval/45: one shot answered working code, the crew's developer the bare signature twice);
# the system names the file and cuts import-time code itself.
DRAFT_SUFFIX = "\n\nAnswer with the complete Python module in one ```python code block."

# Independent attempts (the consensus, second opinions) serve for their behaviour; copied back, the task's
# docstrings and the model's comments were 46 % of what they decoded (the eighth session's 46 dev tasks).
LEAN_NOTE = "Answer with the code only: no docstrings, no comments, no examples, no tests."


def drafter(llm: Any, task: str) -> Callable[[int, bool, str], str]:
    """Attempts at the module asked of the developer's model directly (state.py: implement retries, second
    opinions): the task as one plain message plus an optional note, greedy or sampled hotter, each with a
    seed of its own."""

    advice = f" {answers.CLASS_ADVICE}" if answers.has_class_skeleton(task) else ""
    parsed = ParsedTask.parse(task)
    names = (*parsed.functions, *parsed.classes)  # the answer ends where a block defining these closes

    def ask(one: Any, note: str) -> str:
        text = task.strip() + DRAFT_SUFFIX + advice + (f"\n\n{note}" if note else "")
        answer = str(one.call([{"role": "user", "content": text}]))
        return final_answer(answer)

    def draft(k: int, greedy: bool, note: str) -> str:
        seed = (getattr(llm, "seed", None) or 0) + DRAFT_SEED_OFFSET + k
        temperature = llm.temperature if greedy else DRAFT_TEMPERATURE
        if hasattr(llm, "sibling"):  # our served model: a copy per request, so several can be in flight
            one = llm.sibling(temperature=temperature, seed=seed, done_when_defines=names)
            try:
                return ask(one, note)
            finally:
                llm.absorb(one)
        saved = {name: getattr(llm, name, None) for name in ("temperature", "seed")}
        try:
            llm.temperature = temperature
            if hasattr(llm, "seed"):
                llm.seed = seed
            return ask(llm, note)
        finally:
            for name, value in saved.items():
                if hasattr(llm, name):
                    setattr(llm, name, value)

    # several at once only where its server decodes them together (llama-server's slots): elsewhere they queue
    draft.concurrent = hasattr(llm, "sibling") and getattr(llm, "server_slots", 1) > 1  # type: ignore[attr-defined]
    return draft


def final_answer(answer: str) -> str:
    """A model used to CrewAI's format may still answer "Thought: … Final Answer: …": keep the answer."""
    return answer.split("Final Answer:", 1)[-1].lstrip(" ") if "Final Answer:" in answer else answer
