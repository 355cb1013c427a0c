// The online initial copy (rdfcom initialize), its audit scan: one forward
// pass over the primary's audit trail (MAT) that says, for volume copies
// taken while tmf kept committing, what the backup must still apply and
// where replication starts. Run on the primary's node, by rdfcom (local
// mode) or by the primary's monitor (common/initcopy/source.h).
//
// Input: each protected volume's snapshot, with tmf's applied ASN S_v read
// from the copy (the copy holds exactly the committed transactions that
// touched the volume with COMMIT ASN <= S_v), and the audit from its first
// retained record up to its durable end E.
//
// Per volume the pass finds the snapshot ASN S'_v >= S_v: the ASN before the
// first COMMIT above S_v of a transaction with DATA in the volume's
// protected files (or E when there is none). The copy equals the committed
// state at S'_v too, since no such transaction commits in (S_v, S'_v]; a
// later S'_v means fewer records to skip and, above all, covers an idle
// volume whose S_v lies before the first retained audit record. Then:
//
//   open_txids(v) = transactions with DATA in v at ASN <= S'_v and no
//                   outcome (COMMIT or ABORT) at ASN <= S'_v
//   start_asn R   = min(min over v of S'_v + 1,
//                       min over every open transaction of its first ASN)
//
// so every record above some S'_v, and every record of an open transaction,
// is at or after R. DDL: the last CREATE or PURGE of each protected file at
// ASN <= S'_v, which initialize applies to the copy (tmf creates and drops
// files outside the applied ASN bookkeeping).
//
// Why the retained audit is enough: tmf removes an audit segment only when
// every record in it lies below each volume's recovery ASN, so any
// transaction with a record before the first retained one had finished
// (committed and applied to every volume it touched, or aborted) before the
// copies were taken.
//
// Memory: the transactions still without an outcome while the pass runs,
// plus per volume its open set and its DDL'd files; never the trail.
#ifndef RDF_COMMON_INITCOPY_SCAN_H_
#define RDF_COMMON_INITCOPY_SCAN_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "audit.pb.h"
#include "common/base/file_system.h"
#include "common/trail/durable_end.h"

namespace rdf::initcopy {

struct ScanVolume {
  std::string volume;        // "$DATA01"
  uint64_t tmf_applied_asn;  // S_v, from the copy's __meta
};

struct ScanOptions {
  std::string audit_dir;     // <primary data_dir>/audit
  std::string trail = "MAT";
  FileSystem* fs = FileSystem::Default();
  // The audit's durable end E when the pass starts (not owned; its value is
  // read once). REQUIRES: E >= every tmf_applied_asn.
  trail::EndSource* limit = nullptr;
  // The oldest audit segment present before the copies were taken (0: there
  // was none). The pass fails when it is gone: audit it needs was removed.
  uint64_t first_segment = 0;
  std::vector<ScanVolume> volumes;
  // Whether (volume, file) is shipped (config::Config::IsProtected).
  std::function<bool(std::string_view volume, std::string_view file)> is_protected;
};

struct VolumeScan {
  uint64_t tmf_applied_asn = 0;  // S_v
  uint64_t snapshot_asn = 0;     // S'_v
  std::vector<uint64_t> open_txids;  // ascending
  // The last DDL at or below snapshot_asn per protected file.
  std::map<std::string, proto::DdlOp> ddl;
};

struct AuditScan {
  uint64_t first_asn = 0;  // first record read; 0 when the audit is empty
  uint64_t end_asn = 0;    // E
  uint64_t records = 0;    // records read
  uint64_t start_asn = 0;  // R
  std::map<std::string, VolumeScan> volumes;
};

// kNotFound / kFailedPrecondition when audit the pass needs is missing (a
// segment removed, an ASN gap); kDataLoss for damage; kInternal when E is
// below some S_v.
absl::StatusOr<AuditScan> ScanAuditForInitialCopy(const ScanOptions& options);

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_SCAN_H_
