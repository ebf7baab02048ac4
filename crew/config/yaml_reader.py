"""YAML as a project file may hold it: a strict SafeLoader, and every refusal one ConfigError with its line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from crew.config.section import show
from crew.errors import ConfigError

# A project file is small and flat: a few dozen keys, a few levels deep. These bounds refuse what no
# project file needs — a document nested thousands deep (the composer recurses), and aliases that expand
# into millions of values (an "alias bomb": cheap to parse, ruinous to walk or print).
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_EXPANDED_NODES = 100_000


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that a project file must not hold; carries its own fix."""

    def __init__(self, problem: str, mark: Any, fix: str) -> None:
        super().__init__(None, None, problem, mark)
        self.fix = fix


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, deep nesting and alias bombs, each with the line it is on."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._aliases = 0

    def _mark(self) -> Any:
        return self.peek_event().start_mark  # type: ignore[no-untyped-call]

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _Refused(f"more than {MAX_ALIASES} aliases (*name)", self._mark(),
                               "write the values out instead of reusing them with &anchors and *aliases")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", self._mark(),
                               "flatten it: no project setting is nested that deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` may override on purpose
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:
                    continue  # unhashable: the base class says so, with its mark
                if duplicate:
                    raise _Refused(f"duplicate key {show(key)}", key_node.start_mark,
                                   "keep one of them: YAML would silently use the last")
        return super().construct_mapping(node, deep=deep)


def _expanded_nodes(node: Any, memo: dict[int, int]) -> int:
    """How many values `node` stands for once every alias is followed (aliases share nodes)."""
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a recursive alias counts once; the constructor handles the cycle
    total = 1
    if isinstance(node, yaml.SequenceNode):
        total += sum(_expanded_nodes(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total += sum(_expanded_nodes(k, memo) + _expanded_nodes(v, memo) for k, v in node.value)
    memo[id(node)] = total = min(total, MAX_EXPANDED_NODES + 1)
    return total


def _decode(path: Path) -> str:
    """The file as UTF-8 text; a stray byte names its line and column."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the file: {exc.strerror}", where=str(path),
                          fix="check the path and its permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {column}",
                          where=f"{path.name} line {line}",
                          fix="save the file as UTF-8 (retype the character there)") from None


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse one YAML mapping; malformed YAML names the line."""
    if not path.is_file():
        raise ConfigError("file not found", where=str(path),
                          fix="run from the project folder or pass the right path")
    text = _decode(path)
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None and _expanded_nodes(node, {}) > MAX_EXPANDED_NODES:
            raise _Refused(f"aliases expand to more than {MAX_EXPANDED_NODES} values", node.start_mark,
                           "write the values out instead of reusing them with &anchors and *aliases")
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or "invalid YAML"
        raise ConfigError(f"malformed YAML: {problem}", where=f"{path.name}{line}",
                          fix=getattr(exc, "fix", "check indentation and quoting there")) from None
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise ConfigError(f"malformed YAML: character {exc.character!r} is not allowed",
                          where=f"{path.name} line {at}", fix="remove the control character there") from None
    except (yaml.YAMLError, ValueError, OverflowError, RecursionError) as exc:
        # a value the YAML types reject while building it: 2024-02-30 as a date, a 5000-digit integer
        raise ConfigError(f"malformed YAML: {type(exc).__name__}: {str(exc)[:80]}", where=path.name,
                          fix="quote values that are meant as text") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping of names to settings", where=path.name,
                          fix="start each entry with `name:` at column 0")
    return data
