"""Bad configuration and model files (issue 13 §4): one line naming file and key with a fix, exit 2.

Each observed case goes through the entry it broke: `plan-gpus` (in-process through its `main`, or as a
subprocess where today's code hangs), the config loading `localcrew run` does first (the same `_guard`
and `load_project`), `localcrew run --plan`, `plan-gpus estimate`. The property tests then mutate the
three YAML files and GGUF headers at random and accept only a success or exit 2 with exactly one line.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crew.cli import main as plan_gpus
from crew.config import load_project
from crew.main import _guard
from crew.planner.plan import plan_from_text
from tests.conftest import ROOT

FILES = ("agents.yaml", "tasks.yaml", "gpu_layout.yaml")


def _project(where: Path) -> Path:
    for name in FILES:
        (where / name).write_bytes((ROOT / name).read_bytes())
    return where


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _one_line(rc: int, err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, (rc, err[-2000:])
    assert "fix:" in lines[0] and len(lines[0]) < 400, lines[0]
    return lines[0]


def load_like_localcrew_run(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """What `localcrew run` does before anything else: load the project under the CLI's own guard."""
    rc = _guard("localcrew", lambda: load_project(root.resolve()) and 0)
    return rc, capsys.readouterr().err


def plan_gpus_in(root: Path, argv: list[str], capsys: pytest.CaptureFixture[str],
                 monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.chdir(root)
    rc = plan_gpus(argv)
    return rc, capsys.readouterr().err


def _gpu(entry: str) -> str:
    return f"backend: llamacpp\ngpus:\n  - {{name: RTX 3060, {entry}}}\n"


BOMB = ("a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))
        + "gpus:\n  - {name: RTX 3060, memory_gib: *i}\n")
SMALL_BOMB = ("gpus:\n  - {name: RTX 3060, memory_gib: &a [[1, 1, 1, 1, 1, 1, 1, 1, 1], [*a, *a, *a, *a]]}\n"
              "  - {name: RTX 3060, memory_gib: [*a, *a, *a, *a, *a, *a, *a, *a, *a]}\n")


# ----------------------------------------------------------------------------- observed: YAML, load time

Edit = Callable[[Path], None]
LOAD_CASES: list[tuple[str, Edit, str]] = [
    ("agents-not-utf8", lambda d: (d / "agents.yaml").write_bytes((d / "agents.yaml").read_bytes() + b"# caf\xe9\n"),
     "agents.yaml line"),
    ("tasks-not-utf8", lambda d: (d / "tasks.yaml").write_bytes(b"# \xff\n" + (d / "tasks.yaml").read_bytes()),
     "tasks.yaml line 1: not UTF-8: byte 0xff"),
    ("layout-not-utf8", lambda d: (d / "gpu_layout.yaml").write_bytes((d / "gpu_layout.yaml").read_bytes()
                                                                     + b"# \xc3\n"), "gpu_layout.yaml line"),
    ("tasks-nested-20000", lambda d: (d / "tasks.yaml").write_text("inputs: " + "[" * 20000 + "]" * 20000),
     "tasks.yaml line 1: malformed YAML: nested more than"),
    ("agents-nested-20000", lambda d: (d / "agents.yaml").write_text("manager:\n" + "  - " * 20000 + "x\n"),
     "agents.yaml line"),
    ("timeout-inf", lambda d: _replace(d / "tasks.yaml", "test_timeout_s: 60", "test_timeout_s: .inf"),
     "tasks.yaml: workflow.test_timeout_s: inf is out of range"),
    ("timeout-nan", lambda d: _replace(d / "tasks.yaml", "test_timeout_s: 60", "test_timeout_s: .nan"),
     "tasks.yaml: workflow.test_timeout_s: nan is out of range"),
    ("placeholder-task", lambda d: _replace(d / "tasks.yaml", "{module_name}", "{modul_name}"),
     "tasks.yaml: write_tests.description: unknown placeholder {modul_name}"),
    ("placeholder-expected", lambda d: _replace(d / "tasks.yaml", "One fenced python code block starting",
                                                "One {fence} block starting"),
     "tasks.yaml: write_tests.expected_output: unknown placeholder {fence}"),
    ("placeholder-agent", lambda d: _edit_yaml(d / "agents.yaml", lambda a: a["tester"].update(goal="test {code}")),
     "agents.yaml: tester.goal: unknown placeholder {code}"),
    ("workspace-is-a-file", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs", "workspace_root: agents.yaml"),
     "tasks.yaml: workflow.workspace_root: agents.yaml is a file"),
    ("workspace-under-a-file", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs",
                                                  "workspace_root: agents.yaml/runs"),
     "tasks.yaml: workflow.workspace_root: agents.yaml/runs is inside"),
    ("workspace-proc", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs", "workspace_root: /proc/self"),
     "tasks.yaml: workflow.workspace_root: /proc/self is under /proc"),
    ("workspace-sys", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs", "workspace_root: /sys/x"),
     "tasks.yaml: workflow.workspace_root: /sys/x is under /sys"),
    ("workspace-dev", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs", "workspace_root: /dev/shm/r"),
     "tasks.yaml: workflow.workspace_root: /dev/shm/r is under /dev"),
    ("workspace-too-long", lambda d: _replace(d / "tasks.yaml", "workspace_root: runs", "workspace_root: " + "a" * 300),
     "tasks.yaml: workflow.workspace_root: the path is too long"),
    ("duplicate-top-key", lambda d: (d / "gpu_layout.yaml").write_text("backend: llamacpp\nbackend: ollama\n"),
     "gpu_layout.yaml line 2: malformed YAML: duplicate key 'backend'"),
    ("duplicate-nested-key", lambda d: _replace(d / "agents.yaml", "  llm:", "  llm: embedded\n  llm:"),
     "agents.yaml line"),
    ("duplicate-task", lambda d: (d / "tasks.yaml").write_text((d / "tasks.yaml").read_text()
                                                               + "\nreport:\n  agent: manager\n"),
     "tasks.yaml line"),
    ("alias-bomb", lambda d: (d / "gpu_layout.yaml").write_text(BOMB), "gpu_layout.yaml line 1: malformed YAML"),
    ("memory-inf", lambda d: (d / "gpu_layout.yaml").write_text(_gpu("memory_gib: .inf")),
     "gpu_layout.yaml: gpus[0].memory_gib"),
    ("memory-nan", lambda d: (d / "gpu_layout.yaml").write_text(_gpu("memory_gib: .nan")),
     "gpu_layout.yaml: gpus[0].memory_gib"),
    ("count-1e9", lambda d: (d / "gpu_layout.yaml").write_text(_gpu("memory_gib: 12, count: 1000000000")),
     "gpu_layout.yaml: gpus[0].count"),
    ("small-bomb-not-repr", lambda d: (d / "gpu_layout.yaml").write_text(SMALL_BOMB),
     "gpu_layout.yaml: gpus[0].memory_gib: expected a number from 0.001 to 4096, got a list"),
    ("alerts-inf", lambda d: _replace(d / "gpu_layout.yaml", "vram_pct: 92", "vram_pct: .inf"),
     "gpu_layout.yaml: alerts.vram_pct"),
    ("key-with-newline", lambda d: _edit_yaml(d / "agents.yaml", lambda a: a.update({"in\ntern": {}})),
     "agents.yaml: 'in\\ntern': unknown agent"),
]


def _edit_yaml(path: Path, change: Callable[[Any], None]) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in LOAD_CASES], ids=[c[0] for c in LOAD_CASES])
def test_localcrew_run_refuses_bad_config_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       edit: Edit, expected: str) -> None:
    edit(_project(tmp_path))
    line = _one_line(*load_like_localcrew_run(tmp_path, capsys))
    assert line.startswith(f"localcrew: {expected}"), line


LAYOUT_CASES = [c for c in LOAD_CASES if c[0] in ("layout-not-utf8", "alias-bomb", "memory-inf", "memory-nan",
                                                   "small-bomb-not-repr", "duplicate-top-key", "alerts-inf")]


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in LAYOUT_CASES], ids=[c[0] for c in LAYOUT_CASES])
def test_plan_gpus_refuses_bad_layout_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, edit: Edit, expected: str) -> None:
    edit(_project(tmp_path))
    line = _one_line(*plan_gpus_in(tmp_path, [], capsys, monkeypatch))
    assert line.startswith(f"plan-gpus: {expected}"), line


def _cli(args: list[str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return proc.returncode, proc.stderr


PLAN_GPUS = ["-c", "import sys; from crew.cli import main; sys.exit(main(sys.argv[1:]))"]
LOCALCREW = ["-m", "crew", "run", "--task", "write add(a, b) in calc.py"]


def test_plan_gpus_bounds_count_instead_of_planning_for_minutes(tmp_path: Path) -> None:
    # A subprocess: today's planner does not finish (the limit turns that hang into a failure).
    (_project(tmp_path) / "gpu_layout.yaml").write_text(_gpu("memory_gib: 12, count: 1000000000"))
    line = _one_line(*_cli(PLAN_GPUS, tmp_path))
    assert line.startswith("plan-gpus: gpu_layout.yaml: gpus[0].count: expected a whole number from 1 to 64")


@pytest.mark.parametrize("name", ["tasks-nested-20000", "alias-bomb", "agents-not-utf8", "placeholder-task"])
def test_real_localcrew_run_stops_at_the_config(tmp_path: Path, name: str) -> None:
    edit, expected = next(c[1:] for c in LOAD_CASES if c[0] == name)
    edit(_project(tmp_path))
    line = _one_line(*_cli([*LOCALCREW, "--project", str(tmp_path)], ROOT))
    assert line.startswith(f"localcrew: {expected}"), line


# ----------------------------------------------------------------------------- observed: saved plans


@pytest.mark.parametrize(("text", "expected"), [
    ("[]", "expected a JSON object, got a list"),
    ("null", "expected a JSON object, got null"),
    ('{"schema": "localcrew.plan/1", "feasible": true}', "agents: expected a list"),
])
def test_localcrew_run_refuses_a_malformed_saved_plan(tmp_path: Path, text: str, expected: str) -> None:
    _project(tmp_path)
    (tmp_path / "plan.json").write_text(text)
    line = _one_line(*_cli([*LOCALCREW, "--project", str(tmp_path), "--plan", str(tmp_path / "plan.json")],
                           ROOT, timeout=120))
    assert "plan.json: not a plan saved by plan-gpus:" in line and expected in line, line


def _saved_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> dict:  # type: ignore[type-arg]
    import json

    _project(tmp_path)
    assert plan_gpus_in(tmp_path, ["--profile", "4x-rtx3060", "--save", "plan.json"], capsys, monkeypatch)[0] == 0
    data: dict = json.loads((tmp_path / "plan.json").read_text())  # type: ignore[type-arg]
    return data


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["agents"][0].update(num_ctx="8192"), "agents[0].num_ctx: expected int, got a string"),
    (lambda d: d["agents"][0].update(gpu_indices=[99]), "agents[0].gpu_indices"),
    (lambda d: d["agents"][0].update(num_ctx=-1), "agents[0].num_ctx: -1 is out of range"),
    (lambda d: d["gpus"][0].update(total_bytes=True), "gpus[0].total_bytes: expected int, got true/false"),
    (lambda d: d["agents"][0]["estimate"].pop("total_bytes"), "agents[0].estimate.total_bytes: missing"),
    (lambda d: d["agents"][0].update(estimate=[]), "agents[0].estimate: expected a JSON object, got a list"),
    (lambda d: d.update(cpu={"total_bytes": 1}), "cpu.usable_bytes: missing"),
])
def test_a_saved_plan_of_another_shape_names_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, change: Any,
                                                     expected: str) -> None:
    import json

    data = _saved_plan(tmp_path, capsys, monkeypatch)
    change(data)
    with pytest.raises(ValueError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        plan_from_text(json.dumps(data))
    with pytest.raises(ValueError, match="nested too deep"):
        plan_from_text("[" * 100_000)


# ----------------------------------------------------------------------------- observed: GGUF headers

_TYPES = {
    "u32": gguf.GGUFValueType.UINT32, "i32": gguf.GGUFValueType.INT32, "u64": gguf.GGUFValueType.UINT64,
    "i64": gguf.GGUFValueType.INT64, "f32": gguf.GGUFValueType.FLOAT32, "str": gguf.GGUFValueType.STRING,
    "bool": gguf.GGUFValueType.BOOL,
}
HEADER = {  # a small llama model's header: key -> (type, value); `arch.` is replaced by the architecture
    "arch.block_count": ("u32", 2), "arch.context_length": ("u32", 2048), "arch.embedding_length": ("u32", 64),
    "arch.feed_forward_length": ("u32", 128), "arch.attention.head_count": ("u32", 4),
    "arch.attention.head_count_kv": ("u32", 2), "arch.attention.key_length": ("u32", 16),
    "arch.attention.value_length": ("u32", 16), "general.file_type": ("u32", 7),
}


class _AnyArrayWriter(gguf.GGUFWriter):
    """The stock writer, but an empty array is written (as a damaged file would hold it) instead of refused."""

    def _pack_val(self, val: Any, vtype: gguf.GGUFValueType, add_vtype: bool,
                  sub_type: gguf.GGUFValueType | None = None) -> bytes:
        if vtype == gguf.GGUFValueType.ARRAY and len(val) == 0 and sub_type is not None:
            return (self._pack("I", vtype) if add_vtype else b"") + self._pack("I", sub_type) + self._pack("Q", 0)
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def write_header_gguf(path: Path, header: dict[str, tuple[str, Any]], arch: str = "llama") -> Path:
    """A GGUF with exactly this header (values of any type, arrays as lists) and a few small tensors."""
    w = _AnyArrayWriter(str(path), arch)
    for key, (kind, value) in header.items():
        key = key.replace("arch.", f"{arch}.", 1)
        if isinstance(value, list):
            w.add_key_value(key, value, gguf.GGUFValueType.ARRAY, sub_type=_TYPES[kind])
        else:
            w.add_key_value(key, value, _TYPES[kind])
    w.add_tensor("token_embd.weight", np.zeros((8, 64), dtype=np.float32))
    for i in range(2):
        w.add_tensor(f"blk.{i}.attn_q.weight", np.zeros((64, 64), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def estimate_in(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = plan_gpus(["estimate", str(path), "--json", "--ctx", "512"])
    return rc, capsys.readouterr().err


def _address_space_limit() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def test_plan_gpus_estimate_refuses_block_count_2_31(tmp_path: Path) -> None:
    # A subprocess held to 4 GiB of address space: today's reader builds per-layer lists of 2^31 entries
    # (a MemoryError there, 20+ GB and the OOM killer on a machine without a limit).
    path = write_header_gguf(tmp_path / "m.gguf", {**HEADER, "arch.block_count": ("u32", 2**31)})
    proc = subprocess.run([sys.executable, *PLAN_GPUS, "estimate", str(path), "--json"], capture_output=True,
                          text=True, timeout=60, cwd=tmp_path, preexec_fn=_address_space_limit)
    line = _one_line(proc.returncode, proc.stderr)
    assert line.startswith(f"plan-gpus: {path}: header field llama.block_count is 2147483648, outside 1..4096")


@pytest.mark.parametrize(("key", "kind", "value"), [
    ("arch.embedding_length", "i32", -4096),         # today: total -1.62 GiB, exit 0
    ("arch.attention.head_count_kv", "u32", []),     # today: max() of an empty sequence
    ("arch.attention.head_count", "i64", -1),
    ("arch.context_length", "u64", 2**63),
    ("arch.block_count", "f32", 2.5),
    ("arch.block_count", "str", "32"),
])
def test_plan_gpus_estimate_refuses_impossible_gguf_headers(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            key: str, kind: str, value: Any) -> None:
    path = write_header_gguf(tmp_path / "m.gguf", {**HEADER, key: (kind, value)})
    line = _one_line(*estimate_in(path, capsys))
    assert line.startswith(f"plan-gpus: {path}: header field {key.replace('arch', 'llama')} is "), line


def test_plan_gpus_estimate_reads_the_unmutated_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert estimate_in(write_header_gguf(tmp_path / "m.gguf", HEADER), capsys)[0] == 0


def test_an_architecture_name_with_a_newline_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_header_gguf(tmp_path / "m.gguf", HEADER, arch="llama\nfake")
    assert "general.architecture" in _one_line(*estimate_in(path, capsys))


# ----------------------------------------------------------------------------- properties

# Values a hostile or careless edit puts into a YAML file: wrong types, extremes, YAML's own oddities.
YAML_VALUES = st.one_of(
    st.sampled_from([".inf", "-.inf", ".nan", "0", "-1", "1000000000", "1e400", "99999999999999999999", "true",
                     "null", "~", "[]", "{}", "''", "'{x}'", "'{project_task}'", "2024-02-30", "!!binary aGk=",
                     "&a [1, *a]", "*nope", "[[[[[[[[1]]]]]]]]", "'\\u0000'", "\"\\x85\"", "{a: 1, a: 2}",
                     "/proc/self", "agents.yaml", "{1: 2, b: 3}", "? [1, 2]\n  : 3", "!!set {a, b}"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12).map(lambda s: yaml.safe_dump(s).removesuffix("\n...\n").strip()),
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += _paths(v, (*prefix, i))
    return out


def _mutated(file: str, choice: int, value: str, how: str) -> bytes:
    """The shipped file with one key's value replaced, a key duplicated, or raw bytes spliced in."""
    text = (ROOT / file).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if file == "gpu_layout.yaml" and how in ("value", "dup"):
        data["gpus"] = [{"name": "RTX 3060", "memory_gib": 12, "count": 2}]  # declared, so mutations reach them
    paths = _paths(data)
    path = paths[choice % len(paths)]
    if how == "bytes":
        raw = text.encode()
        at = choice % len(raw)
        return raw[:at] + value.encode("utf-8", "surrogatepass")[:8] + b"\xff"[: choice % 2] + raw[at:]
    marker = "__MUTATED__"
    parent = data
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = marker
    out = yaml.safe_dump(data, sort_keys=False, width=10_000)
    indented = value.replace("\n", "\n" + " " * 8)
    out = out.replace(f"'{marker}'", indented).replace(marker, indented)
    if how == "dup" and isinstance(path[-1], str):
        out += f"{path[0]}: 1\n" if len(path) == 1 else ""
    return out.encode("utf-8", "surrogatepass")


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # capsys is drained
@given(file=st.sampled_from(FILES), choice=st.integers(0, 10_000), value=YAML_VALUES,
       how=st.sampled_from(["value", "value", "dup", "bytes"]))
def test_any_mutated_yaml_loads_or_is_one_line_exit_2(capsys: pytest.CaptureFixture[str], file: str, choice: int,
                                                       value: str, how: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _project(Path(tmp))
        (root / file).write_bytes(_mutated(file, choice, value, how))
        rc, err = load_like_localcrew_run(root, capsys)
        if rc != 0:
            _one_line(rc, err)
        if file == "gpu_layout.yaml" or file == "agents.yaml":
            mp = pytest.MonkeyPatch()
            try:
                mp.chdir(root)
                rc = plan_gpus(["--profile", "4x-rtx3060"] if file == "agents.yaml" else [])
            finally:
                mp.undo()
            err = capsys.readouterr().err
            if rc == 2:
                _one_line(rc, err)
            else:
                assert rc in (0, 1) and "Traceback" not in err, err


GGUF_VALUES = st.one_of(
    st.tuples(st.sampled_from(["u32", "u64"]), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("u64"), st.integers(0, 2**64 - 1)),
    st.tuples(st.sampled_from(["i32"]), st.integers(-(2**31), 2**31 - 1)),
    st.tuples(st.just("i64"), st.integers(-(2**63), 2**63 - 1)),
    st.tuples(st.just("f32"), st.floats(width=32)),
    st.tuples(st.just("str"), st.text(max_size=8)),
    st.tuples(st.just("bool"), st.booleans()),
    st.tuples(st.just("i32"), st.lists(st.integers(-5, 70), max_size=4)),
    st.tuples(st.just("u32"), st.lists(st.integers(0, 70), max_size=4)),
)
GGUF_KEYS = st.sampled_from([*HEADER, "arch.vocab_size", "arch.expert_count", "arch.expert_used_count",
                             "arch.attention.sliding_window", "arch.attention.key_length_mla"])


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # capsys is drained
@given(changes=st.dictionaries(GGUF_KEYS, GGUF_VALUES, min_size=1, max_size=3),
       drop=st.lists(st.sampled_from(list(HEADER)), max_size=2), arch=st.sampled_from(["llama", "gemma3"]))
def test_any_mutated_gguf_header_estimates_or_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                                  changes: dict[str, tuple[str, Any]],
                                                                  drop: list[str], arch: str) -> None:
    header = {k: v for k, v in HEADER.items() if k not in drop} | changes
    with tempfile.TemporaryDirectory() as tmp:
        path = write_header_gguf(Path(tmp) / "m.gguf", header, arch=arch)
        rc, err = estimate_in(path, capsys)
        if rc != 0:
            assert path.name in _one_line(rc, err)
