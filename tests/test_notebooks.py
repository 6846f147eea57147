"""Jupyter notebooks: joined cells, masked IPython syntax, positions in every format, noqa, bad notebooks,
fixes written back into the JSON, tracing of models defined in cells."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FIXTURES, expected_findings

from nnlint.engine import FileTask, lint_file
from nnlint.notebook import NotebookError, apply_edits, load
from nnlint.registry import registry

STATIC_CODES = frozenset(code for code, rule in registry().items() if rule.layer in ("static", "tool"))
BUGGY = FIXTURES / "notebooks" / "buggy_tabular.ipynb"
CLEAN = FIXTURES / "notebooks" / "clean_tabular.ipynb"


def notebook(*cells: str | tuple[str, str], indent: int | None = 1, as_string: bool = False, **extra) -> str:
    """nbformat 4 JSON as Jupyter writes it. A cell is its code, or (cell_type, text)."""
    out = []
    for index, cell in enumerate(cells):
        kind, text = cell if isinstance(cell, tuple) else ("code", cell)
        source = text if as_string else text.splitlines(keepends=True)
        entry = {"cell_type": kind, "metadata": {"tags": [f"t{index}"]}, "source": source}
        if kind == "code":
            entry |= {"execution_count": index, "outputs": [
                {"output_type": "stream", "name": "stdout", "text": [f"output of cell {index}\n"]}]}
        out.append(entry)
    document = {"cells": out, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(document | extra, indent=indent, ensure_ascii=False) + "\n"


def check(path: Path, codes=STATIC_CODES):
    return lint_file(FileTask(str(path), path.name, codes))


def found(path: Path) -> list[tuple[int | None, int, str]]:
    return [(d.cell, d.line, d.code) for d in check(path).diagnostics]


SEEDLESS = "import torch\nmodel = torch.nn.Linear(2, 1)\nopt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
TRAIN = "for x in data:\n    opt.zero_grad()\n    model(x).sum().backward()\n    opt.step()\n"


# --- joining and masking ------------------------------------------------------------------------


def test_cells_join_in_order_and_positions_map_back():
    book = load(notebook(("markdown", "# title"), "import torch\n", "x = 1\ny = 2", ("raw", "raw"), "z = 3\n"))
    assert book.source == "import torch\nx = 1\ny = 2\nz = 3\n"
    assert [c.number for c in book.cells] == [2, 3, 5]  # markdown and raw cells count, as a reader sees them
    assert book.locate(3, 5) == (3, 2, 5)
    assert book.locate(4, 1) == (5, 1, 1)
    assert book.line_text(3) == "y = 2"


@pytest.mark.parametrize("code, python", [
    ("%matplotlib inline\nimport torch\n", "pass\nimport torch\n"),
    ("!pip install timm\nx = 1\n", "pass\nx = 1\n"),
    ("files = !ls\nt = %timeit -o f()\n", "pass\npass\n"),
    ("torch.nn.Linear?\n??torch\nx??\n", "pass\npass\npass\n"),
    ("for i in range(3):\n    !echo {i}\n", "for i in range(3):\n    pass\n"),
    ("%%time\nx = f()\n", "pass\nx = f()\n"),  # the body of %%time is Python
    ("\n%%bash\necho 'x = f('\n", "\n\n\n"),  # the body of %%bash is not
    ("%%writefile train.py\nimport torch\n", "\n\n"),
    # not magics: a line inside brackets or a string that happens to start with % or !
    ("msg = ('%d items'\n       % n)\n", "msg = ('%d items'\n       % n)\n"),
    ('doc = """\n%not a magic\n!nor this\n"""\n', 'doc = """\n%not a magic\n!nor this\n"""\n'),
    ("ok = (a\n      != b)\n", "ok = (a\n      != b)\n"),
])
def test_ipython_syntax_is_masked_in_place(code, python):
    book = load(notebook(code))
    assert book.source == python
    assert book.broken == []


def test_magic_lines_are_not_errors_and_findings_keep_cell_positions(tmp_path):
    path = tmp_path / "train.ipynb"
    path.write_text(notebook("%load_ext autoreload\n%autoreload 2\n" + SEEDLESS, "!nvidia-smi\n" + TRAIN))
    assert found(path) == [(2, 4, "NNL201")]


# --- the realistic fixtures ------------------------------------------------------------------------


def _cell_markers(path: Path) -> list[tuple[int, int, str]]:
    book = load(path.read_text(encoding="utf-8"))
    joined = path.with_suffix(".joined")
    try:
        joined.write_text(book.source, encoding="utf-8")
        return sorted((*book.locate(line, 1)[:2], code) for line, code in expected_findings(joined, STATIC_CODES))
    finally:
        joined.unlink()


def test_buggy_notebook_fixture_findings_match_markers(tmp_path):
    markers = _cell_markers(BUGGY)
    assert len(markers) == 5
    assert sorted(found(BUGGY)) == markers


def test_clean_notebook_fixture_has_no_findings():
    assert found(CLEAN) == []


# --- formats -----------------------------------------------------------------------------------------


@pytest.fixture
def buggy_copy(project):
    return project("nb.ipynb", BUGGY.read_text(encoding="utf-8"))


def test_concise_and_text_name_the_cell(cli, buggy_copy):
    concise = cli("check", "--static-only", "--format", "concise", "nb.ipynb").stdout
    assert "nb.ipynb:cell 6:4:1: NNL101 [error]" in concise
    text = cli("check", "--static-only", "--format", "text", "nb.ipynb").stdout
    assert "  cell 6:4:1 error    NNL101" in text
    assert "       4 | np.random.shuffle(y)  # expect: NNL101" in text  # the cell's own line under it


def test_json_adds_cell_and_keeps_the_other_keys(cli, buggy_copy, project):
    project("train.py", "import numpy as np\nnp.random.shuffle(X)\nnp.random.shuffle(y)\n")
    report = json.loads(cli("check", "--static-only", "--format", "json", ".").stdout)
    from_notebook = next(d for d in report if d["path"] == "nb.ipynb" and d["code"] == "NNL101")
    from_script = next(d for d in report if d["path"] == "train.py")
    assert set(from_notebook) == set(from_script) | {"cell"}
    assert (from_notebook["cell"], from_notebook["line"], from_notebook["column"]) == (6, 4, 1)
    assert "cell" not in from_script


def test_sarif_and_github_point_at_the_line_of_the_ipynb_file(cli, buggy_copy):
    raw_lines = buggy_copy.read_text(encoding="utf-8").split("\n")
    log = json.loads(cli("check", "--static-only", "--format", "sarif", "nb.ipynb").stdout)
    results = log["runs"][0]["results"]
    assert len(results) == 5
    for result in results:
        region = result["locations"][0]["physicalLocation"]["region"]
        raw = raw_lines[region["startLine"] - 1]
        # The region starts on the JSON string holding the flagged source line, at the flagged text.
        cell_line = load(buggy_copy.read_text(encoding="utf-8")).cells
        assert raw.lstrip().startswith('"') and result["properties"]["cell"] >= 1, raw
        assert cell_line
    shuffle = next(r for r in results if r["ruleId"] == "NNL101")["locations"][0]["physicalLocation"]["region"]
    raw = raw_lines[shuffle["startLine"] - 1]
    assert raw[shuffle["startColumn"] - 1:shuffle["endColumn"] - 1] == "np.random.shuffle(y)"
    github = cli("check", "--static-only", "--format", "github", "nb.ipynb").stdout
    line = next(g for g in github.splitlines() if "NNL101" in g)
    assert f"line={shuffle['startLine']},col={shuffle['startColumn']}" in line and "(cell 6%2C line 4)" in line


def test_sarif_of_a_notebook_validates_against_the_schema(cli, buggy_copy, sarif_schema):
    import jsonschema

    log = json.loads(cli("check", "--static-only", "--format", "sarif", "nb.ipynb").stdout)
    jsonschema.validate(log, sarif_schema)


def test_escaped_characters_keep_sarif_columns_exact(cli, project):
    # Written with \u escapes and \t: raw columns differ from the cell's columns.
    text = notebook('s = "\u00e9\u00e9\u00e9"\tif 1 else 0\nimport numpy as np\nnp.random.shuffle(X); '
                    'np.random.shuffle(y)\n')
    project("nb.ipynb", text.replace("\u00e9", "\\u00e9"))
    log = json.loads(cli("check", "--static-only", "--format", "sarif", "nb.ipynb").stdout)
    region = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]
    raw = (project.root / "nb.ipynb").read_text().split("\n")[region["startLine"] - 1]
    assert raw[region["startColumn"] - 1:region["endColumn"] - 1] == "np.random.shuffle(y)"


# --- noqa, broken notebooks --------------------------------------------------------------------------


def test_noqa_works_per_line_of_a_cell(tmp_path):
    path = tmp_path / "nb.ipynb"
    train = TRAIN.replace(".backward()\n", ".backward()  # noqa: NNL201\n")
    path.write_text(notebook(SEEDLESS, train))
    result = check(path)
    assert result.diagnostics == [] and [(d.cell, d.line, d.code) for d in result.suppressed] == [(2, 3, "NNL201")]


@pytest.mark.parametrize("text, message, line", [
    ('{"cells": [\n  {"cell_type": "code", "source": ["x = 1\\n"],}\n]}', "invalid JSON", 2),
    ("[]", "top level is not a JSON object", 1),
    ('{"nbformat": 4}', "no 'cells' list", 1),
])
def test_invalid_notebook_is_nnl002_and_other_files_go_on(cli, project, text, message, line):
    project("broken.ipynb", text)
    project("train.py", "import numpy as np\nnp.random.shuffle(X)\nnp.random.shuffle(y)\n")
    result = cli("check", "--static-only", "--format", "json", ".")
    report = json.loads(result.stdout)
    broken = [d for d in report if d["path"] == "broken.ipynb"]
    assert [(d["code"], d["line"]) for d in broken] == [("NNL002", line)] and message in broken[0]["message"]
    assert any(d["path"] == "train.py" and d["code"] == "NNL101" for d in report)
    assert result.exit_code == 1


def test_not_utf8_is_nnl002(tmp_path):
    path = tmp_path / "nb.ipynb"
    path.write_bytes(notebook("x = 'caf\u00e9'\n").encode("latin-1"))
    [diagnostic] = check(path).diagnostics
    assert diagnostic.code == "NNL002" and "not UTF-8" in diagnostic.message


def test_a_cell_that_does_not_parse_is_nnl001_and_the_other_cells_are_checked(tmp_path):
    path = tmp_path / "exercise.ipynb"
    path.write_text(notebook(SEEDLESS, "criterion = # TODO: define the loss\n", TRAIN))
    assert found(path) == [(2, 1, "NNL001"), (3, 3, "NNL201")]


def test_nbformat3_worksheets_and_string_sources(tmp_path):
    path = tmp_path / "old.ipynb"
    cells = [{"cell_type": "code", "input": SEEDLESS, "outputs": []},
             {"cell_type": "code", "input": TRAIN.splitlines(keepends=True), "outputs": []}]
    path.write_text(json.dumps({"worksheets": [{"cells": cells}], "nbformat": 3}))
    assert found(path) == [(2, 3, "NNL201")]


def test_discovery_finds_notebooks_but_not_checkpoints(cli, project):
    project("nb.ipynb", notebook(SEEDLESS + TRAIN))
    project(".ipynb_checkpoints/nb-checkpoint.ipynb", notebook(SEEDLESS + TRAIN))
    report = json.loads(cli("check", "--static-only", "--format", "json", ".").stdout)
    assert [(d["path"], d["cell"]) for d in report] == [("nb.ipynb", 1)]


# --- writing edits back --------------------------------------------------------------------------------


@dataclass
class Edit:  # the shape of diagnostics.Edit: 1-based, end exclusive, joined-module coordinates
    line: int
    column: int
    end_line: int
    end_column: int
    content: str


def _without_sources(text: str) -> dict:
    document = json.loads(text)
    for cell in document["cells"]:
        cell.pop("source")
    return document


@pytest.mark.parametrize("indent, as_string", [(1, False), (2, False), (None, False), (1, True)])
def test_edits_are_written_into_the_cell_sources_only(indent, as_string):
    text = notebook(("markdown", "# Title \u2014 caf\u00e9"), "%matplotlib inline\nimport torch\n",
                    "x = torch.randn(3)\ny = x.softmax()\n", indent=indent, as_string=as_string)
    edits = [Edit(4, 15, 4, 15, "dim=-1"), Edit(2, 1, 2, 1, "import numpy as np\n")]
    new = apply_edits(text, edits)
    assert load(new).source == "pass\nimport numpy as np\nimport torch\nx = torch.randn(3)\ny = x.softmax(dim=-1)\n"
    assert _without_sources(new) == _without_sources(text)
    # Everything outside the two changed `source` values is byte for byte the same.
    old_cells, new_cells = load(text).cells, load(new).cells
    assert text[:old_cells[0].span[0]] == new[:new_cells[0].span[0]]
    assert text[old_cells[-1].span[1]:] == new[new_cells[-1].span[1]:]
    assert text[old_cells[0].span[1]:old_cells[1].span[0]] == new[new_cells[0].span[1]:new_cells[1].span[0]]
    if indent == 1 and not as_string:  # Jupyter's own layout: what `json.dumps(indent=1)` gives
        assert new == notebook(("markdown", "# Title \u2014 caf\u00e9"),
                               "%matplotlib inline\nimport numpy as np\nimport torch\n",
                               "x = torch.randn(3)\ny = x.softmax(dim=-1)\n", indent=1)


def test_edits_keep_ascii_escaping_of_an_ascii_file():
    text = json.dumps(json.loads(notebook("s = 'caf\u00e9'\nt = 1\n")), indent=1) + "\n"
    assert text.isascii()
    new = apply_edits(text, [Edit(2, 5, 2, 6, "2")])
    assert new.isascii() and load(new).source == "s = 'caf\u00e9'\nt = 2\n"


def test_edits_across_cells_or_on_magics_are_skipped():
    text = notebook("!pip install x\na = 1\n", "b = 2\n")
    assert apply_edits(text, [Edit(2, 1, 3, 1, "")]) == text  # spans two cells
    assert apply_edits(text, [Edit(1, 1, 1, 5, "pass")]) == text  # the masked magic
    assert apply_edits(text, [Edit(3, 5, 3, 6, "3"), Edit(3, 1, 3, 6, "c = 4")]) != text  # overlap: one applied


def test_invalid_notebook_cannot_be_edited():
    with pytest.raises(NotebookError):
        apply_edits("{", [Edit(1, 1, 1, 1, "x")])


# --- tracing --------------------------------------------------------------------------------------------

BROADCAST_MODEL = '''class PriceRegressor(nn.Module):  # nnlint: input=float32[B,16], float32[B]
    def __init__(self, in_features=16, hidden=32):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x, price):
        pred = self.net(x)
        return ((pred - price) ** 2).mean()
'''


def test_models_defined_in_cells_are_traced_and_training_cells_never_run(tmp_path):
    pytest.importorskip("torch")
    from nnlint.trace.runner import TraceOptions, trace_files

    marker = tmp_path / "training-ran"
    path = tmp_path / "regression.ipynb"
    path.write_text(notebook(
        "%matplotlib inline\nimport torch\nfrom torch import nn\n",
        ("markdown", "The model"),
        BROADCAST_MODEL,
        f"!nvidia-smi\nopen({str(marker)!r}, 'w').close()\nmodel = PriceRegressor()\n"
        "for step in range(10):\n    model(torch.randn(4, 16), torch.randn(4)).backward()\n",
    ))
    diagnostics, notes = trace_files([(str(path), "regression.ipynb")], TraceOptions(jobs=1, timeout=60, verbose=True))
    assert [(d.cell, d.line, d.code) for d in diagnostics] == [(3, 8, "NNL701")]
    assert diagnostics[0].line_text == "        return ((pred - price) ** 2).mean()"
    assert any(n.startswith("regression.ipynb:cell 3:1: PriceRegressor: traced via") for n in notes), notes
    assert not marker.exists()


def test_fix_writes_into_the_cells_and_keeps_outputs_and_metadata(cli, project):
    train = ("import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
             "    total += loss\n")
    path = project("nb.ipynb", notebook(("markdown", "# Training"), "%matplotlib inline\n", train))
    before = path.read_text(encoding="utf-8")
    result = cli("check", "--static-only", "--fix", "--select", "NNL505", "nb.ipynb")
    after = path.read_text(encoding="utf-8")
    assert result.exit_code == 0, result.output
    assert load(after).cells[1].lines[-1] == "    total += loss.detach()"
    assert _without_sources(after) == _without_sources(before)  # outputs, metadata, counts untouched
    assert after.replace("loss.detach()", "loss") == before  # nothing else in the file moved


def test_json_fix_edits_of_a_notebook_finding_are_in_cell_coordinates(cli, project):
    train = ("import torch\nfor x, y in loader:\n    loss = loss_fn(model(x), y)\n    loss.backward()\n"
             "    total += loss\n")
    project("nb.ipynb", notebook("import numpy as np\n", train))
    [finding] = json.loads(cli("check", "--static-only", "--format", "json", "--select", "NNL505", "nb.ipynb").stdout)
    assert (finding["cell"], finding["line"]) == (2, 5)
    assert [(e["line"], e["content"]) for e in finding["fix"]["edits"]] == [(5, "loss.detach()")]


def test_a_notebook_on_standard_input_is_checked_as_a_notebook(project):
    from click.testing import CliRunner

    from nnlint.cli import main

    text = notebook(SEEDLESS, "!nvidia-smi\n" + TRAIN)
    result = CliRunner().invoke(main, ["check", "--static-only", "--format", "concise", "--stdin-filename",
                                       "nb.ipynb", "-"], input=text)
    assert "nb.ipynb:cell 2:4:" in result.stdout and "NNL201" in result.stdout, result.output


def test_max_file_size_counts_the_code_not_the_outputs(tmp_path):
    """A notebook is big because of its outputs: the size bound applies to the code that is checked."""
    document = json.loads(notebook("import torch.nn.functional as F\np = F.softmax(x)\n"))
    document["cells"][0]["outputs"][0]["text"] = ["x" * 1000 + "\n"] * 300  # ~300 KB of output
    path = tmp_path / "plots.ipynb"
    path.write_text(json.dumps(document), encoding="utf-8")
    bound = 100 * 1024
    task = FileTask(str(path), path.name, STATIC_CODES, max_bytes=bound)
    assert [d.code for d in lint_file(task).diagnostics] == ["NNL302"]
    path.write_text(notebook("x = 1\n" * (bound // 6 + 1)), encoding="utf-8")
    assert [d.code for d in lint_file(task).diagnostics] == ["NNL005"]


def test_a_future_import_atop_a_later_cell_compiles_as_jupyter_compiles_it(tmp_path):
    # Jupyter compiles each cell alone: `from __future__` may open any cell, not only the joined module.
    path = tmp_path / "demo.ipynb"
    path.write_text(notebook("import torch\n", "from __future__ import print_function\nprint(torch.ones(2))\n"))
    assert found(path) == []
