#include "dns/fake_resolver.h"

#include <algorithm>

namespace dns {

template <typename T>
void FakeResolver::add(Zone<T>& zone, const std::string& name, T record, uint32_t ttl) {
  auto [it, first] = zone.try_emplace(normalize_name(name));
  it->second.records.push_back(std::move(record));
  it->second.ttl = first ? ttl : std::min(it->second.ttl, ttl);
}

void FakeResolver::add_mx(const std::string& domain, uint16_t preference, const std::string& host,
                          uint32_t ttl) {
  add(mx_, domain, MxRecord{preference, host}, ttl);
}

void FakeResolver::add_a(const std::string& name, const std::string& ip, uint32_t ttl) {
  add(a_, name, ip, ttl);
}

void FakeResolver::add_aaaa(const std::string& name, const std::string& ip, uint32_t ttl) {
  add(aaaa_, name, ip, ttl);
}

void FakeResolver::add_txt(const std::string& name, const std::string& text, uint32_t ttl) {
  add(txt_, name, text, ttl);
}

void FakeResolver::add_ptr(const std::string& name, const std::string& host, uint32_t ttl) {
  add(ptr_, name, host, ttl);
}

void FakeResolver::set_fault(const std::string& name, Fault fault) {
  if (fault == Fault::kNone) {
    faults_.erase(normalize_name(name));
  } else {
    faults_[normalize_name(name)] = fault;
  }
}

bool FakeResolver::exists(const std::string& key) const {
  return mx_.count(key) || a_.count(key) || aaaa_.count(key) || txt_.count(key) || ptr_.count(key);
}

void FakeResolver::query_mx(const std::string& domain, AnswerCallback<MxRecord> cb) {
  answer(mx_, RrType::kMx, domain, std::move(cb));
}

void FakeResolver::query_a(const std::string& name, AnswerCallback<std::string> cb) {
  answer(a_, RrType::kA, name, std::move(cb));
}

void FakeResolver::query_aaaa(const std::string& name, AnswerCallback<std::string> cb) {
  answer(aaaa_, RrType::kAaaa, name, std::move(cb));
}

void FakeResolver::query_txt(const std::string& name, AnswerCallback<std::string> cb) {
  answer(txt_, RrType::kTxt, name, std::move(cb));
}

void FakeResolver::query_ptr(const std::string& name, AnswerCallback<std::string> cb) {
  answer(ptr_, RrType::kPtr, name, std::move(cb));
}

template <typename T>
void FakeResolver::answer(const Zone<T>& zone, RrType type, const std::string& name,
                          AnswerCallback<T> cb) {
  const std::string key = normalize_name(name);
  const std::string what = std::string(rr_type_name(type)) + " " + key;
  queries_.push_back(what);

  Fault fault = Fault::kNone;
  if (auto f = faults_.find(key); f != faults_.end()) fault = f->second;
  if (fault == Fault::kNone && !exists(key)) fault = Fault::kNxdomain;

  core::Result<Answer<T>> result = Answer<T>{{}, negative_ttl_};
  switch (fault) {
    case Fault::kNone:
      if (auto it = zone.find(key); it != zone.end()) result = it->second;
      break;
    case Fault::kNxdomain:
      result = core::Status::not_found("dns: NXDOMAIN for " + what);
      break;
    case Fault::kServfail:
      result = core::Status::temporary("dns: SERVFAIL for " + what);
      break;
    case Fault::kTimeout:
      result = core::Status::temporary("dns: timeout for " + what);
      break;
  }
  poster_.post(
      [cb = std::move(cb), result = std::move(result)]() mutable { cb(std::move(result)); });
}

}  // namespace dns
