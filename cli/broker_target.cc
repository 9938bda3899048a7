#include "cli/broker_target.h"

#include <cstdlib>

#include <algorithm>
#include <cctype>
#include <vector>

#include "core/config.h"
#include "core/residency_policy_file.h"
#include "core/http.h"

namespace sluice::cli {
namespace {

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// The flags override what a config file said.
Status ApplyTlsFlags(const CliArgs& args, TlsClientOptions* tls) {
  if (args.Has("ca-file")) tls->ca_file = args.Get("ca-file");
  if (args.Has("cert")) tls->cert_file = args.Get("cert");
  if (args.Has("key")) tls->key_file = args.Get("key");
  if (args.Has("token")) {
    tls->bearer_token = args.Get("token");
  } else if (const char* env = std::getenv("SLUICE_TOKEN"); env != nullptr && *env != '\0') {
    tls->bearer_token = env;
  }
  Status st = CheckClientTls(*tls);
  if (!st.ok()) return Status::InvalidArgument("--ca-file/--cert/--key: " + st.message());
  return st;
}

Result<BrokerTarget> ResolveUrl(const CliArgs& args);

}  // namespace

std::vector<CliFlag> BrokerTargetFlags() {
  return {
      {"broker", true,
       "broker base URL, e.g. http://127.0.0.1:9101 or https://broker:9101; several of a "
       "replicated region comma-separated (the first that answers is used)"},
      {"region", true,
       "with --config: the region (of the residency policy, or regions[].name) whose brokers "
       "to use"},
      {"ca-file", true, "https: PEM CA bundle to verify the broker with (default: system CAs)"},
      {"cert", true, "https: PEM client certificate for brokers that require mutual TLS"},
      {"key", true, "https: the client certificate's PEM private key"},
      {"token", true, "API key sent as Authorization: Bearer (default: $SLUICE_TOKEN)"},
  };
}

Result<BrokerTarget> ResolveBroker(const CliArgs& args) {
  Result<BrokerTarget> t = ResolveUrl(args);
  if (!t.ok()) return t;
  Status st = ApplyTlsFlags(args, &t->tls);
  if (!st.ok()) return st;
  if (t->urls.size() > 1) {
    for (const std::string& url : t->urls) {
      HttpClient probe(url, HttpClientOptions{2000, t->tls});
      if (probe.Get("/healthz").ok()) {  // any answer: it is up (and speaks TLS with us)
        t->url = url;
        break;
      }
    }
  }
  return t;
}

namespace {
// The URL and, from a config, its forward.tls.* (the flags are applied after).
Result<BrokerTarget> ResolveUrl(const CliArgs& args) {
  const bool has_broker = args.Has("broker");
  const bool has_config = !args.config_path.empty() || !args.overrides.empty();
  if (has_broker && has_config) {
    return Status::InvalidArgument("give either --broker URL or --config FILE --region NAME");
  }
  if (has_broker) {
    BrokerTarget t;
    const std::string list = args.Get("broker");
    size_t begin = 0;
    while (begin <= list.size()) {
      const size_t comma = std::min(list.find(',', begin), list.size());
      std::string url = TrimSlash(list.substr(begin, comma - begin));
      if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
        return Status::InvalidArgument("--broker must be http:// or https:// URLs, got '" + url +
                                       "'");
      }
      t.urls.push_back(url);
      begin = comma + 1;
    }
    t.url = t.urls.front();
    return t;
  }
  if (!has_config) {
    return Status::InvalidArgument("no broker: give --broker URL or --config FILE --region NAME");
  }
  const std::string want_region = args.Get("region");
  const std::string want_country = Upper(args.Get("country"));
  if (want_region.empty() && want_country.empty()) {
    return Status::InvalidArgument("--config needs --region NAME (or --country CC)");
  }
  try {
    Config config = Config::Load(args.config_path, args.overrides);
    // The deployment's residency policy names every region's brokers: named by a gateway
    // config (residency.policy_file), or given itself as --config.
    std::shared_ptr<const ResidencyPolicyFile> policy =
        LoadResidencyPolicy(config, "residency.policy_file");
    if (policy == nullptr && config.Has("countries")) {
      Result<ResidencyPolicyFile> own = ResidencyPolicyFile::Load(args.config_path);
      if (!own.ok()) {
        return own.status();
      }
      policy = std::make_shared<const ResidencyPolicyFile>(std::move(own).value());
    }
    if (policy != nullptr) {
      const PolicyRegion* region = nullptr;
      if (!want_region.empty()) {
        region = policy->FindRegion(RegionId(want_region));
      } else if (!policy->Allowed(CountryCode(want_country)).empty()) {
        region = policy->FindRegion(policy->Allowed(CountryCode(want_country)).front());
      }
      std::string known;
      for (const PolicyRegion& r : policy->regions()) {
        known += (known.empty() ? "" : ", ") + r.name.value();
      }
      if (region == nullptr) {
        return Status::InvalidArgument(
            policy->origin() + ": " +
            (want_region.empty() ? "no region may store country '" + want_country + "'"
                                 : "no region named '" + want_region + "'") +
            " (regions: " + known + ")");
      }
      if (region->brokers.empty()) {
        return Status::InvalidArgument(policy->origin() + ": region " + region->name.value() +
                                       " lists no brokers");
      }
      TlsClientOptions tls;
      tls.ca_file = config.GetString("forward.tls.ca_file", "");
      tls.cert_file = config.GetString("forward.tls.cert_file", "");
      tls.key_file = config.GetString("forward.tls.key_file", "");
      tls.bearer_token = config.GetString("forward.tls.bearer_token", "");
      BrokerTarget t{"", region->name.value(), tls, {}};
      for (const std::string& u : region->brokers) {
        t.urls.push_back(TrimSlash(u));
      }
      t.url = t.urls.front();
      return t;
    }
    std::vector<std::string> names;
    for (const Config& r : config.GetList("regions")) {
      const std::string name = r.RequireString("name");
      names.push_back(name);
      const std::vector<std::string> countries = r.GetStringList("countries", {});
      const bool match =
          want_region.empty()
              ? std::find(countries.begin(), countries.end(), want_country) != countries.end()
              : name == want_region;
      if (match) {
        TlsClientOptions tls;
        tls.ca_file = config.GetString("forward.tls.ca_file", "");
        tls.cert_file = config.GetString("forward.tls.cert_file", "");
        tls.key_file = config.GetString("forward.tls.key_file", "");
        tls.bearer_token = config.GetString("forward.tls.bearer_token", "");
        BrokerTarget t{"", name, tls, {}};
        if (r.Has("urls")) {
          for (const std::string& u : r.GetStringList("urls", {})) {
            t.urls.push_back(TrimSlash(u));
          }
        }
        if (t.urls.empty()) {
          t.urls.push_back(TrimSlash(r.RequireString("url")));
        }
        t.url = t.urls.front();
        return t;
      }
    }
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    const std::string origin = args.config_path.empty() ? "config" : args.config_path;
    if (!want_region.empty()) {
      return Status::InvalidArgument(origin + ": no region named '" + want_region +
                                     "' in regions (known: " + known + ")");
    }
    return Status::InvalidArgument(origin + ": no region lists country '" + want_country +
                                   "' (known regions: " + known + ")");
  } catch (const ConfigError& e) {
    return Status::InvalidArgument(e.what());
  }
}

}  // namespace

}  // namespace sluice::cli
