#include "common/base/test_point.h"

#include <signal.h>
#include <stdlib.h>

#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf {
namespace {

using test_point_internal::Arm;
using test_point_internal::ClearCallbacks;
using test_point_internal::SetCallback;

TEST(TestPointTest, AnUnarmedPointDoesNothing) {
  ASSERT_EQ(Arm(""), "");
  TestPoint("updater.after_commit");
  EXPECT_FALSE(TestPointArmed("updater.after_commit"));
  EXPECT_EQ(TestPointValue("boot_id"), std::nullopt);
}

TEST(TestPointTest, AnArmedPointKillsTheProcessTheNthTimeItIsReached) {
  EXPECT_EXIT(
      {
        if (Arm("a.point@3") != "") exit(2);
        TestPoint("a.point");
        TestPoint("another.point");
        TestPoint("a.point");
        TestPoint("a.point");  // the third time
        exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_EXIT(
      {
        if (Arm("a.point@3") != "") exit(2);
        TestPoint("a.point");
        TestPoint("a.point");
        exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(TestPointTest, RdfTestPointsArmsPointsForTheWholeProcess) {
  ::testing::FLAGS_gtest_death_test_style = "threadsafe";  // a fresh process
  EXPECT_EXIT(
      {
        setenv("RDF_TEST_POINTS", "x.y,updater.after_commit@1", 1);
        TestPoint("updater.after_commit");
        exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_EXIT(
      {
        setenv("RDF_TEST_POINTS", "updater.after_commit@0", 1);
        TestPoint("updater.after_commit");
        exit(0);
      },
      ::testing::KilledBySignal(SIGABRT), "RDF_TEST_POINTS: bad count");
}

TEST(TestPointTest, ASleepingPointSleepsInsteadAndValuesAreRead) {
  ASSERT_EQ(Arm("slow.point@2:sleep=50,boot_id=after-restart"), "");
  EXPECT_TRUE(TestPointArmed("slow.point"));
  EXPECT_EQ(TestPointValue("boot_id"), "after-restart");
  const auto start = std::chrono::steady_clock::now();
  TestPoint("slow.point");
  TestPoint("slow.point");
  TestPoint("slow.point");
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(50));
}

TEST(TestPointTest, ACallbackRunsEachTimeItsPointIsReachedUntilCleared) {
  ASSERT_EQ(Arm(""), "");
  int reached = 0;
  SetCallback("a.point", [&reached] { ++reached; });
  EXPECT_TRUE(TestPointArmed("a.point"));
  TestPoint("a.point");
  TestPoint("another.point");
  TestPoint("a.point");
  EXPECT_EQ(reached, 2);
  ClearCallbacks();
  TestPoint("a.point");
  EXPECT_EQ(reached, 2);
  EXPECT_FALSE(TestPointArmed("a.point"));
}

TEST(TestPointTest, ACallbackMayThrowOutOfThePointOrReplaceItself) {
  struct Killed {};
  SetCallback("a.point", [] {
    SetCallback("a.point", [] {});  // the next time: nothing
    throw Killed{};
  });
  EXPECT_THROW(TestPoint("a.point"), Killed);
  EXPECT_NO_THROW(TestPoint("a.point"));
  ClearCallbacks();
}

TEST(TestPointTest, AMalformedSpecIsRefused) {
  EXPECT_THAT(Arm("p@0"), ::testing::HasSubstr("bad count"));
  EXPECT_THAT(Arm("p@x"), ::testing::HasSubstr("bad count"));
  EXPECT_THAT(Arm("p@1:explode"), ::testing::HasSubstr("bad action"));
  EXPECT_THAT(Arm("@2"), ::testing::HasSubstr("no name"));
  EXPECT_EQ(Arm("p, q@2 ,r=v"), "");
}

}  // namespace
}  // namespace rdf
