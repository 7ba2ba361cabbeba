# Shared by the bench scripts that start one local server: sourced, not run.
# Sets CAIRN_BIN (built if unset), $work (removed on exit), root
# credentials; start_server [SERVER ARGS...] starts `cairn server` on 4
# fresh drive folders under $work and sets $endpoint; stop_server stops it.

if [[ -z "${CAIRN_BIN:-}" ]]; then
    cargo build --release -p cairn >&2
    target_dir="$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)"
    CAIRN_BIN="$target_dir/release/cairn"
fi
[[ -x "$CAIRN_BIN" ]] || { echo "no binary at $CAIRN_BIN" >&2; exit 1; }

work="$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/cairn-bench.XXXXXX")"
server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap 'stop_server; rm -rf "$work"' EXIT INT TERM

export CAIRN_ROOT_USER="bench-$RANDOM$RANDOM"
export CAIRN_ROOT_PASSWORD="bench-secret-$RANDOM$RANDOM$RANDOM"

start_server() { # [server args...]
    rm -rf "$work"/disk*
    mkdir -p "$work"/disk{1,2,3,4}
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    endpoint="http://127.0.0.1:$port"
    CAIRN_LOG=warn "$CAIRN_BIN" server --address "127.0.0.1:$port" "$@" \
        --no-scanner "$work"/disk{1...4} >"$work/server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$endpoint/_cairn/health/ready" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start:" >&2; cat "$work/server.log" >&2; exit 1
}
