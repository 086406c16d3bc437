# Sourced by the single-server bench scripts (callgrind_chat.sh, chat_ab.sh): a
# scratch directory with a self-signed certificate, and one parleyd on
# bench/parley.yml (workers: 2, STARTTLS) with its accounts, started and stopped.
# After `source`, set `repo` (the checkout) and call parley_run_init once.

parley_run_init() {  # PREFIX: makes $tmp, its certificate, and the EXIT trap
  tmp=$(mktemp -d "/tmp/$1.XXXXXX")
  pid=""
  trap parley_run_cleanup EXIT
  mkdir -p "$tmp/cert"
  # PARLEY_BENCH_KEY=ec: an ECDSA P-256 certificate (Parley's self-signed default) instead of RSA-2048.
  local key=(-newkey rsa:2048)
  [ "${PARLEY_BENCH_KEY:-rsa}" = ec ] && key=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
  openssl req -x509 "${key[@]}" -nodes -keyout "$tmp/cert/key.pem" -out "$tmp/cert/cert.pem" -days 7 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost >/dev/null 2>&1
  cat "$tmp/cert/cert.pem" "$tmp/cert/key.pem" > "$tmp/cert/both.pem"
}

parley_run_cleanup() { if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_parleyd BUILD DIR USERS [WRAPPER...]: writes DIR/parley.yml, registers USERS
# accounts, starts BUILD's parleyd (under WRAPPER, e.g. valgrind) and waits for its
# port; sets $pid and $port.
start_parleyd() {
  local build=$1 dir=$2 users=$3 plain i
  shift 3
  mkdir -p "$dir/data"
  port=$(free_port); plain=$(free_port)
  sed -e "s|@DIR@|$dir|g; s|@PORT@|$port|; s|@PLAIN_PORT@|$plain|; s|@WORKERS@|2|" \
      -e "s|@CERT_AND_KEY@|$tmp/cert/both.pem|" "$repo/bench/parley.yml" > "$dir/parley.yml"
  # PARLEY_BENCH_MAM=1: with mod_mam (issue 11's "MAM on": bench/chat_mam.py, BENCHMARKS.md).
  if [ "${PARLEY_BENCH_MAM:-0}" = 1 ]; then echo "  mod_mam: {}" >> "$dir/parley.yml"; fi
  # BUILD's own modules (not those of the tree it was built in: a saved copy of a build).
  printf 'module_paths:\n  - %s/modules\n' "$build" >> "$dir/parley.yml"
  "$build/tools/parley-bench/parley-bench" register --users "$users" --parleyctl "$build/tools/parleyctl/parleyctl" \
    --parley-config "$dir/parley.yml" --jobs 2 >/dev/null 2>&1
  "$@" "$build/core/parleyd" --config "$dir/parley.yml" > "$dir/server.log" 2>&1 &
  pid=$!
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "parleyd did not start: $dir/server.log" >&2
  return 1
}

stop_parleyd() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }
