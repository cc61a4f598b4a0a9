#!/usr/bin/env bash
# `make package`: a Debian package of Goulette built with dpkg-deb from the
# release binaries (no extra tool to install): target/debian/goulette_<version>_<arch>.deb
#   /usr/bin/goulette, goulette-broker, goulette-sentinel
#   /lib/systemd/system/goulette-{broker,sentinel}.service   (deploy/systemd/)
#   /etc/goulette/{broker,sentinel}.toml   one-machine settings (conffiles, deploy/debian/)
#   /usr/share/doc/goulette/examples/      the fully commented example settings
#   /var/lib/goulette                      the data directory (owned by the goulette system user)
# Prints the package's path on its last line.
set -euo pipefail
ME=package
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
for bin in goulette goulette-broker goulette-sentinel; do
  [ -x "$BIN/$bin" ] || die "$BIN/$bin is missing; run: make build-release"
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 -t "$root/usr/bin" "$BIN/goulette" "$BIN/goulette-broker" "$BIN/goulette-sentinel"
# Debug information stays in target/release; the package carries none.
if command -v strip >/dev/null; then strip --strip-debug "$root"/usr/bin/*; fi
install -D -m 0644 -t "$root/lib/systemd/system" deploy/systemd/goulette-broker.service deploy/systemd/goulette-sentinel.service
install -D -m 0644 -t "$root/etc/goulette" deploy/debian/broker.toml deploy/debian/sentinel.toml
install -D -m 0644 broker/config.example.toml "$root/usr/share/doc/goulette/examples/broker.toml"
install -D -m 0644 sentinel/config.example.toml "$root/usr/share/doc/goulette/examples/sentinel.toml"
install -D -m 0644 README.md "$root/usr/share/doc/goulette/README.md"
install -d -m 0750 "$root/var/lib/goulette"
install -D -m 0755 -t "$root/DEBIAN" deploy/debian/postinst deploy/debian/postrm
printf '/etc/goulette/broker.toml\n/etc/goulette/sentinel.toml\n' >"$root/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: goulette
Version: $version
Architecture: $arch
Maintainer: Goulette developers <goulette@localhost>
Installed-Size: $size
Depends: adduser, libc6
Recommends: etcd-server
Section: net
Priority: optional
Description: distributed, persistent message queue
 Brokers store messages in a write-ahead log and sealed fragments and
 replicate them; sentinels keep the metadata in etcd and assign partitions;
 clients produce and consume with the goulette CLI or any Kafka client.
CONTROL

mkdir -p target/debian
out="target/debian/goulette_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
log "built $out"
echo "$out"
