"""The user's examples as system-written tests, and the checks on model-written code and tests (pure)."""

from __future__ import annotations

import ast

from hypothesis import given, settings
from hypothesis import strategies as st

from crew.answers import answers
from crew.answers.contradictions import contradictions, drop_functions
from crew.answers.examples import extract_examples, function_names, render_tests

HUMANEVAL_STYLE = '''
def has_close_elements(numbers: List[float], threshold: float) -> bool:
    """ Check if in given list of numbers, are any two numbers closer to each other than
    given threshold.
    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)
    False
    >>> has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)
    True
    """
'''


def calls(task: str) -> list[tuple[str, str, str]]:
    return [(e.call, e.expected, e.kind) for e in extract_examples(task)]


def test_doctest_examples() -> None:
    assert calls(HUMANEVAL_STYLE) == [("has_close_elements([1.0, 2.0, 3.0], 0.5)", "False", "equals"),
                                      ("has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3)", "True", "equals")]


def test_prose_examples_in_the_ways_users_write_them() -> None:
    task = ("Write roman.py with `to_roman(n)`. For example to_roman(1994) == 'MCMXCIV', to_roman(4) -> 'IV', "
            "to_roman(9) returns \"IX\" and to_roman(40) should return 'XL'. to_roman(0) raises ValueError. "
            "to_roman(3) => 'III'.")
    assert calls(task) == [("to_roman(1994)", "'MCMXCIV'", "equals"), ("to_roman(4)", "'IV'", "equals"),
                           ("to_roman(9)", "'IX'", "equals"), ("to_roman(40)", "'XL'", "equals"),
                           ("to_roman(0)", "ValueError", "raises"), ("to_roman(3)", "'III'", "equals")]


def test_only_named_functions_and_literal_arguments_count() -> None:
    task = "Write `f(x)`. f(y) == 2 is not an example (y is no value), g(1) == 2 is not ours, f(1 + 1) == 2 neither."
    assert calls(task) == []
    assert calls("Write `f(x)`: f(-1) == -2, f(x=3) == 6, f([1, (2, 3)]) == {'a': None}") == [
        ("f(-1)", "-2", "equals"), ("f(x=3)", "6", "equals"), ("f([1, (2, 3)])", "{'a': None}", "equals")]


def test_lowercase_true_means_true_and_the_first_statement_of_a_call_wins() -> None:
    assert calls("is_simple_power(1, 4) => true; `is_simple_power(x, n)`. is_simple_power(1, 4) => false") == [
        ("is_simple_power(1, 4)", "True", "equals")]


def test_function_names() -> None:
    assert function_names(HUMANEVAL_STYLE) == ["has_close_elements"]
    assert function_names("Write `encode(s)` and `decode(s)`; def helper(x):") == ["encode", "decode", "helper"]


def test_rendered_tests_are_valid_python_with_approx_for_floats() -> None:
    task = "Write `mean(xs)`: mean([1, 2]) == 1.5 and mean([]) raises ValueError and mean([2]) == 2."
    text = render_tests("stats_mod", extract_examples(task))
    ast.parse(text)
    assert "from stats_mod import mean" in text and "not by a model" in text
    assert "assert mean([1, 2]) == pytest.approx(1.5)" in text
    assert "with pytest.raises(ValueError):\n        mean([])" in text
    assert "assert mean([2]) == 2\n" in text


def test_a_model_test_contradicting_an_example_is_found_and_dropped() -> None:
    examples = extract_examples("Write `to_roman(n)`: to_roman(4) == 'IV'.")
    tests = ("from roman import to_roman\n\n\ndef test_four():\n    assert to_roman(4) == 'IIII'\n\n\n"
             "@pytest.mark.skip\ndef test_other():\n    assert 'IV' == to_roman(4)\n    assert to_roman(5) == 'V'\n")
    found = contradictions(tests, examples)
    assert [(c.test, c.asserted, c.expected) for c in found] == [("test_four", "'IIII'", "'IV'")]
    cut = drop_functions(tests, {"test_four"})
    assert "test_four" not in cut and "def test_other" in cut and "@pytest.mark.skip" in cut


def test_import_time_code_is_found_and_removed() -> None:
    src = ("import re\n\nX = 1\n\n\ndef f(x):\n    return x\n\n\nprint(f(2))\nassert f(1) == 1\n"
           "for i in range(3):\n    print(i)\ntest_f()\n\nif __name__ == '__main__':\n    print(f(3))\n")
    kept, removed = answers.without_import_time_code(src)
    assert [r.lineno for r in removed] == [10, 11, 12, 14]
    assert "print(f(2))" not in kept and "test_f()" not in kept and "print(f(3))" in kept and "X = 1" in kept
    ast.parse(kept)


def test_problems_of_a_test_file() -> None:
    pasted = "def slugify(t):\n    return t\n\ndef test_a():\n    assert slugify('a') == 'a'\n\ntest_a()\n"
    whats = [p.what for p in answers.test_file_problems(pasted, module_name="slug", under_test={"slugify"})]
    assert any("defines `slugify` itself" in w and "from slug import slugify" in w for w in whats)
    assert any("calls code at module level" in w for w in whats)
    empty = answers.test_file_problems("import slug\n", module_name="slug", under_test={"slugify"})
    assert [p.what for p in empty] == ["the file holds no test: write functions named test_… with asserts"]
    assert answers.missing_import("def test_a():\n    assert slugify('a')\n", module_name="slug",
                                  under_test={"slugify", "other"}) == "from slug import slugify"
    assert answers.missing_import("from slug import *\ndef test_a():\n    slugify('a')\n", module_name="slug",
                                  under_test={"slugify"}) is None


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("f(x)[]{}'\"`,.=-><#:0123 \nabc>>>\\")), max_size=300))
def test_hostile_text_never_raises(text: str) -> None:
    """Parsers of model- and user-written text return findings or nothing — never an exception."""
    task = "Write `f(x)`. " + text
    for e in extract_examples(task):
        ast.parse(e.call, mode="eval")
    render_tests("m", extract_examples(task))
    contradictions(text, extract_examples(task))
    answers.without_import_time_code(text)
    answers.test_file_problems(text, module_name="m", under_test={"f"})
    answers.missing_import(text, module_name="m", under_test={"f"})


def test_deeply_nested_or_huge_input_is_no_example_not_a_crash() -> None:
    assert extract_examples("Write `f(x)`: f(" + "[" * 5000 + ") == 1") == []
    assert answers.import_time_code("X = " + "-" * 100_000 + "1") == []
    assert contradictions("x = " + "(" * 10_000, []) == []


def test_the_tasks_own_imports_are_added_when_the_module_lacks_them() -> None:
    task = ("Write he17.py with the function below.\n```python\nfrom typing import List\nimport math\n\n"
            "def parse_music(s: str) -> List[int]:\n```\nIt counts from 1 to 3 (from the start).")
    assert answers.task_imports(task) == ["from typing import List", "import math"]
    fixed, added = answers.with_task_imports("def parse_music(s: str) -> List[int]:\n    return []\n", task)
    assert added == ["from typing import List", "import math"] and fixed.startswith("from typing import List\n")
    assert answers.with_task_imports("import math\nfrom typing import List\n", task) == (
        "import math\nfrom typing import List\n", [])
    future, _ = answers.with_task_imports("from __future__ import annotations\nx = 1\n", task)
    assert future.splitlines()[:2] == ["from __future__ import annotations", "from typing import List"]
    ast.parse(future)


def test_standard_modules_used_without_import_are_imported() -> None:
    assert answers.missing_stdlib_imports("def f(t):\n    return re.sub('a', 'b', t) + str(math.pi)\n") == [
        "import math", "import re"]
    assert answers.missing_stdlib_imports("import re\ndef f(t: List[int]) -> Dict[str, int]:\n    return re\n") \
        == ["from typing import Dict, List"]
    assert answers.missing_stdlib_imports("def f(math):\n    return math.x\n") == []  # an argument, not a module
    fixed, added = answers.with_task_imports("def f(t):\n    return re.sub('-+', '-', t)\n", "Write `f(t)`.")
    assert added == ["import re"] and fixed.startswith("import re\n")


def test_stub_functions_are_those_whose_body_does_no_work() -> None:
    from crew.answers.answers import stub_functions

    src = '''
def a(x):
    """Doc."""

def b(x):
    ...

def c(x):
    raise NotImplementedError("later")

def d(x):
    """Doc."""
    return x

def e(x):
    pass
'''
    assert stub_functions(src, {"a", "b", "c", "d"}) == ["a", "b", "c"]
    assert stub_functions(src, {"e"}) == ["e"]
    assert stub_functions("def a(:\n", {"a"}) == []  # unparsable: pytest reports it


def test_a_code_block_of_the_task_is_told_in_words_and_other_text_is_kept() -> None:
    from crew.answers.prose import task_as_prose

    task = ('Write m.py with `f` below.\n\n```python\nfrom typing import List\n\n\ndef f(xs: List[int], k=2) -> int:\n'
            '    """Sum of the k largest.\n    >>> f([1, 2, 3])\n    5\n    >>> f([])\n    0\n    """\n```\n'
            'Also:\n```python\nx = (\n```')
    prose = task_as_prose(task)
    assert prose.startswith("Write m.py with `f` below.")
    assert "The function `f(xs: List[int], k=2) -> int`. Sum of the k largest." in prose
    assert "Examples: `f([1, 2, 3]) == 5`; `f([]) == 0`." in prose
    assert "```python\nx = (\n```" in prose  # a block that does not parse is left as the user wrote it
    assert task_as_prose("no code here") == "no code here"


def test_a_test_of_several_asserts_becomes_one_test_per_assert() -> None:
    from crew.answers.answers import split_asserts

    src = ('from m import f\n\n\ndef test_f():\n    """Doc."""\n    # one\n    assert f(1) == 2\n'
           '    print("ok")\n    assert f(2) == (\n        3)\n\n\n'
           'def test_setup():\n    x = f(1)\n    assert x == 2\n    assert x > 0\n\n\n'
           '@pytest.mark.skip\ndef test_decorated():\n    assert f(1) == 2\n    assert f(2) == 3\n')
    out, n = split_asserts(src)
    assert n == 1
    assert "def test_f_1():\n    assert f(1) == 2\n" in out
    assert "def test_f_2():\n    assert f(2) == (\n        3)\n" in out
    assert "def test_setup():\n    x = f(1)" in out  # setup shared by asserts: left whole
    assert "def test_decorated():" in out
    compile(out, "split", "exec")
    assert split_asserts("def test_a(:\n") == ("def test_a(:\n", 0)


def test_a_value_that_starts_a_calculation_is_no_example() -> None:
    task = ('fruit_distribution("5 apples and 6 oranges", 19) ->19 - 5 - 6 = 8\n'
            "f(5) == 'a' and f(7) == 'b'. f(8) == -1")
    found = {(e.call, e.expected) for e in extract_examples(task, ["fruit_distribution", "f"])}
    assert found == {("f(5)", "'a'"), ("f(7)", "'b'"), ("f(8)", "-1")}  # 19 is not fruit_distribution's result


def test_lines_of_a_test_file_that_do_not_parse_are_removed_one_by_one() -> None:
    from crew.answers.answers import parseable

    src = ("from m import f\n\n\ndef test_f():\n    assert f('a') == 'a'\n"
           "    assert f(\"!@#\":) == '-'\n    assert f('') == ''\n")
    fixed, removed = parseable(src) or ("", [])
    assert removed == ["    assert f(\"!@#\":) == '-'"]
    assert "assert f('a') == 'a'" in fixed and "assert f('') == ''" in fixed
    assert parseable("x = 1\n") == ("x = 1\n", [])
    assert parseable("x = '''never closed\n" + "y = (\n" * 20) is None  # more than a few lines: give up
    assert parseable("a" * 300_000) is None  # too large to try


def test_input_output_statements_become_examples_when_the_task_names_one_function() -> None:
    task = ('Write p.py with\n```python\ndef pluck(arr):\n    """Example 1:\n        Input: [4, 2, 3]\n'
            '        Output: [2, 1]\n    Example 2:\n        Input: []\n        Output: []\n'
            '    Example 3:\n        Input: 1, 2\n        Output: 3\n"""\n```')
    got = [(e.call, e.expected) for e in extract_examples(task)]
    assert got == [("pluck([4, 2, 3])", "[2, 1]"), ("pluck([])", "[]")]  # "1, 2": one tuple or two args? skipped
    two = task.replace("def pluck(arr):", "def pluck(arr):\n    pass\n\ndef helper(x):")
    assert extract_examples(two) == []  # two functions: whose input is it?


def test_for_x_the_output_should_be_uses_keywords_only_when_they_are_parameters() -> None:
    task = ('```python\ndef hex_key(num):\n    """For num = "AB" the output should be 1.\n'
            '    For n = "AB" the output should be 9.\n"""\n```')
    assert [(e.call, e.expected) for e in extract_examples(task)] == [("hex_key(num='AB')", "1")]


def test_a_doctest_that_rounds_the_result_is_an_example_but_not_one_that_calls_anything_else() -> None:
    task = ('```python\ndef find_zero(xs):\n    """\n    >>> round(find_zero([1, 2]), 2)\n    -0.5\n'
            '    >>> find_zero([1, 2]) + os.getpid()\n    3\n    >>> eval(find_zero([1]))\n    3\n"""\n```')
    got = [(e.call, e.expected) for e in extract_examples(task)]
    assert got == [("round(find_zero([1, 2]), 2)", "-0.5")]


def test_probes_find_the_tests_calls_and_choose_the_shared_behaviour() -> None:
    from crew.answers.probes import Candidate, calls_in_tests, choose, render_probe

    tests = "from m import f\n\ndef test_a():\n    assert f(1) == 2\n    assert f(x) == 3\n    assert g(2) == f(1)\n"
    assert calls_in_tests([tests, "def broken(:"], {"f"}) == ["f(1)"]  # f(x): not a literal argument
    # a name bound to a literal earlier in the same body is that literal (the 0.5B tester's habit, own/intervals);
    # rebound to something else, or bound in another body, it is not
    bound = ("from m import f\nx = 5\nprint(f(x))\n\nclass T:\n    def test_b(self):\n        x = [1]\n"
             "        assert f(x) == 1\n        x = y\n        assert f(x)\n\n\ndef test_a():\n    assert f(x) == 3\n")
    assert calls_in_tests([bound], {"f"}) == ["f(5)", "f([1])"]
    assert "raise AssertionError('LOCALCREW-PROBE:' + out[:400])" in render_probe("m", ["f"], ["f(1)"])
    ok = Candidate(results=("value 2", "value 3"), tests_passed=1, usable=True)
    other = Candidate(results=("value 2", "value 4"), tests_passed=2, usable=True)
    broken = Candidate(results=("value 2", "value 4"), tests_passed=2, usable=False)
    assert choose([other, ok, ok]).index == 1  # 2 × (1 + 1) beats 1 × (1 + 2)
    assert choose([other, ok]).index == 0  # 1 × 3 beats 1 × 2
    assert choose([ok, other, broken]).index == 1 and choose([broken]) is None  # no say without the examples
    assert choose([Candidate(results=(None, None), tests_passed=0, usable=True)]) is None


def test_variants_change_one_argument_the_way_a_reader_would_try_next() -> None:
    from crew.answers.probes import variants

    calls = ["f([1.0, 2.0, 2.2], 3)", "g('ab')", "h([1, 2], k='x')", "f([1.0, 2.0, 2.2], 4)"]
    got = variants(calls, limit=20)
    assert got[:3] == ["f([2.2, 2.0, 1.0], 3)", "g('ba')", "h([2, 1], k='x')"]  # round-robin over the calls
    assert "f([2.0, 2.2], 3)" in got and "f([1.0, 2.0], 3)" in got  # three items or more: one dropped
    assert "h([2], k='x')" not in got and "h([1, 2], k='x')" not in got  # two items keep both; no original
    assert "f([1.0, 2.0, 2.2], 4)" not in got  # 3 + 1 is a call the tests make
    assert "f([1.0, 2.0, 2.2], 5)" in got and "h([1, 2], k='X')" not in got and "h([1, 2], k='x')" not in got
    assert len(variants(calls, limit=4)) == 4
    # from four items, halves too (HumanEval/20: only a half of the example told a wrong attempt from a right one)
    assert variants(["f([1, 2, 3, 4, 5, 6])"]) == ["f([6, 5, 4, 3, 2, 1])", "f([4, 5, 6])", "f([1, 2, 3])",
                                                    "f([2, 3, 4, 5, 6])", "f([1, 2, 3, 4, 5])"]
    # each call starts one kind further: two calls of one list try reversed and a half first
    assert variants(["f([1, 2, 3, 4])", "f([5, 6, 7, 8])"], limit=2) == ["f([4, 3, 2, 1])", "f([7, 8])"]
    assert variants(["f(True)", "f('aa')", "f(x)", "f(1.5)", "not a call("]) == []


def test_settle_splits_a_cluster_alike_on_the_tests_by_the_calls_no_test_makes() -> None:
    from crew.answers.probes import Candidate, choose, settle

    def c(elsewhere: tuple[str | None, ...], tests: int = 1, usable: bool = True) -> Candidate:
        return Candidate(results=("value 1",), tests_passed=tests, usable=usable, elsewhere=elsewhere)

    wrong, right = c(("value (2.2, 5.0)",)), c(("value (4.0, 5.0)",))
    first = choose([wrong, right, right])
    assert first is not None and first.cluster == (0, 1, 2)
    s = settle([wrong, right, right], first)
    assert (s.index, s.cluster, s.rivals, s.tied) == (1, (1, 2), (0,), False)
    tie = settle([wrong, right], choose([wrong, right]))  # type: ignore[arg-type]
    assert (tie.index, tie.rivals, tie.tied) == (0, (1,), True)  # even: the code stays, and says so
    # any two exceptions are the same behaviour on a changed input (it may break a precondition)
    alike = [c(("raises ValueError",)), c(("raises IndexError",))]
    assert settle(alike, choose(alike)).rivals == ()  # type: ignore[arg-type]
    better_tested = [wrong, c(("value (4.0, 5.0)",), tests=3)]
    assert settle(better_tested, choose(better_tested)).index == 1  # type: ignore[arg-type]


def test_a_code_no_other_attempt_behaves_like_is_alone_and_the_report_says_how_the_others_went() -> None:
    from crew.answers.probes import Candidate, alone, choose, settle

    def c(result: str | None, usable: bool = True) -> Candidate:
        return Candidate(results=(result,), tests_passed=1, usable=usable)

    # own/isbn: only the code passes the user's examples; the three others fail them
    isbn = [c("value True"), c("value False", usable=False), c("value False", usable=False), c("value True", False)]
    first = choose(isbn)
    assert first is not None and first.cluster == (0,)
    assert alone(isbn, first) == ("none of 3 other independent attempts behaves like the code (3 fail the user's "
                                  "examples)")
    mixed = [c("value 1"), c("value 2"), c("value 3", usable=False)]
    assert alone(mixed, choose(mixed)) == ("none of 2 other independent attempts behaves like the code (1 fail the "
                                           "user's examples, 1 return something else on the tests' calls)")
    # reproduced by one attempt, or too few others to say, or others that never ran: not alone
    assert alone(*(lambda xs: (xs, choose(xs)))([c("value 1"), c("value 1"), c("value 2")])) == ""  # type: ignore[arg-type]
    assert alone(*(lambda xs: (xs, choose(xs)))([c("value 1"), c("value 2", usable=False)])) == ""  # type: ignore[arg-type]
    broken = [c("value 1"), c(None, usable=False), c(None, usable=False), c("value 2", usable=False)]
    assert alone(broken, choose(broken)) == ""  # type: ignore[arg-type]
    # a rival alike on the tests (split on calls no test makes) is not "alone": that is not settled
    split = [Candidate(("value 1",), 1, True, ("value a",)), Candidate(("value 1",), 1, True, ("value b",)),
             c("value 9")]
    s = settle(split, choose(split))  # type: ignore[arg-type]
    assert s.cluster == (0,) and s.rivals == (1,) and alone(split, s) == ""


def test_a_test_repeating_an_earlier_ones_body_is_a_duplicate_and_only_later_copies_go() -> None:
    from crew.answers.contradictions import duplicate_tests

    source = ("from he44 import change_base\n\n\ndef test_a():\n    assert change_base(8, 2) == '1000'\n\n\n"
              "def test_b():\n    assert change_base(10, 10) == '10'\n\n\n"
              "def test_c():\n    assert change_base(10, 10) == '10'\n\n\n"
              "def test_d():\n    assert change_base(10, 10) == '10'\n\n\n"
              "def test_e():\n    assert change_base(10, 10) == '1010'\n")
    twins = duplicate_tests(source)
    assert twins == {"test_c", "test_d"}
    kept = drop_functions(source, twins)
    assert "def test_b" in kept and "def test_e" in kept and "def test_c" not in kept
    assert duplicate_tests("def test_x(:\n") == set()


def test_attempts_split_on_the_tests_calls_when_no_more_than_half_behave_like_the_code() -> None:
    from crew.answers.probes import Candidate, choose, settle, split

    def c(*results: str | None, usable: bool = True, tests: int = 1) -> Candidate:
        return Candidate(results=results, tests_passed=tests, usable=usable)

    calls = ["top_words('b a B', 1)", "top_words('a, b! a', 1)"]
    # own/wordcount: two attempts split words on spaces, two take runs of letters
    words = [c("value [('b', 2)]", "value [('a,', 1)]"), c("value [('b', 2)]", "value [('a', 2)]"),
             c("value [('b', 2)]", "value [('a,', 1)]"), c("value [('b', 2)]", "value [('a', 2)]")]
    chosen = settle(words, choose(words))  # type: ignore[arg-type]
    assert split(calls, words, chosen) == (
        "`top_words('a, b! a', 1)`: the code returns [('a,', 1)]; another attempt returns [('a', 2)]",)
    # three of four alike: a majority, no split; one alone is `alone`'s to say, not a split
    assert split(calls, [*words[:3], words[0]], choose([*words[:3], words[0]])) == ()  # type: ignore[arg-type]
    two_of_four = [words[1], words[0], words[0], c("value [('x', 1)]", "value [('x', 1)]")]
    first = choose(two_of_four)
    assert first is not None and first.cluster == (1, 2) and split(calls, two_of_four, first) != ()
    alone_one = [words[0], c("value 7", "value 8"), c("value 9", "value 9")]
    assert split(calls, alone_one, choose(alone_one)) == ()  # type: ignore[arg-type]
    # attempts that fail the user's examples do not count among the usable ones
    broken = [words[0], words[2], c("value 1", "value 2", usable=False), c("value 3", "value 4", usable=False)]
    assert split(calls, broken, choose(broken)) == ()  # type: ignore[arg-type]
    # a class compared test by test says how each test went
    by_tests = [c("pass", "pass"), c("pass", "assert 1 == 2"), c("pass", "pass"), c("pass", "assert 1 == 2")]
    assert split(["test t.py::test_a", "test t.py::test_b"], by_tests, choose(by_tests)) == (  # type: ignore[arg-type]
        "`t.py::test_b`: the code passes it; another attempt fails it (assert 1 == 2)",)
