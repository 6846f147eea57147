"""Bugs injected into copies of real files: does tracing find each, with the right code at the right line?

    python bench/trace_injected.py [CORPUS]     # default CORPUS: /work/corpus (see bench/trace_reach.py)

Each injection copies one real file (with its folder, for imports) to a temporary folder, outside
any repository, replaces one exact source line and traces the copy with no configuration. It counts
as found when the injected code is reported at the expected line and the unmodified copy does not
already report it there. Files: pytorch/examples, karpathy/nanoGPT, karpathy/minGPT.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# (file under CORPUS, exact old text, new text, expected code, line of the expected report, the bug)
INJECTIONS = [
    ("minGPT/mingpt/model.py", "        att = att.masked_fill(self.bias[:,:,:T,:T] == 0, float('-inf'))\n",
     "        pass\n", "NNL712", 66, "causal mask dropped (reported where attention meets the values)"),
    ("minGPT/mingpt/model.py", "        att = F.softmax(att, dim=-1)\n", "        att = F.softmax(att, dim=-2)\n",
     "NNL712", 64, "softmax over the query axis of the attention scores"),
    ("minGPT/mingpt/model.py", "self.bias[:,:,:T,:T] == 0", "self.bias[:,:,:T,:T].transpose(-2, -1) == 0",
     "NNL712", 63, "causal mask built the wrong way round"),
    ("minGPT/mingpt/model.py", "        y = y.transpose(1, 2).contiguous().view(B, T, C)",
     "        y = y.contiguous().view(B, T, C)", "NNL711", 67, "heads merged by a view without the transpose"),
    ("nanoGPT/model.py", "is_causal=True)", "is_causal=False)", "NNL712", 64, "is_causal=False in attention"),
    ("nanoGPT/model.py", "        y = y.transpose(1, 2).contiguous().view(B, T, C)",
     "        y = y.contiguous().view(B, T, C)", "NNL711", 72, "heads merged by a view without the transpose"),
    ("examples/word_language_model/model.py", "        output = self.encoder(src, mask=self.src_mask)\n",
     "        output = self.encoder(src)\n", "NNL712", 142, "causal mask built but not passed to the encoder"),
    ("examples/word_language_model/model.py", "        return F.log_softmax(decoded, dim=1), hidden\n",
     "        return F.log_softmax(decoded, dim=0), hidden\n", "NNL705", 54, "log-softmax over the batch"),
    ("examples/mnist/main.py", "        output = F.log_softmax(x, dim=1)\n", "        output = F.log_softmax(x, dim=0)\n",
     "NNL705", 32, "log-softmax over the batch"),
    ("examples/reinforcement_learning/reinforce.py", "        return F.softmax(action_scores, dim=1)\n",
     "        return F.softmax(action_scores, dim=0)\n", "NNL705", 46, "softmax over the batch"),
    ("examples/reinforcement_learning/actor_critic.py",
     "        action_prob = F.softmax(self.action_head(x), dim=-1)\n",
     "        action_prob = F.softmax(self.action_head(x), dim=0)\n", "NNL705", 62, "softmax over the batch"),
    ("examples/distributed/tensor_parallelism/llama2_model.py", "x.pow(2).mean(-1, keepdim=True)",
     "x.pow(2).mean(0, keepdim=True)", "NNL705", 135, "RMS normalization over the batch"),
    ("examples/mnist_rnn/main.py", "        self.rnn = nn.LSTM(input_size=28, hidden_size=64, batch_first=True)\n",
     "        self.rnn = nn.LSTM(input_size=28, hidden_size=64)\n", "NNL704", 28, "batch_first=True dropped"),
]


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from nnlint.trace.runner import TraceOptions, WorkerPool, trace_files

    corpus = Path(argv[0]) if argv else Path("/work/corpus")
    options = TraceOptions(jobs=int(os.environ.get("NNLINT_JOBS", "2")), timeout=120)
    found = right_code = 0
    with WorkerPool(options) as pool, tempfile.TemporaryDirectory(prefix="nnlint-injected-") as scratch:
        for index, (relative, old, new, code, line, bug) in enumerate(INJECTIONS):
            source = corpus / relative
            text = source.read_text(encoding="utf-8")
            if text.count(old) != 1:
                print(f"SKIP {relative}: the text to replace occurs {text.count(old)} times")
                continue
            results = {}
            for kind, content in (("clean", text), ("injected", text.replace(old, new))):
                folder = Path(scratch) / f"{index}-{kind}"
                shutil.copytree(source.parent, folder)
                copy = folder / source.name
                copy.write_text(content, encoding="utf-8")
                # The whole folder, as a user would check it: call sites in main.py build model.py's classes.
                files = [(str(p), relative if p == copy else p.name) for p in sorted(folder.glob("*.py"))]
                diagnostics, _ = trace_files(files, options, pool=pool)
                results[kind] = {(d.line, d.code) for d in diagnostics if d.code != "NNL790" and d.path == relative}
            new_findings = results["injected"] - results["clean"]
            hit = (line, code) in new_findings
            coded = any(c == code for _, c in new_findings)
            found += hit
            right_code += coded
            print(f"{'FOUND' if hit else 'code only' if coded else 'MISSED'}  {relative}:{line} {code}  ({bug}); "
                  f"new findings: {sorted(new_findings)}")
    total = len(INJECTIONS)
    print(f"found at the right line with the right code: {found}/{total} = {found / total:.0%}; "
          f"right code anywhere: {right_code}/{total}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
