"""`nnlint check --fix / --diff / --unsafe-fixes / --show-fixes`, end to end through the CLI."""

from __future__ import annotations

import os

import pytest

BUGGY = "import torch\nimport torch.nn.functional as F\n\ndef f(x):\n    return torch.log(F.softmax(x, dim=1))\n"
FIXED = "import torch\nimport torch.nn.functional as F\n\ndef f(x):\n    return F.log_softmax(x, dim=1)\n"


def test_fix_writes_safe_fixes_and_reports_what_remains(cli, project):
    path = project("m.py", BUGGY + "p = F.softmax(x)\n")  # NNL302 stays (its fix, if any, is not safe)
    result = cli("check", "--static-only", "--fix", "--format", "concise", "m.py")
    assert path.read_text() == FIXED + "p = F.softmax(x)\n"
    assert "NNL402" not in result.stdout and "NNL302" in result.stdout
    assert result.exit_code == 1
    assert "fixed 1 problem in 1 file" in result.stderr
    again = cli("check", "--static-only", "--fix", "m.py")
    assert path.read_text() == FIXED + "p = F.softmax(x)\n" and "fixed" not in again.stderr


def test_fix_exit_code_counts_only_the_remaining_findings(cli, project):
    path = project("m.py", BUGGY)
    assert cli("check", "--static-only", "--fix", "m.py").exit_code == 0
    assert path.read_text() == FIXED


def test_diff_writes_nothing_and_exits_1_only_when_something_would_change(cli, project):
    path = project("m.py", BUGGY)
    result = cli("check", "--diff", "m.py")
    assert result.exit_code == 1
    assert path.read_text() == BUGGY
    assert "--- a/m.py\n+++ b/m.py\n" in result.stdout
    assert "-    return torch.log(F.softmax(x, dim=1))\n+    return F.log_softmax(x, dim=1)\n" in result.stdout
    path.write_text(FIXED)
    result = cli("check", "--diff", "m.py")
    assert result.exit_code == 0 and result.stdout == ""


def test_show_fixes_lists_each_applied_fix(cli, project):
    project("m.py", BUGGY)
    result = cli("check", "--static-only", "--diff", "--show-fixes", "m.py")
    assert "would fix 1 problem" in result.stderr
    assert "m.py:5:12: NNL402 replace with log_softmax (safe)" in result.stderr
    result = cli("check", "--static-only", "--fix", "--show-fixes", "m.py")
    assert "fixed 1 problem" in result.stderr and "m.py:5:12: NNL402" in result.stderr


def test_noqa_keeps_its_line_unfixed(cli, project):
    text = BUGGY.replace("dim=1))", "dim=1))  # noqa: NNL402")
    path = project("m.py", text)
    cli("check", "--static-only", "--fix", "m.py")
    assert path.read_text() == text


def test_fix_keeps_the_files_encoding_and_line_endings(cli, project):
    text = "# -*- coding: latin-1 -*-\n# café\n" + BUGGY
    path = project("m.py", text.replace("\n", "\r\n").encode("latin-1"))
    cli("check", "--static-only", "--fix", "m.py")
    expected = "# -*- coding: latin-1 -*-\n# café\n" + FIXED
    assert path.read_bytes() == expected.replace("\n", "\r\n").encode("latin-1")


def test_fix_on_stdin_prints_the_fixed_source(project):
    from click.testing import CliRunner

    from nnlint.cli import main

    result = CliRunner().invoke(main, ["check", "--fix", "-"], input=BUGGY)
    assert result.stdout == FIXED and result.exit_code == 0
    result = CliRunner().invoke(main, ["check", "--diff", "-", "--stdin-filename", "m.py"], input=BUGGY)
    assert result.exit_code == 1 and "+++ b/m.py" in result.stdout


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes files whatever their mode")
def test_unwritable_file_is_a_broken_run(cli, project):
    path = project("m.py", BUGGY)
    path.chmod(0o444)
    result = cli("check", "--static-only", "--fix", "m.py")
    assert result.exit_code == 2 and "cannot write fixes to m.py" in result.stderr


def test_unsafe_fixes_needs_fix_or_diff(cli, project):
    project("m.py", BUGGY)
    result = cli("check", "--unsafe-fixes", "m.py")
    assert result.exit_code == 2 and "--unsafe-fixes" in result.stderr
