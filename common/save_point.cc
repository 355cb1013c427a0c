#include "common/save_point.h"

#include "absl/strings/str_cat.h"
#include "common/shared_blob.h"
#include "common/status_macros.h"
#include "common/trail_reader.h"

namespace rdf {

std::string SavePointShmPath(const std::string& image_trail_dir) {
  return JoinPath(image_trail_dir, "savepoint.shm");
}

absl::StatusOr<std::optional<proto::SavePoint>> ReadLastSavePoint(
    FileSystem* fs, const std::string& image_trail_dir, trail::Position* frame_end,
    const std::function<bool(const proto::SavePoint&)>& acceptable) {
  if (!fs->Exists(image_trail_dir)) return std::optional<proto::SavePoint>();
  RDF_ASSIGN_OR_RETURN(auto segs, trail::ListSegments(fs, image_trail_dir, kMasterImageTrail));
  if (segs.empty()) return std::optional<proto::SavePoint>();
  trail::ReaderOptions ro;
  ro.dir = image_trail_dir;
  ro.name = kMasterImageTrail;
  ro.fs = fs;
  RDF_ASSIGN_OR_RETURN(auto reader, trail::TrailReader::Open(ro));
  RDF_RETURN_IF_ERROR(reader->SeekToEnd());
  while (true) {
    RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, reader->Prev());
    if (!rec.has_value()) return std::optional<proto::SavePoint>();
    if (rec->type != kSavePointRecordType) continue;
    proto::SavePoint sp;
    if (!sp.ParseFromString(rec->payload) || sp.version() != kSavePointVersion) {
      return absl::DataLossError(absl::StrCat("save point at MIT ", trail::ToString(rec->pos),
                                              " does not parse"));
    }
    if (acceptable && !acceptable(sp)) continue;
    if (frame_end != nullptr) *frame_end = rec->next;
    return std::optional<proto::SavePoint>(std::move(sp));
  }
}

absl::StatusOr<std::optional<proto::SavePoint>> ReadPublishedSavePoint(
    const std::string& image_trail_dir) {
  absl::StatusOr<std::unique_ptr<SharedBlob>> blob =
      SharedBlob::OpenReadOnly(SavePointShmPath(image_trail_dir));
  if (absl::IsNotFound(blob.status())) return std::optional<proto::SavePoint>();
  if (!blob.ok()) return blob.status();
  std::string bytes = (*blob)->Read();
  if (bytes.empty()) return std::optional<proto::SavePoint>();
  proto::SavePoint sp;
  if (!sp.ParseFromString(bytes) || sp.version() != kSavePointVersion) {
    return absl::DataLossError(absl::StrCat(SavePointShmPath(image_trail_dir),
                                            ": the published save point does not parse"));
  }
  return std::optional<proto::SavePoint>(std::move(sp));
}

const proto::TrailEnd* FindTrailEnd(const proto::SavePoint& sp, absl::string_view name) {
  for (const proto::TrailEnd& t : sp.trails()) {
    if (t.trail() == name) return &t;
  }
  return nullptr;
}

}  // namespace rdf
