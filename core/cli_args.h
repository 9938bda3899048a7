// Command-line parsing shared by every Sluice binary: `--config FILE`, repeated
// `--set key.path=value`, `--help`, and named flags of the binary's own.
// Thread-safety: not thread-safe; used at start-up.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct CliFlag {
  std::string name;      // without the leading "--"
  bool takes_value;      // --name VALUE or --name=VALUE
  std::string help;
};

struct CliArgs {
  std::string config_path;
  std::vector<std::string> overrides;         // from --set
  std::map<std::string, std::string> flags;   // binary-specific flags given ("" if no value)
  std::vector<std::string> positional;
  bool help = false;
  bool Has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::string Get(const std::string& flag, const std::string& def = "") const;
};

// Parses argv. On an unknown flag or a missing value, returns nullopt and sets *error.
std::optional<CliArgs> ParseCliArgs(int argc, char** argv, const std::vector<CliFlag>& extra,
                                    std::string* error);

// The usage text: "usage: " + `usage_line` (which starts with the binary's name, not "usage:"),
// then --config/--set/--help and every extra flag.
std::string CliUsage(const std::string& usage_line, const std::vector<CliFlag>& extra);

}  // namespace sluice
