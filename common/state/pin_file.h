// The extractor's pin on the primary's audit trail: a small file
// "<audit dir>/pin" holding the highest ASN the backup has made durable (the
// extractor's acknowledged ASN), as decimal text. tmf keeps every audit
// segment holding a record above it. Replaced atomically (write-temp, fsync,
// rename). No pin file means nothing is pinned.
#ifndef RDF_COMMON_STATE_PIN_FILE_H_
#define RDF_COMMON_STATE_PIN_FILE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"

namespace rdf {

std::string PinFilePath(const std::string& audit_dir);
// nullopt when there is no pin file; kDataLoss when it does not parse.
absl::StatusOr<std::optional<uint64_t>> ReadPin(FileSystem* fs,
                                                const std::string& audit_dir);
absl::Status WritePin(FileSystem* fs, const std::string& audit_dir,
                      uint64_t asn);

}  // namespace rdf

#endif  // RDF_COMMON_STATE_PIN_FILE_H_
