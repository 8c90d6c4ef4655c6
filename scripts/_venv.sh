# Sourced by scripts/test and scripts/run: a project virtualenv that matches pyproject.toml.
# Re-installs only when pyproject.toml's install-relevant part changed (hash kept in the venv), so repeated runs
# start in seconds while a fresh clone still gets everything.
ensure_venv() {
    local root venv stamp want py
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    venv=${HPOLL_VENV:-$root/.venv}
    stamp="$venv/.hpoll-installed"
    # Only what pip reads (build system, dependencies, packages) decides a reinstall, not tool
    # settings such as ruff's.
    want=$(sed '/^\[tool\.\(ruff\|mypy\|pytest\|coverage\)/,$d' "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        py=$(bash "$root/scripts/provision-python.sh")
        echo "[venv] creating $venv with $("$py" -V)" >&2
        rm -rf "$venv"
        "$py" -m venv "$venv"
        # pip's chatter goes to a log; it is shown only when the install fails.
        local log="$venv/pip-install.log"
        if ! { "$venv/bin/python" -m pip install --disable-pip-version-check --upgrade pip &&
               "$venv/bin/python" -m pip install --disable-pip-version-check -e "$root[test,bench]"; } >"$log" 2>&1; then
            tail -n 40 "$log" >&2
            echo "[venv] pip install failed; full log: $log" >&2
            return 1
        fi
        echo "$want" >"$stamp"
    fi
    export PATH="$venv/bin:$PATH"
    export VIRTUAL_ENV="$venv"
}
