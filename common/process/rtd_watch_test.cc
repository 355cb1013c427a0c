#include "common/process/rtd_watch.h"

#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf {
namespace {

class RtdWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(fs_.CreateDirs("/events"));
    events::EventLogOptions o;
    o.dir = "/events";
    o.node = "backup";
    o.process = "updater-DATA01";
    o.fs = &fs_;
    o.clock = &clock_;
    o.echo_stderr = false;
    auto log = events::EventLog::Open(o);
    ASSERT_OK(log.status());
    log_ = *std::move(log);
  }
  // Numbers of the events logged so far.
  std::vector<uint32_t> Logged() {
    EXPECT_OK(log_->Flush());
    std::vector<uint32_t> out;
    absl::StatusOr<std::vector<proto::Event>> read = events::ReadEvents(&fs_, "/events", {});
    EXPECT_OK(read.status());
    if (!read.ok()) return out;
    for (const proto::Event& e : *read) out.push_back(e.number());
    return out;
  }
  MemFileSystem fs_;
  FakeClock clock_;
  std::unique_ptr<events::EventLog> log_;
};

TEST_F(RtdWatchTest, WarnsOncePerCrossingAndSaysWhenBackUnder) {
  RtdWatch w(60000, log_.get());
  w.Observe(10);
  w.Observe(70000);
  w.Observe(90000);
  EXPECT_TRUE(w.over());
  w.Observe(100);
  EXPECT_THAT(Logged(), ::testing::ElementsAre(861, 862));
}

TEST_F(RtdWatchTest, UnknownRtdIsIgnored) {
  RtdWatch w(10, log_.get());
  w.Observe(-1);
  EXPECT_FALSE(w.over());
  EXPECT_THAT(Logged(), ::testing::IsEmpty());
}

}  // namespace
}  // namespace rdf
