"""How a model server (or the set-up self-check) ended, read from its exit status and its log: pure.

A llama.cpp build compiled for instructions the machine cannot run dies on a signal the moment its first
matrix product runs (SIGILL for a missing instruction; SIGSEGV for AMX in a VM that advertises it and then
faults on `ldtilecfg`). What the user needs is one line: which signal, in which library, what it likely
means, what to run. `ServerExit` carries the facts; `describe` writes the line.

The library comes from the kernel's own trap line when it can be read ("traps: python[123] general
protection fault ... in libggml-cpu.so.0[...]", crew.serving.procinfo.kernel_traps), else from the Python
frames faulthandler writes into the log (the server runs with `-X faulthandler`).
"""

from __future__ import annotations

import re
import signal
from dataclasses import dataclass

# Signals that mean the program itself faulted (a bad instruction, a bad address, an abort): running the
# same binary on the same device and model will fault again.
FAULT_SIGNALS = frozenset({signal.SIGSEGV, signal.SIGILL, signal.SIGBUS, signal.SIGABRT, signal.SIGFPE})
# Out of memory said by the program itself (CUDA, ggml, Python) before it exits non-zero.
_OOM = re.compile(r"out of memory|failed to allocate|cudaMalloc failed|MemoryError|cannot allocate memory",
                  re.IGNORECASE)
_KERNEL_LIB = re.compile(r"\bin (lib[\w.+-]+?\.so[\w.]*)")
_FAULT_HEADER = re.compile(r"Fatal Python error: (\w[\w ]*)")
_FRAME = re.compile(r'File "([^"]+)", line \d+ in (\w+)')


@dataclass(frozen=True)
class ServerExit:
    """One ended process: its return code (negative: killed by that signal), its log's last lines, and the
    kernel's trap line for its pid when one was found."""

    returncode: int
    log_tail: str = ""
    kernel_line: str = ""

    @property
    def signal_number(self) -> int | None:
        return -self.returncode if self.returncode < 0 else None

    @property
    def signal_name(self) -> str:
        n = self.signal_number
        if n is None:
            return ""
        try:
            return signal.Signals(n).name
        except ValueError:
            return f"signal {n}"

    @property
    def faulted(self) -> bool:
        """The binary itself crashed (a fault signal): the same binary on the same device will crash again."""
        n = self.signal_number
        return n is not None and n in FAULT_SIGNALS

    @property
    def killed(self) -> bool:
        """Stopped from outside (SIGKILL: the OOM killer or a user; SIGTERM/SIGINT)."""
        return self.signal_number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)

    @property
    def out_of_memory(self) -> bool:
        return self.returncode > 0 and bool(_OOM.search(self.log_tail))

    @property
    def same_binary_will_fail(self) -> bool:
        """After this exit, is a fallback that runs the same binary and model on the same device pointless?
        A fault, or an error exit that is not memory: yes. Killed or out of memory: no (room may differ)."""
        if self.faulted:
            return True
        return self.returncode > 0 and not self.out_of_memory

    @property
    def library(self) -> str:
        """Where it faulted: the kernel's library name, else the innermost native-looking frame's module."""
        if m := _KERNEL_LIB.search(self.kernel_line):
            return m.group(1).split(".so")[0]
        frames = _FRAME.findall(self.log_tail)
        if frames and any("llama_cpp" in path for path, _ in frames):
            return "llama.cpp"
        return ""

    def how(self) -> str:
        """'SIGSEGV in libggml-cpu', 'SIGILL', 'exit code 1', ..."""
        if self.signal_number is not None:
            lib = self.library
            return f"{self.signal_name} in {lib}" if lib and self.faulted else self.signal_name
        return f"exit code {self.returncode}"


def likely_cause(ex: ServerExit, *, cpu_flags: frozenset[str] = frozenset()) -> str:
    """A short, honest guess of why, for the one line."""
    if ex.signal_number == signal.SIGILL:
        return "this build uses instructions this CPU does not have (built on or for another CPU)"
    if ex.faulted and ex.signal_number in (signal.SIGSEGV, signal.SIGBUS):
        if {"amx_tile", "amx_int8"} & cpu_flags:
            return ("this build cannot run on this CPU (it advertises AMX, which faults in some VMs; "
                    "a native build uses it)")
        return "this build cannot run on this CPU, or the model file is damaged"
    if ex.signal_number == signal.SIGABRT:
        return "llama.cpp aborted (its log's last lines say why)"
    if ex.killed:
        return "it was killed from outside (the kernel's OOM killer, or a user)"
    if ex.out_of_memory:
        return "it ran out of memory"
    return "its log's last lines say why"


def last_log_line(ex: ServerExit) -> str:
    """The log's last meaningful line (a faulthandler header, or the last non-empty line), shortened."""
    if m := _FAULT_HEADER.search(ex.log_tail):
        return f"Fatal Python error: {m.group(1).strip()}"
    lines = [ln.strip() for ln in ex.log_tail.splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def describe(ex: ServerExit, *, what: str, times: int = 1, cpu_flags: frozenset[str] = frozenset()) -> str:
    """One line: "the llama.cpp server for `embedded` crashed (SIGSEGV in libggml-cpu) twice; <cause>"."""
    count = {1: "", 2: " twice"}.get(times, f" {times} times")
    verb = "crashed" if ex.faulted else ("was killed" if ex.killed else "exited")
    line = f"{what} {verb} ({ex.how()}){count}; {likely_cause(ex, cpu_flags=cpu_flags)}"
    last = last_log_line(ex)
    if last and not ex.faulted:
        line += f" (last log line: {last})"
    return line
