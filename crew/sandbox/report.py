"""What a sandboxed pytest run reports, and the limits it runs under (pure data, no IO)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxLimits:
    wall_timeout_s: float = 60.0
    cpu_time_s: int = 60
    address_space_bytes: int = 2 * 1024**3
    file_size_bytes: int = 64 * 1024**2
    # Counted per user. As root the child becomes `nobody` (root is exempt from the limit), and as a normal
    # user it runs in a fresh user namespace whose count starts at zero; only in the no-namespace fallback
    # is the user's (or nobody's) current process count added, so a busy desktop session can still fork.
    max_processes: int = 256
    output_cap_bytes: int = 64_000
    tmpfs_bytes: int = 64 * 1024**2   # cap of each of the two writable tmpfs (/tmp & co, the stage); RAM
    # Everything the sandbox allocates together (memory, tmpfs pages, memfds, SysV shm): cgroup v2
    # memory.max where this machine lets us create a cgroup with the memory controller, else per process
    # only (RLIMIT_AS). The report's `isolation` says which.
    memory_bytes: int = 2 * 1024**3


@dataclass(frozen=True)
class TestFailure:
    __test__ = False  # not a pytest test class, despite the name
    name: str
    message: str
    traceback: str


@dataclass(frozen=True)
class TestReport:
    __test__ = False
    collected: int
    passed: int
    failed: int
    errors: int
    skipped: int
    failures: tuple[TestFailure, ...]
    timed_out: bool
    exit_code: int
    output: str
    duration_s: float
    network_isolated: bool
    import_errors: tuple[str, ...]
    isolation: str = ""                                # what containment this run had, in words
    running_at_kill: str = ""                          # the test running when the run was killed or died
    time_limit_s: float = 0.0                          # the configured wall-clock limit (0: unknown)
    # Why the run's own record cannot be trusted (a report for a test never collected, twice the same
    # phase, an exit status that contradicts the reports, refused files): any of these fails the run.
    tampered: tuple[str, ...] = ()
    # Which tests passed (pytest node ids): counts alone cannot tell the user's examples from the model's
    # tests when a collection error stopped some files from running.
    passed_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        # exit_code too: a pytest killed half-way (CPU limit, os._exit) has counted no failure yet.
        return (self.exit_code == 0 and self.collected > 0 and self.failed == 0 and self.errors == 0
                and not self.timed_out and not self.import_errors and not self.tampered)

    @property
    def died(self) -> bool:
        """pytest did not finish on its own: killed by a limit or a signal, or a test called os._exit()."""
        return not self.timed_out and not 0 <= self.exit_code <= 5

    def summary(self) -> str:
        """One line, e.g. "3 passed, 1 failed in 0.41 s"."""
        parts = [f"{n} {word}" for n, word in ((self.passed, "passed"), (self.failed, "failed"),
                                               (self.errors, "errors"), (self.skipped, "skipped")) if n]
        counts = ", ".join(parts) or "no tests ran"
        where = f" while running {self.running_at_kill}" if self.running_at_kill else ""
        if self.timed_out:
            limit = self.time_limit_s or self.duration_s
            return f"killed at the {limit:g} s time limit{where} ({counts} before that)"
        if self.died:
            return f"pytest died{where} ({counts} before that)"
        if self.import_errors:
            counts += f", {len(self.import_errors)} import errors"
        if self.tampered:
            counts += f", {len(self.tampered)} refused by the sandbox"
        return f"{counts} in {self.duration_s:.2f} s"

    def feedback(self, limit: int = 3000) -> str:
        """What the developer sees in a fix round: verdict, import errors, then each failure, trimmed."""
        out = [f"pytest: {self.summary()}"]
        out += [f"refused by the sandbox: {t}" for t in self.tampered]
        out += [f"import error: {e}" for e in self.import_errors]
        if self.timed_out:
            out.append("The run was killed at the time limit: look for an endless loop, a sleep or a wait.")
        elif self.died:
            out.append(f"pytest itself died (exit {self.exit_code}): a test may have hit a limit "
                       "(CPU time, memory, processes) or called os._exit().")
        shown = self.failures[:5]
        budget = max(300, (limit - 600) // max(1, len(shown)))
        for f in shown:
            out.append(f"FAILED {f.name}: {f.message[:300]}\n{_tail(f.traceback, budget)}")
        if len(self.failures) > len(shown):
            out.append(f"… and {len(self.failures) - len(shown)} more failures")
        if self.collected == 0 and not self.failures and not self.import_errors:
            out.append(_tail(self.output, 1200))
        return _head_tail("\n".join(out), limit)


def _tail(text: str, limit: int) -> str:
    """The end of a traceback is where the error is."""
    return text if len(text) <= limit else "…\n" + text[-limit:]


def _head_tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit // 2] + "\n… (trimmed) …\n" + text[-limit // 2 :]
