"""Reject what Python rejects, before libcst sees the file.

CPython's own compiler (parser, symbol table, code generator) runs in a fraction of libcst's parse
time and refuses what libcst accepts: `return` outside a function, too many nested parentheses,
`break` outside a loop, duplicate arguments. It also keeps pathological nesting away from libcst's
native parser, which overflows its stack (a segfault) on a few thousand open brackets.
"""

from __future__ import annotations

import warnings


def compile_error(text: str, filename: str = "<checked>") -> tuple[int, int, str] | None:
    """(line, column, message) of the first compile-time error of `text`, or None when it compiles."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning/DeprecationWarning would reach stderr
            compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as error:
        line = error.lineno or 1
        column = max(error.offset or 1, 1)
        return line, column, f"Python cannot compile this file: {error.msg}"
    except (RecursionError, MemoryError):  # CPython's parser reports stack overflow as MemoryError
        return 1, 1, "Python cannot compile this file: the code is nested too deeply (or is too large)"
    except ValueError as error:  # e.g. "source code string cannot contain null bytes"
        return 1, 1, f"Python cannot compile this file: {error}"
    return None
