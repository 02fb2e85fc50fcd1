#pragma once
// Reading the hand-written messages in tests/mime/corpus (see its README.md).

#include <string>
#include <vector>

namespace mime_test {

// The message as the store would keep it: CRLF line ends, except for files named
// "*.lf.eml", which are returned as they are.
std::string load_corpus(const std::string& name);

// Every file name in the corpus, sorted.
std::vector<std::string> corpus_names();

}  // namespace mime_test
