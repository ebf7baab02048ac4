"""The task's docstrings put back into an attempt asked for the code alone (crew/answers/docstrings.py)."""

from __future__ import annotations

import ast

from crew.answers.docstrings import task_docstrings, with_task_docstrings

TASK = '''Write he30.py with the function `get_positive` below, complete and working.

```python
from typing import List


def get_positive(l: List[int]) -> List[int]:
    """Return only positive numbers in the list.
    >>> get_positive([-1, 2, -4, 5, 6])
    [2, 5, 6]
    """


class Stack:
    """A stack.

    Last in, first out."""

    def push(self, x):
        r"""Push x (a raw string: \\n stays two characters)."""
```
'''


def _doc(source: str, name: str) -> str | None:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name == name:
            return ast.get_docstring(node)
    raise AssertionError(name)


def test_the_docstrings_come_back_with_their_text_unchanged_where_the_body_is() -> None:
    lean = ("from typing import List\n\ndef get_positive(l: List[int]) -> List[int]:\n"
            "    return [x for x in l if x > 0]\n\n"
            "class Stack:\n  def __init__(self):\n    self.items = []\n\n"
            "  def push(self, x):\n    @staticmethod\n    def helper(): pass\n    self.items.append(x)\n")
    out, names = with_task_docstrings(lean, TASK)
    assert names == ["Stack", "Stack.push", "get_positive"]
    want = ast.get_docstring(ast.parse(TASK.split("```python\n")[1].split("```")[0]).body[1])
    assert _doc(out, "get_positive") == want
    assert _doc(out, "Stack") == "A stack.\n\nLast in, first out."
    assert _doc(out, "push") == "Push x (a raw string: \\n stays two characters)."
    ns: dict[str, object] = {}
    exec(compile(out, "m.py", "exec"), ns)  # noqa: S102 - our own fixture
    assert ns["get_positive"]([-1, 2]) == [2]  # type: ignore[operator]


def test_docstrings_the_attempt_wrote_and_names_the_task_does_not_give_are_left_alone() -> None:
    own = 'def get_positive(l):\n    """Mine."""\n    return l\n\ndef other():\n    return 1\n'
    assert with_task_docstrings(own, TASK) == (own, [])
    assert with_task_docstrings(own, "Write m.py with `f(x)` returning x.") == (own, [])


def test_what_cannot_take_a_docstring_is_returned_unchanged() -> None:
    one_line = "def get_positive(l): return [x for x in l if x > 0]\n"
    assert with_task_docstrings(one_line, TASK) == (one_line, [])
    broken = "def get_positive(l):\n    return [x for x in l if\n"
    assert with_task_docstrings(broken, TASK) == (broken, [])


def test_a_task_without_code_or_with_broken_code_gives_no_docstrings() -> None:
    assert task_docstrings("Write a function `f(x)` that doubles x.") == {}
    assert task_docstrings("```python\ndef f(:\n    \"\"\"Doc.\"\"\"\n```") == {}
