#!/usr/bin/env python3
"""Load and fault driver for the Cryptera service (used by backend/scripts/service-faults.sh).

`drive`: many client threads sign through several service processes, each request with its own
idempotency key (a digest derived from it), and some completed requests deliberately sent again. Every
answer is recorded; a connection error, a timeout or a 5xx is retried with the same idempotency key (on the
next process), a 429 after its Retry-After. The signatures received are verified against the key's public
key, and a repeat must return the same request and signature (ECDSA is randomised, so a second signing
would show). The outcome of every idempotency key is written to a JSON file.

`check`: compares that file with the database (SQLite file or PostgreSQL URL, read through psql): every
200 has exactly one signing record with that signature, no idempotency key or digest has two records, every
completed request has exactly one `key.sign` audit record (matched by digest), and no audit record signs
something no request holds.

Only the Python standard library and `cryptography` (for the ECDSA check) are used.
"""

import argparse
import base64
import collections
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils


def digest_of(idempotency_key):
    return hashlib.sha256(idempotency_key.encode()).digest()


def post(url, token, body, timeout):
    """One POST: (status, headers, parsed body) or (None, None, error text) when no answer came."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        payload = err.read()
        try:
            parsed = json.loads(payload or b"{}")
        except ValueError:
            parsed = {"raw": payload.decode(errors="replace")}
        return err.code, dict(err.headers), parsed
    except (urllib.error.URLError, OSError, ValueError) as err:  # refused, reset, timeout, torn body
        return None, None, repr(err)


class Driver:
    def __init__(self, args):
        self.args = args
        self.urls = args.url
        spki = base64.b64decode(args.public_key)
        self.public_key = serialization.load_der_public_key(spki)
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.outcomes = {}  # idempotency key -> {"status", "signature", "request_id", "key"}
        self.problems = []
        self.deadline = time.monotonic() + args.seconds
        # Requests still unanswered this long after the deadline are reported, not retried further.
        self.give_up = self.deadline + args.grace

    def count(self, name, n=1):
        with self.lock:
            self.counts[name] += n

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def verify(self, idempotency_key, signature_b64):
        raw = base64.b64decode(signature_b64)
        if len(raw) != 64:
            return False
        der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        try:
            self.public_key.verify(der, digest_of(idempotency_key), ec.ECDSA(utils.Prehashed(hashes.SHA256())))
            return True
        except InvalidSignature:
            return False

    def send(self, worker, key_id, idempotency_key, first_url):
        """Sends until a final answer (200, 202, other 4xx) or give-up; returns (status, body)."""
        body = {
            "mechanism": "ecdsa_sha256",
            "digest": base64.b64encode(digest_of(idempotency_key)).decode(),
            "idempotency_key": idempotency_key,
            "artifact": {"name": f"load-{worker}"},
        }
        attempt = first_url
        while True:
            url = self.urls[attempt % len(self.urls)]
            status, headers, answer = post(f"{url}/v1/keys/{key_id}/sign", self.args.token, body, self.args.timeout)
            self.count("requests")
            if status is None:
                self.count("connection_errors")
            else:
                self.count(f"status_{status}")
            if status in (200, 202):
                return status, answer
            if status is not None and 400 <= status < 500 and status != 429:
                return status, answer
            if time.monotonic() > self.give_up:
                return status, answer
            self.count("retries")
            if status == 429:
                retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after")
                if retry_after is None or not retry_after.isdigit():
                    self.count("429_without_retry_after")
                    self.problem(f"{idempotency_key}: 429 without a numeric Retry-After ({retry_after!r})")
                    retry_after = "1"
                time.sleep(min(int(retry_after), 5) * random.uniform(0.5, 1.0))
            else:
                # No answer or a 5xx: the next process, shortly.
                attempt += 1
                time.sleep(0.05 + random.random() * 0.2)

    def worker(self, worker):
        rng = random.Random(worker)
        n = 0
        while time.monotonic() < self.deadline:
            n += 1
            idempotency_key = f"w{worker}-{n}-{os.getpid()}"
            approval = self.args.approval_key and rng.random() < 0.03
            key_id = self.args.approval_key if approval else self.args.key
            status, answer = self.send(worker, key_id, idempotency_key, worker + n)
            outcome = {"status": status, "key": key_id}
            if status == 200:
                outcome["signature"] = answer.get("signature")
                outcome["request_id"] = answer.get("request_id")
                if not self.verify(idempotency_key, outcome["signature"]):
                    self.problem(f"{idempotency_key}: the signature does not verify")
                    self.count("bad_signatures")
                # A deliberate repeat of a finished request (as a client that lost the answer would).
                if rng.random() < self.args.repeat:
                    self.count("deliberate_repeats")
                    again, second = self.send(worker, key_id, idempotency_key, worker + n + 1)
                    if again == 200 and (second.get("signature"), second.get("request_id")) != (
                        outcome["signature"],
                        outcome["request_id"],
                    ):
                        self.problem(f"{idempotency_key}: a repeat answered a different signature or request")
                        self.count("repeat_mismatches")
                    elif again not in (200, 429, None) and not (again or 0) >= 500:
                        self.problem(f"{idempotency_key}: a repeat answered {again}: {second}")
            elif status == 202:
                outcome["request_id"] = answer.get("id")
                if answer.get("status") != "pending":
                    self.problem(f"{idempotency_key}: 202 with status {answer.get('status')}")
            elif status is not None and 400 <= status < 500 and status != 429:
                self.problem(f"{idempotency_key}: answered {status}: {answer}")
                self.count("wrong_answers")
            else:
                self.count("unfinished")
            with self.lock:
                self.outcomes[idempotency_key] = outcome

    def run(self):
        threads = [threading.Thread(target=self.worker, args=(w,)) for w in range(self.args.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = collections.Counter(o["status"] for o in self.outcomes.values())
        result = {
            "counts": dict(self.counts),
            "final": {str(k): v for k, v in statuses.items()},
            "problems": self.problems,
            "outcomes": self.outcomes,
        }
        with open(self.args.out, "w") as out:
            json.dump(result, out)
        summary = {k: v for k, v in sorted(self.counts.items())}
        print(f"driver: {len(self.outcomes)} signing requests, answers {summary}, final {dict(statuses)}")
        for text in self.problems[:20]:
            print(f"driver problem: {text}")
        return 0 if not self.problems else 1


def database_rows(database, query):
    """Rows of a query on a SQLite file or a PostgreSQL URL (through psql)."""
    if database.startswith("postgres"):
        psql = os.environ.get("PSQL", "psql")
        text = subprocess.run(
            [psql, database, "-X", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", query],
            check=True, capture_output=True, text=True,
        ).stdout
        return [line.split("\x1f") for line in text.splitlines()]
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    connection.create_function("tohex", 1, lambda b: None if b is None else bytes(b).hex())
    try:
        return [[None if v is None else str(v) for v in row] for row in connection.execute(query)]
    finally:
        connection.close()


def check(args):
    with open(args.results) as results:
        outcomes = json.load(results)["outcomes"]
    hexf = "encode({},'hex')" if args.database.startswith("postgres") else "tohex({})"
    rows = database_rows(
        args.database,
        f"SELECT id, idempotency_key, status, {hexf.format('signature')}, {hexf.format('digest')} "
        "FROM signing_requests",
    )
    audit = database_rows(args.database, "SELECT seq, outcome, details FROM audit_records WHERE action = 'key.sign'")
    problems = []
    by_key = collections.defaultdict(list)
    by_digest = collections.Counter()
    for request_id, idempotency_key, status, signature, digest in rows:
        by_key[idempotency_key].append((request_id, status, signature))
        by_digest[digest] += 1
    problems += [f"idempotency key {k} has {len(v)} records" for k, v in by_key.items() if len(v) > 1]
    problems += [f"digest {d} has {n} records" for d, n in by_digest.items() if n > 1]
    answered = collections.Counter()
    for idempotency_key, outcome in outcomes.items():
        records = by_key.get(idempotency_key, [])
        answered[outcome["status"]] += 1
        if outcome["status"] == 200:
            expected = base64.b64decode(outcome["signature"]).hex()
            if len(records) != 1 or records[0][1] != "completed" or records[0][2] != expected:
                problems.append(f"{idempotency_key}: answered 200 but the database holds {records}")
            elif records[0][0] != outcome["request_id"]:
                problems.append(f"{idempotency_key}: answered request {outcome['request_id']}, stored {records[0][0]}")
        elif outcome["status"] == 202:
            if len(records) != 1 or records[0][1] != "pending":
                problems.append(f"{idempotency_key}: answered 202 but the database holds {records}")
    # Every signing record has exactly one `key.sign` audit record naming it, with its status then
    # (pending requests are audited at creation; their approval has its own record), and the same digest.
    # A record no client saw an answer for (its answer lost, its retries ended in 429 at the deadline) is
    # fine, but needs its audit record too.
    audited = collections.defaultdict(list)
    refused = collections.Counter()
    for seq, outcome, details in audit:
        detail = json.loads(details)
        if outcome != "ok":  # refusals (429, ...) are audited too, with no request
            refused[outcome] += 1
            continue
        audited[detail.get("request_id")].append((outcome, detail.get("status"), detail.get("digest")))
    stored = {r[0]: r for r in rows}
    for request_id, status_digest in ((r[0], (r[2], r[4])) for r in rows):
        if audited.get(request_id) != [("ok", *status_digest)]:
            problems.append(f"request {request_id} {status_digest}: key.sign audit records {audited.get(request_id)}")
    for request_id in audited:
        if request_id not in stored:
            problems.append(f"key.sign audit record for {request_id}, which is not stored")
    completed = [r for r in rows if r[2] == "completed"]
    unseen = sum(1 for k in by_key if k not in outcomes)
    print(
        f"check: {len(rows)} signing records ({len(completed)} completed), {sum(map(len, audited.values()))} key.sign "
        f"audit records (and refusals {dict(refused)}), client outcomes {dict(answered)}, records no client knows of: {unseen}"
    )
    for text in problems[:20]:
        print(f"check problem: {text}")
    return 0 if not problems else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    drive = sub.add_parser("drive")
    drive.add_argument("--url", action="append", required=True)
    drive.add_argument("--token", required=True)
    drive.add_argument("--key", required=True)
    drive.add_argument("--public-key", required=True, help="SPKI DER, base64")
    drive.add_argument("--approval-key", default="")
    drive.add_argument("--threads", type=int, default=16)
    drive.add_argument("--seconds", type=float, default=40)
    drive.add_argument("--grace", type=float, default=30)
    drive.add_argument("--timeout", type=float, default=10)
    drive.add_argument("--repeat", type=float, default=0.1)
    drive.add_argument("--out", required=True)
    verify = sub.add_parser("check")
    verify.add_argument("--results", required=True)
    verify.add_argument("--database", required=True, help="SQLite file or postgres:// URL")
    args = parser.parse_args()
    if args.command == "drive":
        return Driver(args).run()
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
