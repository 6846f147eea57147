#!/usr/bin/env bash
# The repositories of issue 12 (plus pytorch/examples, nanoGPT, minGPT, pytorch-tutorial), as the
# `fetch` tool mirrors them under /work/.mirror/<owner>+<name>/repo: their *.py and *.ipynb files are
# copied to ${1:-/work/corpus/issue12}/<name>/ (outside this repository; never committed).
set -euo pipefail
out=${1:-/work/corpus/issue12}
mkdir -p "$out"
repos="eriklindernoren/PyTorch-GAN udacity/deep-learning-v2-pytorch pytorch/ignite lucidrains/vit-pytorch
rasbt/LLMs-from-scratch facebookresearch/dino facebookresearch/mae karpathy/nn-zero-to-hero
utkuozbulak/pytorch-cnn-visualizations lucidrains/denoising-diffusion-pytorch
sgrvinod/a-PyTorch-Tutorial-to-Image-Captioning bentrevett/pytorch-seq2seq bentrevett/pytorch-sentiment-analysis
jadore801120/attention-is-all-you-need-pytorch openai/improved-diffusion pytorch/examples karpathy/nanoGPT
karpathy/minGPT yunjey/pytorch-tutorial"
for repo in $repos; do
    mirror=/work/.mirror/${repo/\//+}/repo
    name=${repo#*/}
    [ -d "$mirror" ] || { echo "missing mirror: $repo (fetch github:$repo first)"; continue; }
    [ -d "$out/$name" ] && continue
    mkdir -p "$out/$name"
    git --git-dir="$mirror" ls-tree -r HEAD --name-only | grep -E '\.(py|ipynb)$|(^|/)\.gitignore$|pyproject\.toml$' |
    while read -r file; do
        mkdir -p "$out/$name/$(dirname "$file")"
        git --git-dir="$mirror" show "HEAD:$file" > "$out/$name/$file" 2>/dev/null || rm -f "$out/$name/$file"
    done
    echo "$name $(git --git-dir="$mirror" rev-parse HEAD)"
done
