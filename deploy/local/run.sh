#!/usr/bin/env bash
# `make run`: start the service against the local stack, publish the sample
# events, and say where to look. Ctrl-C stops the service (SIGTERM, clean drain);
# `make stop` stops the stack.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .run/stack.env
BIN=target/debug/closeloop
SAMPLE=${SAMPLE:-../shared/data/feedback-sample.jsonl}

if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then
  echo "error: port 8080 is taken (another closeloop still running? 'pkill -f \"closeloop serve\"')" >&2
  exit 1
fi

$BIN serve 2> >(tee .run/closeloop.log >&2) &
SERVICE=$!
trap 'kill -TERM $SERVICE 2>/dev/null; wait $SERVICE' INT TERM

ready=""
for _ in $(seq 1 150); do
  kill -0 $SERVICE 2>/dev/null || { echo "error: the service exited; see .run/closeloop.log" >&2; exit 1; }
  if curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { echo "error: the service is not ready after 30 s; see .run/closeloop.log" >&2; exit 1; }

# The API needs a token: one for ops and one for the LYON-02 store manager,
# kept in .run/ and reused while they work.
token() { # file name role [owner]
  local file=$1 name=$2 role=$3 owner=${4:-}
  if [ -s "$file" ] && curl -fsS -o /dev/null -H "authorization: Bearer $(cat "$file")" \
       http://127.0.0.1:8080/v1/root-causes; then return; fi
  $BIN tokens create --name "$name" --role "$role" ${owner:+--owner "$owner"} 2>/dev/null > "$file"
}
token .run/ops-token ops.demo ops
token .run/claire-token claire.martin manager mgr-lyon-02

$BIN publish "$SAMPLE"
cat <<INFO

closeloop is running.
  tokens:    export TOKEN=\$(cat .run/ops-token)           (ops: every case, rules, silences…)
             export CLAIRE=\$(cat .run/claire-token)       (the LYON-02 manager: her cases only)
             curl -H "authorization: Bearer \$TOKEN" ...
  API:       http://127.0.0.1:8080/v1/cases?status=open
  a case:    http://127.0.0.1:8080/cases/<id>   (the link in each email)
  emails:    .run/maildir/new/          (one file per email)
  webhooks:  .run/webhooks.jsonl        (signature checked by the receiver)
  dead letters: topic closeloop.feedback.v1.dlq  (try: $BIN publish ../shared/data/feedback-invalid.jsonl)
  logs:      .run/closeloop.log
Ctrl-C stops the service; 'make stop' stops the broker, SMTP server and receiver.

INFO
wait $SERVICE
