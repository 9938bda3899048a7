#include "core/metrics.h"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace sluice {

struct MetricsRegistry::Family {
  std::string help;
  std::string type;  // "counter" or "gauge"
  std::map<MetricLabels, std::unique_ptr<Counter>> counters;
  std::map<MetricLabels, std::unique_ptr<Gauge>> gauges;
  std::map<MetricLabels, std::function<double()>> gauge_fns;
};

namespace {

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string LabelText(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) out += ',';
    first = false;
    out += k + "=\"" + EscapeLabel(v) + "\"";
  }
  return out + "}";
}

std::string FormatDouble(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

}  // namespace

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& fam = families_[name];
  if (!fam) {
    fam = std::make_unique<Family>();
    fam->help = help;
    fam->type = "counter";
  }
  auto& c = fam->counters[labels];
  if (!c) c = std::make_unique<Counter>();
  return *c;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& fam = families_[name];
  if (!fam) {
    fam = std::make_unique<Family>();
    fam->help = help;
    fam->type = "gauge";
  }
  auto& g = fam->gauges[labels];
  if (!g) g = std::make_unique<Gauge>();
  return *g;
}

void MetricsRegistry::AddGaugeFn(const std::string& name, const std::string& help,
                                 const MetricLabels& labels, std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& fam = families_[name];
  if (!fam) {
    fam = std::make_unique<Family>();
    fam->help = help;
    fam->type = "gauge";
  }
  fam->gauge_fns[labels] = std::move(fn);
}

std::string MetricsRegistry::RenderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream out;
  for (const auto& [name, fam] : families_) {
    out << "# HELP " << name << ' ' << fam->help << '\n';
    out << "# TYPE " << name << ' ' << fam->type << '\n';
    for (const auto& [labels, c] : fam->counters) {
      out << name << LabelText(labels) << ' ' << c->Value() << '\n';
    }
    for (const auto& [labels, g] : fam->gauges) {
      out << name << LabelText(labels) << ' ' << g->Value() << '\n';
    }
    for (const auto& [labels, fn] : fam->gauge_fns) {
      out << name << LabelText(labels) << ' ' << FormatDouble(fn()) << '\n';
    }
  }
  return out.str();
}

}  // namespace sluice
