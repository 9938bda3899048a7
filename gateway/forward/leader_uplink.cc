#include "gateway/forward/leader_uplink.h"

#include <rapidjson/document.h>

#include <condition_variable>
#include <optional>

#include "core/logging.h"
#include "core/partitioner.h"
#include "core/record_batch.h"

namespace sluice::gateway {
namespace {

constexpr const char* kComponent = "uplink";
constexpr const char* kBatchContentType = "application/vnd.kafka.record-batch.v2";

std::string RecordsPath(const std::string& topic) {
  return "/v1/topics/" + UrlEncode(topic) + "/records";
}

UplinkResponse Retryable(std::string why) {
  for (char& c : why) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      c = '\'';  // kept valid JSON without an encoder: it is only read by people
    }
  }
  return UplinkResponse{503, "{\"error\":\"not_stored_whole\",\"reason\":\"" + why + "\"}"};
}

bool Permanent(int status) {
  return status == 400 || status == 413 || status == 422 || status == 451;
}

}  // namespace

LeaderUplink::LeaderUplink(std::vector<std::string> bootstrap_urls, int64_t timeout_ms,
                           const TlsClientOptions& tls)
    : bootstrap_(std::move(bootstrap_urls)), timeout_ms_(timeout_ms), tls_(tls) {}

uint64_t LeaderUplink::refreshes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refreshes_;
}

HttpClient& LeaderUplink::ClientFor(const std::string& url) {
  auto& c = clients_[url];
  if (!c) {
    c = std::make_unique<HttpClient>(url, HttpClientOptions{timeout_ms_, tls_});
  }
  return *c;
}

Status LeaderUplink::Probe() {
  for (const std::string& url : bootstrap_) {
    HttpClient probe(url, HttpClientOptions{std::min<int64_t>(timeout_ms_, 1000), tls_});
    Result<HttpResponse> r = probe.Get("/healthz");
    if (r.ok() && r->status == 200) {
      return Status::Ok();
    }
  }
  return Status::Unavailable("no broker of the region answers /healthz");
}

Status LeaderUplink::Refresh() {
  std::vector<std::string> candidates;
  {
    std::lock_guard<std::mutex> lock(mu_);
    candidates = known_urls_;
  }
  candidates.insert(candidates.end(), bootstrap_.begin(), bootstrap_.end());
  Status last = Status::Unavailable("no broker to ask for metadata");
  for (const std::string& url : candidates) {
    Result<HttpResponse> r = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return &ClientFor(url);
    }()->Get("/v1/metadata");
    if (!r.ok() || r->status != 200) {
      last = r.ok() ? Status::Unavailable(url + "/v1/metadata answered " +
                                          std::to_string(r->status))
                    : r.status();
      continue;
    }
    rapidjson::Document d;
    d.Parse(r->body.c_str(), r->body.size());
    if (d.HasParseError() || !d.IsObject() || !d.HasMember("topics") || !d["topics"].IsArray()) {
      last = Status::Unavailable(url + "/v1/metadata: not the metadata answer");
      continue;
    }
    std::map<std::string, TopicLeaders> topics;
    for (const auto& t : d["topics"].GetArray()) {
      if (!t.IsObject() || !t.HasMember("name") || !t["name"].IsString() ||
          !t.HasMember("partitions") || !t["partitions"].IsArray()) {
        continue;
      }
      TopicLeaders& tl = topics[t["name"].GetString()];
      for (const auto& p : t["partitions"].GetArray()) {
        if (!p.IsObject() || !p.HasMember("partition") || !p["partition"].IsInt() ||
            !p.HasMember("leader_url") || !p["leader_url"].IsString()) {
          continue;
        }
        const int partition = p["partition"].GetInt();
        if (partition < 0 || partition > 100000) {
          continue;
        }
        if (tl.leader_urls.size() <= static_cast<size_t>(partition)) {
          tl.leader_urls.resize(static_cast<size_t>(partition) + 1);
        }
        tl.leader_urls[static_cast<size_t>(partition)] = p["leader_url"].GetString();
      }
    }
    std::vector<std::string> known;
    if (d.HasMember("brokers") && d["brokers"].IsArray()) {
      for (const auto& b : d["brokers"].GetArray()) {
        if (b.IsObject() && b.HasMember("url") && b["url"].IsString()) {
          known.push_back(b["url"].GetString());
        }
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    topics_ = std::move(topics);
    known_urls_ = std::move(known);
    replicated_ = !d.HasMember("replicated") || !d["replicated"].IsBool() ||
                  d["replicated"].GetBool();
    fresh_ = true;
    ++refreshes_;
    return Status::Ok();
  }
  return last;
}

Result<UplinkResponse> LeaderUplink::SendBatch(const std::string& topic,
                                               const std::string& batch) {
  return Send(topic, batch, -1);
}

void LeaderUplink::SendBatchAsync(const std::string& topic, std::string batch, int64_t after_seq,
                                  UplinkDone done) {
  done(Send(topic, batch, after_seq));
}

Result<UplinkResponse> LeaderUplink::Send(const std::string& topic, const std::string& batch,
                                          int64_t after_seq) {
  bool need_refresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    need_refresh = !fresh_ || topics_.count(topic) == 0;
  }
  if (need_refresh) {
    Status st = Refresh();
    if (!st.ok()) {
      return st;  // transport failure: retryable
    }
  }
  std::string single_url;
  std::vector<std::string> leaders;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!replicated_) {
      single_url = known_urls_.empty() ? bootstrap_.front() : known_urls_.front();
    } else {
      auto it = topics_.find(topic);
      if (it != topics_.end()) {
        leaders = it->second.leader_urls;
      }
    }
  }
  if (!single_url.empty()) {
    std::map<std::string, std::string> headers;
    if (after_seq >= 0) {
      headers.emplace("Sluice-After-Seq", std::to_string(after_seq));
    }
    Result<HttpResponse> r = [&] {
      std::lock_guard<std::mutex> lock(mu_);
      return &ClientFor(single_url);
    }()->Send("POST", RecordsPath(topic), batch, kBatchContentType, headers);
    if (!r.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      fresh_ = false;
      return r.status();
    }
    return UplinkResponse{r->status, std::move(r->body)};
  }
  if (leaders.empty()) {
    // Unknown topic: any broker creates it (auto-create) and answers not_leader meanwhile.
    std::lock_guard<std::mutex> lock(mu_);
    leaders.push_back(known_urls_.empty() ? bootstrap_.front() : known_urls_.front());
  }
  Result<RecordBatch> decoded = DecodeBatch(batch);
  if (!decoded.ok()) {
    UplinkResponse r = Retryable(decoded.status().message());
    r.status = 400;  // the forwarder's own encoding: never resend it
    return r;
  }
  // Split exactly as the broker partitions: one part per partition, records in order.
  const int32_t partitions = static_cast<int32_t>(leaders.size());
  std::map<int32_t, RecordBatch> parts;
  for (Record& r : decoded->records) {
    const int32_t p = PartitionForKey(r.key.value_or(""), partitions);
    RecordBatch& part = parts[p];
    if (part.records.empty()) {
      part.producer_id = decoded->producer_id;
      part.producer_epoch = decoded->producer_epoch;
      part.base_sequence = decoded->base_sequence;
      part.attributes = decoded->attributes;
    }
    part.records.push_back(std::move(r));
  }
  struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<Result<UplinkResponse>> answers;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = parts.size();
  pending->answers.assign(parts.size(), Status::Unavailable("not sent"));
  size_t i = 0;
  for (auto& [p, part] : parts) {
    const std::string& url = leaders[static_cast<size_t>(p)];
    if (url.empty()) {
      std::lock_guard<std::mutex> lock(pending->mu);
      pending->answers[i++] = Retryable("partition " + std::to_string(p) + " has no leader");
      --pending->left;
      continue;
    }
    HttpClient* client;
    {
      std::lock_guard<std::mutex> lock(mu_);
      client = &ClientFor(url);
    }
    const size_t slot = i++;
    client->SendAsync("POST", RecordsPath(topic), EncodeBatch(part), kBatchContentType, {},
                      [pending, slot](Result<HttpResponse> r) {
                        std::lock_guard<std::mutex> lock(pending->mu);
                        pending->answers[slot] =
                            r.ok() ? Result<UplinkResponse>(
                                         UplinkResponse{r->status, std::move(r->body)})
                                   : Result<UplinkResponse>(r.status());
                        if (--pending->left == 0) {
                          pending->cv.notify_all();
                        }
                      });
  }
  std::unique_lock<std::mutex> lock(pending->mu);
  pending->cv.wait(lock, [&] { return pending->left == 0; });
  std::optional<UplinkResponse> permanent;
  std::string why;
  for (const Result<UplinkResponse>& a : pending->answers) {
    if (!a.ok()) {
      why = a.status().message();
    } else if (Permanent(a->status)) {
      permanent = *a;
    } else if (a->status != 200) {
      why = "HTTP " + std::to_string(a->status) + ": " + a->body.substr(0, 200);
    }
  }
  lock.unlock();
  if (permanent) {
    return *permanent;
  }
  bool all_ok = true;
  for (const Result<UplinkResponse>& a : pending->answers) {
    all_ok = all_ok && a.ok() && a->status == 200;
  }
  if (all_ok) {
    return UplinkResponse{200, "{\"parts\":" + std::to_string(parts.size()) + "}"};
  }
  {
    // Leaders moved, one is gone, or a partition had none when the metadata was read: read it
    // again before the next attempt (a part without a leader must not stay so in this cache).
    std::lock_guard<std::mutex> l(mu_);
    fresh_ = false;
  }
  LogWarn(kComponent, "batch for " + topic + " not stored whole (" + why + "); resending later");
  return Retryable(why);
}

}  // namespace sluice::gateway
