#include "monitor/verify_scan.h"

#include <map>
#include <string>
#include <vector>

#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/base/shared_blob.h"
#include "common/config/config.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/state/save_point.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
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

  struct End {
    uint64_t segment, offset, records;
  };
  // Publishes a save point for the backup's updaters, as the receiver does.
  void PublishSavePoint(uint64_t asn, int open, const std::map<std::string, End>& trails) {
    proto::SavePoint sp;
    sp.set_version(kSavePointVersion);
    sp.set_asn(asn);
    for (int i = 0; i < open; ++i) sp.add_open()->set_txid(i + 1);
    for (const auto& [name, e] : trails) {
      proto::TrailEnd* t = sp.add_trails();
      t->set_trail(name);
      t->set_segment(e.segment);
      t->set_offset(e.offset);
      t->set_records(e.records);
    }
    const std::string dir = config::ImageTrailDir(Node("backup"));
    std::filesystem::create_directories(dir);
    ASSERT_OK_AND_ASSIGN(auto blob, SharedBlob::Create(SavePointShmPath(dir)));
    ASSERT_OK(blob->Write(sp.SerializeAsString()));
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

// Both nodes must compute the same function: BLAKE2b with a 16-byte
// output (the reference values are Python's hashlib.blake2b(v,
// digest_size=16)).
TEST_F(VerifyScanTest, ValueHashIsBlake2b128) {
  EXPECT_EQ(absl::BytesToHexString(ValueHash("")), "cae66941d9efbd404e4d88758ea67670");
  EXPECT_EQ(absl::BytesToHexString(ValueHash("a")), "27c35e6e9373877f29e562464e46497e");
  EXPECT_EQ(absl::BytesToHexString(ValueHash("foobar")), "13b16eec2597e4d5616a70b1abd318b0");
}

TEST_F(VerifyScanTest, PositionsSayWhereEachVolumeStands) {
  PutMeta("primary", "$DATA01", kMetaTmfAppliedAsn, 50);
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, ServeVerifyFiles(config_, Node("primary")));
  ASSERT_EQ(r.verify_positions_size(), 2);  // the protected volumes, in order
  EXPECT_EQ(r.verify_positions(0).volume(), "$DATA01");
  EXPECT_TRUE(r.verify_positions(0).volume_exists());
  EXPECT_EQ(r.verify_positions(0).applied_asn(), 50u);
  EXPECT_EQ(r.verify_positions(1).volume(), "$DATA02");
  EXPECT_FALSE(r.verify_positions(1).volume_exists());
}

TEST_F(VerifyScanTest, BackupVolumeAtTheTrailEndOfTheSavePointIsCaughtUp) {
  PublishSavePoint(120, /*open=*/1, {{"DATA01", {3, 4096, 10}}, {"DATA02", {1, 0, 0}}});
  PutMeta("backup", "$DATA01", kMetaAppliedAsn, 118);
  PutMeta("backup", "$DATA01", kMetaRestartSegment, 3);
  PutMeta("backup", "$DATA01", kMetaRestartOffset, 4096);
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, ServeVerifyFiles(config_, Node("backup")));
  ASSERT_EQ(r.verify_positions_size(), 2);
  EXPECT_TRUE(r.verify_positions(0).caught_up());
  EXPECT_EQ(r.verify_positions(0).save_point_asn(), 120u);
  EXPECT_EQ(r.verify_positions(0).open_transactions(), 1u);
  EXPECT_TRUE(r.verify_positions(1).caught_up());  // nothing in its trail
  PutMeta("backup", "$DATA01", kMetaRestartOffset, 2048);
  ASSERT_OK_AND_ASSIGN(r, ServeVerifyFiles(config_, Node("backup")));
  EXPECT_FALSE(r.verify_positions(0).caught_up());
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

TEST_F(VerifyScanTest, ScanReturnsKeysInOrderWithValueHashes) {
  Put("primary", "$DATA01", "LOAD", {{"b", "two"}, {"a", "one"}, {"c", "three"}});
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), ElementsAre("a", "b", "c"));
  EXPECT_EQ(r.entries(1).value_hash(), ValueHash("two"));
  ASSERT_EQ(r.verify_positions_size(), 1);
  EXPECT_TRUE(r.verify_positions(0).file_exists());
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

TEST_F(VerifyScanTest, ScanOfAFileMissingHereIsEmptyAndSaysSo) {
  ASSERT_OK_AND_ASSIGN(proto::ControlReply r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), IsEmpty());
  EXPECT_FALSE(r.verify_positions(0).file_exists());
  Put("primary", "$DATA01", "OTHER", {{"a", ""}});
  ASSERT_OK_AND_ASSIGN(r, Scan("$DATA01", "LOAD", ""));
  EXPECT_THAT(Keys(r), IsEmpty());
  EXPECT_FALSE(r.verify_positions(0).file_exists());
  Put("primary", "$DATA01", "LOAD", {});
  ASSERT_OK_AND_ASSIGN(r, Scan("$DATA01", "LOAD", ""));
  EXPECT_TRUE(r.verify_positions(0).file_exists());  // empty, but there
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
