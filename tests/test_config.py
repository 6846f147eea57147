"""[tool.nnlint] in pyproject.toml: discovery, validation, precedence, per-file ignores, exclude."""

from __future__ import annotations

import json

BUG = "import torch.nn.functional as F\np = F.softmax(x)\n"


def codes(cli, *args):
    result = cli("check", "--static-only", "--format", "json", *args)
    return result.exit_code, [(i["path"], i["code"]) for i in json.loads(result.stdout or "[]")]


def test_nearest_pyproject_applies_per_folder(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nignore = ['NNL302']\n")
    project("a/bug.py", BUG)
    project("b/pyproject.toml", "[project]\nname = 'b'\n")  # no [tool.nnlint]: keep looking up
    project("b/bug.py", BUG)
    project("c/pyproject.toml", "[tool.nnlint]\nselect = ['NNL3']\n")
    project("c/bug.py", BUG)
    assert codes(cli, ".") == (1, [("c/bug.py", "NNL302")])


def test_cli_options_override_the_file(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nignore = ['NNL302']\nfail-on = 'error'\n")
    project("bug.py", BUG)
    assert codes(cli, "bug.py") == (0, [])
    assert codes(cli, "--ignore", "NNL001", "bug.py") == (0, [("bug.py", "NNL302")])  # fail-on from the file
    assert codes(cli, "--ignore", "NNL001", "--fail-on", "warning", "bug.py")[0] == 1


def test_per_file_ignores_and_exclude(cli, project):
    project("pyproject.toml", """
[tool.nnlint]
exclude = ["generated/", "legacy_*.py"]
[tool.nnlint.per-file-ignores]
"tests/**" = ["NNL3"]
""")
    project("tests/test_x.py", BUG)
    project("generated/model.py", BUG)
    project("legacy_train.py", BUG)
    project("train.py", BUG)
    assert codes(cli, ".") == (1, [("train.py", "NNL302")])
    assert codes(cli, "legacy_train.py") == (0, [])  # excluded even when passed explicitly (pre-commit)


def test_explicit_config_file(cli, project):
    project("custom.toml", "ignore = ['NNL302']\n")
    project("bug.py", BUG)
    assert codes(cli, "--config", "custom.toml", "bug.py") == (0, [])


def test_bad_config_exits_2_naming_the_key(cli, project):
    project("bug.py", BUG)
    cases = {
        "[tool.nnlint]\nselct = ['NNL3']\n": "selct",
        "[tool.nnlint]\nignore = ['NNL777']\n": "NNL777",
        "[tool.nnlint]\nfail-on = 'fatal'\n": "fail-on",
        "[tool.nnlint.trace]\ntimeuot = 3\n": "timeuot",
        "[tool.nnlint.models.Net]\nargz = [1]\n": "argz",
        "[tool.nnlint\n": "invalid TOML",
    }
    for text, named in cases.items():
        project("pyproject.toml", text)
        result = cli("check", "--static-only", "bug.py")
        assert result.exit_code == 2, text
        assert named in result.stderr and result.stderr.count("\n") == 1, result.stderr


def test_noqa_forms(cli, project):
    project("bug.py", """import torch.nn.functional as F
a = F.softmax(x)  # noqa
b = F.softmax(x)  # noqa: NNL302
c = F.softmax(x)  # NOQA:NNL101,NNL302
d = F.softmax(x)  # noqa: NNL101
""")
    # NNL004 would point out the two unused NNL101 codes; here only suppression itself is tested.
    assert codes(cli, "--ignore", "NNL004", "bug.py") == (1, [("bug.py", "NNL302")])
    result = cli("check", "--static-only", "--format", "json", "--ignore", "NNL004", "bug.py")
    assert [i["line"] for i in json.loads(result.stdout)] == [5]


def test_unknown_keys_name_the_closest_known_one(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nselct = ['NNL3']\n")
    project("bug.py", BUG)
    result = cli("check", "--static-only", "bug.py")
    assert result.exit_code == 2 and "unknown key 'selct'" in result.stderr and "did you mean 'select'" in result.stderr
    project("pyproject.toml", "[tool.nnlint.trace]\ntimout = 3\n")
    result = cli("check", "--static-only", "bug.py")
    assert result.exit_code == 2 and "did you mean 'timeout'" in result.stderr


def test_explicit_config_without_nnlint_table_is_an_error(cli, project):
    project("other.toml", "[project]\nname = 'x'\n")
    project("bug.py", BUG)
    result = cli("check", "--static-only", "--config", "other.toml", "bug.py")
    assert result.exit_code == 2 and "no [tool.nnlint] table" in result.stderr
