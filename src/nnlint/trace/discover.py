"""Find the models in a file, and every hint the file gives on how to build and feed them.

Runs in the checker process with libcst only: nothing here imports torch or the checked code.
Values are reduced to plain JSON data: numbers, strings, lists, `{"$tuple": [...]}` and
`{"$ref": "nn.ReLU"}` for a name the worker resolves in the loaded module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from nnlint.imports import ImportTable, dotted_name
from nnlint.static.facts.classes import decide_modules
from nnlint.static.facts.names import last_part
from nnlint.trace.callsites import UNKNOWN, argparse_defaults, parsed_names
from nnlint.trace.shape_comments import comment_inputs

_INPUT_COMMENT = re.compile(r"#\s*nnlint:\s*input\s*=\s*(.+?)\s*$")
_TENSOR_FACTORIES = {"randn": "float32", "rand": "float32", "zeros": "float32", "ones": "float32",
                     "empty": "float32", "randint": "int64", "randn_like": None}
_DTYPE_NAMES = {"float": "float32", "float32": "float32", "float64": "float64", "double": "float64",
                "half": "float16", "float16": "float16", "bfloat16": "bfloat16", "long": "int64",
                "int64": "int64", "int": "int32", "int32": "int32", "bool": "bool", "uint8": "uint8"}
# Method calls that return the same model (`Net().to(device)`).
_MODEL_PASSTHROUGH = {"to", "cuda", "cpu", "eval", "train", "float", "double", "half", "bfloat16",
                      "requires_grad_"}


class NotLiteral(Exception):
    pass


@dataclass
class ModelClass:
    name: str
    line: int
    column: int
    end_line: int
    end_column: int
    bases: list[str]  # qualified where the import table knows them, else as written
    is_module: bool | None  # None: decided later, from classes in other files
    input: list[str] | None = None  # from `# nnlint: input=...` on the class line
    first_layers: list[str] = field(default_factory=list)  # `self.<attr>` called first in forward
    comment_input: list[str] = field(default_factory=list)  # from `# x: (B, 1, 28, 28)` about forward's inputs


@dataclass
class FileModels:
    classes: list[ModelClass] = field(default_factory=list)
    # class name (as called) -> literal (args, kwargs, line) of each instantiation in this file
    instantiations: dict[str, list[dict]] = field(default_factory=dict)
    # class name -> input spec lists from `model(torch.randn(64, 784))`
    input_shapes: dict[str, list[list[str]]] = field(default_factory=dict)
    # class name -> module-level functions without required arguments that build it
    factories: dict[str, list[str]] = field(default_factory=dict)
    # dest -> literal default of the file's `parser.add_argument(...)` calls
    argparse_defaults: dict = field(default_factory=dict)
    # class name -> float dtype the code casts its instances to (`Net().double()`, `seq.double()`)
    dtypes: dict[str, str] = field(default_factory=dict)
    # class names whose instances are called on one sample (`model(x[0])`): no batch to protect
    unbatched: list[str] = field(default_factory=list)

    def models(self) -> list[ModelClass]:
        return [c for c in self.classes if c.is_module]


class _DefinitionCollector(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider,)

    def __init__(self, lines: list[str]):
        self.lines = lines
        self.imports = ImportTable()
        self.assigned: dict[str, list[cst.BaseExpression]] = {}
        self.class_nodes: list[cst.ClassDef] = []
        self.calls: list[cst.Call] = []
        self.functions: list[cst.FunctionDef] = []
        self.all_functions: list[cst.FunctionDef] = []
        self.depth = 0  # function/class nesting; module-level factories only

    def visit_Import(self, node):
        self.imports.add(node)

    def visit_ImportFrom(self, node):
        self.imports.add(node)

    def visit_Assign(self, node):
        if len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            self.assigned.setdefault(node.targets[0].target.value, []).append(node.value)

    def visit_AnnAssign(self, node):
        if isinstance(node.target, cst.Name) and node.value is not None:
            self.assigned.setdefault(node.target.value, []).append(node.value)

    def visit_ClassDef(self, node):
        if self.depth == 0:
            self.class_nodes.append(node)
        self.depth += 1

    def leave_ClassDef(self, node):
        self.depth -= 1

    def visit_FunctionDef(self, node):
        if self.depth == 0:
            self.functions.append(node)
        self.all_functions.append(node)
        self.depth += 1

    def leave_FunctionDef(self, node):
        self.depth -= 1

    def visit_Call(self, node):
        self.calls.append(node)


class _Evaluator:
    """Literal values of expressions, through simple assignments of this file."""

    def __init__(self, collector: _DefinitionCollector, refs: set[str], parsed: frozenset[str] | set[str] = frozenset(),
                 defaults: dict | None = None):
        self.c = collector
        self.refs = refs  # names the worker can resolve in the loaded module
        self.parsed = parsed  # variables/parameters holding parsed command-line arguments
        self.defaults = defaults or {}  # their argparse defaults

    def value(self, node: cst.BaseExpression, depth: int = 0):
        if depth > 20:
            raise NotLiteral
        if isinstance(node, cst.Integer):
            return int(node.value.replace("_", ""), 0)
        if isinstance(node, cst.Float):
            return float(node.value.replace("_", ""))
        if isinstance(node, cst.SimpleString):
            return node.evaluated_value
        if isinstance(node, cst.Name):
            if node.value in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.value]
            values = self.c.assigned.get(node.value)
            if values:
                results = set()
                for expr in values:
                    results.add(repr(self.value(expr, depth + 1)))
                if len(results) == 1:
                    return self.value(values[-1], depth + 1)
                raise NotLiteral
            if node.value in self.refs:
                return {"$ref": node.value}
            raise NotLiteral
        if isinstance(node, cst.Attribute):
            name = dotted_name(node)
            head, _, attr = (name or "").partition(".")
            if head in self.parsed and attr in self.defaults and self.defaults[attr] is not None:
                return self.defaults[attr]  # `args.hidden`: the parser's default
            if name and head in self.refs:
                return {"$ref": name}
            raise NotLiteral
        if isinstance(node, (cst.List, cst.Tuple)):
            items = []
            for element in node.elements:
                if not isinstance(element, cst.Element):
                    raise NotLiteral
                items.append(self.value(element.value, depth + 1))
            return items if isinstance(node, cst.List) else {"$tuple": items}
        if isinstance(node, cst.Dict):
            out: dict = {}
            for entry in node.elements:
                if not isinstance(entry, cst.DictElement):
                    raise NotLiteral
                key = self.value(entry.key, depth + 1)
                if not isinstance(key, str):
                    raise NotLiteral
                out[key] = self.value(entry.value, depth + 1)
            return out
        if (isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in ("int", "float")
                and len(node.args) == 1 and not node.args[0].keyword and not node.args[0].star):
            inner = self.value(node.args[0].value, depth + 1)  # `nz = int(opt.nz)`
            if isinstance(inner, (int, float, str)) and not isinstance(inner, bool):
                try:
                    return int(inner) if node.func.value == "int" else float(inner)
                except ValueError:
                    raise NotLiteral from None
            raise NotLiteral
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, (cst.Minus, cst.Plus)):
            operand = self.value(node.expression, depth + 1)
            if not isinstance(operand, (int, float)) or isinstance(operand, bool):
                raise NotLiteral
            return -operand if isinstance(node.operator, cst.Minus) else operand
        if isinstance(node, cst.BinaryOperation):
            left, right = self.value(node.left, depth + 1), self.value(node.right, depth + 1)
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
                raise NotLiteral
            ops = {cst.Add: lambda a, b: a + b, cst.Subtract: lambda a, b: a - b,
                   cst.Multiply: lambda a, b: a * b, cst.FloorDivide: lambda a, b: a // b,
                   cst.Divide: lambda a, b: a / b, cst.Modulo: lambda a, b: a % b,
                   cst.Power: lambda a, b: a ** b if abs(b) < 64 else None}
            op = ops.get(type(node.operator))
            if op is None:
                raise NotLiteral
            try:
                result = op(left, right)
            except ArithmeticError:
                raise NotLiteral from None
            if result is None:
                raise NotLiteral
            return result
        raise NotLiteral

    def call_arguments(self, call: cst.Call, partial: bool = False) -> tuple[list, dict]:
        """Literal arguments of a call. With `partial`, a value that is not literal becomes UNKNOWN
        (the worker synthesizes it from the parameter's name), parsed arguments passed whole become
        a namespace of their defaults, and `**vars(args)` their defaults as keywords."""
        args, kwargs = [], {}
        for arg in call.args:
            if arg.star == "**" and partial and self._is_parsed(arg.value, unpacked=True):
                kwargs.update({k: v for k, v in self.defaults.items() if v is not None})
                kwargs["$open"] = True  # the worker keeps only the keywords the class accepts
                continue
            if arg.star:
                raise NotLiteral
            try:
                value = self.value(arg.value)
            except NotLiteral:
                if not partial:
                    raise
                value = ({"$namespace": self.defaults} if self._is_parsed(arg.value) else UNKNOWN)
            if arg.keyword is None:
                args.append(value)
            else:
                kwargs[arg.keyword.value] = value
        return args, kwargs

    def _is_parsed(self, node: cst.BaseExpression, unpacked: bool = False) -> bool:
        if unpacked:  # `**vars(args)`, `**args.__dict__`
            if isinstance(node, cst.Call) and dotted_name(node.func) == "vars" and len(node.args) == 1:
                node = node.args[0].value
            elif isinstance(node, cst.Attribute) and node.attr.value == "__dict__":
                node = node.value
            else:
                return False
        return isinstance(node, cst.Name) and node.value in self.parsed


def _callee_name(call: cst.Call) -> str | None:
    return last_part(dotted_name(call.func)) or None


def _strip_passthrough(node: cst.BaseExpression) -> cst.BaseExpression:
    while (isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute)
           and node.func.attr.value in _MODEL_PASSTHROUGH):
        node = node.func.value
    return node


_CASTS = {"double": "float64", "half": "float16", "bfloat16": "bfloat16", "float": "float32"}


def _cast_dtype(node: cst.BaseExpression) -> str | None:
    """The float dtype a `.double()` / `.half()` / `.to(torch.float64)` chain casts a model to."""
    while isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) \
            and node.func.attr.value in _MODEL_PASSTHROUGH:
        method = node.func.attr.value
        if method in _CASTS:
            return _CASTS[method]
        if method == "to":
            for arg in node.args:
                name = (dotted_name(arg.value) or "").rsplit(".", 1)[-1]
                if (arg.keyword is None or arg.keyword.value == "dtype") and name in ("float64", "double", "float16",
                                                                                       "half", "bfloat16"):
                    return _DTYPE_NAMES[name]
        node = node.func.value
    return None


def _dims_after_first(dims: list) -> list:
    # The first dimension of a literal example is the batch: keep it free so sizes stay coprime.
    return ["B", *dims[1:]] if len(dims) >= 2 else dims


def _tensor_spec(node: cst.BaseExpression, ev: _Evaluator, depth: int = 0) -> str | None:
    """`torch.randn(64, 784)` (or a name assigned one) as "float32[B,784]"."""
    if depth > 5:
        return None
    if isinstance(node, cst.Name):
        values = ev.c.assigned.get(node.value)
        return _tensor_spec(values[-1], ev, depth + 1) if values and len(values) == 1 else None
    # `.to(device)`, `.cuda()`, `.float()` keep the shape.
    if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and \
            node.func.attr.value in ("to", "cuda", "cpu", "float", "double", "long", "requires_grad_"):
        return _tensor_spec(node.func.value, ev, depth + 1)
    if not isinstance(node, cst.Call):
        return None
    qualified = ev.c.imports.resolve(node.func) or ""
    if not qualified.startswith("torch."):
        return None
    factory = last_part(qualified)
    if factory not in _TENSOR_FACTORIES or factory == "randn_like":
        return None
    dtype = _TENSOR_FACTORIES[factory]
    positional = [a for a in node.args if a.keyword is None and not a.star]
    def dim(arg, first):
        try:
            return ev.value(arg.value)
        except NotLiteral:
            if first:  # the batch size (`torch.randn(batch_size, nz, 1, 1)`): B anyway
                return 1
            raise

    try:
        if factory == "randint":
            size_args = [a for a in node.args if a.keyword and a.keyword.value == "size"] or positional[-1:]
            values = [ev.value(size_args[0].value)] if size_args else []
        else:
            values = [dim(a, i == 0 and len(positional) > 1) for i, a in enumerate(positional)]
        for arg in node.args:
            if arg.keyword and arg.keyword.value == "dtype":
                dtype_name = last_part(dotted_name(arg.value))
                dtype = _DTYPE_NAMES.get(dtype_name)
                if dtype is None:
                    return None
    except NotLiteral:
        return None
    if len(values) == 1 and isinstance(values[0], (list, dict)):
        values = values[0]["$tuple"] if isinstance(values[0], dict) else values[0]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
        return None
    return f"{dtype}[{','.join(str(d) for d in _dims_after_first(values))}]"


def _forward(node: cst.ClassDef) -> cst.FunctionDef | None:
    return next((s for s in node.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "forward"), None)


def _first_layers(forward: cst.FunctionDef, limit: int = 4) -> list[str]:
    """The submodules forward calls, in source order: the first one decides the input's shape."""
    found: list[str] = []
    for sub in _post_order(forward.body):
        if not isinstance(sub, cst.Call):
            continue
        func = sub.func
        while isinstance(func, cst.Subscript):
            func = func.value
        name = dotted_name(func) or ""
        parts = name.split(".")
        if len(parts) >= 2 and parts[0] == "self" and parts[1] not in found:
            found.append(parts[1])
        if len(found) >= limit:
            break
    return found


def _factory_target(func: cst.FunctionDef, class_names: set[str]) -> str | None:
    """The class a no-argument module-level function builds, from its return annotation or body."""
    params = func.params
    if any(p.default is None for p in list(params.posonly_params) + list(params.params)
           + list(params.kwonly_params)):
        return None
    if func.returns is not None:
        name = last_part(dotted_name(func.returns.annotation))
        if name in class_names:
            return name
    built: dict[str, str] = {}
    for node in _walk(func.body):
        if isinstance(node, cst.Assign) and isinstance(node.value, cst.Call) and \
                len(node.targets) == 1 and isinstance(node.targets[0].target, cst.Name):
            stripped = _strip_passthrough(node.value)
            callee = _callee_name(stripped) if isinstance(stripped, cst.Call) else None
            if callee in class_names:
                built[node.targets[0].target.value] = callee
        if isinstance(node, cst.Return) and node.value is not None:
            value = _strip_passthrough(node.value)
            if isinstance(value, cst.Call) and _callee_name(value) in class_names:
                return _callee_name(value)
            if isinstance(value, cst.Name) and value.value in built:
                return built[value.value]
    return None


def _walk(node: cst.CSTNode):
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if isinstance(current, (cst.FunctionDef, cst.ClassDef)) and current is not node:
            continue
        stack.extend(reversed(current.children))


def _post_order(node: cst.CSTNode):
    """Children before parents: the order in which nested calls run."""
    stack = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            yield current
            continue
        stack.append((current, True))
        if not isinstance(current, (cst.FunctionDef, cst.ClassDef)) or current is node:
            stack.extend((child, False) for child in reversed(current.children))


def _split_specs(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def discover(source: str) -> FileModels:
    """The classes, instantiations, example inputs and factories of one file's source."""
    module = cst.parse_module(source)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    lines = source.splitlines()
    collector = _DefinitionCollector(lines)
    wrapper.visit(collector)
    positions = wrapper.resolve(PositionProvider)
    result = FileModels()

    # Names the worker can resolve in the loaded module: its classes, functions and imports.
    refs = {c.name.value for c in collector.class_nodes} | {f.name.value for f in collector.functions}
    refs |= set(collector.imports._aliases)
    result.argparse_defaults = argparse_defaults(collector.calls)
    ev = _Evaluator(collector, refs, parsed_names(collector.assigned, collector.all_functions),
                    result.argparse_defaults)

    local: dict[str, ModelClass] = {}
    for node in collector.class_nodes:
        bases = []
        for arg in node.bases:
            qualified = collector.imports.resolve(arg.value) or dotted_name(arg.value)
            if qualified:
                bases.append(qualified)
        name_pos = positions[node.name]
        body_line = positions[node.body].start.line
        spec = None
        for text in lines[name_pos.start.line - 1:max(body_line - 1, name_pos.start.line)]:
            match = _INPUT_COMMENT.search(text)
            if match:
                spec = _split_specs(match.group(1))
        forward = _forward(node)
        model = ModelClass(node.name.value, name_pos.start.line, name_pos.start.column + 1,
                           name_pos.end.line, name_pos.end.column + 1, bases, None, spec,
                           first_layers=_first_layers(forward) if forward else [],
                           comment_input=comment_inputs(forward) if forward else [])
        local[model.name] = model
        result.classes.append(model)

    # Local bases, to a fixpoint; a base from another file stays undecided (None).
    decide_modules(result.classes, lambda base: local[base].is_module if base in local else None)
    for model in result.classes:
        if model.is_module is None and all(base in local for base in model.bases):
            model.is_module = False  # a cycle of undecided local bases

    class_names = set(local)
    for func in collector.functions:
        target = _factory_target(func, class_names)
        if target is not None:
            result.factories.setdefault(target, []).append(func.name.value)

    # Instantiations `Net(784, 10)`: any capitalized callee, matched to classes of any file later.
    instance_of: dict[str, str] = {}  # variable -> class it holds
    for name, values in collector.assigned.items():
        for value in values:
            cast = _cast_dtype(value)
            value = _strip_passthrough(value)
            if isinstance(value, cst.Call):
                callee = _callee_name(value)
                if callee and callee[:1].isupper():
                    instance_of[name] = callee
                    if cast:
                        result.dtypes[callee] = cast
    for call in collector.calls:  # `seq.double()` as a statement
        if isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name):
            cast = _cast_dtype(call)
            if cast and call.func.value.value in instance_of:
                result.dtypes[instance_of[call.func.value.value]] = cast
    dataset = _dataset_input(collector)
    for call in collector.calls:
        callee = _callee_name(call)
        if callee and callee[:1].isupper() and call.args is not None:
            try:
                args, kwargs = ev.call_arguments(call, partial=True)
            except NotLiteral:
                continue
            qualified = collector.imports.resolve(call.func) or dotted_name(call.func) or callee
            entry = {"args": args, "kwargs": kwargs, "line": positions[call].start.line, "callee": qualified}
            if entry not in result.instantiations.get(callee, []):
                result.instantiations.setdefault(callee, []).append(entry)
        # Example inputs: `model(torch.randn(64, 784))`, `Net(...)(x)`, `model.forward(x)`.
        called: cst.BaseExpression = call.func
        if isinstance(called, cst.Attribute) and called.attr.value == "forward":
            called = called.value
        receiver = _strip_passthrough(called)
        owner = None
        if isinstance(receiver, cst.Name):
            owner = instance_of.get(receiver.value)
        elif isinstance(receiver, cst.Call):
            owner = _callee_name(receiver)
        if owner and len(call.args) == 1 and _is_sample(call.args[0].value) and owner not in result.unbatched:
            result.unbatched.append(owner)
        if owner and call.args and not any(a.star for a in call.args):
            specs: list[str] | None = []
            for arg in call.args:
                shown = _tensor_spec(arg.value, ev)
                if shown is None or specs is None:
                    specs = None
                    break
                specs.append(shown if arg.keyword is None else f"{arg.keyword.value}={shown}")
            if specs is None and dataset is not None and len(call.args) == 1 and \
                    isinstance(call.args[0].value, cst.Name) and call.args[0].keyword is None:
                specs = [dataset]  # `model(data)` in a file that loads one known dataset
            if specs and specs not in result.input_shapes.get(owner, []):
                result.input_shapes.setdefault(owner, []).append(specs)
    return result


def _is_sample(node: cst.BaseExpression) -> bool:
    """`x[0]` / `x[i]`: one element of a batch or dataset (one integer index, no slice)."""
    if not isinstance(node, cst.Subscript) or len(node.slice) != 1:
        return False
    index = node.slice[0].slice
    return isinstance(index, cst.Index) and isinstance(index.value, (cst.Integer, cst.Name)) and \
        not (isinstance(index.value, cst.Name) and index.value.value == "None")


# Datasets whose samples have one known shape (torchvision's defaults, before any resize).
_DATASET_SHAPES = {
    "MNIST": "float32[B,1,28,28]", "FashionMNIST": "float32[B,1,28,28]", "KMNIST": "float32[B,1,28,28]",
    "EMNIST": "float32[B,1,28,28]", "QMNIST": "float32[B,1,28,28]",
    "CIFAR10": "float32[B,3,32,32]", "CIFAR100": "float32[B,3,32,32]", "SVHN": "float32[B,3,32,32]",
}


def _dataset_input(collector) -> str | None:
    """The sample shape of the one known torchvision dataset the file loads, if exactly one."""
    shapes = set()
    for call in collector.calls:
        qualified = collector.imports.resolve(call.func) or ""
        if qualified.startswith("torchvision.datasets."):
            shape = _DATASET_SHAPES.get(qualified.rsplit(".", 1)[-1])
            if shape is None:
                return None  # another dataset: its shape is unknown
            shapes.add(shape)
    return shapes.pop() if len(shapes) == 1 else None
