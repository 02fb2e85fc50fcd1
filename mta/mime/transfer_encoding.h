#pragma once
// Content-Transfer-Encoding (RFC 2045 §6): naming the encoding of a body and undoing it, for
// SEARCH BODY/TEXT and for anything else that needs a part's content rather than its bytes.
//
// Decoding is lenient, as mail needs: base64 skips characters outside its alphabet (line
// breaks, stray spaces) and accepts missing or inner padding (several encoded chunks glued
// together); quoted-printable keeps a malformed "=" as it is and accepts bare-LF soft breaks.
// Pure functions; any thread.
// Limits: no uuencode or BinHex (not MIME transfer encodings); the output is at most the size
// of the input (plus one CR per bare LF for quoted-printable).

#include <string>
#include <string_view>

namespace mta::mime {

enum class TransferEncoding { k7Bit, k8Bit, kBinary, kBase64, kQuotedPrintable, kOther };

// Case-insensitive, surrounding white space ignored; an empty value is 7bit (RFC 2045 §6.1).
TransferEncoding parse_transfer_encoding(std::string_view value);

std::string decode_base64_lenient(std::string_view text);

// The content: base64 and quoted-printable decoded, anything else returned as it is.
std::string decode_transfer_encoding(std::string_view body, TransferEncoding encoding);

}  // namespace mta::mime
