#!/usr/bin/env bash
# Makes datasets/eurosat_sample/: the first 30 images of each EuroSAT class (<Class>_1.jpg ..
# <Class>_30.jpg, by number), copied byte for byte (not re-encoded), for the tests and for
# trying the pipeline without the full dataset.
#
# Usage (from the repository root):
#   bash scripts/make_eurosat_sample.sh [EUROSAT_RGB_DIR]   # default ../shared/data/EuroSAT_RGB
set -euo pipefail

src="${1:-../shared/data/EuroSAT_RGB}"
dst="datasets/eurosat_sample"
per_class=30

[ -d "$src" ] || { echo "make_eurosat_sample: no EuroSAT folder at '$src'" >&2; exit 1; }
mkdir -p "$dst"
classes=0
for class_dir in "$src"/*/; do
  class="$(basename "$class_dir")"
  mkdir -p "$dst/$class"
  for n in $(seq 1 "$per_class"); do
    f="$class_dir/${class}_${n}.jpg"
    [ -f "$f" ] || { echo "make_eurosat_sample: missing '$f'" >&2; exit 1; }
    cp "$f" "$dst/$class/"
  done
  classes=$((classes + 1))
done
echo "make_eurosat_sample: $classes classes x $per_class images in $dst ($(du -sb "$dst" | cut -f1) bytes)"
