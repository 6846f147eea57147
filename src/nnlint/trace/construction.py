"""Building a model in the worker: constructor candidates from config, literals, factories, synthesis.

Imported only in the worker, after its memory cap is set: importing torch is what the cap excludes.
"""

from __future__ import annotations

import inspect
import typing

import torch.nn as nn

from nnlint.trace.loading import resolve_refs

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
