#!/usr/bin/env python3
"""An example modelmerge evaluator: scores a small digits classifier on a held-out split.

The merge service POSTs a candidate, signed with HMAC-SHA256 over "<timestamp>.<body>" (headers
X-Modelmerge-Timestamp and X-Modelmerge-Signature: sha256=<hex>), and this answers with its score:

  request  {"candidate": {"ref": ..., "content_digest": ..., "location": "file:///path/to/model/",
                          "split": "validation", "deadline": "2026-12-07T10:00:00Z"}}
  response {"score": 0.93, "metrics": {"accuracy": 0.93, "examples": 297}}

A request to a URL ending in /later is answered 202 at once, and the score is POSTed afterwards to the
candidate's callback_url as {"evaluator": ..., "content_digest": ..., "score": ..., "metrics": {...}}, signed the
same way with the same secret: how an evaluator too slow to answer within an HTTP request reports.

The model is the MLP the tests train (fc1.weight [H, 64], fc1.bias, fc2.weight [10, H], fc2.bias, ReLU between),
read from <location>/model.safetensors, where the location is a local path or a file:// URI (the merge service
stages candidates in its output store; an evaluator of an S3 store would read s3:// with its own credentials). The data is the digits set (1797 rows of 64 pixels 0..16 and a label):
rows 1200-1499 are the validation split, rows 1500-1796 the test split; rows before 1200 are for training.

  python3 evaluator.py --data digits.csv.gz --secret-file secret [--host 127.0.0.1] [--port 0]

prints "listening on <port>" once it serves. Needs numpy.
"""
import argparse
import gzip
import hashlib
import hmac
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

SPLITS = {"validation": (1200, 1500), "test": (1500, 1797)}
MAX_AGE_SECONDS = 300


def load_digits(path):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.float32)
    return rows[:, :64] / 16.0, rows[:, 64].astype(np.int64)


def read_safetensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "F32":
            values = np.frombuffer(raw, dtype="<f4")
        elif info["dtype"] == "F16":
            values = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif info["dtype"] == "BF16":
            values = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"tensor '{name}': dtype {info['dtype']} is not read here")
        tensors[name] = values.reshape(info["shape"])
    return tensors


def local_path(location):
    """A candidate's location as a local directory: a plain path or a file:// URI."""
    if location.startswith("file:"):
        return urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    if "://" in location:
        raise ValueError(f"location '{location}' is not local (this example reads file:// and paths)")
    return location


def accuracy(location, x, y):
    w = read_safetensors(os.path.join(local_path(location), "model.safetensors"))
    hidden = np.maximum(x @ w["fc1.weight"].T + w["fc1.bias"], 0)
    logits = hidden @ w["fc2.weight"].T + w["fc2.bias"]
    return float(np.mean(np.argmax(logits, axis=1) == y))


def call_back(secret, candidate, result):
    """POSTs a score to the merge service's callback URL, signed as the service signs its requests."""
    time.sleep(0.2)
    body = json.dumps({"evaluator": candidate["evaluator"], "content_digest": candidate["content_digest"],
                       **result}).encode()
    timestamp = str(int(time.time()))
    signature = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(candidate["callback_url"], data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Modelmerge-Timestamp": timestamp,
        "X-Modelmerge-Signature": signature})
    try:
        urllib.request.urlopen(request, timeout=30).close()
    except OSError as e:
        print(f"callback for {candidate.get('ref')} failed: {e}", file=sys.stderr, flush=True)


def handler(secret, x, y):
    class Handler(BaseHTTPRequestHandler):
        def answer(self, status, body):
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            timestamp = self.headers.get("X-Modelmerge-Timestamp", "")
            signature = self.headers.get("X-Modelmerge-Signature", "")
            expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                return self.answer(401, {"error": "bad signature"})
            if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_AGE_SECONDS:
                return self.answer(401, {"error": "timestamp missing or older than 5 minutes"})
            candidate = json.loads(body)["candidate"]
            split = candidate.get("split")
            if split not in SPLITS:
                return self.answer(400, {"error": f"unknown split '{split}'"})
            begin, end = SPLITS[split]
            try:
                score = accuracy(candidate["location"], x[begin:end], y[begin:end])
            except (OSError, KeyError, ValueError) as e:
                return self.answer(422, {"error": f"cannot score '{candidate.get('ref')}': {e}"})
            result = {"score": score, "metrics": {"accuracy": score, "examples": end - begin}}
            if self.path.rstrip("/").endswith("/later") and candidate.get("callback_url"):
                # answer 202 now and send the score back later, as a slow evaluator would
                threading.Thread(target=call_back, args=(secret, candidate, result), daemon=True).start()
                return self.answer(202, {"status": "scoring"})
            self.answer(200, result)

        def log_message(self, fmt, *args):
            pass

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="digits.csv.gz")
    parser.add_argument("--secret-file", required=True, help="file holding the shared secret")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with open(args.secret_file, "rb") as f:
        secret = f.read().strip()
    x, y = load_digits(args.data)
    server = ThreadingHTTPServer((args.host, args.port), handler(secret, x, y))
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
