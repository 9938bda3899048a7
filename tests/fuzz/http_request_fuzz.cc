// libFuzzer target: HTTP request handling as the server does it (core/http_server.cc): Beast's
// request parser with the server's header and body limits, then the request-target decoding
// (core/http_target.h). Any byte string must end in a request or an error.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include <boost/beast/http.hpp>

#include "core/http_target.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace http = boost::beast::http;
  http::request_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(64 * 1024);
  parser.eager(true);
  boost::beast::error_code ec;
  size_t used = 0;
  while (used < size && !parser.is_done()) {
    const size_t n = parser.put(boost::asio::buffer(data + used, size - used), ec);
    if (ec == http::error::need_more) {
      break;
    }
    if (ec || n == 0) {
      return 0;
    }
    used += n;
  }
  if (!parser.is_header_done()) {
    return 0;
  }
  const auto target = parser.get().target();
  std::string path;
  std::map<std::string, std::string> query;
  (void)sluice::ParseRequestTarget(std::string_view(target.data(), target.size()), &path, &query);
  return 0;
}
