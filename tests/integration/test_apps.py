"""Applications ([[app]]): an app logs in on 587 (STARTTLS + AUTH, Python's smtplib), sends
as its senders only (553 5.7.1 naming it otherwise, for MAIL FROM and the From header),
within its messages_per_minute / messages_per_day (450 4.7.1 naming it and the limit), and
every log line of its mail names it (app=NAME). `porter reload` adds apps, and does not
reset their counts. An app has no mailbox: POP3 refuses its login.
"""

import poplib
import re
import smtplib
import unittest
import uuid

from porter_fixture import (PorterServer, PorterTestCase, client_tls_context, make_message,
                            password_hash, queued_id)

PASSWORDS = {"billing": "billing-Secret-1", "bulk": "bulk-Secret-2", "daily": "daily-Secret-3",
             "late": "late-Secret-4"}


def app(name, senders, **extra):
    table = {"name": name, "password": password_hash(PASSWORDS[name]), "senders": senders}
    table.update(extra)
    return table


class AppsTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = PorterServer("apps", roles=("submission", "pop3"))
        # A list of tables is [[app]] (set here: the constructor merges only tables).
        cls.server.settings["app"] = [
            app("billing", ["@billing.test", "noreply@example.test"],
                tags=["billing", "team:payments"]),
            app("bulk", ["news@bulk.test"], messages_per_minute=2),
            app("daily", ["report@daily.test"], messages_per_day=1),
        ]
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def session(self, login):
        s = smtplib.SMTP("127.0.0.1", self.server.port("submission"), timeout=15)
        s.ehlo("app.client.test")
        s.starttls(context=client_tls_context())
        s.ehlo("app.client.test")
        try:
            s.login(login, PASSWORDS[login])
        except smtplib.SMTPException:
            s.close()
            raise
        return s

    def send(self, s, sender, from_header=None, rcpt="someone@remote.test"):
        """(code, text) of the first refusal (MAIL, RCPT or DATA), or of the DATA reply."""
        code, text = s.mail(sender)
        if code != 250:
            s.rset()
            return code, text.decode()
        code, text = s.rcpt(rcpt)
        self.assertEqual(code, 250, text)
        token = uuid.uuid4().hex
        code, text = s.data(make_message(token, sender=from_header or sender, to=rcpt))
        return code, text.decode()

    def test_allowed_sender_is_queued_and_logged_with_the_app(self):
        with self.session("billing") as s:
            code, text = self.send(s, "invoice@billing.test")
            self.assertEqual(code, 250, text)
            qid = queued_id(text)
            code, text = self.send(s, "NoReply@Example.test")
            self.assertEqual(code, 250, text)
        entry = self.server.queue_entry(qid)
        self.assertEqual(entry.sender, "invoice@billing.test")
        self.assertTrue(self.server.wait_for_log(
            r" queued id=%s .*user=billing app=billing" % qid), "no queued line naming the app")
        self.assertTrue(self.server.wait_for_log(r" auth session=\w+ client=127\.0\.0\.1 "
                                                 r"user=billing app=billing"))

    def test_other_senders_are_refused_naming_the_app(self):
        with self.session("billing") as s:
            for sender in ("alice@example.test", "x@sub.billing.test"):
                code, text = self.send(s, sender)
                self.assertEqual(code, 553, text)
                self.assertEqual(text, "5.7.1 Sender address <%s> is not one of app billing's "
                                       "senders" % sender)
            # The envelope is fine, the From header is not: refused at the end of DATA.
            code, text = self.send(s, "invoice@billing.test", from_header="ceo@example.test")
            self.assertEqual(code, 553, text)
            self.assertIn("ceo@example.test", text)
        self.assertTrue(self.server.wait_for_log(
            r" reject session=\w+ client=127\.0\.0\.1 from=<alice@example\.test> app=billing "
            r"\(553 5\.7\.1 "))

    def test_messages_per_minute(self):
        with self.session("bulk") as s:
            for i in range(2):
                code, text = self.send(s, "news@bulk.test")
                self.assertEqual(code, 250, "message %d: %s" % (i + 1, text))
            code, text = self.send(s, "news@bulk.test")
            self.assertEqual(code, 450, text)
            m = re.fullmatch(r"4\.7\.1 Rate limit reached: app bulk may send 2 messages per "
                             r"minute; try again in (\d+) seconds", text)
            self.assertTrue(m, text)
            self.assertTrue(1 <= int(m.group(1)) <= 61, text)
        # Another app has its own count.
        with self.session("billing") as s:
            code, text = self.send(s, "invoice@billing.test")
            self.assertEqual(code, 250, text)
        self.assertTrue(self.server.wait_for_log(r" reject .* app=bulk \(450 4\.7\.1 "))

    def test_reload_adds_an_app_and_keeps_the_counts(self):
        server = self.server
        with self.session("daily") as s:
            code, text = self.send(s, "report@daily.test")
            self.assertEqual(code, 250, text)
        with self.assertRaises(smtplib.SMTPAuthenticationError):
            self.session("late")
        server.settings["app"].append(app("late", ["@late.test"]))
        server.write_config()
        r = server.cli("reload")
        self.assertEqual(r.stdout.decode().strip(), "reloaded")
        with self.session("late") as s:
            code, text = self.send(s, "hello@late.test")
            self.assertEqual(code, 250, text)
            code, text = self.send(s, "hello@billing.test")
            self.assertEqual(code, 553, text)
        # The day's count of "daily" survived the reload.
        with self.session("daily") as s:
            code, text = self.send(s, "report@daily.test")
            self.assertEqual(code, 450, text)
            self.assertRegex(text, r"^4\.7\.1 Rate limit reached: app daily may send 1 messages "
                                   r"per day; try again in \d+ seconds$")

    def test_pop3_refuses_an_app(self):
        p = poplib.POP3("127.0.0.1", self.server.port("pop3"), timeout=15)
        try:
            p.stls(context=client_tls_context())
            p.user("billing")
            with self.assertRaises(poplib.error_proto):
                p.pass_(PASSWORDS["billing"])
        finally:
            p.close()
        self.assertTrue(self.server.wait_for_log(r" auth-failed client=127\.0\.0\.1 user=billing "))
        self.assertNotRegex(self.server.log_text(), r" pop3-auth .*user=billing")


if __name__ == "__main__":
    unittest.main()
