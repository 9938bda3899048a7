// The record model: a Kafka-style record (key, value, timestamp, headers) and the sensor event
// that Sluice maps onto it. Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/strong_types.h"

namespace sluice {

struct RecordHeader {
  std::string key;
  std::string value;
  bool operator==(const RecordHeader&) const = default;
};

// One record of a Kafka RecordBatch v2. Keys and values are bytes; a null key or value is
// represented by nullopt (Kafka encodes it with length -1).
struct Record {
  int64_t offset_delta = 0;
  int64_t timestamp_ms = 0;  // absolute; the codec stores it as a delta from the batch's first
  std::optional<std::string> key;
  std::optional<std::string> value;
  std::vector<RecordHeader> headers;
  bool operator==(const Record&) const = default;

  const std::string* FindHeader(const std::string& name) const;
};

// A record as views into bytes someone else owns: what the batch encoder reads, so callers can
// encode without building Record copies (core/record_batch.h).
struct HeaderView {
  std::string_view key;
  std::string_view value;
};
struct RecordView {
  int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;
  std::optional<std::string_view> value;
  std::span<const HeaderView> headers;
};

// Header names Sluice puts on every record it produces.
inline constexpr const char* kHeaderSensor = "sensor";
inline constexpr const char* kHeaderCountry = "country";
inline constexpr const char* kHeaderGatewayId = "gateway_id";
inline constexpr const char* kHeaderGatewaySeq = "gateway_seq";  // decimal text
inline constexpr const char* kHeaderIngestTs = "ingest_ts";      // gateway receive time, epoch ms
inline constexpr const char* kHeaderSource = "source";           // "mqtt" or "http"

// The Sluice headers above, each of which a record may carry at most once: a reader taking the
// first (FindHeader) and one taking the last (Kafka's lastHeader) must not see different values.
inline constexpr const char* kSluiceHeaders[] = {kHeaderSensor,   kHeaderCountry, kHeaderGatewayId,
                                                 kHeaderGatewaySeq, kHeaderIngestTs, kHeaderSource};
// The first Sluice header that `r` carries more than once, or nullptr.
const char* RepeatedSluiceHeader(const Record& r);

// A sensor event as it travels from gateway to broker.
struct SensorEvent {
  DeviceId device_id;
  std::string sensor;
  CountryCode country;
  int64_t ts_ms = 0;      // device time
  int64_t ingest_ms = 0;  // gateway receive time
  GatewayId gateway_id;
  GatewaySeq gateway_seq;
  std::string source;   // "mqtt" or "http"
  std::string payload;  // bytes; JSON when the device sent JSON
  bool operator==(const SensorEvent&) const = default;
};

// Maps an event to a record: key = device id, value = payload, timestamp = device time,
// headers = sensor, country, gateway id, gateway sequence, ingest time, source.
Record ToRecord(const SensorEvent& e);

// The same record as views into `e` and `scratch` (valid while both live and unmoved): the
// forwarder's encode path, without ToRecord's copies. ToRecord is built on it.
struct EventRecordScratch {
  HeaderView headers[6];
  char gateway_seq[24];
  char ingest_ts[24];
};
RecordView ViewEventRecord(const SensorEvent& e, EventRecordScratch& scratch);
// The inverse; fails with kInvalidArgument naming the missing, malformed or repeated header.
Result<SensorEvent> FromRecord(const Record& r);

}  // namespace sluice
