// The updater in-process, on a temporary folder: image trails written by
// trail::TrailWriter and save points published as the receiver publishes
// them (receiver/image_trails.h), and a real Updater on a real LMDB volume.
// A test point callback (common/base/test_point.h) stops the updater, or
// throws out of it as a kill would, right after a chosen LMDB commit; the
// Updater is then destroyed and opened again, as a restarted process.
// (tests/process/updater_test.py and takeover_test.py do the same with
// SIGKILL and the real binaries.)
#include "updater/updater.h"

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "audit.pb.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/base/shared_blob.h"
#include "common/base/test_point.h"
#include "common/config/config.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/state/audit_record.h"
#include "common/state/save_point.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "common/trail/writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::updater {
namespace {

using ::rdf::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using test_point_internal::ClearCallbacks;
using test_point_internal::SetCallback;

using Rows = std::map<std::string, std::string>;  // the file "F": key -> value

// Thrown by a test point callback: the updater is left there, as by a kill.
struct Killed {};

// A fake clock whose sleeps first run a hook: the updater sleeps when it is
// STOPPED, WAITING or RETRYING, and nowhere else.
class TestClock : public FakeClock {
 public:
  void SleepMicros(int64_t micros) override {
    if (on_sleep) on_sleep();
    FakeClock::SleepMicros(micros);
  }
  std::function<void()> on_sleep;
};

constexpr char kConfig[] = R"(
  system: "t"
  nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
  nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b" key_file: "b.key" }
  volumes { name: "$DATA01" files { name: "F" } }
  updater { checkpoint_mode: IN_PLACE }
)";

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::rdf::testing::MakeTestDir("updater_test");
    UseConfig("batch_records: 2");
    const std::string trails = config::ImageTrailDir(*node_);
    std::filesystem::create_directories(trails);
    for (auto [writer, name] : {Trail{&volume_trail_, "DATA01"}, Trail{&mit_, kMasterImageTrail}}) {
      trail::WriterOptions o;
      o.dir = trails;
      o.name = name;
      o.segment_bytes = 1 << 20;
      o.clock = &clock_;
      ASSERT_OK_AND_ASSIGN(*writer, trail::TrailWriter::Open(o));
    }
    ASSERT_OK_AND_ASSIGN(shm_, SharedBlob::Create(SavePointShmPath(trails)));
    Ddl("F");
  }
  void TearDown() override {
    ClearCallbacks();
    updater_.reset();
    ::rdf::testing::RemoveTestDir(dir_);
  }

  // kConfig with `updater_fields` added to its updater block.
  void UseConfig(const std::string& updater_fields) {
    std::string text = kConfig;
    text.insert(text.find("checkpoint_mode"), updater_fields + " ");
    ASSERT_OK_AND_ASSIGN(config::Config c, config::Parse(text, dir_ + "/rdf.textproto"));
    cfg_ = std::make_unique<config::Config>(std::move(c));
    node_ = cfg_->FindNode("backup");
  }

  // --- The receiver's side: the volume's trail, the MIT, save points.
  using Trail = std::pair<std::unique_ptr<trail::TrailWriter>*, const char*>;
  void Ddl(const std::string& file) {
    proto::AuditRecord r = Record(proto::DDL, 0);
    r.set_file(file);
    r.set_ddl(proto::CREATE_FILE);
    Append(r);
  }
  void Insert(uint64_t txid, const std::string& key, const std::string& value) {
    Append(Data(txid, proto::INSERT, key, std::nullopt, value));
  }
  void Update(uint64_t txid, const std::string& key, const std::string& before,
              const std::string& after) {
    Append(Data(txid, proto::UPDATE, key, before, after));
  }
  void Delete(uint64_t txid, const std::string& key, const std::string& before) {
    Append(Data(txid, proto::DELETE, key, before, std::nullopt));
  }
  void Commit(uint64_t txid) {
    proto::AuditRecord r = Record(proto::COMMIT, txid);
    r.clear_volume();
    Append(r);
    open_.erase(txid);
  }
  // Syncs both trails and publishes a save point at the newest ASN, as
  // ImageTrails::SavePoint does; `epoch` makes it a takeover's final one.
  void SavePoint(uint64_t epoch = 0) {
    proto::SavePoint sp;
    sp.set_version(kSavePointVersion);
    sp.set_asn(asn_);
    sp.set_audit_end_asn(asn_);
    sp.set_takeover_epoch(epoch);
    sp.set_max_txid(max_txid_);
    for (auto [writer, name] : {Trail{&mit_, kMasterImageTrail}, Trail{&volume_trail_, "DATA01"}}) {
      AddTrailEnd(&sp, name, (*writer)->appended_end());
    }
    for (const auto& [txid, first_asn] : open_) AddOpenTransaction(&sp, txid, first_asn);
    trail::Position frame_start;
    ASSERT_OK(mit_->Append(std::max<uint64_t>(asn_, 1), kSavePointRecordType,
                           sp.SerializeAsString(), 0, &frame_start));
    ASSERT_OK(volume_trail_->Sync());
    ASSERT_OK(mit_->Sync());
    ASSERT_OK(shm_->Write(PublishedCopy(sp, frame_start).SerializeAsString()));
  }
  // Issues takeover `epoch` and fixes the final save point.
  void IssueTakeover(uint64_t epoch = 1) {
    ASSERT_OK(WriteTakeoverEpoch(FileSystem::Default(), *node_, {epoch, 1}));
    SavePoint(epoch);
  }

  // --- The updater's side.
  void Open() {
    updater_.reset();
    UpdaterOptions o;
    o.config = cfg_.get();
    o.node = "backup";
    o.volume = "$DATA01";
    o.clock = &clock_;
    ASSERT_OK_AND_ASSIGN(updater_, Updater::Open(o));
  }
  // Runs until the `n`-th commit from now, which stops it: a clean stop.
  void RunCommits(int n) {
    OnCommit("updater.after_commit", n, [this] { stop_ = true; });
    stop_ = false;
    ASSERT_OK(updater_->Run(&stop_));
  }
  // Runs until right after the `n`-th commit at `point` from now, and
  // destroys the updater there.
  void KillAfter(int n, const std::string& point = "updater.after_commit") {
    OnCommit(point, n, [] { throw Killed{}; });
    stop_ = false;
    EXPECT_THROW(updater_->Run(&stop_).IgnoreError(), Killed);
    updater_.reset();
  }
  // Takeover, with `then` (if any) run at the `n`-th undo commit from now.
  absl::StatusOr<proto::VolumeTakeoverResult> Takeover(int n = 0,
                                                       std::function<void()> then = nullptr) {
    if (then) {
      OnCommit("updater.after_undo_commit", n, std::move(then));
    } else {
      ClearCallbacks();
    }
    stop_ = false;
    return updater_->Takeover(&stop_);
  }
  // From now until the next OnCommit, `then` runs at the `n`-th time the
  // updater reaches `point`.
  void OnCommit(const std::string& point, int n, std::function<void()> then) {
    ClearCallbacks();
    auto seen = std::make_shared<int>(0);
    SetCallback(point, [seen, n, then] {
      if (++*seen == n) then();
    });
  }

  // What the volume holds, read while no updater has it open.
  Rows Volume() {
    Rows rows;
    ReadVolume("F", [&](lmdb::ReadTxn* txn, MDB_dbi f) {
      MDB_cursor* cur = nullptr;
      ASSERT_EQ(mdb_cursor_open(txn->txn(), f, &cur), 0);
      MDB_val k, v;
      for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
           rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        rows.emplace(lmdb::View(k), lmdb::View(v));
      }
      mdb_cursor_close(cur);
    });
    return rows;
  }
  std::optional<uint64_t> Meta(const char* key) {
    std::optional<uint64_t> value;
    ReadVolume(lmdb::kMetaDb, [&](lmdb::ReadTxn* txn, MDB_dbi meta) {
      ASSERT_OK_AND_ASSIGN(value, lmdb::GetU64(txn, meta, key));
    });
    return value;
  }
  // Runs `read` on database `db` of the volume, if the volume exists.
  void ReadVolume(const char* db, const std::function<void(lmdb::ReadTxn*, MDB_dbi)>& read) {
    ASSERT_EQ(updater_, nullptr) << "LMDB: one environment per volume per process";
    auto env = lmdb::Env::OpenReadOnly(config::VolumeDir(*node_, "$DATA01"), 16);
    if (absl::IsNotFound(env.status())) return;  // no updater opened it yet
    ASSERT_OK(env.status());
    ASSERT_OK_AND_ASSIGN(MDB_dbi dbi, (*env)->OpenDb(db, false));  // before the transaction
    ASSERT_OK_AND_ASSIGN(auto txn, lmdb::ReadTxn::Begin(env->get()));
    read(txn.get(), dbi);
  }
  // The restart point stored in the volume, "segment:offset".
  std::string RestartPoint() {
    return absl::StrCat(Meta(kMetaRestartSegment).value_or(0), ":",
                        Meta(kMetaRestartOffset).value_or(0));
  }
  std::string TrailEnd() {
    const trail::End e = volume_trail_->durable_end();
    return absl::StrCat(e.pos.segment, ":", e.pos.offset);
  }
  // The exception log's lines (error 10/11).
  std::vector<std::string> Exceptions() {
    auto text = ReadFileToString(FileSystem::Default(),
                                 config::ExceptionDir(*node_) + "/DATA01.jsonl");
    if (!text.ok()) return {};
    return absl::StrSplit(*text, '\n', absl::SkipEmpty());
  }
  proto::ProcessStatus Status() {
    auto st = ReadStatus(node_->data_dir(), "updater-DATA01");
    EXPECT_OK(st.status());
    return st.value_or(proto::ProcessStatus());
  }

  std::string dir_;
  std::unique_ptr<config::Config> cfg_;
  const proto::NodeConfig* node_ = nullptr;
  TestClock clock_;
  std::unique_ptr<trail::TrailWriter> volume_trail_, mit_;
  std::unique_ptr<SharedBlob> shm_;
  std::unique_ptr<Updater> updater_;
  std::atomic<bool> stop_{false};

 private:
  proto::AuditRecord Record(proto::RecordType type, uint64_t txid) {
    proto::AuditRecord r;
    r.set_version(kAuditRecordVersion);
    r.set_type(type);
    r.set_txid(txid);
    r.set_time_us(1'700'000'000'000'000 + static_cast<int64_t>(asn_));
    r.set_volume("$DATA01");
    max_txid_ = std::max(max_txid_, txid);
    return r;
  }
  proto::AuditRecord Data(uint64_t txid, proto::DataOp op, const std::string& key,
                          std::optional<std::string> before, std::optional<std::string> after) {
    proto::AuditRecord r = Record(proto::DATA, txid);
    r.set_file("F");
    r.set_op(op);
    r.set_key(key);
    if (before) r.set_before(*before);
    if (after) r.set_after(*after);
    open_.emplace(txid, asn_ + 1);  // its first ASN, if it is new
    return r;
  }
  // DATA and DDL go to the volume's trail, outcomes to the MIT.
  void Append(const proto::AuditRecord& r) {
    trail::TrailWriter* w = r.type() == proto::COMMIT ? mit_.get() : volume_trail_.get();
    ASSERT_OK(w->Append(++asn_, static_cast<uint8_t>(r.type()), EncodeAuditPayload(r),
                        r.time_us()));
  }

  uint64_t asn_ = 0;
  uint64_t max_txid_ = 0;
  std::map<uint64_t, uint64_t> open_;  // txid -> first ASN
};

TEST_F(UpdaterTest, RedoAppliesEachRecordOnceWhenKilledAfterEveryCommit) {
  Rows expected;
  for (uint64_t tx = 1; tx <= 5; ++tx) {
    Insert(tx, absl::StrCat("k", tx), absl::StrCat("v", tx));
    Commit(tx);
    expected[absl::StrCat("k", tx)] = absl::StrCat("v", tx);
  }
  SavePoint();
  int kills = 0;
  for (; RestartPoint() != TrailEnd(); ++kills) {
    ASSERT_THAT(Exceptions(), IsEmpty()) << "an insert applied twice, after kill " << kills;
    ASSERT_LT(kills, 10) << "no progress";
    Open();
    KillAfter(1);
  }
  EXPECT_EQ(kills, 4);  // the DDL, then 2 + 2 + 1 inserts: each applied once
  EXPECT_EQ(Volume(), expected);
  EXPECT_EQ(Meta(kMetaAppliedRecords), 6u);
  EXPECT_THAT(Exceptions(), IsEmpty());  // no insert met its own key
}

TEST_F(UpdaterTest, AReopenedUpdaterGoesOnFromItsRestartPoint) {
  Insert(1, "a", "1");
  Commit(1);
  SavePoint();
  Open();
  RunCommits(2);  // the DDL, then the insert
  updater_.reset();
  const std::string restart = RestartPoint();
  EXPECT_EQ(restart, TrailEnd());
  EXPECT_EQ(Meta(kMetaAppliedAsn), 2u);
  Insert(2, "b", "2");
  Commit(2);
  SavePoint();
  Open();
  RunCommits(1);
  EXPECT_EQ(Status().state(), "RUNNING");
  EXPECT_EQ(Status().records(), 1u);  // only "b": nothing before the restart point again
  updater_.reset();
  EXPECT_EQ(Volume(), (Rows{{"a", "1"}, {"b", "2"}}));
  EXPECT_EQ(Meta(kMetaAppliedRecords), 3u);
  EXPECT_THAT(Exceptions(), IsEmpty());
}

TEST_F(UpdaterTest, DuplicateKeyIsSkippedAndLoggedUnderSkip) {
  Insert(1, "a", "first");
  Commit(1);
  Insert(2, "a", "second");  // error 10
  Insert(2, "b", "2");
  Commit(2);
  SavePoint();
  Open();
  RunCommits(3);
  updater_.reset();
  EXPECT_EQ(Volume(), (Rows{{"a", "first"}, {"b", "2"}}));
  ASSERT_EQ(Exceptions().size(), 1u);
  EXPECT_THAT(Exceptions()[0], HasSubstr(R"("asn":4)"));
  EXPECT_THAT(Exceptions()[0], HasSubstr(R"("error":10)"));
  EXPECT_THAT(Exceptions()[0], HasSubstr(R"("action":"skipped")"));
}

TEST_F(UpdaterTest, DuplicateKeyStopsTheUpdaterUnderStop) {
  UseConfig("batch_records: 2 duplicate_key: STOP");
  Insert(1, "a", "first");
  Commit(1);
  Insert(2, "a", "second");  // error 10, in the same batch as the first "a"
  Insert(2, "b", "2");
  Commit(2);
  SavePoint();
  Open();
  clock_.on_sleep = [this] { stop_ = true; };  // it sleeps only once STOPPED
  ASSERT_OK(updater_->Run(&stop_));
  clock_.on_sleep = nullptr;
  EXPECT_EQ(Status().state(), "STOPPED");
  EXPECT_THAT(Status().last_error(), HasSubstr("error 10 at ASN 4 (F key a) under policy STOP"));
  updater_.reset();
  EXPECT_THAT(Volume(), IsEmpty());  // nothing of the stopped batch
  ASSERT_EQ(Exceptions().size(), 1u);
  EXPECT_THAT(Exceptions()[0], HasSubstr(R"("action":"stopped")"));
}

// Transaction 1 committed; 2 and 3 have no outcome when the test issues the
// takeover. Key "a" changes twice in transaction 2: only newest first gives
// its value back as transaction 1 left it.
class TakeoverTest : public UpdaterTest {
 protected:
  void SetUp() override {
    UpdaterTest::SetUp();
    UseConfig("batch_records: 1");  // one undo a commit
    Insert(1, "a", "1");
    Insert(1, "b", "1");
    Commit(1);
    Update(2, "a", "1", "2");
    Insert(3, "c", "3");
    Update(2, "a", "2", "22");
    Delete(3, "b", "1");
    Insert(2, "d", "2");
  }
  const Rows kCommitted{{"a", "1"}, {"b", "1"}};
};

TEST_F(TakeoverTest, UndoesOpenTransactionsNewestFirst) {
  IssueTakeover();
  Open();
  ASSERT_OK_AND_ASSIGN(proto::VolumeTakeoverResult result, Takeover());
  EXPECT_EQ(result.redo_records(), 8u);
  EXPECT_EQ(result.undone_records(), 5u);
  EXPECT_EQ(Status().state(), "TAKEOVER_COMPLETE");
  updater_.reset();
  EXPECT_EQ(Volume(), kCommitted);
  EXPECT_EQ(Meta(kMetaMaxTxid), 4u);  // a new primary starts above every txid received
  EXPECT_EQ(Meta(kMetaDoneEpoch), 1u);
}

TEST_F(TakeoverTest, UndoStoppedOrKilledMidwayResumesAndUndoesEachRecordOnce) {
  IssueTakeover();
  Open();
  // Stopped after the first undo: only the newest record is undone.
  EXPECT_THAT(Takeover(1, [this] { stop_ = true; }),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped during the undo pass")));
  updater_.reset();
  EXPECT_EQ(Volume(), (Rows{{"a", "22"}, {"c", "3"}}));  // "d" inserted last is gone
  EXPECT_EQ(Meta(kMetaUndoneRecords), 1u);
  // Killed right after the second undo of this run (the third in all).
  Open();
  EXPECT_THROW(Takeover(2, [] { throw Killed{}; }).IgnoreError(), Killed);
  updater_.reset();
  EXPECT_EQ(Volume(), (Rows{{"a", "2"}, {"b", "1"}, {"c", "3"}}));
  EXPECT_EQ(Meta(kMetaUndoneRecords), 3u);
  Open();
  ASSERT_OK_AND_ASSIGN(proto::VolumeTakeoverResult result, Takeover());
  EXPECT_EQ(result.undone_records(), 5u);
  updater_.reset();
  EXPECT_EQ(Volume(), kCommitted);
}

TEST_F(TakeoverTest, UndoLeavesAloneWhatRedoSkipped) {
  // Transaction 4 commits "e"; 5, open, inserts "e" again: REDO skips that
  // (error 10), and UNDO must not delete the "e" of transaction 4.
  Insert(4, "e", "4");
  Commit(4);
  Insert(5, "e", "5");
  IssueTakeover();
  Open();
  ASSERT_OK_AND_ASSIGN(proto::VolumeTakeoverResult result, Takeover());
  EXPECT_EQ(result.undone_records(), 5u);
  updater_.reset();
  EXPECT_EQ(Volume(), (Rows{{"a", "1"}, {"b", "1"}, {"e", "4"}}));
  EXPECT_EQ(Exceptions().size(), 1u);
}

}  // namespace
}  // namespace rdf::updater
