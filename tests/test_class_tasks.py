"""Tasks that ask for a class: names, per-method examples from doctest sessions, the skeleton kept, prose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crew.answers import answers, contradictions, examples, sessions
from crew.answers.prose import task_as_prose
from crew.run.state import ParsedTask

TASK = '''Write bank_account.py with the class `BankAccount` below, complete and working. Keep the class name,
the method names and their signatures exactly as given.

```python
class BankAccount:
    """A bank account."""

    def __init__(self, balance=0):
        self.balance = balance

    def deposit(self, amount):
        """Adds amount; returns the balance.
        >>> account = BankAccount()
        >>> account.deposit(1000)
        1000
        >>> account.withdraw(200)
        800
        """

    def withdraw(self, amount):
        """Takes amount out; returns the balance. Raises ValueError when it is more than the balance.
        >>> acc = BankAccount(50)
        >>> acc.withdraw(80)
        Traceback (most recent call last):
        ValueError: Insufficient balance.
        >>> acc.withdraw(10)
        40
        """

    def save(self, path):
        """
        >>> acc = BankAccount(5)
        >>> acc.save('accounts.json')
        True
        >>> acc.view()
        5
        """

    @staticmethod
    def fee(amount):
        """
        >>> BankAccount.fee(100)
        1.5
        >>> BankAccount.withdraw(3)
        0
        """
```
'''

GOOD = '''class BankAccount:
    def __init__(self, balance=0):
        self.balance = balance

    def deposit(self, amount):
        self.balance += amount
        return self.balance

    def withdraw(self, amount):
        if amount > self.balance:
            raise ValueError("Insufficient balance.")
        self.balance -= amount
        return self.balance

    def save(self, path):
        return True

    @staticmethod
    def fee(amount):
        return amount * 0.015
'''


def test_class_names_come_from_code_and_names_not_from_prose_words() -> None:
    task = "Keep the class name and the class that holds it. class Stack: ... a class `Queue` and class Deque."
    assert examples.class_names(task) == ["Stack", "Queue", "Deque"]
    assert examples.method_names(TASK) == ["__init__", "deposit", "withdraw", "save", "fee"]


def test_a_class_task_imports_its_class_not_its_methods() -> None:
    parsed = ParsedTask.parse(TASK)
    assert parsed.classes == ("BankAccount",) and parsed.functions == ()
    assert parsed.methods == ("__init__", "deposit", "withdraw", "save", "fee")


def test_each_stated_result_becomes_an_example_with_the_session_before_it() -> None:
    found = sessions.session_examples(TASK, ["BankAccount"])
    got = [(e.setup, e.call, e.expected) for e in found]
    assert (("account = BankAccount()",), "account.deposit(1000)", "1000") in got
    # withdraw's result depends on the deposit before it: the deposit is part of its set-up
    assert (("account = BankAccount()", "account.deposit(1000)"), "account.withdraw(200)", "800") in got
    # a traceback ends the session: what follows depends on a raised call
    assert not any(e.call == "acc.withdraw(10)" for e in found)
    # a file the workspace does not have ends the session too
    assert not any("save" in e.call or "view" in e.call for e in found)
    # a declared static method may be called on the class; an instance method may not
    assert (("BankAccount.fee(100)", "1.5") in [(e.call, e.expected) for e in found])
    assert not any(e.call == "BankAccount.withdraw(3)" for e in found)
    assert {e.function for e in found} == {"BankAccount"}


def test_session_examples_run_as_acceptance_tests(tmp_path: Path) -> None:
    found = [e for e in ParsedTask.parse(TASK).examples]
    (tmp_path / "bank_account.py").write_text(GOOD)
    (tmp_path / "test_examples.py").write_text(examples.render_tests("bank_account", found))
    ok = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout
    (tmp_path / "bank_account.py").write_text(GOOD.replace("self.balance -= amount", "self.balance -= 2 * amount"))
    bad = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "1 failed" in bad.stdout


def test_unknown_names_and_non_literal_results_are_not_examples() -> None:
    task = '''```python
class Clock:
    def now(self):
        """
        >>> c = Clock(datetime.date.today())
        >>> c.now()
        1
        >>> d = Clock()
        >>> d.show()
        Clock at noon
        >>> d.pattern()
        '\\\\d+'
        """
```'''
    assert sessions.session_examples(task, ["Clock"]) == []


def test_a_session_call_never_counts_as_a_contradiction_of_a_plain_call() -> None:
    found = sessions.session_examples(TASK, ["BankAccount"])
    tests = "def test_x():\n    account = BankAccount()\n    assert account.deposit(1000) == 5\n"
    assert contradictions.contradictions(tests, found) == []


def test_the_skeleton_is_kept() -> None:
    assert answers.skeleton_problems(GOOD, TASK) == []
    renamed = GOOD.replace("def withdraw(self, amount)", "def take(self, amount)")
    assert answers.skeleton_problems(renamed, TASK) == ["`BankAccount.withdraw` is missing"]
    reparam = GOOD.replace("def deposit(self, amount)", "def deposit(self, value)")
    assert answers.skeleton_problems(reparam, TASK) == [
        "`BankAccount.deposit` takes (self, value), the task says (self, amount)"]
    assert answers.skeleton_problems("def f(): pass\n", TASK) == ["the class `BankAccount` is missing"]
    assert answers.skeleton_problems(GOOD, "Write f(x) that doubles x.") == []  # no skeleton, nothing to keep
    no_init = '```python\nclass A:\n    def __init__(self):\n        pass\n    def f(self, x):\n        """"""\n```'
    assert answers.skeleton_problems("class A:\n    def f(self, x):\n        return x\n", no_init) == []


def test_a_class_skeleton_reaches_the_tester_as_words_method_by_method() -> None:
    prose = task_as_prose(TASK)
    assert "```" not in prose and "The class `BankAccount`." in prose
    assert "- `deposit(self, amount)`. Adds amount; returns the balance." in prose
    assert "each test builds a new `BankAccount` object" in prose


def test_the_developer_gets_room_for_a_whole_class() -> None:
    from types import SimpleNamespace

    from crew.run.workflow import _room_for_a_class

    said: list[str] = []
    state = SimpleNamespace(progress=said.append)
    llm = SimpleNamespace(max_tokens=1024, server_ctx_tokens=8192)
    _room_for_a_class(llm, TASK, state)  # type: ignore[arg-type]
    assert llm.max_tokens == 2048 and "2048 tokens" in said[0]
    small = SimpleNamespace(max_tokens=1024, server_ctx_tokens=2048)  # half the window: no more than it had
    _room_for_a_class(small, TASK, state)  # type: ignore[arg-type]
    assert small.max_tokens == 1024
    plain = SimpleNamespace(max_tokens=1024, server_ctx_tokens=8192)
    _room_for_a_class(plain, "Write `f(x)` that doubles x.", state)  # type: ignore[arg-type]
    assert plain.max_tokens == 1024 and len(said) == 1


def test_the_developer_sees_a_class_skeleton_bare_with_its_docstrings_in_words() -> None:
    from crew.answers.prose import task_for_developer

    shown = task_for_developer(TASK)
    assert '"""' not in shown and ">>>" not in shown
    assert "- `deposit(self, amount)`. Adds amount; returns the balance." in shown
    assert "```python\nclass BankAccount:" in shown and "def withdraw(self, amount):\n        pass" in shown
    assert "@staticmethod\n    def fee(amount):" in shown
    # the bare skeleton keeps every name and parameter: the module built on it departs in nothing
    bare = shown.split("```python\n", 1)[1].split("```", 1)[0]
    assert answers.skeleton_problems(bare, TASK) == []
    plain = "Write `f(x)` that doubles x.\n\n```python\ndef f(x):\n    \"\"\"Doubles.\"\"\"\n```"
    assert task_for_developer(plain) == plain  # a function task reaches the developer as written


def test_a_class_told_in_words_has_methods_not_functions() -> None:
    from crew.answers.task import ParsedTask

    stack = ("Write minstack.py with a class `MinStack`. `push(x)` puts x on top; `get_min()` returns the smallest. "
             "For example, after s = MinStack(); s.push(3): s.get_min() == 3.")
    p = ParsedTask.parse(stack)
    assert p.classes == ("MinStack",) and p.methods == ("push", "get_min") and p.functions == ()
    # `s.get_min() == 3` is no call of a module function (taken for one, its test failed at import): it is a
    # method's result with the sentence's session before it
    assert [(e.setup, e.call, e.expected, e.function) for e in p.examples] == [
        (("s = MinStack()", "s.push(3)"), "s.get_min()", "3", "MinStack")]
    mixed = ("Write bank.py with a class `Account` with `deposit(x)`, and a function `transfer(a, b, amount)` "
             "that moves money. `a.deposit(5)` adds 5.")
    p = ParsedTask.parse(mixed)
    assert p.methods == ("deposit",) and p.functions == ("transfer",)
    # a function named before the class is the module's
    p = ParsedTask.parse("Write `helper(x)` returning x, then a class `Box` with `put(x)`.")
    assert p.functions == ("helper",) and p.methods == ("put",)


def test_a_session_told_in_a_sentence_gives_each_stated_result_with_the_calls_before_it() -> None:
    task = ("Write boundedqueue.py with a class `BoundedQueue(capacity)`: `push(item)` adds an item, `pop()` "
            "removes the front one, `is_full()` says whether it holds `capacity` items (a positive integer). "
            "For example, after q = BoundedQueue(2); q.push(1); q.push(2), `q.is_full()` is True and q.pop() "
            "returns 1, then q.peek() == 2, and after one more pop q.is_empty() == True.")
    p = ParsedTask.parse(task)
    # the constructor's parameters in backticks still name a class, and a class is no function
    assert p.classes == ("BoundedQueue",) and p.functions == ()
    assert "items" not in p.methods  # "`capacity` items (" is no call: that backtick closes a span
    got = [(e.setup, e.call, e.expected) for e in p.examples]
    base = ("q = BoundedQueue(2)", "q.push(1)", "q.push(2)")
    assert got == [(base, "q.is_full()", "True"), ((*base, "q.is_full()"), "q.pop()", "1"),
                   ((*base, "q.is_full()", "q.pop()"), "q.peek()", "2")]
    # "after one more pop" changes the object in words: nothing after it is an example


def test_a_sentence_session_with_unknown_names_or_a_result_that_is_no_literal_gives_nothing() -> None:
    task = ("Write a class `Box`. After b = Box(); b.put(x): b.get() == x. After c = Box(); c.put(1): c.get() == "
            "the same value. After d = Box(); d.put(2): d.size() == 1.")
    got = [(e.setup, e.call, e.expected) for e in ParsedTask.parse(task).examples]
    assert got == [(("d = Box()", "d.put(2)"), "d.size()", "1")]
    assert ParsedTask.parse("Write a class `Box`. After b = Box(); b.put(1): b.get() == 1.").examples
    doctest = "Write a class `Box`.\n>>> b = Box(); b.put(1)\n>>> b.get()\n1\n"  # doctests are read as doctests
    assert all(e.source.startswith(">>>") for e in ParsedTask.parse(doctest).examples)
