#include "cli/record_spans.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

namespace sluice::cli {
namespace {

// SAX handler over the whole answer. RapidJSON's iterative reader calls StartObject/StartArray
// and EndObject/EndArray with the stream AT the bracket, and scalar callbacks just PAST the
// value; a member value starts at the first non-blank byte after the key's ':'.
class SpanHandler : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, SpanHandler> {
 public:
  SpanHandler(const rapidjson::MemoryStream* stream, std::string_view json,
              std::vector<RecordSpan>* out)
      : stream_(stream), json_(json), out_(out) {}

  bool StartObject() { return Open(); }
  bool StartArray() {
    if (depth_ == 1 && top_key_ == "records") {
      in_records_ = true;
    }
    return Open();
  }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool EndArray(rapidjson::SizeType) {
    if (depth_ == 2) {
      in_records_ = false;
    }
    return Close();
  }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    const std::string_view k(s, n);
    if (depth_ == 1) {
      top_key_.assign(k);
    } else if (depth_ == 3 && in_records_) {
      payload_pending_ = k == "payload";
      value_start_ = ValueStartAfter(stream_->Tell());
    }
    return true;
  }
  bool Default() {  // any scalar
    if (depth_ == 2 && in_records_) {
      out_->push_back({});
    } else if (depth_ == 3 && payload_pending_) {
      SetPayload(stream_->Tell());
    }
    return true;
  }
  bool RawNumber(const char*, rapidjson::SizeType, bool) { return Default(); }
  bool String(const char*, rapidjson::SizeType, bool) { return Default(); }

 private:
  size_t ValueStartAfter(size_t pos) const {
    while (pos < json_.size() &&
           (json_[pos] == ' ' || json_[pos] == '\t' || json_[pos] == '\n' || json_[pos] == '\r' ||
            json_[pos] == ':')) {
      ++pos;
    }
    return pos;
  }
  bool Open() {
    if (depth_ == 2 && in_records_) {
      record_start_ = stream_->Tell();
    }
    ++depth_;
    return true;
  }
  bool Close() {
    --depth_;
    const size_t end = stream_->Tell() + 1;
    if (depth_ == 2 && in_records_) {
      out_->push_back({json_.substr(record_start_, end - record_start_), payload_});
      payload_ = {};
    } else if (depth_ == 3 && payload_pending_) {
      SetPayload(end);
    }
    return true;
  }
  void SetPayload(size_t end) {
    payload_ = json_.substr(value_start_, end - value_start_);
    payload_pending_ = false;
  }

  const rapidjson::MemoryStream* stream_;
  std::string_view json_;
  std::vector<RecordSpan>* out_;
  int depth_ = 0;
  std::string top_key_;
  bool in_records_ = false;
  size_t record_start_ = 0;
  bool payload_pending_ = false;
  size_t value_start_ = 0;
  std::string_view payload_;
};

}  // namespace

Result<std::vector<RecordSpan>> FindRecordSpans(std::string_view json) {
  std::vector<RecordSpan> spans;
  rapidjson::MemoryStream ms(json.data(), json.size());
  SpanHandler h(&ms, json, &spans);
  rapidjson::Reader reader;
  // Numbers as strings: they are only located here, never converted.
  rapidjson::ParseResult r =
      reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(ms, h);
  if (r.IsError()) {
    return Status::InvalidArgument(std::string("invalid JSON: ") +
                                   rapidjson::GetParseError_En(r.Code()));
  }
  return spans;
}

std::string CompactJsonText(std::string_view json) {
  std::string out;
  out.reserve(json.size());
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < json.size()) {
        out += json[++i];
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
      out += c;
    } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
      out += c;
    }
  }
  return out;
}

std::string NextCursor(const std::string& answer) {
  rapidjson::Document d;
  d.Parse(answer.data(), answer.size());
  if (d.HasParseError() || !d.IsObject()) return "";
  auto it = d.FindMember("next");
  return it != d.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

}  // namespace sluice::cli
