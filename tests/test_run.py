"""`nnlint run` end to end: real scripts, run by the real command in a real child process.

Every run of the module is started once, in parallel, by one session fixture (each child pays for its own
`import torch`): the fixtures in fixtures/run/ (buggy twins must give exactly their NNL8xx markers, clean
twins none) and every run rule's VALID/INVALID examples.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("torch")

from conftest import FIXTURES, ROOT, expected_findings, run_nnlint  # noqa: E402
from nnlint.registry import registry  # noqa: E402
from nnlint.rule import EXPECT_MARKER  # noqa: E402

RUN_CODES = frozenset(code for code, rule in registry().items() if rule.layer == "run")
RUN_FIXTURES = FIXTURES / "run"
_ARGS = re.compile(r"#\s*run-args:(.*)")


def _fixture_args(path: Path) -> list[str]:
    match = _ARGS.search(path.read_text(encoding="utf-8"))
    return match.group(1).split() if match else []


def _nnlint_run(args: list[str]) -> tuple[int, list[dict], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "nnlint", "run", "--format", "json", "-q", *args],
                          capture_output=True, text=True, timeout=600, env=env, stdin=subprocess.DEVNULL)
    try:
        found = json.loads(done.stdout)
    except ValueError:
        found = [{"code": "unparsable", "line": 0, "message": done.stdout[-500:]}]
    return done.returncode, found, done.stderr


def _examples(tmp: Path) -> dict[str, tuple[str, set[int], list[str]]]:
    """name -> (code, marked lines, command arguments)"""
    cases = {}
    for code, rule in registry().items():
        if rule.layer != "run":
            continue
        for kind, examples in (("invalid", rule.INVALID), ("valid", rule.VALID)):
            for index, example in enumerate(examples):
                if "cuda()" in example and _cuda():
                    continue  # the example's point is a machine without CUDA
                path = tmp / f"{code}_{kind}_{index}.py"
                path.write_text(example, encoding="utf-8")
                marked = {n for n, line in enumerate(example.split("\n"), 1) if EXPECT_MARKER in line}
                cases[path.name] = (code, marked if kind == "invalid" else set(),
                                    [*rule.RUN_ARGS, "--select", code, str(path)])
    return cases


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Every run this module checks, started together: name -> (exit code, diagnostics, stderr)."""
    tmp = tmp_path_factory.mktemp("run_examples")
    jobs = {f"{kind}/{p.name}": [*_fixture_args(p), str(p)]
            for kind in ("buggy", "clean") for p in sorted((RUN_FIXTURES / kind).glob("*.py"))}
    examples = _examples(tmp)
    jobs.update({name: args for name, (_, _, args) in examples.items()})
    with ThreadPoolExecutor(max_workers=max(2, min(4, os.cpu_count() or 2))) as pool:
        results = dict(zip(jobs, pool.map(_nnlint_run, jobs.values())))
    return results, examples


@pytest.mark.parametrize("kind", ["buggy", "clean"])
def test_run_fixtures_give_exactly_their_markers(runs, kind):
    results, _ = runs
    problems = {}
    for path in sorted((RUN_FIXTURES / kind).glob("*.py")):
        code, found, stderr = results[f"{kind}/{path.name}"]
        want = set(expected_findings(path, RUN_CODES)) if kind == "buggy" else set()
        got = {(d["line"], d["code"]) for d in found}
        failing = any(d["severity"] != "info" for d in found)
        if got != want or code != (1 if failing else 0):
            problems[path.name] = {"missing": want - got, "unexpected": found if got - want else [],
                                   "exit": code, "stderr": stderr[-300:]}
    assert not problems, problems


def test_every_run_rule_fires_on_a_fixture():
    marked = {code for p in (RUN_FIXTURES / "buggy").glob("*.py") for _, code in expected_findings(p, RUN_CODES)}
    assert marked == RUN_CODES, sorted(RUN_CODES - marked)
    assert {p.name for p in (RUN_FIXTURES / "buggy").glob("*.py")} == \
        {p.name for p in (RUN_FIXTURES / "clean").glob("*.py")}


def test_run_rule_examples(runs):
    results, examples = runs
    problems = {}
    for name, (code, lines, _) in examples.items():
        exit_code, found, stderr = results[name]
        got = {d["line"] for d in found if d["code"] == code}
        if got != lines or any(d["code"] != code for d in found):
            problems[name] = {"expected": lines, "got": found, "stderr": stderr[-300:]}
    assert not problems, problems


def test_run_diagnostics_follow_the_json_schema_of_check(runs):
    results, _ = runs
    _, found, _ = results["buggy/house_prices.py"]
    assert found and all(d["source"] == "run" for d in found)
    keys = {"code", "name", "message", "path", "line", "column", "end_line", "end_column", "severity", "source", "fix"}
    assert all(set(d) == keys for d in found)
    assert all(len(d["message"]) <= 200 and "\n" not in d["message"]
               for _, diagnostics, _ in results.values() for d in diagnostics), "messages are one line, <= 200 chars"


def test_fixtures_static_and_trace_findings_are_marked():
    """`nnlint check fixtures/` (the README demo) also walks fixtures/run: its findings there must be marked."""
    other = frozenset(code for code, rule in registry().items() if rule.layer in ("static", "trace", "tool"))
    result = run_nnlint("check", "--no-cache", "--format", "json", RUN_FIXTURES, cwd=ROOT)
    found = {(d["path"], d["line"], d["code"]) for d in json.loads(result.stdout)}
    want = {(f"fixtures/run/{kind}/{p.name}", line, code) for kind in ("buggy", "clean")
            for p in (RUN_FIXTURES / kind).glob("*.py") for line, code in expected_findings(p, other)}
    assert found == want


# -- the command itself ----------------------------------------------------------------------------


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body), encoding="utf-8")
    return path


TRAIN = """\
import sys
import torch
from torch import nn

print("script says hello", sys.argv[1:])
x = torch.randn(256, 4)
y = x.sum(dim=1, keepdim=True)
model = nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(1000):
    loss = nn.functional.mse_loss(model(x[:32]), y[:32])  # noqa: NNL801
    opt.zero_grad()
    loss.backward()
    opt.step()
"""


def test_arguments_output_steps_and_text_table(tmp_path):
    script = _script(tmp_path, "train.py", TRAIN)
    result = run_nnlint("run", "--steps", "7", script, "--", "--epochs", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "script says hello ['--epochs', '3']" in result.stdout
    assert "No problems found" in result.stdout and "first 7 steps" in result.stdout and "loss" in result.stdout
    assert "watched 7 optimizer steps" in result.stderr

    quiet = run_nnlint("run", "-q", "--steps", "3", script, cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "" and "hello" not in quiet.stderr


def test_module_mode_and_noqa(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(TRAIN.replace("  # noqa: NNL801", ""))
    result = run_nnlint("run", "--format", "json", "--steps", "3", "-m", "pkg.train", cwd=tmp_path)
    found = json.loads(result.stdout)
    assert [(d["code"], d["path"], d["line"]) for d in found] == [("NNL801", "pkg/train.py", 11)]
    assert result.returncode == 1
    assert "script says hello" in result.stderr  # the script's stdout does not spoil the JSON
    assert run_nnlint("run", "--steps", "3", "--exit-zero", "-m", "pkg.train", cwd=tmp_path).returncode == 0


def test_crash_time_limit_and_usage_errors(tmp_path):
    crash = _script(tmp_path, "crash.py", """\
        import torch

        def load():
            return torch.zeros(3).view(2, 2)

        load()
        """)
    result = run_nnlint("run", "--format", "json", crash, cwd=tmp_path)
    (d,) = json.loads(result.stdout)
    assert (d["code"], d["line"], result.returncode) == ("NNL890", 4, 1)
    assert "RuntimeError" in d["message"] and "Traceback" not in result.stderr

    stuck = _script(tmp_path, "stuck.py", """\
        import torch
        while True:
            torch.randn(8).sum()
        """)
    result = run_nnlint("run", "--format", "json", "--time", "2", stuck, cwd=tmp_path)
    (d,) = json.loads(result.stdout)
    assert d["code"] == "NNL890" and d["line"] == 3 and "no optimizer step within 2 s" in d["message"]

    missing = run_nnlint("run", tmp_path / "nope.py", cwd=tmp_path)
    assert missing.returncode == 2 and "script not found" in missing.stderr


def test_nothing_of_the_run_is_left_running(tmp_path):
    marker = tmp_path / "child.pid"
    script = _script(tmp_path, "spawns.py", f"""\
        import subprocess, torch
        from torch import nn
        child = subprocess.Popen(["sleep", "300"])
        open({str(marker)!r}, "w").write(str(child.pid))
        model = nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(100):
            loss = model(torch.randn(8, 2)).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        """)
    result = run_nnlint("run", "--steps", "3", script, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    pid = int(marker.read_text())
    for _ in range(50):  # killed with the child's process group; init reaps it
        if not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]:
            break
        import time

        time.sleep(0.1)
    else:
        raise AssertionError(f"the script's subprocess {pid} outlived the run")


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    script = _script(tmp_path, "train.py", TRAIN)
    result = run_nnlint("run", "-q", "--steps", "5", "--plot", tmp_path / "run.png", script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sparkline_and_table_layout():
    from nnlint.run.table import render_table, sparkline

    assert sparkline([3.0, 2.0, 1.0, 0.0]) == "█▆▄▁"
    assert len(sparkline(list(map(float, range(100))), width=24)) == 24
    table = render_table({"loss": [2.3, 1.1], "grad_norm": {"fc": [1.0, 0.5]}, "step_time": [0.1],
                          "data_wait": [0.05]}, color=False)
    assert "loss" in table and "grad ‖fc‖" in table and "50%" in table
