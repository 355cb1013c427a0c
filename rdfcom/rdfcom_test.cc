#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/curve_keys.h"
#include "common/event_log.h"
#include "common/event_follower.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdfcom/events_cmd.h"
#include "rdfcom/keygen.h"
#include "rdfcom/nodes.h"

namespace rdf::rdfcom {
namespace {

namespace fs = std::filesystem;
using ::rdf::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"cfg(# test system
system: "test"
nodes {
  name: "primary"   # the one with the audit
  role: PRIMARY
  host: "127.0.0.1"
  data_dir: "primary"
  key_file: "keys/primary.key"
}
nodes {
  name: "backup"
  role: BACKUP
  host: "127.0.0.1"
  audit_port: 17420
  data_dir: "backup"
  key_file: "keys/backup.key"
  public_key: ""
}
volumes { name: "$DATA01" }
)cfg";

class RdfcomTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("rdfcom_test");
    cfg_path_ = dir_ + "/rdf.textproto";
    std::ofstream(cfg_path_) << kConfig;
  }
  void TearDown() override { ::rdf::testing::RemoveTestDir(dir_); }

  config::Config Load() {
    absl::StatusOr<config::Config> c = config::Load(cfg_path_);
    EXPECT_OK(c);
    return c.ok() ? *c : config::Config{};
  }

  absl::Status Keygen(bool force, std::string* out, const std::string& node = "") {
    std::ostringstream s;
    absl::Status status = RunKeygen({cfg_path_, node, force}, s);
    *out = s.str();
    return status;
  }

  // Logs `texts` as events of `process` on `node`, 10 microseconds apart
  // from `start_us` on.
  void LogEvents(const proto::NodeConfig& node, const std::string& process, int64_t start_us,
                 const std::vector<std::string>& texts) {
    FakeClock clock(start_us);
    events::EventLogOptions o;
    o.dir = config::EventDir(node);
    o.node = node.name();
    o.process = process;
    o.clock = &clock;
    o.echo_stderr = false;
    ASSERT_OK_AND_ASSIGN(auto log, events::EventLog::Open(o));
    for (const std::string& t : texts) {
      log->Log(100, proto::INFO, t);
      clock.Advance(10);
    }
    ASSERT_OK(log->Flush());
  }

  static std::vector<std::string> Texts(const std::vector<proto::Event>& events) {
    std::vector<std::string> out;
    for (const proto::Event& e : events) out.push_back(e.text());
    return out;
  }

  std::string dir_;
  std::string cfg_path_;
};

TEST_F(RdfcomTest, KeygenWritesPrivateKeyFilesAndConfiguredKeysMatch) {
  std::string out;
  ASSERT_OK(Keygen(false, &out));
  config::Config c = Load();
  for (const char* name : {"primary", "backup"}) {
    const proto::NodeConfig& n = *c.FindNode(name);
    struct stat st;
    ASSERT_EQ(stat(n.key_file().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    ASSERT_OK_AND_ASSIGN(curve::KeyPair keys, curve::ReadNodeKeyPair(c, n));
    EXPECT_EQ(n.public_key(), keys.public_key);
    EXPECT_THAT(out, HasSubstr(absl::StrCat(name, ": wrote ", n.key_file())));
  }
  EXPECT_THAT(out, HasSubstr("updated " + c.path + ": public_key of primary, backup"));
  std::ifstream in(cfg_path_);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("name: \"primary\"   # the one with the audit\n  public_key: \""));
}

TEST_F(RdfcomTest, KeygenRefusesExistingKeyFilesWithoutForceAndChangesNothing) {
  std::string out;
  ASSERT_OK(Keygen(false, &out));
  const config::Config before = Load();
  EXPECT_THAT(Keygen(false, &out),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       AllOf(HasSubstr(before.FindNode("primary")->key_file()),
                             HasSubstr(before.FindNode("backup")->key_file()),
                             HasSubstr("--force"))));
  EXPECT_EQ(Load().FindNode("backup")->public_key(), before.FindNode("backup")->public_key());

  ASSERT_OK(Keygen(true, &out));
  config::Config after = Load();
  EXPECT_NE(after.FindNode("backup")->public_key(), before.FindNode("backup")->public_key());
  EXPECT_OK(curve::ReadNodeKeyPair(after, *after.FindNode("backup")).status());
}

TEST_F(RdfcomTest, KeygenForOneNodeLeavesTheOtherAlone) {
  std::string out;
  ASSERT_OK(Keygen(false, &out, "backup"));
  config::Config c = Load();
  EXPECT_TRUE(c.FindNode("primary")->public_key().empty());
  EXPECT_FALSE(fs::exists(c.FindNode("primary")->key_file()));
  EXPECT_FALSE(c.FindNode("backup")->public_key().empty());
}

TEST_F(RdfcomTest, KeygenWithBadConfigurationFailsNamingIt) {
  std::ofstream(cfg_path_) << "bogus: 1\n";
  std::string out;
  EXPECT_THAT(Keygen(false, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rdf.textproto:1")));
}

TEST_F(RdfcomTest, EventsOfBothNodesAreMergedByTime) {
  config::Config c = Load();
  LogEvents(*c.FindNode("primary"), "extractor", 1000, {"p1", "p2"});
  LogEvents(*c.FindNode("backup"), "receiver", 1005, {"b1"});  // between p1 and p2
  EventsOptions o;
  ASSERT_OK_AND_ASSIGN(o.nodes, SelectedNodes(c, ""));
  std::ostringstream out;
  ASSERT_OK(RunEvents(o, out));
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_THAT(lines[0], HasSubstr("primary extractor 100 INFO p1"));
  EXPECT_THAT(lines[1], HasSubstr("backup receiver 100 INFO b1"));
  EXPECT_THAT(lines[2], HasSubstr("primary extractor 100 INFO p2"));
}

TEST_F(RdfcomTest, EventsOfOneNodeAsJson) {
  config::Config c = Load();
  LogEvents(*c.FindNode("primary"), "extractor", 1000, {"p1"});
  LogEvents(*c.FindNode("backup"), "receiver", 1000, {"b1"});
  EventsOptions o;
  ASSERT_OK_AND_ASSIGN(o.nodes, SelectedNodes(c, "backup"));
  o.json = true;
  std::ostringstream out;
  ASSERT_OK(RunEvents(o, out));
  EXPECT_THAT(out.str(), AllOf(HasSubstr("\"node\":\"backup\""), HasSubstr("\"text\":\"b1\""),
                               ::testing::Not(HasSubstr("p1"))));
  EXPECT_THAT(SelectedNodes(c, "tertiary").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("tertiary")));
}

TEST_F(RdfcomTest, FollowerReturnsOnlyNewEventsEvenWithEqualTimes) {
  config::Config c = Load();
  const proto::NodeConfig& primary = *c.FindNode("primary");
  events::EventFollower follower(FileSystem::Default(), {config::EventDir(primary)}, {});
  LogEvents(primary, "a", 5000, {"one", "two"});
  ASSERT_OK_AND_ASSIGN(std::vector<proto::Event> first, follower.Next());
  EXPECT_THAT(Texts(first), ElementsAre("one", "two"));
  ASSERT_OK_AND_ASSIGN(std::vector<proto::Event> none, follower.Next());
  EXPECT_TRUE(none.empty());
  // Another process logs an event with the same time as "two", and one a
  // little earlier: both are new.
  LogEvents(primary, "b", 5000, {"late", "same-time"});  // 5000, 5010
  ASSERT_OK_AND_ASSIGN(std::vector<proto::Event> more, follower.Next());
  EXPECT_THAT(Texts(more), ElementsAre("late", "same-time"));
}

TEST_F(RdfcomTest, FollowStopsWhenAsked) {
  config::Config c = Load();
  LogEvents(*c.FindNode("primary"), "a", 1000, {"x"});
  EventsOptions o;
  ASSERT_OK_AND_ASSIGN(o.nodes, SelectedNodes(c, ""));
  o.poll_interval = absl::Milliseconds(10);
  int polls = 0;
  o.keep_following = [&] { return ++polls < 5; };
  std::ostringstream out;
  ASSERT_OK(RunEvents(o, out));
  const std::string text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);
  EXPECT_EQ(polls, 5);
}

}  // namespace
}  // namespace rdf::rdfcom
