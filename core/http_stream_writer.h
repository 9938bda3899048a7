// SessionStreamWriter: the HttpStreamWriter of a streamed answer (HttpResponder::Stream) on one
// Session of HttpServer (core/http_session.h). The producing thread calls Write/Finish; each
// posts one operation to the session's strand (the header with the first, then one chunk per
// Write, then the last chunk) and waits for it, so at most one write is outstanding and a slow
// reader slows the producer. Internal to core: included by core/http_session.h only.
// Thread-safety: one producing thread.
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "core/http.h"

namespace sluice::http_internal {

template <class Session>
class SessionStreamWriter final : public HttpStreamWriter {
 public:
  SessionStreamWriter(std::shared_ptr<Session> session, HttpResponse head)
      : session_(std::move(session)), head_(std::move(head)) {}
  ~SessionStreamWriter() override {
    if (!finished_ || failed_) {
      session_->Close();  // a cut body: the client must not take it for a whole one
    }
  }
  bool Write(std::string chunk) override {
    if (failed_ || finished_) {
      return false;
    }
    if (chunk.empty() && started_) {
      return true;
    }
    return Run(std::move(chunk), false);
  }
  bool Finish() override {
    if (failed_ || finished_) {
      return !failed_ && finished_;
    }
    finished_ = true;
    return Run(std::string(), true);
  }

 private:
  bool Run(std::string chunk, bool last) {
    auto done = std::make_shared<std::promise<bool>>();
    std::future<bool> result = done->get_future();
    std::optional<HttpResponse> head;
    if (!started_) {
      head = std::move(head_);
      started_ = true;
    }
    if (!session_->PostStreamOp(std::move(head), std::move(chunk), last, done)) {
      failed_ = true;
      return false;
    }
    // The strand's write timeout (the body timeout) ends every write; while waiting, a server
    // that stops (its I/O threads gone, the operation never to run) is noticed within 100 ms.
    const auto give_up = std::chrono::steady_clock::now() +
                         std::chrono::milliseconds(session_->core_->options.body_timeout_ms +
                                                   1000);
    while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
      if (session_->ServerStopped() || std::chrono::steady_clock::now() > give_up) {
        failed_ = true;
        return false;
      }
    }
    bool ok = false;
    try {
      ok = result.get();
    } catch (const std::future_error&) {
      ok = false;  // the operation was destroyed unrun
    }
    failed_ = !ok;
    return ok;
  }

  std::shared_ptr<Session> session_;
  HttpResponse head_;
  bool started_ = false;
  bool finished_ = false;
  bool failed_ = false;
};

}  // namespace sluice::http_internal
