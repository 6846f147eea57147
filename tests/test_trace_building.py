"""How models are built and fed the way the checked code does it: the pure parts (no worker)."""

from __future__ import annotations

import ast
import dataclasses
import os

import pytest

from nnlint.trace import building, missing
from nnlint.trace.callsites import UNKNOWN, resolve_callee
from nnlint.trace.discover import discover
from nnlint.trace.inputs import GUESSED, resized
from nnlint.trace.usage import square_inputs, width_hints

SCRIPT = '''
import argparse
import torch
import model as M
from .nets import Head

def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--rnn-type", default="GRU")
    parser.add_argument("--tied", action="store_true")
    parser.add_argument("--data", required=True)
    args = parser.parse_args()
    ntokens = len(corpus)
    net = M.RNNModel(args.rnn_type, ntokens, args.hidden, tied=args.tied).double()
    other = Head(**vars(args))
    net(torch.randn(batch_size, 12, 64))
'''


def test_call_sites_use_argparse_defaults_and_mark_what_is_not_literal():
    found = discover(SCRIPT)
    assert found.argparse_defaults == {"hidden": 64, "rnn_type": "GRU", "tied": False, "data": None}
    (entry,) = found.instantiations["RNNModel"]
    assert entry["args"] == ["GRU", UNKNOWN, 64] and entry["kwargs"] == {"tied": False}
    assert entry["callee"] == "model.RNNModel"
    (head,) = found.instantiations["Head"]
    assert head["kwargs"]["$open"] is True and head["kwargs"]["hidden"] == 64 and head["callee"] == ".nets.Head"
    assert found.dtypes == {"RNNModel": "float64"}
    # The batch size of an example tensor may be anything: it is B.
    assert found.input_shapes["RNNModel"] == [["float32[B,12,64]"]]


def test_callee_resolved_through_imports_never_by_bare_name(tmp_path):
    caller = str(tmp_path / "proj" / "train.py")
    model = str(tmp_path / "proj" / "model.py")
    nets = str(tmp_path / "proj" / "nets.py")
    elsewhere = str(tmp_path / "other" / "model.py")
    defined = {"RNNModel": {model, elsewhere}, "Head": {nets}, "Local": {caller}}
    assert resolve_callee("model.RNNModel", caller, defined, {"Local"}) == model
    assert resolve_callee(".nets.Head", caller, defined, {"Local"}) == nets
    assert resolve_callee("Local", caller, defined, {"Local"}) == caller
    assert resolve_callee("RNNModel", caller, defined, {"Local"}) is None  # not imported: unknown
    assert resolve_callee("torch.nn.Linear", caller, defined, set()) is None


@dataclasses.dataclass
class GPTConfig:
    model_type: str = "gpt"
    n_layer: int | None = None
    n_embd: int | None = None
    vocab_size: int = -1
    dropout: float = 0.1


def test_config_variants_fill_unset_sizes_then_drop_presets():
    names = {"n_layer": 2, "n_embd": 32, "vocab_size": 97}
    variants = list(building.config_variants(GPTConfig(), lambda name: names.get(name, 16)))
    assert [how for how, _ in variants] == [
        "its defaults", "its defaults, unset sizes filled", "its defaults, unset sizes filled, model_type=None"]
    filled = variants[1][1]
    assert (filled.n_layer, filled.n_embd, filled.vocab_size, filled.dropout) == (2, 32, 97, 0.1)
    assert variants[2][1].model_type is None and variants[2][1].n_layer == 2


def test_parse_args_returns_every_default_and_names_the_rest():
    import argparse

    saved = argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args
    try:
        building.install_argparse_defaults(lambda name: 7)
        parser = argparse.ArgumentParser()
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--nz", type=int, default="100")
        parser.add_argument("--mode", choices=["a", "b"])
        opt = parser.parse_args()
        assert (opt.dataset, opt.nz, opt.mode, opt.n_embed) == (None, 100, "a", 7)
    finally:
        argparse.ArgumentParser.parse_args, argparse.ArgumentParser.parse_known_args = saved


def test_missing_package_blocks_only_what_touches_it():
    source = ("import os\nimport nnlint_absent_pkg as absent\nfrom nnlint_absent_pkg.sub import thing\n"
              "class Uses:\n    def run(self):\n        return absent.layer(3)\n"
              "class Base(absent.Base):\n    pass\nclass Plain:\n    pass\n")
    namespace: dict = {}
    missing.reset()
    failures = missing.execute(ast.parse(source), "<fixture>", namespace)
    assert namespace["os"] is os and "Plain" in namespace and "Uses" in namespace
    assert missing.blocking(failures["Base"]) == ("nnlint_absent_pkg", 2)
    with pytest.raises(missing.MissingPackage) as raised:
        namespace["Uses"]().run()
    assert (raised.value.package, raised.value.line) == ("nnlint_absent_pkg", 2)
    with pytest.raises(missing.MissingPackage):
        3 * namespace["thing"]
    assert missing.touched == {"nnlint_absent_pkg": 2}


def test_second_input_sizes_are_independent_and_distinct():
    first = {"B": 5, "H": 79, "W": 83, GUESSED: 1, "$fixed": ("H", "W")}
    second = resized(first, {"B"}, {10, 320})
    assert second["B"] != 5 and second["H"] not in (79, 83) and second["W"] not in (79, 83)
    assert len({second["B"], second["H"], second["W"]}) == 3
    declared = resized({"B": 5, "T": 7, "$fixed": ()}, {"B", "T"}, set())
    assert declared["B"] not in (5, 7) and declared["T"] not in (5, 7) and declared["B"] != declared["T"]
    kept = resized({"B": 5, "H": 16, "W": 16, "$fixed": ("H", "W")}, {"B"}, set())
    assert (kept["H"], kept["W"]) == (16, 16)  # declared sides (an image_size) stay


def test_synthesized_sizes_are_pairwise_distinct():
    pytest.importorskip("torch")  # construction runs in the worker, where torch is imported
    from nnlint.trace.construction import _distinct

    assert _distinct({"height": 32, "width": 32, "depth": 2, "flag": True}) == {
        "height": 32, "width": 40, "depth": 2, "flag": True}
    # values the code itself gives are kept; only synthesized ones move
    assert _distinct({"a": 64, "b": 64}, frozenset({"a", "b"})) == {"a": 64, "b": 64}


def test_free_sizes_differ_from_the_numbers_of_their_own_spec():
    pytest.importorskip("torch")  # the worker's input search imports torch
    from nnlint.trace.input_search import sizes_for
    from nnlint.trace.inputs import parse_input

    sizes = sizes_for(parse_input("float32[T,B,5]"), {}, set(), None)
    assert sizes["B"] != 5 and sizes["T"] != 5 and sizes["B"] != sizes["T"]


def test_widths_and_graph_inputs():
    assert width_hints({"in_features": 64, "n_heads": 4, "num_layers": 2, "seq_len": 49, "d_model": 64,
                        "hidden_dim": 40, "bias": True}) == [64, 40]
    assert square_inputs([(7, 32), (7, 7)]) and not square_inputs([(7, 32), (7, 32)])


def test_a_known_dataset_gives_the_input_of_the_model_it_feeds():
    source = ("from torchvision import datasets\nimport torch\n"
              "def main(Net):\n    data = datasets.MNIST('data', download=True)\n    model = Net()\n"
              "    for images, labels in data:\n        model(images)\n")
    assert discover(source.replace("def main(Net)", "from nets import Net\ndef main()")).input_shapes == {
        "Net": [["float32[B,1,28,28]"]]}
    two = source.replace("    for images", "    other = datasets.ImageFolder('x')\n    for images")
    assert discover(two.replace("def main(Net)", "from nets import Net\ndef main()")).input_shapes == {}


def test_the_slice_keeps_the_parser_setup_a_kept_global_needs():
    from nnlint.trace.slicing import slice_module

    source = ("import argparse\nparser = argparse.ArgumentParser()\nparser.add_argument('--nz', type=int, default=100)\n"
              "opt = parser.parse_args()\nnz = int(opt.nz)\nprint(opt)\nclass G:\n    width = nz\n")
    kept = ast.unparse(slice_module(source, "g.py").tree)
    assert "parser.add_argument('--nz'" in kept and "nz = int(opt.nz)" in kept and "print(opt)" not in kept


def test_call_sites_on_one_sample_mark_the_model_unbatched():
    source = "from nets import Net\nmodel = Net()\nx = load()\n"
    cases = (("model(x[0])", ["Net"]), ("model(x[i])", ["Net"]), ("model(x)", []),
             ("model(x[None])", []), ("model(x[0:1])", []), ("model(x[0].unsqueeze(0))", []))
    for call, unbatched in cases:
        assert discover(source + call + "\n").unbatched == unbatched, call


SHAPE_COMMENTS = '''
from torch import nn

class Above(nn.Module):
    # x: [batch, seq_len]
    def forward(self, x):
        return x

class Doc(nn.Module):
    def forward(self, x, mask):
        """x: Tensor of shape (batch, 3, 32, 32)

        mask (torch.BoolTensor): shape (bs, 32, 32,) or None
        """
        return x

class Body(nn.Module):
    def forward(self, input):
        # input: (N, C, H, W)
        x = self.conv(input)  # x: (N, 64, H, W)
        return x

class Named(nn.Module):
    def forward(self, x):
        """Shape:
            - Input: (B, T, d_model)
        """
        return x

class Garbled(nn.Module):
    def forward(self, x, y):
        # x: (B, 3, H/2, W/2); x (Tensor): a picture; x: [3, 32, 32]; y: (B, 4)
        # x: (batch, ???
        return x

class Partial(nn.Module):
    def forward(self, x, y):
        # y: (B, 4)
        return x
'''


def test_shape_comments_on_forward_inputs_become_specs():
    found = {c.name: c.comment_input for c in discover(SHAPE_COMMENTS).classes}
    assert found == {
        "Above": ["float32[B,T]"],
        "Doc": ["float32[B,3,32,32]", "float32[B,32,32]"],
        "Body": ["float32[B,C,H,W]"],  # the first comment on `input`: later ones describe other tensors
        "Named": ["float32[B,T,d_model]"],  # `Input` is forward's first input; other names stay free sizes
        "Garbled": [],  # no shape with a named batch for x, the first input
        "Partial": [],
    }
