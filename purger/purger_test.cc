// One real Purger pass on a temporary backup node: image-trail segments
// written by trail::TrailWriter, a save point framed in the MIT and
// published to savepoint.shm as the receiver does, and the volume's
// checkpoint record written as its updater's checkpointer does. No
// process, socket or updater runs; the test checks what the pass deleted.
#include "purger/purger.h"

#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/base/shared_blob.h"
#include "common/config/config.h"
#include "common/lmdb/checkpoint.h"
#include "common/state/save_point.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/testing/test_config.h"
#include "common/trail/reader.h"
#include "common/trail/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::purger {
namespace {

using ::testing::ElementsAre;

constexpr char kVolumeTrail[] = "DATA01";
// One record fills more than half a segment, so that every record starts a
// segment of its own: segment n holds the record with ASN 10n (and the
// first segment starts at ASN 1).
constexpr uint64_t kSegmentBytes = 4096;
constexpr size_t kRecordBytes = 3000;
constexpr uint64_t kSegments = 6;

class PurgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("purger_test");
    auto cfg = ::rdf::testing::TwoNodeConfig(
        dir_.string(), R"(volumes { name: "$DATA01" } purger { retain_count: 2 })");
    ASSERT_OK(cfg.status());
    cfg_ = std::make_unique<config::Config>(*std::move(cfg));
    node_ = cfg_->FindNode("backup");
    trail_dir_ = config::ImageTrailDir(*node_);
    WriteTrail(kMasterImageTrail);
    WriteTrail(kVolumeTrail);
  }
  void TearDown() override {
    purger_.reset();
    ::rdf::testing::RemoveTestDir(dir_.string());
  }

  // Records with ASNs 10, 20, ... one a segment; the MIT's writer stays open
  // for the save point's frame.
  void WriteTrail(const std::string& name) {
    trail::WriterOptions o;
    o.dir = trail_dir_;
    o.name = name;
    o.segment_bytes = kSegmentBytes;
    o.shared_end = false;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<trail::TrailWriter> w, trail::TrailWriter::Open(o));
    for (uint64_t n = 1; n <= kSegments; ++n) {
      ASSERT_OK(w->Append(10 * n, /*type=*/1, std::string(kRecordBytes, 'r'), 0));
    }
    ASSERT_OK(w->Sync());
    ends_[name] = w->appended_end().pos;
    if (name == kMasterImageTrail) mit_ = std::move(w);
  }

  // Frames a save point at ASN 60 in the MIT (with the transactions `open`
  // as {txid, first ASN}) and publishes it, as the receiver does.
  void PublishSavePoint(std::vector<std::pair<uint64_t, uint64_t>> open = {}) {
    proto::SavePoint sp;
    sp.set_version(kSavePointVersion);
    sp.set_asn(10 * kSegments);
    for (const auto& [name, end] : ends_) {
      proto::TrailEnd* te = sp.add_trails();
      te->set_trail(name);
      te->set_segment(end.segment);
      te->set_offset(end.offset);
    }
    for (const auto& [txid, first_asn] : open) AddOpenTransaction(&sp, txid, first_asn);
    trail::Position frame;
    ASSERT_OK(mit_->Append(sp.asn(), kSavePointRecordType, sp.SerializeAsString(), 0, &frame));
    ASSERT_OK(mit_->Sync());
    ASSERT_OK_AND_ASSIGN(shm_, SharedBlob::Create(SavePointShmPath(trail_dir_)));
    ASSERT_OK(shm_->Write(PublishedCopy(sp, frame).SerializeAsString()));
  }

  // The volume's checkpoint record: its updater restarts at the start of
  // `segment` and has applied through `applied_asn`.
  void WriteCheckpoint(uint64_t segment, uint64_t applied_asn) {
    const std::string dir = config::VolumeDir(*node_, kVolumeTrail);
    std::filesystem::create_directories(dir);
    proto::LmdbCheckpoint r;
    r.set_version(1);
    r.set_sequence(1);
    r.set_restart_segment(segment);
    r.set_restart_offset(trail::kHeaderSize);
    r.set_applied_asn(applied_asn);
    std::string slots = lmdb::EncodeCheckpointSlot(r);
    slots.resize(2 * lmdb::kCheckpointSlotBytes, '\0');
    ASSERT_OK(WriteFileAtomically(FileSystem::Default(), lmdb::CheckpointPath(dir), slots));
  }

  uint64_t Pass() {
    if (purger_ == nullptr) {
      PurgerOptions o;
      o.config = cfg_.get();
      o.node = "backup";
      absl::StatusOr<std::unique_ptr<Purger>> p = Purger::Open(o);
      EXPECT_OK(p.status());
      if (!p.ok()) return 0;
      purger_ = *std::move(p);
    }
    absl::StatusOr<uint64_t> n = purger_->Pass(nullptr);
    EXPECT_OK(n.status());
    return n.value_or(0);
  }

  // The segment numbers left of trail `name`.
  std::vector<uint64_t> Left(const std::string& name) {
    std::vector<uint64_t> left;
    absl::StatusOr<std::vector<trail::SegmentInfo>> segs =
        trail::ListSegments(FileSystem::Default(), trail_dir_, name);
    EXPECT_OK(segs.status());
    for (const trail::SegmentInfo& s : segs.value_or(std::vector<trail::SegmentInfo>{})) {
      left.push_back(s.segment);
    }
    return left;
  }

  std::filesystem::path dir_;
  std::unique_ptr<config::Config> cfg_;
  const proto::NodeConfig* node_ = nullptr;
  std::string trail_dir_;
  std::map<std::string, trail::Position> ends_;
  std::unique_ptr<trail::TrailWriter> mit_;
  std::unique_ptr<SharedBlob> shm_;
  std::unique_ptr<Purger> purger_;
};

TEST_F(PurgerTest, WithoutASavePointNothingGoes) {
  WriteCheckpoint(/*segment=*/6, /*applied_asn=*/60);
  EXPECT_EQ(Pass(), 0u);
  EXPECT_THAT(Left(kMasterImageTrail), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(Left(kVolumeTrail), ElementsAre(1, 2, 3, 4, 5, 6));
}

TEST_F(PurgerTest, SegmentsBehindTheUpdaterGoUpToTheRetainCount) {
  WriteCheckpoint(/*segment=*/6, /*applied_asn=*/55);
  PublishSavePoint();
  EXPECT_EQ(Pass(), 8u);
  EXPECT_THAT(Left(kMasterImageTrail), ElementsAre(5, 6));
  EXPECT_THAT(Left(kVolumeTrail), ElementsAre(5, 6));
}

TEST_F(PurgerTest, TheUpdatersRestartPointAndAppliedAsnHoldTheTrails) {
  // Restarts at segment 4 (ASN 40); applied through 35: the MIT keeps
  // segment 3 (ASNs 30-39).
  WriteCheckpoint(/*segment=*/4, /*applied_asn=*/35);
  PublishSavePoint();
  EXPECT_EQ(Pass(), 5u);
  EXPECT_THAT(Left(kMasterImageTrail), ElementsAre(3, 4, 5, 6));
  EXPECT_THAT(Left(kVolumeTrail), ElementsAre(4, 5, 6));
}

TEST_F(PurgerTest, AnOpenTransactionHoldsEveryTrailFromItsFirstAsn) {
  WriteCheckpoint(/*segment=*/6, /*applied_asn=*/55);
  PublishSavePoint({{7, 25}, {9, 50}});  // transaction 7 began in segment 2
  EXPECT_EQ(Pass(), 2u);
  EXPECT_THAT(Left(kMasterImageTrail), ElementsAre(2, 3, 4, 5, 6));
  EXPECT_THAT(Left(kVolumeTrail), ElementsAre(2, 3, 4, 5, 6));
}

TEST_F(PurgerTest, AVolumeWhoseUpdaterNeverRanKeepsEveryTrail) {
  PublishSavePoint();
  EXPECT_EQ(Pass(), 0u);
  EXPECT_THAT(Left(kMasterImageTrail), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_THAT(Left(kVolumeTrail), ElementsAre(1, 2, 3, 4, 5, 6));
  EXPECT_FALSE(std::filesystem::exists(config::VolumeDir(*node_, kVolumeTrail)))
      << "the purger creates nothing in a volume's folder";
}

}  // namespace
}  // namespace rdf::purger
