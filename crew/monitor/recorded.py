"""GPU readings in the CSV of `nvidia-smi --query-gpu=... --format=csv`: read for `--replay`, written for `--record`.

Why: the rig that runs the models is often headless, or has no localcrew installed yet. `nvidia-smi` is
there wherever the driver is, and `nvidia-smi --query-gpu=<QUERY> --format=csv -l 5 > gpus.csv` logs a
whole run. Replayed here, the log goes through the same table, alerts and peak accounting as a live reading,
against the same plan. Parsing and formatting are pure; `append_recording` is the one function that writes.

Accepted: the header line nvidia-smi prints (field names with their `[unit]`), values with or without units
(`nounits`), `[N/A]` / `[Not Supported]` as unknown, and lines starting with `#` as comments (kept: a
recording says where it comes from). A `noheader` file is refused: without the header the columns are guesses.
Compute processes are not in this query, so a replayed GPU has no process list.

`csv_header` / `csv_rows` write the same format from live samples (`plan-gpus monitor --record FILE`, and
`gpus.csv` in a crew run's folder), so localcrew's own recordings replay exactly like nvidia-smi's.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path

from crew.errors import ConfigError
from crew.monitor.live import GpuSample, Reading

QUERY = "timestamp,index,name,uuid,memory.total,memory.used,utilization.gpu,temperature.gpu,power.draw"
RECORD_HINT = f"record with `nvidia-smi --query-gpu={QUERY} --format=csv -l 5 > gpus.csv`"
REQUIRED = ("index", "memory.total", "memory.used")
MIB = 1024**2
_UNKNOWN = {"", "n/a", "[n/a]", "[not supported]", "not supported", "[unknown error]", "[gpu is lost]"}


@dataclass(frozen=True)
class RecordedReading:
    timestamp: str  # as nvidia-smi wrote it; "" when the query had no timestamp column
    reading: Reading


@dataclass(frozen=True)
class Recording:
    source: str
    comments: tuple[str, ...]  # the file's `#` lines: provenance, kept with the data
    readings: tuple[RecordedReading, ...]


def parse_recording(text: str, source: str) -> Recording:
    """Parse an nvidia-smi CSV query. One reading per sampling round: a round ends when a GPU index repeats
    (nvidia-smi writes every GPU once per round), so files with or without a timestamp column both work."""
    comments, rows = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("#"):
            comments.append(line.lstrip()[1:].strip())
        elif line.strip():
            rows.append((number, line))
    if not rows:
        raise ConfigError("no nvidia-smi readings in the file", where=source, fix=RECORD_HINT)
    header_line, header = rows[0][0], _fields(rows[0][1])
    missing = [f for f in REQUIRED if f not in header]
    if missing:
        raise ConfigError(f"the header has no {missing[0]} column (is it a --format=csv,noheader file?)",
                          where=f"{source}: line {header_line}", fix=RECORD_HINT)
    rounds: list[list[tuple[str, GpuSample]]] = [[]]
    for number, line in rows[1:]:
        values = next(csv.reader([line], skipinitialspace=True))
        if len(values) != len(header):
            raise ConfigError(f"{len(values)} values for {len(header)} columns", where=f"{source}: line {number}",
                              fix="keep the file as nvidia-smi wrote it (one header, then one line per GPU)")
        row = dict(zip(header, (v.strip() for v in values), strict=True))
        sample = _sample(row, f"{source}: line {number}")
        if any(s.index == sample.index for _, s in rounds[-1]):
            rounds.append([])
        rounds[-1].append((row.get("timestamp", ""), sample))
    if not rounds[-1]:
        raise ConfigError("a header but no readings", where=source, fix=RECORD_HINT)
    readings = tuple(RecordedReading(r[0][0], Reading(tuple(s for _, s in r))) for r in rounds)
    return Recording(source, tuple(comments), readings)


def _fields(line: str) -> list[str]:
    """`memory.used [MiB]` -> `memory.used`; the unit is implied by the field (nvidia-smi's are fixed)."""
    return [cell.split("[")[0].strip().lower() for cell in next(csv.reader([line], skipinitialspace=True))]


def _number(value: str | None, where: str, field: str) -> float | None:
    if value is None or value.strip().lower() in _UNKNOWN:
        return None
    text = value.strip()
    for unit in ("MiB", "W", "%"):
        if text.endswith(unit):
            text = text[: -len(unit)].strip()
            break
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{field} is {value!r}, not a number", where=where,
                          fix="keep the values as nvidia-smi wrote them") from None


def _sample(row: dict[str, str], where: str) -> GpuSample:
    index = _number(row.get("index"), where, "index")
    if index is None or index != int(index) or index < 0:
        raise ConfigError(f"index is {row.get('index')!r}", where=where, fix="a GPU index is 0, 1, 2, ...")
    total, used = (_number(row.get(f), where, f) for f in ("memory.total", "memory.used"))
    util, temp = (_number(row.get(f), where, f) for f in ("utilization.gpu", "temperature.gpu"))
    power = _number(row.get("power.draw"), where, "power.draw")
    uuid = row.get("uuid") or None
    return GpuSample(
        index=int(index), name=row.get("name") or f"GPU {int(index)}",
        uuid=None if uuid is None or uuid.lower() in _UNKNOWN else uuid,
        total_bytes=round(total * MIB) if total is not None else None,
        used_bytes=round(used * MIB) if used is not None else None,
        util_pct=round(util) if util is not None else None, temp_c=round(temp) if temp is not None else None,
        power_mw=round(power * 1000) if power is not None else None,
    )


_UNITS = {"memory.total": "MiB", "memory.used": "MiB", "utilization.gpu": "%", "power.draw": "W"}


def csv_header() -> str:
    """QUERY's fields as nvidia-smi heads them: `memory.used [MiB]`; csv_rows writes them in this order."""
    return ", ".join(f"{f} [{_UNITS[f]}]" if f in _UNITS else f for f in QUERY.split(",")) + "\n"


def csv_rows(when: dt.datetime, reading: Reading) -> str:
    """One round of readings as nvidia-smi writes it (`--format=csv`, units included, [N/A] for unknown)."""
    stamp = when.strftime("%Y/%m/%d %H:%M:%S.") + f"{when.microsecond // 1000:03d}"
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    for s in reading.gpus:
        w.writerow([stamp, s.index, s.name, s.uuid or "[N/A]", _unit(s.total_bytes, MIB, "MiB"),
                    _unit(s.used_bytes, MIB, "MiB"), _unit(s.util_pct, 1, "%"), _unit(s.temp_c, 1, ""),
                    f"{s.power_mw / 1000:.2f} W" if s.power_mw is not None else "[N/A]"])
    return out.getvalue()


def _unit(value: int | None, per: int, unit: str) -> str:
    return "[N/A]" if value is None else f"{round(value / per)} {unit}".strip()


def append_recording(path: Path, reading: Reading, when: dt.datetime | None = None) -> None:
    """Append one round to a recording file, with the header first when the file is new or empty."""
    if not reading.gpus:
        return
    with open(path, "a", encoding="utf-8") as f:
        if f.tell() == 0:
            f.write(csv_header())
        f.write(csv_rows(when or dt.datetime.now(), reading))
