"""Inbound mail authentication (issue 5), end to end through port 25.

Porter's relay listener receives mail for its local domain from 127.0.0.9, an address
outside its trusted networks, so every message gets the inbound checks: SPF for MAIL FROM
and HELO, DKIM verification, DMARC. Every record lives in a real DNS server on loopback
(tests/dns/fake_dns_server.py) that Porter's c-ares resolver is pointed at. Signatures are
made by dkimpy (Debian's python3-dkim), RSA and Ed25519, never by Porter. Each scenario is
judged by what Porter answers and by the Authentication-Results field of the queued message.

The sending host 127.0.0.9 is allowed by the SPF record of pass.test; every test sends with
an envelope sender there unless it tests SPF itself, so that the From domain decides DMARC.
"""

import base64
import os
import re
import shutil
import smtplib
import subprocess
import tempfile
import time
import unittest
import uuid

import dkim  # python3-dkim (Debian), seen by /usr/bin/python3

from delivery_support import DnsServer
from porter_fixture import PorterServer, PorterTestCase, client_tls_context, run_porter

CLIENT_IP = "127.0.0.9"
AUTHSERV = "mx.porter.test"
ENV = {}


def rsa_key(tmp):
    """A 1024-bit RSA key (RFC 8301 lets verifiers accept 1024 bits; the loopback DNS server
    answers over UDP only, and a 2048-bit key record would not fit 512 bytes)."""
    path = os.path.join(tmp, "rsa.pem")
    subprocess.run(["openssl", "genrsa", "-out", path, "1024"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    with open(path, "rb") as f:
        return f.read(), "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ed25519_key(tmp):
    subprocess.run(["dknewkey", "--ktype", "ed25519", "ed"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(tmp, "ed.key"), "rb") as f:
        private = f.read().strip()
    with open(os.path.join(tmp, "ed.dns")) as f:
        record = re.search(r"v=DKIM1[^\"]*", f.read().replace('" "', "")).group(0).strip()
    return private, record


def zone(rsa_record, ed_record):
    records = {
        # SPF: 127.0.0.9 may send for pass.test; spffail.test allows only another host.
        "pass.test": ["v=spf1 ip4:%s -all" % CLIENT_IP],
        "spffail.test": ["v=spf1 ip4:192.0.2.1 -all"],
        "soft.test": ["v=spf1 ~all"],
        "helo.pass.test": ["v=spf1 ip4:%s -all" % CLIENT_IP],
        # DMARC, each domain a scenario.
        "_dmarc.pass.test": ["v=DMARC1; p=reject"],
        "_dmarc.reject.test": ["v=DMARC1; p=reject"],
        "_dmarc.quarantine.test": ["v=DMARC1; p=quarantine"],
        "_dmarc.pct0.test": ["v=DMARC1; p=reject; pct=0"],
        "_dmarc.parent.test": ["v=DMARC1; p=none; sp=reject"],
        "_dmarc.nonepolicy.test": ["v=DMARC1; p=none"],
        "_dmarc.signed.test": ["v=DMARC1; p=reject; adkim=s"],
        "_dmarc.strict.test": ["v=DMARC1; p=reject; aspf=s"],
        "rsa._domainkey.signed.test": [rsa_record],
        "ed._domainkey.signed.test": [ed_record],
        "rsa._domainkey.other.test": [rsa_record],
    }
    lines = ["$ORIGIN test.", "$TTL 60",
             "test. 3600 IN SOA ns.test. hostmaster.test. 1 7200 900 1209600 2"]
    for name, texts in records.items():
        for text in texts:
            lines.append('%s. 60 IN TXT "%s"' % (name, text))
    return "\n".join(lines) + "\n"


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="porter-inbound-")
    ENV["tmp"] = tmp
    ENV["rsa"], rsa_record = rsa_key(tmp)
    ENV["ed"], ed_record = ed25519_key(tmp)
    ENV["dns"] = DnsServer(zone(rsa_record, ed_record)).start()


def tearDownModule():
    if "dns" in ENV:
        ENV["dns"].stop()
    if "tmp" in ENV and not os.environ.get("PORTER_KEEP_TMP"):
        shutil.rmtree(ENV["tmp"], ignore_errors=True)


def message(token, from_addr, extra_headers=()):
    headers = ["From: <%s>" % from_addr, "To: <user@local.test>",
               "Subject: inbound %s" % token, "Message-ID: <%s@example>" % token]
    headers += list(extra_headers)
    body = ["Body of %s." % token, "Second line."]
    return ("\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def sign(msg, domain, selector, key, include=(b"from", b"to", b"subject")):
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    include_headers=list(include),
                    signature_algorithm=b"ed25519-sha256" if selector == "ed" else b"rsa-sha256")
    return sig + msg


def auth_results(stored):
    """The Authentication-Results fields of a stored message, unfolded, as text."""
    head = stored.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    head = re.sub(r"\r\n[ \t]+", " ", head)
    return [line.split(":", 1)[1].strip() for line in head.split("\r\n")
            if line.lower().startswith("authentication-results:")]


class InboundCase(PorterTestCase):
    porter = None
    settings = {}

    @classmethod
    def setUpClass(cls):
        settings = {
            "delivery": {"enabled": False, "dns_servers": [ENV["dns"].address]},
            "inbound": {"spf": "enforce", "dkim": True, "dmarc": "enforce"},
        }
        for section, values in cls.settings.items():
            settings.setdefault(section, {}).update(values)
        cls.porter = PorterServer("inbound-" + cls.__name__, roles=("relay",), tls=False,
                                  settings=settings)
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def setUp(self):
        self.token = uuid.uuid4().hex

    def send(self, mail_from, msg, helo="helo.pass.test", source=CLIENT_IP):
        """Sends one message from `source`; returns (code, text) of the final reply or of the
        first refused command."""
        with smtplib.SMTP("127.0.0.1", self.porter.port("relay"), local_hostname=helo,
                          source_address=(source, 0), timeout=30) as s:
            s.ehlo(helo)
            code, text = s.mail(mail_from)
            if code != 250:
                return code, text.decode()
            code, text = s.rcpt("user@local.test")
            self.assertEqual(code, 250, text)
            code, text = s.data(msg)
            return code, text.decode()

    def stored(self):
        ids = self.porter.messages_containing(self.token.encode())
        self.assertEqual(len(ids), 1, "expected one queued message with the token")
        return self.porter.queue_cat(ids[0])

    def accepted(self, mail_from, msg, **kw):
        code, text = self.send(mail_from, msg, **kw)
        self.assertEqual(code, 250, text)
        stored = self.stored()
        fields = auth_results(stored)
        ours = [f for f in fields if f.lower().startswith(AUTHSERV + ";")]
        self.assertEqual(len(ours), 1, fields)
        return stored, ours[0]

    def refused(self, mail_from, msg, code, enhanced, **kw):
        got, text = self.send(mail_from, msg, **kw)
        self.assertEqual(got, code, text)
        self.assertTrue(text.startswith(enhanced), text)
        self.assertEqual(self.porter.messages_containing(self.token.encode()), [])
        return text


class EnforcedTest(InboundCase):

    # --- SPF ---------------------------------------------------------------------------

    def test_spf_pass_and_helo_recorded(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "a@pass.test"))
        self.assertIn("spf=pass smtp.mailfrom=a@pass.test", ar)
        self.assertIn("spf=pass smtp.helo=helo.pass.test", ar)
        self.assertIn("dmarc=pass", ar)
        self.assertIn("header.from=pass.test", ar)

    def test_spf_fail_refused_at_mail(self):
        text = self.refused("a@spffail.test", message(self.token, "a@spffail.test"), 550,
                            "5.7.23")
        self.assertIn("spffail.test", text)
        self.assertTrue(self.porter.wait_for_log(r"reject .*5\.7\.23"))

    def test_spf_softfail_recorded_not_refused(self):
        _, ar = self.accepted("a@soft.test", message(self.token, "a@soft.test"))
        self.assertIn("spf=softfail smtp.mailfrom=a@soft.test", ar)
        self.assertIn("dmarc=none", ar)

    def test_null_sender_checks_helo_identity(self):
        _, ar = self.accepted("<>", message(self.token, "mailer-daemon@pass.test"))
        self.assertIn("spf=pass smtp.mailfrom=postmaster@helo.pass.test", ar)

    def test_trusted_client_skips_the_checks(self):
        code, text = self.send("a@spffail.test", message(self.token, "a@reject.test"),
                               source="127.0.0.1")
        self.assertEqual(code, 250, text)
        self.assertEqual(auth_results(self.stored()), [])

    # --- DMARC -------------------------------------------------------------------------

    def test_dmarc_reject_refused_after_data(self):
        text = self.refused("a@pass.test", message(self.token, "ceo@reject.test"), 550, "5.7.1")
        self.assertIn("DMARC fail for From domain reject.test", text)

    def test_dmarc_quarantine_accepted_and_marked(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "x@quarantine.test"))
        self.assertIn("dmarc=fail (p=quarantine dis=quarantine) header.from=quarantine.test", ar)
        self.assertTrue(self.porter.wait_for_log(r"inbound id=\S+ .*action=quarantine"))

    def test_dmarc_pct0_lowers_reject_to_quarantine(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "x@pct0.test"))
        self.assertIn("dmarc=fail (p=reject dis=quarantine)", ar)

    def test_dmarc_subdomain_policy(self):
        self.refused("a@pass.test", message(self.token, "x@sub.parent.test"), 550, "5.7.1")

    def test_dmarc_policy_none_only_records(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "x@nonepolicy.test"))
        self.assertIn("dmarc=fail (p=none dis=none)", ar)

    def test_no_dmarc_record(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "x@nodmarc.test"))
        self.assertIn("dmarc=none", ar)

    def test_strict_spf_alignment(self):
        # SPF passes for pass.test, but From is a subdomain and strict.test wants aspf=s.
        self.refused("a@pass.test", message(self.token, "x@strict.test"), 550, "5.7.1")

    # --- DKIM --------------------------------------------------------------------------

    def test_dkim_rsa_and_ed25519_pass_and_align(self):
        msg = message(self.token, "boss@signed.test")
        msg = sign(sign(msg, "signed.test", "rsa", ENV["rsa"]), "signed.test", "ed", ENV["ed"])
        stored, ar = self.accepted("a@pass.test", msg)
        self.assertIn("dkim=pass header.d=signed.test header.s=rsa header.a=rsa-sha256", ar)
        self.assertIn("dkim=pass header.d=signed.test header.s=ed header.a=ed25519-sha256", ar)
        self.assertIn("dmarc=pass", ar)
        # What was queued still verifies with dkimpy: Porter's additions are above the
        # signatures and changed no signed byte.
        self.assertTrue(dkim.verify(stored, dnsfunc=self.dnsfunc))

    def test_dkim_tampered_body_fails_and_dmarc_rejects(self):
        msg = sign(message(self.token, "boss@signed.test"), "signed.test", "rsa", ENV["rsa"])
        tampered = msg.replace(b"Second line.", b"Second line!")
        text = self.refused("a@pass.test", tampered, 550, "5.7.1")
        self.assertIn("signed.test", text)
        self.assertTrue(self.porter.wait_for_log(r"dkim=fail"))

    def test_dkim_tampered_header_fails(self):
        msg = sign(message(self.token, "boss@signed.test"), "signed.test", "ed", ENV["ed"])
        tampered = msg.replace(b"Subject: inbound", b"Subject: Inbound")
        self.refused("a@pass.test", tampered, 550, "5.7.1")

    def test_dkim_unaligned_signature_does_not_satisfy_dmarc(self):
        # A valid signature by other.test does not speak for From: reject.test.
        msg = sign(message(self.token, "x@reject.test"), "other.test", "rsa", ENV["rsa"])
        self.refused("a@pass.test", msg, 550, "5.7.1")

    def test_dkim_missing_key_is_permerror(self):
        msg = sign(message(self.token, "x@nodmarc.test"), "nokey.test", "rsa", ENV["rsa"])
        _, ar = self.accepted("a@pass.test", msg)
        self.assertIn("dkim=permerror", ar)

    # --- the header field ----------------------------------------------------------------

    def test_forged_authentication_results_removed(self):
        forged = ["Authentication-Results: %s; dkim=pass header.d=bank.test" % AUTHSERV,
                  "Authentication-Results: other.example; spf=pass"]
        stored, ar = self.accepted("a@pass.test",
                                   message(self.token, "a@pass.test", extra_headers=forged))
        self.assertNotIn(b"bank.test", stored)
        self.assertIn(b"Authentication-Results: other.example; spf=pass", stored)
        self.assertNotIn("bank.test", ar)

    def dnsfunc(self, name, timeout=5):
        # dkimpy asks for the key records; answer from the zone the test serves.
        name = name.decode() if isinstance(name, bytes) else name
        import dns.resolver  # python3-dnspython, dkimpy's dependency
        r = dns.resolver.Resolver(configure=False)
        r.nameservers = ["127.0.0.1"]
        r.port = ENV["dns"].port
        answer = r.resolve(name.rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(rr.strings) for rr in answer)


class QuarantineDeliveryTest(InboundCase):
    """DMARC quarantine, end to end: the message is delivered into the recipient's Junk,
    a passing one into INBOX."""
    settings = {"delivery": {"enabled": True}}

    def folder_of(self, token):
        def find():
            for box in ("INBOX", "Junk"):
                r = self.porter.cli("mailbox", "list", "mailroom", box, check=False)
                if r.returncode != 0:
                    continue
                for uid in re.findall(r"^\s*(\d+)\s+\d+\s", r.stdout.decode(), re.M):
                    body = self.porter.cli("mailbox", "cat", "mailroom", box, uid).stdout
                    if token.encode() in body:
                        return box, body
            return None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = find()
            if found:
                return found
            time.sleep(0.1)
        self.fail("message %s was not delivered" % token)

    def test_quarantined_message_lands_in_junk(self):
        code, text = self.send("a@pass.test", message(self.token, "x@quarantine.test"))
        self.assertEqual(code, 250, text)
        box, stored = self.folder_of(self.token)
        self.assertEqual(box, "Junk")
        self.assertIn(b"dmarc=fail (p=quarantine dis=quarantine)", stored)

    def test_passing_message_lands_in_inbox(self):
        code, text = self.send("a@pass.test", message(self.token, "a@pass.test"))
        self.assertEqual(code, 250, text)
        box, _ = self.folder_of(self.token)
        self.assertEqual(box, "INBOX")


class ReportOnlyTest(InboundCase):
    settings = {"inbound": {"spf": "report", "dkim": True, "dmarc": "report"}}

    def test_spf_fail_only_recorded(self):
        _, ar = self.accepted("a@spffail.test", message(self.token, "a@spffail.test"))
        self.assertIn("spf=fail smtp.mailfrom=a@spffail.test", ar)

    def test_dmarc_reject_only_recorded(self):
        _, ar = self.accepted("a@pass.test", message(self.token, "ceo@reject.test"))
        self.assertIn("dmarc=fail (p=reject dis=reject)", ar)


class OffTest(InboundCase):
    settings = {"inbound": {"spf": "off", "dkim": False, "dmarc": "off"}}

    def test_nothing_checked_one_empty_field(self):
        _, ar = self.accepted("a@spffail.test", message(self.token, "ceo@reject.test"))
        self.assertEqual(ar, AUTHSERV + "; none")


class AlignmentTest(PorterTestCase):
    """Outgoing mail (submission with AUTH) whose From domain publishes DMARC while Porter
    holds no DKIM key for it: refused when the policy would make receivers act, else a
    warning in the log ([submission] dmarc_alignment = "refuse")."""

    @classmethod
    def setUpClass(cls):
        cls.porter = PorterServer("alignment", roles=("submission",), settings={
            "delivery": {"enabled": False, "dns_servers": [ENV["dns"].address]},
            "submission": {"dmarc_alignment": "refuse"},
        }, users=[("alice", "alice-secret", ["@reject.test", "@nonepolicy.test",
                                             "@nodmarc.test", "@signed.test"])])
        key_file = cls.porter.dir + "/signed.key"
        r = run_porter(["dkim", "keygen", "signed.test", "sel", "--out", key_file])
        assert r.returncode == 0, r.stderr
        cls.porter.settings["dkim"] = [{"domain": "signed.test", "selector": "sel",
                                        "key_file": key_file}]
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def submit(self, from_addr, rcpt="friend@remote.test"):
        token = uuid.uuid4().hex
        with smtplib.SMTP("127.0.0.1", self.porter.port("submission"), timeout=30) as s:
            s.ehlo("client.test")
            s.starttls(context=client_tls_context())
            s.ehlo("client.test")
            s.login("alice", "alice-secret")
            s.mail(from_addr)
            s.rcpt(rcpt)
            code, text = s.data(message(token, from_addr))
            return code, text.decode(), token

    def test_reject_policy_without_key_refused(self):
        code, text, _ = self.submit("alice@reject.test")
        self.assertEqual(code, 550, text)
        self.assertTrue(text.startswith("5.7.1 From domain reject.test publishes DMARC (p=reject"),
                        text)
        self.assertIn("no DKIM key", text)

    def test_policy_none_only_warned(self):
        code, text, token = self.submit("alice@nonepolicy.test")
        self.assertEqual(code, 250, text)
        self.assertTrue(self.porter.wait_for_log(r"dmarc-unaligned .*action=warn"))

    def test_no_record_no_warning_and_signed_domain_not_looked_up(self):
        before = len(ENV["dns"].queries())
        for sender in ("alice@nodmarc.test", "alice@signed.test"):
            code, text, _ = self.submit(sender)
            self.assertEqual(code, 250, text)
        queried = [n for n, _ in ENV["dns"].queries()[before:]]
        self.assertIn("_dmarc.nodmarc.test", queried)
        self.assertNotIn("_dmarc.signed.test", queried)
        self.assertNotIn("nodmarc.test", re.findall(r"dmarc-unaligned .*From domain (\S+)",
                                                    self.porter.log_text()))

    def test_local_recipients_need_no_alignment(self):
        code, text, _ = self.submit("alice@reject.test", rcpt="user@local.test")
        self.assertEqual(code, 250, text)


if __name__ == "__main__":
    unittest.main()
