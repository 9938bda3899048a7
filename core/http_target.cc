#include "core/http_target.h"

namespace sluice {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

}  // namespace

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 2 < s.size() ? HexValue(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? HexValue(s[i + 2]) : -1;
    if (i + 2 >= s.size() || hi < 0 || lo < 0) {
      return Status::InvalidArgument("bad percent-escape at byte " + std::to_string(i) +
                                     " of the request target");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

Status ParseRequestTarget(std::string_view target, std::string* path,
                          std::map<std::string, std::string>* query) {
  if (target.empty() || target.front() != '/') {
    return Status::InvalidArgument("the request target must be a path starting with '/'");
  }
  const size_t q = target.find('?');
  Result<std::string> p = PercentDecode(target.substr(0, q));
  if (!p.ok()) {
    return p.status();
  }
  *path = std::move(p).value();
  query->clear();
  if (q == std::string_view::npos) {
    return Status::Ok();
  }
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (pair.empty()) {
      continue;
    }
    const size_t eq = pair.find('=');
    Result<std::string> name = PercentDecode(pair.substr(0, eq));
    Result<std::string> value =
        PercentDecode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!name.ok()) {
      return name.status();
    }
    if (!value.ok()) {
      return value.status();
    }
    (*query)[std::move(name).value()] = std::move(value).value();
  }
  return Status::Ok();
}

}  // namespace sluice
