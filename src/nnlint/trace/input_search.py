"""Finding a model's input in the worker: spec candidates from config, comments, literals and first layers,
and the tensors made from a spec.

Imported only in the worker, after its memory cap is set.
"""

from __future__ import annotations

import inspect
import math

import torch
import torch.nn as nn

from nnlint.trace.inputs import GUESSED, InputSpec, SpecError, TensorSpec, choose_sizes, parse_input, parse_spec
from nnlint.trace.usage import hidden_method, width_specs

SPATIAL = ("H", "W", "D", "L")
# Fixed image sizes that many CNN heads (a Linear after a flatten) or ViTs insist on.
COMMON_SIDES = (32, 28, 64, 224)
# In sizes: the input is one flat list of ids that `offsets` cut into B bags: its first dimension
# is no batch, so batch findings are dropped.
FLAT = "$flat"


def param_dims(model) -> set[int]:
    """Every parameter and buffer dimension above 1: free sizes must differ from all of them."""
    dims: set[int] = set()
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


def _layer_candidates(layer, hints, takes_offsets: bool = False) -> list[tuple[list[str], dict]]:
    """Input specs for a model whose forward starts at `layer`, with any fixed sizes to try."""
    # Free prime sides first; then larger primes (Inception needs 75 px); then the exact sizes
    # fixed heads insist on.
    spatial_sides = [None] + [(h, h) for h in hints] + [(79, 83)] + [(s, s) for s in COMMON_SIDES]
    if isinstance(layer, nn.Embedding):  # token sequences, then one id per sample (recommenders)
        return [(["int64[B,T]"], {}), (["int64[B]"], {})]
    if isinstance(layer, nn.EmbeddingBag):  # a 2-D input is B bags; a 1-D one needs the bags' offsets
        flat = [(["int64[L]", "offsets=int64[B]"], {FLAT: 1})] if takes_offsets else []
        return [(["int64[B,T]"], {})] + flat
    if isinstance(layer, nn.Linear):
        return [([f"float32[B,{layer.in_features}]"], {}), ([f"float32[B,T,{layer.in_features}]"], {})]
    if isinstance(layer, nn.Bilinear):
        return [([f"float32[B,{layer.in1_features}]", f"float32[B,{layer.in2_features}]"], {})]
    if isinstance(layer, (nn.Conv1d, nn.ConvTranspose1d)):
        return [([f"float32[B,{layer.in_channels},L]"], {})] + [
            ([f"float32[B,{layer.in_channels},{s}]"], {}) for s in (64, 128, 256)]
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        out: list = []
        declared = {(h, h) for h in hints}
        for sides in spatial_sides:
            fixed = {} if sides is None else {"H": sides[0], "W": sides[1]}
            if sides is not None and sides not in declared:
                fixed[GUESSED] = 1  # a blind guess: a finding must survive another size
            out.append(([f"float32[B,{layer.in_channels},H,W]"], fixed))
        return out
    if isinstance(layer, (nn.Conv3d, nn.ConvTranspose3d)):
        return [([f"float32[B,{layer.in_channels},D,H,W]"], {"D": 11, "H": 13, "W": 17}),
                ([f"float32[B,{layer.in_channels},16,32,32]"], {})]
    if isinstance(layer, nn.RNNCellBase):
        return [([f"float32[B,{layer.input_size}]"], {})]
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
    """(where from, specs, fixed sizes) in the issue's order: config, inline comment, literals, first
    layer, constructor widths, shape comments, generic guesses."""
    out: list = []
    config = request.get("config") or {}
    if "input" in config:
        return [("config", parse_input(config["input"]), {})]
    if request.get("inline_input"):
        return [("inline comment", parse_list(request["inline_input"]), {})]
    for specs in request.get("literal_inputs", []):
        try:
            out.append(("literal example input in the file", parse_list(specs), {}))
        except SpecError:
            continue
    hints = list(dict.fromkeys(request.get("image_hints", []) + _size_hints(model)))
    takes_offsets = "offsets" in (_forward_parameters(model) or {})
    seen = set()
    tried_layers = 0
    first_layer = None
    for layer in _leaf_layers(model, request.get("first_layers", [])):
        candidates = _layer_candidates(layer, hints, takes_offsets)
        if not candidates:
            continue
        first_layer = first_layer or layer
        for specs, sizes in candidates:
            specs = _pad_to_forward(model, specs)
            variants = [sizes] + [{**sizes, "T": t} for t in request.get("sequence_hints", [])
                                  if any("T" in spec for spec in specs)]
            for variant in variants:
                key = (tuple(specs), tuple(sorted(variant.items())))
                if key not in seen:
                    seen.add(key)
                    out.append((f"first layer {type(layer).__name__}", parse_list(specs), variant))
        tried_layers += 1
        if tried_layers >= 3:
            break
    # Constructor integers as widths (`RMSNorm(dim)`, graph layers), and the hidden state of
    # recurrent models whose forward takes one from `init_hidden`.
    required = _required_inputs(model)
    for specs in width_specs(request.get("width_hints", []), required):
        out.append(("constructor width", parse_list(specs), {}))
    # Recurrent models whose forward takes the state as its last input: from `init_hidden` when the
    # model has one, else zeros shaped for its first RNN (`model(x, (h0, c0))` built by the caller).
    method = hidden_method(model)
    state = f"{method}()" if method else "a zero state" if _first_rnn(model) is not None else None
    if state and required >= 2:
        for source, spec, sizes in list(out):
            if len(spec.args) >= required and not spec.kwargs:
                trimmed = InputSpec(spec.args[:required - 1])
                for symbol in reversed(spec.args[0].symbols()):
                    out.insert(0, (source + f" with {state}", trimmed, {**sizes, "$hidden": symbol}))
    if request.get("comment_input"):
        out.append(_commented(model, request["comment_input"], first_layer))
    # Last resorts, for parameter-free modules and forwards that start with arithmetic: every size a guess.
    for specs, sizes in ((["float32[B,C]"], {"C": 16, GUESSED: 1}), (["float32[B,T,C]"], {"C": 16, GUESSED: 1}),
                         (["float32[B,C,H,W]"], {"C": 16, "H": 7, "W": 7, GUESSED: 1})):
        out.append(("generic guess", parse_list(_pad_to_forward(model, specs)), sizes))
    return out


COMMENT = "shape comment"


def _commented(model, specs: list[str], first_layer) -> tuple[str, InputSpec, dict]:
    """The shapes the code's comments give forward's inputs: token ids for an embedding, and a guess
    (a finding must reproduce on other sizes) unless every size but the batch is a number."""
    if isinstance(first_layer, (nn.Embedding, nn.EmbeddingBag)):
        specs = [spec.replace("float32[", "int64[", 1) for spec in specs]
    spec = parse_list(_pad_to_forward(model, specs))
    guessed = any(s != "B" for t in spec.all_specs() for s in t.symbols())
    return COMMENT, spec, {GUESSED: 1} if guessed else {}


def _forward_parameters(model) -> dict[str, inspect.Parameter] | None:
    try:
        return dict(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return None


def _required(parameters: dict[str, inspect.Parameter]) -> int:
    return len([p for p in parameters.values() if p.default is inspect.Parameter.empty
                and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)])


def _first_rnn(model):
    return next((m for m in model.modules() if isinstance(m, nn.RNNBase)), None)


def _zero_state(model, batch: int, dtype, device: str):
    """The initial state of the model's first RNN for `batch` sequences: (layers x directions, B, hidden),
    a pair (h0, c0) for an LSTM."""
    rnn = _first_rnn(model)
    assert rnn is not None, "a zero state is only tried for models with an RNN"
    layers = rnn.num_layers * (2 if rnn.bidirectional else 1)
    hidden = torch.zeros(layers, batch, getattr(rnn, "proj_size", 0) or rnn.hidden_size, dtype=dtype, device=device)
    if isinstance(rnn, nn.LSTM):
        return hidden, torch.zeros(layers, batch, rnn.hidden_size, dtype=dtype, device=device)
    return hidden


def _required_inputs(model) -> int:
    parameters = _forward_parameters(model)
    return 1 if parameters is None else _required(parameters)


def _pad_to_forward(model, specs: list[str]) -> list[str]:
    """Repeat the first input when forward requires more positional inputs (`forward(user, item)`):
    sibling inputs get the same shape and dtype (index inputs: all below every embedding's size)."""
    required = _required(_forward_parameters(model) or {})
    return specs + [specs[0]] * (required - len(specs)) if required > len(specs) else specs


def parse_list(specs: list[str]) -> InputSpec:
    args, kwargs = [], []
    for text in specs:
        name, sep, rest = text.partition("=")
        if sep and name.strip().isidentifier() and "[" not in name:
            kwargs.append((name.strip(), parse_spec(rest)))
        else:
            args.append(parse_spec(text))
    return InputSpec(tuple(args), tuple(kwargs))


_TORCH_DTYPES = {name: getattr(torch, name) for name in
                 ("float32", "float64", "float16", "bfloat16", "int64", "int32", "int16", "uint8", "bool")}
_LABEL_NAMES = ("label", "target", "class", "y_true")


FIXED = "$fixed"  # in sizes: the symbols the input candidate fixed (the others were chosen freely)


def sizes_for(spec: InputSpec, fixed: dict, dims: set[int], batch: int | None) -> dict:
    """Values for the spec's free sizes: `fixed` ones as given, the others chosen to differ from `dims`
    and from the spec's own numbers."""
    symbols = [s for t in spec.all_specs() for s in t.symbols() if s not in fixed]
    sizes = dict(fixed)
    sizes.update(choose_sizes(symbols, dims | spec_numbers(spec), batch=batch, spatial=SPATIAL))
    sizes[FIXED] = tuple(k for k in fixed if not k.startswith("$"))
    return sizes


def spec_numbers(spec: InputSpec) -> set[int]:
    return {d for t in spec.all_specs() for d in t.dims if isinstance(d, int)}


def make_tensors(spec: InputSpec, sizes: dict, model, device: str, seed: int = 0):
    """Tensors for the specs: standard normal floats; integers below every embedding's size."""
    embeddings = [m.num_embeddings for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    high = min(embeddings) if embeddings else 2
    # Integer inputs after the first (`forward(tokens, labels)`, `forward(x, y)`) or named like
    # targets are probably class labels: keep them below the classes of the last Linear
    # (cross_entropy checks bounds), and below every embedding size in case they are token ids.
    heads = [m.out_features for m in model.modules() if isinstance(m, nn.Linear)]
    label_high = max(1, min(high, heads[-1])) if heads else min(high, 2)
    generator = torch.Generator().manual_seed(seed)
    made = []
    # A model cast with `.double()` / `.half()` is fed in its own float dtype.
    model_float = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)

    def one(tensor_spec: TensorSpec, name: str = ""):
        shape = tensor_spec.shape(sizes)
        dtype = _TORCH_DTYPES[tensor_spec.dtype]
        if dtype == torch.float32:
            dtype = model_float
        if device == "meta":
            return torch.empty(shape, dtype=dtype, device="meta")
        if tensor_spec.dtype == "bool":
            return torch.randint(0, 2, shape, generator=generator).bool()
        made.append(tensor_spec)
        if name == "offsets" and spec.args:  # where each bag starts in the flat ids: from 0, ascending
            starts = torch.randint(0, math.prod(spec.args[0].shape(sizes)), shape, generator=generator).sort().values
            starts[:1] = 0
            return starts.to(dtype)
        if tensor_spec.is_int:
            labels = len(made) > 1 or any(w in name.lower() for w in _LABEL_NAMES)
            return torch.randint(0, label_high if labels else high, shape, generator=generator, dtype=dtype)
        return torch.randn(shape, generator=generator).to(dtype)

    args = [one(s) for s in spec.args]
    if "$hidden" in sizes:  # the state the code gets from `model.init_hidden(batch)`, or zeros
        method = hidden_method(model)
        batch = sizes[sizes["$hidden"]]
        args.append(getattr(model, method)(batch) if method else _zero_state(model, batch, model_float, device))
    return args, {k: one(s, k) for k, s in spec.kwargs}
