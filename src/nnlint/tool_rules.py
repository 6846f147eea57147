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


class UnusedNoqaRule(Rule):
    """A `# noqa` comment names an nnlint code that is no rule, or that silences nothing on its line.

    A misspelt code (`# noqa: NNL3O2`) silences nothing while looking as if it did, and a code left
    behind after the bug was fixed would hide the next real finding on that line. Fix the code or
    remove it from the comment. Codes of other linters (`E501`) and a bare `# noqa` are left alone;
    a traced code (NNL7xx) is only judged when it names no rule, since a static run cannot know
    whether tracing would report it.
    """

    code = "NNL004"
    name = "unused-noqa"
    severity = Severity.WARNING
    layer = "tool"
    VALID = (
        "import torch\nprobs = torch.softmax(torch.randn(3, 4))  # noqa: NNL302\n",
        "x = 1  # noqa: E501\n",
        "x = 1  # noqa\n",
    )
    INVALID = (
        "x = 1  # noqa: NNL999  # <-\n",
        "import torch\nprobs = torch.softmax(torch.randn(3, 4))  # noqa: NNL3O2  # <-\n",
    )


class FileTooLargeRule(Rule):
    """The file is larger than `max-file-size` and was skipped.

    Parsing cost grows with the file: a generated 5 MB module took minutes and stalled a
    pre-commit run. Files above `max-file-size` (default 2 MB) get this note instead of being
    checked. Exclude generated files (`[tool.nnlint] exclude`), or raise the limit with
    `--max-file-size 10MB` or `max-file-size = "10MB"` (0 turns the limit off).
    """

    code = "NNL005"
    name = "file-too-large"
    severity = Severity.INFO
    layer = "tool"
