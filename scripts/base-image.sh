#!/usr/bin/env bash
# Makes sure the images' base, debian:bookworm-slim, is in the local Docker engine.
# Pulled when a registry is reachable; otherwise made from Debian's own packages with
# debootstrap (minbase, the variant the official slim image is made from) and imported under
# the same tag, so the Dockerfile is the same here and for users.
set -euo pipefail
BASE=${BASE_IMAGE:-debian:bookworm-slim}
docker image inspect "$BASE" >/dev/null 2>&1 && exit 0
if timeout 30 docker pull -q "$BASE" >/dev/null 2>&1; then exit 0; fi
suite=${BASE#debian:}; suite=${suite%-slim}
echo "base-image: no registry reachable; making $BASE with debootstrap ($suite, minbase)"
bash "$(dirname "$0")/apt-deps.sh" debootstrap
# The Debian mirrors this machine's apt uses (whatever its sources say, in either format): the
# image installs its packages from where this machine can. DEBIAN_MIRROR and
# DEBIAN_SECURITY_MIRROR override them.
sources() { # "SITE RELEASE" of each configured source: apt's own view, then (for a machine
  # whose package lists were never fetched, where apt lists nothing) the files themselves
  apt-get indextargets --format '$(SITE) $(RELEASE)' 2>/dev/null
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] && awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
      print $i, $(i + 1) }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && awk '/^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) print uri, $i }
      /^$/ { uri = "" }' "$f"
  done
}
site_of() { # site_of RELEASE-PATTERN: the first apt source serving a release that matches
  sources | awk -v want="^($1)\$" '$2 ~ want { sub(/\/$/, "", $1); print $1; exit }' || true
}
mirror=${DEBIAN_MIRROR:-$(site_of "$suite")}
mirror=${mirror:-$(site_of '[a-z]+')} # a host of another release: its mirror serves ours too
security=${DEBIAN_SECURITY_MIRROR:-$(site_of '[a-z]+-security')}
[[ -n $mirror ]] || {
  echo "base-image: this machine's apt sources name no Debian mirror: set DEBIAN_MIRROR" >&2
  exit 1
}
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" >/dev/null
# The official image's package sources (with updates and security), and no apt caches.
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
if [[ -n $security ]]; then
  cat >>"$rootfs/etc/apt/sources.list.d/debian.sources" <<SOURCES

Types: deb
URIs: $security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
# This machine's own trust anchors (a TLS-inspecting proxy's CA, say): a build that installs
# ca-certificates then trusts what the host trusts. The official image has none; nothing else
# differs.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  mkdir -p "$rootfs/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
fi
# Like the official slim image: no manuals, docs or translations, now or from later installs.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'DPKG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
DPKG
find "$rootfs/usr/share/doc" -mindepth 2 ! -name copyright -type f -delete 2>/dev/null || true
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | docker import --change 'CMD ["bash"]' - "$BASE" >/dev/null
echo "base-image: $BASE made"
