#!/usr/bin/env bash
# Installs the Debian packages that rcgc's build, tests and benchmarks need,
# and only those that are missing. Prints nothing when everything is there.
#
# Works offline apart from the Debian mirrors in /etc/apt/sources.list*:
# Bazel is Debian's bazel-bootstrap (Bazel 4.2), which needs no downloads.
# Runs apt-get as root, through sudo when the caller is not root.
set -euo pipefail

PACKAGES=(
    make                # drives everything (.ci/run installs it through here)
    bazel-bootstrap     # Bazel 4.2, offline
    clang               # every configuration builds with clang
    libclang-rt-14-dev  # ThreadSanitizer, AddressSanitizer, UBSan runtimes
    liburcu-dev         # QSBR deferred reclamation
    libck-dev           # ConcurrencyKit
    libcmocka-dev       # unit tests
    libmimalloc-dev     # benchmark peers
    libjemalloc-dev
    libgc-dev           # Boehm GC, benchmark peer
    pkg-config          # the install test links through rcgc.pc
    gnuplot-nox         # benchmark plots
    graphviz
    python3             # benchmark report
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != installed ]; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "deps: missing packages: ${missing[*]}" >&2
        echo "deps: not root and no sudo; install them as root:" >&2
        echo "      apt-get install ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q -o Dpkg::Options::=--force-confdef \
    -o Dpkg::Options::=--force-confold "${missing[@]}"
