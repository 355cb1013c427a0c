// rdfcom verify against two nodes served in-process: the fake ControlCall
// answers VERIFY_* with the monitor's own functions over LMDB volumes in a
// temporary folder.
#include "rdfcom/verify.h"

#include <functional>
#include <map>
#include <sstream>
#include <string>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/shared_blob.h"
#include "common/config/config.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/state/save_point.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "monitor/verify_scan.h"

namespace rdf::rdfcom {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kConfig[] = R"cfg(
system: "test"
nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "primary"
        key_file: "keys/primary.key" }
nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17420
        data_dir: "backup" key_file: "keys/backup.key" }
volumes { name: "$DATA01" }
volumes { name: "$DATA02" }
)cfg";

// A fake clock that runs a hook when slept on (the pipeline catching up
// during verify's recheck delay).
class HookClock : public FakeClock {
 public:
  void SleepMicros(int64_t micros) override {
    FakeClock::SleepMicros(micros);
    if (on_sleep) on_sleep();
  }
  std::function<void()> on_sleep;
};

class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("rdfcom_verify_test");
    absl::StatusOr<config::Config> c = config::Parse(kConfig, dir_ + "/rdf.textproto");
    ASSERT_OK(c);
    config_ = *std::move(c);
    PublishSavePoint(0);  // a drained, idle pair at ASN 0
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  // The backup's receiver publishes a save point at `asn` with `open`
  // transactions without an outcome; `trail_records` > 0 gives DATA01's
  // trail that many records ending at (1, 4096) (so $DATA01's updater is
  // caught up only with its restart point there: CatchUp).
  void PublishSavePoint(uint64_t asn, int open = 0, uint64_t trail_records = 0) {
    proto::SavePoint sp;
    sp.set_version(kSavePointVersion);
    sp.set_asn(asn);
    for (int i = 0; i < open; ++i) sp.add_open()->set_txid(i + 1);
    proto::TrailEnd* t = sp.add_trails();
    t->set_trail("DATA01");
    t->set_segment(1);
    t->set_offset(4096);
    t->set_records(trail_records);
    const std::string dir = config::ImageTrailDir(*config_.FindNode("backup"));
    std::filesystem::create_directories(dir);
    ASSERT_OK_AND_ASSIGN(auto blob, SharedBlob::Create(SavePointShmPath(dir)));
    ASSERT_OK(blob->Write(sp.SerializeAsString()));
  }
  // $DATA01's updater on the backup has applied its trail up to the end.
  void CatchUp(uint64_t applied_asn) {
    PutMeta("backup", "$DATA01", kMetaAppliedAsn, applied_asn);
    PutMeta("backup", "$DATA01", kMetaRestartSegment, 1);
    PutMeta("backup", "$DATA01", kMetaRestartOffset, 4096);
  }

  // Writes `records` into `file` of `volume` on `node` and closes the
  // environment again (the fake monitor opens it in this same process).
  void Put(const char* node, const std::string& volume, const std::string& file,
           const std::map<std::string, std::string>& records) {
    ASSERT_OK_AND_ASSIGN(
        auto env,
        lmdb::Env::Open(config::VolumeDir(*config_.FindNode(node), volume), 16 << 20, 64));
    ASSERT_OK_AND_ASSIGN(MDB_dbi dbi, env->OpenDb(file, true));
    ASSERT_OK_AND_ASSIGN(auto txn, lmdb::WriteTxn::Begin(env.get()));
    for (const auto& [k, v] : records) ASSERT_OK(txn->Put(dbi, k, v));
    ASSERT_OK(txn->Commit());
  }
  // The same records on both nodes.
  void PutBoth(const std::string& volume, const std::string& file,
               const std::map<std::string, std::string>& records) {
    Put("primary", volume, file, records);
    Put("backup", volume, file, records);
  }
  void PutMeta(const char* node, const std::string& volume, const char* key, uint64_t value) {
    ASSERT_OK_AND_ASSIGN(
        auto env,
        lmdb::Env::Open(config::VolumeDir(*config_.FindNode(node), volume), 16 << 20, 64));
    ASSERT_OK_AND_ASSIGN(MDB_dbi dbi, env->OpenDb(lmdb::kMetaDb, true));
    ASSERT_OK_AND_ASSIGN(auto txn, lmdb::WriteTxn::Begin(env.get()));
    ASSERT_OK(lmdb::PutU64(txn.get(), dbi, key, value));
    ASSERT_OK(txn->Commit());
  }
  static std::map<std::string, std::string> Keys(int n, const std::string& prefix = "k") {
    std::map<std::string, std::string> m;
    for (int i = 0; i < n; ++i) m[absl::StrCat(prefix, i)] = absl::StrCat("value ", i);
    return m;
  }

  // Runs verify through the fake monitors; the output lands in out_.
  absl::StatusOr<VerifySummary> Verify(bool json = false) {
    VerifyOptions o;
    o.config = &config_;
    o.json = json;
    o.page_limit = page_limit_;
    o.clock = &clock_;
    o.call = [this](const proto::NodeConfig& n,
                    const proto::ControlRequest& req) -> absl::StatusOr<proto::ControlReply> {
      EXPECT_EQ(req.version(), proto::CONTROL_VERSION_1);
      ++calls_[absl::StrCat(n.name(), " ", proto::ControlRequest::Command_Name(req.command()))];
      if (n.name() == unreachable_) return absl::UnavailableError("no answer from the monitor");
      if (n.name() == refusing_) {
        proto::ControlReply r;
        r.set_error("unsupported command");
        return r;
      }
      absl::StatusOr<proto::ControlReply> r =
          req.command() == proto::ControlRequest::VERIFY_FILES
              ? monitor::ServeVerifyFiles(config_, n)
              : monitor::ServeVerifyScan(config_, n, req);
      // The monitor adds its node's status; the primary's has its audit end.
      if (r.ok() && n.role() == proto::PRIMARY) r->mutable_status()->set_audit_end_asn(audit_end_);
      if (r.ok() && strip_hashes_) {
        for (proto::VerifyEntry& e : *r->mutable_entries()) e.clear_value_hash();
      }
      if (after_call) after_call(n.name(), req);
      return r;
    };
    std::ostringstream out;
    absl::StatusOr<VerifySummary> s = RunVerify(o, out);
    out_ = out.str();
    return s;
  }

  int64_t Slept() { return clock_.NowMicros() - FakeClock().NowMicros(); }

  std::string dir_;
  config::Config config_;
  HookClock clock_;
  uint32_t page_limit_ = 0;
  std::string unreachable_, refusing_;
  std::map<std::string, int> calls_;  // "node COMMAND" -> count
  uint64_t audit_end_ = 0;            // the primary's, in its replies
  bool strip_hashes_ = false;         // answer as a monitor without value_hash
  // Runs after each answered request (the pipeline moving meanwhile).
  std::function<void(const std::string& node, const proto::ControlRequest&)> after_call;
  std::string out_;
};

TEST_F(VerifyTest, EqualNodesAreEqualWithoutRecheck) {
  PutBoth("$DATA01", "LOAD", Keys(3));
  PutBoth("$DATA02", "ORDERS", Keys(2));
  PutBoth("$DATA02", "EMPTY", {});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_TRUE(s.consistent_cut);
  EXPECT_EQ(s.files, 3u);
  EXPECT_EQ(s.primary_records, 5u);
  EXPECT_THAT(out_, AllOf(HasSubstr("verify: both nodes compared at ASN 0\n"),
                          HasSubstr("$DATA01 LOAD: primary 3 records, backup 3 records, equal\n"),
                          HasSubstr("$DATA02 EMPTY: primary 0 records, backup 0 records, equal\n"),
                          HasSubstr("verify: 3 files, 5 records each side, equal at ASN 0\n")));
  EXPECT_EQ(Slept(), 0);
}

TEST_F(VerifyTest, NoFilesAnywhereIsEqual) {
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_THAT(out_, HasSubstr("verify: 0 files, 0 records each side, equal at ASN 0\n"));
}

TEST_F(VerifyTest, MissingExtraAndChangedKeysAtAConsistentCutAreReportedWithoutRecheck) {
  Put("primary", "$DATA01", "LOAD", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}});
  Put("backup", "$DATA01", "LOAD", {{"a", "1"}, {"c", "3!"}, {"d", "4"}, {"e", "5"}});
  PutBoth("$DATA02", "ORDERS", Keys(2));
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_TRUE(s.consistent_cut);
  EXPECT_EQ(s.differing_files, 1u);
  EXPECT_THAT(out_, HasSubstr("$DATA01 LOAD: primary 4 records, backup 4 records, "
                              "DIFFERENT (3 keys)\n"
                              "  only on primary: b\n"
                              "  values differ: c\n"
                              "  only on backup: e\n"
                              "$DATA02 ORDERS: primary 2 records, backup 2 records, equal\n"
                              "verify: 1 of 2 files differ (6 records on primary, 6 on backup)"
                              " at ASN 0\n"));
  EXPECT_EQ(Slept(), 0);
  EXPECT_EQ(calls_["backup VERIFY_FILES"], 1);
}

TEST_F(VerifyTest, OneByteChangeInALongValueDiffers) {
  std::string value(4096, 'v');
  Put("primary", "$DATA01", "LOAD", {{"k", value}});
  value[2048] ^= 0x01;
  Put("backup", "$DATA01", "LOAD", {{"k", value}});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_THAT(out_, HasSubstr("DIFFERENT (1 key)\n  values differ: k\n"));
}

TEST_F(VerifyTest, EmptyFileOnOneNodeOnlyDiffers) {
  PutBoth("$DATA01", "LOAD", Keys(1));
  Put("backup", "$DATA02", "ORDERS", {});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_TRUE(s.consistent_cut);
  EXPECT_EQ(s.differing_files, 1u);
  ASSERT_EQ(s.differing.size(), 1u);
  EXPECT_EQ(s.differing[0].file, "ORDERS");
  EXPECT_THAT(out_, AllOf(HasSubstr("$DATA02 ORDERS: primary: no such file, backup 0 records, "
                                    "DIFFERENT (only on backup)\n"),
                          Not(HasSubstr("primary 0 records"))));
}

TEST_F(VerifyTest, FileWithRecordsOnOneNodeOnlyDiffersAndListsItsKeys) {
  PutBoth("$DATA01", "LOAD", Keys(1));
  Put("primary", "$DATA02", "STRAY", {{"x", "1"}});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_THAT(out_, HasSubstr("$DATA02 STRAY: primary 1 records, backup: no such file, "
                              "DIFFERENT (only on primary)\n"
                              "  only on primary: x\n"));
}

TEST_F(VerifyTest, PrimaryWritingDuringTheScanIsNoConsistentCutNeverEqual) {
  PutBoth("$DATA01", "LOAD", Keys(3));
  // Load on the primary: its audit end moves with every request.
  after_call = [this](const std::string& node, const proto::ControlRequest&) {
    if (node == "primary") ++audit_end_;
  };
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_FALSE(s.consistent_cut);
  EXPECT_THAT(s.cut_problem, HasSubstr("the primary's audit end moved during the scan"));
  EXPECT_THAT(out_, AllOf(HasSubstr("verify: NO CONSISTENT CUT: the primary's audit end moved"),
                          HasSubstr("verify: no consistent cut (0 of 1 files differed while the "
                                    "nodes moved): not verified\n"),
                          Not(HasSubstr("equal at"))));
  EXPECT_EQ(Slept(), 2'000'000);  // one more pass, no better
  EXPECT_EQ(calls_["primary VERIFY_FILES"], 2);
}

TEST_F(VerifyTest, BackupVolumeChangingBetweenPagesIsNoConsistentCut) {
  page_limit_ = 2;
  PutBoth("$DATA01", "LOAD", Keys(6));
  int scans = 0;
  after_call = [&](const std::string& node, const proto::ControlRequest& req) {
    if (node == "backup" && req.command() == proto::ControlRequest::VERIFY_SCAN) {
      PutMeta("backup", "$DATA01", kMetaAppliedAsn, ++scans);  // the updater applies a batch
    }
  };
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.consistent_cut);
  EXPECT_FALSE(s.equal);
  EXPECT_THAT(s.cut_problem, HasSubstr("$DATA01 changed on the backup during the scan"));
}

TEST_F(VerifyTest, BackupNotYetAtThePrimarysAuditEndIsNoConsistentCut) {
  PutBoth("$DATA01", "LOAD", Keys(2));
  audit_end_ = 10;
  PublishSavePoint(8);
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.consistent_cut);
  EXPECT_THAT(s.cut_problem, HasSubstr("save point (ASN 8) is not the primary's audit end (ASN "
                                       "10)"));
  ASSERT_OK(Verify(/*json=*/true));
  EXPECT_THAT(out_, AllOf(HasSubstr("{\"equal\":false,\"consistent_cut\":false,\"cut_asn\":0,"),
                          HasSubstr("\"cut_problem\":\"the backup's save point (ASN 8)")));
}

TEST_F(VerifyTest, OpenTransactionAtTheSavePointIsNoConsistentCut) {
  PutBoth("$DATA01", "LOAD", Keys(2));
  audit_end_ = 10;
  PublishSavePoint(10, /*open=*/2);
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.consistent_cut);
  EXPECT_THAT(s.cut_problem, HasSubstr("2 transaction(s) had no outcome at ASN 10"));
}

TEST_F(VerifyTest, UpdaterBehindTheSavePointIsNoConsistentCut) {
  PutBoth("$DATA01", "LOAD", Keys(2));
  audit_end_ = 10;
  PublishSavePoint(10, 0, /*trail_records=*/5);
  PutMeta("backup", "$DATA01", kMetaAppliedAsn, 7);
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.consistent_cut);
  EXPECT_THAT(s.cut_problem, HasSubstr("$DATA01's updater had not applied everything"));
  CatchUp(9);
  ASSERT_OK_AND_ASSIGN(s, Verify());
  EXPECT_TRUE(s.consistent_cut);
  EXPECT_TRUE(s.equal);
  EXPECT_EQ(s.cut_asn, 10u);
}

TEST_F(VerifyTest, PipelineThatCatchesUpBeforeTheSecondPassIsComparedThere) {
  Put("primary", "$DATA01", "LOAD", Keys(3));
  Put("backup", "$DATA01", "LOAD", Keys(2));
  audit_end_ = 10;
  PublishSavePoint(9);
  clock_.on_sleep = [this] {
    Put("backup", "$DATA01", "LOAD", Keys(3));
    PublishSavePoint(10);
  };
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.consistent_cut);
  EXPECT_TRUE(s.equal);
  EXPECT_THAT(out_, HasSubstr("backup 3 records, equal (rechecked after 2s)\n"));
}

TEST_F(VerifyTest, MonitorWithoutValueHashesIsRefused) {
  PutBoth("$DATA01", "LOAD", Keys(1));
  strip_hashes_ = true;
  EXPECT_THAT(Verify(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                 HasSubstr("older than this rdfcom")));
}

TEST_F(VerifyTest, MergeWorksAcrossPageBoundaries) {
  page_limit_ = 2;
  std::map<std::string, std::string> primary = Keys(10), backup = Keys(10);
  backup.erase("k2");  // first key of the primary's second page
  backup.erase("k5");
  backup["k45"] = "extra";  // shifts the backup's pages against the primary's
  backup["k9"] = "changed";
  Put("primary", "$DATA01", "LOAD", primary);
  Put("backup", "$DATA01", "LOAD", backup);
  ASSERT_OK(Verify());
  EXPECT_THAT(out_, HasSubstr("primary 10 records, backup 9 records, DIFFERENT (4 keys)\n"
                              "  only on primary: k2\n"
                              "  only on backup: k45\n"
                              "  only on primary: k5\n"
                              "  values differ: k9\n"));
  EXPECT_EQ(calls_["primary VERIFY_SCAN"], 5);  // 10 keys, 2 a page
}

TEST_F(VerifyTest, EqualFilesSpanningManyPagesAreEqual) {
  page_limit_ = 3;
  PutBoth("$DATA01", "LOAD", Keys(100));
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_EQ(s.backup_records, 100u);
  EXPECT_EQ(calls_["backup VERIFY_SCAN"], 34);
}

TEST_F(VerifyTest, ListsTenDifferencesAndCountsTheRest) {
  Put("primary", "$DATA01", "LOAD", Keys(25));
  Put("backup", "$DATA01", "LOAD", {});
  ASSERT_OK(Verify());
  EXPECT_THAT(out_, AllOf(HasSubstr("DIFFERENT (25 keys)"), HasSubstr("  ... and 15 more\n"),
                          HasSubstr("only on primary: k17\n"),
                          Not(HasSubstr("only on primary: k18\n"))));
}

TEST_F(VerifyTest, ReportsEachNodesAppliedAsn) {
  audit_end_ = 40;
  PublishSavePoint(40);
  PutMeta("primary", "$DATA01", kMetaTmfAppliedAsn, 40);
  PutMeta("backup", "$DATA01", kMetaAppliedAsn, 38);
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_EQ(s.primary_applied_asn, 40u);
  EXPECT_EQ(s.backup_applied_asn, 38u);
  EXPECT_THAT(out_, HasSubstr("verify: primary applied ASN 40, backup applied ASN 38\n"
                              "verify: both nodes compared at ASN 40\n"));
}

TEST_F(VerifyTest, JsonIsOneObjectWithEscapedKeys) {
  Put("primary", "$DATA01", "LOAD", {{std::string("a\x01", 2), "1"}, {"b", "2"}});
  Put("backup", "$DATA01", "LOAD", {{"b", "2"}});
  ASSERT_OK(Verify(/*json=*/true));
  EXPECT_EQ(out_,
            "{\"equal\":false,\"consistent_cut\":true,\"cut_asn\":0,\"cut_problem\":\"\","
            "\"primary_applied_asn\":0,\"backup_applied_asn\":0,\"files\":["
            "{\"volume\":\"$DATA01\",\"file\":\"LOAD\",\"primary_exists\":true,"
            "\"backup_exists\":true,\"primary_records\":2,"
            "\"backup_records\":1,\"equal\":false,\"difference_count\":1,\"rechecked\":false,"
            "\"differences\":[{\"key\":\"a\\\\x01\",\"kind\":\"only_on_primary\"}]}]}\n");
}

TEST_F(VerifyTest, JsonSaysWhichSideLacksAFile) {
  Put("primary", "$DATA01", "LOAD", {});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify(/*json=*/true));
  EXPECT_FALSE(s.equal);
  EXPECT_THAT(out_, HasSubstr("\"file\":\"LOAD\",\"primary_exists\":true,\"backup_exists\":false,"
                              "\"primary_records\":0,\"backup_records\":0,\"equal\":false"));
}

TEST_F(VerifyTest, UnreachableNodeIsAnErrorNamingIt) {
  PutBoth("$DATA01", "LOAD", Keys(1));
  unreachable_ = "backup";
  EXPECT_THAT(Verify(), StatusIs(absl::StatusCode::kUnavailable,
                                 AllOf(HasSubstr("backup"), HasSubstr("no answer"))));
  EXPECT_THAT(out_, IsEmpty());
}

TEST_F(VerifyTest, RefusingNodeIsAnError) {
  refusing_ = "primary";
  EXPECT_THAT(Verify(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                 AllOf(HasSubstr("primary refused"),
                                       HasSubstr("unsupported command"))));
}

TEST(EscapeKeyTest, PrintableAsciiStaysOtherBytesAreHex) {
  EXPECT_EQ(EscapeKey(std::string("a b:\\\x00\xff~", 8)), "a b:\\\\\\x00\\xff~");
}

}  // namespace
}  // namespace rdf::rdfcom
