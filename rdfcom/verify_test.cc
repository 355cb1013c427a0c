// rdfcom verify against two nodes served in-process: the fake ControlCall
// answers VERIFY_* with the monitor's own functions over LMDB volumes in a
// temporary folder.
#include "rdfcom/verify.h"

#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/lmdb_env.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/volume_meta.h"
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
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

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
      if (req.command() == proto::ControlRequest::VERIFY_FILES) {
        return monitor::ServeVerifyFiles(config_, n);
      }
      return monitor::ServeVerifyScan(config_, n, req);
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
  std::string out_;
};

TEST_F(VerifyTest, EqualNodesAreEqualWithoutRecheck) {
  PutBoth("$DATA01", "LOAD", Keys(3));
  PutBoth("$DATA02", "ORDERS", Keys(2));
  PutBoth("$DATA02", "EMPTY", {});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_EQ(s.files, 3u);
  EXPECT_EQ(s.primary_records, 5u);
  EXPECT_THAT(out_, AllOf(HasSubstr("$DATA01 LOAD: primary 3 records, backup 3 records, equal\n"),
                          HasSubstr("$DATA02 EMPTY: primary 0 records, backup 0 records, equal\n"),
                          HasSubstr("verify: 3 files, 5 records each side, equal\n")));
  EXPECT_EQ(Slept(), 0);
}

TEST_F(VerifyTest, NoFilesAnywhereIsEqual) {
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_THAT(out_, HasSubstr("verify: 0 files, 0 records each side, equal\n"));
}

TEST_F(VerifyTest, MissingExtraAndChangedKeysAreReportedAfterOneRecheck) {
  Put("primary", "$DATA01", "LOAD", {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}});
  Put("backup", "$DATA01", "LOAD", {{"a", "1"}, {"c", "3!"}, {"d", "4"}, {"e", "5"}});
  PutBoth("$DATA02", "ORDERS", Keys(2));
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_EQ(s.differing_files, 1u);
  EXPECT_THAT(out_, HasSubstr("$DATA01 LOAD: primary 4 records, backup 4 records, "
                              "DIFFERENT (3 keys) (rechecked after 2s)\n"
                              "  only on primary: b\n"
                              "  values differ: c\n"
                              "  only on backup: e\n"
                              "$DATA02 ORDERS: primary 2 records, backup 2 records, equal\n"
                              "verify: 1 of 2 files differ (6 records on primary, 6 on backup)\n"));
  EXPECT_EQ(Slept(), 2'000'000);
  EXPECT_EQ(calls_["backup VERIFY_FILES"], 2);
}

TEST_F(VerifyTest, DifferenceThatCatchesUpBeforeTheRecheckIsEqual) {
  Put("primary", "$DATA01", "LOAD", Keys(3));
  Put("backup", "$DATA01", "LOAD", Keys(2));
  clock_.on_sleep = [this] { Put("backup", "$DATA01", "LOAD", Keys(3)); };
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_TRUE(s.equal);
  EXPECT_THAT(out_, HasSubstr("backup 3 records, equal (rechecked after 2s)\n"));
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
  EXPECT_THAT(out_, HasSubstr("primary 10 records, backup 9 records, DIFFERENT (4 keys)"
                              " (rechecked after 2s)\n"
                              "  only on primary: k2\n"
                              "  only on backup: k45\n"
                              "  only on primary: k5\n"
                              "  values differ: k9\n"));
  EXPECT_EQ(calls_["primary VERIFY_SCAN"], 2 * 5);  // 10 keys, 2 a page, scanned twice
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

TEST_F(VerifyTest, FileOnOneNodeOnlyIsComparedWithAnEmptyFile) {
  PutBoth("$DATA01", "LOAD", Keys(1));
  Put("backup", "$DATA02", "STRAY", {{"x", "1"}});
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_FALSE(s.equal);
  EXPECT_THAT(out_, HasSubstr("$DATA02 STRAY: primary 0 records, backup 1 records, "
                              "DIFFERENT (1 key) (rechecked after 2s)\n"
                              "  only on backup: x\n"));
}

TEST_F(VerifyTest, ReportsEachNodesAppliedAsn) {
  PutMeta("primary", "$DATA01", kMetaTmfAppliedAsn, 40);
  PutMeta("backup", "$DATA01", kMetaAppliedAsn, 38);
  ASSERT_OK_AND_ASSIGN(VerifySummary s, Verify());
  EXPECT_EQ(s.primary_applied_asn, 40u);
  EXPECT_EQ(s.backup_applied_asn, 38u);
  EXPECT_THAT(out_, HasSubstr("verify: primary applied ASN 40, backup applied ASN 38\n"));
}

TEST_F(VerifyTest, JsonIsOneObjectWithEscapedKeys) {
  Put("primary", "$DATA01", "LOAD", {{std::string("a\x01", 2), "1"}, {"b", "2"}});
  Put("backup", "$DATA01", "LOAD", {{"b", "2"}});
  ASSERT_OK(Verify(/*json=*/true));
  EXPECT_EQ(out_,
            "{\"equal\":false,\"primary_applied_asn\":0,\"backup_applied_asn\":0,\"files\":["
            "{\"volume\":\"$DATA01\",\"file\":\"LOAD\",\"primary_records\":2,"
            "\"backup_records\":1,\"equal\":false,\"difference_count\":1,\"rechecked\":true,"
            "\"differences\":[{\"key\":\"a\\\\x01\",\"kind\":\"only_on_primary\"}]}]}\n");
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
