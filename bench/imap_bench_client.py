#!/usr/bin/python3
"""imap_bench_client.py - the client side of bench/imap-bench.sh.

One deterministic corpus (message i of seed S is always the same bytes: 2-6 KiB, 400
senders with Zipf-like frequencies, some RFC 2047 names and subjects, a fifth
multipart/alternative, dates spread over 2023-2024) goes into Porter by IMAP APPEND over
TLS and into Dovecot as Maildir files with the same internal dates; both are marked \\Seen
by UID STORE after loading. Then it measures SEARCH keys, UID FETCH of every header
section, and POP3 RETR of a second user's maildrop, alternating the two servers.

The client reads responses itself from an ssl socket (no imaplib/poplib) so that its own
cost stays small next to the servers': a response is scanned for line ends and literal
lengths only, never copied line by line. Each measurement also prints the client's CPU, so
a reader can see how much of the wall time was the client (both run on the same cores).
Every SEARCH count is checked against what the corpus predicts (expected=).

  load   --port P --user U --password W --count N --seed S [--conns C] [--window K]
         [--mailbox M]     APPEND (M is created first unless it is INBOX)
  maildir --dir D --count N --seed S    the same messages as Maildir files (for Dovecot)
  seen   --port P --user U --password W --seed S
  search --porter P --dovecot P --user U --password W --count N --seed S [--reps R]
  fetch  --porter P --dovecot P --user U --password W --count N [--reps R]
  pop3   --porter P --dovecot P --user U --password W --count N [--reps R]
  stats  --count N --seed S        how often the search needles occur (to pick them)

Every result line starts with "RESULT" and holds key=value pairs; imap-bench.sh builds its
table from them. Needs only /usr/bin/python3.
"""

import argparse
import base64
import calendar
import multiprocessing
import os
import random
import re
import socket
import ssl
import statistics
import sys
import time

# ---- the corpus ------------------------------------------------------------------------------

FIRST = ("Alice Bruno Chloe David Emma Farid Greta Hugo Ines Jonas Karin Liam Maya Nadia Omar "
         "Paula Quentin Rosa Samir Tara Ulrich Vera Walter Xenia Yusuf Zoe Adele Boris Clara "
         "Dmitri Elena Felix Gloria Henrik Irene Jakob Kenji Lena Marco Nina Oscar Petra Rafael "
         "Sofia Tomas Ursula Viktor Wanda Yannick Zara").split()
LAST = ("Martin Okafor Schmidt Rossi Novak Tanaka Dubois Jensen Silva Kowalski Haddad Nguyen "
        "Petrov Moreau Fischer Costa Lindqvist Brennan Yilmaz Horvat Ferreira Andersen Laurent "
        "Weber Romano Kaplan Duarte Eriksen Mendes Varga").split()
# Non-ASCII display names travel as RFC 2047 encoded words.
ACCENTED = ["José Müller", "Zoë Æbelø", "Łukasz Żółć", "François Gérard", "Søren Ångström"]
DOMAINS = ("example.org example.net mail.example.com corp.example lists.example.org "
           "billing.example shop.example dev.example news.example.net uni.example").split()
TOPICS = [
    "Invoice {n} for {month}", "Weekly status report", "Meeting notes: {thing}",
    "Lunch on {day}?", "Your order {n} has shipped", "Build failed on {branch}",
    "Build fixed on {branch}", "[{list}] {thing} discussion", "Quarterly review of {thing}",
    "Travel plans for {month}", "Password reset requested", "Contract draft v{small}",
    "Question about {thing}", "Reminder: {thing} due {day}", "Payment received, invoice {n}",
    "Newsletter {month} edition", "Holiday schedule {month}", "Your ticket #{n} was updated",
    "Photos from {day}", "Release {small}.{small} announced", "Security advisory {n}",
    "Welcome to {list}", "Re: budget for {thing}", "Agenda for {day}", "Feedback on {thing}",
    "Réunion du {day} : {thing}", "Überprüfung {thing}", "Счёт {n} за {month}",
]
MONTHS = "January February March April May June July August September October November December"
MONTHS = MONTHS.split()
DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
THINGS = ("roadmap hiring onboarding migration backups the offsite pricing support rota the "
          "audit capacity planning the launch vendor selection the new office").split(" ")
BRANCHES = ["main", "release-2.4", "feature/search", "stable"]
LISTS = ["dev", "announce", "users", "ops", "porter-dev"]
ZONES = ["+0000", "+0100", "+0200", "-0500", "-0800", "+0530", "+0900"]
WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud "
         "exercitation ullamco laboris nisi aliquip ex ea commodo consequat duis aute irure in "
         "reprehenderit voluptate velit esse cillum fugiat nulla pariatur excepteur sint occaecat "
         "cupidatat non proident sunt culpa qui officia deserunt mollit anim id est laborum "
         "delivery queue mailbox server message header search index report").split()
START = calendar.timegm((2023, 1, 1, 0, 0, 0))
END = calendar.timegm((2025, 1, 1, 0, 0, 0))

_SENDERS = None
_LINES = None


def senders():
    """400 senders, the same for every seed: (display name, address), Zipf-ish weights."""
    global _SENDERS
    if _SENDERS is None:
        rng = random.Random(4242)
        out = []
        for k in range(400):
            if k % 41 == 7:
                name = ACCENTED[k % len(ACCENTED)]
                local = "user%d" % k
            else:
                first, last = rng.choice(FIRST), rng.choice(LAST)
                name = "%s %s" % (first, last)
                local = "%s.%s" % (first.lower(), last.lower())
            out.append((name, "%s@%s" % (local, rng.choice(DOMAINS)),
                        [rng.randrange(len(TOPICS)) for _ in range(3)]))
        weights = [1.0 / (k + 10) ** 0.9 for k in range(len(out))]
        cum, total = [], 0.0
        for w in weights:
            total += w
            cum.append(total)
        _SENDERS = (out, cum)
    return _SENDERS


def body_lines():
    global _LINES
    if _LINES is None:
        rng = random.Random(99)
        _LINES = []
        for _ in range(3000):
            words, n = [], 0
            target = rng.randrange(40, 76)
            while n < target:
                w = rng.choice(WORDS)
                words.append(w)
                n += len(w) + 1
            line = " ".join(words)
            _LINES.append(line[0].upper() + line[1:] + ("." if rng.random() < 0.3 else ""))
    return _LINES


def encode_word(text):
    if all(ord(c) < 128 for c in text):
        return text
    return "=?UTF-8?B?%s?=" % base64.b64encode(text.encode()).decode()


def meta(i, seed, count):
    """The searchable facts of message i: decoded From and Subject, internal date (UTC
    seconds), and whether it is to be \\Seen."""
    rng = random.Random("%d:%d" % (seed, i))
    people, cum = senders()
    k = min(bisect_right(cum, rng.random() * cum[-1]), len(people) - 1)
    name, address, favourites = people[k]
    topic = TOPICS[rng.choice(favourites) if rng.random() < 0.7 else rng.randrange(len(TOPICS))]
    subject = topic.format(n=rng.randrange(1000, 99999), month=rng.choice(MONTHS),
                           thing=rng.choice(THINGS), day=rng.choice(DAYS),
                           branch=rng.choice(BRANCHES), list=rng.choice(LISTS),
                           small=rng.randrange(1, 12))
    if rng.random() < 0.15:
        subject = "Re: " + subject
    sent = START + int((i + rng.random()) * (END - START) / count)
    internal = sent + rng.randrange(2, 600)
    old = i < count * 0.8
    seen = rng.random() < (0.97 if old else 0.3)
    return {"from": "%s <%s>" % (name, address), "name": name, "address": address,
            "subject": subject, "sent": sent, "internal": internal, "seen": seen,
            "size": rng.randrange(2048, 6145), "rng": rng}


def bisect_right(a, x):
    lo, hi = 0, len(a)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def rfc5322_date(ts, zone, rng):
    sign = 1 if zone[0] == "+" else -1
    offset = sign * (int(zone[1:3]) * 3600 + int(zone[3:5]) * 60)
    t = time.gmtime(ts + offset)
    return "%s, %d %s %d %02d:%02d:%02d %s" % (
        DAYS[t.tm_wday][:3], t.tm_mday, MONTHS[t.tm_mon - 1][:3], t.tm_year, t.tm_hour,
        t.tm_min, t.tm_sec, zone)


def imap_date(ts):
    t = time.gmtime(ts)
    return "%02d-%s-%d %02d:%02d:%02d +0000" % (t.tm_mday, MONTHS[t.tm_mon - 1][:3], t.tm_year,
                                                t.tm_hour, t.tm_min, t.tm_sec)


def message(i, seed, count):
    """(CRLF bytes, facts) of message i: 2-6 KiB, a few Received fields, plain text or
    multipart/alternative."""
    m = meta(i, seed, count)
    rng = m["rng"]
    lines = body_lines()
    relay = rng.randrange(1, 250)
    head = [
        "Return-Path: <%s>" % m["address"],
        "Received: from mx%d.%s (mx%d.%s [192.0.2.%d])\r\n\tby mail.example.com with ESMTPS"
        " id %08x\r\n\tfor <bench@example.com>; %s" % (
            relay % 7, m["address"].split("@")[1], relay % 7, m["address"].split("@")[1], relay,
            rng.getrandbits(32), rfc5322_date(m["internal"], "+0000", rng)),
        "Received: from [10.%d.%d.%d] by mx%d.%s with ESMTPSA; %s" % (
            rng.randrange(256), rng.randrange(256), rng.randrange(256), relay % 7,
            m["address"].split("@")[1], rfc5322_date(m["sent"] + 1, "+0000", rng)),
        "Message-ID: <%d.%d.bench@%s>" % (i, seed, m["address"].split("@")[1]),
        "Date: %s" % rfc5322_date(m["sent"], rng.choice(ZONES), rng),
        "From: %s <%s>" % (encode_word(m["name"]) if any(ord(c) > 127 for c in m["name"])
                           else '"%s"' % m["name"], m["address"]),
        "To: Bench User <bench@example.com>",
        "Subject: %s" % encode_word(m["subject"]),
        "MIME-Version: 1.0",
    ]
    if rng.random() < 0.3:
        head.append("Cc: %s" % senders()[0][rng.randrange(400)][1])
    if rng.random() < 0.2:
        head.append("List-Id: <%s.lists.example.org>" % rng.choice(LISTS))
    multipart = rng.random() < 0.2
    boundary = "=_bench_%08x" % rng.getrandbits(32)
    if multipart:
        head.append('Content-Type: multipart/alternative; boundary="%s"' % boundary)
    else:
        head.append("Content-Type: text/plain; charset=utf-8")
        head.append("Content-Transfer-Encoding: 8bit")
    header = "\r\n".join(head) + "\r\n\r\n"
    text = []
    n = len(header)
    while n < m["size"]:
        line = lines[rng.randrange(len(lines))]
        text.append(line)
        n += len(line) + 2
    if multipart:
        half = max(1, len(text) // 2)
        plain = "\r\n".join(text[:half])
        html = "<html><body>\r\n" + "\r\n".join("<p>%s</p>" % t for t in text[half:]) + \
               "\r\n</body></html>"
        body = ("This is a multi-part message in MIME format.\r\n\r\n--%s\r\n"
                "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n--%s\r\n"
                "Content-Type: text/html; charset=utf-8\r\n\r\n%s\r\n--%s--\r\n") % (
                    boundary, plain, boundary, html, boundary)
    else:
        body = "\r\n".join(text) + "\r\n"
    return (header + body).encode(), m


# ---- protocol plumbing -----------------------------------------------------------------------

def tls_socket(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=600)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw)


class Imap:
    """A raw IMAP client: send a command, read up to its tagged reply, literal-aware."""

    def __init__(self, port):
        self.s = tls_socket(port)
        self.buf = bytearray()
        self.n = 0
        greeting = self._line()
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("greeting: %r" % greeting)

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise RuntimeError("connection closed")
        self.buf += d

    def _line(self):
        while True:
            nl = self.buf.find(b"\r\n")
            if nl >= 0:
                line = bytes(self.buf[:nl])
                del self.buf[:nl + 2]
                return line
            self._fill()

    def tag(self):
        self.n += 1
        return b"T%d" % self.n

    def send(self, tag, text):
        self.s.sendall(tag + b" " + text + b"\r\n")

    def reply(self, tag):
        """(tagged line, every byte before it) for `tag`; the untagged data is not split."""
        buf = self.buf
        want = tag + b" "
        pos = 0     # where the search for the next CRLF starts
        start = 0   # where the current logical line (literals included) starts
        while True:
            nl = buf.find(b"\r\n", pos)
            if nl < 0:
                self._fill()
                continue
            if nl > pos and buf[nl - 1] == 0x7D:  # "}" ends the line: a literal follows
                ob = buf.rfind(b"{", pos, nl)
                if ob >= 0:
                    size = buf[ob + 1:nl - 1].rstrip(b"+")
                    if size.isdigit():
                        pos = nl + 2 + int(size)
                        while len(buf) < pos:
                            self._fill()
                        continue
            if buf.startswith(want, start):
                data = bytes(buf[:start])
                line = bytes(buf[start:nl])
                del buf[:nl + 2]
                return line, data
            pos = start = nl + 2

    def command(self, text, expect_ok=True):
        tag = self.tag()
        self.send(tag, text)
        line, data = self.reply(tag)
        if expect_ok and not line.startswith(tag + b" OK"):
            raise RuntimeError("%r -> %r" % (text[:80], line))
        return line, data

    def login(self, user, password):
        self.command(b"LOGIN %s %s" % (user.encode(), password.encode()))

    def close(self):
        try:
            self.command(b"LOGOUT", expect_ok=False)
        finally:
            self.s.close()


def compact(numbers):
    """UID set text "1:3,7" of ascending numbers."""
    out, run = [], None
    for u in numbers:
        if run and u == run[1] + 1:
            run[1] = u
        else:
            if run:
                out.append("%d" % run[0] if run[0] == run[1] else "%d:%d" % tuple(run))
            run = [u, u]
    if run:
        out.append("%d" % run[0] if run[0] == run[1] else "%d:%d" % tuple(run))
    return out


def chunked_sets(numbers, limit=8000):
    parts, cur, n = [], [], 0
    for p in compact(numbers):
        if n + len(p) + 1 > limit and cur:
            parts.append(",".join(cur))
            cur, n = [], 0
        cur.append(p)
        n += len(p) + 1
    if cur:
        parts.append(",".join(cur))
    return parts


# ---- load ------------------------------------------------------------------------------------

def append_slice(job):
    """APPENDs messages [first, last) on one connection, `window` commands in flight
    (LITERAL+, so no continuation round trip)."""
    port, user, password, seed, count, first, last, window, mailbox = job
    c = Imap(port)
    c.login(user, password)
    pending = []
    sent = 0
    for i in range(first, last):
        data, m = message(i, seed, count)
        tag = c.tag()
        c.s.sendall(b"%s APPEND %s \"%s\" {%d+}\r\n%s\r\n" % (
            tag, mailbox.encode(), imap_date(m["internal"]).encode(), len(data), data))
        pending.append(tag)
        sent += len(data)
        if len(pending) >= window:
            t = pending.pop(0)
            line, _ = c.reply(t)
            if not line.startswith(t + b" OK"):
                raise RuntimeError("APPEND: %r" % line)
    for t in pending:
        line, _ = c.reply(t)
        if not line.startswith(t + b" OK"):
            raise RuntimeError("APPEND: %r" % line)
    c.close()
    return sent


def cmd_load(a):
    if a.mailbox != "INBOX":
        c = Imap(a.port)
        c.login(a.user, a.password)
        c.command(b"CREATE " + a.mailbox.encode(), expect_ok=False)
        c.close()
    per = (a.count + a.conns - 1) // a.conns
    jobs = [(a.port, a.user, a.password, a.seed, a.count, k * per, min(a.count, (k + 1) * per),
             a.window, a.mailbox) for k in range(a.conns) if k * per < a.count]
    t0 = time.monotonic()
    with multiprocessing.Pool(len(jobs)) as pool:
        sent = sum(pool.map(append_slice, jobs))
    dt = time.monotonic() - t0
    print("RESULT op=load server=%s user=%s mailbox=%s msgs=%d bytes=%d seconds=%.1f "
          "msgs_per_s=%.0f" % (a.server, a.user, a.mailbox, a.count, sent, dt, a.count / dt))


def maildir_slice(job):
    """Writes messages [first, last) as Maildir files named the way Dovecot's own delivery
    names them (S= physical size, W= size with CRLF), LF line ends, mtime = internal date
    (Dovecot's INTERNALDATE for Maildir)."""
    directory, seed, count, first, last = job
    written = 0
    for i in range(first, last):
        data, m = message(i, seed, count)
        vsize = len(data)
        data = data.replace(b"\r\n", b"\n")
        name = "%d.M%dP%d.bench,S=%d,W=%d:2," % (m["internal"], i, seed, len(data), vsize)
        path = os.path.join(directory, "cur", name)
        with open(path, "wb") as f:
            f.write(data)
        os.utime(path, (m["internal"], m["internal"]))
        written += len(data)
    return written


def cmd_maildir(a):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(a.dir, sub), exist_ok=True)
    per = (a.count + a.procs - 1) // a.procs
    jobs = [(a.dir, a.seed, a.count, k * per, min(a.count, (k + 1) * per))
            for k in range(a.procs) if k * per < a.count]
    t0 = time.monotonic()
    with multiprocessing.Pool(len(jobs)) as pool:
        written = sum(pool.map(maildir_slice, jobs))
    dt = time.monotonic() - t0
    print("RESULT op=maildir server=dovecot user=%s msgs=%d bytes=%d seconds=%.1f" % (
        a.user, a.count, written, dt))


_MSGID = re.compile(rb"\* \d+ FETCH \(UID (\d+) BODY\[HEADER\.FIELDS \(MESSAGE-ID\)\] \{\d+\}\r\n"
                    rb"Message-ID: <(\d+)\.", re.I)


def cmd_seen(a):
    """Marks \\Seen the messages meta() says are seen: their UIDs come from a FETCH of every
    Message-ID (APPEND over parallel connections assigns UIDs in commit order)."""
    c = Imap(a.port)
    c.login(a.user, a.password)
    t0 = time.monotonic()
    c.command(b"SELECT INBOX")
    select_s = time.monotonic() - t0
    _, data = c.command(b"UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    fetch_s = time.monotonic() - t0 - select_s
    uid_of = {int(i): int(u) for u, i in _MSGID.findall(data)}
    count = len(uid_of)
    seen = sorted(uid_of[i] for i in uid_of if meta(i, a.seed, a.count)["seen"])
    t0 = time.monotonic()
    for part in chunked_sets(seen):
        c.command(b"UID STORE %s +FLAGS.SILENT (\\Seen)" % part.encode())
    dt = time.monotonic() - t0
    c.close()
    print("RESULT op=seen server=%s msgs=%d seen=%d first_select_seconds=%.2f "
          "msgid_fetch_seconds=%.2f store_seconds=%.2f commands=%d" % (
              a.server, count, len(seen), select_s, fetch_s, dt, len(chunked_sets(seen))))


# ---- measurements ----------------------------------------------------------------------------

def fold(s):
    return s.casefold()


def day_of(text):
    t = time.strptime(text, "%d-%b-%Y")
    return calendar.timegm(t) // 86400


QUERIES = [  # name, SEARCH keys
    ("FROM", 'FROM "okafor"'),
    ("SUBJECT", 'SUBJECT "invoice"'),
    ("SINCE", "SINCE 1-Nov-2024"),
    ("UNSEEN", "UNSEEN"),
    ("FROM+SUBJECT+SINCE+UNSEEN", 'FROM "okafor" SUBJECT "invoice" SINCE 1-Jun-2024 UNSEEN'),
    ("OR FROM SUBJECT", 'OR FROM "tanaka" SUBJECT "build failed"'),
]


def expected_counts(count, seed):
    facts = [meta(i, seed, count) for i in range(count)]

    def has(field, needle):
        return lambda m: fold(needle) in fold(m[field])

    def since(text):
        d = day_of(text)
        return lambda m: m["internal"] // 86400 >= d

    unseen = lambda m: not m["seen"]
    tests = {
        "FROM": [has("from", "okafor")],
        "SUBJECT": [has("subject", "invoice")],
        "SINCE": [since("1-Nov-2024")],
        "UNSEEN": [unseen],
        "FROM+SUBJECT+SINCE+UNSEEN": [has("from", "okafor"), has("subject", "invoice"),
                                      since("1-Jun-2024"), unseen],
        "OR FROM SUBJECT": [lambda m: has("from", "tanaka")(m) or
                            has("subject", "build failed")(m)],
    }
    return {name: sum(1 for m in facts if all(t(m) for t in ts)) for name, ts in tests.items()}


def timed(conn, text):
    c0 = time.process_time()
    t0 = time.perf_counter()
    line, data = conn.command(text)
    t1 = time.perf_counter()
    return (t1 - t0) * 1000, (time.process_time() - c0) * 1000, data


def search_count(data):
    n = 0
    for line in data.split(b"\r\n"):
        if line.startswith(b"* SEARCH"):
            n += len(line.split()) - 2
    return n


def open_inbox(port, user, password):
    c = Imap(port)
    c.login(user, password)
    t0 = time.perf_counter()
    _, data = c.command(b"SELECT INBOX")
    ms = (time.perf_counter() - t0) * 1000
    exists = int(re.search(rb"\* (\d+) EXISTS", data).group(1))
    return c, ms, exists


def cmd_search(a):
    want = expected_counts(a.count, a.seed)
    servers = [("porter", a.porter), ("dovecot", a.dovecot)]
    conns = {}
    for name, port in servers:
        c, ms, exists = open_inbox(port, a.user, a.password)
        conns[name] = c
        print("RESULT op=select server=%s ms=%.1f exists=%d" % (name, ms, exists))
    for qname, keys in QUERIES:
        text = b"UID SEARCH " + keys.encode()
        runs = {name: [] for name, _ in servers}
        first = {}
        cpu = {name: [] for name, _ in servers}
        found = {}
        for name, _ in servers:  # the first run of each, reported apart (cold caches)
            ms, _, data = timed(conns[name], text)
            first[name] = ms
            found[name] = search_count(data)
        for _ in range(a.reps):  # then alternating, so drift hits both alike
            for name, _ in servers:
                ms, c_ms, data = timed(conns[name], text)
                runs[name].append(ms)
                cpu[name].append(c_ms)
        for name, _ in servers:
            print("RESULT op=search query=%s server=%s first_ms=%.1f median_ms=%.1f min_ms=%.1f "
                  "max_ms=%.1f matches=%d expected=%d client_cpu_ms=%.1f" % (
                      qname.replace(" ", "_"), name, first[name], statistics.median(runs[name]),
                      min(runs[name]), max(runs[name]), found[name], want[qname],
                      statistics.median(cpu[name])))
    for c in conns.values():
        c.close()


def cmd_fetch(a):
    servers = [("porter", a.porter), ("dovecot", a.dovecot)]
    conns = {name: open_inbox(port, a.user, a.password)[0] for name, port in servers}
    text = b"UID FETCH 1:* (BODY.PEEK[HEADER])"
    runs = {name: [] for name, _ in servers}
    cpu = {name: [] for name, _ in servers}
    first, size, msgs = {}, {}, {}
    for name, _ in servers:
        ms, _, data = timed(conns[name], text)
        first[name] = ms
        size[name] = len(data)
        msgs[name] = data.count(b" FETCH (")
    for _ in range(a.reps):
        for name, _ in servers:
            ms, c_ms, data = timed(conns[name], text)
            runs[name].append(ms)
            cpu[name].append(c_ms)
            del data
    for name, _ in servers:
        print("RESULT op=fetch query=UID_FETCH_1:*_(BODY.PEEK[HEADER]) server=%s first_ms=%.1f "
              "median_ms=%.1f min_ms=%.1f max_ms=%.1f matches=%d expected=%d bytes=%d "
              "client_cpu_ms=%.1f" % (name, first[name], statistics.median(runs[name]),
                                      min(runs[name]), max(runs[name]), msgs[name], a.count,
                                      size[name], statistics.median(cpu[name])))
    for c in conns.values():
        c.close()


class Pop3:
    def __init__(self, port):
        self.s = tls_socket(port)
        self.buf = bytearray()
        self.expect_ok()

    def _fill(self):
        d = self.s.recv(1 << 20)
        if not d:
            raise RuntimeError("connection closed")
        self.buf += d

    def line(self):
        while True:
            nl = self.buf.find(b"\r\n")
            if nl >= 0:
                out = bytes(self.buf[:nl])
                del self.buf[:nl + 2]
                return out
            self._fill()

    def expect_ok(self):
        line = self.line()
        if not line.startswith(b"+OK"):
            raise RuntimeError("POP3: %r" % line)
        return line

    def multiline(self):
        """One RETR answer: "+OK ..." then the message up to CRLF.CRLF; returns its size."""
        self.expect_ok()
        pos = 0
        while True:
            # The terminator is ".\r\n" at the start of a line; the +OK line's CRLF was
            # consumed, so an empty message would start with it.
            if self.buf.startswith(b".\r\n"):
                del self.buf[:3]
                return 0
            end = self.buf.find(b"\r\n.\r\n", pos)
            if end >= 0:
                del self.buf[:end + 5]
                return end + 2
            pos = max(0, len(self.buf) - 4)
            self._fill()

    def command(self, text):
        self.s.sendall(text + b"\r\n")
        return self.expect_ok()


def pop3_session(port, user, password, pipelined):
    p = Pop3(port)
    p.command(b"USER " + user.encode())
    p.command(b"PASS " + password.encode())
    n = int(p.command(b"STAT").split()[1])
    c0 = time.process_time()
    t0 = time.perf_counter()
    total = 0
    if pipelined:
        batch = 100
        for first in range(1, n + 1, batch):
            last = min(n, first + batch - 1)
            p.s.sendall(b"".join(b"RETR %d\r\n" % k for k in range(first, last + 1)))
            for _ in range(first, last + 1):
                total += p.multiline()
    else:
        for k in range(1, n + 1):
            p.s.sendall(b"RETR %d\r\n" % k)
            total += p.multiline()
    ms = (time.perf_counter() - t0) * 1000
    c_ms = (time.process_time() - c0) * 1000
    p.command(b"QUIT")
    p.s.close()
    return ms, c_ms, n, total


def cmd_pop3(a):
    servers = [("porter", a.porter), ("dovecot", a.dovecot)]
    for pipelined in (False, True):
        runs = {name: [] for name, _ in servers}
        cpu = {name: [] for name, _ in servers}
        first, msgs, size = {}, {}, {}
        for name, port in servers:
            first[name], _, msgs[name], size[name] = pop3_session(port, a.user, a.password,
                                                                  pipelined)
        for _ in range(a.reps):
            for name, port in servers:
                ms, c_ms, _, _ = pop3_session(port, a.user, a.password, pipelined)
                runs[name].append(ms)
                cpu[name].append(c_ms)
        for name, _ in servers:
            print("RESULT op=pop3 query=%s server=%s first_ms=%.1f median_ms=%.1f min_ms=%.1f "
                  "max_ms=%.1f matches=%d expected=%d bytes=%d client_cpu_ms=%.1f" % (
                      "RETR_x%d_pipelined" % a.count if pipelined else "RETR_x%d" % a.count,
                      name, first[name], statistics.median(runs[name]), min(runs[name]),
                      max(runs[name]), msgs[name], a.count, size[name],
                      statistics.median(cpu[name])))


def cmd_stats(a):
    want = expected_counts(a.count, a.seed)
    for k, v in want.items():
        print("%-28s %6d  %.2f%%" % (k, v, 100.0 * v / a.count))
    sizes = [len(message(i, a.seed, a.count)[0]) for i in range(0, a.count, max(1, a.count // 500))]
    print("size sample: min %d median %d max %d" % (min(sizes), statistics.median(sizes),
                                                    max(sizes)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="op", required=True)

    def common(p, ports):
        if ports:
            p.add_argument("--porter", type=int, required=True)
            p.add_argument("--dovecot", type=int, required=True)
        p.add_argument("--user", default="bench")
        p.add_argument("--password", default="bench-secret")
        p.add_argument("--count", type=int, default=100000)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--reps", type=int, default=3)

    p = sub.add_parser("load")
    common(p, False)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server", default="porter")
    p.add_argument("--conns", type=int, default=8)
    p.add_argument("--window", type=int, default=8)
    p.add_argument("--mailbox", default="INBOX")
    p.set_defaults(fn=cmd_load)
    p = sub.add_parser("maildir")
    common(p, False)
    p.add_argument("--dir", required=True)
    p.add_argument("--procs", type=int, default=2)
    p.set_defaults(fn=cmd_maildir)
    p = sub.add_parser("seen")
    common(p, False)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--server", default="porter")
    p.set_defaults(fn=cmd_seen)
    for name, fn in (("search", cmd_search), ("fetch", cmd_fetch), ("pop3", cmd_pop3)):
        p = sub.add_parser(name)
        common(p, True)
        p.set_defaults(fn=fn)
    p = sub.add_parser("stats")
    common(p, False)
    p.set_defaults(fn=cmd_stats)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
