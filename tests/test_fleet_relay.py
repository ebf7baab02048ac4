"""A relay whose actor or node fails, without a cluster: the relay's real HTTP answers (a 502, or an error
event cutting a stream) over a fake upstream, read by the agent's real LLM client, which asks the failover
router — here with nowhere to go but the agent's API endpoint (a fake OpenAI-compatible server)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from crew.fleet.relay import RELAY_ERROR, Relay
from crew.journal.log import RunLog
from crew.serving.failover import Router
from crew.serving.llm import served_llm
from crew.serving.process import Supervisor, free_port
from tests.fake_ollama import FakeOllama


class LostNode:
    """An upstream whose node goes away: before the answer starts, or after `chunks_first` chunks."""

    def __init__(self, chunks_first: int | None) -> None:
        self.chunks_first = chunks_first
        self.requests = 0

    def whole(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        self.requests += 1
        raise RuntimeError("ActorDiedError: the actor's node was removed")

    def stream(self, path: str, body: bytes) -> Iterator[bytes | tuple[int, str]]:
        self.requests += 1
        if self.chunks_first is None:
            raise RuntimeError("ActorDiedError: the actor's node was removed")
        yield 200, "text/event-stream"
        for i in range(self.chunks_first):
            delta = {"choices": [{"index": 0, "delta": {"content": f"part{i} "}, "finish_reason": None}]}
            yield b"data: " + json.dumps(delta).encode() + b"\n\n"
        raise RuntimeError("ActorDiedError: the actor's node was removed")


@pytest.mark.parametrize("chunks_first", [None, 2], ids=["before-the-answer", "mid-stream"])
def test_a_lost_node_is_a_failover_not_a_failed_task(tmp_path: Path, chunks_first: int | None) -> None:
    api = FakeOllama(reply="answer from the API")
    api.add_model("gpt-local", 1)
    port = free_port(12960)
    api.start("127.0.0.1", port)
    lost = LostNode(chunks_first)
    relay = Relay("rig-gpu0", upstream=lost)
    try:
        llm = served_llm(agent="tester", base_url=relay.endpoint.base_url, model_alias="m", ctx_tokens=4096,
                         device="gpu 0 on rig", timeout_s=10)  # the default client retries (2) included
        lines: list[str] = []
        router = Router(supervisor=Supervisor(tmp_path), log=RunLog(tmp_path / "run.jsonl"), say=lines.append,
                        binding={"tester": ("rig-gpu0", "m")}, cpu_fallback=lambda agent: None,
                        api_fallback=lambda agent: (f"http://127.0.0.1:{port}/v1", "gpt-local", "sk-test"))
        llm.on_unreachable(router)
        answer = llm.call("Say something.")
        assert "answer from the API" in str(answer) and "part0" not in str(answer)
        assert lost.requests == 1  # the client did not retry the relay's error: the router decided at once
        assert router.binding["tester"] == ("api", "gpt-local")
        assert any("moved from rig-gpu0 to its API endpoint" in ln for ln in lines)
    finally:
        relay.close()
        api.close()


def test_the_relays_error_is_openai_shaped_and_not_to_be_retried() -> None:
    import urllib.error
    import urllib.request

    relay = Relay("rig-gpu0", upstream=LostNode(None))
    try:
        req = urllib.request.Request(relay.endpoint.base_url + "/v1/models")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10)
        assert info.value.code == 502 and info.value.headers["x-should-retry"] == "false"
        assert json.loads(info.value.read())["error"]["type"] == RELAY_ERROR
    finally:
        relay.close()


class LongStream:
    """An upstream that keeps streaming until it is closed; says whether it was."""

    def __init__(self) -> None:
        self.closed = False

    def whole(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        return 200, "application/json", b"{}"

    def stream(self, path: str, body: bytes) -> Iterator[bytes | tuple[int, str]]:
        import time

        yield 200, "text/event-stream"
        try:
            for i in range(100_000):
                yield f"data: {{\"n\": {i}}}\n\n".encode() + b" " * 4096
                time.sleep(0.001)
        finally:
            self.closed = True


def test_an_agent_that_hangs_up_mid_stream_is_no_error_and_stops_the_upstream(
        capfd: pytest.CaptureFixture[str]) -> None:
    import socket
    import time

    upstream = LongStream()
    relay = Relay("rig-gpu0", upstream=upstream)
    try:
        body = b'{"stream": true}'
        with socket.create_connection(("127.0.0.1", relay.endpoint.port)) as conn:
            conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        deadline = time.monotonic() + 10
        while not upstream.closed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert upstream.closed  # the actor's stream is closed: the server stops generating for nobody
        assert "Traceback" not in capfd.readouterr().err
    finally:
        relay.close()
