#include "cli/broker_target.h"

#include <cstdlib>
#include <memory>

#include <algorithm>
#include <cctype>
#include <vector>

#include "cli/render.h"
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

// A config's forward.tls.* (a gateway config: its own CA and certificate); the flags come after.
TlsClientOptions TlsFromConfig(const Config& config) {
  TlsClientOptions tls;
  tls.ca_file = config.GetString("forward.tls.ca_file", "");
  tls.cert_file = config.GetString("forward.tls.cert_file", "");
  tls.key_file = config.GetString("forward.tls.key_file", "");
  tls.bearer_token = config.GetString("forward.tls.bearer_token", "");
  return tls;
}

// The deployment's residency policy names every region's brokers: named by a gateway config
// (residency.policy_file), or given itself as --config. nullptr: neither (a `regions:` config).
Result<std::shared_ptr<const ResidencyPolicyFile>> PolicyOf(const Config& config,
                                                           const CliArgs& args) {
  std::shared_ptr<const ResidencyPolicyFile> policy =
      LoadResidencyPolicy(config, "residency.policy_file");
  if (policy == nullptr && config.Has("countries")) {
    Result<ResidencyPolicyFile> own = ResidencyPolicyFile::Load(args.config_path);
    if (!own.ok()) {
      return own.status();
    }
    policy = std::make_shared<const ResidencyPolicyFile>(std::move(own).value());
  }
  return policy;
}

// A region of the policy as a target (its brokers, the config's TLS).
Result<BrokerTarget> TargetOf(const ResidencyPolicyFile& policy, const PolicyRegion& region,
                              const Config& config) {
  if (region.brokers.empty()) {
    return Status::InvalidArgument(policy.origin() + ": region " + region.name.value() +
                                   " lists no brokers");
  }
  BrokerTarget t{"", region.name.value(), TlsFromConfig(config), {}};
  for (const std::string& u : region.brokers) {
    t.urls.push_back(TrimSlash(u));
  }
  t.url = t.urls.front();
  return t;
}

// TLS flags, then (several brokers) the first that answers /healthz.
Status Finish(const CliArgs& args, BrokerTarget* t) {
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
  return Status::Ok();
}

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
  Status st = Finish(args, &t.value());
  if (!st.ok()) return st;
  return t;
}

Result<std::string> GetBody(const BrokerTarget& target, const std::string& path,
                            int64_t timeout_ms) {
  HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  options.tls = target.tls;
  HttpClient client(target.url, options);
  Result<HttpResponse> r = client.Get(path);
  if (!r.ok()) {
    return Status::Unavailable("cannot reach " + target.url + ": " + r.status().message());
  }
  if (r->status != 200) {
    return Status::FailedPrecondition(target.url + path + " answered HTTP " +
                                      std::to_string(r->status) + ": " + Truncate(r->body, 300));
  }
  return std::move(r->body);
}

Result<std::vector<BrokerTarget>> ResolveAllRegions(const CliArgs& args) {
  if (args.Has("broker") || args.Has("region")) {
    return Status::InvalidArgument(
        "--all-regions asks every region of the residency policy: give --config FILE (the "
        "policy, or a gateway config naming it), not --broker or --region");
  }
  if (args.config_path.empty() && args.overrides.empty()) {
    return Status::InvalidArgument("--all-regions needs --config FILE (the residency policy)");
  }
  try {
    Config config = Config::Load(args.config_path, args.overrides);
    Result<std::shared_ptr<const ResidencyPolicyFile>> policy = PolicyOf(config, args);
    if (!policy.ok()) return policy.status();
    if (*policy == nullptr) {
      return Status::InvalidArgument(
          (args.config_path.empty() ? std::string("config") : args.config_path) +
          ": no residency policy (a policy file, or a config with residency.policy_file)");
    }
    std::vector<BrokerTarget> out;
    for (const PolicyRegion& r : (*policy)->regions()) {
      Result<BrokerTarget> t = TargetOf(**policy, r, config);
      if (!t.ok()) return t.status();
      Status st = Finish(args, &t.value());
      if (!st.ok()) return st;
      out.push_back(std::move(t).value());
    }
    return out;
  } catch (const ConfigError& e) {
    return Status::InvalidArgument(e.what());
  }
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
    Result<std::shared_ptr<const ResidencyPolicyFile>> loaded = PolicyOf(config, args);
    if (!loaded.ok()) return loaded.status();
    const std::shared_ptr<const ResidencyPolicyFile>& policy = *loaded;
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
      return TargetOf(*policy, *region, config);
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
        BrokerTarget t{"", name, TlsFromConfig(config), {}};
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
