"""How a server or the build probe ended, in one line: pure (crew/hardware/crash.py, crew/models/build_check.py,
crew/hardware/cpu.py's parsers)."""

from __future__ import annotations

from pathlib import Path

from crew.hardware.cpu import read_cpuinfo, trap_line_for
from crew.hardware.crash import ServerExit, describe
from crew.models.build_check import BuildReport, compare, compiled_features, gpu_backends, portable, problems

KERNEL = """\
[  12.1] random: crng reseeded
[ 101.5] traps: python[4242] general protection fault ip:7f3b sp:7ffd error:0 in libggml-cpu.so.0[7f3b5c+200]
[ 140.2] traps: python[9999] trap invalid opcode ip:55 sp:7ffe error:0 in libc.so.6[7f+1000]
"""
FAULTHANDLER = """\
Fatal Python error: Segmentation fault

Thread 0x00007f (most recent call first):
  File "/v/lib/python3.11/site-packages/llama_cpp/llama.py", line 657 in eval
  File "/v/lib/python3.11/site-packages/llama_cpp/server/app.py", line 300 in create_chat_completion
"""
SYSINFO_PORTABLE = "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | LLAMAFILE = 1 | "
SYSINFO_NATIVE_AMX = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 1 "
                      "| AVX512_VNNI = 1 | AMX_INT8 = 1 | REPACK = 1 | ")
AMX_CPU = frozenset(["fpu", "sse", "pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2", "avx512f", "avx512_vnni",
                     "amx_tile", "amx_int8", "amx_bf16"])
EPYC_CPU = frozenset(["fpu", "sse", "pni", "ssse3", "avx", "avx2", "f16c", "fma", "bmi2"])


def test_a_segfault_in_llama_cpp_names_the_signal_the_library_and_the_cause() -> None:
    ex = ServerExit(returncode=-11, log_tail=FAULTHANDLER, kernel_line=trap_line_for(KERNEL, 4242))
    assert ex.faulted and ex.same_binary_will_fail and not ex.killed
    assert ex.how() == "SIGSEGV in libggml-cpu"
    line = describe(ex, what="the llama.cpp server for `embedded`", times=2, cpu_flags=AMX_CPU)
    assert line.startswith("the llama.cpp server for `embedded` crashed (SIGSEGV in libggml-cpu) twice; ")
    assert "AMX" in line and "\n" not in line


def test_without_the_kernel_log_the_frames_say_llama_cpp() -> None:
    ex = ServerExit(returncode=-11, log_tail=FAULTHANDLER)
    assert ex.how() == "SIGSEGV in llama.cpp"
    assert "cannot run on this CPU" in describe(ex, what="x", cpu_flags=EPYC_CPU)


def test_sigill_means_instructions_the_cpu_lacks() -> None:
    line = describe(ServerExit(returncode=-4), what="llama.cpp")
    assert "crashed (SIGILL)" in line and "instructions this CPU does not have" in line


def test_killed_and_out_of_memory_are_not_the_builds_fault() -> None:
    killed = ServerExit(returncode=-9)
    assert killed.killed and not killed.same_binary_will_fail
    assert "was killed (SIGKILL)" in describe(killed, what="s")
    oom = ServerExit(returncode=1, log_tail="alloc_buffer: cudaMalloc failed: out of memory")
    assert oom.out_of_memory and not oom.same_binary_will_fail
    other = ServerExit(returncode=1, log_tail="ValueError: Model path does not exist: /nope.gguf")
    assert other.same_binary_will_fail
    said = describe(other, what="s")
    assert "exited (exit code 1)" in said and "Model path does not exist" in said


def test_the_trap_line_is_the_one_of_our_pid_or_its_threads() -> None:
    assert "libggml-cpu" in trap_line_for(KERNEL, 4242)
    assert "libggml-cpu" in trap_line_for(KERNEL, 4200)  # a thread of 4200
    assert trap_line_for(KERNEL, 5000).startswith("[ 140.2]") is False
    assert trap_line_for(KERNEL, 10) == ""
    assert trap_line_for("", 4242) == ""


def test_compiled_features_and_what_the_cpu_lacks() -> None:
    assert compiled_features(SYSINFO_PORTABLE) == {"SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2"}
    on_epyc = compare(SYSINFO_NATIVE_AMX, EPYC_CPU)
    assert on_epyc.missing == {"AVX512", "AVX512_VNNI", "AMX_INT8"} and not portable(on_epyc)
    on_amx = compare(SYSINFO_NATIVE_AMX, AMX_CPU)
    assert not on_amx.missing and on_amx.fragile == {"AMX_INT8"}
    assert portable(compare(SYSINFO_PORTABLE, AMX_CPU))
    cuda = SYSINFO_NATIVE_AMX + "CUDA : ARCHS = 860 | USE_GRAPHS = 1 | "
    assert gpu_backends(cuda) == ("CUDA",) and portable(compare(cuda, AMX_CPU))  # a GPU build: the user's flags


def test_problems_say_the_probe_stage_that_died() -> None:
    report = BuildReport(stages=({"stage": "import"}, {"stage": "build", "system_info": SYSINFO_PORTABLE},
                                 {"stage": "loaded"}), exit=ServerExit(returncode=-11, log_tail=FAULTHANDLER))
    found = problems(report, compare(report.system_info, AMX_CPU), cpu_flags=AMX_CPU)
    assert len(found) == 1 and found[0].startswith("llama.cpp, generating, crashed (SIGSEGV")
    ok = BuildReport(stages=({"stage": "generated", "tokens": 8, "seconds": 0.5},), exit=ServerExit(0))
    assert ok.ok and ok.tokens_per_s == 16.0
    assert problems(ok, compare(SYSINFO_PORTABLE, EPYC_CPU), cpu_flags=EPYC_CPU) == []
    slow = BuildReport(stages=({"stage": "build"},), exit=None, timeout_s=5)
    assert "took over 5 s" in problems(slow, compare("", EPYC_CPU), cpu_flags=EPYC_CPU)[0]


def test_cpuinfo_is_read_from_its_file(tmp_path: Path) -> None:
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n\nprocessor\t: 1\n"
                 "model name\t: AMD EPYC\nflags\t\t: fpu avx2 fma\n")
    info = read_cpuinfo(f)
    assert info.model_name == "AMD EPYC" and info.cores == 2 and "avx2" in info.flags
    assert read_cpuinfo(tmp_path / "absent").flags == frozenset()
