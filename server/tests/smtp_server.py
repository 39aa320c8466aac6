"""A real SMTP server for the tests, built with aiosmtpd (from PyPI): STARTTLS with the given
certificate, AUTH PLAIN/LOGIN required, every accepted message printed as one JSON line.

    smtp_server.py PORT CERT KEY USER PASSWORD

Prints `READY <port>` once it listens on 127.0.0.1, then `{"from", "to", "user", "data"}` per
message. Refuses to accept mail before TLS and AUTH.
"""
import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT, CERT, KEY, USER, PASSWORD = sys.argv[1:6]


class Capture:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "user": session.authenticated and USER,
                    "tls": session.ssl is not None,
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(CERT, KEY)
controller = Controller(
    Capture(),
    hostname="127.0.0.1",
    port=int(PORT),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print(f"READY {controller.port}", flush=True)
try:
    asyncio.get_event_loop().run_until_complete(asyncio.Event().wait())
except KeyboardInterrupt:
    pass
finally:
    controller.stop()
