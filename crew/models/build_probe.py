"""Run as a script in a child process (never imported by localcrew): load llama.cpp, print what the build is,
load a model and generate a few tokens. Its parent (crew.models.build_check) reads one JSON line per stage
from stdout, so a crash in any stage still leaves the stages before it, and the exit status says how it died.

Usage: python -X faulthandler build_probe.py MODEL.gguf N_TOKENS
"""

import ctypes
import json
import sys
import time
from pathlib import Path


def _say(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def _ggml_text(lib_dir: Path, name: str) -> str:
    for lib in sorted(lib_dir.glob("libggml-base.so*")) + sorted(lib_dir.glob("libggml.so*")):
        try:
            fn = getattr(ctypes.CDLL(str(lib)), name)
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_char_p
        return (fn() or b"").decode(errors="replace")
    return ""


def main(model: str, n_tokens: int) -> int:
    _say(stage="import")
    import llama_cpp

    lib_dir = Path(llama_cpp.__file__).parent / "lib"
    _say(stage="build", package_version=llama_cpp.__version__,
         ggml_version=_ggml_text(lib_dir, "ggml_version"), ggml_commit=_ggml_text(lib_dir, "ggml_commit"),
         system_info=llama_cpp.llama_print_system_info().decode(errors="replace"),
         gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()))
    started = time.monotonic()
    llm = llama_cpp.Llama(model_path=model, n_ctx=256, n_threads=None, verbose=False, seed=0)
    _say(stage="loaded", seconds=round(time.monotonic() - started, 3))
    started = time.monotonic()
    out = llm.create_completion("def add(a, b):", max_tokens=n_tokens, temperature=0.0)
    took = time.monotonic() - started
    tokens = int(out["usage"]["completion_tokens"])
    _say(stage="generated", tokens=tokens, seconds=round(took, 3), text=out["choices"][0]["text"][:80])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
