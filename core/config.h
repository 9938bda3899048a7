// Config: a YAML configuration tree with environment expansion and command-line overrides.
//
// - `${VAR}` and `${VAR:-default}` in the file expand from the environment before parsing; an
//   unset VAR without a default is an error naming the file and line.
// - Overrides `key.path=value` (from repeated `--set`) replace or add the value at that path;
//   the value is parsed as a YAML scalar or flow collection (`--set mqtt.topics=[a/#,b/#]`).
//   Sequence elements are addressed by index (`regions.0.url=...`).
// - Typed getters throw ConfigError("<file>: <key>: <reason>") on a wrong type or a missing
//   required key. Configuration is read only at start-up, so exceptions are the contract here.
// - RejectUnknownKeys() fails on any key that no getter asked for, so a typo is caught rather
//   than silently ignored.
// Thread-safety: not thread-safe; read it at start-up on one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Config {
 public:
  // Loads `path` (YAML). An empty path starts from an empty tree (embedded defaults only).
  static Config Load(const std::string& path, const std::vector<std::string>& overrides = {});
  // Parses YAML text; `origin` names it in error messages.
  static Config Parse(const std::string& yaml_text, const std::string& origin,
                      const std::vector<std::string>& overrides = {});

  bool Has(const std::string& key) const;

  std::string GetString(const std::string& key, const std::string& def) const;
  std::string RequireString(const std::string& key) const;
  int64_t GetInt(const std::string& key, int64_t def) const;
  int64_t RequireInt(const std::string& key) const;
  double GetDouble(const std::string& key, double def) const;
  bool GetBool(const std::string& key, bool def) const;
  // Durations: "250ms", "5s", "2m", "1h", or a bare number of milliseconds. Returns ms.
  int64_t GetDurationMs(const std::string& key, int64_t def_ms) const;
  // The same, or -1 when the value is "-1" (a bound turned off).
  int64_t GetDurationMsOrOff(const std::string& key, int64_t def_ms) const;
  // Sizes: "512", "64KiB", "16MiB", "1GiB", "10KB", "5MB". Returns bytes.
  int64_t GetBytes(const std::string& key, int64_t def) const;
  // A sequence of scalars, or a single scalar taken as a one-element list.
  std::vector<std::string> GetStringList(const std::string& key,
                                         const std::vector<std::string>& def) const;
  // A sequence of maps (e.g. `regions:`); each element is a Config rooted there.
  std::vector<Config> GetList(const std::string& key) const;
  // The keys of the map at `key` (empty if absent).
  std::vector<std::string> MapKeys(const std::string& key) const;
  // A view of the subtree at `key` (an empty tree if absent).
  Config Sub(const std::string& key) const;

  // Throws ConfigError naming the first key present in the tree that no getter asked for.
  void RejectUnknownKeys() const;

  // "<origin>: <full key>: <reason>", as thrown by the getters.
  [[noreturn]] void Fail(const std::string& key, const std::string& reason) const;

  const std::string& origin() const;
  // Whether `key`'s value came from a --set override rather than the file.
  bool IsOverride(const std::string& key) const;
  // A file path given at `key`: a relative one is taken from the directory of this config file
  // (from the working directory when it came from --set or the config is not a file).
  std::string PathAt(const std::string& key, const std::string& value) const;

  struct Impl;

 private:
  Config(std::shared_ptr<Impl> impl, std::string prefix);
  std::shared_ptr<Impl> impl_;
  std::string prefix_;  // path of this view inside the root, "" or "a.b."
};

// Parses "250ms"/"5s"/"2m"/"1h"/"1500" into milliseconds; false on a malformed text.
bool ParseDurationMs(const std::string& text, int64_t* ms);
// Parses "64KiB"/"16MiB"/"1GiB"/"10KB"/"512" into bytes; false on a malformed text.
bool ParseBytes(const std::string& text, int64_t* bytes);

}  // namespace sluice
