#include "common/initcopy/target.h"

#include <lmdb.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/events/catalog.h"
#include "common/initcopy/files.h"
#include "common/initcopy/source.h"
#include "common/layout/layout.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/process/lock.h"
#include "common/state/initial_copy.h"
#include "common/state/takeover_state.h"

namespace rdf::initcopy {
namespace {

// Bookkeeping a copied volume must not carry to the backup: tmf's (it
// counts the primary's audit) and an updater's or a takeover's (from an
// earlier life of the volume as a backup). tmf's next transaction id
// (kMetaMaxTxid) stays: a promoted backup starts above it anyway.
constexpr const char* kDroppedMetaKeys[] = {
    kMetaTmfAppliedAsn, kMetaTmfRecoveryAsn, kMetaRestartSegment, kMetaRestartOffset,
    kMetaAppliedAsn,    kMetaAppliedRecords, kMetaAppliedBytes,   kMetaAppliedTime,
    kMetaUndoEpoch,     kMetaUndoSegment,    kMetaUndoOffset,     kMetaUndoneRecords,
    kMetaDoneEpoch};

absl::StatusOr<uint64_t> CountRecords(lmdb::Env* env, const std::vector<MDB_dbi>& handles) {
  uint64_t records = 0;
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env));
  for (MDB_dbi d : handles) {
    MDB_stat st;
    int rc = mdb_stat(txn->txn(), d, &st);
    if (rc != 0) return lmdb::MdbError(rc, "count records");
    records += st.ms_entries;
  }
  return records;
}

}  // namespace

absl::Status CheckBackupStopped(const config::Config& config, const proto::NodeConfig& backup) {
  // Whoever holds these locks would read or write what initialize replaces.
  std::vector<std::string> locks = {"receiver", "purger", "takeover"};
  for (const proto::VolumeConfig* v : config.ProtectedVolumes()) {
    locks.push_back(absl::StrCat("updater-", config::VolumeDirName(v->name())));
  }
  for (const std::string& name : locks) {
    if (int pid = ProcessLock::HolderPid(config::LockDir(backup), name); pid != 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the backup's ", name, " runs (pid ", pid, "); stop the backup's process set first "
          "(`rdfcom stop`): initialize replaces its volumes and image trails"));
    }
  }
  return absl::OkStatus();
}

void LogInitialized(events::EventLog* log, const proto::InitialCopy& state) {
  uint64_t open = 0;
  for (const proto::VolumeCopy& v : state.volumes()) open += v.open_txids_size();
  log->Log(events::kInitialized, {{"node", state.backup_node()},
                                  {"asn", absl::StrCat(state.start_asn())},
                                  {"epoch", absl::StrCat(state.number())},
                                  {"primary", state.primary_node()},
                                  {"volumes", absl::StrCat(state.volumes_size())},
                                  {"open_transactions", absl::StrCat(open)},
                                  {"duration_ms", absl::StrCat(state.duration_ms())}});
  log->Flush().IgnoreError();
}

Target::Target(const config::Config& config, const proto::NodeConfig& backup, FileSystem* fs)
    : cfg_(config), backup_(backup), fs_(fs), staging_(InitialCopyStagingDir(backup)) {}

absl::Status Target::Begin(const std::string& who) {
  RDF_RETURN_IF_ERROR(MarkInitialCopyInProgress(fs_, backup_, who));
  RDF_RETURN_IF_ERROR(RemoveTree(staging_));
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    RDF_RETURN_IF_ERROR(
        fs_->CreateDirs(std::filesystem::path(SnapshotPath(staging_, v->name())).parent_path()));
  }
  return absl::OkStatus();
}

absl::Status Target::CheckStaged(const proto::VolumePlan& v) {
  const std::string path = SnapshotPath(staging_, v.volume());
  uint64_t have = 0;
  if (fs_->Exists(path)) {
    RDF_ASSIGN_OR_RETURN(have, fs_->FileSize(path));
    RDF_RETURN_IF_ERROR(SyncFile(path));
  }
  if (have != v.bytes()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the copy of ", v.volume(), " holds ", have, " bytes, the primary's snapshot ",
        v.bytes()));
  }
  return absl::OkStatus();
}

absl::Status Target::Prepare(const proto::VolumePlan& v, proto::VolumeCopy* out) {
  const std::string dir = std::filesystem::path(SnapshotPath(staging_, v.volume())).parent_path();
  const proto::VolumeConfig* vc = cfg_.FindVolume(v.volume());
  if (vc == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("the primary copied ", v.volume(), ", which this configuration lacks"));
  }
  RDF_ASSIGN_OR_RETURN(auto env,
                       lmdb::Env::Open(dir, vc->map_bytes(), cfg_.proto.lmdb().max_dbs()));
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> dbs, env->ListDbs());
  std::set<std::string> files;
  for (const std::string& db : dbs) {
    if (db.rfind("__", 0) == 0) continue;
    if (cfg_.IsProtected(v.volume(), db)) {
      files.insert(db);
    } else {
      RDF_RETURN_IF_ERROR(Annotate(env->DropDb(db), "drop a file that is not shipped"));
    }
  }
  // tmf creates and drops files outside its applied-ASN bookkeeping: make
  // the copy hold the files as of its snapshot ASN.
  for (const proto::FileDdl& d : v.ddl()) {
    if (d.op() == proto::CREATE_FILE && !files.contains(d.file())) {
      RDF_RETURN_IF_ERROR(env->OpenDb(d.file(), true).status());
      files.insert(d.file());
    } else if (d.op() == proto::PURGE_FILE && files.contains(d.file())) {
      RDF_RETURN_IF_ERROR(env->DropDb(d.file()));
      files.erase(d.file());
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
  RDF_ASSIGN_OR_RETURN(uint64_t records, CountRecords(env.get(), handles));
  // The environment syncs data but not meta pages on commit (NOMETASYNC):
  // make the prepared copy durable before it replaces the backup's volume.
  int rc = mdb_env_sync(env->env(), 1);
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("sync ", dir));
  env.reset();
  out->set_volume(v.volume());
  out->set_tmf_applied_asn(v.tmf_applied_asn());
  out->set_snapshot_asn(v.snapshot_asn());
  *out->mutable_open_txids() = v.open_txids();
  out->set_records(records);
  for (const std::string& f : files) out->add_files(f);
  absl::StatusOr<uint64_t> bytes = fs_->FileSize(layout::VolumeDataFile(dir));
  out->set_bytes(bytes.ok() ? *bytes : 0);
  return absl::OkStatus();
}

// Replaces the backup's image trails, takeover state and protected volumes
// by the prepared copies.
absl::Status Target::Install() {
  // Begin's caller checked the set was stopped, but a process may have
  // started since (a monitor's restart, a purger started by hand): nothing
  // is replaced under a running process. (The receiver and updaters refuse
  // to start while the in-progress mark exists; this covers the rest and
  // the window before the mark.)
  RDF_RETURN_IF_ERROR(CheckBackupStopped(cfg_, backup_));
  installing_ = true;
  for (const std::string& dir : {config::ImageTrailDir(backup_), config::TakeoverDir(backup_)}) {
    RDF_RETURN_IF_ERROR(RemoveTree(dir));
  }
  for (const std::string& path : {InitialCopyStatePath(backup_), InitialCopyJsonPath(backup_)}) {
    if (fs_->Exists(path)) RDF_RETURN_IF_ERROR(fs_->Remove(path));
  }
  const std::string volumes = JoinPath(backup_.data_dir(), "volumes");
  RDF_RETURN_IF_ERROR(fs_->CreateDirs(volumes));
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    const std::string dest = config::VolumeDir(backup_, v->name());
    RDF_RETURN_IF_ERROR(RemoveTree(dest));
    RDF_RETURN_IF_ERROR(fs_->Rename(
        std::filesystem::path(SnapshotPath(staging_, v->name())).parent_path(), dest));
  }
  RDF_RETURN_IF_ERROR(fs_->SyncDir(volumes));
  RDF_RETURN_IF_ERROR(fs_->SyncDir(backup_.data_dir()));
  return RemoveTree(staging_);
}

absl::StatusOr<proto::InitialCopy> Target::Commit(const proto::CopyPlan& plan,
                                                  proto::InitialCopy state) {
  std::set<std::string> planned;
  for (const proto::VolumePlan& v : plan.volumes()) planned.insert(v.volume());
  for (const proto::VolumeConfig* v : cfg_.ProtectedVolumes()) {
    if (!planned.contains(v->name())) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the primary did not copy ", v->name(), ", which the backup protects: do both "
          "nodes use the same configuration?"));
    }
  }
  for (const proto::VolumePlan& v : plan.volumes()) RDF_RETURN_IF_ERROR(CheckStaged(v));
  state.set_version(kInitialCopyVersion);
  state.set_backup_node(backup_.name());
  {
    absl::StatusOr<std::optional<proto::InitialCopy>> old = ReadInitialCopy(fs_, backup_);
    state.set_number(old.ok() && old->has_value() ? (*old)->number() + 1 : 1);
  }
  for (const proto::VolumePlan& v : plan.volumes()) {
    RDF_RETURN_IF_ERROR(Annotate(Prepare(v, state.add_volumes()),
                                 absl::StrCat("prepare the copy of ", v.volume())));
  }
  state.set_start_asn(plan.start_asn());
  state.set_first_audit_asn(plan.first_audit_asn());
  state.set_audit_records_scanned(plan.audit_records_scanned());
  RDF_RETURN_IF_ERROR(Install());
  const absl::Time now = absl::Now();
  state.set_completed_us(absl::ToUnixMicros(now));
  state.set_duration_ms(
      std::max<int64_t>(0, (state.completed_us() - state.started_us()) / 1000));
  RDF_RETURN_IF_ERROR(
      Annotate(WriteInitialCopy(fs_, backup_, state), "write the initial-copy state"));
  RDF_RETURN_IF_ERROR(ClearInitialCopyInProgress(fs_, backup_));
  return state;
}

absl::Status Target::Abort() {
  if (installing_) {
    return absl::FailedPreconditionError(
        "initialize stopped while replacing the backup's data, which is incomplete now (its "
        "receiver and updaters will not start); run `rdfcom initialize` again");
  }
  RDF_RETURN_IF_ERROR(RemoveTree(staging_));
  return ClearInitialCopyInProgress(fs_, backup_);
}

}  // namespace rdf::initcopy
