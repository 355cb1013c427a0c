// Save points of the backup's image trails (see proto/imagetrail.proto):
// stored durably as frames in the MIT, published to updaters through
// imagetrails/savepoint.shm. The receiver writes them; updaters, the purger
// and takeover read them.
#ifndef RDF_COMMON_STATE_SAVE_POINT_H_
#define RDF_COMMON_STATE_SAVE_POINT_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "common/trail/format.h"
#include "imagetrail.pb.h"

namespace rdf {

// Frame type of a save point in the MIT (audit records use 1..5).
inline constexpr uint8_t kSavePointRecordType = 16;
inline constexpr uint32_t kSavePointVersion = 1;
inline constexpr char kMasterImageTrail[] = "MIT";

// "<image trail dir>/savepoint.shm"
std::string SavePointShmPath(const std::string& image_trail_dir);

// The newest save point stored in the MIT (reading it backwards, tolerant of
// a torn tail) that `acceptable` accepts (null: any), or nullopt when there
// is none. `frame_end` (if not null) receives the position just past its
// frame.
//
// The receiver appends a save point's frame to the MIT and then syncs the
// MIT and the volume trails together, so after a crash the newest frame in
// the MIT may describe trail ends that did not all become durable: the
// receiver accepts only a save point whose every trail end lies within what
// its trails hold after repair. Other readers use the published save point
// (ReadPublishedSavePoint), which is written only once all is durable.
// `frame_start` (if not null) receives where the frame starts.
absl::StatusOr<std::optional<proto::SavePoint>> ReadLastSavePoint(
    FileSystem* fs, const std::string& image_trail_dir,
    trail::Position* frame_end = nullptr,
    const std::function<bool(const proto::SavePoint&)>& acceptable = nullptr,
    trail::Position* frame_start = nullptr);

// The published copy of `sp` for savepoint.shm: everything but `open`
// (whose size has no limit), plus open_count and where its frame starts
// in the MIT. Bounded by the number of trails, not of open transactions.
proto::SavePoint PublishedCopy(const proto::SavePoint& sp, const trail::Position& frame_start);

// The save point the receiver last published to the updaters
// (savepoint.shm), whole: its open set is read from its MIT frame (through
// `fs`). nullopt when none was ever published. The hot path of a reader
// that needs no open set (an updater's limit) parses savepoint.shm itself.
absl::StatusOr<std::optional<proto::SavePoint>> ReadPublishedSavePoint(
    const std::string& image_trail_dir, FileSystem* fs = FileSystem::Default());

// The end of trail `name` in `sp`, or nullptr.
const proto::TrailEnd* FindTrailEnd(const proto::SavePoint& sp, absl::string_view name);

// Building a save point (the receiver; tests that play it): adds trail
// `name` ending at `end`, and an open transaction, keeping oldest_open_asn
// the smallest first ASN of the open set. The caller adds the counts.
proto::TrailEnd* AddTrailEnd(proto::SavePoint* sp, absl::string_view name, const trail::End& end);
proto::OpenTransaction* AddOpenTransaction(proto::SavePoint* sp, uint64_t txid,
                                           uint64_t first_asn);

}  // namespace rdf

#endif  // RDF_COMMON_STATE_SAVE_POINT_H_
