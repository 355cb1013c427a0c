// The single writer of a trail.
//
// Appends frames into an in-memory buffer; Sync writes the buffer, makes it
// durable (fdatasync) and then publishes the new durable end. Sync is a group
// commit: concurrent callers share one fdatasync, and appends made while a
// sync runs go into the next one. Rolls over to a new segment (preallocated
// to segment_bytes) when the next frame does not fit; a frame larger than a
// whole segment gets a segment of its own.
//
// Open repairs the tail: an invalid frame at or after the last published
// durable end (read from the end file, if any), or followed only by zero
// bytes, is a torn write from a crash and is cut off, as is a newest segment
// whose header is torn. An invalid frame before that point, or in any older
// segment, is damage: Open fails with kDataLoss naming the file and offset.
// (Open checks every segment's header but scans the frames of the newest
// only, plus the last frame of the one before when the newest is empty; the
// readers find damage in older segments as they cross it.)
// Only the writer repairs; readers report.
//
// What Open adopts past the last published end (the hint). The published
// end is the only promise made to readers and committers: nothing past it
// was ever acknowledged. Past it lie frames that a killed leader wrote and
// never synced, or frames whose fdatasync failed. After a failed fdatasync
// Linux may mark those pages clean without writing them (fsyncgate): they
// read back until they are evicted or power is lost, and a second fdatasync
// succeeds without writing them. So:
//  - When the hint was published this boot (EndSource::PublishedThisBoot),
//    it is exact: the end file lives in the page cache, which outlives the
//    writer's process. Open cuts everything past it, valid or not, and
//    removes any segment after the hint's: none of it can be trusted to be
//    on disk, and none of it was acknowledged.
//  - Otherwise (a reboot since, or no hint, or an end file that does not
//    know its boot) the hint may be older than what was acknowledged: the
//    end file is never fsynced. After a reboot the page cache started empty,
//    so what reads back is what is on disk; Open adopts every valid frame
//    (never cutting acknowledged data) and fdatasyncs the segments from the
//    hint's to the newest, and the directory, before publishing them. (The
//    one case left open: an end file lost or recreated in the same boot as
//    a failed sync. Open cannot tell it from a reboot and adopts.)
//
// Thread-safe.
#ifndef RDF_COMMON_TRAIL_WRITER_H_
#define RDF_COMMON_TRAIL_WRITER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/trail/durable_end.h"
#include "common/trail/format.h"

namespace rdf::trail {

struct WriterOptions {
  std::string dir;                 // created if missing
  std::string name;                // trail name, at most kMaxNameLength
  uint64_t segment_bytes = 64 << 20;
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
  // Published after every sync (not owned; may be null). When null and
  // `shared_end` is true, Open creates the shared end file
  // EndFilePath(dir, name) and publishes there. That file is mapped with
  // mmap on the real file system, not through `fs`: with a MemFileSystem,
  // set shared_end = false or give a publisher. A publisher that is also an
  // EndSource (LocalEnd, SharedEnd) gives Open its last published end, the
  // line between a torn tail and damage.
  EndPublisher* publisher = nullptr;
  bool shared_end = true;
  // ASN lower bound for the first segment of a new, empty trail.
  uint64_t first_asn = 1;
  // Open cuts what lies past an end published this boot (see above). False
  // for a trail whose readers read to its physical end anyway (the event
  // logs): cutting there would take back what they may have read, and let
  // new frames reuse its ASNs under a reader's feet; Open then adopts and
  // syncs, as after a reboot.
  bool cut_past_published_end = true;
};

class TrailWriter {
 public:
  static absl::StatusOr<std::unique_ptr<TrailWriter>> Open(
      const WriterOptions& options);
  ~TrailWriter();  // does not sync

  // Appends one record. REQUIRES: asn >= last_asn() (equal only for a
  // control frame following the record it describes); asn > 0; type != 0.
  // time_us is remembered as the time of the newest record (End::time_us).
  // Fails only with an earlier write error still pending (sticky).
  // `at` (if not null) receives where the frame starts, for ReadPayload.
  absl::Status Append(uint64_t asn, uint8_t type, std::string_view payload,
                      int64_t time_us, Position* at = nullptr);
  // The same, with the payload (`payload_size` bytes) written in place into
  // the writer's buffer by `fill`, called once under the writer's lock: a
  // large record is not first encoded into a string of its own.
  absl::Status AppendWith(uint64_t asn, uint8_t type, size_t payload_size,
                          absl::FunctionRef<void(char*)> fill, int64_t time_us,
                          Position* at = nullptr);

  // The payload of the frame appended at `at`, synced or not: from the
  // buffer while it is there, else from its segment file (checked as a
  // reader checks it). For a writer that keeps large records out of memory
  // and reads them back when needed (tmf.image_memory_bytes). REQUIRES: `at`
  // came from Append, and its segment was not removed or cut since.
  absl::StatusOr<std::string> ReadPayload(const Position& at);

  // Makes every record appended before the call durable, then publishes.
  // Returns at once when they already are. A write or sync failure is
  // returned to every waiter and leaves the buffer intact, so a later Sync
  // retries (after ENOSPC clears, say).
  absl::Status Sync();

  // Cuts the trail back so that `end` is its end: removes later segments
  // and zeroes the rest of end.segment. Used by the receiver to drop what
  // lies past its last save point. REQUIRES: nothing buffered; `end` is a
  // frame boundary of an existing segment; end.asn is the ASN of the last
  // record kept (0 if none).
  absl::Status TruncateTo(const End& end);

  // Removes segment files whose number is below `segment` (oldest first),
  // never the current one. For retention (tmf audit, purger).
  absl::Status RemoveSegmentsBefore(uint64_t segment);

  uint64_t last_asn() const;      // newest appended ASN (0 if none)
  End durable_end() const;        // what has been published
  End appended_end() const;       // including what is only buffered
  uint64_t fsyncs() const;        // count of fdatasync calls, for metrics

 private:
  TrailWriter();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::trail

#endif  // RDF_COMMON_TRAIL_WRITER_H_
