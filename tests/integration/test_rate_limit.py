"""Rate limits per client address and per authenticated user (issue 5): the n+1th message
or recipient in the window gets "450 4.7.1" with a reason, and the limit is back once the
window has passed. Windows are 2 seconds here so that the reset can be waited for.
"""

import re
import smtplib
import time
import unittest
import uuid

from porter_fixture import PorterServer, PorterTestCase, client_tls_context, make_message

WINDOW = 2


def retry_seconds(text):
    m = re.search(r"try again in (\d+) seconds", text)
    if not m:
        raise AssertionError("no retry time in %r" % text)
    return int(m.group(1))


class ClientLimitTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = PorterServer("rate-client", roles=("relay",), tls=False, settings={
            "rate": {"window": WINDOW, "client_messages": 3},
        })
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def mail(self, s):
        token = uuid.uuid4().hex
        code, text = s.mail("app@sender.test")
        if code != 250:
            s.rset()
            return code, text.decode()
        code, text = s.rcpt("user@local.test")
        self.assertEqual(code, 250, text)
        code, text = s.data(make_message(token, sender="app@sender.test", to="user@local.test"))
        return code, text.decode()

    def test_fourth_message_refused_then_window_resets(self):
        with smtplib.SMTP("127.0.0.1", self.porter.port("relay"), timeout=10) as s:
            s.ehlo("app.test")
            for i in range(3):
                code, text = self.mail(s)
                self.assertEqual(code, 250, "message %d: %s" % (i + 1, text))
            code, text = self.mail(s)
            self.assertEqual(code, 450, text)
            self.assertTrue(text.startswith("4.7.1 Rate limit reached: client 127.0.0.1 may send"
                                            " 3 messages per 2 seconds"), text)
            wait = retry_seconds(text)
            self.assertLessEqual(wait, WINDOW + 1)
            # Another client is counted apart, at once.
            with smtplib.SMTP("127.0.0.1", self.porter.port("relay"),
                              source_address=("127.0.0.2", 0), timeout=10) as other:
                other.ehlo("other.test")
                code2, text2 = self.mail(other)
                self.assertEqual(code2, 250, text2)
            time.sleep(wait)
            code, text = self.mail(s)
            self.assertEqual(code, 250, text)
        self.assertTrue(self.porter.wait_for_log(r"reject .*450 4\.7\.1 Rate limit reached"))


class UserLimitTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.porter = PorterServer("rate-user", roles=("submission",), settings={
            "rate": {"window": WINDOW, "user_recipients": 3},
        }, users=[("alice", "alice-secret", ["@sender.test"])])
        cls.porter.start()

    @classmethod
    def tearDownClass(cls):
        cls.porter.stop()
        cls.porter.cleanup()

    def session(self, source):
        s = smtplib.SMTP("127.0.0.1", self.porter.port("submission"),
                         source_address=(source, 0), timeout=10)
        s.ehlo("client.test")
        s.starttls(context=client_tls_context())
        s.ehlo("client.test")
        s.login("alice", "alice-secret")
        return s

    def test_recipients_counted_per_user_across_clients(self):
        with self.session("127.0.0.1") as s:
            s.mail("alice@sender.test")
            for n in range(3):
                code, text = s.rcpt("r%d@local.test" % n)
                self.assertEqual(code, 250, text)
            code, text = s.data(make_message("x", sender="alice@sender.test"))
            self.assertEqual(code, 250, text)
        # Same user from another address: the user's count follows her.
        with self.session("127.0.0.3") as s:
            s.mail("alice@sender.test")
            code, text = s.rcpt("r4@local.test")
            self.assertEqual(code, 450, text)
            self.assertIn(b"4.7.1 Rate limit reached: user alice may send 3 recipients", text)
            time.sleep(retry_seconds(text.decode()))
            code, text = s.rcpt("r4@local.test")
            self.assertEqual(code, 250, text)


if __name__ == "__main__":
    unittest.main()
