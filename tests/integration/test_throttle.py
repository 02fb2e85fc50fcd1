"""Per-destination delivery throttles (issue 5): [[delivery.throttle]] allows at most N
messages a minute to be started toward a domain. Over it a message waits in the queue: no
attempt is counted, no DSN is sent, and other domains are not held up.

A dnslib server on 127.0.0.1 gives throttled.test and free.test their MX on 127.0.0.2, where
an aiosmtpd receiver takes the mail; porter takes it from applications on its relay
listener.
"""

import os
import re
import shutil
import tempfile
import time
import unittest
import uuid

from delivery_support import DnsServer, Receiver, common_port, mx_zone, submit, wait_until
from porter_fixture import PorterServer, PorterTestCase, make_message

MX_IP = "127.0.0.2"
LIMIT = 2
SENT = 5


class ThrottleTest(PorterTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dns = DnsServer(mx_zone({"throttled.test": [(10, "mx.test")],
                                     "free.test": [(10, "mx.test")]},
                                    {"mx.test": MX_IP})).start()
        port = common_port([MX_IP])
        cls.receiver = Receiver("mx.test", MX_IP, port).start()
        cls.server = PorterServer("throttle", roles=("relay",), tls=False, settings={
            "delivery": {"enabled": True, "remote_port": port,
                         "dns_servers": [cls.dns.address], "retry": [1, 1, 2],
                         "connect_timeout": 5, "command_timeout": 5},
        })
        # An array of tables, set after construction (the fixture merges tables only).
        cls.server.settings["delivery.throttle"] = [
            {"domain": "throttled.test", "messages_per_minute": LIMIT}]
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.receiver.stop()
        cls.dns.stop()

    def test_over_the_limit_waits_without_attempt_or_bounce(self):
        token = uuid.uuid4().hex
        sender = "app@sender.example"
        ids = []
        for i in range(SENT):
            rcpt = "user%d@throttled.test" % i
            ids.append(submit(self.server, sender, [rcpt],
                              make_message("%s-%d" % (token, i), sender=sender, to=rcpt)))
        self.assertTrue(wait_until(lambda: len(self.receiver.messages(token)) >= LIMIT, 15),
                        "the first %d messages did not arrive" % LIMIT)
        # An unthrottled domain is served at once meanwhile.
        free_token = uuid.uuid4().hex
        submit(self.server, sender, ["someone@free.test"],
               make_message(free_token, sender=sender, to="someone@free.test"))
        self.assertTrue(wait_until(lambda: self.receiver.messages(free_token), 15),
                        "free.test was held up by the throttle of throttled.test")

        time.sleep(3)
        self.assertEqual(len(self.receiver.messages(token)), LIMIT)
        waiting = [e for e in self.server.queue_list() if e.id in ids]
        self.assertEqual(len(waiting), SENT - LIMIT, waiting)
        for e in waiting:
            self.assertEqual(e.state, "active", e)  # never tried, so not deferred
            shown = self.server.queue_show(e.id)
            self.assertEqual([state for _, state in shown["to"]], ["pending"], shown)
        log = self.server.log_text()
        waits = sorted(int(w) for w in re.findall(r" throttled id=\S+ domain=throttled\.test "
                                                  r"limit=%d/min retry_in=(\d+)s" % LIMIT, log))
        self.assertEqual(len(waits), SENT - LIMIT, log)
        # The backlog comes back at the allowed rate, a slot (60 s / LIMIT) apart, not at once.
        self.assertGreaterEqual(waits[0], 55)
        for a, b in zip(waits, waits[1:]):
            self.assertGreaterEqual(b - a, 60 // LIMIT - 1, waits)
        self.assertNotRegex(log, r" dsn id=")
        self.assertNotRegex(log, r"status=(deferred|bounced)")


if __name__ == "__main__":
    unittest.main()
