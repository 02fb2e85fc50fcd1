#!/usr/bin/python3
"""Prints each corpus message as Python's email package sees it.

A cross-check for corpus_test.cpp's expectations, run by hand (not part of the build):
    /usr/bin/python3 tests/mime/corpus_structure.py
Per file: the MIME shape (type/subtype, children in parentheses, as shape() in
corpus_test.cpp prints it), then the decoded Subject and any attachment file names.
"""
import email
import email.policy
import pathlib
import sys


def shape(part):
    kids = []
    if part.is_multipart():
        kids = part.get_payload()
    text = part.get_content_type()
    if kids:
        text += "(" + ",".join(shape(k) for k in kids) + ")"
    return text


def main():
    corpus = pathlib.Path(__file__).resolve().parent / "corpus"
    for path in sorted(corpus.glob("*.eml")):
        data = path.read_bytes()
        if not path.name.endswith(".lf.eml"):
            data = data.replace(b"\n", b"\r\n")
        msg = email.message_from_bytes(data, policy=email.policy.compat32)
        print(f"{path.name} {shape(msg)}")
        decoded = email.message_from_bytes(data, policy=email.policy.default)
        print(f"  subject: {str(decoded['Subject'])!r}")
        for part in decoded.walk():
            if part.get_filename():
                print(f"  filename: {part.get_filename()!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
