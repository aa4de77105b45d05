#!/usr/bin/env bash
# One-time (and idempotent) set-up for developers and CI:
#   1. a Python >= 3.10 virtualenv in .venv with zkelect installed editable plus its test tools;
#   2. a ZooKeeper distribution and a Java runtime, which LocalEnsemble needs to start real servers;
#   3. tools some tests start for real: Prometheus and promtool, PostgreSQL, Apache Curator and a
#      JDK (javac, for the Curator peer). Only 1 and 2 are required: without root, missing tools of
#      group 3 get a warning here, and the tests that need them fail with a clear message.
# Re-running is cheap: pip runs again only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "setup: $*" >&2; exit 1; }
HINT="apt-get install zookeeper default-jre-headless (Debian/Ubuntu) or set ZOOKEEPER_HOME to an Apache ZooKeeper 3.5+ distribution"

# --- Python -------------------------------------------------------------------------------------
find_python() {
    local cand
    for cand in ${PYTHON:-} python3 python3.13 python3.12 python3.11 python3.10; do
        command -v "$cand" >/dev/null 2>&1 || continue
        if "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

if ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1; then
    py=$(find_python) || die "Python 3.10 or newer is required: install python3 (>= 3.10) or set PYTHON=/path/to/python3"
    rm -rf .venv
    if ! "$py" -m venv .venv >/dev/null 2>&1; then
        # Debian and Ubuntu ship venv's pip bootstrap in a separate package.
        venv_pkg="python$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
        if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
            echo "setup: installing ${venv_pkg} with apt-get" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$venv_pkg" >/dev/null \
                || die "could not install ${venv_pkg}"
            rm -rf .venv
            "$py" -m venv .venv || die "'$py -m venv' failed even with ${venv_pkg} installed"
        else
            rm -rf .venv
            die "'$py -m venv' failed: apt-get install ${venv_pkg} (Debian/Ubuntu)"
        fi
    fi
fi

stamp=.venv/.zkelect-setup-stamp
want="$(sha256sum pyproject.toml | cut -d' ' -f1) $(.venv/bin/python -V 2>&1)"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
    echo "$want" >"$stamp"
fi

# --- ZooKeeper and Java -------------------------------------------------------------------------
have_java() { [[ -n "${JAVA_HOME:-}" && -x "${JAVA_HOME}/bin/java" ]] || command -v java >/dev/null 2>&1; }

missing=()
if [[ -n "${ZOOKEEPER_HOME:-}" ]]; then
    compgen -G "${ZOOKEEPER_HOME}/lib/zookeeper*.jar" >/dev/null \
        || compgen -G "${ZOOKEEPER_HOME}/zookeeper*.jar" >/dev/null \
        || die "ZOOKEEPER_HOME=${ZOOKEEPER_HOME} holds no zookeeper*.jar (looked in it and its lib/): ${HINT}"
elif [[ ! -f /usr/share/java/zookeeper.jar ]]; then
    missing+=(zookeeper)
fi
have_java || missing+=(default-jre-headless)

# --- Tools some tests run (Debian package names) -------------------------------------------------
# `setup.sh --minimal` (the demo) needs only ZooKeeper and Java; the tests need these too.
optional=()
if [[ "${1:-}" != "--minimal" ]]; then
    { command -v prometheus && command -v promtool; } >/dev/null 2>&1 || optional+=(prometheus)
    { compgen -G "/usr/lib/postgresql/*/bin/initdb" || command -v initdb; } >/dev/null 2>&1 \
        || optional+=(postgresql)
    [[ -f /usr/share/java/curator-recipes.jar ]] || optional+=(libcurator-recipes-java)
    command -v javac >/dev/null 2>&1 || optional+=(default-jdk-headless)
fi

wanted=("${missing[@]}" "${optional[@]}")
if ((${#wanted[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${wanted[*]} with apt-get" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${wanted[@]}" >/dev/null \
            || die "apt-get could not install ${wanted[*]}"
    else
        if ((${#optional[@]})); then
            echo "setup: warning: missing ${optional[*]}: the tests that use them will fail; apt-get install ${optional[*]} (Debian/Ubuntu)" >&2
        fi
        ((${#missing[@]} == 0)) || die "missing ${missing[*]}: ${HINT}"
    fi
fi

# The library's own lookup has the last word: it is what tests, demo and bench will use.
.venv/bin/python -c 'from zkelect.testing.ensemble import find_zookeeper as f; i = f(); print(f"setup: ok ({i.description}, java: {i.java})")' \
    || die "ZooKeeper is still not usable: ${HINT}"
