#!/usr/bin/env bash
# `make package`: a Debian package of Goulette built with dpkg-deb from the
# release binaries (no extra tool to install): target/debian/goulette_<version>_<arch>.deb
#   /usr/bin/goulette, goulette-broker, goulette-sentinel, goulette-mirror
#   /lib/systemd/system/goulette-{broker,sentinel,mirror}.service   (deploy/systemd/; the
#     mirror's unit is not enabled: it needs /etc/goulette/mirror.toml, from the examples)
#   /etc/goulette/{broker,sentinel}.toml   one-machine settings (conffiles, deploy/debian/)
#   /usr/share/doc/goulette/examples/      the fully commented example settings (mirror-*.toml too)
#   /var/lib/goulette                      the data directory (owned by the goulette system user)
# Prints the package's path on its last line.
set -euo pipefail
ME=package
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
for bin in goulette goulette-broker goulette-sentinel goulette-mirror; do
  [ -x "$BIN/$bin" ] || die "$BIN/$bin is missing; run: make build-release"
done

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
install -D -m 0755 -t "$root/usr/bin" "$BIN/goulette" "$BIN/goulette-broker" "$BIN/goulette-sentinel" "$BIN/goulette-mirror"
# Debug information stays in target/release; the package carries none.
if command -v strip >/dev/null; then strip --strip-debug "$root"/usr/bin/*; fi
install -D -m 0644 -t "$root/lib/systemd/system" deploy/systemd/goulette-broker.service deploy/systemd/goulette-sentinel.service \
  deploy/systemd/goulette-mirror.service
install -D -m 0644 -t "$root/etc/goulette" deploy/debian/broker.toml deploy/debian/sentinel.toml
install -D -m 0644 broker/config.example.toml "$root/usr/share/doc/goulette/examples/broker.toml"
install -D -m 0644 sentinel/config.example.toml "$root/usr/share/doc/goulette/examples/sentinel.toml"
for example in client/mirror/examples/*.toml; do
  install -D -m 0644 "$example" "$root/usr/share/doc/goulette/examples/mirror-$(basename "$example")"
done
install -D -m 0644 README.md "$root/usr/share/doc/goulette/README.md"
install -D -m 0644 docs/mirror.md "$root/usr/share/doc/goulette/mirror.md"
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
Depends: adduser, libc6, librdkafka1 (>= 1.9.2)
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
