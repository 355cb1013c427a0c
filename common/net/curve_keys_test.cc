#include "common/net/curve_keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/config/config.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::curve {
namespace {

namespace fs = std::filesystem;
using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

// A two-node configuration with comments in awkward places: one node block
// has a public_key line (with a trailing comment) and one has none.
constexpr char kConfig[] = R"cfg(# Top comment with braces { } and "quotes".
version: 1
system: "test"  # nodes { name: "primary" } in a comment is not a block
nodes {
  # the primary
  name: "primary"   # keep this comment
  role: PRIMARY
  host: "127.0.0.1"
  data_dir: "primary"
  key_file: "keys/primary.key"
  public_key: ""    # rdfcom keygen fills it in
}
nodes {
	name: "backup"
	role: BACKUP
	host: "127.0.0.1"
	audit_port: 17420
	data_dir: "backup"
	key_file: "keys/backup.key"
}
volumes {
  name: "$DATA01"   # a name: field outside nodes
  files { name: "LOAD" }
}
)cfg";

class CurveKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("curve_keys_test");
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  KeyPair NewKeys() {
    absl::StatusOr<KeyPair> keys = GenerateKeyPair();
    EXPECT_OK(keys);
    return keys.ok() ? *keys : KeyPair{};
  }
  static void WriteText(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
  }
  static std::string ReadText(const std::string& path) {
    std::ostringstream s;
    s << std::ifstream(path).rdbuf();
    return s.str();
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st;
    EXPECT_EQ(stat(path.c_str(), &st), 0);
    return st.st_mode & 07777;
  }

  std::string dir_;
};

TEST_F(CurveKeysTest, GeneratedKeysAreZ85AndMatch) {
  KeyPair keys = NewKeys();
  EXPECT_TRUE(IsZ85Key(keys.public_key));
  EXPECT_TRUE(IsZ85Key(keys.secret_key));
  EXPECT_NE(keys.public_key, keys.secret_key);
  ASSERT_OK_AND_ASSIGN(std::string pub, PublicKeyFromSecret(keys.secret_key));
  EXPECT_EQ(pub, keys.public_key);
}

TEST_F(CurveKeysTest, IsZ85KeyRejectsWrongLengthAndAlphabet) {
  EXPECT_FALSE(IsZ85Key(""));
  EXPECT_FALSE(IsZ85Key(std::string(39, 'a')));
  EXPECT_FALSE(IsZ85Key(std::string(39, 'a') + " "));
  EXPECT_TRUE(IsZ85Key(std::string(40, '#')));
}

TEST_F(CurveKeysTest, KeyFileRoundTripsWithMode0600InNewFolders) {
  KeyPair keys = NewKeys();
  const std::string path = Path("keys/deeper/node.key");
  ASSERT_OK(WriteKeyFile(path, keys));
  EXPECT_EQ(ModeOf(path), 0600);
  ASSERT_OK_AND_ASSIGN(KeyPair read, ReadKeyFile(path));
  EXPECT_EQ(read.public_key, keys.public_key);
  EXPECT_EQ(read.secret_key, keys.secret_key);
}

TEST_F(CurveKeysTest, WriteRefusesToOverwriteWithoutForce) {
  const std::string path = Path("node.key");
  KeyPair first = NewKeys(), second = NewKeys();
  ASSERT_OK(WriteKeyFile(path, first));
  EXPECT_THAT(WriteKeyFile(path, second),
              StatusIs(absl::StatusCode::kAlreadyExists, AllOf(HasSubstr(path),
                                                               HasSubstr("--force"))));
  ASSERT_OK_AND_ASSIGN(KeyPair still, ReadKeyFile(path));
  EXPECT_EQ(still.secret_key, first.secret_key);
  ASSERT_OK(WriteKeyFile(path, second, /*force=*/true));
  ASSERT_OK_AND_ASSIGN(KeyPair now, ReadKeyFile(path));
  EXPECT_EQ(now.secret_key, second.secret_key);
  EXPECT_EQ(ModeOf(path), 0600);
  EXPECT_FALSE(fs::exists(absl::StrCat(path, ".tmp.", getpid())));
}

TEST_F(CurveKeysTest, WriteRefusesAMismatchedPair) {
  KeyPair a = NewKeys(), b = NewKeys();
  EXPECT_THAT(WriteKeyFile(Path("x.key"), {a.public_key, b.secret_key}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not belong")));
  EXPECT_FALSE(fs::exists(Path("x.key")));
}

TEST_F(CurveKeysTest, MissingFileIsNotFoundAndSaysKeygen) {
  EXPECT_THAT(ReadKeyFile(Path("none.key")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr(Path("none.key")), HasSubstr("rdfcom keygen"))));
}

TEST_F(CurveKeysTest, GroupReadableFileIsRefusedWithChmodAdvice) {
  const std::string path = Path("node.key");
  WriteText(path, FormatKeyFile(NewKeys()), 0640);
  EXPECT_THAT(ReadKeyFile(path),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       AllOf(HasSubstr("0640"), HasSubstr(absl::StrCat("chmod 600 ", path)))));
}

TEST_F(CurveKeysTest, OtherReadableFileIsRefused) {
  const std::string path = Path("node.key");
  WriteText(path, FormatKeyFile(NewKeys()), 0604);
  EXPECT_THAT(ReadKeyFile(path), StatusIs(absl::StatusCode::kPermissionDenied,
                                          HasSubstr("group or others")));
}

TEST_F(CurveKeysTest, MismatchedKeysInFileAreRefused) {
  KeyPair a = NewKeys(), b = NewKeys();
  const std::string path = Path("node.key");
  WriteText(path, FormatKeyFile({a.public_key, b.secret_key}), 0600);
  EXPECT_THAT(ReadKeyFile(path), StatusIs(absl::StatusCode::kInvalidArgument,
                                          AllOf(HasSubstr(path), HasSubstr("does not belong"))));
}

TEST_F(CurveKeysTest, MalformedContentNamesFileAndLine) {
  KeyPair k = NewKeys();
  const std::string path = Path("node.key");
  struct Case {
    std::string text;
    std::string expect;
  } cases[] = {
      {"# c\npublic-key\n", ":2: expected"},
      {absl::StrCat("public-key = short\n"), ":1: public-key is not 40 Z85"},
      {absl::StrCat("colour = blue\n"), ":1: unknown name 'colour'"},
      {absl::StrCat("public-key = ", k.public_key, "\n"), "no secret-key line"},
      {absl::StrCat("public-key = ", k.public_key, "\npublic-key = ", k.public_key, "\n"),
       ":2: public-key is given twice"},
  };
  for (const Case& c : cases) {
    WriteText(path, c.text, 0600);
    EXPECT_THAT(ReadKeyFile(path),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.expect)))
        << c.text;
  }
}

TEST_F(CurveKeysTest, CommentsBlankLinesAndSpacingAreAccepted) {
  KeyPair k = NewKeys();
  const std::string path = Path("node.key");
  WriteText(path,
            absl::StrCat("\n  # comment\n\nsecret-key=", k.secret_key, "  \n\tpublic-key =  ",
                         k.public_key, "\n"),
            0600);
  ASSERT_OK_AND_ASSIGN(KeyPair read, ReadKeyFile(path));
  EXPECT_EQ(read.public_key, k.public_key);
}

TEST_F(CurveKeysTest, SetPublicKeysKeepsEverythingElseAndLoads) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0640);
  KeyPair p = NewKeys(), b = NewKeys();
  ASSERT_OK(SetPublicKeysInConfig(cfg, {{"primary", p.public_key}, {"backup", b.public_key}}));
  std::string expected = absl::StrReplaceAll(
      kConfig, {{"  public_key: \"\"    #", absl::StrCat("  public_key: \"", p.public_key,
                                                         "\"    #")},
                {"\tname: \"backup\"\n", absl::StrCat("\tname: \"backup\"\n\tpublic_key: \"",
                                                      b.public_key, "\"\n")}});
  EXPECT_EQ(ReadText(cfg), expected);
  EXPECT_EQ(ModeOf(cfg), 0640);
  ASSERT_OK_AND_ASSIGN(config::Config loaded, config::Load(cfg));
  EXPECT_EQ(loaded.FindNode("primary")->public_key(), p.public_key);
  EXPECT_EQ(loaded.FindNode("backup")->public_key(), b.public_key);
}

TEST_F(CurveKeysTest, SetPublicKeysTwiceReplacesTheFirstKeys) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0644);
  KeyPair first = NewKeys(), second = NewKeys();
  ASSERT_OK(SetPublicKeysInConfig(cfg, {{"backup", first.public_key}}));
  ASSERT_OK(SetPublicKeysInConfig(cfg, {{"backup", second.public_key}}));
  const std::string text = ReadText(cfg);
  EXPECT_EQ(text.find(first.public_key), std::string::npos);
  ASSERT_OK_AND_ASSIGN(config::Config loaded, config::Load(cfg));
  EXPECT_EQ(loaded.FindNode("backup")->public_key(), second.public_key);
}

TEST_F(CurveKeysTest, NameSharingItsLineGetsTheKeyInline) {
  KeyPair k = NewKeys();
  ASSERT_OK_AND_ASSIGN(std::string out,
                       SetPublicKeysInText("nodes { name: \"n\" role: BACKUP }\n",
                                           {{"n", k.public_key}}));
  EXPECT_EQ(out, absl::StrCat("nodes { name: \"n\" public_key: \"", k.public_key,
                              "\" role: BACKUP }\n"));
}

TEST_F(CurveKeysTest, UnknownNodeIsNotFoundAndFileUntouched) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0644);
  EXPECT_THAT(SetPublicKeysInConfig(cfg, {{"tertiary", NewKeys().public_key}}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"tertiary\"")));
  EXPECT_EQ(ReadText(cfg), kConfig);
}

TEST_F(CurveKeysTest, SameKeyForBothNodesFailsToLoadAndFileUntouched) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0644);
  const std::string key = NewKeys().public_key;
  EXPECT_THAT(SetPublicKeysInConfig(cfg, {{"primary", key}, {"backup", key}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("left unchanged")));
  EXPECT_EQ(ReadText(cfg), kConfig);
}

TEST_F(CurveKeysTest, UnbalancedTextIsInvalidArgument) {
  EXPECT_THAT(SetPublicKeysInText("nodes { name: \"n\"\n", {{"n", NewKeys().public_key}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unbalanced")));
}

TEST_F(CurveKeysTest, PublicKeyOfPrefersConfigurationThenKeyFile) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0644);
  ASSERT_OK_AND_ASSIGN(config::Config c, config::Load(cfg));
  const proto::NodeConfig& backup = *c.FindNode("backup");
  EXPECT_THAT(PublicKeyOf(c, backup),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("\"backup\""), HasSubstr("keygen"))));
  KeyPair from_file = NewKeys();
  ASSERT_OK(WriteKeyFile(backup.key_file(), from_file));
  ASSERT_OK_AND_ASSIGN(std::string pub, PublicKeyOf(c, backup));
  EXPECT_EQ(pub, from_file.public_key);

  KeyPair configured = NewKeys();
  ASSERT_OK(SetPublicKeysInConfig(cfg, {{"backup", configured.public_key}}));
  ASSERT_OK_AND_ASSIGN(config::Config c2, config::Load(cfg));
  ASSERT_OK_AND_ASSIGN(pub, PublicKeyOf(c2, *c2.FindNode("backup")));
  EXPECT_EQ(pub, configured.public_key);
}

TEST_F(CurveKeysTest, ReadNodeKeyPairRefusesAStaleConfiguredKey) {
  const std::string cfg = Path("rdf.textproto");
  WriteText(cfg, kConfig, 0644);
  ASSERT_OK_AND_ASSIGN(config::Config c, config::Load(cfg));
  KeyPair keys = NewKeys();
  ASSERT_OK(WriteKeyFile(c.FindNode("backup")->key_file(), keys));
  ASSERT_OK(ReadNodeKeyPair(c, *c.FindNode("backup")).status());
  ASSERT_OK(SetPublicKeysInConfig(cfg, {{"backup", NewKeys().public_key}}));
  ASSERT_OK_AND_ASSIGN(config::Config stale, config::Load(cfg));
  EXPECT_THAT(ReadNodeKeyPair(stale, *stale.FindNode("backup")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(keys.public_key)));
}

}  // namespace
}  // namespace rdf::curve
