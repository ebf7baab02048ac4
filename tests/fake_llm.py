"""A scripted LLM for unit tests of orchestration (never the proof that the product works)."""

from __future__ import annotations

from typing import Any

from crewai.llms.base_llm import BaseLLM
from pydantic import PrivateAttr


class ScriptedLLM(BaseLLM):
    """Answers each task from a list of canned replies (in order); records every prompt it saw."""

    script: dict[str, list[str]] = {}
    _seen: list[tuple[str, str]] = PrivateAttr(default_factory=list)

    def call(self, messages: Any, tools: Any = None, callbacks: Any = None, available_functions: Any = None,
             from_task: Any = None, from_agent: Any = None, response_model: Any = None) -> str:
        task = getattr(from_task, "name", None) or "?"
        text = messages if isinstance(messages, str) else "\n".join(str(m.get("content", "")) for m in messages)
        self._seen.append((task, text))
        replies = self.script.get(task) or ["Thought: done\nFinal Answer: (no script)"]
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        return reply if "Final Answer:" in reply else f"Thought: I now can give a great answer\nFinal Answer: {reply}"

    def supports_function_calling(self) -> bool:
        return False

    def supports_stop_words(self) -> bool:
        return False

    def get_context_window_size(self) -> int:
        return 8192

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self._seen
