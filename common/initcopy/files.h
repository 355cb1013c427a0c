// File operations of the online initial copy (rdfcom initialize), shared by
// its primary side (common/initcopy/source.h), its backup side
// (common/initcopy/target.h) and rdfcom: the chunks a snapshot travels in
// through the monitors, and two small helpers.
//
// A snapshot moves as chunks of at most kMaxChunkBytes, each with the
// CRC32C of its bytes (crc32c::Value, unmasked). The backup appends them in
// order; CheckChunk decides what to do with one, from the size the staged
// file has now: the file is the only state, so a monitor that restarts, or
// a chunk sent twice (rdfcom resent after a lost reply), needs nothing else.
#ifndef RDF_COMMON_INITCOPY_FILES_H_
#define RDF_COMMON_INITCOPY_FILES_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace rdf::initcopy {

// Fits a control message (the monitor's limit is 1 MiB) with room to spare.
inline constexpr uint32_t kMaxChunkBytes = 512 << 10;

enum class ChunkAction {
  kAppend,     // offset is the file's size: append the bytes
  kDuplicate,  // the chunk ending at the file's size came again: nothing to do
};

// What to do with `data` (claimed CRC32C `crc`) at `offset` of a file that
// holds `have` bytes now. Pure.
//   kDataLoss           the CRC32C does not match the bytes
//   kInvalidArgument    more than kMaxChunkBytes
//   kFailedPrecondition offset is past the end (a gap: a chunk is missing),
//                       or before it without being the last chunk again
absl::StatusOr<ChunkAction> CheckChunk(uint64_t have, uint64_t offset, std::string_view data,
                                       uint32_t crc);

// Appends one chunk to `path` (created when missing) after CheckChunk; not
// synced (the backup syncs each file once, before it installs). Returns the
// file's size afterwards.
absl::StatusOr<uint64_t> AppendChunk(const std::string& path, uint64_t offset,
                                     std::string_view data, uint32_t crc);

// Up to `max_bytes` (capped at kMaxChunkBytes) of `path` from `offset`;
// empty at or past the end.
absl::StatusOr<std::string> ReadChunk(const std::string& path, uint64_t offset,
                                      uint32_t max_bytes);

// rm -r (no error when missing).
absl::Status RemoveTree(const std::string& path);
// fsync of a file.
absl::Status SyncFile(const std::string& path);

}  // namespace rdf::initcopy

#endif  // RDF_COMMON_INITCOPY_FILES_H_
