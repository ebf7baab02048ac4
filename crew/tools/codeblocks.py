"""Files from fenced code blocks — the path small models use instead of tool calls. Pure.

The prompts teach one convention (`# file: name.py` as a block's first line), and we also accept the
variants models actually produce: the name in the info string (```python calc.py, ```python title=calc.py,
```calc.py), a `# calc.py` / `<!-- file: README.md -->` first line, or a line such as `**calc.py**`,
`File: calc.py` or `### calc.py` just before the block. Fences of ``` or ~~~ of any length nest the
CommonMark way: a block closes only on a fence of the same character at least as long.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
_NAME = r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.[A-Za-z0-9]+"
_INFO_NAME = re.compile(rf"(?:^|\s)(?:title|file|filename|name)=[\"']?(?P<n>{_NAME})[\"']?|(?:^|\s)(?P<m>{_NAME})\s*$")
_FIRST_LINE = re.compile(rf"^\s*(?:#|//|<!--)\s*(?:file(?:name)?\s*:\s*)?(?P<n>{_NAME})\s*(?:-->)?\s*$", re.I)
_BEFORE = re.compile(rf"^\s*(?:#+\s*|\*\*|`|File:\s*|Filename:\s*)*(?P<n>{_NAME})(?:\*\*|`|:)*\s*:?\s*$", re.I)
_PY_LANGS = {"python", "py", "python3", ""}


@dataclass(frozen=True)
class CodeFile:
    path: str
    content: str


def _info_name(info: str) -> str | None:
    m = _INFO_NAME.search(info.strip())
    if not m:
        return None
    name = m.group("n") or m.group("m")
    # "```python" alone has no dot; a bare language like "py" never matches _NAME.
    return name


def extract_code_files(text: str, *, default_name: str | None = None) -> list[CodeFile]:
    """Every named block as a file (later blocks of the same name win), in first-seen order."""
    lines = text.splitlines()
    files: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        body: list[str] = []
        j = i + 1
        closed = False
        while j < len(lines):
            close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[j])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                closed = True
                break
            body.append(lines[j])
            j += 1
        name = _info_name(info)
        lang = info.split()[0].lower() if info.split() else ""
        if name is None and body:
            first = _FIRST_LINE.match(body[0])
            if first:
                name = first.group("n")
                body = body[1:]
        if name is None and i > 0:
            prev = next((lines[k] for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            before = _BEFORE.match(prev)
            if before:
                name = before.group("n")
        if name is None and default_name is not None and lang.split("=")[0] in _PY_LANGS \
                and default_name.endswith(".py") and (closed or _parses(body)):
            name = default_name
        if name is not None and (closed or _parses(body)):
            files.pop(name, None)  # last wins, and takes the later position
            files[name] = "\n".join(body).rstrip() + "\n"
        i = j + 1
    return [CodeFile(path=p, content=c) for p, c in files.items()]


def _parses(body: list[str]) -> bool:
    """An unterminated last block (a model that stopped early) is kept only if it is valid Python."""
    import ast

    try:
        ast.parse("\n".join(body))
    except SyntaxError:
        return False
    return bool(body)
