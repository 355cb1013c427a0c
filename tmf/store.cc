#include "tmf/store.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "audit.pb.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/events/log.h"
#include "common/layout/layout.h"
#include "common/lmdb/checkpoint.h"
#include "common/lmdb/env.h"
#include "common/process/lock.h"
#include "common/process/main.h"
#include "common/state/audit_record.h"
#include "common/state/pin_file.h"
#include "common/state/status_file.h"
#include "common/state/takeover_state.h"
#include "common/trail/reader.h"
#include "common/trail/writer.h"
#include "tmf/audit_retention.h"
#include "tmf/lock_manager.h"

namespace rdf::tmf {

struct Volume;

namespace {

constexpr char kAuditTrail[] = "MAT";
// Bookkeeping keys in each volume's __meta database.
constexpr char kAppliedAsn[] = "applied_asn";
constexpr char kRecoveryAsn[] = "recovery_asn";
// The ASN of the newest DDL record applied to the volume: recovery replays
// only DDL above it (DDL is applied in ASN order under Store::Impl::ddl_mu).
constexpr char kDdlAsn[] = "ddl_asn";
constexpr const char* kMaxTxid = kMetaMaxTxid;  // holds the next transaction id to use
// Committed changes not yet in the volumes are kept in memory twice (the
// apply queue and the readers' overlay): commits wait while this many bytes
// of them are pending (one transaction larger than this is admitted alone).
// Invariant 6: memory stays bounded in bytes, not only in transactions.
constexpr uint64_t kMaxUnappliedBytes = 16 << 20;
// The applier's housekeeping (audit sync retry, pending aborts, audit
// retention, status) runs at most this often.
constexpr int64_t kHousekeepingIntervalUs = 1'000'000;

uint8_t TypeByte(proto::RecordType t) { return static_cast<uint8_t>(t); }

std::string FileKey(absl::string_view file, absl::string_view key) {
  return absl::StrCat(file, absl::string_view("\0", 1), key);
}

// An after image, held once: by its change from the write until the
// commit, then shared by the apply queue and the readers' overlay until the
// volume has it (a value can be as large as tmf.max_txn_bytes). Null for a
// delete.
using Image = std::shared_ptr<const std::string>;

std::optional<std::string> ValueOf(const Image& image) {
  return image ? std::optional<std::string>(*image) : std::nullopt;
}

// Bytes of change images held in memory, counted in Store::Impl::image_bytes
// (tmf.image_memory_bytes bounds it) while the change that holds them
// lives: given back when it is dropped (applied, or aborted).
class HeldBytes {
 public:
  HeldBytes() = default;
  HeldBytes(std::atomic<uint64_t>* counter, uint64_t n) : counter_(counter), n_(n) {}
  HeldBytes(HeldBytes&& o) noexcept : counter_(std::exchange(o.counter_, nullptr)), n_(o.n_) {}
  HeldBytes& operator=(HeldBytes&& o) noexcept {
    if (this != &o) {
      Reset();
      counter_ = std::exchange(o.counter_, nullptr);
      n_ = o.n_;
    }
    return *this;
  }
  ~HeldBytes() { Reset(); }

 private:
  void Reset() {
    if (counter_ != nullptr) counter_->fetch_sub(n_);
    counter_ = nullptr;
  }
  std::atomic<uint64_t>* counter_ = nullptr;
  uint64_t n_ = 0;
};

// A change as it will be applied to a volume: a null `after` deletes.
struct Op {
  Volume* vol = nullptr;
  std::string file;
  std::string key;
  std::optional<std::string> before;
  Image after;
  // Spilled: the images were left in the audit record that starts here
  // (tmf.image_memory_bytes was reached, or recovery met a large record);
  // `before` and `after` are then empty and read back when needed
  // (Store::Impl::ImagesOf).
  std::optional<trail::Position> record;
  HeldBytes held;
};

// The images of a change.
struct Images {
  std::optional<std::string> before;
  std::optional<std::string> after;
};

uint64_t ImageBytes(const proto::AuditRecord& r) {
  return (r.has_before() ? r.before().size() : 0) + (r.has_after() ? r.after().size() : 0);
}

// A committed transaction waiting to be applied to the volumes.
struct Committed {
  uint64_t commit_asn = 0;
  uint64_t txid = 0;
  uint64_t first_asn = 0;  // 0 for none
  std::vector<Op> ops;
  uint64_t bytes = 0;  // memory its changes take (ApproximateBytes)
};

// What a transaction's changes take in memory while they wait for the
// volumes (keys, files and after images, with a per-change overhead).
uint64_t ApproximateBytes(const std::vector<Op>& ops) {
  uint64_t n = 0;
  for (const Op& op : ops) {
    n += 64 + op.file.size() + op.key.size() + (op.before ? op.before->size() : 0) +
         (op.after ? op.after->size() : 0);
  }
  return n;
}

struct OverlayEntry {
  Image value;       // null: deleted (or spilled)
  uint64_t asn = 0;  // commit ASN
  std::optional<trail::Position> record;  // spilled: the value is this record's after image
};

// The compensation record of a change from `before` to `after` (nullopt:
// no record): it changes the key back.
proto::AuditRecord Compensation(uint64_t txid, absl::string_view volume, absl::string_view file,
                                absl::string_view key, const std::optional<std::string>& before,
                                const std::optional<std::string>& after) {
  proto::AuditRecord c;
  c.set_type(proto::DATA);
  c.set_txid(txid);
  c.set_volume(std::string(volume));
  c.set_file(std::string(file));
  c.set_key(std::string(key));
  c.set_compensation(true);
  if (after.has_value()) c.set_before(*after);
  if (before.has_value()) c.set_after(*before);
  c.set_op(!before.has_value() ? proto::DELETE : !after.has_value() ? proto::INSERT : proto::UPDATE);
  return c;
}

}  // namespace

struct Volume {
  std::string name;
  std::unique_ptr<lmdb::Env> env;
  // Copy mode (tmf.checkpoint_mode): commits are not synced, and this makes
  // them durable (docs/tmf.md). Null in place: every commit is synced.
  std::unique_ptr<lmdb::Checkpointer> checkpointer;
  // Held across each write transaction and the checkpointer call after it:
  // a checkpoint never begins while a write transaction is open.
  absl::Mutex write_mu;
  MDB_dbi meta = 0;
  absl::Mutex mu;
  // Committed changes not yet in LMDB, by FileKey.
  absl::flat_hash_map<std::string, OverlayEntry> overlay ABSL_GUARDED_BY(mu);
  absl::flat_hash_set<std::string> files ABSL_GUARDED_BY(mu);
  // Open transactions that have written each file (by file name): a purge
  // of a file in use is refused (error 12), so no DATA of an open
  // transaction can follow its file's PURGE in the audit.
  absl::flat_hash_map<std::string, int> open_writers ABSL_GUARDED_BY(mu);
  uint64_t applied_asn ABSL_GUARDED_BY(mu) = 0;
  // The newest DDL applied (kDdlAsn); under Store::Impl::ddl_mu.
  uint64_t ddl_asn = 0;
  // Applier thread only (and Open). The recovery ASN stored by the newest
  // LMDB commit, and the newest one known durable: in place, a commit's
  // meta page is not synced (MDB_NOMETASYNC) until the next commit's
  // fdatasync, so a power loss can bring back the previous commit's.
  uint64_t stored_recovery_asn = 0;
  uint64_t durable_recovery_asn = 0;
  int64_t meta_written_us = 0;
};

struct Transaction::State {
  Store::Impl* store = nullptr;
  uint64_t id = 0;
  uint64_t first_asn = 0;  // ASN of its first audit record, 0 if none
  uint64_t bytes = 0;
  bool ended = false;
  std::vector<Op> ops;
  // Per (volume, file, key) it wrote: its latest change, an index into `ops`
  // (whose after image is the value; kept once, not copied here).
  absl::flat_hash_map<std::string, size_t> writes;
  std::vector<std::string> lock_keys;
  // The files it has written (registered in Volume::open_writers).
  std::vector<std::pair<Volume*, std::string>> written_files;
};

namespace {
// An abort whose outcome is not yet durable (its compensations or ABORT could
// not be written or synced): the store keeps its locks and its hold on the
// recovery bound, and finishes it once the audit trail can be written again
// (Store::Impl::RetryAborts). Releasing the locks earlier would let another
// transaction change a key that a later recovery would then "back out".
struct PendingAbort {
  uint64_t txid = 0;
  uint64_t first_asn = 0;
  std::vector<Op> to_compensate;  // oldest first; compensated newest first
  bool abort_written = false;
  uint64_t abort_asn = 0;
  std::vector<std::string> lock_keys;
  std::vector<std::pair<Volume*, std::string>> written_files;
};
}  // namespace

struct Store::Impl {
  StoreOptions opt;
  const proto::NodeConfig* node = nullptr;
  const proto::SystemConfig* cfg = nullptr;
  std::unique_ptr<ProcessLock> process_lock;
  std::unique_ptr<events::EventLog> events;
  std::string audit_dir;
  std::unique_ptr<trail::TrailWriter> writer;
  std::map<std::string, std::unique_ptr<Volume>, std::less<>> volumes;
  std::unique_ptr<LockManager> locks;
  std::atomic<uint64_t> next_txid{1};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> aborts{0};
  RecoveryReport recovery;
  // Change images held in memory (open transactions, and committed changes
  // not yet in the volumes) and changes spilled so far: past
  // image_budget (tmf.image_memory_bytes) a change's images stay only in its
  // audit record. Declared before every holder of a change (HeldBytes).
  std::atomic<uint64_t> image_bytes{0};
  std::atomic<uint64_t> spilled_images{0};
  std::atomic<uint64_t> image_bytes_peak{0};
  uint64_t image_budget = 0;

  // Serializes DDL, so that DDL records are appended and applied in ASN
  // order (each volume's kDdlAsn then says which DDL it holds).
  absl::Mutex ddl_mu;
  absl::Mutex aborts_mu;
  std::vector<PendingAbort> pending_aborts ABSL_GUARDED_BY(aborts_mu);

  absl::Mutex audit_mu;
  uint64_t next_asn ABSL_GUARDED_BY(audit_mu) = 1;
  // First ASNs of transactions not yet finished (open, or committed but not
  // yet applied): the audit that recovery may still need starts at the
  // lowest. Multiset as value -> count.
  std::map<uint64_t, int> unfinished ABSL_GUARDED_BY(audit_mu);
  std::deque<Committed> queue ABSL_GUARDED_BY(audit_mu);
  uint64_t queued_through ABSL_GUARDED_BY(audit_mu) = 0;
  // Bytes of committed changes not yet applied (queued or being applied).
  uint64_t unapplied_bytes ABSL_GUARDED_BY(audit_mu) = 0;
  uint64_t applied_through ABSL_GUARDED_BY(audit_mu) = 0;
  bool stop ABSL_GUARDED_BY(audit_mu) = false;
  bool apply_now ABSL_GUARDED_BY(audit_mu) = false;  // WaitApplied hurries
  absl::CondVar work_cv;
  absl::CondVar applied_cv;
  std::thread applier;

  // Applier-thread state for status (published as <data_dir>/status/tmf.*
  // once a second, so the monitor shows a tmf whose applier or audit sync
  // keeps failing).
  std::string apply_error;   // the last failed apply, while it fails
  std::string sync_error;    // the last failed housekeeping sync, while it fails
  int64_t last_apply_progress_us = 0;
  int64_t last_status_us = 0;
  void PublishStatus();
  // Applier-thread state for retention.
  int64_t last_housekeeping_us = 0;
  bool retention_warned = false;
  // At the retention bound under REFUSE_COMMITS: commits fail until the
  // pin advances (931, then 932).
  std::atomic<bool> refusing_commits{false};
  absl::Mutex refusal_mu;
  std::string refusal ABSL_GUARDED_BY(refusal_mu);  // the error commits get
  // Under RELEASE_PIN, pins at or below this ASN are ignored
  // (<audit dir>/pin.released; 933).
  uint64_t pin_released_to = 0;
  uint64_t audit_bytes = 0;
  uint64_t audit_segments = 0;

  // Keeps a new change's images in memory (the before image moved from
  // `r`, the after image copied from the caller's value) while the budget
  // allows; else leaves them in its audit record at `at`.
  void KeepOrSpill(Op& op, proto::AuditRecord& r, std::optional<absl::string_view> after,
                   const trail::Position& at) {
    const uint64_t n = (r.has_before() ? r.before().size() : 0) + (after ? after->size() : 0);
    const uint64_t now = n == 0 ? 0 : image_bytes.fetch_add(n) + n;
    if (now > image_budget) {
      image_bytes.fetch_sub(n);
      op.record = at;
      spilled_images.fetch_add(1);
      return;
    }
    for (uint64_t peak = image_bytes_peak.load();
         now > peak && !image_bytes_peak.compare_exchange_weak(peak, now);) {
    }
    if (r.has_before()) op.before = std::move(*r.mutable_before());
    if (after.has_value()) op.after = std::make_shared<const std::string>(*after);
    if (n > 0) op.held = HeldBytes(&image_bytes, n);
  }

  // A spilled change's images, read back from its audit record (buffered
  // or in its segment; the segment is kept while its transaction is
  // unfinished).
  absl::StatusOr<Images> ReadImages(const trail::Position& at) {
    RDF_ASSIGN_OR_RETURN(std::string payload, writer->ReadPayload(at));
    absl::StatusOr<AuditImages> views = ScanAuditImages(payload);
    if (!views.ok()) {
      return Annotate(views.status(), absl::StrCat("audit record at ", trail::ToString(at)));
    }
    Images i;
    if (views->before.has_value()) i.before = std::string(*views->before);
    if (views->after.has_value()) i.after = std::string(*views->after);
    return i;
  }
  absl::StatusOr<Images> ImagesOf(const Op& op) {
    if (op.record.has_value()) return ReadImages(*op.record);
    return Images{op.before, ValueOf(op.after)};
  }
  absl::StatusOr<std::optional<std::string>> AfterOf(const Op& op) {
    if (!op.record.has_value()) return ValueOf(op.after);
    RDF_ASSIGN_OR_RETURN(Images i, ReadImages(*op.record));
    return std::move(i.after);
  }

  // Events use the catalog's text and severity (docs/events.md); the
  // specifics go into fields.
  void Log(uint32_t number, events::EventFields fields = {}) {
    if (events) events->Log(number, fields);
  }

  Volume* FindVolume(absl::string_view name) {
    auto it = volumes.find(name);
    return it == volumes.end() ? nullptr : it->second.get();
  }

  // The volume holding `file`. With `writer`, also registers that
  // transaction as one of the file's open writers (until it ends), under the
  // same lock as the check: a PurgeFile either sees the writer or ran first.
  absl::StatusOr<Volume*> VolumeWithFile(absl::string_view volume, absl::string_view file,
                                         Transaction::State* writer = nullptr);

  // Appends one record; for transaction `s` (may be null) remembers its
  // first ASN. Returns the record's ASN. `r` is serialized in place into the
  // trail writer's buffer, with its after image (if any) from `after`, a
  // view of the caller's value, so a large value is copied once (common/
  // audit_record.h, AuditPayload: `r` loses its asn and the fields after
  // `after`). `at` (if not null) receives where the frame starts.
  absl::StatusOr<uint64_t> Append(proto::AuditRecord& r, Transaction::State* s,
                                  trail::Position* at = nullptr,
                                  std::optional<absl::string_view> after = std::nullopt) {
    r.set_time_us(opt.clock->NowMicros());
    const AuditPayload payload(&r, after);
    absl::MutexLock l(&audit_mu);
    uint64_t asn = next_asn;
    RDF_RETURN_IF_ERROR(writer->AppendWith(asn, TypeByte(r.type()), payload.size(),
                                           [&](char* p) { payload.WriteTo(p); }, r.time_us(),
                                           at));
    ++next_asn;
    if (s != nullptr && s->first_asn == 0) {
      s->first_asn = asn;
      ++unfinished[asn];
    }
    return asn;
  }

  void Finish(uint64_t first_asn) ABSL_EXCLUSIVE_LOCKS_REQUIRED(audit_mu) {
    if (first_asn == 0) return;
    auto it = unfinished.find(first_asn);
    if (it != unfinished.end() && --it->second == 0) unfinished.erase(it);
  }

  uint64_t RecoveryBound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(audit_mu) {
    return unfinished.empty() ? next_asn : unfinished.begin()->first;
  }
  // The recovery bound as far as it is durable: a recovery point is never
  // stored past what a crash keeps.
  uint64_t DurableBound() ABSL_EXCLUSIVE_LOCKS_REQUIRED(audit_mu) {
    return std::min(RecoveryBound(), writer->durable_end().asn + 1);
  }

  // Ends a transaction's claims: its locks and its registrations as writer.
  void ReleaseClaims(uint64_t txid, std::vector<std::string>& lock_keys,
                     std::vector<std::pair<Volume*, std::string>>& written_files);
  // Writes what remains of an abort (compensations newest first, then
  // ABORT), makes it durable, and only then stops holding the recovery
  // bound and releases the transaction's claims. On error it can be called
  // again: it resumes where it stopped.
  absl::Status CompleteAbort(PendingAbort& a);
  // Housekeeping: aborts left pending by a write or sync error.
  void RetryAborts();
  // Runs `write` (one LMDB write transaction on `v`), growing the map and
  // running it again when it fills. REQUIRES: v->write_mu held.
  absl::Status WithGrowth(Volume* v, const std::function<absl::Status()>& write)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(v->write_mu);
  // After a successful LMDB commit storing `recovery_asn` in `v`.
  void NoteStored(Volume* v, uint64_t recovery_asn);

  absl::StatusOr<std::optional<std::string>> ReadCommitted(
      Volume* v, absl::string_view file, absl::string_view key);
  // Applies each transaction to each volume that lacks it. *applied (if
  // not null) counts the transactions applied to at least one volume.
  absl::Status ApplyBatch(const std::vector<Committed>& batch,
                          uint64_t recovery_asn, uint64_t max_txid,
                          uint64_t* applied = nullptr);
  absl::Status ApplyToVolume(Volume* v, std::vector<const Op*>& ops,
                             uint64_t through_asn, uint64_t recovery_asn,
                             uint64_t max_txid);
  absl::Status ApplyDdl(const proto::AuditRecord& r);
  absl::Status OpenVolumes();
  absl::Status Recover();
  void ApplierLoop();
  void Housekeeping();
  void RefreshIdleMeta(uint64_t recovery_asn, uint64_t max_txid);
  // Copy mode, with v->write_mu held, right after a commit of `v` (or when
  // idle): a background checkpoint when one is due. A failed checkpoint is
  // logged and the next call tries again; the previous one stays durable.
  void AfterCommit(Volume* v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(v->write_mu);
  // The lowest audit ASN a recovery may start from, as durable now.
  uint64_t DurableRecoveryBound();
  // Audit retention's effects around DecideRetention (audit_retention.h):
  // reads the pin files, removes segments, logs, refuses commits.
  void EnforceRetention();
  // Reads <audit dir>/pin and (once, while it exists) pin.released; an
  // unreadable pin is logged (700) and holds everything.
  PinFiles ReadPinFiles(const std::string& released_path);
  // RELEASE_PIN at the bound: writes pin.released with the durable end ASN
  // and logs 933 (or 700 when it cannot be written).
  void ReleasePin(const std::string& released_path, uint64_t bytes, uint64_t limit,
                  uint64_t pin_asn);
};

// ---------------------------------------------------------------------------
// Reads.

absl::StatusOr<std::optional<std::string>> Store::Impl::ReadCommitted(
    Volume* v, absl::string_view file, absl::string_view key) {
  absl::StatusOr<MDB_dbi> dbi = v->env->OpenDb(std::string(file), false);
  if (absl::IsNotFound(dbi.status())) return std::optional<std::string>();
  if (!dbi.ok()) return dbi.status();
  // A spilled value is read back outside v->mu; by then the applier may
  // have applied it and retention removed its segment. Then the overlay
  // no longer has it and the second look finds it in LMDB.
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<lmdb::ReadTxn> txn;
    std::optional<OverlayEntry> hit;
    {
      // The LMDB snapshot is begun under v->mu: the applier removes overlay
      // entries under v->mu only after their LMDB commit, so a miss here
      // means the snapshot already holds the change.
      absl::MutexLock l(&v->mu);
      auto it = v->overlay.find(FileKey(file, key));
      if (it != v->overlay.end()) {
        hit = it->second;
      } else {
        RDF_ASSIGN_OR_RETURN(txn, lmdb::ReadTxn::Begin(v->env.get()));
      }
    }
    if (!hit.has_value()) return txn->Get(*dbi, key);
    // Never show a commit that is not yet durable.
    if (writer->durable_end().asn < hit->asn) RDF_RETURN_IF_ERROR(writer->Sync());
    if (!hit->record.has_value()) return ValueOf(hit->value);
    absl::StatusOr<Images> i = ReadImages(*hit->record);
    if (i.ok()) return std::move(i->after);
    if (attempt >= 2) return i.status();
  }
}

// ---------------------------------------------------------------------------
// Applying committed transactions to the volumes.

absl::Status Store::Impl::ApplyToVolume(Volume* v, std::vector<const Op*>& ops,
                                        uint64_t through_asn,
                                        uint64_t recovery_asn,
                                        uint64_t max_txid) {
  // Sorting by key makes LMDB's page writes local; stable keeps the order
  // of changes to the same key.
  std::stable_sort(ops.begin(), ops.end(), [](const Op* a, const Op* b) {
    return std::tie(a->file, a->key) < std::tie(b->file, b->key);
  });
  absl::flat_hash_map<std::string, MDB_dbi> dbis;
  for (const Op* op : ops) {
    if (dbis.contains(op->file)) continue;
    absl::StatusOr<MDB_dbi> dbi = v->env->OpenDb(op->file, false);
    if (!dbi.ok()) {
      return Annotate(dbi.status(), absl::StrCat("apply to ", v->name));
    }
    dbis[op->file] = *dbi;
  }
  {
    absl::MutexLock w(&v->write_mu);
    absl::Status s = WithGrowth(v, [&]() -> absl::Status {
      RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(v->env.get()));
      for (const Op* op : ops) {
        MDB_dbi dbi = dbis[op->file];
        bool put = op->after != nullptr;
        absl::string_view value = put ? absl::string_view(*op->after) : absl::string_view();
        std::string payload;  // a spilled change's record, read back one at a time
        if (op->record.has_value()) {
          RDF_ASSIGN_OR_RETURN(payload, writer->ReadPayload(*op->record));
          RDF_ASSIGN_OR_RETURN(AuditImages im, ScanAuditImages(payload));
          put = im.after.has_value();
          if (put) value = *im.after;
        }
        if (put) {
          RDF_RETURN_IF_ERROR(txn->Put(dbi, op->key, value));
        } else {
          absl::Status d = txn->Delete(dbi, op->key);
          if (!d.ok() && !absl::IsNotFound(d)) return d;
        }
      }
      RDF_RETURN_IF_ERROR(lmdb::PutU64(txn.get(), v->meta, kAppliedAsn,
                                       through_asn));
      RDF_RETURN_IF_ERROR(lmdb::PutU64(txn.get(), v->meta, kRecoveryAsn,
                                       recovery_asn));
      RDF_RETURN_IF_ERROR(
          lmdb::PutU64(txn.get(), v->meta, kMaxTxid, max_txid));
      return txn->Commit();
    });
    if (!s.ok()) return Annotate(s, absl::StrCat("apply to ", v->name));
    NoteStored(v, recovery_asn);
    AfterCommit(v);
  }
  v->meta_written_us = opt.clock->MonotonicMicros();
  absl::MutexLock l(&v->mu);
  v->applied_asn = std::max(v->applied_asn, through_asn);
  for (const Op* op : ops) {
    auto it = v->overlay.find(FileKey(op->file, op->key));
    if (it != v->overlay.end() && it->second.asn <= through_asn) {
      v->overlay.erase(it);
    }
  }
  return absl::OkStatus();
}

absl::Status Store::Impl::ApplyBatch(const std::vector<Committed>& batch,
                                     uint64_t recovery_asn, uint64_t max_txid,
                                     uint64_t* applied_txns) {
  std::map<Volume*, std::vector<const Op*>> by_volume;
  std::map<Volume*, uint64_t> through;
  for (const Committed& c : batch) {
    bool any = false;
    for (const Op& op : c.ops) {
      uint64_t applied;
      {
        absl::MutexLock l(&op.vol->mu);
        applied = op.vol->applied_asn;
      }
      if (c.commit_asn <= applied) continue;  // already there (recovery)
      by_volume[op.vol].push_back(&op);
      through[op.vol] = std::max(through[op.vol], c.commit_asn);
      any = true;
    }
    if (any && applied_txns != nullptr) ++*applied_txns;
  }
  for (auto& [v, ops] : by_volume) {
    RDF_RETURN_IF_ERROR(
        ApplyToVolume(v, ops, through[v], recovery_asn, max_txid));
  }
  return absl::OkStatus();
}

absl::Status Store::Impl::WithGrowth(Volume* v, const std::function<absl::Status()>& write) {
  for (int attempt = 0;; ++attempt) {
    absl::Status s = write();
    if (!absl::IsResourceExhausted(s) || attempt >= 8 ||
        !absl::StrContains(s.message(), "MDB_MAP_FULL")) {
      return s;
    }
    if (v->checkpointer != nullptr) {
      RDF_RETURN_IF_ERROR(
          v->checkpointer->ReleaseForGrow({.redo_from_asn = v->stored_recovery_asn}));
    }
    RDF_RETURN_IF_ERROR(v->env->Grow());
    if (v->checkpointer != nullptr) RDF_RETURN_IF_ERROR(v->checkpointer->Repin());
    Log(events::kVolumeMapGrown,
        {{"volume", v->name}, {"map_bytes", absl::StrCat(v->env->map_bytes())}});
  }
}

void Store::Impl::NoteStored(Volume* v, uint64_t recovery_asn) {
  // In place, this commit's fdatasync made the previous commit's meta page
  // durable (MDB_NOMETASYNC), not its own.
  if (v->checkpointer == nullptr) v->durable_recovery_asn = v->stored_recovery_asn;
  v->stored_recovery_asn = recovery_asn;
}

absl::Status Store::Impl::ApplyDdl(const proto::AuditRecord& r) {
  Volume* v = FindVolume(r.volume());
  if (v == nullptr) return absl::OkStatus();  // volume no longer configured
  // Recovery scans from the lowest recovery ASN of all volumes, which a long
  // transaction on any volume keeps low: a DDL this volume already holds is
  // not applied again (a PURGE replayed after a later CREATE and commits
  // would drop them).
  if (r.asn() != 0 && r.asn() <= v->ddl_asn) return absl::OkStatus();
  absl::MutexLock w(&v->write_mu);
  RDF_RETURN_IF_ERROR(WithGrowth(v, [&]() -> absl::Status {
    if (r.ddl() == proto::CREATE_FILE) return v->env->OpenDb(r.file(), true).status();
    absl::Status s = v->env->DropDb(r.file());
    return absl::IsNotFound(s) ? absl::OkStatus() : s;
  }));
  {
    absl::MutexLock l(&v->mu);
    if (r.ddl() == proto::CREATE_FILE) {
      v->files.insert(r.file());
    } else if (r.ddl() == proto::PURGE_FILE) {
      v->files.erase(r.file());
    }
  }
  // A crash before this commit replays this one DDL only, which is
  // idempotent: DDL is serialized, so nothing came after it yet.
  if (r.asn() != 0) {
    RDF_RETURN_IF_ERROR(WithGrowth(v, [&]() -> absl::Status {
      RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(v->env.get()));
      RDF_RETURN_IF_ERROR(lmdb::PutU64(txn.get(), v->meta, kDdlAsn, r.asn()));
      return txn->Commit();
    }));
    v->ddl_asn = r.asn();
  }
  return absl::OkStatus();
}

void Store::Impl::ApplierLoop() {
  const absl::Duration interval =
      absl::Milliseconds(cfg->tmf().apply_interval_ms());
  const size_t max_txns = cfg->tmf().apply_batch_txns();
  int64_t backoff_ms = 10;
  absl::Time last_apply = absl::InfinitePast();
  while (true) {
    std::vector<Committed> batch;
    uint64_t recovery_asn, max_txid;
    {
      // Apply every `interval`, or sooner when a full batch is waiting:
      // few, large LMDB transactions keep the disk free for the audit
      // trail's fsyncs (readers see committed changes in the overlay).
      absl::MutexLock l(&audit_mu);
      absl::Time deadline = last_apply + interval;
      while (!stop && !apply_now && queue.size() < max_txns &&
             absl::Now() < deadline) {
        work_cv.WaitWithDeadline(&audit_mu, deadline);
      }
      uint64_t durable = writer->durable_end().asn;
      while (!queue.empty() && batch.size() < max_txns &&
             queue.front().commit_asn <= durable) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      if (queue.empty()) apply_now = false;
      if (stop && batch.empty() && queue.empty()) break;
      recovery_asn = DurableBound();
      max_txid = next_txid.load();
    }
    last_apply = absl::Now();
    if (!batch.empty()) {
      absl::Status s = ApplyBatch(batch, recovery_asn, max_txid);
      while (!s.ok()) {
        // Nothing is dropped: the batch stays in memory (and in the audit
        // trail) and is retried until the volume can be written.
        Log(events::kFileSystemError, {{"op", "apply"}, {"error", std::string(s.message())},
             {"retry_in_ms", absl::StrCat(backoff_ms)}});
        apply_error = std::string(s.message());
        PublishStatus();
        opt.clock->SleepMicros(backoff_ms * 1000);
        backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
        s = ApplyBatch(batch, recovery_asn, max_txid);
      }
      backoff_ms = 10;
      apply_error.clear();
      last_apply_progress_us = opt.clock->MonotonicMicros();
      const uint64_t through = batch.back().commit_asn;
      std::vector<std::pair<uint64_t, uint64_t>> finished;  // first ASN, bytes
      finished.reserve(batch.size());
      for (const Committed& c : batch) finished.emplace_back(c.first_asn, c.bytes);
      // The images go (and leave image_bytes) before anyone is told they
      // are applied, outside the lock: a WaitApplied caller sees them gone.
      batch.clear();
      absl::MutexLock l(&audit_mu);
      for (const auto& [first_asn, bytes] : finished) {
        Finish(first_asn);
        unapplied_bytes -= bytes;
      }
      applied_through = through;
      applied_cv.SignalAll();
    }
    Housekeeping();
  }
  // A clean close leaves a current recovery ASN, so the next open scans
  // nothing it does not need.
  RetryAborts();
  uint64_t bound;
  {
    absl::MutexLock l(&audit_mu);
    bound = DurableBound();
  }
  RefreshIdleMeta(bound, next_txid.load());
}

void Store::Impl::RefreshIdleMeta(uint64_t recovery_asn, uint64_t max_txid) {
  // A volume without recent changes would otherwise keep an old recovery
  // ASN and pin audit that nothing needs.
  for (auto& [name, v] : volumes) {
    absl::MutexLock w(&v->write_mu);
    if (v->stored_recovery_asn >= recovery_asn) {
      AfterCommit(v.get());  // an idle volume's last commits get their copy too
      continue;
    }
    // v by an init-capture: clang before 16 cannot capture a structured
    // binding (C++20), and scripts/check-thread-safety parses this with clang.
    absl::Status s = WithGrowth(v.get(), [&, &v = v]() -> absl::Status {
      RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(v->env.get()));
      RDF_RETURN_IF_ERROR(lmdb::PutU64(txn.get(), v->meta, kRecoveryAsn,
                                       recovery_asn));
      RDF_RETURN_IF_ERROR(
          lmdb::PutU64(txn.get(), v->meta, kMaxTxid, max_txid));
      return txn->Commit();
    });
    if (s.ok()) {
      NoteStored(v.get(), recovery_asn);
      AfterCommit(v.get());
    } else {
      Log(events::kFileSystemError, {{"op", "store recovery point"}, {"volume", name},
                                     {"error", std::string(s.message())}});
    }
  }
}

void Store::Impl::AfterCommit(Volume* v) {
  if (v->checkpointer == nullptr) return;
  absl::Status s = v->checkpointer->AfterCommit({.redo_from_asn = v->stored_recovery_asn});
  if (!s.ok()) {
    Log(events::kFileSystemError, {{"op", "checkpoint"}, {"volume", v->name},
         {"error", std::string(s.message())}, {"retry_in_ms", "1000"}});
  }
}

uint64_t Store::Impl::DurableRecoveryBound() {
  uint64_t bound = UINT64_MAX;
  for (auto& [name, v] : volumes) {
    bound = std::min(bound, v->checkpointer != nullptr ? v->checkpointer->durable_redo_from_asn()
                                                       : v->durable_recovery_asn);
  }
  return bound;
}

void Store::Impl::Housekeeping() {
  int64_t now = opt.clock->MonotonicMicros();
  if (now - last_housekeeping_us < kHousekeepingIntervalUs) return;
  last_housekeeping_us = now;
  // A write or sync error of the audit trail stays until a sync succeeds
  // (every append fails meanwhile): retry it here, so tmf recovers by itself
  // once the disk does. This also makes audit that waits in the buffer (an
  // open transaction's records) durable, so it can be shipped.
  absl::Status synced = writer->Sync();
  if (!synced.ok()) {
    Log(events::kFileSystemError, {{"op", "sync audit"}, {"path", audit_dir},
                                   {"error", std::string(synced.message())},
                                   {"retry_in_ms", absl::StrCat(kHousekeepingIntervalUs / 1000)}});
    sync_error = std::string(synced.message());
  } else {
    sync_error.clear();
  }
  RetryAborts();
  uint64_t recovery_asn;
  {
    absl::MutexLock l(&audit_mu);
    // Only what is durable may be called unneeded.
    recovery_asn = DurableBound();
  }
  RefreshIdleMeta(recovery_asn, next_txid.load());
  EnforceRetention();
  PublishStatus();
}

void Store::Impl::PublishStatus() {
  const int64_t now = opt.clock->MonotonicMicros();
  last_status_us = now;
  proto::ProcessStatus st = NewProcessStatus(node->name(), "tmf", "", opt.clock);  // state below
  const trail::End durable = writer->durable_end();
  uint64_t pending = 0, pending_bytes = 0, applied = 0;
  {
    absl::MutexLock l(&audit_mu);
    pending = queue.size();
    pending_bytes = unapplied_bytes;
    applied = applied_through;
  }
  std::string state = "RUNNING";
  std::string error;
  if (!sync_error.empty()) {
    state = "AUDIT_SYNC_FAILING";
    error = sync_error;
  } else if (!apply_error.empty()) {
    state = "APPLY_RETRYING";
    error = apply_error;
  } else if (refusing_commits.load()) {
    state = "REFUSING_COMMITS";
    absl::MutexLock l(&refusal_mu);
    error = refusal;
  }
  st.set_state(state);
  st.set_last_error(error);
  st.mutable_position()->set_asn(applied);
  st.set_applied_asn(applied);
  st.set_audit_end_asn(durable.asn);
  st.set_audit_end_time_us(durable.time_us);
  st.set_backlog_records(pending);
  st.set_backlog_bytes(pending_bytes);
  // No progress while nothing waits is not a stall.
  st.set_last_progress_age_ms(pending == 0 || last_apply_progress_us == 0
                                  ? 0
                                  : (now - last_apply_progress_us) / 1000);
  st.set_fsyncs(writer->fsyncs());
  st.set_records(commits.load());
  st.set_image_bytes(image_bytes.load());
  st.set_spilled_images(spilled_images.load());
  st.set_image_bytes_peak(image_bytes_peak.load());
  WriteStatus(node->data_dir(), st).IgnoreError();
}

void Store::Impl::EnforceRetention() {
  // After a system crash a volume in copy mode recovers from its last copy.
  const uint64_t bound = DurableRecoveryBound();
  const std::string released_path = layout::PinReleasedFile(audit_dir);
  const PinFiles pin = ReadPinFiles(released_path);
  absl::StatusOr<std::vector<trail::SegmentInfo>> segs =
      trail::ListSegments(opt.fs, audit_dir, kAuditTrail);
  if (!segs.ok()) return;
  const RetentionSettings settings = SettingsOf(cfg->tmf());
  const RetentionDecision d =
      DecideRetention(*segs, bound, pin, settings, {retention_warned, refusing_commits.load()});
  if (d.remove) {
    absl::Status s = writer->RemoveSegmentsBefore(d.keep_from);
    if (!s.ok()) {
      Log(events::kFileSystemError, {{"op", "remove"}, {"path", audit_dir},
           {"error", std::string(s.message())}});
    }
  }
  audit_bytes = d.kept_bytes;
  audit_segments = d.kept_segments;
  const uint64_t bytes = d.held_bytes;
  const uint64_t limit = settings.bound_bytes;
  const uint64_t pin_asn = d.pin.asn;
  if (d.release_pin) {
    ReleasePin(released_path, bytes, limit, pin_asn);
    return;  // the next pass removes the segments
  }
  if (d.refuse) {
    absl::MutexLock l(&refusal_mu);
    refusal = absl::StrCat(
        "audit retention bound reached: ", bytes, " bytes of audit are held for the backup (",
        "tmf.audit_retention_bytes ", limit, "), which has acknowledged only through ASN ",
        pin_asn, "; commits are refused until shipping catches up "
        "(tmf.retention_policy REFUSE_COMMITS)");
    refusing_commits = true;
    Log(events::kAuditRetentionBoundReached, {{"held_bytes", absl::StrCat(bytes)},
                                              {"bound_bytes", absl::StrCat(limit)},
                                              {"pin_asn", absl::StrCat(pin_asn)}});
  }
  if (d.warn) {
    Log(events::kAuditRetentionWarning, {{"bytes", absl::StrCat(bytes)},
         {"bound", absl::StrCat(limit)},
         {"pin_asn", absl::StrCat(pin_asn)}});
  }
  if (d.recovered) {
    Log(events::kAuditRetentionRecovered, {{"held_bytes", absl::StrCat(bytes)},
                                           {"bound_bytes", absl::StrCat(limit)}});
  }
  retention_warned = d.next.warned;
  refusing_commits = d.next.refusing;
}

PinFiles Store::Impl::ReadPinFiles(const std::string& released_path) {
  absl::StatusOr<std::optional<uint64_t>> pin = ReadPin(opt.fs, audit_dir);
  if (!opt.fs->Exists(released_path)) {
    // Gone (rdfcom initialize removes it when it takes a new initial copy):
    // honour the pin again, whoever wrote it.
    pin_released_to = 0;
  } else if (pin_released_to == 0) {
    absl::StatusOr<std::string> text = ReadFileToString(opt.fs, released_path);
    // A file that does not parse releases nothing: the pin is honoured
    // (the audit is kept).
    if (text.ok() && !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pin_released_to)) {
      pin_released_to = 0;
    }
  }
  PinFiles files;
  files.released_to = pin_released_to;
  if (!pin.ok()) {
    Log(events::kFileSystemError,
        {{"op", "read pin"}, {"error", std::string(pin.status().message())}});
    files.unreadable = true;
  } else {
    files.pin = *pin;
  }
  return files;
}

void Store::Impl::ReleasePin(const std::string& released_path, uint64_t bytes, uint64_t limit,
                             uint64_t pin_asn) {
  // Stop holding audit for the backup: it will need a new initial copy.
  uint64_t to;
  {
    absl::MutexLock l(&audit_mu);
    to = writer->durable_end().asn;
  }
  absl::Status w = WriteFileAtomically(opt.fs, released_path, absl::StrCat(to, "\n"));
  if (!w.ok()) {
    Log(events::kFileSystemError, {{"op", "release pin"}, {"error", std::string(w.message())}});
    return;
  }
  pin_released_to = to;
  Log(events::kAuditPinReleased, {{"held_bytes", absl::StrCat(bytes)},
                                  {"bound_bytes", absl::StrCat(limit)},
                                  {"pin_asn", absl::StrCat(pin_asn)},
                                  {"released_to_asn", absl::StrCat(to)}});
  retention_warned = false;
}

// ---------------------------------------------------------------------------
// Opening and recovery.

absl::Status Store::Impl::OpenVolumes() {
  const uint64_t default_map = cfg->lmdb().map_bytes();
  for (const proto::VolumeConfig& vc : cfg->volumes()) {
    auto v = std::make_unique<Volume>();
    v->name = vc.name();
    uint64_t map = vc.map_bytes() != 0 ? vc.map_bytes() : default_map;
    const std::string dir = config::VolumeDir(*node, vc.name());
    // A volume last written in copy mode (by tmf, or by an updater before a
    // takeover) goes back to its copy after a system crash; no reader keeps
    // it open meanwhile (lmdb::VolumeGate).
    RDF_ASSIGN_OR_RETURN(lmdb::VolumeGate gate, lmdb::VolumeGate::ForWriter(dir));
    RDF_ASSIGN_OR_RETURN(lmdb::Recovery rolled_back, lmdb::RecoverToCheckpoint(dir));
    if (rolled_back.restored) {
      const proto::LmdbCheckpoint& r = rolled_back.record;
      Log(events::kTmfVolumeRolledBack,
          {{"volume", vc.name()}, {"txnid", absl::StrCat(r.txnid())},
           {"redo_from_asn", absl::StrCat(r.redo_from_asn())},
           {"checkpoint_time", absl::FormatTime(absl::RFC3339_full,
                                                absl::FromUnixMicros(r.time_us()),
                                                absl::UTCTimeZone())}});
    }
    const proto::TmfConfig& t = cfg->tmf();
    RDF_ASSIGN_OR_RETURN(lmdb::Checkpointer::Mode mode,
                         lmdb::ChooseMode(t.checkpoint_mode(), t.checkpoint_copy_max_bytes(), dir));
    const bool copy = mode == lmdb::Checkpointer::Mode::kCopy;
    // In place every commit is synced: no older copy may ever be restored.
    if (!copy) RDF_RETURN_IF_ERROR(lmdb::RemoveCheckpoint(dir));
    RDF_ASSIGN_OR_RETURN(v->env, lmdb::Env::Open(dir, map, cfg->lmdb().max_dbs(),
                                                 copy ? lmdb::Durability::kDeferred
                                                      : lmdb::Durability::kEachCommit));
    RDF_ASSIGN_OR_RETURN(v->meta, v->env->OpenDb(lmdb::kMetaDb, true));
    RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(v->env.get()));
    RDF_ASSIGN_OR_RETURN(auto applied, lmdb::GetU64(txn.get(), v->meta, kAppliedAsn));
    RDF_ASSIGN_OR_RETURN(auto rec, lmdb::GetU64(txn.get(), v->meta, kRecoveryAsn));
    RDF_ASSIGN_OR_RETURN(auto maxtx, lmdb::GetU64(txn.get(), v->meta, kMaxTxid));
    RDF_ASSIGN_OR_RETURN(auto ddl, lmdb::GetU64(txn.get(), v->meta, kDdlAsn));
    txn.reset();
    v->ddl_asn = ddl.value_or(0);
    RDF_ASSIGN_OR_RETURN(auto dbs, v->env->ListDbs());
    {
      absl::MutexLock l(&v->mu);
      v->applied_asn = applied.value_or(0);
      for (const std::string& d : dbs) {
        if (d.rfind("__", 0) != 0) v->files.insert(d);
      }
    }
    v->stored_recovery_asn = rec.value_or(1);
    if (!copy) {
      // The newest meta page may be only in the page cache (MDB_NOMETASYNC,
      // or a killed process): made durable now, it is the retention bound.
      int rc = mdb_env_sync(v->env->env(), 1);
      if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("sync volume ", vc.name()));
    }
    v->durable_recovery_asn = v->stored_recovery_asn;
    if (maxtx.has_value() && *maxtx > next_txid.load()) next_txid = *maxtx;
    if (copy) {
      RDF_ASSIGN_OR_RETURN(v->checkpointer,
                           lmdb::Checkpointer::Start(
                               v->env.get(), absl::Milliseconds(t.checkpoint_copy_ms()),
                               {.redo_from_asn = v->stored_recovery_asn}, mode));
    }
    volumes[vc.name()] = std::move(v);
  }
  return absl::OkStatus();
}

namespace {
// Recovery holds the images of a change of a transaction without an outcome
// yet only up to this size; a larger one is read back from the audit when
// its transaction commits or is backed out, so large records of open
// transactions do not add up in recovery's memory.
constexpr uint64_t kRecoveryHeldImageBytes = 64 << 10;

// A change read by recovery: its record, and where the record is when its
// images were left there.
struct RecoveredChange {
  proto::AuditRecord r;
  std::optional<trail::Position> at;
};

struct OpenTxn {
  uint64_t first_asn = 0;
  std::vector<RecoveredChange> data;  // non-compensation DATA, in order
  size_t compensations = 0;
};

Op OpFromRecord(Volume* v, RecoveredChange& c) {
  Op op;
  op.vol = v;
  op.file = c.r.file();
  op.key = c.r.key();
  op.record = c.at;
  if (c.r.has_before()) op.before = std::move(*c.r.mutable_before());
  if (c.r.has_after()) op.after = std::make_shared<const std::string>(std::move(*c.r.mutable_after()));
  return op;
}
}  // namespace

absl::Status Store::Impl::Recover() {
  uint64_t start = UINT64_MAX;
  for (auto& [name, v] : volumes) start = std::min(start, v->stored_recovery_asn);
  if (start == UINT64_MAX || start == 0) start = 1;
  recovery.start_asn = start;
  trail::LocalEnd end;
  end.Publish(writer->durable_end());
  RDF_ASSIGN_OR_RETURN(auto reader,
                       trail::TrailReader::Open({audit_dir, kAuditTrail, opt.fs, &end}));
  // SeekToAsn starts at the oldest segment when `start` lies below it: the
  // audit recovery needs is gone (a retention bug, or a restore), and
  // replaying from later would silently skip committed changes.
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(opt.fs, audit_dir, kAuditTrail));
  if (!segs.empty() && segs.front().first_asn > start && writer->last_asn() >= start) {
    return absl::DataLossError(absl::StrCat(
        "tmf recovery needs the audit trail from ASN ", start, " but its oldest segment ",
        segs.front().path, " starts at ASN ", segs.front().first_asn,
        ": committed changes would be lost; restore the missing audit segments"));
  }
  RDF_RETURN_IF_ERROR(reader->SeekToAsn(start));

  std::map<uint64_t, OpenTxn> open;
  std::vector<Committed> redo;
  uint64_t max_txid = 0;
  auto bound = [&](uint64_t asn) {
    uint64_t b = asn + 1;
    for (auto& [id, t] : open) b = std::min(b, t.first_asn);
    return b;
  };
  auto flush = [&](uint64_t asn) -> absl::Status {
    if (redo.empty()) return absl::OkStatus();
    RDF_RETURN_IF_ERROR(ApplyBatch(redo, bound(asn), next_txid.load(),
                                   &recovery.redone_transactions));
    redo.clear();
    return absl::OkStatus();
  };
  while (true) {
    RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, reader->Next());
    if (!rec.has_value()) break;
    RDF_ASSIGN_OR_RETURN(proto::AuditRecord r, DecodeAuditRecord(*rec));
    recovery.end_asn = r.asn();
    max_txid = std::max(max_txid, r.txid());
    if (max_txid >= next_txid.load()) next_txid = max_txid + 1;
    switch (r.type()) {
      case proto::DATA: {
        OpenTxn& t = open[r.txid()];
        if (t.first_asn == 0) t.first_asn = r.asn();
        if (r.compensation()) {
          ++t.compensations;
        } else {
          RecoveredChange c{std::move(r), std::nullopt};
          if (ImageBytes(c.r) > kRecoveryHeldImageBytes) {
            c.at = rec->pos;
            c.r.clear_before();
            c.r.clear_after();
          }
          t.data.push_back(std::move(c));
        }
        break;
      }
      case proto::COMMIT: {
        auto it = open.find(r.txid());
        if (it == open.end()) break;
        Committed c{r.asn(), r.txid(), it->second.first_asn, {}};
        for (RecoveredChange& d : it->second.data) {
          if (Volume* v = FindVolume(d.r.volume())) c.ops.push_back(OpFromRecord(v, d));
        }
        open.erase(it);
        redo.push_back(std::move(c));
        if (redo.size() >= 256) RDF_RETURN_IF_ERROR(flush(r.asn()));
        break;
      }
      case proto::ABORT:
        open.erase(r.txid());
        break;
      case proto::DDL:
        RDF_RETURN_IF_ERROR(flush(r.asn()));
        RDF_RETURN_IF_ERROR(ApplyDdl(r));
        break;
      default:
        break;
    }
  }
  RDF_RETURN_IF_ERROR(flush(recovery.end_asn));
  recovery.end_asn = std::max(recovery.end_asn, writer->last_asn());
  {
    absl::MutexLock l(&audit_mu);
    next_asn = std::max(writer->last_asn(), recovery.end_asn) + 1;
  }
  // Back out transactions that never reached an outcome: compensate the
  // changes not yet compensated, newest first, then ABORT.
  for (auto& [txid, t] : open) {
    size_t remaining = t.data.size() - std::min(t.compensations, t.data.size());
    for (size_t i = remaining; i-- > 0;) {
      const proto::AuditRecord& d = t.data[i].r;
      Images im;
      if (t.data[i].at.has_value()) {
        RDF_ASSIGN_OR_RETURN(im, ReadImages(*t.data[i].at));
      } else {
        if (d.has_before()) im.before = d.before();
        if (d.has_after()) im.after = d.after();
      }
      proto::AuditRecord c =
          Compensation(txid, d.volume(), d.file(), d.key(), im.before, im.after);
      RDF_RETURN_IF_ERROR(Append(c, nullptr).status());
    }
    proto::AuditRecord a;
    a.set_type(proto::ABORT);
    a.set_txid(txid);
    RDF_RETURN_IF_ERROR(Append(a, nullptr).status());
    ++recovery.backed_out_transactions;
  }
  RDF_RETURN_IF_ERROR(writer->Sync());
  recovery.next_txid = next_txid.load();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  if (options.config == nullptr) {
    return absl::InvalidArgumentError("tmf::Store::Open needs a configuration");
  }
  // Debian's Abseil checks every Mutex acquisition for lock-order cycles
  // (a debug aid costing a graph lookup per lock); our lock order is fixed.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->cfg = &options.config->proto;
  impl->image_budget = impl->cfg->tmf().image_memory_bytes();
  impl->node = options.config->FindNode(options.node);
  if (impl->node == nullptr) {
    return absl::NotFoundError(absl::StrCat("no node named '", options.node,
                                            "' in ", options.config->path));
  }
  if (impl->node->role() == proto::BACKUP &&
      !options.fs->Exists(TakeoverReportPath(*impl->node, "json"))) {
    // Writing to a backup's volumes behind the updaters would make the
    // copies differ; after a completed takeover the backup is a primary.
    return absl::FailedPreconditionError(absl::StrCat(
        "node '", options.node, "' is a backup; tmf opens it only after a completed "
        "takeover (rdfcom takeover)"));
  }
  RDF_ASSIGN_OR_RETURN(impl->process_lock,
                       ProcessLock::Acquire(config::LockDir(*impl->node), "tmf"));
  if (options.log_events) {
    events::EventLogOptions eo =
        EventLogOptionsFor(*options.config, *impl->node, "tmf", options.fs, options.clock);
    RDF_ASSIGN_OR_RETURN(impl->events, events::EventLog::Open(eo));
  }
  impl->locks = std::make_unique<LockManager>(
      absl::Milliseconds(impl->cfg->tmf().lock_timeout_ms()));
  impl->audit_dir = config::AuditDir(*impl->node);
  trail::WriterOptions wo;
  wo.dir = impl->audit_dir;
  wo.name = kAuditTrail;
  wo.segment_bytes = impl->cfg->trail().audit_segment_bytes();
  wo.fs = options.fs;
  wo.clock = options.clock;
  RDF_ASSIGN_OR_RETURN(impl->writer, trail::TrailWriter::Open(wo));
  RDF_RETURN_IF_ERROR(impl->OpenVolumes());
  RDF_RETURN_IF_ERROR(impl->Recover());
  const RecoveryReport& r = impl->recovery;
  impl->Log(events::kRecoveryComplete, {{"start_asn", absl::StrCat(r.start_asn)},
             {"end_asn", absl::StrCat(r.end_asn)},
             {"redone", absl::StrCat(r.redone_transactions)},
             {"backed_out", absl::StrCat(r.backed_out_transactions)}});
  if (impl->node->role() == proto::BACKUP) {
    // A promoted backup: takeover left the next id above every id received.
    impl->Log(events::kTxidFloorRaised,
              {{"first_txid", absl::StrCat(r.next_txid)},
               {"highest_seen_txid", absl::StrCat(r.next_txid - 1)}});
  }
  impl->last_apply_progress_us = options.clock->MonotonicMicros();
  Impl* p = impl.get();
  impl->applier = std::thread([p] { p->ApplierLoop(); });
  return std::unique_ptr<Store>(new Store(std::move(impl)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() {
  impl_->writer->Sync().IgnoreError();  // the applier applies only durable commits
  {
    absl::MutexLock l(&impl_->audit_mu);
    impl_->stop = true;
    impl_->work_cv.SignalAll();
  }
  impl_->applier.join();
  // Copy mode: everything synced in place, and a clean record (nothing to
  // restore at the next open).
  for (auto& [name, v] : impl_->volumes) {
    if (v->checkpointer == nullptr) continue;
    absl::MutexLock w(&v->write_mu);
    absl::Status s = v->checkpointer->SyncNow({.redo_from_asn = v->stored_recovery_asn}, true);
    if (!s.ok()) {
      impl_->Log(events::kFileSystemError,
                 {{"op", "checkpoint"}, {"volume", name}, {"error", std::string(s.message())}});
    }
  }
}

const RecoveryReport& Store::recovery() const { return impl_->recovery; }

StoreStats Store::stats() {
  StoreStats s;
  s.commits = impl_->commits.load();
  s.aborts = impl_->aborts.load();
  s.fsyncs = impl_->writer->fsyncs();
  s.last_asn = impl_->writer->last_asn();
  s.durable_asn = impl_->writer->durable_end().asn;
  {
    absl::MutexLock l(&impl_->audit_mu);
    s.applied_asn = impl_->applied_through;
    s.pending_commits = impl_->queue.size();
    s.pending_bytes = impl_->unapplied_bytes;
  }
  s.audit_bytes = impl_->audit_bytes;
  s.audit_segments = impl_->audit_segments;
  s.image_bytes = impl_->image_bytes.load();
  s.spilled_images = impl_->spilled_images.load();
  s.image_bytes_peak = impl_->image_bytes_peak.load();
  return s;
}

absl::Status Store::WaitApplied() {
  RDF_RETURN_IF_ERROR(impl_->writer->Sync());
  absl::MutexLock l(&impl_->audit_mu);
  uint64_t target = impl_->queued_through;
  impl_->apply_now = true;
  impl_->work_cv.Signal();
  while (impl_->applied_through < target) {
    impl_->applied_cv.WaitWithTimeout(&impl_->audit_mu, absl::Milliseconds(100));
  }
  return absl::OkStatus();
}

bool Store::FileExists(absl::string_view volume, absl::string_view file) {
  return impl_->VolumeWithFile(volume, file).ok();
}

absl::StatusOr<std::optional<std::string>> Store::Read(absl::string_view volume,
                                                       absl::string_view file,
                                                       absl::string_view key) {
  RDF_ASSIGN_OR_RETURN(Volume * v, impl_->VolumeWithFile(volume, file));
  return impl_->ReadCommitted(v, file, key);
}

absl::Status Store::CreateFile(absl::string_view volume, absl::string_view file) {
  Volume* v = impl_->FindVolume(volume);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown volume ", volume));
  }
  if (file.empty() || file.rfind("__", 0) == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "file name '", file, "' is empty or starts with '__' (reserved)"));
  }
  absl::MutexLock ddl(&impl_->ddl_mu);
  {
    absl::MutexLock l(&v->mu);
    if (v->files.contains(file)) {
      return absl::AlreadyExistsError(
          absl::StrCat("file ", file, " already exists on ", volume));
    }
  }
  proto::AuditRecord r;
  r.set_type(proto::DDL);
  r.set_ddl(proto::CREATE_FILE);
  r.set_txid(impl_->next_txid.fetch_add(1));
  r.set_volume(std::string(volume));
  r.set_file(std::string(file));
  RDF_ASSIGN_OR_RETURN(uint64_t asn, impl_->Append(r, nullptr));
  r.set_asn(asn);
  RDF_RETURN_IF_ERROR(impl_->writer->Sync());
  return impl_->ApplyDdl(r);
}

absl::Status Store::PurgeFile(absl::string_view volume, absl::string_view file) {
  Volume* v = impl_->FindVolume(volume);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown volume ", volume));
  }
  absl::MutexLock ddl(&impl_->ddl_mu);
  {
    absl::MutexLock l(&v->mu);
    if (!v->files.contains(file)) {
      return absl::NotFoundError(
          absl::StrCat("file ", file, " does not exist on volume ", volume));
    }
    // NonStop's error 12: a file an open transaction has written cannot be
    // purged (its DATA would follow the PURGE, and its commit would find no
    // file to apply to, on this node and on the backup).
    auto w = v->open_writers.find(file);
    if (w != v->open_writers.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "file ", file, " on ", volume, " is in use by ", w->second,
          " open transaction(s) (error 12); commit or abort them before purging it"));
    }
    v->files.erase(file);  // new operations on it fail from here on
  }
  proto::AuditRecord r;
  r.set_type(proto::DDL);
  r.set_ddl(proto::PURGE_FILE);
  r.set_txid(impl_->next_txid.fetch_add(1));
  r.set_volume(std::string(volume));
  r.set_file(std::string(file));
  absl::StatusOr<uint64_t> asn = impl_->Append(r, nullptr);
  if (!asn.ok()) {
    absl::MutexLock l(&v->mu);
    v->files.insert(std::string(file));  // not purged after all
    return asn.status();
  }
  r.set_asn(*asn);
  RDF_RETURN_IF_ERROR(WaitApplied());  // earlier commits reach the file first
  RDF_RETURN_IF_ERROR(impl_->ApplyDdl(r));
  absl::MutexLock l(&v->mu);
  std::string prefix = FileKey(file, "");
  absl::erase_if(v->overlay, [&](const auto& e) {
    return e.first.rfind(prefix, 0) == 0;
  });
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Transaction>> Store::Begin() {
  auto s = std::make_unique<Transaction::State>();
  s->store = impl_.get();
  s->id = impl_->next_txid.fetch_add(1);
  return std::unique_ptr<Transaction>(new Transaction(std::move(s)));
}

// ---------------------------------------------------------------------------
// Transactions.

namespace {
enum class Mode { kInsert, kUpdate, kUpsert, kDelete };

std::string LockKey(absl::string_view volume, absl::string_view file,
                    absl::string_view key) {
  return absl::StrCat(volume, absl::string_view("\0", 1), file,
                      absl::string_view("\0", 1), key);
}

absl::Status Write(Transaction::State* s, absl::string_view volume,
                   absl::string_view file, absl::string_view key,
                   std::optional<absl::string_view> value, Mode mode) {
  Store::Impl* st = s->store;
  if (s->ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", s->id, " has ended"));
  }
  RDF_ASSIGN_OR_RETURN(Volume * v, st->VolumeWithFile(volume, file, s));
  std::string lock_key = LockKey(volume, file, key);
  auto own = s->writes.find(lock_key);
  if (own == s->writes.end()) {
    // Lock() returns at once for a key this transaction already holds.
    RDF_RETURN_IF_ERROR(st->locks->Lock(s->id, lock_key));
    s->lock_keys.push_back(lock_key);
  }
  std::optional<std::string> current;
  if (own != s->writes.end()) {
    RDF_ASSIGN_OR_RETURN(current, st->AfterOf(s->ops[own->second]));
  } else {
    RDF_ASSIGN_OR_RETURN(current, st->ReadCommitted(v, file, key));
  }
  proto::AuditRecord r;
  r.set_type(proto::DATA);
  r.set_txid(s->id);
  r.set_volume(std::string(volume));
  r.set_file(std::string(file));
  r.set_key(std::string(key));
  switch (mode) {
    case Mode::kInsert:
      if (current.has_value()) {
        return absl::AlreadyExistsError(absl::StrCat(
            "key already exists in ", volume, "/", file, " (error 10)"));
      }
      break;
    case Mode::kUpdate:
    case Mode::kDelete:
      if (!current.has_value()) {
        return absl::NotFoundError(absl::StrCat(
            "key not found in ", volume, "/", file, " (error 11)"));
      }
      break;
    case Mode::kUpsert:
      break;
  }
  r.set_op(mode == Mode::kDelete  ? proto::DELETE
           : current.has_value() ? proto::UPDATE
                                 : proto::INSERT);
  // The before image moves from the record into the change once it is
  // appended, and the after image is copied from `value` (each held once),
  // or they stay only in the audit once tmf.image_memory_bytes is reached.
  if (current.has_value()) r.set_before(std::move(*current));
  const size_t bytes = AuditRecordBytes(r) + (value.has_value() ? value->size() : 0);
  if (s->bytes + bytes > st->cfg->tmf().max_txn_bytes()) {
    st->Log(events::kTransactionTooLarge, {{"txid", absl::StrCat(s->id)},
             {"max_txn_bytes", absl::StrCat(st->cfg->tmf().max_txn_bytes())}});
    return absl::ResourceExhaustedError(absl::StrCat(
        "transaction ", s->id, " would exceed tmf.max_txn_bytes (",
        st->cfg->tmf().max_txn_bytes(), " bytes of audit); abort it and split "
        "the work into smaller transactions"));
  }
  trail::Position at;
  RDF_RETURN_IF_ERROR(st->Append(r, s, &at, value).status());
  s->bytes += bytes;
  Op op;
  op.vol = v;
  op.file = std::string(file);
  op.key = std::string(key);
  st->KeepOrSpill(op, r, value, at);
  s->writes[lock_key] = s->ops.size();
  s->ops.push_back(std::move(op));
  return absl::OkStatus();
}

void Release(Transaction::State* s) {
  s->ended = true;
  s->store->ReleaseClaims(s->id, s->lock_keys, s->written_files);
}
}  // namespace

absl::StatusOr<Volume*> Store::Impl::VolumeWithFile(absl::string_view volume,
                                                    absl::string_view file,
                                                    Transaction::State* writer) {
  Volume* v = FindVolume(volume);
  if (v == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "unknown volume ", volume, "; the configuration lists the volumes"));
  }
  absl::MutexLock l(&v->mu);
  if (!v->files.contains(file)) {
    return absl::NotFoundError(absl::StrCat("file ", file, " does not exist on volume ",
                                            volume, "; create it first"));
  }
  if (writer == nullptr) return v;
  for (const auto& [wv, wf] : writer->written_files) {
    if (wv == v && wf == file) return v;
  }
  // Registered before the first DATA record is appended.
  ++v->open_writers[file];
  writer->written_files.emplace_back(v, std::string(file));
  return v;
}

void Store::Impl::ReleaseClaims(uint64_t txid, std::vector<std::string>& lock_keys,
                                std::vector<std::pair<Volume*, std::string>>& written_files) {
  locks->ReleaseAll(txid, lock_keys);
  lock_keys.clear();
  for (const auto& [v, file] : written_files) {
    absl::MutexLock l(&v->mu);
    auto it = v->open_writers.find(file);
    if (it != v->open_writers.end() && --it->second <= 0) v->open_writers.erase(it);
  }
  written_files.clear();
}

absl::Status Store::Impl::CompleteAbort(PendingAbort& a) {
  while (!a.to_compensate.empty()) {
    const Op& op = a.to_compensate.back();
    RDF_ASSIGN_OR_RETURN(Images im, ImagesOf(op));
    proto::AuditRecord c =
        Compensation(a.txid, op.vol->name, op.file, op.key, im.before, im.after);
    RDF_RETURN_IF_ERROR(Append(c, nullptr).status());
    a.to_compensate.pop_back();
  }
  if (!a.abort_written) {
    proto::AuditRecord r;
    r.set_type(proto::ABORT);
    r.set_txid(a.txid);
    RDF_ASSIGN_OR_RETURN(a.abort_asn, Append(r, nullptr));
    a.abort_written = true;
  }
  // Durable before the transaction stops holding the recovery bound: a
  // recovery point past an ABORT that a crash can take back would leave the
  // transaction without an outcome for ever (recovery would not see it).
  RDF_RETURN_IF_ERROR(writer->Sync());
  {
    absl::MutexLock l(&audit_mu);
    Finish(a.first_asn);
  }
  ReleaseClaims(a.txid, a.lock_keys, a.written_files);
  return absl::OkStatus();
}

void Store::Impl::RetryAborts() {
  std::vector<PendingAbort> todo;
  {
    absl::MutexLock l(&aborts_mu);
    todo.swap(pending_aborts);
  }
  std::vector<PendingAbort> left;
  for (PendingAbort& a : todo) {
    if (!CompleteAbort(a).ok()) left.push_back(std::move(a));
  }
  if (left.empty()) return;
  absl::MutexLock l(&aborts_mu);
  for (PendingAbort& a : left) pending_aborts.push_back(std::move(a));
}

Transaction::Transaction(std::unique_ptr<State> s) : s_(std::move(s)) {}

Transaction::~Transaction() {
  if (!s_->ended) Abort().IgnoreError();
}

uint64_t Transaction::id() const { return s_->id; }

absl::StatusOr<std::optional<std::string>> Transaction::Read(
    absl::string_view volume, absl::string_view file, absl::string_view key) {
  if (s_->ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", s_->id, " has ended"));
  }
  RDF_ASSIGN_OR_RETURN(Volume * v, s_->store->VolumeWithFile(volume, file));
  auto own = s_->writes.find(LockKey(volume, file, key));
  if (own != s_->writes.end()) return s_->store->AfterOf(s_->ops[own->second]);
  return s_->store->ReadCommitted(v, file, key);
}

absl::StatusOr<std::optional<std::string>> Transaction::ReadForUpdate(
    absl::string_view volume, absl::string_view file, absl::string_view key) {
  if (s_->ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", s_->id, " has ended"));
  }
  RDF_RETURN_IF_ERROR(s_->store->VolumeWithFile(volume, file).status());
  std::string lock_key = LockKey(volume, file, key);
  if (!s_->writes.contains(lock_key) &&
      std::find(s_->lock_keys.begin(), s_->lock_keys.end(), lock_key) ==
          s_->lock_keys.end()) {
    RDF_RETURN_IF_ERROR(s_->store->locks->Lock(s_->id, lock_key));
    s_->lock_keys.push_back(lock_key);
  }
  return Read(volume, file, key);
}

absl::Status Transaction::Insert(absl::string_view volume, absl::string_view file,
                                 absl::string_view key, absl::string_view value) {
  return Write(s_.get(), volume, file, key, value, Mode::kInsert);
}
absl::Status Transaction::Update(absl::string_view volume, absl::string_view file,
                                 absl::string_view key, absl::string_view value) {
  return Write(s_.get(), volume, file, key, value, Mode::kUpdate);
}
absl::Status Transaction::Upsert(absl::string_view volume, absl::string_view file,
                                 absl::string_view key, absl::string_view value) {
  return Write(s_.get(), volume, file, key, value, Mode::kUpsert);
}
absl::Status Transaction::Delete(absl::string_view volume, absl::string_view file,
                                 absl::string_view key) {
  return Write(s_.get(), volume, file, key, std::nullopt, Mode::kDelete);
}

absl::Status Transaction::Commit() {
  State* s = s_.get();
  Store::Impl* st = s->store;
  if (s->ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", s->id, " has ended"));
  }
  if (s->ops.empty()) {  // read-only: nothing to make durable
    Release(s);
    st->commits.fetch_add(1);
    return absl::OkStatus();
  }
  if (st->refusing_commits.load()) {
    // The transaction stays open: the caller aborts it or tries again.
    absl::MutexLock l(&st->refusal_mu);
    return absl::ResourceExhaustedError(st->refusal);
  }
  proto::AuditRecord r;
  r.set_type(proto::COMMIT);
  r.set_txid(s->id);
  r.set_time_us(st->opt.clock->NowMicros());
  std::string payload = EncodeAuditPayload(r);
  // ASN order, overlay and apply queue change together, so the applier
  // sees commits in ASN order and readers never miss one.
  absl::Status appended = [&]() -> absl::Status {
    absl::MutexLock l(&st->audit_mu);
    // Back-pressure: committed changes waiting for the volumes stay bounded
    // (invariant 6); commits wait while the applier is two batches behind.
    const size_t limit = 2 * size_t{st->cfg->tmf().apply_batch_txns()};
    const uint64_t bytes = ApproximateBytes(s->ops);
    while ((st->queue.size() >= limit ||
            (st->unapplied_bytes > 0 && st->unapplied_bytes + bytes > kMaxUnappliedBytes)) &&
           !st->stop) {
      st->apply_now = true;
      st->work_cv.Signal();
      st->applied_cv.WaitWithTimeout(&st->audit_mu, absl::Milliseconds(100));
    }
    uint64_t asn = st->next_asn;
    RDF_RETURN_IF_ERROR(st->writer->Append(asn, TypeByte(proto::COMMIT),
                                           payload, r.time_us()));
    ++st->next_asn;
    for (const Op& op : s->ops) {
      absl::MutexLock vl(&op.vol->mu);
      op.vol->overlay[FileKey(op.file, op.key)] = OverlayEntry{op.after, asn, op.record};
    }
    st->queue.push_back(Committed{asn, s->id, s->first_asn, std::move(s->ops), bytes});
    st->unapplied_bytes += bytes;
    st->queued_through = asn;
    return absl::OkStatus();
  }();
  if (!appended.ok()) {
    Abort().IgnoreError();
    return Annotate(appended, absl::StrCat("commit of transaction ", s->id,
                                           " failed and it was aborted"));
  }
  s->ended = true;
  absl::Status synced = st->writer->Sync();
  Release(s);
  if (!synced.ok()) {
    // The COMMIT is written but not yet durable; a later sync (any
    // transaction's) makes it so, in order. Say so rather than guess.
    return Annotate(synced, absl::StrCat("commit of transaction ", s->id,
                                         " is not yet durable"));
  }
  st->commits.fetch_add(1);
  return absl::OkStatus();
}

absl::Status Transaction::Abort() {
  State* s = s_.get();
  Store::Impl* st = s->store;
  if (s->ended) {
    return absl::FailedPreconditionError(
        absl::StrCat("transaction ", s->id, " has ended"));
  }
  st->aborts.fetch_add(1);
  if (s->first_asn == 0) {  // nothing in the audit trail: nothing to undo
    s->ops.clear();
    Release(s);
    return absl::OkStatus();
  }
  s->ended = true;
  PendingAbort a;
  a.txid = s->id;
  a.first_asn = s->first_asn;
  a.to_compensate = std::move(s->ops);
  a.lock_keys = std::move(s->lock_keys);
  a.written_files = std::move(s->written_files);
  s->ops.clear();
  s->lock_keys.clear();
  s->written_files.clear();
  absl::Status status = st->CompleteAbort(a);
  if (status.ok()) return status;
  {
    absl::MutexLock l(&st->aborts_mu);
    st->pending_aborts.push_back(std::move(a));
  }
  return Annotate(status, absl::StrCat(
      "abort of transaction ", s->id, " is not yet durable; tmf completes it once the "
      "audit trail can be written again and holds its locks until then"));
}

}  // namespace rdf::tmf
