#include "cloud-broker/query/query_cursor.h"

#include <tuple>

#include "core/base64.h"
#include "core/kafka_wire.h"

namespace sluice::broker {
namespace {

constexpr uint8_t kCursorVersion = 1;
constexpr size_t kFixedBytes = 1 + 4 + 8 + 8 + 4 + 2;
constexpr size_t kMaxTopicBytes = 249;  // Kafka's topic name limit

template <class T>
void Put(std::string* out, T v) {
  char b[sizeof(T)];
  wire::PutBig(b, v);
  out->append(b, sizeof(T));
}

}  // namespace

bool PositionLess(const QueryPosition& a, const QueryPosition& b) {
  return std::tie(a.ts_ms, a.topic, a.partition, a.offset) <
         std::tie(b.ts_ms, b.topic, b.partition, b.offset);
}

std::string EncodeCursor(const QueryPosition& at, uint32_t filter_fingerprint) {
  std::string raw(1, static_cast<char>(kCursorVersion));
  Put(&raw, filter_fingerprint);
  Put(&raw, at.ts_ms);
  Put(&raw, at.offset);
  Put(&raw, at.partition);
  Put(&raw, static_cast<uint16_t>(at.topic.size()));
  raw += at.topic;
  std::string text = Base64Encode(raw);
  for (char& c : text) {
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  }
  while (!text.empty() && text.back() == '=') {
    text.pop_back();
  }
  return text;
}

Result<QueryPosition> DecodeCursor(const std::string& text, uint32_t filter_fingerprint) {
  const Status bad = Status::InvalidArgument("cursor is not a `next` value of this API");
  if (text.size() > 2 * (kFixedBytes + kMaxTopicBytes)) {
    return bad;
  }
  std::string padded = text;
  for (char& c : padded) {
    if (c == '+' || c == '/' || c == '=') {
      return bad;  // base64url only
    }
    c = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (padded.size() % 4 != 0) {
    padded.push_back('=');
  }
  Result<std::string> raw = Base64Decode(padded);
  if (!raw.ok() || raw->size() < kFixedBytes ||
      static_cast<uint8_t>((*raw)[0]) != kCursorVersion) {
    return bad;
  }
  const char* p = raw->data() + 1;
  if (wire::GetBig<uint32_t>(p) != filter_fingerprint) {
    return Status::InvalidArgument(
        "cursor belongs to another query (device_id, country, sensor, from, to or topic "
        "differ): page with the parameters of the first page");
  }
  QueryPosition at;
  at.ts_ms = wire::GetBig<int64_t>(p + 4);
  at.offset = wire::GetBig<int64_t>(p + 12);
  at.partition = wire::GetBig<int32_t>(p + 20);
  const size_t len = wire::GetBig<uint16_t>(p + 24);
  if (raw->size() != kFixedBytes + len || len > kMaxTopicBytes || at.offset < 0 ||
      at.partition < 0) {
    return bad;
  }
  at.topic.assign(p + 26, len);
  return at;
}

}  // namespace sluice::broker
