"""The sandbox's inside: the supervisor (PID 1 of the sandbox) and the worker that runs pytest.

Standard library only. `launch.py` copies every file of this folder into the stage as the package
`localcrew_inside` and runs it with `python -I -B` (`launch.boot_command`), so none of it can import the
project; tests/test_sandbox_inside.py runs the copy with no site-packages and scans every import.

- `supervisor.py` the entry point, `main`: joins the cgroup, builds the new root, forks the worker and
                  relays its well-formed events with the worker's exit status;
- `rootfs.py`     the new root file system (`build_root`: binds, tmpfs, `pivot_root`);
- `kernel.py`     the libc calls (`prctl`, `mount`, capabilities) and their constants;
- `worker.py`     the worker: rlimits, uid and capability drop, the audit hook, then checks and pytest;
- `checks.py`     the event writer and the syntax and import checks of the produced modules;
- `recorder.py`   the pytest plugin that reports each result as an event.

How the pieces contain what: docs/sandbox.md.
"""
