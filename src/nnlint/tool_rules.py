"""NNL0: diagnostics about the tool's own work on a file rather than about the code."""

from nnlint.diagnostics import Severity
from nnlint.rule import Rule


class SyntaxErrorRule(Rule):
    """The file does not compile as Python 3, so no other rule could check it.

    nnlint compiles every file with Python's own compiler, then parses it with libcst. A file that
    fails (a typo, Python 2 code such as `print "x"`, `return` outside a function, more than 200
    nested brackets, bytes that do not decode in the declared encoding) is reported here at the
    error's line instead of being skipped silently or called clean. Fix the syntax, port the file to Python 3, or
    declare its encoding with a PEP 263 `# -*- coding: latin-1 -*-` line.
    """

    code = "NNL001"
    name = "syntax-error"
    severity = Severity.ERROR
    layer = "tool"
    VALID = ("print('hello')\n",)
    INVALID = ("import torch\nprint 'hello'  # <-\n",)


class UnreadableFileRule(Rule):
    """The file cannot be read: it does not exist, is not readable, or is binary.

    Reported for dangling symlinks, files without read permission and binary files named `.py`.
    Fix the permissions or the link, or exclude the path in `[tool.nnlint] exclude`.
    """

    code = "NNL002"
    name = "unreadable-file"
    severity = Severity.ERROR
    layer = "tool"


class InternalErrorRule(Rule):
    """nnlint crashed on this file; the other files and rules are still reported.

    A rule raised, or the process checking the file died (a segfault in a native parser). This is a
    bug in nnlint, not in your code. The run exits with status 2 so that it is not mistaken for a
    clean one. Please report it with the file (or a reduced snippet) that triggers it;
    meanwhile `# noqa` or `--ignore` the named rule.
    """

    code = "NNL003"
    name = "internal-error"
    severity = Severity.ERROR
    layer = "tool"


class FileTooLargeRule(Rule):
    """The file is larger than `max-file-size` and was skipped.

    Parsing cost grows with the file: a generated 5 MB module took minutes and stalled a
    pre-commit run. Files above `max-file-size` (default 2 MB) get this note instead of being
    checked. Exclude generated files (`[tool.nnlint] exclude`), or raise the limit with
    `--max-file-size 10MB` or `max-file-size = "10MB"` (0 turns the limit off).
    """

    code = "NNL004"
    name = "file-too-large"
    severity = Severity.INFO
    layer = "tool"
