#include "core/residency_policy_file.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include "core/config.h"

namespace sluice {
namespace {

// ISO 3166-1 alpha-2, officially assigned codes (ISO 3166 Maintenance Agency, 2024).
constexpr std::string_view kIsoCountries =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ "
    "BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM "
    "DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS "
    "GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN "
    "KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ "
    "MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM "
    "PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV "
    "SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI "
    "VN VU WF WS YE YT ZA ZM ZW";

constexpr size_t kMaxRegions = 256;
constexpr size_t kMaxBrokersPerRegion = 64;
constexpr size_t kMaxNameBytes = 64;

std::string Sha256Version(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned int i = 0; i < 8 && i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xf]);
  }
  return out;
}

bool IsRegionName(const std::string& s) {
  if (s.empty() || s.size() > kMaxNameBytes) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

}  // namespace

bool IsIsoCountryCode(const std::string& code) {
  if (code.size() != 2) return false;
  for (size_t i = 0; i + 2 <= kIsoCountries.size(); i += 3) {
    if (kIsoCountries.compare(i, 2, code) == 0) return true;
  }
  return false;
}

Result<ResidencyPolicyFile> ResidencyPolicyFile::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("cannot read residency policy " + path + ": " +
                            std::strerror(errno));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

Result<ResidencyPolicyFile> ResidencyPolicyFile::Parse(const std::string& text,
                                                       const std::string& origin) {
  ResidencyPolicyFile p;
  p.origin_ = origin;
  p.version_ = Sha256Version(text);
  try {
    const Config c = Config::Parse(text, origin);
    std::set<std::string> names;
    const std::vector<Config> regions = c.GetList("regions");
    if (regions.empty()) {
      c.Fail("regions", "at least one region is required");
    }
    if (regions.size() > kMaxRegions) {
      c.Fail("regions", "more than " + std::to_string(kMaxRegions) + " regions");
    }
    for (const Config& r : regions) {
      PolicyRegion region;
      const std::string name = r.RequireString("name");
      if (!IsRegionName(name)) {
        r.Fail("name", "'" + name + "' is not a region name (1-" +
                           std::to_string(kMaxNameBytes) + " of a-z, 0-9, - and _)");
      }
      if (!names.insert(name).second) {
        r.Fail("name", "region " + name + " is listed twice");
      }
      region.name = RegionId(name);
      region.jurisdiction = r.GetString("jurisdiction", "");
      region.brokers = r.GetStringList("brokers", {});
      if (region.brokers.size() > kMaxBrokersPerRegion) {
        r.Fail("brokers", "more than " + std::to_string(kMaxBrokersPerRegion) + " brokers");
      }
      for (const std::string& url : region.brokers) {
        if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
          r.Fail("brokers", "'" + url + "' is not an http:// or https:// URL");
        }
      }
      p.regions_.push_back(std::move(region));
    }
    // A list of regions, each known and listed once.
    auto region_list = [&](const std::string& key) {
      const std::vector<std::string> list = c.GetStringList(key, {});
      std::vector<RegionId> out;
      std::set<std::string> seen;
      for (const std::string& name : list) {
        if (names.count(name) == 0) {
          c.Fail(key, "unknown region " + name + " (not in regions:)");
        }
        if (!seen.insert(name).second) {
          c.Fail(key, "region " + name + " is listed twice");
        }
        out.push_back(RegionId(name));
      }
      return out;
    };
    for (const std::string& code : c.MapKeys("countries")) {
      const std::string key = "countries." + code;
      if (!IsIsoCountryCode(code)) {
        c.Fail(key, "'" + code + "' is not an ISO 3166-1 alpha-2 country code");
      }
      std::vector<RegionId> allowed = region_list(key);
      if (allowed.empty()) {
        c.Fail(key, "country " + code +
                        " has no region (list at least one; leave a country out to apply "
                        "default:)");
      }
      p.countries_[code] = std::move(allowed);
    }
    const std::vector<std::string> def = c.GetStringList("default", {"deny"});
    if (!(def.size() == 1 && def[0] == "deny")) {
      p.default_ = region_list("default");
      if (p.default_.empty()) {
        c.Fail("default", "must be deny or a list of regions");
      }
    }
    const std::string failover = c.GetString("failover", "hold");
    if (failover != "hold" && failover != "next_allowed") {
      c.Fail("failover", "must be hold or next_allowed, got " + failover);
    }
    p.failover_ =
        failover == "hold" ? ResidencyFailover::kHold : ResidencyFailover::kNextAllowed;
    c.RejectUnknownKeys();
  } catch (const ConfigError& e) {
    return Status::InvalidArgument(e.what());
  }
  return p;
}

const PolicyRegion* ResidencyPolicyFile::FindRegion(const RegionId& name) const {
  for (const PolicyRegion& r : regions_) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

const std::vector<RegionId>& ResidencyPolicyFile::Allowed(const CountryCode& country) const {
  static const std::vector<RegionId> kNone;
  const auto it = countries_.find(country.value());
  if (it != countries_.end()) return it->second;
  // `default:` covers real countries only: a made-up code is stored nowhere.
  return IsIsoCountryCode(country.value()) ? default_ : kNone;
}

bool ResidencyPolicyFile::Allows(const CountryCode& country, const RegionId& region) const {
  const std::vector<RegionId>& allowed = Allowed(country);
  return std::find(allowed.begin(), allowed.end(), region) != allowed.end();
}

std::vector<CountryCode> ResidencyPolicyFile::ListedCountriesOf(const RegionId& region) const {
  std::vector<CountryCode> out;
  for (const auto& [code, allowed] : countries_) {
    if (std::find(allowed.begin(), allowed.end(), region) != allowed.end()) {
      out.push_back(CountryCode(code));
    }
  }
  return out;
}

std::shared_ptr<const ResidencyPolicyFile> LoadResidencyPolicy(const Config& config,
                                                               const std::string& key) {
  const std::string named = config.GetString(key, "");
  if (named.empty()) {
    return nullptr;
  }
  Result<ResidencyPolicyFile> loaded = ResidencyPolicyFile::Load(config.PathAt(key, named));
  if (!loaded.ok()) {
    config.Fail(key, loaded.status().message());
  }
  return std::make_shared<const ResidencyPolicyFile>(std::move(loaded).value());
}

bool ResidencyPolicyFile::DefaultAllows(const RegionId& region) const {
  return std::find(default_.begin(), default_.end(), region) != default_.end();
}

}  // namespace sluice
