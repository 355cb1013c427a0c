#include "rdfcom/initialize.h"

#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/event_catalog.h"
#include "common/initial_copy.h"
#include "common/lmdb_env.h"
#include "common/pin_file.h"
#include "common/process_lock.h"
#include "common/process_main.h"
#include "common/status_file.h"
#include "common/status_macros.h"
#include "common/takeover_state.h"
#include "common/trail_reader.h"
#include "common/volume_meta.h"
#include "rdfcom/initialize_scan.h"

namespace rdf::rdfcom {
namespace {

constexpr char kAuditTrail[] = "MAT";

// Bookkeeping a copied volume must not carry to the backup: tmf's (it
// counts the primary's audit) and an updater's or a takeover's (from an
// earlier life of the volume as a backup). tmf's next transaction id
// (kMetaMaxTxid) stays: a promoted backup starts above it anyway.
constexpr const char* kDroppedMetaKeys[] = {
    kMetaTmfAppliedAsn, kMetaTmfRecoveryAsn, kMetaRestartSegment, kMetaRestartOffset,
    kMetaAppliedAsn,    kMetaAppliedRecords, kMetaAppliedBytes,   kMetaAppliedTime,
    kMetaUndoEpoch,     kMetaUndoSegment,    kMetaUndoOffset,     kMetaUndoneRecords,
    kMetaDoneEpoch};

absl::Status RemoveTree(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("remove ", path));
  return absl::OkStatus();
}

absl::Status SyncFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return ErrnoToStatus(err, absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

// One consistent snapshot of the LMDB environment in `from`, which tmf may
// be writing meanwhile, as `to`/data.mdb (compacted: free pages left out).
// A missing environment (tmf never opened the volume) leaves `to` empty.
absl::Status CopyVolume(const std::string& from, const std::string& to, uint32_t max_dbs) {
  std::error_code ec;
  std::filesystem::create_directories(to, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create ", to));
  if (!std::filesystem::exists(JoinPath(from, "data.mdb"))) return absl::OkStatus();
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return lmdb::MdbError(rc, "mdb_env_create");
  mdb_env_set_maxdbs(env, max_dbs);
  rc = mdb_env_open(env, from.c_str(), MDB_RDONLY | MDB_NOTLS, 0644);
  if (rc != 0) {
    mdb_env_close(env);
    return lmdb::MdbError(rc, absl::StrCat("open LMDB environment ", from, " read-only"));
  }
  const std::string target = JoinPath(to, "data.mdb");
  for (int attempt = 0;; ++attempt) {
    rc = mdb_env_copy2(env, to.c_str(), MDB_CP_COMPACT);
    if (rc != MDB_MAP_RESIZED || attempt >= 8) break;
    // tmf grew the map meanwhile: adopt its size and copy again.
    std::filesystem::remove(target, ec);
    mdb_env_set_mapsize(env, 0);
  }
  mdb_env_close(env);
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("copy ", from, " to ", to));
  return SyncFile(target);
}

// tmf's applied ASN in a copy (0 when tmf never applied anything there).
absl::StatusOr<uint64_t> ReadTmfAppliedAsn(lmdb::Env* env) {
  absl::StatusOr<MDB_dbi> meta = env->OpenDb(lmdb::kMetaDb, false);
  if (absl::IsNotFound(meta.status())) return 0;
  if (!meta.ok()) return meta.status();
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env));
  RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> asn,
                       lmdb::GetU64(txn.get(), *meta, kMetaTmfAppliedAsn));
  return asn.value_or(0);
}

std::string FormatTime(int64_t us) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(us), absl::UTCTimeZone());
}

// The pin and pin.released as they were, to put back when initialize fails
// before it changed the backup.
struct SavedPin {
  std::optional<std::string> pin, released;
};

class Run {
 public:
  Run(const InitializeOptions& o, const proto::NodeConfig* primary,
      const proto::NodeConfig* backup, ProcessBase base)
      : o_(o),
        cfg_(*o.config),
        primary_(primary),
        backup_(backup),
        base_(std::move(base)),
        fs_(FileSystem::Default()),
        audit_dir_(config::AuditDir(*primary)),
        staging_(InitialCopyStagingDir(*backup)) {}

  absl::StatusOr<proto::InitialCopy> Go();

 private:
  void Progress(const std::string& line) {
    if (o_.progress != nullptr) *o_.progress << "initialize: " << line << std::endl;
  }
  std::string ReleasedPath() const { return JoinPath(audit_dir_, "pin.released"); }
  std::string StageDir(const std::string& volume) const {
    return JoinPath(staging_, config::VolumeDirName(volume));
  }
  uint64_t MapBytes(const std::string& volume) const {
    return cfg_.FindVolume(volume)->map_bytes();
  }

  absl::StatusOr<SavedPin> SavePin();
  absl::Status RestorePin(const SavedPin& saved);
  absl::Status HoldAudit(uint64_t* first_segment);
  absl::Status CopyVolumes(std::map<std::string, uint64_t>* applied);
  absl::StatusOr<AuditScan> Scan(const std::map<std::string, uint64_t>& applied,
                                 uint64_t first_segment);
  absl::Status PrepareCopy(const std::string& volume, const VolumeScan& scan,
                           proto::VolumeCopy* out);
  absl::Status Install();
  absl::Status CheckPinHeld();
  absl::Status StartAt(uint64_t start_asn);
  absl::StatusOr<proto::InitialCopy> Steps(proto::InitialCopy* state);

  const InitializeOptions& o_;
  const config::Config& cfg_;
  const proto::NodeConfig* primary_;
  const proto::NodeConfig* backup_;
  ProcessBase base_;
  FileSystem* fs_;
  const std::string audit_dir_;
  const std::string staging_;
  bool installing_ = false;  // the backup's old data is being replaced
};

absl::StatusOr<SavedPin> Run::SavePin() {
  SavedPin s;
  for (auto [path, out] : {std::pair{PinFilePath(audit_dir_), &s.pin},
                           std::pair{ReleasedPath(), &s.released}}) {
    if (!fs_->Exists(path)) continue;
    RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(fs_, path));
    *out = std::move(text);
  }
  return s;
}

absl::Status Run::RestorePin(const SavedPin& saved) {
  for (auto [path, text] : {std::pair{PinFilePath(audit_dir_), &saved.pin},
                            std::pair{ReleasedPath(), &saved.released}}) {
    if (text->has_value()) {
      RDF_RETURN_IF_ERROR(WriteFileAtomically(fs_, path, **text));
    } else if (fs_->Exists(path)) {
      RDF_RETURN_IF_ERROR(fs_->Remove(path));
    }
  }
  return fs_->SyncDir(audit_dir_);
}

// Makes tmf keep every audit segment it has: the pin just before the first
// retained record, and no release of it.
absl::Status Run::HoldAudit(uint64_t* first_segment) {
  RDF_RETURN_IF_ERROR(fs_->CreateDirs(audit_dir_));
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(fs_, audit_dir_, kAuditTrail));
  uint64_t pin = segs.empty() ? 0 : segs.front().first_asn - 1;
  RDF_RETURN_IF_ERROR(Annotate(WritePin(fs_, audit_dir_, pin), "hold the primary's audit"));
  if (fs_->Exists(ReleasedPath())) {
    RDF_RETURN_IF_ERROR(fs_->Remove(ReleasedPath()));
    RDF_RETURN_IF_ERROR(fs_->SyncDir(audit_dir_));
    Progress("removed audit/pin.released: this initialize is the new initial copy it asked for");
  }
  // A retention pass of tmf that read the old pin has finished by now; every
  // later one keeps what the new pin holds.
  absl::SleepFor(o_.pin_settle);
  RDF_ASSIGN_OR_RETURN(segs, trail::ListSegments(fs_, audit_dir_, kAuditTrail));
  *first_segment = segs.empty() ? 0 : segs.front().segment;
  Progress(absl::StrCat("holding the primary's audit from ASN ",
                        segs.empty() ? 1 : segs.front().first_asn, " (pin ", pin, ", ",
                        segs.size(), " segment(s))"));
  return absl::OkStatus();
}

absl::Status Run::CopyVolumes(std::map<std::string, uint64_t>* applied) {
  RDF_RETURN_IF_ERROR(RemoveTree(staging_));
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    absl::Time t0 = absl::Now();
    RDF_RETURN_IF_ERROR(CopyVolume(config::VolumeDir(*primary_, v->name()), StageDir(v->name()),
                                   cfg_.proto.lmdb().max_dbs()));
    RDF_ASSIGN_OR_RETURN(auto env, lmdb::Env::Open(StageDir(v->name()), MapBytes(v->name()),
                                                   cfg_.proto.lmdb().max_dbs()));
    RDF_ASSIGN_OR_RETURN((*applied)[v->name()], ReadTmfAppliedAsn(env.get()));
    Progress(absl::StrCat("copied ", v->name(), " (tmf applied ASN ", (*applied)[v->name()],
                          ") in ", absl::ToInt64Milliseconds(absl::Now() - t0), " ms"));
  }
  return absl::OkStatus();
}

absl::StatusOr<AuditScan> Run::Scan(const std::map<std::string, uint64_t>& applied,
                                    uint64_t first_segment) {
  ScanOptions so;
  so.audit_dir = audit_dir_;
  so.trail = kAuditTrail;
  so.fs = fs_;
  so.first_segment = first_segment;
  for (const auto& [volume, asn] : applied) so.volumes.push_back({volume, asn});
  so.is_protected = [this](std::string_view volume, std::string_view file) {
    return cfg_.IsProtected(volume, file);
  };
  std::unique_ptr<trail::SharedEnd> shared;
  trail::LocalEnd none;
  const std::string end_file = trail::EndFilePath(audit_dir_, kAuditTrail);
  if (fs_->Exists(end_file)) {
    RDF_ASSIGN_OR_RETURN(shared, trail::SharedEnd::OpenReadOnly(end_file));
    so.limit = shared.get();
  } else if (first_segment == 0) {
    so.limit = &none;  // tmf never wrote: no audit at all
  } else {
    return absl::FailedPreconditionError(
        absl::StrCat(end_file, " is missing: the audit trail's durable end is unknown"));
  }
  absl::Time t0 = absl::Now();
  RDF_ASSIGN_OR_RETURN(AuditScan scan, ScanAuditForInitialCopy(so));
  Progress(absl::StrCat("scanned ", scan.records, " audit record(s), ASN ", scan.first_asn,
                        " to ", scan.end_asn, ", in ",
                        absl::ToInt64Milliseconds(absl::Now() - t0), " ms"));
  return scan;
}

absl::Status Run::PrepareCopy(const std::string& volume, const VolumeScan& scan,
                              proto::VolumeCopy* out) {
  RDF_ASSIGN_OR_RETURN(auto env, lmdb::Env::Open(StageDir(volume), MapBytes(volume),
                                                 cfg_.proto.lmdb().max_dbs()));
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> dbs, env->ListDbs());
  std::set<std::string> files;
  for (const std::string& db : dbs) {
    if (db.rfind("__", 0) == 0) continue;
    if (cfg_.IsProtected(volume, db)) {
      files.insert(db);
    } else {
      RDF_RETURN_IF_ERROR(Annotate(env->DropDb(db), "drop a file that is not shipped"));
    }
  }
  // tmf creates and drops files outside its applied-ASN bookkeeping: make
  // the copy hold the files as of its snapshot ASN.
  for (const auto& [file, op] : scan.ddl) {
    if (op == proto::CREATE_FILE && !files.contains(file)) {
      RDF_RETURN_IF_ERROR(env->OpenDb(file, true).status());
      files.insert(file);
    } else if (op == proto::PURGE_FILE && files.contains(file)) {
      RDF_RETURN_IF_ERROR(env->DropDb(file));
      files.erase(file);
    }
  }
  RDF_ASSIGN_OR_RETURN(MDB_dbi meta, env->OpenDb(lmdb::kMetaDb, true));
  std::vector<MDB_dbi> handles;
  for (const std::string& f : files) {
    RDF_ASSIGN_OR_RETURN(MDB_dbi d, env->OpenDb(f, false));
    handles.push_back(d);
  }
  {
    RDF_ASSIGN_OR_RETURN(auto txn, lmdb::WriteTxn::Begin(env.get()));
    for (const char* key : kDroppedMetaKeys) {
      absl::Status s = txn->Delete(meta, key);
      if (!s.ok() && !absl::IsNotFound(s)) return s;
    }
    RDF_RETURN_IF_ERROR(txn->Commit());
  }
  uint64_t records = 0;
  {
    RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env.get()));
    for (MDB_dbi d : handles) {
      MDB_stat st;
      int rc = mdb_stat(txn->txn(), d, &st);
      if (rc != 0) return lmdb::MdbError(rc, "count records");
      records += st.ms_entries;
    }
  }
  // The environment syncs data but not meta pages on commit (NOMETASYNC):
  // make the prepared copy durable before it replaces the backup's volume.
  int rc = mdb_env_sync(env->env(), 1);
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("sync ", StageDir(volume)));
  env.reset();
  out->set_volume(volume);
  out->set_tmf_applied_asn(scan.tmf_applied_asn);
  out->set_snapshot_asn(scan.snapshot_asn);
  for (uint64_t t : scan.open_txids) out->add_open_txids(t);
  out->set_records(records);
  for (const std::string& f : files) out->add_files(f);
  absl::StatusOr<uint64_t> bytes = fs_->FileSize(JoinPath(StageDir(volume), "data.mdb"));
  out->set_bytes(bytes.ok() ? *bytes : 0);
  return absl::OkStatus();
}

// Replaces the backup's image trails, takeover state and protected volumes
// by the prepared copies.
absl::Status Run::Install() {
  installing_ = true;
  for (const std::string& dir : {config::ImageTrailDir(*backup_), config::TakeoverDir(*backup_)}) {
    RDF_RETURN_IF_ERROR(RemoveTree(dir));
  }
  for (const std::string& path : {InitialCopyStatePath(*backup_), InitialCopyJsonPath(*backup_)}) {
    if (fs_->Exists(path)) RDF_RETURN_IF_ERROR(fs_->Remove(path));
  }
  const std::string volumes = JoinPath(backup_->data_dir(), "volumes");
  RDF_RETURN_IF_ERROR(fs_->CreateDirs(volumes));
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    const std::string dest = config::VolumeDir(*backup_, v->name());
    RDF_RETURN_IF_ERROR(RemoveTree(dest));
    RDF_RETURN_IF_ERROR(fs_->Rename(StageDir(v->name()), dest));
  }
  RDF_RETURN_IF_ERROR(fs_->SyncDir(volumes));
  RDF_RETURN_IF_ERROR(fs_->SyncDir(backup_->data_dir()));
  return RemoveTree(staging_);
}

// tmf releases the pin when the held audit reaches its retention bound
// under RELEASE_PIN; the copy is useless then.
absl::Status Run::CheckPinHeld() {
  if (!fs_->Exists(ReleasedPath())) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "tmf released the pin while initialize ran (", ReleasedPath(),
      "): the audit held reached tmf.audit_retention_bytes under RELEASE_PIN, and audit the "
      "backup needs may be gone; raise the bound or initialize at a quieter time"));
}

// The pin at R - 1 (tmf keeps the audit from R on), and a check that R is
// still there.
absl::Status Run::StartAt(uint64_t start_asn) {
  RDF_RETURN_IF_ERROR(WritePin(fs_, audit_dir_, start_asn - 1));
  RDF_RETURN_IF_ERROR(CheckPinHeld());
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(fs_, audit_dir_, kAuditTrail));
  if (!segs.empty() && segs.front().first_asn > start_asn) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the primary's audit now begins at ASN ", segs.front().first_asn,
        ", after the start ASN ", start_asn, "; run initialize again"));
  }
  return absl::OkStatus();
}

absl::StatusOr<proto::InitialCopy> Run::Steps(proto::InitialCopy* state) {
  uint64_t first_segment = 0;
  RDF_RETURN_IF_ERROR(HoldAudit(&first_segment));
  std::map<std::string, uint64_t> applied;
  RDF_RETURN_IF_ERROR(CopyVolumes(&applied));
  RDF_ASSIGN_OR_RETURN(AuditScan scan, Scan(applied, first_segment));
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    RDF_RETURN_IF_ERROR(
        Annotate(PrepareCopy(v->name(), scan.volumes.at(v->name()), state->add_volumes()),
                 absl::StrCat("prepare the copy of ", v->name())));
  }
  state->set_start_asn(scan.start_asn);
  state->set_first_audit_asn(scan.first_asn);
  state->set_audit_records_scanned(scan.records);
  RDF_RETURN_IF_ERROR(CheckPinHeld());
  RDF_RETURN_IF_ERROR(Install());
  Progress(absl::StrCat("replaced the backup's volumes, image trails and takeover state"));
  return *state;
}

absl::StatusOr<proto::InitialCopy> Run::Go() {
  absl::Time t0 = absl::Now();
  proto::InitialCopy state;
  state.set_version(kInitialCopyVersion);
  state.set_primary_node(primary_->name());
  state.set_backup_node(backup_->name());
  state.set_started_us(absl::ToUnixMicros(t0));
  {
    absl::StatusOr<std::optional<proto::InitialCopy>> old = ReadInitialCopy(fs_, *backup_);
    state.set_number(old.ok() && old->has_value() ? (*old)->number() + 1 : 1);
  }
  RDF_ASSIGN_OR_RETURN(SavedPin saved, SavePin());
  RDF_RETURN_IF_ERROR(MarkInitialCopyInProgress(
      fs_, *backup_,
      absl::StrCat("rdfcom initialize (pid ", getpid(), ") started ", FormatTime(state.started_us()),
                   "\n")));
  absl::StatusOr<proto::InitialCopy> done = Steps(&state);
  if (!done.ok()) {
    if (installing_) {
      return Annotate(done.status(),
                      "initialize stopped while replacing the backup's data, which is "
                      "incomplete now (its receiver and updaters will not start); run "
                      "`rdfcom initialize` again");
    }
    // The backup is as it was: let it run again, and give the audit back.
    RemoveTree(staging_).IgnoreError();
    RestorePin(saved).IgnoreError();
    ClearInitialCopyInProgress(fs_, *backup_).IgnoreError();
    return Annotate(done.status(), "initialize failed; the backup was not changed");
  }
  state.set_completed_us(absl::ToUnixMicros(absl::Now()));
  state.set_duration_ms(absl::ToInt64Milliseconds(absl::Now() - t0));
  RDF_RETURN_IF_ERROR(Annotate(WriteInitialCopy(fs_, *backup_, state),
                               "write the initial-copy state"));
  RDF_RETURN_IF_ERROR(ClearInitialCopyInProgress(fs_, *backup_));
  RDF_RETURN_IF_ERROR(Annotate(StartAt(state.start_asn()),
                               "move the primary's pin to the start ASN"));
  uint64_t open = 0;
  for (const proto::VolumeCopy& v : state.volumes()) open += v.open_txids_size();
  base_.events->Log(events::kInitialized,
                    {{"node", backup_->name()},
                     {"asn", absl::StrCat(state.start_asn())},
                     {"epoch", absl::StrCat(state.number())},
                     {"primary", primary_->name()},
                     {"volumes", absl::StrCat(state.volumes_size())},
                     {"open_transactions", absl::StrCat(open)},
                     {"duration_ms", absl::StrCat(state.duration_ms())}});
  base_.events->Flush().IgnoreError();
  return state;
}

}  // namespace

std::string InitializeSummaryText(const proto::InitialCopy& s) {
  uint64_t min_snapshot = UINT64_MAX;
  for (const proto::VolumeCopy& v : s.volumes()) {
    min_snapshot = std::min(min_snapshot, v.snapshot_asn());
  }
  std::string out = absl::StrFormat(
      "RDF initial copy %d: %s -> %s\n"
      "  audit scanned            ASN %d to %d (%d records)\n"
      "  replication starts at    ASN %d%s\n"
      "  duration                 %d ms\n"
      "\n  volume      tmf applied  snapshot ASN      records        bytes  open transactions\n",
      s.number(), s.primary_node(), s.backup_node(), s.first_audit_asn(),
      s.first_audit_asn() + (s.audit_records_scanned() == 0 ? 0 : s.audit_records_scanned() - 1),
      s.audit_records_scanned(), s.start_asn(),
      s.volumes_size() > 0 && s.start_asn() <= min_snapshot
          ? " (at or before a snapshot: transactions open across the copy are shipped whole)"
          : "",
      s.duration_ms());
  for (const proto::VolumeCopy& v : s.volumes()) {
    std::string open = absl::StrCat(v.open_txids_size());
    if (v.open_txids_size() > 0) {
      std::vector<uint64_t> shown(v.open_txids().begin(),
                                  v.open_txids().begin() + std::min(v.open_txids_size(), 8));
      absl::StrAppend(&open, " (", absl::StrJoin(shown, " "),
                      v.open_txids_size() > 8 ? " ..." : "", ")");
    }
    absl::StrAppend(&out, absl::StrFormat("  %-10s  %11d  %12d  %11d  %11d  %s\n", v.volume(),
                                          v.tmf_applied_asn(), v.snapshot_asn(), v.records(),
                                          v.bytes(), open));
  }
  return out;
}

absl::StatusOr<proto::InitialCopy> RunInitialize(const InitializeOptions& options) {
  const config::Config& cfg = *options.config;
  const proto::NodeConfig* primary = cfg.NodeWithRole(proto::PRIMARY);
  const proto::NodeConfig* backup = cfg.NodeWithRole(proto::BACKUP);
  if (primary == nullptr || backup == nullptr) {
    return absl::InvalidArgumentError("the configuration needs a PRIMARY and a BACKUP node");
  }
  FileSystem* fs = FileSystem::Default();
  for (const proto::NodeConfig* n : {primary, backup}) {
    if (!fs->Exists(n->data_dir())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the ", n == primary ? "primary" : "backup", " node's data directory ", n->data_dir(),
          " does not exist here: initialize reads the primary's volumes and audit and writes "
          "the backup's as files, so it runs where both nodes' data directories are reachable "
          "(loopback, or a shared file system)"));
    }
  }
  // Whoever holds these locks would read or write what initialize replaces.
  std::vector<std::string> backup_locks = {"receiver", "purger", "takeover"};
  for (const proto::VolumeConfig* v : cfg.ProtectedVolumes()) {
    backup_locks.push_back(absl::StrCat("updater-", config::VolumeDirName(v->name())));
  }
  for (const std::string& name : backup_locks) {
    if (int pid = ProcessLock::HolderPid(config::LockDir(*backup), name); pid != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the backup's ", name, " runs (pid ", pid, "); stop the backup's process set first "
          "(`rdfcom stop`): initialize replaces its volumes and image trails"));
    }
  }
  if (int pid = ProcessLock::HolderPid(config::LockDir(*primary), "extractor"); pid != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the primary's extractor runs (pid ", pid, "); stop it first (`rdfcom stop`): "
        "initialize moves the pin it keeps"));
  }
  absl::StatusOr<ProcessBase> base = StartProcess(cfg, backup->name(), proto::BACKUP,
                                                  "initialize", fs, Clock::Real());
  if (absl::IsFailedPrecondition(base.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("another initialize is running: ", base.status().message()));
  }
  if (!base.ok()) return base.status();
  Run run(options, primary, backup, *std::move(base));
  return run.Go();
}

}  // namespace rdf::rdfcom
