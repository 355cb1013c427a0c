#include "common/base/boot_id.h"
#include "common/lmdb/checkpoint.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_system.h"
#include "common/testing/mem_file_system.h"
#include "common/testing/status_matchers.h"
#include "common/testing/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rdf::lmdb {
namespace {

using ::rdf::testing::StatusIs;
using Contents = std::map<std::string, std::string>;

constexpr absl::Duration kNever = absl::Hours(1);

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = rdf::testing::MakeTestDir("lmdb_checkpoint_test"); }
  void TearDown() override {
    cp_.reset();
    env_.reset();
    rdf::testing::RemoveTestDir(dir_);
  }

  std::string Vol(const std::string& name = "vol") { return JoinPath(dir_, name); }

  void Open(const std::string& dir) {
    ASSERT_OK_AND_ASSIGN(env_, Env::Open(dir, 64 << 20, 8, Durability::kDeferred));
    ASSERT_OK_AND_ASSIGN(dbi_, env_->OpenDb("F", true));
  }
  void Close() {
    cp_.reset();
    env_.reset();
  }

  // Keys k<from>..k<to - 1> set to `value`, `per_txn` keys per commit.
  void Write(int from, int to, const std::string& value, int per_txn = 100) {
    for (int i = from; i < to; i += per_txn) {
      ASSERT_OK_AND_ASSIGN(auto txn, WriteTxn::Begin(env_.get()));
      for (int k = i; k < std::min(to, i + per_txn); ++k) {
        ASSERT_OK(txn->Put(dbi_, absl::StrCat("k", k), value));
      }
      ASSERT_OK(txn->Commit());
      if (cp_) {
        ASSERT_OK(cp_->AfterCommit({1, static_cast<uint64_t>(k_), 0}));
      }
    }
  }

  Contents Read() {
    Contents out;
    auto txn = ReadTxn::Begin(env_.get());
    EXPECT_OK(txn.status());
    MDB_cursor* c;
    EXPECT_EQ(mdb_cursor_open((*txn)->txn(), dbi_, &c), 0);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
      out[std::string(View(k))] = std::string(View(v));
    }
    mdb_cursor_close(c);
    return out;
  }

  static Contents Expected(int n, const std::string& value) {
    Contents out;
    for (int k = 0; k < n; ++k) out[absl::StrCat("k", k)] = value;
    return out;
  }

  uint64_t LastTxnid() {
    MDB_envinfo info;
    mdb_env_info(env_->env(), &info);
    return info.me_last_txnid;
  }

  // The record as if written before a machine restart, for the data.mdb in
  // `dir` (a copy keeps the original's record but has its own inode).
  void PretendRestarted(const std::string& record_from, const std::string& dir) {
    ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(record_from));
    ASSERT_TRUE(rec.has_value());
    rec->set_boot_id("a boot before the crash");
    struct stat st;
    ASSERT_EQ(stat(JoinPath(dir, "data.mdb").c_str(), &st), 0);
    rec->set_device(st.st_dev);
    rec->set_inode(st.st_ino);
    WriteSlot(dir, 0, *rec);
    if (dir != record_from) return;
    proto::LmdbCheckpoint none;  // the other slot: an older record
    none.set_version(1);
    WriteSlot(dir, 1, none);
  }

  // Writes `r` into slot `slot` of the record file in `dir`.
  static void WriteSlot(const std::string& dir, uint32_t slot, const proto::LmdbCheckpoint& r) {
    const std::string path = CheckpointPath(dir);
    if (!FileSystem::Default()->Exists(path)) {
      ASSERT_OK(WriteFileAtomically(FileSystem::Default(), path,
                                    std::string(2 * kCheckpointSlotBytes, '\0')));
    }
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->OpenWritable(path, false));
    ASSERT_OK(f->Write(slot * kCheckpointSlotBytes, EncodeCheckpointSlot(r)));
    ASSERT_OK(f->Close());
  }

  // After a pretended machine restart, the volume (closed) recovers to
  // `checkpoint`, which holds `contents`.
  void ExpectRestoredAt(uint64_t checkpoint, const Contents& contents) {
    PretendRestarted(Vol(), Vol());
    ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
    EXPECT_TRUE(r.restored);
    EXPECT_EQ(r.record.txnid(), checkpoint);
    Open(Vol());
    EXPECT_EQ(LastTxnid(), checkpoint);
    EXPECT_EQ(Read(), contents);
  }

  // As ExpectRestoredAt, where `checkpoint` holds k0..k999 = "A"; then the
  // volume takes commits again.
  void ExpectReopensAt(uint64_t checkpoint) {
    ExpectRestoredAt(checkpoint, Expected(1000, "A"));
    Write(1000, 1100, "C");
    EXPECT_EQ(Read().size(), 1100u);
  }

  static uint64_t MetaLastPage(const proto::LmdbCheckpoint& rec) {
    uint64_t last;
    std::memcpy(&last, rec.meta_page().data() + 16 + 120, sizeof last);
    return last;
  }

  // A record of the writer at (segment, offset, asn).
  static proto::LmdbCheckpoint Record(uint64_t sequence, uint64_t segment, uint64_t offset,
                                      uint64_t asn) {
    proto::LmdbCheckpoint r;
    r.set_version(1);
    r.set_sequence(sequence);
    r.set_restart_segment(segment);
    r.set_restart_offset(offset);
    r.set_applied_asn(asn);
    return r;
  }

  std::string dir_;
  std::unique_ptr<Env> env_;
  std::unique_ptr<Checkpointer> cp_;
  MDB_dbi dbi_ = 0;
  int k_ = 7;
};

// Finding 16: a reader of the newer record (between the checkpointer's
// pwrite and its fdatasync) must not rely on it unless a power loss keeps it.
TEST_F(CheckpointTest, OldestRestorableMakesTheRecordItTrustsDurable) {
  MemFileSystem fs;
  const std::string dir = "/vol";
  ASSERT_OK(fs.CreateDirs(dir));
  ASSERT_OK_AND_ASSIGN(auto f, fs.OpenWritable(CheckpointPath(dir), true));
  ASSERT_OK(f->Write(0, std::string(2 * kCheckpointSlotBytes, '\0')));
  ASSERT_OK(f->Write(0, EncodeCheckpointSlot(Record(/*sequence=*/1, /*segment=*/3,
                                                    /*offset=*/100, /*asn=*/300))));
  ASSERT_OK(f->Sync());
  ASSERT_OK(fs.SyncDir(dir));  // the record file exists durably
  // The next record is written but not yet synced.
  ASSERT_OK(f->Write(kCheckpointSlotBytes, EncodeCheckpointSlot(Record(2, 5, 0, 500))));
  ASSERT_OK_AND_ASSIGN(CheckpointState oldest, OldestRestorable(dir, {7, 0, 700}, &fs));
  EXPECT_EQ(oldest.restart_segment, 5u);
  EXPECT_EQ(oldest.applied_asn, 500u);
  fs.DropUnsyncedData();  // a power loss: recovery restores the current record
  ASSERT_OK_AND_ASSIGN(std::optional<proto::LmdbCheckpoint> restored, ReadCheckpoint(dir, &fs));
  ASSERT_TRUE(restored.has_value());
  EXPECT_EQ(restored->restart_segment(), oldest.restart_segment)
      << "a crash brings back a record older than the one relied on";
}

TEST_F(CheckpointTest, OldestRestorableIsTheLiveCommitWhenItIsOlder) {
  ASSERT_OK(FileSystem::Default()->CreateDirs(Vol()));
  WriteSlot(Vol(), 0, Record(1, 3, 100, 300));
  ASSERT_OK_AND_ASSIGN(CheckpointState oldest, OldestRestorable(Vol(), {2, 50, 200}));
  EXPECT_EQ(oldest.restart_segment, 2u);
  EXPECT_EQ(oldest.restart_offset, 50u);
  EXPECT_EQ(oldest.applied_asn, 200u);
}

TEST_F(CheckpointTest, OldestRestorableWithoutRecordsIsTheLiveCommit) {
  ASSERT_OK_AND_ASSIGN(CheckpointState oldest, OldestRestorable(Vol(), {7, 1, 700}));
  EXPECT_EQ(oldest.restart_segment, 7u);
  EXPECT_EQ(oldest.applied_asn, 700u);
}

TEST_F(CheckpointTest, OldestRestorableOfADamagedRecordFileIsDataLoss) {
  ASSERT_OK(FileSystem::Default()->CreateDirs(Vol()));
  ASSERT_OK(WriteFileAtomically(FileSystem::Default(), CheckpointPath(Vol()),
                                std::string(2 * kCheckpointSlotBytes, 'x')));
  EXPECT_THAT(OldestRestorable(Vol(), {7, 1, 700}).status(),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("neither slot")));
}

TEST_F(CheckpointTest, StartRecordsTheNewestCommitWithItsMetaPage) {
  Open(Vol());
  Write(0, 500, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {3, 4096, 77}));
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  ASSERT_TRUE(rec.has_value());
  EXPECT_EQ(rec->txnid(), LastTxnid());
  EXPECT_EQ(cp_->durable_txnid(), LastTxnid());
  MDB_envinfo info;
  mdb_env_info(env_->env(), &info);
  EXPECT_EQ(MetaLastPage(*rec), info.me_last_pgno);  // the layout is LMDB 0.9's
  EXPECT_EQ(rec->boot_id(), BootId());
  EXPECT_FALSE(rec->boot_id().empty());
  EXPECT_FALSE(rec->clean());
  EXPECT_EQ(rec->restart_segment(), 3u);
  EXPECT_EQ(rec->restart_offset(), 4096u);
  EXPECT_EQ(rec->applied_asn(), 77u);
}

TEST_F(CheckpointTest, AfterASystemCrashTheVolumeOpensAtItsCheckpoint) {
  Open(Vol());
  Write(0, 1000, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  const uint64_t checkpoint = LastTxnid();
  // Deferred commits after the checkpoint: every key changed, and new ones.
  Write(0, 5000, "B");
  ASSERT_GT(LastTxnid(), checkpoint);
  Close();
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  // The page cache is gone: every page added since the checkpoint is garbage
  // on disk, and the newest meta page names a transaction that needs them.
  {
    const std::string path = JoinPath(Vol(), "data.mdb");
    ASSERT_OK_AND_ASSIGN(uint64_t size, FileSystem::Default()->FileSize(path));
    const uint64_t psize = rec->page_size();
    const uint64_t first_new = MetaLastPage(*rec) + 1;
    ASSERT_GT(size / psize, first_new);
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->OpenWritable(path, false));
    std::string junk(psize, '\xff');
    for (uint64_t p = first_new; p < size / psize; ++p) ASSERT_OK(f->Write(p * psize, junk));
    ASSERT_OK(f->Close());
  }
  ExpectReopensAt(checkpoint);
}

// The pin: commits after a checkpoint never overwrite a page the checkpoint
// reaches, so the file as the page cache holds it, opened at the
// checkpoint, still reads the checkpoint's contents.
TEST_F(CheckpointTest, LaterCommitsLeaveTheCheckpointsPagesIntact) {
  Open(Vol());
  Write(0, 2000, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  for (int round = 0; round < 20; ++round) Write(0, 2000, absl::StrCat("B", round));
  const std::string copy = Vol("copy");
  std::filesystem::create_directories(copy);
  std::filesystem::copy_file(JoinPath(Vol(), "data.mdb"), JoinPath(copy, "data.mdb"));
  PretendRestarted(Vol(), copy);
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(copy));
  ASSERT_TRUE(r.restored);
  Close();
  Open(copy);
  EXPECT_EQ(Read(), Expected(2000, "A"));
}

TEST_F(CheckpointTest, BackgroundCheckpointsFollowTheCommits) {
  for (auto mode : {Checkpointer::Mode::kInPlace, Checkpointer::Mode::kCopy}) {
    const bool copy = mode == Checkpointer::Mode::kCopy;
    SCOPED_TRACE(copy ? "copy mode" : "in place");
    Open(Vol(copy ? "copy" : "vol"));
    ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), absl::ZeroDuration(), {}, mode));
    const uint64_t first = cp_->checkpoints();
    for (int i = 0; i < 50; ++i) {
      k_ = i;
      Write(i * 10, i * 10 + 10, "A");
    }
    // Bounded wait for the last one queued, then one more for the newest commit.
    for (int i = 0; i < 500 && cp_->durable_txnid() != LastTxnid(); ++i) {
      ASSERT_OK(cp_->AfterCommit({1, 49, 0}));
      absl::SleepFor(absl::Milliseconds(10));
    }
    EXPECT_EQ(cp_->durable_txnid(), LastTxnid());
    EXPECT_GT(cp_->checkpoints(), first + 1);
    ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol(copy ? "copy" : "vol")));
    EXPECT_EQ(rec->txnid(), LastTxnid());
    EXPECT_EQ(rec->restart_offset(), 49u);
    EXPECT_EQ(rec->copy_bytes() > 0, copy);
    Close();
  }
}

TEST_F(CheckpointTest, NothingIsRestoredOnTheSameBoot) {
  Open(Vol());
  Write(0, 100, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  Write(0, 100, "B");
  Close();  // a process crash: the record stays unclean
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
  EXPECT_FALSE(r.restored);
  Open(Vol());
  EXPECT_EQ(Read(), Expected(100, "B"));
}

TEST_F(CheckpointTest, NothingIsRestoredAfterACleanStop) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  Write(0, 100, "B");
  ASSERT_OK(cp_->SyncNow({}, /*clean=*/true));
  Close();
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  EXPECT_TRUE(rec->clean());
  PretendRestarted(Vol(), Vol());
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
  EXPECT_FALSE(r.restored);
  Open(Vol());
  EXPECT_EQ(Read(), Expected(100, "B"));
}

TEST_F(CheckpointTest, ARecordOfAReplacedFileIsIgnored) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  Write(0, 100, "B");
  Close();
  PretendRestarted(Vol(), Vol());
  // The volume is replaced (rdfcom initialize installs a new data.mdb).
  const std::string data = JoinPath(Vol(), "data.mdb");
  std::filesystem::copy_file(data, data + ".new");
  std::filesystem::rename(data + ".new", data);
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
  EXPECT_FALSE(r.restored);
}

TEST_F(CheckpointTest, NoRecordNoRecovery) {
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
  EXPECT_FALSE(r.restored);
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  EXPECT_FALSE(rec.has_value());
}

TEST_F(CheckpointTest, ATornRecordLeavesThePreviousOne) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {1, 1, 1}));
  Write(0, 10, "A");
  ASSERT_OK(cp_->SyncNow({2, 2, 2}, false));
  ASSERT_OK_AND_ASSIGN(auto second, ReadCheckpoint(Vol()));
  EXPECT_EQ(second->applied_asn(), 2u);
  Write(10, 20, "A");
  ASSERT_OK(cp_->SyncNow({3, 3, 3}, false));
  ASSERT_OK_AND_ASSIGN(auto third, ReadCheckpoint(Vol()));
  EXPECT_EQ(third->applied_asn(), 3u);
  EXPECT_GT(third->sequence(), second->sequence());
  Close();
  // A crash in the middle of writing the third record: its slot is torn.
  {
    const std::string path = CheckpointPath(Vol());
    ASSERT_OK_AND_ASSIGN(std::string bytes, ReadFileToString(FileSystem::Default(), path));
    // Slot 0 held the first record, slot 1 the second, slot 0 the third.
    uint32_t len;
    std::memcpy(&len, bytes.data(), 4);
    ASSERT_GT(len, 0u);
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->OpenWritable(path, false));
    ASSERT_OK(f->Write(8 + len / 2, std::string(len / 2, 'x')));
    ASSERT_OK(f->Close());
  }
  ASSERT_OK_AND_ASSIGN(auto after, ReadCheckpoint(Vol()));
  EXPECT_EQ(after->applied_asn(), 2u);
  EXPECT_EQ(after->sequence(), second->sequence());
}

TEST_F(CheckpointTest, ARecordFileKilledBeforeItsFirstRecordHoldsNone) {
  // The updater killed between making the file and its first record (or a
  // power loss in that first write): nothing was applied yet, so the volume
  // opens as one without a checkpoint (it used to stop for good: "neither
  // slot holds a version 1 checkpoint record").
  std::filesystem::create_directories(Vol());
  std::string bytes(2 * kCheckpointSlotBytes, '\0');
  ASSERT_OK(WriteFileAtomically(FileSystem::Default(), CheckpointPath(Vol()), bytes));
  ASSERT_OK_AND_ASSIGN(auto none, ReadCheckpoint(Vol()));
  EXPECT_FALSE(none.has_value());
  bytes.replace(0, 40, std::string(40, 'x'));  // slot 0 torn in its first write
  ASSERT_OK(WriteFileAtomically(FileSystem::Default(), CheckpointPath(Vol()), bytes));
  ASSERT_OK_AND_ASSIGN(none, ReadCheckpoint(Vol()));
  EXPECT_FALSE(none.has_value());
  ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
  EXPECT_FALSE(r.restored);
  // The next writer starts over in that file.
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {4, 4, 4}));
  ASSERT_OK_AND_ASSIGN(auto first, ReadCheckpoint(Vol()));
  EXPECT_EQ(first->applied_asn(), 4u);
  // Slot 1 written once: a damaged slot 0 is data loss again.
  ASSERT_OK(cp_->SyncNow({5, 5, 5}, false));
  Close();
  ASSERT_OK_AND_ASSIGN(bytes, ReadFileToString(FileSystem::Default(), CheckpointPath(Vol())));
  bytes.replace(kCheckpointSlotBytes, 40, std::string(40, 'x'));
  bytes.replace(0, 40, std::string(40, 'x'));
  ASSERT_OK(WriteFileAtomically(FileSystem::Default(), CheckpointPath(Vol()), bytes));
  EXPECT_THAT(ReadCheckpoint(Vol()).status(), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

TEST_F(CheckpointTest, ADamagedRecordFileIsDataLoss) {
  std::filesystem::create_directories(Vol());
  ASSERT_OK(WriteFileAtomically(FileSystem::Default(), CheckpointPath(Vol()), "\x08\x09junk"));
  EXPECT_THAT(ReadCheckpoint(Vol()).status(), StatusIs(absl::StatusCode::kDataLoss, ::testing::_));
}

TEST_F(CheckpointTest, TheMapGrowsBetweenCheckpoints) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {}));
  Write(0, 100, "A");
  ASSERT_OK(cp_->ReleaseForGrow({}));
  ASSERT_OK(env_->Grow());
  ASSERT_OK(cp_->Repin());
  Write(100, 200, "A");
  ASSERT_OK(cp_->SyncNow({}, false));
  EXPECT_EQ(cp_->durable_txnid(), LastTxnid());
  EXPECT_EQ(Read(), Expected(200, "A"));
}

// Copy mode: a system crash may leave any page of data.mdb garbage, since
// nothing pins the checkpoint; the copy is written back.
TEST_F(CheckpointTest, CopyModeRestoresTheCopyWhateverDataMdbHolds) {
  Open(Vol());
  Write(0, 1000, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {5, 6, 7},
                                                Checkpointer::Mode::kCopy));
  const uint64_t checkpoint = LastTxnid();
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  EXPECT_EQ(rec->txnid(), checkpoint);
  EXPECT_EQ(rec->copy_slot(), 0u);
  EXPECT_EQ(rec->copy_bytes(), (MetaLastPage(*rec) + 1) * rec->page_size());
  EXPECT_EQ(rec->applied_asn(), 7u);
  // 20 rounds of rewriting every key: with no pin LMDB reuses the pages the
  // checkpoint reached, so data.mdb alone no longer holds it.
  for (int round = 0; round < 20; ++round) Write(0, 2000, absl::StrCat("B", round));
  Close();
  {
    const std::string path = JoinPath(Vol(), "data.mdb");
    ASSERT_OK_AND_ASSIGN(uint64_t size, FileSystem::Default()->FileSize(path));
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->OpenWritable(path, false));
    ASSERT_OK(f->Write(0, std::string(size, '\xff')));
    ASSERT_OK(f->Close());
  }
  ExpectReopensAt(checkpoint);
}

// Found by the fault campaign (every volume's map at 1 MiB, the wide
// workload): a transaction that takes pages from the end of data.mdb and
// frees them again before it commits (a value written and deleted in it)
// leaves the file shorter than its meta page's last page. The copy read up
// to that page, failed ("data.mdb: ends early"), and the updater, whose
// start takes a checkpoint, died at every start.
TEST_F(CheckpointTest, CopyModeCopiesACommitWhoseLastPagesWereNeverWritten) {
  Open(Vol());
  Write(0, 1000, "A");
  const std::string big(200000, 'x');
  const std::string path = JoinPath(Vol(), "data.mdb");
  bool short_file = false;
  for (int i = 0; i < 10 && !short_file; ++i) {
    ASSERT_OK_AND_ASSIGN(auto txn, WriteTxn::Begin(env_.get()));
    ASSERT_OK(txn->Put(dbi_, absl::StrCat("big", i), big));
    ASSERT_OK(txn->Put(dbi_, "gone", big));
    ASSERT_OK(txn->Delete(dbi_, "gone"));
    ASSERT_OK(txn->Commit());
    MDB_envinfo info;
    mdb_env_info(env_->env(), &info);
    ASSERT_OK_AND_ASSIGN(uint64_t size, FileSystem::Default()->FileSize(path));
    short_file = size < (info.me_last_pgno + 1) * 4096;
  }
  ASSERT_TRUE(short_file) << "no commit left data.mdb shorter than its last page";
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {5, 6, 7},
                                                Checkpointer::Mode::kCopy));
  const uint64_t checkpoint = LastTxnid();
  const Contents at_checkpoint = Read();
  Write(0, 2000, "B");
  Close();
  ExpectRestoredAt(checkpoint, at_checkpoint);
}

// A reader in another process (rdfcom verify's scan, initialize's copy)
// that has a volume open while its writer puts the checkpoint back keeps
// LMDB's lock region naming the newer transaction; the writer's open then
// trusts it, and its first checkpoint finds no meta page naming the newest
// transaction (the purger did this once: the updater died at every start).
// The reader holds the volume's gate shared (Env::OpenReadOnly), so the
// writer, which takes it exclusively before its recovery, waits for it.
TEST_F(CheckpointTest, AReaderInAnotherProcessIsNeverOpenAcrossTheWritersRecovery) {
  Open(Vol());
  Write(0, 1000, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {5, 6, 7},
                                                Checkpointer::Mode::kCopy));
  const uint64_t checkpoint = LastTxnid();
  for (int round = 0; round < 5; ++round) Write(0, 2000, absl::StrCat("B", round));
  Close();
  PretendRestarted(Vol(), Vol());
  int opened[2];
  ASSERT_EQ(pipe(opened), 0);
  const pid_t reader = fork();
  ASSERT_GE(reader, 0);
  if (reader == 0) {
    auto ro = Env::OpenReadOnly(Vol(), 8);
    char ok = ro.ok() ? 1 : 0;
    if (write(opened[1], &ok, 1) != 1) _exit(3);
    absl::SleepFor(absl::Milliseconds(700));
    _exit(ok ? 0 : 1);
  }
  close(opened[1]);
  char ok = 0;
  ASSERT_EQ(read(opened[0], &ok, 1), 1);
  close(opened[0]);
  ASSERT_EQ(ok, 1) << "the reader could not open the volume";
  {
    // The writer's start, as the updater's and tmf's.
    ASSERT_OK_AND_ASSIGN(VolumeGate gate, VolumeGate::ForWriter(Vol()));
    ASSERT_OK_AND_ASSIGN(Recovery r, RecoverToCheckpoint(Vol()));
    EXPECT_TRUE(r.restored);
    Open(Vol());
  }
  int st = 0;
  ASSERT_EQ(waitpid(reader, &st, 0), reader);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  EXPECT_EQ(LastTxnid(), checkpoint);
  EXPECT_OK(Checkpointer::Start(env_.get(), kNever, {5, 6, 7}, Checkpointer::Mode::kCopy)
                .status());
  EXPECT_EQ(Read(), Expected(1000, "A"));
}

TEST(VolumeGateTest, AWriterWaitsForReadersAndAReaderForTheWriter) {
  const std::string dir = rdf::testing::MakeTestDir("volume_gate_test");
  {
    ASSERT_OK_AND_ASSIGN(VolumeGate r1, VolumeGate::ForReader(dir));
    ASSERT_OK_AND_ASSIGN(VolumeGate r2, VolumeGate::ForReader(dir));  // readers share it
    // flock is per open file: a second descriptor in one process is as
    // another process.
    EXPECT_THAT(VolumeGate::ForWriter(dir, absl::Milliseconds(100)).status(),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  }
  {
    ASSERT_OK_AND_ASSIGN(VolumeGate w, VolumeGate::ForWriter(dir, absl::Milliseconds(100)));
    EXPECT_THAT(VolumeGate::ForReader(dir, absl::Milliseconds(100)).status(),
                StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
  }
  EXPECT_OK(VolumeGate::ForReader(JoinPath(dir, "no such volume")).status());
  EXPECT_FALSE(std::filesystem::exists(JoinPath(dir, "no such volume")));
  rdf::testing::RemoveTestDir(dir);
}

TEST_F(CheckpointTest, CopyModeAlternatesItsSlotsAndKeepsNoPin) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {1, 1, 1},
                                                Checkpointer::Mode::kCopy));
  uint32_t last_slot = 2;
  for (uint32_t i = 0; i < 4; ++i) {
    Write(0, 500, absl::StrCat("V", i));
    ASSERT_OK(cp_->SyncNow({2, 2, 2 + i}, false));
    ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
    EXPECT_NE(rec->copy_slot(), last_slot);
    last_slot = rec->copy_slot();
    EXPECT_GT(rec->copy_bytes(), 0u);
    EXPECT_EQ(rec->txnid(), LastTxnid());
  }
  // No reader is left between checkpoints (in place mode keeps its pin).
  std::string readers;
  mdb_reader_list(
      env_->env(),
      +[](const char* line, void* out) {
        static_cast<std::string*>(out)->append(line);
        return 0;
      },
      &readers);
  EXPECT_THAT(readers, ::testing::HasSubstr("no active readers"));
  // Reopened after a crash, the next copy never overwrites the one the
  // record names.
  Close();
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {4, 4, 10},
                                                Checkpointer::Mode::kCopy));
  ASSERT_OK_AND_ASSIGN(auto next, ReadCheckpoint(Vol()));  // Start's copy
  EXPECT_GT(next->copy_bytes(), 0u);
  EXPECT_NE(next->copy_slot(), last_slot);
  // A clean stop syncs in place and names no copy.
  ASSERT_OK(cp_->SyncNow({4, 4, 12}, true));
  ASSERT_OK_AND_ASSIGN(auto clean, ReadCheckpoint(Vol()));
  EXPECT_TRUE(clean->clean());
  EXPECT_EQ(clean->copy_bytes(), 0u);
}

TEST_F(CheckpointTest, ADamagedCopyIsDataLossAndLeavesDataMdbAlone) {
  Open(Vol());
  Write(0, 300, "A");
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {},
                                                Checkpointer::Mode::kCopy));
  Write(0, 300, "B");
  Close();
  PretendRestarted(Vol(), Vol());
  ASSERT_OK_AND_ASSIGN(auto rec, ReadCheckpoint(Vol()));
  {
    ASSERT_OK_AND_ASSIGN(auto f, FileSystem::Default()->OpenWritable(
                                     CheckpointCopyPath(Vol(), rec->copy_slot()), false));
    ASSERT_OK(f->Write(3 * rec->page_size() + 100, "bit rot"));
    ASSERT_OK(f->Close());
  }
  EXPECT_THAT(RecoverToCheckpoint(Vol()).status(),
              StatusIs(absl::StatusCode::kDataLoss, ::testing::HasSubstr("CRC32C")));
  Open(Vol());
  EXPECT_EQ(Read(), Expected(300, "B"));  // untouched: the page cache still has it here
}

TEST_F(CheckpointTest, CopyModeGrowsTheMapWithoutACopy) {
  Open(Vol());
  ASSERT_OK_AND_ASSIGN(cp_, Checkpointer::Start(env_.get(), kNever, {},
                                                Checkpointer::Mode::kCopy));
  Write(0, 100, "A");
  const uint64_t copies = cp_->checkpoints();
  ASSERT_OK(cp_->ReleaseForGrow({}));
  ASSERT_OK(env_->Grow());
  ASSERT_OK(cp_->Repin());
  EXPECT_EQ(cp_->checkpoints(), copies);
  Write(100, 200, "A");
  ASSERT_OK(cp_->SyncNow({}, false));
  EXPECT_EQ(cp_->durable_txnid(), LastTxnid());
  EXPECT_EQ(Read(), Expected(200, "A"));
}

}  // namespace
}  // namespace rdf::lmdb
