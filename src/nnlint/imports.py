"""A light import table: the qualified name behind every imported symbol.

`import torch.nn.functional as F`, `from torch.nn import functional` and `import torch as T` all make
`F.softmax`, `functional.softmax` and `T.nn.functional.softmax` resolve to
`torch.nn.functional.softmax`. Much cheaper than libcst's full scope analysis, and enough for
rules that ask "is this call torch's softmax?".
"""

from __future__ import annotations

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` as a string, or None when the expression is not a plain dotted name."""
    parts = []
    # Exact types: called for most expressions of a file, and isinstance() on libcst's (ABC) classes is slow.
    while type(node) is cst.Attribute:
        parts.append(node.attr.value)
        node = node.value
    if type(node) is not cst.Name:
        return None
    parts.append(node.value)
    return ".".join(reversed(parts))


class ImportTable:
    def __init__(self) -> None:
        self._aliases: dict[str, str] = {}

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = dotted_name(alias.name)
                if full is None:
                    continue
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self._aliases[alias.asname.name.value] = full
                else:
                    top = full.split(".", 1)[0]
                    self._aliases[top] = top
            return
        module = dotted_name(node.module) if node.module is not None else ""
        if module is None:
            return
        module = "." * len(node.relative) + module
        if isinstance(node.names, cst.ImportStar):
            return
        for alias in node.names:
            name = dotted_name(alias.name)
            if name is None:
                continue
            bound = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound = alias.asname.name.value
            prefix = module if module.endswith(".") else module + "."
            self._aliases[bound] = prefix + name

    def add_all(self, module: cst.Module) -> None:
        """Every import statement of a module not walked by the engine (statements only, not expressions)."""
        stack: list[cst.CSTNode] = list(module.body)
        while stack:
            statement = stack.pop()
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        self.add(small)
            elif isinstance(statement, (cst.If, cst.Try)):
                for part in (statement.body, getattr(statement, "orelse", None)):
                    body = getattr(part, "body", part)
                    if isinstance(body, cst.IndentedBlock):
                        stack.extend(body.body)
                    elif isinstance(body, cst.If):
                        stack.append(body)

    def resolve(self, node: cst.BaseExpression) -> str | None:
        """Qualified name of a dotted expression whose head was imported, else None."""
        name = dotted_name(node)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        target = self._aliases.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def bound_name(self, module: str) -> str | None:
        """The local name that module `module` itself is imported as (`np` for numpy), if any."""
        return next((name for name, target in self._aliases.items() if target == module), None)

    def imports_module(self, prefix: str) -> bool:
        """Whether anything from `prefix` (e.g. "torch") was imported."""
        return any(t == prefix or t.startswith(prefix + ".") for t in self._aliases.values())
