"""A class built method by method (crew/answers/by_method.py, crew/run/by_method.py): the skeleton read, one
method taken from each answer, the module put back together, and implement's third attempt composed so."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

from crew.answers import by_method
from crew.config import load_project
from crew.run.workflow import execute, open_state, run_inputs
from tests.fake_llm import ScriptedLLM

TASK = '''Write counter.py with the class `Counter` below, complete and working.

```python
import math


class Counter:
    """Counts."""

    def __init__(self):
        self.n = 0

    def add(self, k):
        """Adds k; returns the total.
        >>> c = Counter()
        >>> c.add(2)
        2
        """

    def reset(self):
        """Sets the total to 0; returns 0.
        >>> c = Counter()
        >>> c.reset()
        0
        """
```
'''


def test_the_skeleton_lists_the_methods_left_empty_not_those_with_a_body() -> None:
    sk = by_method.skeleton(TASK)
    assert sk is not None and sk.cls == "Counter" and sk.todo == ("add", "reset")
    assert by_method.skeleton("Write `f(x)`.\n\n```python\ndef f(x):\n    pass\n```") is None
    request = by_method.request("the task", sk, "add")
    assert "only the method `add` of the class `Counter`" in request and request.startswith("the task")


def test_a_method_is_taken_from_an_answer_alone_or_inside_its_class_and_empty_ones_are_not() -> None:
    alone = "Here:\n```python\ndef add(self, k):\n    self.n += k\n    return self.n\n```"
    assert by_method.method_source(alone, "add") == "def add(self, k):\n    self.n += k\n    return self.n"
    inside = "```python\nclass Counter:\n    def reset(self):\n        self.n = 0\n        return 0\n```"
    assert by_method.method_source(inside, "reset") == "def reset(self):\n    self.n = 0\n    return 0"
    assert by_method.method_source("```python\ndef add(self, k):\n    pass\n```", "add") is None
    assert by_method.method_source("```python\ndef add(self, k:\n```", "add") is None
    assert by_method.method_source("no code", "add") is None


def test_the_module_is_the_skeleton_with_each_written_method_in_place() -> None:
    sk = by_method.skeleton(TASK)
    assert sk is not None
    code = by_method.assemble(sk, {"add": "def add(self, k):\n    self.n += k\n    return self.n"})
    assert code is not None and code.startswith("import math")
    ns: dict[str, object] = {}
    exec(compile(code, "counter.py", "exec"), ns)  # noqa: S102 - our own fixture code
    counter = ns["Counter"]()  # type: ignore[operator]
    assert counter.add(2) == 2 and counter.add(3) == 5
    assert counter.reset() is None   # left as the skeleton has it: a docstring only
    # a method that cannot sit in the class (its text breaks the module) makes the whole result None
    assert by_method.assemble(sk, {"add": "def add(self, k):\nreturn 1"}) is None
    methods = [n.name for n in ast.walk(ast.parse(code)) if isinstance(n, ast.FunctionDef)]
    assert methods == ["__init__", "add", "reset"]


BAD = '''```python
# file: counter.py
class Counter:
    def __init__(self):
        self.n = 0

    def add(self, k):
        return k * 10

    def reset(self):
        return 1
```'''


def test_implements_third_attempt_is_the_class_composed_method_by_method(project_dir: Path) -> None:
    project = load_project(project_dir)
    project = replace(project, tasks=replace(project.tasks, workflow=replace(
        project.tasks.workflow, consensus_samples=0, assumed_examples=0, second_opinions=0, class_by_method=True)))
    direct = [BAD,                                                        # attempt 2: the one-shot request
              "```python\ndef add(self, k):\n    self.n += k\n    return self.n\n```",   # attempt 3: add …
              "```python\nclass Counter:\n    def reset(self):\n        self.n = 0\n        return 0\n```"]  # … reset
    script = {"specify": ["Counter counts."], "implement": [BAD], "?": direct,
              "write_tests": ["```python\n# file: test_counter.py\nfrom counter import Counter\n\n\n"
                              "def test_add():\n    assert Counter().add(1) == 1\n```"],
              "document": ["```markdown\n<!-- file: README.md -->\n# counter\n```"], "report": ["Built it."]}
    llms = {name: ScriptedLLM(model=f"scripted-{name}", script=script) for name in project.agents}
    inputs = run_inputs(project, task=TASK, module="counter.py")
    run_dir = project_dir / "runs" / "r1"
    run_dir.mkdir(parents=True)
    inputs["workspace"] = str(run_dir / "code")
    messages: list[str] = []
    state = open_state(project, run_dir, inputs, messages.append)
    execute(project, llms, state, inputs)
    module = (run_dir / "code" / "counter.py").read_text()
    assert "self.n += k" in module and "return 0" in module
    assert state.last is not None and state.last.ok
    assert any("method by method: 2 of 2 methods written" in m for m in messages)
    asked = [text for task, text in llms["developer"].seen if task == "?"]
    assert len(asked) == 3 and "only the method `add`" in asked[1] and "only the method `reset`" in asked[2]
