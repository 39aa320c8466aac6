#!/usr/bin/env python3
"""Held-out evaluation corpus for the Privacy Shield log redaction engine.

    python3 evals/shield/holdout/generate.py          # from the repository root

Rewrites evals/shield/holdout/holdout.jsonl byte-identically on every run and prints per-kind,
per-source and recurrence statistics (the tables in SOURCES.md come from this output).

Written independently of the engine and of the development corpus: formats follow the public
documentation listed in SOURCES.md; values are synthetic (random, seeded) or published sample
values (RFC 5737 / RFC 3849 documentation addresses, Stripe test card numbers, AWS documentation
example keys, vendor-documented token prefixes).

Every record is one physical log line.  Offsets are UTF-8 byte offsets, end exclusive, recorded
while the line is built (never by searching afterwards).  A self-check verifies that each span's
bytes equal the inserted value, that spans never overlap, that every CREDIT_CARD passes Luhn,
that every other 13-19 digit run FAILS Luhn, and (by regular expressions used only as a safety
net) that no UUID, e-mail address, IPv4 address, JWT, AWS key id, MAC address or vendor token
was left unlabelled.

Stdlib only.  One random.Random with a fixed seed; no clock, environment or set iteration.
"""
import base64
import datetime
import hashlib
import ipaddress
import json
import os
import re
import string
import sys
import urllib.parse
import random

SEED = 0x5EED_4011
N_RECORDS = 2500
REUSE = 0.38            # probability that a value is drawn again from the pool of earlier values
R = random.Random(SEED)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "holdout.jsonl")

PII_KINDS = ("IP", "EMAIL", "CREDIT_CARD", "MAC", "UUID", "JWT", "AWS_KEY", "SECRET", "TOKEN",
             "PASSWORD")
LOOK_KINDS = ("HASH", "TRACE_ID", "VERSION", "OID", "CODE_PATH", "TIMESTAMP", "PORT",
              "IMAGE_REF", "K8S_NAME", "HEX_ID", "NUMBER", "KEY_NAME")
PII_SET = frozenset(PII_KINDS)
LOOK_SET = frozenset(LOOK_KINDS)


# ----------------------------------------------------------------------------------------------
# Line builder: text pieces and labelled spans, byte offsets tracked while appending.
# ----------------------------------------------------------------------------------------------
class Line:
    def __init__(self):
        self.parts = []
        self.n = 0
        self.spans = []          # (start, end, kind, value)
        self.json = False        # the whole line must parse as JSON

    def __call__(self, *items):
        for it in items:
            if isinstance(it, str):
                self.parts.append(it)
                self.n += len(it.encode("utf-8"))
            else:
                kind, value = it
                if kind not in PII_SET and kind not in LOOK_SET:
                    raise ValueError("unknown kind %r" % (kind,))
                b = len(value.encode("utf-8"))
                if b == 0:
                    raise ValueError("empty %s span" % kind)
                self.spans.append((self.n, self.n + b, kind, value))
                self.parts.append(value)
                self.n += b
        return self

    def text(self):
        return "".join(self.parts)


class S:
    """A JSON string whose content mixes plain text and spans: S("from ", ("IP", ip), " ok")."""
    def __init__(self, *items):
        self.items = items


class O(list):
    """A JSON object: O([(key, value), ...]) keeps key order."""


def jesc(s):
    return json.dumps(s, ensure_ascii=False)[1:-1]


def jval(L, v, sp=False):
    if v is None:
        L("null")
    elif isinstance(v, bool):
        L("true" if v else "false")
    elif isinstance(v, (int, float)):
        L(json.dumps(v))
    elif isinstance(v, str):
        L(json.dumps(v, ensure_ascii=False))
    elif isinstance(v, S):
        L('"')
        for it in v.items:
            if isinstance(it, str):
                L(jesc(it))
            elif callable(it):
                it(L)
            else:
                L(it)
        L('"')
    elif isinstance(v, O):
        jobj(L, v, sp)
    elif isinstance(v, list):
        L("[")
        for i, x in enumerate(v):
            if i:
                L(", " if sp else ",")
            jval(L, x, sp)
        L("]")
    elif isinstance(v, tuple):
        if v[0] == "raw":            # ("raw", kind, value): unquoted span, e.g. a number
            L((v[1], v[2]))
        else:
            L('"', v, '"')
    elif callable(v):
        v(L)
    else:
        raise TypeError(v)


def jobj(L, fields, sp=False):
    L("{")
    for i, (k, v) in enumerate(fields):
        if i:
            L(", " if sp else ",")
        L(json.dumps(k, ensure_ascii=False), ": " if sp else ":")
        jval(L, v, sp)
    L("}")


# ----------------------------------------------------------------------------------------------
# Random helpers
# ----------------------------------------------------------------------------------------------
LOWER = string.ascii_lowercase
UPPER = string.ascii_uppercase
DIG = string.digits
ALNUM = string.ascii_letters + string.digits
HEXL = "0123456789abcdef"
HEXU = "0123456789ABCDEF"
B64C = ALNUM + "+/"
B64U = ALNUM + "-_"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
PODC = "bcdfghjklmnpqrstvwxz2456789"


def rs(alphabet, n):
    return "".join(R.choice(alphabet) for _ in range(n))


def hx(n, upper=False):
    while True:
        v = rs(HEXU if upper else HEXL, n)
        if n < 6 or any(c not in DIG for c in v):
            return v


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64(b):
    return base64.b64encode(b).decode()


def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_complete(prefix, length):
    body = prefix + "".join(R.choice(DIG) for _ in range(length - len(prefix) - 1))
    for c in DIG:
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def nonluhn(digits):
    """Return digits unchanged unless they pass Luhn; then bump the last digit (fails Luhn)."""
    if len(digits) >= 13 and luhn_ok(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    return digits


def long_number(n):
    return nonluhn(str(R.randint(1, 9)) + rs(DIG, n - 1))


class Pool:
    """Values of one format; a draw re-uses an earlier value with probability `reuse`."""
    def __init__(self, maker, reuse=None):
        self.maker = maker
        self.reuse = REUSE if reuse is None else reuse
        self.items = []

    def get(self, ok=None):
        if self.items and R.random() < self.reuse:
            cands = [x for x in self.items if ok is None or ok(x)]
            if cands:
                return R.choice(cands)
        for _ in range(200):
            v = self.maker()
            if ok is None or ok(v):
                break
        else:
            raise RuntimeError("pool maker cannot satisfy constraint")
        self.items.append(v)
        return v


# ----------------------------------------------------------------------------------------------
# Timestamps (timezone-aware UTC; month/day names from tables, never from the locale)
# ----------------------------------------------------------------------------------------------
UTC = datetime.timezone.utc
BASE = datetime.datetime(2024, 1, 8, tzinfo=UTC)
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def rand_dt():
    return BASE + datetime.timedelta(seconds=R.randint(0, 70 * 86400),
                                     microseconds=R.randint(0, 999999))


def ts(fmt, d=None):
    d = d or rand_dt()
    ymd = "%04d-%02d-%02d" % (d.year, d.month, d.day)
    hms = "%02d:%02d:%02d" % (d.hour, d.minute, d.second)
    ms = "%03d" % (d.microsecond // 1000)
    us = "%06d" % d.microsecond
    mon = MON[d.month - 1]
    dow = DOW[d.weekday()]
    if fmt == "iso3z":
        return "%sT%s.%sZ" % (ymd, hms, ms)
    if fmt == "iso6z":
        return "%sT%s.%sZ" % (ymd, hms, us)
    if fmt == "iso9z":
        return "%sT%s.%s%03dZ" % (ymd, hms, us, R.randint(0, 999))
    if fmt == "iso7z":
        return "%sT%s.%s%dZ" % (ymd, hms, us, R.randint(0, 9))
    if fmt == "isoz":
        return "%sT%sZ" % (ymd, hms)
    if fmt == "iso3off":
        return "%sT%s.%s+00:00" % (ymd, hms, ms)
    if fmt == "iso6off":
        return "%sT%s.%s+00:00" % (ymd, hms, us)
    if fmt == "shortiso":
        return "%sT%s+0000" % (ymd, hms)
    if fmt == "syslog":
        return "%s %2d %s" % (mon, d.day, hms)
    if fmt == "syslog_ms":
        return "%s %2d %s.%s" % (mon, d.day, hms, ms)
    if fmt == "clf":
        return "%02d/%s/%04d:%s +0000" % (d.day, mon, d.year, hms)
    if fmt == "haproxy":
        return "%02d/%s/%04d:%s.%s" % (d.day, mon, d.year, hms, ms)
    if fmt == "apache":
        return "%s %s %02d %s.%s %04d" % (dow, mon, d.day, hms, us, d.year)
    if fmt == "redis":
        return "%02d %s %04d %s.%s" % (d.day, mon, d.year, hms, ms)
    if fmt == "log4j":
        return "%s %s,%s" % (ymd, hms, ms)
    if fmt == "space3":
        return "%s %s.%s" % (ymd, hms, ms)
    if fmt == "space6off":
        return "%s %s.%s+00:00" % (ymd, hms, us)
    if fmt == "plain":
        return "%s %s" % (ymd, hms)
    if fmt == "php":
        return "%02d-%s-%04d %s" % (d.day, mon, d.year, hms)
    if fmt == "go":
        return "%04d/%02d/%02d %s" % (d.year, d.month, d.day, hms)
    if fmt == "hms":
        return hms
    if fmt == "hms3":
        return "%s.%s" % (hms, ms)
    if fmt == "rfc1123":
        return "%s, %02d %s %04d %s GMT" % (dow, d.day, mon, d.year, hms)
    if fmt == "helm":
        return "%s %s %2d %s %04d" % (dow, mon, d.day, hms, d.year)
    if fmt == "epoch":
        return str(int(d.timestamp()))
    if fmt == "epoch_ms":
        return nonluhn(str(int(d.timestamp()) * 1000 + d.microsecond // 1000))
    if fmt == "epoch_us":
        return nonluhn(str(int(d.timestamp()) * 1000000 + d.microsecond))
    if fmt == "epoch_ns":
        return nonluhn(str(int(d.timestamp()) * 1000000000 + d.microsecond * 1000 + R.randint(0, 999)))
    if fmt == "epoch_frac":
        return "%d.%s" % (int(d.timestamp()), us[:R.choice([3, 4, 6])])
    if fmt == "klog":
        return "%02d%02d %s.%s" % (d.month, d.day, hms, us)
    if fmt == "cisco_utc":
        return "%s UTC %s %s %d %04d" % (hms, dow, mon, d.day, d.year)
    if fmt == "dhcpd_lease":
        return "%d %04d/%02d/%02d %s" % ((d.weekday() + 1) % 7, d.year, d.month, d.day, hms)
    if fmt == "aws_console":
        h12 = d.hour % 12 or 12
        return "%s %d, %04d %d:%02d:%02d %s" % (mon, d.day, d.year, h12, d.minute, d.second,
                                                 "AM" if d.hour < 12 else "PM")
    raise ValueError(fmt)


# ----------------------------------------------------------------------------------------------
# PII value makers
# ----------------------------------------------------------------------------------------------
def mk_ipv4():
    c = R.random()
    if c < 0.28:
        return "10.%d.%d.%d" % (R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))
    if c < 0.36:
        return "172.%d.%d.%d" % (R.randint(16, 31), R.randint(0, 255), R.randint(1, 254))
    if c < 0.46:
        return "192.168.%d.%d" % (R.randint(0, 255), R.randint(1, 254))
    if c < 0.66:
        return "%s.%d" % (R.choice(["192.0.2", "198.51.100", "203.0.113"]), R.randint(1, 254))
    while True:
        a = R.randint(1, 223)
        if a not in (10, 100, 127, 169, 172, 192, 198, 203):
            return "%d.%d.%d.%d" % (a, R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


def _v6_groups(prefix):
    g = list(prefix) + [R.randint(0, 0xFFFF) for _ in range(8 - len(prefix))]
    if R.random() < 0.7:                      # a run of zero groups, so that "::" appears
        start = R.randint(len(prefix), 6)
        for i in range(start, min(8, start + R.randint(2, 4))):
            g[i] = 0
    if R.random() < 0.3:
        g[7] = R.randint(1, 0xFF)
    return g


def _v6(g):
    return ipaddress.IPv6Address(sum(x << (16 * (7 - i)) for i, x in enumerate(g)))


def mk_ipv6():
    c = R.random()
    if c < 0.30:
        return _v6(_v6_groups([0x2001, 0x0DB8])).compressed
    if c < 0.50:
        return _v6(_v6_groups([R.choice([0x2A02, 0x2600, 0x2A01, 0x2406, 0x2001, 0x2804]),
                               R.randint(0, 0xFFFF)])).compressed
    if c < 0.60:
        return _v6(_v6_groups([0x2001, 0x0DB8])).exploded
    if c < 0.68:
        return _v6(_v6_groups([0xFD00 | R.randint(0, 0xFF), R.randint(0, 0xFFFF)])).compressed
    if c < 0.80:
        return _v6(_v6_groups([R.choice([0x2001, 0x2A02, 0x2600]),
                               R.randint(0, 0xFFFF)])).compressed.upper()
    if c < 0.88:                                  # zeros not compressed, leading zeros dropped
        return ":".join("%x" % x for x in _v6_groups([0x2001, 0x0DB8]))
    return "::ffff:" + mk_ipv4()


def mk_ll():
    g = [0xFE80, 0, 0, 0] + [R.randint(0, 0xFFFF) for _ in range(4)]
    v = _v6(g).compressed
    return v.upper() if R.random() < 0.15 else v


P_V4 = Pool(mk_ipv4)
P_V6 = Pool(mk_ipv6)
P_LL = Pool(mk_ll)


def ip4():
    return P_V4.get()


def ip6():
    return P_V6.get()


def ipa():
    return ip4() if R.random() < 0.72 else ip6()


FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
         "yuki", "zoe", "liwei", "sanjay", "fatima", "mateo", "ingrid", "kwame", "noor", "aiko",
         "lars", "priya", "tomasz", "amara", "diego", "hana", "emeka", "sofia", "oskar"]
LAST = ["smith", "jones", "garcia", "muller", "nguyen", "kowalski", "okafor", "tanaka", "rossi",
        "silva", "haddad", "schmidt", "johansson", "patel", "kim", "dubois", "novak", "ivanova",
        "cohen", "murphy", "fernandes", "yilmaz", "andersen", "mensah"]
MAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com",
                "corp.example.com", "contoso.com", "fabrikam.com", "northwind.io", "acme-corp.io",
                "initech.co.uk", "globex.de", "umbrella.jp", "gmail.com", "outlook.com",
                "proton.me", "yahoo.co.jp", "fastmail.fm", "mailbox.org", "example.edu"]
TAGS = ["billing", "invoices", "dev", "test", "alerts", "news", "2024", "ci", "aws", "shop"]


def mk_email():
    f, l = R.choice(FIRST), R.choice(LAST)
    c = R.randrange(8)
    local = [f + "." + l, f[0] + l, f + str(R.randint(1, 99)), f + "+" + R.choice(TAGS),
             f + "_" + l, l + "." + f, f + "." + l + "+" + R.choice(TAGS), f][c]
    dom = R.choice(MAIL_DOMAINS)
    v = local + "@" + dom
    if R.random() < 0.08:
        v = local.capitalize() + "@" + dom.capitalize()
    return v


P_EMAIL = Pool(mk_email)


def email():
    return P_EMAIL.get()


def email_enc(v):
    return v.replace("%", "%25").replace("+", "%2B").replace("@", "%40")


STRIPE_TEST_CARDS = ["4242424242424242", "4000056655665556", "5555555555554444",
                     "2223003122003222", "5200828282828210", "5105105105105100",
                     "378282246310005", "371449635398431", "6011111111111117",
                     "6011000990139424", "3056930009020004", "36227206271667",
                     "3566002020360505", "4111111111111111"]


def mk_card():
    if R.random() < 0.25:
        return R.choice(STRIPE_TEST_CARDS)
    brand = R.choice(["visa", "visa", "mc", "mc2", "amex", "discover", "jcb", "diners"])
    if brand == "visa":
        return luhn_complete("4", 16)
    if brand == "mc":
        return luhn_complete(str(R.randint(51, 55)), 16)
    if brand == "mc2":
        return luhn_complete(str(R.randint(2221, 2720)), 16)
    if brand == "amex":
        return luhn_complete(R.choice(["34", "37"]), 15)
    if brand == "discover":
        return luhn_complete(R.choice(["6011", "65", str(R.randint(644, 649))]), 16)
    if brand == "jcb":
        return luhn_complete(str(R.randint(3528, 3589)), 16)
    return luhn_complete(R.choice(["36", "38", str(R.randint(300, 305))]), 14)


P_CARD = Pool(mk_card)


def card_fmt(d, style):
    if style == "plain":
        return d
    sep = " " if style == "space" else "-"
    if len(d) == 15:
        groups = [d[:4], d[4:10], d[10:]]
    elif len(d) == 14:
        groups = [d[:4], d[4:10], d[10:]]
    else:
        groups = [d[i:i + 4] for i in range(0, len(d), 4)]
    return sep.join(groups)


def card(style=None):
    return card_fmt(P_CARD.get(), style or R.choice(["plain", "plain", "space", "dash"]))


OUIS = [(0x00, 0x50, 0x56), (0x00, 0x0C, 0x29), (0x52, 0x54, 0x00), (0x02, 0x42, 0xAC),
        (0x3C, 0x22, 0xFB), (0xF4, 0x5C, 0x89), (0x00, 0x1A, 0x2B), (0xA4, 0x83, 0xE7),
        (0xB8, 0x27, 0xEB), (0xDC, 0xA6, 0x32), (0x00, 0x05, 0x85), (0x00, 0x1B, 0x54),
        (0xE4, 0x5F, 0x01), (0xD8, 0x3A, 0xDD), (0x00, 0x15, 0x5D), (0x00, 0x16, 0x3E),
        (0x0A, 0x1F, 0x6B), (0x00, 0x0D, 0x3A), (0x70, 0x85, 0xC2), (0x9C, 0xB6, 0xD0)]


def mk_mac():
    return tuple(R.choice(OUIS)) + tuple(R.randint(0, 255) for _ in range(3))


P_MAC = Pool(mk_mac)


def mac_fmt(b, style):
    if style == "colon":
        return ":".join("%02x" % x for x in b)
    if style == "COLON":
        return ":".join("%02X" % x for x in b)
    if style == "DASH":
        return "-".join("%02X" % x for x in b)
    if style == "dash":
        return "-".join("%02x" % x for x in b)
    if style == "cisco":
        h = "".join("%02x" % x for x in b)
        return "%s.%s.%s" % (h[0:4], h[4:8], h[8:12])
    raise ValueError(style)


def mac(style="colon", ok=None):
    return mac_fmt(P_MAC.get(ok), style)


def mk_uuid():
    b = bytearray(R.getrandbits(8) for _ in range(16))
    ver = R.choice([4, 4, 4, 4, 7, 1])
    b[6] = (b[6] & 0x0F) | (ver << 4)
    b[8] = (b[8] & 0x3F) | 0x80
    h = bytes(b).hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


P_UUID = Pool(mk_uuid)


def uuid(upper=False):
    v = P_UUID.get()
    return v.upper() if upper else v


ISSUERS = ["https://auth.example.com/", "https://login.microsoftonline.com/common/v2.0",
           "https://accounts.google.com", "https://acme.eu.auth0.com/",
           "https://keycloak.example.org/realms/prod", "https://token.actions.githubusercontent.com",
           "kubernetes/serviceaccount"]


def mk_jwt():
    alg = R.choice(["HS256", "RS256", "ES256", "RS256", "HS512"])
    hdr = [("alg", alg), ("typ", "JWT")]
    if R.random() < 0.5:
        hdr.insert(0, ("typ", "JWT"))
        hdr.pop()
        hdr.append(("kid", hx(16)))
    t0 = int(rand_dt().timestamp())
    payload = [("sub", R.choice([mk_uuid(), mk_email(), "system:serviceaccount:payments:api",
                                  str(R.randint(1000, 999999))])),
               ("iss", R.choice(ISSUERS)), ("aud", R.choice(["api", "account", "sts.amazonaws.com"])),
               ("iat", t0), ("exp", t0 + R.choice([300, 900, 3600, 86400]))]
    if R.random() < 0.4:
        payload.append(("scope", R.choice(["openid profile email", "read:orders write:orders",
                                           "repo"])))
    enc = lambda pairs: b64u(json.dumps(dict(pairs), separators=(",", ":")).encode())
    siglen = {"HS256": 32, "HS512": 64, "ES256": 64, "RS256": 256}[alg]
    return "%s.%s.%s" % (enc(hdr), enc(payload), b64u(R.randbytes(siglen)))


P_JWT = Pool(mk_jwt)


def jwt():
    return P_JWT.get()


AWS_EXAMPLE_ID = "AKIAIOSFODNN7EXAMPLE"           # AWS documentation example access key id
AWS_EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
P_AKIA = Pool(lambda: AWS_EXAMPLE_ID if R.random() < 0.08 else "AKIA" + rs(B32, 16))
P_ASIA = Pool(lambda: "ASIA" + rs(B32, 16))


def akia():
    return P_AKIA.get()


def asia():
    return P_ASIA.get()


def awskey():
    return akia() if R.random() < 0.6 else asia()


P_AWS_SECRET = Pool(lambda: AWS_EXAMPLE_SECRET if R.random() < 0.08 else rs(ALNUM + "+/", 40))


def aws_secret():
    return P_AWS_SECRET.get()


PEM_PREFIX = {"RSA PRIVATE KEY": "MIIEpAIBAAKCAQEA", "PRIVATE KEY": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
              "EC PRIVATE KEY": "MHcCAQEEI", "OPENSSH PRIVATE KEY": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmU"}


def mk_pem_lines():
    kind = R.choice(list(PEM_PREFIX))
    nlines = R.randint(3, 7)
    body = PEM_PREFIX[kind] + rs(B64C, 64 * nlines - len(PEM_PREFIX[kind]) + R.randint(8, 40))
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    pad = (4 - len(body) % 4) % 4
    lines[-1] += "=" * pad
    return ["-----BEGIN %s-----" % kind] + lines + ["-----END %s-----" % kind]


P_PEM = Pool(mk_pem_lines, reuse=0.25)


def pem_json():
    return "\\n".join(P_PEM.get()) + ("\\n" if R.random() < 0.5 else "")


def pem_spaced():
    return " ".join(P_PEM.get())


def pem_b64():
    return b64(("\n".join(P_PEM.get()) + "\n").encode())


def mk_secret():
    c = R.randrange(7)
    if c == 0:
        return hx(32)
    if c == 1:
        return hx(64)
    if c == 2:
        return b64(R.randbytes(R.choice([24, 32, 48])))
    if c == 3:
        return rs(ALNUM, R.choice([24, 32, 40]))
    if c == 4:
        return rs(ALNUM, 3) + "8Q~" + rs(ALNUM + "_-.~", 34)   # Entra ID client secret shape
    if c == 5:
        return "django-insecure-" + rs(LOWER + DIG + "!@#%^*(-_=+)", 50)
    return b64u(R.randbytes(32))


P_SECRET = Pool(mk_secret)


def secret():
    return P_SECRET.get()


def es_apikey():
    return b64((rs(ALNUM + "-_", 20) + ":" + rs(ALNUM + "-_", 22)).encode())


P_ESKEY = Pool(es_apikey)

# Vendor tokens with documented prefixes (choose TOKEN by the value's format).
TOKEN_MAKERS = {
    "github": lambda: R.choice(["ghp_", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + rs(ALNUM, 36),
    "github_pat": lambda: "github_pat_11" + rs(UPPER + DIG, 20) + "_" + rs(ALNUM, 59),
    "gitlab": lambda: "glpat-" + rs(ALNUM + "-_", 20),
    "slack": lambda: R.choice([
        "xoxb-%s-%s-%s" % (rs(DIG, 11), rs(DIG, 13), rs(ALNUM, 24)),
        "xoxp-%s-%s-%s-%s" % (rs(DIG, 11), rs(DIG, 11), rs(DIG, 13), hx(32)),
        "xapp-1-A0%s-%s-%s" % (rs(UPPER + DIG, 8), rs(DIG, 13), hx(64))]),
    "stripe": lambda: R.choice(["sk_live_", "sk_live_", "rk_live_", "sk_test_"]) + rs(ALNUM, R.choice([24, 99])),
    "npm": lambda: "npm_" + rs(ALNUM, 36),
    "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + rs(B64U, R.randint(120, 170)),
    "google_oauth": lambda: "ya29." + rs(B64U, R.randint(110, 170)),
    "google_api": lambda: "AIza" + rs(B64U, 35),
    "hf": lambda: "hf_" + rs(string.ascii_letters, 34),
    "sendgrid": lambda: "SG." + rs(B64U, 22) + "." + rs(B64U, 43),
    "twilio": lambda: "SK" + hx(32),
    "shopify": lambda: R.choice(["shpat_", "shpca_", "shppa_", "shpss_"]) + hx(32),
    "digitalocean": lambda: R.choice(["dop_v1_", "doo_v1_", "dor_v1_"]) + hx(64),
    "openai": lambda: R.choice(["sk-" + rs(ALNUM, 48), "sk-proj-" + rs(B64U, R.randint(60, 120))]),
    "anthropic": lambda: "sk-ant-api03-" + rs(B64U, 93) + "AA",
    "vault": lambda: R.choice(["hvs." + rs(ALNUM, 24), "hvs.CAESI" + rs(B64U, 80)]),
    "grafana": lambda: "glsa_" + rs(ALNUM, 32) + "_" + hx(8),
    "grafana_legacy": lambda: b64(json.dumps({"k": rs(ALNUM, 32), "n": R.choice(["ci", "deploy", "kiosk"]),
                                              "id": R.randint(1, 9)}, separators=(",", ":")).encode()),
    "bearer": lambda: b64u(R.randbytes(R.choice([24, 32, 48]))),
    "session": lambda: R.choice([hx(32), rs(LOWER + DIG, 26), hx(32, upper=True),
                                 b64u(R.randbytes(30)), rs(ALNUM, 40)]),
    "refresh": lambda: R.choice(["1//0" + rs(B64U, 99), rs(ALNUM, 48), "rt_" + rs(ALNUM, 40),
                                 b64u(R.randbytes(40))]),
    "oauth_code": lambda: R.choice(["4/0A" + rs(B64U, 69), rs(ALNUM, 32), b64u(R.randbytes(24)),
                                    "ac_" + rs(ALNUM, 30)]),
    "aws_session": lambda: R.choice(["IQoJb3JpZ2luX2VjE", "FwoGZXIvYXdzE"]) + rs(B64C, R.randint(250, 380)) + "==",
}
TOKEN_POOLS = {k: Pool(v) for k, v in TOKEN_MAKERS.items()}
VENDORS = ["github", "github_pat", "gitlab", "slack", "stripe", "npm", "pypi", "google_oauth",
           "google_api", "hf", "sendgrid", "twilio", "shopify", "digitalocean", "openai",
           "anthropic", "vault", "grafana"]


def tok(kind=None):
    kind = kind or R.choice(VENDORS + ["bearer", "session", "refresh", "oauth_code"])
    return TOKEN_POOLS[kind].get()


def session_cookie():
    if R.random() < 0.2:          # express-session signed cookie, URL-encoded "s:<id>.<sig>"
        return "s%3A" + rs(B64U, 32) + "." + rs(ALNUM, 43).replace("A", "%2F", 1)
    return tok("session")


PW_HUMAN = ["hunter2", "Summer2024!", "P@ssw0rd", "Welcome1!", "Tr0ub4dor&3",
            "correct-horse-battery-staple", "letmein123", "Passw0rd!", "Qwerty!2345", "s3cr3t",
            "MyS3cur3P@ss", "Winter#2023", "Zürich2024!", "Kennwort#1", "P4$$w0rd",
            "Spring2024$", "dragon_fly88", "N0tTh3P@ssw0rd", "Admin@123", "rootroot99",
            "sup3r_s3cr3t", "Xy7#kq9Lm-p2", "gR8!tPass", "Ch@ngeMe2024", "pässwörd-42",
            "Sommer2024!", "tiger123", "Pa55word^", "Kj8*vN2q", "пароль2024"]
PW_CHARS = ALNUM + "!#%*-_.@^~"


def mk_pw():
    if R.random() < 0.35:
        return R.choice(PW_HUMAN)
    while True:
        v = rs(PW_CHARS, R.randint(10, 24))
        if any(c in DIG for c in v) and any(c.isalpha() for c in v):
            return v


P_PW = Pool(mk_pw)
PW_CTX = {
    "any": lambda v: True,
    "xml": lambda v: not any(c in v for c in "&<>'\""),
    "ascii": lambda v: v.isascii() and "?" not in v and "&" not in v,
    "plain": lambda v: v.isascii() and not any(c in v for c in "&$^"),
}


def pw(ctx="any"):
    return P_PW.get(PW_CTX[ctx])


def url_user_pw(v):
    return urllib.parse.quote(v, safe="-._~!*")


def qenc(v):
    return urllib.parse.quote(v, safe="-._~")


BASIC_USERS = ["admin", "ci", "deploy", "alice", "bob", "svc-backup", "grafana", "metrics",
               "jenkins", "elastic", "registry", "api"]
P_BASIC = Pool(lambda: b64(("%s:%s" % (R.choice(BASIC_USERS), mk_pw())).encode()))


def basic():
    return P_BASIC.get()


# ----------------------------------------------------------------------------------------------
# Look-alike value makers
# ----------------------------------------------------------------------------------------------
def git_short():
    return hx(R.choice([7, 7, 8, 10, 12]))


def sha256_digest():
    return "sha256:" + hx(64)


CHROME = ["120.0.6099.109", "121.0.6167.85", "119.0.6045.199", "122.0.6261.94", "120.0.6099.224"]
SEMVER = ["1.4.2", "2.0.0", "0.9.17", "3.12.1", "1.28.4", "2.48.1", "7.2.4", "8.11.3", "1.25.3",
          "2.0.0-rc.1", "1.5.0-beta.2+build.417", "0.27.0", "3.6.1", "5.31.0", "10.2.3",
          "1.15.4", "4.6.1", "17.0.9", "20.10.0", "3.11.7", "8.0.36", "2.311.0", "v1.28.5",
          "v3.13.3", "v2.10.7", "1.6.6", "2.16.2", "0.0.1-SNAPSHOT", "6.4.2-alpha.1+sha.3f2a9c1"]
FOUR_PART = ["4.0.0.0", "10.0.19045.3570", "10.0.17763.5329", "6.3.9600.20778", "2.0.0.0",
             "1.0.0.0", "8.0.23.53103", "16.0.17126.20132", "5.2.1.0", "3.1.0.12"]
KERNELS = ["5.15.0-1051-aws", "6.1.0-17-amd64", "6.5.0-14-generic", "5.10.205-195.804.amzn2.x86_64",
           "6.6.8-200.fc39.x86_64", "4.18.0-513.11.1.el8_9.x86_64", "6.2.0-1018-azure",
           "5.15.133+"]


def semver():
    return R.choice(SEMVER) if R.random() < 0.7 else "%d.%d.%d" % (R.randint(0, 12), R.randint(0, 40), R.randint(0, 30))


NS = ["default", "kube-system", "payments", "payments-prod", "data", "monitoring",
      "ingress-nginx", "cert-manager", "argocd", "orders", "auth", "logging", "staging", "ml"]
DEPS = ["api", "billing", "orders", "checkout", "auth-server", "frontend", "worker", "notifier",
        "search", "gateway", "inventory", "reports", "ledger", "webhooks"]
SECRET_NAMES = ["db-creds", "pg-credentials", "stripe-api", "tls-wildcard", "regcred",
                "api-keys", "smtp-auth", "kafka-sasl", "vault-token", "oauth-client",
                "mongo-root", "redis-auth", "ghcr-pull", "sentry-dsn"]


def pod():
    if R.random() < 0.25:
        return "%s-%d" % (R.choice(["postgres", "kafka", "zk", "redis", "es-data", "rabbitmq", "mongo"]), R.randint(0, 4))
    return "%s-%s-%s" % (R.choice(DEPS), rs(PODC, R.choice([9, 10])), rs(PODC, 5))


def node():
    c = R.randrange(5)
    if c == 0:
        return "ip-10-%d-%d-%d.ec2.internal" % (R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))
    if c == 1:
        return "ip-10-%d-%d-%d.%s.compute.internal" % (R.randint(0, 255), R.randint(0, 255), R.randint(1, 254),
                                                       R.choice(["eu-central-1", "us-west-2", "ap-southeast-1"]))
    if c == 2:
        return "gke-prod-default-pool-%s-%s" % (hx(8), rs(LOWER + DIG, 4))
    if c == 3:
        return "aks-nodepool1-%s-vmss%06d" % (rs(DIG, 8), R.randint(0, 40))
    return "worker-%d.k8s.%s" % (R.randint(1, 12), R.choice(["local", "internal"]))


IMG_REPOS = ["docker.io/library/nginx", "nginx", "postgres", "redis", "ghcr.io/acme/api",
             "ghcr.io/acme/billing", "quay.io/prometheus/node-exporter", "registry.k8s.io/pause",
             "registry.k8s.io/kube-proxy", "gcr.io/distroless/static-debian12",
             "public.ecr.aws/docker/library/python", "123456789012.dkr.ecr.eu-central-1.amazonaws.com/orders",
             "mcr.microsoft.com/dotnet/aspnet", "bitnami/postgresql", "grafana/grafana",
             "hashicorp/vault", "confluentinc/cp-kafka", "rabbitmq", "docker.elastic.co/elasticsearch/elasticsearch",
             "mongo", "mysql", "traefik", "envoyproxy/envoy", "caddy", "haproxy",
             "us-docker.pkg.dev/acme-prod/apps/web", "registry.example.com:5000/team/worker"]
IMG_TAGS = ["1.25.3", "16.1-alpine", "7.2.4", "v2.3.1", "sha-3f2a9c1", "latest", "3.9",
            "v1.28.4", "nonroot", "3.12-slim", "8.0", "10.2.3", "1.15.4", "7.5.3",
            "3.12.10-management", "8.11.3", "7.0.5", "8.0.36", "v3.0.1", "v1.28.0", "2.7.6", "2.8.5",
            "1.4.2", "main-20240115", "v1.4.2-amd64"]


def image():
    repo = R.choice(IMG_REPOS)
    c = R.random()
    if c < 0.65:
        return "%s:%s" % (repo, R.choice(IMG_TAGS))
    if c < 0.85:
        return "%s@%s" % (repo, sha256_digest())
    return "%s:%s@%s" % (repo, R.choice(IMG_TAGS), sha256_digest())


def ptr():
    return "0x" + R.choice(["7ff", "7f", "c000", "5555", "7ffd"]) + hx(R.choice([8, 9, 10]))


# ----------------------------------------------------------------------------------------------
# Shared emitters
# ----------------------------------------------------------------------------------------------
COMMON_PORTS = [22, 25, 53, 80, 123, 161, 443, 465, 514, 587, 1433, 2181, 2379, 3306, 3389, 4317,
                5432, 5672, 6379, 8080, 8200, 8443, 9090, 9092, 9093, 9200, 9300, 10250, 15672,
                27017]


def rport():
    return R.choice(COMMON_PORTS) if R.random() < 0.35 else R.randint(1024, 65535)


def e_ipport(L, v6ok=True, port=None, sep=":"):
    p = str(port if port is not None else rport())
    if v6ok and R.random() < 0.25:
        L("[", ("IP", ip6()), "]" + sep, ("PORT", p))
    else:
        L(("IP", ip4()), sep, ("PORT", p))


def e_ll_zone(L):
    L(("IP", P_LL.get()), "%" + R.choice(["eth0", "en0", "ens5", "wlan0", "2", "bond0"]))


def e_ua(L):
    c = R.randrange(12)
    if c < 3:
        L("Mozilla/5.0 (Windows NT ", ("VERSION", "10.0"), "; Win64; x64) AppleWebKit/",
          ("VERSION", "537.36"), " (KHTML, like Gecko) Chrome/", ("VERSION", R.choice(CHROME)),
          " Safari/", ("VERSION", "537.36"))
    elif c == 3:
        L("Mozilla/5.0 (X11; Linux x86_64; rv:", ("VERSION", "121.0"), ") Gecko/20100101 Firefox/",
          ("VERSION", R.choice(["121.0", "122.0", "115.6.0"])))
    elif c == 4:
        L("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2_1 like Mac OS X) AppleWebKit/",
          ("VERSION", "605.1.15"), " (KHTML, like Gecko) Version/", ("VERSION", "17.2"),
          " Mobile/15E148 Safari/", ("VERSION", "604.1"))
    elif c == 5:
        L("curl/", ("VERSION", R.choice(["8.5.0", "7.81.0", "8.4.0", "7.88.1"])))
    elif c == 6:
        L("python-requests/", ("VERSION", R.choice(["2.31.0", "2.28.2"])))
    elif c == 7:
        L("Go-http-client/", ("VERSION", R.choice(["1.1", "2.0"])))
    elif c == 8:
        L("okhttp/", ("VERSION", R.choice(["4.12.0", "4.9.3"])))
    elif c == 9:
        L("kube-probe/", ("VERSION", R.choice(["1.28", "1.29", "1.27"])))
    elif c == 10:
        L("Prometheus/", ("VERSION", R.choice(["2.48.1", "2.49.0"])))
    else:
        L("Apache-HttpClient/", ("VERSION", "4.5.14"), " (Java/", ("VERSION", "17.0.9"), ")")


METHODS = ["GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH"]


def status():
    return R.choice([200, 200, 200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 429, 500, 502, 503])


def e_path(L, pii=None):
    """An HTTP request target; with pii=None about half of them carry a sensitive value."""
    if pii is None:
        pii = R.random() < 0.5
    if pii:
        c = R.randrange(20)
        c = {12: 8, 13: 8, 14: 7, 15: 5, 16: 8, 17: 7, 18: 0, 19: 0}.get(c, c)        # extra weight for some variants
        if c == 0:
            L("/api/v1/users?email=", ("EMAIL", email_enc(email())))
        elif c == 1:
            L("/oauth2/callback?code=", ("TOKEN", qenc(tok("oauth_code"))))
        elif c == 2:
            L("/password/reset?token=", ("TOKEN", tok("bearer")))
        elif c == 3:
            L("/maps/api/geocode/json?address=Berlin&key=", ("TOKEN", tok("google_api")))
        elif c == 4:
            L("/login?username=", R.choice(BASIC_USERS), "&password=", ("PASSWORD", qenc(pw())))
        elif c == 5:
            L("/v1/track?", R.choice(["api_key", "apiKey", "api-key", "key"]), "=", ("SECRET", qenc(secret())))
        elif c == 6:
            L("/api/sessions/", ("UUID", uuid()))
        elif c == 7:
            L("/ws/events?access_token=", ("JWT", jwt()))
        elif c == 8:
            L("/checkout/confirm?card=", ("CREDIT_CARD", card("plain")), "&exp=1227")
        elif c == 9:
            L("/unsubscribe/", ("EMAIL", email()))
        elif c == 10:
            L("/api/v2/devices/", ("MAC", mac(R.choice(["colon", "dash", "DASH", "COLON"]))), "/status")
        else:
            L("/hooks/ingest?token=", ("TOKEN", tok(R.choice(["slack", "github", "gitlab", "bearer"]))))
    else:
        c = R.randrange(9)
        if c == 0:
            L(R.choice(["/healthz", "/readyz", "/metrics", "/", "/favicon.ico", "/robots.txt"]))
        elif c == 1:
            L("/api/v2/orders/", ("NUMBER", str(R.randint(10000, 99999999))))
        elif c == 2:
            L("/static/js/main.", ("HASH", hx(8)), ".js")
        elif c == 3:
            L("/api/v1/namespaces/", ("K8S_NAME", R.choice(NS)), "/pods/", ("K8S_NAME", pod()))
        elif c == 4:
            L("/v2/acme/api/manifests/", ("HASH", sha256_digest()))
        elif c == 5:
            L("/api/ai/complete?model=small&max_tokens=", ("KEY_NAME", R.choice(["256", "1024", "4096"])))
        elif c == 6:
            L("/download/agent-", ("VERSION", semver()), ".tar.gz")
        elif c == 7:
            L("/api/v1/shipments/", ("NUMBER", long_number(R.randint(13, 19))))
        else:
            L("/api/users/me?fields=password_changed_at,email_verified")


def e_trace(L):
    """A trace/request identifier in one of the common propagation formats."""
    c = R.randrange(6)
    if c == 0:
        L("traceparent: 00-", ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), "-01")
    elif c == 1:
        L("X-Amzn-Trace-Id: Root=", ("TRACE_ID", "1-%08x-%s" % (int(rand_dt().timestamp()), hx(24))), ";Parent=", ("TRACE_ID", hx(16)), ";Sampled=1")
    elif c == 2:
        L("dd.trace_id=", ("TRACE_ID", long_number(19)), " dd.span_id=", ("TRACE_ID", long_number(R.choice([18, 19]))))
    elif c == 3:
        L("X-B3-TraceId: ", ("TRACE_ID", hx(R.choice([16, 32]))), " X-B3-SpanId: ", ("TRACE_ID", hx(16)))
    elif c == 4:
        L("X-Request-Id: ", ("TRACE_ID", R.choice([hx(32), "req_" + rs(ALNUM, 24), rs(ALNUM, 20)])))
    else:
        L("trace_id=", ("TRACE_ID", hx(32)), " span_id=", ("TRACE_ID", hx(16)))


def e_authval(L):
    c = R.randrange(17)
    c = {9: 7, 10: 0, 11: 0, 12: 0, 13: 6, 14: 6, 15: 0, 16: 0}.get(c, c)        # extra weight for some variants
    if c < 3:
        L("Bearer ", ("JWT", jwt()))
    elif c == 3:
        L("Bearer ", ("TOKEN", tok("bearer")))
    elif c == 4:
        L("Basic ", ("PASSWORD", basic()))
    elif c == 5:
        L("token ", ("TOKEN", tok("github")))
    elif c == 6:
        L("Bearer ", ("TOKEN", tok(R.choice(VENDORS))))
    elif c == 7:
        L("ApiKey ", ("SECRET", P_ESKEY.get()))
    else:
        L("Basic ", ("PASSWORD", basic()))


def e_header(L):
    """One 'Name: value' request header carrying a credential."""
    c = R.randrange(11)
    c = {10: 4}.get(c, c)        # extra weight for some variants
    if c < 4:
        L(R.choice(["Authorization", "authorization"]), ": ")
        e_authval(L)
    elif c == 4:
        L(R.choice(["X-Api-Key", "x-api-key", "Api-Key"]), ": ", ("SECRET", secret()))
    elif c == 5:
        L("Cookie: theme=dark; ", R.choice(["sessionid", "session", "JSESSIONID", "PHPSESSID",
                                            "connect.sid", "_gitlab_session"]), "=", ("TOKEN", session_cookie()))
    elif c == 6:
        L("PRIVATE-TOKEN: ", ("TOKEN", tok("gitlab")))
    elif c == 7:
        L("X-Vault-Token: ", ("TOKEN", tok("vault")))
    elif c == 8:
        L("X-Shopify-Access-Token: ", ("TOKEN", tok("shopify")))
    else:
        L("X-Amz-Security-Token: ", ("TOKEN", tok("aws_session")))


# Key spellings for credentials ---------------------------------------------------------------
SECRET_KEYS = [
    "api_key", "secret_key", "client_secret", "signing_key", "webhook_secret", "private_key",
    "encryption_key", "app_secret", "hmac_key", "master_key", "jwt_secret", "consumer_secret",
    "apiKey", "secretKey", "clientSecret", "signingKey", "webhookSecret", "privateKey",
    "encryptionKey", "appSecret", "hmacKey", "jwtSecret", "consumerSecret",
    "api-key", "secret-key", "client-secret", "signing-key", "webhook-secret", "x-api-key",
    "API_KEY", "SECRET_KEY", "CLIENT_SECRET", "SIGNING_KEY", "WEBHOOK_SECRET", "JWT_SECRET",
    "DJANGO_SECRET_KEY", "SECRET_KEY_BASE", "DD_API_KEY", "NEW_RELIC_LICENSE_KEY", "APP_KEYS",
    "api.key", "client.secret", "jwt.signing.key", "app.security.secret-key", "webhook.secret",
    "spring.security.oauth2.client.registration.okta.client-secret", "encrypt.key", "hmac.secret",
    "azure.storage.account-key",
    "stripe_webhook_secret", "MYAPP_API_KEY", "x_api_key", "BILLING_SIGNING_KEY",
    "auth0_client_secret", "OKTA_CLIENT_SECRET", "PAYPAL_CLIENT_SECRET", "segment.write-key",
    "algolia_admin_api_key", "AZURE_STORAGE_KEY", "ConnectionStrings__Storage__AccountKey",
    "mailgun.apiKey", "PAGERDUTY_ROUTING_KEY", "recaptcha_secret"]
AWS_SECRET_KEYS = ["aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", "awsSecretAccessKey",
                   "aws.secretKey", "aws-secret-access-key", "secretAccessKey", "AWS_SECRET_KEY",
                   "s3.secret_key"]
AWS_ID_KEYS = ["aws_access_key_id", "AWS_ACCESS_KEY_ID", "accessKeyId", "aws.accessKeyId",
               "aws-access-key-id", "AWS_ACCESS_KEY", "s3.access_key"]
PASSWORD_KEYS = [
    "password", "passwd", "pwd", "pass", "Password", "PASSWORD", "db_password", "dbPassword",
    "DB_PASSWORD", "db-password", "db.password", "spring.datasource.password", "PGPASSWORD",
    "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
    "RABBITMQ_DEFAULT_PASS", "admin_password", "adminPassword", "root_password",
    "ldap.bind.password", "bindPassword", "smtp_password", "SMTP_PASS", "keystore.password",
    "ssl.keystore.password", "truststorePassword", "mail.smtp.password", "ansible_become_pass",
    "ansible_ssh_pass", "login_password", "passphrase", "ELASTIC_PASSWORD",
    "GF_SECURITY_ADMIN_PASSWORD", "MONGO_INITDB_ROOT_PASSWORD", "proxy_password", "user_pass",
    "KC_DB_PASSWORD", "app.datasource.password"]
GENERIC_TOKEN_KEYS = ["token", "access_token", "accessToken", "refresh_token", "refreshToken",
                      "auth_token", "authToken", "api_token", "apiToken", "session_token",
                      "sessionToken", "bearer_token", "ACCESS_TOKEN", "REFRESH_TOKEN",
                      "oauth.refresh-token", "app.auth.token", "x-access-token"]
VENDOR_KEYS = {
    "github": ["GITHUB_TOKEN", "GH_TOKEN", "GITHUB_KEY", "github_token", "githubToken"],
    "github_pat": ["GITHUB_PAT", "gh_pat", "GITHUB_TOKEN"],
    "gitlab": ["GITLAB_TOKEN", "gitlab_token", "private_token", "GITLAB_API_KEY"],
    "slack": ["SLACK_BOT_TOKEN", "slack_token", "slackToken", "SLACK_APP_TOKEN"],
    "stripe": ["STRIPE_SECRET_KEY", "stripe_api_key", "stripe.apiKey", "STRIPE_KEY"],
    "npm": ["NPM_TOKEN", "NODE_AUTH_TOKEN", "npm_token"],
    "pypi": ["TWINE_PASSWORD", "PYPI_TOKEN", "pypi_api_token"],
    "google_oauth": ["access_token", "GOOGLE_OAUTH_ACCESS_TOKEN", "oauth_token"],
    "google_api": ["GOOGLE_API_KEY", "maps_api_key", "firebaseApiKey", "key"],
    "hf": ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "hf_token", "HUGGINGFACE_API_KEY"],
    "sendgrid": ["SENDGRID_API_KEY", "sendgrid.api-key", "sendgridApiKey"],
    "twilio": ["TWILIO_API_KEY", "twilio_api_key", "twilio.api-key"],
    "shopify": ["SHOPIFY_ACCESS_TOKEN", "shopify_token", "SHOPIFY_API_SECRET"],
    "digitalocean": ["DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN", "do_token"],
    "openai": ["OPENAI_API_KEY", "openai.api-key", "openaiApiKey", "LLM_API_KEY"],
    "anthropic": ["ANTHROPIC_API_KEY", "anthropic_api_key", "anthropic.api-key"],
    "vault": ["VAULT_TOKEN", "vault.token", "vault_token"],
    "grafana": ["GRAFANA_TOKEN", "grafana_sa_token", "GRAFANA_API_KEY"],
}
JWT_KEYS = ["id_token", "access_token", "jwt", "token", "idToken", "AUTH_JWT", "accessToken",
            "ACTIONS_ID_TOKEN", "assertion", "client_assertion"]


def kebab(key):
    k = re.sub(r"(?<=[a-z0-9])([A-Z])", r"-\1", key)
    return k.replace("_", "-").replace(".", "-").lower()


LOGFMT_BAD = set(' "=\\')


def kv(L, key, kind, value, style):
    """Append key/value in one syntax; the span is only the value."""
    if style == "logfmt" and any(c in LOGFMT_BAD for c in value):
        style = "logfmt_q"
    if style in ("json", "json_sp"):
        L(json.dumps(key), ":" if style == "json" else ": ", '"', (kind, value), '"')
    elif style in ("logfmt", "env"):
        L(key, "=", (kind, value))
    elif style == "logfmt_q":
        L(key, '="', (kind, value), '"')
    elif style == "yaml":
        L(key, ": ", (kind, value))
    elif style == "yaml_q":
        L(key, ': "', (kind, value), '"')
    elif style == "props":
        L(key, " = ", (kind, value))
    elif style == "cli":
        L("--", kebab(key), "=", (kind, value))
    elif style == "cli_sp":
        L("--", kebab(key), " ", (kind, value))
    elif style == "query":
        L(key, "=", (kind, qenc(value)))
    elif style == "xml":
        L("<", key, ">", (kind, value), "</", key, ">")
    elif style == "pydict":
        L("'", key, "': '", (kind, value), "'")
    elif style == "nodeobj":
        L(key if re.match(r"^[A-Za-z_]\w*$", key) else "'" + key + "'", ": '", (kind, value), "'")
    elif style == "export":
        L("export ", key, "=", (kind, value))
    elif style == "envq":
        L(key, "='", (kind, value), "'")
    elif style == "pyarg":
        L(re.sub(r"\W", "_", key).lower(), '="', (kind, value), '"')
    elif style == "hcl":
        L(key, ' = "', (kind, value), '"')
    else:
        raise ValueError(style)


KV_STYLES = ["json", "json_sp", "logfmt", "env", "yaml", "yaml_q", "props", "cli", "cli_sp",
             "query", "pydict", "nodeobj", "export", "envq", "logfmt_q", "hcl"]


def secret_value(style, key):
    if "aws" in key.lower() or "s3." in key:
        return aws_secret()
    r = R.random()
    if r < 0.10 and style in ("json", "json_sp"):
        return pem_json()
    if r < 0.16 and style in ("env", "yaml", "yaml_q", "json", "json_sp", "props", "export", "envq", "hcl"):
        return pem_b64()
    if r < 0.19 and style in ("logfmt_q", "yaml_q", "envq"):
        return pem_spaced()
    return secret()


def e_vendor_kv(L, style):
    """A vendor token (documented prefix) under a vendor-specific key; TOKEN by value format."""
    vendor = R.choice(VENDORS)
    kv(L, R.choice(VENDOR_KEYS[vendor]), "TOKEN", tok(vendor), style)


def e_cred_kv(L, style=None, kind=None, kinds=None):
    """A credential under one of many key spellings; returns the kind emitted."""
    style = style or R.choice(KV_STYLES)
    kind = kind or R.choice(kinds or ["SECRET", "SECRET", "SECRET", "TOKEN", "TOKEN", "PASSWORD",
                                      "PASSWORD", "JWT", "AWS_KEY", "AWS_KEY"])
    if style == "xml" and kind not in ("PASSWORD",):
        style = "json"
    if kind == "SECRET":
        if R.random() < 0.2:
            key = R.choice(AWS_SECRET_KEYS)
        else:
            key = R.choice(SECRET_KEYS)
        val = secret_value(style, key)
    elif kind == "TOKEN":
        vendor = R.choice(VENDORS + ["bearer", "refresh", "session"])
        if vendor in VENDOR_KEYS and R.random() < 0.7:
            key = R.choice(VENDOR_KEYS[vendor])
        else:
            key = R.choice(GENERIC_TOKEN_KEYS)
        if vendor == "refresh":
            key = R.choice(["refresh_token", "refreshToken", "REFRESH_TOKEN", "oauth.refresh-token"])
        if vendor == "session":
            key = R.choice(["session_token", "sessionToken", "session_id", "sid"])
        val = tok(vendor)
    elif kind == "PASSWORD":
        key = R.choice(PASSWORD_KEYS)
        val = pw("xml" if style in ("xml", "json", "json_sp", "pydict", "nodeobj", "envq", "hcl", "yaml_q", "logfmt_q") else "any")
    elif kind == "JWT":
        key = R.choice(JWT_KEYS)
        val = jwt()
    elif kind == "AWS_KEY":
        key = R.choice(AWS_ID_KEYS)
        val = awskey()
    else:
        raise ValueError(kind)
    kv(L, key, kind, val, style)
    return kind


BENIGN_KV = [
    ("password_changed", "true"), ("max_tokens", "4096"), ("token_count", "12"),
    ("secret_name", "db-creds"), ("password_expiry_days", "90"), ("password", "********"),
    ("password", "[REDACTED]"), ("PASSWORD", "${DB_PASSWORD}"), ("api_key", "<redacted>"),
    ("token", "***"), ("client_secret", "REDACTED"), ("passwordless", "false"),
    ("has_api_key", "true"), ("secretRef", "vault:kv/data/app#db"), ("password_min_length", "12"),
    ("tokens_used", "1532"), ("refresh_token_rotation", "enabled"),
    ("password", "{{ vault_db_password }}"), ("DB_PASSWORD_FILE", "/run/secrets/db_password"),
    ("api_key_header", "X-API-Key"), ("secret_version", "3"), ("password_hash_algo", "argon2id"),
    ("private_key_path", "/etc/ssl/private/server.key"), ("token_expires_in", "3600"),
    ("password_reset_required", "false"), ("auth_token_ttl", "15m"), ("secretName", "tls-wildcard"),
    ("existingSecret", "pg-creds"), ("apiKeyRef", "payments-api-key"), ("token_limit", "8192"),
    ("password_attempts", "3"), ("max_password_age", "90d"), ("secret", "<nil>"),
    ("password", "null"), ("token", "undefined"), ("api_key", "None"),
    ("client_secret", "$(CLIENT_SECRET)"), ("webhook_secret_set", "true"),
    ("token_bucket_size", "100"), ("password_policy", "strong"), ("secret_id_num_uses", "0"),
    ("password", "xxxxxxxx"), ("apiKey", "YOUR_API_KEY"), ("api_key", "<API_KEY>"),
    ("SECRET_KEY_BASE", "${SECRET_KEY_BASE}"), ("signing_key_id", "kid-2024-01"),
    ("password_set", "yes"), ("num_tokens", "2048"), ("secret_count", "14"),
    ("password_strength", "weak"), ("token_type_hint", "refresh_token"),
    ("AWS_SECRET_ACCESS_KEY", "${{ secrets.AWS_SECRET_ACCESS_KEY }}"), ("apiToken", "[FILTERED]"),
    ("db_password", "(sensitive value)"), ("auth", "<secret>"), ("credentials", "[hidden]"),
    ("tokenizer", "cl100k_base"), ("secret_scanning", "enabled"), ("passwd_file", "/etc/passwd"),
    ("keyring_backend", "file"), ("api_key_id", "key-7"), ("session_timeout", "1800"),
    ("MAX_TOKENS", "512"), ("token_estimate", "734"), ("private_key_type", "RSA"),
    ("secretKeyRef.name", "smtp-auth"), ("password.expired", "false"), ("secret.rotation.days", "30"),
]


def e_benign_kv(L, style=None):
    key, val = R.choice(BENIGN_KV)
    style = style or R.choice(["json", "json_sp", "logfmt", "env", "yaml", "props", "logfmt_q"])
    if style == "logfmt" and any(c in LOGFMT_BAD for c in val):
        style = "logfmt_q"
    if style in ("json", "json_sp") and (val in ("true", "false", "null") or val.isdigit()):
        L(json.dumps(key), ":" if style == "json" else ": ", ("KEY_NAME", val))
        return
    if style == "env" and " " in val:
        style = "envq"
    kv(L, key, "KEY_NAME", val, style)


# ==============================================================================================
# Sources.  Each function appends one physical log line to L.  A function picks its variant with
# c = R.randrange(n); where a dict follows ("extra weight"), indices past the original range are
# mapped back onto existing variants so that rarer value kinds get enough instances.
# ==============================================================================================
HOSTS = ["web-01", "web-02", "api-1", "lb-01", "db-01", "db-02", "cache-01", "mq-01",
         "edge-fra-1", "bastion", "ci-runner-3", "worker-7", "mx1", "fw01", "gw"]
AUTHORITIES = ["api.example.com", "shop.example.com", "auth.example.org", "payments.internal",
               "grafana.example.net", "www.example.com", "hooks.example.io", "app.contoso.com"]


def s_haproxy(L):
    d = rand_dt()
    L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["lb-01", "lb-02", "edge-1"]), " haproxy[",
      ("NUMBER", str(R.randint(1000, 99999))), "]: ")
    c = R.randrange(8)
    if c <= 3:                                                   # option httplog
        if R.random() < 0.25:
            L(("IP", "::ffff:" + ip4()))
        else:
            L(("IP", ip4()))
        L(":", ("PORT", str(R.randint(1024, 65535))), " [", ("TIMESTAMP", ts("haproxy", d)), "] ")
        L(R.choice(["http-in", "https-in~", "fe_main~", "fe_api"]), " ",
          R.choice(["static/srv1", "be_api/api2", "be_app/app1", "be_auth/auth-3", "be_api/<NOSRV>"]), " ",
          "%d/0/%d/%d/%d " % (R.randint(0, 20), R.randint(0, 50), R.randint(1, 500), R.randint(5, 900)))
        L(str(status()), " ", ("NUMBER", str(R.randint(100, 250000))), " ")
        if R.random() < 0.35:
            L(R.choice(["SESSIONID=", "sid=", "JSESSIONID=", "SERVERID="]), ("TOKEN", tok("session")), " - ")
        else:
            L("- - ")
        L(R.choice(["----", "--NI", "--VN", "CD--", "SD--", "PH--", "cD--"]),
          " %d/%d/%d/%d/0 0/0 " % (R.randint(1, 900), R.randint(1, 900), R.randint(0, 50), R.randint(0, 20)))
        if R.random() < 0.75:
            L("{", R.choice(AUTHORITIES), "|")
            e_ua(L)
            if R.random() < 0.55:
                L("|")
                e_authval(L)
            if R.random() < 0.3:
                L("|00-", ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), "-01")
            L("} ")
        L('"', R.choice(METHODS), " ")
        e_path(L)
        L(' HTTP/1.1"')
    elif c == 4:                                                 # option tcplog
        e_ipport(L, v6ok=False)
        L(" [", ("TIMESTAMP", ts("haproxy", d)), "] ", R.choice(["fe_mysql", "fe_redis", "fe_smtp"]), " ",
          R.choice(["be_mysql/db1", "be_redis/cache-01", "be_smtp/mx2"]),
          " %d/%d/%d %d -- %d/%d/%d/%d/0 0/0" % (R.randint(0, 5), R.randint(0, 9), R.randint(5, 90000),
                                              R.randint(100, 90000), R.randint(1, 90), R.randint(1, 90),
                                              R.randint(0, 9), R.randint(0, 9)))
    elif c == 5:
        L("Connect from ")
        e_ipport(L, v6ok=False)
        L(" to ")
        e_ipport(L, v6ok=False, port=R.choice([443, 80, 8443]))
        L(" (", R.choice(["fe_main", "https-in"]), "/", R.choice(["HTTP", "TCP"]), ")")
    elif c == 6:
        up = R.random() < 0.4
        L("Server ", R.choice(["be_api/api2", "be_app/app1", "be_auth/auth-3"]), " is ",
          "UP" if up else "DOWN", ", reason: ", "Layer7 check passed" if up else R.choice(["Layer4 timeout", "Layer7 wrong status",
                                                                                          "Layer4 connection problem"]),
          ", check duration: ", str(R.randint(0, 2001)), "ms. ", str(R.randint(0, 4)),
          " active and 0 backup servers left. 0 sessions active, 0 requeued, 0 remaining in queue.")
    else:
        L(R.choice(["fe_main", "https-in"]), "/", R.choice(["1", "2"]), ": SSL handshake failure (",
          R.choice(["error:0A000412:SSL routines::sslv3 alert bad certificate",
                    "Connection closed during SSL handshake"]), ") from ")
        e_ipport(L, v6ok=False)


def s_envoy(L):
    d = rand_dt()
    L("[", ("TIMESTAMP", ts("iso3z", d)), "] ")
    c = R.randrange(10)
    if c == 9:                                                   # TCP proxy, default format
        L('"- - -" 0 - ', ("NUMBER", str(R.randint(100, 99999))), " ", ("NUMBER", str(R.randint(100, 999999))),
          " ", str(R.randint(1, 90000)), ' - "-" "-" "-" "-" "')
        e_ipport(L)
        L('"')
        return
    L('"', R.choice(METHODS), " ")
    e_path(L)
    L(" ", R.choice(["HTTP/1.1", "HTTP/2", "HTTP/1.1"]), '" ', str(status()), " ",
      R.choice(["-", "-", "-", "UF,URX", "UH", "NR", "DC", "UT"]), " ", str(R.randint(0, 5000)), " ",
      str(R.randint(0, 90000)), " ", str(R.randint(1, 3000)), " ", R.choice(["-", str(R.randint(1, 2900))]), ' "')
    if R.random() < 0.85:
        for i in range(R.choice([1, 1, 2, 3])):
            if i:
                L(R.choice([",", ", "]))
            L(("IP", ipa()))
    else:
        L("-")
    L('" "')
    e_ua(L)
    L('" "', ("UUID", uuid()), '" "', R.choice(AUTHORITIES), '" "')
    e_ipport(L)
    L('"')
    if c >= 6:                                                   # Istio mesh extension
        ns, dep = R.choice(NS), R.choice(DEPS)
        L(" outbound|8080||", ("K8S_NAME", "%s.%s.svc.cluster.local" % (dep, ns)), " ")
        e_ipport(L, v6ok=False)
        L(" ")
        e_ipport(L, v6ok=False)
        L(" ")
        e_ipport(L, v6ok=False)
        L(" - default")
    elif c >= 4:
        L(' "00-', ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), '-01"')


def s_envoy_json(L):
    L.json = True
    d = rand_dt()
    f = [("start_time", ("TIMESTAMP", ts("iso3z", d))), ("method", R.choice(METHODS)),
         ("path", lambda L: (L('"'), e_path(L), L('"'))), ("protocol", R.choice(["HTTP/1.1", "HTTP/2"])),
         ("response_code", status()), ("response_flags", R.choice(["-", "-", "UF", "UH", "NR"])),
         ("bytes_received", ("raw", "NUMBER", str(R.randint(0, 90000)))), ("bytes_sent", R.randint(0, 90000)),
         ("duration", R.randint(1, 3000)), ("upstream_service_time", str(R.randint(1, 2000))),
         ("x_forwarded_for", ("IP", ipa())), ("user_agent", lambda L: (L('"'), e_ua(L), L('"'))),
         ("request_id", ("UUID", uuid())), ("authority", R.choice(AUTHORITIES)),
         ("upstream_host", lambda L: (L('"'), e_ipport(L), L('"')))]
    c = R.randrange(9)
    c = {6: 1, 7: 2, 8: 5}.get(c, c)        # extra weight for some variants
    if c == 0:
        f.append(("downstream_remote_address", lambda L: (L('"['), L(("IP", ip6())), L("]:"),
                                                          L(("PORT", str(R.randint(1024, 65535)))), L('"'))))
    if c in (1, 2):
        f.append(("authorization", lambda L: (L('"'), e_authval(L), L('"'))))
    if c == 3:
        f.append(("traceparent", S("00-", ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), "-01")))
        f.append(("x_b3_traceid", ("TRACE_ID", hx(16))))
    if c == 4:
        f.append(("upstream_cluster", S("outbound|8080||", ("K8S_NAME", "%s.%s.svc.cluster.local" % (R.choice(DEPS), R.choice(NS))))))
        f.append(("downstream_peer_uri_san", S("spiffe://cluster.local/ns/", ("K8S_NAME", R.choice(NS)), "/sa/", R.choice(DEPS))))
    if c == 5:
        f.append(("x_api_key", ("SECRET", secret())))
    if R.random() < 0.25:
        f.append(("connection_termination_details", None))
    jobj(L, O(f), sp=R.random() < 0.3)


def s_apache_error(L):
    d = rand_dt()
    L("[", ("TIMESTAMP", ts("apache", d)), "] ")
    mod = R.choice(["proxy:error", "authz_core:error", "auth_basic:error", "php:warn", "ssl:warn",
                    "core:error", "proxy_fcgi:error", "security2:error", "mpm_event:notice", "ssl:info"])
    L("[", mod, "] [pid ", ("NUMBER", str(R.randint(100, 65000))))
    if R.random() < 0.6:
        L(":tid ", ("NUMBER", long_number(15)))
    L("] ")
    def client():
        L("[client ")
        if R.random() < 0.2:
            L(("IP", ip6()), ":", ("PORT", str(R.randint(1024, 65535))))
        else:
            L(("IP", ip4()), ":", ("PORT", str(R.randint(1024, 65535))))
        L("] ")
    c = R.randrange(11)
    if c == 0:
        L("(111)Connection refused: AH00957: http: attempt to connect to ")
        e_ipport(L, v6ok=False)
        L(" (", R.choice(["backend", "app1"]), ") failed")
    elif c == 1:
        client()
        L("AH01630: client denied by server configuration: /var/www/html/", R.choice([".env", ".git/config", "wp-config.php.bak"]))
    elif c == 2:
        client()
        L("AH01617: user ", R.choice(BASIC_USERS), ": authentication failure for \"/admin\": Password Mismatch")
    elif c == 3:
        client()
        L("PHP Warning:  mysqli::real_connect(): (HY000/1045): Access denied for user 'app'@'",
          ("IP", ip4()), "' (using password: ", ("KEY_NAME", "YES"), ") in ",
          ("CODE_PATH", "/var/www/html/includes/db.php"), " on line ", str(R.randint(5, 300)),
          ", referer: https://", R.choice(AUTHORITIES), "/login")
    elif c == 4:
        L("AH01909: ", R.choice(AUTHORITIES), ":", ("PORT", "443"), ":0 server certificate does NOT include an ID which matches the server name")
    elif c == 5:
        client()
        L("AH01071: Got error 'PHP message: PHP Fatal error:  Uncaught Exception: SMTP login failed for ",
          ("EMAIL", email()), " with password ", ("PASSWORD", pw("plain")), " in ",
          ("CODE_PATH", "/var/www/html/vendor/phpmailer/phpmailer/src/SMTP.php:1294"), "'")
    elif c == 6:
        client()
        L("ModSecurity: Access denied with code 403 (phase 2). Matched phrase \"union select\" at ARGS:q. [file \"/etc/modsecurity/crs/REQUEST-942-APPLICATION-ATTACK-SQLI.conf\"] [line \"", str(R.randint(100, 1900)),
          "\"] [id \"942100\"] [hostname \"", ("IP", ip4()), "\"] [uri \"/search\"] [unique_id \"",
          ("HEX_ID", rs(ALNUM + "@", 27)), "\"]")
    elif c == 7:
        L("AH00489: Apache/", ("VERSION", R.choice(["2.4.58", "2.4.57", "2.4.52"])), " (Ubuntu) OpenSSL/",
          ("VERSION", R.choice(["3.0.2", "3.0.13", "1.1.1w"])), " configured -- resuming normal operations")
    elif c == 8:
        client()
        L("AH01797: client denied by server configuration: proxy:http://", ("IP", ip4()), ":",
          ("PORT", "8080"), "/internal/", R.choice(["users?email=", "debug?token="]))
        if L.parts[-1].endswith("email="):
            L(("EMAIL", email_enc(email())))
        else:
            L(("TOKEN", tok("bearer")))
    elif c == 9:
        client()
        L("AH10244: invalid URI path (/cgi-bin/.%2e/.%2e/bin/sh)")
    else:
        client()
        L("AH01215: ", R.choice(["stderr: ", ""]), "DEBUG auth header: ")
        e_authval(L)
        L(": /usr/lib/cgi-bin/api.cgi")


def s_caddy(L):
    L.json = True
    d = rand_dt()
    c = R.randrange(9)
    if c <= 4:
        remote = ipa()
        hdrs = [("User-Agent", [lambda L: (L('"'), e_ua(L), L('"'))]), ("Accept", ["*/*"])]
        creds = R.random() < 0.5
        if creds:
            hdrs.append(("Authorization", [lambda L: (L('"'), e_authval(L), L('"'))]))
            if R.random() < 0.5:
                hdrs.append(("Cookie", [S("session=", ("TOKEN", session_cookie()))]))
        else:
            hdrs.append(("Authorization", [("KEY_NAME", "REDACTED")]))
            hdrs.append(("Cookie", [("KEY_NAME", "REDACTED")]))
        if R.random() < 0.4:
            hdrs.append(("Traceparent", [S("00-", ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), "-01")]))
        req = O([("remote_ip", ("IP", remote)), ("remote_port", ("PORT", str(R.randint(1024, 65535)))),
                 ("client_ip", ("IP", remote)), ("proto", R.choice(["HTTP/1.1", "HTTP/2.0", "HTTP/3.0"])),
                 ("method", R.choice(METHODS)), ("host", R.choice(AUTHORITIES)),
                 ("uri", lambda L: (L('"'), e_path(L), L('"'))), ("headers", O(hdrs))])
        if R.random() < 0.7:
            req.append(("tls", O([("resumed", False), ("version", 772), ("cipher_suite", 4865),
                                  ("proto", "h2"), ("server_name", R.choice(AUTHORITIES))])))
        f = [("level", "info"), ("ts", ("raw", "TIMESTAMP", ts("epoch_frac", d))),
             ("logger", "http.log.access.log0"), ("msg", "handled request"), ("request", req),
             ("bytes_read", 0), ("user_id", R.choice(["", "", "alice", "ci"])),
             ("duration", round(R.random() / 50, 9)), ("size", ("raw", "NUMBER", str(R.randint(0, 900000)))),
             ("status", status()),
             ("resp_headers", O([("Server", ["Caddy"]), ("Etag", [S('"', ("HEX_ID", rs(LOWER + DIG, 9)), '"')])]))]
        jobj(L, O(f))
    elif c == 5:
        jobj(L, O([("level", "error"), ("ts", ("raw", "TIMESTAMP", ts("epoch_frac", d))),
                   ("logger", "http.log.error"),
                   ("msg", S("dial tcp ", ("IP", ip4()), ":", ("PORT", str(R.choice([8080, 3000, 9000]))), ": connect: connection refused")),
                   ("request", O([("remote_ip", ("IP", ipa())), ("method", "GET"), ("host", R.choice(AUTHORITIES)),
                                  ("uri", lambda L: (L('"'), e_path(L), L('"')))])),
                   ("duration", round(R.random() / 100, 9)), ("status", 502),
                   ("err_id", ("HEX_ID", rs(LOWER + DIG, 9))),
                   ("err_trace", ("CODE_PATH", "reverseproxy.statusError (reverseproxy.go:1269)"))]))
    elif c == 6:
        jobj(L, O([("level", "info"), ("ts", ("raw", "TIMESTAMP", ts("epoch_frac", d))),
                   ("logger", "tls.issuance.acme"), ("msg", "waiting on internal rate limiter"),
                   ("identifiers", [R.choice(AUTHORITIES)]),
                   ("ca", "https://acme-v02.api.letsencrypt.org/directory"), ("account", ("EMAIL", email()))]))
    elif c == 7:
        jobj(L, O([("level", "info"), ("ts", ("raw", "TIMESTAMP", ts("epoch_frac", d))), ("logger", "admin"),
                   ("msg", "admin endpoint started"), ("address", ("PORT", "localhost:2019")),
                   ("enforce_origin", False), ("origins", ["//localhost:2019"])]))
    else:
        jobj(L, O([("level", "warn"), ("ts", ("raw", "TIMESTAMP", ts("epoch_frac", d))), ("logger", "http.handlers.reverse_proxy"),
                   ("msg", "aborting with incomplete response"),
                   ("upstream", S(("IP", ip4()), ":", ("PORT", "8080"))),
                   ("duration", round(R.random(), 6)),
                   ("request", O([("remote_ip", ("IP", ipa())), ("method", "POST"),
                                  ("uri", "/api/v1/upload"),
                                  ("headers", O([("X-Api-Key", [("SECRET", secret())])]))])),
                   ("error", "writing: http2: stream closed")]))


def s_traefik(L):
    d = rand_dt()
    c = R.randrange(10)
    c = {8: 4, 9: 5}.get(c, c)        # extra weight for some variants
    if c <= 3:                                                   # CLF
        L(("IP", ipa()), " - ", R.choice(["-", "-", "alice", "ci"]), " [", ("TIMESTAMP", ts("clf", d)), '] "',
          R.choice(METHODS), " ")
        e_path(L)
        L(' HTTP/1.1" ', str(status()), " ", ("NUMBER", str(R.randint(0, 90000))), ' "-" "')
        e_ua(L)
        L('" ', ("NUMBER", str(R.randint(1, 900000))), ' "', R.choice(DEPS), '@docker" "http://')
        e_ipport(L, v6ok=False, port=R.choice([8080, 3000, 80]))
        L('" ', str(R.randint(0, 900)), "ms")
    elif c <= 5:                                                 # JSON access log with headers kept
        L.json = True
        ip, port = ip4(), str(R.randint(1024, 65535))
        f = [("ClientAddr", S(("IP", ip), ":", ("PORT", port))), ("ClientHost", ("IP", ip)),
             ("ClientPort", ("PORT", port)), ("ClientUsername", "-"),
             ("DownstreamContentSize", R.randint(0, 9000)), ("Duration", R.randint(100000, 90000000)),
             ("OriginStatus", status()), ("RequestHost", R.choice(AUTHORITIES)),
             ("RequestMethod", R.choice(METHODS)), ("RequestPath", lambda L: (L('"'), e_path(L), L('"'))),
             ("RequestProtocol", "HTTP/2.0"), ("RouterName", R.choice(DEPS) + "@docker"),
             ("ServiceURL", S("http://", ("IP", ip4()), ":", ("PORT", "8080"))),
             ("StartUTC", ("TIMESTAMP", ts("iso9z", d))), ("entryPointName", "websecure"),
             ("level", "info"), ("msg", ""), ("request_User-Agent", lambda L: (L('"'), e_ua(L), L('"')))]
        if R.random() < 0.7:
            f.append(("request_Authorization", lambda L: (L('"'), e_authval(L), L('"'))))
        else:
            f.append(("request_Authorization", ("KEY_NAME", "REDACTED")))
        if R.random() < 0.5:
            f.append(("request_X-B3-Traceid", ("TRACE_ID", hx(32))))
        f.append(("time", ("TIMESTAMP", ts("isoz", d))))
        jobj(L, O(f))
    elif c == 6:
        L(("TIMESTAMP", ts("isoz", d)), " ERR Unable to obtain ACME certificate for domains error=\"unable to generate a certificate for the domains [",
          R.choice(AUTHORITIES), "]: error: one or more domains had a problem\" ACME CA=https://acme-v02.api.letsencrypt.org/directory acmeEmail=",
          ("EMAIL", email()), " providerName=letsencrypt.acme routerName=", R.choice(DEPS), "@docker")
    else:
        L(("TIMESTAMP", ts("isoz", d)), " DBG ", ("CODE_PATH", "github.com/traefik/traefik/v3/pkg/middlewares/auth/basic_auth.go:93"),
          " > Authentication failed middlewareName=", R.choice(["admin-auth@file", "dash@docker"]),
          " middlewareType=BasicAuth remoteAddr=")
        e_ipport(L, v6ok=True)
        L(" user=", R.choice(BASIC_USERS))


MYSQL_USERS = ["app", "shop", "repl", "backup", "reporting", "root", "billing"]


def s_mysql_general(L):
    d = rand_dt()
    L(("TIMESTAMP", ts("iso6z", d)), "\t", "%7d" % R.randint(5, 99999), " ")
    c = R.randrange(25)
    c = {16: 3, 17: 3, 18: 12, 19: 3, 20: 14, 21: 3, 22: 12, 23: 12, 24: 3}.get(c, c)        # extra weight for some variants
    u = R.choice(MYSQL_USERS)
    if c == 0:
        L("Connect\t", u, "@", ("IP", ip4()), " on ", R.choice(["shop", "billing", ""]), " using ",
          R.choice(["TCP/IP", "SSL/TLS"]))
    elif c == 1:
        L("Connect\tAccess denied for user '", u, "'@'", ("IP", ip4()), "' (using password: ",
          ("KEY_NAME", R.choice(["YES", "NO"])), ")")
    elif c == 2:
        if R.random() < 0.5:
            L("Query\tSELECT id, email FROM customers WHERE last_name = '", R.choice(["Müller", "Ødegård", "Łukasiewicz", "山田", "Çelik", "Nuñez"]),
              "' AND email = '", ("EMAIL", email()), "' LIMIT 1")
        else:
            L("Query\tSELECT id, email, password_hash FROM users WHERE email = '", ("EMAIL", email()), "' LIMIT 1")
    elif c == 3:
        L("Query\tINSERT INTO payments (order_id, pan, exp_month, exp_year) VALUES (",
          ("NUMBER", str(R.randint(100000, 9999999))), ", '", ("CREDIT_CARD", card()), "', ",
          str(R.randint(1, 12)), ", ", str(R.randint(2025, 2031)), ")")
    elif c == 4:
        L("Query\tUPDATE users SET last_login_ip = INET6_ATON('", ("IP", ipa()), "'), last_login_at = '",
          ("TIMESTAMP", ts("plain")), "' WHERE id = ", ("NUMBER", str(R.randint(1, 999999))))
    elif c == 5:
        L("Query\tCREATE USER '", u, "'@'%' IDENTIFIED BY '", ("PASSWORD", pw()), "'")
    elif c == 6:
        L("Query\tALTER USER '", u, "'@'10.0.%' IDENTIFIED BY '", ("PASSWORD", pw()), "' PASSWORD EXPIRE INTERVAL ",
          ("KEY_NAME", "90"), " DAY")
    elif c == 7:
        L("Query\tSET PASSWORD FOR '", u, "'@'localhost' = '", ("PASSWORD", pw()), "'")
    elif c == 8:
        L("Query\tCREATE USER '", u, "'@'%' IDENTIFIED WITH 'caching_sha2_password' AS ", ("KEY_NAME", "<secret>"))
    elif c == 9:
        L("Query\tCHANGE REPLICATION SOURCE TO SOURCE_HOST='", ("IP", ip4()), "', SOURCE_PORT=", ("PORT", "3306"),
          ", SOURCE_USER='repl', SOURCE_PASSWORD='", ("PASSWORD", pw()), "', SOURCE_AUTO_POSITION=1")
    elif c == 10:
        L("Query\tINSERT INTO api_keys (owner_email, key_sha256, created_at) VALUES ('", ("EMAIL", email()), "', '",
          ("HASH", hx(64)), "', NOW())")
    elif c == 11:
        L("Query\tSELECT user_id FROM sessions WHERE token = '", ("TOKEN", tok("session")), "' AND expires_at > ",
          ("TIMESTAMP", ts("epoch")))
    elif c == 12:
        L("Query\tINSERT INTO oauth_tokens (user_id, access_token, refresh_token, expires_in) VALUES (",
          ("NUMBER", str(R.randint(1, 99999))), ", '", ("JWT", jwt()), "', '", ("TOKEN", tok("refresh")), "', 3600)")
    elif c == 13:
        L("Query\tUPDATE users SET password_changed = ", ("KEY_NAME", "1"), ", password_expiry_days = ",
          ("KEY_NAME", "90"), " WHERE id = ", ("NUMBER", str(R.randint(1, 999999))))
    elif c == 14:
        L("Query\tINSERT INTO devices (mac, ip, seen_at) VALUES ('", ("MAC", mac(R.choice(["colon", "COLON", "dash"]))),
          "', '", ("IP", ip4()), "', '", ("TIMESTAMP", ts("plain")), "')")
    else:
        L(R.choice(["Quit\t", "Init DB\tshop", "Query\tSELECT @@version_comment LIMIT 1",
                    "Query\tSHOW GLOBAL STATUS LIKE 'Threads_connected'", "Query\tSET autocommit=1"]))


def s_mysql_slow(L):
    d = rand_dt()
    c = R.randrange(15)
    c = {10: 5, 11: 5, 12: 6, 13: 5, 14: 5}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("# Time: ", ("TIMESTAMP", ts("iso6z", d)))
    elif c == 1:
        u = R.choice(MYSQL_USERS)
        L("# User@Host: ", u, "[", u, "] @ ", R.choice(["", "web-01.internal "]), " [", ("IP", ip4()), "]  Id: ",
          ("NUMBER", str(R.randint(5, 999999))))
    elif c == 2:
        L("# Query_time: %.6f  Lock_time: %.6f Rows_sent: %d  Rows_examined: %d" % (
            R.random() * 30, R.random() / 100, R.randint(0, 500), R.randint(1000, 9000000)))
    elif c == 3:
        L("SET timestamp=", ("TIMESTAMP", ts("epoch", d)), ";")
    elif c == 4:
        L("SELECT o.id, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.email = '",
          ("EMAIL", email()), "' ORDER BY o.created_at DESC;")
    elif c == 5:
        L("SELECT * FROM payments WHERE pan = '", ("CREDIT_CARD", card(R.choice(["plain", "space", "dash"]))), "';")
    elif c == 6:
        L("UPDATE customers SET api_token = '", ("TOKEN", tok(R.choice(["bearer", "stripe", "shopify"]))), "' WHERE id = ",
          ("NUMBER", str(R.randint(1, 999999))), ";")
    elif c == 7:
        L("SELECT COUNT(*) FROM login_attempts WHERE ip = '", ("IP", ipa()), "' AND ts > '", ("TIMESTAMP", ts("plain")), "';")
    elif c == 8:
        L(R.choice(["use shop;", "# administrator command: Ping;", "# administrator command: Quit;"]))
    else:
        L("SELECT id FROM users WHERE reset_token = '", ("TOKEN", tok("bearer")), "' AND password_reset_required = ",
          ("KEY_NAME", "0"), ";")


def s_mysql_error(L):
    d = rand_dt()
    L(("TIMESTAMP", ts("iso6z", d)), " ", str(R.choice([0, 0, R.randint(1, 99999)])), " ")
    c = R.randrange(10)
    if c == 0:
        L("[System] [MY-010116] [Server] /usr/sbin/mysqld (mysqld ", ("VERSION", R.choice(["8.0.36", "8.0.35", "8.2.0"])),
          ") starting as process ", ("NUMBER", str(R.randint(1, 9999))))
    elif c == 1:
        L("[Warning] [MY-010055] [Server] IP address '", ("IP", ipa()), "' could not be resolved: Name or service not known")
    elif c == 2:
        L("[Note] [MY-010914] [Server] Aborted connection ", ("NUMBER", str(R.randint(5, 999999))), " to db: '",
          R.choice(["shop", "billing"]), "' user: '", R.choice(MYSQL_USERS), "' host: '", ("IP", ip4()),
          "' (Got an error reading communication packets).")
    elif c == 3:
        L("[Note] [MY-010454] [Server] A temporary password is generated for root@localhost: ", ("PASSWORD", rs(ALNUM + "#;-:<>,.!", 12)))
    elif c == 4:
        L("[System] [MY-010931] [Server] /usr/sbin/mysqld: ready for connections. Version: '", ("VERSION", "8.0.36"),
          "'  socket: '/var/run/mysqld/mysqld.sock'  port: ", ("PORT", "3306"), "  MySQL Community Server - GPL.")
    elif c == 5:
        L("[System] [MY-010562] [Repl] Replica I/O thread for channel '': connected to source 'repl@", ("IP", ip4()), ":",
          ("PORT", "3306"), "',replication started in log 'mysql-bin.", "%06d" % R.randint(1, 999), "' at position ",
          ("NUMBER", str(R.randint(4, 99999999))))
    elif c == 6:
        L("[Warning] [MY-010897] [Repl] Storing MySQL user name or password information in the connection metadata repository is not secure and is therefore not recommended.")
    elif c == 7:
        L("[Warning] [MY-013360] [Server] Plugin mysql_native_password reported: ''mysql_native_password' is deprecated and will be removed in a future release. Please use caching_sha2_password instead'")
    elif c == 8:
        L("[ERROR] [MY-010584] [Repl] Replica I/O for channel '': Error connecting to source 'repl@", ("IP", ip4()), ":",
          ("PORT", "3306"), "'. This was attempt 1/86400, with a delay of 60 seconds between attempts. Message: Access denied for user 'repl'@'",
          ("IP", ip4()), "' (using password: ", ("KEY_NAME", "YES"), ") Error_code: MY-001045")
    else:
        L("[Warning] [MY-010068] [Server] CA certificate ca.pem is self signed.")


def mongo_head(d, s, comp, mid, ctx):
    return [("t", O([("$date", ("TIMESTAMP", ts("iso3off", d)))])), ("s", s), ("c", comp),
            ("id", ("raw", "NUMBER", str(mid))), ("ctx", ctx)]


def s_mongodb(L):
    L.json = True
    d = rand_dt()
    conn = "conn%d" % R.randint(1, 99999)
    c = R.randrange(10)
    remote = lambda L: (L('"'), e_ipport(L, port=R.randint(1024, 65535)), L('"'))
    if c == 0:
        f = mongo_head(d, "I", "NETWORK", 22943, "listener") + [
            ("msg", "Connection accepted"),
            ("attr", O([("remote", remote), ("uuid", O([("uuid", O([("$uuid", ("UUID", uuid()))]))])),
                        ("connectionId", R.randint(1, 99999)), ("connectionCount", R.randint(1, 900))]))]
    elif c == 1:
        f = mongo_head(d, "I", "NETWORK", 51800, conn) + [
            ("msg", "client metadata"),
            ("attr", O([("remote", remote), ("client", conn),
                        ("doc", O([("driver", O([("name", R.choice(["PyMongo", "nodejs", "mongo-go-driver"])),
                                                 ("version", ("VERSION", R.choice(["4.6.1", "6.3.0", "1.13.1"])))])),
                                   ("os", O([("type", "Linux"), ("architecture", "x86_64"),
                                             ("version", ("VERSION", R.choice(KERNELS)))])),
                                   ("application", O([("name", R.choice(["orders-api", "billing", "mongosh 2.1.1"]))]))]))]))]
    elif c == 2:
        ok = R.random() < 0.5
        f = mongo_head(d, "I", "ACCESS", 20250 if ok else 20249, conn) + [
            ("msg", "Authentication succeeded" if ok else "Authentication failed"),
            ("attr", O([("mechanism", "SCRAM-SHA-256"), ("speculative", R.choice([True, False])),
                        ("principalName", ("EMAIL", email()) if R.random() < 0.4 else R.choice(["app", "orders", "root"])),
                        ("authenticationDatabase", "admin"), ("remote", remote), ("extraInfo", O([]))]
                       + ([] if ok else [("error", "AuthenticationFailed: SCRAM authentication failed, storedKey mismatch")])))]
    elif c in (3, 4, 5):
        filt = R.choice([
            O([("email", ("EMAIL", email()))]),
            O([("card.number", ("CREDIT_CARD", card()))]),
            O([("resetToken", ("TOKEN", tok("bearer")))]),
            O([("_id", O([("$oid", ("HEX_ID", hx(24)))]))]),
            O([("apiKey", ("SECRET", secret()))]),
            O([("lastIp", ("IP", ipa()))]),
            O([("session.sid", ("TOKEN", tok("session")))]),
            O([("payment.pan", ("CREDIT_CARD", card()))]),
            O([("customer.email", ("EMAIL", email())), ("card.last4", "4242")]),
            O([("refreshToken", ("JWT", jwt()))]),
            O([("integrations.slack.token", ("TOKEN", tok("slack")))]),
        ])
        ns_coll = R.choice(["users", "orders", "sessions", "customers"])
        f = mongo_head(d, "I", "COMMAND", 51803, conn) + [
            ("msg", "Slow query"),
            ("attr", O([("type", "command"), ("ns", "shop." + ns_coll),
                        ("command", O([("find", ns_coll), ("filter", filt), ("limit", 1),
                                       ("lsid", O([("id", O([("$uuid", ("UUID", uuid()))]))])),
                                       ("$clusterTime", O([("clusterTime", O([("$timestamp", O([("t", ("raw", "TIMESTAMP", ts("epoch", d))), ("i", R.randint(1, 9))]))])),
                                                           ("signature", O([("hash", O([("$binary", O([("base64", ("HASH", b64(R.randbytes(20)))), ("subType", "0")]))])),
                                                                            ("keyId", ("raw", "NUMBER", long_number(19)))]))])),
                                       ("$db", "shop")])),
                        ("planSummary", "IXSCAN { email: 1 }"), ("keysExamined", R.randint(0, 9)),
                        ("docsExamined", R.randint(0, 90000)), ("queryHash", ("HEX_ID", hx(8, upper=True))),
                        ("planCacheKey", ("HEX_ID", hx(8, upper=True))), ("reslen", R.randint(100, 9000)),
                        ("protocol", "op_msg"), ("durationMillis", ("raw", "NUMBER", str(R.randint(100, 9000))))]))]
    elif c == 6:
        f = mongo_head(d, "I", "COMMAND", 51803, conn) + [
            ("msg", "Slow query"),
            ("attr", O([("type", "command"), ("ns", "admin.$cmd"),
                        ("command", O([("createUser", R.choice(["orders", "reporting"])), ("pwd", ("KEY_NAME", "xxx")),
                                       ("roles", [O([("role", "readWrite"), ("db", "shop")])]), ("$db", "admin")])),
                        ("durationMillis", R.randint(100, 900))]))]
    elif c == 7:
        f = mongo_head(d, "I", "CONTROL", 23403, "initandlisten") + [
            ("msg", "Build Info"),
            ("attr", O([("buildInfo", O([("version", ("VERSION", R.choice(["7.0.5", "6.0.13", "4.4.28"]))),
                                         ("gitVersion", ("HASH", hx(40))),
                                         ("openSSLVersion", S("OpenSSL ", ("VERSION", "3.0.2"), " 15 Mar 2022")),
                                         ("modules", []), ("allocator", "tcmalloc")]))]))]
    elif c == 8:
        f = mongo_head(d, "I", "REPL", 21392, "ReplCoord-0") + [
            ("msg", "New replica set config in use"),
            ("attr", O([("config", O([("_id", "rs0"), ("version", R.randint(1, 40)),
                                      ("members", [O([("_id", i), ("host", ("PORT", "mongo-%d.mongo.data.svc.cluster.local:27017" % i))]) for i in range(R.randint(1, 3))])]))]))]
    else:
        f = mongo_head(d, "W", "NETWORK", 4615610, conn) + [
            ("msg", "Failed to check socket connectivity"),
            ("attr", O([("error", O([("code", 6), ("codeName", "HostUnreachable"),
                                     ("errmsg", S("Connection reset by peer ", ("IP", ip4()), ":", ("PORT", "27017")))]))]))]
    jobj(L, O(f))


def s_redis(L):
    d = rand_dt()
    role = R.choice(["M", "M", "S", "C", "X"])
    L(str(R.randint(1, 9999)), ":", role, " ", ("TIMESTAMP", ts("redis", d)), " ")
    c = R.randrange(16)
    c = {14: 200, 15: 200}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("* Ready to accept connections tcp")
    elif c == 1:
        L("# Redis version=", ("VERSION", R.choice(["7.2.4", "7.0.15", "6.2.14"])), ", bits=64, commit=00000000, modified=0, pid=",
          ("NUMBER", str(R.randint(1, 9999))), ", just started")
    elif c == 2:
        L("* Running mode=", R.choice(["standalone", "cluster"]), ", port=", ("PORT", "6379"), ".")
    elif c == 3:
        L("* Connecting to MASTER ", ("IP", ip4()), ":", ("PORT", "6379"))
    elif c == 4:
        L("* Replica ", ("IP", ip4()), ":", ("PORT", "6379"), " asks for synchronization")
    elif c == 5:
        L("* Partial resynchronization request from ", ("IP", ip4()), ":", ("PORT", "6379"), " accepted. Sending ",
          ("NUMBER", str(R.randint(0, 900000))), " bytes of backlog starting from offset ", ("NUMBER", str(R.randint(1, 99999999))), ".")
    elif c == 6:
        L(">>> '", R.choice(["requirepass", "masterauth"]), ' "', ("PASSWORD", pw("plain")), '" extra\'')
    elif c == 7:
        L("# Possible SECURITY ATTACK detected. It looks like somebody is sending POST or Host: commands to Redis. This is likely due to an attacker attempting to use Cross Protocol Scripting to compromise your Redis instance. Connection from ",
          ("IP", ip4()), ":", ("PORT", str(R.randint(1024, 65535))), " aborted.")
    elif c == 8:
        L("- Accepted ")
        e_ipport(L, port=R.randint(1024, 65535))
    elif c == 9:
        L("# Connection with replica ", ("IP", ip4()), ":", ("PORT", "6379"), " lost.")
    elif c == 10:
        L("# +switch-master mymaster ", ("IP", ip4()), " ", ("PORT", "6379"), " ", ("IP", ip4()), " ", ("PORT", "6379"))
    elif c == 11:
        L("* +sentinel sentinel ", ("HEX_ID", hx(40)), " ", ("IP", ip4()), " ", ("PORT", "26379"), " @ mymaster ",
          ("IP", ip4()), " ", ("PORT", "6379"))
    elif c == 12:
        L("* Background saving started by pid ", ("NUMBER", str(R.randint(10, 99999))))
    elif c == 200:
        L("# ", ("CODE_PATH", "/usr/local/bin/redis-server *:6379(debugCommand+0x%x)" % R.randint(16, 4000)), "[", ("HEX_ID", ptr()), "]")
    else:
        L("# MASTER aborted replication with an error: NOAUTH Authentication required.")


def s_elasticsearch(L):
    d = rand_dt()
    c = R.randrange(12)
    node_name = "es-%s-%d" % (R.choice(["master", "data", "ingest"]), R.randint(0, 5))
    common = [("ecs.version", "1.2.0"), ("service.name", "ES_ECS"), ("event.dataset", "elasticsearch.server"),
              ("process.thread.name", "elasticsearch[%s][generic][T#%d]" % (node_name, R.randint(1, 9))),
              ("elasticsearch.cluster.uuid", ("HEX_ID", rs(B64U, 22))),
              ("elasticsearch.node.id", ("HEX_ID", rs(B64U, 22))),
              ("elasticsearch.node.name", ("K8S_NAME", node_name)), ("elasticsearch.cluster.name", "prod-logs")]
    if c == 8:                                                   # first-start banner on stdout
        L("\u2139\ufe0f  Password for the elastic user (reset with `bin/elasticsearch-reset-password -u elastic`): ")
        L(("PASSWORD", rs(ALNUM + "*_=+-", 20)))
        return
    L.json = True
    if c == 0:
        ip = ip4()
        msg = S("publish_address {", ("IP", ip), ":", ("PORT", "9300"), "}, bound_addresses {", ("IP", ip), ":", ("PORT", "9300"), "}")
        logger = "org.elasticsearch.transport.TransportService"
    elif c == 1:
        ip = ip4()
        msg = S("added {{", ("K8S_NAME", "es-data-%d" % R.randint(0, 5)), "}{", ("HEX_ID", rs(B64U, 22)), "}{",
                ("HEX_ID", rs(B64U, 22)), "}{", ("IP", ip), "}{", ("IP", ip), ":", ("PORT", "9300"), "}{dimrt}{",
                ("VERSION", "8.11.3"), "}}, term: ", str(R.randint(1, 90)), ", version: ", str(R.randint(100, 9999)), ", reason: Publication{term=3, version=1234}")
        logger = "org.elasticsearch.cluster.service.ClusterApplierService"
    elif c == 2:
        msg = S("Authentication of [", R.choice(["elastic", "kibana_system", "alice"]), "] was terminated by realm [reserved] - failed to authenticate user [",
                R.choice(["elastic", "kibana_system"]), "]")
        logger = "org.elasticsearch.xpack.security.authc.RealmsAuthenticator"
    elif c == 3:
        msg = S("failed to authenticate request with ApiKey id [", ("HEX_ID", rs(B64U, 20)), "] from [", ("IP", ipa()), "]")
        logger = "org.elasticsearch.xpack.security.authc.ApiKeyService"
    elif c == 4:
        msg = S("[shop][", str(R.randint(0, 4)), "] took[", str(R.randint(1, 40)), ".", str(R.randint(1, 9)), "s], took_millis[", ("NUMBER", str(R.randint(1000, 40000))),
                "], total_hits[1 hits], source[{\"query\":{\"term\":{\"customer.email\":{\"value\":\"", ("EMAIL", email()), "\"}}}}], id[", ("HEX_ID", rs(B64U, 20)), "],")
        logger = "index.search.slowlog.query"
    elif c == 5:
        msg = S("path: /_bulk, params: {}, status: 401 - unable to authenticate user [", R.choice(["filebeat", "logstash_writer"]), "] for REST request [/_bulk] with Authorization: ",
                lambda L: e_authval(L))
        logger = "org.elasticsearch.xpack.security.authc.AuthenticationService"
    elif c == 6:
        msg = S("connecting to remote cluster [dr] seed [", ("IP", ip4()), ":", ("PORT", "9300"), "] as [", ("EMAIL", email()), "]")
        logger = "org.elasticsearch.transport.SniffConnectionStrategy"
    elif c == 11:
        msg = S("http client did not trust this server's certificate, closing connection; certificate signature algorithm ", ("OID", R.choice(["1.2.840.113549.1.1.11", "1.2.840.10045.4.3.3"])),
                ", remote address [", ("IP", ipa()), "]")
        logger = "org.elasticsearch.xpack.core.ssl.SSLService"
    elif c in (9, 10):
        msg = S("[payments][", str(R.randint(0, 4)), "] took[", str(R.randint(1, 40)), "s], took_millis[", ("NUMBER", str(R.randint(1000, 40000))),
                "], total_hits[1 hits], source[{\"query\":{\"term\":{\"card_number\":\"", ("CREDIT_CARD", card()), "\"}}}], id[", ("TRACE_ID", hx(32)), "],")
        logger = "index.search.slowlog.query"
    else:
        msg = S("[types removal] Specifying types in search requests is deprecated. (opaque id ", ("TRACE_ID", hx(32)), ")")
        logger = "org.elasticsearch.deprecation.rest.action.search.RestSearchAction"
    if R.random() < 0.35:
        common = common + [("trace.id", ("TRACE_ID", hx(32)))]
    f = [("@timestamp", ("TIMESTAMP", ts("iso3z", d))), ("log.level", R.choice(["INFO", "WARN", "ERROR"])),
         ("message", msg)] + common + [("log.logger", ("CODE_PATH", logger) if "." in logger and logger.startswith("org") else logger)]
    jobj(L, O(f), sp=True)


# ---- systemd-journald ------------------------------------------------------------------------
USERS = ["alice", "bob", "deploy", "ubuntu", "ec2-user", "root", "admin", "jenkins", "postgres", "zoë"]


def v6_exploded():
    v = P_V6.get(lambda x: not x.startswith("::ffff:"))
    return ipaddress.IPv6Address(v).exploded


def fw_items(prefix, v6=None):
    v6 = (R.random() < 0.2) if v6 is None else v6
    it = [prefix, "IN=", R.choice(["eth0", "ens5", "enp1s0", "br0", "wan"]), " OUT= "]
    if R.random() < 0.9:
        style = R.choice(["colon", "colon", "colon", "COLON"])
        it += ["MAC=", ("MAC", mac(style)), ":", ("MAC", mac(style)), ":86:dd " if v6 else ":08:00 "]
    proto = R.choice(["TCP", "TCP", "UDP"])
    if v6:
        it += ["SRC=", ("IP", v6_exploded()), " DST=", ("IP", v6_exploded()),
               " LEN=%d TC=0 HOPLIMIT=%d FLOWLBL=%d PROTO=%s SPT=" % (R.randint(40, 1500), R.choice([52, 64, 255]), R.randint(0, 999999), proto)]
    else:
        it += ["SRC=", ("IP", ip4()), " DST=", ("IP", ip4()),
               " LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=" % (R.randint(40, 1500), R.choice([52, 64, 117, 128, 244])),
               ("NUMBER", str(R.randint(0, 65535))), " DF PROTO=%s SPT=" % proto]
    it += [("PORT", str(R.randint(1024, 65535))), " DPT=", ("PORT", str(R.choice(COMMON_PORTS)))]
    if proto == "TCP":
        it += [" WINDOW=%d RES=0x00 SYN URGP=0" % R.choice([1024, 29200, 64240, 65535])]
    else:
        it += [" LEN=%d" % R.randint(8, 512)]
    return it


def syslog_msg():
    """(ident, pid, message items, unit, exe, cmdline items).  Message items are plain strings,
    span tuples and callables that only emit JSON-safe text."""
    c = R.randrange(42)
    c = {26: 21, 27: 22, 28: 24, 29: 10, 30: 23, 31: 21, 32: 21, 33: 22, 34: 10, 35: 24, 36: 24, 37: 19, 38: 25, 39: 25, 40: 18, 41: 21}.get(c, c)        # extra weight for some variants
    pid = R.randint(200, 99999)
    u = R.choice(USERS)
    if c == 0:
        return ("sshd", pid, ["Accepted publickey for ", u, " from ", ("IP", ipa()), " port ", ("PORT", str(R.randint(1024, 65535))),
                              " ssh2: ED25519 ", ("HASH", "SHA256:" + b64(R.randbytes(32)).rstrip("="))],
                "ssh.service", "/usr/sbin/sshd", ["sshd: ", u, " [priv]"])
    if c == 1:
        return ("sshd", pid, ["Failed password for ", R.choice(["", "invalid user "]), u, " from ", ("IP", ipa()), " port ",
                              ("PORT", str(R.randint(1024, 65535))), " ssh2"], "ssh.service", "/usr/sbin/sshd", ["sshd: ", u, " [priv]"])
    if c == 2:
        return ("sshd", pid, ["Connection closed by authenticating user root ", ("IP", ipa()), " port ",
                              ("PORT", str(R.randint(1024, 65535))), " [preauth]"], "ssh.service", "/usr/sbin/sshd", ["sshd: root [priv]"])
    if c == 3:
        return ("sshd", pid, ["pam_unix(sshd:session): session opened for user ", u, "(uid=1000) by (uid=0)"],
                "ssh.service", "/usr/sbin/sshd", ["sshd: ", u, " [priv]"])
    if c == 4:
        p = pw("plain")
        return ("sudo", pid, [u, " : TTY=pts/", str(R.randint(0, 4)), " ; PWD=/home/", u, " ; USER=root ; COMMAND=/usr/bin/mysql -u root -p",
                              ("PASSWORD", p), " -h ", ("IP", ip4())], "session-%d.scope" % R.randint(1, 900), "/usr/bin/sudo",
                ["sudo mysql -u root -p", ("PASSWORD", p)])
    if c == 5:
        return ("sudo", pid, [u, " : TTY=pts/1 ; PWD=/srv ; USER=root ; COMMAND=/usr/bin/docker login -u ci -p ", ("PASSWORD", pw("plain")),
                              " registry.example.com"], "session-%d.scope" % R.randint(1, 900), "/usr/bin/sudo", ["sudo docker login"])
    if c == 6:
        return ("kernel", None, fw_items(R.choice(["[UFW BLOCK] ", "[UFW AUDIT] ", "[UFW ALLOW] "])), None, None, None)
    if c == 7:
        return ("NetworkManager", pid, ["<info>  [", ("TIMESTAMP", ts("epoch_frac")), "] dhcp4 (", R.choice(["eth0", "wlp2s0"]),
                                        "): option ip_address           => '", ("IP", ip4()), "'"],
                "NetworkManager.service", "/usr/sbin/NetworkManager", ["/usr/sbin/NetworkManager --no-daemon"])
    if c == 8:
        return ("NetworkManager", pid, ["<info>  [", ("TIMESTAMP", ts("epoch_frac")), "] device (wlp2s0): set-hw-addr: set MAC address to ",
                                        ("MAC", mac("COLON")), " (scanning)"],
                "NetworkManager.service", "/usr/sbin/NetworkManager", ["/usr/sbin/NetworkManager --no-daemon"])
    if c == 9:
        ns = R.choice(NS)
        return ("kubelet", pid, ["E", ("TIMESTAMP", ts("klog")), " ", str(pid), " ", ("CODE_PATH", "pod_workers.go:1298"),
                                 "] \"Error syncing pod, skipping\" err=\"failed to StartContainer for api with ImagePullBackOff: Back-off pulling image ",
                                 ("IMAGE_REF", image()), "\" pod=\"", ("K8S_NAME", ns), "/", ("K8S_NAME", pod()), "\" podUID=\"", ("UUID", uuid()), "\""],
                "kubelet.service", "/usr/bin/kubelet", ["/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml"])
    if c == 10:
        return ("CRON", pid, ["(root) CMD (curl -fsS -m 10 -H 'Authorization: ", lambda L: e_authval(L),
                              "' https://hc-ping.example.com/", ("UUID", uuid()), " >/dev/null)"], "cron.service", "/usr/sbin/cron", ["/usr/sbin/CRON -f"])
    if c == 11:
        p = pw("plain")
        return ("CRON", pid, ["(backup) CMD (PGPASSWORD=", ("PASSWORD", p), " pg_dump -h ", ("IP", ip4()), " -U backup shop | gzip > /backup/shop.sql.gz)"],
                "cron.service", "/usr/sbin/cron", ["/bin/sh -c PGPASSWORD=", ("PASSWORD", p), " pg_dump -h db-01 -U backup shop"])
    if c == 12:
        n = R.randint(1, 900)
        return ("systemd", 1, ["Started session-%d.scope - Session %d of User %s." % (n, n, u)], "init.scope", "/usr/lib/systemd/systemd",
                ["/sbin/init"])
    if c == 13:
        return ("dhclient", pid, ["DHCPACK of ", ("IP", ip4()), " from ", ("IP", ip4()), " (xid=", ("HEX_ID", "0x" + hx(8)), ")"],
                "networking.service", "/sbin/dhclient", ["/sbin/dhclient -4 -v -i -pf /run/dhclient.eth0.pid eth0"])
    if c == 14:
        return ("systemd-networkd", pid, ["eth0: DHCPv4 address ", ("IP", ip4()), "/24, gateway ", ("IP", ip4()), " acquired from ", ("IP", ip4())],
                "systemd-networkd.service", "/usr/lib/systemd/systemd-networkd", ["/lib/systemd/systemd-networkd"])
    if c == 15:
        return ("kernel", None, ["Linux version ", ("VERSION", R.choice(KERNELS)), " (", ("EMAIL", "debian-kernel@lists.debian.org"),
                                 ") (gcc-12 (Debian 12.2.0-14) ", ("VERSION", "12.2.0"), ", GNU ld (GNU Binutils for Debian) ", ("VERSION", "2.40"), ") #1 SMP PREEMPT_DYNAMIC"],
                None, None, None)
    if c == 16 and R.random() < 0.4:
        return ("kernel", None, ["DMI: ", R.choice(["Dell Inc. PowerEdge R640/0W23H8, BIOS ", "HPE ProLiant DL360 Gen10/ProLiant DL360 Gen10, BIOS U32 ",
                                                    "Amazon EC2 m5.large/, BIOS ", "QEMU Standard PC (Q35 + ICH9, 2009), BIOS "]),
                                 ("VERSION", R.choice(["2.19.1", "1.17.0", "1.0", "1.16.2-debian-1.16.2-1"])), " ", ("TIMESTAMP", "%02d/%02d/%04d" % (R.randint(1, 12), R.randint(1, 28), R.randint(2018, 2023)))],
                None, None, None)
    if c == 16:
        return ("kernel", None, [R.choice(["e1000e", "igb", "ixgbe"]), " ", ("HEX_ID", "0000:%02x:%02x.%d" % (R.randint(0, 9), R.randint(0, 31), R.randint(0, 7))),
                                 " eth0: (PCI Express:2.5GT/s:Width x1) ", ("MAC", mac("colon"))], None, None, None)
    if c == 17:
        if R.random() < 0.5:
            return ("chronyd", pid, ["Selected source ", lambda L: e_ll_zone(L)], "chrony.service", "/usr/sbin/chronyd", ["/usr/sbin/chronyd -F 1"])
        return ("chronyd", pid, ["Selected source ", ("IP", ipa()), " (", R.choice(["2.debian.pool.ntp.org", "time.cloudflare.com"]), ")"],
                "chrony.service", "/usr/sbin/chronyd", ["/usr/sbin/chronyd -F 1"])
    if c == 18 and R.random() < 0.5:
        return ("sshd", pid, ["Received disconnect from ", lambda L: e_ll_zone(L), " port ", ("PORT", str(R.randint(1024, 65535))), ":11: disconnected by user"],
                "ssh.service", "/usr/sbin/sshd", ["sshd: ", u])
    if c == 18:
        return ("sshd", pid, ["Received disconnect from ", ("IP", ip6()), " port ", ("PORT", str(R.randint(1024, 65535))), ":11: disconnected by user"],
                "ssh.service", "/usr/sbin/sshd", ["sshd: ", u])
    if c == 21:
        return ("payments", pid, ["charge declined card=", ("CREDIT_CARD", card()), " amount=", str(R.randint(100, 99999)), " ",
                                  lambda L: e_trace(L)], "payments.service", "/opt/payments/bin/payments", ["/opt/payments/bin/payments serve"])
    if c == 22:
        return ("kubelet", pid, ["I", ("TIMESTAMP", ts("klog")), " ", str(pid), " ", ("CODE_PATH", "event.go:307"),
                                 "] \"Event occurred\" object=\"", ("K8S_NAME", R.choice(NS)), "/", ("K8S_NAME", pod()),
                                 "\" kind=\"Pod\" type=\"Normal\" reason=\"Pulled\" message=\"Successfully pulled image ", ("IMAGE_REF", image()), "\""],
                "kubelet.service", "/usr/bin/kubelet", ["/usr/bin/kubelet --config=/var/lib/kubelet/config.yaml"])
    if c == 23:
        return ("snmptrapd", pid, [("TIMESTAMP", ts("plain")), " <UNKNOWN> [UDP: [", ("IP", ip4()), "]:", ("PORT", str(R.randint(1024, 65535))), "->[",
                                   ("IP", ip4()), "]:", ("PORT", "162"), "]: ", ("OID", "DISMAN-EVENT-MIB::sysUpTimeInstance"), " = Timeticks: (",
                                   ("NUMBER", str(R.randint(1000, 99999999))), ") ", ("OID", "SNMPv2-MIB::snmpTrapOID.0"), " = OID: ",
                                   ("OID", R.choice(["IF-MIB::linkDown", "IF-MIB::linkUp", ".1.3.6.1.6.3.1.1.5.3", "SNMPv2-MIB::coldStart"]))],
                "snmptrapd.service", "/usr/sbin/snmptrapd", ["/usr/sbin/snmptrapd -LOw -f"])
    if c == 24:
        return ("orders-api", pid, ["starting with ", lambda L: e_cred_kv(L, style="env"), " ", lambda L: e_benign_kv(L, style="env")],
                "orders-api.service", "/usr/bin/node", ["node /srv/orders/server.js"])
    if c == 25:
        return ("ci-agent", pid, ["loaded environment ", lambda L: e_vendor_kv(L, "env")], "ci-agent.service", "/usr/local/bin/ci-agent", ["/usr/local/bin/ci-agent run"])
    if c == 19:
        return ("billing-worker", pid, ["config loaded: ", lambda L: e_cred_kv(L, style="env"), " region=eu-central-1"],
                "billing-worker.service", "/opt/billing/bin/worker", ["/opt/billing/bin/worker --config /etc/billing/worker.env"])
    return ("sshd", pid, ["error: kex_exchange_identification: Connection closed by remote host from ", ("IP", ip4()), " port ",
                          ("PORT", str(R.randint(1024, 65535)))], "ssh.service", "/usr/sbin/sshd", ["sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"])


def s_journald_json(L):
    L.json = True
    d = rand_dt()
    ident, pid, items, unit, exe, cmd = syslog_msg()
    cursor = "s=%s;i=%x;b=%s;m=%x;t=%x;x=%s" % (hx(32), R.randint(1, 10**7), hx(32), R.randint(1, 10**10), R.randint(10**14, 10**15), hx(16))
    f = [("__CURSOR", ("HEX_ID", cursor)), ("__REALTIME_TIMESTAMP", ("TIMESTAMP", ts("epoch_us", d))),
         ("__MONOTONIC_TIMESTAMP", ("TIMESTAMP", str(R.randint(10**8, 10**12)))),
         ("_BOOT_ID", ("HEX_ID", hx(32))), ("_MACHINE_ID", ("HEX_ID", hx(32))), ("_HOSTNAME", R.choice(HOSTS)),
         ("PRIORITY", str(R.choice([3, 4, 5, 6]))), ("SYSLOG_IDENTIFIER", ident)]
    if pid is None:
        f += [("_TRANSPORT", "kernel"), ("SYSLOG_FACILITY", "0")]
    else:
        f += [("_TRANSPORT", R.choice(["syslog", "journal", "stdout"])), ("_PID", str(pid)), ("_UID", "0"), ("_GID", "0"),
              ("_COMM", ident.lower()[:15]), ("_EXE", exe), ("_CMDLINE", S(*cmd)), ("_SYSTEMD_UNIT", unit),
              ("_SYSTEMD_CGROUP", "/system.slice/" + unit)]
        if R.random() < 0.4:
            f.append(("_SOURCE_REALTIME_TIMESTAMP", ("TIMESTAMP", ts("epoch_us", d))))
    f.append(("MESSAGE", S(*items)))
    jobj(L, O(f))


def s_journald_short_iso(L):
    d = rand_dt()
    ident, pid, items, unit, exe, cmd = syslog_msg()
    L(("TIMESTAMP", ts("shortiso", d)), " ", R.choice(HOSTS), " ", ident)
    if pid is not None:
        L("[", ("NUMBER", str(pid)), "]")
    L(": ")
    for it in items:
        if callable(it):
            it(L)
        else:
            L(it)


# ---- cloud audit logs ------------------------------------------------------------------------
def aws_acct():
    return "%012d" % R.choice([123456789012, 210987654321, 444455556666, R.randint(10**11, 10**12 - 1)])


def s_cloudtrail(L):
    L.json = True
    d = rand_dt()
    acct = aws_acct()
    user = R.choice(FIRST)
    role = R.choice(["ci-deployer", "AdministratorAccess", "ReadOnly", "github-actions-oidc", "billing-app"])
    c = R.randrange(12)
    c = {9: 2, 10: 7}.get(c, c)        # extra weight for some variants
    if c == 0 or R.random() < 0.4:
        ui = O([("type", "IAMUser"), ("principalId", ("HEX_ID", "AIDA" + rs(B32, 17))),
                ("arn", S("arn:aws:iam::", ("NUMBER", acct), ":user/", user)), ("accountId", ("NUMBER", acct))]
               + ([] if c == 0 else [("accessKeyId", ("AWS_KEY", akia()))]) + [("userName", user)])
    else:
        sess_is_mail = R.random() < 0.5
        sess = ("EMAIL", email()) if sess_is_mail else user
        rid = "AROA" + rs(B32, 17)
        ui = O([("type", "AssumedRole"), ("principalId", S(("HEX_ID", rid), ":", sess)),
                ("arn", S("arn:aws:sts::", ("NUMBER", acct), ":assumed-role/", role, "/", sess)),
                ("accountId", ("NUMBER", acct)), ("accessKeyId", ("AWS_KEY", asia())),
                ("sessionContext", O([("sessionIssuer", O([("type", "Role"), ("principalId", ("HEX_ID", rid)),
                                                            ("arn", S("arn:aws:iam::", ("NUMBER", acct), ":role/", role)),
                                                            ("accountId", ("NUMBER", acct)), ("userName", role)])),
                                      ("attributes", O([("creationDate", ("TIMESTAMP", ts("isoz"))), ("mfaAuthenticated", "false")]))]))])
    ua = R.choice([
        S("aws-cli/", ("VERSION", R.choice(["2.15.10", "2.13.25"])), " Python/", ("VERSION", "3.11.6"), " Linux/", ("VERSION", R.choice(KERNELS)),
          " exe/x86_64.ubuntu.22 prompt/off command/s3.cp"),
        S("Boto3/", ("VERSION", "1.34.11"), " md/Botocore#", ("VERSION", "1.34.11"), " ua/2.0 os/linux#", ("VERSION", R.choice(KERNELS)), " lang/python#", ("VERSION", "3.12.1")),
        S("APN/1.0 HashiCorp/1.0 Terraform/", ("VERSION", "1.6.6"), " (+https://www.terraform.io) terraform-provider-aws/", ("VERSION", "5.31.0")),
        "console.amazonaws.com", "AWS Internal"])
    src_ip = ("IP", ipa()) if R.random() < 0.85 else R.choice(["AWS Internal", "ec2.amazonaws.com"])
    f = [("eventVersion", ("VERSION", R.choice(["1.08", "1.09"]))), ("userIdentity", ui),
         ("eventTime", ("TIMESTAMP", ts("isoz", d)))]
    region = R.choice(["us-east-1", "eu-central-1", "eu-west-1", "ap-southeast-2"])
    rp, re_, extra, src, name = None, None, [], "", ""
    if c == 0:
        src, name = "signin.amazonaws.com", "ConsoleLogin"
        re_ = O([("ConsoleLogin", R.choice(["Success", "Failure"]))])
        extra = [("additionalEventData", O([("LoginTo", "https://console.aws.amazon.com/console/home?state=hashArgs%23"),
                                            ("MobileVersion", "No"), ("MFAUsed", R.choice(["Yes", "No"]))]))]
    elif c == 1:
        src, name = "s3.amazonaws.com", "GetObject"
        rp = O([("bucketName", "acme-invoices-prod"), ("Host", "acme-invoices-prod.s3.%s.amazonaws.com" % region),
                ("key", S("invoices/2024/", ("UUID", uuid()), ".pdf"))])
        extra = [("additionalEventData", O([("SignatureVersion", "SigV4"), ("CipherSuite", "TLS_AES_128_GCM_SHA256"),
                                            ("bytesTransferredIn", 0), ("AuthenticationMethod", "AuthHeader"),
                                            ("x-amz-id-2", ("HEX_ID", b64(R.randbytes(57)))),
                                            ("bytesTransferredOut", ("raw", "NUMBER", str(R.randint(1000, 9000000))))]))]
    elif c == 2:
        src, name = "iam.amazonaws.com", "CreateAccessKey"
        rp = O([("userName", "ci-deployer")])
        re_ = O([("accessKey", O([("accessKeyId", ("AWS_KEY", akia())), ("status", "Active"), ("userName", "ci-deployer"),
                                  ("createDate", ("TIMESTAMP", ts("aws_console")))]))])
    elif c == 3:
        src, name = "secretsmanager.amazonaws.com", "GetSecretValue"
        rp = O([("secretId", ("KEY_NAME", R.choice(["prod/payments/db-creds", "prod/api/stripe-key", "staging/smtp-password"])))])
    elif c == 4:
        src, name = "iam.amazonaws.com", "CreateLoginProfile"
        rp = O([("userName", R.choice(FIRST)), ("password", ("KEY_NAME", "HIDDEN_DUE_TO_SECURITY_REASONS")),
                ("passwordResetRequired", ("raw", "KEY_NAME", "true"))])
    elif c == 5:
        src, name = "ec2.amazonaws.com", "RunInstances"
        pip = "10.%d.%d.%d" % (R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))
        rp = O([("instancesSet", O([("items", [O([("imageId", ("HEX_ID", "ami-0" + hx(16))), ("minCount", 1), ("maxCount", 1)])])])),
                ("instanceType", "t3.medium"), ("userData", ("KEY_NAME", "<sensitiveDataRemoved>"))])
        re_ = O([("instancesSet", O([("items", [O([("instanceId", ("HEX_ID", "i-0" + hx(16))), ("privateIpAddress", ("IP", pip)),
                                                    ("privateDnsName", ("K8S_NAME", "ip-%s.ec2.internal" % pip.replace(".", "-"))),
                                                    ("networkInterfaceSet", O([("items", [O([("macAddress", ("MAC", mac("colon"))),
                                                                                             ("privateIpAddress", ("IP", pip))])])]))])])]))])
    elif c == 6:
        src, name = "s3.amazonaws.com", "ListObjects"
        who = email()
        extra = [("errorCode", "AccessDenied"),
                 ("errorMessage", S("User: arn:aws:sts::", ("NUMBER", acct), ":assumed-role/", role, "/", ("EMAIL", who),
                                    " is not authorized to perform: s3:ListBucket on resource: \"arn:aws:s3:::acme-backups\" because no identity-based policy allows the s3:ListBucket action"))]
    elif c == 7:
        src, name = "sts.amazonaws.com", "AssumeRole"
        rp = O([("roleArn", S("arn:aws:iam::", ("NUMBER", acct), ":role/", role)), ("roleSessionName", R.choice(["terraform", "gha-1234", "alice"])),
                ("durationSeconds", 3600)])
        re_ = O([("credentials", O([("accessKeyId", ("AWS_KEY", asia())), ("sessionToken", ("TOKEN", tok("aws_session"))),
                                    ("expiration", ("TIMESTAMP", ts("aws_console")))])),
                 ("assumedRoleUser", O([("assumedRoleId", S(("HEX_ID", "AROA" + rs(B32, 17)), ":terraform")),
                                        ("arn", S("arn:aws:sts::", ("NUMBER", acct), ":assumed-role/", role, "/terraform"))]))])
    elif c == 11:
        src, name = "ecs.amazonaws.com", "RegisterTaskDefinition"
        rp = O([("family", R.choice(DEPS)), ("containerDefinitions", [O([("name", R.choice(DEPS)), ("image", ("IMAGE_REF", image())),
                                                                         ("secrets", [O([("name", "DB_PASSWORD"), ("valueFrom", S("arn:aws:secretsmanager:eu-central-1:", ("NUMBER", acct), ":secret:", ("KEY_NAME", "prod/db-creds")))])])])])])
    else:
        src, name = "ec2.amazonaws.com", "DescribeInstances"
        rp = O([("maxResults", 1000), ("filterSet", O([]))])
    f += [("eventSource", src), ("eventName", name), ("awsRegion", region), ("sourceIPAddress", src_ip),
          ("userAgent", ua), ("requestParameters", rp), ("responseElements", re_)] + extra
    if src == "s3.amazonaws.com":
        f.append(("requestID", ("HEX_ID", rs(UPPER + DIG, 16))))
    else:
        f.append(("requestID", ("UUID", uuid())))
    f += [("eventID", ("UUID", uuid())), ("readOnly", c in (1, 3, 6, 8)),
          ("eventType", "AwsConsoleSignIn" if c == 0 else "AwsApiCall"), ("managementEvent", c != 1),
          ("recipientAccountId", ("NUMBER", acct)), ("eventCategory", "Data" if c == 1 else "Management")]
    if c != 0:
        f.append(("tlsDetails", O([("tlsVersion", "TLSv1.3"), ("cipherSuite", "TLS_AES_128_GCM_SHA256"),
                                   ("clientProvidedHostHeader", "%s.%s.amazonaws.com" % (src.split(".")[0], region))])))
    jobj(L, O(f))


def s_gcp_audit(L):
    L.json = True
    d = rand_dt()
    proj = R.choice(["acme-prod", "acme-staging", "shop-analytics-4711", "data-platform-91"])
    who = email() if R.random() < 0.7 else "%s@%s.iam.gserviceaccount.com" % (R.choice(["deploy", "ci-runner", "terraform"]), proj)
    c = R.randrange(12)
    c = {7: 5, 8: 6, 9: 200, 10: 200, 11: 200}.get(c, c)        # extra weight for some variants
    ua = R.choice([S("google-cloud-sdk gcloud/", ("VERSION", R.choice(["458.0.1", "460.0.0"])), " command/gcloud.compute.instances.create invocation-id/",
                     ("HEX_ID", hx(32)), " environment/None environment-version/None client-os/LINUX client-os-ver/", ("VERSION", R.choice(KERNELS)),
                     " client-pltf-arch/x86_64 interactive/True from-script/False python/", ("VERSION", "3.11.6"), " term/xterm-256color (Linux ", ("VERSION", R.choice(KERNELS)), ")"),
                   S("Terraform/", ("VERSION", "1.6.6"), " (+https://www.terraform.io) Terraform-Plugin-SDK/", ("VERSION", "2.31.0"), " terraform-provider-google/", ("VERSION", "5.11.0")),
                   S("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/", ("VERSION", "537.36"), " (KHTML, like Gecko) Chrome/", ("VERSION", R.choice(CHROME)), " Safari/", ("VERSION", "537.36"), ",gzip(gfe)")])
    if c == 0:
        svc, meth = "compute.googleapis.com", "v1.compute.instances.insert"
        res = S("projects/", proj, "/zones/europe-west3-a/instances/", R.choice(["vm-web-1", "gke-node-x", "batch-7"]))
        req = O([("@type", "type.googleapis.com/compute.instances.insert"), ("name", "vm-web-1"),
                 ("networkInterfaces", [O([("networkIP", ("IP", ip4())), ("accessConfigs", [O([("natIP", ("IP", ip4()))])])])])])
        resp = O([("@type", "type.googleapis.com/operation"), ("id", ("NUMBER", long_number(19))), ("status", "RUNNING"),
                  ("user", ("EMAIL", who) if "@" in who else who)])
    elif c == 1:
        svc, meth = "cloudresourcemanager.googleapis.com", "SetIamPolicy"
        res = S("projects/", proj)
        req = O([("@type", "type.googleapis.com/google.iam.v1.SetIamPolicyRequest"), ("resource", proj),
                 ("policy", O([("bindings", [O([("role", "roles/viewer"), ("members", [S("user:", ("EMAIL", email())),
                                                                                       S("serviceAccount:", ("EMAIL", "deploy@%s.iam.gserviceaccount.com" % proj))])])]),
                               ("etag", ("HEX_ID", b64(R.randbytes(8))))]))])
        resp = None
    elif c == 2:
        svc, meth = "secretmanager.googleapis.com", "google.cloud.secretmanager.v1.SecretManagerService.AccessSecretVersion"
        res = S("projects/", ("NUMBER", str(R.randint(10**11, 10**12 - 1))), "/secrets/", ("KEY_NAME", R.choice(["db-password", "stripe-api-key", "jwt-signing-key"])),
                "/versions/", str(R.randint(1, 9)))
        req = O([("name", res), ("@type", "type.googleapis.com/google.cloud.secretmanager.v1.AccessSecretVersionRequest")])
        resp = None
    elif c == 3:
        svc, meth = "storage.googleapis.com", "storage.objects.get"
        res = S("projects/_/buckets/", proj, "-exports/objects/customers/", ("UUID", uuid()), ".csv")
        req, resp = None, None
    elif c == 4:
        svc, meth = "iam.googleapis.com", "google.iam.admin.v1.CreateServiceAccountKey"
        res = S("projects/-/serviceAccounts/", ("NUMBER", long_number(21)))
        req = O([("name", S("projects/-/serviceAccounts/", ("EMAIL", "ci-runner@%s.iam.gserviceaccount.com" % proj))),
                 ("private_key_type", ("KEY_NAME", "TYPE_GOOGLE_CREDENTIALS_FILE")), ("@type", "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest")])
        resp = O([("name", S("projects/", proj, "/serviceAccounts/", ("EMAIL", "ci-runner@%s.iam.gserviceaccount.com" % proj), "/keys/", ("HEX_ID", hx(40)))),
                  ("valid_after_time", O([("seconds", ("raw", "TIMESTAMP", ts("epoch", d)))])), ("key_algorithm", 2),
                  ("@type", "type.googleapis.com/google.iam.admin.v1.ServiceAccountKey")])
    elif c == 5:
        svc, meth = "k8s.io", "io.k8s.core.v1.secrets.get"
        ns = R.choice(NS)
        res = S("core/v1/namespaces/", ("K8S_NAME", ns), "/secrets/", ("K8S_NAME", R.choice(SECRET_NAMES)))
        req, resp = None, None
    elif c == 200:
        svc, meth = "k8s.io", "io.k8s.core.v1.pods.create"
        ns = R.choice(NS)
        res = S("core/v1/namespaces/", ("K8S_NAME", ns), "/pods/", ("K8S_NAME", pod()))
        req = O([("@type", "core.k8s.io/v1.Pod"), ("spec", O([("containers", [O([("name", R.choice(DEPS)), ("image", ("IMAGE_REF", image()))]),
                                                                              O([("name", "istio-proxy"), ("image", ("IMAGE_REF", image()))])]),
                                                              ("nodeName", ("K8S_NAME", node()))]))])
        resp = None
    else:
        svc, meth = "run.googleapis.com", "google.cloud.run.v1.Services.ReplaceService"
        res = S("namespaces/", proj, "/services/", R.choice(DEPS))
        req = O([("service", O([("spec", O([("template", O([("spec", O([("containers", [O([("image", ("IMAGE_REF", image())),
                                                                                         ("env", [O([("name", "SPRING_PROFILES_ACTIVE"), ("value", "prod")]),
                                                                                                  O([("name", "DB_PASSWORD"), ("valueFrom", O([("secretKeyRef", O([("name", ("KEY_NAME", "db-password")), ("key", "latest")]))]))])])])])]))]))]))]))])
        resp = None
    caller = ("IP", ipa()) if R.random() < 0.9 else "private"
    pp = [("@type", "type.googleapis.com/google.cloud.audit.AuditLog"), ("status", O([])),
          ("authenticationInfo", O([("principalEmail", ("EMAIL", who))] + ([("principalSubject", S("user:", ("EMAIL", who)))] if R.random() < 0.3 else []))),
          ("requestMetadata", O([("callerIp", caller), ("callerSuppliedUserAgent", ua),
                                 ("requestAttributes", O([("time", ("TIMESTAMP", ts("iso9z", d))), ("auth", O([]))])),
                                 ("destinationAttributes", O([]))])),
          ("serviceName", svc), ("methodName", meth),
          ("authorizationInfo", [O([("resource", res), ("permission", meth.split(".")[-1]), ("granted", True)])]),
          ("resourceName", res)]
    if req is not None:
        pp.append(("request", req))
    if resp is not None:
        pp.append(("response", resp))
    f = [("protoPayload", O(pp)), ("insertId", ("HEX_ID", "-" + rs(LOWER + DIG, 12))),
         ("resource", O([("type", "audited_resource"), ("labels", O([("project_id", proj), ("service", svc)]))])),
         ("timestamp", ("TIMESTAMP", ts("iso9z", d))), ("severity", R.choice(["NOTICE", "INFO", "ERROR"])),
         ("logName", "projects/%s/logs/cloudaudit.googleapis.com%%2F%s" % (proj, R.choice(["activity", "data_access"]))),
         ("receiveTimestamp", ("TIMESTAMP", ts("iso9z", d)))]
    if R.random() < 0.3:
        f.append(("trace", S("projects/", proj, "/traces/", ("TRACE_ID", hx(32)))))
    if R.random() < 0.4:
        ms = ts("epoch_ms", d)
        f.append(("operation", O([("id", ("HEX_ID", "operation-%s-%s-%s-%s" % (ms, hx(13), hx(8), hx(8)))), ("producer", svc), ("first", True)])))
    jobj(L, O(f))


def s_azure_activity(L):
    L.json = True
    d = rand_dt()
    sub = uuid()
    rg = R.choice(["RG-PROD", "rg-payments-weu", "RG-SHARED-NETWORK", "rg-data"])
    upn = email()
    c = R.randrange(6)
    subU = sub.upper() if R.random() < 0.6 else sub
    if c == 0:
        op = "MICROSOFT.KEYVAULT/VAULTS/SECRETS/WRITE"
        rid = S("/SUBSCRIPTIONS/", ("UUID", subU), "/RESOURCEGROUPS/", rg.upper(), "/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-PROD/SECRETS/",
                ("KEY_NAME", R.choice(["SQL-ADMIN-PASSWORD", "STORAGE-KEY", "STRIPE-API-KEY"])))
        props = [("statusCode", "OK"), ("serviceRequestId", None), ("eventCategory", "Administrative")]
    elif c == 1:
        op = "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE"
        rid = S("/SUBSCRIPTIONS/", ("UUID", subU), "/RESOURCEGROUPS/", rg.upper(), "/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/VM-WEB-01")
        props = [("statusCode", "Created"), ("serviceRequestId", ("UUID", uuid())),
                 ("requestbody", S("{\"location\":\"westeurope\",\"properties\":{\"hardwareProfile\":{\"vmSize\":\"Standard_D2s_v5\"},\"osProfile\":{\"computerName\":\"vm-web-01\",\"adminUsername\":\"azureuser\",\"adminPassword\":\"",
                                   ("PASSWORD", pw("xml")), "\"}}}")),
                 ("eventCategory", "Administrative")]
    elif c == 2:
        op = "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"
        rid = S("/subscriptions/", ("UUID", sub), "/providers/Microsoft.Authorization/roleAssignments/", ("UUID", uuid()))
        props = [("statusCode", "Created"), ("serviceRequestId", ("UUID", uuid())),
                 ("requestbody", S("{\"Id\":\"", ("UUID", uuid()), "\",\"Properties\":{\"PrincipalId\":\"", ("UUID", uuid()),
                                   "\",\"PrincipalType\":\"User\",\"RoleDefinitionId\":\"/providers/Microsoft.Authorization/roleDefinitions/", ("UUID", uuid()), "\"}}")),
                 ("eventCategory", "Administrative")]
    elif c == 3:
        op = "MICROSOFT.NETWORK/NETWORKINTERFACES/WRITE"
        rid = S("/SUBSCRIPTIONS/", ("UUID", subU), "/RESOURCEGROUPS/", rg.upper(), "/PROVIDERS/MICROSOFT.NETWORK/NETWORKINTERFACES/VM-WEB-01-NIC")
        props = [("statusCode", "OK"), ("serviceRequestId", ("UUID", uuid())),
                 ("responseBody", S("{\"name\":\"vm-web-01-nic\",\"properties\":{\"provisioningState\":\"Succeeded\",\"macAddress\":\"",
                                    ("MAC", mac("DASH")), "\",\"ipConfigurations\":[{\"properties\":{\"privateIPAddress\":\"", ("IP", ip4()), "\"}}]}}")),
                 ("eventCategory", "Administrative")]
    elif c == 4:
        op = "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION"
        rid = S("/SUBSCRIPTIONS/", ("UUID", subU), "/RESOURCEGROUPS/", rg.upper(), "/PROVIDERS/MICROSOFT.STORAGE/STORAGEACCOUNTS/STACMEPROD01")
        props = [("statusCode", "OK"), ("serviceRequestId", None), ("eventCategory", "Administrative")]
    else:
        op = "MICROSOFT.WEB/SITES/CONFIG/WRITE"
        rid = S("/SUBSCRIPTIONS/", ("UUID", subU), "/RESOURCEGROUPS/", rg.upper(), "/PROVIDERS/MICROSOFT.WEB/SITES/APP-ORDERS/CONFIG/APPSETTINGS")
        props = [("statusCode", "OK"), ("serviceRequestId", ("UUID", uuid())),
                 ("requestbody", S("{\"properties\":{\"ASPNETCORE_ENVIRONMENT\":\"Production\",\"ConnectionStrings__Db\":\"Server=tcp:sql-prod.database.windows.net,1433;Database=orders;User ID=ordersapp;Password=",
                                   ("PASSWORD", pw("xml")), ";Encrypt=True;\",\"", R.choice(["API_KEY", "Storage__AccountKey", "JWT_SECRET"]), "\":\"", ("SECRET", secret()), "\"}}")),
                 ("eventCategory", "Administrative")]
    tenant = uuid()
    ipaddr = ipa()
    claims = O([("aud", "https://management.core.windows.net/"), ("iss", S("https://sts.windows.net/", ("UUID", tenant), "/")),
                ("iat", ("TIMESTAMP", ts("epoch", d))), ("exp", ("TIMESTAMP", ts("epoch"))),
                ("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", ("EMAIL", upn)),
                ("ipaddr", ("IP", ipaddr)), ("name", R.choice(["Alice Smith", "José Álvarez", "Zoë Müller", "山田 太郎", "Bob Jones"])),
                ("http://schemas.microsoft.com/identity/claims/objectidentifier", ("UUID", uuid())),
                ("http://schemas.microsoft.com/identity/claims/tenantid", ("UUID", tenant)),
                ("appid", ("UUID", uuid())), ("ver", "1.0")])
    f = [("time", ("TIMESTAMP", ts("iso7z", d))), ("resourceId", rid), ("operationName", op),
         ("category", "Administrative")]
    rt = R.choice(["Success", "Start", "Failure"])
    f += [("resultType", rt), ("resultSignature", {"Success": "Succeeded.OK", "Start": "Started.", "Failure": "Failed.Forbidden"}[rt]), ("durationMs", str(R.randint(10, 9000))),
         ("callerIpAddress", ("IP", ipaddr)), ("correlationId", ("UUID", uuid())),
         ("identity", O([("authorization", O([("scope", rid), ("action", op.replace("/WRITE", "/write")),
                                              ("evidence", O([("role", R.choice(["Contributor", "Owner", "Key Vault Administrator"])),
                                                              ("roleAssignmentScope", S("/subscriptions/", ("UUID", sub))),
                                                              ("roleAssignmentId", ("HEX_ID", hx(32))), ("roleDefinitionId", ("HEX_ID", hx(32))),
                                                              ("principalId", ("HEX_ID", hx(32))), ("principalType", "User")]))])),
                         ("claims", claims)])),
         ("level", "Information"), ("location", "global"), ("properties", O(props))]
    jobj(L, O(f))


# ---- Windows Event Log XML (wevtutil qe /f:xml, one event per line) --------------------------
SEC_GUID = "{54849625-5478-4994-A5BA-3E3B0328C30D}"
SYSMON_GUID = "{5770385F-C22A-43E0-BF4C-06F5698FFBD9}"


def wdata(L, name, *items):
    L("<Data Name='", name, "'>")
    for it in items:
        if callable(it):
            it(L)
        else:
            L(it)
    L("</Data>")


def win_cmdline():
    c = R.randrange(9)
    if c == 0:
        return ["net  user svc_backup ", ("PASSWORD", pw("xml")), " /add /domain"]
    if c == 1:
        return ["cmdkey /add:fs01.corp.contoso.com /user:CORP\\svc_files /pass:", ("PASSWORD", pw("xml"))]
    if c == 2:
        return ["sqlcmd -S db01 -U sa -P ", ("PASSWORD", pw("xml")), " -Q \"BACKUP DATABASE Orders TO DISK='D:\\bak\\orders.bak'\""]
    if c == 3:
        return ["powershell.exe -NoProfile -Command \"$p = ConvertTo-SecureString '", ("PASSWORD", pw("xml")), "' -AsPlainText -Force\""]
    if c == 4:
        return ["curl.exe -s -H \"Authorization: ", lambda L: e_authval(L), "\" https://api.example.com/v1/export"]
    if c == 5:
        return ["PsExec.exe \\\\", ("IP", ip4()), " -u CORP\\admin -p ", ("PASSWORD", pw("xml")), " cmd.exe"]
    if c == 6:
        return ["az login --service-principal -u ", ("UUID", uuid()), " -p ", ("SECRET", secret()), " --tenant ", ("UUID", uuid())]
    if c == 7:
        return ["aws.exe configure set aws_secret_access_key ", ("SECRET", aws_secret())]
    return ["C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s Schedule"]


def win_dotnet_crash(L, d):
    """Application log, '.NET Runtime' event 1026 (unhandled exception), CRLF as character references."""
    asm, ver, pkt = R.choice([("Newtonsoft.Json", "13.0.0.0", "30ad4fe6b2a6aeed"), ("System.Data.SqlClient", "4.0.0.0", "b03f5f7f11d50a3a"),
                              ("Microsoft.Extensions.Logging.Abstractions", "8.0.0.0", "adb9793829ddae60"),
                              ("System.Runtime", "6.0.0.0", "b03f5f7f11d50a3a"), ("Azure.Identity", "1.10.4.0", "92742159e12e44c8")])
    clr, net = R.choice([("8.0.123.58001", "8.0.1"), ("6.0.2523.51912", "6.0.25")])
    L("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='.NET Runtime'/><EventID Qualifiers='0'>1026</EventID>",
      "<Version>0</Version><Level>2</Level><Task>0</Task><Opcode>0</Opcode><Keywords>", ("HEX_ID", "0x80000000000000"),
      "</Keywords><TimeCreated SystemTime='", ("TIMESTAMP", ts("iso7z", d)), "'/><EventRecordID>", ("NUMBER", str(R.randint(1000, 9999999))),
      "</EventRecordID><Correlation/><Execution ProcessID='", ("NUMBER", str(R.randint(4, 99999))), "' ThreadID='0'/><Channel>Application</Channel><Computer>",
      R.choice(["WEB01.corp.contoso.com", "SRV-APP02.corp.contoso.com"]), "</Computer><Security/></System><EventData><Data>Application: w3wp.exe&#xD;&#xA;",
      "CoreCLR Version: ", ("VERSION", clr), "&#xD;&#xA;.NET Version: ", ("VERSION", net),
      "&#xD;&#xA;Description: The process was terminated due to an unhandled exception.&#xD;&#xA;Exception Info: System.IO.FileLoadException: Could not load file or assembly '",
      asm, ", Version=", ("VERSION", ver), ", Culture=neutral, PublicKeyToken=", ("HEX_ID", pkt), "'. The located assembly's manifest definition does not match the assembly reference.")
    if R.random() < 0.5:
        L("&#xD;&#xA;   at ", ("CODE_PATH", "Orders.Data.SqlRepository..ctor(System.String)"), " connectionString: Server=tcp:", ("IP", ip4()), ",", ("PORT", "1433"),
          ";Database=orders;User Id=", R.choice(["orders", "sa"]), ";Password=", ("PASSWORD", pw("xml")), ";")
    L("</Data></EventData></Event>")


def s_windows_event_xml(L):
    d = rand_dt()
    c = R.randrange(13)
    c = {8: 2, 9: 4, 10: 7}.get(c, c)        # extra weight for some variants
    if c >= 11:
        win_dotnet_crash(L, d)
        return
    eid = [4624, 4625, 4688, 4720, 1, 3, 4768, 4887][c]
    sysmon = eid in (1, 3)
    L("<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='",
      "Microsoft-Windows-Sysmon" if sysmon else "Microsoft-Windows-Security-Auditing", "' Guid='{",
      ("UUID", (SYSMON_GUID if sysmon else SEC_GUID)[1:-1]), "}'/><EventID>", str(eid), "</EventID><Version>",
      str(R.choice([0, 1, 2, 5])), "</Version><Level>", "4" if sysmon else "0", "</Level><Task>", str(R.choice([12544, 13312, 13824, 1, 3])),
      "</Task><Opcode>0</Opcode><Keywords>", ("HEX_ID", R.choice(["0x8020000000000000", "0x8010000000000000", "0x8000000000000000"])),
      "</Keywords><TimeCreated SystemTime='", ("TIMESTAMP", ts("iso7z", d)), "'/><EventRecordID>", ("NUMBER", str(R.randint(1000, 99999999))),
      "</EventRecordID><Correlation")
    if R.random() < 0.4:
        L(" ActivityID='{", ("UUID", uuid(upper=True)), "}'")
    L("/><Execution ProcessID='", ("NUMBER", str(R.randint(4, 9999))), "' ThreadID='", ("NUMBER", str(R.randint(4, 99999))),
      "'/><Channel>", "Microsoft-Windows-Sysmon/Operational" if sysmon else "Security", "</Channel><Computer>",
      R.choice(["DC01.corp.contoso.com", "WS-042.corp.contoso.com", "SRV-SQL01.corp.contoso.com", "LAPTOP-JÜRGEN"]),
      "</Computer><Security", "" if not sysmon else " UserID='S-1-5-18'", "/></System><EventData>")
    user = R.choice(["alice", "bob", "svc_backup", "Administrator", "jürgen.müller", "SQLSVC"])
    if eid in (4624, 4625):
        wdata(L, "SubjectUserSid", "S-1-5-18")
        wdata(L, "SubjectUserName", "DC01$")
        wdata(L, "SubjectDomainName", "CORP")
        wdata(L, "SubjectLogonId", ("HEX_ID", "0x3e7"))
        wdata(L, "TargetUserName", user)
        wdata(L, "TargetDomainName", "CORP")
        if eid == 4625:
            wdata(L, "Status", ("HEX_ID", "0xc000006d"))
            wdata(L, "SubStatus", ("HEX_ID", R.choice(["0xc000006a", "0xc0000064"])))
        else:
            wdata(L, "TargetLogonId", ("HEX_ID", "0x" + hx(R.choice([6, 7, 8]))))
            wdata(L, "LogonGuid", "{", ("UUID", uuid(upper=True)), "}")
        wdata(L, "LogonType", str(R.choice([2, 3, 3, 10])))
        wdata(L, "AuthenticationPackageName", R.choice(["NTLM", "Kerberos", "Negotiate"]))
        wdata(L, "WorkstationName", R.choice(["WS-042", "-", "KALI"]))
        ipv = R.random()
        if ipv < 0.5:
            wdata(L, "IpAddress", ("IP", ip4()))
        elif ipv < 0.8:
            wdata(L, "IpAddress", ("IP", "::ffff:" + ip4()))
        else:
            wdata(L, "IpAddress", ("IP", ip6()))
        wdata(L, "IpPort", ("PORT", str(R.randint(1024, 65535))))
    elif eid == 4688:
        wdata(L, "SubjectUserName", user)
        wdata(L, "SubjectLogonId", ("HEX_ID", "0x" + hx(6)))
        wdata(L, "NewProcessId", ("HEX_ID", "0x" + hx(4)))
        wdata(L, "NewProcessName", "C:\\Windows\\System32\\cmd.exe")
        wdata(L, "TokenElevationType", "%%1936")
        wdata(L, "CommandLine", *win_cmdline())
        wdata(L, "ParentProcessName", "C:\\Windows\\explorer.exe")
    elif eid == 4720:
        wdata(L, "TargetUserName", user)
        wdata(L, "TargetDomainName", "CORP")
        wdata(L, "SamAccountName", user)
        wdata(L, "UserPrincipalName", ("EMAIL", email()))
        wdata(L, "PasswordLastSet", "%%1794")
        wdata(L, "UserAccountControl", "%%2080 %%2082 %%2084")
    elif eid == 1:
        wdata(L, "RuleName", "-")
        wdata(L, "UtcTime", ("TIMESTAMP", ts("space3", d)))
        wdata(L, "ProcessGuid", "{", ("UUID", uuid(upper=True)), "}")
        wdata(L, "ProcessId", ("NUMBER", str(R.randint(4, 99999))))
        wdata(L, "Image", "C:\\Windows\\System32\\", R.choice(["net.exe", "cmd.exe", "WindowsPowerShell\\v1.0\\powershell.exe"]))
        wdata(L, "FileVersion", ("VERSION", R.choice(["10.0.19041.1", "10.0.19041.3636", "10.0.17763.5329"])), " (WinBuild.160101.0800)")
        wdata(L, "CommandLine", *win_cmdline())
        wdata(L, "User", "CORP\\", user)
        wdata(L, "LogonGuid", "{", ("UUID", uuid(upper=True)), "}")
        wdata(L, "LogonId", ("HEX_ID", "0x" + hx(6)))
        wdata(L, "IntegrityLevel", "High")
        wdata(L, "Hashes", "SHA1=", ("HASH", hx(40, True)), ",MD5=", ("HASH", hx(32, True)), ",SHA256=", ("HASH", hx(64, True)),
              ",IMPHASH=", ("HASH", hx(32, True)))
        wdata(L, "ParentImage", "C:\\Windows\\explorer.exe")
    elif eid == 3:
        wdata(L, "RuleName", "-")
        wdata(L, "UtcTime", ("TIMESTAMP", ts("space3", d)))
        wdata(L, "ProcessGuid", "{", ("UUID", uuid(upper=True)), "}")
        wdata(L, "Image", "C:\\Program Files\\Mozilla Firefox\\firefox.exe")
        wdata(L, "User", "CORP\\", user)
        wdata(L, "Protocol", "tcp")
        v6 = R.random() < 0.3
        wdata(L, "SourceIsIpv6", "true" if v6 else "false")
        wdata(L, "SourceIp", ("IP", ip6() if v6 else ip4()))
        wdata(L, "SourcePort", ("PORT", str(R.randint(1024, 65535))))
        wdata(L, "DestinationIp", ("IP", ip6() if v6 else ip4()))
        wdata(L, "DestinationHostname", R.choice(["-", "api.example.com", "fs01.corp.contoso.com"]))
        wdata(L, "DestinationPort", ("PORT", str(R.choice([443, 445, 3389, 5985]))))
    elif eid == 4887:
        wdata(L, "RequestId", ("NUMBER", str(R.randint(100, 999999))))
        wdata(L, "Requester", "CORP\\", user)
        wdata(L, "Attributes", "CertificateTemplate:", R.choice(["WebServer", "User", "Machine"]), " ccm:", R.choice(["WS-042.corp.contoso.com", "SRV-SQL01.corp.contoso.com"]))
        wdata(L, "Disposition", "3")
        wdata(L, "SubjectKeyIdentifier", ("HASH", " ".join(hx(2) for _ in range(20))))
        wdata(L, "Subject", "CN=", R.choice(["WS-042.corp.contoso.com", "alice"]), ", E=", ("EMAIL", email()))
        wdata(L, "CertificateTemplate", ("OID", "1.3.6.1.4.1.311.21.8.%d.%d.%d.%d.%d.%d" % tuple(R.randint(1, 16777215) for _ in range(6))))
    else:
        wdata(L, "TargetUserName", user)
        wdata(L, "TargetDomainName", "CORP.CONTOSO.COM")
        wdata(L, "ServiceName", "krbtgt")
        wdata(L, "TicketOptions", ("HEX_ID", "0x40810010"))
        wdata(L, "Status", ("HEX_ID", "0x0"))
        wdata(L, "TicketEncryptionType", ("HEX_ID", R.choice(["0x12", "0x17"])))
        wdata(L, "IpAddress", ("IP", "::ffff:" + ip4()))
        wdata(L, "IpPort", ("PORT", str(R.randint(1024, 65535))))
        wdata(L, "CertThumbprint", ("HASH", hx(40, True)) if R.random() < 0.3 else "")
    L("</EventData></Event>")


# ---- container runtimes ----------------------------------------------------------------------
def s_dockerd(L):
    d = rand_dt()
    L('time="', ("TIMESTAMP", ts("iso9z", d)), '" level=')
    c = R.randrange(36)
    c = {16: 13, 17: 14, 18: 15, 19: 5, 20: 11, 21: 116, 22: 116, 23: 13, 24: 116, 25: 14, 26: 13, 27: 200, 28: 200, 29: 200, 30: 201, 31: 201, 32: 201, 33: 201, 34: 201, 35: 201}.get(c, c)        # extra weight for some variants
    cid = hx(64)
    if c == 0:
        L('info msg="Docker daemon" commit=', ("HASH", git_short()[:7]), " containerd-snapshotter=false storage-driver=overlay2 version=",
          ("VERSION", R.choice(["24.0.7", "25.0.1", "20.10.24"])))
    elif c == 1:
        L('info msg="ignoring event" container=', ("HEX_ID", cid), ' module=libcontainerd namespace=moby topic=/tasks/delete type="*events.TaskDelete"')
    elif c == 2:
        L('info msg="Container failed to exit within 10s of signal 15 - using the force" container=', ("HEX_ID", cid))
    elif c == 3:
        L('error msg="Handler for POST /v', ("VERSION", "1.43"), "/containers/create returned error: pull access denied for acme/api, repository does not exist or may require 'docker login': denied: requested access to the resource is denied\"")
    elif c == 4:
        L('debug msg="form data: {\\"password\\":\\"', ("KEY_NAME", "*****"), '\\",\\"serveraddress\\":\\"registry.example.com\\",\\"username\\":\\"',
          R.choice(["ci", "deploy", "alice"]), '\\"}"')
    elif c == 5:
        k = R.choice(["STRIPE_SECRET_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "SLACK_BOT_TOKEN"])
        L('debug msg="form data: {\\"Env\\":[\\"DB_HOST=', ("IP", ip4()), '\\",\\"DB_PASSWORD=', ("PASSWORD", pw("xml")), '\\",\\"', k, "=")
        L(("TOKEN", tok({"STRIPE_SECRET_KEY": "stripe", "OPENAI_API_KEY": "openai", "GITHUB_TOKEN": "github", "SLACK_BOT_TOKEN": "slack"}[k])))
        L('\\"],\\"Image\\":\\"', ("IMAGE_REF", image()), '\\",\\"MacAddress\\":\\"', ("MAC", mac("colon")), '\\"}"')
    elif c == 6:
        L('info msg="Attempting next endpoint for pull after error: Head \\"https://registry.example.com/v2/acme/api/manifests/v1.4.2\\": unauthorized: authentication required"')
    elif c == 7:
        L('warning msg="Error getting v2 registry: Get \\"https://', ("IP", ip4()), ":", ("PORT", "5000"), '/v2/\\": http: server gave HTTP response to HTTPS client"')
    elif c == 8:
        L('info msg="Layer ', ("HASH", sha256_digest()), ' cleaned up"')
    elif c == 9:
        L('debug msg="Calling POST /v', ("VERSION", "1.43"), "/containers/", ("HEX_ID", hx(12)), '/start"')
    elif c == 10:
        L('debug msg="RequestAddress(LocalDefault/', ("IP", "172.17.0.0"), "/16, ", ("IP", "172.17.0.%d" % R.randint(2, 254)), ', map[])"')
    elif c == 11:
        L('debug msg="Trying to pull ', ("IMAGE_REF", image()), ' from https://registry-1.docker.io"')
    elif c == 13:
        L('info msg="Download complete" digest=', ("HASH", sha256_digest()), " image=", ("IMAGE_REF", image()))
    elif c == 14:
        L('debug msg="pulling image" image=', ("IMAGE_REF", image()), " platform=linux/amd64")
    elif c == 116:
        L('info msg="image pulled" digest=', ("HASH", sha256_digest()), " remote=", ("IMAGE_REF", image()))
    elif c == 15:
        L('debug msg="form data: {\\"Image\\":\\"', ("IMAGE_REF", image()), '\\",\\"Env\\":[\\"AWS_ACCESS_KEY_ID=', ("AWS_KEY", akia()),
          '\\",\\"AWS_SECRET_ACCESS_KEY=', ("SECRET", aws_secret()), '\\"]}"')
    elif c == 200:
        L('info msg="image pulled" digest=', ("HASH", sha256_digest()), " remote=", ("IMAGE_REF", image()))
    elif c == 201:
        L('debug msg="form data: {\\"Env\\":[\\"')
        e_vendor_kv(L, "env")
        L('\\"],\\"Image\\":\\"', ("IMAGE_REF", image()), '\\"}"')
    else:
        L('error msg="Error response from daemon: Get \\"https://ghcr.io/v2/\\": denied: denied" username=', R.choice(["ci", "acme-bot"]),
          " registry=ghcr.io token=", ("TOKEN", tok("github")))


def cri_app_line(L):
    c = R.randrange(45)
    c = {13: 7, 14: 7, 15: 10, 16: 9, 17: 4, 18: 11, 19: 6, 20: 7, 21: 12, 22: 9, 23: 6, 24: 7, 25: 4, 26: 10, 27: 9, 28: 7, 29: 200, 30: 200, 31: 201, 32: 8, 33: 8, 34: 11, 35: 202, 36: 202, 37: 202, 38: 202, 39: 202, 40: 202, 41: 4, 42: 10, 43: 6, 44: 7}.get(c, c)        # extra weight for some variants
    if c == 0:
        L(("IP", ip4()), " - - [", ("TIMESTAMP", ts("clf")), '] "', R.choice(METHODS), " ")
        e_path(L)
        L(' HTTP/1.1" ', str(status()), " ", ("NUMBER", str(R.randint(0, 90000))), ' "-" "')
        e_ua(L)
        L('" "', ("IP", ipa()), '"')
    elif c == 1:
        L('{"level":"info","ts":', ("TIMESTAMP", ts("epoch_frac")), ',"caller":"', ("CODE_PATH", "server/handler.go:%d" % R.randint(20, 400)),
          '","msg":"login ok","user":"', ("EMAIL", email()), '","ip":"', ("IP", ipa()), '","trace_id":"', ("TRACE_ID", hx(32)), '"}')
    elif c == 2:
        L("level=error ts=", ("TIMESTAMP", ts("iso3z")), " caller=", ("CODE_PATH", "client/upstream.go:%d" % R.randint(20, 400)),
          ' msg="upstream auth failed" ')
        e_cred_kv(L, style="logfmt", kinds=["TOKEN", "SECRET", "JWT"])
    elif c == 3:
        L(("TIMESTAMP", ts("log4j")), " INFO [app.auth] user ", ("EMAIL", email()), " logged in from ", ("IP", ipa()))
    elif c == 4:
        L(("TIMESTAMP", ts("space3")), "  WARN 1 --- [nio-8080-exec-", str(R.randint(1, 9)), "] ", ("CODE_PATH", "c.a.auth.JwtAuthFilter"),
          " : Rejected expired token ", ("JWT", jwt()))
    elif c == 5:
        L("Listening on ", ("PORT", ":%d" % R.choice([8080, 3000, 9090])), " (pid ", str(R.randint(1, 99)), ")")
    elif c == 7:
        L('{"level":"warn","time":"', ("TIMESTAMP", ts("iso3z")), '","msg":"charge failed","card":"', ("CREDIT_CARD", card()), '","customer":"',
          ("EMAIL", email()), '","dd.trace_id":"', ("TRACE_ID", long_number(19)), '","dd.span_id":"', ("TRACE_ID", long_number(19)), '"}')
    elif c == 8:
        L("level=info ts=", ("TIMESTAMP", ts("iso3z")), ' msg="effective configuration" ')
        e_cred_kv(L, style="logfmt")
        L(" ")
        e_benign_kv(L, style="logfmt")
    elif c == 9:
        L("Successfully pulled image \"", ("IMAGE_REF", image()), "\" in ", str(R.randint(100, 9000)), "ms (", str(R.randint(100, 9000)), "ms including waiting)")
    elif c == 10:
        L(("TIMESTAMP", ts("log4j")), " INFO [oauth] token exchange ok access_token=", ("JWT", jwt()), " refresh_token=", ("TOKEN", tok("refresh")),
          " expires_in=", ("KEY_NAME", "3600"))
    elif c == 11:
        L(("TIMESTAMP", ts("go")), " using static AWS credentials key=", ("AWS_KEY", awskey()), " region=", R.choice(["eu-central-1", "us-east-1"]), " ")
        e_trace(L)
    elif c == 200:
        L("\t", ("CODE_PATH", "github.com/acme/api/internal/db.(*Pool).Get"), "(", ("HEX_ID", "0xc000" + hx(6)), ", {", ("HEX_ID", "0x" + hx(7)), ", ",
          ("HEX_ID", "0xc000" + hx(6)), "})")
    elif c == 201:
        L("panic: runtime error: invalid memory address or nil pointer dereference [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=",
          ("HEX_ID", "0x" + hx(6)), "]")
    elif c == 202:
        L("level=warn ts=", ("TIMESTAMP", ts("iso3z")), ' msg="token from environment will be deprecated" ')
        e_vendor_kv(L, "logfmt")
    else:
        L("payment declined card=", ("CREDIT_CARD", card()), " amount=", str(R.randint(100, 99999)), " currency=EUR order=",
          ("NUMBER", str(R.randint(100000, 99999999))))


def s_containerd_cri(L):
    d = rand_dt()
    c = R.randrange(14)
    c = {12: 200, 13: 200}.get(c, c)        # extra weight for some variants
    if c <= 6:
        L(("TIMESTAMP", ts("iso9z", d)), " ", R.choice(["stdout", "stdout", "stderr"]), " ", R.choice(["F", "F", "F", "P"]), " ")
        cri_app_line(L)
        return
    L('time="', ("TIMESTAMP", ts("iso9z", d)), '" level=')
    ns = R.choice(NS)
    if c == 10:
        L('info msg="ImageCreate event name:\\"', ("IMAGE_REF", image()), '\\" labels:{key:\\"io.cri-containerd.image\\" value:\\"managed\\"}"')
        return
    if c == 11:
        c = R.choice([6, 10])
    if c == 5:
        L('info msg="RunPodSandbox for &PodSandboxMetadata{Name:', ("K8S_NAME", pod()), ",Uid:", ("UUID", uuid()), ",Namespace:",
          ("K8S_NAME", ns), ',Attempt:0,} returns sandbox id \\"', ("HEX_ID", hx(64)), '\\""')
    elif c == 6:
        L('info msg="PullImage \\"', ("IMAGE_REF", image()), '\\" returns image reference \\"', ("HASH", sha256_digest()), '\\""')
    elif c == 7:
        L('error msg="PullImage \\"', ("IMAGE_REF", image()), '\\" failed" error="failed to pull and unpack image: failed to resolve reference: failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://ghcr.io/token?scope=repository%3Aacme%2Fapi%3Apull&service=ghcr.io: 401 Unauthorized"')
    elif c == 8:
        if R.random() < 0.5:
            L('info msg="StartContainer for \\"', ("HEX_ID", hx(64)), '\\" returns successfully"')
        else:
            L('info msg="PullImage \\"', ("IMAGE_REF", image()), '\\""')
    elif c == 200:
        L('info msg="Pulled image \\"', ("IMAGE_REF", image()), '\\" with image id \\"', ("HASH", sha256_digest()), '\\", repo tag \\"', ("IMAGE_REF", image()),
          '\\", repo digest \\"', ("IMAGE_REF", "%s@%s" % (R.choice(IMG_REPOS), sha256_digest())), '\\", size \\"', ("NUMBER", str(R.randint(10**6, 10**9))), '\\""')
    else:
        L('info msg="starting containerd" revision=', ("HASH", hx(40)), " version=", ("VERSION", R.choice(["v1.7.11", "1.6.26", "v1.7.13"])))


# ---- infrastructure-as-code and CI -----------------------------------------------------------
def tf_prefix(L, d, level="DEBUG"):
    L(("TIMESTAMP", ts("iso3z", d)), " [", level, "] ")


def s_terraform(L):
    d = rand_dt()
    c = R.randrange(35)
    c = {18: 0, 19: 12, 20: 14, 21: 17, 22: 17, 23: 17, 24: 200, 25: 200, 26: 201, 27: 201, 28: 14, 29: 14, 30: 202, 31: 202, 32: 203, 33: 203, 34: 203}.get(c, c)        # extra weight for some variants
    if c == 0:
        tf_prefix(L, d)
        L("provider.terraform-provider-aws_v", ("VERSION", "5.31.0"), "_x5: HTTP Request Sent: @caller=",
          ("CODE_PATH", "github.com/hashicorp/aws-sdk-go-base/v2@v2.0.0-beta.45/logging/tf_logger.go:109"),
          " @module=aws aws.operation=GetCallerIdentity aws.region=us-east-1 aws.service=STS http.method=POST http.request.header.authorization=\"AWS4-HMAC-SHA256 Credential=",
          ("AWS_KEY", awskey()), "/", ("TIMESTAMP", "%04d%02d%02d" % (d.year, d.month, d.day)), "/us-east-1/sts/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-date, Signature=",
          ("HASH", hx(64)), "\" http.request.header.x_amz_date=", ("TIMESTAMP", "%04d%02d%02dT%02d%02d%02dZ" % (d.year, d.month, d.day, d.hour, d.minute, d.second)),
          " tf_req_id=", ("UUID", uuid()), " tf_rpc=ConfigureProvider timestamp=", ("TIMESTAMP", ts("iso3z", d)))
    elif c == 1:
        tf_prefix(L, d)
        L("provider.terraform-provider-aws_v", ("VERSION", "5.31.0"), "_x5: HTTP Request Sent: @module=aws aws.operation=DescribeInstances http.request.header.x_amz_security_token=",
          ("TOKEN", tok("aws_session")), " tf_provider_addr=registry.terraform.io/hashicorp/aws")
    elif c == 2:
        L("      + ", R.choice(["password", "master_password", "admin_password", "client_secret", "private_key_pem"]), " ",
          " " * R.randint(0, 12), "= ", ("KEY_NAME", "(sensitive value)"))
    elif c == 3:
        L("      ~ ", R.choice(["master_password", "password", "db_password"]), " = \"", ("PASSWORD", pw("xml")), "\" -> \"", ("PASSWORD", pw("xml")), "\"")
    elif c == 4:
        L(R.choice(["aws_instance.web", "aws_db_instance.main", "aws_eks_node_group.ng"]), ": Creation complete after ", str(R.randint(1, 900)),
          "s [id=", ("HEX_ID", R.choice(["i-0", "db-", "sg-0"]) + hx(16)), "]")
    elif c == 5:
        L("\u2502 Error: configuring Terraform AWS Provider: validating provider credentials: retrieving caller identity from STS: operation error STS: GetCallerIdentity, https response error StatusCode: 403, RequestID: ",
          ("UUID", uuid()), ", api error InvalidClientTokenId: The security token included in the request is invalid.")
    elif c == 6:
        key = R.choice(["api_token", "cloudflare_api_token", "datadog_api_key"])
        L("+ terraform apply -auto-approve -input=false -var \"db_password=", ("PASSWORD", pw("xml")), "\" -var '", key, "=")
        L(("SECRET", hx(32)) if key.startswith("datadog") else ("TOKEN", tok("bearer")), "'")
    elif c == 7:
        L("      + ", R.choice(["private_ip", "public_ip", "host_address"]), " = \"", ("IP", ipa()), "\"")
    elif c == 8:
        L("      + mac_address          = \"", ("MAC", mac(R.choice(["colon", "COLON", "DASH"]))), "\"")
    elif c == 9:
        L(R.choice(["db_connection_string", "database_url"]), " = \"postgresql://app:", ("PASSWORD", url_user_pw(pw())), "@",
          ("IP", ip4()), ":", ("PORT", "5432"), "/shop?sslmode=require\"")
    elif c == 10:
        tf_prefix(L, d, "INFO")
        L(R.choice(["Terraform version: ", "Go runtime version: go"]), ("VERSION", R.choice(["1.6.6", "1.21.5", "1.7.0"])))
    elif c == 11:
        L("      + name      = \"", ("K8S_NAME", R.choice(SECRET_NAMES)), "\"")
    elif c == 12:
        L("      + ", R.choice(["access_key", "aws_access_key_id"]), " = \"", ("AWS_KEY", akia()), "\"")
        L(" # ", R.choice(["from var.ci_access_key", "hard-coded"]))
    elif c == 14:
        e_cred_kv(L, style="hcl")
    elif c == 15:
        e_benign_kv(L, style="props")
    elif c == 16:
        L("      + cidr_blocks = [\"", ("IP", ip4()), "/32\", \"", ("IP", ip4()), "/32\"]")
    elif c == 200:
        L("\t", ("CODE_PATH", "github.com/hashicorp/terraform/internal/terraform.(*NodeApplyableResourceInstance).Execute"), "(", ("HEX_ID", "0xc00" + hx(7)),
          ", {", ("HEX_ID", "0x" + hx(7)), ", ", ("HEX_ID", "0xc00" + hx(7)), "}, 0x2)")
    elif c == 201:
        L("      + image                 = \"", ("IMAGE_REF", image()), "\"")
    elif c == 202:
        L('{"private_key":{"sensitive":false,"type":"string","value":"', ("SECRET", pem_json()), '"}}')
    elif c == 203:
        L("\u2502 Error: Get \"https://", ("IP", ip4()), ":", ("PORT", "6443"), "/api/v1/namespaces/", ("K8S_NAME", R.choice(NS)), "/secrets/", ("K8S_NAME", R.choice(SECRET_NAMES)),
          "\": dial tcp ", ("IP", ip4()), ":", ("PORT", "6443"), ": i/o timeout")
    else:
        L("      + image                 = \"", ("IMAGE_REF", image()), "\"")


def s_ansible(L):
    c = R.randrange(31)
    c = {19: 15, 20: 16, 21: 18, 22: 8, 23: 15, 24: 15, 25: 16, 26: 8, 27: 200, 28: 200, 29: 18, 30: 18}.get(c, c)        # extra weight for some variants
    host = R.choice(["db-01", "web-02", "app-1", "cache-01"])
    if c == 0:
        L("TASK [", R.choice(["mysql : Create application user", "common : Install packages", "deploy : Render env file", "users : Benutzer anlegen für Zoë"]), "] ", "*" * R.randint(40, 70))
    elif c == 1:
        L("changed: [", host, "] => (item={'name': '", R.choice(["app", "reporting", "repl"]), "', 'password': '", ("PASSWORD", pw("xml")), "', 'priv': 'shop.*:ALL'})")
    elif c == 2:
        L(R.choice(["ok", "changed", "skipping"]), ": [", ("IP", ip4()), "]")
    elif c == 3:
        L("fatal: [", host, "]: UNREACHABLE! => {\"changed\": false, \"msg\": \"Failed to connect to the host via ssh: ssh: connect to host ",
          ("IP", ip4()), " port ", ("PORT", "22"), ": Connection timed out\", \"unreachable\": true}")
    elif c == 4:
        ip = ip4()
        L("<", ("IP", ip), "> SSH: EXEC sshpass -d12 ssh -C -o ControlMaster=auto -o ControlPersist=60s -o User=\"deploy\" -o ConnectTimeout=10 ",
          ("IP", ip), " '/bin/sh -c '\"'\"'echo ~deploy && sleep 0'\"'\"''")
    elif c == 5:
        L("ok: [", host, "] => {\"censored\": \"", ("KEY_NAME", "the output has been hidden due to the fact that 'no_log: true' was specified for this result"), "\", \"changed\": false}")
    elif c == 6:
        L(("IP", ip4()), " " * R.randint(8, 18), ": ok=%d   changed=%d    unreachable=0    failed=%d    skipped=%d    rescued=0    ignored=0" % (
            R.randint(1, 40), R.randint(0, 9), R.randint(0, 1), R.randint(0, 9)))
    elif c == 7:
        L("ok: [", host, "] => {\"ansible_facts\": {\"ansible_default_ipv4\": {\"address\": \"", ("IP", ip4()), "\", \"interface\": \"eth0\", \"macaddress\": \"",
          ("MAC", mac("colon")), "\", \"mtu\": 9001}}, \"changed\": false}")
    elif c == 8:
        L("ok: [", host, "] => {", "\"msg\": \"AWS_ACCESS_KEY_ID=", ("AWS_KEY", akia()), " AWS_SECRET_ACCESS_KEY=", ("SECRET", aws_secret()), "\"}")
    elif c == 9:
        L(R.choice(["vault_db_password", "vault_api_key"]), ": !vault | $ANSIBLE_VAULT;1.1;AES256 ", ("HEX_ID", hx(80)))
    elif c == 10:
        L("changed: [", host, "] => {\"changed\": true, \"cmd\": [\"psql\", \"postgresql://app:", ("PASSWORD", url_user_pw(pw())), "@", ("IP", ip4()),
          ":", ("PORT", "5432"), "/shop\", \"-c\", \"select 1\"], \"rc\": 0}")
    elif c == 11:
        L(R.choice(["ansible-playbook [core ", "  python version = ", "  jinja version = "]), ("VERSION", R.choice(["2.16.2", "3.11.7", "3.1.2"])),
          R.choice(["]", ""]))
    elif c == 12:
        L("[WARNING]: Platform linux on host ", ("IP", ip4()), " is using the discovered Python interpreter at /usr/bin/python3.10, but future installation of another Python interpreter could change the meaning of that path.")
    elif c == 13:
        L("changed: [", host, "] => (item=host=", ("IP", ip4()), " port=", ("PORT", "5432"), " dbname=shop user=app password=", ("PASSWORD", pw("plain")), " sslmode=verify-full)")
    elif c == 15:
        L("changed: [", host, "] => (item=", ("IMAGE_REF", image()), ")")
    elif c == 16:
        L("    ")
        e_cred_kv(L, style=R.choice(["yaml", "yaml_q"]))
    elif c == 17:
        L("    ")
        e_benign_kv(L, style="yaml")
    elif c == 18:
        L("ok: [", host, "] => {\"msg\": \"issued token ", ("JWT", jwt()), "\"}")
    elif c == 200:
        L("ok: [", R.choice(["db-01", "web-02"]), "] => {\"changed\": false, \"private_key\": \"", ("SECRET", pem_json()), "\", \"public_key\": \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", rs(B64C, 43), "\"}")
    else:
        L("+", ("IP", ip4()), ":", ("PORT", "5432"), ":", R.choice(["shop", "*"]), ":", R.choice(["app", "backup"]), ":", ("PASSWORD", pw("plain")))


def s_helm(L):
    c = R.randrange(31)
    c = {18: 14, 19: 17, 20: 15, 21: 12, 22: 14, 23: 17, 24: 14, 25: 17, 26: 200, 27: 200, 28: 15, 29: 201, 30: 201}.get(c, c)        # extra weight for some variants
    ns = R.choice(NS)
    if c == 0:
        L("LAST DEPLOYED: ", ("TIMESTAMP", ts("helm")))
    elif c == 1:
        L("NAMESPACE: ", ("K8S_NAME", ns))
    elif c == 2:
        L("    export POSTGRES_PASSWORD=$(kubectl get secret --namespace ", ("K8S_NAME", ns), " ", ("K8S_NAME", "pg-postgresql"),
          " -o jsonpath=\"{.data.postgres-password}\" | base64 -d)")
    elif c == 3:
        L("+ helm upgrade --install api ./chart -n ", ("K8S_NAME", ns), " --set image.tag=", ("VERSION", semver()), " --set secrets.stripeKey=",
          ("TOKEN", tok("stripe")), " --set auth.password=", ("PASSWORD", pw("plain")))
    elif c == 4:
        L("+ helm repo add private https://charts.example.com --username ci --password ", ("PASSWORD", pw("plain")))
    elif c == 5:
        L("Error: INSTALLATION FAILED: Unable to continue with install: Secret \"", ("K8S_NAME", R.choice(SECRET_NAMES)), "\" in namespace \"",
          ("K8S_NAME", ns), "\" exists and cannot be imported into the current release: invalid ownership metadata")
    elif c == 6:
        L(str(R.randint(1, 30)), "       \t", ("TIMESTAMP", ts("helm")), "\tdeployed  \tpostgresql-", ("VERSION", "13.2.24"), "\t", ("VERSION", "16.1.0"),
          "     \tUpgrade complete")
    elif c == 7:
        key = R.choice(["postgresPassword", "rootPassword", "password", "adminPassword", "redisPassword"])
        L("  ", key, ": ", ("PASSWORD", pw("plain")))
    elif c == 8:
        L("  ", R.choice(["existingSecret", "secretName", "existingSecretPasswordKey"]), ": ", ("KEY_NAME", R.choice(SECRET_NAMES)))
    elif c == 9:
        L("  password: \"", ("PASSWORD", b64(pw().encode())), "\"")
    elif c == 10:
        L(("CODE_PATH", "coalesce.go:286"), ": warning: cannot overwrite table with non table for ", R.choice(["postgresql.primary.extraEnvVars", "api.resources"]), " (map[])")
    elif c == 11:
        L("version.BuildInfo{Version:\"v", ("VERSION", "3.13.3"), "\", GitCommit:\"", ("HASH", "c8b948945e52abba22ff885446a1486cb5fd3474"),
          "\", GitTreeState:\"clean\", GoVersion:\"go", ("VERSION", "1.20.11"), "\"}")
    elif c == 12:
        L("  .dockerconfigjson: ", ("SECRET", b64(json.dumps({"auths": {"ghcr.io": {"username": "acme-bot", "password": tok("github"),
                                                                                   }}}, separators=(",", ":")).encode())))
    elif c == 14:
        L("        image: ", ("IMAGE_REF", image()))
    elif c == 15:
        L("  ")
        e_cred_kv(L, style=R.choice(["yaml", "yaml_q"]))
    elif c == 16:
        L("  ")
        e_benign_kv(L, style="yaml")
    elif c == 17:
        L("      image: \"", ("IMAGE_REF", image()), "\"")
    elif c == 200:
        L("        image: ", ("IMAGE_REF", image()))
    elif c == 201:
        L("  tls.key: ", ("SECRET", pem_b64()))
    else:
        L(("CODE_PATH", R.choice(["upgrade.go:158", "client.go:477", "install.go:214"])), ": [debug] ",
          R.choice(["Starting delete for \"", "Created a new Secret called \""]), ("K8S_NAME", R.choice(SECRET_NAMES)), "\" in ", ("K8S_NAME", ns))


def s_github_actions(L):
    d = rand_dt()
    L(("TIMESTAMP", ts("iso7z", d)), " ")
    c = R.randrange(62)
    c = {24: 20, 25: 11, 26: 17, 27: 18, 28: 23, 29: 8, 30: 19, 31: 21, 32: 20, 33: 124, 34: 125, 35: 124, 36: 125, 37: 126, 38: 126, 39: 20, 40: 11, 41: 124, 42: 126, 43: 200, 44: 200, 45: 200, 46: 21, 47: 5, 48: 201, 49: 201, 50: 16, 51: 16, 52: 3, 53: 4, 54: 10, 55: 11, 56: 11, 57: 127, 58: 127, 59: 202, 60: 202, 61: 20}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("##[group]Run actions/checkout@v4")
    elif c == 1:
        L("  ", R.choice(["token", "password", "github-token", "registry-password"]), ": ", ("KEY_NAME", "***"))
    elif c == 2:
        L("Current runner version: '", ("VERSION", "2.311.0"), "'")
    elif c == 3:
        L("[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin +", ("HASH", hx(40)),
          ":refs/remotes/origin/main")
    elif c == 4:
        L("HEAD is now at ", ("HASH", git_short()[:7]), " ", R.choice(["Fix login redirect", "Bump axios from 1.6.2 to 1.6.5", "Merge pull request #412 from acme/feat/sso", "Übersetzung für Login korrigiert", "修正: ログイン画面"]))
    elif c == 5:
        L("  AWS_ACCESS_KEY_ID: ", ("AWS_KEY", akia()))
    elif c == 6:
        L("curl -sSf -H \"Authorization: token ", ("TOKEN", tok(R.choice(["github", "github_pat"]))), "\" https://api.github.com/repos/acme/api/releases/latest")
    elif c == 7:
        L("WARNING! Your password will be stored unencrypted in /home/runner/.docker/config.json.")
    elif c == 8:
        L("#", str(R.randint(5, 30)), " pushing manifest for ", ("IMAGE_REF", image()), " ", str(R.randint(0, 9)), ".", str(R.randint(0, 9)), "s done")
    elif c == 9:
        L("//registry.npmjs.org/:_authToken=", ("TOKEN", tok("npm")))
    elif c == 10:
        L("Digest: ", ("HASH", sha256_digest()))
    elif c == 11:
        L("  ACTIONS_ID_TOKEN_REQUEST_TOKEN: ", ("JWT", jwt()))
    elif c == 12:
        L("##[error]Process completed with exit code ", str(R.choice([1, 2, 127, 137])), ".")
    elif c == 13:
        L("  DATABASE_URL: postgres://app:", ("PASSWORD", url_user_pw(pw())), "@", ("IP", ip4()), ":", ("PORT", "5432"), "/shop_test")
    elif c == 14:
        L("    AssertionError: expected '", ("EMAIL", email()), "' to equal '", ("EMAIL", email()), "'")
    elif c == 15:
        L("Image: ubuntu-22.04 Version: ", ("VERSION", "20240107.1.0"), " Included Software: https://github.com/actions/runner-images/blob/ubuntu22/", ("VERSION", "20240107.1"), "/images/ubuntu/Ubuntu2204-Readme.md")
    elif c == 17:
        L("#", str(R.randint(2, 9)), " [build ", str(R.randint(1, 7)), "/7] FROM ", ("IMAGE_REF", image()))
    elif c == 18:
        L("[command]/usr/bin/docker build -t ", ("IMAGE_REF", image()), " --build-arg ", R.choice(["NPM_TOKEN", "GITHUB_TOKEN"]), "=")
        L(("TOKEN", tok("npm" if L.parts[-2] == "NPM_TOKEN" else "github")), " .")
    elif c == 19:
        L("  aws-access-key-id: ", ("AWS_KEY", akia()))
    elif c == 20:
        L("  \u2715 declines card ", ("CREDIT_CARD", card(R.choice(["space", "plain"]))), " (", str(R.randint(3, 90)), " ms)")
    elif c == 21:
        L("  ")
        e_cred_kv(L, style="yaml")
    elif c == 22:
        L("  ")
        e_benign_kv(L, style="yaml")
    elif c == 23:
        L("docker push ", ("IMAGE_REF", image()))
    elif c == 127:
        v = R.choice(["4.0.0.0", "8.0.0.0", "6.0.0.0", "4.0.1.2", "5.2.1.0", "7.0.0.3"])
        L("/usr/share/dotnet/sdk/", ("VERSION", "8.0.101"), "/Microsoft.Common.CurrentVersion.targets(2382,5): warning MSB3277: Found conflicts between different versions of \"System.Text.Json\" that could not be resolved. Reference: \"System.Text.Json, Version=",
          ("VERSION", v), ", Culture=neutral, PublicKeyToken=", ("HEX_ID", "cc7b13ffcd2ddd51"), "\"")
    elif c == 124:
        L("#", str(R.randint(2, 9)), " resolve ", ("IMAGE_REF", image()), " ", str(R.randint(0, 3)), ".", str(R.randint(0, 9)), "s done")
    elif c == 126:
        L("[command]/usr/bin/docker tag ", ("IMAGE_REF", image()), " ", ("IMAGE_REF", image()))
    elif c == 125:
        L("#", str(R.randint(10, 30)), " naming to ", ("IMAGE_REF", image()), " done")
    elif c == 200:
        L("> ")
        e_header(L)
    elif c == 201:
        L("  SSH_PRIVATE_KEY: ", ("SECRET", pem_spaced()))
    elif c == 16:
        L("  ")
        e_vendor_kv(L, "yaml")
    elif c == 202:
        L("    --hash=", ("HASH", "sha256:" + hx(64)), " \\")
    else:
        L("  ", R.choice(["HF_TOKEN", "OPENAI_API_KEY", "SENTRY_AUTH_TOKEN", "PYPI_TOKEN"]), ": ")
        k = L.parts[-2]
        if k == "SENTRY_AUTH_TOKEN":
            L(("SECRET", hx(64)))
        else:
            L(("TOKEN", tok({"HF_TOKEN": "hf", "OPENAI_API_KEY": "openai", "PYPI_TOKEN": "pypi"}[k])))


def s_jenkins(L):
    d = rand_dt()
    if R.random() < 0.4:
        L("[", ("TIMESTAMP", ts("iso3z", d)), "] ")
    c = R.randrange(61)
    c = {21: 18, 22: 17, 23: 16, 24: 20, 25: 19, 26: 18, 27: 121, 28: 121, 29: 16, 30: 122, 31: 122, 32: 18, 33: 17, 34: 122, 35: 16, 36: 200, 37: 200, 38: 200, 39: 201, 40: 201, 41: 202, 42: 202, 43: 203, 44: 203, 45: 19, 46: 9, 47: 204, 48: 204, 49: 205, 50: 205, 51: 205, 52: 205, 53: 205, 54: 205, 55: 5, 56: 5, 57: 17, 58: 206, 59: 206, 60: 18}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("Started by user ", R.choice(["Alice Smith", "Zoë Müller", "José Álvarez", "admin"]), " (", ("EMAIL", email()), ")")
    elif c == 1:
        L("[Pipeline] ", R.choice(["sh", "withCredentials", "stage", "node", "// stage"]))
    elif c == 2:
        L("+ docker login -u ci -p ", ("PASSWORD", pw("plain")), " registry.example.com")
    elif c == 3:
        L("+ curl -fsS -u admin:", ("PASSWORD", pw("plain")), " https://nexus.example.com/service/rest/v1/status")
    elif c == 4:
        L("Fetching upstream changes from https://ci:", ("TOKEN", tok(R.choice(["github", "gitlab"]))), "@", R.choice(["github.com", "gitlab.com"]), "/acme/api.git")
    elif c == 5:
        L("Checking out Revision ", ("HASH", hx(40)), " (refs/remotes/origin/main)")
    elif c == 6:
        L(" > git rev-parse refs/remotes/origin/main^{commit} # timeout=10")
    elif c == 7:
        L("+ mysql -h ", ("IP", ip4()), " -u app -p", ("KEY_NAME", "****"), " shop")
    elif c == 8:
        L("Masking supported pattern matches of $DB_PASSWORD or $API_TOKEN")
    elif c == 9:
        L("+ export ")
        e_cred_kv(L, style="env", kinds=["SECRET", "AWS_KEY", "TOKEN"])
    elif c == 10:
        L(("IP", ip4()), ":", ("PORT", "5432"), ":*:app:", ("PASSWORD", pw("plain")))
    elif c == 11:
        v = R.choice(["3.2.1", "6.1.2", "2.16.1"])
        L("[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/springframework/boot/spring-boot/", ("VERSION", v),
          "/spring-boot-", ("VERSION", v), ".pom")
    elif c == 12:
        L("Finished: ", R.choice(["SUCCESS", "FAILURE", "UNSTABLE", "ABORTED"]))
    elif c == 13:
        L("Running on ", ("K8S_NAME", "build-agent-" + rs(LOWER + DIG, 5)), " in /home/jenkins/agent/workspace/api_main")
    elif c == 14:
        L("+ kubectl create secret generic ", ("K8S_NAME", R.choice(SECRET_NAMES)), " --from-literal=password=", ("PASSWORD", pw("plain")), " -n ", ("K8S_NAME", R.choice(NS)))
    elif c == 16:
        L("+ docker build -t ", ("IMAGE_REF", image()), " .")
    elif c == 17:
        L("+ curl -fsS -H 'Authorization: Bearer ", ("JWT", jwt()), "' https://deploy.example.com/api/v1/rollouts")
    elif c == 18:
        L("[ERROR] PaymentServiceTest.declinedCard:42 expected:<DECLINED> but was:<APPROVED> for card ", ("CREDIT_CARD", card()))
    elif c == 19:
        L("+ ")
        e_cred_kv(L, style=R.choice(["cli", "cli_sp", "export"]))
    elif c == 20:
        L("+ docker push ", ("IMAGE_REF", image()))
    elif c == 121:
        L("Successfully tagged ", ("IMAGE_REF", image()))
    elif c == 122:
        L("+ docker tag ", ("IMAGE_REF", image()), " ", ("IMAGE_REF", image()))
    elif c == 200:
        L("> ")
        e_header(L)
    elif c == 201:
        L("+ psql -h ", ("IP", ip4()), " -U postgres -c \"ALTER ROLE ", R.choice(["app", "reporting"]), " WITH LOGIN PASSWORD '", ("PASSWORD", pw("xml")), "'\"")
    elif c == 202:
        L("+ dotnet ef database update --connection 'Server=", ("IP", ip4()), ",", ("PORT", "1433"), ";Database=orders;User Id=", R.choice(["sa", "migrator"]),
          ";Password=", ("PASSWORD", pw("xml")), ";TrustServerCertificate=True;'")
    elif c == 203:
        L("+ docker tag ", ("IMAGE_REF", image()), " ", ("IMAGE_REF", image()))
    elif c == 204:
        L('  "private_key": "', ("SECRET", pem_json()), '",')
    elif c == 205:
        L("+ export ")
        e_vendor_kv(L, "env")
    elif c == 206:
        L("npm WARN tarball tarball data for ", R.choice(["lodash@4.17.21", "axios@1.6.5", "express@4.18.2"]), " (", ("HASH", "sha512-" + b64(R.randbytes(64))),
          ") seems to be corrupted. Trying again.")
    else:
        L("+ ssh -o StrictHostKeyChecking=no deploy@", ("IP", ip4()), " 'sudo systemctl restart api'")


# ---- application runtimes --------------------------------------------------------------------
PY_FILES = ["/usr/local/lib/python3.11/site-packages/psycopg2/__init__.py",
            "/usr/local/lib/python3.11/site-packages/requests/models.py",
            "/usr/local/lib/python3.11/site-packages/botocore/client.py",
            "/usr/local/lib/python3.11/site-packages/django/db/backends/base/base.py",
            "/app/billing/views.py", "/app/billing/tasks.py", "/srv/api/app/auth.py",
            "/usr/lib/python3.12/smtplib.py"]


def s_python_traceback(L):
    c = R.randrange(59)
    c = {26: 9, 27: 20, 28: 11, 29: 25, 30: 14, 31: 23, 32: 9, 33: 20, 34: 9, 35: 11, 36: 25, 37: 20, 38: 200, 39: 200, 40: 200, 41: 201, 42: 201, 43: 202, 44: 202, 45: 203, 46: 203, 47: 24, 48: 14, 49: 204, 50: 204, 51: 204, 52: 204, 53: 204, 54: 204, 55: 11, 56: 25, 57: 9, 58: 20}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("Traceback (most recent call last):")
    elif c in (1, 2):
        L('  File "', ("CODE_PATH", R.choice(PY_FILES)), '", line ', str(R.randint(5, 2000)), ", in ",
          R.choice(["connect", "raise_for_status", "_make_api_call", "charge", "ensure_connection", "login", "<module>"]))
    elif c == 3:
        L('psycopg2.OperationalError: connection to server at "', ("IP", ip4()), '", port ', ("PORT", "5432"),
          ' failed: FATAL:  password authentication failed for user "app"')
    elif c == 4:
        L('    conn = psycopg2.connect("host=', ("IP", ip4()), " dbname=shop user=app password=", ("PASSWORD", pw("plain")), '")')
    elif c == 5:
        L('    engine = create_engine("postgresql+psycopg2://app:', ("PASSWORD", url_user_pw(pw())), "@", ("IP", ip4()), ":", ("PORT", "5432"), '/shop")')
    elif c == 6:
        L("requests.exceptions.HTTPError: 401 Client Error: Unauthorized for url: https://api.example.com/v1/items?",
          R.choice(["api_key", "apikey", "access_key"]), "=", ("SECRET", qenc(secret())))
    elif c == 7:
        L("botocore.exceptions.ClientError: An error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: The security token included in the request is invalid.")
    elif c == 8:
        L("KeyError: '", ("EMAIL", email()), "'")
    elif c == 9:
        L("ValueError: Ungültige Kartennummer: ", ("CREDIT_CARD", card()))
    elif c == 10:
        L("stripe.error.AuthenticationError: Invalid API Key provided: ", ("KEY_NAME", "sk_live_" + "*" * 20 + rs(ALNUM, 4)))
    elif c == 11:
        L('    payload = jwt.decode("', ("JWT", jwt()), '", key=SECRET_KEY, algorithms=["HS256"])')
    elif c == 12:
        L("jwt.exceptions.ExpiredSignatureError: Signature has expired")
    elif c == 13:
        L('    client = OpenAI(api_key="', ("TOKEN", tok("openai")), '")')
    elif c == 14:
        L('    s3 = boto3.client("s3", aws_access_key_id="', ("AWS_KEY", akia()), '", aws_secret_access_key="', ("SECRET", aws_secret()), '")')
    elif c == 15:
        L(("TIMESTAMP", ts("log4j")), " ERROR [billing.tasks] Task ", ("CODE_PATH", "billing.tasks.charge"), "[", ("UUID", uuid()),
          "] raised unexpected: CardError('Your card was declined.')")
    elif c == 16:
        L("django.db.utils.OperationalError: (1045, \"Access denied for user 'app'@'", ("IP", ip4()), "' (using password: ", ("KEY_NAME", "YES"), ")\")")
    elif c == 17:
        L('    send_mail(to="', ("EMAIL", email()), '", smtp_user="', ("EMAIL", email()), '", smtp_password="', ("PASSWORD", pw("xml")), '")')
    elif c == 18:
        L("redis.exceptions.ConnectionError: Error 111 connecting to ", ("IP", ip4()), ":", ("PORT", "6379"), ". Connection refused.")
    elif c == 20:
        L('    stripe.Charge.create(amount=', str(R.randint(100, 99999)), ', currency="eur", source={"number": "', ("CREDIT_CARD", card("plain")),
          '", "exp_month": 12, "exp_year": 2027, "cvc": "314"})')
    elif c == 21:
        L("ssl.SSLCertVerificationError: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unsupported critical extension ",
          ("OID", R.choice(["2.5.29.17", "2.5.29.37", "1.3.6.1.5.5.7.1.24"])), " (_ssl.c:1006)")
    elif c == 22:
        L(("TIMESTAMP", ts("log4j")), " WARNING [api.middleware] slow request ")
        e_trace(L)
    elif c == 23:
        L('    os.environ["', R.choice(["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]), '"] = "', ("AWS_KEY", akia()), '"')
    elif c == 24:
        L("    requests.post(url, json={")
        e_cred_kv(L, style="pydict")
        L(", ")
        e_benign_kv(L, style="json_sp")
        L("})")
    elif c == 25:
        L('    resp = session.get(url, headers={"Authorization": "Bearer ', ("JWT", jwt()), '"}, timeout=', ("KEY_NAME", "30"), ")")
    elif c == 200:
        L("send: b'", R.choice(["GET", "POST"]), " /v1/", R.choice(["orders", "charges", "me"]), " HTTP/1.1\\r\\nHost: ", R.choice(AUTHORITIES), "\\r\\n")
        e_header(L)
        L("\\r\\nUser-Agent: python-requests/", ("VERSION", "2.31.0"), "\\r\\n\\r\\n'")
    elif c == 201:
        L("urllib3.exceptions.NewConnectionError: <urllib3.connection.HTTPSConnection object at ", ("HEX_ID", ptr()),
          ">: Failed to establish a new connection: [Errno 111] Connection refused")
    elif c == 202:
        L('    cur.execute("ALTER ROLE ', R.choice(["app", "reporting"]), " WITH LOGIN PASSWORD '", ("PASSWORD", pw("xml")), "'\")")
    elif c == 203:
        L('    conn = pyodbc.connect("DRIVER={ODBC Driver 18 for SQL Server};SERVER=', ("IP", ip4()), ",", ("PORT", "1433"),
          ";DATABASE=orders;UID=sa;PWD=", ("PASSWORD", pw("xml")), ';Encrypt=yes")')
    elif c == 204:
        L("    client = Client(")
        e_vendor_kv(L, "pyarg")
        L(")")
    else:
        L("    headers = {\"Authorization\": \"")
        e_authval(L)
        L("\", \"X-Request-Id\": \"", ("TRACE_ID", "req_" + rs(ALNUM, 24)), "\"}")


def s_nodejs_stack(L):
    c = R.randrange(46)
    c = {21: 16, 22: 18, 23: 6, 24: 17, 25: 19, 26: 16, 27: 15, 28: 16, 29: 18, 30: 6, 31: 200, 32: 200, 33: 19, 34: 17, 35: 201, 36: 201, 37: 202, 38: 202, 39: 202, 40: 202, 41: 202, 42: 202, 43: 18, 44: 18, 45: 16}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("    at ", R.choice(["Object.<anonymous>", "Layer.handle [as handle_request]", "processTicksAndRejections", "Query.run"]), " (",
          ("CODE_PATH", R.choice(["/app/src/index.js:12:7", "/app/node_modules/express/lib/router/layer.js:95:5",
                                  "node:internal/process/task_queues:95:5", "/app/node_modules/pg/lib/client.js:526:17"])), ")")
    elif c == 1:
        L("    at Module._compile (", ("CODE_PATH", "node:internal/modules/cjs/loader:1376:14"), ")")
    elif c == 2:
        L("Error: connect ECONNREFUSED ", ("IP", ip4()), ":", ("PORT", str(R.choice([5432, 6379, 27017, 3306]))))
    elif c == 3:
        L("    at TCPConnectWrap.afterConnect [as oncomplete] (", ("CODE_PATH", "node:net:1595:16"), ") {")
    elif c == 4:
        L("MongoServerError: bad auth : Authentication failed.")
    elif c == 5:
        L("  uri: 'mongodb+srv://", R.choice(["app", "orders"]), ":", ("PASSWORD", url_user_pw(pw())), "@cluster0.ab1cd.mongodb.net/shop?retryWrites=true&w=majority',")
    elif c == 6:
        L("    headers: { Authorization: '")
        e_authval(L)
        L("', 'User-Agent': 'axios/", ("VERSION", "1.6.5"), "' },")
    elif c == 7:
        L("AxiosError: Request failed with status code ", str(R.choice([401, 403, 500])))
    elif c == 8:
        L.json = True
        d = rand_dt()
        jobj(L, O([("level", 50), ("time", ("raw", "TIMESTAMP", ts("epoch_ms", d))), ("pid", 1), ("hostname", ("K8S_NAME", pod())),
                   ("req", O([("id", R.randint(1, 99999)), ("method", "POST"), ("url", "/login"),
                              ("headers", O([("authorization", lambda L: (L('"'), e_authval(L), L('"'))), ("x-request-id", ("TRACE_ID", hx(32)))])),
                              ("remoteAddress", ("IP", "::ffff:" + ip4())), ("remotePort", ("raw", "PORT", str(R.randint(1024, 65535))))])),
                   ("msg", "request errored")]))
    elif c == 9:
        L("Node.js v", ("VERSION", R.choice(["20.10.0", "18.19.0", "21.5.0"])))
    elif c == 10:
        L("(node:1) UnhandledPromiseRejectionWarning: Error: Incorrect API key provided: ", ("TOKEN", tok(R.choice(["openai", "anthropic"]))))
    elif c == 11:
        L("Error: ユーザーが見つかりません: ", ("EMAIL", email()))
    elif c == 12:
        L("  auth: { username: '", ("TOKEN", tok("stripe")), "', password: '' },")
    elif c == 13:
        L("  clientId: '", ("UUID", uuid()), "', clientSecret: '", ("SECRET", secret()), "',")
    elif c == 15:
        L("  config: { headers: { 'x-api-key': '", ("SECRET", secret()), "', traceparent: '00-", ("TRACE_ID", hx(32)), "-", ("TRACE_ID", hx(16)), "-01' } },")
    elif c == 16:
        L("  card: '", ("CREDIT_CARD", card()), "',")
    elif c == 17:
        L("  env: { ", "AWS_ACCESS_KEY_ID: '", ("AWS_KEY", akia()), "', AWS_SECRET_ACCESS_KEY: '", ("SECRET", aws_secret()), "' },")
    elif c == 18:
        L("  token: '", ("JWT", jwt()), "',")
    elif c == 19:
        L("  ")
        e_cred_kv(L, style="nodeobj")
        L(",")
    elif c == 20:
        L("    at async handler (", ("CODE_PATH", "/var/task/index.mjs:%d:%d" % (R.randint(5, 300), R.randint(3, 40))), ")")
    elif c == 200:
        L("    at Connection.connect (", ("CODE_PATH", "/app/node_modules/tedious/lib/connection.js:1040:9"), ") connectionString='Server=", ("IP", ip4()),
          ";User Id=", R.choice(["sa", "orders"]), ";Password=", ("PASSWORD", pw("xml")), ";Database=orders;'")
    elif c == 201:
        L("  privateKey: '", ("SECRET", pem_json()), "',")
    elif c == 202:
        L("  ")
        e_vendor_kv(L, "nodeobj")
        L(",")
    else:
        L("  code: 'ERR_HTTP_HEADERS_SENT', requestId: '", ("TRACE_ID", "1-%08x-%s" % (int(rand_dt().timestamp()), hx(24))), "'")


def s_php_error(L):
    d = rand_dt()
    c = R.randrange(31)
    c = {16: 8, 17: 15, 18: 13, 19: 14, 20: 11, 21: 8, 22: 15, 23: 8, 24: 15, 25: 13, 26: 200, 27: 200, 28: 13, 29: 8, 30: 15}.get(c, c)        # extra weight for some variants
    if c == 0:
        L("[", ("TIMESTAMP", ts("php", d)), " UTC] PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [1045] Access denied for user 'app'@'",
          ("IP", ip4()), "' (using password: ", ("KEY_NAME", "YES"), ") in ", ("CODE_PATH", "/var/www/html/lib/Db.php:14"))
    elif c == 1:
        L("#0 ", ("CODE_PATH", "/var/www/html/lib/Db.php(14)"), ": PDO->__construct('mysql:host=", ("IP", ip4()), ";dbname=shop;charset=utf8mb4', 'app', '",
          ("PASSWORD", pw("xml")), "')")
    elif c == 2:
        L("#1 ", ("CODE_PATH", "/var/www/html/index.php(8)"), ": ", ("CODE_PATH", "App\\Db::connect()"))
    elif c == 3:
        L("PHP Notice:  Undefined index: email in ", ("CODE_PATH", "/var/www/html/signup.php"), " on line ", str(R.randint(5, 200)))
    elif c == 4:
        L("[", ("TIMESTAMP", ts("php", d)), "] WARNING: [pool www] child ", str(R.randint(10, 9999)), " said into stderr: \"NOTICE: PHP message: login failed for ",
          ("EMAIL", email()), " from ", ("IP", ipa()), "\"")
    elif c == 5:
        L("[", ("TIMESTAMP", ts("plain", d)), "] production.ERROR: Client error: `GET https://graph.facebook.com/v", ("VERSION", "18.0"), "/me?access_token=",
          ("TOKEN", tok(R.choice(["bearer", "google_oauth"]))), "` resulted in a `400 Bad Request` response")
    elif c == 6:
        L("#2 ", ("CODE_PATH", "/var/www/html/vendor/stripe/stripe-php/lib/ApiRequestor.php(135)"), ": ", ("CODE_PATH", "Stripe\\ApiRequestor->_interpretResponse()"))
    elif c == 7:
        L("PHP Warning:  mysqli::__construct(): (HY000/2002): Connection refused in ", ("CODE_PATH", "/var/www/html/wp-includes/class-wpdb.php"), " on line 1987")
    elif c == 8:
        L("[", ("TIMESTAMP", ts("plain", d)), "] local.INFO: Payment authorized {\"card\":\"", ("CREDIT_CARD", card()), "\",\"amount\":",
          str(R.randint(100, 99999)), ",\"customer\":\"", ("EMAIL", email()), "\"}")
    elif c == 9:
        L("#3 ", ("CODE_PATH", "/var/www/html/app/Mail/Mailer.php(41)"), ": Swift_SmtpTransport->setPassword('", ("PASSWORD", pw("xml")), "')")
    elif c == 10:
        L("PHP Deprecated:  strlen(): Passing null to parameter #1 ($string) of type string is deprecated in ", ("CODE_PATH", "/var/www/html/src/Util.php"), " on line 12")
    elif c == 11:
        L("[", ("TIMESTAMP", ts("php", d)), " Europe/Berlin] PHP Warning:  file_get_contents(https://api.example.com/v1/me?api_key=", ("SECRET", qenc(secret())),
          "): Failed to open stream: HTTP request failed! HTTP/1.1 403 Forbidden in ", ("CODE_PATH", "/var/www/html/cron.php"), " on line 7")
    elif c == 13:
        L("  'Authorization' => 'Bearer ", ("JWT", jwt()), "',")
    elif c == 14:
        L("#0 ", ("CODE_PATH", "/var/www/html/app/Services/Payment.php(51)"), ": Stripe\\StripeClient->__construct('", ("TOKEN", tok("stripe")), "')")
    elif c == 15:
        L("[", ("TIMESTAMP", ts("plain", d)), "] production.WARNING: Card declined {\"card\":\"", ("CREDIT_CARD", card()), "\",\"request_id\":\"",
          ("TRACE_ID", rs(ALNUM, 20)), "\"}")
    elif c == 200:
        L("[", ("TIMESTAMP", ts("plain", d)), "] local.DEBUG: Outgoing request headers: ")
        e_header(L)
    else:
        L("#4 {main}")


SPRING_LOGGERS = ["c.a.billing.BillingApplication", "o.s.b.w.embedded.tomcat.TomcatWebServer",
                  "com.zaxxer.hikari.HikariDataSource", "o.s.web.filter.CommonsRequestLoggingFilter",
                  "o.f.c.i.database.base.BaseDatabaseType", "o.s.b.a.e.web.EndpointLinksResolver",
                  "com.zaxxer.hikari.HikariConfig", "c.a.billing.PaymentService"]


def s_spring_boot(L):
    d = rand_dt()
    c = R.randrange(40)
    c = {18: 9, 19: 17, 20: 16, 21: 5, 22: 15, 23: 9, 24: 17, 25: 9, 26: 17, 27: 16, 28: 5, 29: 12, 30: 15, 31: 200, 32: 200, 33: 201, 34: 201, 35: 201, 36: 16, 37: 16, 38: 9, 39: 17}.get(c, c)        # extra weight for some variants
    if c in (6, 7):
        if c == 6:
            L("org.postgresql.util.PSQLException: FATAL: password authentication failed for user \"billing\"")
        else:
            L("\tat ", ("CODE_PATH", "org.postgresql.core.v3.ConnectionFactoryImpl.doAuthentication(ConnectionFactoryImpl.java:693)"),
              " ~[postgresql-", ("VERSION", "42.6.0"), ".jar!/:", ("VERSION", "42.6.0"), "]")
        return
    L(("TIMESTAMP", ts(R.choice(["iso3z", "iso3off"]), d)), "  ", R.choice(["INFO", "INFO", "WARN", "DEBUG"]), " 1 --- ")
    if c == 9 or R.random() < 0.4:
        L("[billing] [", ("TRACE_ID", hx(32)), ",", ("TRACE_ID", hx(16)), "] ")
    L("[", R.choice(["           main", "nio-8080-exec-%d" % R.randint(1, 9), "    task-1"]), "] ")
    lg = {0: 0, 1: 1, 2: 2, 3: 0, 4: 6, 5: 3, 8: 0, 9: 7, 10: 4, 11: 5, 12: 0, 13: 7, 14: 7, 15: 0, 16: 3, 17: 7, 200: 3, 201: 0}[c]
    L(("CODE_PATH", SPRING_LOGGERS[lg]), " " * R.randint(1, 8), ": ")
    if c == 0:
        L("Starting BillingApplication v", ("VERSION", semver()), " using Java ", ("VERSION", "17.0.9"), " with PID ", ("NUMBER", str(R.randint(1, 99))),
          " (/app/app.jar started by root in /app)")
    elif c == 1:
        L("Tomcat initialized with port ", ("PORT", "8080"), " (http)")
    elif c == 2:
        L("HikariPool-1 - Starting...")
    elif c == 3:
        L("Using generated security password: ", ("PASSWORD", mk_uuid()))
    elif c == 4:
        if R.random() < 0.5:
            L("jdbcUrl.........................jdbc:postgresql://", ("IP", ip4()), ":", ("PORT", "5432"), "/billing?user=billing&password=", ("PASSWORD", qenc(pw())))
        else:
            L("password........................", ("KEY_NAME", "<masked>"))
    elif c == 5:
        L("Before request [POST /api/login, client=", ("IP", ipa()), ", headers=[authorization:\"")
        e_authval(L)
        L("\", content-type:\"application/json\"], payload={\"email\":\"", ("EMAIL", email()), "\",\"password\":\"", ("PASSWORD", pw("xml")), "\"}]")
    elif c == 8:
        L("Could not resolve placeholder 'DB_PASSWORD' in value \"", ("KEY_NAME", "${DB_PASSWORD}"), "\"")
    elif c == 9:
        L("Charging card ", ("CREDIT_CARD", card()), " for customer ", ("EMAIL", email()))
    elif c == 10:
        L("Database: jdbc:postgresql://", ("IP", ip4()), ":", ("PORT", "5432"), "/billing (PostgreSQL ", ("VERSION", "15.5"), ")")
    elif c == 11:
        L("Exposing ", str(R.randint(1, 20)), " endpoint(s) beneath base path '/actuator'")
    elif c == 12:
        L("Loaded config: ")
        e_cred_kv(L, style="props")
    elif c == 14:
        oid, alg = R.choice([("1.2.840.113549.1.1.11", "SHA256withRSA"), ("1.2.840.10045.4.3.2", "SHA256withECDSA"), ("1.2.840.113549.1.1.5", "SHA1withRSA")])
        L("Certificate for ", R.choice(AUTHORITIES), " uses signature algorithm ", ("OID", oid), " (", alg, ")")
    elif c == 15:
        L("Loaded AWS credentials: ")
        e_cred_kv(L, style="props", kinds=["AWS_KEY", "SECRET"])
    elif c == 16:
        L("Outgoing request GET https://api.partner.example.com/v2/orders headers=[Authorization:\"Bearer ", ("JWT", jwt()), "\"]")
    elif c == 17:
        L("Refund issued for card ", ("CREDIT_CARD", card()), " order ", ("NUMBER", long_number(R.randint(13, 16))))
    elif c == 200:
        L("GET /api/v1/customers?email=", ("EMAIL", email_enc(email())), "&page=0 from ", ("IP", ipa()), " completed in ", str(R.randint(2, 900)), "ms")
    elif c == 201:
        L("Resolved property: ")
        e_vendor_kv(L, "props")
    else:
        L("Benutzer ", ("EMAIL", email()), " hat sich angemeldet (", ("IP", ipa()), ")")


# ---- observability stack ---------------------------------------------------------------------
def prom_prefix(L, d, caller, level):
    L("ts=", ("TIMESTAMP", ts("iso3z", d)), " caller=", ("CODE_PATH", caller), " level=", level, " ")


def s_prometheus(L):
    d = rand_dt()
    c = R.randrange(17)
    c = {13: 10, 14: 11, 15: 10, 16: 11}.get(c, c)        # extra weight for some variants
    if c == 0:
        prom_prefix(L, d, "main.go:585", "info")
        L("msg=\"Starting Prometheus Server\" mode=server version=\"(version=", ("VERSION", R.choice(["2.48.1", "2.49.1"])),
          ", branch=HEAD, revision=", ("HASH", hx(40)), ")\"")
    elif c == 1:
        prom_prefix(L, d, "scrape.go:1384", "warn")
        L("component=\"scrape manager\" scrape_pool=node target=http://", ("IP", ip4()), ":", ("PORT", "9100"), "/metrics msg=\"Append error\" err=\"out of bounds\"")
    elif c == 2:
        prom_prefix(L, d, "kubernetes.go:329", "info")
        L("component=\"discovery manager scrape\" discovery=kubernetes config=kubernetes-pods msg=\"Using pod service account via in-cluster config\"")
    elif c == 3:
        ip = ip4()
        prom_prefix(L, d, "notifier.go:530", "error")
        L("component=notifier alertmanager=http://", ("IP", ip), ":", ("PORT", "9093"), "/api/v2/alerts count=", str(R.randint(1, 9)),
          " msg=\"Error sending alert\" err=\"Post \\\"http://", ("IP", ip), ":", ("PORT", "9093"), "/api/v2/alerts\\\": context deadline exceeded\"")
    elif c == 4:
        prom_prefix(L, d, "dedupe.go:112", "warn")
        L("component=remote remote_name=", ("HEX_ID", hx(6)), " url=https://metrics:", ("PASSWORD", url_user_pw(pw())),
          "@prom.example.com/api/v1/write msg=\"Failed to send batch, retrying\" err=\"server returned HTTP status 401 Unauthorized\"")
    elif c == 5:
        prom_prefix(L, d, "main.go:1372", "info")
        L("msg=\"Completed loading of configuration file\" filename=/etc/prometheus/prometheus.yml totalDuration=%d.%dms db_storage=1.2µs remote_storage=3.1µs web_handler=600ns query_engine=900ns scrape=4.1ms" % (
            R.randint(1, 90), R.randint(0, 999)))
    elif c == 6:
        prom_prefix(L, d, "compact.go:523", "info")
        L("component=tsdb msg=\"write block\" mint=", ("TIMESTAMP", ts("epoch_ms")), " maxt=", ("TIMESTAMP", ts("epoch_ms")), " ulid=",
          ("HEX_ID", "01HM" + rs("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 22)), " duration=", str(R.randint(100, 9000)), "ms")
    elif c == 7:
        ip = ip4()
        prom_prefix(L, d, "scrape.go:1400", "debug")
        L("component=\"scrape manager\" scrape_pool=federate target=\"https://", ("IP", ip), ":", ("PORT", "8443"), "/federate?match%5B%5D=up&auth_token=",
          ("TOKEN", tok("bearer")), "\" msg=\"Scrape failed\" err=\"server returned HTTP status 403 Forbidden\"")
    elif c == 8:
        prom_prefix(L, d, "main.go:1146", "info")
        L("msg=\"Server is ready to receive web requests.\"")
    elif c in (10, 11):
        prom_prefix(L, d, "collector.go:%d" % R.randint(100, 500), "debug")
        L("auth=public_v2 target=", ("IP", ip4()), " source_address= module=", R.choice(["if_mib", "cisco_wlc", "synology"]), " msg=\"Walking subtree\" oid=",
          ("OID", R.choice(["1.3.6.1.2.1.2", "1.3.6.1.2.1.31.1.1", "1.3.6.1.4.1.9.9.13.1", ".1.3.6.1.2.1.1.3", "1.3.6.1.4.1.6574.1"])))
        if R.random() < 0.5:
            L(" next_oid=", ("OID", "1.3.6.1.2.1.2.2.1.%d.%d" % (R.randint(1, 22), R.randint(1, 48))))
    elif c == 12:
        prom_prefix(L, d, "scrape.go:1400", "debug")
        L("component=\"scrape manager\" scrape_pool=blackbox msg=\"Scrape failed\" err=\"Get \\\"https://", R.choice(AUTHORITIES), "/probe?module=http_2xx&target=https://",
          R.choice(AUTHORITIES), "/?api_key=", ("SECRET", hx(32)), "\\\": context deadline exceeded\"")
    else:
        ip = ip4()
        prom_prefix(L, d, "scrape.go:1400", "debug")
        L("component=\"scrape manager\" scrape_pool=kubernetes-pods target=http://", ("IP", ip), ":", ("PORT", "8080"), "/metrics namespace=",
          ("K8S_NAME", R.choice(NS)), " pod=", ("K8S_NAME", pod()), " msg=\"Scrape failed\" err=\"Get \\\"http://", ("IP", ip), ":", ("PORT", "8080"),
          "/metrics\\\": dial tcp ", ("IP", ip), ":", ("PORT", "8080"), ": connect: connection refused\"")


def s_alertmanager(L):
    d = rand_dt()
    c = R.randrange(12)
    c = {10: 1, 11: 7}.get(c, c)        # extra weight for some variants
    if c == 0:
        prom_prefix(L, d, "dispatch.go:353", "error")
        L("component=dispatcher msg=\"Notify for alerts failed\" num_alerts=", str(R.randint(1, 9)),
          " err=\"slack/slack[0]: notify retry canceled due to unrecoverable error after 1 attempts: channel \\\"#alerts\\\": unexpected status code 404: no_service\"")
    elif c == 1:
        prom_prefix(L, d, "dispatch.go:353", "error")
        L("component=dispatcher msg=\"Notify for alerts failed\" num_alerts=1 err=\"webhook/webhook[0]: notify retry canceled after 3 attempts: Post \\\"")
        if R.random() < 0.6:
            L("https://hooks.slack.com/services/T0", rs(UPPER + DIG, 8), "/B0", rs(UPPER + DIG, 8), "/", ("TOKEN", rs(ALNUM, 24)))
        else:
            L(("KEY_NAME", "<redacted>"))
        L("\\\": context deadline exceeded\"")
    elif c == 2:
        prom_prefix(L, d, "notify.go:848", "info")
        L("component=dispatcher receiver=pagerduty-critical integration=pagerduty[0] aggrGroup=\"{}/{severity=\\\"critical\\\"}:{alertname=\\\"HighErrorRate\\\"}\" msg=\"Notify success\" attempts=1")
    elif c == 3:
        prom_prefix(L, d, "notify.go:848", "warn")
        L("component=dispatcher receiver=oncall-mail integration=email[0] msg=\"Notify attempt failed, will retry later\" to=", ("EMAIL", email()),
          " from=", ("EMAIL", email()), " smarthost=", ("PORT", "smtp.example.com:587"), " err=\"send AUTH command: 535 5.7.8 Username and Password not accepted\"")
    elif c == 4:
        prom_prefix(L, d, "cluster.go:185", "info")
        L("component=cluster msg=\"setting advertise address explicitly\" addr=", ("IP", ip4()), " port=", ("PORT", "9094"))
    elif c == 5:
        prom_prefix(L, d, "cluster.go:696", "info")
        L("component=cluster msg=\"gossip settled; proceeding\" elapsed=10.00", str(R.randint(1, 9)), "s")
    elif c == 6:
        prom_prefix(L, d, "main.go:245", "info")
        L("msg=\"Starting Alertmanager\" version=\"(version=", ("VERSION", "0.26.0"), ", branch=HEAD, revision=", ("HASH", hx(40)), ")\"")
    elif c == 7:
        prom_prefix(L, d, "notify.go:758", "debug")
        L("component=dispatcher receiver=pd integration=pagerduty[0] msg=\"Notify\" routing_key=", ("SECRET", hx(32)))
    elif c == 8:
        prom_prefix(L, d, "dispatch.go:165", "debug")
        L("component=dispatcher msg=\"Received alert\" alert=", R.choice(["HighErrorRate", "KubePodCrashLooping", "DiskFull"]), "[", ("HEX_ID", hx(7)), "][active]")
    else:
        prom_prefix(L, d, "delegate.go:117", "debug")
        L("component=cluster received=NotifyJoin node=", ("HEX_ID", "01HM" + rs("0123456789ABCDEFGHJKMNPQRSTVWXYZ", 22)), " addr=", ("IP", ip4()), ":", ("PORT", "9094"))


def s_grafana(L):
    d = rand_dt()
    c = R.randrange(24)
    c = {15: 13, 16: 12, 17: 4, 18: 5, 19: 13, 20: 200, 21: 200, 22: 13, 23: 13}.get(c, c)        # extra weight for some variants
    t = lambda: L("t=", ("TIMESTAMP", ts("iso9z", d)), " ")
    if c in (0, 11):
        L("logger=context userId=", str(R.randint(0, 40)), " orgId=1 uname=", R.choice(["admin", "alice", "viewer", "", "zoë", "jürgen", "dmitrij.ивanov"]), " ")
        t()
        L("level=info msg=\"Request Completed\" method=", R.choice(["GET", "POST"]), " path=", R.choice(["/api/dashboards/uid/", "/login", "/api/ds/query"]))
        if L.parts[-1].endswith("/uid/"):
            L(rs(ALNUM, 9))
        L(" status=", str(status()), " remote_addr=", ("IP", ipa()), " time_ms=", str(R.randint(1, 900)), " duration=", str(R.randint(1, 900)),
          ".", str(R.randint(100, 999)), "ms size=", ("NUMBER", str(R.randint(0, 90000))), " referer=", R.choice(["", "https://grafana.example.net/d/abc123/overview?orgId=1"]),
          " handler=/api/dashboards/uid/:uid status_source=server")
        if c == 11:
            L(" traceID=", ("TRACE_ID", hx(32)))
    elif c == 1:
        L("logger=settings ")
        t()
        L("level=info msg=\"Config overridden from Environment variable\" var=\"", R.choice(["GF_SECURITY_ADMIN_PASSWORD", "GF_AUTH_GENERIC_OAUTH_CLIENT_SECRET", "GF_DATABASE_PASSWORD"]),
          "=", ("KEY_NAME", "*********"), "\"")
    elif c == 2:
        L("logger=ldap ")
        t()
        L("level=debug msg=\"LDAP bind\" server=", ("IP", ip4()), ":", ("PORT", "636"), " bind_dn=\"cn=grafana,ou=svc,dc=example,dc=com\" bind_password=", ("PASSWORD", pw("plain")))
    elif c == 3:
        L("logger=oauth.generic_oauth ")
        t()
        L("level=debug msg=\"Getting user info\" email=", ("EMAIL", email()), " login=", R.choice(FIRST))
    elif c == 4:
        L("logger=context userId=0 orgId=0 uname= ")
        t()
        L("level=warn msg=\"Invalid API key\" error=\"invalid API key\" api_key=", ("TOKEN", tok("grafana")))
    elif c == 5:
        L("logger=api.keys ")
        t()
        L("level=warn msg=\"API key is deprecated; migrate to a service account token\" key=", ("TOKEN", tok("grafana_legacy")))
    elif c == 6:
        L("logger=infra.usagestats ")
        t()
        L("level=info msg=\"Usage stats are ready to report\"")
    elif c == 7:
        L("logger=server ")
        t()
        L("level=info msg=\"Starting Grafana\" version=", ("VERSION", R.choice(["10.2.3", "10.3.1"])), " commit=", ("HASH", hx(40)),
          " branch=HEAD compiled=", ("TIMESTAMP", ts("iso3z").replace(".", ",")[:-5] + "Z"))
    elif c == 8:
        L("logger=ngalert.notifier.webhook notifierUID=", rs(ALNUM, 9), " ")
        t()
        L("level=error msg=\"Failed to send webhook\" url=https://hooks.example.io/alert?token=", ("TOKEN", tok(R.choice(["bearer", "slack"]))), " status=401")
    elif c == 9:
        L("logger=plugin.grafana-image-renderer ")
        t()
        L("level=info msg=\"Renderer plugin started\" version=", ("VERSION", "3.9.1"))
    elif c == 12:
        L("logger=ldap ")
        t()
        L("level=debug msg=\"LDAP search\" base_dn=\"ou=people,dc=example,dc=com\" filter=\"(mail=", ("EMAIL", email()), ")\" control=",
          ("OID", "1.2.840.113556.1.4.319"), " traceID=", ("TRACE_ID", hx(32)))
    elif c == 13:
        L("logger=oauth.generic_oauth ")
        t()
        L("level=debug msg=\"Received id_token\" id_token=", ("JWT", jwt()))
    elif c == 14:
        L("logger=context userId=3 orgId=1 uname=alice ")
        t()
        L("level=error msg=\"Query data error\" datasourceUID=", rs(ALNUM, 9), " traceID=", ("TRACE_ID", hx(32)))
    elif c == 200:
        L("logger=context userId=1 orgId=1 uname=admin ")
        t()
        L("level=info msg=\"Request Completed\" method=GET path=/api/users/lookup status=200 remote_addr=", ("IP", ipa()),
          " time_ms=", str(R.randint(1, 90)), " duration=", str(R.randint(1, 90)), ".", str(R.randint(100, 999)), "ms size=", ("NUMBER", str(R.randint(100, 9000))),
          " referer=\"https://grafana.example.net/admin/users?query=", ("EMAIL", email_enc(email())), "\" handler=/api/users/lookup")
    else:
        L("logger=sqlstore ")
        t()
        L("level=info msg=\"Connecting to DB\" dbtype=postgres host=", ("IP", ip4()), ":", ("PORT", "5432"), " password=", ("KEY_NAME", "*********"))


def hmac_v():
    return "hmac-sha256:" + hx(64)


def s_vault_audit(L):
    L.json = True
    d = rand_dt()
    c = R.randrange(8)
    raw = c in (2, 4, 5) and R.random() < 0.55
    ipv = ipa()
    token = ("TOKEN", tok("vault")) if raw else ("HEX_ID", hmac_v())
    acc = ("HEX_ID", rs(ALNUM, 24)) if raw else ("HEX_ID", hmac_v())
    typ = "request" if c in (1, 3, 4) else "response"
    path, mount, op = R.choice([("secret/data/payments/db", "secret/", "read"), ("auth/approle/login", "auth/approle/", "update"),
                                ("database/creds/readonly", "database/", "read"), ("aws/creds/deploy", "aws/", "read"),
                                ("auth/jwt/login", "auth/jwt/", "update"), ("sys/leases/renew", "sys/", "update")])
    if c == 3:
        path, mount, op = "auth/approle/login", "auth/approle/", "update"
    if c == 4:
        path, mount, op = "auth/jwt/login", "auth/jwt/", "update"
    if c == 5:
        path, mount, op = "aws/creds/deploy", "aws/", "read"
    pki = c == 6 and R.random() < 0.6
    if pki:
        path, mount, op = "pki/issue/web-server", "pki/", "update"
    auth = O([("client_token", token), ("accessor", acc), ("display_name", R.choice(["approle", "jwt-github-actions", "token-ci", "oidc-alice"])),
              ("policies", ["default", R.choice(["payments", "ci", "readonly"])]),
              ("metadata", O([("role_name", R.choice(["payments", "ci", "deploy"]))])),
              ("entity_id", ("UUID", uuid())), ("token_type", "service"), ("token_ttl", ("raw", "KEY_NAME", str(R.choice([2764800, 3600, 86400])))),
              ("token_issue_time", ("TIMESTAMP", ts("isoz", d)))])
    data = None
    if c == 3:
        data = O([("role_id", ("HEX_ID", hmac_v())), ("secret_id", ("HEX_ID", hmac_v()))])
    elif c == 4:
        data = O([("jwt", ("JWT", jwt()) if raw else ("HEX_ID", hmac_v())), ("role", "github-actions")])
    req = O([("id", ("UUID", uuid())), ("client_id", ("HEX_ID", b64(R.randbytes(32)))), ("operation", op), ("mount_point", mount),
             ("mount_type", mount.split("/")[-2] if mount.startswith("auth") else mount.strip("/")),
             ("mount_accessor", ("HEX_ID", "%s_%s" % (mount.strip("/").split("/")[-1], hx(8)))),
             ("client_token", token if c not in (3, 4) else ""), ("client_token_accessor", acc if c not in (3, 4) else ""),
             ("namespace", O([("id", "root")])), ("path", path)]
            + ([("data", data)] if data is not None else [])
            + [("remote_address", ("IP", ipv)), ("remote_port", ("raw", "PORT", str(R.randint(1024, 65535))))])
    f = [("time", ("TIMESTAMP", ts("iso6z", d))), ("type", typ), ("auth", auth), ("request", req)]
    if typ == "response":
        if c == 0 or c == 7:
            rdata = O([("data", O([("password", ("HEX_ID", hmac_v())), ("username", ("HEX_ID", hmac_v()))])),
                       ("metadata", O([("created_time", ("TIMESTAMP", ts("iso6z"))), ("version", R.randint(1, 9))]))])
        elif c == 2 and not raw:
            rdata = O([("data", O([("password", ("HEX_ID", hmac_v())), ("username", "payments"), ("api_key", ("HEX_ID", hmac_v()))]))])
        elif c == 2:
            rdata = O([("data", O([("password", ("PASSWORD", pw("xml"))), ("username", "payments"),
                                   (R.choice(["api_key", "stripe_webhook_secret", "signing_key"]), ("SECRET", secret()))]))])
        elif c == 5 and not raw:
            rdata = O([("access_key", ("HEX_ID", hmac_v())), ("secret_key", ("HEX_ID", hmac_v())), ("security_token", None)])
        elif c == 5:
            rdata = O([("access_key", ("AWS_KEY", akia())), ("secret_key", ("SECRET", aws_secret())), ("security_token", None)])
        elif pki:
            rdata = O([("certificate", S("-----BEGIN CERTIFICATE-----\nMIID", ("HEX_ID", rs(B64C, 40)), "\n-----END CERTIFICATE-----")),
                       ("private_key", ("SECRET", pem_json())), ("private_key_type", ("KEY_NAME", "rsa")),
                       ("serial_number", ("HEX_ID", ":".join(hx(2) for _ in range(20))))])
        else:
            rdata = O([("username", "v-approle-readonly-" + rs(ALNUM, 20)), ("password", ("HEX_ID", hmac_v()))])
        f.append(("response", O([("mount_type", mount.strip("/")), ("data", rdata)]
                                + ([("lease_id", S(path, "/", ("HEX_ID", rs(ALNUM, 24))))] if c in (5, 6) and not pki else []))))
    if c == 7:
        f.append(("error", "1 error occurred:\n\t* permission denied\n\n"))
    jobj(L, O(f))


# ---- remote access and mail ------------------------------------------------------------------
def s_openssh_verbose(L):
    c = R.randrange(24)
    c = {18: 9, 19: 10, 20: 16, 21: 200, 22: 3, 23: 6}.get(c, c)        # extra weight for some variants
    ip = ipa()
    if c == 0:
        L("debug1: Connecting to ", ("IP", ip), " [", ("IP", ip), "] port ", ("PORT", "22"), ".")
    elif c == 1:
        L("debug1: Local version string SSH-2.0-OpenSSH_", ("VERSION", R.choice(["9.6", "9.5", "8.9p1"])))
    elif c == 2:
        L("debug1: Remote protocol version 2.0, remote software version OpenSSH_", ("VERSION", R.choice(["8.9p1", "9.2p1", "7.4"])), " ",
          R.choice(["Ubuntu-3ubuntu0.6", "Debian-2+deb12u2", ""]))
    elif c == 3:
        L("debug1: Server host key: ssh-ed25519 ", ("HASH", "SHA256:" + b64(R.randbytes(32)).rstrip("=")))
    elif c == 4:
        L("debug1: Host '", ("IP", ip), "' is known and matches the ED25519 host key.")
    elif c == 5:
        L("debug1: Authenticating to ", R.choice(["bastion.example.com", "git.example.org"]), ":", ("PORT", "22"), " as '", R.choice(USERS), "'")
    elif c == 6:
        L("debug1: Offering public key: /home/", R.choice(USERS), "/.ssh/id_ed25519 ED25519 ", ("HASH", "SHA256:" + b64(R.randbytes(32)).rstrip("=")), " explicit agent")
    elif c == 7:
        L("debug1: Authentications that can continue: publickey,password")
    elif c == 8:
        L("Authenticated to ", ("IP", ip4()), " ([", ("IP", ip4()), "]:", ("PORT", "22"), ") using \"", R.choice(["publickey", "password"]), "\".")
    elif c == 9:
        L("debug1: Sending env ", R.choice(["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "LANG", "GITHUB_TOKEN"]), " = ")
        k = L.parts[-2]
        if k == "AWS_SECRET_ACCESS_KEY":
            L(("SECRET", aws_secret()))
        elif k == "AWS_ACCESS_KEY_ID":
            L(("AWS_KEY", akia()))
        elif k == "GITHUB_TOKEN":
            L(("TOKEN", tok("github")))
        else:
            L("en_US.UTF-8")
    elif c == 10:
        L("debug1: Sending command: mysql -u root -p", ("PASSWORD", pw("plain")), " -e 'show databases'")
    elif c == 11:
        L("debug1: Connecting to ", ("IP", ip6()), " [", ("IP", ip6()), "] port ", ("PORT", "22"), ".")
    elif c == 12:
        L("ssh: connect to host ")
        e_ll_zone(L)
        L(" port ", ("PORT", "22"), ": Connection refused")
    elif c == 13:
        L("debug1: kex: algorithm: curve25519-sha256")
    elif c == 14:
        L("Warning: Permanently added '", ("IP", ip4()), "' (ED25519) to the list of known hosts.")
    elif c == 15:
        L("Transferred: sent ", ("NUMBER", str(R.randint(1000, 900000))), ", received ", ("NUMBER", str(R.randint(1000, 900000))), " bytes, in ",
          str(R.randint(0, 90)), ".", str(R.randint(0, 9)), " seconds")
    elif c == 16:
        L("debug1: Sending command: sshpass -p '", ("PASSWORD", pw("xml")), "' rsync -a /srv/backup/ backup@", ("IP", ip4()), ":/data/")
    elif c == 200:
        L("debug1: Connecting to ")
        e_ll_zone(L)
        L(" port ", ("PORT", "22"), ".")
    else:
        L("debug1: channel 0: new session [client-session] (inactive timeout: 0)")


def s_postfix(L):
    d = rand_dt()
    qid = hx(R.choice([10, 11]), upper=True)
    svc = R.choice(["smtpd", "smtp", "qmgr", "cleanup", "submission/smtpd"])
    L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["mx1", "mx2", "mail"]), " postfix/")
    c = R.randrange(11)
    if c == 0:
        L("smtpd[", ("NUMBER", str(R.randint(100, 99999))), "]: connect from unknown[", ("IP", ipa()), "]")
    elif c == 1:
        L("submission/smtpd[", ("NUMBER", str(R.randint(100, 99999))), "]: ", ("HEX_ID", qid), ": client=", R.choice(["mail.example.org", "unknown"]), "[",
          ("IP", ip4()), "], sasl_method=", R.choice(["PLAIN", "LOGIN"]), ", sasl_username=", ("EMAIL", email()))
    elif c == 2:
        L("qmgr[", ("NUMBER", str(R.randint(100, 99999))), "]: ", ("HEX_ID", qid), ": from=<", ("EMAIL", email()), ">, size=", ("NUMBER", str(R.randint(500, 900000))),
          ", nrcpt=1 (queue active)")
    elif c == 3:
        L("smtp[", ("NUMBER", str(R.randint(100, 99999))), "]: ", ("HEX_ID", qid), ": to=<", ("EMAIL", email()), ">, relay=", R.choice(["mx.example.net", "aspmx.l.google.com"]), "[",
          ("IP", ipa()), "]:", ("PORT", "25"), ", delay=", str(R.randint(0, 9)), ".", str(R.randint(0, 9)), ", delays=0.1/0/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 OK  ",
          ("TIMESTAMP", ts("epoch")), " ", ("HEX_ID", rs(LOWER + DIG, 12)), " - gsmtp)")
    elif c == 4:
        L("smtpd[", ("NUMBER", str(R.randint(100, 99999))), "]: warning: unknown[", ("IP", ip4()), "]: SASL LOGIN authentication failed: ",
          ("KEY_NAME", "UGFzc3dvcmQ6"))
    elif c == 5:
        L("smtpd[", ("NUMBER", str(R.randint(100, 99999))), "]: NOQUEUE: reject: RCPT from unknown[", ("IP", ip4()), "]: 554 5.7.1 <",
          ("EMAIL", email()), ">: Relay access denied; from=<", ("EMAIL", email()), "> to=<", ("EMAIL", email()), "> proto=ESMTP helo=<[", ("IP", ip4()), "]>")
    elif c == 6:
        L("smtpd[", ("NUMBER", str(R.randint(100, 99999))), "]: lost connection after AUTH from unknown[", ("IP", ip6()), "]")
    elif c == 7:
        L("cleanup[", ("NUMBER", str(R.randint(100, 99999))), "]: ", ("HEX_ID", qid), ": warning: header Subject: ",
          R.choice(["Ihre Rechnung für Januar", "Votre facture n°4471 – échéance", "ご注文の確認", "Your invoice for card ending 4242", "Счёт на оплату"]), " from unknown[", ("IP", ip4()), "]; from=<", ("EMAIL", email()), "> to=<", ("EMAIL", email()), ">")
    elif c == 8:
        L("smtp[", ("NUMBER", str(R.randint(100, 99999))), "]: ", ("HEX_ID", qid), ": to=<", ("EMAIL", email()), ">, relay=none, delay=30, status=deferred (connect to mx.example.net[",
          ("IP", ip4()), "]:", ("PORT", "25"), ": Connection timed out)")
    elif c == 9:
        L("smtp[", ("NUMBER", str(R.randint(100, 99999))), "]: warning: SASL authentication failure: Password verification failed for ", ("EMAIL", email()),
          " (password=", ("PASSWORD", pw("plain")), ")")
    else:
        L("anvil[", ("NUMBER", str(R.randint(100, 99999))), "]: statistics: max connection rate 12/60s for (smtp:", ("IP", ip4()), ") at ", ("TIMESTAMP", ts("syslog")))


# ---- network devices and packet filters ------------------------------------------------------
def s_iptables(L):
    d = rand_dt()
    c = R.randrange(6)
    if c <= 3:
        L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["fw01", "gw", "web-01"]), " kernel: [", ("TIMESTAMP", "%d.%06d" % (R.randint(100, 9999999), R.randint(0, 999999))), "] ")
        for it in fw_items(R.choice(["IPTABLES-DROP: ", "iptables-in: ", "FW-REJECT ", "DROP-SSH: "])):
            L(it)
    elif c == 4:
        L("-A INPUT -s ", ("IP", ip4()), "/", str(R.choice([32, 24, 16])), " -p tcp -m tcp --dport ", ("PORT", str(R.choice(COMMON_PORTS))), " -j ",
          R.choice(["DROP", "ACCEPT", "REJECT --reject-with icmp-port-unreachable"]))
    else:
        L("-A FORWARD -i br0 -m mac --mac-source ", ("MAC", mac(R.choice(["COLON", "colon"]))), " -j ", R.choice(["ACCEPT", "DROP"]))


def s_nftables(L):
    d = rand_dt()
    c = R.randrange(8)
    if c <= 2:
        L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["fw01", "router"]), " kernel: ")
        for it in fw_items(R.choice(["nft-drop-in: ", "nft ssh: ", "[nftables] Inbound Denied: "])):
            L(it)
    elif c == 3:
        L("\t\tip saddr ", ("IP", ip4()), "/", str(R.choice([32, 24])), " tcp dport ", ("PORT", str(R.choice([22, 3389, 5432]))), " counter packets ",
          str(R.randint(0, 99999)), " bytes ", ("NUMBER", str(R.randint(0, 9999999))), " drop")
    elif c == 4:
        L("\t\tip6 saddr ", ("IP", ip6()), " accept")
    elif c == 5:
        L("\t\tether saddr ", ("MAC", mac("colon")), " drop")
    elif c == 6:
        L("\t\telements = { ", ("IP", ip4()), ", ", ("IP", ip4()), ", ", ("IP", ip4()), " }")
    else:
        L("add rule inet filter input ip saddr ", ("IP", ip4()), " ", R.choice(["drop", "counter drop", "log prefix \"blocked: \" drop"]), " # handle ",
          str(R.randint(1, 999)))


def s_dnsmasq_dhcp(L):
    d = rand_dt()
    L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["gw", "router", "pihole"]), " dnsmasq")
    c = R.randrange(9)
    m = mac(R.choice(["colon", "colon", "colon", "COLON"]))
    iface = R.choice(["br0", "eth1", "lan"])
    if c in (0, 1, 2, 3):
        L("-dhcp[", ("NUMBER", str(R.randint(100, 9999))), "]: ")
        if R.random() < 0.5:
            L(("NUMBER", str(R.randint(100000, 9999999999))), " ")
        step = ["DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPACK"][c]
        L(step, "(", iface, ") ")
        if c != 0:
            L(("IP", ip4()), " ")
        L(("MAC", m))
        if c == 3:
            L(" ", R.choice(["Alices-iPhone", "laptop-01", "printer", "zoës-macbook", "android-5f3c2a1b"]))
    elif c == 4:
        L("[", ("NUMBER", str(R.randint(100, 9999))), "]: query[", R.choice(["A", "AAAA", "HTTPS"]), "] ", R.choice(AUTHORITIES), " from ", ("IP", ip4()))
    elif c == 5:
        L("[", ("NUMBER", str(R.randint(100, 9999))), "]: reply ", R.choice(AUTHORITIES), " is ", ("IP", ipa()))
    elif c == 6:
        L("-dhcp[", ("NUMBER", str(R.randint(100, 9999))), "]: ", ("NUMBER", str(R.randint(100000, 9999999999))), " client provides name: ",
          R.choice(["laptop-01", "DESKTOP-7H2K9", "zoës-macbook"]))
    elif c == 7:
        L("-dhcp[", ("NUMBER", str(R.randint(100, 9999))), "]: DHCPRELEASE(", iface, ") ", ("IP", ip4()), " ", ("MAC", m))
    else:
        L("[", ("NUMBER", str(R.randint(100, 9999))), "]: started, version ", ("VERSION", R.choice(["2.89", "2.90"])), " cachesize 150")


def s_isc_dhcpd(L):
    d = rand_dt()
    c = R.randrange(10)
    c = {9: 8}.get(c, c)        # extra weight for some variants
    m = mac("colon")
    if c <= 5:
        L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["dhcp01", "core-dhcp"]), " dhcpd[", ("NUMBER", str(R.randint(100, 9999))), "]: ")
        iface = R.choice(["eth1", "ens192", "vlan20"])
        if c == 0:
            L("DHCPDISCOVER from ", ("MAC", m), " via ", iface)
        elif c == 1:
            L("DHCPOFFER on ", ("IP", ip4()), " to ", ("MAC", m), " (", R.choice(["host01", "WS-042", "alice-laptop", "jürgens-pc", "zoës-ipad"]), ") via ", iface)
        elif c == 2:
            L("DHCPREQUEST for ", ("IP", ip4()), " (", ("IP", ip4()), ") from ", ("MAC", m), " via ", iface)
        elif c == 3:
            L("DHCPACK on ", ("IP", ip4()), " to ", ("MAC", m), " via ", ("IP", ip4()))
        elif c == 4:
            L("DHCPDISCOVER from ", ("MAC", m), " via ", iface, ": network ", ("IP", ip4()), "/24: no free leases")
        else:
            L("uid lease ", ("IP", ip4()), " for client ", ("MAC", m), " is duplicate on ", ("IP", ip4()), "/24")
    elif c == 6:
        L("  hardware ethernet ", ("MAC", m), ";")
    elif c == 7:
        L("  starts ", ("TIMESTAMP", ts("dhcpd_lease")), ";")
    else:
        L("key ", R.choice(["omapi_key", "\"ddns-key\"", "rndc-key"]), " { algorithm ", R.choice(["hmac-md5", "hmac-sha256"]), "; secret \"",
          ("SECRET", b64(R.randbytes(R.choice([16, 32])))), "\"; };")


def s_cisco_ios(L):
    d = rand_dt()
    if R.random() < 0.5:
        L(("NUMBER", "%06d" % R.randint(1, 999999)), ": *", ("TIMESTAMP", ts("syslog_ms", d)), " UTC: ")
    else:
        L(("TIMESTAMP", ts("syslog", d)), " ", R.choice(["core-sw-01", "edge-rtr-2", "acc-sw-14"]), " ", str(R.randint(1, 99999)), ": ",
          ("TIMESTAMP", ts("syslog_ms", d)), ": ")
    c = R.randrange(18)
    c = {13: 6, 14: 7, 15: 0, 16: 8, 17: 11}.get(c, c)        # extra weight for some variants
    m = mac("cisco")
    if c == 0:
        L("%SW_MATM-4-MACFLAP_NOTIF: Host ", ("MAC", m), " in vlan ", str(R.randint(1, 4000)), " is flapping between port Gi1/0/", str(R.randint(1, 48)),
          " and port Gi1/0/", str(R.randint(1, 48)))
    elif c == 1:
        L("%SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: ", R.choice(["admin", "netops", "alice"]), "] [Source: ", ("IP", ip4()), "] [localport: ",
          ("PORT", "22"), "] at ", ("TIMESTAMP", ts("cisco_utc", d)))
    elif c == 2:
        L("%SEC_LOGIN-4-LOGIN_FAILED: Login failed [user: ", R.choice(["admin", "cisco", "root"]), "] [Source: ", ("IP", ip4()), "] [localport: ",
          ("PORT", "22"), "] [Reason: Login Authentication Failed] at ", ("TIMESTAMP", ts("cisco_utc", d)))
    elif c == 3:
        L("%LINK-3-UPDOWN: Interface GigabitEthernet1/0/", str(R.randint(1, 48)), ", changed state to ", R.choice(["up", "down"]))
    elif c == 4:
        L("%DHCP_SNOOPING-5-DHCP_SNOOPING_MATCH_MAC_FAIL: DHCP_SNOOPING drop message because the chaddr doesn't match source mac, message type: DHCPDISCOVER, chaddr: ",
          ("MAC", m), ", MAC sa: ", ("MAC", mac("cisco")))
    elif c == 5:
        L("%SYS-5-CONFIG_I: Configured from console by ", R.choice(["admin", "netops"]), " on vty0 (", ("IP", ip4()), ")")
    elif c == 6:
        L("%PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:username ", R.choice(["backup", "netops"]), " privilege 15 secret 0 ", ("PASSWORD", pw("ascii")))
    elif c == 7:
        L("%PARSER-5-CFGLOG_LOGGEDCMD: User:admin  logged command:snmp-server community ", ("PASSWORD", pw("ascii")), " RO")
    elif c == 8:
        L("%IP-4-DUPADDR: Duplicate address ", ("IP", ip4()), " on Vlan", str(R.randint(1, 400)), ", sourced by ", ("MAC", m))
    elif c == 9:
        L("%SYS-6-LOGGINGHOST_STARTSTOP: Logging to host ", ("IP", ip4()), " port ", ("PORT", "514"), " started - CLI initiated")
    elif c == 10:
        L("%SSH-5-SSH2_USERAUTH: User '", R.choice(["admin", "netops"]), "' authentication for SSH2 Session from ", ("IP", ip4()),
          " (tty = 0) using crypto cipher 'aes256-ctr', hmac 'hmac-sha2-256' Succeeded")
    elif c == 11:
        L("%AUTHMGR-5-START: Starting 'dot1x' for client (", ("MAC", m), ") on Interface Gi1/0/", str(R.randint(1, 48)), " AuditSessionID ",
          ("HEX_ID", hx(24, upper=True)))
    else:
        L("%SYS-5-RESTART: System restarted -- Cisco IOS Software, C3750E Software (C3750E-UNIVERSALK9-M), Version ", ("VERSION", R.choice(["15.2(4)E10", "15.2(7)E8"])),
          ", RELEASE SOFTWARE (fc2)")


def s_juniper(L):
    d = rand_dt()
    c = R.randrange(15)
    c = {12: 0, 13: 0, 14: 0}.get(c, c)        # extra weight for some variants
    if c in (0, 10, 11):
        L("<14>1 ", ("TIMESTAMP", ts("iso3z", d)), " srx01 RT_FLOW - RT_FLOW_SESSION_DENY [", ("OID", "junos@2636.1.1.1.2.40"), " source-address=\"",
          ("IP", ipa()), "\" source-port=\"", ("PORT", str(R.randint(1024, 65535))), "\" destination-address=\"", ("IP", ip4()), "\" destination-port=\"",
          ("PORT", str(R.choice([22, 443, 3389]))), "\" connection-tag=\"0\" service-name=\"junos-ssh\" protocol-id=\"6\" policy-name=\"deny-all\" source-zone-name=\"untrust\" destination-zone-name=\"trust\"]")
        return
    L(("TIMESTAMP", ts("syslog", d)), "  ", R.choice(["srx01", "ex4300-a", "mx-edge"]), " ")
    if c == 1:
        L("RT_FLOW: RT_FLOW_SESSION_CREATE: session created ", ("IP", ip4()), "/", ("PORT", str(R.randint(1024, 65535))), "->", ("IP", ip4()), "/",
          ("PORT", "443"), " 0x0 junos-https ", ("IP", ip4()), "/", ("PORT", str(R.randint(1024, 65535))), "->", ("IP", ip4()), "/", ("PORT", "443"),
          " 0x0 source rule nat-out N/A N/A 6 trust-to-untrust trust untrust ", ("NUMBER", str(R.randint(1000, 999999))), " N/A(N/A) ge-0/0/1.0 UNKNOWN UNKNOWN UNKNOWN N/A N/A -1")
    elif c == 2:
        L("sshd[", ("NUMBER", str(R.randint(100, 99999))), "]: Accepted password for ", R.choice(["admin", "netops"]), " from ", ("IP", ipa()), " port ",
          ("PORT", str(R.randint(1024, 65535))), " ssh2")
    elif c == 3:
        L("mgd[", ("NUMBER", str(R.randint(100, 99999))), "]: UI_COMMIT: User '", R.choice(["admin", "netops"]), "' requested 'commit' operation (comment: none)")
    elif c == 4:
        L("mgd[", ("NUMBER", str(R.randint(100, 99999))), "]: UI_CMDLINE_READ_LINE: User 'admin', command 'set snmp community ", ("PASSWORD", pw("ascii")),
          " authorization read-only '")
    elif c == 5:
        L("l2ald[", ("NUMBER", str(R.randint(100, 9999))), "]: L2ALD_MAC_LIMIT_REACHED_IF: Limit on learned MAC addresses reached for ge-0/0/", str(R.randint(0, 47)),
          ".0; current count is ", str(R.randint(2, 50)), " (MAC ", ("MAC", mac("colon")), ")")
    elif c == 6:
        L("eswd[", ("NUMBER", str(R.randint(100, 9999))), "]: ESWD_MAC_MOVE: MAC ", ("MAC", mac("colon")), " moved from ge-0/0/1.0 to ge-0/0/2.0 in vlan default")
    elif c == 7:
        L("mgd[", ("NUMBER", str(R.randint(100, 99999))), "]: UI_LOGIN_EVENT: User 'admin' login, class 'super-user' [", str(R.randint(100, 99999)),
          "], ssh-connection '", ("IP", ip4()), " ", ("PORT", str(R.randint(1024, 65535))), " ", ("IP", ip4()), " ", ("PORT", "22"), "', client-mode 'cli'")
    elif c == 8:
        L("mgd[", ("NUMBER", str(R.randint(100, 99999))), "]: UI_CMDLINE_READ_LINE: User 'admin', command 'show version' -- JUNOS ", ("VERSION", R.choice(["21.4R3-S5.4", "22.4R2.8"])))
    else:
        L("snmpd[", ("NUMBER", str(R.randint(100, 9999))), "]: SNMPD_AUTH_FAILURE: nsa_log_community: unauthorized SNMP community from ", ("IP", ip4()),
          " to unknown community name (", ("PASSWORD", pw("ascii")), ")")


SNMP_SYMBOLIC = ["IF-MIB::ifDescr", "IF-MIB::ifOperStatus", "IF-MIB::ifSpeed", "IF-MIB::ifInOctets",
                 "IF-MIB::ifAlias", "IF-MIB::ifHCOutOctets", "SNMPv2-MIB::sysDescr", "SNMPv2-MIB::sysName",
                 "SNMPv2-MIB::sysContact", "HOST-RESOURCES-MIB::hrSWRunParameters",
                 "ENTITY-MIB::entPhysicalSoftwareRev", "IF-MIB::ifPhysAddress"]


def s_snmpwalk(L):
    c = R.randrange(31)
    c = {18: 1, 19: 14, 20: 15, 21: 17, 22: 1, 23: 1, 24: 17, 25: 1, 26: 14, 27: 15, 28: 17, 29: 1, 30: 17}.get(c, c)        # extra weight for some variants
    style = R.choice(["sym", "num", "iso"])
    idx = str(R.choice([1, 2, 3, 10101, 10102, 1001, 0]))
    def oid(sym_name, num):
        if style == "sym":
            L(("OID", "%s.%s" % (sym_name, idx)))
        elif style == "num":
            L(("OID", ".%s.%s" % (num, idx)))
        else:
            L(("OID", "iso.%s.%s" % (num[2:], idx)))
    if c == 0:
        oid("SNMPv2-MIB::sysDescr", "1.3.6.1.2.1.1.1")
        L(" = STRING: Cisco IOS Software, C3750E Software, Version ", ("VERSION", "15.2(4)E10"), ", RELEASE SOFTWARE (fc2)")
    elif c == 1:
        oid("SNMPv2-MIB::sysObjectID", "1.3.6.1.2.1.1.2")
        L(" = OID: ", ("OID", R.choice(["SNMPv2-SMI::enterprises.9.1.1208", ".1.3.6.1.4.1.2636.1.1.1.2.40", "iso.3.6.1.4.1.8072.3.2.10"])))
    elif c == 2:
        oid("SNMPv2-MIB::sysContact", "1.3.6.1.2.1.1.4")
        L(" = STRING: ", ("EMAIL", email()))
    elif c == 3:
        oid("IF-MIB::ifDescr", "1.3.6.1.2.1.2.2.1.2")
        L(" = STRING: ", R.choice(["GigabitEthernet1/0/1", "eth0", "Vlan10", "ge-0/0/0"]))
    elif c == 4:
        oid("IF-MIB::ifPhysAddress", "1.3.6.1.2.1.2.2.1.6")
        L(" = STRING: ", ("MAC", mac("colon", ok=lambda b: all(x >= 0x10 for x in b))))
    elif c == 5:
        oid("IF-MIB::ifSpeed", "1.3.6.1.2.1.2.2.1.5")
        L(" = Gauge32: ", ("NUMBER", str(R.choice([1000000000, 100000000, 4294967295]))))
    elif c == 6:
        oid("IF-MIB::ifInOctets", "1.3.6.1.2.1.2.2.1.10")
        L(" = Counter32: ", ("NUMBER", str(R.randint(0, 4294967295))))
    elif c == 7:
        oid("HOST-RESOURCES-MIB::hrSWRunParameters", "1.3.6.1.2.1.25.4.2.1.5")
        L(" = STRING: \"", R.choice(["--requirepass ", "-p", "--password="]))
        L(("PASSWORD", pw("plain")), "\"")
    elif c == 8:
        oid("IF-MIB::ifAlias", "1.3.6.1.2.1.31.1.1.1.18")
        L(" = STRING: uplink to ", ("IP", ip4()))
    elif c == 9:
        L(("OID", "DISMAN-EVENT-MIB::sysUpTimeInstance"), " = Timeticks: (", ("NUMBER", str(R.randint(1000, 999999999))), ") ",
          str(R.randint(0, 300)), " days, ", ("TIMESTAMP", "%d:%02d:%02d.%02d" % (R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 99))))
    elif c == 10:
        L("$ snmpwalk -v2c -c ", ("PASSWORD", pw("ascii")), " ", ("IP", ip4()), " ", ("OID", R.choice(["IF-MIB::ifTable", ".1.3.6.1.2.1.2.2", "1.3.6.1.2.1.1"])))
    elif c == 11:
        L("$ snmpwalk -v3 -l authPriv -u ", R.choice(["netmon", "admin"]), " -a SHA -A ", ("PASSWORD", pw("ascii")), " -x AES -X ", ("PASSWORD", pw("ascii")), " ",
          ("IP", ip4()), " ", ("OID", R.choice(["system", "SNMPv2-MIB::system", ".1.3.6.1.2.1.1"])))
    elif c == 12:
        oid("ENTITY-MIB::entPhysicalSoftwareRev", "1.3.6.1.2.1.47.1.1.1.1.10")
        L(" = STRING: ", ("VERSION", R.choice(["15.2(4)E10", "21.4R3-S5.4", "7.0.3.I7.9", "17.9.4a"])))
    elif c in (14, 15):
        oid("SNMPv2-MIB::sysORID", "1.3.6.1.2.1.1.9.1.2")
        L(" = OID: ", ("OID", R.choice(["SNMP-MPD-MIB::snmpMPDCompliance", ".1.3.6.1.6.3.11.3.1.1", "iso.3.6.1.6.3.1", "SNMPv2-MIB::snmpMIB",
                                         "1.3.6.1.6.3.16.2.2.1", "IP-MIB::ip", "UDP-MIB::udpMIB"])))
    elif c == 16:
        oid("HOST-RESOURCES-MIB::hrSWRunPath", "1.3.6.1.2.1.25.4.2.1.4")
        L(" = STRING: \"/usr/sbin/snmpd\"")
    elif c == 17:
        L(("OID", R.choice(["SNMPv2-MIB::snmpTrapOID.0", ".1.3.6.1.6.3.1.1.4.1.0"])), " = OID: ", ("OID", R.choice(["IF-MIB::linkDown", ".1.3.6.1.6.3.1.1.5.3", "iso.3.6.1.6.3.1.1.5.4"])))
    else:
        oid("IF-MIB::ifOperStatus", "1.3.6.1.2.1.2.2.1.8")
        L(" = INTEGER: ", R.choice(["up(1)", "down(2)"]))


# ---- message brokers and coordination ---------------------------------------------------------
def s_kafka(L):
    d = rand_dt()
    c = R.randrange(23)
    c = {16: 13, 17: 12, 18: 5, 19: 12, 20: 13, 21: 13, 22: 13}.get(c, c)        # extra weight for some variants
    if c in (3, 4, 5, 6, 13, 14, 15):                              # "KafkaConfig values:" / ConsumerConfig dump lines
        if c == 3:
            L("\tsasl.jaas.config = ", ("KEY_NAME", "[hidden]"))
        elif c == 4:
            L("\t", R.choice(["ssl.keystore.password", "ssl.truststore.password", "ssl.key.password"]), " = ", ("KEY_NAME", "[hidden]"))
        elif c == 5:
            L("\tsasl.jaas.config = org.apache.kafka.common.security.", R.choice(["scram.ScramLoginModule", "plain.PlainLoginModule"]),
              " required username=\"", R.choice(["svc-orders", "connect", "admin"]), "\" password=\"", ("PASSWORD", pw("xml")), "\";")
        elif c == 13:
            L("\tsasl.oauthbearer.token = ", ("JWT", jwt()))
        elif c == 14:
            L("\tssl.keystore.location = /etc/kafka/secrets/kafka.keystore.jks  # key ", ("OID", "1.2.840.113549.1.1.1"), " (rsaEncryption)")
        elif c == 15:
            L("\tssl.endpoint.identification.algorithm = https")
        else:
            L("\tadvertised.listeners = SASL_SSL://", ("IP", ip4()), ":", ("PORT", "9093"), ",INTERNAL://", ("PORT", "kafka-%d.kafka-headless.data.svc.cluster.local:9092" % R.randint(0, 2)))
        return
    L("[", ("TIMESTAMP", ts("log4j", d)), "] ", R.choice(["INFO", "WARN", "ERROR"]), " ")
    if c == 0:
        L("[KafkaServer id=", str(R.randint(0, 5)), "] started (", ("CODE_PATH", "kafka.server.KafkaServer"), ")")
    elif c == 1:
        L("[Consumer clientId=consumer-orders-1, groupId=orders] Connection to node -1 (/", ("IP", ip4()), ":", ("PORT", "9093"),
          ") failed authentication due to: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 (",
          ("CODE_PATH", "org.apache.kafka.clients.NetworkClient"), ")")
    elif c == 2:
        L("Cluster ID = ", ("HEX_ID", rs(B64U, 22)), " (", ("CODE_PATH", "kafka.server.KafkaServer"), ")")
    elif c == 7:
        L("[Log partition=orders-", str(R.randint(0, 11)), ", dir=/var/lib/kafka/data] Loading producer state till offset ", ("NUMBER", str(R.randint(0, 99999999))),
          " with message format version 2 (", ("CODE_PATH", "kafka.log.UnifiedLog$"), ")")
    elif c == 8:
        L("[GroupCoordinator ", str(R.randint(0, 5)), "]: Member consumer-orders-1-", ("UUID", uuid()), " in group orders has failed, removing it from the group (",
          ("CODE_PATH", "kafka.coordinator.group.GroupCoordinator"), ")")
    elif c == 9:
        L("Kafka version: ", ("VERSION", R.choice(["3.6.1", "3.5.2", "7.5.3-ccs"])), " (", ("CODE_PATH", "org.apache.kafka.common.utils.AppInfoParser"), ")")
    elif c == 10:
        L("Kafka commitId: ", ("HASH", hx(16)), " (", ("CODE_PATH", "org.apache.kafka.common.utils.AppInfoParser"), ")")
    elif c == 11:
        L("[SocketServer listenerType=ZK_BROKER, nodeId=", str(R.randint(0, 5)), "] Failed authentication with /", ("IP", ipa()),
          " (channelId=", ("IP", ip4()), ":", ("PORT", "9093"), "-", ("IP", ip4()), ":", ("PORT", str(R.randint(1024, 65535))), "-", str(R.randint(0, 99)),
          ") (Authentication failed during authentication due to invalid credentials with SASL mechanism PLAIN) (", ("CODE_PATH", "org.apache.kafka.common.network.Selector"), ")")
    else:
        L("[Producer clientId=producer-1] Failed to send record to topic payments.events: {\"email\":\"", ("EMAIL", email()), "\",\"pan\":\"",
          ("CREDIT_CARD", card()), "\",\"token\":\"", ("TOKEN", tok("stripe")), "\"} (", ("CODE_PATH", "org.apache.kafka.clients.producer.internals.Sender"), ")")


def s_zookeeper(L):
    d = rand_dt()
    c = R.randrange(10)
    L(("TIMESTAMP", ts("log4j", d)), " [myid:", str(R.randint(1, 3)), "] - ", R.choice(["INFO ", "WARN ", "ERROR"]), " [")
    sid = "0x" + R.choice(["1", "2", "3"]) + "0000" + hx(9)
    if c == 0:
        L("NIOWorkerThread-", str(R.randint(1, 8)), ":", ("CODE_PATH", "o.a.z.s.ZooKeeperServer@1026"), "] - Established session ", ("HEX_ID", sid),
          " with negotiated timeout ", str(R.choice([30000, 40000, 6000])), " for client /", ("IP", ip4()), ":", ("PORT", str(R.randint(1024, 65535))))
    elif c == 1:
        L("main:", ("CODE_PATH", "o.a.z.s.q.QuorumPeerConfig@174"), "] - Reading configuration from: /conf/zoo.cfg")
    elif c == 2:
        L("NIOWorkerThread-", str(R.randint(1, 8)), ":", ("CODE_PATH", "o.a.z.s.NIOServerCnxn@380"), "] - Unable to read additional data from client sessionid ",
          ("HEX_ID", sid), ", likely client has closed socket")
    elif c == 3:
        L("ProcessThread(sid:", str(R.randint(1, 3)), " cport:2181)::", ("CODE_PATH", "o.a.z.s.PrepRequestProcessor@939"), "] - Got user-level KeeperException when processing sessionid:",
          ("HEX_ID", sid), " type:create cxid:", ("HEX_ID", "0x" + hx(2)), " zxid:", ("HEX_ID", "0x" + hx(9)), " txntype:-1 reqpath:n/a Error Path:/brokers/ids/", str(R.randint(0, 5)),
          " Error:KeeperErrorCode = NodeExists")
    elif c == 4:
        L("NIOWorkerThread-1:", ("CODE_PATH", "o.a.z.s.a.SaslServerCallbackHandler@120"), "] - Successfully authenticated client: authenticationID=",
          R.choice(["kafka", "super"]), ";  authorizationID=", R.choice(["kafka", "super"]), ".")
    elif c == 5:
        L("main:", ("CODE_PATH", "o.a.z.Environment@98"), "] - Server environment:zookeeper.version=", ("VERSION", "3.8.3"), "-", ("HASH", hx(40)),
          ", built on ", ("TIMESTAMP", ts("plain")[:16]), " UTC")
    elif c == 6:
        L("main:", ("CODE_PATH", "o.a.z.Environment@98"), "] - Server environment:java.version=", ("VERSION", "17.0.9"))
    elif c == 7:
        L("main:", ("CODE_PATH", "o.a.z.s.ServerCnxnFactory@309"), "] - Server { org.apache.zookeeper.server.auth.DigestLoginModule required user_super=\"",
          ("PASSWORD", pw("xml")), "\" user_kafka=\"", ("PASSWORD", pw("xml")), "\"; };")
    elif c == 8:
        L("main:", ("CODE_PATH", "o.a.z.s.persistence.FileSnap@85"), "] - Reading snapshot /data/version-2/snapshot.", ("HEX_ID", hx(9)),
          " (digest ", ("NUMBER", str(R.randint(10**9, 10**12))), ")")
    else:
        L("QuorumConnectionThread-[myid=1]-", str(R.randint(1, 9)), ":", ("CODE_PATH", "o.a.z.s.q.QuorumCnxManager@401"), "] - Cannot open channel to ",
          str(R.randint(2, 3)), " at election address zk-", str(R.randint(1, 2)), ".zk-headless.data.svc.cluster.local/", ("IP", ip4()), ":", ("PORT", "3888"))


def s_rabbitmq(L):
    d = rand_dt()
    epid = lambda: ("NUMBER", "<0.%d.0>" % R.randint(100, 99999))
    L(("TIMESTAMP", ts("space6off", d)), " [", R.choice(["info", "info", "warning", "error", "notice"]), "] ", epid(), " ")
    c = R.randrange(11)
    src = lambda: (L("("), e_ipport(L, v6ok=False, port=R.randint(1024, 65535)), L(" -> "), L(("IP", ip4()), ":", ("PORT", "5672")), L(")"))
    if c == 0:
        L("accepting AMQP connection ")
        L(epid(), " ")
        src()
    elif c == 1:
        L("connection ", epid(), " ")
        src()
        L(": user '", R.choice(["orders", "billing", "guest"]), "' authenticated and granted access to vhost '/'")
    elif c == 2:
        L("Error on AMQP connection ", epid(), " (")
        e_ipport(L, v6ok=False, port=R.randint(1024, 65535))
        L(" -> ", ("IP", ip4()), ":", ("PORT", "5672"), ", state: starting): PLAIN login refused: user '", R.choice(["guest", "admin", "orders"]), "' - invalid credentials")
    elif c == 3:
        L("Starting RabbitMQ ", ("VERSION", R.choice(["3.12.10", "3.13.0"])), " on Erlang ", ("VERSION", "26.1.2"), " [jit]")
    elif c == 4:
        L(" node           : ", ("K8S_NAME", "rabbit@rabbitmq-%d.rabbitmq-nodes.messaging" % R.randint(0, 2)))
    elif c == 5:
        L("Management plugin: HTTP (non-TLS) listener started on port ", ("PORT", "15672"))
    elif c == 6:
        L(" cookie hash    : ", ("HASH", b64(R.randbytes(16))))
    elif c == 7:
        L("Shovel 'orders-to-dr' connecting to amqps://shovel:", ("PASSWORD", url_user_pw(pw())), "@",
          R.choice(["dr-rabbit.example.com", ("IP", ip4())]), ":", ("PORT", "5671"), "/%2F")
    elif c == 8:
        L("HTTP access denied: user '", R.choice(["admin", "monitoring"]), "' - invalid credentials")
    elif c == 9:
        L("closing AMQP connection ", epid(), " ")
        src()
        L(", vhost: '/', user: '", R.choice(["orders", "billing"]), "')")
    else:
        L("Setting permissions for user '", R.choice(["orders", "billing"]), "' in vhost '/'; definitions file checksum ", ("HASH", hx(64)))


# ==============================================================================================
# Driver, self-checks, statistics
# ==============================================================================================
SOURCES = [
    ("haproxy", s_haproxy), ("envoy", s_envoy), ("envoy_json", s_envoy_json),
    ("apache_error", s_apache_error), ("caddy", s_caddy), ("traefik", s_traefik),
    ("mysql_general", s_mysql_general), ("mysql_slow", s_mysql_slow), ("mysql_error", s_mysql_error),
    ("mongodb", s_mongodb), ("redis", s_redis), ("elasticsearch", s_elasticsearch),
    ("journald_json", s_journald_json), ("journald_short_iso", s_journald_short_iso),
    ("cloudtrail", s_cloudtrail), ("gcp_audit", s_gcp_audit), ("azure_activity", s_azure_activity),
    ("windows_event_xml", s_windows_event_xml), ("dockerd", s_dockerd), ("containerd_cri", s_containerd_cri),
    ("terraform", s_terraform), ("ansible", s_ansible), ("helm", s_helm),
    ("github_actions", s_github_actions), ("jenkins", s_jenkins),
    ("python_traceback", s_python_traceback), ("nodejs_stack", s_nodejs_stack), ("php_error", s_php_error),
    ("spring_boot", s_spring_boot), ("prometheus", s_prometheus), ("alertmanager", s_alertmanager),
    ("grafana", s_grafana), ("vault_audit", s_vault_audit), ("openssh_verbose", s_openssh_verbose),
    ("postfix", s_postfix), ("iptables", s_iptables), ("nftables", s_nftables),
    ("dnsmasq_dhcp", s_dnsmasq_dhcp), ("isc_dhcpd", s_isc_dhcpd), ("cisco_ios", s_cisco_ios),
    ("juniper", s_juniper), ("snmpwalk", s_snmpwalk), ("kafka", s_kafka), ("zookeeper", s_zookeeper),
    ("rabbitmq", s_rabbitmq),
]

# Safety-net patterns: anything they find must lie on a labelled span.
RE_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RE_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
RE_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
RE_JWT = re.compile(r"eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+")
RE_AWS = re.compile(r"(?:AKIA|ASIA)[A-Z2-7]{16}")
RE_MAC = re.compile(r"(?<![0-9A-Fa-f:-])[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?![0-9A-Fa-f])"
                    r"|(?<![0-9a-f.])[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}(?![0-9a-f.])")
RE_TOKEN = re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{20}|github_pat_|glpat-|xox[bpa]-|xapp-|[sr]k_(?:live|test)_"
                      r"|npm_[A-Za-z0-9]{20}|pypi-AgEI|ya29\.|AIza[\w-]{20}|hf_[A-Za-z]{20}|SG\.[\w-]{10}"
                      r"|shp(?:at|ca|pa|ss)_|do[por]_v1_|sk-[A-Za-z0-9-]{20}|hvs\.|glsa_)")
RE_CARDLIKE = re.compile(r"(?<![\d.])(?:\d{4}([ -])\d{4}\1\d{4}\1\d{4}|\d{4}([ -])\d{6}\2\d{4,5})(?![\d.])")
RE_LONGDIGITS = re.compile(r"(?<!\d)\d{13,19}(?!\d)")


class Retry(Exception):
    pass


def check_line(L, source):
    text = L.text()
    raw = text.encode("utf-8")
    if len(raw) != L.n:
        raise AssertionError("byte length drift")
    if "\n" in text or "\r" in text:
        raise AssertionError("%s: not one physical line: %r" % (source, text))
    spans = sorted(L.spans)
    for s, e, kind, value in spans:
        if raw[s:e] != value.encode("utf-8"):
            raise AssertionError("%s: span bytes differ from value %r" % (source, value))
        if kind == "CREDIT_CARD":
            digits = re.sub(r"[ -]", "", value)
            if not (digits.isdigit() and 13 <= len(digits) <= 19 and luhn_ok(digits)):
                raise AssertionError("bad card %r" % value)
    for a, b in zip(spans, spans[1:]):
        if b[0] < a[1]:
            raise AssertionError("%s: overlapping spans %r %r in %r" % (source, a, b, text))
    if L.json:
        try:
            json.loads(text)
        except ValueError as exc:
            raise AssertionError("%s: invalid JSON line (%s): %s" % (source, exc, text))

    def byte_range(m):
        return len(text[:m.start()].encode("utf-8")), len(text[:m.end()].encode("utf-8"))

    def on_span(m, pii_only):
        s0, e0 = byte_range(m)
        for s, e, kind, _ in spans:
            if s < e0 and s0 < e and (not pii_only or kind in PII_SET):
                return True
        return False

    for rx, pii_only, what in ((RE_UUID, True, "UUID"), (RE_EMAIL, False, "e-mail"), (RE_IPV4, False, "IPv4"),
                               (RE_JWT, True, "JWT"), (RE_AWS, True, "AWS key"), (RE_MAC, False, "MAC"),
                               (RE_TOKEN, False, "vendor token"), (RE_CARDLIKE, True, "card-like")):
        for m in rx.finditer(text):
            if not on_span(m, pii_only):
                if what == "card-like":
                    raise Retry(m.group(0))
                raise AssertionError("%s: unlabelled %s %r in %r" % (source, what, m.group(0), text))
    card_ranges = [(s, e) for s, e, kind, _ in spans if kind == "CREDIT_CARD"]
    for m in RE_LONGDIGITS.finditer(text):
        s0, e0 = byte_range(m)
        if any(s <= s0 and e0 <= e for s, e in card_ranges):
            continue
        if luhn_ok(m.group(0)):
            raise Retry("Luhn-valid digit run %s outside a CREDIT_CARD span" % m.group(0))


def build(source, fn):
    for _ in range(100):
        L = Line()
        fn(L)
        try:
            check_line(L, source)
        except Retry:
            continue
        return L
    raise RuntimeError("could not build a clean %s line" % source)


def main():
    for c in STRIPE_TEST_CARDS:
        assert luhn_ok(c), c
    names = [n for n, _ in SOURCES]
    fns = dict(SOURCES)
    per = -(-N_RECORDS // len(names))
    schedule = [n for _ in range(per) for n in names][:N_RECORDS]
    R.shuffle(schedule)
    records, values = [], []
    for i, name in enumerate(schedule, 1):
        L = build(name, fns[name])
        spans = sorted(L.spans)
        records.append({"id": i, "source": name, "text": L.text(),
                        "pii": [[s, e, k] for s, e, k, _ in spans if k in PII_SET],
                        "lookalike": [[s, e, k] for s, e, k, _ in spans if k in LOOK_SET]})
        values.append([(s, e, k, v) for s, e, k, v in spans])
    with open(OUT, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    verify(OUT, values)
    stats(records)


def verify(path, values):
    """Re-read the written file and check it independently of the in-memory builder."""
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.decode("utf-8").split("\n")
    assert lines[-1] == "", "file must end with a newline"
    lines = lines[:-1]
    assert len(lines) == len(values) == N_RECORDS
    for n, line in enumerate(lines, 1):
        rec = json.loads(line)
        assert list(rec) == ["id", "source", "text", "pii", "lookalike"], rec.keys()
        assert rec["id"] == n
        raw = rec["text"].encode("utf-8")
        allspans = sorted([tuple(x) + ("pii",) for x in rec["pii"]] + [tuple(x) + ("look",) for x in rec["lookalike"]])
        for s, e, kind, group in allspans:
            assert 0 <= s < e <= len(raw)
            raw[s:e].decode("utf-8")                    # on character boundaries
            assert kind in (PII_SET if group == "pii" else LOOK_SET), kind
        for a, b in zip(allspans, allspans[1:]):
            assert b[0] >= a[1], ("overlap", n, a, b)
        expect = sorted(values[n - 1])
        assert [(s, e, k) for s, e, k, _ in expect] == [(s, e, k) for s, e, k, _ in allspans]
        for s, e, k, v in expect:
            assert raw[s:e] == v.encode("utf-8"), (n, k, v)
            if k == "CREDIT_CARD":
                assert luhn_ok(re.sub(r"[ -]", "", v))
            if k == "NUMBER" and v.isdigit() and 13 <= len(v) <= 19:
                assert not luhn_ok(v), v


def stats(records):
    from collections import Counter, defaultdict
    pii, look, by_src, no_pii = Counter(), Counter(), Counter(), 0
    occ_records, occ_sources = defaultdict(set), defaultdict(set)
    src_kinds = defaultdict(Counter)
    for r in records:
        by_src[r["source"]] += 1
        raw = r["text"].encode("utf-8")
        if not r["pii"]:
            no_pii += 1
        for s, e, k in r["pii"]:
            pii[k] += 1
            src_kinds[r["source"]][k] += 1
            occ_records[(k, raw[s:e])].add(r["id"])
            occ_sources[(k, raw[s:e])].add(r["source"])
        for s, e, k in r["lookalike"]:
            look[k] += 1
            src_kinds[r["source"]][k] += 1
    size = os.path.getsize(OUT)
    distinct = len(occ_records)
    recurring = sum(1 for v in occ_records.values() if len(v) > 1)
    cross = sum(1 for v in occ_sources.values() if len(v) > 1)
    print("records: %d   bytes: %d   records without PII: %d" % (len(records), size, no_pii))
    print("distinct PII values: %d   recurring in >1 record: %d (%.1f%%)   in >1 source: %d (%.1f%%)" % (
        distinct, recurring, 100.0 * recurring / distinct, cross, 100.0 * cross / distinct))
    print("\n| PII kind | spans | distinct values |\n|---|---:|---:|")
    for k in PII_KINDS:
        print("| %s | %d | %d |" % (k, pii[k], sum(1 for (kk, _) in occ_records if kk == k)))
    print("| **total** | **%d** | **%d** |" % (sum(pii.values()), distinct))
    print("\n| look-alike kind | spans |\n|---|---:|")
    for k in LOOK_KINDS:
        print("| %s | %d |" % (k, look[k]))
    print("| **total** | **%d** |" % sum(look.values()))
    print("\n| source | records | PII spans | look-alike spans |\n|---|---:|---:|---:|")
    for n, _ in SOURCES:
        print("| %s | %d | %d | %d |" % (n, by_src[n], sum(src_kinds[n][k] for k in PII_KINDS),
                                        sum(src_kinds[n][k] for k in LOOK_KINDS)))
    h = hashlib.sha256(open(OUT, "rb").read()).hexdigest()
    print("\nsha256(holdout.jsonl) = %s" % h)


if __name__ == "__main__":
    main()
