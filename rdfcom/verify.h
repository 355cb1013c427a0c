// rdfcom verify: compares every protected file of the primary with the
// backup's, record for record (docs/rdfcom.md "verify"; docs/architecture.md, invariant
// 3). rdfcom never opens LMDB: it asks each node's monitor for its file list
// (VERIFY_FILES) and for pages of (key, value hash) in key order
// (VERIFY_SCAN, served by monitor/verify_scan.h), and merges the two
// streams, one file at a time, so memory stays at two pages whatever the
// file sizes.
//
// Values are compared by a 128-bit BLAKE2b hash (monitor ValueHash), keys
// byte for byte; a file present on one node only differs even when empty.
//
// The consistent cut. Each page is its own LMDB read transaction on its
// node, and the two nodes are read at different moments, so a comparison
// means something only when neither node moved while it was read and both
// stood at the same point. Every reply carries, from its own read
// transaction, each volume's position (proto VerifyPosition), and every
// primary reply the primary's audit end E. The cut is consistent when:
//  - E is the same in every primary reply (nothing was written on the
//    primary from the first reply to the last);
//  - every reply of a node reports the same position for a volume (the
//    volume's applied ASN moves with every write to it, so all the pages
//    of the volume saw one state: together they are one snapshot);
//  - the backup's published save point is E, no transaction is without
//    an outcome at it, and each volume's updater had applied everything up
//    to it (its restart point is the volume trail's end at the save point);
//  - no volume of the primary is applied past E.
// Then both nodes hold the committed state at ASN E (cut_asn) and "equal"
// means record for record. Otherwise the run is repeated once after
// `recheck_delay` (the pipeline may have been catching up), and if that
// pass has no consistent cut either, the result says so (consistent_cut =
// false, cut_problem) and is never "equal". A drained pipeline (`rdfcom
// stop --drain`) always has a cut.
#ifndef RDF_RDFCOM_VERIFY_H_
#define RDF_RDFCOM_VERIFY_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "common/config/config.h"
#include "common/net/control_client.h"
#include "control.pb.h"

namespace rdf::rdfcom {

using control::ControlCall;

struct VerifyOptions {
  const config::Config* config = nullptr;  // required; not owned
  ControlCall call;                        // required
  bool json = false;  // one JSON object instead of text (see RunVerify)
  // Requests carry it as `operator` (user@host); may be empty.
  std::string operator_name;
  // VERIFY_SCAN page size asked for; 0: the monitor's default (10000).
  uint32_t page_limit = 0;
  // Differing keys listed per file (all are counted).
  int max_listed_differences = 10;
  // Wait before the second pass when the first had no consistent cut.
  absl::Duration recheck_delay = absl::Seconds(2);
  Clock* clock = Clock::Real();  // sleeps the recheck delay; not owned
};

// A file that differs, for event 980.
struct VerifyDifferingFile {
  std::string volume, file;
  uint64_t differences = 0;
  std::string first_key;  // escaped (EscapeKey)
};

// What RunVerify found, for the caller's exit status and events.
struct VerifySummary {
  // Every file equal on both nodes, compared at a consistent cut.
  bool equal = false;
  // Whether both nodes were read at one point (see the file comment), the
  // point (the primary's audit end), or what broke the cut.
  bool consistent_cut = false;
  uint64_t cut_asn = 0;
  std::string cut_problem;
  uint64_t files = 0;
  uint64_t differing_files = 0;
  uint64_t primary_records = 0;  // summed over files, as scanned
  uint64_t backup_records = 0;
  uint64_t primary_applied_asn = 0;  // from the last VERIFY_FILES of each node
  uint64_t backup_applied_asn = 0;
  uint64_t volumes = 0;  // volumes with at least one file compared
  std::vector<VerifyDifferingFile> differing;
};

// Compares the protected files of the configuration's PRIMARY and BACKUP
// nodes and writes the result to `out`:
//   text: one line with each node's applied ASN; "verify: both nodes
//     compared at ASN E" or "verify: NO CONSISTENT CUT: <problem>; ...";
//     one line per file ("$DATA01 LOAD: primary 10000 records, backup
//     10000 records, equal"; a side without the file reads "backup: no
//     such file" and the file "DIFFERENT (only on primary)"), under a
//     differing file up to max_listed_differences lines
//     "  only on primary: KEY" / "  only on backup: KEY" /
//     "  values differ: KEY", and a summary line: "verify: 4 files, 20000
//     records each side, equal at ASN E", "verify: 1 of 4 files differ
//     (...) at ASN E", or "verify: no consistent cut (...): not verified".
//   json: one line, {"equal", "consistent_cut", "cut_asn", "cut_problem",
//     "primary_applied_asn", "backup_applied_asn", "files": [{"volume",
//     "file", "primary_exists", "backup_exists", "primary_records",
//     "backup_records", "equal", "difference_count", "rechecked",
//     "differences": [{"key", "kind"}]}]}, kind "only_on_primary" |
//     "only_on_backup" | "values_differ".
// Keys are printed escaped (EscapeKey). Files are the union of both nodes'
// lists, ordered by volume (configuration order) then name; a file present
// on one node only is not equal, and its keys are listed as only on the
// other node.
//
// Returns the summary (equal, different, or no consistent cut) once both
// nodes answered every request; an error status, annotated with the
// node's name, when a node cannot be reached or refuses, or a monitor
// sends no 16-byte value hashes (an older monitor; nothing is printed
// then). REQUIRES: o.config and o.call set. Not thread-safe; blocks for
// the whole scan.
absl::StatusOr<VerifySummary> RunVerify(const VerifyOptions& o, std::ostream& out);

// Logs the result on the backup node through its monitor (VERIFY_RESULT):
// event 980 per differing file, or 981 when all are equal (docs/events.md);
// nothing when the run had no consistent cut (it proved neither).
absl::Status LogVerifyResult(const VerifyOptions& o, const VerifySummary& s);

// A key for people: printable ASCII (0x20..0x7e) as is except '\\', which
// becomes "\\\\"; every other byte "\xNN" (two lowercase hex digits).
std::string EscapeKey(std::string_view key);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_VERIFY_H_
