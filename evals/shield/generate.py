#!/usr/bin/env python3
"""Deterministic generator of the Privacy Shield evaluation corpus.

Run from the repository root:

    python3 evals/shield/generate.py

It rewrites evals/shield/corpus.jsonl (byte-identical on every run) and prints
per-kind counts.  Standard library only.  Every random choice comes from one
random.Random seeded with SEED; nothing reads the clock, the environment,
os.urandom or uuid.uuid4, and no set of strings is ever iterated.

Layout of this file
  1. Rec: a record assembled left to right.  Rec.add(template, **fields) appends
     text; a field is plain text, P(kind, value) (a PII span) or L(kind, value)
     (a look-alike span).  The byte offset of every span is taken while the
     value is appended, never by searching afterwards.
  2. Value factories: one function per family of values, and one table of
     notations per kind (IP_FORMS, CARD_NOTATIONS, MAC_NOTATIONS, ...,
     SECRET_KEYS, TOKEN_KEYS, PASSWORD_KEYS, KV_CONTAINERS).
  3. One function per log source (src_nginx_access, src_postgresql, ...).
  4. check_record(): the self-checks every record must pass.
  5. main(): schedule, write, print statistics.

The formats imitated and the published values used are listed, with their
public references, in SOURCES.md next to this file.
"""
import base64
import datetime as dt
import ipaddress
import json
import os
import re
import uuid
import zlib
import random
from collections import Counter, defaultdict
from urllib.parse import quote

SEED = 20240611
R = random.Random(SEED)
HERE = os.path.dirname(os.path.abspath(__file__))
OUT_PATH = os.path.join(HERE, "corpus.jsonl")

# Records per source.  20 sources.
RECORDS_PER_SOURCE = 320
# Probability that a value factory hands back a value it already produced
# (so that about a third of the distinct values recur in other records).
REUSE = 0.40

PII_KINDS = ("IP", "EMAIL", "CREDIT_CARD", "MAC", "UUID", "JWT", "AWS_KEY",
             "SECRET", "TOKEN", "PASSWORD")
LOOK_KINDS = ("HASH", "TRACE_ID", "VERSION", "OID", "CODE_PATH", "TIMESTAMP",
              "PORT", "IMAGE_REF", "K8S_NAME", "HEX_ID", "NUMBER", "KEY_NAME")


# ---------------------------------------------------------------------------
# 1. Records
# ---------------------------------------------------------------------------

class V:
    """A labelled value: kind, exact text, notation tags, PII or look-alike."""
    __slots__ = ("kind", "text", "tags", "pii")

    def __init__(self, kind, text, tags, pii):
        self.kind, self.text, self.tags, self.pii = kind, text, tuple(tags), pii


def P(kind, text, *tags):
    assert kind in PII_KINDS, kind
    return V(kind, text, tags, True)


def L(kind, text, *tags):
    assert kind in LOOK_KINDS, kind
    return V(kind, text, tags, False)


_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


class Rec:
    def __init__(self, source):
        self.source = source
        self._parts = []
        self._n = 0              # bytes so far (UTF-8)
        self.pii = []
        self.look = []
        self.values = []         # (start, end, V)

    def _put(self, s):
        self._parts.append(s)
        self._n += len(s.encode("utf-8"))

    def _emit(self, v):
        if v is None:
            return
        if isinstance(v, str):
            self._put(v)
        elif isinstance(v, V):
            start = self._n
            self._put(v.text)
            (self.pii if v.pii else self.look).append([start, self._n, v.kind])
            self.values.append((start, self._n, v))
        elif isinstance(v, (list, tuple)):
            for x in v:
                self._emit(x)
        elif isinstance(v, int) and not isinstance(v, bool):
            self._put(str(v))
        else:
            raise TypeError(repr(v))

    def add(self, tpl, **fields):
        """Append tpl, replacing {name} by fields[name] (other braces stay)."""
        pos, used = 0, []
        for m in _FIELD.finditer(tpl):
            name = m.group(1)
            if name not in fields:
                continue
            self._put(tpl[pos:m.start()])
            self._emit(fields[name])
            used.append(name)
            pos = m.end()
        self._put(tpl[pos:])
        unused = sorted(k for k in fields if k not in used)
        if unused:
            raise KeyError("fields %s not in template %r" % (unused, tpl))
        return self

    def reset(self):
        self.__init__(self.source)

    def text(self):
        return "".join(self._parts)


# ---------------------------------------------------------------------------
# 2. Value factories
# ---------------------------------------------------------------------------

DIG = "0123456789"
HEXL = "0123456789abcdef"
LOW = "abcdefghijklmnopqrstuvwxyz"
UPP = LOW.upper()
ALNUM = UPP + LOW + DIG
B64 = UPP + LOW + DIG + "+/"
B64URL = UPP + LOW + DIG + "-_"
_LONG_DIGIT_RUN = re.compile(r"\d{13,}")


def wpick(pairs):
    """pairs: [(weight, value), ...]"""
    total = sum(w for w, _ in pairs)
    x = R.random() * total
    for w, v in pairs:
        x -= w
        if x < 0:
            return v
    return pairs[-1][1]


def rs(alpha, n):
    return "".join(R.choice(alpha) for _ in range(n))


def rbytes(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def hexs(n, upper=False):
    """Random hex with no run of 13+ decimal digits (never card-shaped)."""
    while True:
        s = rs(HEXL, n)
        if not _LONG_DIGIT_RUN.search(s):
            return s.upper() if upper else s


def b64(b):
    return base64.b64encode(b).decode()


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


class Pools:
    """Remembers produced values so that later records can reuse them."""

    def __init__(self):
        self.values = defaultdict(list)

    def get(self, key, factory, reuse=REUSE):
        vals = self.values[key]
        if vals and R.random() < reuse:
            return R.choice(vals)
        v = factory()
        vals.append(v)
        return v


POOL = Pools()

# --- time ------------------------------------------------------------------

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec"]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
T0 = dt.datetime(2023, 10, 2, 0, 0, 0)


def rdt():
    return T0 + dt.timedelta(seconds=R.randrange(0, 118 * 86400),
                             microseconds=R.randrange(0, 10 ** 6))


def epoch(t):
    return int((t - dt.datetime(1970, 1, 1)).total_seconds())


def ts_iso(t, frac=3, suffix="Z"):
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        s += "." + ("%06d" % t.microsecond + "000")[:frac]
    return s + suffix


def ts_nginx(t):
    return "%02d/%s/%d:%s +0000" % (t.day, MONTHS[t.month - 1], t.year, t.strftime("%H:%M:%S"))


def ts_syslog(t):
    return "%s %2d %s" % (MONTHS[t.month - 1], t.day, t.strftime("%H:%M:%S"))


def ts_http(t):
    return "%s, %02d %s %d %s GMT" % (DAYS[t.weekday()], t.day, MONTHS[t.month - 1], t.year,
                                      t.strftime("%H:%M:%S"))


def ts_ctime(t):
    return "%s %s %2d %s %d" % (DAYS[t.weekday()], MONTHS[t.month - 1], t.day,
                                t.strftime("%H:%M:%S"), t.year)


def ts_pg(t, ms=True):
    s = t.strftime("%Y-%m-%d %H:%M:%S")
    if ms:
        s += ".%03d" % (t.microsecond // 1000)
    return s + " UTC"


def ts_klog(t):
    return "%02d%02d %s.%06d" % (t.month, t.day, t.strftime("%H:%M:%S"), t.microsecond)


def epoch_ms(t):
    """13-digit epoch milliseconds that fails the Luhn check."""
    return not_luhn(str(epoch(t) * 1000 + t.microsecond // 1000))


def epoch_us(t):
    """16-digit epoch microseconds that fails the Luhn check."""
    return not_luhn(str(epoch(t) * 10 ** 6 + t.microsecond))


def uptime():
    return "%.6f" % (R.randrange(2, 3_000_000) + R.random())


def duration_hms():
    return "%02d:%02d:%02d.%03d" % (R.randrange(0, 3), R.randrange(60), R.randrange(60), R.randrange(1000))


def T(text, *tags):
    return L("TIMESTAMP", text, *tags)


# --- Luhn ------------------------------------------------------------------

def luhn_ok(digits):
    total = 0
    for i, ch in enumerate(reversed(digits)):
        x = int(ch)
        if i % 2 == 1:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return total % 10 == 0


def luhn_complete(prefix, length):
    body = prefix + rs(DIG, length - len(prefix) - 1)
    for c in DIG:
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def not_luhn(digits):
    """Return digits unchanged if it fails Luhn, else with the last digit bumped."""
    if luhn_ok(digits):
        digits = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    assert not luhn_ok(digits)
    return digits


def long_id(n, first="123456789"):
    """An n-digit identifier that is NOT Luhn-valid."""
    return not_luhn(R.choice(first) + rs(DIG, n - 1))


# --- IP addresses ----------------------------------------------------------

# value forms (what the address itself looks like)
IP_FORMS = {
    "v4": "dotted quad (documentation ranges RFC 5737, RFC 1918 private, RFC 6598 shared)",
    "v6": "IPv6 compressed lower case, RFC 5952 (2001:db8::/32 RFC 3849, fd00::/8 ULA)",
    "v6-upper": "IPv6 compressed upper case (as Cisco IOS prints it)",
    "v6-full": "IPv6 fully expanded, leading zeros kept (ip6tables LOG, %pI6)",
    "v6-nocompress": "IPv6 without :: compression nor leading zeros (Java InetAddress)",
    "v6-loopback": "::1",
    "v6-mapped": "IPv4-mapped IPv6 ::ffff:a.b.c.d (Node.js, dual-stack sockets)",
    "v6-zone": "link-local fe80:: address followed by a %zone id (zone excluded from span)",
}
# context notations (how the address is embedded), recorded as tags too
IP_CONTEXTS = {
    "plain": "bare address", "port": "a.b.c.d:port", "bracket": "[a.b.c.d] (postfix relay=host[ip])",
    "bracket-port": "[addr]:port (URLs, Go/Rust errors, snmptrapd UDP: [ip]:port)", "xff-list": "inside an X-Forwarded-For list",
    "quoted": 'inside quotes (host="...")', "json": "JSON string value", "url-host": "host part of a URL",
    "slash-port": "Java host/addr:port", "hash-port": "BIND addr#port", "comma-port": "SQL Server addr,port",
    "paren-port": "Cisco IOS ACL addr(port)", "zone": "link-local address followed by %zone",
}


def _ip4_client():
    return wpick([
        (30, lambda: "203.0.113.%d" % R.randint(1, 254)),
        (25, lambda: "198.51.100.%d" % R.randint(1, 254)),
        (20, lambda: "192.0.2.%d" % R.randint(1, 254)),
        (10, lambda: "100.%d.%d.%d" % (R.randint(64, 127), R.randint(0, 255), R.randint(1, 254))),
        (15, lambda: "192.168.%d.%d" % (R.randint(0, 20), R.randint(2, 254))),
    ])()


def _ip4_internal():
    return wpick([
        (50, lambda: "10.%d.%d.%d" % (R.choice([0, 0, 0, 1, 2, 10, 20, 30]), R.randint(0, 15), R.randint(2, 250))),
        (25, lambda: "172.%d.%d.%d" % (R.randint(16, 31), R.randint(0, 255), R.randint(2, 250))),
        (25, lambda: "192.168.%d.%d" % (R.randint(0, 20), R.randint(2, 254))),
    ])()


def _ip4_pod():
    return wpick([(60, lambda: "10.244.%d.%d" % (R.randint(0, 9), R.randint(2, 250))),
                  (40, lambda: "10.0.%d.%d" % (R.randint(0, 15), R.randint(2, 250)))])()


def ip4(role="client"):
    """role: client | internal | pod | svc"""
    if role == "svc":
        f = lambda: R.choice(["10.96.0.1", "10.96.0.10"]) if R.random() < 0.5 else "10.96.%d.%d" % (R.randint(0, 255), R.randint(1, 254))
    else:
        f = {"client": _ip4_client, "internal": _ip4_internal, "pod": _ip4_pod}[role]
    return POOL.get("ip4-" + role, f)


def _v6_int(prefix_hi):
    # prefix_hi: top 32 bits; build realistic addresses with some zero groups
    groups = [prefix_hi >> 16, prefix_hi & 0xFFFF]
    style = R.randrange(4)
    if style == 0:      # 2001:db8:85a3::8a2e:370:7334 style
        groups += [R.randrange(0x10000), 0, 0, R.randrange(0x10000), R.randrange(0x1000), R.randrange(0x10000)]
    elif style == 1:    # 2001:db8:4::17
        groups += [R.randrange(0x100), 0, 0, 0, 0, R.randrange(1, 0x100)]
    elif style == 2:    # SLAAC-ish
        groups += [R.randrange(0x10000), R.randrange(0x100), R.randrange(0x10000), R.randrange(0x10000),
                   R.randrange(0x10000), R.randrange(0x10000)]
    else:               # 2001:db8::5
        groups += [R.choice([0, 0, R.randrange(0x10000)]), 0, 0, 0, 0, R.randrange(1, 0x10000)]
    n = 0
    for g in groups:
        n = (n << 16) | g
    return ipaddress.IPv6Address(n)


def ip6_addr(role="client"):
    def f():
        if role == "client":
            return _v6_int(0x20010DB8)
        return _v6_int((0xFD00 | R.randrange(0x100)) << 16 | R.randrange(0x10000))
    return POOL.get("ip6-" + role, f)


def ip6(form="v6", role="client"):
    """Text of an IPv6 address in the given form."""
    a = ip6_addr(role)
    if form == "v6":
        return a.compressed
    if form == "v6-upper":
        return a.compressed.upper()
    if form == "v6-full":
        return a.exploded
    if form == "v6-nocompress":
        return ":".join("%x" % int(g, 16) for g in a.exploded.split(":"))
    raise ValueError(form)


def ip6_linklocal(mac=None):
    """EUI-64 link-local address derived from a MAC (as SLAAC builds it)."""
    if mac is None:
        mac = mac_bytes()
    b = bytearray(mac)
    b[0] ^= 0x02
    eui = bytes(b[:3]) + b"\xff\xfe" + bytes(b[3:])
    n = (0xFE80 << 112) | int.from_bytes(eui, "big")
    return ipaddress.IPv6Address(n).compressed


def ip4_mapped():
    return "::ffff:" + ip4("client" if R.random() < 0.6 else "pod")


def IPV(text, form, ctx):
    return P("IP", text, form, "ctx:" + ctx)


def ip_any(role="client", v6_share=0.2, forms=("v6",)):
    """(text, form) choosing IPv4 most of the time."""
    if R.random() < v6_share:
        form = R.choice(forms)
        if form == "v6-loopback":
            return "::1", form
        if form == "v6-mapped":
            return ip4_mapped(), form
        return ip6(form, "client" if role == "client" else "internal"), form
    return ip4(role), "v4"


def hostport(text, form, port):
    """address:port, bracketing IPv6 as URLs and Go/Rust/curl print it."""
    if ":" in text:
        return ["[", IPV(text, form, "bracket-port"), "]:", str(port)]
    return [IPV(text, form, "port"), ":", str(port)]


# --- e-mail ----------------------------------------------------------------

FIRST = ["jane", "john", "maria", "wei", "aisha", "lukas", "sofia", "arjun", "fatima", "noah",
         "emma", "yuki", "olga", "carlos", "amara", "liam", "chen", "priya", "mateo", "zoe",
         "ahmed", "ines", "tomasz", "nora", "kofi", "elena", "sven", "hana", "diego", "leila",
         "oliver", "mei", "pedro", "anika", "samir", "julia", "kwame", "ingrid", "ravi", "lucia"]
LAST = ["doe", "smith", "garcia", "zhang", "khan", "müller", "rossi", "patel", "haddad", "nguyen",
        "kowalski", "silva", "okafor", "tanaka", "johansson", "ivanova", "martin", "novak",
        "mendes", "schmidt", "kim", "dubois", "hernandez", "osei", "berg", "sato", "costa", "lee"]
ASCII_LAST = {"müller": "muller"}
EMAIL_DOMAINS = ["example.com", "example.org", "example.net", "mail.example.com", "corp.example",
                 "acme.example", "eu.example.org", "shop.test", "initech.test", "users.example.net"]
ROLE_LOCALS = ["noc", "ops", "billing", "support", "security", "alerts", "admin", "dba", "oncall"]
EMAIL_NOTATIONS = {
    "first.last": "first.last@domain",
    "flast": "initial+last, optional digits",
    "plus": "sub-address with +tag (RFC 5233)",
    "role": "role mailbox (noc@, billing@)",
    "mixed-case": "mixed/upper case local part or domain",
    "underscore": "first_last@domain",
}


def person():
    f, l = R.choice(FIRST), R.choice(LAST)
    return f, l


def _email_new():
    f, l = person()
    la = ASCII_LAST.get(l, l)
    form = wpick([(35, "first.last"), (15, "flast"), (15, "plus"), (10, "role"), (10, "mixed-case"),
                  (15, "underscore")])
    d = R.choice(EMAIL_DOMAINS)
    if form == "first.last":
        local = "%s.%s" % (f, la)
    elif form == "flast":
        local = f[0] + la + (str(R.randint(1, 99)) if R.random() < 0.4 else "")
    elif form == "plus":
        local = "%s.%s+%s" % (f, la, R.choice(["billing", "github", "test", "news", "ci", "2fa"]))
    elif form == "role":
        local = R.choice(ROLE_LOCALS)
    elif form == "underscore":
        local = "%s_%s" % (f, la)
    else:
        local = "%s.%s" % (f.capitalize(), la.capitalize())
        if R.random() < 0.3:
            d = d.upper()
    return (local + "@" + d, form, f.capitalize() + " " + l.capitalize())


def email():
    """(address, notation, display name)"""
    return POOL.get("email", _email_new)


def EMAILV(ctx="plain"):
    addr, form, _ = email()
    return P("EMAIL", addr, form, "ctx:" + ctx)


# --- payment cards ---------------------------------------------------------

# Published test numbers (see SOURCES.md).  Each is asserted Luhn-valid below.
PUBLISHED_CARDS = [
    ("4242424242424242", "visa", "stripe"), ("4000056655665556", "visa", "stripe"),
    ("4012888888881881", "visa", "stripe"), ("4000000000000002", "visa", "stripe"),
    ("4000000000009995", "visa", "stripe"), ("4000000000003220", "visa", "stripe"),
    ("5555555555554444", "mastercard", "stripe"), ("2223003122003222", "mastercard-2series", "stripe"),
    ("5200828282828210", "mastercard", "stripe"), ("5105105105105100", "mastercard", "stripe"),
    ("378282246310005", "amex", "stripe"), ("371449635398431", "amex", "stripe"),
    ("6011111111111117", "discover", "stripe"), ("6011000990139424", "discover", "stripe"),
    ("6011981111111113", "discover", "stripe"),
    ("4111111111111111", "visa", "paypal"), ("378734493671000", "amex", "paypal"),
    ("4111111145551142", "visa", "adyen"), ("5555341244441115", "mastercard", "adyen"),
    ("2222400070000005", "mastercard-2series", "adyen"), ("370000000000002", "amex", "adyen"),
    ("6011601160116611", "discover", "adyen"), ("5500000000000004", "mastercard", "adyen"),
    ("4400000000000008", "visa", "adyen"), ("4444333322221111", "visa", "adyen"),
]
for _n, _net, _src in PUBLISHED_CARDS:
    assert luhn_ok(_n), _n

CARD_NOTATIONS = {
    "plain": "digits only",
    "space-4444": "4-4-4-4 groups separated by spaces",
    "dash-4444": "4-4-4-4 groups separated by dashes",
    "space-465": "Amex 4-6-5 groups separated by spaces",
    "dash-465": "Amex 4-6-5 groups separated by dashes",
}


def _card_generated():
    net = wpick([(28, "visa"), (20, "mastercard"), (12, "mastercard-2series"), (30, "amex"), (10, "discover")])
    if net == "visa":
        return luhn_complete("4", 16), net
    if net == "mastercard":
        return luhn_complete(str(R.randint(51, 55)), 16), net
    if net == "mastercard-2series":
        return luhn_complete(str(R.randint(2221, 2720)), 16), net
    if net == "amex":
        return luhn_complete(R.choice(["34", "37"]), 15), net
    return luhn_complete(R.choice(["6011", "65", str(R.randint(644, 649))]), 16), net


def card():
    """(digits, network, origin)"""
    def f():
        if R.random() < 0.45:
            n, net, src = R.choice(PUBLISHED_CARDS)
            return n, net, "published-" + src
        n, net = _card_generated()
        return n, net, "generated"
    return POOL.get("card", f)


def card_fmt(digits, notation):
    if notation == "plain":
        return digits
    sep = " " if notation.startswith("space") else "-"
    if len(digits) == 15:
        return sep.join([digits[:4], digits[4:10], digits[10:]])
    return sep.join(digits[i:i + 4] for i in range(0, 16, 4))


def CARDV(ctx="plain", notation=None, allow_sep=True):
    digits, net, origin = card()
    if notation is None:
        if not allow_sep:
            notation = "plain"
        elif len(digits) == 15:
            notation = wpick([(12, "plain"), (48, "space-465"), (40, "dash-465")])
        else:
            notation = wpick([(40, "plain"), (35, "space-4444"), (25, "dash-4444")])
    elif len(digits) == 15 and notation.endswith("4444"):
        notation = notation.replace("4444", "465")
    return P("CREDIT_CARD", card_fmt(digits, notation), notation, net, origin, "ctx:" + ctx)


# --- MAC addresses ---------------------------------------------------------

OUIS = [b"\x52\x54\x00", b"\x00\x16\x3e", b"\x00\x50\x56", b"\x00\x0c\x29", b"\x02\x42\xac",
        b"\x00\x1b\x21", b"\xa0\x36\x9f", b"\x00\xe0\x4c", b"\x3c\x22\xfb", b"\xb8\x27\xeb",
        b"\xdc\xa6\x32", b"\xf0\x18\x98", b"\x00\x15\x5d", b"\x0a\x58\x0a", b"\x00\x25\x90"]
MAC_NOTATIONS = {
    "colon-lower": "aa:bb:cc:dd:ee:ff (Linux, ip/dmesg, dnsmasq)",
    "colon-upper": "AA:BB:CC:DD:EE:FF",
    "dash-upper": "AA-BB-CC-DD-EE-FF (Windows ipconfig/getmac)",
    "dash-lower": "aa-bb-cc-dd-ee-ff (Windows arp -a)",
    "dotted": "aabb.ccdd.eeff (Cisco IOS)",
    "colon-unpadded": "0:50:56:a3:1b:2c (Net-SNMP, DISPLAY-HINT \"1x:\" of RFC 2579 MacAddress)",
}


def mac_bytes():
    def f():
        if R.random() < 0.15:   # RFC 7042 documentation block 00-00-5E-00-53-00..FF
            return b"\x00\x00\x5e\x00\x53" + bytes([R.randrange(256)])
        return R.choice(OUIS) + rbytes(3)
    return POOL.get("mac", f, reuse=0.5)


def mac_fmt(b, notation):
    h = ["%02x" % x for x in b]
    if notation == "colon-lower":
        return ":".join(h)
    if notation == "colon-upper":
        return ":".join(h).upper()
    if notation == "dash-upper":
        return "-".join(h).upper()
    if notation == "dash-lower":
        return "-".join(h)
    if notation == "dotted":
        s = "".join(h)
        return ".".join(s[i:i + 4] for i in range(0, 12, 4))
    if notation == "colon-unpadded":
        return ":".join("%x" % x for x in b)
    raise ValueError(notation)


def MACV(notation="colon-lower", ctx="plain", b=None):
    if b is None:
        b = mac_bytes()
    return P("MAC", mac_fmt(b, notation), notation, "ctx:" + ctx)


# --- UUIDs -----------------------------------------------------------------

UUID_NOTATIONS = {"lower": "8-4-4-4-12 lower case", "upper": "8-4-4-4-12 upper case",
                  "braced": "{8-4-4-4-12} upper case, braces outside the span (.NET/Windows)"}


def _uuid_new():
    kind = wpick([(75, 4), (10, 1), (15, 7)])
    if kind == 4:
        return str(uuid.UUID(bytes=rbytes(16), version=4))
    if kind == 7:
        ms = epoch(rdt()) * 1000 + R.randrange(1000)
        b = ms.to_bytes(6, "big") + rbytes(10)
        return _uuid7(b)
    # version 1: time based, random node
    return str(uuid.UUID(fields=(R.getrandbits(32), R.getrandbits(16), (R.getrandbits(12) | 0x1000),
                                 (R.getrandbits(6) | 0x80), R.getrandbits(8), R.getrandbits(48))))


def _uuid7(b):
    b = bytearray(b)
    b[6] = (b[6] & 0x0F) | 0x70
    b[8] = (b[8] & 0x3F) | 0x80
    return str(uuid.UUID(bytes=bytes(b)))


def uuid_s():
    return POOL.get("uuid", _uuid_new)


def UUIDV(ctx="plain", upper=False):
    u = uuid_s()
    return P("UUID", u.upper() if upper else u, "upper" if upper else "lower", "ctx:" + ctx)


# --- JWT -------------------------------------------------------------------

# RFC 7519 section 3.1 example (HS256 with the RFC 7515 A.1 key; verified).
RFC7519_JWT = ("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
               "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ."
               "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
JWT_ISSUERS = ["https://auth.example.com/", "https://login.example.org/oauth2/default",
               "https://accounts.example.net", "https://sso.acme.example/realms/prod",
               "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ab12Cd34E",
               "kubernetes/serviceaccount"]


def _jwt_new():
    if R.random() < 0.04:
        return RFC7519_JWT, "rfc7519-example"
    alg = wpick([(45, "HS256"), (35, "RS256"), (20, "ES256")])
    hdr = {"alg": alg, "typ": "JWT"}
    if alg != "HS256":
        hdr = {"alg": alg, "kid": hexs(R.choice([16, 40])), "typ": "JWT"}
    t = rdt()
    iss = R.choice(JWT_ISSUERS)
    if iss == "kubernetes/serviceaccount":
        body = {"iss": iss, "kubernetes.io/serviceaccount/namespace": R.choice(NAMESPACES),
                "kubernetes.io/serviceaccount/service-account.name": R.choice(DEPLOYS) + "-sa",
                "sub": "system:serviceaccount:%s:%s" % (R.choice(NAMESPACES), R.choice(DEPLOYS))}
    else:
        body = {"sub": str(uuid.UUID(bytes=rbytes(16), version=4)), "iss": iss,
                "aud": R.choice(["api", "orders-api", "account", "https://api.example.com"]),
                "iat": epoch(t), "exp": epoch(t) + R.choice([300, 900, 3600, 86400]),
                "scope": R.choice(["openid profile email", "orders:read orders:write", "read:users", "offline_access"])}
    sig = rbytes({"HS256": 32, "RS256": 256, "ES256": 64}[alg])
    tok = ".".join([b64url(json.dumps(hdr, separators=(",", ":")).encode()),
                    b64url(json.dumps(body, separators=(",", ":")).encode()), b64url(sig)])
    return tok, alg


def jwt():
    return POOL.get("jwt", _jwt_new)


def JWTV(ctx):
    tok, alg = jwt()
    return P("JWT", tok, alg, "ctx:" + ctx)


# --- AWS -------------------------------------------------------------------

AWS_DOC_PAIRS = [("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
                 ("AKIAI44QH8DHBEXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY")]
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def aws_secret_new():
    s = list(rs(B64, 40))
    # real keys nearly always contain / or +; make sure each of ours does
    s[R.randrange(1, 39)] = "/"
    if R.random() < 0.7:
        s[R.randrange(1, 39)] = "+"
    return "".join(s)


def aws_pair(temporary=False):
    """(access key id, secret access key, origin)"""
    def f():
        if not temporary and R.random() < 0.12:
            kid, sec = R.choice(AWS_DOC_PAIRS)
            return kid, sec, "aws-docs-example"
        return ("ASIA" if temporary else "AKIA") + rs(B32, 16), aws_secret_new(), "generated"
    return POOL.get("aws-temp" if temporary else "aws", f)


def sts_session_token():
    return POOL.get("sts", lambda: "IQoJb3JpZ2luX2VjE" + rs(ALNUM, 2) + "//////////wEaCXVzLWVhc3QtMSJH"
                    + rs(B64, 220) + R.choice(["", "=", "=="]))


# --- secrets (SECRET) --------------------------------------------------------

def _pem_ec_body():
    # DER of an EC private key (RFC 5915) starts 30 77 02 01 01 04 20 -> "MHcCAQEEI"
    der = b"\x30\x77\x02\x01\x01\x04\x20" + rbytes(32) + b"\xa0\x0a\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\xa1\x44\x03\x42\x00\x04" + rbytes(64)
    s = b64(der)
    return [s[i:i + 64] for i in range(0, len(s), 64)]


def pem_ec_escaped():
    """PEM private key as it appears inside a JSON string (newlines as \\n)."""
    lines = ["-----BEGIN EC PRIVATE KEY-----"] + _pem_ec_body() + ["-----END EC PRIVATE KEY-----", ""]
    return "\\n".join(lines)


def pem_ec_b64():
    """base64 of a PEM private key, as in a Kubernetes Secret's tls.key / kubeconfig client-key-data."""
    pem = "\n".join(["-----BEGIN EC PRIVATE KEY-----"] + _pem_ec_body() + ["-----END EC PRIVATE KEY-----", ""])
    return b64(pem.encode())


SECRET_FAMILIES = {
    # name: (factory, url_safe, description)
    "aws-secret": (lambda: aws_pair()[1], False, "AWS secret access key, 40 chars base64 alphabet with / and +"),
    "hex32": (lambda: hexs(32), True, "32 hex chars (Datadog, Mailgun-style API key, Slack signing secret)"),
    "hex64": (lambda: hexs(64), True, "64 hex chars (webhook / HMAC signing secret, openssl rand -hex 32)"),
    "alnum32": (lambda: rs(ALNUM, 32), True, "32 alphanumerics (generic API key)"),
    "b64-32": (lambda: b64(rbytes(32)), False, "base64 of 32 random bytes (openssl rand -base64 32)"),
    "azure-client-secret": (lambda: rs(ALNUM, 3) + R.choice(DIG) + "Q~" + rs(ALNUM + "-_.~", 34), True,
                            "Microsoft Entra client secret (40 chars, 'Q~' at offset 4)"),
    "google-client-secret": (lambda: "GOCSPX-" + rs(ALNUM + "-_", 28), True, "Google OAuth client secret (GOCSPX-)"),
    "stripe-whsec": (lambda: "whsec_" + rs(ALNUM, 32), True, "Stripe webhook signing secret (whsec_)"),
    "django": (lambda: rs(LOW + DIG + "!@#%^&*(-_=+)", 50), False, "Django SECRET_KEY (50 chars)"),
    "laravel": (lambda: "base64:" + b64(rbytes(32)), False, "Laravel APP_KEY (base64:...)"),
    "pem-escaped": (pem_ec_escaped, False, "PEM EC private key inside a JSON string"),
    "pem-b64": (pem_ec_b64, False, "base64 of a PEM private key (Kubernetes tls.key, kubeconfig client-key-data)"),
    "azure-account-key": (lambda: b64(rbytes(64)), False, "Azure Storage account key (88 chars base64)"),
    "sas-key": (lambda: b64(rbytes(32)), False, "Azure Service Bus / Event Hubs SharedAccessKey"),
    "slack-webhook": (lambda: rs(ALNUM, 24), True, "secret part of a Slack incoming-webhook URL"),
    "sendgrid": (lambda: "SG." + rs(B64URL, 22) + "." + rs(B64URL, 43), True, "SendGrid API key (SG.x.y)"),
}


def secret(family):
    factory = SECRET_FAMILIES[family][0]
    return POOL.get("secret-" + family, factory)


# key spellings for SECRET values: (key name, value family)
SECRET_KEYS = [
    ("aws_secret_access_key", "aws-secret"), ("AWS_SECRET_ACCESS_KEY", "aws-secret"),
    ("awsSecretAccessKey", "aws-secret"), ("SecretAccessKey", "aws-secret"), ("secret_access_key", "aws-secret"),
    ("aws-secret-access-key", "aws-secret"),
    ("api_key", "hex32"), ("apiKey", "alnum32"), ("api-key", "alnum32"), ("API_KEY", "hex32"), ("apikey", "alnum32"),
    ("x-api-key", "alnum32"), ("X-Api-Key", "hex32"), ("DD_API_KEY", "hex32"), ("DATADOG_API_KEY", "hex32"),
    ("MAILGUN_API_KEY", "hex32"), ("SENDGRID_API_KEY", "sendgrid"), ("sendgridApiKey", "sendgrid"),
    ("client_secret", "azure-client-secret"), ("clientSecret", "google-client-secret"),
    ("client-secret", "alnum32"), ("CLIENT_SECRET", "alnum32"), ("AZURE_CLIENT_SECRET", "azure-client-secret"),
    ("GOOGLE_CLIENT_SECRET", "google-client-secret"), ("OAUTH_CLIENT_SECRET", "alnum32"),
    ("webhook_secret", "hex64"), ("webhookSecret", "hex64"), ("STRIPE_WEBHOOK_SECRET", "stripe-whsec"),
    ("GITHUB_WEBHOOK_SECRET", "hex64"), ("signing_secret", "hex32"), ("SLACK_SIGNING_SECRET", "hex32"),
    ("signingSecret", "hex32"), ("webhook-secret", "hex64"),
    ("secret_key", "b64-32"), ("SECRET_KEY", "django"), ("DJANGO_SECRET_KEY", "django"), ("secretKey", "alnum32"),
    ("APP_SECRET", "hex64"), ("JWT_SECRET", "b64-32"), ("jwt_secret", "hex64"), ("jwtSecret", "b64-32"),
    ("SESSION_SECRET", "hex64"), ("session_secret", "b64-32"), ("ENCRYPTION_KEY", "b64-32"),
    ("encryption_key", "hex64"), ("APP_KEY", "laravel"), ("master_key", "hex64"), ("secret", "hex64"),
    ("cookie_secret", "b64-32"), ("COOKIE_SECRET", "hex64"),
    ("private_key", "pem-escaped"), ("privateKey", "pem-escaped"),
    ("tls.key", "pem-b64"), ("client-key-data", "pem-b64"),
    ("AccountKey", "azure-account-key"), ("SharedAccessKey", "sas-key"), ("AZURE_STORAGE_KEY", "azure-account-key"),
]


def key_style(name):
    if "-" in name and name[0].isupper():
        return "Header-Case"
    if "-" in name:
        return "kebab-case"
    if "." in name:
        return "dotted"
    if name.isupper() or (name.upper() == name):
        return "UPPER_SNAKE"
    if "_" in name:
        return "snake_case"
    if name[0].isupper():
        return "PascalCase"
    if any(c.isupper() for c in name):
        return "camelCase"
    return "lowercase"


def secret_key(filter_fn=None, url_safe=False):
    cands = [(k, f) for k, f in SECRET_KEYS if (filter_fn is None or filter_fn(k, f))
             and (not url_safe or SECRET_FAMILIES[f][1])]
    return R.choice(cands)


def SECRETV(key, family, container):
    return P("SECRET", secret(family), family, "key:" + key_style(key), "container:" + container)


# --- tokens (TOKEN) -----------------------------------------------------------

B62 = DIG + UPP + LOW


def _b62(n, width):
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def gh_token(prefix):
    body = rs(ALNUM, 30)
    return prefix + body + _b62(zlib.crc32(body.encode()), 6)


TOKEN_FAMILIES = {
    "github-ghp": (lambda: gh_token("ghp_"), "GitHub personal access token (ghp_)"),
    "github-gho": (lambda: gh_token("gho_"), "GitHub OAuth access token (gho_)"),
    "github-ghs": (lambda: gh_token("ghs_"), "GitHub App installation token (ghs_)"),
    "github-pat": (lambda: "github_pat_" + rs(ALNUM, 22) + "_" + rs(ALNUM, 59), "GitHub fine-grained PAT (github_pat_)"),
    "slack-xoxb": (lambda: "xoxb-%d-%d-%s" % (R.randint(10 ** 10, 10 ** 12 - 1), R.randint(10 ** 11, 10 ** 12 - 1), rs(ALNUM, 24)),
                   "Slack bot token (xoxb-)"),
    "slack-xoxp": (lambda: "xoxp-%d-%d-%d-%s" % (R.randint(10 ** 10, 10 ** 12 - 1), R.randint(10 ** 10, 10 ** 12 - 1),
                                                R.randint(10 ** 10, 10 ** 12 - 1), hexs(32)), "Slack user token (xoxp-)"),
    "stripe-sk-live": (lambda: "sk_live_" + R.choice(["", "51"]) + rs(ALNUM, R.choice([24, 97])), "Stripe secret key (sk_live_)"),
    "stripe-sk-test": (lambda: "sk_test_" + R.choice(["", "51"]) + rs(ALNUM, R.choice([24, 97])), "Stripe secret key (sk_test_)"),
    "stripe-rk": (lambda: R.choice(["rk_test_", "rk_live_"]) + rs(ALNUM, R.choice([24, 97])), "Stripe restricted key (rk_)"),
    "openai": (lambda: R.choice(["sk-" + rs(ALNUM, 48), "sk-proj-" + rs(ALNUM + "-_", 74)]), "OpenAI-style API key (sk-, sk-proj-)"),
    "gitlab": (lambda: "glpat-" + rs(ALNUM + "-_", 20), "GitLab personal access token (glpat-)"),
    "vault": (lambda: "hvs." + rs(ALNUM + "-_", 24) if R.random() < 0.5 else "hvs.CAESI" + rs(ALNUM + "-_", 86),
              "HashiCorp Vault service token (hvs.)"),
    "npm": (lambda: "npm_" + rs(ALNUM, 36), "npm access token (npm_)"),
    "pypi": (lambda: "pypi-AgEIcHlwaS5vcmc" + rs(B64URL, 120), "PyPI API token (pypi-)"),
    "sonar": (lambda: "squ_" + hexs(40), "SonarQube user token (squ_)"),
    "google-ya29": (lambda: "ya29.a0" + rs(ALNUM + "-_", 140), "Google OAuth access token (ya29.)"),
    "opaque": (lambda: rs(B64URL, R.choice([32, 43, 64])), "opaque bearer / access token"),
    "refresh": (lambda: R.choice(["1//0g" + rs(ALNUM + "-_", 98), rs(B64URL, 64), "v1." + rs(B64URL, 80)]),
                "refresh token (Google 1//, opaque, v1.)"),
    "session-django": (lambda: rs(LOW + DIG, 32), "Django sessionid (32 [a-z0-9])"),
    "session-php": (lambda: rs("abcdefghijklmnopqrstuv0123456789", 26), "PHPSESSID (26 chars)"),
    "session-java": (lambda: hexs(32, upper=True) + R.choice(["", ".node0"]), "Tomcat/Jetty JSESSIONID (32 hex)"),
    "session-express": (lambda: "s%3A" + rs(B64URL, 32) + "." + rs(ALNUM, 43), "express-session connect.sid"),
    "session-flask": (lambda: "eyJ" + rs(B64URL, R.randint(20, 60)) + "." + rs(B64URL, 6) + "." + rs(B64URL, 27),
                      "Flask signed session cookie (itsdangerous, starts eyJ, NOT a JWT)"),
    "session-rails": (lambda: rs(ALNUM, R.randint(60, 120)) + "%3D%3D--" + hexs(40), "Rails cookie store session"),
    "session-generic": (lambda: rs(B64URL, R.choice([22, 32, 43])), "generic session id"),
    "csrf": (lambda: rs(ALNUM, R.choice([32, 64])), "CSRF token"),
    "oauth-code": (lambda: rs(ALNUM + "-_", R.choice([30, 40, 43])), "OAuth authorization code"),
    "sts-session": (sts_session_token, "AWS STS session token"),
}


def token(family):
    return POOL.get("token-" + family, TOKEN_FAMILIES[family][0])


# key spellings for TOKEN values
TOKEN_KEYS = [
    ("access_token", "opaque"), ("accessToken", "opaque"), ("access-token", "opaque"), ("ACCESS_TOKEN", "opaque"),
    ("refresh_token", "refresh"), ("refreshToken", "refresh"), ("REFRESH_TOKEN", "refresh"),
    ("token", "opaque"), ("auth_token", "opaque"), ("authToken", "opaque"), ("X-Auth-Token", "opaque"),
    ("x-access-token", "opaque"), ("bearer_token", "opaque"), ("api_token", "opaque"), ("apiToken", "opaque"),
    ("GITHUB_TOKEN", "github-ghp"), ("GH_TOKEN", "github-pat"), ("github_token", "github-gho"),
    ("GITHUB_PAT", "github-pat"), ("GITHUB_OAUTH_TOKEN", "github-gho"), ("SLACK_USER_TOKEN", "slack-xoxp"),
    ("STRIPE_RESTRICTED_KEY", "stripe-rk"), ("stripe_restricted_key", "stripe-rk"), ("SLACK_BOT_TOKEN", "slack-xoxb"), ("slack_token", "slack-xoxp"),
    ("SLACK_TOKEN", "slack-xoxb"), ("slackBotToken", "slack-xoxb"),
    ("STRIPE_API_KEY", "stripe-sk-live"), ("stripe_secret_key", "stripe-sk-live"), ("STRIPE_SECRET_KEY", "stripe-sk-test"),
    ("stripeKey", "stripe-rk"), ("OPENAI_API_KEY", "openai"), ("openai_api_key", "openai"),
    ("GITLAB_TOKEN", "gitlab"), ("VAULT_TOKEN", "vault"), ("X-Vault-Token", "vault"), ("NPM_TOKEN", "npm"),
    ("_authToken", "npm"), ("SONAR_TOKEN", "sonar"), ("sonar.login", "sonar"), ("TWINE_PASSWORD", "pypi"),
    ("aws_session_token", "sts-session"), ("AWS_SESSION_TOKEN", "sts-session"), ("SessionToken", "sts-session"),
    ("session", "session-generic"), ("sessionid", "session-django"), ("session_id", "session-generic"),
    ("sessionId", "session-generic"), ("PHPSESSID", "session-php"), ("JSESSIONID", "session-java"),
    ("connect.sid", "session-express"), ("csrftoken", "csrf"), ("csrf_token", "csrf"), ("XSRF-TOKEN", "csrf"),
]


# Prefixed vendor tokens are handed out in rotation so that every family gets a fair share.
VENDOR_TOKEN_KEYS = {
    "github-ghp": ["GITHUB_TOKEN", "github_token", "GH_TOKEN"], "github-gho": ["GITHUB_OAUTH_TOKEN", "oauth_token", "githubToken"],
    "github-pat": ["GH_TOKEN", "GITHUB_PAT", "github_pat"], "slack-xoxb": ["SLACK_BOT_TOKEN", "slack_bot_token", "slackBotToken"],
    "slack-xoxp": ["SLACK_USER_TOKEN", "slack_user_token", "SLACK_TOKEN"], "stripe-sk-live": ["STRIPE_API_KEY", "stripe_secret_key", "STRIPE_SECRET_KEY"],
    "stripe-sk-test": ["STRIPE_API_KEY", "STRIPE_SECRET_KEY", "stripeSecretKey"], "stripe-rk": ["STRIPE_RESTRICTED_KEY", "stripe_restricted_key", "stripeKey"],
    "openai": ["OPENAI_API_KEY", "openai_api_key", "openaiApiKey"], "gitlab": ["GITLAB_TOKEN", "gitlab_token", "CI_PUSH_TOKEN"],
    "npm": ["NPM_TOKEN", "npm_token", "NODE_AUTH_TOKEN"], "vault": ["VAULT_TOKEN", "vault_token", "X-Vault-Token"],
}
VENDOR_TOKEN_FAMILIES = list(VENDOR_TOKEN_KEYS)
_vendor_turn = [0]


def vendor_family():
    fam = VENDOR_TOKEN_FAMILIES[_vendor_turn[0] % len(VENDOR_TOKEN_FAMILIES)]
    _vendor_turn[0] += 1
    return fam


def vendor_key(fam, upper=None):
    keys = VENDOR_TOKEN_KEYS[fam]
    if upper is True:
        keys = [k for k in keys if k.replace("_", "").isupper()] or keys
    elif upper is False:
        keys = [k for k in keys if not k.replace("_", "").isupper() and "-" not in k] or keys
    return R.choice(keys)


def TOKENV(key, family, container):
    return P("TOKEN", token(family), family, "key:" + key_style(key), "container:" + container)


# --- passwords (PASSWORD) -----------------------------------------------------

HUMAN_WORDS = ["Summer", "Winter", "Spring", "Autumn", "Welcome", "Monkey", "Dragon", "Sunshine", "Football",
               "Passw0rd", "P@ssw0rd", "Letmein", "Admin", "Changeme", "Qwerty", "Secret", "Shadow", "Master",
               "Orange", "Banana", "Falcon", "Tigger", "Buster", "Pepper", "Hunter", "Matrix"]


def _pw_new():
    style = wpick([(22, "human"), (30, "random"), (15, "hex"), (10, "b64"), (8, "pwgen"), (8, "passphrase"), (7, "classic")])
    if style == "human":
        pw = R.choice(HUMAN_WORDS) + str(R.choice([1, 12, 123, 2022, 2023, 2024, 99, 7])) + R.choice(["", "!", "#", "$", "!!", "*"])
    elif style == "random":
        pw = rs(ALNUM + "!*-_.@%^&+~", R.randint(12, 24))
    elif style == "hex":
        pw = hexs(32)
    elif style == "b64":
        pw = b64(rbytes(18))
    elif style == "pwgen":
        pw = rs(LOW, 3) + R.choice(DIG) + rs(LOW, 4)
    elif style == "passphrase":
        words = ["plover", "lantern", "ranch", "cobalt", "mosaic", "tundra", "velvet", "harbor", "quartz", "saddle", "ember", "orbit"]
        pw = "-".join(R.sample(words, 3)) + "-" + str(R.randint(1, 9))
    else:
        pw = R.choice(["hunter2", "Tr0ub4dor&3", "correcthorsebatterystaple", "letmein123", "changeme", "s3cr3t",
                       "postgres", "admin123", "rootroot"])
    return pw, style


def password():
    """(password, style)"""
    return POOL.get("password", _pw_new)


PASSWORD_KEYS = ["password", "passwd", "pwd", "pass", "Password", "PASSWORD", "DB_PASSWORD", "PGPASSWORD",
                 "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD",
                 "RABBITMQ_DEFAULT_PASS", "SMTP_PASSWORD", "db_password", "dbPassword", "adminPassword",
                 "admin_password", "userPassword", "db-password", "spring.datasource.password",
                 "ELASTIC_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD", "LDAP_BIND_PASSWORD", "new_password", "password_confirmation"]

_SHELL_SAFE = re.compile(r"^[A-Za-z0-9._@%+=:,/-]+$")


def PWV(container, pw=None, style=None, key=None):
    if pw is None:
        pw, style = password()
    tags = [style, "container:" + container]
    if key:
        tags.append("key:" + key_style(key))
    return P("PASSWORD", pw, *tags)


def pw_url(pw):
    """Password as it must appear in a URL userinfo (RFC 3986)."""
    return quote(pw, safe="-_.~!*&+")


def shell_word(v):
    """Wrap a value the way bash -x prints it if needed: returns (pre, post)."""
    if _SHELL_SAFE.match(v.text):
        return "", ""
    return "'", "'"


def yaml_scalar(v):
    """Quote a YAML plain scalar when it would not parse as one."""
    t = v.text
    if t[0] in "!&*@%`\"'{}[]|>#,?:-~" or ": " in t or " #" in t or t.lower() in ("true", "false", "null", "yes", "no"):
        return ['"', v, '"']
    return [v]


# --- containers for key/value pairs -------------------------------------------

KV_CONTAINERS = {
    "eq": "key=value (logfmt, properties, libpq, env output)",
    "eq-spaced": "key = value (INI, ~/.aws/credentials, Kafka config dump)",
    "colon": "key: value (YAML, HTTP header, kubectl describe)",
    "json": '"key": "value" / "key":"value" (JSON)',
    "dotenv-quoted": 'KEY="value" (.env file)',
    "export": "export KEY=value (shell, bash -x trace)",
    "query": "?key=value& (URL query string or form body)",
    "cli-flag": "--key=value (command line)",
    "url-userinfo": "scheme://user:value@host (URL userinfo)",
    "header": "Header-Name: value (HTTP header)",
    "cookie": "name=value inside Cookie / Set-Cookie",
}


def kv(container, key, v, json_compact=False):
    """Segments rendering key/value in a container."""
    if container == "eq":
        return [key, "=", v]
    if container == "eq-spaced":
        return [key, " = ", v]
    if container == "colon":
        return [key, ": ", v]
    if container == "yaml":
        return [key, ": "] + yaml_scalar(v)
    if container == "json":
        return ['"', key, '":"' if json_compact else '": "', v, '"']
    if container == "dotenv-quoted":
        return [key, '="', v, '"']
    if container == "export":
        pre, post = shell_word(v)
        return ["export ", key, "=", pre, v, post]
    if container == "cli-flag":
        pre, post = shell_word(v)
        return ["--", key, "=", pre, v, post]
    raise ValueError(container)


# ---------------------------------------------------------------------------
# Look-alike factories
# ---------------------------------------------------------------------------

NAMESPACES = ["payments", "orders", "checkout", "default", "kube-system", "monitoring", "ingress-nginx",
              "cert-manager", "prod", "staging", "platform", "data", "auth", "search"]
DEPLOYS = ["api", "orders", "payments", "checkout", "frontend", "cart", "worker", "auth", "notifications",
           "search", "gateway", "billing", "inventory", "ledger", "scheduler", "webhooks", "users", "catalog"]
STATEFUL = ["postgres", "redis", "kafka", "rabbitmq", "mongodb", "elasticsearch", "zookeeper", "mysql"]
K8S_SAFE = "bcdfghjklmnpqrstvwxz2456789"   # k8s.io/apimachinery rand.SafeEncodeString alphabet


def rs_hash():
    return rs(K8S_SAFE, R.choice([9, 10, 10]))


def pod_name():
    def f():
        if R.random() < 0.2:
            return "%s-%d" % (R.choice(STATEFUL), R.randint(0, 2))
        d = R.choice(DEPLOYS)
        return "%s-%s-%s" % (d, rs_hash(), rs(K8S_SAFE, 5))
    return POOL.get("pod", f, reuse=0.5)


_POD_UIDS = {}


def pod_uid(pod):
    """The same pod keeps the same UID everywhere it is mentioned."""
    if pod not in _POD_UIDS:
        _POD_UIDS[pod] = str(uuid.UUID(bytes=rbytes(16), version=4))
    return _POD_UIDS[pod]


_POD_NS = {}


def pod_ns(pod):
    if pod not in _POD_NS:
        _POD_NS[pod] = R.choice(NAMESPACES)
    return _POD_NS[pod]


def POD_UIDV(pod, ctx):
    return P("UUID", pod_uid(pod), "lower", "pod-uid", "ctx:" + ctx)


def deploy_of(pod):
    parts = pod.split("-")
    return "-".join(parts[:-2]) if len(parts) >= 3 else parts[0]


def rs_of(pod):
    parts = pod.split("-")
    return "-".join(parts[:-1]) if len(parts) >= 3 else pod


def node_name():
    def f():
        kind = wpick([(45, "ec2"), (15, "ec2-regional"), (15, "gke"), (15, "aks"), (10, "plain")])
        if kind == "ec2":
            return "ip-10-0-%d-%d.ec2.internal" % (R.randint(0, 15), R.randint(2, 250))
        if kind == "ec2-regional":
            return "ip-10-%d-%d-%d.%s.compute.internal" % (R.randint(0, 3), R.randint(0, 63), R.randint(2, 250),
                                                          R.choice(["us-west-2", "eu-west-1", "eu-central-1"]))
        if kind == "gke":
            return "gke-prod-default-pool-%s-%s" % (hexs(8), rs(LOW + DIG, 4))
        if kind == "aks":
            return "aks-nodepool1-%d-vmss%06d" % (R.randint(10000000, 99999999), R.randint(0, 12))
        return "worker-%d.k8s.example.net" % R.randint(1, 12)
    return POOL.get("node", f, reuse=0.6)


def node_short(node):
    return node.split(".")[0]


def two_macs():
    a = mac_bytes()
    b = mac_bytes()
    while b == a:
        b = mac_bytes()
    return a, b


def host_seg(h):
    """A host name; EC2-style names that encode an IP are labelled K8S_NAME."""
    return K8S(h, "node-hostname") if h.startswith("ip-") else h


def resource_version():
    return str(R.randint(1_000_000, 99_999_999))


IMAGES = [("ghcr.io/acme/%s", "sem"), ("docker.io/library/nginx", "nginx"), ("registry.k8s.io/pause", "pause"),
          ("registry.k8s.io/kube-proxy", "kube"), ("quay.io/prometheus/node-exporter", "v"),
          ("123456789012.dkr.ecr.us-east-1.amazonaws.com/%s", "git"), ("mcr.microsoft.com/dotnet/aspnet", "dotnet"),
          ("gcr.io/distroless/static-debian12", "distroless"), ("public.ecr.aws/eks/aws-load-balancer-controller", "v"),
          ("docker.io/bitnami/postgresql", "bitnami"), ("redis", "redis"), ("postgres", "pg"),
          ("registry.gitlab.com/acme/%s", "sem"), ("europe-west1-docker.pkg.dev/acme-prod/apps/%s", "sem")]


def semver():
    v = "%d.%d.%d" % (R.randint(0, 4), R.randint(0, 30), R.randint(0, 20))
    r = R.random()
    if r < 0.15:
        v += "-rc.%d" % R.randint(1, 5)
    elif r < 0.22:
        v += "-beta.%d+build.%d" % (R.randint(1, 4), R.randint(1, 900))
    elif r < 0.26:
        v += "+%s" % hexs(7)
    return v


def image_ref(app=None, digest=None):
    def f():
        repo, style = R.choice(IMAGES)
        if "%s" in repo:
            repo = repo % (app or R.choice(DEPLOYS))
        tag = {"sem": lambda: semver(), "nginx": lambda: R.choice(["1.25.3", "1.25.3-alpine", "1.24.0", "stable-alpine"]),
               "pause": lambda: R.choice(["3.9", "3.8", "3.6"]), "kube": lambda: R.choice(["v1.28.4", "v1.27.8", "v1.29.0"]),
               "v": lambda: "v" + semver().split("+")[0], "git": lambda: "git-" + hexs(7),
               "dotnet": lambda: R.choice(["8.0", "8.0.0-bookworm-slim", "6.0.25"]),
               "distroless": lambda: R.choice(["nonroot", "latest"]), "bitnami": lambda: R.choice(["16.1.0-debian-11-r15", "15.5.0"]),
               "redis": lambda: R.choice(["7.2.3", "7.2-alpine", "6.2.14"]), "pg": lambda: R.choice(["16.1", "15.5-alpine", "16"])}[style]()
        ref = repo + ":" + tag
        d = R.random() < 0.3 if digest is None else digest
        if d:
            ref += "@sha256:" + hexs(64)
        return ref
    return POOL.get("image", f, reuse=0.5)


APP_REGISTRIES = ["ghcr.io/acme/%s", "123456789012.dkr.ecr.us-east-1.amazonaws.com/%s", "registry.gitlab.com/acme/%s",
                  "europe-west1-docker.pkg.dev/acme-prod/apps/%s"]
STATEFUL_IMAGES = {"postgres": ["docker.io/bitnami/postgresql:16.1.0-debian-11-r15", "postgres:16.1", "postgres:15.5-alpine"],
                   "redis": ["redis:7.2.3", "docker.io/bitnami/redis:7.2.3-debian-11-r2", "redis:7.2-alpine"],
                   "kafka": ["docker.io/bitnami/kafka:3.6.0", "confluentinc/cp-kafka:7.5.2"],
                   "rabbitmq": ["rabbitmq:3.12.10-management", "docker.io/bitnami/rabbitmq:3.12.10"],
                   "mongodb": ["mongo:7.0.4", "docker.io/bitnami/mongodb:7.0.4"],
                   "elasticsearch": ["docker.elastic.co/elasticsearch/elasticsearch:8.11.1"],
                   "zookeeper": ["docker.io/bitnami/zookeeper:3.9.1", "zookeeper:3.9.1"],
                   "mysql": ["mysql:8.2.0", "docker.io/bitnami/mysql:8.0.35"]}


BASE_IMAGES = ["docker.io/library/golang:1.21.5-alpine", "docker.io/library/node:20.10.0-bookworm-slim", "gcr.io/distroless/static-debian12:nonroot",
               "mcr.microsoft.com/dotnet/aspnet:8.0", "mcr.microsoft.com/dotnet/sdk:8.0.100", "docker.io/library/eclipse-temurin:17-jre",
               "docker.io/library/python:3.11.7-slim", "docker.io/library/rust:1.75.0-bookworm", "docker.io/library/alpine:3.19"]


def image_for(dep):
    """Image of a workload: stateful sets use public images, our apps a private registry."""
    def f():
        if dep in STATEFUL_IMAGES:
            ref = R.choice(STATEFUL_IMAGES[dep])
        else:
            ref = R.choice(APP_REGISTRIES) % dep + ":" + R.choice([semver(), semver(), "git-" + hexs(7), "sha-" + hexs(7)])
        if R.random() < 0.3:
            ref += "@sha256:" + hexs(64)
        return ref
    return POOL.get("image-" + dep, f, reuse=0.6)


def image_repo_tag(ref):
    return ref.split("@")[0]


def git_sha():
    return POOL.get("gitsha", lambda: hexs(40), reuse=0.3)


def sha256_digest():
    return "sha256:" + hexs(64)


def container_id():
    return POOL.get("cid", lambda: hexs(64), reuse=0.3)


def trace_id():
    return POOL.get("trace", lambda: hexs(32), reuse=0.25)


def span_id():
    return hexs(16)


def dd_id():
    return long_id(R.choice([18, 19]))


def traceparent():
    return "00-%s-%s-%s" % (trace_id(), span_id(), R.choice(["01", "01", "00"]))


def amzn_trace_id(t):
    return "Root=1-%08x-%s" % (epoch(t), hexs(24))


KERNEL_VERSIONS = ["5.15.0-91-generic", "6.1.0-17-amd64", "5.10.201-191.748.amzn2.x86_64", "6.5.0-14-generic",
                   "4.18.0-513.9.1.el8_9.x86_64", "6.6.7-arch1-1", "5.15.133+", "6.1.66-91.160.amzn2023.x86_64",
                   "5.4.0-169-generic", "6.2.0-1017-azure"]
GO_VERSIONS = ["go1.21.5", "go1.21.4", "go1.20.12", "go1.22rc1", "go1.19.13"]
RUST_VERSIONS = [("1.75.0", "82e1608df", "2023-12-21", "82e1608dfa6e0b5569232559e3d385fea5a93112"),
                 ("1.74.1", "a28077b28", "2023-12-04", "a28077b28a02b92985b3a3faecf92813155f1ea1"),
                 ("1.76.0-nightly", "d6d7a9386", "2023-12-14", "d6d7a93866f2ffcfb51d8b6c9d3f2a4b5c6d7e8f")]
VERSION_NOTATIONS = {
    "semver": "MAJOR.MINOR.PATCH", "semver-pre-build": "semver with pre-release and/or build metadata",
    "four-part": "four numeric parts (.NET assembly, Windows build)", "ipv4-shaped": "four parts each <= 255 (looks like IPv4)",
    "kernel": "Linux kernel release strings", "toolchain": "Go / Rust / JDK / Node toolchain versions",
    "v-prefixed": "v1.2.3", "two-part": "MAJOR.MINOR",
}


def VER(text, *tags):
    return L("VERSION", text, *tags)


def ver_tag(v):
    core = v.lstrip("v")
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", core) and all(int(x) <= 255 for x in core.split(".")):
        return "ipv4-shaped"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+.*", core):
        return "four-part"
    if re.search(r"[-+]", core) and re.match(r"\d+\.\d+\.\d+[-+]", core):
        return "semver-pre-build"
    if v.startswith("v"):
        return "v-prefixed"
    if re.fullmatch(r"\d+\.\d+\.\d+", core):
        return "semver"
    if re.fullmatch(r"\d+\.\d+", core):
        return "two-part"
    return "other"


def V_(v, *extra):
    return VER(v, ver_tag(v), *extra)


def order_id():
    return long_id(R.choice([13, 14, 15, 16, 17, 18, 19]))


def grouped_non_luhn():
    d = not_luhn(R.choice("123456789") + rs(DIG, 15))
    sep = R.choice([" ", "-"])
    return sep.join(d[i:i + 4] for i in range(0, 16, 4))


def NUM(text, *tags):
    if re.fullmatch(r"[\d -]+", text):
        digits = re.sub(r"\D", "", text)
        if 13 <= len(digits) <= 19:
            assert not luhn_ok(digits), text
    return L("NUMBER", text, *tags)


def HEX(text, *tags):
    return L("HEX_ID", text, *tags)


def KN(text, *tags):
    return L("KEY_NAME", text, *tags)


def PORT(text, *tags):
    return L("PORT", text, *tags)


def CODE(text, *tags):
    return L("CODE_PATH", text, *tags)


def K8S(text, *tags):
    return L("K8S_NAME", text, *tags)


def OIDV(text, *tags):
    return L("OID", text, *tags)


def HASHV(text, *tags):
    return L("HASH", text, *tags)


def TRACE(text, *tags):
    return L("TRACE_ID", text, *tags)


def IMG(text, *tags):
    return L("IMAGE_REF", text, *tags)


def hostname_internal():
    return R.choice(["db.internal", "postgres.payments.svc.cluster.local", "orders-db.cluster-c9x2k.us-east-1.rds.amazonaws.com",
                     "pg-primary.data.svc", "mysql-0.mysql.data.svc.cluster.local", "redis-master.cache.svc.cluster.local",
                     "rabbitmq.messaging.svc", "mongo-0.mongo.data.svc.cluster.local", "kafka-2.kafka-headless.data.svc",
                     "api.example.com", "auth.example.com", "db01.corp.example", "cache.internal", "vault.platform.svc"])


PUBLIC_HOSTS = ["api.example.com", "shop.example.com", "www.example.org", "app.example.net", "auth.example.com",
                "status.example.com", "cdn.example.net", "admin.example.org"]

UAS = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36", ["120.0.0.0", "119.0.0.0", "121.0.0.0"]),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36", ["120.0.0.0", "118.0.0.0"]),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/{v}", ["121.0", "120.0.1"]),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/{v} Mobile/15E148 Safari/604.1", ["17.1.2", "17.1"]),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/{v}", ["120.0.2210.91", "119.0.2151.97"]),
    ("curl/{v}", ["8.4.0", "7.88.1", "7.81.0", "8.5.0"]),
    ("python-requests/{v}", ["2.31.0", "2.28.2"]),
    ("Go-http-client/{v}", ["1.1", "2.0"]),
    ("kube-probe/{v}", ["1.28", "1.27", "1.29"]),
    ("Prometheus/{v}", ["2.48.1", "2.45.0"]),
    ("okhttp/{v}", ["4.12.0", "4.9.3"]),
    ("ELB-HealthChecker/{v}", ["2.0"]),
    ("Apache-HttpClient/{v} (Java/17.0.9)", ["5.2.1", "4.5.14"]),
    ("axios/{v}", ["1.6.2", "0.27.2"]),
]


def user_agent():
    """Segments of a User-Agent with the product version labelled VERSION."""
    tpl, vers = R.choice(UAS)
    v = R.choice(vers)
    a, b = tpl.split("{v}")
    out = []
    # Chrome/120.0.0.0 inside the Edge UA is a fixed IPv4-shaped version too
    if "Chrome/120.0.0.0 Safari/537.36 Edg/" in a:
        i = a.index("120.0.0.0")
        out += [a[:i], V_("120.0.0.0", "user-agent"), a[i + 9:]]
    else:
        out.append(a)
    out += [V_(v, "user-agent"), b]
    return out


# ---------------------------------------------------------------------------
# 3. Log sources: one function per source, each returns one Rec
# ---------------------------------------------------------------------------

HTTP_OK_STATUS = [200, 200, 200, 200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 404, 429, 499, 500, 502, 503, 504]


def client_ipv(v6_share=0.18, forms=("v6", "v6", "v6-mapped"), ctx="plain"):
    text, form = ip_any("client", v6_share, forms)
    return IPV(text, form, ctx)


def request_target():
    """(method, segments of the request target, status hint)"""
    k = wpick([(16, "static"), (12, "uuid"), (7, "email"), (6, "reset"), (6, "apikey"), (5, "jwt"), (4, "oauth"),
               (4, "presigned"), (5, "registry"), (5, "orderid"), (3, "card"), (8, "health"), (5, "search"),
               (4, "login"), (3, "slack"), (4, "card"), (3, "jwt"), (2, "presigned")])
    if k == "static":
        return "GET", [R.choice(["/", "/index.html", "/favicon.ico", "/robots.txt", "/static/js/main.%s.js" % hexs(8),
                                 "/static/css/app.%s.css" % hexs(8), "/assets/logo.svg", "/api/v1/products?page=%d&limit=50" % R.randint(1, 40)])], None
    if k == "uuid":
        return R.choice(["GET", "GET", "PUT", "DELETE"]), ["/api/v1/%s/" % R.choice(["orders", "users", "carts", "invoices", "shipments"]),
                                                          UUIDV("url-path"), R.choice(["", "", "/items", "/refund", "/status"])], None
    if k == "email":
        addr, form, _ = email()
        if R.random() < 0.5:
            return "GET", ["/api/v1/users?email=", P("EMAIL", quote(addr, safe=""), form, "url-encoded", "ctx:query")], None
        return "GET", ["/api/v1/users/lookup?email=", P("EMAIL", addr, form, "ctx:query"), "&include=orders"], None
    if k == "reset":
        addr, form, _ = email()
        return "GET", ["/reset-password?token=", TOKENV("token", "opaque", "query"), "&email=",
                       P("EMAIL", quote(addr, safe=""), form, "url-encoded", "ctx:query")], None
    if k == "apikey":
        key = R.choice(["api_key", "apikey", "key", "api-key", "access_key"])
        fam = R.choice(["hex32", "alnum32"])
        return "GET", ["/v1/%s?format=%s&%s=" % (R.choice(["export", "reports", "events", "metrics/query"]), R.choice(["csv", "json"]), key),
                       SECRETV(key, fam, "query"), "&from=2023-10-01"], None
    if k == "jwt":
        return "GET", [R.choice(["/ws?access_token=", "/api/v1/stream?token=", "/sso/callback?id_token=", "/download?jwt="]),
                       JWTV("query")], None
    if k == "oauth":
        return "GET", ["/oauth/callback?code=", TOKENV("code", "oauth-code", "query"), "&state=%s" % rs(ALNUM, 16)], 302
    if k == "presigned":
        t = rdt()
        kid = aws_pair(temporary=False)[0]
        return "GET", ["/%s/%s?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" % (R.choice(["backups", "exports", "uploads"]),
                                                                                       "orders-%s.csv.gz" % t.strftime("%Y-%m-%d")),
                       P("AWS_KEY", kid, "AKIA", "ctx:query"), "%2F" + t.strftime("%Y%m%d") + "%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=",
                       T(t.strftime("%Y%m%dT%H%M%SZ"), "iso8601-basic"), "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + hexs(64)], 200
    if k == "registry":
        return R.choice(["GET", "HEAD"]), ["/v2/acme/%s/%s/" % (R.choice(DEPLOYS), R.choice(["manifests", "blobs"])),
                                           HASHV(sha256_digest(), "sha256-digest")], 200
    if k == "orderid":
        return "GET", ["/api/v1/orders/", NUM(order_id(), "order-id"), R.choice(["", "/tracking"])], None
    if k == "card":
        return "GET", ["/legacy/checkout/confirm.php?cc=", CARDV("query", "plain"), "&exp=12%2F27&amount=49.99"], 200
    if k == "health":
        return "GET", [R.choice(["/healthz", "/readyz", "/livez", "/metrics", "/health", "/ping"])], 200
    if k == "search":
        return "GET", ["/search?q=%s&page=%d" % (R.choice(["socks", "red+shoes", "gift+card", "laptop", "kubernetes"]), R.randint(1, 9))], None
    if k == "login":
        return "POST", [R.choice(["/api/v1/login", "/login", "/oauth/token", "/api/v1/sessions", "/wp-login.php"])], None
    return "POST", ["/services/T%s/B%s/" % (rs(UPP + DIG, 8), rs(UPP + DIG, 8)), SECRETV("webhook", "slack-webhook", "url-path")], 200


def src_nginx_access():
    r = Rec("nginx-access")
    t = rdt()
    method, target, st = request_target()
    status = st or R.choice(HTTP_OK_STATUS)
    if isinstance(target[0], str) and target[0].startswith(("/static/", "/assets/", "/favicon", "/robots", "/index")):
        status = R.choice([200, 200, 304, 404])
    size = R.randint(0, 48000) if status < 400 else R.randint(0, 600)
    if status in (204, 304):
        size = 0
    size_v = str(size)
    if method == "GET" and status == 200 and R.random() < 0.12:
        size_v = NUM(str(R.randint(10 ** 7, 4 * 10 ** 9)), "byte-count")
    user = "-"
    if R.random() < 0.1:
        user = R.choice([R.choice(["admin", "deploy", "grafana", "prometheus"]), EMAILV("remote-user")])
    ref = "-"
    if R.random() < 0.35:
        ref = R.choice(["https://%s/" % R.choice(PUBLIC_HOSTS), "https://%s/cart" % R.choice(PUBLIC_HOSTS),
                        "https://www.google.com/", "https://%s/account/settings" % R.choice(PUBLIC_HOSTS)])
    elif R.random() < 0.08:
        ref = ["https://%s/reset-password?token=" % R.choice(PUBLIC_HOSTS), TOKENV("token", "opaque", "referer")]
    proto = R.choice(["HTTP/1.1", "HTTP/1.1", "HTTP/2.0", "HTTP/1.0"])
    variant = wpick([(65, "combined"), (20, "xff"), (15, "timed")])
    remote = client_ipv() if variant != "xff" else IPV(ip4("internal"), "v4", "plain")
    r.add('{ip} - {user} [{ts}] "{method} {target} {proto}" {status} {size} "{ref}" "{ua}"',
          ip=remote, user=user, ts=T(ts_nginx(t), "nginx-time-local"), method=method, target=target, proto=proto,
          status=str(status), size=size_v, ref=ref, ua=user_agent())
    if variant == "xff":
        n = R.choice([1, 1, 2, 3])
        xff = []
        for i in range(n):
            if i:
                xff.append(", ")
            if i == 0:
                xff.append(client_ipv(0.15, ("v6",), "xff-list"))
            else:
                xff.append(IPV(ip4("internal"), "v4", "xff-list"))
        r.add(' "{xff}"', xff=xff)
    elif variant == "timed":
        rt = R.random() * 2
        r.add(" rt=%.3f uct=\"%.3f\" uht=\"%.3f\" urt=\"%.3f\" req_id={rid}" % (rt, rt / 10, rt * 0.9, rt * 0.95),
              rid=TRACE(hexs(32), "x-request-id-hex"))
    return r


NGINX_UPSTREAM_ERRORS = [
    "connect() failed (111: Connection refused) while connecting to upstream",
    "upstream timed out (110: Connection timed out) while reading response header from upstream",
    "upstream prematurely closed connection while reading response header from upstream",
    "recv() failed (104: Connection reset by peer) while reading response header from upstream",
    "no live upstreams while connecting to upstream",
]


def src_nginx_error():
    r = Rec("nginx-error")
    t = rdt()
    lvl = "error"
    pid = R.randint(7, 40)
    head = dict(ts=T(t.strftime("%Y/%m/%d %H:%M:%S"), "nginx-error-time"))
    k = wpick([(38, "upstream"), (10, "open"), (8, "auth"), (8, "limit"), (8, "notice"), (8, "ssl"), (8, "body"),
               (6, "forbidden"), (6, "referrer")])
    host = R.choice(PUBLIC_HOSTS)
    if k == "notice":
        what = R.choice(["nginx", "os", "gcc", "start"])
        if what == "nginx":
            r.add("{ts} [notice] 1#1: nginx/{v}", v=V_(R.choice(["1.25.3", "1.24.0", "1.22.1", "1.25.2"])), **head)
        elif what == "os":
            r.add("{ts} [notice] 1#1: OS: Linux {v}", v=VER(R.choice(KERNEL_VERSIONS), "kernel"), **head)
        elif what == "gcc":
            r.add("{ts} [notice] 1#1: built by gcc {v} (Debian 12.2.0-14) ", v=V_("12.2.0"), **head)
        else:
            r.add("{ts} [notice] 1#1: start worker process %d" % R.randint(20, 90), **head)
        return r
    r.add("{ts} [%s] %d#%d: *%d " % (lvl, pid, pid, R.randint(1, 9_000_000)), **head)
    client = client_ipv(0.15, ("v6",), "plain")
    method, target, _ = request_target()
    if k == "upstream":
        path = target
        if R.random() < 0.5:
            text, form = ip_any("pod", 0.15, ("v6",))
            if form != "v4":
                text = ip6("v6", "internal")
            up = ["http://", hostport(text, form, R.choice([8080, 3000, 8000, 9000])), path]
        else:
            up = ["http://", PORT("%s.%s.svc.cluster.local:%d" % (R.choice(DEPLOYS), R.choice(NAMESPACES), R.choice([8080, 80, 3000])),
                                  "host:port"), path]
        r.add('{msg}, client: {client}, server: {server}, request: "{method} {target} HTTP/1.1", upstream: "{up}", host: "{host}"',
              msg=R.choice(NGINX_UPSTREAM_ERRORS), client=client, server=host, method=method, target=target, up=up, host=host)
        if R.random() < 0.3:
            r.add(', referrer: "https://{h}/"', h=host)
    elif k == "open":
        r.add('open() "/usr/share/nginx/html/{f}" failed (2: No such file or directory), client: {client}, server: {server}, request: "GET /{f} HTTP/1.1", host: "{host}"',
              f=R.choice(["favicon.ico", "wp-login.php", ".env", "apple-touch-icon.png", ".git/config"]), client=client, server=host, host=host)
    elif k == "auth":
        if R.random() < 0.6:
            r.add('user "{u}": password {mm}, client: {client}, server: {server}, request: "GET /admin/ HTTP/1.1", host: "{host}"',
                  u=R.choice(["admin", "ops", "grafana", "deploy"]), mm=KN("mismatch", "after-password"), client=client, server=host, host=host)
        else:
            r.add('no user/password {wp} for basic authentication, client: {client}, server: {server}, request: "GET /metrics HTTP/1.1", host: "{host}"',
                  wp=KN("was provided", "after-password"), client=client, server=host, host=host)
    elif k == "limit":
        r.add('limiting requests, excess: %.3f by zone "perip", client: {client}, server: {server}, request: "{method} {target} HTTP/1.1", host: "{host}"'
              % (R.random() * 30), client=client, server=host, method=method, target=target, host=host)
    elif k == "ssl":
        r.reset()
        r.add("{ts} [%s] %d#%d: *%d " % (R.choice(["info", "crit"]), pid, pid, R.randint(1, 9_000_000)), **head)
        r.add("SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: {client}, server: {srv}",
              client=client, srv=PORT("%s:443" % host, "host:port"))
    elif k == "body":
        r.add("client intended to send too large body: {n} bytes, client: {client}, server: {server}, request: \"POST /api/v1/uploads HTTP/1.1\", host: \"{host}\"",
              n=NUM(str(R.randint(10 ** 7, 10 ** 9)), "byte-count"), client=client, server=host, host=host)
    elif k == "forbidden":
        r.add('access forbidden by rule, client: {client}, server: {server}, request: "GET /server-status HTTP/1.1", host: "{host}"',
              client=client, server=host, host=host)
    else:
        r.add('upstream sent too big header while reading response header from upstream, client: {client}, server: {server}, request: "{method} {target} HTTP/1.1", upstream: "http://{up}/", host: "{host}", referrer: "https://{host}/reset?token={tok}"',
              client=client, server=host, method=method, target=target, up=PORT("localhost:8080", "host:port"),
              host=host, tok=TOKENV("token", "opaque", "query"))
    return r


# --- application JSON logs ---------------------------------------------------

GO_CALLERS = ["handler/orders.go:88", "server/http.go:142", "payments/charge.go:57", "auth/login.go:203",
              "store/postgres.go:311", "cmd/api/main.go:64", "middleware/logging.go:41", "worker/consumer.go:129"]
PY_FRAMES = [("/usr/local/lib/python3.11/site-packages/requests/adapters.py", 519, "send"),
             ("/usr/local/lib/python3.11/site-packages/urllib3/connectionpool.py", 793, "urlopen"),
             ("/app/orders/services/payment.py", 88, "charge"),
             ("/app/orders/views.py", 142, "checkout"),
             ("/usr/local/lib/python3.11/site-packages/django/core/handlers/exception.py", 55, "inner"),
             ("/usr/local/lib/python3.11/site-packages/psycopg2/__init__.py", 122, "connect"),
             ("/usr/local/lib/python3.12/site-packages/sqlalchemy/engine/base.py", 1969, "_exec_single_context")]


def k8s_meta_json():
    pod = pod_name()
    ns = pod_ns(pod)
    return ['"kubernetes":{"pod_name":"', K8S(pod, "pod"), '","namespace_name":"', K8S(ns, "namespace"),
            '","pod_id":"', POD_UIDV(pod, "json"), '","host":"', K8S(node_name(), "node"), '","container_name":"',
            deploy_of(pod), '","docker_id":"', HEX(container_id(), "container-id"), '","container_image":"',
            IMG(image_for(deploy_of(pod)), "oci-ref"), '"}']


def src_app_json():
    r = Rec("app-json")
    t = rdt()
    k = wpick([(12, "zap-order"), (9, "zap-http"), (10, "pino"), (9, "login"), (17, "payment"), (8, "llm"),
               (9, "fluentbit"), (8, "python-exc"), (7, "config"), (6, "winston-user"), (8, "device"), (8, "startup")])
    if k == "zap-order" and R.random() < 0.35:
        r.add('{"level":"info","ts":{ts},"caller":"{caller}","msg":"order created","order_id":"{oid}","user":{"id":"{uid}","email":"{em}"},"amount_cents":%d,"dd":{"trace_id":"{tid}","span_id":"{sid}","service":"orders","version":"{v}"}}'
              % R.randint(199, 99999),
              ts=T("%d.%06d" % (epoch(t), t.microsecond), "epoch-float"), caller=CODE(R.choice(GO_CALLERS), "go-file-line"),
              oid=NUM(order_id(), "order-id"), uid=UUIDV("json"), em=EMAILV("json"), tid=TRACE(dd_id(), "datadog-numeric"),
              sid=TRACE(long_id(R.choice([15, 16, 17, 18, 19])), "datadog-numeric"), v=V_(semver()))
    elif k == "startup":
        dep = R.choice(DEPLOYS)
        r.add('{"time":"{ts}","level":"INFO","msg":"starting %s","version":"{v}","commit":"{sha}","built":"{bt}","go":"{gv}","image":"{img}","listen":"{addr}","pod":"{pod}"}' % dep,
              ts=T(ts_iso(t, 3), "rfc3339"), v=V_(semver()), sha=HASHV(git_sha() if R.random() < 0.6 else git_sha()[:7], "git-sha"),
              bt=T(ts_iso(t - dt.timedelta(days=R.randint(1, 20)), 0), "rfc3339"), gv=VER(R.choice(GO_VERSIONS), "toolchain"),
              img=IMG(image_for(dep), "oci-ref"), addr=PORT(":%d" % R.choice([8080, 9090, 3000]), ":port"), pod=K8S(pod_name(), "pod"))
    elif k == "zap-order":
        r.add('{"level":"info","ts":{ts},"caller":"{caller}","msg":"order created","order_id":"{oid}","user":{"id":"{uid}","email":"{em}"},"amount_cents":%d,"currency":"%s","trace_id":"{tid}","span_id":"{sid}"}'
              % (R.randint(199, 99999), R.choice(["EUR", "USD", "GBP"])),
              ts=T("%d.%06d" % (epoch(t), t.microsecond), "epoch-float"), caller=CODE(R.choice(GO_CALLERS), "go-file-line"),
              oid=NUM(order_id(), "order-id"), uid=UUIDV("json"), em=EMAILV("json"), tid=TRACE(trace_id(), "w3c-trace-id"),
              sid=TRACE(span_id(), "w3c-span-id"))
    elif k == "zap-http":
        ip = client_ipv(0.2, ("v6", "v6-mapped"), "json")
        r.add('{"level":"%s","ts":"{ts}","logger":"http","caller":"{caller}","msg":"request","method":"%s","path":"/api/v1/users/{uid}","status":%d,"latency":"%.3fms","remote_ip":"{ip}","request_id":"{rid}","bytes_out":{bo}}'
              % (R.choice(["info", "warn"]), R.choice(["GET", "PATCH"]), R.choice([200, 200, 404, 409]), R.random() * 300),
              ts=T(ts_iso(t, 3), "rfc3339"), caller=CODE("middleware/logging.go:%d" % R.randint(30, 90), "go-file-line"),
              uid=UUIDV("json"), ip=ip, rid=UUIDV("json") if R.random() < 0.5 else TRACE(hexs(32), "x-request-id-hex"),
              bo=NUM(str(R.randint(10 ** 6, 10 ** 8)), "byte-count") if R.random() < 0.3 else str(R.randint(80, 9000)))
    elif k == "pino":
        pod = pod_name()
        auth = R.random()
        if auth < 0.45:
            hv = ["Bearer ", JWTV("header")]
        elif auth < 0.7:
            fam = R.choice(["github-ghp", "stripe-sk-live", "opaque", "slack-xoxb"])
            hv = ["Bearer ", TOKENV("authorization", fam, "header")]
        else:
            user = R.choice(["admin", "api", "svc-orders", "jane"])
            pw, style = password()
            hv = ["Basic ", PWV("basic-auth", b64((user + ":" + pw).encode()), "basic-b64")]
        r.add('{"level":30,"time":{ts},"pid":1,"hostname":"{pod}","req":{"id":%d,"method":"%s","url":"/api/v1/%s","headers":{"host":"%s","authorization":"{auth}","user-agent":"{ua}"},"remoteAddress":"{ip}","remotePort":{port}},"res":{"statusCode":%d},"responseTime":%d,"msg":"request completed"}'
              % (R.randint(1, 99999), R.choice(["GET", "POST"]), R.choice(["orders", "cart", "me", "checkout"]), R.choice(PUBLIC_HOSTS),
                 R.choice([200, 201, 401, 500]), R.randint(1, 900)),
              ts=T(epoch_ms(t), "epoch-ms"), pod=K8S(pod, "pod"), auth=hv, ua=user_agent(),
              ip=IPV(ip4_mapped(), "v6-mapped", "json") if R.random() < 0.8 else IPV("::1", "v6-loopback", "json"), port=PORT(str(R.randint(32768, 60999)), "port"))
    elif k == "login":
        ok = R.random() < 0.4
        ip = client_ipv(0.2, ("v6",), "json")
        reset = R.choice(["true", "false"])
        r.add('{"timestamp":"{ts}","level":"%s","logger":"auth.login","event":"%s","user":{"email":"{em}","id":"{uid}"},"client":{"ip":"{ip}","ua":"{ua}"},"mfa":%s,"{k1}":{v1},"failed_attempts":%d}'
              % ("INFO" if ok else "WARN", "login_succeeded" if ok else "login_failed", R.choice(["true", "false"]), R.randint(0, 6)),
              ts=T(ts_iso(t, 6, "+00:00"), "rfc3339"), em=EMAILV("json"), uid=UUIDV("json"), ip=ip, ua=user_agent(),
              k1=KN(R.choice(["password_reset_requested", "password_expired", "has_password", "password_changed"]), "boolean-flag-key"),
              v1=KN(reset, "boolean-flag-value"))
    elif k == "payment":
        c = CARDV("json")
        vch = ['"voucher_code":"', NUM(grouped_non_luhn(), "grouped-4444"), '",'] if R.random() < 0.4 else ""
        r.add('{"@timestamp":"{ts}","log.level":"error","message":"charge declined","service.name":"payments","payment":{"id":"{pid}","amount":%0.2f,{vch}"card":{"number":"{card}","exp_month":%d,"exp_year":%d,"brand":"%s"},"decline_code":"%s"},"customer":{"email":"{em}"},"trace.id":"{tid}","transaction.id":"{sid}"}'
              % (R.random() * 400, R.randint(1, 12), R.randint(2024, 2030), c.tags[1], R.choice(["insufficient_funds", "do_not_honor", "card_declined", "expired_card"])),
              ts=T(ts_iso(t, 3), "rfc3339"), pid=UUIDV("json"), vch=vch, card=c, em=EMAILV("json"), tid=TRACE(trace_id(), "w3c-trace-id"),
              sid=TRACE(span_id(), "w3c-span-id"))
    elif k == "llm":
        pt, ct = R.randint(20, 3000), R.randint(5, 1200)
        if R.random() < 0.35:
            key = R.choice(["api_key", "openai_api_key", "apiKey"])
            r.add('{"ts":"{ts}","level":"debug","msg":"llm client configured","model":"%s","{key}":"{val}","base_url":"https://api.openai.com/v1","max_tokens":{mt},"timeout_s":60}'
                  % R.choice(["gpt-4o-mini", "gpt-4-turbo", "gpt-3.5-turbo"]),
                  ts=T(ts_iso(t, 3), "rfc3339"), key=key, val=TOKENV(key, "openai", "json"), mt=KN(str(R.choice([256, 1024, 4096, 8192])), "max_tokens"))
        else:
            r.add('{"ts":"{ts}","level":"info","msg":"completion finished","model":"%s","usage":{"prompt_tokens":{pt},"completion_tokens":{ct},"total_tokens":{tt}},"max_tokens":{mt},"token_count":{tc},"latency_ms":%d,"request_id":"{rid}"}'
                  % (R.choice(["gpt-4o-mini", "gpt-4-turbo", "claude-3-haiku"]), R.randint(200, 20000)),
                  ts=T(ts_iso(t, 3), "rfc3339"), pt=KN(str(pt), "token count"), ct=KN(str(ct), "token count"), tt=KN(str(pt + ct), "token count"),
                  mt=KN(str(R.choice([256, 1024, 4096, 8192])), "max_tokens"), tc=KN(str(pt + ct), "token_count"), rid=TRACE("req_" + hexs(24), "request-id"))
    elif k == "fluentbit":
        inner = R.choice([
            ["GET /api/v1/orders/", UUIDV("embedded"), " 200 12ms"],
            ["user ", EMAILV("embedded"), " signed in"],
            ["connected to redis at ", hostport(ip4("internal"), "v4", 6379)],
            ["cache miss for key session:", TOKENV("session", "session-generic", "embedded")],
            ["worker started, version ", V_(semver())],
        ])
        r.add('{"log":"{inner}","stream":"%s","time":"{ts}",{meta}}' % R.choice(["stdout", "stderr"]),
              inner=inner, ts=T(ts_iso(t, 9), "rfc3339-nano"), meta=k8s_meta_json())
    elif k == "python-exc":
        fr = R.sample(PY_FRAMES, 2)
        host = ip4("internal")
        r.add('{"asctime":"{ts}","levelname":"ERROR","name":"orders.payment","message":"payment provider unreachable","exc_info":"Traceback (most recent call last):\\n  File \\"{f1}\\", line %d, in %s\\n  File \\"{f2}\\", line %d, in %s\\nrequests.exceptions.ConnectionError: HTTPConnectionPool(host=\'{ip}\', port={port}): Max retries exceeded with url: /v1/charges?customer={em}","otelTraceID":"{tid}","otelSpanID":"{sid}"}'
              % (fr[0][1], fr[0][2], fr[1][1], fr[1][2]),
              ts=T(t.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % (t.microsecond // 1000), "python-asctime"),
              f1=CODE(fr[0][0], "python-path"), f2=CODE(fr[1][0], "python-path"), ip=IPV(host, "v4", "quoted"),
              port=PORT(str(R.choice([8080, 8000, 443])), "port"), em=EMAILV("query"), tid=TRACE(trace_id(), "w3c-trace-id"),
              sid=TRACE(span_id(), "w3c-span-id"))
    elif k == "config":
        pw, style = password()
        skey, sfam = secret_key(lambda k_, f: f in ("hex32", "hex64", "b64-32", "alnum32") and k_[0].islower())
        r.add('{"time":"{ts}","level":"DEBUG","msg":"effective configuration","config":{"http":{"addr":"{addr}"},"database":{"url":"postgres://app:{pw}@{dbh}/orders?sslmode=require","max_conns":20},"redis":{"addr":"{raddr}","password":"{rpw}"},"auth":{"{skey}":"{sval}","token_ttl_seconds":{ttl},"secret_rotation_days":{rot}}}}',
              ts=T(ts_iso(t, 3), "rfc3339"), addr=PORT(":%d" % R.choice([8080, 8443, 3000]), ":port"),
              pw=PWV("url-userinfo", pw_url(pw), style), dbh=PORT(R.choice(["db.internal:5432", "pg-primary.data.svc:5432", "orders-db.cluster-c9x2k.us-east-1.rds.amazonaws.com:5432"]), "host:port"),
              raddr=PORT("redis-master.cache.svc.cluster.local:6379", "host:port"), rpw=PWV("json", key="password"),
              skey=skey, sval=SECRETV(skey, sfam, "json"), ttl=KN(str(R.choice([900, 3600, 86400])), "token_ttl"), rot=KN(str(R.choice([30, 60, 90])), "secret_rotation_days"))
    elif k == "winston-user":
        f, l = person()
        r.add('{"level":"info","message":"profile updated","service":"users","timestamp":"{ts}","userId":"{uid}","changes":{"email":{"from":"{e1}","to":"{e2}"},"display_name":"%s %s"},"ip":"{ip}"}'
              % (f.capitalize(), l.capitalize()),
              ts=T(ts_iso(t, 3), "rfc3339"), uid=UUIDV("json"), e1=EMAILV("json"), e2=EMAILV("json"), ip=client_ipv(0.2, ("v6-mapped", "v6"), "json"))
    else:
        up = R.random() < 0.65
        r.add('{"ts":"{ts}","level":"info","msg":"device registered","device":{"id":"{did}","mac":"{mac}","firmware":"{fw}","serial":"{serial}"},"owner":"{em}","ip":"{ip}"}',
              ts=T(ts_iso(t, 3), "rfc3339"), did=UUIDV("json", upper=up), mac=MACV("colon-upper" if up else "colon-lower", "json"),
              fw=V_(R.choice(["7.7.37.114-alpha.2", "v1.2.3.4", "2.4.1.10", "3.10.2", "1.0.0.1"]), "firmware"),
              serial=NUM(long_id(R.choice([13, 15, 16])), "serial"), em=EMAILV("json"), ip=client_ipv(0.2, ("v6",), "json"))
    return r


# --- logfmt --------------------------------------------------------------------

def src_app_logfmt():
    r = Rec("app-logfmt")
    t = rdt()
    k = wpick([(15, "gokit"), (11, "heroku"), (9, "grafana"), (10, "oauth"), (10, "policy"), (9, "usage"),
               (16, "card"), (8, "conn"), (8, "micros"), (8, "webhook"), (12, "integration")])
    if k == "integration":
        fam = vendor_family()
        key = vendor_key(fam, upper=False)
        r.add('time={ts} level=debug msg="integration client initialised" provider=%s {k}={v} base_url=%s timeout=30s'
              % (fam.split("-")[0], {"github": "https://api.github.com", "slack": "https://slack.com/api", "stripe": "https://api.stripe.com",
                                     "openai": "https://api.openai.com/v1", "gitlab": "https://gitlab.com/api/v4", "npm": "https://registry.npmjs.org",
                                     "vault": "https://vault.platform.svc:8200"}[fam.split("-")[0]]),
              ts=T(ts_iso(t, 3), "rfc3339"), k=key, v=TOKENV(key, fam, "eq"))
        return r
    if k == "gokit":
        ip = client_ipv(0.2, ("v6",), "port")
        addr = hostport(ip.text, ip.tags[0], R.randint(32768, 60999))
        r.add('time={ts} level=info msg="request completed" method=%s path=/api/v1/orders/{oid} status=%d duration=%.1fms remote_addr={addr} request_id={rid} user_email={em}'
              % (R.choice(["GET", "POST", "DELETE"]), R.choice([200, 201, 204, 404]), R.random() * 200),
              ts=T(ts_iso(t, 3), "rfc3339"), oid=UUIDV("url-path"), addr=addr,
              rid=TRACE(hexs(32), "x-request-id-hex") if R.random() < 0.6 else UUIDV("logfmt"), em=EMAILV("logfmt"))
    elif k == "heroku":
        r.add('{ts} heroku[router]: at=info method=%s path="/%s" host=%s request_id={rid} fwd="{fwd}" dyno=web.%d connect=%dms service=%dms status=%d bytes=%d protocol=https'
              % (R.choice(["GET", "POST"]), R.choice(["", "api/cart", "login", "checkout"]), R.choice(["shop-example.herokuapp.com", "api.example.com"]),
                 R.randint(1, 4), R.randint(0, 3), R.randint(2, 900), R.choice([200, 302, 404, 503]), R.randint(200, 20000)),
              ts=T(ts_iso(t, 6, "+00:00"), "rfc3339"), rid=UUIDV("logfmt"), fwd=client_ipv(0.1, ("v6",), "quoted"))
    elif k == "grafana":
        r.add('logger=context userId=%d orgId=1 uname={em} t={ts} level=info msg="Request Completed" method=GET path=/api/dashboards/uid/%s status=%d remote_addr={ip} time_ms=%d duration=%.2fms size=%d referer= handler=/api/dashboards/uid/:uid'
              % (R.randint(1, 90), rs(ALNUM, 9), R.choice([200, 401, 403]), R.randint(1, 80), R.random() * 80, R.randint(20, 9000)),
              em=EMAILV("logfmt"), ts=T(ts_iso(t, 2, "+00:00"), "rfc3339"), ip=client_ipv(0.2, ("v6",), "plain"))
    elif k == "oauth":
        r.add('ts={ts} level=debug caller={caller} msg="oauth token refreshed" client_id=%s access_token={at} refresh_token={rt} expires_in={ei} token_type={tt} scope="openid email"'
              % rs(ALNUM, 20),
              ts=T(ts_iso(t, 3), "rfc3339"), caller=CODE(R.choice(["oauth/client.go:118", "auth/refresh.go:64"]), "go-file-line"),
              at=JWTV("logfmt") if R.random() < 0.5 else TOKENV("access_token", "opaque", "eq"),
              rt=TOKENV("refresh_token", "refresh", "eq"), ei=KN(str(R.choice([3599, 3600, 900])), "expires_in"), tt=KN("Bearer", "token_type"))
    elif k == "policy":
        which = R.random()
        if which < 0.5:
            r.add('time={ts} level=info component=iam msg="password {pu}" min_length={ml} require_symbols=true max_age_days={mad} secret_rotation_days={srd} actor={em}',
                  ts=T(ts_iso(t, 3), "rfc3339"), pu=KN(R.choice(["policy updated", "policy loaded", "rotation scheduled"]), "after-password"),
                  ml=KN(str(R.choice([10, 12, 14, 16])), "password min length"), mad=KN(str(R.choice([90, 180, 365])), "max age"),
                  srd=KN(str(R.choice([30, 60, 90])), "secret_rotation_days"), em=EMAILV("logfmt"))
        else:
            r.add('time={ts} level=warn component=auth msg="password {rr}" user_id={uid} {k1}={v1} ip={ip}',
                  ts=T(ts_iso(t, 3), "rfc3339"), rr=KN(R.choice(["reset requested", "reset link expired", "change required"]), "after-password"),
                  uid=UUIDV("logfmt"), k1=KN("password_reset_requested", "boolean-flag-key"), v1=KN(R.choice(["true", "false"]), "boolean-flag-value"),
                  ip=client_ipv(0.2, ("v6",), "plain"))
    elif k == "usage":
        r.add('ts={ts} level=info svc=gateway msg="rate limit check" api_key_id=key_%d max_tokens={mt} tokens_used={tu} tokens_remaining={tr} window=60s trace_id={tid}'
              % R.randint(1, 400),
              ts=T(ts_iso(t, 3), "rfc3339"), mt=KN(str(R.choice([4096, 8192, 100000])), "max_tokens"), tu=KN(str(R.randint(0, 4000)), "tokens_used"),
              tr=KN(str(R.randint(0, 4000)), "tokens_remaining"), tid=TRACE(trace_id(), "w3c-trace-id"))
    elif k == "card":
        c = CARDV("logfmt")
        q = '"' if " " in c.text else ""
        ref = [' booking_ref="', NUM(grouped_non_luhn(), "grouped-4444"), '"'] if R.random() < 0.4 else ""
        r.add('time={ts} level=error msg="tokenization failed" provider=%s card=%s{card}%s amount=%0.2f order_id={oid}{ref} customer={em} err="gateway timeout after 30s"'
              % (R.choice(["adyen", "stripe", "braintree"]), q, q, R.random() * 900),
              ts=T(ts_iso(t, 3), "rfc3339"), card=c, oid=NUM(order_id(), "order-id"), ref=ref, em=EMAILV("logfmt"))
    elif k == "conn":
        pw, style = password()
        q = R.random() < 0.5
        r.add('time={ts} level=info msg="connecting to database" dsn="host={h} port={p} user=app password={pw} dbname=orders sslmode=require" attempt=%d'
              % R.randint(1, 5),
              ts=T(ts_iso(t, 3), "rfc3339"), h=IPV(ip4("internal"), "v4", "plain") if q else hostname_internal(),
              p=PORT("5432", "port"), pw=PWV("libpq-kv", pw, style, key="password"))
    elif k == "micros":
        r.add('ts_us={us} level=info msg="batch flushed" topic=orders.events partition=%d offset={off} records=%d bytes={b} producer_id={pid} uptime={up}'
              % (R.randint(0, 11), R.randint(1, 500)), up=T(duration_hms(), "duration"),
              us=NUM(epoch_us(t), "epoch-us"), off=HEX(str(R.randint(10 ** 5, 10 ** 9)), "kafka-offset"),
              b=NUM(str(R.randint(10 ** 6, 10 ** 9)), "byte-count"), pid=NUM(long_id(R.choice([13, 14, 16])), "numeric-id"))
    else:
        key = R.choice(["webhook_secret", "signing_secret", "webhookSecret"])
        r.add('time={ts} level=debug msg="webhook delivery" endpoint=https://hooks.example.com/%s %s={sec} signature=sha256={sig} delivery={did} attempt=%d'
              % (rs(LOW, 8), key, R.randint(1, 3)),
              ts=T(ts_iso(t, 3), "rfc3339"), sec=SECRETV(key, "hex64" if key != "signing_secret" else "hex32", "eq"),
              sig=HASHV(hexs(64), "hmac-signature"), did=UUIDV("logfmt"))
    return r


# --- YAML / config dumps -------------------------------------------------------

def b64_secret_value(kind, raw, family, key):
    """A Kubernetes Secret data value: base64 of the secret, labelled as the secret."""
    enc = b64(raw.encode())
    return P(kind, enc, family, "k8s-secret-base64", "key:" + key_style(key), "container:json")


YAML_TOKEN_KEYS = [("access_token", "opaque"), ("refresh_token", "refresh"), ("token", "opaque"), ("auth_token", "opaque"),
                   ("api_token", "opaque"), ("github_token", "github-ghp"), ("slack_token", "slack-xoxp"), ("bot_token", "slack-xoxb"),
                   ("bearer_token", "opaque"), ("stripe_secret_key", "stripe-sk-live"), ("openai_api_key", "openai"), ("vault_token", "vault"),
                   ("gitlab_token", "gitlab"), ("npm_token", "npm"), ("accessToken", "opaque"), ("refreshToken", "refresh"), ("slackBotToken", "slack-xoxb")]


SECRET_KEY_REFS = [("DB_PASSWORD", "password", "db-creds"), ("API_TOKEN", "token", "app-secrets"), ("STRIPE_API_KEY", "api-key", "stripe"),
                   ("CLIENT_SECRET", "client-secret", "oauth-client"), ("REDIS_PASSWORD", "redis-password", "redis"),
                   ("POSTGRES_PASSWORD", "postgres-password", "postgres-auth")]


def src_config_dump():
    r = Rec("config-dump")
    t = rdt()
    k = wpick([(12, "secret-json"), (8, "secret-yaml-line"), (9, "configmap"), (14, "yaml-line"), (7, "flow-yaml"),
               (8, "properties"), (7, "dotfiles"), (7, "terraform"), (7, "kafka"), (7, "nginx-T"), (7, "theme"), (7, "secretkeyref")])
    ns = R.choice(NAMESPACES)
    if k == "secret-json":
        pw, style = password()
        name = R.choice(["db-creds", "orders-db", "app-secrets", "postgres-auth", "api-keys"])
        extra_key, extra_fam = R.choice([("api-key", "hex32"), ("jwt-secret", "b64-32"), ("webhook-secret", "hex64")])
        r.add('{"apiVersion":"v1","data":{"{ek}":"{ev}","password":"{pv}","username":"{uv}"},"kind":"Secret","metadata":{"creationTimestamp":"{ts}","name":"{name}","namespace":"{ns}","resourceVersion":"{rv}","uid":"{uid}"},"type":"Opaque"}',
              ek=extra_key, ev=b64_secret_value("SECRET", secret(extra_fam), extra_fam, extra_key),
              pv=b64_secret_value("PASSWORD", pw, style, "password"), uv=b64(b"app"), ts=T(ts_iso(t, 0), "rfc3339"),
              name=K8S(name, "secret-name"), ns=K8S(ns, "namespace"), rv=K8S(resource_version(), "resourceVersion"), uid=UUIDV("json"))
    elif k == "secret-yaml-line":
        which = R.random()
        if which < 0.4:
            r.add("  tls.key: {v}", v=P("SECRET", pem_ec_b64(), "pem-b64", "key:dotted", "container:yaml"))
        elif which < 0.7:
            pw, style = password()
            r.add("  {key}: {v}", key=R.choice(["password", "postgres-password", "redis-password", "DB_PASSWORD"]),
                  v=P("PASSWORD", b64(pw.encode()), style, "k8s-secret-base64", "container:yaml"))
        else:
            tk = R.choice([("token", "github-ghp"), ("slack-token", "slack-xoxb"), ("NPM_TOKEN", "npm")])
            r.add("  {key}: {v}", key=tk[0], v=P("TOKEN", b64(token(tk[1]).encode()), tk[1], "k8s-secret-base64", "container:yaml"))
    elif k == "configmap":
        r.add('{"apiVersion":"v1","data":{"DB_HOST":"{dbh}","DB_PORT":"{dbp}","LOG_LEVEL":"info","PASSWORD_MIN_LENGTH":"{pml}","TOKEN_TTL":"{ttl}","SECRET_ROTATION_DAYS":"{srd}","OTEL_EXPORTER_OTLP_ENDPOINT":"http://{otel}"},"kind":"ConfigMap","metadata":{"name":"{name}","namespace":"{ns}","resourceVersion":"{rv}","uid":"{uid}"}}',
              dbh=R.choice(["db.internal", "pg-primary.data.svc"]), dbp=PORT("5432", "port"), pml=KN(str(R.choice([10, 12, 14])), "password min length"),
              ttl=KN(R.choice(["3600", "15m", "900"]), "token_ttl"), srd=KN(str(R.choice([30, 90])), "secret_rotation_days"),
              otel=PORT("otel-collector.monitoring.svc:4317", "host:port"), name=K8S(R.choice(DEPLOYS) + "-config", "configmap-name"),
              ns=K8S(ns, "namespace"), rv=K8S(resource_version(), "resourceVersion"), uid=UUIDV("json"))
    elif k == "yaml-line":
        which = wpick([(22, "pw"), (22, "secret"), (14, "token"), (18, "lookalike"), (12, "aws"), (12, "image")])
        ind = R.choice(["", "  ", "    "])
        if which == "pw":
            key = R.choice(["password", "passwd", "pwd", "adminPassword", "db_password", "redisPassword", "bindPassword", "postgresPassword"])
            r.add(ind + "{k}: {v}", k=key, v=yaml_scalar(PWV("yaml", key=key)))
        elif which == "secret":
            key, fam = secret_key(lambda k_, f: f not in ("pem-escaped", "pem-b64") and "-" not in k_ and k_[0].islower())
            r.add(ind + "{k}: {v}", k=key, v=yaml_scalar(SECRETV(key, fam, "yaml")))
        elif which == "token":
            if R.random() < 0.5:
                key, fam = R.choice(YAML_TOKEN_KEYS)
            else:
                fam = vendor_family()
                key = vendor_key(fam, upper=False)
            r.add(ind + "{k}: {v}", k=key, v=yaml_scalar(TOKENV(key, fam, "yaml")))
        elif which == "image":
            dep = R.choice(DEPLOYS + STATEFUL)
            r.add("        image: {ref}", ref=IMG(image_for(dep), "oci-ref"))
        elif which == "aws":
            kid, sec, origin = aws_pair()
            if R.random() < 0.5:
                r.add(ind + "accessKeyId: {v}", v=P("AWS_KEY", kid, "AKIA", origin, "ctx:yaml"))
            else:
                r.add(ind + "secretAccessKey: {v}", v=P("SECRET", sec, "aws-secret", origin, "key:camelCase", "container:yaml"))
        else:
            r.add(ind + R.choice([
                "secret_rotation_days: {v}", "token_ttl_seconds: {v}", "max_tokens: {v}", "password_min_length: {v}",
                "session_timeout_minutes: {v}", "refresh_token_ttl_days: {v}", "api_key_rotation_days: {v}"]),
                v=KN(str(R.choice([14, 30, 60, 90, 128, 4096, 12])), "numeric-value"))
    elif k == "flow-yaml":
        pw, style = password()
        r.add("database: {host: {h}, port: {p}, name: orders, username: app, password: {pw}, pool: {max: 20}}",
              h=R.choice(["db.internal", "pg-primary.data.svc"]), p=PORT("5432", "port"), pw=yaml_scalar(PWV("yaml-flow", pw, style, key="password")))
    elif k == "properties":
        which = R.random()
        if which < 0.35:
            r.add("spring.datasource.password={v}", v=PWV("properties", key="spring.datasource.password"))
        elif which < 0.55:
            r.add("spring.datasource.url=jdbc:postgresql://{hp}/orders?sslmode=require", hp=PORT("db.internal:5432", "host:port"))
        elif which < 0.75:
            r.add("spring.security.oauth2.client.registration.%s.client-secret={v}" % R.choice(["google", "okta", "azure"]),
                  v=SECRETV("client-secret", "google-client-secret", "properties"))
        else:
            r.add("management.server.port={p}", p=PORT(str(R.choice([8081, 9090])), "port"))
    elif k == "dotfiles":
        which = R.random()
        if which < 0.25:
            r.add("//registry.npmjs.org/:_authToken={v}", v=TOKENV("_authToken", "npm", "eq"))
        elif which < 0.45:
            pre = R.choice(["https", "https"])
            r.add("{p}://{u}:{v}@github.com", p=pre, u=R.choice(["x-access-token", "deploy-bot", "jdoe"]), v=TOKENV("password", "github-ghp", "url-userinfo"))
        elif which < 0.7:
            user, (pw, style) = R.choice(["deploy", "ci-bot", "_json_key"]), password()
            r.add('{"auths":{"{reg}":{"auth":"{v}"}}}', reg=R.choice(["ghcr.io", "registry.gitlab.com", "https://index.docker.io/v1/"]),
                  v=PWV("docker-config-auth", b64((user + ":" + pw).encode()), "basic-b64"))
        else:
            r.add("password = {v}", v=TOKENV("password", "pypi", "eq-spaced"))
    elif k == "terraform":
        key = R.choice(["password", "master_password", "administrator_login_password", "auth_token"])
        r.add("      {op} {key}{pad} = {v}", op=R.choice(["~", "+"]), key=key, pad=" " * max(1, 28 - len(key)),
              v=KN("(sensitive value)", "terraform-mask"))
    elif k == "kafka":
        which = R.random()
        if which < 0.45:
            r.add('\tsasl.jaas.config = {cls} required username="{u}" password="{v}";',
                  cls=CODE("org.apache.kafka.common.security.plain.PlainLoginModule", "java-class"),
                  u=R.choice(["orders", "app", "svc-ledger"]), v=PWV("jaas"))
        elif which < 0.75:
            r.add("\t{k} = {v}", k=R.choice(["ssl.key.password", "ssl.keystore.password", "ssl.truststore.password", "sasl.jaas.config"]),
                  v=KN("[hidden]", "masked-value"))
        else:
            r.add("\tbootstrap.servers = [{a}, {b}]", a=PORT("kafka-0.kafka-headless.data.svc:9092", "host:port"),
                  b=PORT("kafka-1.kafka-headless.data.svc:9092", "host:port"))
    elif k == "nginx-T":
        which = R.random()
        if which < 0.4:
            user, (pw, style) = R.choice(["grafana", "backend", "metrics"]), password()
            r.add('        proxy_set_header Authorization "Basic {v}";', v=PWV("nginx-conf", b64((user + ":" + pw).encode()), "basic-b64"))
        elif which < 0.6:
            r.add("    ssl_certificate_key {v};", v=KN("/etc/nginx/tls/%s.key" % R.choice(["tls", "api", "wildcard"]), "path-value"))
        elif which < 0.8:
            r.add("    listen {p} ssl http2;", p=PORT(str(R.choice([443, 8443])), "port"))
        else:
            r.add('        proxy_set_header X-Api-Key "{v}";', v=SECRETV("X-Api-Key", "hex32", "nginx-conf"))
    elif k == "theme":
        r.add('{"name":"%s","short_name":"%s","theme_color":"{c1}","background_color":"{c2}","display":"standalone","start_url":"/?utm_source=pwa","version":"{v}"}'
              % (R.choice(["Acme Shop", "Orders Console"]), R.choice(["Shop", "Orders"])),
              c1=HEX("#" + hexs(6), "css-color"), c2=HEX("#" + R.choice(["ffffff", "000000", hexs(6)]), "css-color"), v=V_(semver()))
    else:
        env, key, sec = R.choice(SECRET_KEY_REFS)
        r.add('{"name":"{env}","valueFrom":{"secretKeyRef":{"key":"{key}","name":"{sec}","optional":false}}}',
              env=env, key=KN(key, "secret-key-reference"), sec=K8S(sec, "secret-name"))
    return r


# --- env dumps -------------------------------------------------------------------

def env_entry(kind=None):
    """(KEY, value segments) for one environment variable."""
    kind = kind or wpick([(14, "password"), (14, "secret"), (18, "token"), (11, "aws"), (7, "url"), (4, "jwt"),
                          (45, "lookalike")])
    if kind == "jwt":
        return R.choice(["ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ID_TOKEN", "SERVICE_ACCOUNT_TOKEN", "VAULT_JWT"]), JWTV("env")
    if kind == "password":
        key = R.choice(["DB_PASSWORD", "PGPASSWORD", "MYSQL_ROOT_PASSWORD", "MYSQL_PASSWORD", "POSTGRES_PASSWORD",
                        "REDIS_PASSWORD", "RABBITMQ_DEFAULT_PASS", "SMTP_PASSWORD", "ELASTIC_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD"])
        return key, PWV("env", key=key)
    if kind == "secret":
        key, fam = secret_key(lambda k_, f: k_.isupper() and f not in ("pem-escaped", "pem-b64") and "-" not in k_)
        return key, SECRETV(key, fam, "env")
    if kind == "token":
        cands = [x for x in TOKEN_KEYS if x[0].replace("_", "").isupper() and "-" not in x[0]
                 and not x[1].startswith(("session", "csrf"))]
        if R.random() < 0.7:
            fam = vendor_family()
            key = vendor_key(fam, upper=True)
        else:
            fam = R.choice(sorted(set(f for _, f in cands)))
            key = R.choice([k_ for k_, f in cands if f == fam])
        return key, TOKENV(key, fam, "env")
    if kind == "aws":
        kid, sec, origin = aws_pair()
        if R.random() < 0.5:
            return "AWS_ACCESS_KEY_ID", P("AWS_KEY", kid, "AKIA", origin, "ctx:env")
        return "AWS_SECRET_ACCESS_KEY", P("SECRET", sec, "aws-secret", origin, "key:UPPER_SNAKE", "container:env")
    if kind == "url":
        pw, style = password()
        which = R.choice(["DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "MONGO_URI"])
        if which == "DATABASE_URL":
            return which, ["postgres://app:", PWV("url-userinfo", pw_url(pw), style), "@", PORT("db.internal:5432", "host:port"), "/orders"]
        if which == "REDIS_URL":
            return which, ["redis://:", PWV("url-userinfo", pw_url(pw), style), "@", PORT("redis-master.cache.svc.cluster.local:6379", "host:port"), "/0"]
        if which == "CELERY_BROKER_URL":
            return which, ["amqp://celery:", PWV("url-userinfo", pw_url(pw), style), "@", PORT("rabbitmq.messaging.svc:5672", "host:port"), "//"]
        return which, ["mongodb://root:", PWV("url-userinfo", pw_url(pw), style), "@", PORT("mongo-0.mongo.data.svc.cluster.local:27017", "host:port"), "/admin"]
    # look-alikes
    which = R.choice(["PWD", "OLDPWD", "HOSTNAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "KUBERNETES_PORT",
                      "DB_PORT", "GOLANG_VERSION", "NODE_VERSION", "PYTHON_VERSION", "JAVA_VERSION", "GPG_KEY",
                      "POSTGRES_PASSWORD_FILE", "TOKEN_TTL", "SECRET_ROTATION_DAYS", "MAX_TOKENS", "APP_VERSION", "GIT_COMMIT",
                      "OTEL_EXPORTER_OTLP_ENDPOINT", "VAULT_ADDR", "PASSWORD_MIN_LENGTH", "DOTNET_VERSION", "SESSION_TIMEOUT"])
    if which in ("PWD", "OLDPWD"):
        return which, KN(R.choice(["/app", "/home/app", "/", "/srv/orders", "/usr/src/app", "/workspace"]), "pwd-path")
    if which == "HOSTNAME":
        return which, K8S(pod_name(), "pod")
    if which == "KUBERNETES_SERVICE_HOST":
        return which, IPV("10.96.0.1", "v4", "plain")
    if which == "KUBERNETES_SERVICE_PORT":
        return which, PORT("443", "port")
    if which == "KUBERNETES_PORT":
        return which, ["tcp://", IPV("10.96.0.1", "v4", "port"), ":443"]
    if which == "DB_PORT":
        return which, PORT(R.choice(["5432", "3306", "27017"]), "port")
    if which == "GOLANG_VERSION":
        return which, V_(R.choice(["1.21.5", "1.21.4", "1.20.12"]), "toolchain")
    if which == "NODE_VERSION":
        return which, V_(R.choice(["20.10.0", "18.19.0", "21.4.0"]), "toolchain")
    if which == "PYTHON_VERSION":
        return which, V_(R.choice(["3.11.7", "3.12.1", "3.10.13"]), "toolchain")
    if which == "JAVA_VERSION":
        return which, VER(R.choice(["jdk-17.0.9+9", "jdk-21.0.1+12", "jdk8u392-b08"]), "toolchain")
    if which == "DOTNET_VERSION":
        return which, V_(R.choice(["8.0.0", "6.0.25"]), "toolchain")
    if which == "GPG_KEY":
        return which, HEX(hexs(40, upper=True), "gpg-fingerprint")
    if which == "POSTGRES_PASSWORD_FILE":
        return R.choice(["POSTGRES_PASSWORD_FILE", "DB_PASSWORD_FILE", "MYSQL_ROOT_PASSWORD_FILE"]), KN("/run/secrets/db_password", "path-value")
    if which == "TOKEN_TTL":
        return which, KN(R.choice(["3600", "15m", "86400"]), "token_ttl")
    if which == "SECRET_ROTATION_DAYS":
        return which, KN(str(R.choice([30, 60, 90])), "secret_rotation_days")
    if which == "MAX_TOKENS":
        return which, KN(str(R.choice([1024, 4096, 8192])), "max_tokens")
    if which == "PASSWORD_MIN_LENGTH":
        return which, KN(str(R.choice([10, 12, 16])), "password min length")
    if which == "SESSION_TIMEOUT":
        return which, KN(R.choice(["1800", "30m", "3600"]), "session timeout")
    if which == "APP_VERSION":
        return which, V_(semver())
    if which == "GIT_COMMIT":
        return which, HASHV(git_sha(), "git-sha-40")
    if which == "VAULT_ADDR":
        return which, ["https://", PORT("vault.platform.svc:8200", "host:port")]
    return which, ["http://", PORT("otel-collector.monitoring.svc:4317", "host:port")]


def src_env_dump():
    r = Rec("env-dump")
    k = wpick([(35, "env-line"), (15, "docker-inspect"), (12, "go-template"), (10, "systemctl"), (14, "dotenv"),
               (14, "describe")])
    if k == "env-line":
        key, val = env_entry()
        r.add("{k}={v}", k=key, v=val)
    elif k == "docker-inspect":
        entries = [env_entry() for _ in range(R.randint(2, 4))]
        segs = ['"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"']
        for key, val in entries:
            segs += [', "', key, "=", val, '"']
        segs.append("]")
        r.add("{e}", e=segs)
    elif k == "go-template":
        entries = [env_entry() for _ in range(R.randint(2, 4))]
        segs = ["[PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        for key, val in entries:
            segs += [" ", key, "=", val]
        segs.append("]")
        r.add("{e}", e=segs)
    elif k == "systemctl":
        entries = [env_entry() for _ in range(R.randint(2, 3))]
        segs = ["Environment=LANG=C.UTF-8"]
        for key, val in entries:
            segs += [" ", key, "=", val]
        r.add("{e}", e=segs)
    elif k == "dotenv":
        key, val = env_entry(R.choice(["password", "secret", "token", "aws", "url", "lookalike"]))
        style = R.choice(["plain", "quoted", "export"])
        if style == "quoted":
            r.add('{k}="{v}"', k=key, v=val)
        elif style == "export":
            r.add("export {k}={v}", k=key, v=val)
        else:
            r.add("{k}={v}", k=key, v=val)
        if R.random() < 0.2:
            r.add("  # %s" % R.choice(["rotated 2023-11-02", "prod", "TODO move to vault", "do not commit"]))
    else:
        if R.random() < 0.55:
            env, key, sec = R.choice(SECRET_KEY_REFS)
            r.add("      {e}:{pad}<set to the key '{key}' in secret '{sec}'>  Optional: false",
                  e=env, pad=" " * R.randint(2, 10), key=KN(key, "secret-key-reference"), sec=K8S(sec, "secret-name"))
        else:
            key, val = env_entry()
            r.add("      {k}:{pad}{v}", k=key, pad=" " * R.randint(2, 10), v=val)
    return r


# --- HTTP request dumps ------------------------------------------------------------

HEADER_GROUPS = {
    # headers a client sends
    "req": [(14, "bearer-jwt"), (16, "bearer-token"), (8, "basic"), (16, "cookie"), (7, "x-api-key"), (4, "proxy-auth"),
            (6, "gh-token"), (4, "vault"), (5, "xff"), (5, "forwarded"), (5, "request-id"), (6, "traceparent"), (5, "amzn-trace"),
            (3, "dd-trace"), (3, "if-none-match"), (3, "host-port"), (3, "sigv4")],
    # headers a server answers with
    "resp": [(16, "set-cookie"), (5, "etag"), (5, "date"), (5, "server"), (4, "request-id")],
    # headers a webhook sender adds (GitHub, Stripe)
    "webhook": [(4, "hub-sig"), (4, "stripe-sig"), (4, "gh-delivery")],
}


def header_entry(kind=None, group="req"):
    """(Header-Name, value segments)."""
    kind = kind or wpick(HEADER_GROUPS[group])
    if kind == "bearer-jwt":
        return "Authorization", ["Bearer ", JWTV("header")]
    if kind == "bearer-token":
        fam = R.choice(["opaque", "opaque", "google-ya29"]) if R.random() < 0.35 else vendor_family()
        return "Authorization", ["Bearer ", TOKENV("authorization", fam, "header")]
    if kind in ("basic", "proxy-auth"):
        user = R.choice(["admin", "api", "jane.doe", "svc-orders", "prometheus", "deploy", "elastic"])
        pw, style = password()
        return ("Authorization" if kind == "basic" else "Proxy-Authorization"), \
            ["Basic ", PWV("basic-auth", b64((user + ":" + pw).encode()), "basic-b64")]
    if kind == "cookie":
        name, fam = R.choice([("session", "session-generic"), ("sessionid", "session-django"), ("PHPSESSID", "session-php"),
                              ("JSESSIONID", "session-java"), ("connect.sid", "session-express"), ("session", "session-flask"),
                              ("_shop_session", "session-rails")])
        segs = [name, "=", TOKENV(name, fam, "cookie")]
        if R.random() < 0.5:
            segs += ["; csrftoken=", TOKENV("csrftoken", "csrf", "cookie")]
        if R.random() < 0.4:
            segs += ["; _ga=GA1.1.", NUM(str(R.randint(10 ** 8, 10 ** 10 - 1)), "ga-client-id"), ".", T(str(epoch(rdt())), "epoch-s")]
        return "Cookie", segs
    if kind == "set-cookie":
        name, fam = R.choice([("session", "session-generic"), ("sessionid", "session-django"), ("JSESSIONID", "session-java"),
                              ("PHPSESSID", "session-php"), ("connect.sid", "session-express"), ("session", "session-flask"),
                              ("__Host-session", "session-generic"), ("refresh_token", "refresh"), ("id_token", None)])
        v = JWTV("cookie") if fam is None else TOKENV(name, fam, "set-cookie")
        return "Set-Cookie", [name, "=", v, "; Path=/; ", R.choice(["HttpOnly; Secure; SameSite=Lax", "Secure; HttpOnly", "Max-Age=1209600; HttpOnly; SameSite=Strict"])]
    if kind == "x-api-key":
        name = R.choice(["X-Api-Key", "x-api-key", "X-API-Key", "Api-Key"])
        return name, [SECRETV(name, R.choice(["hex32", "alnum32", "sendgrid"]), "header")]
    if kind == "gh-token":
        return "Authorization", ["token ", TOKENV("authorization", R.choice(["github-ghp", "github-gho", "github-ghs", "github-pat"]), "header")]
    if kind == "vault":
        return "X-Vault-Token", [TOKENV("X-Vault-Token", "vault", "header")]
    if kind == "xff":
        segs = [client_ipv(0.2, ("v6",), "xff-list")]
        for _ in range(R.choice([0, 1, 2])):
            segs += [", ", IPV(ip4("internal"), "v4", "xff-list")]
        return R.choice(["X-Forwarded-For", "X-Forwarded-For", "X-Real-IP" if len(segs) == 1 else "X-Forwarded-For"]), segs
    if kind == "forwarded":
        if R.random() < 0.5:
            return "Forwarded", ["for=", client_ipv(0, (), "plain"), ";proto=https;by=", IPV(ip4("internal"), "v4", "plain")]
        return "Forwarded", ['for="[', IPV(ip6("v6"), "v6", "bracket-port"), ']:%d";proto=https' % R.randint(1024, 65000)]
    if kind == "request-id":
        return R.choice(["X-Request-Id", "X-Request-ID", "X-Correlation-Id"]), [UUIDV("header") if R.random() < 0.5 else TRACE(hexs(32), "x-request-id-hex")]
    if kind == "traceparent":
        return "traceparent", [TRACE(traceparent(), "w3c-traceparent")]
    if kind == "amzn-trace":
        return "X-Amzn-Trace-Id", [TRACE(amzn_trace_id(rdt()), "x-ray")]
    if kind == "dd-trace":
        return "x-datadog-trace-id", [TRACE(dd_id(), "datadog-numeric")]
    if kind in ("etag", "if-none-match"):
        return ("ETag" if kind == "etag" else "If-None-Match"), [R.choice(['W/"', '"']), HEX(R.choice(["%x-%x" % (R.randint(0x60000000, 0x66000000), R.randint(0x100, 0xfffff)), hexs(32)]), "etag"), '"']
    if kind == "date":
        return R.choice(["Date", "Last-Modified", "Expires"]), [T(ts_http(rdt()), "rfc7231-imf-fixdate")]
    if kind == "server":
        s = R.choice([("nginx/", "1.25.3"), ("Apache/", "2.4.58"), ("Kestrel", None), ("envoy", None), ("gunicorn/", "21.2.0"), ("Microsoft-IIS/", "10.0")])
        return "Server", [s[0]] + ([V_(s[1])] if s[1] else [])
    if kind == "hub-sig":
        return "X-Hub-Signature-256", ["sha256=", HASHV(hexs(64), "hmac-signature")]
    if kind == "stripe-sig":
        return "Stripe-Signature", ["t=", T(str(epoch(rdt())), "epoch-s"), ",v1=", HASHV(hexs(64), "hmac-signature")]
    if kind == "host-port":
        return "Host", [PORT("%s:%d" % (R.choice(PUBLIC_HOSTS), R.choice([8443, 8080, 9443])), "host:port")]
    if kind == "gh-delivery":
        return "X-GitHub-Delivery", [UUIDV("header")]
    t = rdt()
    kid = aws_pair()[0]
    return "Authorization", ["AWS4-HMAC-SHA256 Credential=", P("AWS_KEY", kid, "AKIA", "ctx:header"),
                             "/%s/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=%s" % (t.strftime("%Y%m%d"), hexs(64))]


def unique_headers(group, n):
    out, names = [], []
    for _ in range(n):
        name, val = header_entry(group=group)
        if name.lower() not in names:
            names.append(name.lower())
            out.append((name, val))
    return out


def src_http_dump():
    r = Rec("http-dump")
    k = wpick([(28, "curl"), (16, "python-send"), (8, "python-header"), (12, "go-dump"), (10, "okhttp"), (10, "axios"),
               (8, "form"), (6, "ngrep"), (6, "s3-error")])
    if k == "s3-error":
        kid = aws_pair(temporary=R.random() < 0.2)[0]
        code = R.choice(["InvalidAccessKeyId", "SignatureDoesNotMatch"])
        msg = {"InvalidAccessKeyId": "The AWS Access Key Id you provided does not exist in our records.",
               "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided. Check your key and signing method."}[code]
        r.add('< <?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><AWSAccessKeyId>{kid}</AWSAccessKeyId><RequestId>{rid}</RequestId><HostId>%s</HostId></Error>'
              % (code, msg, b64(rbytes(54))), kid=P("AWS_KEY", kid, kid[:4], "ctx:xml"), rid=HEX(hexs(16, upper=True), "aws-request-id"))
        return r
    host = R.choice(PUBLIC_HOSTS)
    path = R.choice(["/api/v1/me", "/v1/charges", "/api/v1/orders", "/graphql", "/oauth/token", "/v2/events", "/api/v4/projects"])
    if k == "curl":
        if R.random() < 0.65:
            name, val = header_entry(group="req")
            r.add("> {n}: {v}", n=name, v=val)
        else:
            name, val = header_entry(group="resp")
            if R.random() < 0.5:
                name = name.lower()     # HTTP/2 responses print lower-case names
            r.add("< {n}: {v}", n=name, v=val)
    elif k == "python-send":
        hs = unique_headers("req", R.randint(1, 3))
        segs = ["send: b'%s %s HTTP/1.1\\r\\nHost: %s\\r\\nUser-Agent: python-requests/" % (R.choice(["GET", "POST"]), path, host), V_("2.31.0"),
                "\\r\\nAccept-Encoding: gzip, deflate\\r\\nAccept: */*\\r\\nConnection: keep-alive"]
        for n, v in hs:
            segs += ["\\r\\n", n, ": ", v]
        segs.append("\\r\\n\\r\\n'")
        r.add("{s}", s=segs)
    elif k == "python-header":
        n, v = header_entry(group="resp")
        r.add("header: {n}: {v}", n=n, v=v)
    elif k == "go-dump":
        t = rdt()
        if R.random() < 0.5:
            src = R.choice(["github", "stripe"])
            hs = [header_entry("gh-delivery" if src == "github" else "stripe-sig", "webhook")]
            if src == "github":
                hs.append(header_entry("hub-sig", "webhook"))
            req = "POST /webhooks/%s HTTP/1.1\\r\\nHost: %s\\r\\nUser-Agent: %s" % (src, host, "GitHub-Hookshot/" + hexs(7) if src == "github" else "Stripe/1.0 (+https://stripe.com/docs/webhooks)")
        else:
            hs = unique_headers("req", R.randint(1, 3))
            req = "%s %s HTTP/1.1\\r\\nHost: %s\\r\\nUser-Agent: Go-http-client/1.1" % (R.choice(["GET", "POST"]), path, host)
        segs = [T(t.strftime("%Y/%m/%d %H:%M:%S"), "go-log"), " DEBUG request dump: \"" + req]
        for n, v in hs:
            segs += ["\\r\\n", n, ": ", esc_segs(v, '"')]
        segs.append("\\r\\nAccept-Encoding: gzip\\r\\n\\r\\n\"")
        r.add("{s}", s=segs)
    elif k == "okhttp":
        t = rdt()
        n, v = header_entry(group=R.choice(["req", "req", "resp"]))
        r.add("{ts}  %d  %d D OkHttp  : {n}: {v}" % (R.randint(1000, 30000), R.randint(1000, 30000)),
              ts=T("%02d-%02d %s.%03d" % (t.month, t.day, t.strftime("%H:%M:%S"), t.microsecond // 1000), "logcat"), n=n, v=v)
    elif k == "axios":
        n1, v1 = header_entry(R.choice(["bearer-jwt", "bearer-token", "x-api-key", "basic"]))
        n2, v2 = header_entry(R.choice(["request-id", "traceparent", "dd-trace"]))
        r.add('{"level":"error","msg":"upstream call failed","err":{"message":"Request failed with status code %d","code":"ERR_BAD_RESPONSE","config":{"method":"post","url":"https://%s%s","headers":{"Accept":"application/json, text/plain, */*","Content-Type":"application/json","{n1}":"{v1}","{n2}":"{v2}","User-Agent":"axios/{av}"},"timeout":10000}}}'
              % (R.choice([500, 502, 401, 429]), host, path), n1=n1, v1=v1, n2=n2, v2=v2, av=V_("1.6.2"))
    elif k == "form":
        which = R.random()
        addr, form, _ = email()
        if which < 0.2:
            c = CARDV("form", "plain")
            r.add("body: amount=%d&currency=%s&card[number]={c}&card[exp_month]=%d&card[exp_year]=%d&card[cvc]=%03d&receipt_email={em}"
                  % (R.randint(100, 99999), R.choice(["usd", "eur"]), R.randint(1, 12), R.randint(2024, 2030), R.randint(0, 999)),
                  c=c, em=P("EMAIL", quote(addr, safe=""), form, "url-encoded", "ctx:form"))
        elif which < 0.5:
            pw, style = password()
            r.add("body: grant_type={gt}&username={u}&password={pw}&client_id=web&client_secret={cs}",
                  gt=KN("password", "grant_type-value"), u=P("EMAIL", quote(addr, safe=""), form, "url-encoded", "ctx:form"),
                  pw=PWV("form", quote(pw, safe=""), style), cs=SECRETV("client_secret", "alnum32", "query"))
        elif which < 0.75:
            r.add("body: grant_type={gt}&refresh_token={rt}&client_id=%s" % rs(ALNUM, 20),
                  gt=KN("refresh_token", "grant_type-value"), rt=TOKENV("refresh_token", "refresh", "query"))
        else:
            r.add('body: {"access_token":"{at}","token_type":"{tt}","expires_in":{ei},"refresh_token":"{rt}","scope":"openid email","id_token":"{it}"}',
                  at=JWTV("json") if R.random() < 0.5 else TOKENV("access_token", "opaque", "json"), tt=KN("Bearer", "token_type"),
                  ei=KN(str(R.choice([3599, 3600, 300])), "expires_in"), rt=TOKENV("refresh_token", "refresh", "json"), it=JWTV("json"))
    else:
        n, v = header_entry(R.choice(["basic", "bearer-token", "cookie", "x-api-key", "bearer-jwt"]))
        src = client_ipv(0.0, (), "port")
        dst = IPV(ip4("internal"), "v4", "port")
        r.add("T {s}:{sp} -> {d}:80 [AP] GET %s HTTP/1.1..Host: %s..{n}: {v}..Accept: */*...." % (path, host),
              s=src, sp=str(R.randint(32768, 60999)), d=dst, n=n, v=v)
    return r


# --- connection strings -------------------------------------------------------------

def esc_segs(segs, quote_char='"'):
    """Escape quote_char and backslashes in the plain-text parts of segments (labelled values never contain them)."""
    if isinstance(segs, str):
        return segs.replace("\\", "\\\\").replace(quote_char, "\\" + quote_char)
    if isinstance(segs, V):
        assert quote_char not in segs.text and "\\" not in segs.text, segs.text
        return segs
    if isinstance(segs, (list, tuple)):
        return [esc_segs(x, quote_char) for x in segs]
    return segs


def seg_text(segs):
    if isinstance(segs, str):
        return segs
    if isinstance(segs, V):
        return segs.text
    if isinstance(segs, (list, tuple)):
        return "".join(seg_text(x) for x in segs)
    return str(segs)


def conn_string():
    """(kind, segments) of one connection string with its password labelled."""
    pw, style = password()
    PWu = lambda: PWV("url-userinfo", pw_url(pw), style)
    use_ip = R.random() < 0.4
    kind = wpick([(16, "postgres"), (10, "mysql"), (8, "go-mysql"), (10, "mongodb"), (8, "redis"), (8, "amqp"),
                  (12, "jdbc"), (12, "libpq"), (6, "sqlserver-jdbc"), (6, "mongo-srv"), (4, "pgx-error")])
    return kind, _conn_segs(kind, pw, style, PWu, use_ip)


def _conn_segs(kind, pw, style, PWu, use_ip):

    def host(port):
        if use_ip:
            text, form = ip_any("internal", 0.15, ("v6",))
            return hostport(text, form, port)
        return PORT("%s:%d" % (R.choice({5432: ["db.internal", "pg-primary.data.svc", "orders-db.cluster-c9x2k.us-east-1.rds.amazonaws.com"],
                                         3306: ["mysql-0.mysql.data.svc.cluster.local", "mysql.internal", "shop-db.mysql.database.azure.com"],
                                         27017: ["mongo-0.mongo.data.svc.cluster.local", "mongodb.internal"],
                                         6379: ["redis-master.cache.svc.cluster.local", "cache.internal"], 6380: ["acme.redis.cache.windows.net"],
                                         5672: ["rabbitmq.messaging.svc", "mq.internal"], 5671: ["b-1a2b3c4d.mq.us-east-1.amazonaws.com"],
                                         1433: ["sql01.corp.example", "orders.database.windows.net"]}[port]), port), "host:port")
    if kind == "postgres":
        return [R.choice(["postgres://", "postgresql://"]), R.choice(["app", "orders", "postgres"]), ":", PWu(), "@", host(5432),
                "/orders", R.choice(["", "?sslmode=require", "?sslmode=disable&application_name=api"])]
    if kind == "mysql":
        return ["mysql://", R.choice(["root", "shop"]), ":", PWu(), "@", host(3306), "/shop"]
    if kind == "go-mysql":
        if use_ip:
            text, form = ip4("internal"), "v4"
            h = [IPV(text, form, "port"), ":3306"]
        else:
            h = [PORT("mysql-0.mysql.data.svc.cluster.local:3306", "host:port")]
        return [R.choice(["shop", "app"]), ":", PWV("go-mysql-dsn", pw, style), "@tcp(", h, ")/shop?parseTime=true&loc=UTC"]
    if kind == "mongodb":
        hosts = []
        n = R.choice([1, 3])
        for i in range(n):
            if i:
                hosts.append(",")
            if use_ip:
                hosts.append(hostport(ip4("internal"), "v4", 27017))
            else:
                hosts.append(PORT("mongo-%d.mongo.data.svc.cluster.local:27017" % i, "host:port"))
        return ["mongodb://", R.choice(["admin", "app"]), ":", PWu(), "@", hosts, "/", R.choice(["?replicaSet=rs0&authSource=admin", "orders?authSource=admin"])]
    if kind == "mongo-srv":
        return ["mongodb+srv://", R.choice(["app", "reporting"]), ":", PWu(), "@cluster0.%s.mongodb.net/%s?retryWrites=true&w=majority" % (rs(LOW + DIG, 5), R.choice(["test", "orders"]))]
    if kind == "redis":
        tls = R.random() < 0.3
        return ["rediss://" if tls else "redis://", R.choice(["", "default"]), ":", PWu(), "@", host(6380 if tls and not use_ip else 6379), "/0"]
    if kind == "amqp":
        tls = R.random() < 0.3
        return ["amqps://" if tls else "amqp://", R.choice(["guest", "orders", "celery"]), ":", PWu(), "@", host(5671 if tls and not use_ip else 5672), R.choice(["/%2F", "/orders", ""])]
    if kind == "jdbc":
        if R.random() < 0.6:
            return ["jdbc:postgresql://", host(5432), "/orders?user=app&password=", PWV("jdbc-query", quote(pw, safe=""), style), "&ssl=true"]
        return ["jdbc:mysql://", host(3306), "/shop?user=root&password=", PWV("jdbc-query", quote(pw, safe=""), style), "&useSSL=true"]
    if kind == "sqlserver-jdbc":
        return ["jdbc:sqlserver://", host(1433), ";databaseName=orders;user=sa;password=", PWV("jdbc-semicolon", pw, style), ";encrypt=true;trustServerCertificate=false"]
    if kind == "libpq":
        if use_ip:
            text, form = ip_any("internal", 0.1, ("v6",))
            h = IPV(text, form, "plain")
        else:
            h = R.choice(["db.internal", "pg-primary.data.svc"])
        q = "'" if R.random() < 0.3 else ""
        return ["host=", h, " port=", PORT("5432", "port"), " dbname=orders user=app password=", q, PWV("libpq-kv", pw, style, key="password"), q,
                R.choice(["", " sslmode=require", " sslmode=verify-full connect_timeout=10"])]
    # pgx error prints the config without the password, then the server error
    if use_ip:
        h = IPV(ip4("internal"), "v4", "plain")
    else:
        h = "db.internal"
    return ["failed to connect to `host=", h, " user=app database=orders`: server error (FATAL: password ",
            KN("authentication failed", "after-password"), ' for user "app" (SQLSTATE 28P01))']


CONN_ENV_NAMES = {"postgres": ["DATABASE_URL", "POSTGRES_URL", "DB_URL"], "mysql": ["DATABASE_URL", "MYSQL_URL"],
                  "go-mysql": ["MYSQL_DSN", "DB_DSN"], "mongodb": ["MONGO_URI", "MONGODB_URI"], "mongo-srv": ["MONGO_URI", "MONGODB_URL"],
                  "redis": ["REDIS_URL", "CACHE_URL"], "amqp": ["AMQP_URL", "CELERY_BROKER_URL", "RABBITMQ_URL"],
                  "jdbc": ["SPRING_DATASOURCE_URL", "JDBC_URL"], "sqlserver-jdbc": ["SPRING_DATASOURCE_URL", "JDBC_URL"],
                  "libpq": ["PG_DSN", "DATABASE_DSN"]}
CONN_CONTEXTS = {"postgres": ["logfmt", "json", "env", "plain", "yaml", "cli", "compose"], "mysql": ["logfmt", "json", "env", "plain", "yaml", "cli", "compose"],
                 "go-mysql": ["logfmt", "json", "env", "yaml"], "mongodb": ["logfmt", "json", "env", "plain", "yaml", "cli", "compose"],
                 "mongo-srv": ["logfmt", "json", "env", "plain", "yaml", "compose"], "redis": ["logfmt", "json", "env", "plain", "yaml", "cli", "compose"],
                 "amqp": ["logfmt", "json", "env", "plain", "yaml", "compose"], "jdbc": ["json", "env", "plain", "yaml", "kafka-connect"],
                 "sqlserver-jdbc": ["json", "env", "plain", "yaml", "kafka-connect"], "libpq": ["logfmt", "json", "plain", "yaml", "cli"],
                 "pgx-error": ["logfmt-err", "json", "plain"]}
CLI_FOR = {"postgres": "psql", "mysql": "mysqlsh --uri", "mongodb": "mongosh", "redis": "redis-cli -u", "libpq": "psql"}


def src_conn_string():
    r = Rec("conn-string")
    t = rdt()
    ckind, cs = conn_string()
    k = R.choice(CONN_CONTEXTS[ckind])
    if k in ("logfmt", "json", "yaml", "logfmt-err", "compose"):
        cs = esc_segs(cs, '"')
    if k == "logfmt-err":
        r.add('time={ts} level=error msg="database unavailable" err="{cs}" retry_in=5s', ts=T(ts_iso(t, 3), "rfc3339"), cs=cs)
    elif k == "logfmt":
        r.add('time={ts} level=%s msg="%s" dsn="{cs}"' % (R.choice(["info", "error", "debug"]), R.choice(["connecting to database", "connection failed, retrying", "opening pool"])),
              ts=T(ts_iso(t, 3), "rfc3339"), cs=cs)
    elif k == "json":
        r.add('{"timestamp":"{ts}","level":"%s","message":"%s","%s":"{cs}","attempt":%d}'
              % (R.choice(["INFO", "ERROR"]), R.choice(["datasource initialised", "could not connect", "migrating database"]),
                 R.choice(["url", "dsn", "connectionString", "database_url", "uri"]), R.randint(1, 5)),
              ts=T(ts_iso(t, 3), "rfc3339"), cs=cs)
    elif k == "env":
        r.add("%s={cs}" % R.choice(CONN_ENV_NAMES[ckind]), cs=cs)
    elif k == "compose":
        r.add('      %s: "{cs}"' % R.choice(CONN_ENV_NAMES[ckind]), cs=cs)
    elif k == "plain":
        r.add("{ts} [%s] %s {cs}" % (R.choice(["INFO", "WARN", "ERROR"]), R.choice(["Connecting to", "Using", "Database URL:", "Retrying connection to"])),
              ts=T(t.strftime("%Y-%m-%d %H:%M:%S,") + "%03d" % (t.microsecond // 1000), "log4j-default"), cs=cs)
    elif k == "yaml":
        r.add("  %s: \"{cs}\"" % R.choice(["url", "dsn", "uri", "connection_string"] if not ckind.endswith("jdbc") else ["jdbcUrl", "url"]), cs=cs)
    elif k == "kafka-connect":
        r.add("\tconnection.url = {cs}", cs=cs)
    else:
        if "'" in seg_text(cs):
            r.add('+ %s "{cs}" -c \'select 1\'' % CLI_FOR[ckind], cs=cs)
        else:
            r.add("+ %s '{cs}' %s" % (CLI_FOR[ckind], R.choice(["-c 'select 1'", "", "--quiet"])), cs=cs)
    return r


# --- PostgreSQL server log ------------------------------------------------------------

PG_USERS = ["app", "orders", "postgres", "reporting", "replicator", "grafana", "airflow"]
PG_DBS = ["orders", "postgres", "payments", "analytics", "app"]


def pg_session():
    """user, database, application and client (text, form) of one backend."""
    text, form = ip_any("client" if R.random() < 0.35 else "internal", 0.2, ("v6", "v6-loopback"))
    return {"user": R.choice(PG_USERS), "db": R.choice(PG_DBS), "pid": R.randint(1000, 99999),
            "app": R.choice(["psql", "[unknown]", "PostgreSQL JDBC Driver", "orders-api", "pgAdmin 4"]),
            "client": None if R.random() < 0.08 else (text, form)}


def pg_prefix(r, t, s):
    """One of three common log_line_prefix settings."""
    style = wpick([(40, "default"), (35, "pgbadger"), (25, "debian")])
    if style == "default":          # '%m [%p] '
        r.add("{ts} [%d] " % s["pid"], ts=T(ts_pg(t), "postgres-%m"))
    elif style == "debian":         # '%m [%p] %q%u@%d '
        r.add("{ts} [%d] %s@%s " % (s["pid"], s["user"], s["db"]), ts=T(ts_pg(t), "postgres-%m"))
    else:                           # '%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h '
        client = IPV(s["client"][0], s["client"][1], "plain") if s["client"] else "[local]"
        r.add("{ts} [%d]: [%d-1] user=%s,db=%s,app=%s,client={c} " % (s["pid"], R.randint(1, 40), s["user"], s["db"], s["app"]),
              ts=T(ts_pg(t, ms=False), "postgres-%t"), c=client)
    if R.random() < 0.15:                                        # session id %c
        r.add("{sid} ", sid=HEX("%x.%x" % (epoch(t), s["pid"]), "postgres-session-id"))


def src_postgresql():
    r = Rec("postgresql")
    t = rdt()
    s = pg_session()
    pg_prefix(r, t, s)
    k = wpick([(12, "conn-received"), (8, "conn-auth"), (10, "auth-failed"), (5, "hba-detail"), (8, "alter-role"), (10, "dup-key"),
               (10, "duration"), (13, "bind-params"), (6, "checkpoint"), (5, "startup"), (5, "no-hba"), (6, "disconnect"), (6, "lock")])
    if k in ("conn-received", "disconnect") and s["client"] is None:
        k = "conn-auth"
    if k == "conn-received":
        r.add("LOG:  connection received: host={h} port={p}", h=IPV(s["client"][0], s["client"][1], "plain"), p=PORT(str(R.randint(32768, 60999)), "port"))
    elif k == "conn-auth":
        r.add("LOG:  connection authorized: user=%s database=%s application_name=%s SSL enabled (protocol=TLSv1.3, cipher=TLS_AES_256_GCM_SHA384, bits=256)"
              % (s["user"], s["db"], s["app"]))
    elif k == "auth-failed":
        r.add('FATAL:  password {af} for user "%s"' % s["user"], af=KN("authentication failed", "after-password"))
    elif k == "hba-detail":
        r.add('DETAIL:  Connection matched file "/etc/postgresql/{v}/main/pg_hba.conf" line %d: "host    all             all             all                     scram-sha-256"'
              % R.randint(90, 130), v=VER(R.choice(["16", "15", "14"]), "two-part"))
    elif k == "alter-role":
        pw, style = password()
        verb = R.choice(["ALTER ROLE", "ALTER USER", "CREATE ROLE", "CREATE USER"])
        r.add("LOG:  statement: %s %s WITH %sPASSWORD '{pw}'%s" % (verb, R.choice(PG_USERS), "LOGIN " if verb.startswith("CREATE") else "",
                                                                   R.choice(["", " VALID UNTIL '2024-12-31'"])),
              pw=PWV("sql-literal", pw.replace("'", ""), style))
    elif k == "dup-key":
        col = R.choice(["email", "email", "card_number", "external_id"])
        if col == "email":
            v = EMAILV("sql")
        elif col == "card_number":
            v = CARDV("sql", "plain")
        else:
            v = UUIDV("sql")
        if R.random() < 0.5:
            r.add('ERROR:  duplicate key value violates unique constraint "%s_%s_key" ' % (R.choice(["users", "customers", "payment_methods"]), col))
        r.add("DETAIL:  Key ({c})=({v}) already exists.", c=col, v=v)
    elif k == "duration":
        q = R.random()
        if q < 0.5:
            r.add("LOG:  duration: %.3f ms  statement: SELECT id, email, created_at FROM users WHERE email = '{em}' LIMIT 1" % (R.random() * 3000),
                  em=EMAILV("sql"))
        elif q < 0.75:
            r.add("LOG:  duration: %.3f ms  statement: UPDATE sessions SET last_seen = now() WHERE token = '{tok}'" % (R.random() * 900),
                  tok=TOKENV("token", "session-generic", "sql"))
        else:
            r.add("LOG:  duration: %.3f ms  statement: SELECT * FROM orders WHERE id = {oid}" % (R.random() * 5000), oid=NUM(order_id(), "order-id"))
    elif k == "bind-params":
        r.add("DETAIL:  parameters: $1 = '{u}', $2 = '{c}', $3 = '%0.2f', $4 = '{em}'" % (R.random() * 500),
              u=UUIDV("sql"), c=CARDV("sql", allow_sep=R.random() < 0.3), em=EMAILV("sql"))
    elif k == "checkpoint":
        r.add("LOG:  checkpoint complete: wrote %d buffers (%.1f%%); 0 WAL file(s) added, 0 removed, %d recycled; write=%.3f s, sync=0.%03d s, total=%.3f s; sync files=%d, longest=0.004 s, average=0.001 s; distance=%d kB, estimate=%d kB; lsn={lsn}, redo lsn={rlsn}"
              % (R.randint(10, 9000), R.random() * 20, R.randint(0, 3), R.random() * 270, R.randint(0, 999), R.random() * 271,
                 R.randint(3, 90), R.randint(1000, 90000), R.randint(1000, 90000)),
              lsn=HEX("%X/%X" % (R.randint(0, 40), R.randint(0x1000000, 0xFFFFFFFF)), "postgres-lsn"),
              rlsn=HEX("%X/%X" % (R.randint(0, 40), R.randint(0x1000000, 0xFFFFFFFF)), "postgres-lsn"))
    elif k == "startup":
        which = R.random()
        if which < 0.4:
            v = R.choice(["16.1", "15.5", "14.10"])
            r.add("LOG:  starting PostgreSQL {v} (Debian {dv}) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) {gv}, 64-bit",
                  v=V_(v), dv=VER(v + "-1.pgdg120+1", "debian-package"), gv=V_("12.2.0"))
        elif which < 0.75:
            text, form = ip_any("internal", 0.3, ("v6", "v6-loopback"))
            r.add('LOG:  listening on IPv%s address "{a}", port {p}' % ("6" if ":" in text else "4"), a=IPV(text, form, "quoted"), p=PORT("5432", "port"))
        else:
            r.add('LOG:  listening on Unix socket "/var/run/postgresql/.s.PGSQL.5432"')
    elif k == "no-hba":
        text, form = ip_any("client", 0.2, ("v6",))
        r.add('FATAL:  no pg_hba.conf entry for host "{h}", user "%s", database "%s", %s' % (s["user"], s["db"], R.choice(["SSL off", "no encryption", "SSL encryption"])),
              h=IPV(text, form, "quoted"))
    elif k == "disconnect":
        r.add("LOG:  disconnection: session time: {d} user=%s database=%s host={h} port={p}" % (s["user"], s["db"]),
              d=T("%d:%02d:%02d.%03d" % (R.randint(0, 5), R.randint(0, 59), R.randint(0, 59), R.randint(0, 999)), "duration"),
              h=IPV(s["client"][0], s["client"][1], "plain"), p=PORT(str(R.randint(32768, 60999)), "port"))
    else:
        r.add("LOG:  process %d still waiting for ShareLock on transaction %d after %.3f ms" % (s["pid"], R.randint(10 ** 5, 10 ** 8), 1000 + R.random() * 9))
    return r


# --- Kubernetes events --------------------------------------------------------------

def event_message(pod, ns, node):
    """(reason, type, object kind, message segments)"""
    dep = deploy_of(pod)
    img = image_for(dep)
    k = wpick([(10, "Scheduled"), (10, "Pulling"), (10, "Pulled"), (6, "Created"), (6, "Started"), (12, "Unhealthy"), (10, "BackOff"),
               (6, "Failed"), (6, "FailedMount"), (5, "FailedScheduling"), (5, "SuccessfulCreate"), (5, "ScalingReplicaSet"),
               (4, "Killing"), (4, "NodeNotReady"), (4, "FailedCreatePodSandBox"), (3, "Evicted")])
    if k == "Scheduled":
        return k, "Normal", "pod", ["Successfully assigned ", K8S(ns, "namespace"), "/", K8S(pod, "pod"), " to ", K8S(node, "node")]
    if k == "Pulling":
        return k, "Normal", "pod", ['Pulling image "', IMG(img, "oci-ref"), '"']
    if k == "Pulled":
        s = R.random() * 30
        return k, "Normal", "pod", ['Successfully pulled image "', IMG(img, "oci-ref"), '" in %.3fs (%.3fs including waiting)' % (s, s + R.random())]
    if k == "Created":
        return k, "Normal", "pod", ["Created container %s" % dep]
    if k == "Started":
        return k, "Normal", "pod", ["Started container %s" % dep]
    if k == "Unhealthy":
        text, form = ip_any("pod", 0.1, ("v6",))
        if form != "v4":
            text = ip6("v6", "internal")
        port = R.choice([8080, 3000, 8000, 9090])
        probe = R.choice(["Liveness", "Readiness", "Startup"])
        path = R.choice(["/healthz", "/readyz", "/livez", "/actuator/health"])
        hp = hostport(text, form, port)
        tail = R.choice([None, [": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"],
                         [" HTTP probe failed with statuscode: 503"]])
        if tail is None:
            tail = [": dial tcp ", hostport(text, form, port), ": connect: connection refused"]
        return k, "Warning", "pod", ['%s probe failed: Get "http://' % probe, hp, path, '"'] + tail
    if k == "BackOff":
        return k, "Warning", "pod", ["Back-off restarting failed container %s in pod " % dep, K8S(pod + "_" + ns, "pod_namespace"), "(", POD_UIDV(pod, "k8s-event"), ")"]
    if k == "Failed":
        ir = image_repo_tag(img)
        return k, "Warning", "pod", ['Failed to pull image "', IMG(ir, "oci-ref"), '": rpc error: code = NotFound desc = failed to pull and unpack image "',
                                     IMG(ir, "oci-ref"), '": failed to resolve reference "', IMG(ir, "oci-ref"), '": not found']
    if k == "FailedMount":
        s = R.choice(["db-creds", "app-secrets", "tls-cert", "regcred", "stripe"])
        return k, "Warning", "pod", ['MountVolume.SetUp failed for volume "', K8S(s, "volume"), '" : secret "', K8S(s, "secret-name"), '" not found']
    if k == "FailedScheduling":
        n = R.randint(3, 12)
        return k, "Warning", "pod", ["0/%d nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, %d Insufficient memory. preemption: 0/%d nodes are available: 1 Preemption is not helpful for scheduling, %d No preemption victims found for incoming pod." % (n, n - 1, n, n - 1)]
    if k == "SuccessfulCreate":
        return k, "Normal", "replicaset", ["Created pod: ", K8S(pod, "pod")]
    if k == "ScalingReplicaSet":
        return k, "Normal", "deployment", ["Scaled %s replica set " % R.choice(["up", "down"]), K8S(rs_of(pod), "replicaset"), " to %d" % R.randint(0, 6)]
    if k == "Killing":
        return k, "Normal", "pod", ["Stopping container %s" % dep]
    if k == "NodeNotReady":
        return k, "Warning", "node", ["Node ", K8S(node, "node"), " status is now: NodeNotReady"]
    if k == "FailedCreatePodSandBox":
        return k, "Warning", "pod", ['Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "', HEX(container_id(), "sandbox-id"),
                                     '": plugin type="aws-cni" name="aws-cni" failed (add): add cmd: failed to assign an IP address to container']
    return k, "Warning", "pod", ["The node was low on resource: memory. Threshold quantity: 100Mi, available: %dKi." % R.randint(10000, 99999)]


def src_k8s_events():
    r = Rec("k8s-events")
    t = rdt()
    pod, node = pod_name(), node_name()
    ns = pod_ns(pod)
    reason, typ, objkind, msg = event_message(pod, ns, node)
    obj = {"pod": pod, "replicaset": rs_of(pod), "deployment": deploy_of(pod), "node": node}[objkind]
    fmt = wpick([(40, "table"), (30, "describe"), (30, "json")])
    if fmt == "table":
        age = R.choice(["%ds" % R.randint(2, 59), "%dm%ds" % (R.randint(1, 9), R.randint(0, 59)), "%dm" % R.randint(10, 59), "%dh" % R.randint(1, 23)])
        if R.random() < 0.4:
            r.add("{ns}{p1}", ns=K8S(ns, "namespace"), p1=" " * max(1, 15 - len(ns)))
        r.add("%-11s %-9s %-22s {obj}{pad}{msg}" % (age, typ, reason), obj=K8S("%s/%s" % (objkind, obj), "object-ref"),
              pad=" " * max(1, 40 - len(objkind) - len(obj)), msg=msg)
    elif fmt == "describe":
        age = R.choice(["%ds" % R.randint(5, 59), "%dm" % R.randint(1, 59), "%dm (x%d over %dm)" % (R.randint(1, 5), R.randint(2, 40), R.randint(5, 60))])
        src = {"pod": "kubelet", "replicaset": "replicaset-controller", "deployment": "deployment-controller", "node": "node-controller"}[objkind]
        if reason == "Scheduled":
            src = "default-scheduler"
        r.add("  %-8s %-18s %-20s %-22s {msg}" % (typ, reason, age, src), msg=msg)
    else:
        rv = K8S(resource_version(), "resourceVersion")
        ev_name = K8S("%s.%s" % (obj, hexs(16)), "event-name")
        r.add('{"apiVersion":"v1","count":%d,"firstTimestamp":"{ft}","involvedObject":{"kind":"%s","name":"{obj}","namespace":"{ns}","uid":"{uid}"},"kind":"Event","lastTimestamp":"{lt}","message":"{msg}","metadata":{"name":"{en}","namespace":"{ns2}","resourceVersion":"{rv}"},"reason":"%s","source":{"component":"kubelet","host":"{host}"},"type":"%s"}'
              % (R.randint(1, 40), objkind.capitalize() if objkind != "replicaset" else "ReplicaSet", reason, typ),
              ft=T(ts_iso(t, 0), "rfc3339"), obj=K8S(obj, objkind), ns=K8S(ns, "namespace"), uid=POD_UIDV(pod, "json") if objkind == "pod" else UUIDV("json"),
              lt=T(ts_iso(t + dt.timedelta(seconds=R.randint(1, 900)), 0), "rfc3339"), msg=esc_segs(msg, '"'), en=ev_name,
              ns2=K8S(ns, "namespace"), rv=rv, host=K8S(node, "node"))
    return r


# --- kubelet / containerd (journal) -----------------------------------------------

def src_kubelet():
    r = Rec("kubelet")
    t = rdt()
    node = node_name()
    pod = pod_name()
    ns = pod_ns(pod)
    proc = wpick([(62, "kubelet"), (38, "containerd")])
    pid = R.randint(800, 4000)
    r.add("{ts} {host} %s[%d]: " % (proc, pid), ts=T(ts_syslog(t), "syslog-rfc3164"), host=K8S(node_short(node), "node-hostname"))
    if proc == "containerd":
        k = R.choice(["pull", "pulled", "pulled", "start", "sandbox", "stop"])
        head = 'time="{ts}" level=info msg="'
        tsv = T(ts_iso(t, 9), "rfc3339-nano")
        if k == "pull":
            r.add(head + 'PullImage \\"{img}\\" returns image reference \\"{ref}\\""', ts=tsv, img=IMG(image_repo_tag(image_ref()), "oci-ref"),
                  ref=HASHV(sha256_digest(), "sha256-digest"))
        elif k == "pulled":
            ref = image_repo_tag(image_for(deploy_of(pod)) if R.random() < 0.6 else image_ref())
            repo = ref.rsplit(":", 1)[0]
            r.add(head + 'Pulled image \\"{img}\\" with image id \\"{iid}\\", repo tag \\"{tag}\\", repo digest \\"{dig}\\", size \\"{sz}\\" in %.6fs"' % (R.random() * 20),
                  ts=tsv, img=IMG(ref, "oci-ref"), iid=HASHV(sha256_digest(), "sha256-digest"), tag=IMG(ref, "oci-ref"),
                  dig=IMG(repo + "@" + sha256_digest(), "oci-ref-digest"), sz=NUM(str(R.randint(10 ** 7, 10 ** 9)), "byte-count"))
        elif k == "start":
            r.add(head + 'StartContainer for \\"{cid}\\" returns successfully"', ts=tsv, cid=HEX(container_id(), "container-id"))
        elif k == "stop":
            r.add(head + 'StopContainer for \\"{cid}\\" with timeout 30 (s)"', ts=tsv, cid=HEX(container_id(), "container-id"))
        else:
            r.add(head + 'RunPodSandbox for &PodSandboxMetadata{Name:{pod},Uid:{uid},Namespace:{ns},Attempt:0,} returns sandbox id \\"{sid}\\""',
                  ts=tsv, pod=K8S(pod, "pod"), uid=POD_UIDV(pod, "containerd"), ns=K8S(ns, "namespace"), sid=HEX(container_id(), "sandbox-id"))
        return r
    k = wpick([(12, "pleg"), (10, "syncerr"), (12, "probe"), (6, "register"), (5, "version"), (8, "reflector"), (8, "remove"),
               (6, "pullsecret"), (6, "imagegc"), (6, "volume"), (6, "status")])
    sev = {"syncerr": "E", "reflector": "W", "pullsecret": "E"}.get(k, "I")
    src = {"pleg": "kubelet.go:2410", "syncerr": "pod_workers.go:1300", "probe": "prober.go:107", "register": "kubelet_node_status.go:72",
           "version": "server.go:462", "reflector": "reflector.go:535", "remove": "scope.go:117", "pullsecret": "kubelet_pods.go:1094",
           "imagegc": "image_gc_manager.go:382", "volume": "reconciler_common.go:258", "status": "status_manager.go:853"}[k]
    r.add("%s{kt}    %d {src}] " % (sev, pid), kt=T(ts_klog(t), "klog"), src=CODE(src, "go-file-line"))
    podref = ['pod="', K8S(ns, "namespace"), "/", K8S(pod, "pod"), '"']
    if k == "pleg":
        r.add('"SyncLoop (PLEG): event for pod" {pod} event={"ID":"{uid}","Type":"%s","Data":"{cid}"}' % R.choice(["ContainerStarted", "ContainerDied"]),
              pod=podref, uid=POD_UIDV(pod, "json"), cid=HEX(container_id(), "container-id"))
    elif k == "syncerr":
        dep = deploy_of(pod)
        r.add('"Error syncing pod, skipping" err="failed to \\"StartContainer\\" for \\"%s\\" with CrashLoopBackOff: \\"back-off %s restarting failed container=%s pod={pp}({uid})\\"" {pod} podUID="{uid2}"'
              % (dep, R.choice(["10s", "20s", "40s", "1m20s", "2m40s", "5m0s"]), dep),
              pp=K8S(pod + "_" + ns, "pod_namespace"), uid=POD_UIDV(pod, "klog"), pod=podref, uid2=POD_UIDV(pod, "klog"))
    elif k == "probe":
        text, form = ip_any("pod", 0.1, ("v6",))
        if form != "v4":
            text = ip6("v6", "internal")
        port = R.choice([8080, 3000, 9090])
        r.add('"Probe failed" probeType="%s" {pod} podUID="{uid}" containerName="%s" probeResult="failure" output="Get \\"http://{hp}/healthz\\": dial tcp {hp2}: connect: connection refused"'
              % (R.choice(["Readiness", "Liveness"]), deploy_of(pod)),
              pod=podref, uid=POD_UIDV(pod, "klog"), hp=hostport(text, form, port), hp2=hostport(text, form, port))
    elif k == "register":
        r.add('"Attempting to register node" node="{n}"', n=K8S(node, "node"))
    elif k == "version":
        r.add('"Kubelet version" kubeletVersion="{v}"', v=VER(R.choice(["v1.28.4-eks-8ccc7ba", "v1.27.8-gke.1067004", "v1.29.0", "v1.28.3+k3s2"]), "semver-pre-build"))
    elif k == "reflector":
        r.add('{cp}: failed to list *v1.Service: Get "https://{a}:443/api/v1/services?limit=500&resourceVersion=0": dial tcp {b}:443: connect: connection refused',
              cp=CODE("k8s.io/client-go/informers/factory.go:150", "go-file-line"), a=IPV("10.96.0.1", "v4", "url-host"), b=IPV("10.96.0.1", "v4", "port"))
    elif k == "remove":
        r.add('"RemoveContainer" containerID="{cid}"', cid=HEX(container_id(), "container-id"))
    elif k == "pullsecret":
        r.add('"Unable to retrieve pull secret, the image pull may not succeed." {pod} secret="" err="secret \\"{s}\\" not found"',
              pod=podref, s=K8S(R.choice(["regcred", "ghcr-pull", "ecr-creds"]), "secret-name"))
    elif k == "imagegc":
        r.add('"Removing image to free bytes" imageID="{id}" size={sz}', id=HASHV(sha256_digest(), "sha256-digest"), sz=NUM(str(R.randint(10 ** 7, 2 * 10 ** 9)), "byte-count"))
    elif k == "volume":
        r.add('"operationExecutor.MountVolume started for volume \\"%s\\" (UniqueName: \\"kubernetes.io/secret/{uid}-%s\\") pod \\"{p}\\" (UID: \\"{uid2}\\") " {pod}'
              % (R.choice(["db-creds", "kube-api-access-" + rs(K8S_SAFE, 5)]), R.choice(["db-creds", "tls"])),
              uid=POD_UIDV(pod, "klog"), p=K8S(pod, "pod"), uid2=POD_UIDV(pod, "klog"), pod=podref)
    else:
        text, form = ip4("pod"), "v4"
        r.add('"Patch status for pod" {pod} podUID="{uid}" patch="{\\"status\\":{\\"podIP\\":\\"{ip}\\",\\"podIPs\\":[{\\"ip\\":\\"{ip2}\\"}]}}"',
              pod=podref, uid=POD_UIDV(pod, "klog"), ip=IPV(text, form, "quoted"), ip2=IPV(text, form, "quoted"))
    return r


# --- Linux kernel / dmesg -----------------------------------------------------------

def src_kernel():
    r = Rec("kernel")
    t = rdt()
    style = wpick([(50, "dmesg"), (25, "journal"), (25, "dmesg-T")])
    host = host_seg(R.choice(["node-3", "web-01", "db-primary", node_short(node_name()), "bastion-1", "fw-edge-2"]))
    if style == "dmesg":
        up = uptime()
        r.add("[{pad}{up}] ", pad=" " * max(0, 12 - len(up)), up=T(up, "kernel-uptime"))
    elif style == "journal":
        r.add("{ts} {host} kernel: ", ts=T(ts_syslog(t), "syslog-rfc3164"), host=host)
    else:
        r.add("[{ts}] ", ts=T(ts_ctime(t), "ctime"))
    k = wpick([(14, "nflog"), (10, "nflog6"), (8, "e1000e"), (6, "r8169"), (6, "link"), (5, "dup6"), (5, "bond"), (5, "wifi"),
               (6, "linux-version"), (6, "oom"), (6, "segfault"), (5, "ext4"), (5, "audit"), (4, "bridge"), (4, "microcode"), (4, "rip"), (4, "synflood")])
    nic = R.choice(["eth0", "eth1", "ens5", "enp3s0", "eno1"])
    mb1, mb2 = two_macs() if k in ("nflog", "nflog6", "wifi") else (None, None)
    if k == "nflog":
        src, form = ip_any("client", 0, ())
        dst = ip4("internal")
        proto = R.choice(["TCP", "TCP", "UDP"])
        prefix = R.choice(["[UFW BLOCK] ", "[UFW AUDIT] ", "IPTABLES-DROP: ", "nft-drop: ", ""])
        dport = R.choice([22, 443, 3389, 5432, 6379, 23, 8080])
        r.add("%sIN=%s OUT= MAC={dmac}:{smac}:08:00 SRC={src} DST={dst} LEN=%d TOS=0x00 PREC=0x00 TTL=%d ID=%d %sPROTO=%s SPT={spt} DPT={dpt} "
              % (prefix, nic, R.choice([40, 44, 52, 60]), R.randint(30, 250), R.randint(1, 65535), R.choice(["DF ", ""]), proto),
              dmac=MACV("colon-lower", "netfilter-pair", mb1), smac=MACV("colon-lower", "netfilter-pair", mb2),
              src=IPV(src, "v4", "plain"), dst=IPV(dst, "v4", "plain"), spt=PORT(str(R.randint(1024, 65535)), "port"), dpt=PORT(str(dport), "port"))
        r.add("WINDOW=%d RES=0x00 SYN URGP=0" % R.randint(1024, 65535) if proto == "TCP" else "LEN=%d" % R.randint(8, 512))
    elif k == "nflog6":
        r.add("[UFW BLOCK] IN=%s OUT= MAC={dmac}:{smac}:86:dd SRC={src} DST={dst} LEN=%d TC=0 HOPLIMIT=%d FLOWLBL=%d PROTO=TCP SPT={spt} DPT={dpt} WINDOW=%d RES=0x00 SYN URGP=0"
              % (nic, R.choice([72, 80, 96]), R.randint(40, 64), R.randint(0, 999999), R.randint(1024, 65535)),
              dmac=MACV("colon-lower", "netfilter-pair", mb1), smac=MACV("colon-lower", "netfilter-pair", mb2),
              src=IPV(ip6("v6-full"), "v6-full", "plain"), dst=IPV(ip6("v6-full", "internal"), "v6-full", "plain"),
              spt=PORT(str(R.randint(1024, 65535)), "port"), dpt=PORT(str(R.choice([22, 443, 25])), "port"))
    elif k == "e1000e":
        drv = R.choice(["e1000e 0000:00:1f.6", "igb 0000:01:00.0", "ixgbe 0000:03:00.0"])
        r.add("%s %s: (PCI Express:2.5GT/s:Width x1) {mac}" % (drv, nic), mac=MACV("colon-lower", "dmesg"))
    elif k == "r8169":
        r.add("r8169 0000:02:00.0 %s: RTL8168h/8111h, {mac}, XID 541, IRQ %d" % (nic, R.randint(24, 140)), mac=MACV("colon-lower", "dmesg"))
    elif k == "link":
        which = R.random()
        if which < 0.4:
            r.add("%s: link up" % nic)
            if R.random() < 0.5:
                r.add(", {spd}", spd=R.choice(["1000Mbps/Full - flow control rx/tx", "10Gbps/Full"]))
        elif which < 0.7:
            r.add("e1000e: %s NIC Link is Up 1000 Mbps Full Duplex, Flow Control: Rx/Tx" % nic)
        else:
            r.add("IPv6: ADDRCONF(NETDEV_CHANGE): %s: link becomes ready" % nic)
    elif k == "dup6":
        b = mac_bytes()
        r.add("IPv6: %s: IPv6 duplicate address {ip} used by {mac} detected!" % nic,
              ip=IPV(ip6_linklocal(b), "v6", "plain"), mac=MACV("colon-lower", "dmesg", b))
    elif k == "bond":
        r.add("bond0: (slave %s): the permanent HWaddr of slave - {mac} - is still in use by bond - set the HWaddr of slave to a different address to avoid conflicts" % nic,
              mac=MACV("colon-lower", "dmesg"))
    elif k == "wifi":
        r.add("wlp2s0: authenticate with {mac} (local address={mac2})", mac=MACV("colon-lower", "dmesg", mb1), mac2=MACV("colon-lower", "dmesg", mb2))
    elif k == "linux-version":
        kv = R.choice(KERNEL_VERSIONS)
        r.add("Linux version {kv} (buildd@lcy02-amd64-045) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) {gv}, GNU ld (GNU Binutils for Ubuntu) 2.38) #%d-Ubuntu SMP {bt}"
              % R.randint(50, 180), kv=VER(kv, "kernel"), gv=V_("11.4.0"), bt=T(ts_ctime(t).replace(str(t.year), "UTC " + str(t.year)), "ctime"))
    elif k == "oom":
        r.add("Out of memory: Killed process %d (%s) total-vm:%dkB, anon-rss:%dkB, file-rss:0kB, shmem-rss:0kB, UID:%d pgtables:%dkB oom_score_adj:%d"
              % (R.randint(1000, 99999), R.choice(["java", "node", "python3", "postgres", "envoy"]), R.randint(10 ** 6, 9 * 10 ** 6), R.randint(10 ** 5, 4 * 10 ** 6),
                 R.choice([0, 1000, 999]), R.randint(1000, 9999), R.choice([0, 999, -997])))
    elif k == "segfault":
        base = R.randint(0x7f0000000000, 0x7fffffffffff) & ~0xfff
        r.add("%s[%d]: segfault at %x ip {ip} sp {sp} error %d in %s[{base}+%x] likely on CPU %d (core %d, socket 0)"
              % (R.choice(["node", "envoy", "orders-api", "python3"]), R.randint(1000, 99999), R.choice([0, 8, 0x18]), R.choice([4, 6, 14]),
                 R.choice(["libc.so.6", "libssl.so.3", "orders-api"]), R.randint(0x10000, 0x1ff000), R.randint(0, 15), R.randint(0, 15)),
              ip=HEX("%016x" % (base + R.randint(0, 0x1fffff)), "pointer"), sp=HEX("%016x" % (0x7ffe00000000 + R.randint(0, 0xffffffff)), "pointer"),
              base=HEX("%x" % base, "pointer"))
    elif k == "ext4":
        r.add("EXT4-fs (%s): mounted filesystem {u} r/w with ordered data mode. Quota mode: none." % R.choice(["nvme0n1p1", "sda1", "xvda1", "nvme1n1"]),
              u=UUIDV("dmesg"))
    elif k == "audit":
        r.add('audit: type=1400 audit({ts}:%d): apparmor="DENIED" operation="open" profile="%s" name="%s" pid=%d comm="%s" requested_mask="r" denied_mask="r" fsuid=0 ouid=0'
              % (R.randint(100, 9999), R.choice(["docker-default", "cri-containerd.apparmor.d", "snap.lxd.lxc"]), R.choice(["/etc/shadow", "/proc/sys/kernel/core_pattern", "/root/.ssh/id_rsa"]),
                 R.randint(1000, 99999), R.choice(["cat", "sh", "python3"])),
              ts=T("%d.%03d" % (epoch(t), t.microsecond // 1000), "epoch-ms-dotted"))
    elif k == "bridge":
        br = R.choice(["docker0", "br-" + hexs(12), "cni0"])
        r.add("{br}: port %d(veth%s) entered %s state" % (R.randint(1, 12), hexs(7), R.choice(["blocking", "forwarding", "disabled"])),
              br=HEX(br, "bridge-id") if br.startswith("br-") else br)
    elif k == "microcode":
        r.add("microcode: updated early: {a} -> {b}, date = {d}", a=HEX("0x%x" % R.randint(0xd0, 0xf0), "hex-revision"), b=HEX("0x%x" % R.randint(0xf1, 0xff), "hex-revision"),
              d=T(R.choice(["2023-07-27", "2023-08-10"]), "date"))
    elif k == "rip":
        r.add("RIP: 0010:{sym}", sym=CODE("%s+0x%x/0x%x" % (R.choice(["tcp_v4_rcv", "__skb_flow_dissect", "nf_nat_setup_info", "ext4_da_write_end", "kmem_cache_alloc"]),
                                                           R.randint(0x10, 0x3ff), R.randint(0x400, 0xfff)), "kernel-symbol+offset"))
    else:
        text, form = ip4("internal"), "v4"
        r.add("TCP: request_sock_TCP: Possible SYN flooding on port {a}:{p}. Sending cookies.  Check SNMP counters.", a=IPV(text, form, "port"),
              p=str(R.choice([443, 80, 8443])))
    return r


# --- syslog / auth ------------------------------------------------------------------

def src_syslog():
    r = Rec("syslog")
    t = rdt()
    host = host_seg(R.choice(["bastion-1", "web-01", "mail-1", "ns1", "gw-01", "db-primary", node_short(node_name())]))
    k = wpick([(13, "ssh-accepted"), (10, "ssh-failed"), (5, "ssh-invalid"), (4, "ssh-closed"), (8, "sudo"), (4, "sudo-pw"), (5, "passwd"),
               (7, "dnsmasq"), (4, "dhcpd"), (24, "cisco"), (7, "postfix"), (4, "cron"), (4, "named"), (6, "haproxy"), (5, "rfc5424"),
               (3, "nm"), (2, "useradd"), (6, "radius")])
    if k == "cisco":
        r.add("{ts} {ip} %d: " % R.randint(100, 99999), ts=T(ts_syslog(t), "syslog-rfc3164"), ip=IPV(ip4("internal"), "v4", "plain"))
        tsc = T("%s.%03d UTC" % (ts_syslog(t), t.microsecond // 1000), "cisco-timestamp")
        which = R.choice(["macflap", "macflap", "login", "updown", "dhcpsnoop", "ipv6dup", "ssh", "acl6", "bgp6", "mac-move"])
        mb1, mb2 = two_macs() if which == "dhcpsnoop" else (None, None)
        if which == "macflap":
            r.add("{ts}: %%SW_MATM-4-MACFLAP_NOTIF: Host {mac} in vlan %d is flapping between port Gi1/0/%d and port Gi1/0/%d"
                  % (R.randint(1, 400), R.randint(1, 48), R.randint(1, 48)), ts=tsc, mac=MACV("dotted", "cisco"))
        elif which == "login":
            r.add("{ts}: %%SEC_LOGIN-5-LOGIN_SUCCESS: Login Success [user: %s] [Source: {ip}] [localport: {p}] at {t2}" % R.choice(["admin", "netops", "jdoe"]),
                  ts=tsc, ip=IPV(ip6("v6-upper", "internal"), "v6-upper", "plain") if R.random() < 0.3 else IPV(ip4("internal"), "v4", "plain"), p=PORT("22", "port"), t2=T("%s UTC %s" % (t.strftime("%H:%M:%S"), ts_ctime(t)[:10] + " " + str(t.year)), "cisco-timestamp"))
        elif which == "updown":
            r.add("{ts}: %%LINK-3-UPDOWN: Interface GigabitEthernet1/0/%d, changed state to %s" % (R.randint(1, 48), R.choice(["up", "down"])), ts=tsc)
        elif which == "dhcpsnoop":
            r.add("{ts}: %DHCP_SNOOPING-5-DHCP_SNOOPING_MATCH_MAC_FAIL: DHCP_SNOOPING drop message because the chaddr doesn't match source mac, message type: DHCPDISCOVER, chaddr: {a}, MAC sa: {b}",
                  ts=tsc, a=MACV("dotted", "cisco", mb1), b=MACV("dotted", "cisco", mb2))
        elif which == "acl6":
            a = ip6("v6-upper")
            b = ip6("v6-upper", "internal")
            r.add("{ts}: %%IPV6_ACL-6-ACCESSLOGP: list ACL-IN/%d denied tcp {a}({ap}) -> {b}({bp}), %d packet%s" % (R.randint(10, 90), R.randint(1, 9), R.choice(["", "s"])),
                  ts=tsc, a=IPV(a, "v6-upper", "paren-port"), ap=str(R.randint(1024, 65535)), b=IPV(b, "v6-upper", "paren-port"), bp=str(R.choice([22, 23, 443, 161])))
        elif which == "bgp6":
            r.add("{ts}: %%BGP-5-ADJCHANGE: neighbor {ip} %s" % R.choice(["Up", "Down BGP Notification sent", "Down Peer closed the session"]),
                  ts=tsc, ip=IPV(ip6("v6-upper", "internal"), "v6-upper", "plain"))
        elif which == "mac-move":
            mb1, mb2 = two_macs()
            r.add("{ts}: %%SW_MATM-4-MACFLAP_NOTIF: Host {mac} in vlan %d is flapping between port Te1/1/%d and port Po%d" % (R.randint(1, 400), R.randint(1, 4), R.randint(1, 8)),
                  ts=tsc, mac=MACV("dotted", "cisco", mb1))
        elif which == "ipv6dup":
            r.add("{ts}: %%IPV6_ND-4-DUPLICATE: Duplicate address {ip} on Vlan%d" % R.randint(1, 400), ts=tsc, ip=IPV(ip6("v6-upper"), "v6-upper", "plain"))
        else:
            r.add("{ts}: %%SSH-5-SSH2_USERAUTH: User '%s' authentication for SSH2 Session from {ip} (tty = 0) using crypto cipher 'aes256-ctr', hmac 'hmac-sha2-256' Succeeded"
                  % R.choice(["admin", "netops"]), ts=tsc, ip=client_ipv(0.5, ("v6-upper",), "plain"))
        return r
    if k == "rfc5424":
        pri = R.choice([34, 38, 86, 165, 134])
        r.add("<%d>1 {ts} {host} %s %d %s [origin ip=\"{ip}\"][meta sequenceId=\"%d\"] "
              % (pri, R.choice(["orders", "sshd", "api", "su"]), R.randint(100, 9999), R.choice(["ID47", "-", "AUDIT"]), R.randint(1, 9999)),
              ts=T(ts_iso(t, 3, R.choice(["Z", "+00:00", "-07:00"])), "rfc3339"), host=R.choice(["mymachine.example.com", "api-1.example.net", K8S(pod_name(), "pod")]),
              ip=IPV(ip4("internal"), "v4", "quoted"))
        r.add(R.choice(["user {em} logged in from {ip}", "password reset mail sent to {em} (request from {ip})", "'su root' failed for {em} on /dev/pts/8 from {ip}"]),
              em=EMAILV("syslog"), ip=client_ipv(0.2, ("v6",), "plain"))
        return r
    proc = {"ssh-accepted": "sshd", "ssh-failed": "sshd", "ssh-invalid": "sshd", "ssh-closed": "sshd", "sudo": "sudo", "sudo-pw": "sudo",
            "passwd": "passwd", "dnsmasq": "dnsmasq-dhcp", "dhcpd": "dhcpd", "postfix": R.choice(["postfix/smtp", "postfix/smtpd"]),
            "cron": "CRON", "named": "named", "haproxy": "haproxy", "nm": "NetworkManager", "useradd": "useradd", "radiusd": "radiusd",
            "radius": "radiusd"}[k]
    pid = "" if proc == "sudo" else "[%d]" % R.randint(300, 99999)
    r.add("{ts} {host} %s%s: " % (proc, pid), ts=T(ts_syslog(t), "syslog-rfc3164"), host=host)
    v6forms = ("v6",)
    if k == "ssh-accepted":
        method = R.choice(["publickey", "publickey", "password", "keyboard-interactive/pam"])
        r.add("Accepted %s for %s from {ip} port {p} ssh2" % (method, R.choice(["deploy", "ubuntu", "ec2-user", "jane", "root"])),
              ip=client_ipv(0.2, v6forms, "plain"), p=PORT(str(R.randint(1024, 65535)), "port"))
        if method == "publickey":
            r.add(": %s {fp}" % R.choice(["RSA", "ED25519", "ECDSA"]), fp=HASHV("SHA256:" + b64(rbytes(32)).rstrip("="), "ssh-fingerprint"))
    elif k == "ssh-failed":
        user = R.choice(["root", "admin", "invalid user oracle", "invalid user test", "ubuntu", "invalid user postgres"])
        r.add("Failed password {fu} from {ip} port {p} ssh2", fu=KN("for " + user, "after-password"), ip=client_ipv(0.2, v6forms, "plain"),
              p=PORT(str(R.randint(1024, 65535)), "port"))
    elif k == "ssh-invalid":
        r.add("Invalid user %s from {ip} port {p}" % R.choice(["admin", "oracle", "git", "pi", "ftpuser"]), ip=client_ipv(0.25, v6forms, "plain"),
              p=PORT(str(R.randint(1024, 65535)), "port"))
    elif k == "ssh-closed":
        r.add("Connection closed by authenticating user %s {ip} port {p} [preauth]" % R.choice(["root", "ubuntu"]), ip=client_ipv(0.2, v6forms, "plain"),
              p=PORT(str(R.randint(1024, 65535)), "port"))
    elif k == "sudo":
        u = R.choice(["deploy", "jane", "ubuntu", "ops"])
        r.add("%8s : TTY=pts/%d ; PWD={pwd} ; USER=root ; COMMAND=%s" % (u, R.randint(0, 5), R.choice(["/usr/bin/systemctl restart api", "/usr/bin/journalctl -u kubelet", "/bin/cat /var/log/auth.log", "/usr/bin/apt-get upgrade"])),
              pwd=KN(R.choice(["/home/%s" % u, "/srv/app", "/root", "/etc/nginx"]), "pwd-path"))
    elif k == "sudo-pw":
        u = R.choice(["deploy", "jane", "ops"])
        cmd = R.choice(["mysql", "pgpass", "curl", "psql"])
        if cmd == "mysql":
            seg = ["/usr/bin/mysql -u root --password=", PWV("cli-flag", key="password"), " shop"]
        elif cmd == "pgpass":
            seg = ["/usr/bin/env PGPASSWORD=", PWV("env", key="PGPASSWORD"), " /usr/bin/pg_dump -h ", IPV(ip4("internal"), "v4", "plain"), " -U app orders"]
        elif cmd == "curl":
            user = R.choice(["admin", "elastic"])
            pw, style = password()
            seg = ["/usr/bin/curl -u ", user, ":", PWV("cli-userpass", pw, style), " https://", PORT("localhost:9200", "host:port"), "/_cluster/health"]
        else:
            seg = ["/usr/bin/psql postgresql://app:", PWV("url-userinfo", pw_url(password()[0]), "random"), "@", PORT("db.internal:5432", "host:port"), "/orders"]
        r.add("%8s : TTY=pts/%d ; PWD={pwd} ; USER=root ; COMMAND={cmd}" % (u, R.randint(0, 5)), pwd=KN("/home/" + u, "pwd-path"), cmd=seg)
    elif k == "passwd":
        r.add("pam_unix(passwd:chauthtok): password {c}", c=KN("changed for " + R.choice(["deploy", "jane", "root", "backup"]), "after-password"))
    elif k == "dnsmasq":
        msg = R.choice(["DHCPACK", "DHCPREQUEST", "DHCPOFFER", "DHCPDISCOVER"])
        r.add("%s(%s) {ip} {mac}" % (msg, R.choice(["br0", "eth0", "lan"])), ip=IPV(ip4("internal"), "v4", "plain"), mac=MACV("colon-lower", "dnsmasq"))
        if msg == "DHCPACK":
            r.add(" %s" % R.choice(["laptop-jane", "android-5f2a", "printer-2f", "raspberrypi", "DESKTOP-7Q2K1L"]))
    elif k == "dhcpd":
        r.add("DHCPACK on {ip} to {mac} (%s) via %s" % (R.choice(["laptop", "printer-2f", "ipcam-3"]), R.choice(["eth0", "eth1"])),
              ip=IPV(ip4("internal"), "v4", "plain"), mac=MACV("colon-lower", "dhcpd"))
    elif k == "postfix":
        qid = hexs(10, upper=True)
        if proc == "postfix/smtp":
            r.add("{q}: to=<{em}>, relay=%s[{ip}]:25, delay=%.2f, delays=0.01/0/0.%d/0.%d, dsn=2.0.0, status=sent (250 2.0.0 OK  %d {q2} - gsmtp)"
                  % (R.choice(["mx.example.com", "aspmx.l.google.com", "mail.example.net"]), R.random() * 3, R.randint(1, 9), R.randint(1, 9), epoch(t)),
                  q=HEX(qid, "postfix-queue-id"), em=EMAILV("angle-brackets"), ip=client_ipv(0.25, ("v6",), "bracket"), q2=HEX(rs(ALNUM, 14), "smtp-id"))
        else:
            r.add("NOQUEUE: reject: RCPT from unknown[{ip}]: 554 5.7.1 <{to}>: Relay access denied; from=<{fr}> to=<{to2}> proto=ESMTP helo=<%s>"
                  % R.choice(["ylmf-pc", "example.com", "WIN-3K2LQ1"]), ip=client_ipv(0.2, ("v6",), "bracket"), to=EMAILV("angle-brackets"),
                  fr=EMAILV("angle-brackets"), to2=EMAILV("angle-brackets"))
    elif k == "cron":
        if R.random() < 0.5:
            r.add("(root) CMD (PGPASSWORD={pw} pg_dump -h {h} -U app orders | gzip > /backup/orders-$(date +\\%F).sql.gz)",
                  pw=PWV("env", key="PGPASSWORD"), h=IPV(ip4("internal"), "v4", "plain"))
        else:
            r.add("(deploy) CMD (/usr/local/bin/rotate-logs.sh --max-age 30 >/dev/null 2>&1)")
    elif k == "named":
        text, form = ip_any("client", 0.2, ("v6",))
        q = R.choice(["example.com", "api.example.com", "_ldap._tcp.corp.example", "mail.example.org"])
        r.add("client @{ptr} {ip}#{p} (%s): query: %s IN %s +E(0)K ({srv})" % (q, q, R.choice(["A", "AAAA", "MX", "SRV", "TXT"])),
              ptr=HEX("0x%x" % R.randint(0x7f0000000000, 0x7fffffffffff), "pointer"), ip=IPV(text, form, "hash-port"),
              p=PORT(str(R.randint(1024, 65535)), "port"), srv=IPV(ip4("internal"), "v4", "plain"))
    elif k == "haproxy":
        text, form = ip4("client"), "v4"
        n, v = header_entry(R.choice(["bearer-jwt", "bearer-token", "basic"]))
        st = R.choice([200, 200, 401, 503])
        r.add('{src}:{sp} [{ts}] fe_https~ be_api/api-%d %d/%d/%d/%d/%d %d %d - - ---- %d/%d/0/0/0 0/0 {%s|{hv}} "%s /api/v1/%s HTTP/1.1"'
              % (R.randint(1, 4), R.randint(0, 5), 0, R.randint(0, 3), R.randint(1, 400), R.randint(1, 400), st, R.randint(100, 9000),
                 R.randint(1, 90), R.randint(1, 90), R.choice(PUBLIC_HOSTS), R.choice(["GET", "POST"]), R.choice(["me", "orders", "cart"])),
              src=IPV(text, form, "port"), sp=str(R.randint(1024, 65535)),
              ts=T("%02d/%s/%d:%s.%03d" % (t.day, MONTHS[t.month - 1], t.year, t.strftime("%H:%M:%S"), t.microsecond // 1000), "haproxy-date"), hv=v)
    elif k == "radius":
        ok = R.random() < 0.6
        r.add("(%d) Login %s: [{u}] (from client %s port %d cli {m})" % (R.randint(1, 9999), "OK" if ok else "incorrect", R.choice(["wlc-1", "ap-floor2", "vpn-gw"]), R.randint(0, 48)),
              u=EMAILV("radius"), m=MACV(R.choice(["colon-upper", "dash-upper", "dash-lower"]), "radius"))
    elif k == "nm":
        r.add("<info>  [{ts}] dhcp4 (%s): state changed new lease, address={ip}" % R.choice(["eth0", "wlp2s0", "enp3s0"]),
              ts=T("%d.%04d" % (epoch(t), t.microsecond // 100), "epoch-s-frac"), ip=IPV(ip4("internal"), "v4", "plain"))
    else:
        f, l = person()
        r.add("new user: name=%s, UID=%d, GID=%d, home=/home/%s, shell=/bin/bash, from=/dev/pts/%d" % (f, R.randint(1001, 1999), R.randint(1001, 1999), f, R.randint(0, 4)))
    return r


# --- SNMP ---------------------------------------------------------------------------

TRAPS = [("IF-MIB::linkDown", ".1.3.6.1.6.3.1.1.5.3"), ("IF-MIB::linkUp", ".1.3.6.1.6.3.1.1.5.4"),
         ("SNMPv2-MIB::coldStart", ".1.3.6.1.6.3.1.1.5.1"), ("SNMPv2-MIB::authenticationFailure", ".1.3.6.1.6.3.1.1.5.5"),
         ("CISCO-SYSLOG-MIB::clogMessageGenerated", ".1.3.6.1.4.1.9.9.41.2.0.1"), ("NET-SNMP-AGENT-MIB::nsNotifyShutdown", ".1.3.6.1.4.1.8072.4.0.2")]


def varbind(numeric):
    """(segments) one SNMP variable binding."""
    k = R.choice(["ifIndex", "ifDescr", "ifAdminStatus", "ifOperStatus", "ifPhysAddress", "ifPhysAddress", "laLoad", "sysContact", "ifHCInOctets", "sysDescr", "hrSWRunName"])
    idx = R.randint(1, 48)
    if k == "ifIndex":
        return [OIDV(".1.3.6.1.2.1.2.2.1.1.%d" % idx if numeric else "IF-MIB::ifIndex.%d" % idx, "numeric" if numeric else "mib-name"), " = INTEGER: %d" % idx]
    if k == "ifDescr":
        return [OIDV(".1.3.6.1.2.1.2.2.1.2.%d" % idx if numeric else "IF-MIB::ifDescr.%d" % idx, "numeric" if numeric else "mib-name"), " = STRING: GigabitEthernet1/0/%d" % idx]
    if k == "ifAdminStatus":
        return [OIDV(".1.3.6.1.2.1.2.2.1.7.%d" % idx if numeric else "IF-MIB::ifAdminStatus.%d" % idx, "numeric" if numeric else "mib-name"), " = INTEGER: up(1)" if not numeric else " = INTEGER: 1"]
    if k == "ifOperStatus":
        return [OIDV(".1.3.6.1.2.1.2.2.1.8.%d" % idx if numeric else "IF-MIB::ifOperStatus.%d" % idx, "numeric" if numeric else "mib-name"), " = INTEGER: down(2)" if not numeric else " = INTEGER: 2"]
    if k == "ifPhysAddress":
        nm = "colon-unpadded" if R.random() < 0.75 else "colon-lower"
        return [OIDV(".1.3.6.1.2.1.2.2.1.6.%d" % idx if numeric else "IF-MIB::ifPhysAddress.%d" % idx, "numeric" if numeric else "mib-name"), " = STRING: ", MACV(nm, "snmp")]
    if k == "laLoad":
        return [OIDV(".1.3.6.1.4.1.2021.10.1.3.1" if numeric else "UCD-SNMP-MIB::laLoad.1", "numeric" if numeric else "mib-name"), ' = STRING: "%.2f"' % (R.random() * 4) if numeric else " = STRING: %.2f" % (R.random() * 4)]
    if k == "sysContact":
        return [OIDV(".1.3.6.1.2.1.1.4.0" if numeric else "SNMPv2-MIB::sysContact.0", "numeric" if numeric else "mib-name"), " = STRING: ", EMAILV("snmp")]
    if k == "ifHCInOctets":
        return [OIDV(".1.3.6.1.2.1.31.1.1.1.6.%d" % idx if numeric else "IF-MIB::ifHCInOctets.%d" % idx, "numeric" if numeric else "mib-name"), " = Counter64: ",
                NUM(long_id(R.choice([13, 14, 15])), "counter64")]
    if k == "sysDescr":
        return [OIDV(".1.3.6.1.2.1.1.1.0" if numeric else "SNMPv2-MIB::sysDescr.0", "numeric" if numeric else "mib-name"), " = STRING: Linux %s " % R.choice(["sw-core-1", "nas-2", "fw-edge-2"]),
                VER(R.choice(KERNEL_VERSIONS), "kernel"), " #1 SMP x86_64"]
    return [OIDV(".1.3.6.1.2.1.25.4.2.1.2.%d" % R.randint(100, 9999) if numeric else "HOST-RESOURCES-MIB::hrSWRunName.%d" % R.randint(100, 9999), "numeric" if numeric else "mib-name"),
            ' = STRING: "%s"' % R.choice(["nginx", "snmpd", "sshd", "postgres"])]


def src_snmp():
    r = Rec("snmp")
    t = rdt()
    k = wpick([(33, "trap-syslog"), (18, "trap-numeric"), (14, "trap-v1"), (20, "walk"), (7, "snmpd-conn"), (8, "exporter")])
    agent = ip4("internal")
    if k == "exporter":
        r.add("ts={ts} caller=collector.go:%d level=debug auth=public_v2 target={tgt} module=if_mib msg=\"Walking subtree\" oid={oid}" % R.randint(200, 400),
              ts=T(ts_iso(t, 3), "rfc3339"), tgt=IPV(agent, "v4", "plain"),
              oid=OIDV(R.choice(["1.3.6.1.2.1.2.2.1", "1.3.6.1.2.1.31.1.1.1", "1.3.6.1.4.1.2021.10.1.3.1", "1.3.6.1.2.1.1.3.0", "1.3.6.1.4.1.9.9.13.1.3.1.3"]), "numeric-no-leading-dot"))
        return r
    if k == "trap-syslog":
        trap = R.choice(TRAPS)
        r.add("{ts} nms-1 snmptrapd[%d]: {ts2} %s [UDP: [{a}]:{ap}->[{b}]:162]:#012{o1} = Timeticks: (%d) {up}#011{o2} = OID: {trap}"
              % (R.randint(300, 9999), R.choice(["sw-core-1.example.net", "<UNKNOWN>", "fw-edge-2.corp.example"]), R.randint(1000, 10 ** 9)),
              ts=T(ts_syslog(t), "syslog-rfc3164"), ts2=T(t.strftime("%Y-%m-%d %H:%M:%S"), "datetime"), a=IPV(agent, "v4", "bracket-port"),
              ap=str(R.randint(1024, 65535)), b=IPV(ip4("internal"), "v4", "bracket-port"),
              o1=OIDV("DISMAN-EVENT-MIB::sysUpTimeInstance", "mib-name"), up=T("%d days, %d:%02d:%02d.%02d" % (R.randint(0, 400), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 99)), "timeticks"),
              o2=OIDV("SNMPv2-MIB::snmpTrapOID.0", "mib-name"), trap=OIDV(trap[0], "mib-name"))
        for _ in range(R.randint(1, 3)):
            r.add("#011{vb}", vb=varbind(False))
    elif k == "trap-numeric":
        trap = R.choice(TRAPS)
        r.add("{ts} {a} [UDP: [{a2}]:{ap}->[{b}]:162]: {o1} = Timeticks: (%d) {up}, {o2} = OID: {trap}" % R.randint(1000, 10 ** 8),
              ts=T(t.strftime("%Y-%m-%d %H:%M:%S"), "datetime"), a=IPV(agent, "v4", "plain"), a2=IPV(agent, "v4", "bracket-port"), ap=str(R.randint(1024, 65535)),
              b=IPV(ip4("internal"), "v4", "bracket-port"), o1=OIDV(".1.3.6.1.2.1.1.3.0", "numeric"),
              up=T("%d:%02d:%02d.%02d" % (R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 99)), "timeticks"),
              o2=OIDV(".1.3.6.1.6.3.1.1.4.1.0", "numeric"), trap=OIDV(trap[1], "numeric"))
        for _ in range(R.randint(1, 3)):
            r.add(", {vb}", vb=varbind(True))
    elif k == "trap-v1":
        r.add("{ts} nms-1 snmptrapd[%d]: {a}: %s Trap (%d) Uptime: {up}" % (R.randint(300, 9999), R.choice(["Link Down", "Link Up", "Cold Start", "Enterprise Specific"]), R.randint(0, 9)),
              ts=T(ts_syslog(t), "syslog-rfc3164"), a=IPV(agent, "v4", "plain"),
              up=T("%d days, %d:%02d:%02d.%02d" % (R.randint(0, 400), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 99)), "timeticks"))
        for _ in range(R.randint(1, 3)):
            r.add(", {vb}", vb=varbind(False))
    elif k == "walk":
        style = R.choice(["mib", "iso", "numeric"])
        if style == "iso":
            which = R.choice(["descr", "uptime", "contact", "load"])
            if which == "descr":
                r.add('{o} = STRING: "Linux %s {kv} #1 SMP x86_64"' % R.choice(["sw-core-1", "nas-2"]), o=OIDV("iso.3.6.1.2.1.1.1.0", "iso-prefix"), kv=VER(R.choice(KERNEL_VERSIONS), "kernel"))
            elif which == "uptime":
                r.add("{o} = Timeticks: (%d) {up}" % R.randint(1000, 10 ** 9), o=OIDV("iso.3.6.1.2.1.1.3.0", "iso-prefix"),
                      up=T("%d days, %d:%02d:%02d.%02d" % (R.randint(0, 400), R.randint(0, 23), R.randint(0, 59), R.randint(0, 59), R.randint(0, 99)), "timeticks"))
            elif which == "contact":
                r.add('{o} = STRING: "{em}"', o=OIDV("iso.3.6.1.2.1.1.4.0", "iso-prefix"), em=EMAILV("snmp"))
            else:
                r.add('{o} = STRING: "%.2f"' % (R.random() * 4), o=OIDV("iso.3.6.1.4.1.2021.10.1.3.%d" % R.randint(1, 3), "iso-prefix"))
        elif style == "mib":
            r.add("{vb}", vb=varbind(False))
            if R.random() < 0.3:
                r.reset()
                r.add("{o} = OID: {o2}", o=OIDV("SNMPv2-MIB::sysObjectID.0", "mib-name"), o2=OIDV("NET-SNMP-MIB::netSnmpAgentOIDs.10", "mib-name"))
        else:
            r.add("{vb}", vb=varbind(True))
            if R.random() < 0.3:
                r.reset()
                r.add("{o} = OID: {o2}", o=OIDV(".1.3.6.1.2.1.1.2.0", "numeric"), o2=OIDV(".1.3.6.1.4.1.8072.3.2.10", "numeric"))
    else:
        r.add("{ts} sw-core-1 snmpd[%d]: Connection from UDP: [{a}]:{ap}->[{b}]:161" % R.randint(300, 9999),
              ts=T(ts_syslog(t), "syslog-rfc3164"), a=IPV(ip4("internal"), "v4", "bracket-port"), ap=str(R.randint(1024, 65535)), b=IPV(agent, "v4", "bracket-port"))
    return r


# --- Go panics and goroutine traces ---------------------------------------------------

GO_FRAMES = [
    ("main.(*Server).handleOrder", "/app/internal/server/orders.go"), ("main.main", "/app/cmd/api/main.go"),
    ("main.(*Server).Serve", "/app/internal/server/server.go"), ("net/http.(*Server).Serve", "/usr/local/go/src/net/http/server.go"),
    ("net/http.HandlerFunc.ServeHTTP", "/usr/local/go/src/net/http/server.go"), ("net/http.(*conn).serve", "/usr/local/go/src/net/http/server.go"),
    ("net/http.serverHandler.ServeHTTP", "/usr/local/go/src/net/http/server.go"),
    ("github.com/go-chi/chi/v5.(*Mux).routeHTTP", "/go/pkg/mod/github.com/go-chi/chi/v5@v5.0.10/mux.go"),
    ("github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire", "/go/pkg/mod/github.com/jackc/pgx/v5@v5.5.1/pgxpool/pool.go"),
    ("encoding/json.(*decodeState).object", "/usr/local/go/src/encoding/json/decode.go"),
    ("github.com/acme/orders-api/internal/store.(*PG).CreateOrder", "/app/internal/store/postgres.go"),
    ("runtime.gopanic", "/usr/local/go/src/runtime/panic.go"), ("runtime.sigpanic", "/usr/local/go/src/runtime/signal_unix.go"),
    ("google.golang.org/grpc.(*Server).handleStream", "/go/pkg/mod/google.golang.org/grpc@v1.59.0/server.go"),
    ("main.(*Worker).consume.func1", "/app/internal/worker/consumer.go"),
    ("sync.(*WaitGroup).Wait", "/usr/local/go/src/sync/waitgroup.go"),
]


def go_ptr():
    return "0x%x" % R.choice([R.randint(0xc000010000, 0xc0003fffff), R.randint(0x400000, 0xffffff)])


def go_line(t):
    """Segments of one line of Go panic output (without trailing newline)."""
    k = wpick([(14, "func"), (16, "file"), (8, "panic-rt"), (4, "signal"), (6, "goroutine"), (4, "created"), (10, "panic-dial"),
               (6, "panic-url"), (5, "panic-auth"), (6, "http-panic"), (6, "tls"), (6, "zone"), (4, "buildinfo"), (3, "jwt"), (3, "exit"), (3, "card")])
    if k == "card":
        return ['panic: charge %s: card ' % R.choice(["declined", "failed"]), CARDV("panic-message"), ": ", R.choice(["insufficient_funds", "do_not_honor", "processing_error"])]
    if k == "func":
        fn, _ = R.choice(GO_FRAMES)
        args = []
        for i in range(R.randint(0, 3)):
            args.append(HEX(go_ptr(), "pointer") if R.random() < 0.7 else "{%s, %s}" % (go_ptr(), go_ptr()))
        segs = [CODE(fn, "go-func")]
        segs.append("(")
        for i, a in enumerate(args):
            if i:
                segs.append(", ")
            segs.append(a)
        segs.append(R.choice([")", ", ...)"]) if args else ")")
        return segs
    if k == "file":
        _, f = R.choice(GO_FRAMES)
        return ["\t", CODE("%s:%d" % (f, R.randint(20, 3200)), "go-file-line"), " ", HEX("+0x%x" % R.randint(0x10, 0x6ff), "go-pc-offset")]
    if k == "panic-rt":
        return [R.choice(["panic: runtime error: invalid memory address or nil pointer dereference", "panic: runtime error: index out of range [5] with length 3",
                          "fatal error: concurrent map writes", "panic: assignment to entry in nil map", "panic: send on closed channel"])]
    if k == "signal":
        return ["[signal SIGSEGV: segmentation violation code=0x1 addr=", HEX("0x%x" % R.choice([0, 8, 0x18, 0x30]), "pointer"), " pc=", HEX("0x%x" % R.randint(0x400000, 0xffffff), "pointer"), "]"]
    if k == "goroutine":
        return ["goroutine %d [%s]:" % (R.randint(1, 9000), R.choice(["running", "chan receive", "select", "IO wait, 3 minutes", "semacquire"]))]
    if k == "created":
        fn, _ = R.choice(GO_FRAMES)
        return ["created by ", CODE(fn, "go-func"), " in goroutine %d" % R.randint(1, 200)]
    if k == "panic-dial":
        text, form = ip_any("internal", 0.3, ("v6", "v6-loopback"))
        return ["panic: dial tcp ", hostport(text, form, R.choice([5432, 6379, 9092, 443, 3306])), ": connect: connection refused"]
    if k == "panic-url":
        text, form = ip_any("client", 0.4, ("v6",))
        key = R.choice(["api_key", "key", "apikey"])
        return ['panic: Get "https://api.example.com/v1/users?%s=' % key, SECRETV(key, R.choice(["hex32", "alnum32"]), "query"), '": dial tcp ',
                hostport(text, form, 443), ": i/o timeout"]
    if k == "panic-auth":
        if R.random() < 0.5:
            return ['panic: pq: password ', KN("authentication failed", "after-password"), ' for user "%s"' % R.choice(PG_USERS)]
        return ["panic: failed to connect to `host=", IPV(ip4("internal"), "v4", "plain"), " user=app database=orders`: server error (FATAL: password ",
                KN("authentication failed", "after-password"), ' for user "app" (SQLSTATE 28P01))']
    if k == "http-panic":
        text, form = ip_any("client", 0.2, ("v6",))
        return [T(t.strftime("%Y/%m/%d %H:%M:%S"), "go-log"), " http: panic serving ", hostport(text, form, R.randint(1024, 65535)),
                ": runtime error: invalid memory address or nil pointer dereference"]
    if k == "tls":
        text, form = ip_any("client", 0.25, ("v6",))
        return [T(t.strftime("%Y/%m/%d %H:%M:%S"), "go-log"), " http: TLS handshake error from ", hostport(text, form, R.randint(1024, 65535)),
                ": ", R.choice(["EOF", "remote error: tls: bad certificate", "tls: client offered only unsupported versions: [302 301]"])]
    if k == "zone":
        ll = ip6_linklocal()
        zone = R.choice(["eth0", "ens5", "en0"])
        return ["panic: dial tcp [", IPV(ll, "v6-zone", "zone"), "%" + zone + "]:%d: connect: network is unreachable" % R.choice([8080, 9000])]
    if k == "buildinfo":
        which = R.random()
        if which < 0.35:
            return ["\tbuild\tvcs.revision=", HASHV(git_sha(), "git-sha-40")]
        if which < 0.6:
            return ["\tgo\t", VER(R.choice(GO_VERSIONS), "toolchain")]
        if which < 0.8:
            return ["\tdep\tgithub.com/jackc/pgx/v5\t", V_("v5.5.1"), "\t", HASHV("h1:" + b64(rbytes(32)), "go-sum-h1")]
        return ["\tbuild\tvcs.time=", T(ts_iso(t - dt.timedelta(days=R.randint(1, 30)), 0), "rfc3339")]
    if k == "jwt":
        return ["panic: token is expired: ", JWTV("panic-message")]
    return ["exit status 2"]


def go_escape(segs):
    """Escape tabs in plain text the way docker's json-file driver does."""
    if isinstance(segs, str):
        return segs.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
    if isinstance(segs, V):
        return segs
    return [go_escape(x) for x in segs]


def src_go_panic():
    r = Rec("go-panic")
    t = rdt()
    line = go_line(t)
    wrap = wpick([(55, "raw"), (27, "cri"), (18, "docker-json")])
    if wrap == "raw":
        r.add("{l}", l=line)
    elif wrap == "cri":
        r.add("{ts} stderr F {l}", ts=T(ts_iso(t, 9), "rfc3339-nano"), l=line)
    else:
        r.add('{"log":"{l}\\n","stream":"stderr","time":"{ts}"}', l=go_escape(line), ts=T(ts_iso(t, 9), "rfc3339-nano"))
    return r


# --- Rust panics and backtraces ----------------------------------------------------------

RUST_FRAMES = ["core::panicking::panic_fmt", "core::result::unwrap_failed", "core::result::Result<T,E>::unwrap", "core::option::Option<T>::expect",
               "orders_api::db::connect::{{closure}}", "orders_api::handlers::checkout::{{closure}}", "<core::pin::Pin<P> as core::future::future::Future>::poll",
               "tokio::runtime::task::harness::Harness<T,S>::poll", "tokio::runtime::scheduler::multi_thread::worker::Context::run_task",
               "tokio::runtime::task::core::Core<T,S>::poll::{{closure}}", "<F as axum::handler::Handler<(M,T1),S>>::call::{{closure}}",
               "std::sys_common::backtrace::__rust_begin_short_backtrace", "std::rt::lang_start::{{closure}}",
               "<alloc::boxed::Box<F,A> as core::ops::function::FnOnce<Args>>::call_once", "std::panicking::try::do_call",
               "hyper::proto::h1::dispatch::Dispatcher<D,Bs,I,T>::poll_catch", "<T as core::ops::Fn>::call", "rust_begin_unwind",
               "sqlx_core::pool::inner::PoolInner<DB>::acquire::{{closure}}", "std::thread::local::LocalKey<T>::with"]
RUST_LIB_FILES = ["library/std/src/panicking.rs:645:5", "library/core/src/panicking.rs:72:14", "library/core/src/result.rs:1652:5",
                  "library/core/src/ops/function.rs:250:5", "library/std/src/rt.rs:166:18", "library/alloc/src/boxed.rs:2015:9"]
RUST_APP_FILES = ["src/main.rs", "src/db.rs", "src/handlers/checkout.rs", "src/payments/client.rs", "src/config.rs"]


def rust_line(t):
    rv = R.choice(RUST_VERSIONS)
    k = wpick([(10, "panic-new"), (6, "panic-old"), (10, "unwrap-msg"), (14, "frame"), (12, "at-lib"), (6, "at-app"), (4, "note"),
               (10, "tracing"), (6, "reqwest-debug"), (5, "sqlx"), (5, "toolchain"), (3, "exit"), (4, "tracing-json")])
    thread = R.choice(["main", "tokio-runtime-worker", "actix-rt|system:0|arbiter:0", "<unnamed>"])
    if k == "panic-new":
        return ["thread '%s' panicked at " % thread, CODE("%s:%d:%d" % (R.choice(RUST_APP_FILES), R.randint(10, 400), R.randint(5, 60)), "rust-file-line-col"), ":"]
    if k == "panic-old":
        return ["thread '%s' panicked at 'called `" % thread, CODE("Result::unwrap()", "rust-path"), "` on an `Err` value: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" }', ",
                CODE("%s:%d:%d" % (R.choice(RUST_APP_FILES), R.randint(10, 400), R.randint(5, 60)), "rust-file-line-col")]
    if k == "unwrap-msg":
        which = R.random()
        if which < 0.12:
            return ["called `", CODE("Result::unwrap()", "rust-path"), "` on an `Err` value: Os { code: 101, kind: NetworkUnreachable, message: \"Network is unreachable\" } (connecting to [",
                    IPV(ip6_linklocal(), "v6-zone", "zone"), "%%%s]:%d)" % (R.choice(["eth0", "ens5"]), R.choice([8080, 9000]))]
        if which < 0.4:
            text, form = ip_any("internal", 0.3, ("v6", "v6-loopback"))
            return ["called `", CODE("Result::unwrap()", "rust-path"), "` on an `Err` value: Error { kind: Connect, addr: ", hostport(text, form, R.choice([5432, 6379])),
                    ", source: Os { code: 111, kind: ConnectionRefused, message: \"Connection refused\" } }"]
        if which < 0.6:
            return ["called `", CODE("Option::unwrap()", "rust-path"), "` on a `None` value"]
        if which < 0.8:
            return ["called `", CODE("Result::unwrap()", "rust-path"), '` on an `Err` value: Error { kind: Db, cause: Some(DbError { severity: "FATAL", code: SqlState(E28P01), message: "password ',
                    KN("authentication failed", "after-password"), ' for user \\"app\\"" }) }']
        return ["failed to parse config: invalid value for `database.url`: ", "postgres://app:", PWV("url-userinfo", pw_url(password()[0]), "random"),
                "@", PORT("db.internal:5432", "host:port"), "/orders"]
    if k == "frame":
        return ["  %2d: " % R.randint(0, 40), CODE(R.choice(RUST_FRAMES), "rust-path")]
    if k == "at-lib":
        return ["             at /rustc/", HASHV(rv[3], "git-sha-40"), "/", CODE(R.choice(RUST_LIB_FILES), "rust-file-line-col")]
    if k == "at-app":
        return ["             at ./", CODE("%s:%d:%d" % (R.choice(RUST_APP_FILES), R.randint(10, 400), R.randint(5, 60)), "rust-file-line-col")]
    if k == "note":
        return ["note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"]
    if k == "tracing":
        lvl = R.choice(["ERROR", " WARN", " INFO"])
        return [T(ts_iso(t, 6), "rfc3339"), " %s " % lvl, CODE(R.choice(["orders_api::payments", "orders_api::http::middleware", "tower_http::trace::on_failure", "sqlx::query"]), "rust-path"),
                ": ", R.choice(["charge failed", "request failed", "slow statement"]), " user.email=", EMAILV("logfmt"),
                ([" card.number=", CARDV("logfmt", "plain")] if R.random() < 0.3 else ""), " request_id=", UUIDV("logfmt"),
                " client.ip=", client_ipv(0.2, ("v6",), "plain")]
    if k == "tracing-json":
        return ['{"timestamp":"', T(ts_iso(t, 6), "rfc3339"), '","level":"ERROR","fields":{"message":"request failed","error":"error sending request for url (https://api.stripe.com/v1/charges)","customer":"',
                EMAILV("json"), '"},"target":"', CODE("orders_api::payments", "rust-path"), '","span":{"order_id":"', UUIDV("json"), '","name":"charge"},"threadId":"ThreadId(%d)"}' % R.randint(2, 20)]
    if k == "reqwest-debug":
        key = R.choice(["api_key", "key", "token"])
        has_pw = R.random() < 0.4
        pw = ['Some("', PWV("rust-debug", pw_url(password()[0]), "random"), '")'] if has_pw else [KN("None", "after-password")]
        q = [SECRETV(key, "hex32", "query")] if key != "token" else [TOKENV("token", "opaque", "query")]
        return ['Error: reqwest::Error { kind: Request, url: Url { scheme: "https", cannot_be_a_base: false, username: "%s", password: ' % ("svc" if has_pw else ""),
                pw, ', host: Some(Domain("api.example.com")), port: None, path: "/v1/charges", query: Some("%s=' % key, q,
                '"), fragment: None }, source: hyper::Error(Connect, ConnectError("tcp connect error", Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })) }']
    if k == "sqlx":
        return ["Error: error returned from database: password ", KN("authentication failed", "after-password"), ' for user "%s"' % R.choice(PG_USERS)]
    if k == "toolchain":
        if R.random() < 0.6:
            return ["rustc ", V_(rv[0], "toolchain"), " (", HASHV(rv[1], "git-sha-short"), " ", T(rv[2], "date"), ")"]
        return ["info: using existing install for '", VER(rv[0] + "-x86_64-unknown-linux-gnu", "toolchain"), "'"]
    return ["error: process didn't exit successfully: `target/release/orders-api` (exit status: 101)"]


def src_rust_panic():
    r = Rec("rust-panic")
    t = rdt()
    line = rust_line(t)
    if R.random() < 0.25:
        r.add("{ts} stderr F {l}", ts=T(ts_iso(t, 9), "rfc3339-nano"), l=line)
    else:
        r.add("{l}", l=line)
    return r


# --- Java stack traces -----------------------------------------------------------------

JAVA_FRAMES = [("com.example.orders.OrderService.place", "OrderService.java", "classes!/:1.4.2"),
               ("com.example.orders.web.OrderController.create", "OrderController.java", "classes!/:1.4.2"),
               ("com.example.payments.StripeGateway.charge", "StripeGateway.java", "payments-core-2.3.0.jar:2.3.0"),
               ("org.springframework.web.servlet.FrameworkServlet.service", "FrameworkServlet.java", "spring-webmvc-6.1.1.jar:6.1.1"),
               ("org.springframework.web.servlet.DispatcherServlet.doDispatch", "DispatcherServlet.java", "spring-webmvc-6.1.1.jar:6.1.1"),
               ("org.apache.catalina.core.ApplicationFilterChain.doFilter", "ApplicationFilterChain.java", "tomcat-embed-core-10.1.16.jar:10.1.16"),
               ("com.zaxxer.hikari.pool.HikariPool.getConnection", "HikariPool.java", "HikariCP-5.0.1.jar:na"),
               ("org.postgresql.core.v3.ConnectionFactoryImpl.openConnectionImpl", "ConnectionFactoryImpl.java", "postgresql-42.6.0.jar:42.6.0"),
               ("java.base/java.net.Socket.connect", "Socket.java", None), ("java.base/sun.nio.ch.NioSocketImpl.connect", "NioSocketImpl.java", None),
               ("java.base/java.lang.Thread.run", "Thread.java", None),
               ("java.base/jdk.internal.reflect.DirectMethodHandleAccessor.invoke", "DirectMethodHandleAccessor.java", None),
               ("io.lettuce.core.RedisClient.connect", "RedisClient.java", "lettuce-core-6.2.6.RELEASE.jar:6.2.6.RELEASE"),
               ("org.apache.kafka.clients.consumer.KafkaConsumer.poll", "KafkaConsumer.java", "kafka-clients-3.6.0.jar:na")]


JAVA_LOGGERS = {  # message kind -> (logger, thread, level)
    "card": ("c.e.payments.StripeGateway", "nio-8080-exec-%d", "ERROR"),
    "dup": ("o.a.c.c.C.[.[.[/].[dispatcherServlet]", "nio-8080-exec-%d", "ERROR"),
    "jwt": ("c.e.security.JwtAuthenticationFilter", "nio-8080-exec-%d", "WARN "),
    "invalid-jwt": ("c.e.security.JwtAuthenticationFilter", "nio-8080-exec-%d", "WARN "),
    "kafka": ("o.a.k.c.c.internals.SubscriptionState", "kafka-consumer-%d", " INFO"),
    "hikari": ("com.zaxxer.hikari.pool.HikariPool", "main", " INFO"),
    "x509": ("o.a.c.c.C.[.[.[/].[dispatcherServlet]", "nio-8080-exec-%d", "ERROR"),
    "login": ("c.e.security.AuthEventListener", "nio-8080-exec-%d", "WARN "),
    "exc": ("o.s.b.SpringApplication", "main", "ERROR"),
}


def java_prefix(r, t, kind="exc"):
    svc = R.choice(["orders", "payments", "checkout", "ledger"])
    logger, thr, lvl = JAVA_LOGGERS[kind]
    if "%d" in thr:
        thr = thr % R.randint(1, 10)
    if R.random() < 0.5:
        r.add("{ts} %s [%s,{tid},{sid}] 1 --- [%15s] {lg} : " % (lvl, svc, thr[-15:]), ts=T(ts_iso(t, 3), "rfc3339"),
              tid=TRACE(trace_id(), "w3c-trace-id"), sid=TRACE(span_id(), "w3c-span-id"), lg=CODE(logger, "java-logger"))
    else:
        r.add("{ts} %s 1 --- [%15s] {lg} : " % (lvl, thr[-15:]), ts=T(ts_iso(t, 3, "+00:00"), "rfc3339"), lg=CODE(logger, "java-logger"))


def src_java():
    r = Rec("java-stacktrace")
    t = rdt()
    k = wpick([(24, "frame"), (8, "pg-refused"), (6, "pg-auth"), (7, "netty"), (6, "okhttp"), (11, "card"), (6, "dup"), (6, "jwt"),
               (5, "kafka"), (4, "hikari"), (4, "omitted"), (4, "x509"), (4, "jvm"), (5, "invalid-jwt"), (5, "login")])
    if k == "frame":
        fn, f, jar = R.choice(JAVA_FRAMES)
        r.add("\tat {fr}", fr=CODE("%s(%s:%d)" % (fn, f, R.randint(20, 2200)), "java-frame"))
        if jar:
            name, ver = jar.rsplit(":", 1)
            if ver != "na":
                r.add(" ~[{n}:{v}]", n=name, v=V_(ver, "jar"))
            else:
                r.add(" ~[%s:na]" % name)
        return r
    if k == "omitted":
        r.add("\t... %d common frames omitted" % R.randint(3, 120))
        return r
    if k == "jvm":
        v = R.choice(["17.0.9", "21.0.1", "11.0.21"])
        if R.random() < 0.5:
            r.add('openjdk version "{v}" {d}', v=V_(v, "toolchain"), d=T(R.choice(["2023-10-17", "2023-11-14"]), "date"))
        else:
            r.add("OpenJDK 64-Bit Server VM Temurin-{v} (build {b}, mixed mode, sharing)", v=VER(v + "+9", "toolchain"), b=VER(v + "+9", "toolchain"))
        return r
    if k in ("pg-refused", "netty", "okhttp"):
        pre = R.choice(["", "Caused by: "])
        if pre == "" and R.random() < 0.5:
            java_prefix(r, t, "exc")
            pre = ""
        if k == "pg-refused":
            text, form = ip_any("internal", 0.15, ("v6",))
            r.add(pre + "org.postgresql.util.PSQLException: Connection to {hp} refused. Check that the hostname and port are correct and that the postmaster is accepting TCP/IP connections.",
                  hp=hostport(text, form, 5432) if R.random() < 0.7 else PORT("db.internal:5432", "host:port"))
        elif k == "netty":
            h = R.choice(["redis-master.cache.svc.cluster.local", "localhost", "kafka-0.kafka-headless.data.svc", "ipv6"])
            if h == "ipv6":
                if R.random() < 0.5:
                    ll = ip6_linklocal()
                    ll_java = ":".join("%x" % int(g, 16) for g in ipaddress.IPv6Address(ll).exploded.split(":"))
                    r.add(pre + "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: /{ip}%eth0:6379", ip=IPV(ll_java, "v6-zone", "zone"))
                else:
                    r.add(pre + "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: /{ip}:6379", ip=IPV(ip6("v6-nocompress", "internal"), "v6-nocompress", "slash-port"))
                return r
            r.add(pre + "io.netty.channel.AbstractChannel$AnnotatedConnectException: Connection refused: {h}/{ip}:{p}",
                  h=h, ip=IPV("127.0.0.1" if h == "localhost" else ip4("internal"), "v4", "slash-port"), p=str(9092 if h.startswith("kafka") else 6379))
        else:
            if R.random() < 0.5:
                r.add(pre + "java.net.ConnectException: Failed to connect to api.example.com/{ip}:443", ip=IPV(ip4("client"), "v4", "slash-port"))
            else:
                r.add(pre + "java.net.ConnectException: Failed to connect to api.example.com/{ip}:443", ip=IPV(ip6("v6-nocompress"), "v6-nocompress", "slash-port"))
        return r
    if k == "pg-auth":
        r.add("Caused by: org.postgresql.util.PSQLException: FATAL: password {af} for user \"%s\"" % R.choice(PG_USERS), af=KN("authentication failed", "after-password"))
        return r
    java_prefix(r, t, k)
    if k == "card":
        r.add("Payment failed for order {oid}: com.example.payments.CardDeclinedException: card {c} declined (%s)" % R.choice(["do_not_honor", "insufficient_funds", "stolen_card"]),
              oid=NUM(order_id(), "order-id"), c=CARDV("exception"))
    elif k == "dup":
        r.add('org.springframework.dao.DataIntegrityViolationException: could not execute statement [ERROR: duplicate key value violates unique constraint "users_email_key"  Detail: Key (email)=({em}) already exists.]',
              em=EMAILV("sql"))
    elif k == "jwt":
        exp = t - dt.timedelta(seconds=R.randint(1, 3600))
        diff = int((t - exp).total_seconds() * 1000) + R.randint(0, 999)
        r.add("io.jsonwebtoken.ExpiredJwtException: JWT expired at {e}. Current time: {c}, a difference of {d} milliseconds.  Allowed clock skew: 0 milliseconds.",
              e=T(ts_iso(exp, 0), "rfc3339"), c=T(ts_iso(t, 0), "rfc3339"), d=str(diff))
    elif k == "invalid-jwt":
        r.add("Invalid JWT signature for token {j} from {ip}", j=JWTV("exception"), ip=client_ipv(0.3, ("v6-nocompress",), "plain"))
    elif k == "kafka":
        r.add("[Consumer clientId=consumer-%s-1, groupId=%s] Seeking to offset {off} for partition %s-%d" % ("orders", "orders", "orders.events", R.randint(0, 11)),
              off=HEX(str(R.randint(10 ** 4, 10 ** 10)), "kafka-offset"))
    elif k == "hikari":
        r.add("HikariPool-1 - Added connection org.postgresql.jdbc.PgConnection@{h}", h=HEX("%x" % R.randint(0x10000000, 0x7fffffff), "identity-hash"))
    elif k == "x509":
        if R.random() < 0.5:
            r.add("javax.net.ssl.SSLHandshakeException: No subject alternative names matching IP address {ip} found", ip=IPV(ip4("internal"), "v4", "plain"))
        else:
            r.add("java.security.NoSuchAlgorithmException: {o} Signature not available", o=OIDV(R.choice(["1.2.840.113549.1.1.10", "1.2.840.10045.4.3.4", "1.3.101.112"]), "x509"))
    else:
        r.add("Authentication failed for user {em} from {ip}: Bad credentials (attempt %d)" % R.randint(1, 6), em=EMAILV("plain"), ip=client_ipv(0.35, ("v6-nocompress", "v6-mapped"), "plain"))
    return r


# --- Windows / .NET ---------------------------------------------------------------------

ASSEMBLIES = [("System.Runtime", "8.0.0.0", "b03f5f7f11d50a3a"), ("Microsoft.Extensions.Logging.Abstractions", "8.0.0.0", "adb9793829ddae60"),
              ("Newtonsoft.Json", "13.0.0.0", "30ad4fe6b2a6aeed"), ("System.Text.Json", "7.0.0.0", "cc7b13ffcd2ddd51"),
              ("mscorlib", "4.0.0.0", "b77a5c561934e089"), ("System.Web.Mvc", "5.2.9.0", "31bf3856ad364e35"),
              ("Microsoft.Data.SqlClient", "5.0.0.0", "23ec7fc2d6eaa4a5"), ("Azure.Core", "1.36.0.0", "92742159e12e44c8")]
DOTNET_FRAMES = ["Orders.Api.Services.OrderService.PlaceAsync(Order order) in /src/Orders.Api/Services/OrderService.cs:line %d",
                 "Orders.Api.Controllers.OrdersController.Create(CreateOrderRequest request) in /src/Orders.Api/Controllers/OrdersController.cs:line %d",
                 "Microsoft.Data.SqlClient.SqlConnection.OnError(SqlException exception, Boolean breakConnection, Action`1 wrapCloseInAction)",
                 "Microsoft.AspNetCore.Mvc.Infrastructure.ActionMethodExecutor.TaskOfIActionResultExecutor.Execute(ActionContext actionContext, IActionResultTypeMapper mapper, ObjectMethodExecutor executor, Object controller, Object[] arguments)",
                 "Microsoft.AspNetCore.Server.Kestrel.Core.Internal.Http.HttpProtocol.ProcessRequests[TContext](IHttpApplication`1 application)",
                 "System.Net.Http.HttpConnectionPool.ConnectToTcpHostAsync(String host, Int32 port, HttpRequestMessage initialRequest, Boolean async, CancellationToken cancellationToken)"]


def kestrel_id():
    return "0H" + rs("0123456789ABCDEFGHIJKLMNOPQRSTUV", 11)


def src_dotnet():
    r = Rec("dotnet-windows")
    t = rdt()
    k = wpick([(10, "assembly"), (14, "frame"), (8, "sqlexc"), (8, "connstr"), (6, "azure-conn"), (8, "kestrel"), (8, "serilog"), (7, "card"),
               (16, "ipconfig"), (8, "arp"), (8, "winlogbeat"), (5, "dotnet-info"), (4, "winver"), (4, "filever"), (4, "hresult"), (7, "guid"), (5, "getmac")])
    if k == "assembly":
        name, ver, tok = R.choice(ASSEMBLIES)
        r.add("System.IO.FileNotFoundException: Could not load file or assembly '%s, Version={v}, Culture=neutral, PublicKeyToken={t}'. The system cannot find the file specified." % name,
              v=V_(ver, ".net-assembly"), t=HEX(tok, "public-key-token"))
    elif k == "card":
        c = CARDV("exception")
        r.add("fail: Orders.Api.Payments.PaymentService[0] Payment for order {oid} failed: Adyen.HttpClient.HttpClientException: Refused (%s) for card {c} (holder {em})"
              % R.choice(["Not enough balance", "CVC Declined", "Expired Card", "Refused"]), oid=UUIDV("dotnet"), c=c, em=EMAILV("plain"))
    elif k == "frame":
        f = R.choice(DOTNET_FRAMES)
        if "%d" in f:
            f = f % R.randint(20, 400)
        r.add("   at {f}", f=CODE(f, "dotnet-frame"))
    elif k == "sqlexc":
        if R.random() < 0.6:
            r.add("Microsoft.Data.SqlClient.SqlException ({h}): Login failed for user '%s'." % R.choice(["sa", "orders_app", "reporting"]), h=HEX("0x80131904", "hresult"))
        else:
            r.add("ClientConnectionId:{u}", u=UUIDV("dotnet"))
            if R.random() < 0.5:
                r.add(" Error Number:18456,State:1,Class:14")
    elif k == "connstr":
        pw, style = password()
        pw = pw.replace(";", "")
        text, form = ip4("internal"), "v4"
        key = R.choice(["Password", "Pwd", "password"])
        r.add('info: Orders.Api.Startup[0] Using connection string "Server=tcp:{ip},{port};Initial Catalog=orders;Persist Security Info=False;User ID=sa;%s={pw};Encrypt=True;TrustServerCertificate=False;Connection Timeout=30;"' % key,
              ip=IPV(text, form, "comma-port"), port=str(R.choice([1433, 1433, 14330])), pw=PWV("ado-net", pw, style, key=key))
    elif k == "azure-conn":
        if R.random() < 0.5:
            r.add("DefaultEndpointsProtocol=https;AccountName=%s;AccountKey={k};EndpointSuffix=core.windows.net" % R.choice(["acmestore", "ordersblobs", "logsarchive"]),
                  k=SECRETV("AccountKey", "azure-account-key", "semicolon-kv"))
        else:
            r.add("Endpoint=sb://%s.servicebus.windows.net/;SharedAccessKeyName={kn};SharedAccessKey={k}" % R.choice(["acme", "orders-bus"]),
                  kn=KN(R.choice(["RootManageSharedAccessKey", "send-only", "listen"]), "key-name-value"), k=SECRETV("SharedAccessKey", "sas-key", "semicolon-kv"))
    elif k == "kestrel":
        cid = kestrel_id()
        if R.random() < 0.5:
            r.add('fail: Microsoft.AspNetCore.Server.Kestrel[13] Connection id "{c}", Request id "{c2}:%08X": An unhandled exception was thrown by the application.' % R.randint(1, 40),
                  c=HEX(cid, "kestrel-connection-id"), c2=HEX(cid, "kestrel-connection-id"))
        else:
            r.add("info: Microsoft.AspNetCore.Hosting.Diagnostics[1] Request starting HTTP/1.1 GET http://%s/api/orders/{u} - - -" % R.choice(PUBLIC_HOSTS), u=UUIDV("url-path"))
    elif k == "serilog":
        r.add('{"@t":"{ts}","@mt":"User {Email} signed in from {RemoteIp}","@tr":"{tid}","@sp":"{sid}","Email":"{em}","RemoteIp":"{ip}","SourceContext":"Orders.Api.Controllers.AuthController","RequestId":"{rid}:%08X","ConnectionId":"{cid}"}' % R.randint(1, 30),
              ts=T(ts_iso(t, 7), "rfc3339-7"), tid=TRACE(trace_id(), "w3c-trace-id"), sid=TRACE(span_id(), "w3c-span-id"), em=EMAILV("json"),
              ip=client_ipv(0.2, ("v6", "v6-mapped"), "json"), rid=HEX(kestrel_id(), "kestrel-connection-id"), cid=HEX(kestrel_id(), "kestrel-connection-id"))
    elif k == "ipconfig":
        which = R.choice(["phys", "phys", "v6", "ll", "ll", "v4", "duid", "gw"])
        dots = lambda label: "   " + label + " " + ". " * max(1, (36 - len(label)) // 2)
        if which == "phys":
            r.add(dots("Physical Address.") + ": {m}", m=MACV("dash-upper", "ipconfig"))
        elif which == "v6":
            r.add(dots("IPv6 Address.") + ": {ip}(Preferred)", ip=IPV(ip6("v6"), "v6", "plain"))
        elif which == "ll":
            r.add(dots("Link-local IPv6 Address") + ": {ip}%%%d(Preferred)" % R.randint(2, 24), ip=IPV(ip6_linklocal(), "v6-zone", "zone"))
        elif which == "v4":
            r.add(dots("IPv4 Address.") + ": {ip}(Preferred)", ip=IPV(ip4("internal"), "v4", "plain"))
        elif which == "duid":
            b = mac_bytes()
            head = "00-01-00-01-" + "-".join("%02X" % x for x in rbytes(4))
            r.add(dots("DHCPv6 Client DUID.") + ": {h}-{m}", h=HEX(head, "duid-prefix"), m=MACV("dash-upper", "duid", b))
        else:
            r.add(dots("Default Gateway") + ": {ip}", ip=IPV(ip4("internal"), "v4", "plain"))
    elif k == "getmac":
        r.add("{m}   \\Device\\Tcpip_{{g}}", m=MACV("dash-upper", "getmac"), g=P("UUID", uuid_s().upper(), "braced", "upper", "ctx:windows"))
    elif k == "arp":
        r.add("  {ip}{pad}{m}     %s" % R.choice(["dynamic", "static"]), ip=IPV(ip4("internal"), "v4", "plain"), pad=" " * R.randint(8, 14), m=MACV("dash-lower", "arp"))
    elif k == "winlogbeat":
        code = R.choice(["4625", "4624", "4740"])
        r.add('{"@timestamp":"{ts}","event":{"code":"%s","provider":"Microsoft-Windows-Security-Auditing"},"winlog":{"computer_name":"%s","record_id":{rid},"event_data":{"TargetUserName":"{u}","TargetDomainName":"CORP","LogonType":"%d","IpAddress":"{ip}","IpPort":"{p}","WorkstationName":"%s"},"provider_guid":"{g}"}}'
              % (code, R.choice(["DC01.corp.example", "WEB-02.corp.example"]), R.choice([3, 10, 2]), R.choice(["DESKTOP-7Q2K1L", "-", "WIN-3K2LQ1"])),
              ts=T(ts_iso(t, 3), "rfc3339"), rid=str(R.randint(10 ** 5, 10 ** 8)), u=EMAILV("json") if R.random() < 0.4 else R.choice(["administrator", "svc_backup", "jdoe"]),
              ip=client_ipv(0.15, ("v6", "v6-mapped"), "json"), p=PORT(str(R.randint(1024, 65535)), "port"),
              g=["{", P("UUID", "54849625-5478-4994-A5BA-3E3B0328C30D", "braced", "upper", "ctx:json"), "}"])
    elif k == "dotnet-info":
        which = R.choice(["ver", "commit", "os", "runtime"])
        if which == "ver":
            r.add(" Version:           {v}", v=V_(R.choice(["8.0.100", "6.0.417", "7.0.404"]), "toolchain"))
        elif which == "commit":
            r.add(" Commit:            {c}", c=HASHV(hexs(10), "git-sha-short"))
        elif which == "os":
            r.add(" OS Version:  {v}", v=V_(R.choice(["10.0.19045", "10.0.22631", "10.0.17763"])))
        else:
            r.add("  Microsoft.NETCore.App {v} [C:\\Program Files\\dotnet\\shared\\Microsoft.NETCore.App]", v=V_(R.choice(["8.0.0", "6.0.25", "7.0.14"]), "toolchain"))
    elif k == "filever":
        r.add("%s version {v}, file version {fv}" % R.choice(["Orders.Worker", "Acme.Agent", "ShipmentSync"]),
              v=V_(R.choice(["1.0.0.1", "2.3.0.0", "1.4.2.0"]), "assembly-version"), fv=V_(R.choice(["1.0.0.1", "2.3.1.7", "1.4.2.113"]), "file-version"))
    elif k == "winver":
        r.add("Microsoft Windows [Version {v}]", v=V_(R.choice(["10.0.19045.3803", "10.0.22631.2861", "10.0.17763.5206", "6.3.9600.20778"])))
    elif k == "hresult":
        r.add("System.UnauthorizedAccessException: Access to the path 'C:\\ProgramData\\Orders\\keys' is denied. (HRESULT: {h})", h=HEX("0x80070005", "hresult"))
    else:
        g = uuid_s().upper()
        r.add("The %s service entered the running state. Service GUID: {{g}}" % R.choice(["Orders Worker", "Windows Update", "Print Spooler"]),
              g=P("UUID", g, "braced", "upper", "ctx:windows"))
    return r


# --- CI / build logs ---------------------------------------------------------------------

def src_ci_build():
    r = Rec("ci-build")
    t = rdt()
    style = wpick([(45, "gha"), (30, "gitlab"), (25, "jenkins")])
    if style == "gha":
        r.add("{ts} ", ts=T(ts_iso(t, 7), "rfc3339-7"))
    elif style == "jenkins":
        r.add("[{ts}] ", ts=T(ts_iso(t, 3), "rfc3339"))
    k = wpick([(10, "head"), (5, "author"), (7, "docker-from"), (6, "docker-write"), (6, "docker-push"), (4, "layer"), (5, "docker-pull"), (4, "npm-warn"), (5, "cargo"),
               (4, "go-dl"), (3, "pip"), (4, "maven"), (5, "docker-login"), (3, "pw-warning"), (5, "export"), (4, "helm"), (4, "aws-set"),
               (6, "asan"), (4, "cpp-throw"), (4, "test-fail"), (3, "trivy"), (3, "runner"), (5, "checksum"), (4, "kubectl"), (3, "curl-token")])
    if k == "head":
        sha = git_sha()
        if R.random() < 0.5:
            r.add("HEAD is now at {s} %s" % R.choice(["Merge pull request #%d from acme/fix-login" % R.randint(100, 9999), "Bump golang.org/x/net from 0.15.0 to 0.17.0", "Fix flaky checkout test"]),
                  s=HASHV(sha[:7], "git-sha-7"))
        else:
            r.add("Checking out {s} as detached HEAD (ref is %s)..." % R.choice(["main", "release/1.4", "refs/merge-requests/%d/head" % R.randint(10, 999)]),
                  s=HASHV(sha[:8], "git-sha-8"))
    elif k == "author":
        f, l = person()
        r.add("Author: %s %s <{em}>" % (f.capitalize(), l.capitalize()), em=EMAILV("angle-brackets"))
        if R.random() < 0.5:
            r.reset()
            r.add("commit {s}", s=HASHV(git_sha(), "git-sha-40"))
    elif k == "docker-from":
        ref = R.choice(BASE_IMAGES) + "@sha256:" + hexs(64)
        r.add("#%d [%s %d/%d] FROM {ref}" % (R.randint(2, 9), R.choice(["build", "runtime", "deps"]), R.randint(1, 3), R.randint(4, 9)), ref=IMG(ref, "oci-ref"))
    elif k == "docker-write":
        if R.random() < 0.5:
            r.add("#%d writing image {d} done" % R.randint(8, 20), d=HASHV(sha256_digest(), "sha256-digest"))
        else:
            r.add("#%d naming to {ref} done" % R.randint(8, 20), ref=IMG(image_repo_tag(image_for(R.choice(DEPLOYS))), "oci-ref"))
    elif k == "docker-push":
        r.add("{tag}: digest: {d} size: %d" % R.randint(500, 4000), tag=V_(semver()), d=HASHV(sha256_digest(), "sha256-digest"))
    elif k == "docker-pull":
        ref = R.choice(BASE_IMAGES + ["docker.io/library/postgres:16.1", "docker.io/library/redis:7.2.3"])
        if R.random() < 0.5:
            r.add("Digest: {d}", d=HASHV(sha256_digest(), "sha256-digest"))
        else:
            r.add("Status: Downloaded newer image for {ref}", ref=IMG(ref, "oci-ref"))
    elif k == "layer":
        r.add("{l}: %s" % R.choice(["Pushed", "Layer already exists", "Pull complete", "Waiting", "Already exists"]), l=HEX(hexs(12), "layer-id"))
    elif k == "npm-warn":
        pkg, v = R.choice([("request", "2.88.2"), ("uuid", "3.4.0"), ("har-validator", "5.1.5"), ("querystring", "0.2.0"), ("rimraf", "3.0.2")])
        r.add("npm WARN deprecated %s@{v}: %s" % (pkg, R.choice(["this library is no longer supported", "Please upgrade to version 7 or higher.", "Rimraf versions prior to v4 are no longer supported"])),
              v=V_(v))
    elif k == "cargo":
        if R.random() < 0.6:
            c, v = R.choice([("tokio", "1.35.1"), ("serde", "1.0.193"), ("hyper", "0.14.28"), ("sqlx-core", "0.7.3"), ("ring", "0.17.7"), ("axum", "0.7.2")])
            r.add("   Compiling %s v{v}" % c, v=V_(v))
        else:
            r.add("   Compiling orders-api v{v} (/builds/acme/orders-api)", v=VER(R.choice(["0.4.2-rc.1+build.5", "1.2.3-rc.1+build.5", "0.9.0-alpha.3"]), "semver-pre-build"))
    elif k == "go-dl":
        m, v = R.choice([("github.com/jackc/pgx/v5", "v5.5.1"), ("golang.org/x/net", "v0.19.0"), ("google.golang.org/grpc", "v1.60.1"), ("github.com/redis/go-redis/v9", "v9.3.1")])
        if R.random() < 0.7:
            r.add("go: downloading %s {v}" % m, v=V_(v))
        else:
            r.add("go version {g} linux/amd64", g=VER(R.choice(GO_VERSIONS), "toolchain"))
    elif k == "pip":
        r.add("Successfully installed certifi-{a} charset-normalizer-{b} idna-3.6 requests-{c} urllib3-{d}",
              a=VER("2023.11.17", "calver"), b=V_("3.3.2"), c=V_("2.31.0"), d=V_("2.1.0"))
    elif k == "maven":
        if R.random() < 0.5:
            r.add("[INFO] Building orders {v}", v=VER(R.choice(["1.4.2-SNAPSHOT", "2.0.0-RC1", "1.4.1"]), "semver-pre-build"))
        else:
            r.add("[INFO] Total time:  {d} min", d=T("%02d:%02d" % (R.randint(0, 9), R.randint(0, 59)), "duration"))
    elif k == "docker-login":
        reg = R.choice(["ghcr.io", "registry.gitlab.com", "docker.io"])
        fam = {"ghcr.io": "github-ghp", "registry.gitlab.com": "gitlab", "docker.io": None}[reg]
        v = TOKENV("password", fam, "cli-flag") if fam else PWV("cli-flag", key="password")
        r.add("+ docker login -u %s -p {v} %s" % (R.choice(["deploy-bot", "acme-ci", "jdoe"]), reg), v=v)
    elif k == "pw-warning":
        r.add("WARNING! Using --password {via}. Use --password-stdin.", via=KN("via the CLI is insecure", "after-password"))
    elif k == "export":
        key, val = env_entry(R.choice(["password", "secret", "token", "aws"]))
        pre, post = ("'", "'") if isinstance(val, V) and not _SHELL_SAFE.match(val.text) else ("", "")
        r.add("+ export {k}={pre}{v}{post}", k=key, pre=pre, v=val, post=post)
    elif k == "helm":
        pw, style = password()
        pre, post = ("", "") if _SHELL_SAFE.match(pw) else ("'", "'")
        dep = R.choice(DEPLOYS)
        r.add("+ helm upgrade --install %s ./chart --namespace {ns} --set image.repository={repo} --set image.tag={tag} --set %s={pre}{pw}{post}"
              % (dep, R.choice(["db.password", "auth.postgresPassword", "redis.auth.password", "global.postgresql.auth.password"])),
              ns=K8S(R.choice(NAMESPACES), "namespace"), repo=IMG(R.choice(APP_REGISTRIES) % dep, "oci-repository"), tag=V_(semver()),
              pre=pre, pw=PWV("cli-set", pw, style), post=post)
    elif k == "aws-set":
        kid, sec, origin = aws_pair()
        if R.random() < 0.5:
            r.add("+ aws configure set aws_access_key_id {v}", v=P("AWS_KEY", kid, "AKIA", origin, "ctx:cli-arg"))
        else:
            r.add("+ aws configure set aws_secret_access_key {v}", v=P("SECRET", sec, "aws-secret", origin, "key:snake_case", "container:cli-arg"))
    elif k == "asan":
        if R.random() < 0.5:
            r.add("==%d==ERROR: AddressSanitizer: heap-buffer-overflow on address {a} at pc {pc} bp {bp} sp {sp}" % R.randint(1000, 99999),
                  a=HEX("0x%012x" % R.randint(0x602000000000, 0x61f000000000), "pointer"), pc=HEX("0x%012x" % R.randint(0x55d000000000, 0x55dfffffffff), "pointer"),
                  bp=HEX("0x7ffe%08x" % R.randint(0, 0xffffffff), "pointer"), sp=HEX("0x7ffe%08x" % R.randint(0, 0xffffffff), "pointer"))
        else:
            fr = R.choice(["std::vector<int, std::allocator<int> >::operator[](unsigned long) /usr/include/c++/12/bits/stl_vector.h:1123",
                           "std::vector<int>::at(unsigned long) /usr/include/c++/12/bits/stl_vector.h:1149",
                           "orders::Ledger::apply(orders::Entry const&) /src/ledger.cc:88", "std::__cxx11::basic_string<char>::substr(unsigned long, unsigned long) const",
                           "main /src/main.cc:42"])
            r.add("    #%d {pc} in {fr}" % R.randint(0, 12), pc=HEX("0x%x" % R.randint(0x55d000000000, 0x55dfffffffff), "pointer"), fr=CODE(fr, "cpp-frame"))
    elif k == "cpp-throw":
        if R.random() < 0.5:
            r.add("terminate called after throwing an instance of '{e}'", e=CODE(R.choice(["std::out_of_range", "std::bad_alloc", "std::system_error"]), "cpp-type"))
        else:
            r.add("  what():  vector::_M_range_check: __n (which is %d) >= this->size() (which is %d)" % (R.randint(3, 9), R.randint(0, 3)))
    elif k == "test-fail":
        which = R.random()
        if which < 0.5:
            r.add("    auth_test.go:%d: expected status 200, got 401 for user {em}" % R.randint(20, 300), em=EMAILV("plain"))
        elif which < 0.75:
            r.add("--- FAIL: TestCheckout/%s (%.2fs)" % (R.choice(["declined_card", "expired_session", "valid_card"]), R.random() * 3))
        else:
            r.add("    checkout_test.go:%d: charge({c}) = nil, want error card_declined" % R.randint(20, 300), c=['"', CARDV("test", "plain"), '"'])
    elif k == "trivy":
        cve = "CVE-2023-%d" % R.randint(10000, 50000)
        lib, a, b = R.choice([("golang.org/x/net", "v0.15.0", "0.17.0"), ("google.golang.org/grpc", "v1.58.2", "1.58.3"), ("openssl", "3.0.11-1~deb12u1", "3.0.11-1~deb12u2")])
        r.add("│ %s │ %s │ HIGH     │ fixed  │ {a} │ {b} │" % (lib, cve), a=VER(a, "trivy"), b=VER(b, "trivy"))
    elif k == "runner":
        r.add("Running with gitlab-runner {v} ({h})", v=V_(R.choice(["16.6.1", "16.5.0", "16.7.0"])), h=HASHV(hexs(8), "git-sha-8"))
        r.add("  on %s {rid}, system ID: s_{sid}" % R.choice(["docker-runner-1", "k8s-runner", "shared-runner"]),
              rid=HEX(rs(ALNUM, 8), "runner-short-token"), sid=HEX(hexs(12), "system-id"))
    elif k == "checksum":
        if R.random() < 0.5:
            r.add("{h}  dist/%s" % R.choice(["orders-api-linux-amd64.tar.gz", "app.zip", "bundle.js"]), h=HASHV(hexs(64), "sha256-hex"))
        else:
            r.add("{h}  dist/%s" % R.choice(["orders-api.tar.gz", "migrations.sql", "app.jar"]), h=HASHV(hexs(32), "md5"))
    elif k == "kubectl":
        dep = R.choice(DEPLOYS)
        if R.random() < 0.5:
            r.add("+ kubectl -n {ns} set image deployment/%s %s={ref}" % (dep, dep), ns=K8S(R.choice(NAMESPACES), "namespace"), ref=IMG(image_repo_tag(image_for(dep)), "oci-ref"))
        else:
            r.add('Waiting for deployment "%s" rollout to finish: %d of %d updated replicas are available...' % (dep, R.randint(0, 2), 3))
    else:
        r.add('+ curl -sf -H "Authorization: token {t}" https://api.github.com/repos/acme/%s/releases/latest' % R.choice(["orders-api", "infra"]),
              t=TOKENV("authorization", R.choice(["github-ghp", "github-pat", "github-ghs"]), "header"))
    return r


# --- cloud CLI output ---------------------------------------------------------------------

def fake_cert_b64():
    body = b64(b"\x30\x82\x01" + rbytes(R.randint(330, 420)))
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + "\n-----END CERTIFICATE-----\n"
    return b64(pem.encode())


def src_cloud_cli():
    r = Rec("cloud-cli")
    t = rdt()
    k = wpick([(10, "configure"), (12, "credentials"), (6, "sts-text"), (6, "caller"), (6, "create-key"), (5, "list-keys"), (5, "ec2-text"),
               (5, "eni"), (4, "s3ls"), (4, "head-object"), (4, "presign"), (7, "gcloud"), (7, "az"), (8, "kubeconfig"), (5, "heroku"), (3, "configure-list")])
    if k == "configure":
        kid, sec, origin = aws_pair()
        which = R.choice(["id", "secret", "region"])
        if which == "id":
            r.add("AWS Access Key ID [None]: {v}", v=P("AWS_KEY", kid, "AKIA", origin, "ctx:prompt"))
        elif which == "secret":
            r.add("AWS Secret Access Key [None]: {v}", v=P("SECRET", sec, "aws-secret", origin, "key:prompt", "container:prompt"))
        else:
            r.add("Default region name [None]: %s" % R.choice(["us-west-2", "eu-west-1", "us-east-1"]))
    elif k == "configure-list":
        r.add("%s  ****************%s shared-credentials-file    " % (R.choice(["access_key", "secret_key"]), rs(UPP + DIG, 4)))
    elif k == "credentials":
        which = R.choice(["id", "secret", "token", "profile", "id", "secret"])
        temp = which == "token" or R.random() < 0.2
        kid, sec, origin = aws_pair(temporary=temp)
        sp = R.choice([" = ", "="])
        if which == "id":
            r.add("aws_access_key_id%s{v}" % sp, v=P("AWS_KEY", kid, "ASIA" if temp else "AKIA", origin, "ctx:ini"))
        elif which == "secret":
            r.add("aws_secret_access_key%s{v}" % sp, v=P("SECRET", sec, "aws-secret", origin, "key:snake_case", "container:eq-spaced"))
        elif which == "token":
            r.add("aws_session_token%s{v}" % sp, v=TOKENV("aws_session_token", "sts-session", "eq-spaced"))
        else:
            r.add("[profile %s]" % R.choice(["prod", "staging", "deploy"]))
            r.add(" region = %s" % R.choice(["us-east-1", "eu-west-1"]))
    elif k == "sts-text":
        kid, sec, origin = aws_pair(temporary=True)
        r.add("CREDENTIALS\t{kid}\t{exp}\t{sec}\t{tok}", kid=P("AWS_KEY", kid, "ASIA", origin, "ctx:tsv"), exp=T(ts_iso(t, 0, "+00:00"), "rfc3339"),
              sec=P("SECRET", sec, "aws-secret", origin, "key:positional", "container:tsv"), tok=TOKENV("SessionToken", "sts-session", "tsv"))
    elif k == "caller":
        acct = long_id(12)
        r.add('{"UserId": "{uid}", "Account": "{a}", "Arn": "arn:aws:iam::{a2}:user/%s"}' % R.choice(["deploy", "ci-bot", "jane.doe"]),
              uid=HEX("AIDA" + rs(B32, 17), "iam-unique-id"), a=NUM(acct, "aws-account-id"), a2=NUM(acct, "aws-account-id"))
    elif k == "create-key":
        kid, sec, origin = aws_pair()
        r.add('{"AccessKey": {"UserName": "%s", "AccessKeyId": "{kid}", "Status": "Active", "SecretAccessKey": "{sec}", "CreateDate": "{ts}"}}' % R.choice(["deploy", "ci-bot", "backup"]),
              kid=P("AWS_KEY", kid, "AKIA", origin, "ctx:json"), sec=P("SECRET", sec, "aws-secret", origin, "key:PascalCase", "container:json"), ts=T(ts_iso(t, 0, "+00:00"), "rfc3339"))
    elif k == "list-keys":
        kid, sec, origin = aws_pair()
        r.add('{"AccessKeyMetadata": [{"UserName": "%s", "AccessKeyId": "{kid}", "Status": "%s", "CreateDate": "{ts}"}]}' % (R.choice(["deploy", "ci-bot"]), R.choice(["Active", "Inactive"])),
              kid=P("AWS_KEY", kid, "AKIA", origin, "ctx:json"), ts=T(ts_iso(t, 0, "+00:00"), "rfc3339"))
    elif k == "ec2-text":
        ipi = "10.0.%d.%d" % (R.randint(0, 15), R.randint(2, 250))
        host = "ip-" + ipi.replace(".", "-") + R.choice([".ec2.internal", ".us-west-2.compute.internal"])
        r.add("{iid}\t{ip}\t{host}\t{pub}\trunning\t%s" % R.choice(["t3.large", "m6i.xlarge", "c7g.2xlarge"]),
              iid=HEX("i-0" + hexs(16), "ec2-instance-id"), ip=IPV(ipi, "v4", "plain"), host=K8S(host, "node"),
              pub=IPV(ip4("client"), "v4", "plain"))
    elif k == "eni":
        r.add('{"NetworkInterfaceId": "{eni}", "MacAddress": "{mac}", "PrivateIpAddress": "{ip}", "SubnetId": "{sn}", "VpcId": "{vpc}", "Status": "in-use"}',
              eni=HEX("eni-0" + hexs(16), "aws-resource-id"), mac=MACV("colon-lower", "json"), ip=IPV(ip4("internal"), "v4", "json"),
              sn=HEX("subnet-0" + hexs(16), "aws-resource-id"), vpc=HEX("vpc-0" + hexs(16), "aws-resource-id"))
    elif k == "head-object":
        r.add('{"AcceptRanges": "bytes", "LastModified": "{lm}", "ContentLength": {cl}, "ETag": "\\"{et}\\"", "ContentType": "application/gzip", "ServerSideEncryption": "AES256", "Metadata": {}}',
              lm=T(ts_iso(t, 0, "+00:00"), "rfc3339"), cl=NUM(str(R.randint(10 ** 7, 10 ** 10)), "byte-count"), et=HASHV(hexs(32), "md5"))
    elif k == "s3ls":
        sz = str(R.randint(10 ** 7, 10 ** 11))
        r.add("{ts} {pad}{sz} backups/%s-%s.sql.gz" % (R.choice(["orders", "users", "ledger"]), t.strftime("%Y-%m-%d")),
              ts=T(t.strftime("%Y-%m-%d %H:%M:%S"), "datetime"), pad=" " * (10 - len(sz)), sz=NUM(sz, "byte-count"))
    elif k == "presign":
        kid, sec, origin = aws_pair()
        r.add("https://%s.s3.us-east-1.amazonaws.com/reports/q3.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={kid}%%2F%s%%2Fus-east-1%%2Fs3%%2Faws4_request&X-Amz-Date={d}&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=%s"
              % (R.choice(["acme-exports", "orders-reports"]), t.strftime("%Y%m%d"), hexs(64)),
              kid=P("AWS_KEY", kid, "AKIA", origin, "ctx:query"), d=T(t.strftime("%Y%m%dT%H%M%SZ"), "iso8601-basic"))
    elif k == "gcloud":
        which = R.choice(["account", "token", "list", "project"])
        if which == "account":
            r.add("account = {em}", em=EMAILV("ini"))
        elif which == "token":
            r.add("{t}", t=TOKENV("access_token", "google-ya29", "bare"))
        elif which == "list":
            r.add("*       {em}", em=EMAILV("table"))
        else:
            r.add("project = acme-prod-%d" % R.randint(100000, 999999))
    elif k == "az":
        if R.random() < 0.55:
            r.add('{"environmentName": "AzureCloud", "id": "{sub}", "isDefault": true, "name": "Production", "state": "Enabled", "tenantId": "{ten}", "user": {"name": "{em}", "type": "user"}}',
                  sub=UUIDV("json"), ten=UUIDV("json"), em=EMAILV("json"))
        else:
            r.add('{"appId": "{app}", "displayName": "%s", "password": "{pw}", "tenant": "{ten}"}' % R.choice(["ci-deployer", "github-actions", "terraform"]),
                  app=UUIDV("json"), pw=P("PASSWORD", secret("azure-client-secret"), "azure-client-secret", "container:json", "key:lowercase"), ten=UUIDV("json"))
    elif k == "kubeconfig":
        which = wpick([(40, "token"), (25, "client-key"), (15, "ca"), (20, "server")])
        if which == "token":
            r.add("    token: {t}", t=JWTV("yaml"))
        elif which == "client-key":
            r.add("    client-key-data: {v}", v=SECRETV("client-key-data", "pem-b64", "yaml"))
        elif which == "ca":
            r.add("    certificate-authority-data: {v}", v=HEX(fake_cert_b64(), "public-ca-certificate"))
        else:
            if R.random() < 0.5:
                r.add("    server: https://{hp}", hp=PORT("%s.gr7.us-east-1.eks.amazonaws.com:443" % hexs(32, upper=True), "host:port"))
            else:
                r.add("    server: https://{ip}:6443", ip=IPV(ip4("internal"), "v4", "url-host"))
    else:
        pw, style = password()
        r.add("DATABASE_URL: postgres://{u}:{pw}@{hp}/{db}", u=rs(LOW, 14), pw=PWV("url-userinfo", pw_url(pw), style),
              hp=PORT("ec2-%s.compute-1.amazonaws.com:5432" % ip4("client").replace(".", "-"), "host:port"), db=rs(LOW + DIG, 14))
    return r


SOURCES = [
    ("nginx-access", src_nginx_access), ("nginx-error", src_nginx_error), ("app-json", src_app_json),
    ("app-logfmt", src_app_logfmt), ("config-dump", src_config_dump), ("env-dump", src_env_dump),
    ("http-dump", src_http_dump), ("conn-string", src_conn_string), ("postgresql", src_postgresql),
    ("k8s-events", src_k8s_events), ("kubelet", src_kubelet), ("kernel", src_kernel), ("syslog", src_syslog),
    ("snmp", src_snmp), ("go-panic", src_go_panic), ("rust-panic", src_rust_panic), ("java-stacktrace", src_java),
    ("dotnet-windows", src_dotnet), ("ci-build", src_ci_build), ("cloud-cli", src_cloud_cli),
]


# ---------------------------------------------------------------------------
# 4. Self-checks
# ---------------------------------------------------------------------------

RX_LONG_DIGITS = re.compile(r"(?<![0-9A-Za-z_])\d{13,19}(?![0-9A-Za-z_])")
RX_GROUPED = re.compile(r"(?<![0-9A-Za-z])\d{4}([ -])(?:\d{4}\1\d{4}\1\d{4}|\d{6}\1\d{5})(?![0-9A-Za-z])")
RX_IPV4 = re.compile(r"(?<!\d)(?<!\d\.)\d{1,3}(?:\.\d{1,3}){3}(?!\d)(?!\.\d)")
RX_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
RX_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
RX_MAC = re.compile(r"[0-9A-Fa-f]{2}(?:[:-][0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}")
RX_SECRETISH = re.compile(r"(?:AKIA|ASIA)[A-Z2-7]{16}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_|xox[abpr]-|[sr]k_(?:live|test)_|\bsk-[A-Za-z0-9]{20,}"
                          r"|eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{3,}\.|whsec_|glpat-|hvs\.|npm_[A-Za-z0-9]{30}|ya29\.|PRIVATE KEY|GOCSPX-|squ_[0-9a-f]{40}"
                          r"|(?<=Basic )[A-Za-z0-9+/=]{8,}|(?<=Bearer )[A-Za-z0-9._~+/=-]{16,}")
RX_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class CheckError(AssertionError):
    pass


def check_record(rec):
    text = rec.text()
    if RX_CONTROL.search(text):
        raise CheckError("control character / newline in text")
    raw = text.encode("utf-8")
    spans = []
    for s, e, v in rec.values:
        if e <= s:
            raise CheckError("empty span for %r" % v.text)
        if raw[s:e] != v.text.encode("utf-8"):
            raise CheckError("span bytes %r != value %r" % (raw[s:e], v.text))
        spans.append((s, e, v))
    spans.sort(key=lambda x: (x[0], x[1]))
    for (s1, e1, v1), (s2, e2, v2) in zip(spans, spans[1:]):
        if s2 < e1:
            raise CheckError("overlapping spans %r and %r" % (v1.text, v2.text))
    # character offsets -> byte offsets
    cb = [0]
    for ch in text:
        cb.append(cb[-1] + len(ch.encode("utf-8")))

    def covered(ci, cj, pii_only=False, inside=True):
        bi, bj = cb[ci], cb[cj]
        for s, e, v in spans:
            if pii_only and not v.pii:
                continue
            if inside and s <= bi and bj <= e:
                return True
            if not inside and s < bj and bi < e:
                return True
        return False

    for m in list(RX_LONG_DIGITS.finditer(text)) + list(RX_GROUPED.finditer(text)):
        digits = re.sub(r"\D", "", m.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits) and not covered(m.start(), m.end(), pii_only=True):
            raise CheckError("unlabelled Luhn-valid number %r" % m.group(0))
    for s, e, v in spans:
        if not v.pii:
            for m in re.finditer(r"(?<!\d)\d{13,19}(?!\d)", v.text):
                if luhn_ok(m.group(0)):
                    raise CheckError("look-alike %s contains a Luhn-valid number %r" % (v.kind, v.text))
    for m in RX_IPV4.finditer(text):
        if not covered(m.start(), m.end()):
            raise CheckError("unlabelled IPv4-shaped text %r" % m.group(0))
    for rx, what in ((RX_EMAIL, "e-mail"), (RX_UUID, "UUID"), (RX_MAC, "MAC")):
        for m in rx.finditer(text):
            if not covered(m.start(), m.end(), inside=False):
                raise CheckError("unlabelled %s-shaped text %r" % (what, m.group(0)))
    for s, e, v in spans:
        table = {"IP": IP_FORMS, "MAC": MAC_NOTATIONS, "CREDIT_CARD": CARD_NOTATIONS, "UUID": UUID_NOTATIONS,
                 "EMAIL": EMAIL_NOTATIONS}.get(v.kind)
        if table is not None and v.tags[0] not in table:
            raise CheckError("notation %r of %s not in its table" % (v.tags[0], v.kind))
        if v.kind == "IP" and v.tags[1][4:] not in IP_CONTEXTS:
            raise CheckError("IP context %r not in IP_CONTEXTS" % v.tags[1])
    for m in RX_SECRETISH.finditer(text):
        if not covered(m.start(), m.end(), pii_only=True, inside=False):
            raise CheckError("unlabelled secret-shaped text %r" % m.group(0))


# ---------------------------------------------------------------------------
# 5. Main
# ---------------------------------------------------------------------------

def generate():
    schedule = [name for name, _ in SOURCES for _ in range(RECORDS_PER_SOURCE)]
    R.shuffle(schedule)
    fns = dict(SOURCES)
    records = []
    for name in schedule:
        rec = fns[name]()
        try:
            check_record(rec)
        except CheckError as e:
            raise SystemExit("self-check failed for %s record %r: %s" % (name, rec.text(), e))
        records.append(rec)
    return records


def stats(records, lines):
    out = []
    pii, look = Counter(), Counter()
    per_source = defaultdict(Counter)
    tags = defaultdict(Counter)
    mix = Counter()
    occurrences = defaultdict(set)
    sources_of = defaultdict(set)
    for i, rec in enumerate(records):
        has_p, has_l = bool(rec.pii), bool(rec.look)
        mix[("pii+lookalike" if has_p and has_l else "pii only" if has_p else "lookalike only" if has_l else "neither")] += 1
        for s, e, v in rec.values:
            (pii if v.pii else look)[v.kind] += 1
            per_source[rec.source][v.kind] += 1
            for tg in v.tags:
                tags[v.kind][tg] += 1
            if v.pii:
                occurrences[(v.kind, v.text)].add(i)
                sources_of[(v.kind, v.text)].add(rec.source)
    size = sum(len(l.encode("utf-8")) + 1 for l in lines)
    out.append("records: %d   file size: %d bytes" % (len(records), size))
    out.append("record mix: " + ", ".join("%s %d" % (k, mix[k]) for k in ("pii+lookalike", "pii only", "lookalike only", "neither")))
    out.append("")
    out.append("PII spans per kind:")
    for k in PII_KINDS:
        out.append("  %-12s %6d" % (k, pii[k]))
    out.append("  %-12s %6d" % ("total", sum(pii.values())))
    out.append("look-alike spans per kind:")
    for k in LOOK_KINDS:
        out.append("  %-12s %6d" % (k, look[k]))
    out.append("  %-12s %6d" % ("total", sum(look.values())))
    distinct = len(occurrences)
    again = sum(1 for v in occurrences.values() if len(v) > 1)
    cross = sum(1 for key, v in occurrences.items() if len(v) > 1 and len(sources_of[key]) > 1)
    out.append("")
    out.append("distinct PII values: %d; in 2+ records: %d (%.1f%%); in 2+ sources: %d (%.1f%%)"
               % (distinct, again, 100.0 * again / distinct, cross, 100.0 * cross / distinct))
    for k in PII_KINDS:
        ks = [key for key in occurrences if key[0] == k]
        a = sum(1 for key in ks if len(occurrences[key]) > 1)
        out.append("  %-12s distinct %5d  recurring %5d (%.0f%%)" % (k, len(ks), a, 100.0 * a / max(1, len(ks))))
    out.append("")
    out.append("spans per source:")
    for name, _ in SOURCES:
        c = per_source[name]
        n = sum(1 for r in records if r.source == name)
        out.append("  %-16s records %4d  pii %5d  lookalike %5d  | %s" % (
            name, n, sum(c[k] for k in PII_KINDS), sum(c[k] for k in LOOK_KINDS),
            " ".join("%s:%d" % (k, c[k]) for k in PII_KINDS + LOOK_KINDS if c[k])))
    out.append("")
    out.append("notation tags per kind:")
    for k in PII_KINDS + LOOK_KINDS:
        out.append("  %s: %s" % (k, ", ".join("%s=%d" % (tg, n) for tg, n in sorted(tags[k].items(), key=lambda x: (-x[1], x[0])))))
    return "\n".join(out)


def main():
    records = generate()
    lines = []
    for i, rec in enumerate(records, 1):
        obj = {"id": i, "source": rec.source, "text": rec.text(), "pii": rec.pii, "lookalike": rec.look}
        lines.append(json.dumps(obj, ensure_ascii=False))
    with open(OUT_PATH, "w", encoding="utf-8", newline="\n") as f:
        for l in lines:
            f.write(l + "\n")
    print("wrote %s" % os.path.relpath(OUT_PATH))
    print(stats(records, lines))


if __name__ == "__main__":
    main()
