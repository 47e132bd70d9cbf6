#!/usr/bin/env bash
# Start closeloop's local stack on loopback, reusing whatever already runs:
#   Kafka      (with `kafka` only) tansu on 127.0.0.1:9092, durable sqlite storage in .run/tansu.db
#   PostgreSQL the machine's on 127.0.0.1:5432, else a private cluster in .run/pg
#   SMTP       aiosmtpd on 127.0.0.1:2525, keeping every email in .run/maildir
#   webhooks   a receiver on 127.0.0.1:8090, logging to .run/webhooks.jsonl
# Writes .run/stack.env with the settings the service and the tests need.
# Usage: stack.sh [up [kafka]|down]   (default: up, without Kafka)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUN="$PWD/.run"
mkdir -p "$RUN"
export PATH="$HOME/.cargo/bin:$PATH"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do port_open "$port" && return 0; sleep 0.2; done
  echo "error: $name did not start on port $port; see $RUN/$name.log" >&2
  exit 1
}

start_broker() {
  if port_open 9092; then echo "kafka:      127.0.0.1:9092 (already running)"; return; fi
  nohup tansu broker \
    --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine "sqlite://.run/tansu.db" >"$RUN/tansu.log" 2>&1 &
  echo $! >"$RUN/tansu.pid"
  wait_port 9092 tansu
  echo "kafka:      127.0.0.1:9092 (tansu, storage $RUN/tansu.db)"
}

start_postgres() {
  if pg_isready -q -h 127.0.0.1 -p 5432; then
    PG_URL="postgres://postgres@127.0.0.1:5432"
    echo "postgresql: 127.0.0.1:5432 (already running)"
    return
  fi
  # No server: a private cluster in .run/pg on port 55432, from the Debian binaries.
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  PG_URL="postgres://postgres@127.0.0.1:55432"
  if pg_isready -q -h 127.0.0.1 -p 55432; then
    echo "postgresql: 127.0.0.1:55432 (private cluster, already running)"
    return
  fi
  local as=()
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$RUN/pg" postgres
    as=(runuser -u postgres --)
  fi
  if [ ! -f "$RUN/pg/PG_VERSION" ]; then
    mkdir -p "$RUN/pg"
    [ ${#as[@]} -gt 0 ] && chown postgres "$RUN/pg"
    "${as[@]}" "$bin/initdb" -D "$RUN/pg" -U postgres --auth=trust >"$RUN/pg-init.log"
  fi
  "${as[@]}" "$bin/pg_ctl" -D "$RUN/pg" -l "$RUN/pg/server.log" -w \
    -o "-p 55432 -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null
  echo "postgresql: 127.0.0.1:55432 (private cluster in $RUN/pg)"
}

start_smtp() {
  if port_open 2525; then echo "smtp:       127.0.0.1:2525 (already running)"; return; fi
  mkdir -p "$RUN/maildir/cur" "$RUN/maildir/new" "$RUN/maildir/tmp"
  nohup /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:2525 -c aiosmtpd.handlers.Mailbox "$RUN/maildir" \
    >"$RUN/smtp.log" 2>&1 &
  echo $! >"$RUN/smtp.pid"
  wait_port 2525 smtp
  echo "smtp:       127.0.0.1:2525 (emails in $RUN/maildir/new)"
}

start_webhooks() {
  if port_open 8090; then echo "webhooks:   127.0.0.1:8090 (already running)"; return; fi
  nohup /usr/bin/python3 deploy/local/webhook_receiver.py --port 8090 --log "$RUN/webhooks.jsonl" \
    --secret "whsec_Y2xvc2Vsb29wLWxvY2FsLWRldmVsb3BtZW50LWtleSE=" >"$RUN/webhooks.log" 2>&1 &
  echo $! >"$RUN/webhooks.pid"
  wait_port 8090 webhooks
  echo "webhooks:   127.0.0.1:8090 (received webhooks in $RUN/webhooks.jsonl)"
}

down() {
  for name in webhooks smtp tansu; do
    if [ -f "$RUN/$name.pid" ]; then
      kill "$(cat "$RUN/$name.pid")" 2>/dev/null || true
      rm -f "$RUN/$name.pid"
    fi
  done
  if [ -f "$RUN/pg/postmaster.pid" ]; then
    local bin as=()
    bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
    "${as[@]}" "$bin/pg_ctl" -D "$RUN/pg" -m fast stop >/dev/null || true
  fi
  echo "stack stopped"
}

case "${1:-up}" in
  up)
    KAFKA_ENV="# no Kafka broker: single-node mode (make run-kafka or make test start one)"
    if [ "${2:-}" = kafka ]; then
      start_broker
      KAFKA_ENV="export CLOSELOOP_TEST_KAFKA=127.0.0.1:9092"
    fi
    start_postgres
    start_smtp
    start_webhooks
    cat >"$RUN/stack.env" <<ENV
export CLOSELOOP__DATABASE__URL=$PG_URL/closeloop
export CLOSELOOP_TEST_DATABASE_URL=$PG_URL
$KAFKA_ENV
ENV
    ;;
  down) down ;;
  *) echo "usage: $0 [up [kafka]|down]" >&2; exit 2 ;;
esac
