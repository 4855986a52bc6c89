#!/usr/bin/env bash
# Everything a fresh machine needs: system libraries, a virtual environment, the project and its
# test tools. Safe to run again: each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! dpkg -s libgmp-dev >/dev/null 2>&1; then
    echo "setup: installing libgmp-dev (py-libp2p builds fastecdsa against it)"
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq libgmp-dev >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    echo "setup: installing gensyn-node and its test tools into .venv (torch==2.13.0, CPU)"
    if ! .venv/bin/python -m pip install -q -e '.[test]' > .venv/pip-install.log 2>&1; then
        grep -v '^WARNING: Location' .venv/pip-install.log >&2
        echo "setup: pip install failed (full log: .venv/pip-install.log)" >&2
        exit 1
    fi
    .venv/bin/python -c "import gensyn_node, runtime, torch, plyvel, nacl, sr25519, libp2p, matplotlib" 
    rm -f .venv/.installed-*
    touch "$stamp"
fi
