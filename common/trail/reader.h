// Readers of a trail: forwards (tailing a growing trail) and backwards (the
// undo pass at takeover), with memory bounded by one record.
//
// A reader never reads past its limit: the EndSource it was given (the
// writer's durable end, or the receiver's save point for an updater). Within
// that limit every byte is durable, so any invalid frame is damage:
// kDataLoss naming the file and offset; the reader stays stopped there.
// With no EndSource the reader reads to the physical end and treats an
// invalid frame followed only by zeros (or the end of file) in the newest
// segment as the end: for event trails, read while their writer runs.
//
// A missing segment that the reader needs is kNotFound naming the file.
// Not thread-safe: one thread per reader.
#ifndef RDF_COMMON_TRAIL_READER_H_
#define RDF_COMMON_TRAIL_READER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/base/file_system.h"
#include "common/trail/durable_end.h"
#include "common/trail/format.h"

namespace rdf::trail {

struct Record {
  uint64_t asn = 0;
  uint8_t type = 0;
  std::string payload;
  Position pos;   // where the frame starts
  Position next;  // just past the frame
};

struct SegmentInfo {
  uint64_t segment = 0;
  uint64_t first_asn = 0;
  uint64_t bytes = 0;  // file size
  std::string path;
};

// The segments of a trail, oldest first (headers read and checked). A
// damaged header is kDataLoss, except in the newest segment, which is then
// left out: its writer may be creating it, or will repair it.
absl::StatusOr<std::vector<SegmentInfo>> ListSegments(FileSystem* fs,
                                                      const std::string& dir,
                                                      const std::string& name);

struct ReaderOptions {
  std::string dir;
  std::string name;
  FileSystem* fs = FileSystem::Default();
  // Not owned; null means "to the physical end" (see above).
  EndSource* limit = nullptr;
};

class TrailReader {
 public:
  // Opens positioned at the start of the oldest segment present.
  static absl::StatusOr<std::unique_ptr<TrailReader>> Open(
      const ReaderOptions& options);
  ~TrailReader();

  // Positions at a frame boundary (a Record's pos or next).
  absl::Status SeekToPosition(const Position& pos);
  // Positions at the first record with ASN >= asn (ASNs never decrease;
  // two frames may share one) (or at the end when none
  // is there yet).
  absl::Status SeekToAsn(uint64_t asn);
  // Positions just past the last record within the limit (for Prev).
  absl::Status SeekToEnd();

  // The next record, or nullopt when the limit (or the end) is reached; call
  // again later to tail a growing trail.
  absl::StatusOr<std::optional<Record>> Next();
  // Like Next, but first waits up to `timeout` for the limit to move when
  // nothing is there yet.
  absl::StatusOr<std::optional<Record>> NextWait(absl::Duration timeout);
  // The record before the current position (moving backwards across
  // segments), or nullopt at the start of the oldest segment.
  absl::StatusOr<std::optional<Record>> Prev();

  Position position() const;

 private:
  TrailReader();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::trail

#endif  // RDF_COMMON_TRAIL_READER_H_
