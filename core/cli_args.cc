#include "core/cli_args.h"

#include <sstream>

namespace sluice {

std::string CliArgs::Get(const std::string& flag, const std::string& def) const {
  auto it = flags.find(flag);
  return it == flags.end() ? def : it->second;
}

std::optional<CliArgs> ParseCliArgs(int argc, char** argv, const std::vector<CliFlag>& extra,
                                    std::string* error) {
  CliArgs args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || a == "--") {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a.substr(2);
    std::string value;
    bool has_inline = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_inline = true;
    }
    auto take_value = [&](const std::string& flag) -> bool {
      if (has_inline) return true;
      if (i + 1 >= argc) {
        *error = "--" + flag + " needs a value";
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (name == "help" || name == "h") {
      args.help = true;
    } else if (name == "config") {
      if (!take_value(name)) return std::nullopt;
      args.config_path = value;
    } else if (name == "set") {
      if (!take_value(name)) return std::nullopt;
      if (value.find('=') == std::string::npos || value.front() == '=') {
        *error = "--set expects key.path=value, got '" + value + "'";
        return std::nullopt;
      }
      args.overrides.push_back(value);
    } else {
      const CliFlag* known = nullptr;
      for (const auto& f : extra) {
        if (f.name == name) known = &f;
      }
      if (known == nullptr) {
        *error = "unknown flag --" + name;
        return std::nullopt;
      }
      if (known->takes_value) {
        if (!take_value(name)) return std::nullopt;
        args.flags[name] = value;
      } else {
        if (has_inline) {
          *error = "--" + name + " takes no value";
          return std::nullopt;
        }
        args.flags[name] = "";
      }
    }
  }
  return args;
}

std::string CliUsage(const std::string& usage_line, const std::vector<CliFlag>& extra) {
  std::ostringstream out;
  out << "usage: " << usage_line << "\n\noptions:\n";
  out << "  --config FILE        YAML configuration file\n";
  out << "  --set KEY.PATH=VALUE override a configuration value (repeatable)\n";
  for (const auto& f : extra) {
    std::string left = "--" + f.name + (f.takes_value ? " VALUE" : "");
    out << "  " << left;
    for (size_t i = left.size(); i < 21; ++i) out << ' ';
    out << f.help << '\n';
  }
  out << "  --help               show this help\n";
  return out.str();
}

}  // namespace sluice
