"""A class built method by method (crew/answers/by_method.py): every method the skeleton leaves empty asked of
the developer's model at once, each in a request of its own, and the module put back together.

On when `workflow: class_by_method: true` and the task gives a class skeleton in a code block; implement's
third attempt is then the composed module (the second stays the one-shot request: the crew never does worse
than the model alone on a task whose one-shot answer passes the user's examples).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from crew.answers import by_method
from crew.run.drafter import final_answer

BY_METHOD_SEED_OFFSET = 3000  # never a draft's (1000 + k), an assumed request's (2000) nor a retry's (seed + 1, …)


def composer(llm: Any, task_for_developer: str, task: str, module: str, *, at_once: int,
             progress: Callable[[str], None]) -> Callable[[], str] | None:
    """A function that asks for every empty method at once and answers with the whole module in a fenced
    block, like any developer answer; None when the task gives no class skeleton."""
    sk = by_method.skeleton(task)
    if sk is None:
        return None
    base_seed = (getattr(llm, "seed", None) or 0) + BY_METHOD_SEED_OFFSET

    def ask(item: tuple[int, str]) -> str:
        i, method = item
        text = by_method.request(task_for_developer, sk, method)
        if not hasattr(llm, "sibling"):  # a scripted model: asked as it is
            return final_answer(str(llm.call([{"role": "user", "content": text}])))
        one = llm.sibling(temperature=llm.temperature, seed=base_seed + i)
        try:
            return final_answer(str(one.call([{"role": "user", "content": text}])))
        except Exception:  # noqa: BLE001 - a failed request costs that method, never the attempt
            return ""
        finally:
            llm.absorb(one)

    def compose() -> str:
        concurrent = hasattr(llm, "sibling") and getattr(llm, "server_slots", 1) > 1
        items = list(enumerate(sk.todo))
        if concurrent and at_once > 1:
            with ThreadPoolExecutor(min(at_once, len(items)), thread_name_prefix="method") as pool:
                answers = list(pool.map(ask, items))
        else:
            answers = [ask(item) for item in items]
        methods = {m: src for m, a in zip(sk.todo, answers, strict=True)
                   if (src := by_method.method_source(a, m)) is not None}
        code, written = by_method.module(sk, methods)
        progress(f"  the class method by method: {written} of {len(sk.todo)} methods written")
        return f"```python\n# file: {module}\n{code}```"

    return compose

