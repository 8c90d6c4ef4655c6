#!/usr/bin/env bash
# provision-python.sh: print the path of a CPython >= 3.14.2, installing one if the machine has none.
#
# Home Assistant 2026.x needs Python >= 3.14.2; Debian 12 ships 3.11. Order of preference:
#   1. $HPOLL_PYTHON, if set (must satisfy the version check, or we fail loudly);
#   2. python3.14 / python3 on PATH, if new enough;
#   3. a private interpreter under $HPOLL_PY_PREFIX (default /opt/hpoll-py314), built here once:
#      Debian testing's python3.14 packages and their whole dependency closure (glibc included) are
#      downloaded with a throw-away apt configuration, unpacked with `dpkg -x`, and the interpreter is
#      pointed at the private loader with patchelf. Nothing on the host changes: no sources.list
#      edit, no dpkg database entry, no libc upgrade.
# stdout carries only the interpreter path; progress goes to stderr. Safe to run repeatedly and
# concurrently (flock).
set -euo pipefail

MIN=${HPOLL_PY_MIN:-3.14.2}
PREFIX=${HPOLL_PY_PREFIX:-/opt/hpoll-py314}
SUITES=${HPOLL_PY_SUITES:-forky sid}
MIRROR=${HPOLL_PY_MIRROR:-http://deb.debian.org/debian}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
CACHE=${HPOLL_PY_CACHE:-/var/tmp/hpoll-py314}
PRIVATE_PY="$PREFIX/usr/bin/python3.14"

say() { echo "[python] $*" >&2; }
fail() { say "error: $*"; exit 1; }

# Usable = new enough and has the stdlib parts venv, pip and Home Assistant rely on.
usable() {
    [ -n "$1" ] && [ -x "$1" ] || return 1
    "$1" - "$MIN" 2>/dev/null <<'PY'
import sys
want = tuple(map(int, sys.argv[1].split(".")))
if sys.version_info[:3] < want:
    raise SystemExit(1)
if sys.prefix != sys.base_prefix:  # a virtualenv's interpreter: it may be the one we replace
    raise SystemExit(1)
import ctypes, ensurepip, hashlib, lzma, sqlite3, ssl, venv, zlib, zoneinfo  # noqa: F401
ssl.create_default_context()
sqlite3.connect(":memory:").execute("select 1")
PY
}

if [ -n "${HPOLL_PYTHON:-}" ]; then
    usable "$HPOLL_PYTHON" || fail "HPOLL_PYTHON=$HPOLL_PYTHON is not a working Python >= $MIN"
    echo "$HPOLL_PYTHON"; exit 0
fi
for candidate in "$(command -v python3.14 || true)" "$(command -v python3 || true)" "$PRIVATE_PY"; do
    if usable "$candidate"; then echo "$candidate"; exit 0; fi
done

command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null \
    || fail "no Python >= $MIN found and this is not a Debian-like host; set HPOLL_PYTHON"
mkdir -p "$CACHE"
exec 8>"$CACHE/lock"
flock 8
if usable "$PRIVATE_PY"; then echo "$PRIVATE_PY"; exit 0; fi   # built while we waited

arch=$(dpkg --print-architecture)
case "$arch" in
    amd64) triplet=x86_64-linux-gnu ;;
    arm64) triplet=aarch64-linux-gnu ;;
    *) fail "architecture $arch is not supported" ;;
esac

# A private apt for one suite. The empty dpkg status makes apt resolve the complete closure,
# so the host's (older) libraries are never mixed with testing's.
private_apt() {
    local root="$CACHE/apt-$1"
    rm -rf "$root"; mkdir -p "$root"/{lists/partial,archives/partial,etc/parts,etc/prefs}
    : >"$root/status"
    echo "deb [signed-by=$KEYRING] $MIRROR $1 main" >"$root/etc/sources.list"
    APT=(-o "Dir::Etc::SourceList=$root/etc/sources.list" -o "Dir::Etc::SourceParts=$root/etc/parts"
         -o "Dir::Etc::PreferencesParts=$root/etc/prefs" -o "Dir::Etc::Preferences=$root/etc/prefs/none"
         -o "Dir::State::Lists=$root/lists" -o "Dir::State::status=$root/status"
         -o "Dir::Cache::Archives=$root/archives" -o "Dir::Cache=$root"
         -o "APT::Install-Recommends=false" -o "APT::Sandbox::User=root" -o "Debug::NoLocking=true"
         -o "Acquire::Languages=none" -o "APT::Architecture=$arch" -o "APT::Architectures=$arch")
    apt-get "${APT[@]}" -qq update >&2 || fail "apt-get update for $1 failed"
    APT_ROOT=$root
}

suite=""
for s in $SUITES; do
    private_apt "$s"
    version=$(apt-cache "${APT[@]}" policy python3.14-venv | awk '/Candidate:/ {print $2}')
    if [ -n "$version" ] && [ "$version" != "(none)" ] && dpkg --compare-versions "$version" ge "$MIN"; then
        suite=$s; say "using python3.14 $version from Debian $s"; break
    fi
    say "Debian $s offers python3.14-venv '${version:-none}'; need >= $MIN"
done
[ -n "$suite" ] || fail "no suite among '$SUITES' has python3.14 >= $MIN"
apt-get "${APT[@]}" -qq -y install --download-only python3.14-venv >&2 || fail "download of python3.14-venv failed"
debs=("$APT_ROOT"/archives/*.deb)
say "unpacking ${#debs[@]} packages"

patchelf=$(command -v patchelf || true)
if [ -z "$patchelf" ]; then
    host_suite=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
    private_apt "$host_suite"
    (cd "$APT_ROOT" && apt-get "${APT[@]}" -qq download patchelf >&2) || fail "download of patchelf failed"
    dpkg-deb -x "$APT_ROOT"/patchelf_*.deb "$APT_ROOT/patchelf"
    patchelf="$APT_ROOT/patchelf/usr/bin/patchelf"
fi

staging="$PREFIX.new"
rm -rf "$staging"; mkdir -p "$staging"
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$staging"; done
libdir="$PREFIX/usr/lib/$triplet"
loader=$(cd "$staging/usr/lib/$triplet" && ls ld-linux*.so.* | head -n 1)
[ -n "$loader" ] || fail "the downloaded libc6 has no dynamic loader"
"$patchelf" --set-interpreter "$libdir/$loader" --force-rpath --set-rpath "$libdir" "$staging/usr/bin/python3.14"
# ensurepip looks for its wheels where Debian installs them system-wide; point it inside the prefix.
sed -i "s|'WHEEL_PKG_DIR': '/usr/share/python-wheels/'|'WHEEL_PKG_DIR': '$PREFIX/usr/share/python-wheels/'|" \
    "$staging"/usr/lib/python3.14/_sysconfigdata_*.py
grep -q "'WHEEL_PKG_DIR': '$PREFIX/" "$staging/usr/lib/python3.14/_sysconfigdata__$triplet.py" \
    || fail "could not relocate ensurepip's wheel directory"
{ for deb in "${debs[@]}"; do dpkg-deb -f "$deb" Package Version | paste -sd' '; done
  echo "# Debian $suite via $MIRROR, $(date -u +%FT%TZ)"; } >"$staging/PACKAGES.txt"

rm -rf "$PREFIX.old"
if [ -e "$PREFIX" ]; then mv "$PREFIX" "$PREFIX.old"; fi
mv "$staging" "$PREFIX"
rm -rf "$PREFIX.old" "$CACHE"/apt-*
"$PRIVATE_PY" -m compileall -q -j0 "$PREFIX/usr/lib/python3.14" >/dev/null 2>&1 || true
usable "$PRIVATE_PY" || fail "the unpacked interpreter failed its self-test; see $PREFIX"
say "installed $("$PRIVATE_PY" -V) in $PREFIX"
echo "$PRIVATE_PY"
