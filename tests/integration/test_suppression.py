"""The suppression list against the running daemon: a recipient the receiving server
refuses with 550 5.1.1 is put on the list of the sender's scope (relay mail: the "" scope)
and the next message to it is refused at RCPT with the reason; `porter suppression
list|add|remove` and the admin API manage entries; the list survives a restart.

The DNS server and the receiver on 127.0.0.2 are test_admin's (its module set-up).
"""

import json
import smtplib
import unittest

import test_admin
from delivery_support import wait_until
from test_admin import AdminCase, delivering_porter


def setUpModule():
    test_admin.setUpModule()


def tearDownModule():
    test_admin.tearDownModule()


class SuppressionTest(AdminCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = delivering_porter("suppression").start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.cleanup()

    def rcpt_reply(self, rcpt):
        """What porter's relay listener answers to RCPT TO:<rcpt>."""
        with smtplib.SMTP("127.0.0.1", self.porter.port("relay"), timeout=10) as s:
            s.ehlo("injector.test")
            s.mail(self.sender)
            return s.rcpt(rcpt)

    def listed(self):
        return self.porter.cli_json("suppression", "list")["suppressions"]

    def test_hard_bounce_suppresses_the_next_message(self):
        gone = "gone-%s@sink.test" % self.token
        self.refuse("550 5.1.1 <%s>: no such user here" % gone, rcpt=gone)
        qid, _ = self.send(gone)
        # Bounced (gone from the queue), and on the relay scope's list with the reply.
        self.assertTrue(wait_until(lambda: self.porter.api("GET", "/v1/queue/" + qid)[0] == 404,
                                   15, 0.1), self.porter.log_tail())
        entries = [e for e in self.listed() if e["address"] == gone]
        self.assertEqual(len(entries), 1, self.listed())
        self.assertEqual(entries[0]["scope"], "")
        self.assertEqual(entries[0]["source"], "bounce")
        self.assertIn("550 5.1.1", entries[0]["reason"])
        self.assertGreater(entries[0]["expires_ms"], entries[0]["added_ms"])
        self.porter.wait_for_log(r"suppressed id=%s .*to=<%s>" % (qid, gone))
        code, text = self.rcpt_reply(gone)
        self.assertEqual(code, 550)
        self.assertIn(b"5.1.1", text)
        self.assertIn(b"suppressed (bounce)", text)
        # A 4xx does not suppress.
        later = "later-%s@sink.test" % self.token
        self.refuse("451 4.2.0 busy", rcpt=later)
        qid2, _ = self.send(later)
        self.wait_deferred(qid2)
        self.assertFalse([e for e in self.listed() if e["address"] == later])
        self.assertEqual(self.rcpt_reply(later)[0], 250)

    def test_cli_add_list_remove_and_restart(self):
        addr = "Complainer-%s@Sink.test" % self.token
        lower = addr.lower()
        out = self.porter.cli("suppression", "add", addr, "--reason", "complaint",
                              "--expire-days", "0").stdout.decode()
        self.assertIn("<%s> suppressed" % lower, out)
        entry = [e for e in self.listed() if e["address"] == lower]
        self.assertEqual(len(entry), 1)
        self.assertEqual((entry[0]["source"], entry[0]["reason"], entry[0]["expires_ms"]),
                         ("admin", "complaint", 0))
        human = self.porter.cli("suppression", "list").stdout.decode()
        self.assertIn(lower, human)
        self.assertIn("complaint", human)
        code, text = self.rcpt_reply(addr)
        self.assertEqual(code, 550)
        self.assertIn(b"complaint", text)
        # Another scope is not affected: an app or user scope has its own list.
        status, body = self.porter.api("GET", "/v1/suppression?scope=someapp")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["suppressions"], [])
        # The list survives a restart.
        self.porter.stop()
        self.porter.start()
        self.assertTrue([e for e in self.listed() if e["address"] == lower])
        self.assertEqual(self.rcpt_reply(addr)[0], 550)
        self.porter.cli("suppression", "remove", addr)
        self.assertEqual(self.rcpt_reply(addr)[0], 250)
        r = self.porter.cli("suppression", "remove", addr, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"HTTP 404", r.stderr)
        r = self.porter.cli("suppression", "add", "not an address", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(b"address:", r.stderr)


if __name__ == "__main__":
    unittest.main()
