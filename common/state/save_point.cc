#include "common/state/save_point.h"

#include "absl/strings/str_cat.h"
#include "common/base/shared_blob.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"
#include "common/trail/reader.h"

namespace rdf {

std::string SavePointShmPath(const std::string& image_trail_dir) {
  return layout::SavePointShmFile(image_trail_dir);
}

absl::StatusOr<std::optional<proto::SavePoint>> ReadLastSavePoint(
    FileSystem* fs, const std::string& image_trail_dir, trail::Position* frame_end,
    const std::function<bool(const proto::SavePoint&)>& acceptable,
    trail::Position* frame_start) {
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
    if (frame_start != nullptr) *frame_start = rec->pos;
    return std::optional<proto::SavePoint>(std::move(sp));
  }
}

proto::SavePoint PublishedCopy(const proto::SavePoint& sp, const trail::Position& frame_start) {
  proto::SavePoint copy = sp;  // (every field, so none added later is forgotten)
  copy.clear_open();
  copy.set_frame_segment(frame_start.segment);
  copy.set_frame_offset(frame_start.offset);
  copy.set_open_count(sp.open_size());
  return copy;
}

namespace {
// The whole save point whose published copy is `pub`, from its MIT frame.
absl::StatusOr<proto::SavePoint> ReadFrame(FileSystem* fs, const std::string& dir,
                                           const proto::SavePoint& pub) {
  const trail::Position at{pub.frame_segment(), pub.frame_offset()};
  trail::ReaderOptions ro;
  ro.dir = dir;
  ro.name = kMasterImageTrail;
  ro.fs = fs;
  RDF_ASSIGN_OR_RETURN(auto reader, trail::TrailReader::Open(ro));
  RDF_RETURN_IF_ERROR(reader->SeekToPosition(at));
  RDF_ASSIGN_OR_RETURN(std::optional<trail::Record> rec, reader->Next());
  proto::SavePoint sp;
  if (!rec.has_value() || rec->type != kSavePointRecordType || !sp.ParseFromString(rec->payload) ||
      sp.version() != kSavePointVersion ||
      sp.asn() != pub.asn() || sp.time_us() != pub.time_us() ||
      static_cast<uint64_t>(sp.open_size()) != pub.open_count()) {
    return absl::DataLossError(absl::StrCat("MIT ", trail::ToString(at),
                                            ": not the frame of the published save point at ASN ",
                                            pub.asn()));
  }
  return sp;
}
}  // namespace

absl::StatusOr<std::optional<proto::SavePoint>> ReadPublishedSavePoint(
    const std::string& image_trail_dir, FileSystem* fs) {
  absl::StatusOr<std::unique_ptr<SharedBlob>> blob =
      SharedBlob::OpenReadOnly(SavePointShmPath(image_trail_dir));
  if (absl::IsNotFound(blob.status())) return std::optional<proto::SavePoint>();
  if (!blob.ok()) return blob.status();
  // The receiver may publish a newer save point (and the purger remove the
  // older frame's segment) between reading the copy and its frame: read
  // the copy again then. A few tries; a frame that stays unreadable while
  // the copy stays the same is damage.
  absl::Status last;
  for (int attempt = 0; attempt < 5; ++attempt) {
    uint64_t generation = 0;
    std::string bytes = (*blob)->Read(&generation);
    if (bytes.empty()) return std::optional<proto::SavePoint>();
    proto::SavePoint pub;
    if (!pub.ParseFromString(bytes) || pub.version() != kSavePointVersion) {
      return absl::DataLossError(absl::StrCat(SavePointShmPath(image_trail_dir),
                                              ": the published save point does not parse"));
    }
    if (pub.frame_segment() == 0) return std::optional<proto::SavePoint>(std::move(pub));
    absl::StatusOr<proto::SavePoint> whole = ReadFrame(fs, image_trail_dir, pub);
    if (whole.ok()) return std::optional<proto::SavePoint>(*std::move(whole));
    last = whole.status();
    uint64_t now = 0;
    (*blob)->Read(&now);
    if (now == generation) break;  // not a race: the frame is unreadable
  }
  return Annotate(last, "read the published save point's frame");
}

const proto::TrailEnd* FindTrailEnd(const proto::SavePoint& sp, absl::string_view name) {
  for (const proto::TrailEnd& t : sp.trails()) {
    if (t.trail() == name) return &t;
  }
  return nullptr;
}

proto::TrailEnd* AddTrailEnd(proto::SavePoint* sp, absl::string_view name, const trail::End& end) {
  proto::TrailEnd* te = sp->add_trails();
  te->set_trail(std::string(name));
  te->set_segment(end.pos.segment);
  te->set_offset(end.pos.offset);
  te->set_asn(end.asn);
  return te;
}

proto::OpenTransaction* AddOpenTransaction(proto::SavePoint* sp, uint64_t txid,
                                           uint64_t first_asn) {
  proto::OpenTransaction* o = sp->add_open();
  o->set_txid(txid);
  o->set_first_asn(first_asn);
  if (sp->oldest_open_asn() == 0 || first_asn < sp->oldest_open_asn()) {
    sp->set_oldest_open_asn(first_asn);
  }
  return o;
}

}  // namespace rdf
