#!/usr/bin/env bash
# Real PyTorch code nobody here wrote, for speed and precision runs: the sources of four wheels.
# Unzipped into bench/corpus/<package>/ (git-ignored; never committed).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/wheels
python -m pip download --no-deps -q -d corpus/wheels timm torchvision lightning transformers
for wheel in corpus/wheels/*.whl; do
    name=$(basename "$wheel" | cut -d- -f1)
    [ -d "corpus/$name" ] || python -m zipfile -e "$wheel" "corpus/$name"
done
find corpus -name '*.py' -not -path '*/wheels/*' | wc -l | xargs echo "python files:"
