#include "monitor/verify_scan.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/lmdb_env.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/volume_meta.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::monitor {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kConfig[] = R"cfg(
system: "test"
nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "primary"
        key_file: "keys/primary.key" }
nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17420
        data_dir: "backup" key_file: "keys/backup.key" }
volumes { name: "$DATA01" files { name: "SCRATCH" unprotected: true } }
volumes { name: "$DATA02" include: "ORD*" exclude: "ORDTMP" }
volumes { name: "$TEMP" unprotected: true }
)cfg";

class VerifyScanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("verify_scan_test");
    absl::StatusOr<config::Config> c = config::Parse(kConfig, dir_ + "/rdf.textproto");
    ASSERT_OK(c);
    config_ = *std::move(c);
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  const proto::NodeConfig& Node(const char* name) { return *config_.FindNode(name); }

  // Writes `records` into `file` of `volume` on `node`, then closes the
  // environment (a process must not open one environment twice).
  void Put(const char* node, const std::string& volume, const std::string& file,
           const std::map<std::string, std::string>& records) {
    ASSERT_OK_AND_ASSIGN(auto env,
                         lmdb::Env::Open(config::VolumeDir(Node(node), volume), 16 << 20, 64));
    ASSERT_OK_AND_ASSIGN(MDB_dbi dbi, env->OpenDb(file, true));
    ASSERT_OK_AND_ASSIGN(auto txn, lmdb::WriteTxn::Begin(env.get()));
    for (const auto& [k, v] : records) ASSERT_OK(txn->Put(dbi, k, v));
    ASSERT_OK(txn->Commit());
  }
  void PutMeta(const char* node, const std::string& volume, const char* key, uint64_t value) {
    ASSERT_OK_AND_ASSIGN(auto env,
                         lmdb::Env::Open(config::VolumeDir(Node(node), volume), 16 << 20, 64));
    ASSERT_OK_AND_ASSIGN(MDB_dbi dbi, env->OpenDb(lmdb::kMetaDb, true));
    ASSERT_OK_AND_ASSIGN(auto txn, lmdb::WriteTxn::Begin(env.get()));
    ASSERT_OK(lmdb::PutU64(txn.get(), dbi, key, value));
    ASSERT_OK(txn->Commit());
  }

  // VERIFY_FILES as "volume/file=records" strings.
  std::vector<std::string> Files(const char* node, uint64_t* applied_asn = nullptr) {
    absl::StatusOr<proto::ControlReply> r = ServeVerifyFiles(config_, Node(node));
    EXPECT_OK(r);
    if (!r.ok()) return {};
    EXPECT_TRUE(r->ok());
    if (applied_asn != nullptr) *applied_asn = r->applied_asn();
    std::vector<std::string> out;
    for (const proto::VerifyFile& f : r->files()) {
      out.push_back(absl::StrCat(f.volume(), "/", f.file(), "=", f.records()));
    }
    return out;
  }

  absl::StatusOr<proto::ControlReply> Scan(const std::string& volume, const std::string& file,
                                           const std::string& after, uint32_t limit = 0) {
    proto::ControlRequest req;
    req.set_command(proto::ControlRequest::VERIFY_SCAN);
    req.set_volume(volume);
    req.set_file(file);
    req.set_from_start(after.empty());
    req.set_after_key(after);
    req.set_limit(limit);
    return ServeVerifyScan(config_, Node("primary"), req);
  }

  // The keys of a scan page, and "+" at the end when more follow.
  static std::vector<std::string> Keys(const proto::ControlReply& r) {
    std::vector<std::string> out;
    for (const proto::VerifyEntry& e : r.entries()) out.push_back(e.key());
    if (r.more()) out.push_back("+");
    return out;
  }

  std::string dir_;
  config::Config config_;
};

TEST_F(VerifyScanTest, ValueDigestIsFnv1a64) {
  EXPECT_EQ(ValueDigest(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(ValueDigest("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(ValueDigest("foobar"), 0x85944171f73967e8ull);
}

TEST_F(VerifyScanTest, MissingVolumesHaveNoFiles) {
  uint64_t asn = 99;
  EXPECT_THAT(Files("backup", &asn), IsEmpty());
  EXPECT_EQ(asn, 0u);
}

TEST_F(VerifyScanTest, FilesListsOnlyProtectedUserFilesWithCounts) {
  Put("primary", "$DATA01", "LOAD", {{"a", "1"}, {"b", "2"}, {"c", "3"}});
  Put("primary", "$DATA01", "SCRATCH", {{"a", "1"}});  // declared unprotected
  Put("primary", "$DATA01", "EMPTY", {});
  PutMeta("primary", "$DATA01", kMetaTmfAppliedAsn, 5);
  Put("primary", "$DATA02", "ORDERS", {{"k", "v"}});
  Put("primary", "$DATA02", "ORDTMP", {{"k", "v"}});   // excluded
  Put("primary", "$DATA02", "STOCK", {{"k", "v"}});    // not included
  Put("primary", "$TEMP", "LOAD", {{"k", "v"}});       // unprotected volume
  EXPECT_THAT(Files("primary"),
              ElementsAre("$DATA01/EMPTY=0", "$DATA01/LOAD=3", "$DATA02/ORDERS=1"));
}

TEST_F(VerifyScanTest, PrimaryAppliedAsnIsLowestTmfValue) {
  PutMeta("primary", "$DATA01", kMetaTmfAppliedAsn, 50);
  PutMeta("primary", "$DATA01", kMetaAppliedAsn, 1);  // not the primary's key
  PutMeta("primary", "$DATA02", kMetaTmfAppliedAsn, 40);
  PutMeta("primary", "$TEMP", kMetaTmfAppliedAsn, 3);  // unprotected: ignored
  uint64_t asn = 0;
  Files("primary", &asn);
  EXPECT_EQ(asn, 40u);
}

TEST_F(VerifyScanTest, BackupAppliedAsnIsLowestUpdaterValueOfVolumesThatHaveOne) {
  PutMeta("backup", "$DATA01", kMetaAppliedAsn, 7);
  PutMeta("backup", "$DATA01", kMetaTmfAppliedAsn, 99);
  Put("backup", "$DATA02", "ORDERS", {});  // no updater position yet
  uint64_t asn = 0;
  Files("backup", &asn);
  EXPECT_EQ(asn, 7u);
}

TEST_F(VerifyScanTest, ScanReturnsKeysInOrderWithValueDigests) {
  Put("primary", "$DATA01", "LOAD", {{"b", "two"}, {"a", "one"}, {"c", "three"}});
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), ElementsAre("a", "b", "c"));
  EXPECT_EQ(r.entries(1).value_digest(), ValueDigest("two"));
}

TEST_F(VerifyScanTest, ScanPagesStrictlyAfterTheGivenKey) {
  Put("primary", "$DATA01", "LOAD", {{"a", ""}, {"b", ""}, {"c", ""}, {"d", ""}});
  ASSERT_OK_AND_ASSIGN(proto::ControlReply p1, Scan("$DATA01", "LOAD", "", 2));
  EXPECT_THAT(Keys(p1), ElementsAre("a", "b", "+"));
  ASSERT_OK_AND_ASSIGN(proto::ControlReply p2, Scan("$DATA01", "LOAD", "b", 2));
  EXPECT_THAT(Keys(p2), ElementsAre("c", "d"));  // exactly the rest: no "+"
  ASSERT_OK_AND_ASSIGN(proto::ControlReply p3, Scan("$DATA01", "LOAD", "bb", 2));
  EXPECT_THAT(Keys(p3), ElementsAre("c", "d"));  // a key that is not there
  ASSERT_OK_AND_ASSIGN(proto::ControlReply p4, Scan("$DATA01", "LOAD", "d", 2));
  EXPECT_THAT(Keys(p4), IsEmpty());
}

TEST_F(VerifyScanTest, PageEndsAtTheKeyByteBound) {
  std::map<std::string, std::string> records;
  for (int i = 0; i < 5000; ++i) records[absl::StrCat(i + 10000, std::string(495, 'k'))] = "";
  Put("primary", "$DATA01", "LOAD", records);
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, Scan("$DATA01", "LOAD", "", 100000));
  EXPECT_TRUE(r.more());
  EXPECT_EQ(static_cast<uint64_t>(r.entries_size()), kMaxVerifyPageKeyBytes / 500 + 1);
}

TEST_F(VerifyScanTest, ScanOfAFileMissingHereIsEmpty) {
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), IsEmpty());
  Put("primary", "$DATA01", "OTHER", {{"a", ""}});
  ASSERT_OK_AND_ASSIGN(r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), IsEmpty());
}

TEST_F(VerifyScanTest, ScanRefusesFilesTheConfigurationDoesNotProtect) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"$DATA01", "SCRATCH"}, {"$DATA01", "__meta"}, {"$DATA02", "ORDTMP"},
      {"$DATA02", "STOCK"},   {"$TEMP", "LOAD"},     {"$NOPE", "LOAD"}};
  for (const auto& [volume, file] : refused) {
    EXPECT_THAT(Scan(volume, file, ""),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not protected")))
        << volume << " " << file;
  }
}

TEST_F(VerifyScanTest, ScanRefusesAnOversizedAfterKey) {
  EXPECT_THAT(Scan("$DATA01", "LOAD", std::string(600, 'x')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("after_key")));
}

}  // namespace
}  // namespace rdf::monitor
