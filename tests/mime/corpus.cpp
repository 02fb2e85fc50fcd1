#include "tests/mime/corpus.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mime_test {

std::string load_corpus(const std::string& name) {
  const std::string path = std::string(PORTER_MIME_CORPUS) + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string raw = ss.str();
  if (name.size() >= 7 && name.compare(name.size() - 7, 7, ".lf.eml") == 0) return raw;
  std::string out;
  for (char c : raw) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::vector<std::string> corpus_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(PORTER_MIME_CORPUS))
    if (e.path().extension() == ".eml") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string crlf(std::string_view lf) {
  std::string out;
  for (char c : lf) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

}  // namespace mime_test
