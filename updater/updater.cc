#include "updater/updater.h"

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "audit.pb.h"
#include "common/base/file_system.h"
#include "common/base/shared_blob.h"
#include "common/base/status_macros.h"
#include "common/base/test_point.h"
#include "common/events/catalog.h"
#include "common/json/proto.h"
#include "common/layout/layout.h"
#include "common/lmdb/checkpoint.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/process/main.h"
#include "common/process/rtd_watch.h"
#include "common/state/audit_record.h"
#include "common/state/initial_copy.h"
#include "common/state/save_point.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/trail/reader.h"
#include "takeover.pb.h"
#include "updater/undo_pass.h"

namespace rdf::updater {
namespace {

// The first 8 bytes of `key`, zero-padded, as a big-endian number: ordering
// by it agrees with LMDB's byte-wise key order (ties need the whole key).
uint64_t KeyPrefix(const std::string& key) {
  uint64_t p = 0;
  for (size_t i = 0; i < 8; ++i) {
    p = (p << 8) | (i < key.size() ? static_cast<unsigned char>(key[i]) : 0u);
  }
  return p;
}

// LMDB keeps a write transaction's dirty pages in memory: a batch is cut so
// that the pages it is expected to touch stay within this many (32 MiB of
// 4 KiB pages), whatever the size of the volume.
constexpr double kDirtyPageBudget = 8192;

// How often one write (a batch, a DDL, an undo batch) may find the map full
// and double it before the error is treated as a storage error: 2^16 times
// the map it started with.
constexpr int kMaxGrowthsPerWrite = 16;

// Bookkeeping database of the records REDO did not apply (error 10 or 11
// under policy SKIP): big-endian ASN -> big-endian txid, written in the same
// LMDB transaction as the batch, so that UNDO leaves exactly those alone
// across any crash. UNDO matches both: an entry that outlived its epoch (a
// volume copied by initialize from a promoted backup) cannot match, as a
// promoted primary's transaction ids start above every id seen. Entries
// below every transaction takeover could still undo are pruned as batches
// commit (PruneSkipped).
constexpr char kSkippedDb[] = "__skipped";

// 8 bytes, big-endian: LMDB's byte order of keys is then numeric order.
std::string BigEndian64(uint64_t x) {
  std::string b(8, '\0');
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(x >> (56 - 8 * i));
  return b;
}
uint64_t FromBigEndian64(absl::string_view b) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8 && i < b.size(); ++i) x = (x << 8) | static_cast<unsigned char>(b[i]);
  return x;
}

// The updater's states, as its status file names them (docs/updater.md,
// "Status"; takeover reads them too).
enum class UpdaterState {
  kStarting,
  kWaiting,   // for the receiver's first save point, or for the image trail
  kRunning,
  kRetrying,  // a storage error: retried from the restart point with Backoff
  kStopped,   // error 10/11 under policy STOP: until restarted
  kTakeoverRedo,
  kTakeoverUndo,
  kTakeoverComplete,
  kTakeoverFailed,
};

absl::string_view UpdaterStateName(UpdaterState state) {
  switch (state) {
    case UpdaterState::kStarting: return "STARTING";
    case UpdaterState::kWaiting: return "WAITING";
    case UpdaterState::kRunning: return "RUNNING";
    case UpdaterState::kRetrying: return "RETRYING";
    case UpdaterState::kStopped: return "STOPPED";
    case UpdaterState::kTakeoverRedo: return "TAKEOVER_REDO";
    case UpdaterState::kTakeoverUndo: return "TAKEOVER_UNDO";
    case UpdaterState::kTakeoverComplete: return "TAKEOVER_COMPLETE";
    case UpdaterState::kTakeoverFailed: return "TAKEOVER_FAILED";
  }
  return "UNKNOWN";
}

// A storage error is retried from the restart point after a pause that
// starts at kInitialBackoff and doubles up to kMaxBackoff (docs/updater.md).
constexpr absl::Duration kInitialBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxBackoff = absl::Seconds(10);

class Backoff {
 public:
  // The next pause.
  absl::Duration pause() const { return pause_; }
  // Sleeps the next pause on `clock`, and doubles the one after.
  void Sleep(Clock* clock) {
    clock->SleepMicros(absl::ToInt64Microseconds(pause_));
    pause_ = std::min(pause_ * 2, kMaxBackoff);
  }
  // Progress: the next error waits kInitialBackoff again.
  void Reset() { pause_ = kInitialBackoff; }

 private:
  absl::Duration pause_ = kInitialBackoff;
};

// The receiver's save point as a reader limit for one image trail.
class SavePointLimit : public trail::EndSource {
 public:
  SavePointLimit(SharedBlob* blob, std::string trail) : blob_(blob), trail_(std::move(trail)) {}
  trail::End Get() override {
    uint64_t gen;
    std::string bytes = blob_->Read(&gen);
    if (gen != gen_) {
      proto::SavePoint sp;
      if (sp.ParseFromString(bytes)) {
        sp_ = std::move(sp);
        gen_ = gen;
      }
    }
    return EndOf(sp_, trail_);
  }
  void WaitBeyond(uint64_t asn, absl::Duration timeout) override {
    if (Get().asn > asn) return;
    blob_->WaitChange(gen_, timeout);
  }
  const proto::SavePoint& save_point() const { return sp_; }

  static trail::End EndOf(const proto::SavePoint& sp, const std::string& trail) {
    const proto::TrailEnd* e = FindTrailEnd(sp, trail);
    if (e == nullptr) return {};
    return trail::End{sp.asn(), {e->segment(), e->offset()}, sp.audit_end_time_us()};
  }

 private:
  SharedBlob* blob_;
  std::string trail_;
  uint64_t gen_ = 0;
  proto::SavePoint sp_;
};

// Takeover: the receiver's final save point, which never moves.
class FinalSavePointLimit : public trail::EndSource {
 public:
  FinalSavePointLimit(proto::SavePoint sp, const std::string& trail)
      : sp_(std::move(sp)), end_(SavePointLimit::EndOf(sp_, trail)) {}
  trail::End Get() override { return end_; }
  void WaitBeyond(uint64_t, absl::Duration) override {}
  const proto::SavePoint& save_point() const { return sp_; }

 private:
  proto::SavePoint sp_;
  trail::End end_;
};

// Test point (process tests and the fault campaign; common/base/test_point.h):
// RDF_TEST_POINTS=updater.crash_in_growth makes the updater SIGKILL itself once in
// the middle of each growth of its volume's map, at one of its steps in turn:
// 0 before the checkpointer lets go of the map, 1 after, 2 after the map was
// set to its new size (nothing written at that size yet), 3 after the
// checkpointer pinned the grown map again. The file kGrowthCrashesFile in the
// volume's folder counts the crashes and names the map sizes they grew from,
// so that the growth the restarted updater does again (its volume's meta page
// still has the old size) goes through.
constexpr char kGrowthCrashesFile[] = "test-growth-crashes";

}  // namespace

struct Updater::Impl {
  UpdaterOptions opt;
  const proto::SystemConfig* cfg = nullptr;
  ProcessBase base;
  std::string process;
  std::string trail_name;
  std::string trail_dir;
  std::unique_ptr<lmdb::Env> env;
  MDB_dbi meta = 0;
  MDB_dbi skipped_db = 0;  // kSkippedDb
  // Commits are deferred-durable; this makes them durable now and then
  // (common/lmdb/checkpoint.h). Destroyed before `env`.
  std::unique_ptr<lmdb::Checkpointer> checkpointer;
  std::unique_ptr<SharedBlob> blob;
  std::unique_ptr<SavePointLimit> limit;
  std::unique_ptr<FinalSavePointLimit> final_limit;  // takeover only
  std::unique_ptr<trail::TrailReader> reader;
  std::unique_ptr<WritableFile> exceptions;
  uint64_t exceptions_size = 0;
  // After an online initial copy (common/state/initial_copy.h): the records the
  // copy already holds, skipped in REDO and UNDO alike.
  SnapshotFilter copy;

  UpdaterState state = UpdaterState::kStarting;
  std::string last_error;
  trail::Position restart;
  uint64_t applied_asn = 0;
  int64_t applied_time_us = 0;
  uint64_t applied_records = 0, applied_bytes = 0;  // see kMetaAppliedRecords
  int64_t last_progress_us = 0, last_status_us = 0;
  uint64_t records = 0, batches = 0, skipped = 0, commits = 0;
  // Leaf pages of the files written (refreshed now and then) and the batch
  // size that keeps the expected dirty pages within kDirtyPageBudget.
  absl::flat_hash_map<std::string, MDB_dbi> files;
  uint64_t leaf_pages = 0;
  size_t budget_records = SIZE_MAX;
  int64_t leaf_pages_at_us = 0;
  void RefreshPageBudget();
  bool crash_in_growth = false;
  // Test point updater.crash_in_growth: SIGKILL at `step` of the growth from
  // `from_bytes` unless that growth crashed already.
  void MaybeCrashInGrowth(int step, uint64_t from_bytes);
  std::unique_ptr<RtdWatch> rtd_watch;

  void Log(uint32_t number, events::EventFields fields = {}) {
    base.events->Log(number, fields);
  }
  int64_t Now() { return opt.clock->MonotonicMicros(); }
  trail::EndSource* Limit() {
    return final_limit ? static_cast<trail::EndSource*>(final_limit.get()) : limit.get();
  }
  const proto::SavePoint& CurrentSavePoint() {
    static const proto::SavePoint kNone;
    if (final_limit) return final_limit->save_point();
    return limit ? limit->save_point() : kNone;
  }

  // The volume after any crash: its LMDB environment (rolled back to the
  // last checkpoint after a system crash), the restart point in it, and a
  // first checkpoint.
  absl::Status OpenVolume();
  absl::Status OpenEnv();
  absl::Status LoadRestartPoint();
  lmdb::CheckpointState Durable() const {
    return {restart.segment, restart.offset, applied_asn};
  }
  bool OpenSources();
  // Reads one batch (waiting up to 100 ms for its first record) and applies
  // it. Returns the records applied; 0 when none were there.
  absl::StatusOr<size_t> Step();
  // Applies until *stop; with `until_caught_up`, returns once the limit is
  // reached (takeover). Storage errors are retried with backoff; in
  // takeover only for updater.takeover_retry_ms without progress, and a
  // damaged trail not at all (TakeoverGivesUp).
  absl::Status Redo(const std::atomic<bool>* stop, bool until_caught_up);
  // Takeover REDO: the error to fail with (event 972) once `error` has
  // lasted since `failing_since_us` (0: it just began) longer than
  // takeover_retry_ms, or at once for kDataLoss; OK to keep retrying.
  absl::Status TakeoverGivesUp(const absl::Status& error, int64_t* failing_since_us);
  // A batch as applied: decoded records only (the trail payloads are not
  // kept), and where it ends.
  struct Batch {
    std::vector<proto::AuditRecord> recs;
    trail::Position next;  // the restart point after it
    uint64_t asn = 0;      // its last record
    uint64_t bytes = 0;    // payload bytes, as the receiver counts them
    void Add(const trail::Record& rec, proto::AuditRecord r) {
      next = rec.next;
      asn = rec.asn;
      bytes += rec.payload.size();
      recs.push_back(std::move(r));
    }
  };
  absl::Status ApplyBatch(const Batch& batch);
  absl::Status ApplyDdl(const Batch& one);
  // Runs `write`, which begins and ends its own LMDB transactions; when the
  // map is full it is grown (doubled, event 967) and `write` runs again in
  // the same environment (a reopen would not shrink it, see lmdb::Env::Open,
  // but costs a checkpoint and a trail seek). Every write path of the
  // updater (REDO batches, DDL, UNDO batches) goes through here.
  // REQUIRES: the calling thread holds no transaction of `env`.
  absl::Status WithMapGrowth(const std::function<absl::Status()>& write);
  absl::Status GrowMap();
  // REDO did not apply record `r`: remembered in `txn` (kSkippedDb).
  absl::Status MarkSkipped(lmdb::WriteTxn* txn, const proto::AuditRecord& r);
  // Deletes the kSkippedDb entries no takeover can need any more: below the
  // first ASN of the oldest transaction without an outcome at the current
  // save point (UNDO starts there; the oldest open ASN never goes down).
  absl::Status PruneSkipped(lmdb::WriteTxn* txn);
  // The entries of kSkippedDb from `from_asn` on: ASN -> txid.
  absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> LoadSkipped(uint64_t from_asn);
  // Stores the restart point after `batch` (and its counters) in `txn`;
  // Advance() takes it over once the transaction committed.
  absl::Status SaveRestart(lmdb::WriteTxn* txn, const Batch& batch);
  void Advance(const Batch& batch);
  absl::Status Commit(lmdb::WriteTxn* txn, bool undo = false);
  // Error 10/11: event, exception log; kFailedPrecondition under policy STOP.
  absl::Status Exception(const proto::AuditRecord& r, uint32_t error);
  // Takeover's UNDO: runs an UndoPass to its end (or *stop: kCancelled).
  absl::Status Undo(const std::atomic<bool>* stop, const TakeoverEpoch& epoch,
                    uint64_t* undone);
  // The updater's side of an UndoPass: its write path (map growth, the
  // commit's test points) and its record of what REDO skipped.
  class UndoWrites : public UndoVolume {
   public:
    explicit UndoWrites(Impl* impl) : impl_(impl) {}
    absl::Status Write(const std::function<absl::Status(lmdb::WriteTxn*)>& fill) override {
      return impl_->WithMapGrowth([&]() -> absl::Status {
        RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(impl_->env.get()));
        RDF_RETURN_IF_ERROR(fill(txn.get()));
        return impl_->Commit(txn.get(), true);
      });
    }
    absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> SkippedByRedo(
        uint64_t from_asn) override {
      return impl_->LoadSkipped(from_asn);
    }

   private:
    Impl* impl_;
  };
  void PublishStatus();
};

absl::Status Updater::Impl::OpenVolume() {
  RDF_RETURN_IF_ERROR(OpenEnv());
  RDF_RETURN_IF_ERROR(LoadRestartPoint());
  const proto::UpdaterConfig& u = cfg->updater();
  RDF_ASSIGN_OR_RETURN(
      lmdb::Checkpointer::Mode mode,
      lmdb::ChooseMode(u.checkpoint_mode(), u.checkpoint_copy_max_bytes(),
                       config::VolumeDir(*base.node, opt.volume)));
  const bool copy = mode == lmdb::Checkpointer::Mode::kCopy;
  RDF_ASSIGN_OR_RETURN(
      checkpointer,
      lmdb::Checkpointer::Start(
          env.get(), absl::Milliseconds(copy ? u.checkpoint_copy_ms() : u.checkpoint_ms()),
          Durable(), mode));
  return absl::OkStatus();
}

absl::Status Updater::Impl::OpenEnv() {
  const proto::VolumeConfig* vol = opt.config->FindVolume(opt.volume);
  files.clear();
  checkpointer.reset();
  env.reset();
  const std::string dir = config::VolumeDir(*base.node, opt.volume);
  // No reader keeps the volume open while its checkpoint may go back under it.
  RDF_ASSIGN_OR_RETURN(lmdb::VolumeGate gate, lmdb::VolumeGate::ForWriter(dir));
  RDF_ASSIGN_OR_RETURN(lmdb::Recovery rolled_back, lmdb::RecoverToCheckpoint(dir));
  if (rolled_back.restored) {
    const proto::LmdbCheckpoint& r = rolled_back.record;
    Log(events::kVolumeRolledBack,
        {{"volume", opt.volume},
         {"txnid", absl::StrCat(r.txnid())},
         {"applied_asn", absl::StrCat(r.applied_asn())},
         {"position", trail::ToString({r.restart_segment(), r.restart_offset()})},
         {"checkpoint_time", absl::FormatTime(absl::RFC3339_full,
                                              absl::FromUnixMicros(r.time_us()),
                                              absl::UTCTimeZone())}});
  }
  RDF_ASSIGN_OR_RETURN(env, lmdb::Env::Open(dir, vol->map_bytes(), cfg->lmdb().max_dbs(),
                                            lmdb::Durability::kDeferred));
  RDF_ASSIGN_OR_RETURN(meta, env->OpenDb(lmdb::kMetaDb, true));
  RDF_ASSIGN_OR_RETURN(skipped_db, env->OpenDb(kSkippedDb, true));
  return absl::OkStatus();
}

void Updater::Impl::MaybeCrashInGrowth(int step, uint64_t from_bytes) {
  if (!crash_in_growth) return;
  const std::string path =
      JoinPath(config::VolumeDir(*base.node, opt.volume), kGrowthCrashesFile);
  // "<crashes> <size grown from> ...": one crash per size a growth started at.
  std::string text = ReadFileToString(opt.fs, path).value_or("0");
  std::vector<std::string> fields = absl::StrSplit(text, ' ', absl::SkipEmpty());
  uint64_t crashes = 0;
  if (fields.empty() || !absl::SimpleAtoi(fields[0], &crashes)) crashes = 0;
  const std::string from = absl::StrCat(from_bytes);
  for (size_t i = 1; i < fields.size(); ++i) {
    if (fields[i] == from) return;
  }
  if (static_cast<int>(crashes % 4) != step) return;
  fields.erase(fields.begin(), fields.begin() + std::min<size_t>(1, fields.size()));
  fields.push_back(from);
  const std::string next = absl::StrCat(crashes + 1, " ", absl::StrJoin(fields, " "));
  if (!WriteFileAtomically(opt.fs, path, next).ok()) return;
  base.events->Flush().IgnoreError();
  std::raise(SIGKILL);
}

absl::Status Updater::Impl::GrowMap() {
  const uint64_t from_bytes = env->map_bytes();
  MaybeCrashInGrowth(0, from_bytes);
  RDF_RETURN_IF_ERROR(checkpointer->ReleaseForGrow(Durable()));
  MaybeCrashInGrowth(1, from_bytes);
  RDF_RETURN_IF_ERROR(env->Grow());
  MaybeCrashInGrowth(2, from_bytes);
  RDF_RETURN_IF_ERROR(checkpointer->Repin());
  MaybeCrashInGrowth(3, from_bytes);
  Log(events::kVolumeMapGrown,
      {{"volume", opt.volume}, {"map_bytes", absl::StrCat(env->map_bytes())}});
  return absl::OkStatus();
}

absl::Status Updater::Impl::WithMapGrowth(const std::function<absl::Status()>& write) {
  for (int grown = 0;; ++grown) {
    absl::Status s = write();
    if (!lmdb::IsMapFull(s) || grown >= kMaxGrowthsPerWrite) return s;
    RDF_RETURN_IF_ERROR(GrowMap());
  }
}

absl::Status Updater::Impl::MarkSkipped(lmdb::WriteTxn* txn, const proto::AuditRecord& r) {
  return txn->Put(skipped_db, BigEndian64(r.asn()), BigEndian64(r.txid()));
}

absl::Status Updater::Impl::PruneSkipped(lmdb::WriteTxn* txn) {
  const proto::SavePoint& sp = CurrentSavePoint();
  const uint64_t horizon = sp.oldest_open_asn() != 0 ? sp.oldest_open_asn() : sp.asn() + 1;
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn->txn(), skipped_db, &cur);
  if (rc != 0) return lmdb::MdbError(rc, "prune skipped records: mdb_cursor_open");
  MDB_val k, v;
  while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
         FromBigEndian64(lmdb::View(k)) < horizon) {
    rc = mdb_cursor_del(cur, 0);
    if (rc != 0) break;
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::MdbError(rc, "prune skipped records");
  return absl::OkStatus();
}

absl::StatusOr<absl::flat_hash_map<uint64_t, uint64_t>> Updater::Impl::LoadSkipped(
    uint64_t from_asn) {
  absl::flat_hash_map<uint64_t, uint64_t> out;
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env.get()));
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn->txn(), skipped_db, &cur);
  if (rc != 0) return lmdb::MdbError(rc, "read skipped records: mdb_cursor_open");
  std::string from = BigEndian64(from_asn);
  MDB_val k = lmdb::Val(from), v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    out.emplace(FromBigEndian64(lmdb::View(k)), FromBigEndian64(lmdb::View(v)));
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return lmdb::MdbError(rc, "read skipped records");
  return out;
}

absl::Status Updater::Impl::LoadRestartPoint() {
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env.get()));
  RDF_ASSIGN_OR_RETURN(auto seg, lmdb::GetU64(txn.get(), meta, kMetaRestartSegment));
  RDF_ASSIGN_OR_RETURN(auto off, lmdb::GetU64(txn.get(), meta, kMetaRestartOffset));
  RDF_ASSIGN_OR_RETURN(auto asn, lmdb::GetU64(txn.get(), meta, kMetaAppliedAsn));
  RDF_ASSIGN_OR_RETURN(auto n, lmdb::GetU64(txn.get(), meta, kMetaAppliedRecords));
  RDF_ASSIGN_OR_RETURN(auto bytes, lmdb::GetU64(txn.get(), meta, kMetaAppliedBytes));
  RDF_ASSIGN_OR_RETURN(auto time, lmdb::GetU64(txn.get(), meta, kMetaAppliedTime));
  if (seg.has_value() && off.has_value()) restart = {*seg, *off};
  applied_asn = asn.value_or(0);
  applied_records = n.value_or(0);
  applied_bytes = bytes.value_or(0);
  applied_time_us = static_cast<int64_t>(time.value_or(0));
  return absl::OkStatus();
}

bool Updater::Impl::OpenSources() {
  if (!final_limit && !blob) {
    auto b = SharedBlob::OpenReadOnly(SavePointShmPath(trail_dir));
    if (!b.ok()) return false;  // no receiver has run yet
    blob = *std::move(b);
    limit = std::make_unique<SavePointLimit>(blob.get(), trail_name);
  }
  if (!reader) {
    auto r = trail::TrailReader::Open({trail_dir, trail_name, opt.fs, Limit()});
    if (!r.ok()) return false;
    reader = *std::move(r);
    if (restart.segment != 0) {
      absl::Status s = reader->SeekToPosition(restart);
      if (!s.ok()) {
        last_error = std::string(s.message());
        reader.reset();
        return false;
      }
    } else {
      // Nothing applied yet: the restart point is the trail's start, so a
      // trail that stays empty (an idle volume, or one just initialized by
      // rdfcom initialize) counts as caught up with the save point.
      restart = reader->position();
    }
    if (copy.snapshot_asn() > applied_asn) {
      Log(events::kRestartingAt, {{"position", trail::ToString(restart)},
                                  {"asn", absl::StrCat(applied_asn)},
                                  {"initial_copy_snapshot_asn", absl::StrCat(copy.snapshot_asn())},
                                  {"initial_copy_open_transactions",
                                   absl::StrCat(copy.open_transactions())}});
    } else {
      Log(events::kRestartingAt, {{"position", trail::ToString(restart)},
                                  {"asn", absl::StrCat(applied_asn)}});
    }
  }
  return true;
}

absl::Status Updater::Impl::SaveRestart(lmdb::WriteTxn* txn, const Batch& batch) {
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kMetaRestartSegment, batch.next.segment));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kMetaRestartOffset, batch.next.offset));
  RDF_RETURN_IF_ERROR(
      lmdb::PutU64(txn, meta, kMetaAppliedRecords, applied_records + batch.recs.size()));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kMetaAppliedBytes, applied_bytes + batch.bytes));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kMetaAppliedTime,
                                   static_cast<uint64_t>(batch.recs.back().time_us())));
  return lmdb::PutU64(txn, meta, kMetaAppliedAsn, batch.asn);
}

void Updater::Impl::Advance(const Batch& batch) {
  restart = batch.next;
  applied_asn = batch.asn;
  applied_time_us = batch.recs.back().time_us();
  applied_records += batch.recs.size();
  applied_bytes += batch.bytes;
  records += batch.recs.size();
  ++batches;
  last_progress_us = Now();
}

void Updater::Impl::RefreshPageBudget() {
  if (leaf_pages_at_us != 0 && Now() - leaf_pages_at_us < 5'000'000) return;
  leaf_pages_at_us = Now();
  auto txn = lmdb::ReadTxn::Begin(env.get());
  if (!txn.ok()) return;
  uint64_t leaves = 0;
  for (const auto& [name, dbi] : files) {
    MDB_stat st;
    if (mdb_stat((*txn)->txn(), dbi, &st) == 0) leaves += st.ms_leaf_pages;
  }
  leaf_pages = leaves;
  // n random keys over L leaves touch L(1 - (1 - 1/L)^n) of them on average.
  double l = static_cast<double>(leaves);
  budget_records = l <= kDirtyPageBudget
                       ? SIZE_MAX
                       : static_cast<size_t>(std::log(1 - kDirtyPageBudget / l) /
                                             std::log(1 - 1 / l));
}

absl::Status Updater::Impl::Commit(lmdb::WriteTxn* txn, bool undo) {
  RDF_RETURN_IF_ERROR(txn->Commit());
  ++commits;
  // Test points (common/base/test_point.h): a crash between an LMDB commit
  // and anything after it must apply nothing twice. after_commit counts
  // every commit, after_undo_commit takeover's undo commits only. The events
  // logged so far are flushed first, as the tests read them.
  for (const char* point : {"updater.after_commit", undo ? "updater.after_undo_commit" : ""}) {
    if (*point == '\0') continue;
    if (TestPointArmed(point)) base.events->Flush().IgnoreError();
    TestPoint(point);
  }
  return absl::OkStatus();
}

absl::Status Updater::Impl::Exception(const proto::AuditRecord& r, uint32_t error) {
  bool stop = (error == 10 ? cfg->updater().duplicate_key() : cfg->updater().missing_key()) ==
              proto::UpdaterConfig::STOP;
  ++skipped;
  events::EventFields fields = {{"volume", opt.volume}, {"asn", absl::StrCat(r.asn())},
                                {"file", r.file()}, {"txid", absl::StrCat(r.txid())},
                                {"key", absl::CHexEscape(r.key())},
                                {"error", absl::StrCat(error)}};
  Log(error == 10 ? events::kDuplicateKeySkipped : events::kMissingKeySkipped, fields);
  proto::ExceptionRecord e;
  e.set_time_us(opt.clock->NowMicros());
  e.set_asn(r.asn());
  e.set_primary_time_us(r.time_us());
  e.set_txid(r.txid());
  e.set_volume(opt.volume);
  e.set_file(r.file());
  e.set_op(proto::DataOp_Name(r.op()));
  e.set_error(error);
  e.set_key(absl::CHexEscape(r.key()));
  e.set_action(stop ? "stopped" : "skipped");
  // The line is written (and synced) before the batch commits: after a
  // crash in between, the batch is applied again and the line repeats.
  const proto::NodeConfig& node = *base.node;
  if (!exceptions) {
    RDF_RETURN_IF_ERROR(opt.fs->CreateDirs(config::ExceptionDir(node)));
    std::string path = layout::ExceptionLogFile(config::ExceptionDir(node), trail_name);
    RDF_ASSIGN_OR_RETURN(exceptions, opt.fs->OpenWritable(path, true));
    RDF_ASSIGN_OR_RETURN(exceptions_size, opt.fs->FileSize(path));
  }
  std::string line = absl::StrCat(json::MessageToJson(e), "\n");
  RDF_RETURN_IF_ERROR(exceptions->Write(exceptions_size, line));
  RDF_RETURN_IF_ERROR(exceptions->Sync());
  exceptions_size += line.size();
  if (stop) {
    Log(events::kUpdaterStoppedOnError, fields);
    return absl::FailedPreconditionError(
        absl::StrCat("error ", error, " at ASN ", r.asn(), " (", r.file(), " key ",
                     absl::CHexEscape(r.key()), ") under policy STOP"));
  }
  return absl::OkStatus();
}

absl::Status Updater::Impl::ApplyDdl(const Batch& one) {
  const proto::AuditRecord& r = one.recs.front();
  if (!copy.Skips(r.asn(), r.txid())) {  // (else initialize applied it to the copy)
    files.erase(r.file());  // a purged file's handle is no longer valid
    absl::Status s = r.ddl() == proto::CREATE_FILE ? env->OpenDb(r.file(), true).status()
                                                   : env->DropDb(r.file());
    if (!s.ok() && !absl::IsNotFound(s)) return s;
    Log(events::kDdlApplied, {{"file", r.file()}, {"op", proto::DdlOp_Name(r.ddl())},
                              {"asn", absl::StrCat(r.asn())}});
  }
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(env.get()));
  RDF_RETURN_IF_ERROR(SaveRestart(txn.get(), one));
  RDF_RETURN_IF_ERROR(Commit(txn.get()));
  Advance(one);
  return absl::OkStatus();
}

// One LMDB transaction: the batch's changes and the restart point after it.
absl::Status Updater::Impl::ApplyBatch(const Batch& batch) {
  const std::vector<proto::AuditRecord>& recs = batch.recs;
  // Sorted by (file, key); the key's first 8 bytes, big-endian, decide most
  // comparisons without reading the records again.
  struct Item {
    MDB_dbi dbi;
    uint32_t index;
    uint64_t prefix;
  };
  std::vector<Item> order;
  order.reserve(recs.size());
  for (size_t i = 0; i < recs.size(); ++i) {
    const proto::AuditRecord& r = recs[i];
    if (copy.Skips(r.asn(), r.txid())) {
      // Already in the initial copy: neither applied nor an exception. (Its
      // file may not even exist any more: the copy holds the files as of
      // its snapshot.)
      continue;
    }
    auto it = files.find(r.file());
    if (it == files.end()) {
      absl::StatusOr<MDB_dbi> d = env->OpenDb(r.file(), false);
      if (!d.ok()) return Annotate(d.status(), "open file for apply");
      it = files.emplace(r.file(), *d).first;
      leaf_pages_at_us = 0;  // a new file: count its pages again
    }
    order.push_back({it->second, static_cast<uint32_t>(i), KeyPrefix(r.key())});
  }
  // Key order makes LMDB touch each page once; a stable sort keeps the
  // changes of one key in trail order, which is all that order matters for
  // (2PL: no two open transactions change one key).
  std::stable_sort(order.begin(), order.end(), [&recs](const Item& a, const Item& b) {
    if (a.dbi != b.dbi) return a.dbi < b.dbi;
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return recs[a.index].key() < recs[b.index].key();
  });
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(env.get()));
  // One cursor per file: in key order LMDB finds the next key within the
  // cursor's current page without descending from the root, and an
  // existing key is replaced in place (MDB_CURRENT). (Cursors of a write
  // transaction are freed with it on every error path.)
  MDB_cursor* cursor = nullptr;
  MDB_dbi cursor_dbi = 0;
  for (const Item& item : order) {
    const MDB_dbi dbi = item.dbi;
    const proto::AuditRecord& r = recs[item.index];
    if (cursor == nullptr || dbi != cursor_dbi) {
      if (cursor != nullptr) mdb_cursor_close(cursor);
      int rc = mdb_cursor_open(txn->txn(), dbi, &cursor);
      if (rc != 0) return lmdb::MdbError(rc, "mdb_cursor_open");
      cursor_dbi = dbi;
    }
    MDB_val key = lmdb::Val(r.key()), found;
    int rc = mdb_cursor_get(cursor, &key, &found, MDB_SET);
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb::MdbError(rc, "apply: look up key");
    bool exists = rc == 0;
    bool insert = r.op() == proto::INSERT, remove = r.op() == proto::DELETE;
    if (insert == exists && r.compensation() && r.asn() <= copy.snapshot_asn()) {
      // A compensation, within the initial copy's window, of a change made
      // before the oldest audit the copy kept (an abort whose outcome was
      // not yet durable when initialize read the audit): the change never
      // reached the copy, so there is nothing to undo (nor for UNDO).
      RDF_RETURN_IF_ERROR(MarkSkipped(txn.get(), r));
      continue;
    }
    if (insert == exists) {
      // Error 10 (insert of an existing key) or 11 (update or delete of a
      // missing key): skipped (or the updater stops). UNDO must leave it
      // alone too: undoing a skipped insert would delete the row that was
      // already there.
      RDF_RETURN_IF_ERROR(Exception(r, insert ? 10 : 11));
      RDF_RETURN_IF_ERROR(MarkSkipped(txn.get(), r));
      continue;
    }
    if (remove) {
      rc = mdb_cursor_del(cursor, 0);
    } else {
      MDB_val data = lmdb::Val(r.after());
      key = lmdb::Val(r.key());
      rc = mdb_cursor_put(cursor, &key, &data, exists ? MDB_CURRENT : 0);
    }
    if (rc != 0) return lmdb::MdbError(rc, "apply");
  }
  if (cursor != nullptr) mdb_cursor_close(cursor);
  RDF_RETURN_IF_ERROR(PruneSkipped(txn.get()));
  RDF_RETURN_IF_ERROR(SaveRestart(txn.get(), batch));
  RDF_RETURN_IF_ERROR(Commit(txn.get()));
  Advance(batch);
  return absl::OkStatus();
}

absl::StatusOr<size_t> Updater::Impl::Step() {
  RefreshPageBudget();
  const size_t max_batch =
      std::max<size_t>(1, std::min<size_t>(cfg->updater().batch_records(), budget_records));
  const uint64_t max_bytes = cfg->updater().batch_bytes();
  Batch batch;
  batch.recs.reserve(std::min<size_t>(max_batch, 4096));
  while (batch.recs.size() < max_batch && batch.bytes < max_bytes) {
    RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec,
                         batch.recs.empty() ? reader->NextWait(absl::Milliseconds(100))
                                            : reader->Next());
    if (!rec.has_value()) break;
    if (rec->type == proto::DDL && !batch.recs.empty()) {
      // DDL is applied on its own, in order with the data around it.
      RDF_RETURN_IF_ERROR(reader->SeekToPosition(rec->pos));
      break;
    }
    RDF_ASSIGN_OR_RETURN(proto::AuditRecord r, DecodeAuditRecord(*rec));
    r.clear_before();  // REDO needs only the after image
    bool ddl = rec->type == proto::DDL;
    batch.Add(*rec, std::move(r));
    if (ddl) {
      RDF_RETURN_IF_ERROR(WithMapGrowth([&] { return ApplyDdl(batch); }));
      return 1;
    }
  }
  if (batch.recs.empty()) return 0;
  RDF_RETURN_IF_ERROR(WithMapGrowth([&] { return ApplyBatch(batch); }));
  return batch.recs.size();
}

absl::Status Updater::Impl::TakeoverGivesUp(const absl::Status& error,
                                            int64_t* failing_since_us) {
  if (*failing_since_us == 0) *failing_since_us = Now();
  const int64_t retried_ms = (Now() - *failing_since_us) / 1000;
  const bool damaged = absl::IsDataLoss(error);
  if (!damaged && retried_ms < int64_t{cfg->updater().takeover_retry_ms()}) {
    return absl::OkStatus();
  }
  Log(events::kTakeoverRedoFailed,
      {{"volume", opt.volume}, {"error", std::string(error.message())},
       {"position", trail::ToString(restart)},
       {"retried_ms", absl::StrCat(damaged ? 0 : retried_ms)}});
  state = UpdaterState::kTakeoverFailed;
  last_error = std::string(error.message());
  PublishStatus();
  if (damaged) return error;
  return Annotate(error, absl::StrCat("no progress for ", retried_ms, " ms (updater.takeover_retry_ms ",
                                      cfg->updater().takeover_retry_ms(), ")"));
}

absl::Status Updater::Impl::Redo(const std::atomic<bool>* stop, bool until_caught_up) {
  const UpdaterState running =
      until_caught_up ? UpdaterState::kTakeoverRedo : UpdaterState::kRunning;
  Backoff backoff;
  int64_t failing_since_us = 0;  // takeover: when the current error began
  while (!stop->load()) {
    if (Now() - last_status_us >= 1'000'000) {
      last_status_us = Now();
      PublishStatus();
    }
    if (state == UpdaterState::kStopped) {  // error 10/11 under policy STOP: until restarted
      opt.clock->SleepMicros(200'000);
      continue;
    }
    if (checkpointer == nullptr) {
      // Reopening the volume after an error failed (a full disk, say):
      // nothing is applied until it opens again.
      absl::Status reopened = OpenVolume();
      if (!reopened.ok()) {
        if (until_caught_up) {
          RDF_RETURN_IF_ERROR(TakeoverGivesUp(reopened, &failing_since_us));
        }
        last_error = std::string(reopened.message());
        state = UpdaterState::kRetrying;
        PublishStatus();
        backoff.Sleep(opt.clock);
        continue;
      }
    }
    if (!OpenSources()) {
      // In takeover the trail and the final save point are there: a trail
      // that cannot be opened or positioned is an error, not a wait.
      if (until_caught_up) {
        RDF_RETURN_IF_ERROR(TakeoverGivesUp(
            absl::UnavailableError(absl::StrCat("cannot open the image trail at ",
                                                trail::ToString(restart), ": ", last_error)),
            &failing_since_us));
      }
      state = UpdaterState::kWaiting;
      opt.clock->SleepMicros(200'000);
      continue;
    }
    absl::StatusOr<size_t> n = Step();
    if (n.ok()) {
      absl::Status c = checkpointer->AfterCommit(Durable());
      if (!c.ok()) n = Annotate(c, "checkpoint");
    }
    if (n.ok()) {
      if (state == UpdaterState::kRetrying) Log(events::kStorageErrorCleared);
      state = running;
      last_error.clear();
      backoff.Reset();
      failing_since_us = 0;
      if (until_caught_up && *n == 0) return absl::OkStatus();
      continue;
    }
    // Nothing is skipped: go back to the restart point.
    last_error = std::string(n.status().message());
    reader.reset();
    if (absl::IsFailedPrecondition(n.status())) {
      state = UpdaterState::kStopped;
      if (until_caught_up) return n.status();
      PublishStatus();
      continue;
    }
    if (until_caught_up) RDF_RETURN_IF_ERROR(TakeoverGivesUp(n.status(), &failing_since_us));
    if (state != UpdaterState::kRetrying) {
      Log(absl::IsDataLoss(n.status()) ? events::kTrailDamaged : events::kStorageError,
          {{"error", last_error}, {"position", trail::ToString(restart)},
           {"retry_in_ms", absl::StrCat(absl::ToInt64Milliseconds(backoff.pause()))}});
    }
    state = UpdaterState::kRetrying;
    PublishStatus();
    backoff.Sleep(opt.clock);
    // A failed write can leave LMDB's environment unusable (MDB_PANIC):
    // start again from the durable state, as after a crash.
    absl::Status reopened = OpenVolume();
    if (!reopened.ok()) last_error = std::string(reopened.message());
  }
  return absl::CancelledError("stopped");
}

// The undo pass (undo_pass.h) driven with what belongs to the process:
// events, state and status, checkpoints after each batch, the stop flag.
absl::Status Updater::Impl::Undo(const std::atomic<bool>* stop, const TakeoverEpoch& epoch,
                                 uint64_t* undone) {
  const proto::SavePoint& sp = final_limit->save_point();
  UndoWrites volume(this);
  UndoPassOptions o;
  o.env = env.get();
  o.meta = meta;
  o.volume = &volume;
  o.save_point = &sp;
  o.trail = {trail_dir, trail_name, opt.fs, Limit()};
  o.epoch = epoch.number;
  o.batch_records = cfg->updater().batch_records();
  o.batch_bytes = cfg->updater().batch_bytes();
  o.copy = &copy;
  RDF_ASSIGN_OR_RETURN(std::unique_ptr<UndoPass> pass, UndoPass::Resume(o));
  *undone = pass->undone();
  int64_t started = Now();
  Log(events::kUndoPass, {{"volume", opt.volume},
                          {"transactions", absl::StrCat(pass->lost_transactions())},
                          {"from_asn", absl::StrCat(sp.asn())},
                          {"position", trail::ToString(pass->cursor())}});
  state = UpdaterState::kTakeoverUndo;
  PublishStatus();
  RDF_RETURN_IF_ERROR(pass->OpenTrail());
  for (;;) {
    if (stop->load()) return absl::CancelledError("stopped during the undo pass");
    RDF_ASSIGN_OR_RETURN(const bool done, pass->UndoBatch());
    *undone = pass->undone();
    RDF_RETURN_IF_ERROR(checkpointer->AfterCommit(Durable()));
    last_progress_us = Now();
    if (Now() - last_status_us >= 1'000'000) {
      last_status_us = Now();
      PublishStatus();
    }
    if (done) break;
  }
  Log(events::kUndoPassComplete,
      {{"volume", opt.volume}, {"transactions", absl::StrCat(pass->lost_transactions())},
       {"undone_records", absl::StrCat(*undone)},
       {"duration_ms", absl::StrCat((Now() - started) / 1000)}});
  return absl::OkStatus();
}

void Updater::Impl::PublishStatus() {
  proto::ProcessStatus st = NewProcessStatus(base.node->name(), process,
                                             std::string(UpdaterStateName(state)), opt.clock);
  st.set_volume(opt.volume);
  st.mutable_position()->set_segment(restart.segment);
  st.mutable_position()->set_offset(restart.offset);
  st.mutable_position()->set_asn(applied_asn);
  trail::EndSource* lim = Limit();
  trail::End end = lim != nullptr ? lim->Get() : trail::End{};
  const proto::SavePoint& sp = CurrentSavePoint();
  // Caught up with the save point: applied through it.
  bool caught_up = lim != nullptr && end.pos == restart;
  uint64_t applied = caught_up ? std::max(applied_asn, sp.asn()) : applied_asn;
  st.set_applied_asn(applied);
  st.set_save_point_asn(sp.asn());
  st.set_audit_end_asn(sp.audit_end_asn());
  st.set_audit_end_time_us(sp.audit_end_time_us());
  int64_t rtd_ms = 0;
  if (!(caught_up && sp.asn() >= sp.audit_end_asn())) {
    rtd_ms = applied_time_us == 0 ? -1
                                  : std::max<int64_t>(0, (sp.audit_end_time_us() - applied_time_us) / 1000);
  }
  st.set_rtd_ms(rtd_ms);
  rtd_watch->Observe(rtd_ms);
  // Records and payload bytes between the restart point and the save point.
  if (const proto::TrailEnd* te = FindTrailEnd(sp, trail_name)) {
    st.set_backlog_records(te->records() > applied_records ? te->records() - applied_records : 0);
    st.set_backlog_bytes(te->bytes() > applied_bytes ? te->bytes() - applied_bytes : 0);
  }
  st.set_last_progress_age_ms(last_progress_us == 0 ? -1 : (Now() - last_progress_us) / 1000);
  st.set_last_error(last_error);
  st.set_batches(batches);
  st.set_records(records);
  WriteStatus(base.node->data_dir(), st).IgnoreError();
}

absl::StatusOr<std::unique_ptr<Updater>> Updater::Open(const UpdaterOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->cfg = &options.config->proto;
  const proto::VolumeConfig* vol = options.config->FindVolume(options.volume);
  if (vol == nullptr || vol->unprotected()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "volume '", options.volume, "' is not a protected volume of ", options.config->path));
  }
  impl->trail_name = config::VolumeDirName(options.volume);
  impl->process = absl::StrCat("updater-", impl->trail_name);
  RDF_ASSIGN_OR_RETURN(impl->base, StartProcess(*options.config, options.node, proto::BACKUP,
                                                impl->process, options.fs, options.clock));
  impl->trail_dir = config::ImageTrailDir(*impl->base.node);
  impl->rtd_watch = std::make_unique<RtdWatch>(impl->cfg->updater().rtd_warning_ms(),
                                               impl->base.events.get());
  impl->crash_in_growth = TestPointArmed("updater.crash_in_growth");
  RDF_RETURN_IF_ERROR(
      CheckNoInitialCopyInProgress(options.fs, *impl->base.node, impl->process));
  RDF_ASSIGN_OR_RETURN(impl->copy,
                       LoadSnapshotFilter(options.fs, *impl->base.node, options.volume));
  RDF_RETURN_IF_ERROR(impl->OpenVolume());
  return std::unique_ptr<Updater>(new Updater(std::move(impl)));
}

Updater::Updater(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Updater::~Updater() = default;

absl::Status Updater::Run(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  absl::Status st = s.Redo(stop, false);
  // A clean stop: everything applied is durable, nothing to recover.
  if (s.checkpointer != nullptr) {
    absl::Status c = s.checkpointer->SyncNow(s.Durable(), true);
    if (!c.ok() && (st.ok() || absl::IsCancelled(st))) st = Annotate(c, "final checkpoint");
  }
  s.PublishStatus();
  s.base.events->Flush().IgnoreError();
  return absl::IsCancelled(st) ? absl::OkStatus() : st;
}

absl::StatusOr<proto::VolumeTakeoverResult> Updater::Takeover(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  int64_t started = s.Now();
  const proto::NodeConfig& node = *s.base.node;
  RDF_ASSIGN_OR_RETURN(std::optional<TakeoverEpoch> epoch, ReadTakeoverEpoch(s.opt.fs, node));
  if (!epoch.has_value()) {
    return absl::FailedPreconditionError("no takeover has been issued on this node");
  }
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp,
                       ReadPublishedSavePoint(s.trail_dir));
  if (!sp.has_value() || sp->takeover_epoch() != epoch->number) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the receiver has not fixed its final save point for takeover epoch ", epoch->number,
        " (run rdfcom takeover, which does)"));
  }
  s.final_limit = std::make_unique<FinalSavePointLimit>(*std::move(sp), s.trail_name);
  proto::VolumeTakeoverResult result;
  result.set_version(1);
  result.set_volume(s.opt.volume);
  result.set_epoch(epoch->number);
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(s.env.get()));
  RDF_ASSIGN_OR_RETURN(auto done, lmdb::GetU64(txn.get(), s.meta, kMetaDoneEpoch));
  RDF_ASSIGN_OR_RETURN(auto undone, lmdb::GetU64(txn.get(), s.meta, kMetaUndoneRecords));
  txn.reset();
  if (done != epoch->number) {
    uint64_t before = s.records;
    absl::Status redo = s.Redo(stop, true);
    result.set_redo_records(s.records - before);
    if (!redo.ok()) {
      s.PublishStatus();
      return Annotate(redo, "takeover REDO");
    }
    uint64_t n = 0;
    absl::Status u = s.Undo(stop, *epoch, &n);
    if (!u.ok()) {
      s.last_error = std::string(u.message());
      s.PublishStatus();
      return Annotate(u, "takeover UNDO");
    }
    result.set_undone_records(n);
  } else {
    result.set_undone_records(undone.value_or(0));
  }
  // Durable before the takeover counts the volume done.
  RDF_RETURN_IF_ERROR(Annotate(s.checkpointer->SyncNow(s.Durable(), true), "final checkpoint"));
  result.set_duration_ms((s.Now() - started) / 1000);
  s.state = UpdaterState::kTakeoverComplete;
  s.PublishStatus();
  RDF_RETURN_IF_ERROR(WriteFileAtomically(
      s.opt.fs, TakeoverVolumeResultPath(node, s.opt.volume), json::MessageToJson(result) + "\n"));
  s.base.events->Flush().IgnoreError();
  return result;
}

}  // namespace rdf::updater
