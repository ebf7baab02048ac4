"""The guardrails of the specify, write_tests, fix_code and document tasks (implement's is in attempts.py).

CrewAI calls each guardrail with the task's output; it writes the files, runs pytest where code changed,
and answers (accepted, text) — or (False, what to tell the agent) to have the task asked again. Each
guardrail decides itself when its attempts are spent (`RunState.may_ask_again`, budgets in steps.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crew.answers import answers, codeblocks, contradictions
from crew.journal.events import FilesWritten, TestsDropped, TestsRepaired
from crew.journal.records import Answer, FixStopped, SpecFallback, TestsRejected
from crew.run import assumed, attempts, consensus, second_opinion, verdict
from crew.run.attempts import ANSWER_LOG_CHARS

if TYPE_CHECKING:
    from crew.run.state import RunState

_CODE_LINE = re.compile(r"^\s*(def |class |import |from \S+ import |```)", re.MULTILINE)


def _spec_problems(text: str, functions: list[str]) -> list[str]:
    problems = []
    # A code fence first: the server stopped the answer there (tasks.yaml specify `stop`)
    if len(_CODE_LINE.findall(text)) >= 2 or text.strip() == "```":
        problems.append("is code, not a specification")
    missing = [f for f in functions if f not in text]
    if missing:
        problems.append("drops the name(s) " + ", ".join(f"`{f}`" for f in missing) + " the task uses")
    if not text.strip():
        problems.append("is empty")
    return problems


def spec(state: RunState, output: Any) -> tuple[bool, Any]:
    """The specification must be prose that keeps the task's names; else it is asked again, then the task
    text itself is used (a small model's spec that drops a name or an edge case misleads everyone)."""
    text = str(output.raw)
    problems = _spec_problems(text, [*state.functions, *state.classes,
                                     *(m for m in state.methods if not m.startswith("_"))])
    if not problems:
        return True, text
    # No second try: measured on the 0.5B default, a re-asked manager wrote code again nearly every time,
    # at ~25 s a call; the task text is the better specification then.
    state.log.record(SpecFallback(why=tuple(problems)))
    state.progress(f"  [yellow]the specification {problems[0]}; the task text is used instead[/]")
    # Every later task states the project task itself; repeating it here (with its code block) only made
    # the prompts longer and put code back in front of the tester, who copies what it is shown.
    return True, "The specification is the project task itself, as stated above."


def tests(state: RunState, output: Any) -> tuple[bool, Any]:
    """Model-written tests are evidence, not truth: they must test the module (not a pasted copy), hold
    tests, and never contradict the user's examples; then pytest runs everything."""
    saved = state.write_files("tester", output.raw, keep=state.tests_only, default_name=state.test_file) \
        or _cut_back(state, str(output.raw))
    if not saved and state.may_ask_again("write_tests", "write_tests"):
        return False, (f"No test file was found in your answer. Answer with one fenced code block whose "
                       f"first line is `# file: {state.test_file}`.")
    # Lines that do not parse are cut out (one broken assert must not take the other tests, and the user's
    # examples, down with it); a file that still does not parse goes back to the tester once.
    unparsable = [path for path in saved if not _parseable(state, path)]
    # Module-level calls are cut out without asking (they are never needed in a test file); a pasted copy
    # of the code under test or a file without tests goes back to the tester once.
    problems = [f"{path} is not valid Python" for path in unparsable]
    problems += [p.what for path in saved for p in answers.test_file_problems(
        state.workspace.read_text(path), module_name=state.module_name, under_test=state.under_test)
        if "calls code at module level" not in p.what]
    if problems and state.may_ask_again("write_tests", "test_problems"):
        state.log.record(TestsRejected(why=tuple(problems)))
        state.progress(f"  [yellow]test file rejected: {problems[0]}[/]")
        return False, "The test file cannot be used: " + "; ".join(problems) + (
            f". Answer with the whole corrected file in one fenced block whose first line is "
            f"`# file: {state.test_file}`.")
    for path in saved:
        _repair_tests(state, path)
    report = state.run_tests("tests written", "write_tests")
    report = consensus.choose(state, report)
    report = assumed.confirm(state, report)  # after the consensus: its attempts check the assumed examples
    if second_opinion.only_model_tests_fail(state, report):
        report = second_opinion.ask(state, report)
    state.best = None  # a new set of tests: rounds are compared with each other from here on
    attempts.remember_if_best(state, report)
    tests = "\n".join(state.workspace.read_text(p) for p in saved if state.workspace.safe_path(p).is_file())
    return True, f"```python\n{tests.rstrip()}\n```\n\nREAL PYTEST RESULT (round {len(state.rounds)}):\n" \
                 f"{state.feedback_on(report)}"


def _cut_back(state: RunState, raw: str) -> list[str]:
    """A test file cut off at the answer's length limit keeps its lines up to the last that parses, instead
    of going back to the tester (codeblocks.cut_back: a looping tester fills its limit again when asked)."""
    fixed = codeblocks.cut_back(raw)
    saved = [] if fixed is None else state.write_files("tester", fixed, keep=state.tests_only,
                                                        default_name=state.test_file)
    for path in saved:
        state.log.record(TestsRepaired(path=path, changes=(
            "the answer ran into its length limit: kept up to its last line that parses",)))
        state.progress(f"  [yellow]{path}: the answer was cut off at its length limit; its complete lines kept[/]")
    return saved


def _parseable(state: RunState, path: str) -> bool:
    """Removes the lines of a model's test file that do not parse; False when that is not enough."""
    source = state.workspace.read_text(path)
    salvaged = answers.parseable(source)
    if salvaged is None:
        return False
    fixed, removed = salvaged
    if removed:
        state.workspace.write_text(path, fixed)
        change = f"removed {len(removed)} line(s) that did not parse: {removed[0].strip()[:80]}"
        state.log.record(TestsRepaired(path=path, changes=(change,)))
        state.progress(f"  [yellow]{path}: {change}[/]")
    return True


def _repair_tests(state: RunState, path: str) -> None:
    """What is still wrong after the tester's second try is cut out, never trusted: lines that do not
    parse, pasted copies of the code under test, module-level calls, tests that contradict the user's
    examples."""
    if not _parseable(state, path):
        state.workspace.safe_path(path).unlink(missing_ok=True)
        state.log.record(TestsDropped(path=path, why="it does not parse"))
        state.progress(f"  [yellow]{path} does not parse; only the task's examples count[/]")
        return
    source = state.workspace.read_text(path)
    fixed, changes = source, []
    own = answers.defined_names(fixed) & state.under_test
    if own:
        fixed = contradictions.drop_functions(fixed, own)
        changes.append(f"removed its own copy of {', '.join(sorted(own))}")
    fixed, split = answers.split_asserts(fixed)  # before contradictions: one wrong value drops one assert
    if split:
        changes.append(f"split {split} test(s) into one test per assert")
    twins = contradictions.duplicate_tests(fixed)  # after the split: repeated asserts become equal tests
    if twins:
        fixed = contradictions.drop_functions(fixed, twins)
        changes.append(f"dropped {len(twins)} test(s) repeating another's body")
    bad = contradictions.contradictions(fixed, state.examples)
    if bad:
        fixed = contradictions.drop_functions(fixed, {c.test for c in bad})
        changes += [f"dropped {c.test}: asserts {c.call} == {c.asserted}, the task says {c.expected}" for c in bad]
    fixed, calls = answers.without_import_time_code(fixed)
    if calls:
        changes.append(f"removed {len(calls)} module-level call(s)")
    imp = answers.missing_import(fixed, module_name=state.module_name, under_test=state.under_test)
    if imp:
        fixed = f"{imp}\n{fixed}"
        changes.append(f"added `{imp}`")
    if fixed != source:
        if answers.test_file_problems(fixed, module_name=state.module_name, under_test=state.under_test) and \
                not answers.defined_names(fixed):
            state.workspace.safe_path(path).unlink(missing_ok=True)
            state.log.record(TestsDropped(path=path, why="no usable test left"))
            state.progress(f"  [yellow]{path} had no usable test left; only the task's examples count[/]")
            return
        state.workspace.write_text(path, fixed)
        state.log.record(TestsRepaired(path=path, changes=tuple(changes)))
        state.progress(f"  [yellow]{path}: {'; '.join(changes)}[/]")


def fix(state: RunState, output: Any) -> tuple[bool, Any]:
    """One fix round: new code, pytest, keep the best; stop when done, spent, or a round gained nothing."""
    state.log.record(Answer(task="fix_code", attempt=state.tally.fix_rounds_done + 1,
                            text=str(output.raw)[:ANSWER_LOG_CHARS]))
    state.write_module(output.raw)
    state.tally.fix_rounds_done += 1
    n = state.tally.fix_rounds_done
    report = state.run_tests(f"fix round {n}", "fix_code")
    improved = attempts.remember_if_best(state, report)
    if report.ok or n >= state.max_fix_rounds or not improved:
        if not report.ok and not improved and n < state.max_fix_rounds:
            state.tally.stopped_early = f"fix round {n} made no progress"
            state.log.record(FixStopped(round=n, why=state.tally.stopped_early))
            state.progress(f"  [yellow]{state.tally.stopped_early}: stopping the fix loop[/]")
        final = attempts.deliver_best(state, "fix_code") or report
        return True, f"{state.module_block()}\n\nREAL PYTEST RESULT (round {len(state.rounds)}):\n" \
                     f"{state.feedback_on(final)}"
    state.progress(f"  [yellow]tests still fail — developer revises (round {n + 1} of {state.max_fix_rounds})[/]")
    return False, ("The tests still fail:\n" + state.feedback_on(report) + "\nThe task's examples are always "
                   "right. Fix the module (never the tests) and answer with the complete file in one fenced "
                   f"code block whose first line is `# file: {state.module}`.")


def docs(state: RunState, output: Any) -> tuple[bool, Any]:
    # The last step the developer's server is sure to be up for: the verdict's own attempts, if it needs any.
    verdict.gather(state)
    saved = state.write_files("documentation", output.raw, keep=state.docs_only, default_name=None)
    if not saved:
        # A README is prose: an answer without a fenced block is still the document.
        state.workspace.write_text("README.md", output.raw.strip() + "\n")
        state.written["README.md"] = "documentation"
        state.log.record(FilesWritten(agent="documentation", paths=("README.md",), note="raw answer"))
        state.progress("  wrote README.md")
    return True, output.raw
