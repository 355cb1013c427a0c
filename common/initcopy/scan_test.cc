#include "common/initcopy/scan.h"

#include <map>

#include "common/state/audit_record.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/trail/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::initcopy {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

// A synthetic audit trail written with the project's trail writer, one
// record per call at the next ASN, and the scan over it.
class InitializeScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = rdf::testing::MakeTestDir("initialize_scan_test");
    trail::WriterOptions wo;
    wo.dir = dir_;
    wo.name = "MAT";
    wo.segment_bytes = 64 << 10;
    wo.shared_end = false;
    auto w = trail::TrailWriter::Open(wo);
    ASSERT_OK(w.status());
    writer_ = *std::move(w);
  }
  void TearDown() override { rdf::testing::RemoveTestDir(dir_); }

  uint64_t Append(proto::AuditRecord r, size_t pad = 0) {
    r.set_time_us(1000 + next_);
    if (pad > 0) r.set_after(std::string(pad, 'x'));
    uint64_t asn = next_++;
    EXPECT_OK(writer_->Append(asn, static_cast<uint8_t>(r.type()), EncodeAuditPayload(r),
                              r.time_us()));
    return asn;
  }
  uint64_t Data(uint64_t txid, const std::string& volume, const std::string& file = "F",
                size_t pad = 0, bool compensation = false) {
    proto::AuditRecord r;
    r.set_type(proto::DATA);
    r.set_txid(txid);
    r.set_volume(volume);
    r.set_file(file);
    r.set_key("k");
    r.set_op(proto::INSERT);
    r.set_compensation(compensation);
    return Append(r, pad);
  }
  uint64_t Outcome(uint64_t txid, proto::RecordType type) {
    proto::AuditRecord r;
    r.set_type(type);
    r.set_txid(txid);
    return Append(r);
  }
  uint64_t Commit(uint64_t txid) { return Outcome(txid, proto::COMMIT); }
  uint64_t Abort(uint64_t txid) { return Outcome(txid, proto::ABORT); }
  uint64_t Ddl(const std::string& volume, const std::string& file, proto::DdlOp op) {
    proto::AuditRecord r;
    r.set_type(proto::DDL);
    r.set_txid(900 + next_);
    r.set_volume(volume);
    r.set_file(file);
    r.set_ddl(op);
    return Append(r);
  }
  // Skips ASNs (only a broken trail does this).
  void Gap(uint64_t n) { next_ += n; }

  absl::StatusOr<AuditScan> Scan(std::map<std::string, uint64_t> applied,
                                 uint64_t first_segment = 1) {
    EXPECT_OK(writer_->Sync());
    trail::LocalEnd end;
    end.Publish(writer_->durable_end());
    ScanOptions o;
    o.audit_dir = dir_;
    o.limit = &end;
    o.first_segment = first_segment;
    for (const auto& [v, s] : applied) o.volumes.push_back({v, s});
    o.is_protected = [](std::string_view, std::string_view file) { return file != "U"; };
    return ScanAuditForInitialCopy(o);
  }

  std::string dir_;
  std::unique_ptr<trail::TrailWriter> writer_;
  uint64_t next_ = 1;
};

TEST_F(InitializeScanTest, TransactionOpenAcrossTheSnapshotSetsTheStart) {
  Data(1, "$A");              // 1
  Data(2, "$A");              // 2  tx 2 stays open across the snapshot
  Commit(1);                  // 3  in the copy (S_A = 3)
  Data(2, "$A");              // 4
  Data(3, "$A");              // 5
  Commit(3);                  // 6  first commit above S_A: S'_A = 5
  Commit(2);                  // 7
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 3}}));
  const VolumeScan& a = s.volumes.at("$A");
  EXPECT_EQ(a.snapshot_asn, 5u);
  EXPECT_THAT(a.open_txids, ElementsAre(2, 3));
  EXPECT_EQ(s.start_asn, 2u);
  EXPECT_LT(s.start_asn, a.tmf_applied_asn);
  EXPECT_EQ(s.first_asn, 1u);
  EXPECT_EQ(s.end_asn, 7u);
  EXPECT_EQ(s.records, 7u);
}

TEST_F(InitializeScanTest, NothingOpenStartsAfterTheEarliestSnapshot) {
  Data(1, "$A");
  Commit(1);                  // 2
  Data(2, "$B");
  Commit(2);                  // 4
  Data(3, "$A");
  Commit(3);                  // 6: $A copied before it was applied
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 2}, {"$B", 4}}));
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, 5u);
  EXPECT_THAT(s.volumes.at("$A").open_txids, ElementsAre(3));
  EXPECT_EQ(s.volumes.at("$B").snapshot_asn, 6u);  // no later commit: E
  EXPECT_THAT(s.volumes.at("$B").open_txids, IsEmpty());
  EXPECT_EQ(s.start_asn, 5u);
}

TEST_F(InitializeScanTest, AllCaughtUpStartsAfterTheDurableEnd) {
  Data(1, "$A");
  Commit(1);
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 2}, {"$B", 0}}));
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, 2u);
  EXPECT_EQ(s.volumes.at("$B").snapshot_asn, 2u);
  EXPECT_EQ(s.start_asn, 3u);
}

TEST_F(InitializeScanTest, AbortedBeforeTheSnapshotIsNotOpenAbortedAfterIs) {
  Data(1, "$A");                               // 1
  Data(2, "$A");                               // 2
  Data(1, "$A", "F", 0, /*compensation=*/true);  // 3
  Abort(1);                                    // 4
  Data(3, "$A");                               // 5
  Commit(3);                                   // 6: S'_A = 5
  Data(2, "$A", "F", 0, true);                 // 7
  Abort(2);                                    // 8
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 0}}));
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, 5u);
  EXPECT_THAT(s.volumes.at("$A").open_txids, ElementsAre(2, 3));
  EXPECT_EQ(s.start_asn, 2u);
}

TEST_F(InitializeScanTest, TransactionOverTwoVolumesIsOpenOnlyWhereTheCopyLacksIt) {
  Data(1, "$A");  // 1
  Data(1, "$B");  // 2
  Data(2, "$B");  // 3
  Commit(2);      // 4
  Commit(1);      // 5: in $B's copy (S_B = 5), not in $A's (S_A = 4)
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 4}, {"$B", 5}}));
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, 4u);
  EXPECT_THAT(s.volumes.at("$A").open_txids, ElementsAre(1));
  EXPECT_EQ(s.volumes.at("$B").snapshot_asn, 5u);
  EXPECT_THAT(s.volumes.at("$B").open_txids, IsEmpty());
  EXPECT_EQ(s.start_asn, 1u);
}

TEST_F(InitializeScanTest, LastDdlPerFileUpToTheSnapshot) {
  Ddl("$A", "X", proto::CREATE_FILE);  // 1
  Ddl("$A", "X", proto::PURGE_FILE);   // 2
  Ddl("$A", "Y", proto::CREATE_FILE);  // 3
  Data(1, "$A", "Y");                  // 4
  Commit(1);                           // 5: S'_A = 4
  Ddl("$A", "Z", proto::CREATE_FILE);  // 6: after the snapshot, the updater's
  Ddl("$A", "U", proto::CREATE_FILE);  // 7  (U is not shipped)
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 0}}));
  EXPECT_THAT(s.volumes.at("$A").ddl,
              ElementsAre(Pair("X", proto::PURGE_FILE), Pair("Y", proto::CREATE_FILE)));
}

TEST_F(InitializeScanTest, UnprotectedFilesNeitherOpenNorEndTheWindow) {
  Data(1, "$A", "U");
  Commit(1);            // 2: touches only an unshipped file
  Data(2, "$A", "U");   // 3: open, but nothing of it is shipped
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 0}}));
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, 3u);
  EXPECT_THAT(s.volumes.at("$A").open_txids, IsEmpty());
  EXPECT_EQ(s.start_asn, 4u);
}

TEST_F(InitializeScanTest, IdleVolumeBeforeTheRetainedAuditStartsWithinIt) {
  // tx 9 touched $A early and was aborted; its first segment is gone, its
  // compensation and ABORT remain. $A's applied ASN is older than the audit.
  Data(9, "$A");
  while (writer_->appended_end().pos.segment < 2) Data(8, "$B", "F", 4000);
  Data(9, "$A", "F", 0, true);
  Abort(9);
  Commit(8);
  uint64_t end = Commit(7);
  ASSERT_OK(writer_->Sync());
  ASSERT_OK(writer_->RemoveSegmentsBefore(2));
  ASSERT_OK_AND_ASSIGN(AuditScan s, Scan({{"$A", 0}, {"$B", end}}, 2));
  EXPECT_GT(s.first_asn, 1u);
  EXPECT_EQ(s.volumes.at("$A").snapshot_asn, end);
  EXPECT_THAT(s.volumes.at("$A").open_txids, IsEmpty());
  EXPECT_EQ(s.start_asn, end + 1);
}

TEST_F(InitializeScanTest, SegmentRemovedAfterTheCopiesIsAnError) {
  while (writer_->appended_end().pos.segment < 2) Data(1, "$A", "F", 4000);
  Commit(1);
  ASSERT_OK(writer_->Sync());
  ASSERT_OK(writer_->RemoveSegmentsBefore(2));
  EXPECT_THAT(Scan({{"$A", 0}}, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("was removed")));
}

TEST_F(InitializeScanTest, AsnGapIsAnError) {
  Data(1, "$A");
  Gap(3);
  Commit(1);
  EXPECT_THAT(Scan({{"$A", 0}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("2..4 are missing")));
}

TEST_F(InitializeScanTest, AppliedAsnBeyondTheDurableEndIsAnError) {
  Data(1, "$A");
  Commit(1);
  EXPECT_THAT(Scan({{"$A", 3}}),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("durable only through 2")));
}

}  // namespace
}  // namespace rdf::initcopy
