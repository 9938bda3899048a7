#include "cloud-broker/produce/produce_checks.h"

#include <charconv>

#include "core/strong_types.h"
#include "core/utf8.h"

namespace sluice::broker {
namespace {

ProduceError InvalidRecord(size_t index, const std::string& reason, const std::string& field) {
  ProduceError e;
  e.code = ProduceErrc::kInvalidRecord;
  e.message = "record " + std::to_string(index) + " " + reason;
  e.field = field;
  e.index = static_cast<int64_t>(index);
  return e;
}

template <typename Int>
bool IsDecimal(const std::string& s) {
  Int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  return !s.empty() && ec == std::errc() && ptr == s.data() + s.size() && v >= 0;
}

// The first Sluice header of `r` (besides country) that is malformed, or nullptr: text headers
// must be printable UTF-8 (they are served back as JSON strings, unaltered), numeric ones
// decimal (gateway_seq drives exactly-once). Requires each to appear at most once.
const char* MalformedSluiceHeader(const Record& r) {
  for (const char* name : {kHeaderSensor, kHeaderGatewayId, kHeaderSource}) {
    const std::string* v = r.FindHeader(name);
    if (v != nullptr && !IsPrintableUtf8(*v)) {
      return name;
    }
  }
  const std::string* seq = r.FindHeader(kHeaderGatewaySeq);
  if (seq != nullptr && !IsDecimal<uint64_t>(*seq)) {
    return kHeaderGatewaySeq;
  }
  const std::string* ingest = r.FindHeader(kHeaderIngestTs);
  if (ingest != nullptr && !IsDecimal<int64_t>(*ingest)) {
    return kHeaderIngestTs;
  }
  return nullptr;
}

std::string Quoted(const std::string& s) {
  constexpr size_t kMax = 32;  // untrusted: keep the answer short
  return "\"" + (s.size() > kMax ? s.substr(0, kMax) + "..." : s) + "\"";
}

}  // namespace

std::optional<ProduceError> CheckProducedBatch(const RecordBatch& batch, int64_t now_ms,
                                                 int64_t max_future_ms) {
  // Every attribute bit is refused (compression already by the decoder): Sluice has no
  // transactions, so a transactional or control (commit/abort marker) batch would be stored as
  // sent and mislead Kafka readers; with LogAppendTime they would read the batch's max timestamp
  // as every record's while Sluice serves each record's own; the other bits are the broker's.
  if (batch.attributes != 0) {
    const char* what = (batch.attributes & (kAttrTransactional | kAttrControl)) != 0
                           ? "transactional and control batches are not supported"
                       : (batch.attributes & kAttrTimestampType) != 0
                           ? "LogAppendTime batches are not supported (the broker keeps each "
                             "record's timestamp)"
                           : "unknown attribute bits";
    ProduceError e;
    e.code = ProduceErrc::kInvalidBatch;
    e.message = std::string(what) + " (attributes " + std::to_string(batch.attributes) +
                "; send 0)";
    e.field = "attributes";
    return e;
  }
  const int64_t latest =
      max_future_ms < 0 || now_ms > INT64_MAX - max_future_ms ? INT64_MAX : now_ms + max_future_ms;
  for (size_t i = 0; i < batch.records.size(); ++i) {
    const Record& r = batch.records[i];
    if (!r.key.has_value() || r.key->empty()) {
      return InvalidRecord(i, "has no key (the device id)", "key");
    }
    if (!IsPrintableUtf8(*r.key)) {
      return InvalidRecord(i, "has a key (the device id) that is not printable UTF-8", "key");
    }
    if (const char* repeated = RepeatedSluiceHeader(r)) {
      return InvalidRecord(i, std::string("carries header ") + repeated + " more than once",
                           std::string("headers.") + repeated);
    }
    const std::string* country = r.FindHeader(kHeaderCountry);
    if (country == nullptr) {
      return InvalidRecord(i, "has no country header", "headers.country");
    }
    if (!IsCountryCodeShape(*country)) {
      return InvalidRecord(i, "has country " + Quoted(*country) +
                                  ", not an ISO 3166-1 alpha-2 code",
                           "headers.country");
    }
    if (const char* bad = MalformedSluiceHeader(r)) {
      return InvalidRecord(i, std::string("has a malformed header ") + bad +
                                  (bad == kHeaderGatewaySeq || bad == kHeaderIngestTs
                                       ? " (must be a decimal integer >= 0)"
                                       : " (must be printable UTF-8)"),
                           std::string("headers.") + bad);
    }
    if (r.timestamp_ms < 0) {
      return InvalidRecord(i, "has timestamp " + std::to_string(r.timestamp_ms) +
                                  ", before 1970",
                           "timestamp");
    }
    if (r.timestamp_ms > latest) {
      return InvalidRecord(i, "has timestamp " + std::to_string(r.timestamp_ms) + ", more than " +
                                  std::to_string(max_future_ms) +
                                  " ms after the broker's clock (" + std::to_string(now_ms) +
                                  "; produce.max_future)",
                           "timestamp");
    }
  }
  return std::nullopt;
}

ProduceError DecodeRefusal(const Status& status, const DecodeViolation& violation) {
  ProduceError e;
  e.message = status.message();
  if (status.code() != StatusCode::kInvalidArgument || violation.field.empty()) {
    e.code = ProduceErrc::kCorruptBatch;
    return e;
  }
  e.code = violation.index < 0 ? ProduceErrc::kInvalidBatch : ProduceErrc::kInvalidRecord;
  e.field = violation.field;
  e.index = violation.index;
  return e;
}

}  // namespace sluice::broker
