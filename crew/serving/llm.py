"""CrewAI LLM objects bound to our own model servers.

Each agent gets its own instance so tokens and wall time are counted per agent. The context window CrewAI
assumes is the one the server was started with (not CrewAI's guess from the model name), so CrewAI's
summarisation kicks in before the server would truncate. We never pass `num_ctx`: the server enforces it.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import httpx
from crewai.llms.providers.openai.completion import OpenAICompletion
from openai import APIConnectionError, APIError, Stream
from pydantic import PrivateAttr

from crew.answers import complete, runaway

# What CrewAI puts in the prompt when it re-asks after a guardrail refused the answer (translations/en.json,
# errors.validation_error).
_RETRY_MARK = "Previous attempt failed validation"


def _text_of(messages: Any) -> str:
    if isinstance(messages, str):
        return messages
    return " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))


def relay_lost(exc: BaseException) -> bool:
    """A fleet relay's answer that the remote server's actor or node failed (crew/fleet/relay.py): a 502,
    or an error event cutting a stream. For the agent it is a server it cannot reach."""
    from crew.serving.remote import RELAY_ERROR

    body = exc.body if isinstance(exc, APIError) else None
    return isinstance(body, dict) and body.get("type") == RELAY_ERROR


class _LostServerNoise(logging.Filter):
    """CrewAI logs "OpenAI API call failed: Connection error." on the root logger for every request that
    reached no server, then raises. Ours are answered by the failover router, which says in words what
    happened to the server (restarted, moved, or the run stopped in one line): the raw line is dropped."""

    _LOST = ("Connection error", "peer closed connection", "incomplete chunked read", "Server disconnected")

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not (msg.startswith("OpenAI API call failed:") and any(w in msg for w in self._LOST))


logging.getLogger().addFilter(_LostServerNoise())


# CrewAI keeps 15 % of a window free for its own overhead (crewai.llms.context_window).
_USABLE_RATIO = 0.85


class _RanAway(BaseException):  # noqa: N818 - not an error: CrewAI's `except Exception` must let it through
    """Raised from the stream's chunk hook to stop a runaway answer (crew/answers/runaway.py): leaving the
    stream closes its connection, and llama.cpp's server stops decoding a request whose client has gone."""

    def __init__(self, kept: str, why: str) -> None:
        super().__init__(why)
        self.kept, self.why = kept, why


def _hang_up(cut: _RanAway) -> None:
    """Close the stream a runaway answer came on, now: the exception's frames hold it in a reference cycle,
    so it would close (and the server stop decoding) only when the garbage collector next ran — measured:
    never within seconds. The stream is a local of CrewAI's streaming loop, one of the traceback's frames."""
    tb = cut.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            if isinstance(value, Stream):
                value.close()
                return
        tb = tb.tb_next
    gc.collect()  # a CrewAI that keeps the stream elsewhere: the collector closes it, later but surely


class Captured(BaseException):  # noqa: N818 - not an error: CrewAI's `except Exception` must let it through
    """Raised by a capturing sibling once CrewAI has built its request (nothing was sent)."""


_COUNTERS = threading.Lock()  # siblings' counters are added back from several threads


class ServedLLM(OpenAICompletion):
    """An OpenAI-compatible client pinned to one local server and one model alias."""

    server_ctx_tokens: int = 8192
    server_slots: int = 1  # requests its server decodes at once (1: they queue; samples gain nothing at once)
    agent_name: str = ""
    device: str = "cpu"
    # A guardrail's retry is sampled hotter and with its own seed: a small model shown its failed answer at the
    # same temperature mostly returns it unchanged (measured: the same module three times in a row).
    retry_temperature: float = 0.8
    # Per task, the longest answer (tasks.yaml `max_tokens`): a three-sentence report needs fewer tokens than
    # code, and a 0.5B model writes until its limit (measured: 300 tokens for "three sentences", 13 s).
    task_max_tokens: dict[str, int] = {}
    # Per task, where the server ends the answer (tasks.yaml `stop`): a specification is prose, and the 0.5B
    # manager answered code instead in 38 of 38 measured runs — 250 tokens, ~15 s, thrown away each time. Sent
    # to the server (CrewAI only cuts stop words after the whole answer has been generated).
    task_stop: dict[str, list[str]] = {}
    # An attempt at the module (crew/run/drafter.py) ends where its code block closes once the block defines
    # these names (crew/answers/complete.py): nothing after the block is read. None: the answer runs to its end.
    done_when_defines: tuple[str, ...] | None = None
    _stop_now: list[str] = PrivateAttr(default_factory=list)
    _wall_s: float = PrivateAttr(default=0.0)
    _calls: int = PrivateAttr(default=0)
    _retries: int = PrivateAttr(default=0)
    _streamed: int = PrivateAttr(default=0)
    _answer_parts: list[str] = PrivateAttr(default_factory=list)  # this answer's text so far
    _cut_why: str = PrivateAttr(default="")  # why the last answer was cut while it streamed ("" when it was not)
    # Told of every streamed token: (agent, tokens so far in this answer) — the console's spinner.
    _on_token: Callable[[str, int], None] | None = PrivateAttr(default=None)
    _on_chunk: Callable[[str], None] | None = PrivateAttr(default=None)   # streamed text (--verbose)
    _more_on_answer: list[Callable[[str, str, str, float], None]] = PrivateAttr(default_factory=list)
    # Called when the server cannot be reached; True means "endpoint repaired or rebound: retry".
    _on_unreachable: Callable[[ServedLLM, BaseException], bool] | None = PrivateAttr(default=None)
    # Wraps each request (the GPU sampler marks "an agent is generating" with it).
    _around: Callable[[], AbstractContextManager[Any]] = PrivateAttr(default=nullcontext)
    # Told of each request a server answered: (agent, base_url, model alias, seconds) — the run log's
    # `llm_call` records, which tie every request to the server that served it.
    _on_answer: Callable[[str, str, str, float], None] | None = PrivateAttr(default=None)
    # Requests already sent ahead of CrewAI (crew/run/overlap.py), by their exact messages: CrewAI's own call
    # with those messages takes the answer instead of asking again.
    _ahead: dict[str, Future[str]] = PrivateAttr(default_factory=dict)
    # A capturing sibling records the messages CrewAI built and sends nothing (crew/run/overlap.py).
    _capture: list[Any] | None = PrivateAttr(default=None)
    _parent: ServedLLM | None = PrivateAttr(default=None)  # a sibling's original (its hooks read the counts)

    def get_context_window_size(self) -> int:
        return int(self.server_ctx_tokens * _USABLE_RATIO)

    def get_input_tokens_count(self, messages: Any, tools: Any = None, response_model: Any = None) -> int:
        """CrewAI's estimate (four characters a token), without the warning it logs on every request: our
        servers enforce the window themselves, so an estimate is all CrewAI's pre-check needs."""
        return (len(_text_of(messages)) + 3) // 4

    def ask_ahead(self, messages: list[dict[str, str]], *, run: Callable[[Callable[[], str]], None]) -> None:
        """Send `messages` now, on a sibling (so CrewAI's own requests are not disturbed); the answer waits for
        CrewAI to ask the same. `run` starts the request (a thread the caller owns and joins)."""
        future: Future[str] = Future()
        self._ahead[_key(messages)] = future

        def request() -> str:
            twin = self.sibling()
            try:
                answer = str(twin.call(messages))
                future.set_result(answer)
                return answer
            except BaseException as exc:
                future.set_exception(exc)
                raise
            finally:
                self.absorb(twin)

        run(request)

    def capturing(self, box: list[Any]) -> ServedLLM:
        """A sibling whose first call puts CrewAI's messages in `box` and raises Captured: the exact request
        CrewAI would send, built by CrewAI itself, without sending it."""
        twin = self.sibling()
        twin._capture = box
        return twin

    def call(self, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        messages = args[0] if args else kwargs.get("messages", "")
        if self._capture is not None:
            self._capture.append(messages)
            raise Captured
        ahead = self._ahead.pop(_key(messages), None) if self._ahead and isinstance(messages, list) else None
        if ahead is not None:
            try:
                return ahead.result()  # asked while the previous task ran: the same request, already answered
            except Exception:  # noqa: BLE001 - the head start failed: ask again, as if it never happened
                pass
        base_temperature, base_seed, base_max = self.temperature, self.seed, self.max_tokens
        task = getattr(kwargs.get("from_task"), "name", None)
        if task in self.task_max_tokens:
            self.max_tokens = self.task_max_tokens[task]
        self._stop_now = list(self.task_stop.get(task, [])) if task else []
        if _RETRY_MARK in _text_of(messages):
            self._retries += 1
            self.temperature = self.retry_temperature
            self.seed = (base_seed or 0) + self._retries
        try:
            with self._around():
                for _attempt in range(3):
                    try:
                        return self._answered(*args, **kwargs)
                    # A server that dies mid-stream cuts the response: httpx's RemoteProtocolError ("peer
                    # closed connection without sending complete message body") or ReadError, which the
                    # OpenAI client does not wrap while a stream is read. Timeouts are not a dead server.
                    except (ConnectionError, APIConnectionError, APIError, httpx.RemoteProtocolError,
                            httpx.ReadError) as exc:
                        if isinstance(exc, APIError) and not isinstance(exc, APIConnectionError) \
                                and not relay_lost(exc):
                            raise
                        if self._on_unreachable is None or not self._on_unreachable(self, exc):
                            raise
                try:
                    return self._answered(*args, **kwargs)
                except (ConnectionError, APIConnectionError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                    gone = getattr(self._on_unreachable, "gone", None)
                    if gone is not None:  # the router ends the run in one line (RunAborted)
                        gone(self, exc)
                    raise
        finally:
            self.temperature, self.seed, self.max_tokens = base_temperature, base_seed, base_max
            self._stop_now = []
            self._wall_s += time.monotonic() - started
            self._calls += 1

    def _prepare_completion_params(self, messages: Any, tools: Any = None) -> dict[str, Any]:
        params: dict[str, Any] = super()._prepare_completion_params(messages, tools)
        if self._stop_now:
            params["stop"] = list(self._stop_now)
        return params

    def _answered(self, *args: Any, **kwargs: Any) -> Any:
        base_url, model, started = str(self.base_url), str(self.model), time.monotonic()
        counted = self._token_usage["completion_tokens"]
        self._streamed, self._answer_parts, self._cut_why = 0, [], ""
        try:
            out = super().call(*args, **kwargs)
        except _RanAway as cut:
            out, self._cut_why = cut.kept, cut.why
            _hang_up(cut)
        if self._stop_now and isinstance(out, str) and not out.strip():
            # The answer began with a stop string (the server leaves it out): say which, so the guardrail
            # sees what came instead of an empty answer (CrewAI retries an empty one as a failed call).
            out = self._stop_now[0]
        if self.stream and self._token_usage["completion_tokens"] == counted:
            # llama.cpp's server sends no usage in a stream: one chunk is one token, and the prompt is
            # counted by the server's own tokenizer (CrewAI's estimate where the server has no such route).
            messages = args[0] if args else kwargs.get("messages", "")
            prompt = self._prompt_tokens(_text_of(messages))
            self._track_token_usage_internal({"prompt_tokens": prompt, "completion_tokens": self._streamed,
                                              "total_tokens": prompt + self._streamed})
        took = time.monotonic() - started
        if self._parent is not None:  # the hooks were given the original: tell it this answer's length
            self._parent._streamed, self._parent._cut_why = self._streamed, self._cut_why
        # only answered requests: a refused connection reached no server
        for hook in ([self._on_answer] if self._on_answer is not None else []) + self._more_on_answer:
            hook(self.agent_name, base_url, model, took)
        return out

    def _emit_stream_chunk_event(self, chunk: str, *args: Any, **kwargs: Any) -> None:
        if chunk:
            self._streamed += 1
            if self._on_token is not None:
                self._on_token(self.agent_name, self._streamed)
            if self._on_chunk is not None:
                self._on_chunk(chunk)
        super()._emit_stream_chunk_event(chunk, *args, **kwargs)
        call_type = kwargs.get("call_type")
        if chunk and (call_type is None or getattr(call_type, "value", call_type) == "llm_call"):  # not a tool call
            self._answer_parts.append(chunk)
            if "\n" in chunk:
                self._stop_if_runaway(kwargs)

    def _stop_if_runaway(self, event: dict[str, Any]) -> None:
        # Imported here: crewai.events imported before crewai itself is a circular import inside crewai (a
        # `localcrew run` that binds its agents before anything else imported crewai failed on it).
        from crewai.events.types.llm_events import LLMCallType

        text = "".join(self._answer_parts)
        found = runaway.runaway(text)
        if found is None:
            end = complete.module_end(text, self.done_when_defines) if self.done_when_defines is not None else None
            if end is None:
                return
            self._emit_call_completed_event(response=text[:end], call_type=LLMCallType.LLM_CALL,
                                            from_task=event.get("from_task"), from_agent=event.get("from_agent"),
                                            finish_reason="stop")
            raise _RanAway(text[:end], "")  # not a runaway: ended where what is read of it ends
        kept = runaway.kept(text, found[0])
        # Still inside CrewAI's call: its listeners see the answer end as every other does.
        self._emit_call_completed_event(response=kept, call_type=LLMCallType.LLM_CALL,
                                        from_task=event.get("from_task"), from_agent=event.get("from_agent"),
                                        finish_reason="runaway")
        raise _RanAway(kept, found[1])

    def _prompt_tokens(self, text: str) -> int:
        from crew.serving.process import http_json

        root = str(self.base_url).removesuffix("/v1")
        # llama-cpp-python's route, then llama-server's; Ollama has neither: an estimate then
        routes: tuple[tuple[str, dict[str, object], str], ...] = (
            ("/extras/tokenize/count", {"model": self.model, "input": text}, "count"),
            ("/tokenize", {"content": text}, "tokens"))
        for path, payload, key in routes:
            try:
                reply = http_json(f"{root}{path}", payload=payload, timeout_s=10)
            except (OSError, ValueError):
                continue
            if isinstance(reply, dict) and key in reply:
                value = reply[key]
                return len(value) if isinstance(value, list) else int(value)
        return (len(text) + 3) // 4

    def on_token(self, hook: Callable[[str, int], None]) -> None:
        self._on_token = hook

    def on_chunk(self, hook: Callable[[str], None]) -> None:
        self._on_chunk = hook

    def also_on_answer(self, hook: Callable[[str, str, str, float], None]) -> None:
        self._more_on_answer.append(hook)

    @property
    def last_completion_tokens(self) -> int:
        return self._streamed

    @property
    def last_cut(self) -> str:
        """Why the last answer was cut while it streamed (crew/answers/runaway.py); "" when it was not."""
        return self._cut_why

    def on_answer(self, hook: Callable[[str, str, str, float], None]) -> None:
        self._on_answer = hook

    def around_each_call(self, wrapper: Callable[[], AbstractContextManager[Any]]) -> None:
        self._around = wrapper

    def on_unreachable(self, handler: Callable[[ServedLLM, BaseException], bool]) -> None:
        self._on_unreachable = handler

    def rebind(self, *, base_url: str, model_alias: str, ctx_tokens: int, device: str,
               api_key: str | None = None) -> None:
        """Point this agent at another server (failover); clients are rebuilt on the next call."""
        self.base_url = f"{base_url}/v1"
        if api_key is not None:
            self.api_key = api_key
        self.model = model_alias
        self.server_ctx_tokens = ctx_tokens
        self.device = device
        self._client = None
        self._async_client = None

    def sibling(self, **settings: Any) -> ServedLLM:
        """A copy for one request sent beside others (samples decoded together in the server's slots): the
        same server, model and hooks, `settings` (temperature, seed) its own, and counters of its own —
        one instance's per-call state cannot be shared by two requests in flight. `absorb` adds its
        counters back."""
        twin = self.model_copy(update=settings)
        twin._token_usage = dict.fromkeys(self._token_usage, 0)
        twin._wall_s, twin._calls, twin._retries, twin._streamed = 0.0, 0, 0, 0
        twin._answer_parts, twin._cut_why = [], ""
        twin._more_on_answer = list(self._more_on_answer)
        twin._ahead = {}  # model_copy shares private dicts: a sibling taking its own head start would wait forever
        twin._parent = self
        return twin

    def absorb(self, twin: ServedLLM) -> None:
        with _COUNTERS:
            for key, value in twin._token_usage.items():
                self._token_usage[key] = self._token_usage.get(key, 0) + value
            self._wall_s += twin._wall_s
            self._calls += twin._calls

    @property
    def wall_s(self) -> float:
        return self._wall_s

    @property
    def calls(self) -> int:
        return self._calls


def _key(messages: Any) -> str:
    return json.dumps(messages, sort_keys=True, default=str)


def served_llm(*, agent: str, base_url: str, model_alias: str, ctx_tokens: int, device: str,
               server_slots: int = 1, max_tokens: int = 1024, timeout_s: float = 600.0, retries: int = 2,
               seed: int | None = None, temperature: float = 0.2,
               task_max_tokens: dict[str, int] | None = None,
               task_stop: dict[str, list[str]] | None = None) -> ServedLLM:
    return ServedLLM(
        model=model_alias, base_url=f"{base_url}/v1", api_key="sk-local-no-key",
        temperature=temperature, max_tokens=max_tokens, timeout=timeout_s, max_retries=retries,
        server_ctx_tokens=ctx_tokens, server_slots=server_slots, agent_name=agent, device=device, seed=seed,
        stream=True,
        task_max_tokens=dict(task_max_tokens or {}), task_stop=dict(task_stop or {}),
    )
