// ImageTrails: save points across power loss. A save point's frame reaches
// the MIT before the trails are synced (one sync phase), so after a crash
// in between the receiver must fall back to the save point before.
#include "receiver/image_trails.h"

#include <filesystem>

#include "audit.pb.h"
#include "common/audit_record.h"
#include "common/clock.h"
#include "common/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace rdf::receiver {
namespace {

class ImageTrailsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("image_trails_test");
    auto cfg = config::Parse(R"(
      system: "t"
      nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
      nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b" key_file: "b.key" }
      volumes { name: "$DATA01" }
      volumes { name: "$DATA02" }
    )", dir_ + "/rdf.textproto");
    ASSERT_OK(cfg.status());
    cfg_ = std::make_unique<config::Config>(*std::move(cfg));
    node_ = cfg_->FindNode("backup");
    // The shared end and save point files are real mapped files.
    std::filesystem::create_directories(config::ImageTrailDir(*node_));
  }
  void TearDown() override {
    trails_.reset();
    ::rdf::testing::RemoveTestDir(dir_);
  }
  void Open() {
    trails_.reset();
    auto t = ImageTrails::Open(*cfg_, *node_, &fs_, &clock_);
    ASSERT_OK(t.status());
    trails_ = *std::move(t);
  }
  // A transaction: one DATA record on each volume, then its COMMIT.
  proto::Batch Txn(uint64_t txid) {
    proto::Batch b;
    for (const char* vol : {"$DATA01", "$DATA02", ""}) {
      proto::AuditRecord r;
      r.set_version(kAuditRecordVersion);
      r.set_txid(txid);
      r.set_time_us(1000 + txid);
      r.set_type(*vol ? proto::DATA : proto::COMMIT);
      if (*vol) {
        r.set_volume(vol);
        r.set_file("F");
        r.set_key(absl::StrCat(txid));
        r.set_after("v");
        r.set_op(proto::INSERT);
      }
      proto::WireRecord* w = b.add_records();
      w->set_asn(++asn_);
      w->set_type(r.type());
      w->set_txid(txid);
      w->set_volume(r.volume());
      w->set_payload(EncodeAuditPayload(r));
    }
    b.set_read_through_asn(asn_);
    return b;
  }

  std::string dir_;
  std::unique_ptr<config::Config> cfg_;
  const proto::NodeConfig* node_ = nullptr;
  MemFileSystem mem_;
  FaultInjectingFileSystem fs_{&mem_};
  FakeClock clock_;
  std::unique_ptr<ImageTrails> trails_;
  uint64_t asn_ = 0;
};

TEST_F(ImageTrailsTest, SavePointSurvivesPowerLoss) {
  Open();
  ASSERT_OK(trails_->Append(Txn(1)));
  ASSERT_OK(trails_->SavePoint(2));
  proto::SavePoint sp = trails_->save_point();
  EXPECT_EQ(sp.asn(), 3u);
  EXPECT_EQ(sp.open_size(), 0);
  ASSERT_OK(trails_->Append(Txn(2)));  // not save-pointed
  trails_.reset();
  mem_.DropUnsyncedData();
  Open();
  EXPECT_EQ(trails_->save_point().asn(), 3u);
  EXPECT_EQ(trails_->received_asn(), 3u);
  EXPECT_EQ(trails_->save_point().SerializeAsString(), sp.SerializeAsString());
}

TEST_F(ImageTrailsTest, FrameWhoseTrailsDidNotAllSyncIsSkipped) {
  Open();
  ASSERT_OK(trails_->Append(Txn(1)));
  ASSERT_OK(trails_->SavePoint(2));
  const proto::SavePoint first = trails_->save_point();
  ASSERT_OK(trails_->Append(Txn(2)));
  // The MIT (with the new frame) and DATA01 become durable; DATA02 does not.
  fs_.SetPathFilter("DATA02");
  fs_.SetSyncError(absl::DataLossError("injected: device gone"));
  EXPECT_FALSE(trails_->SavePoint(3).ok());
  EXPECT_EQ(trails_->save_point().asn(), first.asn());  // not published
  trails_.reset();
  mem_.DropUnsyncedData();  // power loss
  fs_.SetSyncError(absl::OkStatus());
  Open();
  EXPECT_EQ(trails_->save_point().SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(trails_->received_asn(), first.asn());
  // Every trail was cut back to the first save point: the next batch
  // appends from there and its save point is whole.
  asn_ = first.asn();
  ASSERT_OK(trails_->Append(Txn(7)));
  ASSERT_OK(trails_->SavePoint(3));
  trails_.reset();
  mem_.DropUnsyncedData();
  Open();
  EXPECT_EQ(trails_->save_point().asn(), first.asn() + 3);
  EXPECT_EQ(trails_->save_point().max_txid(), 7u);
}

TEST_F(ImageTrailsTest, VolumeTrailSyncErrorFailsThatSavePointOnly) {
  Open();
  ASSERT_OK(trails_->Append(Txn(1)));
  fs_.SetPathFilter("DATA01");
  fs_.SetSyncError(absl::DataLossError("injected: device gone"));
  absl::Status failed = trails_->SavePoint(2);
  EXPECT_TRUE(absl::IsDataLoss(failed)) << failed;
  EXPECT_EQ(trails_->save_point().asn(), 0u);
  // The next save point syncs the trails again and is published; the
  // error does not stick to later save points.
  fs_.SetSyncError(absl::OkStatus());
  ASSERT_OK(trails_->SavePoint(2));
  EXPECT_EQ(trails_->save_point().asn(), 3u);
  for (uint64_t txid = 2; txid <= 50; ++txid) {
    ASSERT_OK(trails_->Append(Txn(txid)));
    ASSERT_OK(trails_->SavePoint(txid + 1));
  }
  EXPECT_EQ(trails_->save_point().asn(), 150u);
  trails_.reset();
  mem_.DropUnsyncedData();
  Open();
  EXPECT_EQ(trails_->save_point().asn(), 150u);
}

}  // namespace
}  // namespace rdf::receiver
