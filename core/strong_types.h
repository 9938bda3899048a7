// Strong types for ids and offsets, so a residency check cannot be handed the wrong string
// (after redpanda's named_type). Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace sluice {

template <typename T, typename Tag>
class NamedType {
 public:
  using value_type = T;
  NamedType() = default;
  explicit NamedType(T v) : v_(std::move(v)) {}
  const T& value() const { return v_; }
  T& value() { return v_; }
  auto operator<=>(const NamedType&) const = default;

 private:
  T v_{};
};

using DeviceId = NamedType<std::string, struct DeviceIdTag>;
using CountryCode = NamedType<std::string, struct CountryCodeTag>;  // ISO 3166-1 alpha-2, upper case
using RegionId = NamedType<std::string, struct RegionIdTag>;
using GatewayId = NamedType<std::string, struct GatewayIdTag>;
using TopicName = NamedType<std::string, struct TopicNameTag>;
using PartitionId = NamedType<int32_t, struct PartitionIdTag>;
using Offset = NamedType<int64_t, struct OffsetTag>;
using ProducerId = NamedType<int64_t, struct ProducerIdTag>;
using GatewaySeq = NamedType<uint64_t, struct GatewaySeqTag>;

// True when s is two upper-case ASCII letters (the shape of an ISO 3166-1 alpha-2 code).
bool IsCountryCodeShape(const std::string& s);

}  // namespace sluice

template <typename T, typename Tag>
struct std::hash<sluice::NamedType<T, Tag>> {
  size_t operator()(const sluice::NamedType<T, Tag>& v) const { return std::hash<T>{}(v.value()); }
};
