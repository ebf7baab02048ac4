"""How many prompt tokens CrewAI's scaffolding adds to each task, counted with the embedded model's tokenizer.

    uv run python benchmarks/bench_prompt_overhead.py

The crew runs once on the example task with a scripted LLM that records every prompt (no model is loaded;
only the tokenizer). For each task it prints the tokens of the whole prompt (system + user messages), of what
we wrote into it (the task description with the inputs filled in, and the context from earlier tasks), and
the difference: what CrewAI adds (role/goal/backstory framing, "expected criteria", "Provide your complete
response", the retry wrapper).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_llm import ScriptedLLM  # noqa: E402


def main() -> None:
    from llama_cpp import Llama

    from crew.config import load_project
    from crew.models.embedded import embedded_model_path
    from crew.run.workflow import execute, open_state, run_inputs

    vocab = Llama(model_path=str(embedded_model_path()), vocab_only=True, verbose=False)

    def count(text: str) -> int:
        return len(vocab.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    good = ("```python\n# file: slugify_tool.py\nimport re\n\n\ndef slugify(text):\n"
            "    return re.sub(r'[^a-z0-9]+', '-', text.lower()).strip('-')\n```")
    tests = ("```python\n# file: test_slugify_tool.py\nfrom slugify_tool import slugify\n\n\n"
             "def test_spaces():\n    assert slugify('Hello World') == 'hello-world'\n```")
    script = {"specify": ["The module slugify_tool.py has slugify(text): lowercase, runs of other characters "
                          "become one hyphen, hyphens stripped."],
              "implement": [good], "write_tests": [tests], "fix_code": [good],
              "document": ["```markdown\n<!-- file: README.md -->\n# slugify\n```"], "report": ["Built slugify."]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("agents.yaml", "tasks.yaml", "gpu_layout.yaml"):
            shutil.copy(ROOT / name, work / name)
        project = load_project(work)
        llms = {n: ScriptedLLM(model=f"scripted-{n}", script=script) for n in project.agents}
        inputs = run_inputs(project, task=None, module=None)
        run_dir = work / "runs" / "r"
        run_dir.mkdir(parents=True)
        inputs["workspace"] = str(run_dir / "code")
        state = open_state(project, run_dir, inputs, lambda _t: None)
        crew = execute(project, llms, state, inputs)
        ours = {}
        for t in crew.tasks:
            context = "\n".join(c.output.raw for c in (t.context or []) if c.output is not None) \
                if isinstance(t.context, list) else ""
            ours[t.name] = count(t.description) + count(context)
    print(f"{'task':12} {'prompt':>7} {'ours':>6} {'CrewAI adds':>12} {'share':>6}")
    total_prompt = total_ours = 0
    for name in ("specify", "implement", "write_tests", "fix_code", "document", "report"):
        prompts = [text for llm in llms.values() for (task, text) in llm.seen if task == name]
        if not prompts:
            continue
        prompt = count(prompts[0])
        add = prompt - ours[name]
        total_prompt += prompt
        total_ours += ours[name]
        print(f"{name:12} {prompt:>7} {ours[name]:>6} {add:>12} {100 * add / prompt:>5.0f} %")
    print(f"{'all':12} {total_prompt:>7} {total_ours:>6} {total_prompt - total_ours:>12} "
          f"{100 * (total_prompt - total_ours) / total_prompt:>5.0f} %")


if __name__ == "__main__":
    main()
