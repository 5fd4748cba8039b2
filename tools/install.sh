#!/usr/bin/env bash
# Builds rcgc in the default (optimised) configuration and installs
#   PREFIX/include/rcgc.h
#   PREFIX/lib/librcgc.a  PREFIX/lib/librcgc.so
#   PREFIX/lib/pkgconfig/rcgc.pc
# Usage: tools/install.sh PREFIX     (DESTDIR, if set, is prepended to every
# installed path but not to the paths written into rcgc.pc)
# `make install PREFIX=dir` runs this after `make deps`.
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 PREFIX" >&2
    exit 2
fi
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
prefix=$(realpath -m -- "$1")   # rcgc.pc needs an absolute path
dest=${DESTDIR:-}${prefix}
targets=(//lib:rcgc //lib:librcgc.so)

die() { echo "install: $*" >&2; exit 1; }

"$BAZEL" build --color=no --curses=no "${targets[@]}"

# Ask Bazel for the files these targets produced in this configuration
# rather than trusting bazel-bin, which points at whichever configuration
# was built last and may hold stale outputs.
execroot=$("$BAZEL" info --color=no execution_root 2>/dev/null)
outputs=$("$BAZEL" cquery --color=no --output=starlark \
    --starlark:expr='"\n".join([f.path for f in target.files.to_list()])' \
    "${targets[0]} + ${targets[1]}" 2>/dev/null)

pick() {    # first output whose name is one of the arguments, in that order
    local name line
    for name in "$@"; do
        while IFS= read -r line; do
            if [ "${line##*/}" = "$name" ]; then
                echo "$execroot/$line"
                return 0
            fi
        done <<<"$outputs"
    done
    return 1
}
# Users' executables are PIE by default on Debian: prefer the PIC archive.
# An alwayslink library names its archives .lo; the contents are the same.
static=$(pick librcgc.pic.a librcgc.a librcgc.pic.lo librcgc.lo) ||
    die "no static archive among the outputs of //lib:rcgc:"$'\n'"$outputs"
shared=$(pick librcgc.so) ||
    die "no librcgc.so among the outputs of //lib:librcgc.so:"$'\n'"$outputs"

# A shared library that does not define the API, or does not record its own
# dependencies, would only fail later, in the user's link.
# (nm's output is captured first: with pipefail, `nm | grep -q` fails when
# grep exits at its match and nm dies of SIGPIPE.)
exported=$(nm -D --defined-only "$shared")
if ! grep -qw rcgc_init <<<"$exported"; then
    die "$shared does not export rcgc_init: the library's objects were not
linked into it (a cc_binary with linkshared links a cc_library's archive
without --whole-archive). lib/BUILD.bazel must link every object into it."
fi
needed=$(readelf -d "$shared" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
for lib in liburcu-qsbr liburcu-common libck; do
    grep -q "^$lib\.so" <<<"$needed" ||
        die "$shared does not list $lib as NEEDED (it has: ${needed//$'\n'/ })"
done

major=$(sed -n 's/^#define RCGC_VERSION_MAJOR *\([0-9][0-9]*\).*/\1/p' include/rcgc.h)
minor=$(sed -n 's/^#define RCGC_VERSION_MINOR *\([0-9][0-9]*\).*/\1/p' include/rcgc.h)
version=${major:-0}.${minor:-0}

install -d "$dest/include" "$dest/lib/pkgconfig"
install -m 644 include/rcgc.h "$dest/include/rcgc.h"
install -m 644 "$static" "$dest/lib/librcgc.a"
install -m 644 "$shared" "$dest/lib/librcgc.so"
# The profiling tools' scripts (docs/PROFILING.md).
install -d "$dest/bin"
for tool in rcgc-profile-plot rcgc-dot rcgc-symbolize; do
    install -m 755 "tools/$tool" "$dest/bin/$tool"
done

esc=$(printf '%s' "$prefix" | sed 's/[\\|&]/\\&/g')
sed -e "s|@PREFIX@|$esc|g" -e "s|@VERSION@|$version|g" tools/rcgc.pc.in |
    grep -v '^# pkg-config file for rcgc' >"$dest/lib/pkgconfig/rcgc.pc"
chmod 644 "$dest/lib/pkgconfig/rcgc.pc"

echo "install: rcgc $version installed under ${dest}"
for f in include/rcgc.h lib/librcgc.a lib/librcgc.so lib/pkgconfig/rcgc.pc; do
    echo "  $dest/$f"
done
