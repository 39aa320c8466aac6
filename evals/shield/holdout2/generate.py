#!/usr/bin/env python3
"""Second held-out evaluation corpus for the Privacy Shield redaction engine.

    python3 evals/shield/holdout2/generate.py      (from the repository root)

Rewrites evals/shield/holdout2/holdout2.jsonl byte-identically on every run: one seeded
random.Random drives everything; no clock, no environment, no set iteration, no hashing
of str objects.  Written independently of the engine and of the other two corpora.

Every record is one physical log line from a format that is *not* nginx / PostgreSQL /
Kubernetes events / HAProxy / Envoy / MySQL, plus byte-offset spans:
    pii        sensitive values (IP, EMAIL, CREDIT_CARD, MAC, UUID, JWT, AWS_KEY,
               SECRET, TOKEN, PASSWORD) that a redactor must cover completely;
    lookalike  things that resemble them and must be left alone (HASH, TRACE_ID,
               VERSION, OID, CODE_PATH, TIMESTAMP, PORT, IMAGE_REF, K8S_NAME, HEX_ID,
               NUMBER, KEY_NAME).
Spans are recorded while the line is assembled (never found by searching afterwards)
and are verified at the end: span bytes equal the inserted value, no overlaps, card
numbers pass Luhn, 13-19 digit look-alikes fail it, and no unlabelled e-mail / UUID /
IPv4 / MAC / JWT / AWS key id / Luhn-valid digit run is left in any line.
"""
import base64
import datetime
import json
import os
import re
import string
import sys
from urllib.parse import quote, unquote
import random

SEED = 20240611
R = random.Random(SEED)
PER_SOURCE = 40
REUSE = 0.40          # chance that a sensitive value is drawn again from earlier records
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "holdout2.jsonl")

PII_KINDS = ["IP", "EMAIL", "CREDIT_CARD", "MAC", "UUID", "JWT", "AWS_KEY", "SECRET", "TOKEN", "PASSWORD"]
LOOK_KINDS = ["HASH", "TRACE_ID", "VERSION", "OID", "CODE_PATH", "TIMESTAMP", "PORT", "IMAGE_REF",
              "K8S_NAME", "HEX_ID", "NUMBER", "KEY_NAME"]


# --------------------------------------------------------------------------------------------
# fragments: a line is a list of literal strings and labelled spans; offsets come from render()
# --------------------------------------------------------------------------------------------
class S:
    __slots__ = ("cat", "kind", "value")

    def __init__(self, cat, kind, value):
        assert isinstance(value, str) and value, (kind, value)
        self.cat, self.kind, self.value = cat, kind, value


def P(kind, value):
    assert kind in PII_KINDS, kind
    return S("pii", kind, value)


def K(kind, value):
    assert kind in LOOK_KINDS, kind
    return S("look", kind, value)


class Fr(list):
    """A flattened fragment: str and S items only."""


class Raw:
    """Inside J()/RB()/PY(): insert the fragment unquoted (numbers, nested pre-built text)."""

    def __init__(self, x):
        self.x = x


def F(*parts):
    out = Fr()
    for p in parts:
        if isinstance(p, Fr):
            out.extend(p)
        elif isinstance(p, (str, S)):
            out.append(p)
        elif isinstance(p, bool) or p is None:
            raise TypeError(p)
        elif isinstance(p, int):
            out.append(str(p))
        elif isinstance(p, (list, tuple)):
            out.extend(F(*p))
        else:
            raise TypeError(repr(p))
    return out


_TPL = re.compile(r"\{\{(\w+)\}\}")


def T(tpl, **kw):
    out, pos = Fr(), 0
    for m in _TPL.finditer(tpl):
        out.append(tpl[pos:m.start()])
        out.extend(F(kw[m.group(1)]))
        pos = m.end()
    out.append(tpl[pos:])
    return out


def fmap(x, fn):
    out = Fr()
    for p in F(x):
        out.append(S(p.cat, p.kind, fn(p.value)) if isinstance(p, S) else fn(p))
    return out


def plain(x):
    return "".join(p.value if isinstance(p, S) else p for p in F(x))


def jesc(s):
    return json.dumps(s, ensure_ascii=False)[1:-1]


def jstr(x):
    return F('"', fmap(x, jesc), '"')


def J(obj, sp=False):
    """JSON serialiser that keeps spans.  sp=True gives ', ' and ': ' separators."""
    c, k = (", ", ": ") if sp else (",", ":")
    if isinstance(obj, dict):
        out = Fr(["{"])
        for i, (key, v) in enumerate(obj.items()):
            if i:
                out.append(c)
            out.extend(F(jstr(key), k, J(v, sp)))
        out.append("}")
        return out
    if isinstance(obj, Raw):
        return F(obj.x)
    if isinstance(obj, (str, S, Fr)):
        return jstr(obj)
    if isinstance(obj, list):
        out = Fr(["["])
        for i, v in enumerate(obj):
            if i:
                out.append(c)
            out.extend(J(v, sp))
        out.append("]")
        return out
    if obj is None or isinstance(obj, (bool, int, float)):
        return F(json.dumps(obj))
    raise TypeError(repr(obj))


def RB(obj):
    """Ruby Hash#inspect (Rails params, Fluent Bit / Fluentd stdout)."""
    if isinstance(obj, (str, S, Fr)):
        return jstr(obj)
    if isinstance(obj, dict):
        out = Fr(["{"])
        for i, (key, v) in enumerate(obj.items()):
            if i:
                out.append(", ")
            out.extend(F(jstr(key), "=>", RB(v)))
        out.append("}")
        return out
    if isinstance(obj, list):
        out = Fr(["["])
        for i, v in enumerate(obj):
            if i:
                out.append(", ")
            out.extend(RB(v))
        out.append("]")
        return out
    if obj is None:
        return F("nil")
    return J(obj)


def pesc(s):
    return s.replace("\\", "\\\\").replace("'", "\\'")


def PY(obj):
    """Python repr() of dicts / lists / tuples of str."""
    if isinstance(obj, (str, S, Fr)):
        return F("'", fmap(obj, pesc), "'")
    if isinstance(obj, dict):
        out = Fr(["{"])
        for i, (key, v) in enumerate(obj.items()):
            if i:
                out.append(", ")
            out.extend(F(PY(key), ": ", PY(v)))
        out.append("}")
        return out
    if isinstance(obj, tuple):
        out = Fr(["("])
        for i, v in enumerate(obj):
            if i:
                out.append(", ")
            out.extend(PY(v))
        out.append(",)" if len(obj) == 1 else ")")
        return out
    if isinstance(obj, list):
        out = Fr(["["])
        for i, v in enumerate(obj):
            if i:
                out.append(", ")
            out.extend(PY(v))
        out.append("]")
        return out
    if isinstance(obj, Raw):
        return F(obj.x)
    if isinstance(obj, (str, S, Fr)):
        return F("'", fmap(obj, pesc), "'")
    if obj is None:
        return F("None")
    if isinstance(obj, bool):
        return F("True" if obj else "False")
    return F(str(obj))


def lf(x):
    """logfmt value: quoted (with \\" escapes) when it has spaces, quotes or '='."""
    s = plain(x)
    if s and not any(ch in s for ch in ' "=\t\\'):
        return F(x)
    return F('"', fmap(x, lambda t: t.replace("\\", "\\\\").replace('"', '\\"')), '"')


def qenc(x, safe=""):
    return fmap(x, lambda t: quote(t, safe=safe))


def render(fr):
    buf = bytearray()
    spans = {"pii": [], "look": []}
    for p in F(fr):
        if isinstance(p, S):
            b = p.value.encode("utf-8")
            start = len(buf)
            buf += b
            spans[p.cat].append([start, len(buf), p.kind, p.value])
        else:
            buf += p.encode("utf-8")
    return buf.decode("utf-8"), spans["pii"], spans["look"]


# --------------------------------------------------------------------------------------------
# randomness helpers
# --------------------------------------------------------------------------------------------
AL = string.ascii_letters + string.digits
LOW = string.ascii_lowercase + string.digits
UPP = string.ascii_uppercase + string.digits
HEXD = "0123456789abcdef"
B64A = AL + "+/"
B64U = AL + "-_"
DIG = string.digits


def rs(n, alpha=AL):
    return "".join(R.choice(alpha) for _ in range(n))


def hx(n):
    return rs(n, HEXD)


def rbytes(n):
    return bytes(R.getrandbits(8) for _ in range(n))


def b64(n, url=False, pad=True):
    s = (base64.urlsafe_b64encode if url else base64.b64encode)(rbytes(n)).decode()
    return s if pad else s.rstrip("=")


def b64s(text, url=False, pad=True):
    s = (base64.urlsafe_b64encode if url else base64.b64encode)(text.encode()).decode()
    return s if pad else s.rstrip("=")


def pick(*xs):
    return R.choice(xs)


def chance(p):
    return R.random() < p


def digits(n, lead_nonzero=True):
    s = rs(n, DIG)
    if lead_nonzero and s[0] == "0":
        s = R.choice("123456789") + s[1:]
    return s


def luhn_ok(d):
    total = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch)
        if i % 2 == 1:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return total % 10 == 0


def luhn_complete(body):
    for c in DIG:
        if luhn_ok(body + c):
            return body + c
    raise AssertionError


def nonluhn(n):
    d = digits(n)
    if luhn_ok(d):
        d = d[:-1] + str((int(d[-1]) + 1) % 10)
    assert not luhn_ok(d)
    return d


class Pool:
    """Sensitive values with recurrence: a value is drawn again with probability REUSE."""

    def __init__(self):
        self.used = {}
        self.seen = set()     # membership only, never iterated

    def get(self, name, gen, ok=None, reuse=None):
        lst = self.used.setdefault(name, [])
        cands = lst if ok is None else [v for v in lst if ok(v)]
        if cands and R.random() < (REUSE if reuse is None else reuse):
            return R.choice(cands)
        for _ in range(1000):
            v = gen()
            if v not in self.seen and (ok is None or ok(v)):
                break
        else:
            raise AssertionError(name)
        self.seen.add(v)
        lst.append(v)
        return v


POOL = Pool()


# --------------------------------------------------------------------------------------------
# people, hosts, words
# --------------------------------------------------------------------------------------------
FIRST = ["jane", "john", "maria", "wei", "aisha", "liam", "sofia", "noah", "emma", "oliver", "chen", "fatima",
         "lucas", "yuki", "amir", "olga", "pedro", "ingrid", "kwame", "priya", "tomasz", "hannah", "diego",
         "mei", "ravi", "elena", "jonas", "nadia", "samuel", "leila", "marco", "anya", "kofi", "greta"]
LAST = ["doe", "smith", "garcia", "zhang", "khan", "murphy", "rossi", "novak", "kim", "silva", "larsen",
        "okafor", "tanaka", "schmidt", "dubois", "patel", "kowalski", "haddad", "ivanova", "nguyen", "moreau",
        "fischer", "santos", "odhiambo", "berg", "costa", "weber", "hughes", "sato", "mendes"]
DISPLAY = ["José Álvarez", "Zoë Müller", "Søren Østergaard", "田中 太郎", "Łukasz Wiśniewski", "Ana Conceição",
           "Jane Doe", "Kwame Mensah", "Priya Raman", "Olga Ivanova", "Chloé Lefèvre", "Björn Åkesson",
           "Nguyễn Văn An", "Ömer Yılmaz", "Sofia Rossi", "李 伟"]
DOMAINS = ["example.com", "example.org", "example.net", "acme-corp.io", "mail.acme.co.uk", "contoso.com",
           "fabrikam.net", "globex.de", "initech.fr", "umbrella.co.jp", "hooli.xyz", "gmail.com", "outlook.com",
           "proton.me", "corp.example.com", "stark-industries.com", "wayne-enterprises.net", "yahoo.co.jp",
           "web.de", "students.uni-example.edu"]
APPS = ["payments", "orders", "billing", "checkout", "auth", "inventory", "search", "ledger", "notifications",
        "catalog", "gateway", "reports", "users", "shipping", "pricing", "invoices", "accounts", "webhooks"]
NAMESPACES = ["prod", "staging", "payments", "platform", "data", "default", "kube-system", "monitoring", "ci",
              "argocd", "flux-system", "vault", "identity", "ingress"]
NODES = ["node-1", "node-3", "ip-10-0-3-17", "worker-a7", "gke-prod-pool-1-6c1e", "aks-system-31415926-vmss000002",
         "nomad-client-04", "edge-2"]
INT_HOSTS = ["db-01.internal", "pg-primary.prod.svc.cluster.local", "redis-master.cache.svc", "mq-01.internal",
             "mysql.acme.lan", "es-01.logging.svc", "mongo-0.mongo.data.svc", "rabbitmq.platform.svc",
             "sql-prod.database.windows.net", "ldap.corp.example.com", "vault.service.consul"]
PUB_HOSTS = ["api.example.com", "app.example.com", "shop.example.org", "auth.example.net", "portal.acme-corp.io",
             "sso.contoso.com", "cdn.fabrikam.net", "api.globex.de", "status.hooli.xyz", "billing.initech.fr"]
WORDS = ["summer", "winter", "dragon", "monkey", "sunshine", "letmein", "welcome", "football", "qwerty",
         "shadow", "master", "orange", "purple", "tigger", "bluebird", "maple", "harbor", "falcon", "copper",
         "violet", "rocket", "pepper", "thunder", "meadow"]
UAS = [("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v} Safari/537.36", "chrome"),
       ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3.1 Safari/605.1.15", None),
       ("Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0", None),
       ("curl/{v}", "curl"), ("python-requests/{v}", "requests"), ("okhttp/{v}", "okhttp"),
       ("Go-http-client/2.0", None), ("kubectl/{v} (linux/amd64) kubernetes/4b8e819", "kubectl")]
UA_VERS = {"chrome": ["122.0.6261.94", "121.0.6167.184", "123.0.6312.58", "120.0.6099.224"],
           "curl": ["8.6.0", "7.88.1", "8.4.0"], "requests": ["2.31.0", "2.28.2"], "okhttp": ["4.12.0", "4.9.3"],
           "kubectl": ["v1.29.2", "v1.28.7", "v1.30.0"]}
MON = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def ua():
    tpl, fam = R.choice(UAS)
    if fam is None:
        return F(tpl)
    a, b = tpl.split("{v}")
    return F(a, K("VERSION", R.choice(UA_VERS[fam])), b)


def user_name():
    f, l = R.choice(FIRST), R.choice(LAST)
    return pick(f[0] + l, f + "." + l, f + "_" + l, f, "svc-" + R.choice(APPS), l + f[0] + digits(2))


# --------------------------------------------------------------------------------------------
# sensitive value generators (raw strings)
# --------------------------------------------------------------------------------------------
def gen_ipv4():
    r = R.random()
    if r < 0.2:
        return "10.%d.%d.%d" % (R.randint(0, 255), R.randint(0, 255), R.randint(2, 254))
    if r < 0.3:
        return "172.%d.%d.%d" % (R.randint(16, 31), R.randint(0, 255), R.randint(2, 254))
    if r < 0.4:
        return "192.168.%d.%d" % (R.randint(0, 255), R.randint(2, 254))
    if r < 0.62:
        return "%s.%d" % (R.choice(["192.0.2", "198.51.100", "203.0.113"]), R.randint(1, 254))
    return "%d.%d.%d.%d" % (R.choice([23, 31, 45, 52, 64, 77, 81, 91, 104, 109, 142, 151, 176, 185, 188, 195,
                                      212, 217, 34, 35, 46, 62, 84, 94, 100, 146, 159, 178, 193]),
                            R.randint(0, 255), R.randint(0, 255), R.randint(1, 254))


def gen_ipv6():
    r = R.random()
    g = lambda: "%x" % R.randint(1, 0xffff)
    if r < 0.45:
        return "2001:db8:%s:%s::%s" % (g(), g(), g())
    if r < 0.65:
        return "2001:db8::%s:%s" % (g(), g())
    if r < 0.8:
        return "fe80::%s:%s:%s:%s" % (g(), g(), g(), g())
    if r < 0.9:
        return "::ffff:" + gen_ipv4()
    return "2a02:%s:%s:%s:%s:%s:%s:%s" % tuple(g() for _ in range(7))


def gen_email():
    f, l = R.choice(FIRST), R.choice(LAST)
    local = pick(f + "." + l, f[0] + l, f + "_" + l, f + "." + l + "+" + pick("billing", "test", "news", "jira"),
                 f + digits(R.randint(2, 4)), l + "." + f, (f + "." + l).title(), f)
    dom = R.choice(DOMAINS)
    if chance(0.03):
        dom = pick("münchen-versicherung.de", "bücher.example", "exämple.com")
    return local + "@" + dom


OUIS = ["3c:22:fb", "f0:9f:c2", "00:1a:2b", "b8:27:eb", "dc:a6:32", "00:50:56", "02:42:ac", "a4:83:e7",
        "74:ac:b9", "f4:92:bf", "00:0c:29", "e4:5f:01", "78:8a:20", "24:5a:4c", "18:e8:29", "60:22:32"]


def gen_mac(fmt):
    parts = R.choice(OUIS).split(":") + [hx(2) for _ in range(3)]
    if fmt == "colon":
        return ":".join(parts)
    if fmt == "COLON":
        return ":".join(parts).upper()
    if fmt == "DASH":
        return "-".join(parts).upper()
    if fmt == "dash":
        return "-".join(parts)
    if fmt == "cisco":
        s = "".join(parts)
        return s[0:4] + "." + s[4:8] + "." + s[8:12]
    if fmt == "bare":
        return "".join(parts)
    raise ValueError(fmt)


def gen_uuid():
    h = list(hx(32))
    h[12] = "4"
    h[16] = R.choice("89ab")
    s = "".join(h)
    return "%s-%s-%s-%s-%s" % (s[:8], s[8:12], s[12:16], s[16:20], s[20:])


def gen_jwt():
    alg = pick("RS256", "RS256", "HS256", "ES256", "PS256")
    head = {"alg": alg, "typ": "JWT"}
    if alg != "HS256" and chance(0.7):
        head["kid"] = pick(rs(43, B64U), hx(40), gen_uuid())
    iat = 1709280000 + R.randint(0, 200000)
    body = {"iss": pick("https://sso.example.com/realms/acme", "https://acme.eu.auth0.com/",
                        "https://login.contoso.com/%s/v2.0" % gen_uuid(), "https://token.actions.githubusercontent.com",
                        "https://kubernetes.default.svc.cluster.local", "https://accounts.google.com"),
            "sub": pick(gen_uuid(), "auth0|" + hx(24), "system:serviceaccount:%s:%s" % (R.choice(NAMESPACES), R.choice(APPS)),
                        digits(21)),
            "aud": pick("api", "account", R.choice(APPS) + "-service", "https://api.example.com"),
            "iat": iat, "exp": iat + pick(300, 900, 3600, 86400)}
    if chance(0.4):
        body["email"] = gen_email()
    if chance(0.3):
        body["scope"] = pick("openid profile email", "read:orders write:orders", "offline_access")
    sig = b64(pick(256, 256, 32, 64), url=True, pad=False)
    enc = lambda d: b64s(json.dumps(d, separators=(",", ":")), url=True, pad=False)
    return enc(head) + "." + enc(body) + "." + sig


B32 = string.ascii_uppercase + "234567"


def gen_akia():
    if chance(0.04):
        return "AKIAIOSFODNN7EXAMPLE"          # AWS documentation example
    return "AKIA" + rs(16, B32)


def gen_asia():
    return "ASIA" + rs(16, B32)


def gen_aws_secret():
    if chance(0.04):
        return "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"    # AWS documentation example
    return rs(40, AL + "/+")


PW_SYMS = "!#$*.-_~^@?+"
URL_SAFE = set(AL + "-_.~!*")


def url_safe(v):
    return all(c in URL_SAFE for c in v)


def gen_password(urlsafe=False):
    r = R.random()
    if r < 0.3:
        v = R.choice(WORDS).capitalize() + pick(str(R.randint(2015, 2025)), digits(R.randint(1, 4))) + pick("!", "?", ".", "#", "*", "$", "")
    elif r < 0.62:
        v = R.choice(AL) + rs(R.randint(11, 23), AL + ("-_.~!*" if urlsafe else PW_SYMS))
    elif r < 0.72:
        v = pick("hunter2", "changeit", "P@ssw0rd", "admin123", "Passw0rd!", "s3cr3t", "Welcome1", "changeme",
                 "letmein!", "Spring2024!", "qwerty123", "Tr0ub4dor&3", "correcthorsebatterystaple")
    elif r < 0.86:
        v = "-".join(R.choice(WORDS) for _ in range(R.randint(3, 4))) + digits(1)
    elif r < 0.94:
        v = R.choice(WORDS) + R.choice(LAST).capitalize() + digits(R.randint(2, 3)) + pick("", "!", "_")
    else:
        v = pick("Contraseña2024!", "Pässwort!23", "пароль" + digits(3), "Mot2passe€" + digits(2),
                 "Sommer" + digits(4) + "ü", "パスワード" + digits(4), "Çalışma" + digits(3) + "!")
    if "&" in v:
        v = v.replace("&", "8")
    return v


def gen_card():
    if chance(0.3):
        d = R.choice(["4242424242424242", "4000056655665556", "5555555555554444", "2223003122003222",
                      "5200828282828210", "5105105105105100", "378282246310005", "371449635398431",
                      "6011111111111117", "6011000990139424", "3056930009020004", "36227206271667",
                      "3566002020360505", "6200000000000005", "4111111111111111", "4012888888881881",
                      "3530111333300000", "4000002500003155", "6205500000000000004", "6011981111111113",
                      "4000000000003220", "30569309025904", "38520000023237", "6200000000000047"])
    else:
        brand = pick("visa", "visa", "visa", "mc", "mc2", "amex", "disc", "jcb", "diners", "visa19", "unionpay", "maestro")
        pre, n = {"visa": ("4", 16), "mc": (str(R.randint(51, 55)), 16), "mc2": (str(R.randint(2221, 2720)), 16),
                  "amex": (pick("34", "37"), 15), "disc": (pick("6011", "65", "644"), 16),
                  "jcb": (str(R.randint(3528, 3589)), 16), "diners": (pick("36", "300", "305"), 14),
                  "visa19": ("4", 19), "unionpay": ("62", pick(16, 19)), "maestro": (pick("6759", "5018"), pick(16, 19))}[brand]
        d = luhn_complete(pre + rs(n - len(pre) - 1, DIG))
    assert luhn_ok(d) and 13 <= len(d) <= 19, d
    sep = pick("", "", " ", " ", "-")
    if not sep:
        return d
    groups = {15: [4, 6, 5], 14: [4, 6, 4], 16: [4, 4, 4, 4], 19: [4, 4, 4, 4, 3], 13: [4, 4, 5]}[len(d)]
    out, i = [], 0
    for gl in groups:
        out.append(d[i:i + gl])
        i += gl
    return sep.join(out)


PEM_PREFIX = {"RSA PRIVATE KEY": "MIIEowIBAAKCAQEA", "PRIVATE KEY": "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ",
              "EC PRIVATE KEY": "MHcCAQEEI", "OPENSSH PRIVATE KEY": "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"}


def gen_pem_body(label, sep="\n"):
    n = {"RSA PRIVATE KEY": 560, "PRIVATE KEY": 600, "EC PRIVATE KEY": 212, "OPENSSH PRIVATE KEY": 330}[label]
    body = PEM_PREFIX[label] + rs(n - len(PEM_PREFIX[label]), B64A)
    if label == "EC PRIVATE KEY":
        body += "=="
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return sep.join(lines)


def gen_laravel_cookie():
    inner = json.dumps({"iv": b64(16), "value": b64(R.randint(40, 90)), "mac": hx(64), "tag": ""}, separators=(",", ":"))
    return b64s(inner).replace("=", "%3D")


TOKEN_GENS = {
    "github": lambda: "ghp_" + rs(36),
    "github_oauth": lambda: "gho_" + rs(36),
    "github_app": lambda: "ghs_" + rs(36),
    "github_pat": lambda: "github_pat_" + rs(22, UPP) + "_" + rs(59),
    "gitlab": lambda: "glpat-" + rs(20, B64U),
    "slack_bot": lambda: "xoxb-" + digits(11) + "-" + digits(13) + "-" + rs(24),
    "slack_user": lambda: "xoxp-" + digits(11) + "-" + digits(11) + "-" + digits(13) + "-" + hx(32),
    "stripe": lambda: pick("sk_live_", "sk_live_", "rk_live_", "sk_test_") + rs(pick(24, 99)),
    "stripe_whsec": lambda: "whsec_" + rs(32),
    "sendgrid": lambda: "SG." + rs(22, B64U) + "." + rs(43, B64U),
    "npm": lambda: "npm_" + rs(36),
    "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + rs(pick(60, 140), B64U),
    "vault": lambda: "hvs." + pick(rs(24), "CAESI" + rs(86, B64U)),
    "vault_batch": lambda: "hvb." + "AAAAAQ" + rs(120, B64U),
    "google": lambda: "ya29." + rs(pick(120, 160), B64U),
    "openai": lambda: "sk-proj-" + rs(48, B64U),
    "anthropic": lambda: "sk-ant-api03-" + rs(93, B64U) + "AA",
    "grafana": lambda: "glsa_" + rs(32) + "_" + hx(8),
    "shopify": lambda: "shpat_" + hx(32),
    "digitalocean": lambda: "dop_v1_" + hx(64),
    "mailgun": lambda: "key-" + hx(32),
    "sentry": lambda: "sntrys_" + b64(90, pad=False).replace("/", "_").replace("+", "-"),
    "doppler": lambda: "dp.st.prd." + rs(43),
    "okta": lambda: "00" + rs(40, B64U),
    "k8s_bootstrap": lambda: rs(6, string.ascii_lowercase + DIG) + "." + rs(16, string.ascii_lowercase + DIG),
    "aws_session": lambda: pick("IQoJb3JpZ2luX2VjE", "FwoGZXIvYXdzE") + rs(R.randint(200, 340), B64A) + pick("", "=", "=="),
    "opaque": lambda: rs(R.randint(32, 64), B64U),
    "refresh": lambda: pick("1//0" + rs(100, B64U), rs(pick(40, 64, 86), B64U), "v1.M" + rs(70, B64U)),
    "oauth_code": lambda: pick(rs(20, AL), rs(43, B64U), "4/0A" + rs(70, B64U), rs(32, HEXD)),
    "django_session": lambda: rs(32, string.ascii_lowercase + DIG),
    "jsessionid": lambda: hx(32).upper(),
    "phpsessid": lambda: rs(26, "0123456789abcdefghijklmnopqrstuv"),
    "rails_session": lambda: rs(R.randint(140, 220), AL) + "--" + rs(R.randint(20, 40), AL) + "--" + rs(22, AL) + "%3D%3D",
    "connect_sid": lambda: "s%3A" + rs(32, B64U) + "." + rs(43, AL + "%"),
    "laravel_session": gen_laravel_cookie,
    "consul_acl": gen_uuid,
    "nomad_acl": gen_uuid,
    "telegram": lambda: digits(10) + ":AA" + rs(33, B64U),
    "azure_sas": lambda: quote(b64(32), safe=""),
    "okta_session": lambda: pick("102", "idx") + rs(22, AL),
    "twilio_api": lambda: "SK" + hx(32),
}

SECRET_GENS = {
    "hex32": lambda: hx(32),
    "hex40": lambda: hx(40),
    "hex64": lambda: hx(64),
    "alnum32": lambda: rs(32),
    "alnum40": lambda: rs(R.randint(36, 48)),
    "b64_32": lambda: b64(32),
    "fernet": lambda: b64(32, url=True),
    "aws": gen_aws_secret,
    "django": lambda: rs(50, string.ascii_lowercase + DIG + "!@#%^*-_+"),
    "rails": lambda: hx(128),
    "azure": lambda: rs(3, AL) + "8Q~" + rs(31, AL + "-_.~"),
    "webhook": lambda: rs(R.randint(24, 40), AL),
    "radius": lambda: pick("testing123", rs(16), rs(22, AL + "!#*")),
    "slack_hook": lambda: rs(24, AL),
    "keycloak": lambda: rs(32, AL),
    "wireguard": lambda: b64(32),
    "mailchimp": lambda: hx(32) + "-us" + str(R.randint(1, 21)),
    "appkey": lambda: b64(32),
    "jwt_hmac": lambda: pick(rs(64, AL), hx(64), b64(48)),
    "unseal": lambda: b64(32),
    "consumer_key": lambda: rs(32),
}


def gen_basic():
    user = pick(user_name(), gen_email(), "admin", "api", "elastic", "deploy", "jenkins")
    return b64s(user + ":" + POOL.get("pw", gen_password))


# span helpers (pooled) ---------------------------------------------------------------------
def ip4():
    return P("IP", POOL.get("ipv4", gen_ipv4))


def ip6():
    return P("IP", POOL.get("ipv6", gen_ipv6))


def ip():
    return ip4() if chance(0.85) else ip6()


def ipport():
    """IP:port with the port as a PORT look-alike; IPv6 gets brackets."""
    if chance(0.88):
        return F(ip4(), ":", keph())
    return F("[", ip6(), "]:", keph())


def email():
    return P("EMAIL", POOL.get("email", gen_email))


def mac(fmt="colon"):
    return P("MAC", POOL.get("mac_" + fmt, lambda: gen_mac(fmt)))


def uuid(upper=False):
    if upper:
        return P("UUID", POOL.get("UUID", lambda: gen_uuid().upper()))
    return P("UUID", POOL.get("uuid", gen_uuid))


def jwt():
    return P("JWT", POOL.get("jwt", gen_jwt))


def akia():
    return P("AWS_KEY", POOL.get("akia", gen_akia))


def asia():
    return P("AWS_KEY", POOL.get("asia", gen_asia))


def pw(url=False):
    if url:
        return P("PASSWORD", POOL.get("pw", lambda: gen_password(True), ok=url_safe))
    return P("PASSWORD", POOL.get("pw", gen_password))


def basic():
    return P("PASSWORD", POOL.get("basic", gen_basic))


def card():
    return P("CREDIT_CARD", POOL.get("card", gen_card))


def tok(name):
    return P("TOKEN", POOL.get("tok_" + name, TOKEN_GENS[name]))


def sec(name):
    return P("SECRET", POOL.get("sec_" + name, SECRET_GENS[name]))


def awssec():
    return sec("aws")


VENDOR_TOKENS = ["github", "github_pat", "gitlab", "slack_bot", "stripe", "sendgrid", "npm", "vault", "google",
                 "openai", "anthropic", "grafana", "shopify", "digitalocean", "mailgun", "sentry", "doppler",
                 "github_app", "pypi", "slack_user", "stripe_whsec", "twilio_api"]


def vtok():
    return tok(R.choice(VENDOR_TOKENS))


def bearer_value():
    """Value after 'Bearer ': a JWT, an opaque token or a vendor token."""
    r = R.random()
    if r < 0.6:
        return jwt()
    if r < 0.82:
        return tok("opaque")
    return vtok()


def private_key(label=None, escaped=True):
    """(header, body span, footer) with newlines as literal \\n (escaped=True) or real newlines."""
    label = label or pick("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY")
    nl = "\\n" if escaped else "\n"
    body = POOL.get("pem_" + label + str(escaped), lambda: gen_pem_body(label, nl))
    return F("-----BEGIN %s-----%s" % (label, nl), P("SECRET", body), "%s-----END %s-----" % (nl, label))


# --------------------------------------------------------------------------------------------
# look-alike generators
# --------------------------------------------------------------------------------------------
CLOCK = [datetime.datetime(2024, 3, 1, 7, 58, 12, 417000, tzinfo=datetime.timezone.utc)]


def now(delta_ms=0):
    return CLOCK[0] + datetime.timedelta(milliseconds=delta_ms)


def tsf(fmt, dt=None):
    d = dt or now()
    us = d.microsecond
    Y, m, D, H, M, Sx = d.year, d.month, d.day, d.hour, d.minute, d.second
    epoch = int(d.timestamp())
    if fmt == "iso":
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (Y, m, D, H, M, Sx)
    if fmt == "iso_ms":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (Y, m, D, H, M, Sx, us // 1000)
    if fmt == "iso_us":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (Y, m, D, H, M, Sx, us)
    if fmt == "iso_ns":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06d%03dZ" % (Y, m, D, H, M, Sx, us, R.randint(0, 999))
    if fmt == "iso_7":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06d%dZ" % (Y, m, D, H, M, Sx, us, R.randint(0, 9))
    if fmt == "iso_off":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%03d+00:00" % (Y, m, D, H, M, Sx, us // 1000)
    if fmt == "iso_local":
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06d" % (Y, m, D, H, M, Sx, us)
    if fmt == "space":
        return "%04d-%02d-%02d %02d:%02d:%02d" % (Y, m, D, H, M, Sx)
    if fmt == "space_ms":
        return "%04d-%02d-%02d %02d:%02d:%02d.%03d" % (Y, m, D, H, M, Sx, us // 1000)
    if fmt == "py":
        return "%04d-%02d-%02d %02d:%02d:%02d,%03d" % (Y, m, D, H, M, Sx, us // 1000)
    if fmt == "clf":
        return "%02d/%s/%04d:%02d:%02d:%02d +0000" % (D, MON[m - 1], Y, H, M, Sx)
    if fmt == "syslog":
        return "%s %2d %02d:%02d:%02d" % (MON[m - 1], D, H, M, Sx)
    if fmt == "klog":
        return "%02d%02d %02d:%02d:%02d.%06d" % (m, D, H, M, Sx, us)
    if fmt == "tomcat":
        return "%02d-%s-%04d %02d:%02d:%02d.%03d" % (D, MON[m - 1], Y, H, M, Sx, us // 1000)
    if fmt == "spark":
        return "%02d/%02d/%02d %02d:%02d:%02d" % (Y % 100, m, D, H, M, Sx)
    if fmt == "clickhouse":
        return "%04d.%02d.%02d %02d:%02d:%02d.%06d" % (Y, m, D, H, M, Sx, us)
    if fmt == "samba":
        return "%04d/%02d/%02d %02d:%02d:%02d.%06d" % (Y, m, D, H, M, Sx, us)
    if fmt == "slash":
        return "%04d/%02d/%02d %02d:%02d:%02d" % (Y, m, D, H, M, Sx)
    if fmt == "ctime":
        return "%s %s %2d %02d:%02d:%02d %04d" % (DOW[d.weekday()], MON[m - 1], D, H, M, Sx, Y)
    if fmt == "bind":
        return "%02d-%s-%04d %02d:%02d:%02d.%03d" % (D, MON[m - 1], Y, H, M, Sx, us // 1000)
    if fmt == "django":
        return "%02d/%s/%04d %02d:%02d:%02d" % (D, MON[m - 1], Y, H, M, Sx)
    if fmt == "rails":
        return "%04d-%02d-%02d %02d:%02d:%02d +0000" % (Y, m, D, H, M, Sx)
    if fmt == "airflow":
        return "%04d-%02d-%02d, %02d:%02d:%02d UTC" % (Y, m, D, H, M, Sx)
    if fmt == "utc":
        return "%04d-%02d-%02d %02d:%02d:%02d UTC" % (Y, m, D, H, M, Sx)
    if fmt == "http":
        return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (DOW[d.weekday()], D, MON[m - 1], Y, H, M, Sx)
    if fmt == "epoch":
        return str(epoch)
    if fmt == "epoch_ms":
        v = epoch * 1000 + us // 1000
        while luhn_ok(str(v)):
            v += 1
        return str(v)
    if fmt == "epoch_ns":
        v = epoch * 10 ** 9 + us * 1000 + R.randint(0, 999)
        while luhn_ok(str(v)):
            v += 1
        return str(v)
    if fmt == "epoch_f":
        return "%d.%03d" % (epoch, us // 1000)
    if fmt == "epoch_f6":
        return "%d.%06d" % (epoch, us)
    if fmt == "epoch_f9":
        return "%d.%06d%03d" % (epoch, us, R.randint(0, 999))
    raise ValueError(fmt)


def kts(fmt="iso_ms", dt=None):
    return K("TIMESTAMP", tsf(fmt, dt))


COMMON_PORTS = [22, 25, 53, 80, 443, 389, 636, 1812, 2379, 2380, 3000, 3306, 4317, 4318, 5000, 5432, 5601, 5672,
                6379, 6443, 7000, 8080, 8200, 8300, 8443, 8500, 9000, 9042, 9092, 9200, 9300, 9411, 10250, 27017]


def kport(p=None):
    return K("PORT", str(p if p is not None else R.choice(COMMON_PORTS)))


def keph():
    return K("PORT", str(R.randint(1024, 65535) if chance(0.25) else R.randint(32768, 60999)))


def knum(a=1, b=99999):
    return K("NUMBER", str(R.randint(a, b)))


def klong(n=None):
    return K("NUMBER", nonluhn(n or R.randint(13, 19)))


def kfloat(a=0, b=500, nd=3):
    return K("NUMBER", "%.*f" % (nd, R.uniform(a, b)))


def khash(kind=None):
    kind = kind or pick("sha256", "sha256", "sha1", "md5", "sha512")
    return K("HASH", hx({"sha256": 64, "sha1": 40, "md5": 32, "sha512": 128, "short": 7}[kind]))


def ktrace(n=32):
    return K("TRACE_ID", hx(n))


def kspan():
    return K("TRACE_ID", hx(16))


def kxray():
    return K("TRACE_ID", "1-%08x-%s" % (int(now().timestamp()), hx(24)))


def semver(v=False, parts=3):
    s = ".".join(str(x) for x in ([R.randint(0, 9), R.randint(0, 40), R.randint(0, 30), R.randint(0, 9999)][:parts]))
    return ("v" + s) if v else s


def kver(v=None):
    return K("VERSION", v or pick(semver(), semver(True), semver(parts=4), semver(parts=2)))


OIDS = ["1.3.6.1.4.1.1466.20037", "1.3.6.1.4.1.4203.1.11.1", "1.3.6.1.4.1.4203.1.11.3", "1.2.840.113556.1.4.319",
        "2.16.840.1.113730.3.4.2", "1.3.6.1.1.12", "1.3.6.1.4.1.42.2.27.8.5.1", "1.2.840.113556.1.4.473",
        "2.16.840.1.113730.3.4.9", "1.3.6.1.4.1.4203.1.9.1.1", "1.3.6.1.1.13.1", "1.3.6.1.1.13.2",
        "1.3.6.1.4.1.4203.1.10.1", "1.3.6.1.4.1.4203.1.10.2", "2.5.4.3", "0.9.2342.19200300.100.1.1",
        "1.2.840.113549.1.9.1", "1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2", "1.3.6.1.4.1.311.20.2.3",
        "1.2.840.113554.1.2.2", "1.3.6.1.5.5.2", "1.3.6.1.4.1.311.2.2.10", "1.2.840.10045.3.1.7",
        "1.2.840.113549.1.1.11", "1.3.6.1.4.1.11129.2.4.2", "2.5.29.17", "2.5.29.37", "1.3.6.1.4.1.1466.101.119.1",
        "1.2.840.113556.1.4.1339", "1.2.840.113556.1.4.417", "1.2.840.113556.1.4.801", "1.3.6.1.1.8",
        "1.3.6.1.4.1.26027.1.5.4", "1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.2.2.1.10", "1.3.6.1.6.3.1.1.5.3"]


def koid(o=None):
    return K("OID", o or R.choice(OIDS))


def kimg():
    app = R.choice(APPS)
    v = pick(semver(), semver(True), semver() + "-alpine", "sha-" + hx(7))
    dig = "sha256:" + hx(64)
    return K("IMAGE_REF", pick(
        "registry.example.com/%s/%s:%s" % (R.choice(NAMESPACES), app, v),
        "ghcr.io/acme/%s@%s" % (app, dig),
        "docker.io/library/postgres:%s" % pick("16.2-alpine", "15.6", "14"),
        "%s.dkr.ecr.%s.amazonaws.com/%s:%s" % (digits(12), pick("us-east-1", "eu-west-1"), app, v),
        "quay.io/prometheus/node-exporter:v1.7.0", "gcr.io/distroless/static:nonroot",
        "mcr.microsoft.com/dotnet/aspnet:8.0", "public.ecr.aws/acme/%s:%s" % (app, v),
        "registry.gitlab.com/acme/%s/%s:%s@%s" % (app, pick("api", "worker"), v, dig),
        "redis:7.2.4", "hashicorp/vault:1.15.6", "grafana/loki:2.9.5", "otel/opentelemetry-collector-contrib:0.96.0"))


POD_ALPHA = "bcdfghjklmnpqrstvwxz2456789"


def pod_name(app=None):
    app = app or R.choice(APPS)
    return "%s-%s-%s" % (app, rs(R.choice([9, 10]), POD_ALPHA), rs(5, POD_ALPHA))


def kk8s(kind="pod", app=None):
    app = app or R.choice(APPS)
    v = {"pod": lambda: pod_name(app),
         "secret": lambda: pick("%s-credentials" % app, "%s-db-secret" % app, "%s-tls" % app, "%s-api-token" % app,
                                "default-token-%s" % rs(5, POD_ALPHA), "%s-env" % app, "sh.helm.release.v1.%s.v%d" % (app, R.randint(1, 40)),
                                "bootstrap-token-%s" % rs(6, string.ascii_lowercase + DIG), "%s-oauth-client" % app, "argocd-secret"),
         "cm": lambda: pick("%s-config" % app, "%s-env" % app, "kube-root-ca.crt", "coredns", "%s-settings" % app),
         "deploy": lambda: pick(app, app + "-api", app + "-worker"),
         "sa": lambda: pick(app, app + "-sa", "default", "deployer")}[kind]()
    return K("K8S_NAME", v)


def kcode(lang=None):
    lang = lang or pick("py", "java", "go", "node", "rb", "php")
    app = R.choice(APPS)
    if lang == "py":
        v = pick("/srv/app/%s/views.py" % app, "/usr/local/lib/python3.11/site-packages/django/core/handlers/base.py",
                 "/srv/app/%s/services/token_service.py" % app, "/opt/airflow/dags/%s_etl.py" % app,
                 "/app/%s/auth/password_reset.py" % app, "/usr/lib/python3/dist-packages/requests/adapters.py")
    elif lang == "java":
        cls = pick("PaymentService", "TokenValidator", "SecretRotationJob", "PasswordEncoderConfig", "AuthFilter")
        v = "com.acme.%s.%s.%s(%s.java:%d)" % (app, pick("service", "security", "web"), cls + "." + pick("charge", "validate", "rotate", "doFilter"), cls, R.randint(20, 900))
    elif lang == "go":
        v = pick("/app/internal/%s/handler.go:%d" % (app, R.randint(20, 600)), "/go/pkg/mod/github.com/jackc/pgx/v5@v5.5.3/conn.go:%d" % R.randint(20, 600),
                 "/app/pkg/auth/password.go:%d" % R.randint(10, 300), "/usr/local/go/src/net/http/server.go:%d" % R.randint(1000, 3300))
    elif lang == "node":
        v = pick("/app/src/services/token.service.js:%d:%d" % (R.randint(10, 300), R.randint(3, 40)),
                 "/app/node_modules/express/lib/router/layer.js:95:5", "/app/dist/%s/secret-store.js:%d:%d" % (app, R.randint(10, 300), R.randint(3, 40)))
    elif lang == "rb":
        v = pick("/app/app/controllers/sessions_controller.rb:%d" % R.randint(10, 200), "/app/app/services/payment_gateway.rb:%d" % R.randint(10, 200),
                 "/usr/local/bundle/gems/activerecord-7.1.3/lib/active_record/connection_adapters/postgresql_adapter.rb:%d" % R.randint(40, 900))
    else:
        v = pick("/var/www/html/vendor/laravel/framework/src/Illuminate/Database/Connection.php:%d" % R.randint(100, 900),
                 "/var/www/html/app/Http/Controllers/Auth/LoginController.php:%d" % R.randint(10, 200),
                 "/var/www/html/app/Services/StripeWebhookHandler.php:%d" % R.randint(10, 200))
    return K("CODE_PATH", v)


def khex(kind=None):
    kind = kind or pick("container", "short", "ptr", "etag", "hmac", "alloc", "objectid")
    v = {"container": lambda: hx(64), "short": lambda: hx(12), "ptr": lambda: pick("0xc000" + hx(6), "0x7f" + hx(10), "0x" + hx(6)),
         "etag": lambda: pick(hx(13), hx(16), hx(32), hx(8) + "-" + hx(13)), "hmac": lambda: "hmac-sha256:" + hx(64),
         "alloc": lambda: hx(8), "objectid": lambda: hx(24)}[kind]()
    return K("HEX_ID", v)


MASKS = ["****", "********", "[REDACTED]", "[FILTERED]", "[Filtered]", "<redacted>", "***", "<hidden>", "[HIDDEN]",
         "REDACTED", "<REDACTED>", "xxxxxx", "*****", "[masked]", "(sensitive)", "<secret>", "********(redacted)"]
PLACEHOLDERS = ["${DB_PASSWORD}", "${API_KEY}", "${{ secrets.NPM_TOKEN }}", "$AWS_SECRET_ACCESS_KEY", "{{ .Values.auth.password }}",
                "%(password)s", "${env:CLIENT_SECRET}", "vault:secret/data/app#password", "<your-api-key>", "${SMTP_PASS}",
                "$(cat /run/secrets/db_password)", "env(JWT_SECRET)", "${{ secrets.AWS_SECRET_ACCESS_KEY }}", "{vault://kv/app/token}"]


def kmask():
    return K("KEY_NAME", R.choice(MASKS))


def kplace():
    return K("KEY_NAME", R.choice(PLACEHOLDERS))


def kword(v):
    return K("KEY_NAME", v)


# --------------------------------------------------------------------------------------------
# shared building blocks
# --------------------------------------------------------------------------------------------
def conn_url(scheme=None, host=None):
    """scheme://user:PASSWORD@host:port/db with only the password labelled."""
    scheme = scheme or pick("postgres", "postgresql", "mysql", "mongodb", "amqp", "redis", "mongodb+srv", "rediss")
    host = host or pick(R.choice(INT_HOSTS), None)
    port = {"postgres": 5432, "postgresql": 5432, "mysql": 3306, "mongodb": 27017, "amqp": 5672, "redis": 6379,
            "mongodb+srv": None, "rediss": 6380}[scheme]
    user = pick("app", "etl", "svc_" + R.choice(APPS), "guest", "admin", "vault", "readonly", "root")
    if scheme.startswith("redis") and chance(0.6):
        user = ""
    hostpart = F(host) if host else (F(ip4()) if chance(0.8) else F("[", ip6(), "]"))
    tail = F(":", kport(port)) if port else F()
    db = {"amqp": "/" + pick("", "%2F", "vhost"), "redis": "/" + str(R.randint(0, 15)), "rediss": "/0"}.get(scheme, "/" + R.choice(APPS))
    q = pick("", "?sslmode=require", "?retryWrites=true&w=majority", "?connect_timeout=10") if scheme.startswith(("postgres", "mongo")) else ""
    return F(scheme, "://", user, ":", pw(url=True), "@", hostpart, tail, db, q)


def ado_conn():
    """ADO.NET / JDBC style connection strings, password only."""
    v = R.randrange(3)
    if v == 0:
        return T("Server=tcp:{{h}},{{p}};Initial Catalog={{db}};Persist Security Info=False;User ID={{u}};Password={{pw}};Encrypt=True;",
                 h=R.choice(INT_HOSTS), p=kport(1433), db=R.choice(APPS).title(), u=pick("sqladmin", "app_rw"), pw=pw())
    if v == 1:
        return T("jdbc:sqlserver://{{h}}:{{p}};databaseName={{db}};user={{u}};password={{pw}};trustServerCertificate=true",
                 h=R.choice(INT_HOSTS), p=kport(1433), db=R.choice(APPS), u="sa", pw=pw())
    return T("Host={{h}};Port={{p}};Database={{db}};Username={{u}};Password={{pw}};SSL Mode=Require",
             h=ip4(), p=kport(5432), db=R.choice(APPS), u="app", pw=pw())


def secret_kv(style=None):
    """(key fragment, value fragment) for a sensitive setting under a random key spelling."""
    c = R.randrange(24)
    base, val = [
        (["db", "password"], lambda: pw()), (["postgres", "password"], lambda: pw()), (["mysql", "root", "password"], lambda: pw()),
        (["redis", "password"], lambda: pw()), (["smtp", "pass"], lambda: pw()), (["ldap", "bind", "pw"], lambda: pw()),
        (["admin", "pwd"], lambda: pw()), (["stripe", "secret", "key"], lambda: tok("stripe")),
        (["github", "token"], lambda: tok(pick("github", "github_pat"))), (["slack", "bot", "token"], lambda: tok("slack_bot")),
        (["npm", "token"], lambda: tok("npm")), (["sendgrid", "api", "key"], lambda: tok("sendgrid")),
        (["vault", "token"], lambda: tok("vault")), (["dd", "api", "key"], lambda: sec("hex32")),
        (["twilio", "auth", "token"], lambda: sec("hex32")), (["jwt", "secret"], lambda: sec("jwt_hmac")),
        (["secret", "key", "base"], lambda: sec("rails")), (["client", "secret"], lambda: sec(pick("alnum32", "azure", "keycloak"))),
        (["aws", "secret", "access", "key"], awssec), (["aws", "access", "key", "id"], akia),
        (["encryption", "key"], lambda: sec("b64_32")), (["access", "token"], jwt),
        (["refresh", "token"], lambda: tok("refresh")), (["openai", "api", "key"], lambda: tok("openai")),
    ][c]
    style = style or pick("UPPER", "UPPER", "snake", "camel", "kebab", "dot")
    key = spell(base, style)
    return key, val()


def spell(words, style):
    if style == "UPPER":
        return "_".join(words).upper()
    if style == "snake":
        return "_".join(words)
    if style == "camel":
        return words[0] + "".join(w.title() for w in words[1:])
    if style == "kebab":
        return "-".join(words)
    if style == "dot":
        return ".".join(words)
    raise ValueError(style)


def benign_kv(style=None):
    """Non-secret settings that sit next to secret-ish names: look-alikes only."""
    style = style or pick("UPPER", "snake", "camel", "kebab", "dot")
    c = R.randrange(16)
    if c == 0:
        return spell(["app", "version"], style), kver()
    if c == 1:
        return spell(["db", "password"], style), pick(kmask(), kplace())
    if c == 2:
        return spell(["api", "key"], style), pick(kmask(), kplace())
    if c == 3:
        return spell(["token", "ttl"], style), knum(60, 86400)
    if c == 4:
        return spell(["git", "sha"], style), khash("sha1")
    if c == 5:
        return spell(["image"], style), kimg()
    if c == 6:
        return spell(["secret", "name"], style), kk8s("secret")
    if c == 7:
        return spell(["http", "port"], style), kport()
    if c == 8:
        return spell(["auth", "type"], style), kword(pick("password", "oauth2", "token", "client_credentials", "basic"))
    if c == 9:
        return spell(["password", "min", "length"], style), knum(8, 16)
    if c == 10:
        return spell(["build", "id"], style), klong()
    if c == 11:
        return spell(["secret", "store"], style), kword(pick("vault", "aws-secrets-manager", "kubernetes", "sops"))
    if c == 12:
        return spell(["token", "type"], style), kword(pick("Bearer", "bearer", "refresh_token", "id_token", "access_token"))
    if c == 13:
        return spell(["config", "map"], style), kk8s("cm")
    if c == 14:
        return spell(["otel", "trace", "id"], style), ktrace()
    return spell(["client", "secret"], style), pick(kmask(), kplace())


def app_focus():
    v = R.randrange(8)
    if v == 6:
        return T("tokenizing pan={{c}} for merchant {{m}}", c=card(), m=knum(100000, 999999))
    if v == 7:
        return T("fraud check score={{s}} card={{c}} ip={{ip}}", s=kfloat(0, 1, 3), c=card(), ip=ip())
    if v == 0:
        return T("checkout failed: card {{c}} declined (customer {{e}})", c=card(), e=email())
    if v == 1:
        return T("using AWS credentials access_key_id={{a}} secret_access_key={{s}}", a=pick(akia(), asia()), s=awssec())
    if v == 2:
        return T("token introspection failed for {{j}}: signature invalid", j=jwt())
    if v == 3:
        return T("dhcp lease {{ip}} -> {{m}} hostname={{h}}", ip=ip4(), m=mac(pick("colon", "DASH", "cisco")), h=pick("Janes-iPhone", "DESKTOP-7H2K9QF"))
    if v == 4:
        return T("refund issued to card {{c}} for order {{o}}", c=card(), o=klong())
    return T("sts assume-role ok: AccessKeyId={{a}} SessionToken={{t}} Expiration={{ts}}", a=asia(), t=tok("aws_session"), ts=kts("iso"))


def app_msg():
    """A free-text application message (embedded in collector / shipper records)."""
    if chance(0.3):
        return app_focus()
    v = R.randrange(20)
    if v == 0:
        return T(pick("login failed for user {{e}} from {{ip}}: invalid password", "Anmeldung fehlgeschlagen für {{e}} von {{ip}}: ungültiges Passwort",
                      "ログインに失敗しました: {{e}} ({{ip}})", "échec de connexion pour « {{e}} » depuis {{ip}}", "Falha no login de {{e}} a partir de {{ip}} — senha inválida"),
                 e=email(), ip=ip())
    if v == 1:
        return T("connecting to {{u}} (attempt {{n}})", u=conn_url(), n=knum(1, 5))
    if v == 2:
        return T("POST /oauth/token grant_type={{g}}&refresh_token={{t}}&client_id={{app}}-web&client_secret={{s}}",
                 g=kword("refresh_token"), t=tok("refresh"), app=R.choice(APPS), s=sec(pick("alnum32", "keycloak")))
    if v == 3:
        return T("payment declined card={{c}} customer={{e}} amount={{a}}", c=card(), e=email(), a=knum(100, 99999))
    if v == 4:
        return T("outbound call failed: Authorization: Bearer {{t}} status=401 trace_id={{tr}}", t=bearer_value(), tr=ktrace())
    if v == 5:
        return T("s3 upload failed for key_id={{a}} secret={{s}} bucket={{b}}", a=akia(), s=awssec(), b=R.choice(APPS) + "-exports")
    if v == 6:
        return T("device {{m}} associated, lease {{ip}} for {{n}}s", m=mac(pick("colon", "COLON", "DASH")), ip=ip4(), n=knum(600, 86400))
    if v == 7:
        return T("request_id={{u}} user={{e}} duration_ms={{d}} status=200", u=uuid(), e=email(), d=knum(1, 4000))
    if v == 8:
        return T("session restored sid={{s}} user_id={{u}}", s=tok(pick("django_session", "opaque", "phpsessid")), u=uuid())
    if v == 9:
        return T("proxying with header Authorization: Basic {{b}} to {{h}}", b=basic(), h=R.choice(INT_HOSTS))
    if v == 10:
        return T("slack notify failed url=https://hooks.slack.com/services/T{{a}}/B{{b}}/{{s}} status=404",
                 a=rs(10, UPP), b=rs(10, UPP), s=sec("slack_hook"))
    if v == 11:
        return T("jwt rejected: token expired token={{j}} kid={{k}}", j=jwt(), k=khash("sha1"))
    if v == 12:
        return T("GET /healthz 200 {{d}}ms trace_id={{t}} span_id={{s}}", d=knum(1, 90), t=ktrace(), s=kspan())
    if v == 13:
        return T("cache miss key=user:{{n}} etag=\"{{e}}\" size={{sz}}", n=knum(1000, 9999999), e=khex("etag"), sz=knum(100, 90000))
    if v == 14:
        return T("deployed {{img}} revision {{h}} to {{p}}", img=kimg(), h=khash("sha1"), p=kk8s("pod"))
    if v == 15:
        k, val = secret_kv()
        return T("loaded setting {{k}}={{v}} from environment", k=k, v=val)
    if v == 16:
        k, val = benign_kv()
        return T("config {{k}}={{v}}", k=k, v=val)
    if v == 17:
        return T("order {{o}} placed by {{e}} total={{t}}", o=klong(), e=email(), t=kfloat(1, 900, 2))
    if v == 18:
        return T("github clone https://x-access-token:{{t}}@github.com/acme/{{r}}.git failed: exit status 128", t=tok(pick("github_app", "github")), r=R.choice(APPS))
    return T("new api key issued to {{e}}: {{k}} (expires {{ts}})", e=email(), k=pick(vtok(), sec("hex32")), ts=kts("iso"))


# --------------------------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------------------------
def hclog_lvl():
    return pick("[INFO] ", "[INFO] ", "[WARN] ", "[ERROR]", "[DEBUG]")


def src_nomad():
    v = R.randrange(10)
    if v == 9:
        return T('{{ts}} [INFO]  client.alloc_runner.task_runner: Task event: alloc_id={{a}} task={{t}} type=Driver msg="Downloading image" image={{img}} failed=false',
                 ts=kts("iso_ms"), a=uuid(), t=R.choice(APPS), img=kimg())
    if v == 7:
        return T('{{ts}} [ERROR] client.alloc_runner.task_runner.task_hook.artifacts: failed to download artifact: alloc_id={{a}} task={{t}} artifact=s3::https://s3.amazonaws.com/{{b}}/{{app}}-{{ver}}.zip?aws_access_key_id={{k}}&aws_access_key_secret={{s}} error="AccessDenied: Access Denied status code: 403"',
                 ts=kts("iso_ms"), a=uuid(), t=R.choice(APPS), b=R.choice(APPS) + "-artifacts", app=R.choice(APPS), ver=kver(semver()), k=akia(), s=qenc(awssec()))
    if v == 8:
        return T('{{ts}} [INFO]  client.driver_mgr.docker: pulling image: driver=docker image_ref={{img}} alloc_id={{a}}', ts=kts("iso_ms"), img=kimg(), a=uuid())
    ts = kts("iso_ms")
    if v == 0:
        return T('{{ts}} [INFO]  client.alloc_runner.task_runner: Task event: alloc_id={{a}} task={{t}} type={{ty}} msg="{{m}}" failed=false',
                 ts=ts, a=uuid(), t=R.choice(APPS), ty=pick("Received", "Started", "Restarting"),
                 m=pick("Task received by client", "Task started by client", "Task restarting in 18.2s"))
    if v == 1:
        return T('{{ts}} [ERROR] client.alloc_runner.task_runner.task_hook.artifacts: failed to download artifact: alloc_id={{a}} task={{t}} artifact=https://{{u}}:{{p}}@{{h}}/releases/{{app}}-{{ver}}.tar.gz error="bad response code: 401"',
                 ts=ts, a=uuid(), t=R.choice(APPS), u=pick("deploy", "ci", "nomad"), p=pw(url=True), h=pick("artifacts.example.com", "nexus.acme.lan"),
                 app=R.choice(APPS), ver=kver(semver()))
    if v == 2:
        return T('{{ts}} [INFO]  client.driver_mgr.docker: created container: driver=docker container_id={{c}} image={{img}} image_id=sha256:{{h}}',
                 ts=ts, c=khex("container"), img=kimg(), h=khash("sha256"))
    if v == 3:
        return T('{{ts}} [INFO]  client: node registration complete: node_id={{n}} addr={{ip}}:{{p}} datacenter=dc1 version={{ver}}',
                 ts=ts, n=uuid(), ip=ip4(), p=kport(4646), ver=kver("1.7.5"))
    if v == 4:
        return T('{{ts}} [DEBUG] http: request complete: method=GET path="/v1/allocations?index={{i}}&wait=30000ms" duration={{d}}ms from={{ip}}',
                 ts=ts, i=knum(1000, 9999999), d=kfloat(0, 90), ip=ipport())
    if v == 5:
        env = {}
        for _ in range(R.randint(2, 4)):
            k, val = secret_kv("UPPER")
            env[k] = val
        k2, v2 = benign_kv("UPPER")
        env[k2] = v2
        return T('    nomad job inspect {{j}}: "Env": {{env}}', j=R.choice(APPS), env=J(env, sp=True))
    return T('{{ts}} [WARN]  client.alloc_runner.task_runner.task_hook.logmon: alloc {{s}} task {{t}} stderr: {{m}}',
             ts=ts, s=khex("alloc"), t=R.choice(APPS), m=app_msg())


def src_consul():
    v = R.randrange(7)
    if v == 6:
        return T('{{ts}} [INFO]  snapshot.agent: Using S3 backend: bucket={{b}} region=eu-west-1 access_key_id={{k}} secret_access_key={{s}} interval=1h0m0s',
                 ts=kts("iso_ms"), b=R.choice(APPS) + "-consul-snapshots", k=akia(), s=pick(awssec(), kmask()))
    ts = kts("iso_ms")
    if v == 0:
        return T('{{ts}} [ERROR] agent.client: RPC failed to server: method=Catalog.Register server={{srv}} error="rpc error making call: Permission denied: token with AccessorID \'{{acc}}\' lacks permission \'node:write\' on \\"{{node}}\\""',
                 ts=ts, srv=F(ip4(), ":", kport(8300)), acc=uuid(), node=R.choice(NODES))
    if v == 1:
        return T('{{ts}} [DEBUG] agent.http: Request finished: method=GET url=/v1/kv/{{app}}/config?token={{t}} from={{f}} latency={{l}}',
                 ts=ts, app=R.choice(APPS), t=pick(tok("consul_acl"), tok("consul_acl"), kword("<hidden>")), f=ipport(), l=K("NUMBER", "%dµs" % R.randint(40, 9000)))
    if v == 2:
        return T('{{ts}} [INFO]  agent.server.serf.lan: serf: EventMemberJoin: {{n}} {{ip}}', ts=ts, n=R.choice(NODES), ip=ip())
    if v == 3:
        return J({"@level": pick("info", "warn"), "@message": "Synced service", "@module": "agent", "@timestamp": kts("iso_off"),
                  "service": R.choice(APPS) + "-" + str(R.randint(1, 9)), "node_id": uuid(), "address": ip4(), "port": Raw(kport())})
    if v == 4:
        return T('{{ts}} [WARN]  agent: Check is now critical: check=service:{{app}} output="Get \\"http://{{ip}}:{{p}}/health?api_key={{k}}\\": dial tcp: connection refused"',
                 ts=ts, app=R.choice(APPS), ip=ip4(), p=kport(), k=pick(sec("hex32"), sec("alnum40")))
    return T('{{ts}} [INFO]  agent: Consul agent running! version={{ver}} node_name={{n}} client_addr=[{{ip}}] bind_addr={{b}} datacenter=dc1 encrypt=gossip:{{g}}',
             ts=ts, ver=kver("v1.17.3"), n=R.choice(NODES), ip=ip4(), b=ip4(), g=pick(kword("true"), kword("false")))


def src_etcd():
    v = R.randrange(6)
    ts = kts("iso_us")
    caller = lambda: K("CODE_PATH", pick("etcdserver/server.go:%d", "embed/etcd.go:%d", "auth/store.go:%d", "v3rpc/interceptor.go:%d",
                                          "etcdserver/util.go:%d", "embed/config_logging.go:%d") % R.randint(100, 2400))
    mid = lambda: K("HEX_ID", hx(16))
    if v == 0:
        return J({"level": "info", "ts": ts, "caller": caller(), "msg": "published local member to cluster through raft",
                  "local-member-id": mid(), "local-member-attributes": F("{Name:etcd-", str(R.randint(0, 2)), " ClientURLs:[https://", ip4(), ":", kport(2379), "]}"),
                  "cluster-id": mid(), "publish-timeout": "7s"})
    if v == 1:
        return J({"level": "warn", "ts": ts, "caller": caller(), "msg": "apply request took too long", "took": K("NUMBER", "%.6fms" % R.uniform(100, 900)),
                  "expected-duration": "100ms", "prefix": "read-only range ",
                  "request": F('key:"/registry/secrets/', R.choice(NAMESPACES), '/', kk8s("secret"), '" '), "response": "range_response_count:1 size:" + str(R.randint(300, 4000))})
    if v == 2:
        return J({"level": "info", "ts": ts, "caller": caller(), "msg": "starting an etcd server", "etcd-version": kver("3.5.12"),
                  "git-sha": khash("short"), "go-version": kver("go1.20.13"), "name": "etcd-" + str(R.randint(0, 2)),
                  "initial-advertise-peer-urls": [F("https://", ip4(), ":", kport(2380))],
                  "listen-client-urls": [F("https://", ip4(), ":", kport(2379))],
                  "auth-token": pick("simple", F("jwt,pub-key=/etc/etcd/jwt.pub,priv-key=/etc/etcd/jwt.key,sign-method=RS256,ttl=10m"))})
    if v == 3:
        return J({"level": "warn", "ts": ts, "caller": caller(), "msg": "rejected connection", "remote-addr": ipport(),
                  "server-name": "", "error": "remote error: tls: bad certificate"})
    if v == 4:
        return J({"level": "error", "ts": ts, "caller": caller(), "msg": "invalid password", "user-name": pick("root", "k8s-apiserver", user_name()),
                  "remote-addr": ipport(), "revision": Raw(knum(100, 9999999))})
    return J({"level": "info", "ts": ts, "caller": caller(), "msg": "added member", "cluster-id": mid(), "added-peer-id": mid(),
              "added-peer-peer-urls": [F("https://", ip4(), ":", kport(2380))], "cmdline": F("etcdctl --user root:", pw(), " member add etcd-3")})


def src_coredns():
    v = R.randrange(5)
    if v == 0:
        return T('[INFO] {{ip}} - {{id}} "{{t}} IN {{q}}. {{pr}} {{sz}} false {{b}}" NOERROR qr,rd,ra {{rs}} {{d}}s',
                 ip=ipport(), id=knum(1, 65535), t=pick("A", "AAAA", "SRV", "TXT"),
                 q=pick(R.choice(PUB_HOSTS), R.choice(APPS) + "." + R.choice(NAMESPACES) + ".svc.cluster.local", "_etcd-server-ssl._tcp.example.com"),
                 pr=pick("udp", "tcp"), sz=knum(30, 90), b=pick("512", "1232"), rs=knum(60, 900), d=K("NUMBER", "%.9f" % R.uniform(0.00002, 0.03)))
    if v == 1:
        return T('[ERROR] plugin/errors: 2 {{q}}. {{t}}: read udp {{a}}->{{b}}: i/o timeout', q=R.choice(PUB_HOSTS), t=pick("A", "AAAA"),
                 a=F(ip4(), ":", keph()), b=F(ip4(), ":", kport(53)))
    if v == 2:
        return T('CoreDNS-{{v}} linux/amd64, {{g}}, {{h}}', v=kver("1.11.1"), g=kver("go1.20.7"), h=khash("short"))
    if v == 3:
        return T('[WARNING] plugin/kubernetes: Kubernetes API connection failure: Get "https://{{ip}}:{{p}}/version": dial tcp {{ip2}}:{{p2}}: i/o timeout',
                 ip=ip4(), p=kport(443), ip2=ip4(), p2=kport(443))
    return T('[INFO] {{ip}} - {{id}} "TXT IN {{lbl}}.{{dom}}. udp {{sz}} false 512" NXDOMAIN qr,aa,rd {{rs}} {{d}}s',
             ip=ipport(), id=knum(1, 65535), lbl=pick("_dmarc", "_acme-challenge", "selector1._domainkey", "_github-challenge-acme"),
             dom=pick("example.com", "acme-corp.io", "contoso.com"), sz=knum(30, 90), rs=knum(60, 300), d=K("NUMBER", "%.6f" % R.uniform(0.0001, 0.01)))


def src_linkerd():
    v = R.randrange(6)
    if v == 5:
        return T('[{{up}}s] DEBUG ThreadId(01) outbound:proxy{addr={{a}}}:http: linkerd_trace_context: propagating traceparent=00-{{t}}-{{s}}-01 l5d-ctx-trace={{t2}} peer.addr={{p}}',
                 up=K("NUMBER", "%.6f" % R.uniform(0, 90000)), a=F(ip4(), ":", kport()), t=ktrace(), s=kspan(), t2=ktrace(), p=ipport())
    up = K("NUMBER", "%.6f" % R.uniform(0, 90000))
    if v == 0:
        return T('[{{up}}s]  INFO ThreadId(01) inbound:server{port={{p}}}: linkerd_app_core::serve: Connection closed error=connection error: Connection reset by peer (os error 104) client.addr={{c}}',
                 up=up, p=kport(), c=ipport())
    if v == 1:
        return T('[{{up}}s]  WARN ThreadId(02) outbound:proxy{addr={{a}}}:service{ns={{ns}} name={{n}} port={{p}}}:endpoint{addr={{e}}}: linkerd_reconnect: Failed to connect error=Connection refused (os error 111)',
                 up=up, a=F(ip4(), ":", kport()), ns=R.choice(NAMESPACES), n=kk8s("deploy"), p=kport(), e=F(ip4(), ":", kport()))
    if v == 2:
        app = R.choice(APPS)
        return J({"client.addr": ipport(), "client.id": F(app, ".", R.choice(NAMESPACES), ".serviceaccount.identity.linkerd.cluster.local"),
                  "host": R.choice(PUB_HOSTS), "method": pick("GET", "POST"), "processing_ns": knum(10000, 900000), "request_bytes": "",
                  "response_bytes": knum(0, 90000), "status": Raw(pick("200", "401", "302")), "timestamp": kts("iso_ns"),
                  "total_ns": knum(100000, 90000000), "trace_id": ktrace(), "uri": F("http://", app, ":8080/", pick(
                      F("callback?code=", tok("oauth_code"), "&state=", rs(16)), F("oidc/callback?id_token=", jwt()), F("reset?token=", tok("opaque")),
                      F("v1/users?email=", qenc(email())), F("api/orders/", klong()))),
                  "user_agent": ua(), "version": "HTTP/2.0"})
    if v == 3:
        return T('{{c}} {{id}} - [{{ts}}] "{{m}} http://{{h}}/{{path}} HTTP/2.0" {{st}}',
                 c=ipport(), id=F(R.choice(APPS), ".", R.choice(NAMESPACES), ".serviceaccount.identity.linkerd.cluster.local"), ts=kts("iso_ns"),
                 m=pick("GET", "POST"), h=R.choice(APPS) + ":" + str(R.choice([7000, 8080, 9090])),
                 path=pick(F("login?user=", qenc(email()), "&password=", qenc(pw())), F("books/", klong()), F("session?sid=", tok("opaque")), "healthz"),
                 st=pick("200", "401", "500"))
    return T('[{{up}}s]  INFO ThreadId(01) linkerd2_proxy: Local identity is {{a}}.{{ns}}.serviceaccount.identity.linkerd.cluster.local; pod={{p}} podIP={{ip}}',
             up=up, a=kk8s("sa"), ns=R.choice(NAMESPACES), p=kk8s("pod"), ip=ip4())


def fluent_kube(log):
    app = R.choice(APPS)
    pod = pod_name(app)
    cid = hx(64)
    return {"log": log, "stream": pick("stdout", "stderr"), "time": kts("iso_ns"),
            "kubernetes": {"pod_name": K("K8S_NAME", pod), "namespace_name": R.choice(NAMESPACES), "pod_id": uuid(),
                           "host": R.choice(NODES), "container_name": app, "docker_id": K("HEX_ID", cid),
                           "container_image": kimg()}}


def src_fluent():
    v = R.randrange(6)
    if v == 5:
        return T("[{{ts}}] [error] [output:s3:s3.0] PutObject API responded with error='InvalidAccessKeyId', message='The AWS Access Key Id you provided does not exist in our records.' access_key_id={{k}} bucket={{b}}",
                 ts=K("TIMESTAMP", tsf("slash")), k=pick(akia(), asia()), b=R.choice(APPS) + "-logs")
    if v == 4:
        rec = fluent_kube(app_focus())
        return T("[{{i}}] kube.var.log.containers.{{p}}: [[{{ts}}, {}], {{rec}}]", i=str(R.randint(0, 40)), p=pod_name() + ".log", ts=kts("epoch_f9"), rec=RB(rec))
    if v == 0:
        rec = fluent_kube(app_msg())
        return T("[{{i}}] kube.var.log.containers.{{p}}: [[{{ts}}, {}], {{rec}}]", i=str(R.randint(0, 40)), p=pod_name() + ".log",
                 ts=kts("epoch_f9"), rec=RB(rec))
    if v == 1:
        inner = J({"level": pick("error", "warn"), "msg": plain_msg_for_json(), "user": email(), "ip": ip()})
        return T("{{ts}} {{tag}}: {{rec}}", ts=K("TIMESTAMP", tsf("space") + ".%09d +0000" % R.randint(0, 999999999)),
                 tag=pick("app.api", "docker.payments", "kube.prod"), rec=J({"log": inner, "container_id": khex("container"), "container_name": "/" + R.choice(APPS), "container_image": kimg(), "source": "stdout"}))
    if v == 2:
        return T("{{ts}} app.access: {{rec}}", ts=K("TIMESTAMP", tsf("space") + " +0000"),
                 rec=J({"remote": ip(), "host": "-", "user": pick("-", F(email())), "method": pick("GET", "POST"),
                        "path": F("/", pick(F("reset_password?token=", tok("opaque")), F("api/v1/cards?number=", card()), "assets/app.js",
                                          F("oauth/callback?code=", tok("oauth_code")))),
                        "code": pick("200", "302", "401"), "size": knum(0, 90000), "referer": "-", "agent": ua()}))
    return T("[{{lvl}}] [{{ts}}] [output:es:es.0] HTTP status={{st}} URI=/_bulk, response: {{m}} http_user=elastic http_passwd={{p}}",
             lvl=pick("error", "warn"), ts=K("TIMESTAMP", tsf("slash")), st=pick("401", "403"),
             m=pick("security_exception", "unable to authenticate user"), p=pick(pw(), pw(), kmask()))


def plain_msg_for_json():
    return pick(F("password reset requested for ", email()), F("token refresh failed: ", tok("refresh")),
                F("db connect: ", conn_url()), F("card ", card(), " declined"), F("upstream 502 from ", ipport()))


def src_logstash():
    v = R.randrange(6)
    if v == 5:
        return T('[{{ts}}][ERROR][logstash.outputs.s3][main] Error validating bucket write permissions! {:message=>"The request signature we calculated does not match the signature you provided.", :access_key_id=>"{{k}}", :secret_access_key=>"{{s}}", :bucket=>"{{b}}"}',
                 ts=K("TIMESTAMP", tsf("iso_local")[:-3].replace(".", ",")), k=akia(), s=pick(awssec(), awssec(), kword("xxxxxx")), b=R.choice(APPS) + "-logs")
    if v == 4:
        return J({"@timestamp": kts("iso_ms"), "message": app_focus(), "host": {"name": R.choice(NODES), "mac": [mac("DASH"), mac("DASH")], "ip": [ip4()]},
                  "agent": {"type": "filebeat", "version": kver("8.12.2"), "id": uuid()}, "trace": {"id": ktrace()}, "container": {"id": khex("container"), "image": {"name": kimg()}}, "ecs": {"version": "8.0.0"}})
    if v == 0:
        return J({"@timestamp": kts("iso_ms"), "@metadata": {"beat": "filebeat", "type": "_doc", "version": kver("8.12.2")},
                  "log": {"offset": Raw(knum(0, 99999999)), "file": {"path": K("CODE_PATH", "/var/log/%s/app.log" % R.choice(APPS))}},
                  "message": app_msg(), "input": {"type": "filestream"},
                  "host": {"name": R.choice(NODES), "ip": [ip4(), ip6()], "mac": [mac("DASH")]},
                  "container": {"id": khex("container"), "image": {"name": kimg()}},
                  "agent": {"id": uuid(), "ephemeral_id": uuid(), "version": kver("8.12.2"), "type": "filebeat"}, "ecs": {"version": "8.0.0"}})
    if v == 1:
        return T('[{{ts}}][WARN ][logstash.outputs.elasticsearch][main] Attempted to resurrect connection to dead ES instance, but got an error {:url=>"https://elastic:{{p}}@{{h}}:{{port}}/", :exception=>LogStash::Outputs::ElasticSearch::HttpClient::Pool::BadResponseCodeError, :message=>"Got response code \'401\' contacting Elasticsearch at URL \'https://{{h}}:{{port}}/\'"}',
                 ts=K("TIMESTAMP", tsf("iso_local")[:-3].replace(".", ",")), p=pick(pw(url=True), pw(url=True), kword("xxxxxx")), h=pick("es-01", "es-02.logging.svc"), port=kport(9200))
    if v == 2:
        return J({"@timestamp": kts("iso_ms"), "@version": "1", "message": app_msg(), "host": {"hostname": R.choice(NODES)},
                  "event": {"original": "", "dataset": R.choice(APPS) + ".log"}, "tags": ["beats_input_codec_plain_applied"],
                  "fields": {"env": pick("prod", "staging"), "trace.id": ktrace()}, "source": {"ip": ip()}, "container": {"image": {"name": kimg()}}})
    return T('[{{ts}}][INFO ][logstash.javapipeline][main] Pipeline started {"pipeline.id"=>"main"} jdbc_connection_string=>"jdbc:postgresql://{{ip}}:{{p}}/{{db}}", jdbc_user=>"{{u}}", jdbc_password=>"{{pw}}"',
             ts=K("TIMESTAMP", tsf("iso_local")[:-3].replace(".", ",")), ip=ip4(), p=kport(5432), db=R.choice(APPS), u="logstash", pw=pick(pw(), kmask()))


def src_loki():
    v = R.randrange(7)
    if v == 6:
        return T('ts={{ts}} level=warn msg="s3 request failed" component=chunk-store bucket={{b}} access_key_id={{k}} err="SignatureDoesNotMatch" traceID={{t}}',
                 ts=kts("iso_ms"), b=R.choice(APPS) + "-chunks", k=pick(akia(), asia()), t=ktrace(16))
    if v == 0:
        return T('level=info ts={{ts}} caller={{cp}} component=frontend org_id={{org}} traceID={{t}} latency=fast query_type=filter query={{q}} length=1h0m0s step=15s duration={{d}} status=200 throughput={{tp}} total_bytes={{tb}}',
                 ts=kts("iso_us"), cp=K("CODE_PATH", "metrics.go:%d" % R.randint(100, 220)), org=pick("fake", "tenant-" + R.choice(APPS)), t=ktrace(16),
                 q=lf(F('{app="', R.choice(APPS), '"} |= "', pick("password", "token", "Authorization", "secret"), '"')),
                 d=K("NUMBER", "%.6fms" % R.uniform(1, 900)), tp=K("NUMBER", "%.1fMB" % R.uniform(1, 90)), tb=K("NUMBER", "%.0fkB" % R.uniform(1, 9000)))
    if v == 1:
        return T('ts={{ts}} level=error msg="db connect failed" dsn={{d}} err="dial tcp: i/o timeout" app={{app}}',
                 ts=kts("iso_ms"), d=lf(conn_url()), app=R.choice(APPS))
    if v == 2:
        return T('ts={{ts}} level=info msg=audit type=response auth_client_token={{h}} auth_accessor={{a}} request_path={{p}} remote_address={{ip}}',
                 ts=kts("iso_ms"), h=khex("hmac"), a=khex("hmac"), p=pick("secret/data/" + R.choice(APPS), "auth/token/lookup-self", "database/creds/readonly"),
                 ip=ip())
    if v == 3:
        return T('logger=context userId={{u}} orgId=1 uname={{e}} t={{ts}} level=info msg="Request Completed" method=POST path=/api/{{p}} status={{st}} remote_addr={{ip}} time_ms={{tm}} duration={{d}} size={{sz}} referer= handler=/api/{{p}}',
                 u=knum(1, 900), e=email(), ts=kts("iso_off"), p=pick("login", "datasources", "auth/keys", "serviceaccounts"), st=pick("200", "401"),
                 ip=ip(), tm=knum(0, 900), d=K("NUMBER", "%.6fms" % R.uniform(0.1, 900)), sz=knum(10, 9000))
    if v == 4:
        return T('ts={{ts}} level=warn caller={{cp}} msg="error sending batch, will retry" status=401 tenant={{t}} error="server returned HTTP status 401 Unauthorized (401): invalid token {{tk}}"',
                 ts=kts("iso_ms"), cp=K("CODE_PATH", "client.go:%d" % R.randint(200, 460)), t=R.choice(APPS), tk=pick(tok("grafana"), jwt(), tok("opaque")))
    k, val = secret_kv(pick("snake", "dot"))
    k2, v2 = benign_kv("snake")
    return T('ts={{ts}} level=debug msg="config loaded" {{k}}={{v}} {{k2}}={{v2}} listen={{ip}}:{{p}}',
             ts=kts("iso_ms"), k=k, v=lf(val), k2=k2, v2=lf(v2), ip=ip4(), p=kport(3100))


def src_otel():
    v = R.randrange(9)
    if v == 7:
        return otel_attr()
    if v == 8:
        return T('     -> {{k}}: Str({{v}})', k=pick("http.request.header.traceparent", "http.response.header.traceresponse"), v=F("00-", ktrace(), "-", kspan(), "-01"))
    if v == 0:
        return T('{{ts}}\terror\t{{cp}}\tExporting failed. The error is not retryable. Dropping data.\t{{j}}',
                 ts=kts("iso_ms"), cp=K("CODE_PATH", "exporterhelper/queued_retry.go:%d" % R.randint(100, 400)),
                 j=J({"kind": "exporter", "data_type": pick("traces", "logs", "metrics"), "name": pick("otlphttp", "otlp/honeycomb", "datadog"),
                      "error": F("Permanent error: rpc error: code = Unauthenticated desc = invalid API key ", pick(sec("hex32"), sec("alnum32"))),
                      "dropped_items": Raw(knum(1, 900))}, sp=True))
    if v == 1:
        return otel_attr()
    if v == 2:
        return T('Trace ID       : {{t}}', t=ktrace())
    if v == 3:
        return T('{{ts}}\tinfo\tservice@v{{v}}/telemetry.go:{{l}}\tStarting otelcol-contrib...\t{{j}}', ts=kts("iso_ms"), v=kver("0.96.0"),
                 l=str(R.randint(50, 90)), j=J({"Version": kver("0.96.0"), "NumCPU": Raw(knum(1, 64))}, sp=True))
    if v == 4:
        return T('{{ts}}\twarn\tinternal/warning.go:{{l}}\tUsing the 0.0.0.0 address exposes this server to every network interface\t{{j}}',
                 ts=kts("iso_ms"), l=str(R.randint(20, 60)), j=J({"kind": "receiver", "name": "otlp", "data_type": "traces",
                                                               "headers": {"x-honeycomb-team": sec("alnum32"), "authorization": F("Bearer ", bearer_value())}}, sp=True))
    if v == 5:
        return T('Span #{{n}}  Trace ID: {{t}}  Parent ID: {{p}}  ID: {{s}}  Name: {{nm}}  Start time: {{ts}}',
                 n=str(R.randint(0, 40)), t=ktrace(), p=kspan(), s=kspan(), nm=pick("POST /login", "SELECT users", "HTTP GET"), ts=kts("space_ms"))
    return T('     -> {{k}}: Str({{v}})', k="log.body", v=app_msg())


def otel_attr():
    c = R.randrange(8)
    if chance(0.2):
        return T('     -> {{k}}: Str({{v}})', k=pick("container.image.name", "k8s.container.image"), v=kimg())
    k, v = [("http.request.header.authorization", lambda: F("Bearer ", bearer_value())),
            ("http.request.header.x-api-key", lambda: pick(sec("hex32"), vtok())),
            ("db.connection_string", ado_conn), ("enduser.id", email), ("net.peer.ip", ip),
            ("http.url", lambda: F("https://", R.choice(PUB_HOSTS), "/v1/export?access_token=", tok("opaque"))),
            ("user.email", email), ("aws.access_key_id", akia)][c]
    if chance(0.25):
        return T('     -> {{k}}: Int({{v}})', k=pick("order.id", "app.user.id", "messaging.kafka.message.offset"), v=klong())
    return T('     -> {{k}}: Str({{v}})', k=k, v=v())


def src_gateway():
    v = R.randrange(7)
    if v == 5:
        return J({"request": {"method": "POST", "uri": "/v1/payments", "headers": {"authorization": F("Bearer ", jwt()), "x-b3-traceid": ktrace(), "x-b3-spanid": kspan()},
                              "body": {"card": {"number": card(), "exp": "%02d/%02d" % (R.randint(1, 12), R.randint(25, 31))}, "email": email(), "amount": Raw(knum(100, 99999))}},
                  "response": {"status": Raw(pick("201", "402")), "size": Raw(knum(100, 9000))}, "client_ip": ip(), "started_at": Raw(kts("epoch_ms"))})
    if v == 6:
        return T('<14>1 {{ts}} apigee-mp-{{n}} - - - proxy={{p}} x-amzn-trace-id=Root={{x}} authorization="Bearer {{j}}" developer={{e}} target={{t}} status={{st}}',
                 ts=kts("iso_ms"), n=str(R.randint(1, 4)), p=R.choice(APPS) + "-v2", x=kxray(), j=jwt(), e=email(), t=F(ip4(), ":", kport(8443)), st=pick("200", "401"))
    if v <= 1:
        app = R.choice(APPS)
        key = pick(sec("hex32"), sec("alnum32"))
        return J({"request": {"method": pick("GET", "POST"), "uri": F("/v1/", app, "?apikey=", key), "url": F("https://", R.choice(PUB_HOSTS), ":8443/v1/", app),
                              "size": Raw(knum(200, 4000)), "querystring": {"apikey": key},
                              "headers": {"host": R.choice(PUB_HOSTS), "authorization": pick(F("Bearer ", bearer_value()), F("Basic ", basic())),
                                          "user-agent": ua(), "x-request-id": uuid()}},
                  "upstream_uri": "/" + app, "response": {"status": Raw(pick("200", "201", "401", "429")), "size": Raw(knum(100, 9000))},
                  "route": {"id": uuid(), "name": app + "-route"}, "consumer": {"username": pick(R.choice(APPS) + "-mobile", F(email())), "id": uuid()},
                  "latencies": {"proxy": Raw(knum(1, 400)), "kong": Raw(knum(0, 20)), "request": Raw(knum(1, 500))},
                  "client_ip": ip(), "started_at": Raw(kts("epoch_ms"))})
    if v == 2:
        return T('{{ts}} [error] {{pid}}#0: *{{c}} [lua] {{cp}}: authenticate(): invalid key-auth credential, client: {{ip}}, server: kong, request: "GET /v1/{{app}}?apikey={{k}} HTTP/1.1", host: "{{h}}"',
                 ts=K("TIMESTAMP", tsf("slash")), pid=knum(1, 9999), c=knum(1, 999999), cp=K("CODE_PATH", "handler.lua:%d" % R.randint(50, 300)), ip=ip(), app=R.choice(APPS),
                 k=pick(sec("hex32"), sec("alnum32")), h=R.choice(PUB_HOSTS))
    if v == 3:
        return T('<14>1 {{ts}} apigee-mp-{{n}} - - - {{j}}', ts=kts("iso_ms"), n=str(R.randint(1, 4)),
                 j=J({"organization": "acme", "environment": pick("prod", "test"), "apiProxy": R.choice(APPS) + "-v1", "clientId": sec("consumer_key"),
                      "clientIp": ip(), "requestUri": F("/", R.choice(APPS), "/v1/items?access_token=", tok("opaque")), "statusCode": pick("200", "401"),
                      "developerEmail": email(), "messageId": F("rrt-", khex("short"), "-c-gce-", knum(1000, 99999), "-", knum(1, 99)),
                      "responseTime": knum(1, 900)}))
    return T('<14>1 {{ts}} apigee-mp-{{n}} - - - proxy={{p}} client_id={{cid}} client_secret={{cs}} grant_type={{g}} status=401 target={{t}}',
             ts=kts("iso_ms"), n=str(R.randint(1, 4)), p=R.choice(APPS) + "-oauth", cid=sec("consumer_key"), cs=sec("alnum32"),
             g=kword("client_credentials"), t=F(ip4(), ":", kport(8443)))


def src_varnish():
    v = R.randrange(4)
    path = pick(F("/reset?token=", tok("opaque")), F("/checkout/confirm?cc=", qenc(card())), F("/account/verify?email=", qenc(email()), "&code=", tok("oauth_code")),
                F("/static/app.", khash("md5"), ".js"), F("/api/v2/orders/", klong()), "/", F("/download?sig=", tok("azure_sas")))
    head = F(ip(), " - ", pick("-", user_name()), " [", kts("clf"), '] "', pick("GET", "POST"), " http://", R.choice(PUB_HOSTS), path, ' HTTP/1.1" ',
             pick("200", "301", "404", "403"), " ", knum(0, 99999))
    if v == 0:
        return F(head, ' "-" "', ua(), '"')
    if v == 1:
        return F(head, ' "-" "', ua(), '" ', pick("hit", "miss", "pass"), " ", K("NUMBER", "%.6f" % R.uniform(0, 3)))
    if v == 2:
        return F(head, ' cookie="', pick(F("sessionid=", tok("django_session")), F("PHPSESSID=", tok("phpsessid")), F("_app_session=", tok("rails_session"))), '"')
    return F(head, ' auth="', pick(F("Basic ", basic()), F("Bearer ", bearer_value())), '" xid=', knum(1, 99999999))


def src_squid():
    v = R.randrange(4)
    ts = kts("epoch_f")
    e = str(R.randint(0, 90000))
    el = F(" " * (6 - len(e)), K("NUMBER", e))
    if v == 0:
        return T('{{ts}} {{el}} {{ip}} TCP_TUNNEL/200 {{b}} CONNECT {{h}}:{{p}} {{u}} HIER_DIRECT/{{d}} -',
                 ts=ts, el=el, ip=ip4(), b=knum(100, 9999999), h=pick("api.github.com", "registry.npmjs.org", "s3.amazonaws.com", R.choice(PUB_HOSTS)),
                 p=kport(443), u=pick(email(), user_name(), "-"), d=ip4())
    if v == 1:
        return T('{{ts}} {{el}} {{ip}} TCP_MISS/200 {{b}} GET http://{{h}}/{{path}} {{u}} HIER_DIRECT/{{d}} {{ct}}',
                 ts=ts, el=el, ip=ip4(), b=knum(100, 999999), h=pick("updates.example.com", "feeds.example.net", R.choice(PUB_HOSTS)),
                 path=pick(F("feed?key=", sec("hex32")), F("rss?user=", qenc(email()), "&auth=", tok("opaque")), F("pkg/", kver(), "/index.json"),
                           F("login?user=admin&password=", qenc(pw()))),
                 u=pick("-", user_name()), d=ip4(), ct=pick("text/html", "application/json", "-"))
    if v == 2:
        return T('{{ts}} {{el}} {{ip}} TCP_DENIED/407 {{b}} GET http://{{u}}:{{p}}@{{h}}/ - HIER_NONE/- text/html',
                 ts=ts, el=el, ip=ip4(), b=knum(3000, 4200), u=pick("ftpuser", "legacy", "backup"), p=pw(url=True), h=pick("legacy.example.net", "ftp.acme.lan"))
    return T('{{ts}} kid1| WARNING: Forwarding loop detected for: GET /{{p}} HTTP/1.1 Host: {{ip}}:{{port}} Via: 1.1 proxy-{{n}} (squid/{{v}}) X-Forwarded-For: {{x}}',
             ts=K("TIMESTAMP", tsf("slash")), p=pick("", "index.html"), ip=ip4(), port=kport(3128), n=str(R.randint(1, 4)), v=kver("6.6"), x=ip4())


def src_tomcat():
    v = R.randrange(9)
    if v == 6:
        return T("[{{n}}]: ObjectId: {{o}} Criticality={{c}}", n=str(R.randint(1, 9)), o=koid(pick("2.5.29.17", "2.5.29.37", "2.5.29.15", "2.5.29.19", "1.3.6.1.5.5.7.1.1", "2.5.29.35")), c=pick("false", "true"))
    if v == 7:
        return T("ExtendedKeyUsages [ {{a}} {{b}} ] SubjectAlternativeName [ DNSName: {{h}} IPAddress: {{ip}} ]", a=koid("1.3.6.1.5.5.7.3.1"), b=koid("1.3.6.1.5.5.7.3.2"), h=R.choice(PUB_HOSTS), ip=ip4())
    if v == 8:
        return T("{{ts}} INFO [main] org.apache.catalina.startup.VersionLoggerListener.log Command line argument: -Daws.accessKeyId={{k}} -Daws.secretKey={{s}}", ts=kts("tomcat"), k=akia(), s=awssec())
    ts = kts("tomcat")
    if v == 0:
        arg = pick(F("-Djavax.net.ssl.keyStorePassword=", pw()), F("-Djavax.net.ssl.trustStorePassword=", pw()),
                   F("-Dspring.datasource.password=", pw()), F("-Dcom.acme.payments.apiKey=", pick(sec("hex32"), tok("stripe"))),
                   F("-Dspring.datasource.url=jdbc:postgresql://", ip4(), ":", kport(5432), "/", R.choice(APPS)),
                   F("-Djava.util.logging.config.file=", K("CODE_PATH", "/usr/local/tomcat/conf/logging.properties")),
                   F("-Daws.accessKeyId=", akia()), F("-Daws.secretKey=", awssec()), F("-Dapp.jwt.secret=", sec("jwt_hmac")),
                   F("-Djavax.net.ssl.keyStorePassword=", kplace()))
        return T("{{ts}} INFO [main] org.apache.catalina.startup.VersionLoggerListener.log Command line argument: {{a}}", ts=ts, a=arg)
    if v == 1:
        return T("{{ts}} INFO [main] org.apache.catalina.startup.VersionLoggerListener.log Server version name:   Apache Tomcat/{{v}}", ts=ts, v=kver(pick("9.0.86", "10.1.19", "8.5.99")))
    if v == 2:
        return T('{{ip}} - {{u}} [{{t}}] "{{m}} /{{app}}/{{p}} HTTP/1.1" {{st}} {{b}} {{d}} {{s}}',
                 ip=ip(), u=pick("-", user_name()), t=kts("clf"), m=pick("GET", "POST"), app=R.choice(APPS),
                 p=pick(F("login;jsessionid=", tok("jsessionid")), F("j_security_check?j_username=", qenc(email()), "&j_password=", qenc(pw())),
                        F("pay?cc=", card(), "&amount=", knum(100, 99999)), F("api/orders/", klong()), "index.jsp", F("sso?ticket=ST-", knum(1, 99999), "-", tok("opaque"))),
                 st=pick("200", "302", "401"), b=pick("-", knum(100, 99999)), d=knum(0, 900), s=tok("jsessionid"))
    if v == 3:
        return T("{{ts}} SEVERE [http-nio-8080-exec-{{n}}] org.apache.catalina.core.StandardWrapperValve.invoke Servlet.service() for servlet [dispatcherServlet] threw exception: java.sql.SQLException: Access denied for user '{{u}}'@'{{ip}}' (using password: YES) [url=jdbc:mysql://{{h}}:{{p}}/{{db}}?user={{u}}&password={{pw}}]",
                 ts=ts, n=str(R.randint(1, 40)), u=pick("app", "svc_orders"), ip=ip4(), h=R.choice(INT_HOSTS), p=kport(3306), db=R.choice(APPS), pw=qenc(pw()))
    if v == 4:
        return T("{{ts}} WARNING [http-nio-8443-exec-{{n}}] org.apache.catalina.realm.LockOutRealm.filterLockedAccounts An attempt was made to authenticate the locked user [{{e}}] from {{ip}}",
                 ts=ts, n=str(R.randint(1, 40)), e=email(), ip=ip())
    return T("\tat {{c}}", c=kcode("java"))


def iis_plus(x):
    return fmap(x, lambda t: t.replace(" ", "+"))


def src_iis():
    v = R.randrange(9)
    if v == 2:
        return T("#Software: Microsoft Internet Information Services {{v}}", v=kver("10.0"))
    if v == 3:
        return T("#Date: {{t}}", t=kts("space"))
    q = pick(F("access_token=", tok("opaque")), F("cardNumber=", qenc(card()), "&exp=1227"), F("replaceCurrent=1&url=", qenc(F("https://", R.choice(PUB_HOSTS), "/owa/"))),
             F("code=", tok("oauth_code"), "&state=", rs(12)), "-", F("id=", klong()), F("apikey=", sec("hex32")),
             F("email=", qenc(email()), "&pwd=", qenc(pw())))
    user = pick("-", F("CONTOSO\\", user_name()), email())
    return T("{{d}} {{sip}} {{m}} {{stem}} {{q}} {{p}} {{u}} {{cip}} {{ua}} {{ref}} {{st}} 0 0 {{tt}}",
             d=kts("space"), sip=ip4(), m=pick("GET", "POST"), stem=pick("/owa/auth/logon.aspx", "/api/login", "/ecp/default.aspx", "/signin-oidc", "/Account/Login"),
             q=q, p=kport(pick(443, 80)), u=user, cip=ip(), ua=iis_plus(ua()), ref="-", st=pick("200", "302", "401"), tt=knum(0, 9000))


def src_aspnet():
    v = R.randrange(9)
    if v == 7:
        return T("warn: {{app}}.Api.Controllers.CheckoutController[0] Card {{c}} declined for {{e}} (TraceId {{t}}, SpanId {{s}})", app=R.choice(APPS).title(), c=card(), e=email(), t=ktrace(), s=kspan())
    if v == 8:
        return T("info: Amazon.Runtime.Credentials[0] Resolved credentials from environment: AccessKeyId={{k}} SecretAccessKey={{s}} SessionToken={{t}}", k=asia(), s=awssec(), t=tok("aws_session"))
    if v == 0:
        return T("info: Microsoft.AspNetCore.Hosting.Diagnostics[1] Request starting HTTP/1.1 POST http://{{h}}/connect/token?client_id={{c}}&client_secret={{s}} - application/x-www-form-urlencoded {{n}}",
                 h=R.choice(PUB_HOSTS), c=R.choice(APPS), s=sec(pick("azure", "alnum32")), n=knum(40, 900))
    if v == 1:
        return T("fail: Microsoft.EntityFrameworkCore.Database.Connection[20004] An error occurred using the connection to database '{{db}}' on server 'tcp:{{h}},1433'. ConnectionString: {{c}}",
                 db=R.choice(APPS).title(), h=R.choice(INT_HOSTS), c=ado_conn())
    if v == 2:
        return J({"EventId": Raw(knum(1, 99)), "LogLevel": "Information", "Category": "System.Net.Http.HttpClient.Default.LogicalHandler",
                  "Message": F("Start processing HTTP request POST https://", R.choice(PUB_HOSTS), "/v1/charges"),
                  "State": {"Message": "Request Headers", "Authorization": F("Bearer ", bearer_value()), "X-Correlation-ID": uuid(upper=True),
                            "traceparent": F("00-", ktrace(), "-", kspan(), "-01")}})
    if v == 3:
        return T("dbug: System.Net.Http.HttpClient.{{c}}.ClientHandler[102] Request Headers: Authorization: {{a}}; X-Correlation-ID: {{g}}",
                 c=R.choice(APPS).title() + "Client", a=pick(F("Basic ", basic()), F("Bearer ", bearer_value()), F("SharedKey acct:", sec("b64_32"))), g=uuid(upper=True))
    if v == 4:
        return T("info: Microsoft.Hosting.Lifetime[14] Now listening on: http://[::]:{{p}}", p=kport(pick(8080, 5000, 80)))
    if v == 5:
        return T("warn: Microsoft.AspNetCore.DataProtection.KeyManagement.XmlKeyManager[35] No XML encryptor configured. Key {{{g}}} may be persisted to storage in unencrypted form.",
                 g=uuid())
    return T("info: {{app}}.Controllers.AccountController[0] User {{e}} signed in from {{ip}} (session {{s}})",
             app=R.choice(APPS).title(), e=email(), ip=ip(), s=tok("opaque"))


def src_django():
    v = R.randrange(7)
    if v == 6:
        return T("POST: <QueryDict: {{d}}>", d=PY({"email": [email()], "card_number": [card()], "exp": ["%02d/%02d" % (R.randint(1, 12), R.randint(25, 31))], "plan": ["pro"]}))
    if v == 0:
        return T('[{{t}}] "{{m}} {{p}} HTTP/1.1" {{st}} {{b}}', t=kts("django"), m=pick("GET", "POST"),
                 p=pick("/accounts/login/?next=/admin/", F("/api/v1/users/?email=", qenc(email())), F("/password-reset/confirm/", rs(3, AL), "/", tok("opaque"), "/"),
                        F("/oauth/complete/google/?code=", tok("oauth_code")), F("/orders/", klong(), "/")),
                 st=pick("200", "302", "403"), b=knum(0, 99999))
    if v == 1:
        return T("POST: <QueryDict: {{d}}>", d=PY({"username": [pick(F(user_name()), email())], "password": [pw()], "remember": ["on"]}))
    if v == 2:
        return T("COOKIES: {{d}}", d=PY({"sessionid": tok("django_session"), "django_language": pick("en", "de", "pt-br")}))
    if v == 3:
        return T("DATABASES = {{d}}", d=PY({"default": {"ENGINE": "django.db.backends.postgresql", "NAME": R.choice(APPS), "USER": "app",
                                                        "PASSWORD": pick(pw(), pw(), kplace()), "HOST": ip4(), "PORT": kport(5432)}}))
    if v == 4:
        return T("SECRET_KEY = '{{k}}'", k=sec("django"))
    h = ip4()
    return T("WARNING {{ts}} exception {{pid}} {{tid}} Invalid HTTP_HOST header: '{{h}}:{{p}}'. You may need to add '{{h2}}' to ALLOWED_HOSTS.",
             ts=kts("py"), pid=knum(1, 999), tid=klong(15), h=h, p=kport(8000), h2=P("IP", h.value))


def src_rails():
    v = R.randrange(7)
    if v == 6:
        return F("I, [", kts("iso_local"), " #", knum(1, 99999), "]  INFO -- : [", uuid(), "] Parameters: ",
                 RB({"code": tok("oauth_code"), "state": rs(32, HEXD), "id_token": jwt(), "session_state": uuid(), "provider": "openid_connect"}))
    rid = uuid()
    head = F("I, [", kts("iso_local"), " #", knum(1, 99999), "]  INFO -- : [", rid, "] ")
    if v == 0:
        return F(head, 'Started ', pick("POST", "GET"), ' "', pick("/users/sign_in", "/api/v1/sessions", "/admin/login", F("/invitations/accept?invitation_token=", tok("opaque"))),
                 '" for ', ip(), " at ", kts("rails"))
    if v == 1:
        return F(head, "Parameters: ", RB({"authenticity_token": kword("[FILTERED]"),
                                           "user": {"email": email(), "password": pick(kword("[FILTERED]"), pw()), "remember_me": "0"},
                                           "commit": "Log in"}))
    if v == 2:
        return F(head, "Completed ", pick("302 Found", "200 OK", "401 Unauthorized"), " in ", knum(1, 900), "ms (Views: ", kfloat(0, 90, 1),
                 "ms | ActiveRecord: ", kfloat(0, 90, 1), "ms | Allocations: ", knum(100, 99999), ")")
    if v == 3:
        return F("E, [", kts("iso_local"), " #", knum(1, 99999), '] ERROR -- : [', rid, '] ActiveRecord::ConnectionNotEstablished (connection to server at "',
                 ip4(), '", port ', kport(5432), ' failed: FATAL:  password authentication failed for user "', pick("app", "rails"), '"):')
    if v == 4:
        return F("E, [", kts("iso_local"), " #", knum(1, 99999), '] ERROR -- : [', rid, '] Redis::CannotConnectError (Error connecting to Redis on ',
                 conn_url("redis"), " (Redis::TimeoutError)):")
    return F(head, "Parameters: ", RB({"payment": {"card_number": card(), "email": email(), "plan": pick("pro", "team")},
                                       "api_key": pick(sec("hex32"), tok("stripe")), "id": klong()}))


def src_laravel():
    v = R.randrange(6)
    if v == 5:
        return T("[{{ts}}] production.ERROR: Payment failed {{j}}", ts=K("TIMESTAMP", tsf("space")),
                 j=J({"card_number": card(), "email": email(), "gateway": pick("braintree", "stripe", "adyen"), "order": Raw(klong()), "trace": ktrace()}))
    env = pick("production", "local", "staging")
    ts = K("TIMESTAMP", tsf("space"))
    if v == 0:
        return T("[{{ts}}] {{env}}.ERROR: SQLSTATE[HY000] [1045] Access denied for user '{{u}}'@'{{ip}}' (using password: YES) (Connection: mysql, SQL: select * from `users` where `email` = {{e}} limit 1) {{ctx}}",
                 ts=ts, env=env, u=pick("forge", "laravel"), ip=ip4(), e=email(),
                 ctx=J({"userId": Raw(pick(knum(1, 99999), klong(18))), "requestId": Raw(klong()), "exception": F("[object] (Illuminate\\Database\\QueryException(code: 1045): SQLSTATE[HY000] at ", kcode("php"), ")")}))
    if v == 1:
        return T("[{{ts}}] {{env}}.INFO: Stripe webhook received {{j}}", ts=ts, env=env,
                 j=J({"type": pick("charge.succeeded", "invoice.paid", "customer.subscription.updated"), "id": "evt_" + rs(24),
                      "signature": F("t=", kts("epoch"), ",v1=", K("HEX_ID", hx(64))), "endpoint_secret": tok("stripe_whsec")}))
    if v == 2:
        return T('[{{ts}}] {{env}}.ERROR: Expected response code "250" but got code "535", with message "535 5.7.8 Username and Password not accepted." {{j}}',
                 ts=ts, env=env, j=J({"exception": F("[object] (Symfony\\Component\\Mailer\\Exception\\TransportException(code: 535): at ", kcode("php"), ")"),
                                      "mailer": {"host": "smtp.gmail.com", "port": Raw(kport(587)), "username": email(), "password": pw()}}))
    if v == 3:
        k, val = secret_kv("UPPER")
        return T("APP_KEY=base64:{{k}} APP_ENV={{env}} {{k2}}={{v2}}", k=sec("appkey"), env=env, k2=k, v2=val)
    return T("[{{ts}}] {{env}}.WARNING: Failed login attempt {{j}}", ts=ts, env=env,
             j=J({"email": email(), "ip": ip(), "cookie": F("laravel_session=", tok("laravel_session")), "user_agent": ua()}))


def src_jobs():
    v = R.randrange(8)
    if v == 7:
        return T("[{{ts}}: WARNING/ForkPoolWorker-{{n}}] Task billing.tasks.retry_charge[{{u}}] retry: Retry in 60s: CardError('declined') args={{a}}",
                 ts=kts("py"), n=str(R.randint(1, 8)), u=uuid(), a=PY((card(), email())))
    if v == 6:
        return T("{{ts}} pid={{pid}} tid={{tid}} class=ChargeJob jid={{j}} INFO: start args={{a}}", ts=kts("iso_ms"), pid=knum(1, 99999), tid=rs(4, LOW), j=khex("objectid"),
                 a=J([card(), email(), jwt()]))
    ts = kts("py")
    task = "%s.tasks.%s" % (R.choice(APPS), pick("send_welcome", "sync_crm", "charge_card", "export_csv", "rotate_keys"))
    if v == 0:
        return T("[{{ts}}: INFO/MainProcess] Task {{t}}[{{u}}] received", ts=ts, t=task, u=uuid())
    if v == 1:
        return T("[{{ts}}: ERROR/ForkPoolWorker-{{n}}] Task {{t}}[{{u}}] raised unexpected: AuthenticationError('invalid credentials') args={{a}} kwargs={{k}}",
                 ts=ts, n=str(R.randint(1, 8)), t=task, u=uuid(), a=PY((email(), pick(card(), klong()))),
                 k=PY({"api_key": pick(tok("stripe"), sec("hex32")), "retry": Raw("True")}))
    if v == 2:
        return T("- ** ---------- .> transport:   amqp://{{u}}:{{p}}@{{h}}:{{port}}//", u=pick("guest", "celery"), p=kword("**"), h=pick("rabbitmq", "mq-01.internal"), port=kport(5672))
    if v == 3:
        return T("- ** ---------- .> results:     {{u}}", u=conn_url(pick("redis", "rediss")))
    if v == 4:
        return T("{{ts}} pid={{pid}} tid={{tid}} class={{c}} jid={{j}} elapsed={{e}} INFO: done", ts=kts("iso_ms"), pid=knum(1, 99999),
                 tid=rs(4, LOW), c=pick("WelcomeMailer", "StripeSyncJob", "ExportJob"), j=khex("objectid"), e=kfloat(0, 90, 3))
    return T("{{ts}} pid={{pid}} tid={{tid}} order={{o}} WARN: {{j}}", ts=kts("iso_ms"), pid=knum(1, 99999), tid=rs(4, LOW), o=klong(),
             j=J({"context": "Job raised exception", "job": {"class": pick("StripeSyncJob", "CrmPushJob", "SmsJob"),
                                                              "args": [pick(tok("stripe"), tok("sendgrid"), sec("hex32")), email()],
                                                              "retry": True, "queue": "default", "jid": khex("objectid"),
                                                              "created_at": Raw(kts("epoch_f")), "enqueued_at": Raw(kts("epoch_f"))}}))


def src_airflow():
    v = R.randrange(8)
    if v == 7:
        return T("[{{ts}}] {{{cp}}} INFO - Pod {{p}} has phase Running; image={{img}} node={{n}}", ts=kts("airflow"), cp=K("CODE_PATH", "pod_manager.py:%d" % R.randint(100, 500)),
                 p=kk8s("pod", "airflow-task"), img=kimg(), n=R.choice(NODES))
    if v == 6:
        return T("[{{ts}}] {{{cp}}} INFO - Credentials retrieved from login: aws_access_key_id={{k}} aws_secret_access_key={{s}} region_name=eu-west-1",
                 ts=kts("airflow"), cp=K("CODE_PATH", "base_aws.py:%d" % R.randint(100, 600)), k=akia(), s=pick(kword("***"), awssec()))
    ts = kts("airflow")
    if v == 0:
        return T("[{{ts}}] {{{cp}}} INFO - Dependencies all met for dep_context=non-requeueable deps ti=<TaskInstance: {{d}}.extract scheduled__{{r}} [queued]>",
                 cp=K("CODE_PATH", "taskinstance.py:1157"), ts=ts, d=R.choice(APPS) + "_daily", r=K("TIMESTAMP", tsf("iso")[:10] + "T00:00:00+00:00"))
    if v == 1:
        return T("[{{ts}}] {{{cp}}} INFO - Using connection ID '{{c}}' for task execution.", cp=K("CODE_PATH", "base.py:83"), ts=ts, c=pick("postgres_dw", "aws_default", "slack_alerts"))
    if v == 2:
        return T("[{{ts}}] {{{cp}}} INFO - Running command: ['/usr/bin/bash', '-c', 'PGPASSWORD={{p}} psql -h {{ip}} -U etl -d dw -f /opt/airflow/sql/load.sql']",
                 cp=K("CODE_PATH", "subprocess.py:93"), ts=ts, p=pick(pw(), kword("***")), ip=ip4())
    if v == 3:
        return T("[{{ts}}] {{{cp}}} INFO - conn uri: {{u}}", cp=K("CODE_PATH", "logging_mixin.py:188"), ts=ts, u=pick(conn_url("postgresql"), F("postgresql://etl:", kword("***"), "@", ip4(), ":", kport(5432), "/dw")))
    if v == 4:
        return T("[{{ts}}] {{{cp}}} INFO - Started process {{p}} to run task; job_id={{j}} run_id=manual__{{r}}",
                 cp=K("CODE_PATH", "standard_task_runner.py:60"), ts=ts, p=knum(100, 99999), j=knum(1, 999999), r=kts("iso_off"))
    return T("AIRFLOW_CONN_{{n}}=aws://{{a}}:{{s}}@/?region_name=eu-west-1 AIRFLOW__CORE__FERNET_KEY={{f}}",
             n=pick("S3_RAW", "AWS_DEFAULT"), a=akia(), s=qenc(awssec()), f=sec("fernet"))


def src_spark():
    v = R.randrange(7)
    if v == 6:
        return T("+ spark-submit --master yarn --conf spark.hadoop.fs.s3a.access.key={{k}} --conf spark.hadoop.fs.s3a.secret.key={{s}} --conf spark.executor.memory=4g s3a://{{b}}/jobs/{{app}}-{{v}}.jar",
                 k=akia(), s=awssec(), b=R.choice(APPS) + "-jobs", app=R.choice(APPS), v=kver())
    ts = K("TIMESTAMP", tsf("spark"))
    if v == 0:
        return T("{{ts}} INFO SparkContext: Running Spark version {{v}}", ts=ts, v=kver(pick("3.5.1", "3.4.2", "3.3.4")))
    if v == 1:
        return T("{{ts}} INFO Utils: Successfully started service 'sparkDriver' on port {{p}}.", ts=ts, p=keph())
    if v == 2:
        return T("{{ts}} INFO SparkContext: Spark configuration: spark.app.name={{a}} spark.kubernetes.container.image={{img}} spark.hadoop.fs.s3a.access.key={{k}} spark.hadoop.fs.s3a.secret.key={{s}} spark.driver.host={{ip}}",
                 ts=ts, a=R.choice(APPS) + "-etl", img=kimg(), k=akia(), s=kword("*********(redacted)"), ip=ip4())
    if v == 3:
        return T("{{ts}} INFO Client: command: {{jh}}/bin/java -server -Xmx2048m -Dspark.hadoop.fs.s3a.secret.key={{s}} -Dspark.hadoop.fs.s3a.session.token={{t}} -Dspark.yarn.app.container.log.dir=<LOG_DIR> org.apache.spark.deploy.yarn.ApplicationMaster",
                 ts=ts, jh=kword("{{JAVA_HOME}}"), s=awssec(), t=tok("aws_session"))
    if v == 4:
        return T("{{ts}} INFO org.apache.hadoop.yarn.server.resourcemanager.RMAppManager$ApplicationSummary: appId=application_{{e}}_{{n}},name={{a}},user={{u}},queue=default,state=FINISHED,trackingUrl=http://rm-01:{{p}}/proxy/application_{{e2}}_{{n2}}/,appMasterHost={{ip}},startTime={{st}},finishTime={{ft}},finalStatus=SUCCEEDED",
                 ts=K("TIMESTAMP", tsf("py")), e=K("TIMESTAMP", (cts := tsf("epoch_ms", now(-R.randint(86400000, 900000000))))), n=(an := "%04d" % R.randint(1, 9999)),
                 a=R.choice(APPS) + "-etl", u=pick("etl", "hive", "spark"), p=kport(8088), e2=K("TIMESTAMP", cts), n2=an, ip=ip4(),
                 st=kts("epoch_ms", now(-R.randint(60000, 3600000))), ft=kts("epoch_ms", now(-R.randint(0, 50000))))
    return T("{{ts}} INFO BlockManagerMasterEndpoint: Registering block manager {{ip}}:{{p}} with {{m}} MiB RAM, BlockManagerId(driver, {{ip2}}, {{p2}}, None)",
             ts=ts, ip=ip4(), p=keph(), m=kfloat(100, 900, 1), ip2=ip4(), p2=keph())


def src_dbserver():
    v = R.randrange(9)
    cts = K("TIMESTAMP", tsf("py"))
    ch = kts("clickhouse")
    if v == 0:
        return T("INFO  [main] {{ts}} {{cp}} - Cassandra version: {{v}}", ts=cts, cp=K("CODE_PATH", "StorageService.java:%d" % R.randint(100, 900)), v=kver(pick("4.1.4", "4.0.12", "5.0.0")))
    if v == 1:
        return T("INFO  [main] {{ts}} YamlConfigurationLoader.java:104 - Node configuration:[authenticator=PasswordAuthenticator; authorizer=CassandraAuthorizer; client_encryption_options={{c}}; cluster_name=prod; seed_provider=org.apache.cassandra.locator.SimpleSeedProvider{seeds={{s1}}:{{p1}},{{s2}}:{{p2}}}; server_encryption_options=EncryptionOptions{keystore=/etc/cassandra/keystore.jks, keystore_password={{kp}}}]",
                 ts=cts, c=kword("<REDACTED>"), s1=ip4(), p1=kport(7000), s2=ip4(), p2=kport(7000), kp=pick(pw(), kmask()))
    if v == 2:
        return T("INFO  [GossipStage:1] {{ts}} {{cp}} - InetAddress /{{ip}}:{{p}} is now UP, HostId={{h}}", ts=cts, cp=K("CODE_PATH", "Gossiper.java:%d" % R.randint(1000, 1400)), ip=ip4(), p=kport(7000), h=uuid())
    if v == 3:
        return T("+ cqlsh {{ip}} {{p}} -u {{u}} -p {{pw}} -e \"DESCRIBE KEYSPACES\"", ip=ip4(), p=kport(9042), u=pick("cassandra", "admin"), pw=pw())
    if v == 4:
        return T("{{ts}} [ {{t}} ] {{{q}}} <Error> executeQuery: Code: 516. DB::Exception: {{u}}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED) (version {{v}} (official build)) (from {{f}})",
                 ts=ch, t=knum(1, 99999), q=uuid(), u=pick("default", "etl", email()), v=kver("24.1.5.6"), f=ipport())
    if v == 5:
        return T("{{ts}} [ {{t}} ] {{{q}}} <Debug> executeQuery: (from {{f}}, user: {{u}}) CREATE USER {{n}} IDENTIFIED WITH sha256_password BY '{{p}}' (stage: Complete)",
                 ts=ch, t=knum(1, 99999), q=uuid(), f=ipport(), u=pick("admin", "default"), n=pick("analyst", "grafana", "etl"), p=pick(kword("[HIDDEN]"), pw()))
    if v == 6:
        return T("{{ts}} [ {{t}} ] {{{q}}} <Debug> executeQuery: (from {{f}}) SELECT count() FROM s3('https://{{b}}.s3.amazonaws.com/data/*.parquet', '{{a}}', '{{s}}') (stage: Complete)",
                 ts=ch, t=knum(1, 99999), q=uuid(), f=ipport(), b=R.choice(APPS) + "-lake", a=akia(), s=awssec())
    if v == 7:
        return T("{{ts}} [ {{t}} ] {} <Information> Application: Starting ClickHouse {{v}} (revision: {{r}}, git hash: {{h}}, build id: {{b}}), PID {{p}}",
                 ts=ch, t=knum(1, 99999), v=kver("24.1.5.6"), r=knum(54000, 54999), h=khash("sha1"), b=K("HEX_ID", hx(40).upper()), p=knum(1, 99999))
    return T("        <{{u}}><password_sha256_hex>{{h}}</password_sha256_hex><networks><ip>{{ip}}</ip></networks></{{u}}>",
             u=pick("etl", "grafana", "default"), h=K("HEX_ID", hx(64)), ip=ip4())


def b64_span(kind, raw_gen_span):
    """base64 of a sensitive value, as Kubernetes Secret data stores it (labelled with the value's kind)."""
    return P(kind, b64s(raw_gen_span.value))


def src_k8s_audit():
    v = R.randrange(6)
    if v == 5:
        ns = R.choice(NAMESPACES)
        app = R.choice(APPS)
        pod = kk8s("pod", app)
        return J({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Request", "auditID": uuid(), "stage": "ResponseComplete",
                  "requestURI": F("/api/v1/namespaces/", ns, "/pods"), "verb": "create", "user": {"username": F("system:serviceaccount:", ns, ":", kk8s("sa", app))},
                  "sourceIPs": [ip4()], "objectRef": {"resource": "pods", "namespace": ns, "name": pod, "apiVersion": "v1"},
                  "requestObject": {"kind": "Pod", "spec": {"containers": [{"name": app, "image": kimg(), "env": [
                      {"name": "AWS_ACCESS_KEY_ID", "value": akia()}, {"name": "AWS_SECRET_ACCESS_KEY", "value": awssec()},
                      {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": kk8s("secret", app), "key": kword("password")}}}]}]}},
                  "responseStatus": {"metadata": {}, "code": Raw("201")}, "requestReceivedTimestamp": kts("iso_us")})
    ns = R.choice(NAMESPACES)
    app = R.choice(APPS)
    sname = kk8s("secret", app)
    user = pick({"username": F("system:serviceaccount:", ns, ":", kk8s("sa", app)), "uid": uuid(), "groups": ["system:serviceaccounts", "system:authenticated"]},
                {"username": email(), "groups": ["oidc:platform-admins", "system:authenticated"]})
    base = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": uuid(), "stage": "ResponseComplete"}
    common_tail = {"sourceIPs": [ip4()], "userAgent": F("kubectl/", kver("v1.29.2"), " (linux/amd64) kubernetes/", khash("short")),
                   "requestReceivedTimestamp": kts("iso_us"), "stageTimestamp": kts("iso_us"),
                   "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": F('RBAC: allowed by ClusterRoleBinding "', app, '-admin"')}}
    if v == 0:
        base.update({"requestURI": F("/api/v1/namespaces/", ns, "/secrets/", sname), "verb": "get", "user": user,
                     "objectRef": {"resource": "secrets", "namespace": ns, "name": sname, "apiVersion": "v1"},
                     "responseStatus": {"metadata": {}, "code": Raw("200")}})
        base.update(common_tail)
        return J(base)
    if v == 1:
        data = {}
        for key, kind, gen in R.sample([("password", "PASSWORD", pw), ("api-key", "SECRET", lambda: sec("hex32")), ("token", "TOKEN", vtok),
                                        ("client-secret", "SECRET", lambda: sec("alnum32")), ("aws_secret_access_key", "SECRET", awssec),
                                        ("DB_PASSWORD", "PASSWORD", pw)], 2):
            data[key] = b64_span(kind, gen())
        data["username"] = b64s(pick("app", "admin", "etl"))
        base.update({"level": "RequestResponse", "requestURI": F("/api/v1/namespaces/", ns, "/secrets"), "verb": "create", "user": user,
                     "objectRef": {"resource": "secrets", "namespace": ns, "name": sname, "apiVersion": "v1"},
                     "responseStatus": {"metadata": {}, "code": Raw("201")},
                     "requestObject": {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": sname, "namespace": ns}, "data": data, "type": kword("Opaque")}})
        base.update(common_tail)
        return J(base)
    if v == 2:
        sa = kk8s("sa", app)
        base.update({"level": "RequestResponse", "requestURI": F("/api/v1/namespaces/", ns, "/serviceaccounts/", sa, "/token"), "verb": "create", "user": user,
                     "objectRef": {"resource": "serviceaccounts", "namespace": ns, "name": F(sa), "apiVersion": "v1", "subresource": "token"},
                     "responseStatus": {"metadata": {}, "code": Raw("201")},
                     "responseObject": {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1", "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": Raw(knum(600, 86400))},
                                        "status": {"token": jwt(), "expirationTimestamp": kts("iso")}}})
        base.update(common_tail)
        return J(base)
    if v == 3:
        pod = kk8s("pod", app)
        cmd = pick(["psql", F("postgresql://app:", pw(url=True), "@localhost/app")], ["sh", "-c", F("mysql -uroot -p", pw(), " -e 'show databases'")],
                   ["vault", "login", tok("vault")], ["env"], ["redis-cli", "-a", pw(), "ping"])
        q = F(*[F("&" if i else "", "command=", qenc(arg)) for i, arg in enumerate(cmd)])
        base.update({"level": "Request", "requestURI": F("/api/v1/namespaces/", ns, "/pods/", pod, "/exec?", q, "&container=", app, "&stdin=true&tty=true"),
                     "verb": "create", "user": user,
                     "objectRef": {"resource": "pods", "namespace": ns, "name": pod, "apiVersion": "v1", "subresource": "exec"},
                     "responseStatus": {"metadata": {}, "code": Raw("101")}})
        base.update(common_tail)
        return J(base)
    cm = kk8s("cm", app)
    base.update({"requestURI": F("/api/v1/namespaces/", ns, "/configmaps/", cm), "verb": pick("patch", "update"), "user": user,
                 "objectRef": {"resource": "configmaps", "namespace": ns, "name": cm, "apiVersion": "v1", "resourceVersion": knum(100000, 99999999)},
                 "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Forbidden", "code": Raw("403")}})
    base.update(common_tail)
    return J(base)


def klog_head(level=None):
    level = level or pick("I", "I", "W", "E")
    return F(level, kts("klog"), "       ", knum(1, 9), " ")


def src_kube_apiserver():
    v = R.randrange(9)
    if v == 7:
        return F(klog_head("I"), 'kuberuntime_image.go:', str(R.randint(40, 90)), '] "Pulling image" image="', kimg(), '" pod="', R.choice(NAMESPACES), "/", kk8s("pod"), '" podUID="', uuid(), '"')
    if v == 8:
        return F(klog_head("I"), 'event.go:307] "Event occurred" object="', R.choice(NAMESPACES), "/", kk8s("pod"), '" kind="Pod" reason="Pulled" message="Successfully pulled image \\"', kimg(), '\\" in ', kfloat(0, 90, 3), 's"')
    if v == 0:
        flag = pick(F('--etcd-servers="https://', ip4(), ":", kport(2379), '"'), F('--advertise-address="', ip4(), '"'),
                    F('--service-account-key-file="', K("CODE_PATH", "/etc/kubernetes/pki/sa.pub"), '"'), F('--secure-port="', kport(6443), '"'),
                    F('--oidc-issuer-url="https://sso.example.com/realms/acme"'), F('--token-auth-file="', K("CODE_PATH", "/etc/kubernetes/known_tokens.csv"), '"'),
                    F('--kubelet-client-key="', K("CODE_PATH", "/etc/kubernetes/pki/apiserver-kubelet-client.key"), '"'),
                    F('--encryption-provider-config="', K("CODE_PATH", "/etc/kubernetes/enc/encryption-config.yaml"), '"'))
        return F(klog_head("I"), K("CODE_PATH", "flags.go:64"), "] FLAG: ", flag)
    if v == 1:
        return F(klog_head("E"), K("CODE_PATH", "authentication.go:73"), '] "Unable to authenticate the request" err="[invalid bearer token, oidc: verify token: oidc: token is expired]" token="',
                 pick(jwt(), jwt(), kmask()), '"')
    if v == 2:
        return F(klog_head("I"), K("CODE_PATH", "httplog.go:132"), '] "HTTP" verb="', pick("GET", "LIST", "PATCH"), '" URI="/api/v1/namespaces/', R.choice(NAMESPACES), "/secrets/",
                 kk8s("secret"), '" latency="', kfloat(0, 90, 3), 'ms" userAgent="', R.choice(APPS), "/", kver(), " (linux/amd64) kubernetes/", khash("short"), '" audit-ID="', uuid(), '" srcIP="', ipport(), '" resp=', pick("200", "403", "404"))
    if v == 3:
        return T("kubeadm join {{ip}}:{{p}} --token {{t}} --discovery-token-ca-cert-hash sha256:{{h}}{{cp}}",
                 ip=ip4(), p=kport(6443), t=tok("k8s_bootstrap"), h=khash("sha256"), cp=pick("", F(" --control-plane --certificate-key ", sec("hex64"))))
    if v == 4:
        return F(klog_head("W"), 'reflector.go:535] k8s.io/client-go/informers/factory.go:159: failed to list *v1.Secret: secrets "', kk8s("secret"), '" is forbidden: User "',
                 pick(email(), F("system:serviceaccount:monitoring:", kk8s("sa"))), '" cannot list resource "secrets" in API group "" in the namespace "', R.choice(NAMESPACES), '"')
    if v == 5:
        envs = []
        for _ in range(R.randint(1, 3)):
            k, val = secret_kv("UPPER")
            envs.append(F("EnvVar{Name:", k, ",Value:", val, ",ValueFrom:nil,},"))
        return F(klog_head("E"), "kuberuntime_manager.go:1256] container &Container{Name:", R.choice(APPS), ",Image:", kimg(), ",Command:[],Args:[],WorkingDir:,Ports:[]ContainerPort{ContainerPort{Name:http,HostPort:0,ContainerPort:",
                 kport(8080), ",Protocol:TCP,HostIP:,},},Env:[]EnvVar{", envs, "},} start failed in pod ", kk8s("pod"), "_", R.choice(NAMESPACES), "(", uuid(), "): CreateContainerConfigError")
    if chance(0.5):
        return F(klog_head("I"), 'event.go:307] "Event occurred" object="', R.choice(NAMESPACES), "/", kk8s("pod"), '" kind="Pod" reason="Pulled" message="Container image \\"', kimg(), '\\" already present on machine"')
    return F(klog_head("I"), 'controller.go:624] quota admission added evaluator for: leases.coordination.k8s.io resourceVersion=', knum(1000, 99999999), " node=", R.choice(NODES), " ip=", ip4())


def src_gitops():
    v = R.randrange(8)
    if v == 7:
        return J({"level": "info", "ts": kts("iso_ms"), "msg": F("Latest image tag for '", kimg(), "' resolved to ", kver()), "controller": "imagepolicy",
                  "ImagePolicy": {"name": R.choice(APPS), "namespace": "flux-system"}, "reconcileID": uuid()})
    app = R.choice(APPS)
    if v == 0:
        return T('time="{{ts}}" level=info msg="Comparing app state (cluster: https://kubernetes.default.svc, namespace: {{ns}})" application=argocd/{{a}} images=[{{i1}} {{i2}}]',
                 ts=kts("iso"), ns=R.choice(NAMESPACES), a=app, i1=kimg(), i2=kimg())
    if v == 1:
        return T('time="{{ts}}" level=error msg="finished unary call with code Unknown" error="rpc error: code = Unknown desc = authentication required: repo=https://{{u}}:{{t}}@{{h}}/acme/{{a}}-deploy.git" grpc.code=Unknown grpc.method=GenerateManifest grpc.service=repository.RepoServerService grpc.start_time="{{ts2}}" grpc.time_ms={{ms}} span.kind=server system=grpc',
                 ts=kts("iso"), u=pick("ci-bot", "oauth2", "git"), t=pick(tok("github"), tok("gitlab"), pw(url=True)), h=pick("github.com", "gitlab.com", "git.acme.lan"),
                 a=app, ts2=kts("iso"), ms=kfloat(1, 900, 3))
    if v == 2:
        return T('time="{{ts}}" level=info msg="Update successful" application=argocd/{{a}} revision={{r}} dest-namespace={{ns}} image={{img}}',
                 ts=kts("iso"), a=app, r=khash("sha1"), ns=R.choice(NAMESPACES), img=kimg())
    if v == 3:
        return J({"level": "info", "ts": kts("iso_ms"), "msg": F("stored artifact for commit 'Merge pull request #", knum(1, 9999), " from acme/", app, "'"),
                  "controller": "gitrepository", "controllerGroup": "source.toolkit.fluxcd.io", "GitRepository": {"name": "flux-system", "namespace": "flux-system"},
                  "revision": F("main@sha1:", khash("sha1")), "reconcileID": uuid()})
    if v == 4:
        out = {}
        for _ in range(R.randint(2, 4)):
            kind = pick("Secret", "ConfigMap", "Deployment", "ServiceAccount")
            nm = kk8s({"Secret": "secret", "ConfigMap": "cm", "Deployment": "deploy", "ServiceAccount": "sa"}[kind], app)
            out[kind + "/" + R.choice(NAMESPACES) + "/" + nm.value] = pick("configured", "unchanged", "created")
        # keys are look-alike names too but JSON keys are plain text here
        return J({"level": "info", "ts": kts("iso_ms"), "msg": "server-side apply completed", "controller": "kustomization", "name": app,
                  "namespace": "flux-system", "revision": F("main@sha1:", khash("sha1")), "output": out, "reconcileID": uuid()})
    if v == 5:
        return J({"level": "error", "ts": kts("iso_ms"), "msg": "upgrade failed", "controller": "helmrelease", "HelmRelease": {"name": app, "namespace": R.choice(NAMESPACES)},
                  "error": F("values don't meet the specifications of the schema: auth.password=", pw(), " (expected object)"), "reconcileID": uuid()})
    return T('time="{{ts}}" level=info msg="login successful" user={{e}} sso=true cookie="argocd.token={{j}}" ip={{ip}}',
             ts=kts("iso"), e=email(), j=jwt(), ip=ip())


def src_vault():
    v = R.randrange(11)
    if v == 8:
        return T('+ vault write aws/config/root access_key={{k}} secret_key={{s}} region=us-east-1', k=akia(), s=awssec())
    if v == 9:
        return pick(T("access_key         {{k}}", k=asia()), T("secret_key         {{s}}", s=awssec()), T("security_token     {{t}}", t=tok("aws_session")),
                    T("lease_id           aws/creds/deploy/{{l}}", l=rs(24)))
    if v == 10:
        return T('+ vault write pki/roles/{{r}} allowed_domains={{d}} allow_subdomains=true max_ttl={{ttl}}h ext_key_usage_oids={{o1}},{{o2}} policy_identifiers={{o3}}',
                 r=R.choice(APPS), d=pick("example.com", "svc.cluster.local"), ttl=knum(1, 8760), o1=koid("1.3.6.1.5.5.7.3.1"), o2=koid("1.3.6.1.5.5.7.3.2"),
                 o3=koid(pick("1.3.6.1.4.1.311.21.8.1.1", "2.23.140.1.2.1", "1.3.6.1.4.1.44947.1.1.1")))
    ts = kts("iso_ms")
    if v == 0:
        return T("             Version: Vault {{v}}, built {{b}}", v=kver("v1.15.6"), b=kts("iso"))
    if v == 1:
        return T("         Version Sha: {{h}}", h=khash("sha1"))
    if v == 2:
        return T("         {{w}} Address: {{s}}://{{ip}}:{{p}}", w=pick("Api", "Cluster"), s=pick("http", "https"), ip=ip4(), p=kport(pick(8200, 8201)))
    if v == 3:
        return pick(T("Unseal Key: {{k}}", k=sec("unseal")), T("Root Token: {{t}}", t=tok("vault")), T("Unseal Key {{n}}: {{k}}", n=str(R.randint(1, 5)), k=sec("unseal")),
                    T("Initial Root Token: {{t}}", t=tok("vault")))
    if v == 4:
        return T('{{ts}} [INFO]  core: successful mount: namespace="" path={{p}} type={{t}} version="{{v}}"', ts=ts, p=pick("secret/", "database/", "pki/", "transit/"),
                 t=pick("kv", "database", "pki", "transit"), v=kver("v0.17.0+builtin"))
    if v == 5:
        return T('{{ts}} [ERROR] secrets.database.database_{{id}}: error creating database object: error="error verifying connection: ping failed: failed to connect to `host={{ip}} user=vault database=postgres`: server error (FATAL: password authentication failed for user \\"vault\\" (SQLSTATE 28P01))" connection_url="postgresql://{{u}}:{{p}}@{{ip2}}:{{port}}/postgres"',
                 ts=ts, id=khex("alloc"), ip=ip4(), u=kword("{{username}}"), p=kword("{{password}}"), ip2=ip4(), port=kport(5432))
    if v == 6:
        return T('+ vault write database/config/{{db}} plugin_name=postgresql-database-plugin connection_url="postgresql://{{u}}:{{p}}@{{ip}}:{{port}}/postgres" username="vault" password="{{pw}}"',
                 db=R.choice(APPS), u=kword("{{username}}"), p=kword("{{password}}"), ip=ip4(), port=kport(5432), pw=pw())
    return T('{{ts}} [INFO]  core.cluster-listener.tcp: starting listener: listener_address={{ip}}:{{p}} request_forwarding={{rf}} pid={{pid}}',
             ts=ts, ip=ip4(), p=kport(8201), rf=pick("enabled", "disabled"), pid=knum(1, 99999))


def src_keycloak():
    v = R.randrange(8)
    if v == 6:
        return T("{{ts}} WARN  [org.keycloak.authentication.authenticators.x509.ValidateX509CertificateUsername] (executor-thread-{{n}}) Certificate for {{e}} rejected: extended key usage {{o1}} required, found [{{o2}}], policy {{o3}}",
                 ts=K("TIMESTAMP", tsf("py")), n=str(R.randint(1, 60)), e=email(), o1=koid("1.3.6.1.5.5.7.3.2"), o2=koid(pick("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.4")),
                 o3=koid(pick("2.16.840.1.101.3.2.1.3.13", "1.3.6.1.4.1.311.21.8.1.1")))
    if v == 7:
        return T("{{ts}} DEBUG [org.keycloak.protocol.oidc.endpoints.LogoutEndpoint] (executor-thread-{{n}}) logout request: id_token_hint={{j}}&post_logout_redirect_uri=https%3A%2F%2F{{h}}%2F&state={{s}}",
                 ts=K("TIMESTAMP", tsf("py")), n=str(R.randint(1, 60)), j=jwt(), h=R.choice(PUB_HOSTS), s=rs(16, LOW))
    ts = K("TIMESTAMP", tsf("py"))
    thr = "executor-thread-%d" % R.randint(1, 60)
    realm = pick("acme", "master", "partners")
    if v == 0:
        return T('{{ts}} WARN  [org.keycloak.events] ({{t}}) type="LOGIN_ERROR", realmId="{{r}}", realmName="{{rn}}", clientId="{{c}}", userId="null", sessionId="null", ipAddress="{{ip}}", error="{{err}}", auth_method="openid-connect", auth_type="code", response_type="code", redirect_uri="https://{{h}}/realms/{{rn}}/account/", code_id="{{cid}}", username="{{u}}", authSessionParentId="{{ap}}", authSessionTabId="{{tab}}"',
                 ts=ts, t=thr, r=uuid(), rn=realm, c=pick("account-console", R.choice(APPS) + "-web"), ip=ip(), err=pick("invalid_user_credentials", "user_not_found", "user_temporarily_disabled"),
                 h=R.choice(PUB_HOSTS), cid=uuid(), u=pick(email(), F(user_name())), ap=uuid(), tab=rs(11, B64U))
    if v == 1:
        return T('{{ts}} DEBUG [org.keycloak.events] ({{t}}) type="CODE_TO_TOKEN", realmId="{{r}}", clientId="{{c}}", userId="{{u}}", sessionId="{{s}}", ipAddress="{{ip}}", token_id="{{tid}}", grant_type="{{g}}", refresh_token_type="Refresh", scope="openid profile email", refresh_token_id="{{rid}}", code_id="{{cid}}", client_auth_method="client-secret"',
                 ts=ts, t=thr, r=uuid(), c=R.choice(APPS) + "-web", u=uuid(), s=uuid(), ip=ip(), tid=uuid(), g=kword("authorization_code"), rid=uuid(), cid=uuid())
    if v == 2:
        return T('{{ts}} INFO  [org.keycloak.events] ({{t}}) operationType="UPDATE", realmId="{{r}}", clientId="security-admin-console", userId="{{u}}", ipAddress="{{ip}}", resourceType="CLIENT", resourcePath="clients/{{c}}", representation={{rep}}',
                 ts=ts, t=thr, r=uuid(), u=uuid(), ip=ip(), c=uuid(),
                 rep=J({"clientId": R.choice(APPS) + "-backend", "enabled": True, "clientAuthenticatorType": kword("client-secret"), "secret": sec("keycloak"),
                        "redirectUris": [F("https://", R.choice(PUB_HOSTS), "/*")], "publicClient": False}))
    if v == 3:
        return T('{{ts}} ERROR [org.keycloak.storage.ldap.idm.store.ldap.LDAPOperationManager] ({{t}}) Could not bind: connectionUrl=ldaps://{{ip}}:{{p}}, bindDn=cn=admin,dc=example,dc=com, bindCredential={{pw}}, pagination control {{o}}: javax.naming.AuthenticationException: [LDAP: error code 49 - Invalid Credentials]',
                 ts=ts, t=thr, ip=ip4(), p=kport(636), pw=pick(pw(), kmask()), o=koid("1.2.840.113556.1.4.319"))
    if v == 4:
        return T("{{ts}} INFO  [io.quarkus] (main) Keycloak {{v}} on JVM (powered by Quarkus {{q}}) started in {{s}}s. Listening on: http://{{ip}}:{{p}}. Management interface listening on http://{{ip2}}:{{p2}}.",
                 ts=ts, v=kver("24.0.1"), q=kver("3.8.1"), s=kfloat(2, 40, 3), ip=ip4(), p=kport(8080), ip2=ip4(), p2=kport(9000))
    return T('{{ts}} DEBUG [org.keycloak.protocol.oidc.endpoints.TokenEndpoint] ({{t}}) form params: grant_type={{g}}&code={{c}}&redirect_uri=https%3A%2F%2F{{h}}%2Fcallback&client_id={{cid}}&client_secret={{s}}',
             ts=ts, t=thr, g=kword("authorization_code"), c=F(uuid(), ".", uuid(), ".", uuid()), h=R.choice(PUB_HOSTS), cid=R.choice(APPS), s=sec("keycloak"))


def src_slapd():
    v = R.randrange(9)
    if v == 8:
        return F(kts("syslog"), " ", pick("ldap01", "ldap02"), " slapd[", knum(100, 9999), "]: conn=", knum(1000, 99999), " op=", knum(0, 9), " RESULT oid=",
                 koid(pick("1.3.6.1.4.1.4203.1.11.3", "1.3.6.1.4.1.4203.1.11.1", "1.3.6.1.4.1.1466.20037")), " err=0 qtime=0.000012 etime=", kfloat(0, 1, 6), " text=")
    head = F(kts("syslog"), " ", pick("ldap01", "ldap02", "dir-1"), " slapd[", knum(100, 9999), "]: conn=", knum(1000, 99999), " ")
    dn = F("uid=", user_name(), ",ou=people,dc=example,dc=com")
    if v == 0:
        return F(head, "fd=", knum(10, 90), " ACCEPT from IP=", ip4(), ":", keph(), " (IP=0.0.0.0:", kport(pick(389, 636)), ")")
    if v == 1:
        return F(head, 'op=0 BIND dn="', dn, '" method=128')
    if v == 2:
        return F(head, "op=", knum(0, 9), ' SRCH base="dc=example,dc=com" scope=2 deref=0 filter="(', pick(F("mail=", email()), F("uid=", user_name()), F("ipHostNumber=", ip4())), ')"',
                 pick("", F(" ctrl=", koid()), F(" ctrl=", koid("1.2.840.113556.1.4.319"))))
    if v == 3:
        return F(head, "op=", knum(0, 9), " EXT oid=", koid(pick("1.3.6.1.4.1.1466.20037", "1.3.6.1.4.1.4203.1.11.1", "1.3.6.1.4.1.4203.1.11.3")))
    if v == 4:
        return F(head, "op=", knum(0, 9), " SRCH base=\"\" scope=0 deref=0 filter=\"(objectClass=*)\" ctrl=", koid(), " ctrl=", koid())
    if v == 5:
        return F(head, "op=", knum(0, 9), ' PASSMOD id="', dn, '" new')
    if v == 6:
        return T('+ ldapmodify -x -H ldap://{{ip}} -D "cn=admin,dc=example,dc=com" -w {{pw}} -e {{o}} -f /tmp/users.ldif',
                 ip=ip4(), pw=pw(), o=koid(pick("1.3.6.1.4.1.42.2.27.8.5.1", "2.16.840.1.113730.3.4.2", "1.3.6.1.1.13.1")))
    return F(head, "op=", knum(0, 9), " do_search: unrecognized control: ", koid(), " (criticality=", pick("TRUE", "FALSE"), ") supportedControl=", koid())


def src_radius():
    v = R.randrange(9)
    if v == 8:
        return T('({{n}})   {{a}} = "{{o}}"', n=knum(1, 99999), a=pick("TLS-Client-Cert-X509v3-Extended-Key-Usage-OID", "TLS-Cert-X509v3-Extended-Key-Usage-OID", "TLS-Client-Cert-X509v3-Certificate-Policies"),
                 o=koid(pick("1.3.6.1.5.5.7.3.2", "1.3.6.1.5.5.7.3.1", "1.3.6.1.4.1.311.20.2.2", "1.3.6.1.4.1.311.10.3.4")))
    rts = kts("ctime")
    if v == 0:
        return T('{{ts}} : Auth: ({{n}}) Login incorrect (pap: Cleartext password does not match "known good" password): [{{u}}/{{p}}] (from client {{c}} port {{port}} cli {{m}})',
                 ts=rts, n=knum(1, 99999), u=pick(F(user_name()), email()), p=pw(), c=pick("wlc-01", "ap-3f", "vpn-gw"), port=knum(0, 60), m=mac("DASH"))
    if v == 1:
        return T('{{ts}} : Auth: ({{n}}) Login OK: [{{u}}/<via Auth-Type = eap>] (from client {{c}} port 0 cli {{m}} via TLS tunnel)',
                 ts=rts, n=knum(1, 99999), u=email(), c=pick("wlc-01", "ap-3f"), m=mac(pick("DASH", "dash")))
    if v == 2:
        return T('({{n}})   {{attr}}', n=knum(1, 99999), attr=pick(F('User-Password = "', pw(), '"'), F('Calling-Station-Id = "', mac("DASH"), '"'),
                                                                  F("NAS-IP-Address = ", ip4()), F("Framed-IP-Address = ", ip4()),
                                                                  F("Message-Authenticator = 0x", K("HEX_ID", hx(32))), F("MS-CHAP-Challenge = 0x", K("HEX_ID", hx(32))),
                                                                  F('User-Name = "', email(), '"')))
    if v == 3:
        return T('({{n}}) Received Access-Request Id {{id}} from {{a}} to {{b}} length {{l}}', n=knum(1, 99999), id=knum(0, 255),
                 a=F(ip4(), ":", keph()), b=F(ip4(), ":", kport(1812)), l=knum(40, 400))
    if v == 4:
        return T("client {{n}} { ipaddr = {{ip}}  secret = {{s}}  shortname = {{sn}} }", n=pick("wlc", "vpn", "switches"), ip=ip4(), s=sec("radius"), sn=pick("wlc-01", "vpn-gw"))
    if v == 5:
        return T("[{{ts}},  0] {{cp}}(winbindd_pam_auth)  Authentication for user [{{d}}\\{{u}}] -> [{{u2}}] FAILED with error NT_STATUS_WRONG_PASSWORD, PDC [dc01]",
                 ts=kts("samba"), cp=K("CODE_PATH", "../../source3/winbindd/winbindd_pam.c:%d" % R.randint(1000, 3000)), d="CONTOSO", u=(u := user_name()), u2=u)
    if v == 6:
        return J({"timestamp": kts("iso_off"), "type": "Authentication",
                  "Authentication": {"version": {"major": 1, "minor": 2}, "eventId": Raw(pick("4624", "4625")), "logonId": "0", "logonType": 3,
                                     "status": pick("NT_STATUS_OK", "NT_STATUS_WRONG_PASSWORD"), "localAddress": F("ipv4:", ip4(), ":", kport(445)),
                                     "remoteAddress": F("ipv4:", ip4(), ":", keph()), "serviceDescription": "SMB2", "clientDomain": "CONTOSO",
                                     "clientAccount": user_name(), "workstation": "WS-%03d" % R.randint(1, 999), "sessionId": uuid(),
                                     "passwordType": kword(pick("NTLMv2", "Kerberos")), "duration": Raw(knum(100, 99999))}}, sp=True)
    if chance(0.4):
        return T("[{{ts}},  3] ../../auth/gensec/spnego.c:{{l}}(gensec_spnego_client_negTokenInit_step)  SPNEGO: Could not start GENSEC mech {{o}}: NT_STATUS_INVALID_PARAMETER (client {{ip}})",
                 ts=kts("samba"), l=str(R.randint(300, 700)), o=koid(pick("1.2.840.113554.1.2.2", "1.3.6.1.4.1.311.2.2.10", "1.2.840.48018.1.2.2")), ip=ip4())
    return T("+ smbclient //{{h}}/{{s}} -U '{{d}}\\{{u}}%{{p}}' -c 'ls' -m SMB3 --option='client min protocol=SMB2' # krb5 mech {{o}}",
             h=pick("fs01", "nas.corp.example.com"), s=pick("share", "finance$", "backup"), d="CONTOSO", u=user_name(), p=pw(), o=koid("1.2.840.113554.1.2.2"))


def src_exim():
    v = R.randrange(5)
    mid = F(rs(6, AL), "-", rs(6, AL), "-", rs(2, AL))
    ts = kts("space")
    if v == 0:
        return T("{{ts}} {{id}} <= {{e}} H={{h}} [{{ip}}]:{{p}} I=[{{ip2}}]:{{p2}} P=esmtps X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A={{a}} S={{s}} T=\"{{subj}}\"",
                 ts=ts, id=mid, e=email(), h=pick("mail.example.org", "mx.contoso.com"), ip=ip4(), p=keph(), ip2=ip4(), p2=kport(pick(25, 587)),
                 a=pick("dovecot_plain", "dovecot_login", "plain_server"), s=knum(500, 999999), subj=pick("Your invoice", "Password reset", "Re: Q1 numbers", "Rechnung März"))
    if v == 1:
        return T("{{ts}} {{id}} => {{e}} R=dnslookup T=remote_smtp H={{h}} [{{ip}}] X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes C=\"250 2.0.0 OK {{ep}} {{q}} - gsmtp\"",
                 ts=ts, id=mid, e=email(), h=pick("gmail-smtp-in.l.google.com", "mx.example.net"), ip=ip(), ep=kts("epoch"), q=rs(12, LOW) + "." + str(R.randint(1, 999)))
    if v == 2:
        return T("{{ts}} {{a}} authenticator failed for ({{h}}) [{{ip}}]:{{p}} I=[{{ip2}}]:587: 535 Incorrect authentication data (set_id={{e}})",
                 ts=ts, a=pick("login", "plain", "dovecot_plain"), h=pick("User", "localhost", "ylmf-pc"), ip=ip(), p=keph(), ip2=ip4(), e=email())
    if v == 3:
        return T("{{ts}} {{id}} ** {{e}}: SMTP error from remote mail server after RCPT TO:<{{e2}}>: 550 5.1.1 user unknown", ts=ts, id=mid, e=(e := email()), e2=P("EMAIL", e.value))
    return T("{{ts}} {{id}} Completed QT={{qt}}s | smarthost auth: {{u}}:{{p}}", ts=ts, id=mid, qt=knum(0, 90), u=pick("apikey", email()), p=pick(tok("sendgrid"), pw()))


def src_bind():
    v = R.randrange(5)
    ts = kts("bind")
    if v == 0:
        return T("{{ts}} queries: info: client @{{ptr}} {{ip}}#{{p}} ({{q}}): query: {{q2}} IN {{t}} +E(0)K ({{srv}})",
                 ts=ts, ptr=khex("ptr"), ip=ip(), p=keph(), q=(q := pick(*PUB_HOSTS)), q2=q, t=pick("A", "AAAA", "MX", "TXT"), srv=ip4())
    if v == 1:
        return T("{{ts}} security: info: client @{{ptr}} {{ip}}#{{p}}/key {{k}}: signer \"{{k2}}\" approved", ts=ts, ptr=khex("ptr"), ip=ip4(), p=keph(),
                 k=(k := pick("tsig-key", "xfer-key", "ddns-key")), k2=k)
    if v == 2:
        return T('key "{{n}}" { algorithm hmac-sha256; secret "{{s}}"; };', n=pick("tsig-key", "rndc-key", "xfer-key"), s=sec(pick("b64_32", "b64_32", "hex64")))
    if v == 3:
        return T("{{ts}} dnssec: info: zone {{z}}/IN (signed): reconfiguring zone keys; next key event: {{nx}} key {{z2}}/ECDSAP256SHA256/{{tag}}",
                 ts=ts, z=(z := pick("example.com", "acme-corp.io")), nx=kts("bind"), z2=z, tag=knum(1000, 65535))
    return T("{{ts}} update: info: client @{{ptr}} {{ip}}#{{p}}: updating zone '{{z}}/IN': adding an RR at '{{h}}.{{z2}}' A {{a}}",
             ts=ts, ptr=khex("ptr"), ip=ip4(), p=keph(), z=(z := pick("corp.example.com", "lan.acme-corp.io")), h=pick("ws-042", "printer-3", "jane-laptop"), z2=z, a=ip4())


def src_netdev():
    v = R.randrange(8)
    if v == 6:
        return T("{{ts}} {{h}} snmptrapd[{{pid}}]: {{ip}} [UDP: [{{ip2}}]:{{p}}->[{{ip3}}]:162]: .{{o1}} = Timeticks: ({{tt}}) .{{o2}} = OID: .{{o3}} .{{o4}} = STRING: \"{{mac}}\"",
                 ts=kts("syslog"), h=pick("nms-01", "fw01"), pid=knum(100, 9999), ip=(a := ip4()), ip2=P("IP", a.value), p=keph(), ip3=ip4(),
                 o1=koid("1.3.6.1.2.1.1.3.0"), tt=knum(1000, 99999999), o2=koid("1.3.6.1.6.3.1.1.4.1.0"),
                 o3=koid(pick("1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.4.1.12356.101.2.0.301", "1.3.6.1.4.1.41112.1.6")),
                 o4=koid(pick("1.3.6.1.2.1.2.2.1.6.2", "1.3.6.1.4.1.41112.1.6.1.2.1.5")), mac=mac("COLON"))
    if v == 7:
        return T("{{ts}} {{h}} dhcpd[{{pid}}]: DHCPACK on {{ip}} to {{m}} ({{n}}) via {{i}}", ts=kts("syslog"), h=pick("dhcp01", "pfsense"), pid=knum(100, 99999),
                 ip=ip4(), m=mac("colon"), n=pick("Janes-iPhone", "DESKTOP-7H2K9QF", "printer-3f", "Galaxy-S23"), i=pick("eth0", "igb1", "vlan20"))
    if v == 0:
        return T("{{ts}} {{h}} filterlog[{{pid}}]: {{rn}},,,{{tr}},{{i}},match,{{act}},in,4,0x0,,{{ttl}},{{id}},0,DF,6,tcp,60,{{src}},{{dst}},{{sp}},{{dp}},0,S,{{seq}},,64240,,mss;sackOK;TS;nop;wscale",
                 ts=kts("syslog"), h=pick("fw01", "pfsense"), pid=knum(100, 99999), rn=str(R.randint(1, 200)), tr=knum(1000000000, 1770000000),
                 i=pick("igb0", "vtnet1", "em0"), act=pick("block", "pass"), ttl=str(R.randint(40, 128)), id=knum(1, 65535), src=ip4(), dst=ip4(),
                 sp=keph(), dp=kport(), seq=knum(100000, 4294967295))
    if v == 1:
        return T("{{ts}} {{h}} filterlog[{{pid}}]: {{rn}},,,{{lbl}},{{i}},match,block,in,6,0x00,0x00000,255,ipv6-icmp,58,32,{{src}},{{dst}},datalength=32",
                 ts=kts("syslog"), h="OPNsense.localdomain", pid=knum(100, 99999), rn=str(R.randint(1, 200)), lbl=khash("md5"), i=pick("igb1", "vtnet0"),
                 src=ip6(), dst=pick("ff02::1", "ff02::1:ff00:1"))
    if v == 2:
        return T("{{ts}} {{ap}},{{m}},v{{v}}: hostapd: ath0: STA {{sta}} IEEE 802.11: {{ev}}",
                 ts=kts("syslog"), ap=pick("U7PG2", "U6-LR", "UAP-AC-Pro"), m=mac("bare"), v=kver(pick("6.5.28.14491", "6.6.55.15189", "4.3.28.11361")),
                 sta=mac("colon"), ev=pick("associated", "disassociated", "authenticated"))
    if v == 3:
        return T("{{ts}} {{ap}},{{m}},v{{v}}: stahtd: stahtd[{{pid}}]: [STA-TRACKER].stahtd_dump_event(): {{j}}",
                 ts=kts("syslog"), ap=pick("U7PG2", "U6-LR"), m=mac("bare"), v=kver("6.5.28.14491"), pid=knum(100, 9999),
                 j=J({"message_type": "STA_ASSOC_TRACKER", "mac": mac("colon"), "vap": pick("ra0", "wifi0ap1"), "event_type": pick("fixup", "sta_leave"),
                      "assoc_status": "0", "event_id": str(R.randint(1, 9)), "auth_ts": kts("epoch_f6"), "ip": ip4(), "wpa_auth_delta": knum(1000, 99999),
                      "dns_resp_seen": "yes"}))
    if v == 4:
        return T("{{ts}} {{h}} dnsmasq-dhcp[{{pid}}]: DHCPACK(br0) {{ip}} {{m}} {{n}}", ts=kts("syslog"), h=pick("UDM-Pro", "gw"), pid=knum(100, 9999),
                 ip=ip4(), m=mac("colon"), n=pick("Janes-iPhone", "DESKTOP-7H2K9QF", "printer-3f", "Galaxy-S23"))
    return T("wpa_passphrase={{p}} ssid={{s}} bssid={{m}} wpa_key_mgmt=WPA-PSK rsn_pairwise=CCMP", p=pw(), s=pick("ACME-Corp", "Guest", "IoT"), m=mac("colon"))


def src_firewall():
    v = R.randrange(6)
    if v == 5:
        return T('date={{d}} time={{t}} devname="FGT60F" logid="0100029002" type="event" subtype="system" level="information" logdesc="SNMP trap sent" msg="trap {{o}} sent to {{ip}}:{{p}}" enterprise="{{e}}" sysuptime_oid="{{u}}"',
                 d=K("TIMESTAMP", tsf("space")[:10]), t=K("TIMESTAMP", tsf("space")[11:]), o=koid(pick("1.3.6.1.4.1.12356.101.2.0.301", "1.3.6.1.4.1.12356.101.2.0.402", "1.3.6.1.6.3.1.1.5.3")),
                 ip=ip4(), p=kport(162), e=koid("1.3.6.1.4.1.12356"), u=koid("1.3.6.1.2.1.1.3.0"))
    if v <= 1:
        return T('date={{d}} time={{t}} devname="{{dn}}" devid="{{di}}" eventtime={{et}} tz="+0000" logid="{{lid}}" type="traffic" subtype="forward" level="notice" vd="root" srcip={{sip}} srcport={{sp}} srcintf="internal" srcintfrole="lan" dstip={{dip}} dstport={{dp}} dstintf="wan1" dstintfrole="wan" sessionid={{sid}} proto=6 action="close" policyid={{pol}} policytype="policy" poluuid="{{pu}}" service="HTTPS" trandisp="snat" transip={{tip}} transport={{tp}} duration={{dur}} sentbyte={{sb}} rcvdbyte={{rb}} srcmac="{{m}}" mastersrcmac="{{m2}}" user="{{u}}"',
                 d=K("TIMESTAMP", tsf("space")[:10]), t=K("TIMESTAMP", tsf("space")[11:]), dn=pick("FGT60F", "FGT-HQ-01"), di="FGT60FTK" + rs(8, UPP),
                 et=kts("epoch_ns"), lid=K("NUMBER", "00000000" + pick("13", "10", "11")), sip=ip4(), sp=keph(), dip=ip(), dp=kport(), sid=knum(1000, 999999999),
                 pol=knum(1, 300), pu=uuid(), tip=ip4(), tp=keph(), dur=knum(0, 9000), sb=knum(40, 9999999), rb=knum(40, 9999999), m=(mm := mac("colon")), m2=P("MAC", mm.value),
                 u=pick(F(user_name()), email()))
    if v == 2:
        return T('date={{d}} time={{t}} devname="{{dn}}" logid="0100032002" type="event" subtype="system" level="alert" logdesc="Admin login failed" sn="0" user="{{u}}" ui="https({{ip}})" method="https" srcip={{ip2}} dstip={{dip}} action="login" status="failed" reason="passwd_invalid" msg="Administrator {{u2}} login failed from https({{ip3}}) because of invalid password"',
                 d=K("TIMESTAMP", tsf("space")[:10]), t=K("TIMESTAMP", tsf("space")[11:]), dn="FGT60F", u=(u := pick("admin", "fortiadmin")),
                 ip=(ipv := ip4()), ip2=P("IP", ipv.value), dip=ip4(), u2=u, ip3=P("IP", ipv.value))
    if v == 3:
        return T("<14>{{ts}} {{h}} 1,{{rt}},{{sn}},TRAFFIC,end,2560,{{gt}},{{src}},{{dst}},{{nsrc}},{{ndst}},allow-web,acme\\{{u}},,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,log-fwd,{{gt2}},{{sid}},1,{{sp}},{{dp}},{{nsp}},{{ndp}},0x400019,tcp,allow,{{b}},{{bs}},{{br}},{{pk}},{{st}},{{el}},computer-and-internet-info,0,{{seq}},0x0,10.0.0.0-10.255.255.255,United States,0,11,9,tcp-fin,0,0,0,0,,{{h2}},from-policy,,,0,,0,,N/A,0,0,0,0",
                 ts=kts("syslog"), h=(h := pick("PA-3220", "PA-VM")), rt=K("TIMESTAMP", tsf("slash")), sn=K("NUMBER", "0128010" + digits(5, False)), gt=K("TIMESTAMP", tsf("slash")),
                 src=ip4(), dst=ip4(), nsrc=ip4(), ndst=ip4(), u=user_name(), gt2=K("TIMESTAMP", tsf("slash")), sid=knum(1000, 999999), sp=keph(), dp=kport(443),
                 nsp=keph(), ndp=kport(443), b=knum(100, 999999), bs=knum(100, 99999), br=knum(100, 99999), pk=knum(1, 999), st=K("TIMESTAMP", tsf("slash")),
                 el=knum(0, 900), seq=klong(), h2=h)
    return T("<14>{{ts}} {{h}} 1,{{rt}},{{sn}},GLOBALPROTECT,0,2560,{{gt}},vsys1,gateway-auth,login,,,{{u}},,{{host}},{{pub}},0.0.0.0,0.0.0.0,0.0.0.0,{{pub2}},{{cid}},,,{{os}},Windows 10,2,,,,success,,0,on-demand,0,GP-Gateway,{{seq}},0x0",
             ts=kts("syslog"), h=pick("PA-3220", "PA-VM"), rt=K("TIMESTAMP", tsf("slash")), sn=K("NUMBER", "0128010" + digits(5, False)), gt=K("TIMESTAMP", tsf("slash")),
             u=email(), host="WS-%03d" % R.randint(1, 999), pub=(pv := ip4()), pub2=P("IP", pv.value), cid=uuid(upper=True), os="Microsoft Windows 10 Pro , 64-bit",
             seq=knum(1000000000, 9999999999))


def src_webhooks():
    v = R.randrange(8)
    if v == 7:
        return T("{{ts}} WARN payments.braintree: transaction {{id}} processor_declined credit_card.number={{c}} customer.email={{e}} avs={{a}}",
                 ts=kts("iso_ms"), id=rs(8, LOW), c=card(), e=email(), a=pick("M", "N", "U"))
    if v == 6:
        return T("{{ts}} DEBUG checkout.api: POST /v1/checkout body={{b}} traceparent=00-{{t}}-{{s}}-01", ts=kts("iso_ms"),
                 b=J({"email": email(), "card_number": card(), "cvc_present": True, "amount": Raw(knum(100, 99999)), "currency": "eur"}), t=ktrace(), s=kspan())
    if v == 0:
        return T("{{ts}} INFO webhooks.stripe: Received event {{j}}", ts=kts("iso_ms"),
                 j=J({"id": "evt_" + rs(24), "object": "event", "api_version": "2023-10-16", "created": Raw(kts("epoch")),
                      "data": {"object": {"id": "ch_" + rs(24), "object": "charge", "amount": Raw(knum(100, 99999)), "currency": "usd",
                                          "billing_details": {"email": email(), "name": R.choice(DISPLAY), "address": {"country": pick("US", "DE", "BR", "JP")}},
                                          "payment_method_details": {"card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2027}}}},
                      "metadata": {"order_id": klong(), "customer_ref": klong(18)},
                      "livemode": False, "type": pick("charge.succeeded", "charge.failed")}))
    if v == 1:
        return T("{{ts}} WARN webhooks.stripe: signature verification failed header=t={{t}},v1={{sig}},v0={{sig0}} endpoint_secret={{s}}",
                 ts=kts("iso_ms"), t=kts("epoch"), sig=K("HEX_ID", hx(64)), sig0=K("HEX_ID", hx(64)), s=pick(tok("stripe_whsec"), kmask()))
    if v == 2:
        return T("{{ts}} INFO twilio.inbound: POST /sms/inbound AccountSid=AC{{ac}}&MessageSid=SM{{ms}}&Body={{b}}&NumMedia=0 X-Twilio-Signature={{sig}} auth_token={{at}}",
                 ts=kts("iso_ms"), ac=hx(32), ms=hx(32), b=qenc(pick(F("my email is ", email()), F("card ", card()), "STOP", "yes please")),
                 sig=K("HASH", b64(20)), at=sec("hex32"))
    if v == 3:
        return T("{{ts}} DEBUG sendgrid.events: {{j}}", ts=kts("iso_ms"),
                 j=J([{"email": email(), "timestamp": Raw(kts("epoch")), "smtp-id": F("<", khex("short"), ".", rs(3, LOW), ".", rs(6, LOW), "@ismtpd-", str(R.randint(1, 900)), ">"),
                       "event": pick("delivered", "open", "bounce", "processed"), "category": pick("receipts", "password-reset"),
                       "sg_event_id": rs(22, B64U), "sg_message_id": F(rs(22, B64U), ".filterdrecv-", knum(1000, 9999), "-", rs(5, LOW)),
                       "ip": ip4(), "tls": 1, "useragent": ua()}]))
    if v == 4:
        return T("{{ts}} ERROR mailer: POST https://api.sendgrid.com/v3/mail/send failed: 401 Unauthorized headers={{h}}",
                 ts=kts("iso_ms"), h=J({"Authorization": F("Bearer ", tok("sendgrid")), "Content-Type": "application/json"}))
    return T("{{ts}} INFO github.webhook: delivery={{d}} event=push repo=acme/{{r}} after={{a}} sender={{s}} X-Hub-Signature-256=sha256={{sig}} secret={{sec}}",
             ts=kts("iso_ms"), d=uuid(), r=R.choice(APPS), a=khash("sha1"), s=user_name(), sig=K("HEX_ID", hx(64)), sec=pick(sec("webhook"), kmask(), kplace()))


def src_idp():
    v = R.randrange(5)
    if v <= 1:
        return J({"actor": {"id": "00u" + rs(17), "type": "User", "alternateId": email(), "displayName": R.choice(DISPLAY)},
                  "client": {"userAgent": {"rawUserAgent": ua(), "os": "Mac OS X", "browser": "CHROME"}, "zone": "null", "device": "Computer", "ipAddress": ip(),
                             "geographicalContext": dict(zip(("city", "country"), pick(("Lisbon", "Portugal"), ("Berlin", "Germany"), ("São Paulo", "Brazil"), ("Tokyo", "Japan"), ("Zürich", "Switzerland"))))},
                  "authenticationContext": {"authenticationStep": 0, "externalSessionId": tok("okta_session")},
                  "displayMessage": pick("User login to Okta", "Authentication of user via MFA"), "eventType": pick("user.session.start", "user.authentication.auth_via_mfa"),
                  "outcome": {"result": pick("SUCCESS", "FAILURE"), "reason": pick("INVALID_CREDENTIALS", "VERIFICATION_ERROR", None)},
                  "published": kts("iso_ms"), "severity": pick("INFO", "WARN"),
                  "debugContext": {"debugData": {"requestId": rs(27, B64U), "requestUri": "/api/v1/authn", "threatSuspected": "false", "deviceFingerprint": khash("md5")}},
                  "transaction": {"type": "WEB", "id": rs(27, B64U)}, "uuid": uuid(), "version": "0", "target": [{"id": klong(), "type": "AppInstance"}],
                  "request": {"ipChain": [{"ip": ip(), "version": "V4"}]}})
    if v == 2:
        return J({"date": kts("iso_ms"), "type": pick("fp", "s", "f", "fu"), "description": pick("Wrong email or password.", "Successful login", "Missing required parameter"),
                  "connection": "Username-Password-Authentication", "connection_id": "con_" + rs(16), "client_id": rs(32), "client_name": R.choice(APPS).title() + " Web",
                  "ip": ip(), "user_agent": F("Chrome ", kver("122.0.0"), " / Mac OS X 10.15.7"), "details": {"error": {"message": "Wrong email or password."}},
                  "user_id": F("auth0|", khex("objectid")), "user_name": email(), "strategy": "auth0", "strategy_type": "database",
                  "log_id": K("NUMBER", "900" + tsf("space").replace("-", "").replace(":", "").replace(" ", "") + digits(35, False)), "isMobile": False})
    if v == 3:
        return J({"date": kts("iso_ms"), "type": "seccft", "description": "Client Credentials for Access Token",
                  "client_id": rs(32), "ip": ip(), "details": {"request": {"body": {"grant_type": kword("client_credentials"), "client_secret": pick(sec("alnum40"), kword("*****")),
                                                                                        "audience": "https://api.example.com/"}},
                                                              "response": {"body": {"access_token": jwt(), "token_type": kword("Bearer"), "expires_in": Raw(knum(60, 86400))}}},
                  "log_id": K("NUMBER", "900" + digits(53, False))})
    return T("{{ts}} okta-hooks: inline hook call failed url=https://{{h}}/okta/hook Authorization: SSWS {{t}} status=502 event={{u}}",
             ts=kts("iso_ms"), h=R.choice(PUB_HOSTS), t=tok("okta"), u=uuid())


def src_observability():
    v = R.randrange(8)
    if v == 7:
        return J({"event_id": ktrace(), "level": "error", "platform": "node", "request": {"method": "POST", "url": F("https://", R.choice(PUB_HOSTS), "/api/pay"),
                  "data": {"cardNumber": card(), "email": email()}, "headers": {"Authorization": F("Bearer ", jwt())}},
                  "contexts": {"trace": {"trace_id": ktrace(), "span_id": kspan()}}, "release": F(R.choice(APPS), "@", kver())})
    if v <= 1:
        return J({"event_id": ktrace(), "timestamp": kts("iso_us"), "platform": pick("python", "node", "java"), "level": "error", "logger": pick("django.request", "express", "root"),
                  "server_name": R.choice(NODES), "release": F(R.choice(APPS), "@", kver()), "environment": "production",
                  "user": {"id": pick(knum(1, 999999), klong(18), klong(19)), "email": email(), "ip_address": ip()},
                  "request": {"url": F("https://", R.choice(PUB_HOSTS), "/api/login"), "method": "POST",
                              "headers": {"Authorization": F("Bearer ", bearer_value()), "Cookie": F("sessionid=", tok("django_session"))},
                              "data": {"username": user_name(), "password": pick(kword("[Filtered]"), pw())}},
                  "contexts": {"trace": {"trace_id": ktrace(), "span_id": kspan()}, "runtime": {"name": "CPython", "version": kver("3.11.7")}},
                  "exception": {"values": [{"type": "PermissionDenied", "value": pick("Invalid credentials", "Ungültige Anmeldedaten für Benutzer", "認証に失敗しました", "Identifiants invalides"),
                                            "stacktrace": {"frames": [{"filename": "app/auth/views.py", "function": "login", "lineno": R.randint(10, 300), "abs_path": kcode("py")}]}}]},
                  "sdk": {"name": "sentry.python.django", "version": kver("1.40.6")}})
    ts = kts("utc")
    if v == 2:
        return T("{{ts}} | CORE | INFO | ({{c}} in CheckStarted) | check:{{ch}} | Running check...", ts=ts,
                 c=K("CODE_PATH", "pkg/collector/worker/check_logger.go:%d" % R.randint(40, 90)), ch=pick("postgres", "redisdb", "http_check"))
    if v == 3:
        return T('{{ts}} | CORE | ERROR | ({{c}} in process) | Error while processing transaction: error "403 Forbidden" while sending transaction to "https://7-50-3-app.agent.datadoghq.com/api/v1/validate?api_key={{k}}", rescheduling it',
                 ts=ts, c=K("CODE_PATH", "pkg/forwarder/worker.go:%d" % R.randint(100, 200)), k=K("KEY_NAME", "*" * 27 + hx(5)))
    if v == 4:
        k = pick(F("api_key: ", sec("hex32")), F("app_key: ", sec("hex40")), F("aws_access_key_id: ", akia()), F("password: ", pw()), F("api_key: ", kplace()),
                 F("dd_url: https://app.datadoghq.eu"), F("connection_string: ", ado_conn()))
        return T("{{ts}} | CORE | DEBUG | (pkg/config/setup/config.go:{{l}} in LoadWithoutSecret) | config line: {{k}}", ts=ts, l=str(R.randint(100, 1900)), k=k)
    if v == 5:
        return T("{{ts}} | CORE | INFO | (pkg/logs/internal/launchers/container/launcher.go:{{l}} in startSource) | Starting tailer for container {{c}} image={{i}} pod={{p}}",
                 ts=ts, l=str(R.randint(100, 400)), c=khex("container"), i=kimg(), p=kk8s("pod"))
    return T("{{ts}} | TRACE | WARN | ({{cp}} in handleTraces) | Dropping trace {{t}} from {{ip}}: payload too large ({{n}} bytes) dd.trace_id={{dt}} image={{img}}",
             ts=ts, cp=K("CODE_PATH", "pkg/trace/api/api.go:%d" % R.randint(300, 900)), t=ktrace(), ip=ip(), n=knum(100000, 9999999), dt=K("TRACE_ID", nonluhn(19)), img=kimg())


def gha_prefix():
    return F(kts("iso_7"), " ")


def src_ci_configs():
    v = R.randrange(13)
    if v == 12:
        a, b = pick(("Pulling image '", "'"), ("/usr/bin/docker pull ", ""), ("Status: Downloaded newer image for ", ""), ("Image is up to date for ", ""))
        return F(gha_prefix(), a, kimg(), b)
    if v == 11:
        return F(gha_prefix(), pick(F(khash("sha256"), "  dist/", R.choice(APPS), "-", kver(), "-linux-amd64.tar.gz"),
                                    F("+ echo \"", khash("sha256"), "  terraform_", kver("1.7.4"), "_linux_amd64.zip\" | sha256sum -c"),
                                    F("npm notice integrity: sha512-", K("HASH", b64(64)), " shasum: ", khash("sha1"))))
    if v == 9:
        return F(pick("FROM ", "COPY --from="), kimg(), pick(" AS build", " AS runtime", "", " /app /app"))
    if v == 10:
        return F(gha_prefix(), "+ AWS_ACCESS_KEY_ID=", akia(), " AWS_SECRET_ACCESS_KEY=", awssec(), " aws s3 cp dist/ s3://", R.choice(APPS), "-releases/", kver(), "/ --recursive")
    if v == 0:
        k, val = secret_kv("UPPER")
        return F(gha_prefix(), pick("", "export ", "+ echo "), k, "=", val)
    if v == 1:
        k, val = benign_kv("UPPER")
        return F(gha_prefix(), k, "=", val)
    if v == 2:
        k, val = secret_kv(pick("snake", "camel", "kebab"))
        return F("      ", k, ": ", pick(val, F('"', val, '"')))
    if v == 3:
        return F(gha_prefix(), pick(F("DATABASE_URL=", conn_url()), F("REDIS_URL=", conn_url("redis")), F("AMQP_URL=", conn_url("amqp")),
                                    F("MONGO_URI=", conn_url("mongodb+srv", "cluster0." + rs(5, LOW) + ".mongodb.net"))))
    if v == 4:
        return F(pick("ENV ", "ARG "), pick(F("NPM_TOKEN=", tok("npm")), F("GITHUB_TOKEN=", tok("github")), F("PIP_INDEX_URL=https://__token__:", tok("pypi"), "@pypi.example.com/simple"),
                                             F("APP_VERSION=", kver()), F("BASE_IMAGE=", kimg())))
    if v == 5:
        data = {"password": b64_span("PASSWORD", pw()), "username": b64s(pick("app", "admin"))}
        if chance(0.5):
            data["api-key"] = b64_span("SECRET", sec("hex32"))
        return J({"apiVersion": "v1", "data": data, "kind": "Secret",
                  "metadata": {"name": kk8s("secret"), "namespace": R.choice(NAMESPACES), "uid": uuid(), "resourceVersion": knum(1000, 99999999),
                               "creationTimestamp": kts("iso")}, "type": kword("Opaque")})
    if v == 6:
        return F("+ ", pick(F("docker login -u ", pick("ci", "deploy"), " -p ", pw(), " ", pick("registry.example.com", "ghcr.io")),
                            F("curl -sf -u admin:", pw(), " https://", R.choice(INT_HOSTS), "/api/health"),
                            F("curl -H 'Authorization: Bearer ", bearer_value(), "' https://", R.choice(PUB_HOSTS), "/v1/me"),
                            F("mysql -h ", ip4(), " -uroot -p'", pw(), "' -e 'select 1'"),
                            F("kubectl create secret generic ", kk8s("secret"), " --from-literal=password=", pw(), " --from-literal=api-key=", sec("hex32")),
                            F("helm upgrade --install ", R.choice(APPS), " ./chart --set auth.password=", pw(), " --set image.tag=", kver()),
                            F("aws configure set aws_secret_access_key ", awssec()),
                            F("psql \"postgresql://app:", pw(url=True), "@", ip4(), ":", kport(5432), "/app?sslmode=require\" -c 'select 1'")))
    if v == 7:
        return F("    environment: ", J({"POSTGRES_PASSWORD": pw(), "POSTGRES_USER": "app", "POSTGRES_DB": R.choice(APPS), "PGDATA": "/var/lib/postgresql/data/pgdata"}, sp=True),
                 "  image: ", kimg())
    body = private_key()
    return F(gha_prefix(), pick("SSH_PRIVATE_KEY", "GCP_SA_PRIVATE_KEY", "JWT_SIGNING_KEY", "TLS_KEY"), '="', body, '"')


def src_crash():
    v = R.randrange(13)
    if v == 12:
        return T("    raise PaymentError(f\"gateway rejected {card_number}\")  # card_number = '{{c}}', customer = '{{e}}'", c=card(), e=email())
    if v == 10:
        return T("botocore.exceptions.ClientError: An error occurred (InvalidAccessKeyId) when calling the PutObject operation: The AWS Access Key Id you provided does not exist in our records. (AWSAccessKeyId: {{k}}, RequestId: {{r}})",
                 k=pick(akia(), asia()), r=rs(16, UPP))
    if v == 11:
        return T("jwt.exceptions.ExpiredSignatureError: Signature has expired (token={{j}}, user={{e}})", j=jwt(), e=email())
    if v == 0:
        return T('  File "{{f}}", line {{l}}, in {{fn}}', f=kcode("py"), l=knum(10, 900), fn=pick("charge", "login", "get_connection", "_send"))
    if v == 1:
        return T("    locals: email={{e}} password={{p}} headers={{h}}", e=PY(email()), p=PY(pw()), h=PY({"Authorization": F("Bearer ", bearer_value()), "X-Request-ID": uuid()}))
    if v == 2:
        return T('Caused by: org.postgresql.util.PSQLException: FATAL: password authentication failed for user "{{u}}" (url=jdbc:postgresql://{{ip}}:{{p}}/{{db}}?user={{u2}}&password={{pw}})',
                 u=(u := pick("app", "svc_" + R.choice(APPS))), ip=ip4(), p=kport(5432), db=R.choice(APPS), u2=u, pw=qenc(pw()))
    if v == 3:
        return T("java.lang.IllegalStateException: Invalid card {{c}} for customer {{e}} (ref {{r}})\tat {{f}}", c=card(), e=email(), r=klong(), f=kcode("java"))
    if v == 4:
        return T("main.(*Server).handleLogin(0x{{a}}, {0x{{b}}, 0x{{c}}}, 0x{{d}})", a=K("HEX_ID", "c000" + hx(6)), b=K("HEX_ID", hx(7)), c=K("HEX_ID", "c000" + hx(6)), d=K("HEX_ID", "c000" + hx(6)))
    if v == 5:
        return T("\t{{f}} +0x{{o}}", f=kcode("go"), o=K("HEX_ID", hx(3)))
    if v == 6:
        return T("panic: auth: invalid credentials for request &{Method:POST URL:/login?token={{t}} Header:map[Authorization:[Bearer {{b}}] X-Forwarded-For:[{{ip}}]] RemoteAddr:{{ra}}}",
                 t=tok("opaque"), b=bearer_value(), ip=ip(), ra=ipport())
    if v == 7:
        return T("    at {{fn}} ({{f}})", fn=pick("TokenService.verify", "Object.<anonymous>", "MongoClient.connect", "processTicksAndRejections"), f=kcode("node"))
    if v == 8:
        return T("MongoServerError: bad auth : authentication failed (uri: {{u}}) code={{c}}", u=conn_url("mongodb+srv", "cluster0." + rs(5, LOW) + ".mongodb.net"), c=knum(8, 18))
    return T("{{f}}:in 'charge': Stripe::AuthenticationError: Invalid API Key provided: {{m}} (request_id: req_{{r}}, customer {{e}})",
             f=kcode("rb"), m=K("KEY_NAME", pick("sk_live_", "rk_live_") + "*" * 20 + rs(4)), r=rs(14), e=email())


# --------------------------------------------------------------------------------------------
SOURCES = [
    ("nomad", src_nomad), ("consul", src_consul), ("etcd", src_etcd), ("coredns", src_coredns), ("linkerd-proxy", src_linkerd),
    ("fluentbit-fluentd", src_fluent), ("logstash-beats", src_logstash), ("loki-logfmt", src_loki), ("otel-collector", src_otel),
    ("kong-apigee", src_gateway), ("varnishncsa", src_varnish), ("squid", src_squid), ("tomcat", src_tomcat), ("iis-w3c", src_iis),
    ("aspnetcore", src_aspnet), ("django", src_django), ("rails", src_rails), ("laravel", src_laravel), ("celery-sidekiq", src_jobs),
    ("airflow", src_airflow), ("spark-yarn", src_spark), ("cassandra-clickhouse", src_dbserver), ("k8s-audit", src_k8s_audit),
    ("kube-apiserver-klog", src_kube_apiserver), ("argocd-flux", src_gitops), ("vault-server", src_vault), ("keycloak", src_keycloak),
    ("openldap-slapd", src_slapd), ("freeradius-samba", src_radius), ("exim", src_exim), ("bind-named", src_bind),
    ("filterlog-unifi", src_netdev), ("fortigate-paloalto", src_firewall), ("webhooks", src_webhooks), ("okta-auth0", src_idp),
    ("sentry-datadog", src_observability), ("ci-dotenv-configs", src_ci_configs), ("crash-dumps", src_crash),
]


def build():
    schedule = [name for name, _ in SOURCES for _ in range(PER_SOURCE)]
    R.shuffle(schedule)
    fns = dict(SOURCES)
    records = []
    for i, name in enumerate(schedule, 1):
        CLOCK[0] += datetime.timedelta(seconds=R.randint(1, 600), microseconds=R.randint(0, 999999))
        text, pii, look = render(fns[name]())
        records.append({"id": i, "source": name, "text": text, "pii": pii, "lookalike": look})
    return records


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------
RE_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
RE_UUID = re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
RE_IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")
RE_MAC = re.compile(r"(?i)\b[0-9a-f]{2}(?:[:-][0-9a-f]{2}){5}\b")
RE_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
RE_AKIA = re.compile(r"\b(?:AKIA|ASIA)[A-Z2-7]{16}\b")
RE_DIGITS = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")
IGNORED_IPS = {"0.0.0.0", "127.0.0.1", "10.0.0.0", "10.255.255.255"}


def verify(records):
    errors = []
    kind_of_value = {}
    for rec in records:
        text = rec["text"]
        raw = text.encode("utf-8")
        if "\n" in text or "\r" in text:
            errors.append((rec["id"], "newline in text"))
        spans = [(s, e, k, "pii") for s, e, k in rec["pii"]] + [(s, e, k, "look") for s, e, k in rec["lookalike"]]
        spans.sort()
        for a, b in zip(spans, spans[1:]):
            if b[0] < a[1]:
                errors.append((rec["id"], "overlap %r %r" % (a, b)))
        for s, e, k, cat in spans:
            if not (0 <= s < e <= len(raw)):
                errors.append((rec["id"], "bad span %r" % ((s, e, k),)))
                continue
            val = raw[s:e].decode("utf-8")      # raises if a span cuts a UTF-8 sequence
            prev = kind_of_value.setdefault(val, (cat, k))
            if prev != (cat, k) and "pii" in (prev[0], cat):
                errors.append((rec["id"], "value %r labelled %r and %r" % (val, prev, (cat, k))))
            if cat == "pii" and k == "CREDIT_CARD":
                d = re.sub(r"[ -]", "", unquote(val))
                if not (d.isdigit() and 13 <= len(d) <= 19 and luhn_ok(d)):
                    errors.append((rec["id"], "card fails Luhn %r" % val))
            if cat == "look" and val.isdigit() and 13 <= len(val) <= 19 and luhn_ok(val):
                errors.append((rec["id"], "look-alike number passes Luhn %r" % val))
        # sensitive values left unlabelled somewhere in the line
        covered = bytearray(len(raw))
        for s, e, k, cat in spans:
            for i in range(s, e):
                covered[i] = 1

        def char_to_byte(ci):
            return len(text[:ci].encode("utf-8"))

        def uncovered(m):
            bs, be = char_to_byte(m.start()), char_to_byte(m.end())
            return not any(covered[bs:be])

        for rx, what in ((RE_EMAIL, "email"), (RE_UUID, "uuid"), (RE_IPV4, "ipv4"), (RE_MAC, "mac"), (RE_JWT, "jwt"), (RE_AKIA, "aws key")):
            for m in rx.finditer(text):
                if what == "ipv4" and m.group(0) in IGNORED_IPS:
                    continue
                if uncovered(m):
                    errors.append((rec["id"], "unlabelled %s %r" % (what, m.group(0))))
        for m in RE_DIGITS.finditer(text):
            d = re.sub(r"[ -]", "", m.group(0))
            if luhn_ok(d) and uncovered(m):
                errors.append((rec["id"], "unlabelled Luhn-valid digits %r" % m.group(0)))
        for s, e, k in rec["pii"]:
            val = raw[s:e]
            if len(val) >= 6:
                start = 0
                while True:
                    j = raw.find(val, start)
                    if j < 0:
                        break
                    if not any(ps == j and pe == j + len(val) for ps, pe, _ in rec["pii"]) and not all(covered[j:j + len(val)]):
                        errors.append((rec["id"], "pii value also appears unlabelled %r" % val))
                    start = j + 1
    return errors


def stats(records):
    from collections import Counter
    pii = Counter(k for r in records for _, _, k in r["pii"])
    look = Counter(k for r in records for _, _, k in r["lookalike"])
    src = Counter(r["source"] for r in records)
    recs_of = {}
    for r in records:
        raw = r["text"].encode("utf-8")
        for s, e, k in r["pii"]:
            recs_of.setdefault(raw[s:e], []).append(r["id"])
    distinct = len(recs_of)
    recurring = sum(1 for ids in recs_of.values() if len(set(ids)) > 1)
    return pii, look, src, distinct, recurring


def main():
    records = build()
    for r in records:
        for key in ("pii", "lookalike"):
            for span in r[key]:
                s, e, k, val = span
                assert r["text"].encode("utf-8")[s:e] == val.encode("utf-8"), (r["id"], span)
                del span[3]
    errors = verify(records)
    if errors:
        for e in errors[:60]:
            print("ERROR", e, file=sys.stderr)
        sys.exit("%d verification errors" % len(errors))
    with open(OUT, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    pii, look, src, distinct, recurring = stats(records)
    print("records %d, sensitive values %d, look-alikes %d" % (len(records), sum(pii.values()), sum(look.values())))
    print("pii", dict(sorted(pii.items())))
    print("lookalike", dict(sorted(look.items())))
    print("distinct sensitive values %d, recurring in >1 record %d (%.1f%%)" % (distinct, recurring, 100.0 * recurring / distinct))
    print("sources", len(src), "min per source", min(src.values()))
    short = [k for k in LOOK_KINDS if look[k] < 100] + [k for k in PII_KINDS if pii[k] < 50]
    if short or min(src.values()) < 40:
        sys.exit("coverage too thin: %r" % short)


if __name__ == "__main__":
    main()
