#!/usr/bin/python3
"""Reads a message with Python's email package (policy=default) and prints what it found as
JSON, for tests/mime/compose_test.cpp: an independent reader of what compose() writes.

Usage: compose_check.py MESSAGE_FILE
Output: {"defects": [...], "subject": str, "from"/"to"/"cc"/"reply_to": [{"name", "addr"}],
         "structure": "multipart/mixed(text/plain,application/pdf)",
         "text"/"html": str or null (line ends as LF), "headers": {name: value},
         "attachments": [{"filename", "content_type", "disposition", "content_id", "hex"}]}
"""
import email
import email.policy
import json
import sys


def structure(part):
    if part.is_multipart():
        return "%s(%s)" % (part.get_content_type(),
                           ",".join(structure(p) for p in part.iter_parts()))
    return part.get_content_type()


def addresses(msg, name):
    header = msg[name]
    if header is None:
        return []
    return [{"name": a.display_name, "addr": a.addr_spec} for a in header.addresses]


def main():
    with open(sys.argv[1], "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    defects = []
    attachments = []
    for part in msg.walk():
        defects += ["%s: %r" % (part.get_content_type(), d) for d in part.defects]
        for name, value in part.items():
            defects += ["%s: %r" % (name, d) for d in getattr(value, "defects", ())]
        if part.is_multipart() or part.get_filename() is None:
            continue
        attachments.append({
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "disposition": part.get_content_disposition(),
            "content_id": part.get("Content-ID"),
            "hex": part.get_payload(decode=True).hex(),
        })
    bodies = {}
    for kind in ("plain", "html"):
        body = msg.get_body(preferencelist=(kind,))
        if body is not None and body.get_filename() is None:
            bodies[kind] = body.get_content().replace("\r\n", "\n")
    own = {"from", "to", "cc", "reply-to", "subject", "date", "message-id", "mime-version",
           "content-type", "content-transfer-encoding"}
    print(json.dumps({
        "defects": defects,
        "subject": msg["subject"],
        "from": addresses(msg, "from"),
        "to": addresses(msg, "to"),
        "cc": addresses(msg, "cc"),
        "reply_to": addresses(msg, "reply-to"),
        "structure": structure(msg),
        "text": bodies.get("plain"),
        "html": bodies.get("html"),
        "headers": {k: str(v) for k, v in msg.items() if k.lower() not in own},
        "attachments": attachments,
    }))


if __name__ == "__main__":
    main()
