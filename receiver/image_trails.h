// The backup's image trails as the receiver writes them: the master image
// trail (MIT: COMMIT, ABORT, DDL, CONTROL and the save points) and one trail
// per protected volume (its DATA records and the DDL that concerns it),
// under <backup data_dir>/imagetrails/.
//
// Append routes a batch's records without parsing their payloads; SavePoint
// appends a save point frame to the MIT, makes every dirty trail and the
// MIT durable in one sync phase, then publishes it to the updaters (shared
// file); Open judges a frame whose sync may have failed (docs/protocol.md). Open repairs torn tails and cuts every trail back to the last save
// point, so nothing past a save point survives a crash.
//
// Not thread-safe: the receiver's main loop owns it.
#ifndef RDF_RECEIVER_IMAGE_TRAILS_H_
#define RDF_RECEIVER_IMAGE_TRAILS_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/base/shared_blob.h"
#include "common/config/config.h"
#include "common/trail/writer.h"
#include "imagetrail.pb.h"
#include "wire.pb.h"

namespace rdf::receiver {

class ParallelSync;

class ImageTrails {
 public:
  // Opens the trails, repairs torn tails and cuts every trail back to the
  // newest save point whose trail ends all survived. `published_frame`, on
  // a reopen after a failed save point in the same process, is
  // last_published_frame() of the instance before: no save point frame
  // after it is adopted (its syncs failed; see docs/trail-format.md,
  // "Durable ends").
  static absl::StatusOr<std::unique_ptr<ImageTrails>> Open(
      const config::Config& config, const proto::NodeConfig& node, FileSystem* fs,
      Clock* clock, const std::optional<trail::End>& published_frame = std::nullopt);

  // Checks a batch without writing anything. kFailedPrecondition when it
  // does not continue from received_asn() (from_asn differs: the extractor
  // is out of step; resynchronize). Otherwise: ASNs strictly increasing and
  // above received_asn(), known record types, DATA/DDL naming a protected
  // volume, each record's routing fields (type, txid, and for DATA/DDL the
  // volume) equal to its payload's header, read_through_asn >= the last
  // record. kInvalidArgument says why.
  absl::Status Validate(const proto::Batch& b) const;
  // Appends a validated batch (buffered until SavePoint). A record that
  // arrives in fragments (WireRecord.total_bytes) is held in memory until
  // its last fragment, then appended as one frame; received_asn() stays
  // below it meanwhile (the batch's read_through_asn does).
  absl::Status Append(const proto::Batch& b);
  // Forgets a record whose fragments are not all in (a new session resends
  // it from its first fragment).
  void DropPartial();
  // Records the primary's newest audit (from batches and heartbeats).
  void NoteAuditEnd(uint64_t asn, int64_t time_us);
  // Advances received_asn over filtered audit (heartbeat read_through).
  void NoteReadThrough(uint64_t asn);

  ~ImageTrails();

  // Whether anything was received since the last save point.
  bool pending() const { return received_asn_ > save_point_.asn(); }
  // Syncs and records a save point at received_asn(); `next_seq` is stored
  // with it. A non-zero `takeover_epoch` marks it as the final save point of
  // a takeover. On failure (disk full, ...) nothing is published and a
  // later call retries.
  absl::Status SavePoint(uint64_t next_seq, uint64_t takeover_epoch = 0);

  uint64_t received_asn() const { return received_asn_; }
  const proto::SavePoint& save_point() const { return save_point_; }
  // The MIT end just past the frame of save_point() (the start of the MIT
  // when there is none yet).
  trail::End last_published_frame() const {
    return frame_end_.value_or(trail::End{0, {1, trail::kHeaderSize}, 0});
  }
  uint64_t fsyncs() const;
  uint64_t records() const { return records_; }
  uint64_t bytes() const { return bytes_; }
  int64_t audit_end_time_us() const { return audit_end_time_us_; }
  uint64_t audit_end_asn() const { return audit_end_asn_; }

 private:
  struct Trail {
    std::string name;
    std::unique_ptr<trail::TrailWriter> writer;
    bool dirty = false;
    uint64_t records = 0;  // ever appended (TrailEnd.records)
    uint64_t bytes = 0;
  };
  ImageTrails() = default;
  absl::Status CutBackToSavePoint();
  // Writes save_point_'s published copy (without the open set) to the
  // shared file; its frame starts at `frame_start` in the MIT.
  absl::Status Publish(const trail::Position& frame_start);
  Trail* VolumeTrail(const std::string& volume) const;
  // Known type, a protected volume for DATA/DDL, a payload, and routing
  // fields that agree with the payload's header (of its start: `prefix`).
  absl::Status CheckRecordFields(const proto::WireRecord& r, bool prefix) const;
  static absl::Status CheckRouting(const proto::WireRecord& r, bool prefix);
  // A batch that carries or continues a fragmented record.
  absl::Status ValidateFragment(const proto::Batch& b) const;
  static bool HasFragment(const proto::Batch& b);
  static uint64_t FragmentEnd(const proto::WireRecord& r);
  absl::Status AppendRecord(const proto::WireRecord& r);
  static absl::Status AppendTo(Trail* t, const proto::WireRecord& r);

  std::string dir_;
  FileSystem* fs_ = nullptr;
  Clock* clock_ = nullptr;
  std::vector<std::unique_ptr<Trail>> trails_;  // [0] is the MIT
  absl::flat_hash_map<std::string, Trail*> by_volume_;  // "$DATA01" -> trail
  std::unique_ptr<SharedBlob> shm_;
  std::unique_ptr<ParallelSync> sync_;  // syncs the volume trails of a save point
  proto::SavePoint save_point_;
  std::optional<trail::End> frame_end_;  // see last_published_frame()
  // The record arriving in fragments: its fields and the payload so far.
  proto::WireRecord partial_;
  bool partial_open_ = false;
  uint64_t received_asn_ = 0;
  int64_t last_record_time_us_ = 0;  // primary time of the newest record
  uint64_t max_txid_ = 0;
  uint64_t audit_end_asn_ = 0;
  int64_t audit_end_time_us_ = 0;
  // Transactions with DATA and no outcome yet: txid -> (first ASN, records).
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> open_;
  uint64_t records_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace rdf::receiver

#endif  // RDF_RECEIVER_IMAGE_TRAILS_H_
