"""Runaway answers: found while they stream, cut, and what came before kept (crew/answers/runaway.py)."""

from __future__ import annotations

import ast
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from crew.answers import codeblocks, complete, runaway
from crew.journal.events import LlmCall, parse
from crew.serving.llm import served_llm
from crew.serving.process import free_port
from tests.conftest import ROOT

# HumanEval/53's tester, as it looped (tests/…/test_he53.py of a kept run, shortened).
_LOOP = "```python\nfrom he53 import add\n\n\n" + "".join(
    f'def test_add_{i}():\n    assert add({a}) == {r}, "Test case {i} failed"\n\n\n'
    for i, (a, r) in enumerate([("2, 3", 5), ("-2, -3", -5), ("0, 0", 0), ("-2, 0", -2), ("0, -2", -2),
                                ("0, -2", -2), ("0, -2", -2), ("0, -2", -2), ("0, -2", -2), ("0, -2", -2)], 1))


def _first_cut(text: str) -> tuple[int, tuple[int, str] | None]:
    """As the stream sees it: asked each time a line ends; where it first says stop."""
    for i, ch in enumerate(text):
        if ch == "\n":
            found = runaway.runaway(text[:i + 1])
            if found is not None:
                return i + 1, found
    return len(text), None


def test_a_looping_test_file_is_cut_after_four_copies_and_keeps_its_first() -> None:
    seen, found = _first_cut(_LOOP)
    assert found is not None and found[1] == "it repeated the same lines"
    assert seen < len(_LOOP)                          # stopped before the stream ended
    kept = runaway.kept(_LOOP[:seen], found[0])
    files = codeblocks.extract_files(kept, default_name="t.py").files
    assert len(files) == 1
    tree = ast.parse(files[0].content)
    names = [f.name for f in tree.body if isinstance(f, ast.FunctionDef)]
    assert names == [f"test_add_{i}" for i in range(1, 6)]   # the four tests before the loop, and its first copy


def test_different_values_are_never_a_loop() -> None:
    tests = "```python\n" + "".join(f"def test_add_{i}():\n    assert add({i}, {i}) == {2 * i}\n\n" for i in range(12))
    assert _first_cut(tests)[1] is None
    strings = "".join(f"    assert rev('{w}') == '{w[::-1]}'\n" for w in ("ab", "cd", "ef", "gh", "ij", "kl", "mn"))
    assert _first_cut(strings)[1] is None


def test_one_line_six_times_is_a_loop_five_is_not() -> None:
    five = "def test_push():\n" + "    s.push(1)\n" * 5 + "    assert s.size() == 5\n"
    assert _first_cut(five)[1] is None
    six = "def test_push():\n" + "    s.push(1)\n" * 8
    seen, found = _first_cut(six)
    assert found is not None and seen == len("def test_push():\n" + "    s.push(1)\n" * 6)
    assert six[:found[0]] == "def test_push():\n    s.push(1)"


def test_prose_that_repeats_a_sentence_is_cut_too() -> None:
    text = "# Calc\n\nAdds numbers.\n\n" + "See the example below.\nIt adds numbers.\n" * 6
    seen, found = _first_cut(text)
    assert found is not None and text[:found[0]].endswith("See the example below.\nIt adds numbers.")


def test_past_sixteen_checks_the_answer_stops_where_the_seventeenth_begins() -> None:
    # HumanEval/50's tester: one function, an assert per letter
    tests = "```python\ndef test_shift():\n" + "".join(
        f"    assert shift({chr(97 + i)!r}) == {chr(98 + i)!r}\n" for i in range(25)) + "```\n"
    seen, found = _first_cut(tests)
    assert found is not None and found[1] == "it went on past 16 checks"
    kept = runaway.kept(tests[:seen], found[0])
    content = codeblocks.extract_files(kept, default_name="t.py").files[0].content
    assert content.count("assert ") == 16 and ast.parse(content)
    # unittest's and pytest.raises count too; a seventeenth check as a function's first line leaves no empty def
    mixed = "```python\n" + "".join(f"def test_{i}():\n    self.assertEqual(f({i}), {i})\n" for i in range(8)) + \
        "".join(f"def test_r{i}():\n    with pytest.raises(ValueError):\n        f(-{i})\n" for i in range(8)) + \
        "def test_last():\n    assert f(99) == 99\n    assert f(100) == 100\n"
    seen, found = _first_cut(mixed)
    assert found is not None
    content = codeblocks.extract_files(runaway.kept(mixed[:seen], found[0]), default_name="t.py").files[0].content
    assert "test_last" not in content and content.count("def test_") == 16 and ast.parse(content)
    assert _first_cut("```python\n" + "".join(
        f"    assert f({i}) == {i}\n" for i in range(16)))[1] is None   # sixteen is not too many


def test_a_long_line_costs_no_more_than_its_length() -> None:
    line = "    assert f(" + ", " * 20000 + ")" + ', "m"\n'
    assert runaway.runaway(line * 3) is None       # compared as it is; three copies are not yet a loop


# ------------------------------------------------------------------------------ through a real HTTP stream


class _Streaming(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that streams `pieces` for as long as the client reads; a subclass names them
    and counts what it sent and whether the client hung up."""

    pieces: list[str] = []
    sent = 0
    hung_up = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/chat/completions":  # the prompt's token count: no such route, an estimate is used
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for piece in self.pieces:
                chunk = {"id": "x", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.flush()
                type(self).sent += 1
                time.sleep(0.002)  # a model's pace, so the socket's buffers do not swallow the whole stream
        except OSError:
            type(self).hung_up.set()
            return
        self.wfile.write(b"data: [DONE]\n\n")


class _Looping(_Streaming):
    """The same test for as long as the client reads."""

    pieces = ["```python\n", "def test_a_1():\n", "    assert a(1) == 2\n"] + [
        f"def test_a_{i}():\n    assert a(0) == 0, 'case {i}'\n\n" for i in range(2, 100_000)]
    sent = 0
    hung_up = threading.Event()


def test_a_runaway_stream_is_hung_up_on_and_its_start_returned() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port(12990)), _Looping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = served_llm(agent="tester", base_url=f"http://127.0.0.1:{server.server_address[1]}", model_alias="m",
                         ctx_tokens=4096, device="cpu", retries=0, timeout_s=20)
        answer = llm.call([{"role": "user", "content": "Write tests."}],
                          from_task=SimpleNamespace(name="write_tests", id="w", description="", agent=None, i18n=None))
        assert _Looping.hung_up.wait(20)           # the server saw the client go (llama-server then stops)
    finally:
        server.shutdown()
        server.server_close()
    assert _Looping.sent < 1000                    # of 100,001 pieces
    assert llm.last_cut == "it repeated the same lines"
    content = codeblocks.extract_files(str(answer), default_name="t.py").files[0].content
    assert content.count("def test_") == 2 and "a(0) == 0" in content
    assert llm.get_token_usage_summary().completion_tokens == llm.last_completion_tokens > 0


def test_the_run_log_says_why_an_answer_was_cut() -> None:
    rec = parse({"event": "llm_call", "agent": "tester", "seconds": 3.0, "cut": "it went on past 16 checks"})
    assert isinstance(rec, LlmCall) and rec.cut == "it went on past 16 checks"
    old = parse({"event": "llm_call", "agent": "tester", "seconds": 3.0})
    assert isinstance(old, LlmCall) and old.cut == ""


def test_the_offline_replay_counts_what_the_guard_would_have_cut(tmp_path: Path, capsys: Any) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_runaway as br

    run = tmp_path / "keep" / "HumanEval-53"
    run.mkdir(parents=True)
    records = [{"event": "answer", "task": "implement", "text": "```python\ndef add(x, y):\n    return x + y\n```"},
               {"event": "answer", "task": "consensus", "text": _LOOP},
               {"event": "task_done", "task": "write_tests", "raw": _LOOP + "# processed by the handlers\n"},
               {"event": "answer", "task": "consensus", "text": "```python\ndef add(x, y):\n    return x + y\n```"},
               "not a record"]
    (run / "run.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n{torn")
    out = tmp_path / "out.json"
    assert br.main([str(tmp_path / "keep"), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["answers"] == 2          # the two identical attempts count once
    (stopped,) = report["stopped"]
    assert stopped["what"] == "answer/consensus" and stopped["why"] == "it repeated the same lines"
    assert stopped["streamed"] < stopped["length"]
    assert report["saved_characters"] == stopped["length"] - stopped["streamed"]
    assert "stopped: 1 (50.0%)" in capsys.readouterr().out
    assert br.main([str(tmp_path / "nothing-here")]) == 2


# ------------------------------------------------------------------------ an attempt complete while it streams


def _first_end(text: str, names: tuple[str, ...]) -> int | None:
    """As the stream sees it: asked each time a line ends."""
    for i, ch in enumerate(text):
        if ch == "\n":
            end = complete.module_end(text[:i + 1], names)
            if end is not None:
                return end
    return None


def test_an_attempt_ends_where_the_block_holding_its_module_closes() -> None:
    module = "```python\n# file: m.py\ndef f(x):\n    return x + 1\n```\n"
    answer = module + "\nThis function adds one.\n\n```python\nassert f(1) == 2\n```\n"
    assert _first_end(answer, ("f",)) == len(module)
    assert _first_end(answer, ()) == len(module)                 # no name given: any function
    assert _first_end(answer, ("f", "g")) is None                # the task's `g` is not there: go on
    assert _first_end(module[:-1], ("f",)) is None               # a fence still streaming is not yet a fence


def test_a_usage_example_first_or_a_fence_inside_a_docstring_is_not_the_end() -> None:
    usage = "```python\nprint(f(1))\n```\n"
    module = '```python\ndef f(x):\n    """Use it:\n```\nf(1)\n```\n    """\n    return x\n```\n'
    assert _first_end(usage + module, ("f",)) == len(usage + module)
    assert complete.module_end("no code at all\n", ("f",)) is None


class _Chatty(_Streaming):
    """A module, then talk about it for as long as the client reads."""

    pieces = ["```python\n", "def f(x):\n", "    return x + 1\n", "```\n"] + [
        f"Here is remark {i} about the function.\n" for i in range(100_000)]
    sent = 0
    hung_up = threading.Event()


def test_an_attempt_is_hung_up_on_once_its_module_is_complete_and_not_called_a_runaway() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", free_port(12995)), _Chatty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        llm = served_llm(agent="developer", base_url=f"http://127.0.0.1:{server.server_address[1]}",
                         model_alias="m", ctx_tokens=4096, device="cpu", retries=0, timeout_s=20)
        one = llm.sibling(seed=7, done_when_defines=("f",))
        answer = one.call([{"role": "user", "content": "Write f."}])
        assert _Chatty.hung_up.wait(20)
    finally:
        server.shutdown()
        server.server_close()
    assert _Chatty.sent < 1000
    assert str(answer) == "```python\ndef f(x):\n    return x + 1\n```\n"
    assert one.last_cut == ""  # ended, not cut: no yellow line, no `cut` in the run log
