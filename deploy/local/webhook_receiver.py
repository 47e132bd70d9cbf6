#!/usr/bin/env python3
"""A local webhook receiver for closeloop demos: verifies the Standard Webhooks
signature of every POST, appends it to a JSON-lines log, and prints a summary.

  webhook_receiver.py --port 8090 --log .run/webhooks.jsonl --secret whsec_...
"""
import argparse, base64, hashlib, hmac, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret, msg_id, timestamp, body, header):
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(sig.split(",", 1)[-1] == expected for sig in header.split())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--log", required=True)
    ap.add_argument("--secret", required=True)
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            msg_id = self.headers.get("webhook-id", "")
            ts = self.headers.get("webhook-timestamp", "")
            valid = verify(args.secret, msg_id, ts, body, self.headers.get("webhook-signature", ""))
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            entry = {"received_at": time.time(), "path": self.path, "webhook_id": msg_id,
                     "signature_valid": valid, "payload": payload}
            with open(args.log, "a") as f:
                f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            kind = payload.get("type") if isinstance(payload, dict) else "?"
            case = (payload or {}).get("data", {}).get("id", "?") if isinstance(payload, dict) else "?"
            print(f"webhook {kind} case={case} id={msg_id} signature={'valid' if valid else 'INVALID'}", flush=True)
            self.send_response(204 if valid else 401)
            self.end_headers()

        def log_message(self, *a):
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    sys.exit(main())
