// Fuzz target: the receiver's save points (common/state/save_point.h) as every
// reader meets them: frames of type kSavePointRecordType in the MIT
// (ReadLastSavePoint, which the receiver opens with) and the published copy
// in savepoint.shm with the open set read back from its frame
// (ReadPublishedSavePoint: updaters, purger, monitor, takeover; the
// updater's limit parses the copy itself and looks its trail up with
// FindTrailEnd). The input (save_point_input.h) gives the MIT's frames,
// appended by the real TrailWriter into a MemFileSystem, and the bytes
// published in savepoint.shm, a real file (SharedBlob maps it) in a
// temporary folder.
//
// Promises checked:
//  - ReadLastSavePoint returns what a model of its contract says: the
//    newest save point frame that `acceptable` takes, kDataLoss when a
//    newer save point frame does not parse or has another version, nothing
//    when there is none; with its frame's start and end; a torn last frame
//    is not read;
//  - a save point read re-encodes and parses back to the same value;
//  - its published copy (PublishedCopy) has no open set, counts it, and
//    ReadPublishedSavePoint gives back the whole save point, open set and
//    all;
//  - for the fuzzed published bytes: nothing when empty, kDataLoss when
//    they do not parse, the copy itself when it names no frame, otherwise
//    a save point of the copy's ASN, time and open count (the frame it
//    names, when that is one of the MIT's frames).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/base/shared_blob.h"
#include "common/state/save_point.h"
#include "common/testing/mem_file_system.h"
#include "common/trail/format.h"
#include "common/trail/writer.h"
#include "imagetrail.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/save_point_input.h"

namespace {

using namespace rdf;
using namespace rdf::fuzz::save_point;

const std::string& Dir() { return rdf::fuzz::ProcessTempDir("rdf-fuzz-save-point"); }

// savepoint.shm, written as the receiver does (one writer for the process;
// an empty value reads as "none published").
SharedBlob& Shm() {
  static SharedBlob* blob = [] {
    absl::StatusOr<std::unique_ptr<SharedBlob>> b = SharedBlob::Create(SavePointShmPath(Dir()));
    RDF_FUZZ_CHECK(b.ok(), "cannot create savepoint.shm");
    return b->release();
  }();
  return *blob;
}

// One frame as appended to the MIT, and where it lies.
struct Written {
  uint8_t type;
  std::string payload;
  trail::Position start, end;
  bool torn = false;
};

std::optional<proto::SavePoint> Parse(const std::string& bytes) {
  proto::SavePoint sp;
  if (!sp.ParseFromString(bytes)) return std::nullopt;
  return sp;
}

bool Same(const proto::SavePoint& a, const proto::SavePoint& b) {
  return a.SerializeAsString() == b.SerializeAsString();
}

// Appends the input's frames to the MIT through the real writer and syncs.
// False when the writer refuses (no promise is broken then).
bool WriteMit(MemFileSystem* fs, const SavePointInput& in, std::vector<Written>* out) {
  FakeClock clock;
  trail::WriterOptions wo;
  wo.dir = Dir();
  wo.name = kMasterImageTrail;
  wo.segment_bytes = kSegmentBytes;
  wo.fs = fs;
  wo.clock = &clock;
  wo.shared_end = false;
  absl::StatusOr<std::unique_ptr<trail::TrailWriter>> w = trail::TrailWriter::Open(wo);
  if (!w.ok()) return false;
  uint64_t asn = 0;
  for (const Frame& f : in.frames) {
    const uint8_t type = f.type == 0 ? kSavePointRecordType : f.type;
    if (!(*w)->Append(++asn, type, f.payload, clock.NowMicros()).ok()) return false;
    const trail::Position end = (*w)->appended_end().pos;
    // A frame never spans segments (as ImageTrails::SavePoint computes it).
    const trail::Position start{end.segment, end.offset - trail::kFrameOverhead - f.payload.size()};
    out->push_back(Written{type, f.payload, start, end});
  }
  return (*w)->Sync().ok();
}

// A torn tail: the last frame loses its last 1 + selector bytes (zeroed,
// as a segment's unwritten room is). It is torn if that changed it.
bool Tear(MemFileSystem* fs, uint8_t selector, std::vector<Written>* frames) {
  if (frames->empty()) return true;
  Written& last = frames->back();
  const std::string path =
      JoinPath(Dir(), trail::SegmentFileName(kMasterImageTrail, last.end.segment));
  absl::StatusOr<std::string> bytes = fs->Contents(path);
  if (!bytes.ok()) return false;
  const uint64_t cut = std::min<uint64_t>(1 + selector, last.end.offset - last.start.offset);
  for (uint64_t i = last.end.offset - cut; i < last.end.offset; ++i) {
    // Torn only if a byte changes (the trailer's last byte is often 0).
    last.torn = last.torn || (*bytes)[i] != 0;
    (*bytes)[i] = 0;
  }
  return fs->SetContents(path, *std::move(bytes)).ok();
}

// The model of ReadLastSavePoint: the index of the frame it returns,
// nullopt for none, -1 for kDataLoss.
std::optional<int> ExpectedLast(const std::vector<Written>& frames, int reject) {
  for (int i = static_cast<int>(frames.size()) - 1; i >= 0; --i) {
    if (frames[i].torn || frames[i].type != kSavePointRecordType) continue;
    std::optional<proto::SavePoint> sp = Parse(frames[i].payload);
    if (!sp.has_value() || sp->version() != kSavePointVersion) return -1;
    if (reject-- > 0) continue;
    return i;
  }
  return std::nullopt;
}

// The receiver's path: the save point read is published and read back whole.
void CheckPublishedCopy(MemFileSystem* fs, const proto::SavePoint& sp,
                        const trail::Position& start) {
  const proto::SavePoint copy = PublishedCopy(sp, start);
  RDF_FUZZ_CHECK(copy.open_size() == 0 && copy.open_count() == static_cast<uint64_t>(sp.open_size()),
                 "the published copy carries its open set, or miscounts it");
  RDF_FUZZ_CHECK(copy.frame_segment() == start.segment && copy.frame_offset() == start.offset,
                 "the published copy names another frame");
  const std::string bytes = copy.SerializeAsString();
  if (bytes.size() > SharedBlob::kCapacity) return;
  RDF_FUZZ_CHECK(Shm().Write(bytes).ok(), "cannot publish");
  absl::StatusOr<std::optional<proto::SavePoint>> back = ReadPublishedSavePoint(Dir(), fs);
  RDF_FUZZ_CHECK(back.ok() && back->has_value(), "a published save point does not read back");
  RDF_FUZZ_CHECK(Same(**back, sp), "a published save point reads back different");
}

void CheckLastSavePoint(MemFileSystem* fs, const SavePointInput& in,
                        const std::vector<Written>& frames) {
  const int reject = (in.flags & kReject) ? in.selector % 4 : 0;
  int offered = 0;
  auto acceptable = [&offered, reject](const proto::SavePoint&) { return offered++ >= reject; };
  trail::Position start, end;
  absl::StatusOr<std::optional<proto::SavePoint>> r =
      ReadLastSavePoint(fs, Dir(), &end, acceptable, &start);
  const std::optional<int> want = ExpectedLast(frames, reject);
  if (want == -1) {
    RDF_FUZZ_CHECK(absl::IsDataLoss(r.status()), "a save point frame that does not parse is read");
    return;
  }
  if (!r.ok()) std::fprintf(stderr, "ReadLastSavePoint: %s\n", r.status().ToString().c_str());
  RDF_FUZZ_CHECK(r.ok(), "the MIT's save points do not read");
  if (!want.has_value()) {
    RDF_FUZZ_CHECK(!r->has_value(), "a save point is read where there is none to read");
    return;
  }
  const Written& w = frames[*want];
  RDF_FUZZ_CHECK(r->has_value(), "the newest acceptable save point is not read");
  RDF_FUZZ_CHECK(Same(**r, *Parse(w.payload)), "a save point is read other than the newest");
  RDF_FUZZ_CHECK(start == w.start && end == w.end, "a save point is read with the wrong frame");
  std::optional<proto::SavePoint> again = Parse((*r)->SerializeAsString());
  RDF_FUZZ_CHECK(again.has_value() && Same(*again, **r),
                 "a save point read does not re-encode to itself");
  CheckPublishedCopy(fs, **r, start);
}

// The published bytes of the input (kAim: made to name a frame; `aimed` when
// that frame is a whole save point of the current version, which must be
// read; `other_version` when it is one of another version, which must not).
std::string Published(const SavePointInput& in, const std::vector<Written>& frames,
                      std::optional<size_t>* aimed, bool* other_version) {
  if (!(in.flags & kAim) || frames.empty()) return in.published;
  proto::SavePoint pub = Parse(in.published).value_or(proto::SavePoint());
  if (pub.version() != kSavePointVersion) pub.set_version(kSavePointVersion);
  const size_t k = in.selector % frames.size();
  pub.set_frame_segment(frames[k].start.segment);
  pub.set_frame_offset(frames[k].start.offset);
  const std::optional<proto::SavePoint> frame = Parse(frames[k].payload);
  if (frames[k].type == kSavePointRecordType && frame.has_value() && !frames[k].torn) {
    pub.set_asn(frame->asn());
    pub.set_time_us(frame->time_us());
    pub.set_open_count(frame->open_size());
    if (frame->version() == kSavePointVersion) {
      *aimed = k;
    } else {
      *other_version = true;
    }
  }
  return pub.SerializeAsString();
}

// The updater's limit: the copy parsed as it is, each trail looked up.
void CheckTrailLookup(const proto::SavePoint& pub) {
  for (const proto::TrailEnd& t : pub.trails()) {
    const proto::TrailEnd* e = FindTrailEnd(pub, t.trail());
    RDF_FUZZ_CHECK(e != nullptr && e->trail() == t.trail(), "a trail end is not found");
  }
}

void CheckPublished(MemFileSystem* fs, const SavePointInput& in,
                    const std::vector<Written>& frames) {
  std::optional<size_t> aimed;
  bool other_version = false;
  const std::string bytes = Published(in, frames, &aimed, &other_version);
  if (bytes.size() > SharedBlob::kCapacity) return;
  RDF_FUZZ_CHECK(Shm().Write(bytes).ok(), "cannot publish");
  absl::StatusOr<std::optional<proto::SavePoint>> r = ReadPublishedSavePoint(Dir(), fs);
  if (bytes.empty()) {
    RDF_FUZZ_CHECK(r.ok() && !r->has_value(), "a save point is read where none was published");
    return;
  }
  const std::optional<proto::SavePoint> pub = Parse(bytes);
  if (!pub.has_value() || pub->version() != kSavePointVersion) {
    RDF_FUZZ_CHECK(absl::IsDataLoss(r.status()), "a published copy that does not parse is read");
    return;
  }
  CheckTrailLookup(*pub);
  if (pub->frame_segment() == 0) {
    RDF_FUZZ_CHECK(r.ok() && r->has_value() && Same(**r, *pub),
                   "a published copy naming no frame is not read as it is");
    return;
  }
  if (aimed.has_value()) RDF_FUZZ_CHECK(r.ok(), "the frame a published copy names is not read");
  if (other_version) {
    RDF_FUZZ_CHECK(absl::IsDataLoss(r.status()),
                   "a published copy naming a frame of another version is read");
  }
  if (!r.ok()) return;
  RDF_FUZZ_CHECK(r->has_value(), "a published save point reads as none");
  const proto::SavePoint& sp = **r;
  RDF_FUZZ_CHECK(sp.asn() == pub->asn() && sp.time_us() == pub->time_us() &&
                     static_cast<uint64_t>(sp.open_size()) == pub->open_count(),
                 "a published save point is read from a frame not its own");
  for (const Written& w : frames) {
    if (w.torn || w.start != trail::Position{pub->frame_segment(), pub->frame_offset()}) continue;
    RDF_FUZZ_CHECK(Same(sp, *Parse(w.payload)), "a published save point is not its frame");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const SavePointInput in =
      DecodeSavePointInput(std::string_view(reinterpret_cast<const char*>(data), size));
  MemFileSystem fs;
  std::vector<Written> frames;
  if (!WriteMit(&fs, in, &frames)) return 0;
  if ((in.flags & kTear) && !Tear(&fs, in.selector, &frames)) return 0;
  CheckLastSavePoint(&fs, in, frames);
  CheckPublished(&fs, in, frames);
  return 0;
}
