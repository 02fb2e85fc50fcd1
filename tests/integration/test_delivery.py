"""Delivery (issue 3), end to end on loopback with real parts.

A real DNS server (tests/dns/fake_dns_server.py) on 127.0.0.1 serves a zone in which every
test domain has three MX hosts, mx1.test (pref 10, 127.0.0.2), mx2.test (20, 127.0.0.3) and
mx3.test (30, 127.0.0.4); mx-tls.test (127.0.0.6) offers STARTTLS; the senders' domain
sender.test has its MX on 127.0.0.7, where the DSNs arrive. The receivers are aiosmtpd
servers (delivery_support.Receiver) on one common port, which is porter's `remote_port`;
they refuse or delay what a test asks for, matched on its own sender or domains, so the
tests share them. A second porter with a submission listener (STARTTLS + AUTH) serves as
the smarthost.

Mail enters porter through its relay listener from 127.0.0.1 (trusted), as an application
would send it.
"""

import os
import re
import shutil
import smtplib
import tempfile
import time
import unittest
import uuid

from delivery_support import (DnsServer, Dsn, Receiver, common_port, make_cert, mx_zone,
                              submit, submit_on, wait_until)
from porter_fixture import PorterServer, PorterTestCase, header_names, make_message

MX1, MX2, MX3 = "127.0.0.2", "127.0.0.3", "127.0.0.4"
TLS_IP = "127.0.0.6"
SENDER_IP = "127.0.0.7"
OLD_TLS_IP = "127.0.0.8"

# Domains whose mail goes to mx1/mx2/mx3 by preference; each test has its own.
THREE_MX_DOMAINS = [
    "primary.test", "down.test", "tempmail.test", "tempdata.test", "deferred.test",
    "reject.test", "dataerror.test", "deadbox.test", "reuse.test", "multi.test",
    "multi2.test", "utf8.test", "enc.test", "flush.test", "crash.test", "partial.test",
    "notify.test", "slow.test", "late.test",
]

ENV = {}  # module fixtures: dns, receivers, port, cert, tmp


def setUpModule():
    tmp = tempfile.mkdtemp(prefix="porter-delivery-")
    ENV["tmp"] = tmp
    cert, key = make_cert(tmp, "mx-tls", ["mx-tls.test"])
    ENV["cert"] = cert
    mx = {d: [(10, "mx1.test"), (20, "mx2.test"), (30, "mx3.test")] for d in THREE_MX_DOMAINS}
    mx.update({
        "tls.test": [(10, "mx-tls.test")],
        "verify.test": [(10, "mx-tls.test")],
        # The same server under a name its certificate does not carry.
        "badverify.test": [(10, "mx-tls-alias.test")],
        "sender.test": [(10, "mx-sender.test")],
        "oldtls.test": [(10, "mx-oldtls.test")],
        # porter itself (its hostname) in the MX list
        "selfmx.test": [(10, "mx1.test"), (20, "mx.porter.test"), (30, "mx3.test")],
        "selfbest.test": [(10, "mx.porter.test"), (20, "mx2.test")],
    })
    hosts = {"mx1.test": MX1, "mx2.test": MX2, "mx3.test": MX3, "mx-tls.test": TLS_IP,
             "mx-tls-alias.test": TLS_IP, "mx-sender.test": SENDER_IP,
             "mx.porter.test": "127.0.0.1", "smart.test": "127.0.0.1",
             "mx-oldtls.test": OLD_TLS_IP}
    dns = DnsServer(mx_zone(mx, hosts, null_mx=["nullmx.test"]),
                    servfail=["servfail.test"], drop=["drop.test"])
    ENV["dns"] = dns.start()
    port = common_port([MX1, MX2, MX3, TLS_IP, SENDER_IP, OLD_TLS_IP])
    ENV["port"] = port
    receivers = {
        "mx1": Receiver("mx1.test", MX1, port),
        "mx2": Receiver("mx2.test", MX2, port),
        "mx3": Receiver("mx3.test", MX3, port),
        "tls": Receiver("mx-tls.test", TLS_IP, port, tls=(cert, key)),
        "oldtls": Receiver("mx-oldtls.test", OLD_TLS_IP, port, tls=(cert, key), legacy_tls=True),
        # The senders' mailbox; it offers SMTPUTF8 so that DSNs about SMTPUTF8 mail arrive.
        "sender": Receiver("mx-sender.test", SENDER_IP, port, smtputf8=True),
    }
    ENV["receivers"] = receivers
    for r in receivers.values():
        r.start()


def tearDownModule():
    for r in ENV.get("receivers", {}).values():
        r.stop()
    if "dns" in ENV:
        ENV["dns"].stop()
    if "tmp" in ENV and not os.environ.get("PORTER_KEEP_TMP"):
        shutil.rmtree(ENV["tmp"], ignore_errors=True)


def delivering_porter(name, **delivery):
    settings = {"enabled": True, "remote_port": ENV["port"], "dns_servers": [ENV["dns"].address],
                "retry": [1, 1, 2], "connect_timeout": 5, "command_timeout": 3,
                "max_connections_per_destination": 2, "tls_ca_file": ENV["cert"]}
    settings.update(delivery)
    return PorterServer(name, roles=("relay",), tls=False, settings={"delivery": settings})


class DeliveryCase(PorterTestCase):
    """Helpers; subclasses set cls.porter."""

    porter = None

    def setUp(self):
        self.token = uuid.uuid4().hex
        self.sender = "s%s@sender.test" % self.token[:12]
        self.rx = ENV["receivers"]

    # --- receivers -----------------------------------------------------------------------

    def rule(self, receivers, stage, reply=None, **conditions):
        for name in receivers.split():
            r = self.rx[name].add_rule(stage, reply, **conditions)
            self.addCleanup(self.rx[name].remove_rule, r)

    def drop_rules(self):
        """Removes the rules matched on this test's sender (the receivers accept again)."""
        for r in self.rx.values():
            for rule in list(r.rules):
                if rule.sender == self.sender:
                    r.remove_rule(rule)

    def wait_received(self, name, count=1, timeout=20, token=None, rcpt=None):
        token = self.token if token is None and rcpt is None else token
        got = wait_until(lambda: len(self.rx[name].messages(token, rcpt)) >= count, timeout)
        msgs = self.rx[name].messages(token, rcpt)
        self.assertTrue(got, "%s received %d of %d messages (token %s, rcpt %s)"
                        % (name, len(msgs), count, token, rcpt))
        return msgs

    def assert_nothing_at(self, *names, token=None):
        for name in names:
            self.assertEqual(self.rx[name].messages(token or self.token), [], name)

    def wait_dsn(self, sender=None, timeout=20):
        """The DSN that reached `sender` (this test's sender by default) at its MX."""
        sender = sender or self.sender
        msgs = self.wait_received("sender", rcpt=sender, timeout=timeout)
        self.assertEqual(len(msgs), 1, "expected one DSN for %s, got %r" % (sender, msgs))
        m = msgs[0]
        self.assertEqual(m.mail_from, "", "a DSN must have a null reverse-path")
        self.assertEqual(m.rcpt_tos, [sender])
        return Dsn(m.data)

    # --- porter ----------------------------------------------------------------------------

    def send(self, rcpts, sender=None, msg=None, mail_options=(), rcpt_options=(),
             porter=None):
        sender = self.sender if sender is None else sender
        msg = msg or make_message(self.token, sender=sender or "daemon@sender.test",
                                  to=rcpts[0])
        return submit(porter or self.porter, sender, rcpts, msg, mail_options,
                      rcpt_options=rcpt_options), msg

    def wait_log(self, pattern, timeout=20, porter=None):
        m = (porter or self.porter).wait_for_log(pattern, timeout)
        self.assertTrue(m, "no log line matching %r" % pattern)
        return m

    def delivery_line(self, qid, rcpt, status, relay=None, dsn=r"\S+"):
        relay = re.escape(relay) if relay else r"\S+"
        return (r"delivery id=%s to=<%s> relay=%s delay=\d+s dsn=%s status=%s"
                % (qid, re.escape(rcpt), relay, dsn, status))

    def relay_of(self, ip):
        names = {MX1: "mx1.test", MX2: "mx2.test", MX3: "mx3.test", TLS_IP: "mx-tls.test",
                 SENDER_IP: "mx-sender.test", OLD_TLS_IP: "mx-oldtls.test"}
        return "%s[%s]:%d" % (names[ip], ip, ENV["port"])

    def in_queue(self, qid, porter=None):
        return any(e.id == qid for e in (porter or self.porter).queue_list())

    def wait_gone(self, qid, timeout=20, porter=None):
        self.assertTrue(wait_until(lambda: not self.in_queue(qid, porter), timeout),
                        "%s still queued" % qid)

    def wait_deferred(self, qid, timeout=20, porter=None):
        """`porter queue show` once the message is deferred with at least one attempt."""
        p = porter or self.porter

        def deferred():
            if not self.in_queue(qid, p):
                return None
            s = p.queue_show(qid)
            tried = any(state.startswith("pending attempts=") for _, state in s["to"])
            return s if s.get("state") == "deferred" and tried else None
        shown = wait_until(deferred, timeout, 0.1)
        self.assertTrue(shown, "%s not deferred: %r" % (
            qid, p.queue_show(qid) if self.in_queue(qid, p) else "gone from the queue"))
        return shown

    def assert_no_dsn_for(self, qid, porter=None):
        self.assertNotRegex((porter or self.porter).log_text(), r"\bdsn id=%s\b" % qid)

    def assert_failure_dsn(self, dsn, qid, failed):
        """The common shape of a failure DSN (RFC 3464) about `failed` recipients."""
        self.assertEqual(dsn.msg.get_content_type(), "multipart/report")
        self.assertEqual(dsn.msg.get_param("report-type"), "delivery-status")
        self.assertEqual(dsn.msg["To"], "<%s>" % self.sender)
        self.assertEqual(dsn.msg["Auto-Submitted"], "auto-replied")
        self.assertIsNotNone(dsn.status_part, "no delivery-status part")
        self.assertEqual(dsn.report.get("reporting-mta"), "dns; mx.porter.test")
        self.assertEqual(sorted(r.get("final-recipient", "").split("; ", 1)[-1]
                                for r in dsn.recipients), sorted(failed))
        for r in dsn.recipients:
            self.assertEqual(r.get("action"), "failed", r)
        self.assertIsNotNone(dsn.returned, "the original is not returned")
        self.assertIn(("Subject: test " + self.token).encode(), dsn.returned_bytes())
        self.assertIn(qid, dsn.notification or "")


class MxDeliveryTest(DeliveryCase):
    """Delivery by MX with retry = [1, 1, 2] seconds."""

    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("delivery", tls_policy=[
            {"domain": "enc.test", "policy": "encrypt"},
            {"domain": "verify.test", "policy": "verify"},
            {"domain": "badverify.test", "policy": "verify"},
        ])
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    # --- MX order and fallback -------------------------------------------------------------

    def test_primary_accepts(self):
        rcpt = "user@primary.test"
        msg = make_message(self.token, sender=self.sender, to=rcpt,
                           extra_headers=["X-Dots: yes"]) + b".leading dot line\r\n..two\r\n"
        qid, _ = self.send([rcpt], msg=msg)
        [got] = self.wait_received("mx1")
        self.assertEqual((got.mail_from, got.rcpt_tos), (self.sender, [rcpt]))
        # the bytes as queued: porter's Received line, then the client's bytes (dot lines
        # unstuffed again by the receiver)
        self.assertTrue(got.data.endswith(msg), got.data[-200:])
        prefix = got.data[:len(got.data) - len(msg)]
        self.assertEqual(header_names(prefix), ["received"], prefix)
        self.assertIn(b"id " + qid.encode(), prefix)
        self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(MX1), r"2\.0\.0")
                      + r" \(250 2\.0\.0 Ok: queued by mx1\.test\)")
        self.wait_gone(qid)
        self.assert_nothing_at("mx2", "mx3")

    def test_primary_down_second_gets_it(self):
        self.rx["mx1"].stop()
        try:
            qid, _ = self.send(["user@down.test"])
            [got] = self.wait_received("mx2")
            self.assertEqual(got.rcpt_tos, ["user@down.test"])
            self.wait_log(self.delivery_line(qid, "user@down.test", "sent", self.relay_of(MX2)))
        finally:
            self.rx["mx1"].start()
        self.assert_nothing_at("mx3")

    def test_primary_4xx_falls_back_to_next_mx(self):
        for stage, domain in (("MAIL", "tempmail.test"), ("DATA", "tempdata.test")):
            with self.subTest(stage=stage):
                rcpt = "user@" + domain
                sender = "%s-%s" % (stage.lower(), self.sender)
                self.rule("mx1", stage, "451 4.3.0 %s: try again later" % stage, sender=sender)
                qid, _ = self.send([rcpt], sender=sender)
                [got] = self.wait_received("mx2", rcpt=rcpt)
                self.assertEqual(got.mail_from, sender)
                self.assertEqual(len(self.rx["mx1"].mail_events(sender)), 1,
                                 "the primary was not tried first")
                self.assertEqual(self.rx["mx1"].messages(rcpt=rcpt), [])
                self.assertEqual(self.rx["mx3"].messages(rcpt=rcpt), [])
                self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(MX2)))

    def test_all_mx_4xx_deferred_then_delivered_on_retry(self):
        rcpt = "user@deferred.test"
        self.rule("mx1 mx2 mx3", "MAIL", "451 4.3.0 busy, come back later", sender=self.sender)
        qid, _ = self.send([rcpt])
        shown = self.wait_deferred(qid)
        addr, state = shown["to"][0]
        self.assertEqual(addr, rcpt)
        self.assertRegex(state, r'^pending attempts=\d+ last="451 4\.3\.0 busy, come back later"')
        # every MX host was tried, in order of preference
        first = [self.rx[n].mail_events(self.sender)[0][0] for n in ("mx1", "mx2", "mx3")]
        self.assertEqual(first, sorted(first))
        self.wait_log(self.delivery_line(qid, rcpt, "deferred", self.relay_of(MX3), r"4\.3\.0")
                      + r" \(451 4\.3\.0 busy, come back later\)")
        self.assert_nothing_at("mx1", "mx2", "mx3")
        self.drop_rules()
        # Normally mx1; mx2 or mx3 if an attempt already under way met mx1's 451 just before.
        self.assertTrue(wait_until(lambda: any(self.rx[n].messages(rcpt=rcpt)
                                               for n in ("mx1", "mx2", "mx3")), 15),
                        "not delivered on a later retry")
        [got] = [m for n in ("mx1", "mx2", "mx3") for m in self.rx[n].messages(rcpt=rcpt)]
        self.assertEqual(got.rcpt_tos, [rcpt])
        self.wait_log(self.delivery_line(qid, rcpt, "sent"))
        self.wait_gone(qid)
        self.assertEqual(self.rx["sender"].messages(rcpt=self.sender), [],
                         "a deferral within delay_warning sent a notice")

    # --- permanent failures and DSNs -------------------------------------------------------

    def test_recipient_5xx_returns_dsn_to_sender(self):
        ok, bad = "ok@reject.test", "bad-%s@reject.test" % self.token[:8]
        refusal = "550 5.1.1 <%s>: Recipient address rejected: User unknown" % bad
        self.rule("mx1", "RCPT", refusal, rcpt=bad)
        qid, _ = self.send([ok, bad])
        [got] = self.wait_received("mx1")
        self.assertEqual(got.rcpt_tos, [ok])
        dsn = self.wait_dsn()
        self.assert_failure_dsn(dsn, qid, [bad])
        [r] = dsn.recipients
        self.assertEqual(r.get("status"), "5.1.1")
        self.assertEqual(r.get("diagnostic-code"), "smtp; " + refusal)
        self.assertEqual(r.get("remote-mta"), "dns; mx1.test")
        self.wait_log(self.delivery_line(qid, bad, "bounced", self.relay_of(MX1), r"5\.1\.1"))
        self.wait_log(self.delivery_line(qid, ok, "sent", self.relay_of(MX1)))
        self.wait_log(r"dsn id=%s dsn_id=\w+ type=failure to=<%s>" % (qid, re.escape(self.sender)))
        self.wait_gone(qid)
        self.assert_nothing_at("mx2", "mx3")

    def test_5xx_after_data_fails_every_recipient(self):
        rcpts = ["a@dataerror.test", "b@dataerror.test"]
        self.rule("mx1", "DATA", "554 5.6.0 Content rejected by policy", sender=self.sender)
        qid, _ = self.send(rcpts)
        dsn = self.wait_dsn()
        self.assert_failure_dsn(dsn, qid, rcpts)
        for r in dsn.recipients:
            self.assertEqual(r.get("status"), "5.6.0")
            self.assertEqual(r.get("diagnostic-code"), "smtp; 554 5.6.0 Content rejected by policy")
        self.assert_nothing_at("mx1", "mx2", "mx3")  # a 5xx is not worth the next MX

    def test_null_sender_failure_gets_no_dsn(self):
        bad = "gone-%s@reject.test" % self.token[:8]
        self.rule("mx1", "RCPT", "550 5.1.1 no such user", rcpt=bad)
        qid, _ = self.send([bad], sender="")
        self.wait_log(self.delivery_line(qid, bad, "bounced", self.relay_of(MX1)))
        self.wait_gone(qid)
        self.assert_no_dsn_for(qid)

    def test_failed_dsn_is_not_bounced_again(self):
        # The sender's own server refuses it, so the DSN (null sender) fails in turn.
        self.sender = "s%s@deadbox.test" % self.token[:12]
        bad = "gone-%s@reject.test" % self.token[:8]
        self.rule("mx1", "RCPT", "550 5.1.1 no such user", rcpt=bad)
        self.rule("mx1", "RCPT", "550 5.1.1 sender mailbox gone", rcpt=self.sender)
        qid, _ = self.send([bad])
        dsn_id = self.wait_log(r"dsn id=%s dsn_id=(\w+) type=failure" % qid).group(1)
        self.wait_log(self.delivery_line(dsn_id, self.sender, "bounced", self.relay_of(MX1)))
        self.wait_gone(qid)
        self.wait_gone(dsn_id)
        self.assert_no_dsn_for(dsn_id)
        self.assertEqual([e for e in self.porter.queue_list() if e.sender == ""
                          and self.sender in e.recipients], [])

    def test_null_mx_and_nxdomain_bounce(self):
        for rcpt, status, code in (("user@nullmx.test", "5.1.10", "556"),
                                   ("user@nowhere.test", "5.1.2", "550")):
            with self.subTest(rcpt=rcpt):
                self.sender = "%s-%s" % (rcpt.split("@")[1].split(".")[0], self.sender)
                qid, _ = self.send([rcpt])
                dsn = self.wait_dsn()
                self.assert_failure_dsn(dsn, qid, [rcpt])
                [r] = dsn.recipients
                self.assertEqual(r.get("status"), status)
                self.assertIn("%s %s" % (code, status), r.get("diagnostic-code", ""))
                self.wait_log(self.delivery_line(qid, rcpt, "bounced", "none",
                                                 re.escape(status)))
                for name in ("mx1", "mx2", "mx3"):
                    self.assertEqual(self.rx[name].mail_events(self.sender), [])

    def test_command_timeout_moves_to_next_mx(self):
        # mx1 sits on the MAIL command longer than command_timeout (3 s)
        self.rule("mx1", "MAIL", None, delay=6, sender=self.sender)
        start = time.monotonic()
        qid, _ = self.send(["user@slow.test"])
        [got] = self.wait_received("mx2", timeout=15)
        self.assertGreaterEqual(time.monotonic() - start, 2.5)
        self.assertEqual(got.rcpt_tos, ["user@slow.test"])
        self.assert_nothing_at("mx1", "mx3")
        self.wait_log(self.delivery_line(qid, "user@slow.test", "sent", self.relay_of(MX2)))

    def test_porter_in_mx_list_uses_only_better_hosts(self):
        # selfmx.test: mx1 (10), porter itself (20), mx3 (30): mx3 must never be used
        self.rule("mx1", "MAIL", "451 4.3.0 not now", sender=self.sender)
        qid, _ = self.send(["user@selfmx.test"])
        shown = self.wait_deferred(qid)
        self.assertIn('last="451 4.3.0 not now"', shown["to"][0][1])
        self.assertEqual(self.rx["mx3"].mail_events(self.sender), [])
        self.assertEqual(self.rx["mx2"].mail_events(self.sender), [])
        # selfbest.test: porter is the best MX: the mail would loop (5.4.6)
        self.sender = "best-" + self.sender
        qid, _ = self.send(["user@selfbest.test"])
        dsn = self.wait_dsn()
        self.assert_failure_dsn(dsn, qid, ["user@selfbest.test"])
        self.assertEqual(dsn.recipients[0].get("status"), "5.4.6")
        self.assertEqual(self.rx["mx2"].mail_events(self.sender), [])

    def test_partial_4xx_retries_only_the_deferred_recipient(self):
        ok, later = "ok@partial.test", "later-%s@partial.test" % self.token[:8]
        self.rule("mx1", "RCPT", "450 4.2.0 <%s>: mailbox busy" % later, rcpt=later)
        qid, _ = self.send([ok, later])
        [first] = self.wait_received("mx1")
        self.assertEqual(first.rcpt_tos, [ok])
        shown = self.wait_deferred(qid)
        states = dict(shown["to"])
        self.assertRegex(states[ok], r"^delivered\b")
        self.assertRegex(states[later], r'^pending attempts=\d+ last="450 4\.2\.0 ')
        for r in list(self.rx["mx1"].rules):
            if r.rcpt == later:
                self.rx["mx1"].remove_rule(r)
        got = self.wait_received("mx1", count=2, timeout=15)
        self.assertEqual([m.rcpt_tos for m in got], [[ok], [later]])  # ok not sent again
        self.wait_gone(qid)
        self.assert_nothing_at("mx2", "mx3")  # 4xx for one recipient: no next MX

    def test_dsn_notify_never_and_ret_hdrs(self):
        bad = "bad-%s@notify.test" % self.token[:8]
        never = "never-%s@notify.test" % self.token[:8]
        self.rule("mx1", "RCPT", "550 5.1.1 unknown", rcpt=bad)
        self.rule("mx1", "RCPT", "550 5.1.1 unknown", rcpt=never)
        qid, msg = self.send([bad, never], mail_options=["RET=HDRS", "ENVID=env-" + self.token],
                             rcpt_options={never: ["NOTIFY=NEVER"]})
        dsn = self.wait_dsn()
        self.assert_failure_dsn(dsn, qid, [bad])  # no word about the NOTIFY=NEVER one
        self.assertEqual(dsn.returned.get_content_type(), "text/rfc822-headers")
        self.assertNotIn(b"line 0 of", dsn.returned_bytes())
        self.assertEqual(dsn.report.get("original-envelope-id"), "env-" + self.token)
        self.wait_log(self.delivery_line(qid, never, "bounced"))

    def test_notify_success_to_server_without_dsn_gets_relayed_dsn(self):
        # RFC 3461 §5.2.2: NOTIFY=SUCCESS, and the next hop does not offer DSN: porter is
        # the last to know, so it reports success itself ("relayed").
        rcpt = "happy-%s@notify.test" % self.token[:8]
        qid, _ = self.send([rcpt], rcpt_options={rcpt: ["NOTIFY=SUCCESS,FAILURE"]})
        [got] = self.wait_received("mx1")
        self.assertEqual(got.rcpt_tos, [rcpt])
        self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(MX1)))
        dsn = self.wait_dsn(timeout=10)
        self.assertEqual(dsn.msg.get_param("report-type"), "delivery-status")
        [r] = dsn.recipients
        self.assertEqual(r.get("final-recipient"), "rfc822; " + rcpt)
        self.assertEqual(r.get("action"), "relayed")
        self.assertRegex(r.get("status", ""), r"^2\.\d+\.\d+$")

    # --- SMTPUTF8 --------------------------------------------------------------------------

    def test_smtputf8_to_server_without_it_bounces(self):
        rcpt = "用户@utf8.test"
        qid, _ = self.send([rcpt], mail_options=["SMTPUTF8"])
        dsn = self.wait_dsn()
        self.assert_failure_dsn(dsn, qid, [rcpt])
        [r] = dsn.recipients
        self.assertEqual(r.get("status"), "5.6.7")
        self.assertIn("SMTPUTF8", r.get("diagnostic-code", ""))
        self.assertIn("SMTPUTF8", dsn.notification)
        for name in ("mx1", "mx2", "mx3"):  # refused before MAIL, and not tried elsewhere
            self.assertEqual(self.rx[name].mail_events(self.sender), [])

    def test_smtputf8_to_server_with_it_is_delivered(self):
        rcpt = "jürgen-%s@sender.test" % self.token[:6]
        qid, _ = self.send([rcpt], mail_options=["SMTPUTF8"])
        [got] = self.wait_received("sender", rcpt=rcpt)
        self.assertEqual(got.mail_from, self.sender)
        self.assertIn("SMTPUTF8", got.mail_options)
        self.assertIn(self.token.encode(), got.data)
        self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(SENDER_IP)))

    # --- TLS -------------------------------------------------------------------------------

    def test_starttls_used_when_offered(self):
        qid, _ = self.send(["user@tls.test"])
        [got] = self.wait_received("tls")
        self.assertTrue(got.tls, "the message did not travel over TLS")
        self.wait_log(self.delivery_line(qid, "user@tls.test", "sent", self.relay_of(TLS_IP)))

    def test_plain_receivers_get_plaintext(self):
        qid, _ = self.send(["plain@primary.test"])
        [got] = self.wait_received("mx1")
        self.assertFalse(got.tls)

    def test_may_policy_falls_back_to_plaintext_when_handshake_fails(self):
        # Opportunistic TLS (RFC 7435): a server whose STARTTLS handshake cannot succeed
        # (TLS 1.0 only) still gets its mail, in clear, as from Postfix at level "may".
        rcpt = "user@oldtls.test"
        qid, _ = self.send([rcpt])
        self.wait_log(r"tls-failed relay=%s" % re.escape(self.relay_of(OLD_TLS_IP)))
        [got] = self.wait_received("oldtls", timeout=10)
        self.assertFalse(got.tls)
        self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(OLD_TLS_IP)))

    def test_encrypt_policy_defers_when_starttls_missing(self):
        rcpt = "user@enc.test"
        qid, _ = self.send([rcpt])
        shown = self.wait_deferred(qid)
        self.assertRegex(shown["to"][0][1], r'last="451 4\.7\.4 [^"]*TLS')
        for name in ("mx1", "mx2", "mx3"):  # never in clear
            self.assertEqual(self.rx[name].mail_events(self.sender), [])
        self.assert_no_dsn_for(qid)
        # The log's status field (and a delay DSN's Status) says why: 4.7.4, the reply's
        # own code, not 4.4.1 "no answer from host".
        self.wait_log(self.delivery_line(qid, rcpt, "deferred", dsn=r"4\.7\.4")
                      + r" \(451 4\.7\.4 ")

    def test_verify_policy(self):
        qid, _ = self.send(["user@verify.test"])
        [got] = self.wait_received("tls")
        self.assertTrue(got.tls)
        # the same server under a name its certificate does not carry
        sender2 = "v2-" + self.sender
        qid2, _ = self.send(["user@badverify.test"], sender=sender2)
        shown = self.wait_deferred(qid2)
        self.assertRegex(shown["to"][0][1], r'last="4\d\d 4\.7\.\d')
        self.assertEqual(self.rx["tls"].mail_events(sender2), [])
        self.assert_no_dsn_for(qid2)

    # --- transactions and connections ------------------------------------------------------

    def test_connection_reuse(self):
        n = 6
        self.rule("mx1", "DATA", None, delay=0.3, sender=self.sender)
        with smtplib.SMTP("127.0.0.1", self.porter.port("relay"), timeout=30) as s:
            for i in range(n):
                submit_on(s, self.sender, ["user@reuse.test"],
                          make_message("%s-%d" % (self.token, i), sender=self.sender))
        got = self.wait_received("mx1", count=n, timeout=30)
        self.assertEqual(len(got), n)
        conns = {m.conn_id for m in got}
        self.assertLess(len(conns), n, "every message had its own connection")
        self.assertLessEqual(len(conns), 2, "more than max_connections_per_destination")

    def test_recipients_of_one_domain_share_a_transaction(self):
        rcpts = ["a@multi.test", "b@multi.test", "c@multi.test", "x@multi2.test"]
        qid, _ = self.send(rcpts)
        got = self.wait_received("mx1", count=2)
        self.assertEqual(sorted(sorted(m.rcpt_tos) for m in got),
                         [rcpts[:3], rcpts[3:]])
        for r in rcpts:
            self.wait_log(self.delivery_line(qid, r, "sent", self.relay_of(MX1)))
        self.wait_gone(qid)


class FlushAndDnsFaultTest(DeliveryCase):
    """A porter whose retry schedule is an hour: nothing is retried unless flushed."""

    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("delivery-flush", retry=[3600])
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def test_queue_flush_sends_deferred_message_now(self):
        rcpt = "user@flush.test"
        self.rule("mx1 mx2 mx3", "MAIL", "421 4.3.2 closing for maintenance", sender=self.sender)
        qid, _ = self.send([rcpt])
        qid2, _ = self.send([rcpt], msg=make_message(self.token + "-two", sender=self.sender))
        for q in (qid, qid2):
            shown = self.wait_deferred(q)
            self.assertIn("attempts=1 ", shown["to"][0][1])
        self.drop_rules()
        time.sleep(2)
        self.assert_nothing_at("mx1", "mx2", "mx3")  # not due for an hour
        self.assertEqual(self.porter.queue_show(qid)["state"], "deferred")
        # one message by its ID: only that one goes
        r = self.porter.cli("queue", "flush", qid)
        self.assertIn(qid, r.stdout.decode())
        [got] = self.wait_received("mx1", timeout=10)
        self.assertEqual(got.rcpt_tos, [rcpt])
        self.assertNotIn((self.token + "-two").encode(), got.data)
        self.wait_log(r"flush id=%s" % qid)
        self.wait_log(self.delivery_line(qid, rcpt, "sent", self.relay_of(MX1)))
        self.wait_gone(qid)
        self.assertEqual(self.porter.queue_show(qid2)["state"], "deferred")
        # then everything
        self.porter.cli("queue", "flush")
        self.wait_received("mx1", token=self.token + "-two", timeout=10)
        self.wait_log(r"flush id=all")
        self.wait_gone(qid2)

    def test_dns_servfail_and_timeout_defer(self):
        cases = [("user@servfail.test", 20), ("user@drop.test", 30)]
        sent = [(rcpt, self.send([rcpt])[0], timeout) for rcpt, timeout in cases]
        for rcpt, qid, timeout in sent:
            with self.subTest(rcpt=rcpt):
                self.wait_log(self.delivery_line(qid, rcpt, "deferred", "none"), timeout)
                shown = self.wait_deferred(qid)
                self.assertRegex(shown["to"][0][1], r'^pending attempts=1 last="4\d\d 4\.')
                self.assert_no_dsn_for(qid)
                domain = rcpt.split("@")[1]
                self.assertIn((domain, "MX"), ENV["dns"].queries())
        self.assertEqual(self.rx["sender"].messages(rcpt=self.sender), [])


class DelayWarningTest(DeliveryCase):
    """delay_warning = 2 seconds: one warning to the sender while the message waits."""

    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("delivery-warn", retry=[1], delay_warning=2)
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def test_one_delay_warning_then_delivery(self):
        rcpt = "user@late.test"
        self.rule("mx1 mx2 mx3", "MAIL", "451 4.3.0 queue full", sender=self.sender)
        qid, _ = self.send([rcpt])
        dsn = self.wait_dsn(timeout=20)
        self.assertEqual(dsn.msg.get_content_type(), "multipart/report")
        self.assertEqual(dsn.msg.get_param("report-type"), "delivery-status")
        self.assertIn("Delayed", dsn.msg["Subject"])
        [r] = dsn.recipients
        self.assertEqual(r.get("final-recipient"), "rfc822; " + rcpt)
        self.assertEqual(r.get("action"), "delayed")
        self.assertEqual(r.get("status"), "4.3.0")
        self.assertEqual(r.get("diagnostic-code"), "smtp; 451 4.3.0 queue full")
        self.assertIn("will-retry-until", r)
        self.wait_log(r"dsn id=%s dsn_id=\w+ type=delay" % qid)
        attempts = len(self.rx["mx1"].mail_events(self.sender))
        self.assertTrue(wait_until(
            lambda: len(self.rx["mx1"].mail_events(self.sender)) >= attempts + 2, 10),
            "no further attempts after the warning")
        self.drop_rules()
        # An attempt already under way when the rules went may still meet mx1's 451 and
        # then succeed at mx2 (the right fallback), so any of the three may take it.
        self.assertTrue(wait_until(
            lambda: any(self.rx[n].messages(self.token, None) for n in ("mx1", "mx2", "mx3")),
            20), "not delivered once the receivers accepted again")
        self.wait_gone(qid)
        # still the one warning, however many attempts were deferred
        self.assertEqual(len(self.rx["sender"].messages(rcpt=self.sender)), 1)
        self.assertEqual(len(re.findall(r"dsn id=%s " % qid, self.porter.log_text())), 1)


class SmarthostTest(DeliveryCase):
    """All mail goes to a second porter's submission listener, with STARTTLS and AUTH."""

    PASSWORD = "smart-host-secret"

    @classmethod
    def setUpClass(cls):
        cls.smarthost = PorterServer("smarthost", roles=("submission",), tls=True,
                                     users=[("relayuser", cls.PASSWORD, ["@sender.test"])])
        cls.smarthost.start()
        target = "127.0.0.1:%d" % cls.smarthost.port("submission")
        # by name (an A lookup through the test DNS) for one, by address for the other
        cls.porter = delivering_porter("delivery-sh",
                                       smarthost="smart.test:%d" % cls.smarthost.port("submission"),
                                       smarthost_user="relayuser",
                                       smarthost_password=cls.PASSWORD,
                                       smarthost_tls="encrypt")
        cls.porter.start()
        cls.wrong = delivering_porter("delivery-sh-wrong", smarthost=target,
                                      smarthost_user="relayuser",
                                      smarthost_password="not-the-password",
                                      smarthost_tls="encrypt", retry=[3600])
        cls.wrong.start()

    @classmethod
    def tearDownClass(cls):
        for p in (cls.porter, cls.wrong, cls.smarthost):
            p.cleanup()

    def test_smarthost_with_auth_and_tls(self):
        # far-away.test does not exist in DNS: only the smarthost can take this mail.
        rcpts = ["one@far-away.test", "two@elsewhere.example"]
        qid, msg = self.send(
            rcpts, mail_options=["RET=HDRS", "ENVID=id-" + self.token[:10]],
            rcpt_options={rcpts[0]: ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;orig@far-away.test"]})
        ids = wait_until(lambda: self.smarthost.messages_containing(self.token.encode()), 15)
        self.assertEqual(len(ids), 1, ids)
        entry = self.smarthost.queue_entry(ids[0])
        self.assertEqual(entry.sender, self.sender)
        self.assertEqual(sorted(entry.recipients), sorted(rcpts))
        shown = self.smarthost.queue_show(ids[0])
        self.assertRegex(shown["client"], r"^127\.0\.0\.1 .*tls=yes user=relayuser$")
        self.assertTrue(self.smarthost.queue_cat(ids[0]).endswith(msg))
        # the DSN requests travel on to a server that offers DSN (RFC 3461 §5.2)
        self.assertEqual(shown.get("dsn"), "ret=HDRS envid=id-" + self.token[:10])
        self.assertEqual(dict(shown["to"])[rcpts[0]],
                         "pending notify=SUCCESS,FAILURE orcpt=rfc822;orig@far-away.test")
        port = self.smarthost.port("submission")
        for r in rcpts:
            self.wait_log(self.delivery_line(qid, r, "sent", "smart.test[127.0.0.1]:%d" % port))
        self.wait_gone(qid)
        names = [n for n, _ in ENV["dns"].queries()]
        self.assertIn("smart.test", names)
        self.assertNotIn("far-away.test", names)
        self.assertNotIn("elsewhere.example", names)
        # the smarthost took responsibility for NOTIFY=SUCCESS: no report from this porter
        self.assert_no_dsn_for(qid)

    def test_smarthost_refusing_auth_defers(self):
        rcpt = "three@far-away.test"
        qid, _ = self.send([rcpt], porter=self.wrong)
        shown = self.wait_deferred(qid, porter=self.wrong)
        self.assertRegex(shown["to"][0][1], r'last="535 ')
        self.assert_no_dsn_for(qid, porter=self.wrong)
        self.assertEqual(self.smarthost.messages_containing(self.token.encode()), [])


class CrashTest(DeliveryCase):
    """SIGKILL in the middle of deliveries: after a restart every accepted message reaches
    a receiver at least once."""

    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("delivery-crash")
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def test_sigkill_during_delivery_loses_nothing(self):
        n = 30
        self.rule("mx1", "DATA", None, delay=0.15, sender=self.sender)
        tokens = ["%s-%03d" % (self.token, i) for i in range(n)]
        ids = []
        with smtplib.SMTP("127.0.0.1", self.porter.port("relay"), timeout=30) as s:
            for t in tokens:
                ids.append(submit_on(s, self.sender, ["user@crash.test"],
                                     make_message(t, sender=self.sender, to="user@crash.test")))
        self.wait_received("mx1", count=4, timeout=20)
        self.porter.kill()
        before = len(self.rx["mx1"].messages(self.token))
        self.assertLess(before, n, "all delivered before the kill: nothing was proved")
        self.porter.start()

        def missing():
            return [t for t in tokens if not self.rx["mx1"].messages(t)]
        self.assertTrue(wait_until(lambda: not missing(), 40),
                        "never delivered: %s" % missing())
        for qid in ids:
            self.wait_gone(qid)


if __name__ == "__main__":
    unittest.main()
