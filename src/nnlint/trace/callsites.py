"""How the checked code builds its models: argparse defaults, call sites and the class they name.

Checker side (libcst, no torch). `argparse_defaults` reads every `parser.add_argument(...)` of a
file; `parsed_names` finds the variables and parameters holding parsed arguments (`args = parser.
parse_args()`, `def main(args)`), so `Net(args.hidden, 10)` becomes `Net(64, 10)`. `resolve_callee`
maps a call's qualified callee (`rnn.RNNModel`, `.model.GPT`, a local `Net`) to the checked file
that defines the class: classes are matched through imports, never by bare name.
"""

from __future__ import annotations

import os

import libcst as cst

from nnlint.imports import dotted_name

ARGS_PARAMETERS = frozenset({"args", "opt", "opts", "options", "flags", "FLAGS", "hparams", "hp", "params"})
# Marker values in instantiation entries; the worker fills them (see building.py / worker.py).
UNKNOWN = {"$unknown": True}  # a non-literal argument: synthesized from its parameter's name


def _literal(node: cst.BaseExpression):
    """Plain literal values for defaults (numbers, strings, booleans, None, tuples/lists of them)."""
    if isinstance(node, cst.Integer):
        return int(node.value.replace("_", ""), 0)
    if isinstance(node, cst.Float):
        return float(node.value.replace("_", ""))
    if isinstance(node, cst.SimpleString):
        return node.evaluated_value
    if isinstance(node, cst.Name) and node.value in ("True", "False", "None"):
        return {"True": True, "False": False, "None": None}[node.value]
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        value = _literal(node.expression)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value
    if isinstance(node, (cst.List, cst.Tuple)):
        items = [_literal(e.value) for e in node.elements if isinstance(e, cst.Element)]
        return items if isinstance(node, cst.List) else {"$tuple": items}
    raise ValueError("not a literal")


def _dest(call: cst.Call) -> str | None:
    dest: str | None = None
    flags: list[str] = []
    for arg in call.args:
        value = arg.value.evaluated_value if isinstance(arg.value, cst.SimpleString) else None
        if not isinstance(value, str):  # bytes literals name no option
            continue
        if arg.keyword is not None and arg.keyword.value == "dest":
            dest = value
        elif arg.keyword is None:
            flags.append(value)
    if dest:
        return dest
    long = next((f for f in flags if f.startswith("--")), None) or (flags[0] if flags else None)
    if not long:
        return None
    return long.lstrip("-").replace("-", "_") or None


def argparse_defaults(calls: list[cst.Call]) -> dict:
    """dest -> default of every `*.add_argument(...)` whose default is a literal."""
    out: dict = {}
    for call in calls:
        if not (isinstance(call.func, cst.Attribute) and call.func.attr.value == "add_argument"):
            continue
        dest = _dest(call)
        if dest is None:
            continue
        keywords = {a.keyword.value: a.value for a in call.args if a.keyword is not None}
        action = keywords.get("action")
        action_name = action.evaluated_value if isinstance(action, cst.SimpleString) else None
        try:
            if "default" in keywords:
                value = _literal(keywords["default"])
            elif action_name == "store_true":
                value = False
            elif action_name == "store_false":
                value = True
            elif "choices" in keywords:
                choices = _literal(keywords["choices"])
                choices = choices["$tuple"] if isinstance(choices, dict) else choices
                value = choices[0] if choices else None
            else:
                value = None
            type_name = dotted_name(keywords["type"]) if "type" in keywords else None
            if isinstance(value, str) and type_name in ("int", "float"):
                value = int(value) if type_name == "int" else float(value)
        except (ValueError, IndexError, TypeError):
            continue
        if value is not None or dest not in out:
            out[dest] = value
    return out


def parsed_names(assigned: dict[str, list[cst.BaseExpression]], functions: list[cst.FunctionDef]) -> set[str]:
    """Variables assigned from `.parse_args()` / `.parse_known_args()[0]`, and `args`-like parameters."""
    names = set()
    for name, values in assigned.items():
        for value in values:
            while isinstance(value, cst.Subscript):
                value = value.value
            if (isinstance(value, cst.Call) and isinstance(value.func, cst.Attribute)
                    and value.func.attr.value in ("parse_args", "parse_known_args")):
                names.add(name)
    for function in functions:
        for param in function.params.params:
            if param.name.value in ARGS_PARAMETERS:
                names.add(param.name.value)
    return names


def resolve_callee(callee: str, caller: str, defined_in: dict[str, set[str]], local: set[str]) -> str | None:
    """The checked file (absolute path) defining the class a call in `caller` names, or None.

    `callee` is the import-resolved dotted name (`rnn.RNNModel`, `..model.GPT`) or a bare local name;
    `defined_in` maps class name -> files defining it; `local` are the classes of the caller itself.
    """
    module, _, name = callee.rpartition(".")
    candidates = defined_in.get(name, set())
    if not module:
        return caller if name in local else None
    base = os.path.dirname(caller)
    dots = len(module) - len(module.lstrip("."))
    parts = module.lstrip(".").split(".") if module.strip(".") else []
    if dots:
        for _ in range(dots - 1):
            base = os.path.dirname(base)
        roots = [base]
    else:
        roots, current = [], base
        while True:  # the script's folder first (sys.path[0]), then enclosing folders (packages)
            roots.append(current)
            parent = os.path.dirname(current)
            if parent == current or len(roots) > 6:
                break
            current = parent
    for root in roots:
        stem = os.path.join(root, *parts) if parts else root
        for path in (stem + ".py", os.path.join(stem, "__init__.py")):
            if path in candidates:
                return path
    # `from pkg import Net` re-exported by pkg/__init__.py: a class of that name inside the package.
    for root in roots:
        stem = os.path.join(root, *parts) if parts else root
        inside = [p for p in candidates if p.startswith(stem + os.sep)]
        if len(inside) == 1:
            return inside[0]
    return None
