"""A task with its examples taken out: how the crew does when the user gives none (issue #26, assumed examples).

Users' tasks often state no example (the prose tasks of issue #26: `primes.py`, `wrap_text`), and that is where
the crew's verdict rests on model-written tests alone. HumanEval's prompts almost all carry doctests; with them
removed, the same hidden tests judge a task the crew must read from words only. Removed: `>>>` lines with the
output lines under them, lines that state a call of the entry point with its result (`f(x) == y`, `f(x) -> y`,
`f(x) ➞ y`, "returns"), and the "For example:" headings they sat under. A task whose text still yields an
example to the crew's own parser is not used (`strip` answers None), so the set holds only tasks the crew
sees as example-free.
"""

from __future__ import annotations

import re

_HEADING = re.compile(r"^\s*(for exam[pb]les?|exam[pb]les?|example \d+|for instance)\s*:?\s*$", re.IGNORECASE)
_RESULT = re.compile(r"(==|->|=>|➞|\breturns?\b|\bshould return\b|\bgives?\b)")
_ANY_CALL_RESULT = re.compile(r"^\w+\(.*\)\s*(==>?|->|=>|➞)")  # HumanEval/81 states its example under another name


def strip(prompt: str, entry_point: str) -> str | None:
    """The prompt without its examples; None when the crew's parser still finds one in it."""
    from crew.answers.task import ParsedTask

    out: list[str] = []
    in_output = False
    for line in prompt.splitlines():
        s = line.strip()
        if s.startswith(">>>"):
            in_output = True
            continue
        if in_output:
            if s and not s.startswith('"""') and not s.startswith("'''"):
                continue  # the doctest's expected output
            in_output = False
        if s.startswith(("def ", "class ", "async def ")):  # a signature, even with `-> float`
            out.append(line)
            continue
        if _HEADING.match(s):
            continue
        if f"{entry_point}(" in s and _RESULT.search(s.split(f"{entry_point}(", 1)[1]) or _ANY_CALL_RESULT.match(s):
            continue
        out.append(line)
    text = "\n".join(out)
    return None if ParsedTask.parse(text).examples else text
