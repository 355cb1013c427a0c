// Batcher: trail records in, numbered batches out (docs/protocol.md,
// "Batches"). Pure: no clock, no socket, no file.
#include "extractor/batcher.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audit.pb.h"
#include "common/state/audit_record.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::extractor {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;

class BatcherTest : public ::testing::Test {
 protected:
  // 4096 bytes a batch; $DATA02 is not protected.
  Batcher b_{{4096, [](absl::string_view volume, absl::string_view) { return volume != "$DATA02"; }}};
  uint64_t asn_ = 0;

  trail::Record Record(proto::RecordType type, const std::string& volume, size_t value_bytes) {
    proto::AuditRecord r;
    r.set_version(kAuditRecordVersion);
    r.set_type(type);
    r.set_txid(7);
    r.set_time_us(1000 + asn_ + 1);
    if (type == proto::DATA) {
      r.set_volume(volume);
      r.set_file("F");
      r.set_key("k");
      r.set_after(std::string(value_bytes, 'v'));
      r.set_op(proto::INSERT);
    }
    trail::Record rec;
    rec.asn = ++asn_;
    rec.type = static_cast<uint8_t>(type);
    rec.payload = EncodeAuditPayload(r);
    return rec;
  }
  absl::Status Data(size_t value_bytes = 10, const std::string& volume = "$DATA01") {
    return b_.Add(Record(proto::DATA, volume, value_bytes));
  }
  absl::Status Commit() { return b_.Add(Record(proto::COMMIT, "", 0)); }

  // The open batch, taken: "seq=1 from=0 through=2: 1 DATA $DATA01, 2 COMMIT";
  // a fragment shows as "3 DATA $DATA01 [0+4096/9000]".
  std::string Take() {
    if (b_.empty()) return "empty";
    Batcher::Output out = b_.Take({asn_, 0});
    std::vector<std::string> recs;
    for (const proto::WireRecord& w : out.batch.records()) {
      std::string s = absl::StrCat(w.asn(), " ", proto::RecordType_Name(w.type()));
      if (!w.volume().empty()) absl::StrAppend(&s, " ", w.volume());
      if (w.total_bytes() != 0) {
        absl::StrAppend(&s, " [", w.fragment_offset(), "+", w.payload().size(), "/", w.total_bytes(), "]");
      }
      recs.push_back(s);
    }
    return absl::StrCat("seq=", out.batch.seq(), " from=", out.batch.from_asn(),
                        " through=", out.batch.read_through_asn(), ": ", absl::StrJoin(recs, ", "));
  }
};

TEST_F(BatcherTest, RecordsGoOutNumberedFromTheStart) {
  b_.Begin();
  ASSERT_OK(Data());
  ASSERT_OK(Commit());
  EXPECT_EQ(Take(), "seq=1 from=0 through=2: 1 DATA $DATA01, 2 COMMIT");
  b_.Begin();
  ASSERT_OK(Commit());
  EXPECT_EQ(Take(), "seq=2 from=2 through=3: 3 COMMIT");
}

TEST_F(BatcherTest, RestartNumbersFromTheWelcome) {
  asn_ = 9;
  b_.Restart(9, 5);
  b_.Begin();
  ASSERT_OK(Commit());
  EXPECT_EQ(Take(), "seq=5 from=9 through=10: 10 COMMIT");
}

TEST_F(BatcherTest, RecordThatDoesNotFitOpensTheNextBatch) {
  b_.Begin();
  ASSERT_OK(Data(2500));
  EXPECT_FALSE(b_.full());
  ASSERT_OK(Data(2500));
  EXPECT_TRUE(b_.full());
  EXPECT_EQ(Take(), "seq=1 from=0 through=1: 1 DATA $DATA01");
  b_.Begin();
  EXPECT_EQ(Take(), "seq=2 from=1 through=2: 2 DATA $DATA01");
}

TEST_F(BatcherTest, RecordLargerThanABatchTravelsInFragmentsAlone) {
  b_.Begin();
  ASSERT_OK(Commit());
  ASSERT_OK(Data(9000));
  EXPECT_EQ(Take(), "seq=1 from=0 through=1: 1 COMMIT");
  b_.Begin();
  EXPECT_THAT(Take(), ::testing::MatchesRegex(
                          "seq=2 from=1 through=1: 2 DATA \\$DATA01 \\[0\\+4096/90[0-9][0-9]\\]"));
  b_.Begin();
  EXPECT_THAT(Take(), ::testing::MatchesRegex(
                          "seq=3 from=1 through=1: 2 DATA \\$DATA01 \\[4096\\+4096/90[0-9][0-9]\\]"));
  b_.Begin();
  EXPECT_THAT(Take(), ::testing::MatchesRegex(
                          "seq=4 from=1 through=2: 2 DATA \\$DATA01 \\[8192\\+[0-9]+/90[0-9][0-9]\\]"));
  b_.Begin();
  EXPECT_TRUE(b_.empty());
}

TEST_F(BatcherTest, UnprotectedRecordsAreReadThroughButNotSent) {
  b_.Begin();
  ASSERT_OK(Data(10, "$DATA02"));
  EXPECT_TRUE(b_.empty());
  EXPECT_EQ(b_.read_through(), 1u);
  ASSERT_OK(Commit());
  ASSERT_OK(Data(10, "$DATA02"));
  EXPECT_EQ(Take(), "seq=1 from=0 through=3: 2 COMMIT");
}

TEST_F(BatcherTest, HeartbeatCarriesWhatWasReadThrough) {
  b_.Begin();
  ASSERT_OK(Data(10, "$DATA02"));
  EXPECT_EQ(b_.NoteHeartbeat(), 0u);  // from_asn; the receiver is now at 1
  ASSERT_OK(Commit());
  EXPECT_EQ(Take(), "seq=1 from=1 through=2: 2 COMMIT");
}

TEST_F(BatcherTest, MissingAsnsAreNotFound) {
  b_.Begin();
  ASSERT_OK(Commit());
  asn_ = 5;
  EXPECT_THAT(Commit(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("audit ASNs 2..5 are missing")));
  EXPECT_EQ(b_.read_through(), 1u);
}

TEST_F(BatcherTest, PayloadThatIsNotAnAuditRecordIsDataLoss) {
  b_.Begin();
  trail::Record rec;
  rec.asn = 1;
  rec.type = proto::DATA;
  rec.payload = "\xff\xff\xff";
  EXPECT_THAT(b_.Add(rec), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("audit record 1 at ")));
  EXPECT_TRUE(b_.empty());
}

TEST_F(BatcherTest, RestartDropsTheHeldRecord) {
  b_.Begin();
  ASSERT_OK(Data(2500));
  ASSERT_OK(Data(2500));  // held for the next batch
  b_.Restart(0, 1);
  asn_ = 0;
  b_.Begin();
  EXPECT_TRUE(b_.empty());
  ASSERT_OK(Commit());
  EXPECT_EQ(Take(), "seq=1 from=0 through=1: 1 COMMIT");
}

}  // namespace
}  // namespace rdf::extractor
