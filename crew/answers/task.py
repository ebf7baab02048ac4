"""The user's task, read once: its functions, classes, a class's methods, and its own examples.

Pure: the task's text in, a frozen record out (crew/answers/examples.py and sessions.py do the parsing).
"""

from __future__ import annotations

from dataclasses import dataclass

from crew.answers import examples, sessions
from crew.answers.examples import Example


@dataclass(frozen=True)
class ParsedTask:
    """The user's task, read once: its function and class names and its own examples (the ground truth)."""

    functions: tuple[str, ...]   # module-level functions: imported by tests, called on their own
    classes: tuple[str, ...]
    examples: tuple[Example, ...]
    methods: tuple[str, ...] = ()  # a class's methods the task defines: called on an object, never imported

    @classmethod
    def parse(cls, task: str) -> ParsedTask:
        classes = examples.class_names(task)
        methods = examples.method_names(task) if classes else []
        if classes and not methods:  # a class told in words: its methods are the calls named after it
            methods = examples.prose_methods(task, classes)
        # A method is neither imported nor called alone: as a "function" it put `from m import __init__,
        # deposit` at the top of the tester's file and took a test's variable `filter` for the code under test.
        # A class is not a function either ("a class `BoundedQueue(capacity)`" names a call in backticks).
        functions = [f for f in examples.function_names(task) if f not in methods and f not in classes]
        found = examples.extract_examples(task, functions) if functions else []
        return cls(functions=tuple(functions), classes=tuple(classes), methods=tuple(methods),
                   examples=tuple([*found, *sessions.session_examples(task, classes)]))
