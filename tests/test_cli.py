"""The CLI end to end: exit codes, selection, formats, output file, statistics, rule pages."""

from __future__ import annotations

import json
import re

from conftest import run_nnlint

SOFTMAX_BUG = "import torch.nn.functional as F\n\nprobs = F.softmax(logits)\n"
CLEAN = "import torch.nn.functional as F\n\nprobs = F.softmax(logits, dim=-1)\n"


def test_finding_exits_1_and_clean_exits_0(cli, project):
    project("bug.py", SOFTMAX_BUG)
    project("ok.py", CLEAN)
    result = cli("check", "--static-only", "bug.py")
    assert result.exit_code == 1
    assert "NNL302" in result.stdout and "bug.py" in result.stdout
    assert "^^^^" in result.stdout  # caret under the span
    result = cli("check", "--static-only", "ok.py")
    assert result.exit_code == 0
    assert "No problems found" in result.stdout


def test_fail_on_and_exit_zero(cli, project):
    project("bug.py", SOFTMAX_BUG)  # a warning
    assert cli("check", "--static-only", "--fail-on", "error", "bug.py").exit_code == 0
    assert cli("check", "--static-only", "--fail-on", "info", "bug.py").exit_code == 1
    assert cli("check", "--static-only", "--exit-zero", "bug.py").exit_code == 0


def test_select_and_ignore_by_code_and_prefix(cli, project):
    project("bug.py", SOFTMAX_BUG)
    assert cli("check", "--static-only", "--ignore", "NNL3", "bug.py").exit_code == 0
    assert cli("check", "--static-only", "--ignore", "NNL302", "bug.py").exit_code == 0
    assert cli("check", "--static-only", "--select", "NNL1", "bug.py").exit_code == 0
    assert cli("check", "--static-only", "--select", "NNL302", "bug.py").exit_code == 1


def test_usage_errors_exit_2_with_one_line(cli, project):
    project("bug.py", SOFTMAX_BUG)
    for args in (("--select", "NNL999"), ("--ignore", "XYZ1"), ("missing.py",), ("--config", "nope.toml", "bug.py")):
        result = cli("check", "--static-only", *args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("nnlint: error:") and result.stderr.count("\n") == 1, result.stderr


def test_folder_default_is_current_directory(cli, project):
    project("pkg/bug.py", SOFTMAX_BUG)
    result = cli("check", "--static-only", "--format", "concise")
    assert result.stdout == (
        "pkg/bug.py:3:9: NNL302 [warning] `softmax` called without `dim`: pass it explicitly (usually dim=-1)\n"
    )


def test_concise_lines_match_problem_matcher_pattern(cli, project):
    project("a.py", SOFTMAX_BUG)
    project("b.py", SOFTMAX_BUG + "import torch\nx = torch.log_softmax(y)\n")
    out = cli("check", "--static-only", "--format", "concise", ".").stdout
    pattern = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<code>NNL\d{3}) \[(error|warning|info)\] .+$")
    lines = out.splitlines()
    assert len(lines) == 3 and all(pattern.match(line) for line in lines)
    assert [line.split(":")[0] for line in lines] == ["a.py", "b.py", "b.py"]


def test_json_schema_sorting_and_determinism(cli, project):
    project("z.py", SOFTMAX_BUG)
    project("a.py", "import torch\nx = torch.softmax(y)\nz = torch.softmax(w)\n")
    first = cli("check", "--static-only", "--format", "json", ".").stdout
    second = cli("check", "--static-only", "--format", "json", ".").stdout
    assert first == second
    items = json.loads(first)
    assert [list(item) for item in items] == [
        ["code", "name", "message", "path", "line", "column", "end_line", "end_column", "severity", "source", "fix"]
    ] * 3
    assert [(i["path"], i["line"]) for i in items] == [("a.py", 2), ("a.py", 3), ("z.py", 3)]
    assert items[2] == {
        "code": "NNL302", "name": "softmax-implicit-dim",
        "message": "`softmax` called without `dim`: pass it explicitly (usually dim=-1)",
        "path": "z.py", "line": 3, "column": 9, "end_line": 3, "end_column": 26,
        "severity": "warning", "source": "static",
        "fix": {"message": "pass dim=-1", "applicability": "unsafe", "edits": [
            {"line": 3, "column": 19, "end_line": 3, "end_column": 25, "content": "logits, dim=-1"}]},
    }


def test_output_file_and_statistics(cli, project):
    project("bug.py", SOFTMAX_BUG + "q = F.softmax(w)  # noqa: NNL302\n")
    result = cli("check", "--static-only", "--format", "json", "--output-file", "out.json", "--statistics", "bug.py")
    assert result.exit_code == 1
    assert len(json.loads((project.root / "out.json").read_text())) == 1
    assert re.search(r"NNL302\s+1\s+1\s+softmax-implicit-dim", result.stdout)


def test_quiet_prints_only_findings(cli, project):
    project("ok.py", CLEAN)
    assert cli("check", "--static-only", "--quiet", "ok.py").stdout == ""
    project("bug.py", SOFTMAX_BUG)
    out = cli("check", "--static-only", "--quiet", "bug.py").stdout
    assert "NNL302" in out and "Found" not in out


def test_rule_page_and_rules_table(cli):
    page = cli("rule", "nnl302")
    assert page.exit_code == 0
    assert page.stdout.startswith("# NNL302: softmax-implicit-dim\n")
    assert "## Flagged" in page.stdout
    assert cli("rule", "NNL999").exit_code == 2
    table = cli("rules").stdout
    for code in ("NNL001", "NNL101", "NNL201", "NNL302", "NNL704", "NNL790"):
        assert code in table


def test_python_dash_m_and_version(project):
    project("bug.py", SOFTMAX_BUG)
    done = run_nnlint("check", "--static-only", "--format", "concise", "bug.py", cwd=project.root)
    assert done.returncode == 1 and "NNL302" in done.stdout
    version = run_nnlint("--version")
    assert version.returncode == 0 and re.search(r"\d+\.\d+\.\d+", version.stdout)


def test_stdin_is_checked_and_named_by_stdin_filename(project):
    from click.testing import CliRunner

    from nnlint.cli import main

    project("pyproject.toml", '[tool.nnlint]\nper-file-ignores = { "quiet/*" = ["NNL302"] }\n')
    runner = CliRunner()
    result = runner.invoke(main, ["check", "-", "--format", "concise"], input=SOFTMAX_BUG)
    assert result.exit_code == 1 and result.stdout.startswith("-:3:9: NNL302")
    result = runner.invoke(main, ["check", "-", "--stdin-filename", "loud/train.py", "--format", "json"],
                           input=SOFTMAX_BUG)
    assert result.exit_code == 1 and json.loads(result.stdout)[0]["path"] == "loud/train.py"
    # The config of the path it stands for applies.
    result = runner.invoke(main, ["check", "-", "--stdin-filename", "quiet/train.py"], input=SOFTMAX_BUG)
    assert result.exit_code == 0
    assert runner.invoke(main, ["check", "-"], input=CLEAN).exit_code == 0
    result = runner.invoke(main, ["check", "-"], input=b"x = 1\x00\n")
    assert result.exit_code == 1 and "NNL002" in result.stdout
    assert not (project.root / ".nnlint_cache").exists()


def test_stdin_usage_errors_exit_2(cli, project):
    project("a.py", CLEAN)
    result = cli("check", "-", "a.py")
    assert result.exit_code == 2 and "cannot be combined" in result.stderr
    result = cli("check", "--stdin-filename", "x.py", "a.py")
    assert result.exit_code == 2 and "--stdin-filename" in result.stderr


def test_unwritable_report_path_is_a_one_line_usage_error(project):
    project("bug.py", SOFTMAX_BUG)
    for target, reason in (("missing/dir/out.txt", "does not exist"), (".", "directory")):
        result = run_nnlint("check", "--static-only", "-o", target, "bug.py", cwd=project.root)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr and reason in result.stderr


def test_empty_select_is_an_error_not_everything(cli, project):
    project("bug.py", SOFTMAX_BUG)
    result = cli("check", "--static-only", "--select", "", "bug.py")
    assert result.exit_code == 2 and "--select needs at least one code" in result.stderr


def test_noqa_codes_that_do_nothing_are_reported(cli, project):
    project("bug.py", "import torch.nn.functional as F\n\n"
                      "a = F.softmax(x)  # noqa: NNL302\n"        # used: silent
                      "b = F.softmax(x, dim=1)  # noqa: NNL302\n"  # unused
                      "c = 1  # noqa: NNL3O2, E501\n"              # typo; E501 belongs to another linter
                      "d = F.softmax(x)  # noqa: NNL704\n")        # traced code: a static run cannot judge it
    result = cli("check", "--static-only", "--format", "json", "bug.py")
    found = [(d["line"], d["code"], d["message"]) for d in json.loads(result.stdout)]
    assert [(line, code) for line, code, _ in found] == [(4, "NNL004"), (5, "NNL004"), (6, "NNL302")]
    assert "silences nothing" in found[0][2] and "NNL3O2" in found[1][2] and "NNL302?" in found[1][2]
    ignored = cli("check", "--static-only", "--format", "json", "--ignore", "NNL302", "bug.py")
    assert [(d["line"], d["code"]) for d in json.loads(ignored.stdout)] == [(5, "NNL004")]
