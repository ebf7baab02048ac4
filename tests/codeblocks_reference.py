"""The regex extractor that issue 13 replaced (its `_BEFORE` backtracks exponentially), kept verbatim as
the oracle the line scanner is checked against on short inputs (tests/test_codeblocks.py). Not for use."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_CLOSE = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*$")
# A file name has a suffix starting with a letter, so "python3.11" or "v1.2" are not names.
_NAME = r"[A-Za-z0-9_./-]*[A-Za-z0-9_]\.[A-Za-z][A-Za-z0-9]*"
_INFO_NAME = re.compile(
    rf"(?:^|\s)(?:title|file|filename|name)=[\"']?(?P<n>{_NAME})[\"']?|(?:^|\s)(?P<m>{_NAME})\s*$")
_FIRST_LINE = re.compile(
    rf"^\s*(?:#|//|<!--)\s*(?P<marker>file(?:name)?\s*:\s*)?(?P<n>{_NAME})\s*(?:-->)?\s*$", re.I)
_BEFORE = re.compile(
    rf"^\s*(?:#+\s*|\*\*|`|File:\s*|Filename:\s*)*(?P<n>{_NAME})(?:\*\*|`|:)*\s*:?\s*$", re.I)
_PY_LANGS = frozenset({"python", "py", "python3", ""})
_MD_LANGS = frozenset({"markdown", "md"})


@dataclass(frozen=True)
class CodeFile:
    path: str
    content: str


def extract_code_files(text: str, *, default_name: str | None = None) -> list[CodeFile]:
    """Every named block as a file, in first-seen order; a later block of the same name wins."""
    lines = text.splitlines()
    files: dict[str, str] = {}
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if not opening or (opening.group("fence")[0] == "`" and "`" in opening.group("info")):
            i += 1
            continue
        info = opening.group("info").strip()
        lang = info.split()[0].lower() if info.split() else ""
        markdown = lang in _MD_LANGS or ".md" in info.lower() or (_prev_name(lines, i) or "").endswith(".md")
        end, closed = _find_close(lines, i, opening.group("fence"), nested=markdown)
        indent = len(opening.group("indent"))
        body = [_dedent(line, indent) for line in lines[i + 1 : end]]
        name, marker_line = _name_for(info, body, lines, i)
        if marker_line is not None:
            del body[marker_line]  # a `# file: x` line names the block; it is not content
        if name is None and default_name is not None and lang.split("=")[0] in _PY_LANGS \
                and default_name.endswith(".py"):
            name = default_name
        content = "\n".join(body).strip("\n")
        if name is not None and content.strip() and (closed or _complete(name, content)):
            name = name.removeprefix("./")
            files.pop(name, None)  # last wins, and takes the later position
            files[name] = content.rstrip() + "\n"
        i = end + 1
    return [CodeFile(path=p, content=c) for p, c in files.items()]


def _find_close(lines: list[str], start: int, fence: str, *, nested: bool) -> tuple[int, bool]:
    """Index of the closing fence (or len(lines)) and whether one was found."""
    depth = 0
    for j in range(start + 1, len(lines)):
        close = _CLOSE.match(lines[j])
        if close and close.group("fence")[0] == fence[0] and len(close.group("fence")) >= len(fence):
            if depth == 0:
                return j, True
            depth -= 1
            continue
        inner = _FENCE.match(lines[j])
        if nested and inner and inner.group("fence") == fence and inner.group("info").strip():
            depth += 1  # "```python" inside a markdown block opens an example; its bare ``` closes it
    return len(lines), False


def _name_for(info: str, body: list[str], lines: list[str], start: int) -> tuple[str | None, int | None]:
    """The block's file name, and the index of a body line that only names the file (to drop), if any."""
    first = next((k for k, line in enumerate(body) if line.strip()), None)
    marker = _FIRST_LINE.match(body[first]) if first is not None else None
    from_info = _INFO_NAME.search(info)
    if from_info:
        # The info string wins, but an explicit `# file:` line below it is still not content.
        drop = first if marker and marker.group("marker") else None
        return from_info.group("n") or from_info.group("m"), drop
    if marker:
        return marker.group("n"), first
    return _prev_name(lines, start), None


def _prev_name(lines: list[str], start: int) -> str | None:
    """A name on the last non-blank line before the fence (`**calc.py**`, `File: calc.py`, `### calc.py`)."""
    prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
    before = _BEFORE.match(prev)
    return before.group("n") if before else None


def _dedent(line: str, indent: int) -> str:
    """CommonMark: an indented fence's content loses up to that much leading indentation."""
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(indent, stripped):]


def _complete(name: str, content: str) -> bool:
    """An unterminated last block (a model that stopped early) is kept only if it is still well formed."""
    try:
        if name.endswith(".py"):
            ast.parse(content)
        elif name.endswith(".json"):
            json.loads(content)
    except (SyntaxError, ValueError):
        return False
    return True
