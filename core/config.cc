#include "core/config.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace sluice {

struct Config::Impl {
  YAML::Node root;
  std::string origin;
  std::set<std::string> accessed;
  std::set<std::string> overridden;
  std::set<std::string> open_subtrees;  // maps read with MapKeys: any key below them is known
};

namespace {

std::vector<std::string> SplitKey(const std::string& key) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : key) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

bool IsIndex(const std::string& s, size_t* idx) {
  if (s.empty() || s.size() > 6) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  *idx = std::stoul(s);
  return true;
}

// Lookup without creating nodes; returns an undefined node when absent.
YAML::Node Lookup(const YAML::Node& node, const std::vector<std::string>& parts, size_t i) {
  if (i == parts.size()) return node;
  if (!node.IsDefined() || node.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
  size_t idx = 0;
  if (node.IsSequence() && IsIndex(parts[i], &idx)) {
    if (idx >= node.size()) return YAML::Node(YAML::NodeType::Undefined);
    return Lookup(node[idx], parts, i + 1);
  }
  if (!node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node& cnode = node;
  YAML::Node child = cnode[parts[i]];
  if (!child) return YAML::Node(YAML::NodeType::Undefined);
  return Lookup(child, parts, i + 1);
}

void SetPath(YAML::Node node, const std::vector<std::string>& parts, size_t i,
             const YAML::Node& value) {
  size_t idx = 0;
  const bool last = i + 1 == parts.size();
  if (node.IsSequence() && IsIndex(parts[i], &idx)) {
    if (idx > node.size()) throw YAML::Exception(YAML::Mark::null_mark(), "index out of range");
    if (idx == node.size()) node.push_back(last ? value : YAML::Node(YAML::NodeType::Map));
    if (last) {
      node[idx] = value;
    } else {
      SetPath(node[idx], parts, i + 1, value);
    }
    return;
  }
  if (node.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "not a map");
  if (last) {
    node[parts[i]] = value;
    return;
  }
  YAML::Node child = node[parts[i]];
  if (!child.IsDefined() || child.IsNull()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
  SetPath(node[parts[i]], parts, i + 1, value);
}

// Expands ${VAR} and ${VAR:-default} outside comments. Throws ConfigError on an unset variable.
std::string ExpandEnv(const std::string& text, const std::string& origin) {
  std::string out;
  out.reserve(text.size());
  int line = 1;
  bool in_comment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      in_comment = false;
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(text[i - 1])))) {
      in_comment = true;
    }
    if (!in_comment && c == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end == std::string::npos) {
        throw ConfigError(origin + ":" + std::to_string(line) + ": unterminated ${");
      }
      std::string expr = text.substr(i + 2, end - i - 2);
      std::string name = expr;
      std::string def;
      bool has_def = false;
      if (auto p = expr.find(":-"); p != std::string::npos) {
        name = expr.substr(0, p);
        def = expr.substr(p + 2);
        has_def = true;
      }
      const char* v = std::getenv(name.c_str());
      if (v != nullptr && *v != '\0') {
        out += v;
      } else if (has_def) {
        out += def;
      } else {
        throw ConfigError(origin + ":" + std::to_string(line) + ": environment variable " + name +
                          " is not set and has no default (write ${" + name + ":-value})");
      }
      i = end;
      continue;
    }
    out += c;
  }
  return out;
}

void CollectLeaves(const YAML::Node& node, const std::string& path, std::vector<std::string>* out) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      std::string k = kv.first.as<std::string>();
      CollectLeaves(kv.second, path.empty() ? k : path + "." + k, out);
    }
  } else if (node.IsSequence()) {
    bool scalars = true;
    for (const auto& el : node) scalars = scalars && !el.IsMap();
    if (scalars) {
      out->push_back(path);
      return;
    }
    for (size_t i = 0; i < node.size(); ++i) {
      CollectLeaves(node[i], path + "." + std::to_string(i), out);
    }
  } else {
    out->push_back(path);
  }
}

// Every mapping key must be a plain scalar name: YAML allows a map or a list as a key ("? "), which
// no getter can name and which yaml-cpp cannot convert to a string (found by tests/fuzz/
// config_fuzz: it threw YAML::TypedBadConversion out of RejectUnknownKeys). Iterative, and nesting
// is bounded, so no config can exhaust the stack here.
void CheckPlainKeys(const YAML::Node& root, const std::string& origin) {
  constexpr size_t kMaxDepth = 64;
  std::vector<std::pair<YAML::Node, size_t>> todo{{root, 1}};
  while (!todo.empty()) {
    auto [node, depth] = todo.back();
    todo.pop_back();
    if (!node.IsMap() && !node.IsSequence()) {
      continue;
    }
    if (depth > kMaxDepth) {
      throw ConfigError(origin + ":" + std::to_string(node.Mark().line + 1) +
                        ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    for (const auto& item : node) {
      if (node.IsMap()) {
        if (!item.first.IsScalar()) {
          throw ConfigError(origin + ":" + std::to_string(item.first.Mark().line + 1) +
                            ": a key must be a plain name, not a map or a list");
        }
        todo.push_back({item.second, depth + 1});
      } else {
        todo.push_back({item, depth + 1});
      }
    }
  }
}

}  // namespace

Config::Config(std::shared_ptr<Impl> impl, std::string prefix)
    : impl_(std::move(impl)), prefix_(std::move(prefix)) {}

const std::string& Config::origin() const { return impl_->origin; }

std::string Config::PathAt(const std::string& key, const std::string& value) const {
  std::filesystem::path path(value);
  const std::string& o = impl_->origin;
  if (path.is_relative() && !IsOverride(key) && !o.empty() && o[0] != '<') {
    path = std::filesystem::path(o).parent_path() / path;
  }
  return path.string();
}

bool Config::IsOverride(const std::string& key) const {
  return impl_->overridden.count(prefix_ + key) > 0;
}

Config Config::Load(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return Parse("", "<defaults>", overrides);
  std::ifstream in(path);
  if (!in) throw ConfigError(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path, overrides);
}

Config Config::Parse(const std::string& yaml_text, const std::string& origin,
                     const std::vector<std::string>& overrides) {
  auto impl = std::make_shared<Impl>();
  impl->origin = origin;
  try {
    impl->root = YAML::Load(ExpandEnv(yaml_text, origin));
  } catch (const YAML::Exception& e) {
    throw ConfigError(origin + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
  }
  if (!impl->root.IsDefined() || impl->root.IsNull()) impl->root = YAML::Node(YAML::NodeType::Map);
  if (!impl->root.IsMap()) throw ConfigError(origin + ": the top level must be a map of keys");
  CheckPlainKeys(impl->root, origin);
  for (const auto& ov : overrides) {
    auto eq = ov.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw ConfigError("--set " + ov + ": expected key.path=value");
    }
    std::string key = ov.substr(0, eq);
    std::string text = ov.substr(eq + 1);
    YAML::Node value;
    if (!text.empty() && (text.front() == '[' || text.front() == '{')) {
      try {
        value = YAML::Load(text);
      } catch (const YAML::Exception& e) {
        throw ConfigError("--set " + key + ": invalid value: " + e.msg);
      }
    } else {
      value = YAML::Node(text);
    }
    try {
      SetPath(impl->root, SplitKey(key), 0, value);
    } catch (const YAML::Exception& e) {
      throw ConfigError("--set " + key + ": cannot set this path: " + e.msg);
    }
    impl->overridden.insert(key);
  }
  return Config(impl, "");
}

void Config::Fail(const std::string& key, const std::string& reason) const {
  const std::string full = prefix_ + key;
  if (impl_->overridden.count(full)) throw ConfigError("--set " + full + ": " + reason);
  YAML::Node n = Lookup(impl_->root, SplitKey(full), 0);
  std::string where = impl_->origin;
  if (n.IsDefined() && n.Mark().line >= 0 && !n.Mark().is_null()) {
    where += ":" + std::to_string(n.Mark().line + 1);
  }
  throw ConfigError(where + ": " + full + ": " + reason);
}

namespace {

// Returns the scalar text at key, or nullopt when absent; fails on a non-scalar.
std::optional<std::string> ScalarAt(const Config& cfg, Config::Impl& impl, const std::string& full,
                                    const std::string& key) {
  YAML::Node n = Lookup(impl.root, SplitKey(full), 0);
  if (!n.IsDefined() || n.IsNull()) return std::nullopt;
  if (!n.IsScalar()) cfg.Fail(key, "expected a single value, got a list or map");
  return n.Scalar();
}

}  // namespace

bool Config::Has(const std::string& key) const {
  impl_->accessed.insert(prefix_ + key);
  YAML::Node n = Lookup(impl_->root, SplitKey(prefix_ + key), 0);
  return n.IsDefined() && !n.IsNull();
}

std::string Config::GetString(const std::string& key, const std::string& def) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  return v ? *v : def;
}

std::string Config::RequireString(const std::string& key) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v || v->empty()) Fail(key, "is required");
  return *v;
}

namespace {
bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  size_t pos = 0;
  try {
    *out = std::stoll(s, &pos, 10);
  } catch (...) {
    return false;
  }
  return pos == s.size();
}
}  // namespace

int64_t Config::GetInt(const std::string& key, int64_t def) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v) return def;
  int64_t out;
  if (!ParseInt(*v, &out)) Fail(key, "expected an integer, got '" + *v + "'");
  return out;
}

int64_t Config::RequireInt(const std::string& key) const {
  if (!Has(key)) Fail(key, "is required");
  return GetInt(key, 0);
}

double Config::GetDouble(const std::string& key, double def) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v) return def;
  try {
    size_t pos = 0;
    double d = std::stod(*v, &pos);
    if (pos == v->size()) return d;
  } catch (...) {
  }
  Fail(key, "expected a number, got '" + *v + "'");
}

bool Config::GetBool(const std::string& key, bool def) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v) return def;
  if (*v == "true" || *v == "yes" || *v == "on") return true;
  if (*v == "false" || *v == "no" || *v == "off") return false;
  Fail(key, "expected true or false, got '" + *v + "'");
}

bool ParseDurationMs(const std::string& text, int64_t* ms) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return false;
  double n;
  try {
    n = std::stod(text.substr(0, i));
  } catch (...) {
    return false;
  }
  std::string unit = text.substr(i);
  double mult;
  if (unit.empty() || unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m") mult = 60'000;
  else if (unit == "h") mult = 3'600'000;
  else if (unit == "us") mult = 0.001;
  else return false;
  *ms = static_cast<int64_t>(n * mult);
  return true;
}

bool ParseBytes(const std::string& text, int64_t* bytes) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  if (i == 0 || i > 15) return false;
  int64_t n = std::stoll(text.substr(0, i));
  std::string unit = text.substr(i);
  if (!unit.empty() && unit.front() == ' ') unit.erase(0, 1);
  int64_t mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB") mult = 1024;
  else if (unit == "MiB") mult = 1024 * 1024;
  else if (unit == "GiB") mult = 1024LL * 1024 * 1024;
  else if (unit == "KB") mult = 1000;
  else if (unit == "MB") mult = 1000 * 1000;
  else if (unit == "GB") mult = 1000LL * 1000 * 1000;
  else return false;
  *bytes = n * mult;
  return true;
}

int64_t Config::GetDurationMs(const std::string& key, int64_t def_ms) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v) return def_ms;
  int64_t ms;
  if (!ParseDurationMs(*v, &ms)) {
    Fail(key, "expected a duration like 250ms, 5s, 2m or 1h, got '" + *v + "'");
  }
  return ms;
}

int64_t Config::GetDurationMsOrOff(const std::string& key, int64_t def_ms) const {
  if (Has(key) && GetString(key, "") == "-1") {
    return -1;
  }
  return GetDurationMs(key, def_ms);
}

int64_t Config::GetBytes(const std::string& key, int64_t def) const {
  impl_->accessed.insert(prefix_ + key);
  auto v = ScalarAt(*this, *impl_, prefix_ + key, key);
  if (!v) return def;
  int64_t b;
  if (!ParseBytes(*v, &b)) Fail(key, "expected a size like 512, 64KiB, 16MiB or 1GiB, got '" + *v + "'");
  return b;
}

std::vector<std::string> Config::GetStringList(const std::string& key,
                                               const std::vector<std::string>& def) const {
  impl_->accessed.insert(prefix_ + key);
  YAML::Node n = Lookup(impl_->root, SplitKey(prefix_ + key), 0);
  if (!n.IsDefined() || n.IsNull()) return def;
  if (n.IsScalar()) return {n.Scalar()};
  if (!n.IsSequence()) Fail(key, "expected a list of values");
  std::vector<std::string> out;
  for (const auto& el : n) {
    if (!el.IsScalar()) Fail(key, "expected a list of plain values");
    out.push_back(el.Scalar());
  }
  return out;
}

std::vector<Config> Config::GetList(const std::string& key) const {
  impl_->accessed.insert(prefix_ + key);
  YAML::Node n = Lookup(impl_->root, SplitKey(prefix_ + key), 0);
  if (!n.IsDefined() || n.IsNull()) return {};
  if (!n.IsSequence()) Fail(key, "expected a list");
  std::vector<Config> out;
  for (size_t i = 0; i < n.size(); ++i) {
    if (!n[i].IsMap()) Fail(key + "." + std::to_string(i), "expected a map of keys");
    out.push_back(Config(impl_, prefix_ + key + "." + std::to_string(i) + "."));
  }
  return out;
}

std::vector<std::string> Config::MapKeys(const std::string& key) const {
  impl_->open_subtrees.insert(prefix_ + key);
  YAML::Node n = Lookup(impl_->root, SplitKey(prefix_ + key), 0);
  std::vector<std::string> out;
  if (!n.IsDefined() || !n.IsMap()) return out;
  for (const auto& kv : n) out.push_back(kv.first.as<std::string>());
  return out;
}

Config Config::Sub(const std::string& key) const { return Config(impl_, prefix_ + key + "."); }

void Config::RejectUnknownKeys() const {
  std::vector<std::string> leaves;
  CollectLeaves(impl_->root, "", &leaves);
  for (const auto& leaf : leaves) {
    // A leaf is known if a getter asked for it, or it lies below a map read with MapKeys.
    bool known = impl_->accessed.count(leaf) > 0;
    std::string path = leaf;
    while (!known) {
      if (impl_->open_subtrees.count(path)) {
        known = true;
        break;
      }
      auto dot = path.rfind('.');
      if (dot == std::string::npos) break;
      path = path.substr(0, dot);
    }
    if (!known) Config(impl_, "").Fail(leaf, "unknown key (check the spelling; see config/README.md)");
  }
}

}  // namespace sluice
