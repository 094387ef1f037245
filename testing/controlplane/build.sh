#!/usr/bin/env bash
# Builds the programs of the test control plane from the Go module proxy, at the
# versions pinned by the go.mod / go.sum beside this script, into a cache
# outside the checkout:
#
#   ${CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flight-delays/controlplane}/
#       <component>-<version>-<hash>/<component>
#   (and for kwok, stages.yaml: KWOK's "fast" node and pod stages from the same module)
#
# <hash> covers the module's go.mod, go.sum and main.go, the Go version, the
# build flags and the recipe number below, so a change to any of them builds anew and an unchanged one is
# reused. A component already in the cache is skipped: a second run takes
# seconds. Components build one at a time (the machines have 2 cores).
#
# Usage: build.sh [--list] [--prune] [COMPONENT...]   (default: every component)
#   --list   print NAME=PATH for each component and exit 0 if all are built,
#            1 if any is missing (builds nothing).
#   --prune  also remove the cache's other builds of the components named
#            (older versions, other go.sum), once the current ones are there.
# Progress goes to stderr; the last lines on stdout are NAME=PATH, one per
# component, for scripts (testing/controlplane/harness.py reads them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${CONTROLPLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/flight-delays/controlplane}"

# name | module folder | package in it | module whose version names the build | extra -ldflags
components=(
  "etcd|etcd|.|go.etcd.io/etcd/server/v3|"
  "kube-apiserver|kubernetes|./kube-apiserver|k8s.io/kubernetes|K8S"
  "kube-controller-manager|kubernetes|./kube-controller-manager|k8s.io/kubernetes|K8S"
  "kube-scheduler|kubernetes|./kube-scheduler|k8s.io/kubernetes|K8S"
  "spark-operator|spark-operator|.|github.com/kubeflow/spark-operator/v2|K8S"
  "kwok|kwok|.|sigs.k8s.io/kwok|"
)

log() { printf '%s\n' "$*" >&2; }
die() { log "controlplane build: $*"; exit 1; }

list_only=0
prune=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --list) list_only=1 ;;
    --prune) prune=1 ;;
    -h|--help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) die "unknown option: $arg" ;;
    *) wanted+=("$arg") ;;
  esac
done
if [ ${#wanted[@]} -gt 0 ]; then
  for w in "${wanted[@]}"; do
    found=0
    for c in "${components[@]}"; do [ "${c%%|*}" = "$w" ] && found=1; done
    [ $found = 1 ] || die "unknown component: $w (known: $(printf '%s ' "${components[@]%%|*}"))"
  done
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "Go is not installed (needed: go >= 1.26; https://go.dev/dl or the distribution's golang package)"

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false -mod=readonly"
goversion="$(go env GOVERSION)"
ldflags_base="-s -w"
# bump when the recipe below changes what a build puts in the cache (the key hashes it)
recipe=2
buildflags="$GOFLAGS|$ldflags_base|CGO_ENABLED=$CGO_ENABLED|$(go env GOOS)/$(go env GOARCH)"

# version of MODULE as pinned by FOLDER/go.mod (its replace target when replaced)
module_version() {
  (cd "$here/$1" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2")
}

key_hash() {
  local dir="$here/$1"
  {
    cat "$dir/go.mod" "$dir/go.sum"
    find "$dir" -name '*.go' -type f | LC_ALL=C sort | xargs cat
    printf '%s\n%s\n%s\n%s\n' "$recipe" "$goversion" "$buildflags" "$2"
  } | sha256sum | cut -c1-12
}

mkdir -p "$cache"
# one build at a time, also across concurrent runs (tests in parallel, make -j)
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

declare -A path_of
missing=0
total_start=$EPOCHREALTIME
for c in "${components[@]}"; do
  IFS='|' read -r name dir pkg vmodule extra <<<"$c"
  if [ ${#wanted[@]} -gt 0 ] && [[ " ${wanted[*]} " != *" $name "* ]]; then continue; fi
  version="$(module_version "$dir" "$vmodule" 2>/dev/null)" \
    || die "$name: cannot read the version of $vmodule from $dir/go.mod"
  ldflags="$ldflags_base"
  if [ "$extra" = K8S ]; then
    # what the upstream release builds stamp into k8s.io/component-base/version
    major="${version#v}"; major="${major%%.*}"
    minor="${version#v*.}"; minor="${minor%%.*}"
    ldflags+=" -X k8s.io/component-base/version.gitVersion=$version"
    ldflags+=" -X k8s.io/component-base/version.gitMajor=$major"
    ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
    ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  fi
  out="$cache/$name-$version-$(key_hash "$dir" "$ldflags")"
  bin="$out/$name"
  path_of[$name]="$bin"
  if [ -x "$bin" ]; then
    log "controlplane: $name $version: cached ($bin)"
    continue
  fi
  if [ $list_only = 1 ]; then
    log "controlplane: $name $version: not built"
    missing=1
    continue
  fi
  log "controlplane: $name $version: building (module $vmodule, $dir/$pkg) ..."
  start=$EPOCHREALTIME
  tmp="$(mktemp -d "$cache/.build-$name.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$here/$dir" && go build -ldflags="$ldflags" -o "$tmp/$name" "$pkg") >&2; then
    rm -rf "$tmp"
    die "building $name $version (module $vmodule in testing/controlplane/$dir) FAILED; see the Go errors above"
  fi
  if [ "$name" = kwok ]; then
    # KWOK's own "fast" stages (what kwokctl configures), from the same pinned module
    src="$(cd "$here/$dir" && go list -m -f '{{.Dir}}' "$vmodule")/kustomize/stage"
    for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
             pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
      [ -f "$src/$f" ] || { rm -rf "$tmp"; die "kwok $version: stage file $f not found in $src"; }
      printf -- '---\n' >>"$tmp/stages.yaml"
      cat "$src/$f" >>"$tmp/stages.yaml"
    done
  fi
  chmod 755 "$tmp"
  rm -rf "$out"
  mv "$tmp" "$out"  # whole, or not at all
  trap - EXIT
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
  size=$(du -h "$bin" | cut -f1)
  log "controlplane: $name $version: built in ${secs}s, $size ($bin)"
done
if [ $prune = 1 ] && [ $list_only = 0 ]; then
  for name in "${!path_of[@]}"; do
    for old in "$cache/$name"-v*; do
      [ -d "$old" ] && [ "$old" != "$(dirname "${path_of[$name]}")" ] || continue
      log "controlplane: $name: removing the older build $old"
      rm -rf "$old"
    done
  done
fi
secs=$(awk -v a="$total_start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
[ $list_only = 1 ] || log "controlplane: done in ${secs}s (cache $cache)"

for c in "${components[@]}"; do
  name="${c%%|*}"
  [ -n "${path_of[$name]:-}" ] && printf '%s=%s\n' "$name" "${path_of[$name]}"
done
exit $missing
