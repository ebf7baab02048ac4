"""The fleet benchmark's figures from what a client saw (no cluster: the benchmark itself needs one)."""

from __future__ import annotations

import json
import math
import sys

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_fleet as bf  # noqa: E402


def _line(delta: dict[str, str]) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": delta}]}).encode() + b"\r\n"


def test_only_content_deltas_count_as_tokens() -> None:
    assert bf.sse_content(_line({"content": "def"})) == "def"
    assert bf.sse_content(_line({"role": "assistant"})) is None  # llama.cpp's first chunk: no token yet
    assert bf.sse_content(_line({"content": ""})) is None
    assert bf.sse_content(_line({})) is None  # the final chunk, with finish_reason
    assert bf.sse_content(b"data: [DONE]\r\n") is None
    assert bf.sse_content(b"\r\n") is None


def test_first_token_and_decode_rate_from_chunk_times() -> None:
    # sent at 10.0 s; first token 50 ms later, then 4 more tokens over 0.2 s: 20 tokens/s after the first.
    a = bf.Streamed(sent_s=10.0, chunk_s=(10.05, 10.1, 10.15, 10.2, 10.25), text="abcde")
    assert a.tokens == 5
    assert math.isclose(a.first_token_ms, 50.0)
    assert math.isclose(a.decode_tokens_per_s, 20.0)
    one = bf.Streamed(sent_s=0.0, chunk_s=(0.1,), text="a")
    assert math.isnan(one.decode_tokens_per_s)  # one token: no decode span to measure
    assert math.isnan(bf.Streamed(sent_s=0.0, chunk_s=(), text="").first_token_ms)


def _answer(sent_s: float, first_s: float, step_s: float, tokens: int = 11, text: str = "same") -> bf.Streamed:
    return bf.Streamed(sent_s=sent_s, chunk_s=tuple(sent_s + first_s + i * step_s for i in range(tokens)), text=text)


def test_medians_ratio_and_goals() -> None:
    # relay: first token 40/45/90 ms (median 45), 10 tokens after the first in 0.5 s → 20 tokens/s;
    # direct: 30/30/31 ms (median 30), 10 in 0.49 s → 20.41 tokens/s.
    relay = [_answer(0, 0.040, 0.05), _answer(1, 0.045, 0.05), _answer(2, 0.090, 0.05)]
    direct = [_answer(0, 0.030, 0.049), _answer(1, 0.030, 0.049), _answer(2, 0.031, 0.049)]
    cmp = bf.compare(relay, direct)
    assert math.isclose(cmp.relay.first_token_ms, 45.0) and math.isclose(cmp.direct.first_token_ms, 30.0)
    assert math.isclose(cmp.added_first_token_ms, 15.0) and cmp.first_token_goal_met
    assert math.isclose(cmp.decode_ratio, 0.98) and cmp.decode_goal_met
    assert cmp.same_text and cmp.relay.requests == 3 and cmp.relay.tokens == 11
    slow = [_answer(i, 0.060, 0.06, text="other" if i == 2 else "same") for i in range(3)]
    worse = bf.compare(slow, direct)
    assert not worse.first_token_goal_met and not worse.decode_goal_met and not worse.same_text


def test_defaults_are_the_issues_long_answers() -> None:
    args = bf.build_parser().parse_args([])
    assert (args.requests, args.max_tokens, args.json_out) == (6, 256, None)
    small = bf.build_parser().parse_args(["--requests", "2", "--max-tokens", "32", "--json", "f.json"])
    assert (small.requests, small.max_tokens, small.json_out) == (2, 32, "f.json")
