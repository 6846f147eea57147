"""Building a model in the worker: constructor candidates from config, literals, factories, synthesis.

Imported only in the worker, after its memory cap is set: importing torch is what the cap excludes.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import torch.nn as nn

from nnlint.trace.building import DefaultsNamespace, config_variants
from nnlint.trace.loading import UNKNOWN_VALUE, resolve_refs

_NAME_VALUES = [  # (substrings of a lower-cased parameter name, value); first match wins
    (("vocab", "num_embeddings", "ntoken", "n_token", "num_tokens", "n_vocab"), 97),
    (("num_classes", "n_classes", "nclass", "num_labels", "n_labels", "classes"), 10),
    (("in_chans", "in_channels", "input_channels", "in_ch", "n_channels", "num_channels", "img_channels",
      "image_channels", "channels_in", "input_nc"), 3),
    (("n_layer", "num_layers", "n_layers", "nlayers", "depth", "num_blocks", "n_blocks"), 2),
    (("dropout", "drop", "p_drop", "attn_drop", "proj_drop", "dp_ratio", "pdrop"), 0.0),
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


_EXACT_VALUES = {"nc": 3, "ncls": 10}  # short names a substring match would misread


def _value_for(name: str, annotation, scale: int):
    lowered = name.lower()
    if lowered in _EXACT_VALUES:
        return _EXACT_VALUES[lowered]
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


_CONFIG_NAMES = ("config", "cfg", "args", "conf", "hparams", "opt", "params", "hp", "options", "model_args")


def _config_bases(cls, namespace, annotation) -> list:
    """Config objects the checked code itself defines for `cls`: its `get_default_config()`, the
    annotated config class, or the module's one `*Config`/`*Args` dataclass/NamedTuple, with defaults."""
    makers = []
    default_config = getattr(cls, "get_default_config", None)
    if callable(default_config):
        makers.append(default_config)
    if isinstance(annotation, type):
        makers.append(annotation)
    else:
        named = [v for k, v in namespace.items() if isinstance(v, type) and k.endswith(("Config", "Args", "Cfg"))
                 and (dataclasses.is_dataclass(v) or hasattr(v, "_fields"))]
        if len(named) == 1:
            makers.append(named[0])
    out = []
    for make in makers:
        try:
            out.append(make())
        except Exception:  # noqa: BLE001 - a config class without defaults
            continue
    return out


def _is_config_class(annotation) -> bool:
    return (isinstance(annotation, type) and annotation is not inspect.Parameter.empty
            and annotation not in (int, float, bool, str, list, tuple, dict) and not issubclass(annotation, nn.Module))


def _param_value(param, namespace, scale: int, blocks: list):
    """A value for one required constructor parameter, from its annotation and its name."""
    annotation = _annotation(param, namespace)
    lowered = param.name.lower()
    if _is_config_class(annotation):
        return _build_config_object(annotation, scale)
    if lowered in _CONFIG_NAMES:
        return _AutoConfig(scale)
    if lowered == "block" and blocks:
        return blocks[0]
    if lowered in ("layers", "blocks", "num_blocks", "depths", "block_nums"):
        return [1, 1, 1, 1]
    if lowered.split("_")[0] in ("act", "activation") or lowered.endswith(("act_layer", "activation")):
        return nn.ReLU
    if lowered in ("norm", "norm_layer", "norm_fn", "normalization"):
        return nn.BatchNorm2d if "layer" in lowered else nn.LayerNorm
    return _value_for(param.name, annotation, scale)


def _required(cls) -> list:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    return [p for p in signature.parameters.values()
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _blocks(cls, namespace) -> list:
    return [v for k, v in namespace.items() if isinstance(v, type) and issubclass(v, nn.Module)
            and v is not cls and ("block" in k.lower() or "bottleneck" in k.lower())]


def _synthesized(cls, namespace) -> list[tuple[str, list, dict]]:
    """A few constructor argument sets guessed from the signature: config objects the code defines
    (defaults, unset sizes filled), then type hints and names at two scales."""
    required = _required(cls)
    if not required:
        return []
    blocks = _blocks(cls, namespace)
    candidates = []

    def arguments(values: dict) -> tuple[list, dict]:
        args, kwargs = [], {}
        for param in required:
            if param.kind == param.KEYWORD_ONLY:
                kwargs[param.name] = values[param.name]
            else:
                args.append(values[param.name])
        return args, kwargs

    for param in required:
        annotation = _annotation(param, namespace)
        if param.name.lower() not in _CONFIG_NAMES and not _is_config_class(annotation):
            continue
        for base in _config_bases(cls, namespace, annotation if _is_config_class(annotation) else None):
            for how, config in config_variants(base, lambda name: _value_for(name, None, 1)):
                values = {p.name: _param_value(p, namespace, 1, blocks) for p in required}
                values[param.name] = config
                candidates.append((f"{type(base).__name__} with {how}", *arguments(values)))
        break
    for scale in (1, 2):
        values = _distinct({p.name: _param_value(p, namespace, scale, blocks) for p in required})
        args, kwargs = arguments(values)
        names = ", ".join(f"{p.name}={_show(values[p.name])}" for p in required)
        candidates.append((f"synthesized arguments ({names})", args, kwargs))
    return candidates


def _distinct(values: dict, given: frozenset = frozenset()) -> dict:
    """Synthesized sizes made pairwise distinct (`height=32, width=32` would hide a swapped view):
    a repeated value >= 8 grows by 8 (keeping divisibility by the usual head counts)."""
    taken = {v for k, v in values.items() if k in given and isinstance(v, int)}
    out = {}
    for name, value in values.items():
        if name not in given and isinstance(value, int) and not isinstance(value, bool) and value >= 8:
            while value in taken:
                value += 8
        if isinstance(value, int) and not isinstance(value, bool):
            taken.add(value)
        out[name] = value
    return out


def fill_call_site(cls, namespace, args: list, kwargs: dict) -> tuple[list, dict]:
    """A call site's arguments with its non-literal values synthesized from their parameter's name,
    parsed-argument namespaces rebuilt from their defaults, and `**vars(args)` cut to the signature."""
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return args, kwargs
    params = list(signature.parameters.values())
    blocks = _blocks(cls, namespace)
    if kwargs.pop("$open", False) and not any(p.kind == p.VAR_KEYWORD for p in params):
        kwargs = {k: v for k, v in kwargs.items() if k in signature.parameters}
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def fill(value, param):
        if value is UNKNOWN_VALUE:
            return _param_value(param, namespace, 1, blocks) if param is not None else 16
        return value

    named = {(positional[i].name if i < len(positional) else f"${i}"): v for i, v in enumerate(args)}
    named.update(kwargs)
    given = frozenset(k for k, v in named.items() if v is not UNKNOWN_VALUE)
    by_name = {**{p.name: p for p in positional}, **signature.parameters}
    named = _distinct({k: fill(v, by_name.get(k)) for k, v in named.items()}, given)
    args = [named[(positional[i].name if i < len(positional) else f"${i}")] for i in range(len(args))]
    return args, {k: named[k] for k in kwargs}


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
    if isinstance(value, DefaultsNamespace):
        return "<parsed arguments>"
    text = repr(value)
    return text if len(text) <= 40 else f"<{type(value).__name__}>"


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
        args, kwargs = fill_call_site(cls, namespace, args, kwargs)
        shown = ", ".join([_show(a) for a in args] + [f"{k}={_show(v)}" for k, v in kwargs.items()])
        yield (f"call site {cls.__name__}({shown}) at {inst.get('where', 'line ' + str(inst.get('line')))}",
               lambda a=args, k=kwargs: cls(*a, **k), _bound(cls, args, kwargs))
    for factory in request.get("factories", []):
        function = namespace.get(factory)
        if callable(function):
            yield f"factory {factory}()", function, {}
    for how, args, kwargs in _synthesized(cls, namespace):
        yield how, lambda a=args, k=kwargs: cls(*a, **k), _bound(cls, args, kwargs)
