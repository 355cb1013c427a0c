#include "updater/updater.h"

#include <unistd.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "audit.pb.h"
#include "common/audit_record.h"
#include "common/event_catalog.h"
#include "common/lmdb_env.h"
#include "common/process_main.h"
#include "common/rtd_watch.h"
#include "common/save_point.h"
#include "common/shared_blob.h"
#include "common/status_file.h"
#include "common/status_macros.h"
#include "common/trail_reader.h"

namespace rdf::updater {
namespace {

// Bookkeeping keys in the volume's __meta database (the restart point).
constexpr char kRestartSegment[] = "updater_restart_segment";
constexpr char kRestartOffset[] = "updater_restart_offset";
constexpr char kAppliedAsn[] = "updater_applied_asn";

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
    const proto::TrailEnd* e = FindTrailEnd(sp_, trail_);
    if (e == nullptr) return {};
    return trail::End{sp_.asn(), {e->segment(), e->offset()}, sp_.audit_end_time_us()};
  }
  void WaitBeyond(uint64_t asn, absl::Duration timeout) override {
    if (Get().asn > asn) return;
    blob_->WaitChange(gen_, timeout);
  }
  const proto::SavePoint& save_point() const { return sp_; }

 private:
  SharedBlob* blob_;
  std::string trail_;
  uint64_t gen_ = 0;
  proto::SavePoint sp_;
};

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
  std::unique_ptr<SharedBlob> blob;
  std::unique_ptr<SavePointLimit> limit;
  std::unique_ptr<trail::TrailReader> reader;

  std::string state = "STARTING";
  std::string last_error;
  trail::Position restart;
  uint64_t applied_asn = 0;
  int64_t applied_time_us = 0;
  int64_t last_progress_us = 0, last_status_us = 0;
  uint64_t records = 0, batches = 0, skipped = 0;
  std::unique_ptr<RtdWatch> rtd_watch;

  void Log(uint32_t number, events::EventFields fields = {}) {
    base.events->Log(number, fields);
  }
  int64_t Now() { return opt.clock->MonotonicMicros(); }

  absl::Status LoadRestartPoint();
  bool OpenSources();
  absl::Status ApplyBatch(const std::vector<trail::Record>& batch);
  absl::Status ApplyDdl(const proto::AuditRecord& r);
  absl::Status SaveRestart(lmdb::WriteTxn* txn, const trail::Position& next, uint64_t asn);
  void PublishStatus();
};

absl::Status Updater::Impl::LoadRestartPoint() {
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env.get()));
  RDF_ASSIGN_OR_RETURN(auto seg, lmdb::GetU64(txn.get(), meta, kRestartSegment));
  RDF_ASSIGN_OR_RETURN(auto off, lmdb::GetU64(txn.get(), meta, kRestartOffset));
  RDF_ASSIGN_OR_RETURN(auto asn, lmdb::GetU64(txn.get(), meta, kAppliedAsn));
  if (seg.has_value() && off.has_value()) restart = {*seg, *off};
  applied_asn = asn.value_or(0);
  return absl::OkStatus();
}

bool Updater::Impl::OpenSources() {
  if (!blob) {
    auto b = SharedBlob::OpenReadOnly(SavePointShmPath(trail_dir));
    if (!b.ok()) return false;  // no receiver has run yet
    blob = *std::move(b);
    limit = std::make_unique<SavePointLimit>(blob.get(), trail_name);
  }
  if (!reader) {
    auto r = trail::TrailReader::Open({trail_dir, trail_name, opt.fs, limit.get()});
    if (!r.ok()) return false;
    reader = *std::move(r);
    if (restart.segment != 0) {
      absl::Status s = reader->SeekToPosition(restart);
      if (!s.ok()) {
        last_error = std::string(s.message());
        reader.reset();
        return false;
      }
    }
    Log(events::kRestartingAt, {{"position", trail::ToString(restart)},
                                {"asn", absl::StrCat(applied_asn)}});
  }
  return true;
}

absl::Status Updater::Impl::SaveRestart(lmdb::WriteTxn* txn, const trail::Position& next,
                                        uint64_t asn) {
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kRestartSegment, next.segment));
  RDF_RETURN_IF_ERROR(lmdb::PutU64(txn, meta, kRestartOffset, next.offset));
  return lmdb::PutU64(txn, meta, kAppliedAsn, asn);
}

absl::Status Updater::Impl::ApplyDdl(const proto::AuditRecord& r) {
  if (r.ddl() == proto::CREATE_FILE) return env->OpenDb(r.file(), true).status();
  absl::Status s = env->DropDb(r.file());
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

// One LMDB transaction: the batch's changes and the restart point after it.
absl::Status Updater::Impl::ApplyBatch(const std::vector<trail::Record>& batch) {
  std::vector<proto::AuditRecord> recs;
  recs.reserve(batch.size());
  absl::flat_hash_map<std::string, MDB_dbi> dbis;
  for (const trail::Record& rec : batch) {
    RDF_ASSIGN_OR_RETURN(proto::AuditRecord r, DecodeAuditRecord(rec));
    if (r.type() == proto::DATA && !dbis.contains(r.file())) {
      absl::StatusOr<MDB_dbi> d = env->OpenDb(r.file(), false);
      if (!d.ok()) return Annotate(d.status(), "open file for apply");
      dbis[r.file()] = *d;
    }
    recs.push_back(std::move(r));
  }
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(env.get()));
  for (const proto::AuditRecord& r : recs) {
    MDB_dbi dbi = dbis[r.file()];
    RDF_ASSIGN_OR_RETURN(std::optional<std::string> cur, txn->Get(dbi, r.key()));
    bool insert = r.op() == proto::INSERT, remove = r.op() == proto::DELETE;
    if (insert && cur.has_value()) {
      ++skipped;
      Log(events::kDuplicateKeySkipped, {{"asn", absl::StrCat(r.asn())}, {"file", r.file()},
                                         {"txid", absl::StrCat(r.txid())}});
      continue;
    }
    if (!insert && !cur.has_value()) {
      ++skipped;
      Log(events::kMissingKeySkipped, {{"asn", absl::StrCat(r.asn())}, {"file", r.file()},
                                       {"txid", absl::StrCat(r.txid())}});
      continue;
    }
    if (remove) {
      RDF_RETURN_IF_ERROR(txn->Delete(dbi, r.key()));
    } else {
      RDF_RETURN_IF_ERROR(txn->Put(dbi, r.key(), r.after()));
    }
  }
  RDF_RETURN_IF_ERROR(SaveRestart(txn.get(), batch.back().next, batch.back().asn));
  RDF_RETURN_IF_ERROR(txn->Commit());
  restart = batch.back().next;
  applied_asn = batch.back().asn;
  applied_time_us = recs.back().time_us();
  records += batch.size();
  ++batches;
  last_progress_us = Now();
  return absl::OkStatus();
}

void Updater::Impl::PublishStatus() {
  proto::ProcessStatus st;
  st.set_version(1);
  st.set_node(base.node->name());
  st.set_process(process);
  st.set_volume(opt.volume);
  st.set_state(state);
  st.set_time_us(opt.clock->NowMicros());
  st.set_pid(getpid());
  st.mutable_position()->set_segment(restart.segment);
  st.mutable_position()->set_offset(restart.offset);
  st.mutable_position()->set_asn(applied_asn);
  proto::SavePoint sp = limit ? limit->save_point() : proto::SavePoint();
  trail::End end = limit ? limit->Get() : trail::End{};
  // Caught up with the save point: applied through it.
  bool caught_up = limit && end.pos == restart;
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
  if (end.pos.segment == restart.segment && end.pos.offset >= restart.offset) {
    st.set_backlog_bytes(end.pos.offset - restart.offset);
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
  RDF_ASSIGN_OR_RETURN(impl->env,
                       lmdb::Env::Open(config::VolumeDir(*impl->base.node, options.volume),
                                       vol->map_bytes(), impl->cfg->lmdb().max_dbs()));
  RDF_ASSIGN_OR_RETURN(impl->meta, impl->env->OpenDb(lmdb::kMetaDb, true));
  RDF_RETURN_IF_ERROR(impl->LoadRestartPoint());
  return std::unique_ptr<Updater>(new Updater(std::move(impl)));
}

Updater::Updater(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Updater::~Updater() = default;

absl::Status Updater::Run(const std::atomic<bool>* stop) {
  Impl& s = *impl_;
  const size_t max_batch = s.cfg->updater().batch_records();
  int64_t backoff_us = 100'000;
  std::vector<trail::Record> batch;
  while (!stop->load()) {
    if (s.Now() - s.last_status_us >= 1'000'000) {
      s.last_status_us = s.Now();
      s.PublishStatus();
    }
    if (!s.OpenSources()) {
      s.state = "WAITING";
      s.opt.clock->SleepMicros(200'000);
      continue;
    }
    batch.clear();
    absl::Status st = absl::OkStatus();
    std::optional<proto::AuditRecord> ddl;
    while (batch.size() < max_batch) {
      absl::StatusOr<std::optional<trail::Record>> rec =
          batch.empty() ? s.reader->NextWait(absl::Milliseconds(100)) : s.reader->Next();
      if (!rec.ok()) {
        st = rec.status();
        break;
      }
      if (!rec->has_value()) break;
      if ((*rec)->type == proto::DDL) {
        // DDL is applied on its own, in order with the data around it.
        if (!batch.empty()) {
          RDF_RETURN_IF_ERROR(s.reader->SeekToPosition((*rec)->pos));
          break;
        }
        absl::StatusOr<proto::AuditRecord> r = DecodeAuditRecord(**rec);
        if (!r.ok()) {
          st = r.status();
          break;
        }
        ddl = *r;
        batch.push_back(**std::move(rec));
        break;
      }
      batch.push_back(**std::move(rec));
    }
    if (st.ok() && ddl.has_value()) {
      st = s.ApplyDdl(*ddl);
      if (st.ok()) {
        s.Log(events::kDdlApplied, {{"file", ddl->file()}, {"op", proto::DdlOp_Name(ddl->ddl())},
                                    {"asn", absl::StrCat(ddl->asn())}});
        auto txn = lmdb::WriteTxn::Begin(s.env.get());
        st = txn.ok() ? s.SaveRestart(txn->get(), batch.back().next, batch.back().asn) : txn.status();
        if (st.ok()) st = (*txn)->Commit();
        if (st.ok()) {
          s.restart = batch.back().next;
          s.applied_asn = batch.back().asn;
        }
      }
    } else if (st.ok() && !batch.empty()) {
      st = s.ApplyBatch(batch);
      if (!st.ok() && absl::IsResourceExhausted(st) &&
          absl::StrContains(st.message(), "MDB_MAP_FULL")) {
        st = s.env->Grow();
        if (st.ok()) {
          s.Log(events::kVolumeMapGrown, {{"map_bytes", absl::StrCat(s.env->map_bytes())}});
          st = absl::UnavailableError("map grown; retrying");
        }
      }
    }
    if (st.ok()) {
      if (s.state != "RUNNING" && s.state != "WAITING") {
        s.Log(events::kStorageErrorCleared);
      }
      s.state = "RUNNING";
      s.last_error.clear();
      backoff_us = 100'000;
      continue;
    }
    // Nothing is skipped: go back to the restart point and retry.
    s.last_error = std::string(st.message());
    if (s.state != "RETRYING") {
      s.Log(absl::IsDataLoss(st) ? events::kTrailDamaged : events::kStorageError,
            {{"error", s.last_error}, {"position", trail::ToString(s.restart)},
             {"retry_in_ms", absl::StrCat(backoff_us / 1000)}});
    }
    s.state = "RETRYING";
    s.reader.reset();
    s.PublishStatus();
    s.opt.clock->SleepMicros(backoff_us);
    backoff_us = std::min<int64_t>(backoff_us * 2, 10'000'000);
  }
  s.PublishStatus();
  s.base.events->Flush().IgnoreError();
  return absl::OkStatus();
}

}  // namespace rdf::updater
