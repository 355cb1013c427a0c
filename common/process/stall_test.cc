#include "common/process/stall.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::status {
namespace {

using ::testing::HasSubstr;

proto::ProcessStatus Updater(uint64_t applied, uint64_t save_point, std::string state = "RUNNING",
                             std::string error = "") {
  proto::ProcessStatus st;
  st.set_process("updater-DATA01");
  st.set_applied_asn(applied);
  st.set_save_point_asn(save_point);
  st.set_state(state);
  st.set_last_error(error);
  return st;
}

class StallTest : public ::testing::Test {
 public:
  StallDetector::Verdict At(int seconds, const proto::ProcessStatus& st) {
    return d_.Observe(st, absl::UnixEpoch() + absl::Seconds(seconds));
  }
  StallDetector d_{absl::Seconds(10)};
};

TEST_F(StallTest, APositionThatAdvancesIsNeverStalled) {
  for (int t = 0; t < 60; ++t) EXPECT_FALSE(At(t, Updater(t, t + 100)).stalled);
}

TEST_F(StallTest, NoWorkWaitingIsNeverStalled) {
  for (int t = 0; t < 60; ++t) EXPECT_FALSE(At(t, Updater(50, 50)).stalled);
}

TEST_F(StallTest, AStandingPositionWithABacklogStallsAfterTheLimitOnce) {
  EXPECT_FALSE(At(0, Updater(50, 90)).stalled);
  EXPECT_FALSE(At(10, Updater(50, 90)).stalled);
  auto v = At(11, Updater(50, 90, "RUNNING", "map grown; retrying"));
  EXPECT_TRUE(v.stalled);
  EXPECT_TRUE(v.began);
  EXPECT_EQ(v.for_ms, 11000);
  EXPECT_THAT(v.reason, HasSubstr("applied through ASN 50, save point at ASN 90"));
  EXPECT_THAT(v.reason, HasSubstr("map grown; retrying"));
  EXPECT_FALSE(At(12, Updater(50, 95)).began);  // one event per episode
  auto resumed = At(13, Updater(51, 95));
  EXPECT_FALSE(resumed.stalled);
  EXPECT_TRUE(resumed.ended);
}

TEST_F(StallTest, AnErrorStateCountsAsWaiting) {
  proto::ProcessStatus purger;
  purger.set_process("purger");
  purger.set_state("RETRYING");
  purger.set_last_error("cannot read DATA01");
  At(0, purger);
  auto v = At(11, purger);
  EXPECT_TRUE(v.stalled);
  EXPECT_THAT(v.reason, HasSubstr("cannot read DATA01"));
  purger.set_state("RUNNING");
  EXPECT_TRUE(At(12, purger).ended);
}

TEST_F(StallTest, ARefusedExtractorStallsThoughItsStateSaysRunning) {
  // Finding 3 as the operator met it: RUNNING, RTD 0, and nothing acked.
  proto::ProcessStatus e;
  e.set_process("extractor");
  e.set_state("RUNNING");
  e.set_acked_asn(4);
  e.set_audit_end_asn(10);
  e.set_last_error("oversized message");
  At(0, e);
  auto v = At(15, e);
  EXPECT_TRUE(v.stalled);
  EXPECT_THAT(v.reason, HasSubstr("confirmed through ASN 4"));
  EXPECT_THAT(v.reason, HasSubstr("oversized message"));
}

TEST_F(StallTest, TmfWithCommitsWaitingForTheVolumesStalls) {
  proto::ProcessStatus t;
  t.set_process("tmf");
  t.set_state("APPLY_RETRYING");
  t.set_applied_asn(7);
  t.set_backlog_records(3);
  At(0, t);
  EXPECT_TRUE(At(11, t).stalled);
}

}  // namespace
}  // namespace rdf::status
