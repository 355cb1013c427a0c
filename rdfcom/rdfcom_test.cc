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
#include "common/base/clock.h"
#include "common/base/shared_blob.h"
#include "common/config/config.h"
#include "common/events/follower.h"
#include "common/events/log.h"
#include "common/net/curve_keys.h"
#include "common/state/audit_record.h"
#include "common/state/initial_copy.h"
#include "common/state/save_point.h"
#include "common/state/takeover_state.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/trail/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rdfcom/events_cmd.h"
#include "rdfcom/keygen.h"
#include "rdfcom/nodes.h"
#include "rdfcom/takeover.h"

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
    absl::Status status = RunKeygen({cfg_path_, node, force, ""}, s);
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

// --- takeover: after initialize (finding 18) and updaters that stall (21) ---

namespace takeover_cases {

proto::VolumeCopy Copy(const std::string& volume, uint64_t snapshot_asn,
                       std::vector<uint64_t> open_txids) {
  proto::VolumeCopy v;
  v.set_volume(volume);
  v.set_snapshot_asn(snapshot_asn);
  for (uint64_t t : open_txids) v.add_open_txids(t);
  return v;
}

proto::SavePoint FinalSavePoint(uint64_t asn, std::vector<std::pair<uint64_t, uint64_t>> open) {
  proto::SavePoint sp;
  sp.set_version(kSavePointVersion);
  sp.set_asn(asn);
  for (auto [txid, first] : open) {
    proto::OpenTransaction* t = sp.add_open();
    t->set_txid(txid);
    t->set_first_asn(first);
  }
  return sp;
}

// The review's sequence: T (id 7) writes $V at 50 and $W at 60 and commits
// at 120. $V's copy was taken before T was applied there (T open at its
// snapshot 110), $W's after (snapshot 150, T committed: in the copy). The
// primary is lost with the save point at 80: T's DATA arrived, not its
// COMMIT. Takeover would undo T on $V and leave it in $W.
TEST(TakeoverDecisionTest, TransactionWhoseCommitTheSnapshotsStraddleIsNamedHalfApplied) {
  proto::InitialCopy copy;
  *copy.add_volumes() = Copy("$V", 110, {7});
  *copy.add_volumes() = Copy("$W", 150, {});
  *copy.add_volumes() = Copy("$X", 70, {});  // at or below the save point: whole
  std::vector<proto::InconsistentVolume> bad =
      InconsistentVolumes(copy, FinalSavePoint(80, {{7, 50}, {9, 75}}));
  ASSERT_EQ(bad.size(), 2u);
  EXPECT_EQ(bad[0].volume(), "$V");
  EXPECT_EQ(bad[0].snapshot_asn(), 110u);
  EXPECT_EQ(bad[0].last_asn(), 80u);
  EXPECT_THAT(bad[0].half_applied_txids(), ElementsAre(9));  // 7 is open there: undone
  EXPECT_EQ(bad[1].volume(), "$W");
  EXPECT_THAT(bad[1].half_applied_txids(), ElementsAre(7, 9));
}

TEST(TakeoverDecisionTest, SavePointAtOrPastEverySnapshotIsConsistent) {
  proto::InitialCopy copy;
  *copy.add_volumes() = Copy("$V", 110, {7});
  *copy.add_volumes() = Copy("$W", 150, {});
  EXPECT_TRUE(InconsistentVolumes(copy, FinalSavePoint(150, {{7, 50}})).empty());
  EXPECT_EQ(InconsistentVolumes(copy, FinalSavePoint(149, {})).size(), 1u);
}

// A volume image trail with DATA records (asn, txid).
void WriteVolumeTrail(const std::string& dir, const std::vector<std::pair<uint64_t, uint64_t>>& recs) {
  trail::WriterOptions o;
  o.dir = dir;
  o.name = "DATA01";
  ASSERT_OK_AND_ASSIGN(auto w, trail::TrailWriter::Open(o));
  for (auto [asn, txid] : recs) {
    proto::AuditRecord r;
    r.set_version(1);
    r.set_asn(asn);
    r.set_txid(txid);
    r.set_type(proto::DATA);
    r.set_volume("$DATA01");
    r.set_file("LOAD");
    r.set_key(absl::StrCat(txid, ":", asn));
    r.set_after("v");
    ASSERT_OK(w->Append(asn, static_cast<uint8_t>(proto::DATA), EncodeAuditPayload(r), 1));
  }
  ASSERT_OK(w->Sync());
}

// Of the lost transactions that began below the snapshot, only those with
// records on the volume the copy holds are named half applied there.
TEST(TakeoverDecisionTest, HalfAppliedAreTheCandidatesWithRecordsInTheVolumeTrail) {
  const std::string dir = ::rdf::testing::MakeTestDir("takeover_trail_test");
  WriteVolumeTrail(dir, {{40, 5}, {50, 7}, {55, 3}, {60, 9}, {70, 7}, {90, 11}});
  // 12 has no record here; 11's only record is past the save point (80);
  // 5 and 3 are not candidates.
  ASSERT_OK_AND_ASSIGN(std::vector<uint64_t> found,
                       TransactionsWithDataIn(FileSystem::Default(), dir, "DATA01", 45, 80,
                                              {7, 9, 11, 12}));
  EXPECT_THAT(found, ElementsAre(7, 9));
  ASSERT_OK_AND_ASSIGN(found,
                       TransactionsWithDataIn(FileSystem::Default(), dir, "DATA01", 65, 80, {9}));
  EXPECT_THAT(found, ::testing::IsEmpty());
  ::rdf::testing::RemoveTestDir(dir);
}

proto::ProcessStatus UpdaterStatus(const std::string& state, uint64_t applied_asn,
                                   int64_t time_us, int64_t progress_age_ms,
                                   const std::string& error = "") {
  proto::ProcessStatus st;
  st.set_state(state);
  st.set_applied_asn(applied_asn);
  st.set_time_us(time_us);
  st.set_last_progress_age_ms(progress_age_ms);
  st.set_last_error(error);
  return st;
}

TEST(UpdaterProgressWatchTest, RetryingUpdaterIsStalledAfterTheLimitWithItsError) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  UpdaterProgressWatch w(absl::Seconds(5), t0);
  for (int i = 0; i <= 6; ++i) {
    const absl::Time now = t0 + absl::Seconds(i);
    proto::ProcessStatus st =
        UpdaterStatus("RETRYING", 40, absl::ToUnixMicros(now), 3000 + i * 1000, "checksum");
    w.Observe(now, &st);
  }
  EXPECT_TRUE(w.Stalled(t0 + absl::Seconds(6)));
  EXPECT_EQ(w.Cause(t0 + absl::Seconds(6)),
            "no progress for 6s (state RETRYING, applied ASN 40): checksum");
}

TEST(UpdaterProgressWatchTest, ApplyingOrUndoingUpdaterIsNotStalled) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  UpdaterProgressWatch w(absl::Seconds(5), t0);
  for (int i = 0; i <= 20; ++i) {
    const absl::Time now = t0 + absl::Seconds(i);
    // REDO moves the applied ASN; then UNDO batches only the progress time.
    proto::ProcessStatus st =
        i < 10 ? UpdaterStatus("TAKEOVER_REDO", 100 + i, absl::ToUnixMicros(now), 0)
               : UpdaterStatus("TAKEOVER_UNDO", 110, absl::ToUnixMicros(now), 200);
    w.Observe(now, &st);
    EXPECT_FALSE(w.Stalled(now)) << i;
  }
}

TEST(UpdaterProgressWatchTest, UpdaterThatPublishesNothingIsStalled) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  UpdaterProgressWatch w(absl::Seconds(5), t0);
  w.Observe(t0 + absl::Seconds(4), nullptr);
  EXPECT_FALSE(w.Stalled(t0 + absl::Seconds(4)));
  EXPECT_TRUE(w.Stalled(t0 + absl::Seconds(5)));
  EXPECT_EQ(w.Cause(t0 + absl::Seconds(5)), "no progress for 5s (no status published)");
}

}  // namespace takeover_cases

TEST_F(RdfcomTest, TakeoverRefusesDuringTheCatchUpAfterInitializeAndFencesNothing) {
  config::Config cfg = Load();
  const proto::NodeConfig& backup = *cfg.FindNode("backup");
  proto::InitialCopy copy;
  copy.set_version(kInitialCopyVersion);
  *copy.add_volumes() = takeover_cases::Copy("$DATA01", 500, {});
  ASSERT_OK(WriteInitialCopy(FileSystem::Default(), backup, copy));
  const std::string trails = config::ImageTrailDir(backup);
  fs::create_directories(trails);
  ASSERT_OK_AND_ASSIGN(auto blob, SharedBlob::Create(SavePointShmPath(trails)));
  ASSERT_OK(blob->Write(takeover_cases::FinalSavePoint(300, {}).SerializeAsString()));
  TakeoverOptions o;
  o.config = &cfg;
  EXPECT_THAT(RunTakeover(o).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("still catching up"), HasSubstr("$DATA01 (copy at ASN 500)"),
                             HasSubstr("--force"))));
  ASSERT_OK_AND_ASSIGN(std::optional<TakeoverEpoch> epoch,
                       ReadTakeoverEpoch(FileSystem::Default(), backup));
  EXPECT_FALSE(epoch.has_value());  // the receiver still accepts the primary
}

}  // namespace
}  // namespace rdf::rdfcom
