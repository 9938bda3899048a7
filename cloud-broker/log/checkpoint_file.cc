#include "cloud-broker/log/checkpoint_file.h"

#include <charconv>
#include <string_view>

#include "cloud-broker/log/fs_util.h"

namespace sluice::broker {
namespace {

constexpr int64_t kVersion = 0;

// Splits `line` on single spaces into integers; false if any field is not a whole integer.
bool ParseFields(std::string_view line, CheckpointEntry* out) {
  out->clear();
  size_t pos = 0;
  while (pos <= line.size()) {
    size_t space = line.find(' ', pos);
    std::string_view field =
        line.substr(pos, space == std::string_view::npos ? line.size() - pos : space - pos);
    int64_t v = 0;
    auto [end, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
    if (field.empty() || ec != std::errc() || end != field.data() + field.size()) {
      return false;
    }
    out->push_back(v);
    if (space == std::string_view::npos) {
      break;
    }
    pos = space + 1;
  }
  return true;
}

}  // namespace

std::string FormatCheckpoint(const std::vector<CheckpointEntry>& entries) {
  std::string out = std::to_string(kVersion) + "\n" + std::to_string(entries.size()) + "\n";
  for (const CheckpointEntry& e : entries) {
    for (size_t i = 0; i < e.size(); ++i) {
      if (i > 0) {
        out += ' ';
      }
      out += std::to_string(e[i]);
    }
    out += "\n";
  }
  return out;
}

Result<std::vector<CheckpointEntry>> ParseCheckpoint(const std::string& text, size_t arity) {
  std::vector<std::string_view> lines;
  std::string_view rest(text);
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    lines.push_back(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  CheckpointEntry fields;
  if (lines.empty() || !ParseFields(lines[0], &fields) || fields.size() != 1 ||
      fields[0] != kVersion) {
    return Status::Corruption("line 1: expected version 0");
  }
  if (lines.size() < 2 || !ParseFields(lines[1], &fields) || fields.size() != 1 ||
      fields[0] < 0 || static_cast<size_t>(fields[0]) != lines.size() - 2) {
    return Status::Corruption("line 2: expected the number of entries (" +
                              std::to_string(lines.size() < 2 ? 0 : lines.size() - 2) +
                              " lines follow)");
  }
  std::vector<CheckpointEntry> entries;
  for (size_t i = 2; i < lines.size(); ++i) {
    if (!ParseFields(lines[i], &fields) || fields.size() != arity) {
      return Status::Corruption("line " + std::to_string(i + 1) + ": expected " +
                                std::to_string(arity) + " integers");
    }
    entries.push_back(fields);
  }
  return entries;
}

Status WriteCheckpointFile(const std::string& path, const std::vector<CheckpointEntry>& entries,
                           FileOps& ops) {
  return WriteFileAtomic(path, FormatCheckpoint(entries), ops);
}

Result<std::vector<CheckpointEntry>> ReadCheckpointFile(const std::string& path, size_t arity,
                                                        FileOps& ops) {
  Result<std::string> text = ReadWholeFile(path, ops);
  if (!text.ok()) {
    return text.status();
  }
  Result<std::vector<CheckpointEntry>> parsed = ParseCheckpoint(*text, arity);
  if (!parsed.ok()) {
    return Status::Corruption(path + ": " + parsed.status().message());
  }
  return parsed;
}

}  // namespace sluice::broker
