#!/usr/bin/python3
"""A small authoritative DNS server on loopback for Porter's tests, with faults.

Serves the records of a master-format zone file over UDP on 127.0.0.1. Names with no record
get NXDOMAIN, names with records of other types NODATA; both carry the SOA of the closest
enclosing zone in the authority section (RFC 2308). CNAMEs in the zone are chased.

Faults, per name (case-insensitive, any type):
  --servfail NAME   answer with RCODE SERVFAIL
  --drop NAME       never answer (the client times out)

Prints "ready PORT" on stdout once the socket is bound (--port 0 picks a free port), then
serves until killed, or until its parent process dies, so a crashed test leaves nothing behind.
Limits: UDP only (answers must fit 512 bytes), class IN, no wildcards, no delegations.

Usage: fake_dns_server.py --zone FILE [--port N] [--servfail NAME]... [--drop NAME]... [--log]
"""

import argparse
import os
import select
import socket
import sys

from dnslib import CLASS, QTYPE, RCODE, RR, DNSLabel, DNSRecord

MAX_CNAME_LINKS = 8


def load_zone(path):
    with open(path) as f:
        return RR.fromZone(f.read())


def closest_soa(records, qname):
    best = None
    for rr in records:
        if rr.rtype == QTYPE.SOA and qname.matchSuffix(rr.rname):
            if best is None or len(rr.rname.label) > len(best.rname.label):
                best = rr
    return best


def answer(records, request, servfail):
    q = request.q
    reply = request.reply()
    name = q.qname
    if name in servfail:
        reply.header.rcode = RCODE.SERVFAIL
        return reply
    for _ in range(MAX_CNAME_LINKS):
        owned = [rr for rr in records if rr.rname == name]
        cnames = [rr for rr in owned if rr.rtype == QTYPE.CNAME]
        if cnames and q.qtype != QTYPE.CNAME:
            reply.add_answer(cnames[0])
            name = DNSLabel(str(cnames[0].rdata.label))
            continue
        break
    owned = [rr for rr in records if rr.rname == name]
    for rr in owned:
        if rr.rtype == q.qtype and rr.rclass == CLASS.IN:
            reply.add_answer(rr)
    if not any(rr.rtype == q.qtype for rr in owned):
        if not owned:
            reply.header.rcode = RCODE.NXDOMAIN
        soa = closest_soa(records, name)
        if soa is not None:
            reply.add_auth(soa)
    return reply


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--zone", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--servfail", action="append", default=[])
    parser.add_argument("--drop", action="append", default=[])
    parser.add_argument("--log", action="store_true")
    args = parser.parse_args()

    records = load_zone(args.zone)
    servfail = [DNSLabel(n) for n in args.servfail]
    drop = [DNSLabel(n) for n in args.drop]
    parent = os.getppid()

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    print("ready", sock.getsockname()[1], flush=True)

    while True:
        readable, _, _ = select.select([sock], [], [], 0.5)
        if os.getppid() != parent:
            return
        if not readable:
            continue
        data, peer = sock.recvfrom(4096)
        try:
            request = DNSRecord.parse(data)
        except Exception as e:  # a test may send garbage; keep serving
            print("bad query:", e, file=sys.stderr, flush=True)
            continue
        if args.log:
            print("query", request.q.qname, QTYPE[request.q.qtype], file=sys.stderr, flush=True)
        if request.q.qname in drop:
            continue
        sock.sendto(answer(records, request, servfail).pack(), peer)


if __name__ == "__main__":
    main()
