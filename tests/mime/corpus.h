#pragma once
// Reading the hand-written messages in tests/mime/corpus (see its README.md).

#include <string>
#include <string_view>
#include <vector>

namespace mime_test {

// The message as the store would keep it: CRLF line ends, except for files named
// "*.lf.eml", which are returned as they are.
std::string load_corpus(const std::string& name);

// Every file name in the corpus, sorted.
std::vector<std::string> corpus_names();

// `lf` with every LF turned into CRLF, for messages written inline in tests.
std::string crlf(std::string_view lf);

}  // namespace mime_test
