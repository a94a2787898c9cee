#!/usr/bin/env bash
# Builds one program of the local test stack from its wrapper module and
# caches it outside the repo, keyed by module version, so a warm stack
# starts in seconds. Prints the binary's path on stdout.
#   tools/build.sh <program>   (the list is in $usage below)
# Programs of one module that ship together (the six Kubernetes programs; pebble and
# pebble-challtestsrv) are built as a group: one `go build` compiles their shared packages once,
# into one cached directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage='kube-apiserver|kubectl|kubelet|kube-controller-manager|kube-scheduler|kube-proxy|etcd|traefik|helm|pebble|pebble-challtestsrv|coredns|backend|pause'
name=${1:?usage: tools/build.sh $usage}
ldflags='-s -w'
group=''
case $name in
  kube-apiserver|kubectl|kubelet|kube-controller-manager|kube-scheduler|kube-proxy)
                  dir=kubernetes; mod=k8s.io/kubernetes; group=kubernetes; pkg=''
                  for p in kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy; do
                    pkg+=" $mod/cmd/$p"
                  done ;;
  etcd)           dir=etcd; mod=go.etcd.io/etcd/server/v3; pkg=. ;;
  traefik)        dir=traefik; mod=github.com/traefik/traefik/v3; pkg=github.com/traefik/traefik/v3/cmd/traefik ;;
  helm)           dir=helm; mod=helm.sh/helm/v3; pkg=helm.sh/helm/v3/cmd/helm ;;
  pebble|pebble-challtestsrv)
                  dir=pebble; mod=github.com/letsencrypt/pebble/v2; group=pebble
                  pkg="$mod/cmd/pebble $mod/cmd/pebble-challtestsrv" ;;
  # The single-node cluster's images: CoreDNS (only the plugins the cluster uses), a small HTTP
  # backend, and the sandbox's pause process.
  coredns)        dir=coredns; mod=github.com/coredns/coredns; pkg=. ;;
  backend)        dir=backend; mod=backend; pkg=. ;;
  pause)          dir=pause; mod=pause; pkg=. ;;
  *) echo "tools/build.sh: unknown program '$name'; expected one of $usage" >&2; exit 2 ;;
esac
if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then export PATH=/usr/local/go/bin:$PATH
  else echo "tools/build.sh: no Go toolchain found; install Go >= 1.26 and put it on PATH" >&2; exit 3; fi
fi
version=$(awk -v m="$mod" '$1 == m || ($1 == "require" && $2 == m) { print ($1 == "require" ? $3 : $2); exit }' "$here/$dir/go.mod")
# A program whose source lives here (pause) is keyed by its source's hash.
[[ -n $version ]] || version=src-$(cat "$here/$dir"/*.go "$here/$dir/go.mod" | sha256sum | cut -c1-12)
if [[ $mod == k8s.io/kubernetes ]]; then
  # Stamp the real version: without it the server reports v0.0.0-master,
  # which kubectl version shows and Helm's kubeVersion checks refuse.
  minor=$(cut -d. -f2 <<<"$version")
  v=k8s.io/component-base/version
  ldflags+=" -X $v.gitVersion=$version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  version=$version-stamped
fi
if [[ $name == traefik ]]; then
  ldflags+=" -X github.com/traefik/traefik/v3/pkg/version.Version=$version"
  version=$version-stamped
fi
cache=${CERTROUTE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/certroute/bin}
unit=${group:-$name}
# A group's programs land in one directory, each under its own name; a single program is one file.
built=$cache/$unit-$version
out=$built${group:+/$name}
mkdir -p "$cache"
# Two stacks starting at once must not build the same binary twice.
exec 9>"$cache/$unit.lock"
flock 9
if [[ ! -e $built ]]; then
  start=$(date +%s)
  log=$cache/$unit-$version.build.log
  rm -rf "$built.tmp"
  # With a trailing slash, `-o` makes go build write every listed main package into that directory.
  target=$built.tmp${group:+/}
  # shellcheck disable=SC2086 # a group's packages are a word list
  ( cd "$here/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="$ldflags" -o "$target" $pkg ) >"$log" 2>&1 || {
    echo "tools/build.sh: building $unit $version failed; see $log" >&2; exit 4; }
  mv "$built.tmp" "$built"
  echo "built $unit $version in $(( $(date +%s) - start ))s" >&2
  echo "$unit $version $(( $(date +%s) - start ))" >> "$cache/build-times.txt"
fi
echo "$out"
