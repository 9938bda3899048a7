// AppendPool (cloud-broker/produce/append_pool.h): tasks of one call overlap on the pool's
// threads, a saturated pool still completes every call on the caller's thread, and the pool
// never creates a thread after Create().
#include "cloud-broker/produce/append_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "tests/cloud-broker/thread_probe.h"

namespace sluice::broker {
namespace {

// A latch with a deadline: Arrive() blocks until `n` threads arrived (true) or 30 s passed.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  bool Arrive() {
    std::unique_lock<std::mutex> lock(mu_);
    if (++arrived_ >= n_) {
      cv_.notify_all();
      return true;
    }
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return arrived_ >= n_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_;
  int arrived_ = 0;
};

TEST(AppendPoolTest, TasksOfOneCallRunAtTheSameTime) {
  auto pool = AppendPool::Create(3);
  ASSERT_TRUE(pool.ok());
  // Four tasks that each wait for all four: only possible if the caller and three pool threads
  // run them at once (appends to different partitions overlap their fsyncs).
  Rendezvous all(4);
  std::atomic<int> met{0};
  std::mutex mu;
  std::set<std::thread::id> ids;
  (*pool)->RunAll(4, [&](size_t) {
    met += all.Arrive() ? 1 : 0;
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(met.load(), 4);
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_TRUE(ids.count(std::this_thread::get_id()) == 1) << "the caller takes part";
}

TEST(AppendPoolTest, EveryTaskRunsOnceAndCallsMayOverlap) {
  auto pool = AppendPool::Create(2);
  ASSERT_TRUE(pool.ok());
  constexpr int kCallers = 6, kCalls = 50, kTasks = 7;
  std::vector<std::atomic<int>> runs(kCallers * kCalls * kTasks);
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int k = 0; k < kCalls; ++k) {
        (*pool)->RunAll(kTasks, [&](size_t i) { ++runs[(c * kCalls + k) * kTasks + i]; });
      }
    });
  }
  for (std::thread& t : callers) {
    t.join();
  }
  for (auto& r : runs) {
    ASSERT_EQ(r.load(), 1);
  }
}

TEST(AppendPoolTest, ABusyPoolStillCompletesOnTheCaller) {
  auto pool = AppendPool::Create(1);
  ASSERT_TRUE(pool.ok());
  // Park the only pool thread inside a task: the blocking call's own thread waits in its task
  // until a pool thread has claimed the other one.
  std::mutex mu;
  std::condition_variable cv;
  bool pool_busy = false, released = false;
  auto blocker = std::async(std::launch::async, [&] {
    const std::thread::id caller = std::this_thread::get_id();
    (*pool)->RunAll(2, [&](size_t) {
      std::unique_lock<std::mutex> lock(mu);
      if (std::this_thread::get_id() == caller) {
        cv.wait_for(lock, std::chrono::seconds(30), [&] { return pool_busy; });
      } else {
        pool_busy = true;
        cv.notify_all();
        cv.wait_for(lock, std::chrono::seconds(30), [&] { return released; });
      }
    });
  });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return pool_busy; }));
  }
  // A second call must not wait for the busy pool thread: its caller runs all three tasks.
  std::atomic<int> ran{0};
  auto second = std::async(std::launch::async, [&] {
    (*pool)->RunAll(3, [&](size_t) { ++ran; });
  });
  EXPECT_EQ(second.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  EXPECT_EQ(ran.load(), 3);
  {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }
  blocker.get();
}

TEST(AppendPoolTest, ZeroThreadsRunsInlineInOrder) {
  auto pool = AppendPool::Create(0);
  ASSERT_TRUE(pool.ok());
  std::vector<size_t> order;
  (*pool)->RunAll(5, [&](size_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4}));
}

TEST(AppendPoolTest, CreatesNoThreadAfterStartAndReportsAFailedStart) {
  auto pool = AppendPool::Create(4);
  ASSERT_TRUE(pool.ok());
  const int64_t before = testing::ThreadsCreated();
  for (int k = 0; k < 100; ++k) {
    (*pool)->RunAll(16, [](size_t) {});
  }
  EXPECT_EQ(testing::ThreadsCreated(), before);

  testing::FailThreadCreationAfter(2);
  auto refused = AppendPool::Create(4);
  testing::FailThreadCreationAfter(-1);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refused.status().message().find("append thread 3 of 4"), std::string::npos)
      << refused.status().message();
}

TEST(AppendPoolTest, StopThenRunAllRunsOnTheCaller) {
  auto pool = AppendPool::Create(2);
  ASSERT_TRUE(pool.ok());
  (*pool)->Stop();
  std::atomic<int> ran{0};
  (*pool)->RunAll(4, [&](size_t) { ++ran; });
  EXPECT_EQ(ran.load(), 4);
}

}  // namespace
}  // namespace sluice::broker
