// FakeUplink: an Uplink for forwarder tests that decodes and keeps every batch sent and
// answers from a script (default 200), or fails every send while `down`. Thread-safety: SendBatch is; read the vectors only while
// no forwarder thread runs.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "core/record_batch.h"
#include "gateway/forward/uplink.h"

namespace sluice::gateway {

class FakeUplink : public Uplink {
 public:
  Result<UplinkResponse> SendBatch(const std::string& topic, const std::string& batch) override {
    std::lock_guard<std::mutex> lock(mu);
    topics.push_back(topic);
    Result<RecordBatch> b = DecodeBatch(batch);
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    batches.push_back(b.ok() ? b.value() : RecordBatch{});
    if (down) {
      return Status::Unavailable("connection refused");
    }
    if (script.empty()) {
      return UplinkResponse{200, "{}"};
    }
    Result<UplinkResponse> r = script.front();
    script.pop_front();
    return r;
  }
  std::mutex mu;
  std::vector<std::string> topics;
  std::vector<RecordBatch> batches;
  std::deque<Result<UplinkResponse>> script;
  bool down = false;  // every send fails with a transport error (the script is not used)
};

}  // namespace sluice::gateway
