// QueryPool (cloud-broker/query/query_pool.h): `threads` run, `max_waiting` wait in FIFO order,
// the rest are refused at once; Stop() cancels the waiting ones and lets running ones finish.
#include "cloud-broker/query/query_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "tests/common/test_env.h"

namespace sluice::broker {
namespace {

// Tasks block in Wait() until Open() (or 30 s, so a broken test cannot hang).
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++waiting_;
    cv_.wait_for(lock, std::chrono::seconds(30), [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  int waiting() {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

TEST(QueryPoolTest, RunsThreadsQueuesMaxWaitingRefusesTheRest) {
  auto pool = QueryPool::Create(2, 3);
  ASSERT_TRUE(pool.ok());
  Gate gate;
  std::mutex mu;
  std::vector<int> order;
  int accepted = 0;
  for (int i = 0; i < 8; ++i) {
    accepted += (*pool)->TrySubmit([&, i](bool cancelled) {
      EXPECT_FALSE(cancelled);
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);  // start order
      }
      gate.Wait();
    }) ? 1 : 0;
  }
  EXPECT_EQ(accepted, 5);  // 2 running + 3 waiting
  ASSERT_TRUE(testing::WaitFor([&] { return gate.waiting() == 2; }, 10000));
  EXPECT_EQ((*pool)->running(), 2u);
  EXPECT_EQ((*pool)->waiting(), 3u);
  EXPECT_FALSE((*pool)->TrySubmit([](bool) {}));
  gate.Open();
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(mu);
        return order.size() == 5;
      },
      10000));
  // The first two started first; the three that waited are the next three submitted.
  std::sort(order.begin(), order.begin() + 2);
  std::sort(order.begin() + 2, order.end());
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE((*pool)->TrySubmit([](bool) {}));  // room again
}

TEST(QueryPoolTest, StopCancelsWaitingAndFinishesRunning) {
  auto pool = QueryPool::Create(1, 4);
  ASSERT_TRUE(pool.ok());
  Gate gate;
  std::atomic<int> ran{0}, cancelled{0};
  auto task = [&](bool c) {
    if (c) {
      ++cancelled;
      return;
    }
    gate.Wait();
    ++ran;
  };
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*pool)->TrySubmit(task));
  }
  ASSERT_TRUE(testing::WaitFor([&] { return gate.waiting() == 1; }, 10000));
  std::thread stopper([&] { (*pool)->Stop(); });
  ASSERT_TRUE(testing::WaitFor([&] { return cancelled.load() == 3; }, 10000));
  EXPECT_TRUE((*pool)->stopped());
  EXPECT_FALSE((*pool)->TrySubmit(task));
  gate.Open();
  stopper.join();
  EXPECT_EQ(ran.load(), 1);
  EXPECT_EQ(cancelled.load(), 3);
}

}  // namespace
}  // namespace sluice::broker
