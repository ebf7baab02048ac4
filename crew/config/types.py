"""The typed, frozen form of a project's three files: what every module downstream reads.

Nothing downstream sees a raw mapping: declared GPUs and exclusion rules are typed entries too, checked
field by field when the file is read (`layout.py`); the hardware adapter turns them into GPU snapshots.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crew.hardware.types import DeclaredExclusion as DeclaredExclusion  # `exclude:` entries, typed
from crew.hardware.types import DeclaredGpu as DeclaredGpu  # `gpus:` entries, typed (re-exported)
from crew.models.llamacpp import GPU_KV_TYPE

AGENT_NAMES = ("manager", "developer", "tester", "documentation")
TASK_NAMES = ("specify", "implement", "write_tests", "fix_code", "document", "report")
BACKENDS = ("auto", "ollama", "llamacpp")
# The planner weighs a step down to a lesser model by the agent's priority. The developer writes the code
# every other agent reviews, tests or describes: its model matters most unless agents.yaml says otherwise.
DEFAULT_PRIORITY = {"developer": 2}
MAX_PRIORITY = 100
# Requests an agent has in flight at once, each a slot of its model's server. The developer's model also
# drafts the independent samples (the consensus' attempts, the second opinions) the workflow asks together:
# its own request plus three (tasks.yaml's consensus_samples). The planner counts every slot's KV cache and
# plans fewer where they do not fit.
DEFAULT_SLOTS = {"developer": 4}
MAX_SLOTS = 64
MIB = 1024**2


# agents.yaml `draft_model: ngram`: llama-server drafts from n-grams of the prompt and answer so far (no model
# file, no memory): an answer that copies its prompt — a docstring, the module being fixed — decodes in steps.
NGRAM_DRAFT = "ngram"


@dataclass(frozen=True)
class AgentConfig:
    name: str
    role: str
    goal: str
    backstory: str
    llm: str
    fallbacks: tuple[str, ...] = ()
    num_ctx: int = 8192
    cpu_model: str = "embedded"
    api: str | None = None
    max_tokens: int = 1024     # longest answer the agent may give (a cap on time per call on slow CPUs)
    priority: int = 1          # how much its first-choice model matters to the planner (see DEFAULT_PRIORITY)
    verbose: bool = False      # CrewAI's own step log for this agent (also on for all with --verbose)
    max_iter: int = 3          # CrewAI's cap on an agent's reasoning iterations per task
    tools: str = "auto"        # read-only file tools: auto (API endpoints only) | on | off (crew/tools/file_tools.py)
    slots: int = 1             # requests in flight at once on its model's server (see DEFAULT_SLOTS)
    draft_model: str = ""      # a smaller model of the same family drafting tokens (speculative decoding),
                               # or NGRAM_DRAFT: tokens drafted from the text already in the context

    @property
    def candidates(self) -> tuple[str, ...]:
        """Ranked model candidates for a GPU, best first (rank 0 is `llm`)."""
        return (self.llm, *self.fallbacks)


@dataclass(frozen=True)
class TaskConfig:
    name: str
    agent: str
    description: str
    expected_output: str
    context: tuple[str, ...] = ()
    max_tokens: int | None = None  # longest answer for this task (else the agent's max_tokens)
    stop: tuple[str, ...] = ()     # the server ends this task's answer where one of these would begin


@dataclass(frozen=True)
class WorkflowSettings:
    max_fix_rounds: int = 2
    test_timeout_s: float = 60.0
    workspace_root: str = "runs"
    implement_rounds: int = 3      # attempts at the code against the task's own examples, before the tests
    seed: int = 42                 # sampling seed sent with every model request: a run can be repeated
    temperature: float = 0.0       # first answers are greedy (one shot's setting); retries are sampled hotter
    second_opinions: int = 2       # independent attempts that judge code vs model tests (0: off)
    consensus_samples: int = 0     # attempts compared with the code on the tests' calls (0: off)
    consensus_tiebreak: int = 0    # more attempts on an even split elsewhere, or a code no attempt reproduces
    samples_at_once: int = 4       # independent attempts asked together (decoded in the server's slots)
    assumed_examples: int = 0      # examples the manager assumes when the task states none (0: off)
    class_by_method: bool = False  # a class skeleton's methods asked one per request, at once (third attempt)
    samples_ahead: bool = True     # the consensus's attempts asked once specify is done, beside implement
    lean_samples: bool = True      # independent attempts asked for the code alone (the task's docstrings put back)


@dataclass(frozen=True)
class TasksConfig:
    tasks: Mapping[str, TaskConfig]
    inputs: Mapping[str, str]
    workflow: WorkflowSettings


@dataclass(frozen=True)
class ApiEndpoint:
    name: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None



@dataclass(frozen=True)
class LayoutConfig:
    backend: str = "auto"
    gpus: str | tuple[DeclaredGpu, ...] = "detect"   # "detect": ask NVML
    reserve_bytes: int = 512 * MIB
    base_port: int = 11500
    simulate: bool = False
    allow_split: bool = False
    exclude: tuple[DeclaredExclusion, ...] = ()
    api_endpoints: Mapping[str, ApiEndpoint] = field(default_factory=dict)
    keep_warm: bool = False
    on_spill: str = "fail"          # a model partly in system RAM: "fail" the start, or "warn" and go on
    kv_type: str = GPU_KV_TYPE     # KV cache type on GPUs: f16 | q8_0 | q4_0 (quantized needs flash attention)
    alerts: Mapping[str, float] = field(default_factory=dict)  # vram_pct, temp_c, util_min_pct
    cluster: str | None = None      # a Ray cluster ("auto" or the head's host:port): hosts come from its nodes
    path: str = "gpu_layout.yaml"


@dataclass(frozen=True)
class ProjectConfig:
    root: Path
    agents: Mapping[str, AgentConfig]
    tasks: TasksConfig
    layout: LayoutConfig
