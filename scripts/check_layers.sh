#!/usr/bin/env bash
# Fails when a library file includes a header of a layer above its own (see cmake/FunnelLayers.cmake).
# Run by CTest as `layers/includes`; usage: scripts/check_layers.sh [source root]
#
# Each library folder and the folders its files may include from. A folder's files may always include from
# the folder itself; a folder nested in another (ops/examples) is a layer of its own. tools/, bench/,
# examples/, tests/ and fuzz/ sit on top and may include any library folder, but no library folder may
# include them. A new library folder must be added here (and in cmake/FunnelLayers.cmake).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

layers='
core:
ops: core
autodiff: core ops
ops/examples: core ops autodiff
models: core ops autodiff
data: core
train: core ops autodiff models data
viz: core ops autodiff
distributed: core ops autodiff models data train
tools: core ops autodiff ops/examples models data train viz distributed
bench: core ops autodiff ops/examples models data train viz distributed tools
examples: core ops autodiff ops/examples models data train viz distributed
tests: core ops autodiff ops/examples models data train viz distributed tools bench tests
fuzz: core data fuzz
'
# The layer folder of a path: the longest folder in the table that holds it.
folder_of() {
  local p=$1 best='' f
  while IFS=: read -r f _; do
    [ -n "$f" ] || continue
    case "$p" in "$f"/*) [ ${#f} -gt ${#best} ] && best=$f ;; esac
  done <<<"$layers"
  printf '%s' "$best"
}
allowed() {  # allowed <from folder> <to folder>
  [ "$1" = "$2" ] && return 0
  local deps
  deps=$(awk -F': *' -v f="$1" '$1 == f { print $2 }' <<<"$layers")
  case " $deps " in *" $2 "*) return 0 ;; esac
  return 1
}

bad=0
unknown=0
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.cc')
else
  files=$(find . -path ./build -prune -o -path './build-*' -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print | sed 's|^\./||')
fi
for f in $files; do
  from=$(folder_of "$f")
  if [ -z "$from" ]; then
    case "$f" in */*) echo "check_layers: $f: folder '${f%%/*}' has no layer; add it to scripts/check_layers.sh" >&2
                      unknown=1 ;; esac
    continue
  fi
  while IFS= read -r line; do
    inc=${line#*\"}
    inc=${inc%%\"*}
    case "$inc" in */*) ;; *) continue ;; esac  # same-folder includes ("op_test_util.hpp")
    to=$(folder_of "$inc")
    [ -n "$to" ] || continue
    if ! allowed "$from" "$to"; then
      echo "check_layers: $f includes \"$inc\": layer '$from' may not include from '$to'" >&2
      bad=1
    fi
  done < <(grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" || true)
done
if [ $bad = 0 ] && [ $unknown = 0 ]; then
  echo "check_layers: $(wc -w <<<"$files") files, no upward include"
fi
exit $((bad | unknown))
