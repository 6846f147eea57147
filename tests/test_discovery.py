"""Which files a folder walk checks."""

from __future__ import annotations

from nnlint.discovery import walk_folder


def found(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in map(type(root), walk_folder(str(root), lambda p: False)))


def test_skips_hidden_venv_cache_build_dist_and_gitignored(project):
    for name in ("train.py", "pkg/model.py", ".hidden/x.py", "__pycache__/x.py", "build/x.py", "dist/x.py",
                 "myenv/lib/x.py", "data/notes.txt", "logs/run.py", "pkg/scratch_tmp.py", "pkg/keep.py"):
        project(name, "x = 1\n")
    project("myenv/pyvenv.cfg", "home = /usr\n")
    project(".gitignore", "logs/\n*_tmp.py\n")
    project("pkg/.gitignore", "keep.py\n!keep.py\n")
    assert found(project.root) == ["pkg/keep.py", "pkg/model.py", "train.py"]


def test_gitignore_above_the_walked_folder_applies(project):
    (project.root / ".git").mkdir()
    project(".gitignore", "experiments/old/\n")
    project("experiments/old/a.py", "x = 1\n")
    project("experiments/new/b.py", "x = 1\n")
    assert found(project.root / "experiments") == ["new/b.py"]


def test_an_explicitly_named_ignored_folder_is_still_walked(project):
    (project.root / ".git").mkdir()
    project(".gitignore", "vendor/\n*.log.py\n")
    project("vendor/lib/a.py", "x = 1\n")
    project("vendor/lib/debug.log.py", "x = 1\n")
    assert found(project.root / "vendor") == ["lib/a.py"]
