"""The relay (port 25) listener: clients in trusted_networks may relay anywhere; anyone may
send to the local domains' existing recipients; everything else is 554 5.7.1 (or 550 5.1.1
for an unknown local recipient). The untrusted client is the same machine talking from
another loopback address (127.0.0.5, outside 127.0.0.1/32); its mail is inbound mail and gets
Porter's Authentication-Results field (the checks themselves are off here: the fixture has
no DNS; tests/integration/test_inbound_auth.py runs them)."""

import smtplib
import unittest
import uuid

from porter_fixture import (PorterServer, PorterTestCase, header_names, make_message,
                            queued_id, split_prefix)

TRUSTED = "127.0.0.1"
UNTRUSTED = "127.0.0.5"


class RelayTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer(
            "relay", roles=("relay",), tls=False,
            settings={"relay": {"trusted_networks": ["127.0.0.1/32"],
                                "local_domains": ["local.test", "other-local.test"],
                                "catch_all": ""}},
            users=[("user", "user-pw", ["user@local.test", "postmaster@local.test"]),
                   ("other", "other-pw", ["other@other-local.test"])])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.token = uuid.uuid4().hex

    def connect(self, source):
        s = smtplib.SMTP("127.0.0.1", self.server.port("relay"), local_hostname="relay.client.test",
                         timeout=30, source_address=(source, 0))
        self.addCleanup(s.close)
        code, _ = s.ehlo()
        self.assertEqual(code, 250)
        self.assertFalse(s.has_extn("auth"), "AUTH offered on the relay port without TLS")
        return s

    def send_data(self, s, msg):
        code, resp = s.data(msg)
        self.assertEqual(code, 250, resp)
        return queued_id(resp.decode())

    def assert_stored(self, qid, sender, rcpts, msg, inbound=False):
        entry = self.server.queue_entry(qid)
        self.assertEqual(entry.sender, sender)
        self.assertEqual(sorted(entry.recipients), sorted(rcpts))
        prefix = split_prefix(self.server.queue_cat(qid), msg)
        # a relay only adds the trace field (and inbound mail the authentication results);
        # it never adds Message-ID or Date
        expected = ["authentication-results", "received"] if inbound else ["received"]
        self.assertEqual(header_names(prefix), expected, prefix)
        if inbound:
            self.assertIn(b"Authentication-Results: mx.porter.test; none\r\n", prefix)
        self.assertIn(b"with ESMTP id " + qid.encode(), prefix)

    def test_trusted_client_relays_to_remote_domain(self):
        s = self.connect(TRUSTED)
        self.assertEqual(s.mail("app@internal.example")[0], 250)
        self.assertEqual(s.rcpt("someone@remote.example")[0], 250)
        self.assertEqual(s.rcpt("user@local.test")[0], 250)
        msg = make_message(self.token, sender="app@internal.example")
        qid = self.send_data(s, msg)
        self.assert_stored(qid, "app@internal.example",
                           ["someone@remote.example", "user@local.test"], msg)
        self.assertTrue(self.server.wait_for_log(r"queued id=%s .*client=127\.0\.0\.1" % qid))

    def test_untrusted_client_may_not_relay(self):
        s = self.connect(UNTRUSTED)
        self.assertEqual(s.mail("stranger@outside.example")[0], 250)
        code, resp = s.rcpt("victim@remote.example")
        self.assertEqual((code, resp), (554, b"5.7.1 Relay access denied"))
        code, resp = s.rcpt("victim@sub.local.test")
        self.assertEqual(code, 554, resp)  # a subdomain is not a local domain
        self.assertEqual(s.rcpt("user@local.test")[0], 250)
        self.assertEqual(s.rcpt("Other@OTHER-LOCAL.TEST")[0], 250)
        code, resp = s.rcpt("nobody@local.test")
        self.assertEqual(code, 550, resp)
        self.assertTrue(resp.startswith(b"5.1.1"), resp)
        msg = make_message(self.token, sender="stranger@outside.example", to="user@local.test")
        qid = self.send_data(s, msg)
        # domains are case-insensitive and stored lower-cased; the local part is kept as given
        self.assert_stored(qid, "stranger@outside.example",
                           ["user@local.test", "Other@other-local.test"], msg, inbound=True)
        self.assertTrue(self.server.wait_for_log(
            r"reject .*client=127\.0\.0\.5 .*to=<victim@remote\.example>.*554 5\.7\.1"))

    def test_untrusted_client_with_only_remote_recipients_gets_no_transaction(self):
        s = self.connect(UNTRUSTED)
        self.assertEqual(s.mail("stranger@outside.example")[0], 250)
        self.assertEqual(s.rcpt("victim@remote.example")[0], 554)
        code, resp = s.docmd("DATA")
        self.assertEqual(code, 503, resp)
        self.assertEqual(self.server.messages_containing(self.token.encode()), [])

    def test_null_sender_accepted(self):
        for source, rcpt in ((UNTRUSTED, "postmaster@local.test"), (TRUSTED, "x@remote.example")):
            with self.subTest(source=source):
                s = self.connect(source)
                self.assertEqual(s.mail("<>")[0], 250)
                self.assertEqual(s.rcpt(rcpt)[0], 250)
                msg = make_message(self.token + source, sender="MAILER-DAEMON@outside.example",
                                   to=rcpt)
                qid = self.send_data(s, msg)
                self.assert_stored(qid, "", [rcpt], msg, inbound=source == UNTRUSTED)


if __name__ == "__main__":
    unittest.main()
