#include "common/state/initial_copy.h"

#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

class InitialCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = rdf::testing::MakeTestDir("initial_copy_test");
    node_.set_name("backup");
    node_.set_data_dir(dir_);
  }
  void TearDown() override { rdf::testing::RemoveTestDir(dir_); }

  static proto::InitialCopy State() {
    proto::InitialCopy s;
    s.set_version(kInitialCopyVersion);
    s.set_number(2);
    s.set_start_asn(40);
    proto::VolumeCopy* v = s.add_volumes();
    v->set_volume("$DATA01");
    v->set_tmf_applied_asn(45);
    v->set_snapshot_asn(50);
    v->add_open_txids(7);
    v->add_open_txids(9);
    return s;
  }

  FileSystem* fs_ = FileSystem::Default();
  std::string dir_;
  proto::NodeConfig node_;
};

TEST_F(InitialCopyTest, NoStateBeforeTheFirstInitialize) {
  ASSERT_OK_AND_ASSIGN(auto s, ReadInitialCopy(fs_, node_));
  EXPECT_FALSE(s.has_value());
  ASSERT_OK_AND_ASSIGN(SnapshotFilter f, LoadSnapshotFilter(fs_, node_, "$DATA01"));
  EXPECT_FALSE(f.Skips(1, 1));
}

TEST_F(InitialCopyTest, StateRoundTripsWithAJsonCopy) {
  ASSERT_OK(WriteInitialCopy(fs_, node_, State()));
  ASSERT_OK_AND_ASSIGN(auto s, ReadInitialCopy(fs_, node_));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->SerializeAsString(), State().SerializeAsString());
  ASSERT_OK_AND_ASSIGN(std::string json, ReadFileToString(fs_, InitialCopyJsonPath(node_)));
  EXPECT_THAT(json, HasSubstr("\"start_asn\":40"));
  EXPECT_THAT(json, HasSubstr("\"open_txids\":[7,9]"));
}

TEST_F(InitialCopyTest, UnknownVersionIsDataLoss) {
  proto::InitialCopy s = State();
  s.set_version(99);
  ASSERT_OK(WriteInitialCopy(fs_, node_, s));
  EXPECT_THAT(ReadInitialCopy(fs_, node_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("version 99")));
}

TEST_F(InitialCopyTest, GarbageStateIsDataLoss) {
  ASSERT_OK(fs_->CreateDirs(InitialCopyDir(node_)));
  ASSERT_OK(WriteFileAtomically(fs_, InitialCopyStatePath(node_), "\xff\xff\xff"));
  EXPECT_THAT(ReadInitialCopy(fs_, node_), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("state")));
}

TEST_F(InitialCopyTest, FilterSkipsOnlyWhatTheCopyHolds) {
  ASSERT_OK(WriteInitialCopy(fs_, node_, State()));
  ASSERT_OK_AND_ASSIGN(SnapshotFilter f, LoadSnapshotFilter(fs_, node_, "$DATA01"));
  EXPECT_EQ(f.snapshot_asn(), 50u);
  EXPECT_TRUE(f.Skips(41, 3));    // committed (or aborted) by the snapshot
  EXPECT_TRUE(f.Skips(50, 3));
  EXPECT_FALSE(f.Skips(41, 7));   // open at the snapshot: applied
  EXPECT_FALSE(f.Skips(51, 3));   // after the snapshot: applied
  ASSERT_OK_AND_ASSIGN(SnapshotFilter other, LoadSnapshotFilter(fs_, node_, "$DATA02"));
  EXPECT_FALSE(other.Skips(41, 3));
}

TEST_F(InitialCopyTest, InProgressMarkerStopsProcessesUntilCleared) {
  EXPECT_OK(CheckNoInitialCopyInProgress(fs_, node_, "receiver"));
  ASSERT_OK(MarkInitialCopyInProgress(fs_, node_, "pid 1\n"));
  EXPECT_THAT(CheckNoInitialCopyInProgress(fs_, node_, "receiver"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("the receiver starts once `rdfcom initialize` has completed")));
  ASSERT_OK(ClearInitialCopyInProgress(fs_, node_));
  EXPECT_OK(CheckNoInitialCopyInProgress(fs_, node_, "receiver"));
  EXPECT_OK(ClearInitialCopyInProgress(fs_, node_));  // nothing to clear
}

}  // namespace
}  // namespace rdf
