"""The worker process: imports torch once, then loads, builds, feeds and analyzes models, file by file.

Started by the runner as `python -m nnlint.trace.worker REQUEST_FD RESPONSE_FD MEMORY_BYTES` with
stdin closed and stdout/stderr captured to a file. Requests and responses are JSON lines on the two
pipe fds, so nothing the checked code prints can corrupt them. Each file's models are answered one
message at a time, so a timeout loses only the models not yet checked.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import json
import math
import os
import resource
import sys
import time
import traceback
import types
import typing

from nnlint.source import decode, read_bytes
from nnlint.trace import guards
from nnlint.trace.inputs import InputSpec, SpecError, TensorSpec, choose_sizes, parse_input, parse_spec
from nnlint.trace.slicing import EVERYTHING, slice_module

torch = None  # imported in main(), after the memory cap is set
nn = None

ANALYZER = "nnlint.trace.analyze:analyze_model"
SPATIAL = ("H", "W", "D", "L")
# Fixed image sizes that many CNN heads (a Linear after a flatten) or ViTs insist on.
COMMON_SIDES = (32, 28, 64, 224)


# --- loading ----------------------------------------------------------------------------------

# Module name -> the names sliced code imports from it ("*": the whole module, as far as it is safe).
_WANTED: dict[str, set[str]] = {}


def _sliced_code(source: str, path: str, roots, package: str):
    piece = slice_module(decode(source), path, roots, package)
    for module, names in piece.imports.items():  # recorded before the code runs and imports them
        _WANTED.setdefault(module, set()).update(names)
    return piece.compile(path)


class _SlicingLoader(importlib.machinery.SourceFileLoader):
    """Loads the project's own modules (imported by a checked file) as slices, never as programs."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        package = fullname if self.is_package(fullname) else fullname.rpartition(".")[0]
        with open(path, "rb") as handle:
            source = handle.read()
        return _sliced_code(source, path, _WANTED.get(fullname) or {EVERYTHING}, package)


class _SlicingFinder(importlib.abc.MetaPathFinder):
    """Any module that resolves inside the project (the checked files' folders and the folder nnlint
    was started in), not the standard library, site-packages or nnlint itself, is loaded as a slice."""

    def __init__(self):
        self.user_dirs: set[str] = set()
        self.not_user: tuple[str, ...] = ()

    def find_spec(self, fullname, path, target=None):
        if not self.user_dirs:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            return None
        origin = os.path.realpath(spec.origin)
        if not self.not_user:
            self.not_user = guards.library_folders()
        if origin.startswith(self.not_user) or os.sep + "site-packages" + os.sep in origin \
                or not any(origin.startswith(d.rstrip(os.sep) + os.sep) for d in self.user_dirs):
            return None
        spec.loader = _SlicingLoader(fullname, origin)
        return spec


_FINDER = _SlicingFinder()


def _module_name(path: str) -> tuple[str, str]:
    """(sys.path root, dotted module name) of a file, honouring enclosing packages."""
    directory, filename = os.path.split(path)
    parts = [filename[:-3] if filename.endswith(".py") else filename]
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, ".".join(parts)


def load_slice(path: str, roots: set[str]) -> types.ModuleType:
    """Execute the safe slice of `path` as a module; its code objects carry `path` and its lines."""
    root, name = _module_name(path)
    if root not in sys.path:
        sys.path.insert(0, root)
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) not in (None, path) and \
            os.path.dirname(os.path.abspath(getattr(existing, "__file__", "") or "")) not in _FINDER.user_dirs:
        name = "_nnlint_user_" + name.replace(".", "_")  # do not shadow an installed module
    package = name.rpartition(".")[0]
    if package:
        try:
            importlib.import_module(package)
        except Exception:  # noqa: BLE001 - a broken package __init__ should not stop the file
            pass
        # The package may have imported this very module (sliced, by the finder): executing it a
        # second time would repeat its registrations (torchvision's @register_model refuses that).
        existing = sys.modules.get(name)
        if _is_sliced(existing) and os.path.abspath(getattr(existing, "__file__", "")) == path:
            return existing
    code = _sliced_code(read_bytes(path), path, roots, package)
    module = types.ModuleType(name)
    module.__file__ = path
    module.__package__ = package
    module.__nnlint_sliced__ = True
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module


def _is_sliced(module) -> bool:
    return module is not None and (getattr(module, "__nnlint_sliced__", False)
                                   or isinstance(getattr(module, "__loader__", None), _SlicingLoader))


def forget_sliced_modules() -> None:
    """Drop the user modules of earlier requests, so an edited file is loaded afresh."""
    for name, module in list(sys.modules.items()):
        if _is_sliced(module):
            del sys.modules[name]


def resolve_refs(value, namespace: dict):
    """Turn the discovery's JSON values back into Python: tuples and names of the module."""
    if isinstance(value, list):
        return [resolve_refs(v, namespace) for v in value]
    if isinstance(value, dict):
        if "$tuple" in value:
            return tuple(resolve_refs(v, namespace) for v in value["$tuple"])
        if "$ref" in value:
            head, *rest = value["$ref"].split(".")
            obj = namespace[head] if head in namespace else __builtins__[head] if isinstance(
                __builtins__, dict) else getattr(__builtins__, head)
            for part in rest:
                obj = getattr(obj, part)
            return obj
        return {k: resolve_refs(v, namespace) for k, v in value.items()}
    return value


# --- construction -----------------------------------------------------------------------------

_NAME_VALUES = [  # (substrings of a lower-cased parameter name, value); first match wins
    (("vocab", "num_embeddings", "ntoken", "n_token", "num_tokens", "n_vocab"), 97),
    (("num_classes", "n_classes", "nclass", "num_labels", "n_labels", "classes"), 10),
    (("in_chans", "in_channels", "input_channels", "in_ch", "n_channels", "num_channels", "img_channels",
      "image_channels", "channels_in", "input_nc"), 3),
    (("n_layer", "num_layers", "n_layers", "nlayers", "depth", "num_blocks", "n_blocks"), 2),
    (("dropout", "drop", "p_drop", "attn_drop", "proj_drop"), 0.0),
    (("eps", "epsilon"), 1e-5),
    (("kernel",), 3),
    (("stride",), 1),
    (("padding",), 1),
    (("dilation", "groups"), 1),
    (("patch",), 4),
    (("img_size", "image_size", "resolution", "input_resolution"), 32),
    (("seq_len", "block_size", "max_len", "max_seq", "context", "n_positions", "max_position", "n_ctx",
      "max_length", "seq_length"), 64),
    (("ratio",), 4),
    (("bias", "affine", "batch_first", "residual"), True),
    (("out_channels", "planes", "filters", "channels", "width", "ngf", "ndf", "nf"), 16),
    (("output", "out_features", "out_dim", "n_out", "num_outputs", "out_size", "n_actions",
      "num_actions", "action_dim"), 10),
    (("latent", "z_dim", "nz", "code"), 8),
    (("hidden", "d_model", "embed", "emb", "dim", "n_embd", "features", "size", "units", "d_ff",
      "ninp", "nhid", "input"), 32),
]


_HEAD_NAMES = frozenset({"heads", "num_heads", "n_head", "n_heads", "nhead", "nheads", "head",
                         "num_attention_heads", "attn_heads"})


def _value_for(name: str, annotation, scale: int):
    lowered = name.lower()
    if lowered in _HEAD_NAMES:
        return 4
    for keys, value in _NAME_VALUES:
        if any(key in lowered for key in keys):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 16:
                return value * scale
            return value
    if annotation is bool:
        return False
    if annotation is float:
        return 0.1
    if annotation is str:
        return None
    if annotation in (list, tuple) or typing.get_origin(annotation) in (list, tuple, typing.Union):
        return [2, 2]
    return 16 * scale


class _AutoConfig:
    """A stand-in for `config` objects: every attribute read gets a value from its name."""

    def __init__(self, scale: int = 1):
        self._scale = scale

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        value = _value_for(name, None, self._scale)
        setattr(self, name, value)
        return value

    def __getitem__(self, name):
        return getattr(self, name)

    def get(self, name, default=None):
        return getattr(self, name)

    def __contains__(self, name):
        return True


def _annotation(param, namespace):
    annotation = param.annotation
    if isinstance(annotation, str):
        try:
            annotation = eval(annotation, namespace)  # noqa: S307 - the user's own annotation
        except Exception:  # noqa: BLE001
            return inspect.Parameter.empty
    return annotation


def _synthesized(cls, namespace) -> list[tuple[str, list, dict]]:
    """A few constructor argument sets guessed from the signature: defaults, type hints, names."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    required = [p for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not required:
        return []
    blocks = [v for k, v in namespace.items() if isinstance(v, type) and issubclass(v, nn.Module)
              and v is not cls and ("block" in k.lower() or "bottleneck" in k.lower())]
    candidates = []
    for scale in (1, 2):
        args, kwargs = [], {}
        for param in required:
            annotation = _annotation(param, namespace)
            lowered = param.name.lower()
            if isinstance(annotation, type) and annotation is not inspect.Parameter.empty \
                    and annotation not in (int, float, bool, str, list, tuple) \
                    and not issubclass(annotation, nn.Module):
                value = _build_config_object(annotation, scale)
            elif lowered in ("config", "cfg", "args", "conf", "hparams", "opt", "params", "hp", "options"):
                value = _AutoConfig(scale)
            elif lowered == "block" and blocks:
                value = blocks[0]
            elif lowered in ("layers", "blocks", "num_blocks", "depths", "block_nums"):
                value = [1, 1, 1, 1]
            elif lowered.split("_")[0] in ("act", "activation") or lowered.endswith(("act_layer", "activation")):
                value = nn.ReLU
            elif lowered in ("norm", "norm_layer", "norm_fn", "normalization"):
                value = nn.BatchNorm2d if "layer" in lowered else nn.LayerNorm
            else:
                value = _value_for(param.name, annotation, scale)
            if param.kind == param.KEYWORD_ONLY:
                kwargs[param.name] = value
            else:
                args.append(value)
        names = ", ".join(f"{p.name}={_show(v)}" for p, v in zip(required, args + list(kwargs.values())))
        candidates.append((f"synthesized arguments ({names})", args, kwargs))
    return candidates


def _build_config_object(annotation, scale):
    """A config dataclass/class from its defaults, else the name-driven stand-in."""
    try:
        return annotation()
    except Exception:  # noqa: BLE001
        return _AutoConfig(scale)


def _show(value) -> str:
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, _AutoConfig):
        return "<config>"
    return repr(value)


_SEQUENCE_NAMES = ("seq", "len", "num_patches", "num_tokens", "block_size", "context", "n_ctx", "positions")


def _bound(cls, args, kwargs) -> dict:
    """Constructor arguments by parameter name, defaults included: sizes the input may have to match."""
    try:
        bound = inspect.signature(cls).bind_partial(*args, **kwargs)
        bound.apply_defaults()
    except (TypeError, ValueError):
        return {}
    return dict(bound.arguments)


def sequence_hints(arguments: dict) -> list[int]:
    """Sequence lengths the constructor fixed (`MixerBlock(dim, seq_len)` only runs with T == seq_len)."""
    return [v for k, v in arguments.items() if isinstance(v, int) and not isinstance(v, bool)
            and 1 < v <= 4096 and any(n in k.lower() for n in _SEQUENCE_NAMES)]


_IMAGE_NAMES = ("img_size", "image_size", "input_size", "resolution", "img_res", "image_res")


def image_hints(arguments: dict) -> list[int]:
    """Image sides the constructor fixed (`PatchClassifier(image_size=16)`: its head needs exactly 16)."""
    out = []
    for key, value in arguments.items():
        if any(n in key.lower() for n in _IMAGE_NAMES):
            if isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
                value = value[-1]
            if isinstance(value, int) and not isinstance(value, bool) and 4 < value <= 1024:
                out.append(value)
    return out


def construction_candidates(cls, namespace, request):
    """(how, build) pairs in the issue's order: config, no args, literals, factories, synthesis."""
    config = request.get("config") or {}
    if "args" in config or "kwargs" in config:
        args, kwargs = list(config.get("args", [])), dict(config.get("kwargs", {}))
        yield "arguments from config", lambda: cls(*args, **kwargs), _bound(cls, args, kwargs)
    try:
        signature = inspect.signature(cls)
        no_args = all(p.default is not inspect.Parameter.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                      for p in signature.parameters.values())
    except (TypeError, ValueError):
        no_args = True
    if no_args:
        yield "no arguments", lambda: cls(), _bound(cls, [], {})
    for inst in request.get("instantiations", []):
        try:
            args = resolve_refs(inst["args"], namespace)
            kwargs = resolve_refs(inst["kwargs"], namespace)
        except (KeyError, AttributeError):
            continue
        shown = ", ".join([_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items()])
        yield (f"literal {cls.__name__}({shown}) at {inst.get('where', 'line ' + str(inst.get('line')))}",
               lambda a=args, k=kwargs: cls(*a, **k), _bound(cls, args, kwargs))
    for factory in request.get("factories", []):
        function = namespace.get(factory)
        if callable(function):
            yield f"factory {factory}()", function, {}
    for how, args, kwargs in _synthesized(cls, namespace):
        yield how, lambda a=args, k=kwargs: cls(*a, **k), _bound(cls, args, kwargs)


# --- inputs -----------------------------------------------------------------------------------

def _param_dims(model) -> set[int]:
    dims = set()
    for tensor in list(model.parameters()) + list(model.buffers()):
        dims.update(int(d) for d in tensor.shape if d > 1)
    return dims


def _leaf_layers(model, first_layers: list[str]):
    """Submodules in the order forward probably uses them: those it calls first, then registration."""
    seen, ordered = set(), []
    for name in first_layers:
        sub = getattr(model, name, None)
        if isinstance(sub, nn.Module):
            for module in sub.modules():
                if id(module) not in seen:
                    seen.add(id(module))
                    ordered.append(module)
    for module in model.modules():
        if id(module) not in seen:
            seen.add(id(module))
            ordered.append(module)
    return ordered


def _size_hints(model) -> list[int]:
    """Image sides a model declares (`img_size`, `image_size`, ...), e.g. a ViT's patch embedding."""
    hints = []
    for module in model.modules():
        for attr in ("img_size", "image_size", "input_size", "input_resolution", "resolution"):
            value = getattr(module, attr, None)
            if isinstance(value, int) and value > 4:
                hints.append(value)
            elif isinstance(value, (tuple, list)) and value and all(isinstance(v, int) for v in value):
                hints.append(value[-1])
        if hints:
            break
    return hints


def _layer_candidates(layer, hints) -> list[tuple[list[str], dict]]:
    """Input specs for a model whose forward starts at `layer`, with any fixed sizes to try."""
    # Free prime sides first; then larger primes (Inception needs 75 px); then the exact sizes
    # fixed heads insist on.
    spatial_sides = [None] + [(h, h) for h in hints] + [(79, 83)] + [(s, s) for s in COMMON_SIDES]
    if isinstance(layer, (nn.Embedding, nn.EmbeddingBag)):  # a 2-D input to EmbeddingBag is B bags
        return [(["int64[B,T]"], {})]
    if isinstance(layer, nn.Linear):
        return [([f"float32[B,{layer.in_features}]"], {}), ([f"float32[B,T,{layer.in_features}]"], {})]
    if isinstance(layer, nn.Bilinear):
        return [([f"float32[B,{layer.in1_features}]", f"float32[B,{layer.in2_features}]"], {})]
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        return [([f"float32[B,{layer.in_channels},L]"], {})] + [
            ([f"float32[B,{layer.in_channels},{s}]"], {}) for s in (64, 128, 256)]
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        out = []
        for sides in spatial_sides:
            dims = "H,W" if sides is None else f"{sides[0]},{sides[1]}"
            out.append(([f"float32[B,{layer.in_channels},{dims}]"], {}))
        return out
    if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
        return [([f"float32[B,{layer.in_channels},D,H,W]"], {"D": 11, "H": 13, "W": 17}),
                ([f"float32[B,{layer.in_channels},16,32,32]"], {})]
    if isinstance(layer, nn.RNNBase):
        if layer.batch_first:
            return [([f"float32[B,T,{layer.input_size}]"], {})]
        return [([f"float32[T,B,{layer.input_size}]"], {})]
    if isinstance(layer, nn.MultiheadAttention):
        spec = f"float32[B,T,{layer.embed_dim}]" if layer.batch_first else f"float32[T,B,{layer.embed_dim}]"
        return [([spec, spec, spec], {}), ([spec], {})]
    if isinstance(layer, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer, nn.TransformerEncoder,
                          nn.TransformerDecoder, nn.Transformer)):
        attn = next((m for m in layer.modules() if isinstance(m, nn.MultiheadAttention)), None)
        if attn is None:
            return []
        first = getattr(layer, "batch_first", None)
        if first is None:
            first = attn.batch_first
        spec = f"float32[B,T,{attn.embed_dim}]" if first else f"float32[T,B,{attn.embed_dim}]"
        if isinstance(layer, (nn.Transformer, nn.TransformerDecoderLayer, nn.TransformerDecoder)):
            return [([spec, spec], {})]
        return [([spec], {})]
    if isinstance(layer, nn.LayerNorm):
        shape = ",".join(str(d) for d in layer.normalized_shape)
        return [([f"float32[B,T,{shape}]"], {}), ([f"float32[B,{shape}]"], {}),
                ([f"float32[B,H,W,{shape}]"], {"H": 7, "W": 7})]  # channels-last stages (Swin)
    if isinstance(layer, nn.BatchNorm1d):
        return [([f"float32[B,{layer.num_features}]"], {})]
    if isinstance(layer, nn.BatchNorm2d):
        return [([f"float32[B,{layer.num_features},H,W]"], {})]
    return []


def input_candidates(model, request) -> list[tuple[str, InputSpec, dict]]:
    """(where from, specs, fixed sizes) in the issue's order: config, comment, literals, first layer."""
    out = []
    config = request.get("config") or {}
    if "input" in config:
        return [("config", parse_input(config["input"]), {})]
    if request.get("inline_input"):
        return [("inline comment", _parse_list(request["inline_input"]), {})]
    for specs in request.get("literal_inputs", []):
        try:
            out.append(("literal example input in the file", _parse_list(specs), {}))
        except SpecError:
            continue
    hints = list(dict.fromkeys(request.get("image_hints", []) + _size_hints(model)))
    seen = set()
    tried_layers = 0
    for layer in _leaf_layers(model, request.get("first_layers", [])):
        candidates = _layer_candidates(layer, hints)
        if not candidates:
            continue
        for specs, sizes in candidates:
            specs = _pad_to_forward(model, specs)
            variants = [sizes] + [{**sizes, "T": t} for t in request.get("sequence_hints", [])
                                  if any("T" in spec for spec in specs)]
            for variant in variants:
                key = (tuple(specs), tuple(sorted(variant.items())))
                if key not in seen:
                    seen.add(key)
                    out.append((f"first layer {type(layer).__name__}", _parse_list(specs), variant))
        tried_layers += 1
        if tried_layers >= 3:
            break
    # Last resorts, for parameter-free modules and forwards that start with arithmetic.
    for specs, sizes in ((["float32[B,16]"], {}), (["float32[B,T,16]"], {}),
                         (["float32[B,16,H,W]"], {"H": 7, "W": 7})):
        out.append(("generic guess", _parse_list(_pad_to_forward(model, specs)), sizes))
    return out


def _pad_to_forward(model, specs: list[str]) -> list[str]:
    """Repeat the first input when forward requires more positional inputs (`forward(x1, x2)`)."""
    try:
        parameters = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return specs
    required = [p for p in parameters if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return specs + [specs[0]] * (len(required) - len(specs)) if len(required) > len(specs) else specs


def _parse_list(specs: list[str]) -> InputSpec:
    args, kwargs = [], []
    for text in specs:
        name, sep, rest = text.partition("=")
        if sep and name.strip().isidentifier() and "[" not in name:
            kwargs.append((name.strip(), parse_spec(rest)))
        else:
            args.append(parse_spec(text))
    return InputSpec(tuple(args), tuple(kwargs))


_TORCH_DTYPES = {}


def make_tensors(spec: InputSpec, sizes: dict, model, device: str, seed: int = 0):
    """Tensors for the specs: standard normal floats; integers below every embedding's size."""
    if not _TORCH_DTYPES:
        _TORCH_DTYPES.update({name: getattr(torch, name) for name in
                              ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16",
                               "uint8", "bool")})
    embeddings = [m.num_embeddings for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    high = min(embeddings) if embeddings else 2
    # Integer inputs after the first (`forward(tokens, labels)`, `forward(x, y)`) or named like
    # targets are probably class labels: keep them below the classes of the last Linear
    # (cross_entropy checks bounds), and below every embedding size in case they are token ids.
    heads = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    label_high = max(1, min(high, heads[-1])) if heads else min(high, 2)
    generator = torch.Generator().manual_seed(seed)
    made = []

    def one(tensor_spec: TensorSpec, name: str = ""):
        shape = tensor_spec.shape(sizes)
        dtype = _TORCH_DTYPES[tensor_spec.dtype]
        if device == "meta":
            return torch.empty(shape, dtype=dtype, device="meta")
        if tensor_spec.dtype == "bool":
            return torch.randint(0, 2, shape, generator=generator).bool()
        made.append(tensor_spec)
        if tensor_spec.is_int:
            labels = len(made) > 1 or any(w in name.lower() for w in _LABEL_NAMES)
            return torch.randint(0, label_high if labels else high, shape, generator=generator, dtype=dtype)
        return torch.randn(shape, generator=generator).to(dtype)

    return [one(s) for s in spec.args], {k: one(s, k) for k, s in spec.kwargs}


_LABEL_NAMES = ("label", "target", "class", "y_true")


# --- one model --------------------------------------------------------------------------------

class ModelFailure(Exception):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc) or \
            "DefaultCPUAllocator" in str(exc):
        cap = int(os.environ.get("NNLINT_MEMORY_CAP", "0"))
        return f"exceeded the memory cap ({cap / 1024**3:.1f} GiB)" if cap else "ran out of memory"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


_SEND = None  # the response channel, set by main()
_meta_warm = False


def _warm_meta() -> None:
    """The first meta/fake op loads torch's meta registrations (seconds): a one-time cost of the
    worker, not of the file being checked, so the parent is told to extend that file's deadline."""
    global _meta_warm
    if _meta_warm:
        return
    _meta_warm = True
    started = time.monotonic()
    _warm_analyzer(fake=True)
    if _SEND is not None:
        _SEND({"grace": time.monotonic() - started})


def _warm_analyzer(fake: bool) -> None:
    """Run the analyzer once on a tiny model: its first call imports and initializes much of torch
    (fx, autograd, fake tensors), which must not count against the first checked file's timeout."""
    device = "meta" if fake else "cpu"
    try:
        with torch.device(device):
            tiny = nn.Sequential(nn.Linear(3, 2))
        _analyze(tiny, (torch.randn(2, 3, device=device) if not fake else torch.empty(2, 3, device="meta"),),
                 {}, __file__, fake, False)
    except BaseException:  # noqa: BLE001 - warming up is best effort
        pass


def _forward(model, args, kwargs, device="cpu"):
    # On the meta device, factories in forward (`torch.ones(T, T)`) must make meta tensors too,
    # or the input search fails where the real or fake run would not.
    with torch.no_grad(), torch.device(device):
        model(*args, **kwargs)


def _meta_build(build):
    """The model on the meta device (no memory, no init compute), or None when that fails
    (`.item()` in a constructor, say)."""
    try:
        with torch.device("meta"):
            model = build()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001
        return None
    return model if isinstance(model, nn.Module) else None


def _real_build(build):
    torch.manual_seed(0)
    model = build()
    if not isinstance(model, nn.Module):
        raise TypeError(f"built a {type(model).__name__}, not a module")
    return model


_FAILED = object()


def _build_once(build, options, how, attempts):
    """(model, parameters) built for real within the fake-tensor threshold; None when too big (or
    --fake), so the meta path takes over; _FAILED when the constructor raised (recorded)."""
    if options.get("fake"):
        return None
    from nnlint.trace.budget import TooBig, build_within

    try:
        model = build_within(build, options.get("fake_threshold", 50_000_000))
        if not isinstance(model, nn.Module):
            raise TypeError(f"built a {type(model).__name__}, not a module")
        model.eval()  # not chained: some modules override train() without returning self
    except TooBig:
        return None
    except BaseException as exc:  # noqa: BLE001 - SystemExit from user code included
        if isinstance(exc, KeyboardInterrupt):
            raise
        attempts.append((f"{how}: {_describe(exc)}", None))
        return _FAILED
    return model, sum(p.numel() for p in model.parameters())


def _find_input(model, request, options, device, attempts, how, failed=None):
    """The first input candidate whose forward pass runs: (source, spec, sizes, args, kwargs).

    `failed`, a list, receives the first candidate whose tensors were made but whose forward raised.
    """
    dims = _param_dims(model)
    for source, spec, fixed in input_candidates(model, request):
        symbols = [s for t in spec.all_specs() for s in t.symbols() if s not in fixed]
        sizes = dict(fixed)
        sizes.update(choose_sizes(symbols, dims, batch=options.get("batch_size"), spatial=SPATIAL))
        args = None
        try:
            args, kwargs = make_tensors(spec, sizes, model, device)
            _forward(model, args, kwargs, device)
        except BaseException as exc:  # noqa: BLE001 - SystemExit from user code included
            if isinstance(exc, KeyboardInterrupt):
                raise
            attempts.append((f"{how}, input {spec.config_value()} ({source}): {_describe(exc)}", spec))
            if failed is not None and not failed and args is not None:
                failed.append((source, spec, sizes, args, kwargs))
            continue
        return source, spec, sizes, args, kwargs
    return None


def check_model(cls, namespace, request, options, path) -> dict:
    """Build the model and find its input (constructor candidates x input candidates), then analyze.

    Input candidates are tried on the meta-device build first: a failing forward there costs
    nothing, whatever the model's size. Only the winner is built for real (unless it is big
    enough for the fake-tensor path).
    """
    started = time.perf_counter()
    attempts: list[tuple[str, object]] = []
    raised = None  # (how, model, params, failed input) of the first real build no input ran on
    for how, build, arguments in construction_candidates(cls, namespace, request):
        request = {**request, "sequence_hints": sequence_hints(arguments), "image_hints": image_hints(arguments)}
        built_once = _build_once(build, options, how, attempts)  # small models: the only construction
        if built_once is _FAILED:
            continue
        if built_once is not None:
            model, params = built_once
            failed: list = []
            found = _find_input(model, request, options, "cpu", attempts, how, failed)
            if found is None:
                if failed and raised is None:
                    raised = (how, model, params, failed[0])
                continue
            return _analyzed(model, how, found, params, path, False, started)
        try:
            meta_model = _meta_build(build)
        except (KeyboardInterrupt, SystemExit) as exc:
            attempts.append((f"{how}: {_describe(exc)}", None))
            continue
        params = sum(p.numel() for p in meta_model.parameters()) if meta_model is not None else None
        fake = bool(options.get("fake")) or (params or 0) > options.get("fake_threshold", 50_000_000)
        found = None
        if meta_model is not None:
            meta_model.eval()
            found = _find_input(meta_model, request, options, "meta", attempts, how)
            if found is None and fake:
                continue
        elif fake:
            attempts.append((f"{how}: cannot be built on the meta device for the fake-tensor path", None))
            continue
        if fake:
            _warm_meta()
            model = meta_model
        else:
            try:
                model = _real_build(build)
                model.eval()  # not chained: some modules override train() without returning self
            except BaseException as exc:  # noqa: BLE001 - SystemExit from user code included
                if isinstance(exc, KeyboardInterrupt):
                    raise
                attempts.append((f"{how}: {_describe(exc)}", None))
                continue
            params = sum(p.numel() for p in model.parameters())
            if found is not None:  # the meta run chose the input: the same tensors, for real
                found = (*found[:3], *make_tensors(found[1], found[2], model, "cpu"))
            else:  # no meta build, or ops without meta kernels: try the inputs for real
                failed: list = []
                found = _find_input(model, request, options, "cpu", attempts, how, failed)
                if found is None:
                    if failed and raised is None:
                        raised = (how, model, params, failed[0])
                    continue
        return _analyzed(model, how, found, params, path, fake, started)
    if raised is not None:
        # No candidate ran, but a forward that raises can be the hazard itself (cross_entropy
        # given a (B, 1) target): the analyzer reports that as a finding, else it raises.
        how, model, params, found = raised
        try:
            return _analyzed(model, how, found, params, path, False, started)
        except ModelFailure:
            pass
    best_guess = next(((text, spec) for text, spec in attempts if spec is not None), None)
    reasons = [text for text, _ in attempts[-4:]]
    if not attempts:
        reasons = ["built, but no input shape could be inferred"]
    raise ModelFailure("; ".join(reasons), best_guess)


def _analyzed(model, how, found, params, path, fake, started) -> dict:
    source, spec, sizes, args, kwargs = found
    concrete = InputSpec(tuple(TensorSpec(t.dtype, t.shape(sizes)) for t in spec.args),
                         tuple((k, TensorSpec(t.dtype, t.shape(sizes))) for k, t in spec.kwargs))
    result = _analyze(model, args, kwargs, path, fake, any(t.is_int for t in spec.all_specs()))
    result.update({
        "ok": True, "built": how, "input": spec.config_value(), "input_source": source,
        "shapes": concrete.config_value(), "params": params,
        "seconds": time.perf_counter() - started,
    })
    return result


def _analyze(model, args, kwargs, path, fake, int_inputs) -> dict:
    module_name, _, function_name = os.environ.get("NNLINT_TRACE_ANALYZER", ANALYZER).partition(":")
    try:
        analyze = getattr(importlib.import_module(module_name), function_name)
    except ImportError as exc:
        return {"path": "none", "why": f"analyzer unavailable: {exc}", "findings": [], "notes": []}
    try:
        result = analyze(model, tuple(args), dict(kwargs), path, fake=fake, int_inputs=int_inputs)
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ModelFailure(f"tracing failed: {_describe(exc)}", None) from exc
    return dict(result)


def _snippet(name: str, request: dict, cls, best_guess) -> str:
    lines = [f'[tool.nnlint.models."{name}"]']
    required = []
    if cls is not None:
        try:
            required = [p.name for p in inspect.signature(cls).parameters.values()
                        if p.default is inspect.Parameter.empty
                        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        except (TypeError, ValueError):
            required = []
    if required:
        lines.append("kwargs = { " + ", ".join(f"{p} = 0" for p in required) + " }  # the real values")
    spec = best_guess[1] if best_guess else None
    lines.append(f"input = {spec.config_value()}" if spec else 'input = "float32[B,...]"  # the shape forward expects')
    return "\n".join(lines)


# --- the request loop -------------------------------------------------------------------------

def slice_roots(request: dict) -> set[str]:
    """The names the worker looks up in a checked module: models, factories, names their call sites use."""
    roots = set()
    for model in request["models"]:
        roots.add(model["name"])
        roots.update(model.get("factories", []))
        roots.update(_ref_heads([i.get("args") for i in model.get("instantiations", [])]
                                + [i.get("kwargs") for i in model.get("instantiations", [])]))
    return roots


def _ref_heads(value) -> set[str]:
    if isinstance(value, list):
        return set().union(*map(_ref_heads, value)) if value else set()
    if isinstance(value, dict):
        if "$ref" in value:
            return {value["$ref"].split(".")[0]}
        return set().union(*map(_ref_heads, value.values())) if value else set()
    return set()


def check_file(request: dict, send) -> None:
    path = request["path"]
    options = request.get("options", {})
    for directory in request.get("user_dirs", []) + [os.environ.get("NNLINT_CALLER_CWD", "")]:
        if directory:
            _FINDER.user_dirs.add(os.path.realpath(directory))
    for entry in request.get("sys_path", []):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    roots = slice_roots(request)
    forget_sliced_modules()
    try:
        module = load_slice(path, roots)
    except BaseException as exc:  # noqa: BLE001 - SystemExit and ImportError of anything included
        if isinstance(exc, KeyboardInterrupt):
            raise
        if isinstance(exc, ImportError):
            missing = getattr(exc, "name", None)
            why = (f"importing the module failed: package {missing!r} is not importable ({_describe(exc)})"
                   if missing else f"importing the module failed: {_describe(exc)}")
        else:
            why = f"loading the module's definitions failed: {_describe(exc)}"
        for model in request["models"]:
            send({"model": model["name"], "ok": False, "reason": why, "snippet": ""})
        return
    guards.module_loaded()
    namespace = module.__dict__
    for model_request in request["models"]:
        name = model_request["name"]
        cls = namespace.get(name)
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            send({"model": name, "ok": False, "skip": True, "reason": "not an nn.Module once loaded"})
            continue
        if getattr(cls.forward, "__name__", "") == "_forward_unimplemented" or inspect.isabstract(cls):
            send({"model": name, "ok": False, "skip": True, "reason": "defines no forward"})
            continue
        try:
            send({"model": name, **check_model(cls, namespace, model_request, options, path)})
        except ModelFailure as exc:
            reason, best_guess = exc.args
            send({"model": name, "ok": False, "reason": reason,
                  "snippet": _snippet(model_request.get("config_key") or name, model_request, cls, best_guess)})
        except SpecError as exc:
            send({"model": name, "ok": False, "reason": f"invalid input spec: {exc}", "snippet": ""})
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            send({"model": name, "ok": False, "reason": f"internal error: {_describe(exc)}",
                  "snippet": "", "traceback": traceback.format_exc()[-2000:]})


def main(argv: list[str]) -> int:
    global torch, nn
    request_fd, response_fd, memory = int(argv[0]), int(argv[1]), int(argv[2])
    isolation = guards.enter_isolation()  # while single-threaded: dies with nnlint, no network
    sys.dont_write_bytecode = True  # never leave sliced bytecode in the user's __pycache__
    sys.meta_path.insert(0, _FINDER)
    sys.argv = ["nnlint-trace-worker"]
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    responses = os.fdopen(response_fd, "w", encoding="utf-8")

    def send(message: dict) -> None:
        responses.write(json.dumps(message, default=_jsonable) + "\n")
        responses.flush()

    global _SEND
    _SEND = send

    import torch as _torch  # the one expensive import, paid once per worker
    import torch.nn as _nn
    torch, nn = _torch, _nn
    if memory > 0:
        # The cap applies to what the checked code adds on top of torch itself: a CUDA build of
        # torch alone maps more than 4 GiB of address space, and capping it would fail the import.
        os.environ["NNLINT_MEMORY_CAP"] = str(memory)
        limit = _address_space() + memory
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threads = int(os.environ.get("NNLINT_TRACE_THREADS", "1") or 1)
    if threads > 0:  # 1 by default: the models are small and the cores are shared by the workers
        torch.set_num_threads(threads)
    _warm_analyzer(fake=False)
    torch.empty(2, device="meta") + 1  # loads the meta kernels, used for every model's input search
    guards.install()  # from here on: no writes outside the sandbox, no network, processes or signals
    send = _SEND = guards.attributing(send)
    send({"ready": True, "torch": torch.__version__, "isolation": isolation})
    for line in requests:
        request = json.loads(line)
        if request.get("stop"):
            break
        check_file(request, send)
        send({"done": True})
    return 0


def _address_space() -> int:
    """Current virtual size of this process, in bytes."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return repr(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
