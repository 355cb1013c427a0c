#include "common/config/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::config {
namespace {

namespace fs = std::filesystem;
using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A valid two-node system. Tests derive broken variants with With(), and
// mark the line an error must point at with "# <-".
constexpr char kValid[] = R"cfg(version: 1
system: "test"
nodes {
  name: "primary"
  role: PRIMARY
  host: "127.0.0.1"
  control_port: 17410
  metrics_port: 17411
  data_dir: "primary"
  key_file: "keys/primary.key"
}
nodes {
  name: "backup"
  role: BACKUP
  host: "127.0.0.1"
  audit_port: 17420
  control_port: 17421
  metrics_port: 17422
  data_dir: "backup"
  key_file: "keys/backup.key"
}
volumes {
  name: "$DATA01"
  files { name: "LOAD" }
}
volumes {
  name: "$DATA02"
  files { name: "ORDERS" }
}
)cfg";

// kValid with each `from` (which must occur exactly once) replaced by `to`.
std::string With(std::vector<std::pair<std::string_view, std::string_view>> edits,
                 std::string_view base = kValid) {
  std::string text(base);
  for (const auto& [from, to] : edits) {
    size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << "not in config: " << from;
    EXPECT_EQ(text.find(from, at + 1), std::string::npos) << "ambiguous: " << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  return text;
}
std::string With(std::string_view from, std::string_view to) { return With({{from, to}}); }

// 1-based number of the line holding the "# <-" marker (0 if none).
int MarkedLine(std::string_view text) {
  int line = 1;
  for (absl::string_view l : absl::StrSplit(std::string(text), '\n')) {
    if (l.find("# <-") != std::string_view::npos) return line;
    ++line;
  }
  return 0;
}

class ConfigTest : public ::testing::Test {
 protected:
  ConfigTest() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // Per process and test, so concurrent runs of this binary do not collide.
    dir_ = (fs::path(::testing::TempDir()) / absl::StrCat("config_test.", getpid()) / info->name())
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }

  ~ConfigTest() override {
    std::error_code ignored;
    if (!HasFailure()) fs::remove_all(fs::path(dir_).parent_path(), ignored);  // kept for debugging
  }

  std::string Write(std::string_view text, std::string_view name = "bad.textproto") {
    std::string path = (fs::path(dir_) / name).string();
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
    return path;
  }

  absl::StatusOr<Config> LoadText(std::string_view text, std::string_view name = "bad.textproto") {
    return Load(Write(text, name));
  }

  // Loading `text` fails with kInvalidArgument naming bad.textproto, the line
  // marked "# <-", and every one of `parts` (field path, problem, fix).
  void ExpectError(const std::string& text, std::vector<std::string_view> parts) {
    int line = MarkedLine(text);
    ASSERT_GT(line, 0) << "test text has no # <- marker";
    auto config = LoadText(text);
    EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument,
                                 HasSubstr(absl::StrCat("bad.textproto:", line, ":"))));
    for (std::string_view part : parts) {
      EXPECT_THAT(config, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(part)));
    }
  }

  std::string dir_;
};

// --- loading, defaults, paths ----------------------------------------------

TEST_F(ConfigTest, LoadsValidConfig) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(kValid, "rdf.textproto"));
  EXPECT_EQ(c.path, (fs::path(dir_) / "rdf.textproto").string());
  EXPECT_EQ(c.dir, dir_);
  EXPECT_EQ(c.proto.system(), "test");
  EXPECT_EQ(c.FindNode("backup")->audit_port(), 17420u);
  EXPECT_EQ(c.FindNode("nobody"), nullptr);
  EXPECT_EQ(c.NodeWithRole(proto::PRIMARY)->name(), "primary");
  EXPECT_EQ(c.NodeWithRole(proto::BACKUP)->name(), "backup");
  EXPECT_EQ(c.NodeWithRole(proto::NODE_ROLE_UNSPECIFIED), nullptr);
  EXPECT_EQ(c.FindVolume("$DATA02")->files(0).name(), "ORDERS");
  EXPECT_EQ(c.FindVolume("$DATA03"), nullptr);
}

TEST_F(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(Load(dir_ + "/absent.textproto"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent.textproto")));
}

TEST_F(ConfigTest, RelativePathsResolveAgainstTheFilesFolder) {
  std::string text = With({{"data_dir: \"primary\"", "data_dir: \"../state/./primary/\""},
                           {"key_file: \"keys/backup.key\"", "key_file: \"/etc/rdf/b.key\""}});
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(text, "conf/rdf.textproto"));
  EXPECT_EQ(c.dir, dir_ + "/conf");
  EXPECT_EQ(c.FindNode("primary")->data_dir(), dir_ + "/state/primary");
  EXPECT_EQ(c.FindNode("primary")->key_file(), dir_ + "/conf/keys/primary.key");
  EXPECT_EQ(c.FindNode("backup")->data_dir(), dir_ + "/conf/backup");
  EXPECT_EQ(c.FindNode("backup")->key_file(), "/etc/rdf/b.key");
}

TEST_F(ConfigTest, ParseWithRelativePathUsesCurrentDirectory) {
  ASSERT_OK_AND_ASSIGN(Config c, Parse(kValid, "sub/rdf.textproto"));
  EXPECT_EQ(c.dir, (fs::current_path() / "sub").lexically_normal().string());
  EXPECT_EQ(c.FindNode("backup")->data_dir(), c.dir + "/backup");
}

TEST_F(ConfigTest, ZeroFieldsTakeDocumentedDefaults) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(With("version: 1\n", "")));
  const proto::SystemConfig& p = c.proto;
  EXPECT_EQ(p.version(), 1u);
  EXPECT_EQ(p.trail().audit_segment_bytes(), 64ull << 20);
  EXPECT_EQ(p.trail().image_segment_bytes(), 64ull << 20);
  EXPECT_EQ(p.trail().event_segment_bytes(), 4ull << 20);
  EXPECT_EQ(p.trail().event_segments_kept(), 8u);
  EXPECT_EQ(p.lmdb().map_bytes(), 1ull << 30);
  EXPECT_EQ(p.lmdb().max_dbs(), 256u);
  EXPECT_EQ(p.volumes(0).map_bytes(), 1ull << 30);
  EXPECT_EQ(p.tmf().max_txn_bytes(), 64ull << 20);
  EXPECT_EQ(p.tmf().lock_timeout_ms(), 5000u);
  EXPECT_EQ(p.tmf().audit_retention_bytes(), 8ull << 30);
  EXPECT_EQ(p.tmf().retention_policy(), proto::TmfConfig::REFUSE_COMMITS);
  EXPECT_EQ(p.tmf().apply_batch_txns(), config::kDefaultApplyBatchTxns);
  EXPECT_EQ(p.tmf().apply_interval_ms(), config::kDefaultApplyIntervalMs);
  EXPECT_EQ(p.tmf().image_memory_bytes(), 32ull << 20);
  EXPECT_EQ(p.extractor().batch_bytes(), 256u << 10);
  EXPECT_EQ(p.extractor().batch_wait_ms(), 5u);
  EXPECT_EQ(p.extractor().window(), 8u);
  EXPECT_EQ(p.extractor().heartbeat_ms(), 1000u);
  EXPECT_EQ(p.extractor().rtd_warning_ms(), 60000u);
  EXPECT_EQ(p.receiver().max_message_bytes(), 4u << 20);
  EXPECT_EQ(p.receiver().save_point_max_wait_ms(), 20u);
  EXPECT_EQ(p.updater().batch_records(), 32768u);
  EXPECT_EQ(p.updater().batch_bytes(), 4u << 20);
  EXPECT_EQ(p.updater().rtd_warning_ms(), 60000u);
  EXPECT_EQ(p.updater().checkpoint_ms(), 250u);
  EXPECT_EQ(p.updater().checkpoint_mode(), proto::UpdaterConfig::AUTO);
  EXPECT_EQ(p.updater().checkpoint_copy_max_bytes(), uint64_t{256} << 20);
  EXPECT_EQ(p.updater().checkpoint_copy_ms(), 30000u);
  EXPECT_EQ(p.updater().takeover_retry_ms(), 30000u);
  EXPECT_EQ(p.updater().duplicate_key(), proto::UpdaterConfig::SKIP);
  EXPECT_EQ(p.purger().interval_ms(), 10000u);
  EXPECT_EQ(p.purger().retain_count(), 2u);
  EXPECT_EQ(p.notify().min_severity(), "ERROR");
}

TEST_F(ConfigTest, SetFieldsKeepTheirValues) {
  std::string text = absl::StrCat(kValid, R"cfg(
    trail { audit_segment_bytes: 65536 event_segments_kept: 3 }
    lmdb { map_bytes: 2097152 }
    purger { retain_count: 5 }
    notify { min_severity: "WARNING" }
  )cfg");
  text = With({{"files { name: \"ORDERS\" }", "files { name: \"ORDERS\" }\n  map_bytes: 4194304"}},
              text);
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(text));
  EXPECT_EQ(c.proto.trail().audit_segment_bytes(), 65536u);
  EXPECT_EQ(c.proto.trail().event_segments_kept(), 3u);
  EXPECT_EQ(c.proto.volumes(0).map_bytes(), 2097152u);  // from lmdb.map_bytes
  EXPECT_EQ(c.proto.volumes(1).map_bytes(), 4194304u);
  EXPECT_EQ(c.proto.purger().retain_count(), 5u);
  EXPECT_EQ(c.proto.notify().min_severity(), "WARNING");
}

TEST_F(ConfigTest, LoopbackExampleLoads) {
  ASSERT_OK_AND_ASSIGN(Config c,
                       Load(std::string(RDF_SOURCE_DIR) + "/examples/loopback.textproto"));
  EXPECT_EQ(c.dir, std::string(RDF_SOURCE_DIR) + "/examples");
  const proto::NodeConfig* primary = c.FindNode("primary");
  const proto::NodeConfig* backup = c.FindNode("backup");
  ASSERT_NE(primary, nullptr);
  ASSERT_NE(backup, nullptr);
  EXPECT_EQ(primary->role(), proto::PRIMARY);
  EXPECT_EQ(backup->role(), proto::BACKUP);
  EXPECT_EQ(backup->host(), "127.0.0.1");
  EXPECT_EQ(primary->data_dir(), c.dir + "/primary");
  EXPECT_EQ(backup->key_file(), c.dir + "/keys/backup.key");
  std::vector<std::string> names;
  for (const auto* v : c.ProtectedVolumes()) names.push_back(v->name());
  EXPECT_THAT(names, ElementsAre("$DATA01", "$DATA02", "$DATA03", "$DATA04"));
  EXPECT_TRUE(c.IsProtected("$DATA03", "LOAD"));
  EXPECT_FALSE(c.IsProtected("$SCRATCH", "LOAD"));
}

// --- syntax and unknown fields ----------------------------------------------

TEST_F(ConfigTest, UnknownFieldIsAnErrorNamingTheValidFields) {
  std::string text = With("  audit_port: 17420\n", "  audit_prot: 17420  # <-\n");
  ExpectError(text, {"bad.textproto:16:3: nodes[1].audit_prot: unknown field \"audit_prot\" in "
                     "NodeConfig",
                     "check its spelling", "audit_port, control_port"});
}

TEST_F(ConfigTest, UnknownTopLevelField) {
  ExpectError(absl::StrCat(kValid, "volume { name: \"$X\" }  # <-\n"),
              {"volume: unknown field \"volume\" in SystemConfig", "volumes"});
}

TEST_F(ConfigTest, UnknownEnumValueListsTheValues) {
  ExpectError(With("role: BACKUP", "role: BAKUP  # <-"),
              {"nodes[1].role", "BAKUP", "use one of PRIMARY, BACKUP"});
}

TEST_F(ConfigTest, SyntaxErrorHasLineAndFieldPath) {
  ExpectError(With("  metrics_port: 17422", "  metrics_port: lots  # <-"),
              {"nodes[1].metrics_port", "Expected integer", "fix the text-format syntax"});
}

TEST_F(ConfigTest, SingularFieldTwiceIsAnError) {
  ExpectError(With("system: \"test\"", "system: \"test\"\nsystem: \"again\"  # <-"),
              {"system", "specified multiple times", "keep one of them"});
}

TEST_F(ConfigTest, FieldPathCountsListElements) {
  std::string text = With("volumes {\n  name: \"$DATA02\"",
                          "volumes: [{ name: \"$DATA03\" }, {\n  name: \"$DATA02\"\n  "
                          "bogus: 1  # <-");
  text = With({{"  files { name: \"ORDERS\" }\n}", "  files { name: \"ORDERS\" }\n}]"}}, text);
  ExpectError(text, {"volumes[2].bogus: unknown field"});
}

// --- semantic errors --------------------------------------------------------

TEST_F(ConfigTest, UnsupportedVersion) {
  ExpectError(With("version: 1", "version: 2  # <-"),
              {"version: unsupported configuration version 2", "set version: 1"});
}

TEST_F(ConfigTest, MissingNodeName) {
  ExpectError(With("nodes {\n  name: \"backup\"\n", "nodes {  # <-\n"),
              {"nodes[1].name: missing node name", "set name"});
}

TEST_F(ConfigTest, DuplicateNodeName) {
  ExpectError(With("name: \"backup\"", "name: \"primary\"  # <-"),
              {"nodes[1].name: duplicate node name \"primary\" (also nodes[0], line 3)",
               "rename one of them"});
}

TEST_F(ConfigTest, MissingRole) {
  ExpectError(With({{"  role: BACKUP\n", ""},
                    {"nodes {\n  name: \"backup\"", "nodes {  # <-\n  name: \"backup\""}}),
              {"nodes[1].role: node \"backup\" has no role", "set role: PRIMARY or role: BACKUP",
               "no BACKUP node", "add a node with role: BACKUP"});
}

TEST_F(ConfigTest, TwoPrimaries) {
  ExpectError(With("role: BACKUP", "role: PRIMARY  # <-"),
              {"nodes[1].role: a second PRIMARY node (also nodes[0], line 3)",
               "make exactly one node PRIMARY and one BACKUP"});
}

TEST_F(ConfigTest, MissingHost) {
  ExpectError(With({{"  host: \"127.0.0.1\"\n  audit_port", "  audit_port"},
                    {"nodes {\n  name: \"backup\"", "nodes {  # <-\n  name: \"backup\""}}),
              {"nodes[1].host: missing host", "set host"});
}

TEST_F(ConfigTest, PortOutOfRange) {
  ExpectError(With("metrics_port: 17422", "metrics_port: 70000  # <-"),
              {"nodes[1].metrics_port: port 70000 is out of range", "use a port in 1..65535"});
}

TEST_F(ConfigTest, PortClashAcrossNodes) {
  ExpectError(With("control_port: 17421", "control_port: 17410  # <-"),
              {"nodes[1].control_port: port clash: 127.0.0.1:17410 is also "
               "nodes[0].control_port, line 7",
               "use a different port"});
}

TEST_F(ConfigTest, PortClashWithinANode) {
  ExpectError(With("metrics_port: 17422", "metrics_port: 17420  # <-"),
              {"nodes[1].metrics_port: port clash", "nodes[1].audit_port", "use a different port"});
}

TEST_F(ConfigTest, LocalhostAndLoopbackAddressClash) {
  ExpectError(With("  host: \"127.0.0.1\"\n  audit_port: 17420\n  control_port: 17421",
                   "  host: \"localhost\"\n  audit_port: 17420\n  control_port: 17410  # <-"),
              {"port clash: localhost:17410"});
}

TEST_F(ConfigTest, SamePortOnDifferentHostsIsFine) {
  EXPECT_OK(LoadText(With("  host: \"127.0.0.1\"\n  audit_port: 17420\n  control_port: 17421",
                          "  host: \"10.0.0.2\"\n  audit_port: 17420\n  control_port: 17410")));
}

TEST_F(ConfigTest, PortZeroDoesNotListenAndNeverClashes) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(With({{"metrics_port: 17411", "metrics_port: 0"},
                                                {"metrics_port: 17422", "metrics_port: 0"}})));
  EXPECT_EQ(c.FindNode("primary")->audit_port(), 0u);
}

TEST_F(ConfigTest, BackupNeedsAnAuditPort) {
  ExpectError(With("audit_port: 17420", "audit_port: 0  # <-"),
              {"nodes[1].audit_port: the BACKUP node has no audit_port", "set audit_port"});
}

TEST_F(ConfigTest, MissingDataDir) {
  ExpectError(With({{"  data_dir: \"backup\"\n", ""},
                    {"nodes {\n  name: \"backup\"", "nodes {  # <-\n  name: \"backup\""}}),
              {"nodes[1].data_dir: missing data_dir", "set data_dir"});
}

TEST_F(ConfigTest, SameDataDirForBothNodes) {
  ExpectError(With("data_dir: \"backup\"", "data_dir: \"x/../primary/\"  # <-"),
              {"nodes[1].data_dir: data_dir " + dir_ +
                   "/primary is the same as the data_dir "
                   "of node \"primary\" (nodes[0].data_dir, line 9)",
               "give each node its own data_dir"});
}

TEST_F(ConfigTest, NestedDataDir) {
  ExpectError(With("data_dir: \"backup\"", "data_dir: \"primary/backup\"  # <-"),
              {"is inside the data_dir of node \"primary\"", "give each node its own data_dir"});
}

TEST_F(ConfigTest, SiblingDataDirWithCommonPrefixIsFine) {
  EXPECT_OK(LoadText(With("data_dir: \"backup\"", "data_dir: \"primary2\"")));
}

TEST_F(ConfigTest, MissingKeyFile) {
  ExpectError(With({{"  key_file: \"keys/backup.key\"\n", ""},
                    {"nodes {\n  name: \"backup\"", "nodes {  # <-\n  name: \"backup\""}}),
              {"nodes[1].key_file: missing key_file", "set key_file"});
}

TEST_F(ConfigTest, SharedKeyFile) {
  ExpectError(With("key_file: \"keys/backup.key\"", "key_file: \"keys/primary.key\"  # <-"),
              {"nodes[1].key_file", "is also the key_file of node \"primary\"",
               "give each node its own key file"});
}

constexpr char kKeyA[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
constexpr char kKeyB[] = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

TEST_F(ConfigTest, PublicKeysAreEmptyOrFortyZ85Characters) {
  EXPECT_OK(LoadText(
      With({{"key_file: \"keys/primary.key\"",
             absl::StrCat("key_file: \"keys/primary.key\"\n  public_key: \"", kKeyA, "\"")},
            {"key_file: \"keys/backup.key\"",
             absl::StrCat("key_file: \"keys/backup.key\"\n  public_key: \"", kKeyB, "\"")}})));
  ExpectError(With("key_file: \"keys/backup.key\"",
                   "key_file: \"keys/backup.key\"\n  public_key: \"abc\"  # <-"),
              {"nodes[1].public_key: public_key is not 40 Z85 characters (3 characters)",
               "paste the public key that rdfcom keygen printed"});
  ExpectError(
      With("key_file: \"keys/backup.key\"",
           "key_file: \"keys/backup.key\"\n  public_key: \"" + std::string(39, 'a') + "~\"  # <-"),
      {"nodes[1].public_key: public_key is not 40 Z85 characters (40 characters)"});
}

TEST_F(ConfigTest, SamePublicKeyOnBothNodes) {
  std::string key(kKeyA);
  ExpectError(With({{"key_file: \"keys/primary.key\"",
                     "key_file: \"keys/primary.key\"\n  public_key: \"" + key + "\""},
                    {"key_file: \"keys/backup.key\"",
                     "key_file: \"keys/backup.key\"\n  public_key: \"" + key + "\"  # <-"}}),
              {"nodes[1].public_key: public_key is also the public key of node \"primary\"",
               "run rdfcom keygen for each node"});
}

TEST_F(ConfigTest, InvalidVolumeName) {
  ExpectError(With("name: \"$DATA02\"", "name: \"DATA02\"  # <-"),
              {"volumes[1].name: invalid volume name \"DATA02\"", "e.g. \"$DATA01\""});
  ExpectError(With("name: \"$DATA02\"", "name: \"$D2345678901234567\"  # <-"),
              {"invalid volume name"});
  ExpectError(With("name: \"$DATA02\"", "name: \"$2DATA\"  # <-"), {"invalid volume name"});
}

TEST_F(ConfigTest, LongestVolumeNameIsFine) {
  EXPECT_OK(LoadText(With("name: \"$DATA02\"", "name: \"$D234567890123456\"")));
}

TEST_F(ConfigTest, DuplicateVolumeIgnoringCase) {
  ExpectError(With("name: \"$DATA02\"", "name: \"$data01\"  # <-"),
              {"volumes[1].name: duplicate volume \"$data01\" (also volumes[0], line 22",
               "rename one of them"});
}

TEST_F(ConfigTest, NoProtectedVolume) {
  ExpectError(With({{"name: \"$DATA01\"", "name: \"$DATA01\" unprotected: true"},
                    {"volumes {\n  name: \"$DATA02\"",
                     "volumes {  # <-\n  name: \"$DATA02\" unprotected: true"}}),
              {"volumes: no protected volume", "without unprotected: true"});
}

TEST_F(ConfigTest, MissingFileName) {
  ExpectError(With("files { name: \"ORDERS\" }", "files { unprotected: true }  # <-"),
              {"volumes[1].files[0].name: missing file name", "set name"});
}

TEST_F(ConfigTest, ReservedFileName) {
  ExpectError(With("files { name: \"ORDERS\" }", "files { name: \"__applied\" }  # <-"),
              {"volumes[1].files[0].name", "reserved for bookkeeping", "rename the file"});
}

TEST_F(ConfigTest, DuplicateFileInVolume) {
  ExpectError(With("files { name: \"ORDERS\" }",
                   "files { name: \"ORDERS\" }\n  files { name: \"ORDERS\" }  # <-"),
              {"volumes[1].files[1].name: duplicate file \"ORDERS\" in volume $DATA02 "
               "(also volumes[1].files[0], line 28)",
               "remove or rename one of them"});
}

TEST_F(ConfigTest, SameFileNameInTwoVolumesIsFine) {
  EXPECT_OK(LoadText(With("files { name: \"ORDERS\" }", "files { name: \"LOAD\" }")));
}

TEST_F(ConfigTest, StarOnlyAtTheEndOfAPattern) {
  ExpectError(With("files { name: \"ORDERS\" }",
                   "files { name: \"ORDERS\" }\n  include: \"ORD*\"\n  exclude: \"A*B\"  # <-"),
              {"volumes[1].exclude[0]: pattern \"A*B\" has '*' before its end",
               "'*' may only end a pattern"});
}

TEST_F(ConfigTest, EmptyPattern) {
  ExpectError(
      With("files { name: \"ORDERS\" }", "files { name: \"ORDERS\" }\n  include: \"\"  # <-"),
      {"volumes[1].include[0]: empty pattern"});
}

TEST_F(ConfigTest, VolumeMapBytesBelowMinimum) {
  ExpectError(
      With("files { name: \"ORDERS\" }", "files { name: \"ORDERS\" }\n  map_bytes: 4096  # <-"),
      {"volumes[1].map_bytes: map_bytes 4096 is below the minimum 1048576",
       "remove it to use lmdb.map_bytes"});
}

TEST_F(ConfigTest, SegmentBelowMinimum) {
  for (const char* field : {"audit_segment_bytes", "image_segment_bytes", "event_segment_bytes"}) {
    ExpectError(absl::StrCat(kValid, "trail {\n  ", field, ": 1000  # <-\n}\n"),
                {absl::StrCat("trail.", field, ": ", field, " 1000 is below the minimum 65536"),
                 "set at least 65536, or remove it for the default"});
  }
}

TEST_F(ConfigTest, LmdbMapBelowMinimum) {
  ExpectError(absl::StrCat(kValid, "lmdb { map_bytes: 65536 }  # <-\n"),
              {"lmdb.map_bytes: map_bytes 65536 is below the minimum 1048576"});
}

TEST_F(ConfigTest, RetentionSmallerThanASegment) {
  ExpectError(absl::StrCat(kValid, "tmf { audit_retention_bytes: 1048576 }  # <-\n"),
              {"tmf.audit_retention_bytes", "smaller than one audit segment (67108864 bytes)",
               "raise tmf.audit_retention_bytes or lower trail.audit_segment_bytes"});
}

TEST_F(ConfigTest, ExtractorBatchLargerThanReceiverMessage) {
  ExpectError(absl::StrCat(kValid, "extractor {\n  batch_bytes: 8388608  # <-\n}\n"),
              {"extractor.batch_bytes", "exceeds receiver.max_message_bytes 4194304",
               "lower extractor.batch_bytes or raise receiver.max_message_bytes"});
}

TEST_F(ConfigTest, ExtractorBatchWithNoRoomForTheEnvelope) {
  ExpectError(absl::StrCat(kValid, "extractor {\n  batch_bytes: 4194304  # <-\n}\n"),
              {"extractor.batch_bytes", "leaves no room for the message envelope (4096 bytes)",
               "raise receiver.max_message_bytes (to at least batch_bytes + 4096)"});
}

TEST_F(ConfigTest, ExtractorBatchBelowTheMinimum) {
  ExpectError(absl::StrCat(kValid, "extractor {\n  batch_bytes: 100  # <-\n}\n"),
              {"extractor.batch_bytes: batch_bytes 100 is below the minimum 4096",
               "set at least 4096"});
}

TEST_F(ConfigTest, MaxTxnBytesAboveTheLargestTrailRecord) {
  ExpectError(absl::StrCat(kValid, "tmf { max_txn_bytes: 536870912 }  # <-\n"),
              {"tmf.max_txn_bytes", "exceeds the largest trail record (268435456 bytes)",
               "set tmf.max_txn_bytes to at most 268435456"});
}

TEST_F(ConfigTest, ImageMemoryBelowTheMinimum) {
  ExpectError(absl::StrCat(kValid, "tmf { image_memory_bytes: 4096 }  # <-\n"),
              {"tmf.image_memory_bytes", "is below the minimum 1048576",
               "set image_memory_bytes to 1048576 or more"});
}

TEST_F(ConfigTest, UnknownEnumNumber) {
  ExpectError(absl::StrCat(kValid, "updater { missing_key: 7 }  # <-\n"),
              {"updater.missing_key", "use one of SKIP, STOP"});
}

TEST_F(ConfigTest, RetainCountOfOne) {
  ExpectError(absl::StrCat(kValid, "purger { retain_count: 1 }  # <-\n"),
              {"purger.retain_count: retain_count 1 is below the minimum 2",
               "set retain_count: 2 or more"});
}

TEST_F(ConfigTest, CheckpointIntervalOutOfRange) {
  ExpectError(absl::StrCat(kValid, "updater { checkpoint_ms: 5 }  # <-\n"),
              {"updater.checkpoint_ms: checkpoint_ms 5 is outside 10..60000",
               "set checkpoint_ms within that range"});
}

TEST_F(ConfigTest, CheckpointCopyIntervalOutOfRange) {
  ExpectError(absl::StrCat(kValid, "updater { checkpoint_copy_ms: 999 }  # <-\n"),
              {"updater.checkpoint_copy_ms: checkpoint_copy_ms 999 is outside 1000..600000",
               "set checkpoint_copy_ms within that range"});
}

TEST_F(ConfigTest, TakeoverRetryOutOfRange) {
  ExpectError(absl::StrCat(kValid, "updater { takeover_retry_ms: 50 }  # <-\n"),
              {"updater.takeover_retry_ms: takeover_retry_ms 50 is outside 100..3600000",
               "set takeover_retry_ms within that range"});
}

TEST_F(ConfigTest, UnknownMinSeverity) {
  ExpectError(absl::StrCat(kValid, "notify { min_severity: \"error\" }  # <-\n"),
              {"notify.min_severity: unknown severity \"error\"",
               "use \"WARNING\", \"ERROR\" or \"CRITICAL\""});
}

TEST_F(ConfigTest, EveryProblemIsReportedInLineOrder) {
  auto c = LoadText(With({{"version: 1", "version: 3"}, {"role: BACKUP", "role: PRIMARY"}}));
  ASSERT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("\n")));
  std::vector<std::string> lines = absl::StrSplit(c.status().message(), '\n');
  EXPECT_THAT(lines[0], HasSubstr("bad.textproto:1:1: version"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[1], HasSubstr("bad.textproto:12:1: nodes: no BACKUP node"));
  EXPECT_THAT(lines[2], HasSubstr("bad.textproto:14:3: nodes[1].role: a second PRIMARY"));
}

// --- IsProtected --------------------------------------------------------------

class IsProtectedTest : public ConfigTest {
 protected:
  void SetUp() override {
    std::string text = absl::StrCat(kValid, R"cfg(
      volumes { name: "$SCRATCH" unprotected: true }
      volumes {
        name: "$SALES"
        files { name: "TEMP" unprotected: true }
        include: "ORD*"
        include: "CUSTOMER"
        include: "TEMP"
        exclude: "ORDTMP*"
      }
    )cfg");
    auto c = LoadText(text, "rdf.textproto");
    ASSERT_OK(c);
    config_ = *std::move(c);
  }
  Config config_;
};

TEST_F(IsProtectedTest, ProtectedVolumeShipsEveryFileWithoutPatterns) {
  EXPECT_TRUE(config_.IsProtected("$DATA01", "LOAD"));
  EXPECT_TRUE(config_.IsProtected("$DATA01", "UNDECLARED"));
}

TEST_F(IsProtectedTest, UnprotectedOrUnknownVolumeShipsNothing) {
  EXPECT_FALSE(config_.IsProtected("$SCRATCH", "LOAD"));
  EXPECT_FALSE(config_.IsProtected("$NOWHERE", "LOAD"));
  EXPECT_FALSE(config_.IsProtected("$data01", "LOAD"));
}

TEST_F(IsProtectedTest, BookkeepingFilesAreNeverShipped) {
  EXPECT_FALSE(config_.IsProtected("$DATA01", "__restart"));
}

TEST_F(IsProtectedTest, IncludeThenExclude) {
  EXPECT_TRUE(config_.IsProtected("$SALES", "ORDERS"));
  EXPECT_TRUE(config_.IsProtected("$SALES", "ORD"));
  EXPECT_TRUE(config_.IsProtected("$SALES", "CUSTOMER"));
  EXPECT_FALSE(config_.IsProtected("$SALES", "CUSTOMERS"));  // no '*': exact
  EXPECT_FALSE(config_.IsProtected("$SALES", "INVOICE"));    // not included
  EXPECT_FALSE(config_.IsProtected("$SALES", "ORDTMP1"));    // excluded
}

TEST_F(IsProtectedTest, UnprotectedFileWinsOverInclude) {
  EXPECT_FALSE(config_.IsProtected("$SALES", "TEMP"));
}

TEST_F(IsProtectedTest, ProtectedVolumesInFileOrder) {
  std::vector<std::string> names;
  for (const auto* v : config_.ProtectedVolumes()) names.push_back(v->name());
  EXPECT_THAT(names, ElementsAre("$DATA01", "$DATA02", "$SALES"));
}

// --- node selection and layout ------------------------------------------------

TEST_F(ConfigTest, SelectNodeByNameOrRole) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(kValid));
  ASSERT_OK_AND_ASSIGN(const proto::NodeConfig* n, SelectNode(c, "backup", proto::PRIMARY));
  EXPECT_EQ(n->name(), "backup");
  ASSERT_OK_AND_ASSIGN(n, SelectNode(c, "", proto::PRIMARY));
  EXPECT_EQ(n->name(), "primary");
  EXPECT_THAT(SelectNode(c, "bakup", proto::PRIMARY),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("no node named \"bakup\""),
                             HasSubstr("known nodes: \"primary\", \"backup\""))));
  EXPECT_THAT(SelectNode(c, "", proto::NODE_ROLE_UNSPECIFIED),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("pass --node")));
}

TEST_F(ConfigTest, DataDirectoryLayout) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(kValid));
  const proto::NodeConfig& b = *c.FindNode("backup");
  const std::string d = dir_ + "/backup";
  EXPECT_EQ(VolumeDirName("$DATA01"), "DATA01");
  EXPECT_EQ(VolumeDir(b, "$DATA01"), d + "/volumes/DATA01");
  EXPECT_EQ(AuditDir(b), d + "/audit");
  EXPECT_EQ(ImageTrailDir(b), d + "/imagetrails");
  EXPECT_EQ(TakeoverDir(b), d + "/takeover");
  EXPECT_EQ(EventDir(b), d + "/events");
  EXPECT_EQ(LockDir(b), d + "/locks");
  EXPECT_THAT(VolumeDir(b, "$DATA01"), Not(HasSubstr("$")));
}

// --- monitor and operators (SystemConfig fields 13, 14) -------------------

constexpr char kOperatorKey[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

TEST_F(ConfigTest, HungSupervisionDefaultsAndZeroMeansOff) {
  ASSERT_OK_AND_ASSIGN(Config c, LoadText(kValid));
  EXPECT_EQ(c.proto.monitor().hung_after_ms(), kDefaultHungAfterMs);
  EXPECT_EQ(c.proto.monitor().hung_restart_after_ms(), kDefaultHungRestartAfterMs);
  ASSERT_OK_AND_ASSIGN(
      c, LoadText(absl::StrCat(kValid, "monitor { hung_after_ms: 0 }\n")));
  EXPECT_EQ(c.proto.monitor().hung_after_ms(), 0u);
  ASSERT_OK_AND_ASSIGN(
      c, LoadText(absl::StrCat(kValid, "monitor { hung_restart_after_ms: 0 }\n")));
  EXPECT_EQ(c.proto.monitor().hung_after_ms(), kDefaultHungAfterMs);
  EXPECT_EQ(c.proto.monitor().hung_restart_after_ms(), 0u);
}

TEST_F(ConfigTest, HungAfterBelowTheMinimumIsAnError) {
  ExpectError(absl::StrCat(kValid, "monitor {\n  hung_after_ms: 500  # <-\n}\n"),
              {"monitor.hung_after_ms: hung_after_ms 500 is below the minimum 3000",
               "set hung_after_ms to 3000 or more"});
}

TEST_F(ConfigTest, HungRestartNotAboveHungAfterIsAnError) {
  ExpectError(absl::StrCat(kValid,
                           "monitor {\n  hung_restart_after_ms: 5000  # <-\n}\n"),
              {"monitor.hung_restart_after_ms: hung_restart_after_ms 5000 is not above "
               "hung_after_ms 10000"});
}

TEST_F(ConfigTest, OperatorKeyFileIsMadeAbsolute) {
  ASSERT_OK_AND_ASSIGN(
      Config c, LoadText(absl::StrCat(kValid, "operators { name: \"alice\" public_key: \"",
                                      kOperatorKey, "\" key_file: \"keys/alice.key\" }\n")));
  ASSERT_EQ(c.proto.operators_size(), 1);
  EXPECT_EQ(c.proto.operators(0).key_file(), dir_ + "/keys/alice.key");
}

TEST_F(ConfigTest, OperatorWithoutAValidKeyIsAnError) {
  ExpectError(absl::StrCat(kValid, "operators {\n  name: \"alice\"\n  public_key: \"short\"  # <-\n}\n"),
              {"operators[0].public_key: public_key is not 40 Z85 characters",
               "rdfcom keygen --operator"});
}

TEST_F(ConfigTest, OperatorNamedTwiceIsAnError) {
  ExpectError(absl::StrCat(kValid, "operators { name: \"alice\" public_key: \"", kOperatorKey,
                           "\" }\noperators {\n  name: \"alice\"  # <-\n  public_key: \"",
                           kOperatorKey, "\"\n}\n"),
              {"operators[1].name: operator \"alice\" twice",
               "operators[1].public_key: public_key is also"});
}

}  // namespace
}  // namespace rdf::config
