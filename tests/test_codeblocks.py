"""Files from fenced code blocks: every naming convention small models use, nesting, and cut-off answers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crew.answers.codeblocks import MAX_FILES, CodeFile, extract_code_files, extract_files
from tests import codeblocks_reference as reference
from tests.conftest import ROOT

BODY = "def add(a, b):\n    return a + b\n"


@pytest.mark.parametrize("answer", [
    f"```python title=calc.py\n{BODY}```",
    f'```python title="calc.py"\n{BODY}```',
    f"```python calc.py\n{BODY}```",
    f"```calc.py\n{BODY}```",
    f"```python\n# file: calc.py\n{BODY}```",
    f"```python\n# calc.py\n{BODY}```",
    f"Here it is.\n\n**calc.py**\n```python\n{BODY}```",
    f"File: calc.py\n```python\n{BODY}```",
    f"### calc.py\n\n```python\n{BODY}```",
    f"`calc.py`:\n```py\n{BODY}```",
    f"~~~python calc.py\n{BODY}~~~",
    f"```python ./calc.py\n{BODY}```",
])
def test_every_naming_convention(answer: str) -> None:
    assert extract_code_files(answer) == [CodeFile("calc.py", BODY)]


def test_file_marker_line_is_stripped_even_under_an_info_name() -> None:
    answer = f"```python calc.py\n# file: calc.py\n{BODY}```"
    assert extract_code_files(answer)[0].content == BODY


def test_ordinary_comment_first_line_is_kept() -> None:
    answer = f"```python calc.py\n# Adds numbers.\n{BODY}```"
    assert extract_code_files(answer)[0].content.startswith("# Adds numbers.\n")


def test_unnamed_blocks_are_skipped_unless_a_python_default_is_given() -> None:
    answer = f"Run it:\n```bash\npytest -q\n```\n\n```python\n{BODY}```"
    assert extract_code_files(answer) == []
    assert extract_code_files(answer, default_name="calc.py") == [CodeFile("calc.py", BODY)]
    assert extract_code_files("```json\n{}\n```", default_name="calc.py") == []


def test_several_files_and_duplicates_last_wins() -> None:
    answer = (f"```python calc.py\nOLD = 1\n```\n```python test_calc.py\nimport calc\n```\n"
              f"```python calc.py\n{BODY}```")
    expected = [CodeFile("test_calc.py", "import calc\n"), CodeFile("calc.py", BODY)]
    assert extract_code_files(answer) == expected


def test_markdown_with_inner_fences_longer_outer_fence() -> None:
    readme = "# Calc\n\n```python\nfrom calc import add\n```\n\nDone.\n"
    answer = f"````markdown README.md\n{readme}````\n"
    assert extract_code_files(answer) == [CodeFile("README.md", readme)]


def test_markdown_with_inner_fences_same_length_outer_fence() -> None:
    readme = "# Calc\n\nUsage:\n\n```python\nfrom calc import add\n```\n\nMore text.\n"
    answers = (f"```markdown\n<!-- file: README.md -->\n{readme}```", f"**README.md**\n```md\n{readme}```")
    for answer in answers:
        assert extract_code_files(answer) == [CodeFile("README.md", readme)]


def test_tilde_fence_holds_backtick_blocks() -> None:
    readme = "# Calc\n```\nplain block\n```\n"
    assert extract_code_files(f"~~~markdown README.md\n{readme}~~~") == [CodeFile("README.md", readme)]


def test_unterminated_last_block_is_kept_only_if_it_parses() -> None:
    assert extract_code_files(f"```python calc.py\n{BODY}") == [CodeFile("calc.py", BODY)]
    assert extract_code_files("```python calc.py\ndef add(a, b):\n    return (a +") == []
    assert extract_code_files('```json data.json\n{"a": 1}') == [CodeFile("data.json", '{"a": 1}\n')]
    assert extract_code_files('```json data.json\n{"a": ') == []


def test_a_closed_block_with_a_syntax_error_is_still_taken() -> None:
    # The developer must see the precise SyntaxError from the sandbox, not silence.
    assert extract_code_files("```python calc.py\ndef f(:\n```") == [CodeFile("calc.py", "def f(:\n")]


def test_indented_fence_content_is_dedented() -> None:
    answer = "1. Create it:\n   ```python calc.py\n   X = 1\n   if X:\n       Y = 2\n   ```\n"
    assert extract_code_files(answer) == [CodeFile("calc.py", "X = 1\nif X:\n    Y = 2\n")]


def test_version_like_words_are_not_file_names() -> None:
    assert extract_code_files(f"```python3.11\n{BODY}```") == []
    assert extract_code_files(f"```python3.11\n{BODY}```", default_name="calc.py") == []


def test_empty_and_crlf() -> None:
    assert extract_code_files("") == []
    assert extract_code_files("```python calc.py\n```") == []
    crlf = "```python calc.py\r\nX = 1\r\n```\r\n"
    assert extract_code_files(crlf) == [CodeFile("calc.py", "X = 1\n")]


# ------------------------------------------------------------------------ hostile answers (issue 13 §3)

# What the naming rules look at, shuffled into short lines: decorations, fences, names and near-names.
TOKENS = ["#", " ", "  ", "\t", "**", "*", "`", "```", "````", "~~~", ":", "File:", "filename:", "FILE:",
          "file", "name=", "title=", '"', "'", "<!--", "-->", "//", "calc.py", "README.md", "a.b", "3.11",
          "x", "_", ".", "-", "/", "python", "md", "markdown", "json", "def f():", "    return 1", "{", "}"]
LINES = st.lists(st.sampled_from(TOKENS), max_size=7).map("".join)
NAMES = st.sampled_from(["calc.py", "README.md", "calc.py", "README.md", "t.py", "a/b.py", "./x.json", "v1.2",
                         "python3.11", "_.x", "a-.b", "x.", ".py", "calc.py-", "data.json", "t_1.Py2"])


def _around(before: list[str], after: list[str]) -> st.SearchStrategy[str]:
    named = st.builds(lambda b, n, a: b + n + a, st.sampled_from(before), NAMES, st.sampled_from(after))
    return st.one_of(named, named, named, LINES)  # mostly near-misses of the conventions, some noise


HEADINGS = _around(["", "#", "### ", "**", "`", "File: ", "filename:", "# # ", "#\t#", "** ", " `"],
                   ["", "**", "`", ":", "**:", " :", "*", " x", "`:", " "])
INFOS = _around(["", "python ", "md ", "python title=", 'python file="', "name='", "x FILE=", "markdown "],
                ["", '"', "'", "x", " x", "}", " "])
FIRST_LINES = _around(["# ", "#", "// file: ", "<!-- file: ", "<!--", "# filename :", "# file name: ", "## "],
                      ["", " -->", "-->", " ", " x", ":"])
BODY_LINES = st.lists(st.sampled_from(["X = 1", "X = 1", "def f():", "    return 1", '{"a": 1}', "# x", "", "{", "}",
                                 "```python", "```", "~~~", "   ```", "````md"]), min_size=1, max_size=4)
BLOCKS = st.builds(lambda h, f, i, first, body, close: "\n".join([h, f + i, first, *body, close]),
                   HEADINGS, st.sampled_from(["```", "````", "~~~", "  ```", "    ```", "``"]), INFOS,
                   st.one_of(st.just(""), FIRST_LINES), BODY_LINES,
                   st.sampled_from(["```", "```", "````", "~~~", "  ```", "``` x", ""]))
ANSWERS = st.lists(st.one_of(BLOCKS, BLOCKS, LINES), max_size=6).map("\n".join)


def _pairs(files: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(f.path, f.content) for f in files]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=ANSWERS, default=st.sampled_from([None, "calc.py", "notes.md"]))
@example(answer="### calc.py\n```python\nX = 1\n```", default=None)
@example(answer="<!-- file: README.md-->\n", default=None)
@example(answer="```python title='calc.py'x\n# file:calc.py\nX = 1\n```", default=None)
def test_the_scanner_agrees_with_the_regex_extractor(answer: str, default: str | None) -> None:
    """On inputs short enough for the old regexes to finish, the line scanner finds exactly the same files."""
    assert _pairs(extract_code_files(answer, default_name=default, max_files=10**6)) == \
        _pairs(reference.extract_code_files(answer, default_name=default))


HOSTILE = st.lists(st.one_of(LINES, st.sampled_from(["#" * 60, "`" * 200, "~" * 50 + " " * 50 + "x",
                                                     "a." * 300, " " * 300 + "-->", "```python f.py"])),
                   max_size=60).map("\n".join)


@settings(max_examples=100, deadline=None)
@given(answer=HOSTILE)
def test_hostile_answers_give_well_formed_results(answer: str) -> None:
    out = extract_files(answer, max_files=3)
    names = [f.path for f in out.files]
    assert len(names) == len(set(names)) <= 3
    assert all(f.content.endswith("\n") and f.content.strip() for f in out.files)
    assert not set(out.dropped) & set(names) and len(out.dropped) == len(set(out.dropped))


def test_many_hashes_before_a_fence_do_not_hang() -> None:
    """40 `#` took days (×2 per `#`, from `_BEFORE` backtracking). A hang guard, not a speed check: the
    scanner needs milliseconds; the limit only turns a hang into a failure. Throughput is benchmarked in
    benchmarks/bench_codeblocks.py."""
    code = ("from crew.answers.codeblocks import extract_code_files\n"
            "for n in (26, 40, 10000):\n"
            "    assert extract_code_files('#' * n + 'x\\n```python\\nX = 1\\n```') == []\n"
            "    assert extract_code_files('#' * n + ' calc.py\\n```python\\nX = 1\\n```')[0].path == 'calc.py'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, cwd=ROOT)


def test_unterminated_blocks_that_exhaust_the_parser_are_dropped_not_raised() -> None:
    # ast.parse raised MemoryError, json.loads RecursionError, straight out of the guardrail.
    assert extract_code_files("```python calc.py\nX = " + "-" * 100_000 + "1\n") == []
    assert extract_code_files("```json data.json\n" + "[" * 100_000) == []
    assert extract_code_files("```python calc.py\nX = " + "-" * 100_000 + "1\n```")[0].path == "calc.py"


def test_at_most_max_files_per_answer_and_the_rest_reported() -> None:
    answer = "".join(f"```python f{k}.py\nX = {k}\n```\n" for k in range(MAX_FILES + 5))
    answer += "```python f0.py\nX = 'again'\n```\n"  # a kept file may still be revised
    out = extract_files(answer)
    assert [f.path for f in out.files] == [f"f{k}.py" for k in range(1, MAX_FILES)] + ["f0.py"]
    assert out.files[-1].content == "X = 'again'\n"
    assert out.dropped == tuple(f"f{k}.py" for k in range(MAX_FILES, MAX_FILES + 5))
    assert len(extract_code_files(answer)) == MAX_FILES


def test_a_block_cut_off_at_the_length_limit_is_cut_back_to_its_last_line_that_parses() -> None:
    from crew.answers.codeblocks import cut_back

    looping = ("Tests:\n```python\n# file: test_m.py\nfrom m import f\n\n\ndef test_a():\n    assert f(1) == 2\n\n\n"
               "def test_b():\n    assert f(2) == 3\n    assert f(2) == 3\n    assert f(2) ==")
    fixed = cut_back(looping)
    assert fixed is not None and fixed.endswith("    assert f(2) == 3\n    assert f(2) == 3\n```")
    (cf,) = extract_code_files(fixed, default_name="test_x.py")
    assert cf.path == "test_m.py" and "def test_b" in cf.content
    assert extract_code_files(looping, default_name="test_x.py") == []  # as before: the whole does not parse
    assert cut_back("```python\nx = 1\n```\nDone.") is None  # nothing cut off
    assert cut_back("```python\n# file: a.py\nf((((") is None  # nothing but a comment parses
    assert cut_back("```python\n" + "(" * 5000) is None  # hostile nesting: refused, not raised
    # an earlier closed block stays as it is; only the last, open one is cut back
    two = "```python\n# file: m.py\nx = 1\n```\n```python\n# file: test_m.py\ndef test_a():\n    assert 1\ndef"
    assert cut_back(two) == two.rsplit("\n", 1)[0] + "\n```"
