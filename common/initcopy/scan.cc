#include "common/initcopy/scan.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/state/audit_record.h"
#include "common/trail/reader.h"

namespace rdf::initcopy {
namespace {

// A transaction without an outcome so far in the pass.
struct Live {
  uint64_t first_asn = 0;          // its first record read
  std::vector<uint32_t> volumes;   // indexes of the open volumes it has DATA in
};

// The pass as a small state machine over the records, in ASN order.
class Pass {
 public:
  Pass(const ScanOptions& o, AuditScan* out) : o_(o), out_(out) {
    for (size_t i = 0; i < o.volumes.size(); ++i) {
      VolumeScan& v = out->volumes[o.volumes[i].volume];
      v.tmf_applied_asn = o.volumes[i].tmf_applied_asn;
      scans_.push_back(&v);
      index_[o.volumes[i].volume] = static_cast<uint32_t>(i);
    }
    closed_.assign(scans_.size(), false);
  }

  absl::Status Record(const trail::Record& rec);
  // At the end (E): every volume still open gets S'_v = E.
  void Finish();

 private:
  // The volume's index when it is one of ours, still open, and `file` is
  // shipped; -1 otherwise.
  int OpenVolume(absl::string_view volume, absl::string_view file) const {
    auto it = index_.find(volume);
    if (it == index_.end() || closed_[it->second]) return -1;
    if (!o_.is_protected(std::string_view(volume.data(), volume.size()),
                         std::string_view(file.data(), file.size()))) {
      return -1;
    }
    return static_cast<int>(it->second);
  }
  // Fixes volume i's snapshot ASN at `asn`: its open transactions are those
  // live now with DATA in it.
  void Close(uint32_t i, uint64_t asn) {
    VolumeScan& v = *scans_[i];
    v.snapshot_asn = asn;
    closed_[i] = true;
    out_->start_asn = std::min(out_->start_asn, asn + 1);
    for (const auto& [txid, t] : live_) {
      if (std::find(t.volumes.begin(), t.volumes.end(), i) == t.volumes.end()) continue;
      v.open_txids.push_back(txid);
      out_->start_asn = std::min(out_->start_asn, t.first_asn);
    }
    std::sort(v.open_txids.begin(), v.open_txids.end());
  }

  const ScanOptions& o_;
  AuditScan* out_;
  std::vector<VolumeScan*> scans_;
  std::vector<bool> closed_;
  absl::flat_hash_map<std::string, uint32_t> index_;
  absl::flat_hash_map<uint64_t, Live> live_;
};

absl::Status Pass::Record(const trail::Record& rec) {
  const auto type = static_cast<proto::RecordType>(rec.type);
  if (type == proto::DDL) {
    RDF_ASSIGN_OR_RETURN(proto::AuditRecord r, DecodeAuditRecord(rec));
    int i = OpenVolume(r.volume(), r.file());
    if (i >= 0) scans_[i]->ddl[r.file()] = r.ddl();
    return absl::OkStatus();
  }
  if (type != proto::DATA && type != proto::COMMIT && type != proto::ABORT) {
    return absl::OkStatus();
  }
  absl::StatusOr<AuditHeader> h = ScanAuditHeader(rec.payload);
  if (!h.ok()) {
    return Annotate(h.status(), absl::StrCat("audit record ", rec.asn, " at ",
                                             trail::ToString(rec.pos)));
  }
  if (type == proto::DATA) {
    Live& t = live_[h->txid];
    if (t.first_asn == 0) t.first_asn = rec.asn;
    int i = OpenVolume(h->volume, h->file);
    if (i >= 0 && std::find(t.volumes.begin(), t.volumes.end(), i) == t.volumes.end()) {
      t.volumes.push_back(static_cast<uint32_t>(i));
    }
    return absl::OkStatus();
  }
  auto it = live_.find(h->txid);
  if (it == live_.end()) return absl::OkStatus();  // no DATA seen (or before the audit kept)
  if (type == proto::COMMIT) {
    // The first commit above S_v of a transaction with DATA in v ends v's
    // window; that transaction is still open at S'_v = asn - 1.
    for (uint32_t i : it->second.volumes) {
      if (!closed_[i] && rec.asn > scans_[i]->tmf_applied_asn) Close(i, rec.asn - 1);
    }
  }
  live_.erase(it);
  return absl::OkStatus();
}

void Pass::Finish() {
  for (uint32_t i = 0; i < scans_.size(); ++i) {
    if (!closed_[i]) Close(i, out_->end_asn);
  }
}

}  // namespace

absl::StatusOr<AuditScan> ScanAuditForInitialCopy(const ScanOptions& o) {
  AuditScan out;
  const trail::End end = o.limit->Get();
  out.end_asn = end.asn;
  out.start_asn = UINT64_MAX;
  for (const ScanVolume& v : o.volumes) {
    if (v.tmf_applied_asn > end.asn) {
      return absl::InternalError(absl::StrCat(
          "volume ", v.volume, " holds transactions through ASN ", v.tmf_applied_asn,
          " but the audit trail is durable only through ", end.asn));
    }
  }
  RDF_ASSIGN_OR_RETURN(std::vector<trail::SegmentInfo> segs,
                       trail::ListSegments(o.fs, o.audit_dir, o.trail));
  if (o.first_segment != 0 && (segs.empty() || segs.front().segment != o.first_segment)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "audit segment ", o.first_segment, " of ", o.audit_dir,
        " was removed while the copies were taken (the pin was not honoured, or the "
        "retention bound released it); run initialize again"));
  }
  Pass pass(o, &out);
  if (!segs.empty()) {
    // A fixed limit: the pass ends at E even while tmf keeps writing.
    trail::LocalEnd limit;
    limit.Publish(end);
    RDF_ASSIGN_OR_RETURN(auto reader,
                         trail::TrailReader::Open({o.audit_dir, o.trail, o.fs, &limit}));
    uint64_t prev = 0;
    while (true) {
      RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, reader->Next());
      if (!rec.has_value()) break;
      if (prev != 0 && rec->asn != prev + 1) {
        // tmf numbers every record: a jump means audit is missing.
        return absl::FailedPreconditionError(
            absl::StrCat("audit ASNs ", prev + 1, "..", rec->asn - 1, " are missing before ",
                         trail::ToString(rec->pos), " in ", o.audit_dir));
      }
      if (prev == 0) out.first_asn = rec->asn;
      prev = rec->asn;
      ++out.records;
      RDF_RETURN_IF_ERROR(pass.Record(*rec));
    }
    if (prev != 0 && prev < end.asn) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the audit trail in ", o.audit_dir, " ends at ASN ", prev,
          " before its durable end ", end.asn));
    }
  }
  pass.Finish();
  if (out.start_asn == UINT64_MAX) out.start_asn = end.asn + 1;  // no volumes
  return out;
}

}  // namespace rdf::initcopy
