#!/usr/bin/env bash
# Builds the images the lab runs, with no registry: the Dockerfile's
# `manager` and `dataplane` targets, a pause (sandbox) image and the
# workload the lab's Services serve (hack/echo), each saved
# as an archive that a node's containerd imports with
# `ctr -n k8s.io images import`. What was built is written to
# bin/images.env (KEY=VALUE) for the lab to read.
#
# None of the Dockerfile's public base images can be pulled here, so local
# stand-ins are made first and passed in as build arguments (the Dockerfile
# keeps the public images as defaults and stays the one description):
#   localhost/hakeeper-lab/debian:bookworm   debootstrap minbase + haproxy,
#                                            keepalived, iproute2 (DATAPLANE_BASE)
#   localhost/hakeeper-lab/golang:<go>       that + the host's Go toolchain (GO_IMAGE)
#   localhost/hakeeper-lab/static:nonroot    distroless-like static base (MANAGER_BASE)
#   localhost/hakeeper-lab/pause:<hash>      hack/pause, FROM scratch
#   localhost/hakeeper-lab/echo:<hash>       hack/echo, FROM scratch
#
# Everything is cached by content under $HAKEEPER_CACHE/images (default
# ~/.cache/hakeeper/images), outside the clone: every step has a key hashed
# from its inputs and is skipped when an image or archive with that key
# exists, so an unchanged rebuild costs seconds. The hakeeper images are
# tagged with their key (localhost/hakeeper/manager:<hash>), so changed
# content gets a new tag and the DaemonSet/Deployment rolls out.
#
# Podman runs daemonless on its own storage under the cache, never the
# machine's default storage, with --network=none builds: the only network
# use is debootstrap on a machine that has no rootfs cached yet, and
# `go mod download` on the host, which fills the module cache the Go build
# gets as a volume.
set -o errexit -o nounset -o pipefail
[[ "${TRACE:-0}" == 1 ]] && set -o xtrace

root=$(cd "$(dirname "$0")/.." && pwd)
cache="${HAKEEPER_CACHE:-$HOME/.cache/hakeeper}/images"
archives="$cache/archives"
mkdir -p "$cache" "$archives" "$root/bin"

if [[ $(id -u) != 0 ]]; then
  echo "hack/images.sh needs root (debootstrap, podman's storage, device files in the rootfs)." >&2
  exit 1
fi
for cmd in podman debootstrap go; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]] || {
    echo "$cmd is missing: run hack/install-deps.sh (make deps)." >&2
    exit 1
  }
done

# One run at a time per cache: two runs would race on the rootfs and tags.
exec 9>"$cache/.lock"
flock -n 9 || { echo "Waiting for another hack/images.sh using $cache"; flock 9; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---------------------------------------------------------------- podman --
# Podman's own storage: CONTAINERS_STORAGE_CONF replaces
# /etc/containers/storage.conf, and --tmpdir / --network-config-dir keep
# libpod's state and network files out of /run/libpod and /etc/containers.
# The driver is overlay (the cache sits on ext4 here, where kernel overlayfs
# works). Where overlay does not work (some nested or exotic filesystems),
# HAKEEPER_PODMAN_DRIVER=vfs falls back to vfs: slower and bigger, but it
# works anywhere. Each driver gets its own graphroot, since a storage cannot
# change driver. Two paths podman 4.3 hard-codes are still shared with the
# machine: /var/lib/containers/cache (a small cache of blob digests) and
# the empty /run/containers/networks.
driver="${HAKEEPER_PODMAN_DRIVER:-overlay}"
pdir="$cache/podman"
mkdir -p "$pdir/$driver" "$pdir/run" "$pdir/tmp/var" "$pdir/tmp/libpod" "$pdir/networks"
cat >"$pdir/storage.conf.tmp" <<EOF
# Written by hack/images.sh: podman storage for hakeeper's images only.
[storage]
driver = "$driver"
graphroot = "$pdir/$driver"
runroot = "$pdir/run"
EOF
mv "$pdir/storage.conf.tmp" "$pdir/storage.conf"
export CONTAINERS_STORAGE_CONF="$pdir/storage.conf"

# Every podman call: cgroupfs (no systemd to delegate to) and a file for
# events (no journald); TMPDIR is where podman stages image copies. The
# lock's descriptor is not passed on, so nothing podman leaves running can
# hold the lock after this script.
pm() {
  TMPDIR="$pdir/tmp/var" podman --cgroup-manager=cgroupfs --events-backend=file \
    --tmpdir="$pdir/tmp/libpod" --network-config-dir="$pdir/networks" "$@" 9>&-
}

# ----------------------------------------------------------------- utils --
# key hashes stdin into the short content hash used in tags and file names.
key() { sha256sum | cut -c1-12; }

# label prints an image's io.hakeeper.key label, or nothing when the image
# does not exist: the key of what the image was made from.
label() {
  pm image inspect --format '{{index .Labels "io.hakeeper.key"}}' "$1" 2>/dev/null || true
}

now() { date +%s.%N; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
image_size() { echo "$(mb "$(pm image inspect --format '{{.Size}}' "$1")") image"; }

# summary prints one line per image: name, what happened and how long it
# took, and its size (of the archive, when it has one).
summary() {
  local name=$1 image=$2 what=$3 start=$4 size=$5
  printf '%-10s %-52s %-7s %6.1fs  %s\n' "$name" "$image" "$what" \
    "$(awk -v a="$start" -v b="$(now)" 'BEGIN { print b - a }')" "$size"
}

# save writes an image to a docker-archive, the format `ctr images import`
# names after the image's tag (RepoTags). Written to .tmp and renamed, so a
# killed run never leaves a truncated archive under the final name.
save() {
  local image=$1 archive=$2
  rm -f "$archive.tmp"
  pm save --quiet --format docker-archive -o "$archive.tmp" "$image"
  mv "$archive.tmp" "$archive"
}

# unmount_under unmounts whatever a killed debootstrap left mounted (proc,
# sys, dev/pts) inside a directory, deepest first, before it is deleted.
unmount_under() {
  local dir=$1
  awk -v p="$dir/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m"
  done
}

go_version=$(go env GOVERSION)
go_version=${go_version#go}
goroot=$(go env GOROOT)

# ---------------------------------------------------------------- rootfs --
# A bookworm rootfs with the data plane's packages, from Debian's archive.
# The slow step (3 to 9 minutes), so it is kept as a directory keyed by what
# debootstrap is asked for (the mirror only changes where it comes from).
# It is written to a .tmp directory and renamed when complete: a killed run
# leaves only a .tmp, which the next run deletes and starts over.
suite=bookworm
includes=haproxy,keepalived,iproute2,ca-certificates
mirror="${HAKEEPER_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
debootstrap_args=(--variant=minbase "--include=$includes" "$suite")
rootfs="$cache/rootfs-$suite-$(echo "debootstrap ${debootstrap_args[*]}" | key)"
start=$(now)
if [[ ! -d "$rootfs" ]]; then
  echo "Building a $suite rootfs with debootstrap (a few minutes, cached in $rootfs)"
  unmount_under "$rootfs.tmp"
  rm -rf --one-file-system "$rootfs.tmp"
  debootstrap "${debootstrap_args[@]}" "$rootfs.tmp" "$mirror" >"$tmp/debootstrap.log" 2>&1 || {
    tail -20 "$tmp/debootstrap.log" >&2
    exit 1
  }
  unmount_under "$rootfs.tmp"
  mv "$rootfs.tmp" "$rootfs"
fi

# ---------------------------------------------------------------- debian --
# clean_rootfs makes the rootfs an image: no apt caches or package lists
# (they are stale by the time anyone runs apt, and ~100 MB), no copy of this
# machine's resolv.conf and hostname (the runtime mounts its own), and no
# docs, man pages or locales, as debian:bookworm-slim (its dpkg excludes are
# installed too, so packages added later stay slim). Safe to run again on an
# already cleaned rootfs.
clean_rootfs() {
  local r=$1
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/*
  mkdir -p "$r/var/lib/apt/lists/partial"
  rm -rf "$r"/var/log/bootstrap.log "$r"/var/log/apt/* "$r"/var/log/dpkg.log "$r"/var/log/alternatives.log
  : >"$r/etc/resolv.conf"
  : >"$r/etc/hostname"
  cat >"$r/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# As debian:bookworm-slim: no docs (but copyrights), man pages or locales.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/groff/* "$r"/usr/share/info/* \
    "$r"/usr/share/lintian/* "$r"/usr/share/linda/* "$r"/usr/share/locale/*
}

debian=localhost/hakeeper-lab/debian:$suite
debian_changes=('CMD ["bash"]')
debian_key=$( { echo "$rootfs"; declare -f clean_rootfs; printf '%s\n' "${debian_changes[@]}"; } | key)
start=$(now)
if [[ "$(label "$debian")" == "$debian_key" ]]; then
  summary debian "$debian" cached "$start" "$(image_size "$debian")"
else
  clean_rootfs "$rootfs"
  # /dev stays empty: the runtime mounts its own. xattrs keep file
  # capabilities, should a package set any.
  tar --numeric-owner --xattrs --xattrs-include='security.capability' \
    --exclude='./dev/*' -C "$rootfs" -cf - . |
    pm import --quiet --change "${debian_changes[0]}" --change "LABEL io.hakeeper.key=$debian_key" \
      --message "debootstrap ${debootstrap_args[*]}" - "$debian" >/dev/null
  summary debian "$debian" built "$start" "$(image_size "$debian")"
fi

# ---------------------------------------------------------------- golang --
# The build stage's image: the same bookworm plus this machine's Go
# toolchain, with the public golang image's environment. GOPROXY=off: the
# build has no network, and `go mod download` finds every module in the
# module cache mounted at /go/pkg/mod; GOTOOLCHAIN=local: never fetch
# another toolchain.
golang=localhost/hakeeper-lab/golang:$go_version
cat >"$tmp/golang.Containerfile" <<EOF
FROM $debian
COPY . /usr/local/go
ENV GOLANG_VERSION=$go_version GOTOOLCHAIN=local GOPATH=/go \\
    PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    GOPROXY=off GOFLAGS=-mod=readonly
RUN mkdir -p /go/src /go/bin && chmod -R 1777 /go
WORKDIR /go
EOF
golang_key=$( { echo "$debian_key $go_version"; cat "$tmp/golang.Containerfile"; } | key)
start=$(now)
if [[ "$(label "$golang")" == "$golang_key" ]]; then
  summary golang "$golang" cached "$start" "$(image_size "$golang")"
else
  pm build --quiet --pull=never --network=none --label "io.hakeeper.key=$golang_key" \
    -f "$tmp/golang.Containerfile" -t "$golang" "$goroot" >/dev/null
  summary golang "$golang" built "$start" "$(image_size "$golang")"
fi

# ---------------------------------------------------------------- static --
# Stands in for gcr.io/distroless/static-debian12:nonroot: the files a
# static Go binary looks for (users, groups, CA certificates, nsswitch.conf,
# a writable /tmp, the nonroot home) and nothing else. The tar is built the
# same way every run (sorted, mtime 0), so its hash is the key.
static=localhost/hakeeper-lab/static:nonroot
stage="$tmp/static"
mkdir -p "$stage/etc/ssl/certs" "$stage/tmp" "$stage/home/nonroot" "$stage/root"
cat >"$stage/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat >"$stage/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
echo 'hosts: files dns' >"$stage/etc/nsswitch.conf"
cp "$rootfs/etc/ssl/certs/ca-certificates.crt" "$stage/etc/ssl/certs/"
chmod 0755 "$stage" "$stage/etc" "$stage/etc/ssl" "$stage/etc/ssl/certs" "$stage/home"
chmod 0644 "$stage/etc/passwd" "$stage/etc/group" "$stage/etc/nsswitch.conf" "$stage/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$stage/tmp"
chmod 0700 "$stage/root" "$stage/home/nonroot"
chown -R 0:0 "$stage"
chown 65532:65532 "$stage/home/nonroot"
tar --sort=name --mtime=@0 --numeric-owner -C "$stage" -cf "$tmp/static.tar" .
static_changes=('USER 65532:65532' 'WORKDIR /home/nonroot'
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt')
static_key=$( { sha256sum <"$tmp/static.tar"; printf '%s\n' "${static_changes[@]}"; } | key)
start=$(now)
if [[ "$(label "$static")" == "$static_key" ]]; then
  summary static "$static" cached "$start" "$(image_size "$static")"
else
  changes=()
  for c in "${static_changes[@]}" "LABEL io.hakeeper.key=$static_key"; do changes+=(--change "$c"); done
  pm import --quiet "${changes[@]}" --message "hack/images.sh static base" "$tmp/static.tar" "$static" >/dev/null
  summary static "$static" built "$start" "$(image_size "$static")"
fi

# ------------------------------------------------------- pause and echo --
# hack/pause (the sandbox image) and hack/echo (the workload the lab's
# Services serve), each compiled on the host (static, like the
# Dockerfile's build) and put FROM scratch by its Containerfile. Keyed by
# its sources and the Go version; the tag is the key, so containerd's
# sandbox_image and the tests' pods change with it.
lab_image() {
  local name=$1
  local key image archive start
  key=$( { echo "$go_version"; cat "$root/hack/$name/main.go" "$root/hack/$name/Containerfile"; } | key)
  image=localhost/hakeeper-lab/$name:$key
  archive="$archives/$name-$key.tar"
  start=$(now)
  if [[ -f "$archive" ]]; then
    touch "$archive" # used: see prune
    summary "$name" "$image" cached "$start" "$(mb "$(stat -c %s "$archive")") archive"
  else
    if ! pm image exists "$image"; then
      mkdir -p "$tmp/$name"
      (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$name/$name" "./hack/$name")
      pm build --quiet --pull=never --network=none -f "$root/hack/$name/Containerfile" -t "$image" "$tmp/$name" >/dev/null
    fi
    save "$image" "$archive"
    summary "$name" "$image" built "$start" "$(mb "$(stat -c %s "$archive")") archive"
  fi
  printf -v "${name}_image" '%s' "$image"
  printf -v "${name}_archive" '%s' "$archive"
}
lab_image pause
lab_image echo

# -------------------------------------------------------------- hakeeper --
# The Dockerfile's targets, keyed by the Dockerfile, the build arguments
# (with the keys of the local images they name) and every file the build
# copies. The copied paths are read from the Dockerfile's COPY lines, so
# the key follows the Dockerfile. All files under them count, tracked,
# uncommitted or untracked, since COPY copies what is on disk.
#
# The build runs on a snapshot of exactly those files, not on the working
# tree: a file edited while the build runs (a cold build takes minutes)
# would otherwise end up in an image tagged with the key of older content.
build_args=("GO_IMAGE=$golang" "MANAGER_BASE=$static" "DATAPLANE_BASE=$debian")
# COPY --from lines name paths in another stage, not in the context.
mapfile -t copied < <(awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' "$root/Dockerfile" | sort -u)
[[ ${#copied[@]} -gt 0 ]] || { echo "hack/images.sh found no COPY from the context in the Dockerfile" >&2; exit 1; }
context="$tmp/context"
mkdir -p "$context"
(cd "$root" && cp -a --parents Dockerfile "${copied[@]}" "$context/")
# As .dockerignore says: tests and fixtures are no part of the build, so a
# test edit changes neither the key nor the image.
find "$context" \( -name '*_test.go' -o \( -type d -name testdata -prune \) \) -exec rm -rf {} +
sources_hash=$(cd "$context" && find "${copied[@]}" \( -type f -o -type l \) -print0 | sort -z | xargs -0 sha256sum | sha256sum)

# build_image builds one target unless its archive exists, then saves it.
# The module cache and a Go build cache are mounted into the build so that
# `go mod download` works with --network=none and a rebuild after a small
# change compiles only what changed.
build_image() {
  local target=$1 base_key=$2
  local tag
  tag=$( {
    cat "$context/Dockerfile"
    printf '%s\n' "${build_args[@]}" "golang $golang_key" "base $base_key"
    echo "$sources_hash"
  } | key)
  local image="localhost/hakeeper/$target:$tag" archive="$archives/$target-$tag.tar"
  local start
  start=$(now)
  if [[ -f "$archive" ]]; then
    touch "$archive" # used: see prune
    summary "$target" "$image" cached "$start" "$(mb "$(stat -c %s "$archive")") archive"
  else
    if ! pm image exists "$image"; then
      local args=()
      for a in "${build_args[@]}"; do args+=(--build-arg "$a"); done
      args+=(--quiet --pull=never --network=none --layers --target "$target" -f "$context/Dockerfile" -t "$image")
      # Buildah leaves the empty mount points of --volume (/go/pkg/mod,
      # /root/.cache/go-build) in the layer of every RUN, the data plane's
      # dpkg-query too. So each target is first built without the volumes:
      # that works when buildah has the Go build stage in its layer cache
      # (the data plane, right after the manager) and otherwise fails in
      # seconds (GOPROXY=off and no modules); then it is built with them.
      if ! pm build "${args[@]}" "$context" >"$tmp/build.log" 2>&1; then
        if [[ -z "${modules_ready:-}" ]]; then
          (cd "$root" && go mod download)
          modules_ready=1
        fi
        mkdir -p "$cache/go-build"
        pm build "${args[@]}" --volume "$(go env GOMODCACHE):/go/pkg/mod" \
          --volume "$cache/go-build:/root/.cache/go-build" "$context" >/dev/null
      fi
    fi
    save "$image" "$archive"
    summary "$target" "$image" built "$start" "$(mb "$(stat -c %s "$archive")") archive"
  fi
  printf -v "${target}_image" '%s' "$image"
  printf -v "${target}_archive" '%s' "$archive"
}
build_image manager "$static_key"
build_image dataplane "$debian_key"

cat >"$root/bin/images.env.tmp" <<EOF
# Written by hack/images.sh: the images \`make images\` built and their archives.
MANAGER_IMAGE=$manager_image
DATAPLANE_IMAGE=$dataplane_image
PAUSE_IMAGE=$pause_image
ECHO_IMAGE=$echo_image
MANAGER_ARCHIVE=$manager_archive
DATAPLANE_ARCHIVE=$dataplane_archive
PAUSE_ARCHIVE=$pause_archive
ECHO_ARCHIVE=$echo_archive
EOF
mv "$root/bin/images.env.tmp" "$root/bin/images.env"

# ----------------------------------------------------------------- prune --
# An archive costs up to ~230 MB and every source change makes new ones, so
# only the three most recently used archives of each image are kept (a run
# touches those it uses, so two clones sharing the cache keep theirs), and
# the two newest tags in podman; then the layers only removed tags used are
# dropped. A clone whose bin/images.env names a pruned archive is told by
# the lab to run `make images` again, which rebuilds it from the caches.
untagged=0
for name in manager dataplane pause echo; do
  ls -1t "$archives/$name"-*.tar 2>/dev/null | tail -n +4 | xargs -r rm -f
done
for repo in localhost/hakeeper/manager localhost/hakeeper/dataplane localhost/hakeeper-lab/pause localhost/hakeeper-lab/echo; do
  while read -r old; do
    pm rmi "$old" >/dev/null && untagged=1
  done < <(pm images --format '{{.Repository}}:{{.Tag}}' --filter "reference=$repo" | tail -n +3)
done
[[ $untagged == 0 ]] || pm image prune --force >/dev/null
echo "Images ready: $root/bin/images.env"
