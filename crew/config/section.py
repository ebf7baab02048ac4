"""The one validator of YAML values: typed access to a mapping, every error naming file and dotted key.

Agents, tasks, workflow settings, the layout, and each declared GPU and exclusion rule all go through
`Section`; a mistake is one `ConfigError` ("gpu_layout.yaml: gpus[0].memory_gib: …") with its fix.
"""

from __future__ import annotations

import math
from typing import Any

from crew.errors import ConfigError


def key_name(name: Any) -> str:
    """A key as it goes into `where`: itself when it is short plain text, else shown like a value."""
    return name if isinstance(name, str) and name.isprintable() and 0 < len(name) <= 40 else show(name)


def show(value: Any, limit: int = 40) -> str:
    """A value for an error line: scalars shown (shortened), containers only by their type."""
    if isinstance(value, bool | int | float | str) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return f"a {type(value).__name__}"


class Section:
    """Typed access to one mapping, every error naming file and dotted key."""

    def __init__(self, file: str, key: str, data: Any, allowed: tuple[str, ...]) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"expected a mapping, got {type(data).__name__}", where=f"{file}: {key}",
                              fix=f"give `{key}` keys such as {', '.join(allowed[:3])}")
        unknown = sorted(set(data) - set(allowed), key=str)
        if unknown:
            raise ConfigError(f"unknown key {show(unknown[0])}", where=self._at(file, key, unknown[0]),
                              fix=f"use one of: {', '.join(allowed)}")
        self.file, self.key, self.data = file, key, data

    @staticmethod
    def _at(file: str, key: str, name: Any) -> str:
        return f"{file}: {key}.{key_name(name)}" if key else f"{file}: {key_name(name)}"

    def where(self, name: str) -> str:
        return self._at(self.file, self.key, name)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = ..., *, fix: str = "") -> Any:
        if name not in self.data or self.data[name] is None:
            if default is ...:
                raise ConfigError("missing required key", where=self.where(name),
                                  fix=fix or f"add `{name}:`")
            return default
        value = self.data[name]
        # bool is an int in Python; a `true` where a number belongs is a mistake, not a 1.
        if isinstance(value, bool) and kind in (int, float, (int, float)):
            value = None
        if value is None or not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ConfigError(f"expected {want}, got {type(self.data[name]).__name__}",
                              where=self.where(name), fix=fix or f"set `{name}` to a {want}")
        return value

    def text(self, name: str, default: Any = ..., *, fix: str = "") -> Any:
        value = self.get(name, str, default, fix=fix)
        return value.strip() if isinstance(value, str) else value

    def positive_int(self, name: str, default: Any = ..., *, low: int = 1, high: int = 10**9) -> int:
        value = int(self.get(name, int, default))
        if not low <= value <= high:
            raise ConfigError(f"{show(value)} is out of range", where=self.where(name),
                              fix=f"use a whole number from {low} to {high}")
        return value

    def number(self, name: str, default: Any = ..., *, low: float, high: float, fix: str = "",
               low_included: bool = False) -> float:
        """A finite int or float with low < value <= high (`.inf` and `.nan` are YAML floats too)."""
        value = float(self.get(name, (int, float), default))
        above_low = low <= value if low_included else low < value
        if not (math.isfinite(value) and above_low and value <= high):
            raise ConfigError(f"{show(value)} is out of range", where=self.where(name),
                              fix=fix or f"use a number above {low:g} and at most {high:g}")
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self.get(name, list, [])
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise ConfigError("expected a list of names", where=self.where(name),
                              fix=f"write `{name}: [a, b]`")
        return tuple(v.strip() for v in value)



    # Hardware entries (declared GPUs, exclusion rules) name things: a card "3060" or an index 0 written
    # unquoted is still a name, so numbers count as text there, and ranges say both ends.

    def label(self, name: str, *, required: bool = False) -> str | None:
        """Text, or a number taken as text (`name: 3060`); None when absent and not required."""
        value = self.data.get(name)
        if value is None:
            if required:
                raise ConfigError("missing required key", where=self.where(name), fix=f"add `{name}:`")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float) or not str(value).strip():
            raise ConfigError(f"expected text, got {type(value).__name__}", where=self.where(name),
                              fix=f'write `{name}: "..."`')
        return str(value).strip()

    def bounded(self, name: str, *, integer: bool = False, low: float = 0.0, high: float) -> float | None:
        """A finite number with low <= value <= high (a whole one if `integer`); None when absent."""
        value = self.data.get(name)
        if value is None:
            return None
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) \
                or not low <= value <= high:
            want = "a whole number" if integer else "a number"
            raise ConfigError(f"expected {want} from {low:g} to {high:g}, got {show(value)}",
                              where=self.where(name), fix=f"e.g. `{name}: {max(1, int(low))}`")
        return float(value)

    def capability(self, name: str = "compute_capability") -> str | None:
        """A CUDA compute capability, "8.6" or a major version alone ("12"); None when absent."""
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f'expected a version such as "8.6", got {show(value)}', where=self.where(name),
                              fix='write it quoted: "12.0"')
        text = str(value).strip()
        parts = text.split(".")
        if not 1 <= len(parts) <= 2 or not all(p.isdigit() for p in parts):
            raise ConfigError(f"{show(text)} is not a compute capability", where=self.where(name),
                              fix='write major.minor, e.g. "8.6", or a major version alone: "12"')
        return text
