"""Bad input gets a diagnostic, never a traceback, and never stops the other files."""

from __future__ import annotations

import json
import os

import libcst as cst
import pytest

from nnlint.diagnostics import Severity
from nnlint.rule import _REGISTRY, StaticRule

GOOD_BUG = "import torch.nn.functional as F\np = F.softmax(x)\n"


def findings(cli, *paths, extra=()):
    result = cli("check", "--static-only", "--format", "json", *extra, *paths)
    assert "Traceback" not in result.output
    return result, json.loads(result.stdout)


def test_syntax_error_is_reported_and_other_files_still_checked(cli, project):
    project("broken.py", "import torch\n\ndef f(:\n    pass\n")
    project("good.py", GOOD_BUG)
    result, items = findings(cli, ".")
    assert result.exit_code == 1
    assert [(i["path"], i["code"], i["line"]) for i in items] == [("broken.py", "NNL001", 3), ("good.py", "NNL302", 2)]
    assert items[0]["severity"] == "error" and items[0]["column"] == 7


def test_python2_file(cli, project):
    project("old.py", 'import os\nprint "hello"\nexcept_ = 1\n')
    _, items = findings(cli, "old.py")
    assert [(i["code"], i["line"]) for i in items] == [("NNL001", 2)]
    assert "print" in items[0]["message"]


def test_undecodable_bytes_and_declared_encoding(cli, project):
    project("bad_utf8.py", b"x = 1\ny = '\xff\xfe'\n")
    project("latin.py", b"# -*- coding: latin-1 -*-\nname = 'caf\xe9'\n")
    project("bad_cookie.py", b"# -*- coding: klingon -*-\nx = 1\n")
    _, items = findings(cli, ".")
    assert [(i["path"], i["code"], i["line"]) for i in items] == [
        ("bad_cookie.py", "NNL001", 1), ("bad_utf8.py", "NNL001", 2)]
    assert "0xff" in items[1]["message"]


def test_unreadable_files(cli, project):
    project("binary.py", b"\x7fELF\x00\x00\x01")
    os.symlink(project.root / "gone.py", project.root / "dangling.py")
    project("good.py", GOOD_BUG)
    _, items = findings(cli, ".")
    assert [(i["path"], i["code"]) for i in items] == [
        ("binary.py", "NNL002"), ("dangling.py", "NNL002"), ("good.py", "NNL302")]
    assert "binary" in items[0]["message"] and "exist" in items[1]["message"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_denied(cli, project):
    path = project("secret.py", GOOD_BUG)
    path.chmod(0)
    _, items = findings(cli, "secret.py")
    assert [(i["code"], "permission" in i["message"]) for i in items] == [("NNL002", True)]


def test_empty_comment_only_huge_and_deep_files(cli, project):
    project("empty.py", "")
    project("comments.py", "# just a comment\n# another\n")
    project("crlf.py", "import torch.nn.functional as F\r\np = F.softmax(x)\r\n")
    project("huge.py", "TABLE = [\n" + "".join(f"    '{i:064x}',\n" for i in range(150_000)) + "]\n")
    project("deep.py", "x = " + "(" * 180 + "1" + ")" * 180 + "\n" + "y = " + "[" * 90 + "]" * 90 + "\n")
    assert os.path.getsize(project.root / "huge.py") > 10_000_000
    result, items = findings(cli, ".", extra=("--max-file-size", "0"))
    assert [(i["path"], i["code"], i["line"]) for i in items] == [("crlf.py", "NNL302", 2)]
    assert result.exit_code == 1


@pytest.fixture
def crashing_rule():
    """A rule that crashes on purpose, registered only for one test."""

    class CrashingRule(StaticRule):
        """Crashes on purpose.

        Test-only.
        """

        code = "NNL099"
        name = "crashing-rule"
        severity = Severity.WARNING

        def visit_Call(self, node: cst.Call) -> None:
            raise RuntimeError("boom")

    yield CrashingRule
    _REGISTRY.pop("NNL099", None)


def test_rule_crash_is_internal_error_exit_2_and_other_findings_kept(cli, project, crashing_rule):
    project("good.py", GOOD_BUG)
    result, items = findings(cli, "good.py")
    assert result.exit_code == 2
    codes = sorted(i["code"] for i in items)
    assert codes == ["NNL003", "NNL302"]
    crash = next(i for i in items if i["code"] == "NNL003")
    assert "NNL099" in crash["message"] and "boom" in crash["message"] and crash["path"] == "good.py"
