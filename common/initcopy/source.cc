#include "common/initcopy/source.h"

#include <lmdb.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/status_macros.h"
#include "common/initcopy/files.h"
#include "common/initcopy/scan.h"
#include "common/layout/layout.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/process/lock.h"
#include "common/state/pin_file.h"
#include "common/state/status_file.h"
#include "common/trail/reader.h"

namespace rdf::initcopy {
namespace {

constexpr char kAuditTrail[] = "MAT";

// One consistent snapshot of the LMDB environment in `from`, which tmf may
// be writing meanwhile, as `to`/data.mdb (compacted: free pages left out).
// A missing environment (tmf never opened the volume) leaves `to` empty.
absl::Status CopyVolume(const std::string& from, const std::string& to, uint32_t max_dbs) {
  std::error_code ec;
  std::filesystem::create_directories(to, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create ", to));
  if (!std::filesystem::exists(layout::VolumeDataFile(from))) return absl::OkStatus();
  // Not while tmf may be putting the volume's checkpoint back under it.
  RDF_ASSIGN_OR_RETURN(lmdb::VolumeGate gate, lmdb::VolumeGate::ForReader(from));
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc != 0) return lmdb::MdbError(rc, "mdb_env_create");
  mdb_env_set_maxdbs(env, max_dbs);
  rc = mdb_env_open(env, from.c_str(), MDB_RDONLY | MDB_NOTLS, 0644);
  if (rc != 0) {
    mdb_env_close(env);
    return lmdb::MdbError(rc, absl::StrCat("open LMDB environment ", from, " read-only"));
  }
  const std::string target = layout::VolumeDataFile(to);
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

// tmf's applied ASN in a snapshot (0 when tmf never applied anything
// there). Opening it adds lock.mdb beside it; data.mdb stays as copied.
absl::StatusOr<uint64_t> ReadTmfAppliedAsn(const std::string& dir, uint64_t map_bytes,
                                           uint32_t max_dbs) {
  RDF_ASSIGN_OR_RETURN(auto env, lmdb::Env::Open(dir, map_bytes, max_dbs));
  absl::StatusOr<MDB_dbi> meta = env->OpenDb(lmdb::kMetaDb, false);
  if (absl::IsNotFound(meta.status())) return 0;
  if (!meta.ok()) return meta.status();
  RDF_ASSIGN_OR_RETURN(auto txn, lmdb::ReadTxn::Begin(env.get()));
  RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> asn,
                       lmdb::GetU64(txn.get(), *meta, kMetaTmfAppliedAsn));
  return asn.value_or(0);
}

}  // namespace

absl::Status CheckExtractorStopped(const proto::NodeConfig& primary) {
  if (int pid = ProcessLock::HolderPid(config::LockDir(primary), "extractor"); pid != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the primary's extractor runs (pid ", pid, "); stop it first (`rdfcom stop`): "
        "initialize moves the pin it keeps"));
  }
  return absl::OkStatus();
}

std::string SnapshotPath(const std::string& dir, const std::string& volume) {
  return layout::VolumeDataFile(JoinPath(dir, config::VolumeDirName(volume)));
}

Source::Source(SourceOptions options)
    : o_(std::move(options)), audit_dir_(config::AuditDir(*o_.primary)) {}

void Source::Progress(const std::string& line) const {
  if (o_.progress) o_.progress(line);
}

std::string Source::ReleasedPath() const { return layout::PinReleasedFile(audit_dir_); }

absl::Status Source::SavePin() {
  SavedPin s;
  for (auto [path, out] : {std::pair{PinFilePath(audit_dir_), &s.pin},
                           std::pair{ReleasedPath(), &s.released}}) {
    if (!o_.fs->Exists(path)) continue;
    RDF_ASSIGN_OR_RETURN(std::string text, ReadFileToString(o_.fs, path));
    *out = std::move(text);
  }
  saved_ = std::move(s);
  return absl::OkStatus();
}

absl::Status Source::RestorePin() {
  if (!saved_.has_value()) return absl::OkStatus();
  for (auto [path, text] : {std::pair{PinFilePath(audit_dir_), &saved_->pin},
                            std::pair{ReleasedPath(), &saved_->released}}) {
    if (text->has_value()) {
      RDF_RETURN_IF_ERROR(WriteFileAtomically(o_.fs, path, **text));
    } else if (o_.fs->Exists(path)) {
      RDF_RETURN_IF_ERROR(o_.fs->Remove(path));
    }
  }
  return o_.fs->SyncDir(audit_dir_);
}

// Makes tmf keep every audit segment it has: the pin just before the first
// retained record, and no release of it.
absl::Status Source::HoldAudit(uint64_t* first_segment) {
  RDF_RETURN_IF_ERROR(o_.fs->CreateDirs(audit_dir_));
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(o_.fs, audit_dir_, kAuditTrail));
  uint64_t pin = segs.empty() ? 0 : segs.front().first_asn - 1;
  RDF_RETURN_IF_ERROR(Annotate(WritePin(o_.fs, audit_dir_, pin), "hold the primary's audit"));
  if (o_.fs->Exists(ReleasedPath())) {
    RDF_RETURN_IF_ERROR(o_.fs->Remove(ReleasedPath()));
    RDF_RETURN_IF_ERROR(o_.fs->SyncDir(audit_dir_));
    Progress("removed audit/pin.released: this initialize is the new initial copy it asked for");
  }
  // A retention pass of tmf that read the old pin has finished by now; every
  // later one keeps what the new pin holds.
  absl::SleepFor(o_.pin_settle);
  RDF_ASSIGN_OR_RETURN(segs, trail::ListSegments(o_.fs, audit_dir_, kAuditTrail));
  *first_segment = segs.empty() ? 0 : segs.front().segment;
  Progress(absl::StrCat("holding the primary's audit from ASN ",
                        segs.empty() ? 1 : segs.front().first_asn, " (pin ", pin, ", ",
                        segs.size(), " segment(s))"));
  return absl::OkStatus();
}

absl::Status Source::Snapshot(proto::CopyPlan* plan) {
  const uint32_t max_dbs = o_.config->proto.lmdb().max_dbs();
  for (const proto::VolumeConfig* v : o_.config->ProtectedVolumes()) {
    absl::Time t0 = absl::Now();
    const std::string path = SnapshotPath(o_.out_dir, v->name());
    const std::string dir = std::filesystem::path(path).parent_path();
    RDF_RETURN_IF_ERROR(CopyVolume(config::VolumeDir(*o_.primary, v->name()), dir, max_dbs));
    proto::VolumePlan* vp = plan->add_volumes();
    vp->set_volume(v->name());
    RDF_ASSIGN_OR_RETURN(uint64_t applied, ReadTmfAppliedAsn(dir, v->map_bytes(), max_dbs));
    vp->set_tmf_applied_asn(applied);
    if (o_.fs->Exists(path)) {
      RDF_ASSIGN_OR_RETURN(uint64_t bytes, o_.fs->FileSize(path));
      vp->set_bytes(bytes);
    }
    Progress(absl::StrCat("copied ", v->name(), " (tmf applied ASN ", applied, ", ",
                          vp->bytes(), " bytes) in ",
                          absl::ToInt64Milliseconds(absl::Now() - t0), " ms"));
  }
  return absl::OkStatus();
}

absl::Status Source::Scan(uint64_t first_segment, proto::CopyPlan* plan) {
  ScanOptions so;
  so.audit_dir = audit_dir_;
  so.trail = kAuditTrail;
  so.fs = o_.fs;
  so.first_segment = first_segment;
  for (const proto::VolumePlan& v : plan->volumes()) {
    so.volumes.push_back({v.volume(), v.tmf_applied_asn()});
  }
  so.is_protected = [this](std::string_view volume, std::string_view file) {
    return o_.config->IsProtected(volume, file);
  };
  std::unique_ptr<trail::SharedEnd> shared;
  trail::LocalEnd none;
  const std::string end_file = trail::EndFilePath(audit_dir_, kAuditTrail);
  if (o_.fs->Exists(end_file)) {
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
  plan->set_start_asn(scan.start_asn);
  plan->set_first_audit_asn(scan.first_asn);
  plan->set_end_asn(scan.end_asn);
  plan->set_audit_records_scanned(scan.records);
  for (proto::VolumePlan& vp : *plan->mutable_volumes()) {
    const VolumeScan& vs = scan.volumes.at(vp.volume());
    vp.set_snapshot_asn(vs.snapshot_asn);
    for (uint64_t t : vs.open_txids) vp.add_open_txids(t);
    for (const auto& [file, op] : vs.ddl) {
      proto::FileDdl* d = vp.add_ddl();
      d->set_file(file);
      d->set_op(op);
    }
  }
  return absl::OkStatus();
}

// tmf releases the pin when the held audit reaches its retention bound
// under RELEASE_PIN; the copy is useless then.
absl::Status Source::CheckPinHeld() {
  if (!o_.fs->Exists(ReleasedPath())) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "tmf released the pin while initialize ran (", ReleasedPath(),
      "): the audit held reached tmf.audit_retention_bytes under RELEASE_PIN, and audit the "
      "backup needs may be gone; raise the bound or initialize at a quieter time"));
}

absl::Status Source::Steps(proto::CopyPlan* plan) {
  RDF_RETURN_IF_ERROR(SavePin());
  uint64_t first_segment = 0;
  RDF_RETURN_IF_ERROR(HoldAudit(&first_segment));
  RDF_RETURN_IF_ERROR(RemoveOutDir());
  RDF_RETURN_IF_ERROR(Snapshot(plan));
  RDF_RETURN_IF_ERROR(Scan(first_segment, plan));
  return CheckPinHeld();
}

absl::StatusOr<proto::CopyPlan> Source::Begin() {
  proto::CopyPlan plan;
  absl::Status s = Steps(&plan);
  if (!s.ok()) {
    Abort().IgnoreError();
    return s;
  }
  return plan;
}

absl::Status Source::RemoveOutDir() {
  return o_.keep_out_dir ? absl::OkStatus() : RemoveTree(o_.out_dir);
}

absl::Status Source::Commit(uint64_t start_asn) {
  RDF_RETURN_IF_ERROR(RemoveOutDir());
  RDF_RETURN_IF_ERROR(WritePin(o_.fs, audit_dir_, start_asn - 1));
  saved_.reset();  // the pin is the new initial copy's now
  RDF_RETURN_IF_ERROR(CheckPinHeld());
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(o_.fs, audit_dir_, kAuditTrail));
  if (!segs.empty() && segs.front().first_asn > start_asn) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the primary's audit now begins at ASN ", segs.front().first_asn,
        ", after the start ASN ", start_asn, "; run initialize again"));
  }
  return absl::OkStatus();
}

absl::Status Source::Abort() {
  absl::Status removed = RemoveOutDir();
  RDF_RETURN_IF_ERROR(RestorePin());
  saved_.reset();
  return removed;
}

}  // namespace rdf::initcopy
