"""Files from fenced code blocks: every naming convention small models use, nesting, and cut-off answers."""

from __future__ import annotations

import pytest

from crew.tools.codeblocks import CodeFile, extract_code_files

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
