#include "cli/render.h"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "cli/record_spans.h"
#include "core/json_check.h"
#include "core/time_util.h"

namespace sluice::cli {
namespace {

using rapidjson::Value;

// Deeper answers are refused before the DOM (whose Accept recurses) sees them: the broker
// nests payloads at most kMaxJsonDepthLimit deep inside a few levels of its own.
constexpr int kMaxAnswerDepth = kMaxJsonDepthLimit + 8;

Result<rapidjson::Document> ParseObject(const std::string& json) {
  Status checked = CheckJson(json, kMaxAnswerDepth);
  if (!checked.ok()) {
    return Status::InvalidArgument("the broker's answer is not JSON nested at most " +
                                   std::to_string(kMaxAnswerDepth) + " deep: " +
                                   checked.message());
  }
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::InvalidArgument("the broker's answer is not a JSON object: " +
                                   Truncate(json, 120));
  }
  return doc;
}

std::string Compact(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// A member as display text: strings as they are, numbers in decimal, other JSON compacted.
std::string Text(const Value& obj, const char* key, const std::string& def = "-") {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || it->value.IsNull()) return def;
  const Value& v = it->value;
  if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
  if (v.IsInt64()) return std::to_string(v.GetInt64());
  if (v.IsUint64()) return std::to_string(v.GetUint64());
  return Compact(v);
}

bool Int64(const Value& obj, const char* key, int64_t* out) {
  if (!obj.IsObject()) return false;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return false;
  *out = it->value.GetInt64();
  return true;
}

std::string TsText(const Value& rec, const char* key) {
  int64_t ms = 0;
  if (Int64(rec, key, &ms)) return FormatRfc3339Ms(ms);
  return Text(rec, key);
}

// `raw`: the payload's text in the answer (record_spans.h), shown as sent, not re-serialised.
std::string PayloadText(const Value& rec, std::string_view raw) {
  auto it = rec.FindMember("payload");
  if (it == rec.MemberEnd()) return "-";
  std::string text = it->value.IsString()
                         ? std::string(it->value.GetString(), it->value.GetStringLength())
                         : CompactJsonText(raw);
  if (it->value.IsString() && Text(rec, "payload_encoding", "") == "base64") {
    text = "base64:" + text;
  }
  return Truncate(text, kPayloadPreviewChars);
}

}  // namespace

std::string Truncate(const std::string& s, size_t max_chars) {
  if (s.size() <= max_chars) return s;
  if (max_chars <= 3) return s.substr(0, max_chars);
  return s.substr(0, max_chars - 3) + "...";
}

std::string FormatTable(const std::vector<std::vector<std::string>>& rows,
                        const std::vector<bool>& right_align) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    if (width.size() < row.size()) width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      const bool right = c < right_align.size() && right_align[c];
      const std::string pad(width[c] - row[c].size(), ' ');
      if (c > 0) line += "  ";
      line += right ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : "");
    }
    out += line + "\n";
  }
  return out;
}

Status RenderQuery(const std::string& json, std::ostream& out, bool header) {
  auto doc = ParseObject(json);
  if (!doc.ok()) return doc.status();
  const Value& d = *doc;
  int64_t matched = 0;
  const bool counted = Int64(d, "matched", &matched);
  if (!counted && d.HasMember("matched")) {
    return Status::InvalidArgument("query answer has a 'matched' that is not an integer");
  }
  auto recs = d.FindMember("records");
  if (recs == d.MemberEnd() || !recs->value.IsArray()) {
    return Status::InvalidArgument("query answer has no 'records' array");
  }
  const size_t shown = recs->value.Size();
  auto next = d.FindMember("next");
  const bool more = next != d.MemberEnd() && next->value.IsString();
  if (header) {
    out << "region:  " << Text(d, "region") << "\n";
    if (counted) {
      out << "matched: " << matched << " record(s)";
      if (more || static_cast<int64_t>(shown) < matched) {
        out << " (showing " << shown << ")";
      }
    } else {
      out << "records: " << shown << (more ? " (more follow)" : "");
    }
    out << "\n";
    if (more) {
      out << "next:    " << next->value.GetString() << "\n";
    }
    out << "\n";
    if (counted) {
      std::vector<std::vector<std::string>> counts = {{"COUNTRY", "RECORDS"}};
      auto cbc = d.FindMember("counts_by_country");
      if (cbc != d.MemberEnd() && cbc->value.IsObject()) {
        for (auto it = cbc->value.MemberBegin(); it != cbc->value.MemberEnd(); ++it) {
          std::string n = it->value.IsInt64() ? std::to_string(it->value.GetInt64())
                                              : Compact(it->value);
          counts.push_back({it->name.GetString(), n});
        }
      }
      std::sort(counts.begin() + 1, counts.end());
      out << FormatTable(counts, {false, true});
    }
  }

  if (shown == 0) return Status::Ok();
  auto spans = FindRecordSpans(json);
  if (!spans.ok() || spans->size() != shown) {
    return Status::InvalidArgument("query answer: cannot locate its records");
  }
  std::vector<std::vector<std::string>> rows = {
      {"DEVICE", "SENSOR", "COUNTRY", "TS", "GATEWAY", "SEQ", "TOPIC/PART/OFFSET", "PAYLOAD"}};
  for (size_t i = 0; i < shown; ++i) {
    const Value& r = recs->value[static_cast<rapidjson::SizeType>(i)];
    if (!r.IsObject()) continue;
    rows.push_back({Text(r, "device_id"), Text(r, "sensor"), Text(r, "country"), TsText(r, "ts"),
                    Text(r, "gateway_id"), Text(r, "gateway_seq"),
                    Text(r, "topic") + "/" + Text(r, "partition") + "/" + Text(r, "offset"),
                    PayloadText(r, (*spans)[i].payload)});
  }
  out << "\n" << FormatTable(rows, {false, false, false, false, false, true, false, false});
  return Status::Ok();
}

Status RenderAggregate(const std::string& json, std::ostream& out) {
  auto doc = ParseObject(json);
  if (!doc.ok()) return doc.status();
  const Value& d = *doc;
  auto rows = d.FindMember("rows");
  if (rows == d.MemberEnd() || !rows->value.IsArray()) {
    return Status::InvalidArgument("aggregate answer has no 'rows' array");
  }
  const bool bucketed = d.HasMember("bucket_ms");
  const std::string group_by = Text(d, "group_by");
  const bool field = d.HasMember("field");
  std::vector<std::string> head;
  if (bucketed) head.push_back("BUCKET");
  if (!group_by.empty()) {
    std::string g = group_by;
    std::transform(g.begin(), g.end(), g.begin(), [](unsigned char c) { return std::toupper(c); });
    head.push_back(g);
  }
  head.push_back("COUNT");
  if (field) {
    for (const char* h : {"VALUES", "MIN", "MAX", "AVG", "SUM"}) head.push_back(h);
  }
  std::vector<std::vector<std::string>> table = {head};
  std::vector<bool> right(head.size());
  for (const Value& r : rows->value.GetArray()) {
    if (!r.IsObject()) continue;
    std::vector<std::string> row;
    if (bucketed) row.push_back(TsText(r, "bucket"));
    if (!group_by.empty()) row.push_back(Text(r, group_by.c_str()));
    row.push_back(Text(r, "count"));
    if (field) {
      for (const char* k : {"values", "min", "max", "avg", "sum"}) row.push_back(Text(r, k));
    }
    table.push_back(std::move(row));
  }
  // The bucket and group columns are text; the counts and statistics after them numbers.
  const size_t text_columns = (bucketed ? 1 : 0) + (group_by.empty() ? 0 : 1);
  for (size_t c = 0; c < head.size(); ++c) right[c] = c >= text_columns;
  out << "region: " << Text(d, "region") << "\n\n" << FormatTable(table, right);
  return Status::Ok();
}

Status RenderTopics(const std::string& json, std::ostream& out) {
  auto doc = ParseObject(json);
  if (!doc.ok()) return doc.status();
  const Value& d = *doc;
  auto topics = d.FindMember("topics");
  if (topics == d.MemberEnd() || !topics->value.IsArray()) {
    return Status::InvalidArgument("topics answer has no 'topics' array");
  }
  out << "region: " << Text(d, "region") << "\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "PARTITION", "START", "END", "RECORDS", "BYTES"}};
  for (const Value& t : topics->value.GetArray()) {
    if (!t.IsObject()) continue;  // MemberEnd of a non-object is undefined
    auto parts = t.FindMember("partitions");
    if (parts == t.MemberEnd() || !parts->value.IsArray()) continue;
    for (const Value& p : parts->value.GetArray()) {
      int64_t start = 0;
      int64_t end = 0;
      std::string n = "-";
      if (Int64(p, "start_offset", &start) && Int64(p, "end_offset", &end)) {
        n = std::to_string(end - start);
      }
      rows.push_back({Text(t, "name"), Text(p, "partition"), Text(p, "start_offset"),
                      Text(p, "end_offset"), n, Text(p, "size_bytes")});
    }
  }
  out << FormatTable(rows, {false, true, true, true, true, true});
  return Status::Ok();
}

Status RenderAudit(const std::string& json, std::ostream& out) {
  auto doc = ParseObject(json);
  if (!doc.ok()) return doc.status();
  const Value& d = *doc;
  auto entries = d.FindMember("entries");
  if (entries == d.MemberEnd() || !entries->value.IsArray()) {
    return Status::InvalidArgument("audit answer has no 'entries' array");
  }
  out << "region:  " << Text(d, "region") << "\n";
  out << "refusals: " << entries->value.Size();
  auto more = d.FindMember("more");
  if (more != d.MemberEnd() && more->value.IsBool() && more->value.GetBool()) {
    auto next = d.FindMember("next");
    if (next != d.MemberEnd() && next->value.IsString()) {
      out << " (more follow: --cursor " << next->value.GetString() << ")";
    } else {
      out << " (more follow: narrow --from/--to or raise --limit)";
    }
  }
  out << "\n\n";
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "PRINCIPAL", "GATEWAY", "COUNTRY", "TOPIC", "RECORDS", "REQUEST", "REASON"}};
  for (const Value& e : entries->value.GetArray()) {
    if (!e.IsObject()) continue;
    int64_t ms = 0;
    const std::string time = Int64(e, "time_ms", &ms) ? FormatRfc3339Ms(ms) : "-";
    rows.push_back({time, Text(e, "principal"), Text(e, "gateway_id"), Text(e, "country"),
                    Text(e, "topic"), Text(e, "records"), Text(e, "request_id"),
                    Text(e, "reason")});
  }
  out << FormatTable(rows, {false, false, false, false, false, true, false, false});
  return Status::Ok();
}

Result<FetchPage> ParseFetchPage(const std::string& json) {
  auto doc = ParseObject(json);
  if (!doc.ok()) return doc.status();
  const Value& d = *doc;
  FetchPage page;
  auto recs = d.FindMember("records");
  if (recs == d.MemberEnd() || !recs->value.IsArray()) {
    return Status::InvalidArgument("fetch answer has no 'records' array");
  }
  if (!Int64(d, "next_offset", &page.next_offset) || !Int64(d, "end_offset", &page.end_offset)) {
    return Status::InvalidArgument("fetch answer lacks integer 'next_offset'/'end_offset'");
  }
  auto spans = FindRecordSpans(json);
  if (!spans.ok() || spans->size() != recs->value.Size()) {
    return Status::InvalidArgument("fetch answer: cannot locate its records");
  }
  // Each record's text as sent (numbers exact), on one line.
  for (const RecordSpan& r : *spans) page.records.push_back(CompactJsonText(r.record));
  return page;
}

}  // namespace sluice::cli
