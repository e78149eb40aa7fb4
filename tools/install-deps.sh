#!/bin/sh
# Installs what bn needs to build and test, from Debian's packages (and the
# JavaScript reference tokenizer and OpenAI's client from npm, for the
# tests). Run as root or with sudo; packages already present are left alone.
set -eu
cd "$(dirname "$0")/.."

pkgs="make gcc g++ clang zlib1g-dev libxxhash-dev libpcre2-dev libcjson-dev libmicrohttpd-dev curl
      bats bats-assert bats-support python3 python3-numpy python3-jinja2 python3-xxhash xxhash man-db groff-base mandoc valgrind parallel time
      openssh-server openssh-client haproxy sentencepiece python3-sentencepiece
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
# Node.js may come from elsewhere than Debian (with its own npm); only a
# machine without node and npm gets Debian's.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
if [ -n "$missing" ]; then
    echo "installing:$missing" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # openssh-server is there for the sshd instances tests/hosts.bats starts
    # on loopback itself; Debian's own ssh service is not to be started.
    case " $missing " in
    *" openssh-server "*) $SUDO mkdir -p /etc/ssh && $SUDO touch /etc/ssh/sshd_not_to_be_run ;;
    esac
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
# The independent tokenizer reference (js-tiktoken) and OpenAI's own client
# (openai, driving bn-serve in tests/serve-openai.bats), pinned by package-lock.
if [ -f tests/ref/package-lock.json ] &&
    { [ ! -d tests/ref/node_modules/js-tiktoken ] || [ ! -d tests/ref/node_modules/openai ]; }; then
    (cd tests/ref && npm ci --no-audit --no-fund --loglevel=error)
fi
