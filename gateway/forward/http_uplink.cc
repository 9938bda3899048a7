#include "gateway/forward/uplink.h"

#include <map>

namespace sluice::gateway {

HttpUplink::HttpUplink(const std::string& base_url, int64_t timeout_ms,
                       const TlsClientOptions& tls)
    : client_(base_url, HttpClientOptions{timeout_ms, tls}),
      probe_client_(base_url, HttpClientOptions{timeout_ms < 1000 ? timeout_ms : 1000, tls}) {}

Status HttpUplink::Probe() {
  Result<HttpResponse> r = probe_client_.Get("/healthz");
  if (!r.ok()) {
    return r.status();
  }
  if (r->status != 200) {
    return Status::Unavailable("healthz answered " + std::to_string(r->status));
  }
  return Status::Ok();
}

namespace {
constexpr const char* kBatchContentType = "application/vnd.kafka.record-batch.v2";
std::string RecordsPath(const std::string& topic) {
  return "/v1/topics/" + UrlEncode(topic) + "/records";
}
}  // namespace

void HttpUplink::SendBatchAsync(const std::string& topic, std::string batch, int64_t after_seq,
                                UplinkDone done) {
  std::map<std::string, std::string> headers;
  if (after_seq >= 0) {
    headers.emplace("Sluice-After-Seq", std::to_string(after_seq));
  }
  client_.SendAsync("POST", RecordsPath(topic), std::move(batch), kBatchContentType, headers,
                    [done = std::move(done)](Result<HttpResponse> r) {
                      if (!r.ok()) {
                        done(r.status());
                        return;
                      }
                      done(UplinkResponse{r->status, std::move(r->body)});
                    });
}

Result<UplinkResponse> HttpUplink::SendBatch(const std::string& topic, const std::string& batch) {
  Result<HttpResponse> r = client_.Send("POST", RecordsPath(topic), batch, kBatchContentType);
  if (!r.ok()) {
    return r.status();
  }
  return UplinkResponse{r->status, std::move(r->body)};
}

}  // namespace sluice::gateway
