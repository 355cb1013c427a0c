// rdfcom exceptions: the updaters' exception logs (docs/rdfcom.md,
// docs/updater.md). Each updater appends one JSON object
// (proto::ExceptionRecord) per error 10 or 11 it meets to
// <data_dir>/exceptions/<VOLUME>.jsonl of its node, "$DATA01" -> DATA01.jsonl.
// This reads those files directly, so it works where the node's data
// directory is readable.
#ifndef RDF_RDFCOM_EXCEPTIONS_CMD_H_
#define RDF_RDFCOM_EXCEPTIONS_CMD_H_

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "common/config/config.h"
#include "takeover.pb.h"

namespace rdf::rdfcom {

// The configured volume that `name` means: "$DATA01" or "DATA01", ignoring
// case (volume names are unique ignoring case). kNotFound naming the
// configuration and listing its volumes otherwise.
absl::StatusOr<const proto::VolumeConfig*> FindVolumeByName(const config::Config& config,
                                                            std::string_view name);

// One line of an exception log.
struct ExceptionEntry {
  proto::ExceptionRecord record;  // parsed
  std::string line;               // as stored, without the newline
};

// Renders `entries` as an aligned table with a header line: time (RFC 3339,
// UTC, microseconds), volume, error, op, file, key, txid, asn, action.
// The key is shown as stored (C-escaped by the updater); any byte outside
// printable ASCII that a damaged or foreign file may hold is escaped again.
std::string FormatExceptionTable(const std::vector<ExceptionEntry>& entries);

struct ExceptionsOptions {
  const config::Config* config = nullptr;  // not owned
  std::string node;    // whose data_dir; empty: the BACKUP node
  std::string volume;  // only this volume (FindVolumeByName); empty: every log file
  bool json = false;   // print the stored lines instead of the table
};

struct ExceptionsResult {
  size_t printed = 0;    // exceptions printed
  size_t malformed = 0;  // lines skipped (reported on `err`)
};

// Reads the selected node's exception logs (every *.jsonl file of
// config::ExceptionDir, or only the --volume's), merges them by time (ties:
// file name order, then line order) and prints them to `out`: the table, or
// with `json` each line exactly as stored. When there is nothing to print,
// the table form prints "no exceptions" (the JSON form prints nothing).
// A line that is not an exception record is reported on `err` as
// "<file>:<line>: malformed exception record (...); skipped" and the rest
// is still printed (a crash of the updater mid-write can leave such a
// line); blank lines are ignored.
// Errors: an unknown node or volume (kNotFound), or a log that exists but
// cannot be read (from the file system).
absl::StatusOr<ExceptionsResult> RunExceptions(const ExceptionsOptions& options,
                                               std::ostream& out, std::ostream& err,
                                               FileSystem* fs = FileSystem::Default());

}  // namespace rdf::rdfcom

#endif  // RDF_RDFCOM_EXCEPTIONS_CMD_H_
