#include "gateway/routing/country_source.h"

#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/config.h"
#include "core/logging.h"
#include "core/residency_policy_file.h"

namespace sluice::gateway {
namespace {

constexpr int64_t kRecheckMs = 1000;
constexpr size_t kMaxEntries = 1'000'000;

int64_t MtimeNs(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

Result<DeviceRegistryMap> LoadRegistry(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::InvalidArgument("cannot read device registry " + path);
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseDeviceRegistry(ss.str(), path);
}

}  // namespace

bool ParseCountrySource(const std::string& s, CountrySourceKind* kind) {
  if (s == "event") *kind = CountrySourceKind::kEvent;
  else if (s == "site") *kind = CountrySourceKind::kSite;
  else if (s == "registry") *kind = CountrySourceKind::kRegistry;
  else return false;
  return true;
}

Result<DeviceRegistryMap> ParseDeviceRegistry(const std::string& text, const std::string& origin) {
  DeviceRegistryMap m;
  try {
    const Config c = Config::Parse(text, origin);
    for (const char* family : {"devices", "prefixes"}) {
      const std::vector<std::string> keys = c.MapKeys(family);
      if (keys.size() > kMaxEntries) {
        c.Fail(family, "more than " + std::to_string(kMaxEntries) + " entries");
      }
      for (const std::string& id : keys) {
        const std::string key = std::string(family) + "." + id;
        if (id.empty() || id.size() > 1024) {
          c.Fail(key, "a device id or prefix is 1..1024 bytes");
        }
        const std::string country = c.RequireString(key);
        if (!IsIsoCountryCode(country)) {
          c.Fail(key, "'" + country + "' is not an ISO 3166-1 alpha-2 country code");
        }
        (std::string(family) == "devices" ? m.devices : m.prefixes)[id] = CountryCode(country);
        if (std::string(family) == "prefixes") {
          m.longest_prefix = std::max(m.longest_prefix, id.size());
        }
      }
    }
    c.RejectUnknownKeys();
  } catch (const ConfigError& e) {
    return Status::InvalidArgument(e.what());
  }
  return m;
}

Result<std::unique_ptr<CountrySource>> CountrySource::Create(CountrySourceKind kind,
                                                             CountryCode site,
                                                             const std::string& registry_path,
                                                             const Clock& clock) {
  std::unique_ptr<CountrySource> s(new CountrySource(kind, std::move(site), registry_path, clock));
  if (kind == CountrySourceKind::kRegistry) {
    s->mtime_ns_ = MtimeNs(registry_path);
    Result<DeviceRegistryMap> m = LoadRegistry(registry_path);
    if (!m.ok()) {
      return m.status();
    }
    s->registry_ = std::move(m).value();
    s->checked_ms_ = clock.MonotonicUs() / 1000;
  }
  return s;
}

void CountrySource::MaybeReload() {
  const int64_t now = clock_.MonotonicUs() / 1000;
  if (now - checked_ms_ < kRecheckMs) {
    return;
  }
  checked_ms_ = now;
  const int64_t mtime = MtimeNs(path_);
  if (mtime == mtime_ns_) {
    return;
  }
  Result<DeviceRegistryMap> m = LoadRegistry(path_);
  mtime_ns_ = mtime;  // an invalid version is reported once, not every second
  if (!m.ok()) {
    LogError("registry", "kept the previous device registry: " + m.status().message());
    return;
  }
  registry_ = std::move(m).value();
  LogInfo("registry", "reloaded device registry " + path_ + ": " +
                          std::to_string(registry_.devices.size()) + " devices, " +
                          std::to_string(registry_.prefixes.size()) + " prefixes");
}

std::optional<CountryCode> CountrySource::Pinned(const std::string& device) const {
  const auto exact = registry_.devices.find(device);
  if (exact != registry_.devices.end()) {
    return exact->second;
  }
  // The longest prefix that matches: try the device id's own prefixes, longest first (ids are
  // short; at most 1,024 lookups).
  for (size_t len = std::min(device.size(), registry_.longest_prefix); len > 0; --len) {
    const auto it = registry_.prefixes.find(device.substr(0, len));
    if (it != registry_.prefixes.end()) {
      return it->second;
    }
  }
  return std::nullopt;
}

CountryDecision CountrySource::Decide(const DeviceId& device,
                                      const std::optional<CountryCode>& claimed) {
  CountryDecision d;
  switch (kind_) {
    case CountrySourceKind::kEvent:
      d.country = claimed.value_or(site_);
      return d;
    case CountrySourceKind::kSite:
      d.country = site_;
      if (claimed.has_value() && *claimed != site_) {
        d.error = "country_contradiction";
        d.field = "country";
        d.reason = "device " + device.value() + " claims country " + claimed->value() +
                   ", but this gateway stores its site's country " + site_.value() +
                   " (residency.country_source: site)";
      }
      return d;
    case CountrySourceKind::kRegistry: {
      std::optional<CountryCode> pinned;
      {
        std::lock_guard<std::mutex> lock(mu_);
        MaybeReload();
        pinned = Pinned(device.value());
      }
      if (!pinned.has_value()) {
        d.error = "device_unregistered";
        d.field = "device_id";
        d.reason = "device " + device.value() + " is not in the device registry " + path_ +
                   " (residency.country_source: registry)";
        return d;
      }
      d.country = *pinned;
      if (claimed.has_value() && *claimed != *pinned) {
        d.error = "country_contradiction";
        d.field = "country";
        d.reason = "device " + device.value() + " claims country " + claimed->value() +
                   ", but the device registry " + path_ + " pins it to " + pinned->value();
      }
      return d;
    }
  }
  return d;
}

}  // namespace sluice::gateway
