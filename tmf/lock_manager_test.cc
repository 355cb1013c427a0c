#include "tmf/lock_manager.h"

#include <thread>

#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::tmf {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

TEST(LockManagerTest, SecondLockBySameTransactionIsFree) {
  LockManager m(absl::Seconds(1));
  ASSERT_OK(m.Lock(1, "k"));
  ASSERT_OK(m.Lock(1, "k"));
  EXPECT_EQ(m.held(), 1u);
}

TEST(LockManagerTest, WaiterGetsLockWhenHolderReleases) {
  LockManager m(absl::Seconds(5));
  ASSERT_OK(m.Lock(1, "k"));
  absl::Status got;
  std::thread t([&] { got = m.Lock(2, "k"); });
  absl::SleepFor(absl::Milliseconds(50));
  m.ReleaseAll(1, {"k"});
  t.join();
  ASSERT_OK(got);
}

TEST(LockManagerTest, TimeoutIsAborted) {
  LockManager m(absl::Milliseconds(50));
  ASSERT_OK(m.Lock(1, "k"));
  EXPECT_THAT(m.Lock(2, "k"),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("lock timeout")));
}

TEST(LockManagerTest, CycleOfThreeIsDeadlock) {
  LockManager m(absl::Seconds(5));
  ASSERT_OK(m.Lock(1, "a"));
  ASSERT_OK(m.Lock(2, "b"));
  ASSERT_OK(m.Lock(3, "c"));
  std::thread t1([&] { (void)m.Lock(1, "b"); });
  std::thread t2([&] { (void)m.Lock(2, "c"); });
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(m.Lock(3, "a"),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("deadlock")));
  m.ReleaseAll(3, {"c"});
  t2.join();
  m.ReleaseAll(2, {"b", "c"});
  t1.join();
}

}  // namespace
}  // namespace rdf::tmf
