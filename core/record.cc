// Mapping between SensorEvent and Record (see record.h for the header names).
//
// FromRecord requires what the broker needs to route and place a record: a non-empty key (the
// device id) and a `country` header shaped like an ISO 3166-1 alpha-2 code. The other Sluice
// headers are optional, so records produced by plain Kafka clients are accepted; when present,
// gateway_seq and ingest_ts must be decimal integers. A null value maps to an empty payload.
// A Sluice header that repeats is refused (RepeatedSluiceHeader).
#include "core/record.h"

#include <charconv>
#include <string_view>

namespace sluice {
namespace {

template <typename Int>
bool ParseDecimal(std::string_view s, Int* out) {
  if (s.empty()) {
    return false;
  }
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out, 10);
  return ec == std::errc() && ptr == end;
}

Status MalformedHeader(const char* name, const std::string& value) {
  constexpr size_t kMaxQuoted = 64;  // the value is untrusted input: keep the message short
  std::string shown = value.substr(0, kMaxQuoted);
  if (value.size() > kMaxQuoted) {
    shown += "...";
  }
  return Status::InvalidArgument(std::string("malformed header ") + name + ": '" + shown + "'");
}

}  // namespace

const std::string* Record::FindHeader(const std::string& name) const {
  for (const RecordHeader& h : headers) {
    if (h.key == name) {
      return &h.value;
    }
  }
  return nullptr;
}

const char* RepeatedSluiceHeader(const Record& r) {
  for (const char* name : kSluiceHeaders) {
    int seen = 0;
    for (const RecordHeader& h : r.headers) {
      if (h.key == name && ++seen > 1) {
        return name;
      }
    }
  }
  return nullptr;
}

RecordView ViewEventRecord(const SensorEvent& e, EventRecordScratch& scratch) {
  auto number = [](char* buf, size_t size, auto v) {
    auto [end, ec] = std::to_chars(buf, buf + size, v);
    return std::string_view(buf, static_cast<size_t>(end - buf));
  };
  scratch.headers[0] = {kHeaderSensor, e.sensor};
  scratch.headers[1] = {kHeaderCountry, e.country.value()};
  scratch.headers[2] = {kHeaderGatewayId, e.gateway_id.value()};
  scratch.headers[3] = {kHeaderGatewaySeq, number(scratch.gateway_seq, sizeof(scratch.gateway_seq),
                                                  e.gateway_seq.value())};
  scratch.headers[4] = {kHeaderIngestTs,
                        number(scratch.ingest_ts, sizeof(scratch.ingest_ts), e.ingest_ms)};
  scratch.headers[5] = {kHeaderSource, e.source};
  RecordView v;
  v.timestamp_ms = e.ts_ms;
  v.key = e.device_id.value();
  v.value = e.payload;
  v.headers = scratch.headers;
  return v;
}

Record ToRecord(const SensorEvent& e) {
  EventRecordScratch scratch;
  const RecordView v = ViewEventRecord(e, scratch);
  Record r;
  r.timestamp_ms = v.timestamp_ms;
  r.key.emplace(*v.key);
  r.value.emplace(*v.value);
  r.headers.reserve(v.headers.size());
  for (const HeaderView& h : v.headers) {
    r.headers.push_back({std::string(h.key), std::string(h.value)});
  }
  return r;
}

Result<SensorEvent> FromRecord(const Record& r) {
  if (!r.key.has_value()) {
    return Status::InvalidArgument("missing key (device id)");
  }
  if (r.key->empty()) {
    return Status::InvalidArgument("empty key (device id)");
  }
  if (const char* repeated = RepeatedSluiceHeader(r)) {
    return Status::InvalidArgument(std::string("header ") + repeated + " appears more than once");
  }
  SensorEvent e;
  e.device_id = DeviceId(*r.key);
  e.ts_ms = r.timestamp_ms;
  if (r.value.has_value()) {
    e.payload = *r.value;
  }

  const std::string* country = r.FindHeader(kHeaderCountry);
  if (country == nullptr) {
    return Status::InvalidArgument(std::string("missing header ") + kHeaderCountry);
  }
  if (!IsCountryCodeShape(*country)) {
    return MalformedHeader(kHeaderCountry, *country);
  }
  e.country = CountryCode(*country);

  if (const std::string* v = r.FindHeader(kHeaderGatewaySeq)) {
    uint64_t seq = 0;
    if (!ParseDecimal(*v, &seq)) {
      return MalformedHeader(kHeaderGatewaySeq, *v);
    }
    e.gateway_seq = GatewaySeq(seq);
  }
  if (const std::string* v = r.FindHeader(kHeaderIngestTs)) {
    if (!ParseDecimal(*v, &e.ingest_ms)) {
      return MalformedHeader(kHeaderIngestTs, *v);
    }
  }
  if (const std::string* v = r.FindHeader(kHeaderSensor)) {
    e.sensor = *v;
  }
  if (const std::string* v = r.FindHeader(kHeaderGatewayId)) {
    e.gateway_id = GatewayId(*v);
  }
  if (const std::string* v = r.FindHeader(kHeaderSource)) {
    e.source = *v;
  }
  return e;
}

}  // namespace sluice
