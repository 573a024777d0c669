#!/usr/bin/env bash
# Install promtool (Prometheus' rule checker and rule unit-test runner) at $1,
# taken from Debian's `prometheus` package. `make promtool` runs this; the
# reasons for this source are in the Makefile and docs/DEPLOYMENT.md.
#
# Only the promtool binary is unpacked from the .deb: installing the package
# would add a system user, a systemd unit and an init script whose post-install
# starts a Prometheus server (unless policy-rc.d forbids it), and pull in a
# dozen JavaScript packages for its web UI. promtool needs only libc.
set -euo pipefail

target=${1:?usage: install_promtool.sh TARGET}
case "$target" in /*) ;; *) target="$PWD/$target" ;; esac  # the work happens elsewhere
# The upstream release docs/DEPLOYMENT.md was checked with; Debian bookworm
# ships it (security fixes change only the Debian revision).
expected=${PROMTOOL_VERSION:-2.42.0}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

download() {
  # As root, apt drops to the _apt user, who cannot write to a private temp dir.
  apt-get -qq -o APT::Sandbox::User=root download prometheus
}
if ! download 2>/dev/null; then
  # A fresh machine has no package lists yet.
  if [ "$(id -u)" != 0 ]; then
    echo "install_promtool: 'apt-get download prometheus' failed; as root, run 'apt-get update'" \
      "first, or give make a promtool $expected.x you installed: make test PROMTOOL=/path/to/promtool" >&2
    exit 1
  fi
  apt-get -qq update
  download
fi

deb=$(echo prometheus_*.deb)
dpkg-deb --fsys-tarfile "$deb" | tar -xf - ./usr/bin/promtool
version=$(./usr/bin/promtool --version 2>&1 | head -1)
case "$version" in
  "promtool, version $expected"*) ;;
  *)
    echo "install_promtool: $deb has '$version', expected $expected: check the rule tests" \
      "with it, then update PROMTOOL_VERSION in the Makefile" >&2
    exit 1
    ;;
esac
mkdir -p "$(dirname "$target")"
install -m 0755 ./usr/bin/promtool "$target"
echo "installed $version at $target (from $deb)"
