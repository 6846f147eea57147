"""Which classes are nn.Modules: for static rules during the walk, and for trace discovery across files."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import libcst as cst

from nnlint.imports import dotted_name
from nnlint.static.facts import Facts
from nnlint.static.facts.names import MODULE_BASES, is_torch_nn_class

# Bases that say "not a module" on their own.
_PLAIN_BASES = ("object", "ABC", "abc.ABC", "Exception")


@dataclass
class ClassScope:
    node: cst.ClassDef
    is_module: bool
    methods: frozenset[str]  # its own and its local module bases' methods


class ModuleClasses(Facts):
    """Each class of the file, in source order, with whether it is an nn.Module and its methods.

    A class is a module when a base is a torch.nn class, a known module base (LightningModule), or a
    module class defined earlier in the file; its methods include those inherited from local bases.
    """

    def __init__(self, ctx):
        super().__init__(ctx)
        self.by_node: dict[cst.ClassDef, ClassScope] = {}
        self._module_methods: dict[str, frozenset[str]] = {}  # module class name -> its methods

    def visit_ClassDef(self, node: cst.ClassDef) -> None:
        methods = {s.name.value for s in node.body.body if isinstance(s, cst.FunctionDef)}
        is_module = False
        for base in node.bases:
            if base.keyword is not None:
                continue
            local = dotted_name(base.value)
            if local in self._module_methods:
                is_module = True
                methods |= self._module_methods[local]
            else:
                qualname = self.ctx.qualname(base.value)
                if qualname in MODULE_BASES or is_torch_nn_class(qualname):
                    is_module = True
        scope = ClassScope(node, is_module, frozenset(methods))
        if is_module:
            self._module_methods[node.name.value] = scope.methods
        self.by_node[node] = scope


class Decidable(Protocol):
    name: str
    bases: list[str]  # qualified where the import table knows them, else as written
    is_module: bool | None


def base_verdict(base: str, lookup: Callable[[str], bool | None]) -> bool | None:
    """Whether a base makes a module (True), rules it out (False), or is unknown here (None)."""
    if is_torch_nn_class(base):
        return True
    if base in _PLAIN_BASES or base.startswith("typing."):
        return False
    return lookup(base)


def decide_modules(classes: Iterable[Decidable], lookup: Callable[[str], bool | None]) -> None:
    """Settle each undecided class's `is_module` to a fixpoint: True when some base is a module,
    False when every base is not; `lookup` answers for bases defined elsewhere (None: unknown)."""
    classes = list(classes)
    changed = True
    while changed:
        changed = False
        for cls in classes:
            if cls.is_module is not None:
                continue
            verdicts = [base_verdict(base, lookup) for base in cls.bases]
            if True in verdicts:
                cls.is_module, changed = True, True
            elif all(v is False for v in verdicts):
                cls.is_module, changed = False, True
