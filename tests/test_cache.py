"""The static results cache: hits are served as stored; content, config and flags invalidate exactly their files."""

from __future__ import annotations

import json
from pathlib import Path

from nnlint.cache import CACHE_DIR_NAME

BUG = "import torch.nn.functional as F\n\nprobs = F.softmax(logits)\n"


def _cache_file(folder: Path) -> Path:
    (found,) = folder.glob("static-*.json")
    return found


def _tamper(folder: Path) -> None:
    """Rewrite every cached message: a later run that prints it was served from the cache."""
    path = _cache_file(folder)
    entries = json.loads(path.read_text())
    for entry in entries.values():
        for row in entry[1]:
            row[2] = "FROM-CACHE"
    path.write_text(json.dumps(entries))


def test_second_run_is_served_from_the_cache_and_edits_invalidate_only_that_file(cli, project):
    project("a.py", BUG)
    project("b.py", BUG)
    first = cli("check", "--static-only", "--format", "concise", ".")
    assert first.exit_code == 1 and first.stdout.count("NNL302") == 2
    cache = project.root / CACHE_DIR_NAME
    assert (cache / ".gitignore").read_text().splitlines()[-1] == "*"
    _tamper(cache)
    second = cli("check", "--static-only", "--format", "concise", ".")
    assert second.stdout.count("FROM-CACHE") == 2

    project("a.py", BUG + "x = 1\n")  # content changed: only a.py is checked again
    third = cli("check", "--static-only", "--format", "concise", ".")
    lines = sorted(third.stdout.splitlines())
    assert "FROM-CACHE" not in lines[0] and lines[0].startswith("a.py:3:9: NNL302")
    assert lines[1].startswith("b.py:3:9") and "FROM-CACHE" in lines[1]


def test_config_change_invalidates_only_the_files_it_affects(cli, project):
    project("a.py", BUG)
    project("b.py", BUG)
    project("pyproject.toml", "[tool.nnlint]\nignore = []\n")
    cli("check", "--static-only", ".")
    _tamper(project.root / CACHE_DIR_NAME)
    project("pyproject.toml", '[tool.nnlint]\nper-file-ignores = { "a.py" = ["NNL401"] }\n')
    result = cli("check", "--static-only", "--format", "concise", ".")
    lines = sorted(result.stdout.splitlines())
    assert "FROM-CACHE" not in lines[0] and "FROM-CACHE" in lines[1]
    # Selecting on the command line changes what is enabled for every file.
    result = cli("check", "--static-only", "--format", "concise", "--select", "NNL3", ".")
    assert result.stdout.count("NNL302") == 2 and "FROM-CACHE" not in result.stdout
    result = cli("check", "--static-only", "--format", "concise", "--ignore", "NNL302", ".")
    assert result.exit_code == 0 and result.stdout == ""


def test_noqa_edit_is_a_content_change(cli, project):
    project("a.py", BUG)
    assert cli("check", "--static-only", "a.py").exit_code == 1
    project("a.py", BUG.replace("(logits)", "(logits)  # noqa: NNL302"))
    assert cli("check", "--static-only", "a.py").exit_code == 0


def test_no_cache_writes_nothing_and_cache_dir_moves_it(cli, project, tmp_path_factory):
    project("a.py", BUG)
    cli("check", "--static-only", "--no-cache", "a.py")
    assert not (project.root / CACHE_DIR_NAME).exists()
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "c"
    cli("check", "--static-only", "--cache-dir", str(elsewhere), "a.py")
    assert not (project.root / CACHE_DIR_NAME).exists()
    assert _cache_file(elsewhere).exists() and (elsewhere / ".gitignore").exists()


def test_cache_sits_at_the_project_root_of_the_config(cli, project):
    project("pyproject.toml", "[tool.nnlint]\nignore = []\n")
    project("pkg/sub/a.py", BUG)
    project.root.joinpath("pkg", "sub").mkdir(exist_ok=True)
    import os

    os.chdir(project.root / "pkg" / "sub")
    cli("check", "--static-only", "a.py")
    assert (project.root / CACHE_DIR_NAME).is_dir()
    assert not (project.root / "pkg" / "sub" / CACHE_DIR_NAME).exists()


def test_unwritable_cache_is_a_note_not_a_failure(cli, project):
    project("a.py", BUG)
    project(CACHE_DIR_NAME, "a file where the folder should be")
    result = cli("check", "--static-only", "a.py")
    assert result.exit_code == 1 and "NNL302" in result.stdout
    assert "cache not written" in result.stderr


def test_damaged_cache_is_ignored(cli, project):
    project("a.py", BUG)
    cli("check", "--static-only", "a.py")
    _cache_file(project.root / CACHE_DIR_NAME).write_text("{not json")
    result = cli("check", "--static-only", "a.py")
    assert result.exit_code == 1 and "NNL302" in result.stdout


def test_fixes_survive_the_cache(cli, project):
    project("m.py", "import torch\nimport torch.nn.functional as F\nlogp = torch.log(F.softmax(x, dim=1))\n")
    first = cli("check", "--static-only", "--format", "json", "m.py").stdout
    assert '"fix": {' in first
    assert cli("check", "--static-only", "--format", "json", "m.py").stdout == first
