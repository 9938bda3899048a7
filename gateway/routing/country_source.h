// CountrySource: where a gateway takes each event's country from (issue 13), a choice per
// gateway (residency.country_source):
//   event     the event's `country` field, else the gateway's own gateway.country (the default)
//   site      always gateway.country: every device at this site is of the site's country
//   registry  the device's pinned country from a device registry file (residency.device_registry)
// With `site` and `registry` an event that names another country is refused, never re-routed:
// HTTP 422 naming the field and both countries; MQTT dropped, counted and logged. With
// `registry`, a device the registry does not know is refused too.
//
// The registry (YAML): exact device ids, then id prefixes (the longest that matches wins):
//   devices:
//     boiler-7: FR
//   prefixes:
//     de-dev-: DE
// It is re-read when the file changes (checked at most once a second): an invalid new version
// is logged and the previous one kept.
// Thread-safety: thread-safe (HTTP and MQTT threads decide concurrently).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/status.h"
#include "core/strong_types.h"

namespace sluice::gateway {

enum class CountrySourceKind { kEvent, kSite, kRegistry };

// "event", "site", "registry"; false for anything else.
bool ParseCountrySource(const std::string& s, CountrySourceKind* kind);

struct DeviceRegistryMap {
  std::map<std::string, CountryCode> devices;
  std::map<std::string, CountryCode> prefixes;
  size_t longest_prefix = 0;
};

// Parses a registry file's text; kInvalidArgument "<origin>:<line>: <key>: <reason>".
Result<DeviceRegistryMap> ParseDeviceRegistry(const std::string& text, const std::string& origin);

struct CountryDecision {
  CountryCode country;     // the country to store the event under (when error is empty)
  std::string error;       // "" or "country_contradiction" / "device_unregistered"
  std::string field;       // the event field the refusal names
  std::string reason;      // for people, naming both countries
};

class CountrySource {
 public:
  // kInvalidArgument if the registry file cannot be read or is invalid (start-up error).
  static Result<std::unique_ptr<CountrySource>> Create(CountrySourceKind kind, CountryCode site,
                                                       const std::string& registry_path,
                                                       const Clock& clock);

  // `claimed`: the event's own country field, if it named one.
  CountryDecision Decide(const DeviceId& device, const std::optional<CountryCode>& claimed);

  CountrySourceKind kind() const { return kind_; }

 private:
  CountrySource(CountrySourceKind kind, CountryCode site, std::string path, const Clock& clock)
      : kind_(kind), site_(std::move(site)), path_(std::move(path)), clock_(clock) {}
  void MaybeReload();  // mu_ held
  std::optional<CountryCode> Pinned(const std::string& device) const;  // mu_ held

  const CountrySourceKind kind_;
  const CountryCode site_;
  const std::string path_;
  const Clock& clock_;
  std::mutex mu_;
  DeviceRegistryMap registry_;
  int64_t checked_ms_ = 0;
  int64_t mtime_ns_ = -1;
};

}  // namespace sluice::gateway
