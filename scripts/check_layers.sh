#!/usr/bin/env bash
# Fails when a library file includes a header of a layer above its own (see cmake/FunnelLayers.cmake), or when a
# library folder's CMakeLists.txt names the CMake target of a layer above its own (links to it, or links itself into
# it: either ties the layer to what sits on top of it).
# Run by CTest as `layers/includes`; usage: scripts/check_layers.sh [source root]
#
# Each library folder and the folders its files may include from. A folder's files may always include from
# the folder itself; a folder nested in another would be a layer of its own. tools/, bench/,
# examples/, tests/ and fuzz/ sit on top and may include library folders, but no library folder may
# include them. A new library folder must be added here (and in cmake/FunnelLayers.cmake).
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root"

layers='
core:
ops: core
autodiff: core ops
opcheck: core ops autodiff
models: core ops autodiff
data: core
train: core ops autodiff models data
viz: core ops autodiff
serving: core ops autodiff models data train
exporter: core ops autodiff models data train
distributed: core ops autodiff models data train
cli: core ops autodiff opcheck models data train exporter viz serving distributed
python: core ops autodiff opcheck models data train exporter viz serving distributed cli
tools: core ops autodiff opcheck models data train exporter viz serving distributed cli
bench: core ops autodiff opcheck models data train exporter viz serving distributed tools cli
examples: core ops autodiff opcheck models data train exporter viz serving distributed cli
tests: core ops autodiff opcheck models data train exporter viz serving distributed tools bench cli
fuzz: core data train serving
'

if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  files=$(git ls-files --cached --others --exclude-standard -- '*.cpp' '*.hpp' '*.h' '*.cc')
else
  files=$(find . \( -path ./build -o -path './build-*' \) -prune -o \( -name '*.cpp' -o -name '*.hpp' \) -print |
          sed 's|^\./||')
fi
[ -n "$files" ] || { echo "check_layers: no source files below $root" >&2; exit 1; }

# Each layer's CMake targets (the folders without a target of their own have none here).
targets='
core: funnel_core
ops: funnel_ops
autodiff: funnel_autodiff
opcheck: funnel_opcheck
models: funnel_models
data: funnel_data
train: funnel_train
viz: funnel_viz
serving: funnel_serve
exporter: funnel_export
distributed: funnel_distributed
cli: funnel_commands funnel_cli funnel-cli
python: funnel_python
'
link_bad=0
while IFS= read -r line; do
  [ -n "$line" ] || continue
  folder=${line%%:*}
  allowed=" $(sed -n "s/^$folder: *//p" <<<"$layers") $folder "
  cml=$folder/CMakeLists.txt
  [ -f "$cml" ] || continue
  # Every target name of another layer that this folder's CMakeLists.txt mentions (comments left out).
  while IFS= read -r name; do
    [ -n "$name" ] || continue
    owner=$(awk -v n="$name" -F': *' '{ k = split($2, t, " "); for (i = 1; i <= k; i++) if (t[i] == n) print $1 }' <<<"$targets")
    [ -n "$owner" ] || continue
    case "$allowed" in
      *" $owner "*) ;;
      *) echo "check_layers: $cml names target $name: layer '$folder' may not link with layer '$owner'" >&2
         link_bad=1 ;;
    esac
  done < <(sed 's/#.*//' "$cml" | grep -oE 'funnel[_-][A-Za-z0-9_-]+' | sort -u)
done <<<"$layers"

# One pass: "file<TAB>included path" for every quoted include, judged against the table.
# shellcheck disable=SC2086
grep -H -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $files /dev/null |
  sed -E 's/^([^:]*):[^"]*"([^"]*)".*/\1\t\2/' |
  awk -F'\t' -v table="$layers" -v nfiles="$(wc -w <<<"$files")" -v listed="$files" '
    function folder_of(p,   f, best) {
      best = ""
      for (f in deps) if (index(p, f "/") == 1 && length(f) > length(best)) best = f
      return best
    }
    BEGIN {
      n = split(table, lines, "\n")
      for (i = 1; i <= n; i++) {
        if (lines[i] == "") continue
        split(lines[i], kv, ":")
        deps[kv[1]] = " " kv[2] " "
      }
      m = split(listed, fs, /[ \n]+/)
      for (i = 1; i <= m; i++)
        if (fs[i] ~ /\// && folder_of(fs[i]) == "") {
          split(fs[i], parts, "/")
          printf "check_layers: %s: folder %s has no layer; add it to scripts/check_layers.sh\n", fs[i], parts[1] > "/dev/stderr"
          bad = 1
        }
    }
    {
      from = folder_of($1)
      if (from == "" || $2 !~ /\//) next   # same-folder includes ("op_test_util.hpp")
      to = folder_of($2)
      if (to == "" || to == from || index(deps[from], " " to " ")) next
      printf "check_layers: %s includes \"%s\": layer %s may not include from %s\n", $1, $2, "\047" from "\047", "\047" to "\047" > "/dev/stderr"
      bad = 1
    }
    END {
      if (!bad) printf "check_layers: %d files, no upward include\n", nfiles
      exit bad
    }' || exit 1
[ "$link_bad" = 0 ] || exit 1
echo "check_layers: no layer's CMakeLists.txt names a target above it"
