#!/usr/bin/env python3
"""Generates the Privacy Shield benchmark corpus: nginx, application, database and Kubernetes
event lines mixing every detector kind, deterministic (seeded).

    corpus.py OUT_DIR [MEGABYTES]

Writes OUT_DIR/corpus.txt and OUT_DIR/labels.jsonl: one JSON line per corpus line with the
[start, end, kind] character spans of the values inserted (the secret part only)."""
import json
import random
import string
import sys
from pathlib import Path

rng = random.Random(20261125)


def hexs(n):
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def alnum(n):
    return "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(n))


def ipv4():
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def ipv6():
    return "2001:db8:" + ":".join(format(rng.randint(0, 0xFFFF), "x") for _ in range(6))


def email():
    user = rng.choice(["alice", "bob", "ops", "carol.smith", "dev+alerts", "j.doe"])
    return f"{user}{rng.randint(1, 999)}@{rng.choice(['example.com', 'corp.internal.net', 'mail.io'])}"


def uuid():
    return f"{hexs(8)}-{hexs(4)}-4{hexs(3)}-a{hexs(3)}-{hexs(12)}"


def mac():
    return ":".join(hexs(2) for _ in range(6)).upper()


def luhn_complete(prefix, length):
    digits = [int(d) for d in prefix]
    while len(digits) < length - 1:
        digits.append(rng.randint(0, 9))
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    digits.append((10 - total % 10) % 10)
    return "".join(map(str, digits))


def card():
    number = luhn_complete(rng.choice(["4", "51", "55", "37"]), 16 if rng.random() < 0.8 else 15)
    if len(number) == 16 and rng.random() < 0.5:
        return " ".join(number[i:i + 4] for i in range(0, 16, 4))
    return number


def jwt():
    return "eyJ" + alnum(20) + ".eyJ" + alnum(30) + "." + alnum(43)


def aws_key():
    return "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def aws_secret():
    return "".join(rng.choice(string.ascii_letters + string.digits + "/+") for _ in range(40))


def token():
    kind = rng.randint(0, 3)
    if kind == 0:
        return "ghp_" + alnum(36)
    if kind == 1:
        return "xoxb-" + str(rng.randint(10**11, 10**12)) + "-" + alnum(24)
    if kind == 2:
        return "sk_live_" + alnum(24)
    return "sk-ant-api03-" + alnum(32)


def password():
    return alnum(rng.randint(8, 16))


class Line:
    def __init__(self):
        self.parts = []
        self.spans = []
        self.length = 0

    def text(self, s):
        self.parts.append(s)
        self.length += len(s)
        return self

    def value(self, kind, s):
        self.spans.append([self.length, self.length + len(s), kind])
        return self.text(s)

    def done(self):
        return "".join(self.parts), self.spans


def ts():
    return f"2026-11-25T03:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"


def nginx():
    return (Line().value("IP", ipv4())
            .text(f' - - [25/Nov/2026:03:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d} +0000] "GET /api/orders/')
            .value("UUID", uuid())
            .text(f' HTTP/1.1" {rng.choice([200, 200, 200, 404, 502])} {rng.randint(100, 90000)} "-" "Mozilla/5.0" rt=0.{rng.randint(1, 999):03d}')
            .done())


def app():
    choice = rng.randint(0, 3)
    line = Line().text(ts() + " ")
    if choice == 0:
        line.text("INFO checkout user=").value("EMAIL", email()).text(" card=").value("CREDIT_CARD", card())
        line.text(f" amount={rng.randint(1, 500)}.00 request_id=").value("UUID", uuid())
    elif choice == 1:
        line.text("WARN auth failed for ").value("EMAIL", email()).text(": Authorization: Bearer ").value("TOKEN", alnum(40))
    elif choice == 2:
        line.text("ERROR session jwt ").value("JWT", jwt()).text(" rejected: expired")
    else:
        line.text("INFO deploy by ").value("EMAIL", email()).text(" with AWS key ").value("AWS_KEY", aws_key())
        line.text(" aws_secret_access_key=").value("SECRET", aws_secret())
    return line.done()


def database():
    line = Line().text(f"2026-11-25 03:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d} UTC [{rng.randint(100, 99999)}] ")
    if rng.random() < 0.5:
        line.text("LOG:  connection received: host=").value("IP", ipv4()).text(f" port={rng.randint(1024, 65535)}")
    else:
        line.text('FATAL:  password authentication failed for user "app" dsn=postgres://app:')
        line.value("PASSWORD", password()).text("@").value("IP", ipv4()).text(":5432/app")
    return line.done()


def kubernetes():
    line = Line().text(f"Warning  BackOff  {rng.randint(1, 59)}m  kubelet  pod/checkout-{hexs(10)}-{alnum(5).lower()}  ")
    choice = rng.randint(0, 2)
    if choice == 0:
        line.text("Back-off restarting failed container on node ").value("IP", ipv6()).text(" mac ").value("MAC", mac())
    elif choice == 1:
        line.text("pulled image with token ").value("TOKEN", token()).text(" from registry")
    else:
        line.text("config changed: password=").value("PASSWORD", password()).text(" api_key=").value("SECRET", alnum(32))
    return line.done()


def plain():
    return Line().text(rng.choice([
        f"{ts()} INFO GET /healthz 200 in {rng.randint(1, 9)}ms",
        f"{ts()} DEBUG cache hit ratio 0.{rng.randint(10, 99)} for product-api",
        f"Normal  Scheduled  {rng.randint(1, 59)}s  default-scheduler  Successfully assigned prod/order-api to node-{rng.randint(1, 9)}",
        f"{ts()} INFO worker {rng.randint(1, 16)} processed {rng.randint(1, 5000)} jobs in {rng.randint(1, 900)}ms",
    ])).done()


def main():
    out = Path(sys.argv[1])
    megabytes = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    out.mkdir(parents=True, exist_ok=True)
    target = int(megabytes * 1024 * 1024)
    makers = [nginx, app, database, kubernetes, plain, plain]
    written = 0
    with open(out / "corpus.txt", "w") as corpus, open(out / "labels.jsonl", "w") as labels:
        while written < target:
            text, spans = rng.choice(makers)()
            corpus.write(text + "\n")
            labels.write(json.dumps(spans) + "\n")
            written += len(text) + 1


if __name__ == "__main__":
    main()
