// rdfcom verify: compares every protected file of the primary with the
// backup's, record for record (docs/rdfcom.md "verify"; DESIGN.md invariant
// 3). rdfcom never opens LMDB: it asks each node's monitor for its file list
// (VERIFY_FILES) and for pages of (key, value digest) in key order
// (VERIFY_SCAN, served by monitor/verify_scan.h), and merges the two
// streams, one file at a time, so memory stays at two pages whatever the
// file sizes.
//
// Snapshots: each page is its own LMDB snapshot on its node, and the two
// nodes are read at slightly different moments, so a verify of a running
// pipeline can see differences that are only lag. Files that differ are
// therefore scanned once more after `recheck_delay` (2 s) and the second
// result is the one reported. Only a drained pipeline (everything shipped
// and applied, no transaction open) guarantees equal files.
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
#include "common/clock.h"
#include "common/config.h"
#include "control.pb.h"
#include "common/control_client.h"

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
  // Wait before the one re-scan of the files that differ.
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
  bool equal = false;  // every file equal on both nodes
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
//   text: one line with each node's applied ASN, one line per file
//     ("$DATA01 LOAD: primary 10000 records, backup 10000 records, equal"),
//     under a differing file up to max_listed_differences lines
//     "  only on primary: KEY" / "  only on backup: KEY" /
//     "  values differ: KEY", and a summary line: "verify: 4 files, 20000
//     records each side, equal" or "verify: 1 of 4 files differ".
//   json: one line, {"equal", "primary_applied_asn", "backup_applied_asn",
//     "files": [{"volume", "file", "primary_records", "backup_records",
//     "equal", "difference_count", "rechecked", "differences": [{"key",
//     "kind"}]}]}, kind "only_on_primary" | "only_on_backup" |
//     "values_differ".
// Keys are printed escaped (EscapeKey). Files are the union of both nodes'
// lists, ordered by volume (configuration order) then name; a file present
// on one node only is compared against an empty file.
//
// Returns the summary (equal or not) once both nodes answered every
// request; an error status, annotated with the node's name, when a node
// cannot be reached or refuses (nothing is printed then). REQUIRES:
// o.config and o.call set. Not thread-safe; blocks for the whole scan.
absl::StatusOr<VerifySummary> RunVerify(const VerifyOptions& o, std::ostream& out);

// Logs the result on the backup node through its monitor (VERIFY_RESULT):
// event 980 per differing file, or 981 when all are equal (docs/events.md).
absl::Status LogVerifyResult(const VerifyOptions& o, const VerifySummary& s);

// A key for people: printable ASCII (0x20..0x7e) as is except '\\', which
// becomes "\\\\"; every other byte "\xNN" (two lowercase hex digits).
std::string EscapeKey(std::string_view key);

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_VERIFY_H_
