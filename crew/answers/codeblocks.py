"""Files from fenced code blocks — the path small models use instead of tool calls. Pure.

The prompts teach one convention (`# file: name.py` as a block's first line), and we also accept the
variants models actually produce: the name in the info string (```python calc.py, ```python title=calc.py,
```calc.py), a `# calc.py` / `<!-- file: README.md -->` first line, or a line such as `**calc.py**`,
`File: calc.py` or `### calc.py` just before the block. Fences of ``` or ~~~ nest the CommonMark way (a
block closes only on a bare fence of the same character, at least as long); inside a markdown block we also
count inner ```lang openings, because models often fence a README with the same ``` as its examples.
Names are not checked here: every file still goes through Workspace.safe_path before it is written.

The answer is hostile input (a model can write anything), so nothing here can backtrack: every line is read
by plain string scanning, a fixed number of times, and the whole extraction is linear in the answer's size
(benchmarks/bench_codeblocks.py). At most `max_files` distinct files are taken from one answer; the names of
the rest are returned in `Extraction.dropped` for the caller to log.
"""

from __future__ import annotations

import ast
import json
import re
import string
from dataclasses import dataclass

MAX_FILES = 20  # distinct files taken from one answer; a task needs one or two

_PY_LANGS = frozenset({"python", "py", "python3", ""})
_MD_LANGS = frozenset({"markdown", "md"})
# A file name: [A-Za-z0-9_./-]*[A-Za-z0-9_]\.[A-Za-z][A-Za-z0-9]* — its suffix starts with a letter, so
# "python3.11" or "v1.2" are not names. ASCII only.
_LETTERS = frozenset(string.ascii_letters)
_ALNUM = _LETTERS | frozenset(string.digits)
_NAME_CHARS = _ALNUM | frozenset("_./-")
_INFO_KEYS = ("title", "filename", "file", "name")  # `title=calc.py` in the info string (lower case)
# Runs of one character class, each a single greedy repetition with nothing after it: they cannot backtrack.
_NAME_RUN = re.compile(r"[A-Za-z0-9_./-]*")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]*")
_HASH_RUN = re.compile(r"#*")
_SPACE_RUN = re.compile(r"\s*")
_WORD = re.compile(r"\S+")


def _end(run: re.Pattern[str], text: str, start: int) -> int:
    """Where a run of the pattern's class starting at `start` ends (`start` itself for an empty run)."""
    m = run.match(text, start)
    return m.end() if m else start


@dataclass(frozen=True)
class CodeFile:
    path: str
    content: str


@dataclass(frozen=True)
class Extraction:
    """The files of one answer, first-seen order, and the names dropped past the cap (first-seen order)."""

    files: tuple[CodeFile, ...]
    dropped: tuple[str, ...] = ()


def extract_code_files(text: str, *, default_name: str | None = None,
                       max_files: int = MAX_FILES) -> list[CodeFile]:
    """Every named block as a file, in first-seen order; a later block of the same name wins."""
    return list(extract_files(text, default_name=default_name, max_files=max_files).files)


def extract_files(text: str, *, default_name: str | None = None, max_files: int = MAX_FILES) -> Extraction:
    """Like extract_code_files, and says which files were dropped because the answer named too many."""
    lines = text.splitlines()
    files: dict[str, str] = {}
    dropped: dict[str, None] = {}
    i = 0
    while i < len(lines):
        opening = _fence(lines[i])
        if opening is None or (opening[1][0] == "`" and "`" in opening[2]):
            i += 1
            continue
        indent, fence, raw_info = opening
        info = raw_info.strip()
        words = info.split()
        lang = words[0].lower() if words else ""
        prev = _prev_name(lines, i)
        markdown = lang in _MD_LANGS or ".md" in info.lower() or (prev or "").endswith(".md")
        end, closed = _find_close(lines, i, fence, nested=markdown)
        body = [_dedent(line, indent) for line in lines[i + 1 : end]]
        name, marker_line = _name_for(info, body, prev)
        if marker_line is not None:
            del body[marker_line]  # a `# file: x` line names the block; it is not content
        if name is None and default_name is not None and lang.split("=")[0] in _PY_LANGS \
                and default_name.endswith(".py"):
            name = default_name
        content = "\n".join(body).strip("\n")
        if name is not None and content.strip() and (closed or _complete(name, content)):
            name = name.removeprefix("./")
            if name in files or len(files) < max_files:
                files.pop(name, None)  # last wins, and takes the later position
                files[name] = content.rstrip() + "\n"
            else:
                dropped[name] = None
        i = end + 1
    return Extraction(files=tuple(CodeFile(path=p, content=c) for p, c in files.items()),
                      dropped=tuple(dropped))


# ------------------------------------------------------------------------------------- fences


def _fence(line: str) -> tuple[int, str, str] | None:
    """An opening fence: up to 3 spaces, 3+ backticks or tildes, then the info string."""
    if line[:1] not in ("`", "~", " "):
        return None  # most lines: one comparison
    indent = len(line) - len(line.lstrip(" "))
    if indent > 3 or indent == len(line) or line[indent] not in "`~":
        return None
    run = _run_of(line, indent, line[indent])
    if run < 3:
        return None
    return indent, line[indent : indent + run], line[indent + run :]


def _is_close(line: str, fence: str) -> bool:
    """A bare fence of the same character, at least as long: closes the block (or an inner one)."""
    opening = _fence(line)
    return (opening is not None and opening[1][0] == fence[0] and len(opening[1]) >= len(fence)
            and (not opening[2] or opening[2].isspace()))


def _run_of(line: str, start: int, char: str) -> int:
    return len(line) - start - len(line[start:].lstrip(char))


def _find_close(lines: list[str], start: int, fence: str, *, nested: bool) -> tuple[int, bool]:
    """Index of the closing fence (or len(lines)) and whether one was found."""
    depth = 0
    for j in range(start + 1, len(lines)):
        if _is_close(lines[j], fence):
            if depth == 0:
                return j, True
            depth -= 1
            continue
        if nested:
            inner = _fence(lines[j])
            if inner is not None and inner[1] == fence and inner[2].strip():
                depth += 1  # "```python" inside a markdown block opens an example; its bare ``` closes it
    return len(lines), False


# ------------------------------------------------------------------------------------- names


def _name_for(info: str, body: list[str], prev: str | None) -> tuple[str | None, int | None]:
    """The block's file name, and the index of a body line that only names the file (to drop), if any."""
    first = next((k for k, line in enumerate(body) if line.strip()), None)
    marker = _first_line_name(body[first]) if first is not None else None
    from_info = _info_name(info)
    if from_info is not None:
        # The info string wins, but an explicit `# file:` line below it is still not content.
        drop = first if marker is not None and marker[1] else None
        return from_info, drop
    if marker is not None:
        return marker[0], first
    return prev, None


def _name_prefix(text: str, start: int) -> str | None:
    """The longest file name that `text` holds from `start` on (what the greedy pattern above matches)."""
    run = text[start : _end(_NAME_RUN, text, start)]
    dot = run.rfind(".")
    while dot > 0:
        if (run[dot - 1] in _ALNUM or run[dot - 1] == "_") and run[dot + 1 : dot + 2] in _LETTERS:
            return run[: _end(_ALNUM_RUN, run, dot + 1)]
        dot = run.rfind(".", 0, dot)
    return None


def _is_name(text: str) -> bool:
    return bool(text) and _name_prefix(text, 0) == text


def _starts_with_word(text: str, start: int, word: str) -> bool:
    """Case-insensitive, ASCII only."""
    part = text[start : start + len(word)]
    return part.isascii() and part.lower() == word


def _info_name(info: str) -> str | None:
    """`title=calc.py` (or file=, filename=, name=, quoted or not) anywhere, else a last word that is a name."""
    for word in _WORD.finditer(info) if "=" in info else ():
        t = word.start()
        for key in _INFO_KEYS:
            eq = t + len(key)
            if info.startswith(key, t) and info[eq : eq + 1] == "=":
                start = eq + 1 + (info[eq + 1 : eq + 2] in ("'", '"'))
                name = _name_prefix(info, start)
                if name is not None:
                    return name
                break
    words = info.split()
    return words[-1] if words and _is_name(words[-1]) else None


def _first_line_name(line: str) -> tuple[str, bool] | None:
    """`# calc.py`, `// file: calc.py`, `<!-- file: README.md -->`: the name, and whether `file:` was said."""
    s = line.lstrip()
    opener = next((o for o in ("<!--", "//", "#") if s.startswith(o)), None)
    if opener is None:
        return None
    s = s[len(opener) :].lstrip()
    marker = False
    for word in ("filename", "file"):
        if _starts_with_word(s, 0, word):
            rest = s[len(word) :].lstrip()
            if rest.startswith(":"):
                s, marker = rest[1:].lstrip(), True
            break
    core = s.rstrip()
    if core.endswith("-->"):
        core = core[:-3].rstrip()
    return (core, marker) if _is_name(core) else None


def _prev_name(lines: list[str], start: int) -> str | None:
    """A name on the last non-blank line before the fence (`**calc.py**`, `File: calc.py`, `### calc.py`)."""
    prev = next((lines[k] for k in range(start - 1, -1, -1) if lines[k].strip()), "")
    return _heading_name(prev)


def _heading_name(line: str) -> str | None:
    """Decorations (`#`s, `**`, backticks, `File:`/`Filename:`), a name, closing `**`/backticks/colons."""
    s, k = line, _end(_SPACE_RUN, line, 0)
    while k < len(s):
        if s[k] == "#":
            k = _end(_SPACE_RUN, s, _end(_HASH_RUN, s, k))
        elif s.startswith("**", k):
            k += 2
        elif s[k] == "`":
            k += 1
        elif _starts_with_word(s, k, "file:") or _starts_with_word(s, k, "filename:"):
            k = _end(_SPACE_RUN, s, k + (5 if s[k + 4] == ":" else 9))
        else:
            break
    name = _name_prefix(s, k)
    if name is None or (k + len(name) < len(s) and s[k + len(name)] in _NAME_CHARS):
        return None
    k += len(name)
    while k < len(s):
        if s.startswith("**", k):
            k += 2
        elif s[k] in "`:":
            k += 1
        else:
            break
    rest = s[k:].strip()
    return name if rest in ("", ":") else None


def _dedent(line: str, indent: int) -> str:
    """CommonMark: an indented fence's content loses up to that much leading indentation."""
    stripped = len(line) - len(line.lstrip(" "))
    return line[min(indent, stripped):]


def _complete(name: str, content: str) -> bool:
    """An unterminated last block (a model that stopped early) is kept only if it is still well formed.

    The parsers can run out of stack on hostile nesting (`X = ------…1`, `[[[[…`): that is not well formed
    either, and must never escape into the run."""
    try:
        if name.endswith(".py"):
            ast.parse(content)
        elif name.endswith(".json"):
            json.loads(content)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def cut_back(text: str, max_lines: int = 400) -> str | None:
    """An answer whose last code block ran into the length limit (a fence opened, never closed), with that
    block cut back to its longest run of whole lines that parses and closed again — or None (nothing is cut
    off, or no prefix parses). Pure.

    Why: a 0.5B tester that loops (the same assert again and again) fills its 1024 tokens; the block then
    does not parse, no test file is found, and the tester was asked again — twice, ~35 s each on 2 cores, on
    the run's critical path (HumanEval/20: three answers, 3072 tokens, not one test kept). The complete tests
    before the cut are what the answer has to give."""
    lines = text.splitlines()
    opened: int | None = None
    fence = ""
    i = 0
    while i < len(lines):
        found = _fence(lines[i])
        if found is None:
            i += 1
            continue
        end, closed = _find_close(lines, i, found[1], nested=False)
        if not closed:
            opened, fence = i, found[1]
            break
        i = end + 1
    if opened is None:
        return None
    body = lines[opened + 1 : opened + 1 + max_lines]
    for end in range(len(body), 0, -1):
        if not any(line.strip() and not line.strip().startswith("#") for line in body[:end]):
            return None  # nothing but comments (a `# file:` line) is left
        try:
            ast.parse("\n".join(body[:end]))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        return "\n".join([*lines[:opened + 1], *body[:end], fence])
    return None
