"""Real parts for the delivery integration tests: SMTP receivers and a loopback DNS server.

Receiver is a Python aiosmtpd server on one loopback address and port, run in a background
thread. It records every transaction it accepts (envelope, raw bytes, TLS, the TCP connection
it came on) and every MAIL/RCPT/DATA it answered, and refuses or delays what the test asks
for through rules matched on the sender, the recipient or the recipient's domain, so one set
of receivers serves every test of a file: each test uses its own sender and domains.

DnsServer runs tests/dns/fake_dns_server.py (a dnslib server with SERVFAIL and drop faults)
on 127.0.0.1 and a free port; mx_zone() writes the zone text.

Also: common_port() finds a port free on several loopback addresses, make_cert() a
self-signed certificate, submit() injects mail into a porter through its relay listener,
Dsn takes a delivery status notification apart with Python's email package, and
wait_until() polls.
"""

import asyncio
import email
import email.policy
import itertools
import logging
import os
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

# aiosmtpd logs every session error (a test's failed TLS handshake) with a traceback.
logging.getLogger("mail.log").setLevel(logging.CRITICAL)

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_DNS = os.path.join(os.path.dirname(HERE), "dns", "fake_dns_server.py")


def wait_until(predicate, timeout=10, interval=0.05):
    """Polls `predicate` until it returns something true; returns that, or the last false
    value after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def common_port(addresses, tries=50):
    """A TCP port that is free on every one of `addresses`."""
    for _ in range(tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind((addresses[0], 0))
            port = first.getsockname()[1]
            ok = True
            for addr in addresses[1:]:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    try:
                        s.bind((addr, port))
                    except OSError:
                        ok = False
                        break
            if ok:
                return port
    raise RuntimeError("no port free on all of %s" % (addresses,))


def make_cert(directory, name, dns_names):
    """A self-signed certificate (also usable as its own CA) for `dns_names`; returns
    (cert_path, key_path)."""
    cert = os.path.join(directory, name + ".crt")
    key = os.path.join(directory, name + ".key")
    san = ",".join("DNS:" + n for n in dns_names)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=" + dns_names[0], "-addext", "subjectAltName=" + san,
                    "-keyout", key, "-out", cert], check=True, capture_output=True, timeout=60)
    return cert, key


# --- DNS -------------------------------------------------------------------------------------

def mx_zone(mx_domains, hosts, null_mx=()):
    """Zone text for the origin "test.": mx_domains {domain: [(pref, host), ...]},
    hosts {host: ipv4}, null_mx [domain] (RFC 7505 "MX 0 ."). The SOA
    minimum (the negative TTL) is short so that no negative answer outlives a test."""
    lines = ["$ORIGIN test.", "$TTL 60",
             "test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 2"]
    for domain, mxs in mx_domains.items():
        for pref, host in mxs:
            lines.append("%s. 60 IN MX %d %s." % (domain, pref, host))
    for domain in null_mx:
        lines.append("%s. 60 IN MX 0 ." % domain)
    for host, ip in hosts.items():
        lines.append("%s. 60 IN A %s" % (host, ip))
    return "\n".join(lines) + "\n"


class DnsServer:
    """fake_dns_server.py on 127.0.0.1 and a free port, serving `zone_text`."""

    def __init__(self, zone_text, servfail=(), drop=()):
        self.dir = tempfile.mkdtemp(prefix="porter-dns-")
        self.zone_path = os.path.join(self.dir, "test.zone")
        with open(self.zone_path, "w") as f:
            f.write(zone_text)
        self.servfail = list(servfail)
        self.drop = list(drop)
        self.proc = None
        self.port = None

    def start(self):
        args = ["/usr/bin/python3", FAKE_DNS, "--zone", self.zone_path, "--port", "0", "--log"]
        for name in self.servfail:
            args += ["--servfail", name]
        for name in self.drop:
            args += ["--drop", name]
        self.log_path = os.path.join(self.dir, "dns.log")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL)
        line = self.proc.stdout.readline().decode()
        m = re.match(r"ready (\d+)", line)
        if not m:
            self.stop()
            raise RuntimeError("fake DNS server did not start: %r" % line)
        self.port = int(m.group(1))
        return self

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def queries(self):
        """(name, type) of every query received so far (names without the final dot)."""
        with open(self.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        return [(n.rstrip(".").lower(), t) for n, t in re.findall(r"^query (\S+) (\S+)$", text,
                                                                  re.M)]

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdout.close()
            self.proc = None
            self._log.close()
        if not os.environ.get("PORTER_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)


# --- SMTP receivers --------------------------------------------------------------------------

class Received:
    """One transaction a Receiver accepted."""

    def __init__(self, receiver, conn_id, mail_from, mail_options, rcpt_tos, data, tls):
        self.receiver = receiver
        self.conn_id = conn_id
        self.mail_from = mail_from
        self.mail_options = mail_options
        self.rcpt_tos = rcpt_tos
        self.data = data
        self.tls = tls

    def __repr__(self):
        return "Received(%s conn=%d <%s> -> %s, %d bytes%s)" % (
            self.receiver, self.conn_id, self.mail_from, self.rcpt_tos, len(self.data),
            ", tls" if self.tls else "")


class Rule:
    """Refuse or delay at one stage ("MAIL", "RCPT" or "DATA", the reply to the end of
    data) when every given condition holds: `sender` (MAIL FROM), `rcpt` (RCPT TO, or any
    recipient at DATA) and `domain` (a recipient's domain). `reply` None accepts (after
    `delay` seconds)."""

    def __init__(self, stage, reply=None, delay=0.0, sender=None, rcpt=None, domain=None):
        assert stage in ("MAIL", "RCPT", "DATA")
        self.stage = stage
        self.reply = reply
        self.delay = delay
        self.sender = sender.lower() if sender is not None else None
        self.rcpt = rcpt.lower() if rcpt is not None else None
        self.domain = domain.lower() if domain is not None else None

    def matches(self, stage, sender, rcpts):
        if stage != self.stage:
            return False
        if self.sender is not None and (sender or "").lower() != self.sender:
            return False
        rcpts = [r.lower() for r in rcpts]
        if self.rcpt is not None and self.rcpt not in rcpts:
            return False
        if self.domain is not None and not any(r.rpartition("@")[2] == self.domain
                                               for r in rcpts):
            return False
        return True


def _reverse_path(address):
    # aiosmtpd gives the null reverse-path as "<>" (and needs a true value there).
    return "" if address == "<>" else address


class _Handler:
    def __init__(self, receiver):
        self.r = receiver

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.r._event(server, "EHLO", hostname, "250")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        sender = _reverse_path(address)
        reply = await self.r._decide("MAIL", sender, [])
        self.r._event(server, "MAIL", sender, reply or "250")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await self.r._decide("RCPT", _reverse_path(envelope.mail_from), [address])
        self.r._event(server, "RCPT", address, reply or "250")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        sender = _reverse_path(envelope.mail_from)
        reply = await self.r._decide("DATA", sender, envelope.rcpt_tos)
        self.r._event(server, "DATA", sender, reply or "250")
        if reply:
            return reply
        self.r._record(Received(self.r.name, server.conn_id, sender,
                                list(envelope.mail_options), list(envelope.rcpt_tos),
                                envelope.original_content, session.ssl is not None))
        return "250 2.0.0 Ok: queued by %s" % self.r.name


class _Smtp(SMTP):
    """aiosmtpd's SMTP that numbers its TCP connections (a STARTTLS keeps the number)."""

    def __init__(self, handler, receiver, **kwargs):
        super().__init__(handler, **kwargs)
        self.receiver = receiver
        self.conn_id = None

    def connection_made(self, transport):
        if self.conn_id is None:
            self.conn_id = self.receiver._new_connection()
        super().connection_made(transport)


class _Controller(Controller):
    def __init__(self, receiver, **kwargs):
        self.receiver = receiver
        super().__init__(_Handler(receiver), **kwargs)

    def factory(self):
        return _Smtp(self.handler, self.receiver, **self.SMTP_kwargs)


class Receiver:
    """An aiosmtpd server on (host, port).

    tls: (cert, key) to offer STARTTLS; legacy_tls: only TLS 1.0 with weak ciphers (a
    handshake today's OpenSSL clients refuse). smtputf8: offer SMTPUTF8."""

    def __init__(self, name, host, port, tls=None, smtputf8=False, legacy_tls=False):
        self.name = name
        self.host = host
        self.port = port
        self.tls = tls
        self.smtputf8 = smtputf8
        self.legacy_tls = legacy_tls
        self.rules = []
        self.received = []
        self.events = []  # (time, conn_id, stage, argument, reply)
        self._lock = threading.Lock()
        self._conn_ids = itertools.count(1)
        self.controller = None

    def start(self):
        kwargs = {"hostname": self.host, "port": self.port, "server_hostname": self.name,
                  "enable_SMTPUTF8": self.smtputf8, "decode_data": False,
                  "ready_timeout": 10}
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            if self.legacy_tls:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
                with warnings.catch_warnings():  # deprecated: that is the point
                    warnings.simplefilter("ignore", DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
                    ctx.maximum_version = ssl.TLSVersion.TLSv1
            kwargs["tls_context"] = ctx
        self.controller = _Controller(self, **kwargs)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    # --- rules -----------------------------------------------------------------------------

    def add_rule(self, stage, reply=None, **conditions):
        rule = Rule(stage, reply, **conditions)
        with self._lock:
            self.rules.append(rule)
        return rule

    def remove_rule(self, rule):
        with self._lock:
            if rule in self.rules:
                self.rules.remove(rule)

    async def _decide(self, stage, sender, rcpts):
        with self._lock:
            rule = next((r for r in self.rules if r.matches(stage, sender, rcpts)), None)
        if rule is None:
            return None
        if rule.delay:
            await asyncio.sleep(rule.delay)
        return rule.reply

    # --- records ---------------------------------------------------------------------------

    def _new_connection(self):
        with self._lock:
            return next(self._conn_ids)

    def _event(self, server, stage, argument, reply):
        with self._lock:
            self.events.append((time.monotonic(), server.conn_id, stage, argument or "", reply))

    def _record(self, received):
        with self._lock:
            self.received.append(received)

    def messages(self, token=None, rcpt=None):
        """Accepted transactions whose bytes contain `token` (str) and/or whose recipients
        include `rcpt`."""
        with self._lock:
            out = list(self.received)
        if token is not None:
            out = [m for m in out if token.encode() in m.data]
        if rcpt is not None:
            out = [m for m in out if rcpt.lower() in (r.lower() for r in m.rcpt_tos)]
        return out

    def mail_events(self, sender):
        """(time, conn_id, reply) of every MAIL FROM:<sender> this receiver answered."""
        with self._lock:
            return [(t, c, reply) for t, c, stage, arg, reply in self.events
                    if stage == "MAIL" and arg.lower() == sender.lower()]


# --- talking to porter -----------------------------------------------------------------------

def submit(porter, sender, rcpts, msg, mail_options=(), rcpt_options=None,
           source="127.0.0.1"):
    """Sends one message through porter's relay listener (127.0.0.1 is trusted); returns
    the queue ID from the 250 reply. rcpt_options: {recipient: [parameters]}."""
    with smtplib.SMTP("127.0.0.1", porter.port("relay"), local_hostname="injector.test",
                      timeout=30, source_address=(source, 0)) as s:
        return submit_on(s, sender, rcpts, msg, mail_options, rcpt_options)


def submit_on(s, sender, rcpts, msg, mail_options=(), rcpt_options=None):
    """One transaction on an open smtplib connection; returns the queue ID."""
    s.ehlo_or_helo_if_needed()
    code, resp = s.mail(sender or "<>", list(mail_options))
    if code != 250:
        raise AssertionError("MAIL refused: %d %r" % (code, resp))
    for r in rcpts:
        code, resp = s.rcpt(r, list((rcpt_options or {}).get(r, ())))
        if code != 250:
            raise AssertionError("RCPT %s refused: %d %r" % (r, code, resp))
    code, resp = s.data(msg)
    if code != 250:
        raise AssertionError("DATA refused: %d %r" % (code, resp))
    m = re.search(r"queued as ([0-9A-Z]{16})", resp.decode())
    if not m:
        raise AssertionError("no queue ID in %r" % resp)
    return m.group(1)


# --- DSNs ------------------------------------------------------------------------------------

class Dsn:
    """A delivery status notification taken apart: `msg` (the whole email.message),
    `report` (its per-message fields, a dict with lower-case keys), `recipients` (one dict
    per recipient block), `notification` (the human text), `returned` (the part that
    returns the original, or None)."""

    def __init__(self, data):
        # Parsed as text: Python's bytes parser garbles UTF-8 inside message/global parts.
        self.msg = email.message_from_string(data.decode("utf-8", "replace"),
                                             policy=email.policy.compat32)
        self.report = {}
        self.recipients = []
        self.notification = None
        self.returned = None
        self.status_part = None
        if not self.msg.is_multipart():
            return
        parts = self.msg.get_payload()
        for part in parts:
            ctype = part.get_content_type()
            if ctype in ("message/delivery-status", "message/global-delivery-status"):
                self.status_part = part
                blocks = _status_blocks(part)
                if blocks:
                    self.report = blocks[0]
                    self.recipients = blocks[1:]
            elif ctype == "text/plain" and self.notification is None:
                self.notification = part.get_payload(decode=True).decode("utf-8", "replace")
            elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers",
                           "message/global-headers"):
                self.returned = part

    def returned_bytes(self):
        """The returned original (or its headers) as bytes."""
        if self.returned is None:
            return b""
        payload = self.returned.get_payload()
        if isinstance(payload, list):  # message/rfc822 parsed into a Message
            return payload[0].as_string().encode("utf-8")
        return payload.encode("utf-8")


def _fields(text):
    """Header-style fields of one status block, unfolded, keys lower-cased."""
    out = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            out[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            out[key] = value.strip()
    return out


def _status_blocks(part):
    payload = part.get_payload()
    if not isinstance(payload, list):
        text = payload.replace("\r\n", "\n")
        return [_fields(b) for b in re.split(r"\n\s*\n", text) if b.strip()]
    # Python parses message/delivery-status into one Message per block, but
    # message/global-delivery-status like message/global: the first block as the headers of
    # one message whose body holds the other blocks.
    blocks = []
    for block in payload:
        blocks.append({k.lower(): re.sub(r"\s+", " ", str(v)).strip()
                       for k, v in block.items()})
        body = block.get_payload()
        if isinstance(body, str) and body.strip():
            text = body.replace("\r\n", "\n")
            blocks += [_fields(b) for b in re.split(r"\n\s*\n", text) if b.strip()]
    return blocks
