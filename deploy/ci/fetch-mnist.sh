#!/usr/bin/env bash
# Fetch the four MNIST IDX files into $1 and check their contents (decompressed, so any
# mirror's gzip will do) against known sha256 sums. For CI runners with internet access;
# the tests themselves never download.
set -euo pipefail
dest="${1:?usage: fetch-mnist.sh DIR}"
base="${MNIST_MIRROR:-https://storage.googleapis.com/cvdf-datasets/mnist}"
mkdir -p "$dest"
cd "$dest"
while read -r sum name; do
  [ -f "$name.gz" ] || curl --fail --silent --show-error --location --retry 3 -o "$name.gz" "$base/$name.gz"
  actual="$(gunzip -c "$name.gz" | sha256sum | cut -d' ' -f1)"
  [ "$actual" = "$sum" ] || { echo "fetch-mnist: $name.gz does not hold the expected data" >&2; exit 1; }
done <<'SUMS'
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5 train-labels-idx1-ubyte
0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7 t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2 t10k-labels-idx1-ubyte
SUMS
echo "MNIST in $dest checked"
