// Fuzz target: trail segments (common/trail_*) as found on disk after a
// crash or damage. The input (tests/fuzz/segment_input.h) becomes the
// segment files of one trail in an in-memory file system; then the trail is
// listed, read forwards and backwards, searched by ASN, read again with a
// durable end as the limit, and opened by the writer, which repairs a torn
// tail. Errors are expected; a crash, a hang, an out-of-bounds read or a
// broken promise (RDF_FUZZ_CHECK) is a bug.
//
// Promises checked:
//  - reading with a limit at the end an unlimited read reached yields the
//    same records;
//  - the writer's repair never cuts before the last published end (what
//    was durable stays), and leaves a newest segment that reads cleanly up
//    to the writer's end;
//  - TruncateTo a record's end, when it succeeds, leaves the writer there;
//  - a record appended and synced reads back at the writer's end.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/base/clock.h"
#include "common/base/crc32c.h"
#include "common/base/file_system.h"
#include "common/testing/mem_file_system.h"
#include "common/trail/durable_end.h"
#include "common/trail/format.h"
#include "common/trail/reader.h"
#include "common/trail/writer.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/segment_input.h"

namespace rdf::fuzz {
namespace {

using trail::End;
using trail::Position;
using trail::Record;

void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

void FixHeader(std::string& seg) {
  if (seg.size() < trail::kHeaderSize) return;
  PutFixed32(seg.data() + 124, crc32c::Mask(crc32c::Value(seg.data(), 124)));
}

// Walks frames by their length fields, making each checksum and trailer
// agree with the bytes (frames that run past the file are left alone).
void FixFrames(std::string& seg) {
  uint64_t off = trail::kHeaderSize;
  while (off + trail::kFrameOverhead <= seg.size()) {
    char* p = seg.data() + off;
    const uint32_t length = trail::DecodeFixed32(p + 4);
    if (trail::DecodeFixed32(p) == 0 && p[16] == 0) return;  // the end marker
    if (length > seg.size() - off - trail::kFrameOverhead) return;
    uint32_t crc = crc32c::Value(p + 4, trail::kFrameHeaderSize - 4);
    crc = crc32c::Extend(crc, p + trail::kFrameHeaderSize, length);
    PutFixed32(p, crc32c::Mask(crc));
    PutFixed32(p + trail::kFrameHeaderSize + length, length);
    off += trail::kFrameOverhead + length;
  }
}

std::string SegmentPath(uint64_t segment) {
  return JoinPath(kTrailDir, trail::SegmentFileName(kTrailName, segment));
}

trail::ReaderOptions ReaderOpts(FileSystem* fs, trail::EndSource* limit) {
  trail::ReaderOptions ro;
  ro.dir = kTrailDir;
  ro.name = kTrailName;
  ro.fs = fs;
  ro.limit = limit;
  return ro;
}

struct ForwardRead {
  std::vector<End> ends;  // the end of each record read, in order
  bool clean = false;     // reached the end without an error
};

// Reads every record from the current position on.
ForwardRead ReadForward(trail::TrailReader& r) {
  ForwardRead out;
  for (;;) {
    absl::StatusOr<std::optional<Record>> rec = r.Next();
    if (!rec.ok()) return out;
    if (!rec->has_value()) break;
    out.ends.push_back(End{(*rec)->asn, (*rec)->next, 0});
  }
  out.clean = true;
  return out;
}

// Reads backwards from the end of the trail to its start (or an error).
void ReadBackward(trail::TrailReader& r) {
  if (!r.SeekToEnd().ok()) return;
  for (;;) {
    absl::StatusOr<std::optional<Record>> rec = r.Prev();
    if (!rec.ok() || !rec->has_value()) return;
  }
}

void SeekAndRead(trail::TrailReader& r, uint64_t asn) {
  if (!r.SeekToAsn(asn).ok()) return;
  r.Next().IgnoreError();
  r.Prev().IgnoreError();
}

// Readers without a limit (as for event trails), then with the end they
// found as the limit (as for audit and image trails).
std::optional<ForwardRead> ExerciseReaders(MemFileSystem* fs, bool with_limit) {
  trail::ListSegments(fs, kTrailDir, kTrailName).IgnoreError();
  absl::StatusOr<std::unique_ptr<trail::TrailReader>> r =
      trail::TrailReader::Open(ReaderOpts(fs, nullptr));
  if (!r.ok()) return std::nullopt;
  ForwardRead first = ReadForward(**r);
  ReadBackward(**r);
  if (!first.ends.empty()) {
    SeekAndRead(**r, first.ends.front().asn);
    SeekAndRead(**r, first.ends[first.ends.size() / 2].asn);
    SeekAndRead(**r, first.ends.back().asn + 1);
    if ((*r)->SeekToPosition(first.ends[first.ends.size() / 2].pos).ok()) {
      (*r)->Prev().IgnoreError();
      (*r)->Next().IgnoreError();
    }
  }
  SeekAndRead(**r, 0);

  if (with_limit && first.clean && !first.ends.empty()) {
    trail::LocalEnd limit;
    limit.Publish(first.ends.back());
    absl::StatusOr<std::unique_ptr<trail::TrailReader>> lr =
        trail::TrailReader::Open(ReaderOpts(fs, &limit));
    if (lr.ok()) {
      ForwardRead second = ReadForward(**lr);
      RDF_FUZZ_CHECK(second.clean, "a limited read failed where an unlimited one did not");
      RDF_FUZZ_CHECK(second.ends.size() == first.ends.size(),
                     "a limited read saw other records than an unlimited one");
      for (size_t i = 0; i < second.ends.size(); ++i) {
        RDF_FUZZ_CHECK(second.ends[i].asn == first.ends[i].asn &&
                           second.ends[i].pos == first.ends[i].pos,
                       "a limited read saw other records than an unlimited one");
      }
      ReadBackward(**lr);
    }
  }
  return first;
}

// Opens the writer (repairing a torn tail), optionally truncates it and
// removes old segments, appends one record and checks that it reads back.
void ExerciseWriter(MemFileSystem* fs, const SegmentInput& in,
                    const std::optional<ForwardRead>& read) {
  FakeClock clock;
  trail::LocalEnd published;
  trail::WriterOptions wo;
  wo.dir = kTrailDir;
  wo.name = kTrailName;
  wo.segment_bytes = kSegmentBytes;
  wo.fs = fs;
  wo.clock = &clock;
  wo.shared_end = false;
  const End* chosen = nullptr;  // a record end the first read found
  if (read.has_value() && !read->ends.empty()) {
    chosen = &read->ends[in.hint % read->ends.size()];
  }
  if (in.flags & kWithHint) {
    wo.publisher = &published;
    if (chosen != nullptr) published.Publish(*chosen);
  }
  absl::StatusOr<std::unique_ptr<trail::TrailWriter>> w = trail::TrailWriter::Open(wo);
  if (!w.ok()) return;
  End end = (*w)->durable_end();
  if ((in.flags & kWithHint) && chosen != nullptr) {
    RDF_FUZZ_CHECK(!(end.pos < chosen->pos),
                   "the writer's repair cut records before the last published end");
  }

  // The newest segment reads cleanly up to the writer's end.
  trail::LocalEnd limit;
  limit.Publish(end);
  absl::StatusOr<std::unique_ptr<trail::TrailReader>> r =
      trail::TrailReader::Open(ReaderOpts(fs, &limit));
  RDF_FUZZ_CHECK(r.ok(), "no reader opens a trail its writer opened");
  RDF_FUZZ_CHECK((*r)->SeekToPosition({end.pos.segment, trail::kHeaderSize}).ok(),
                 "the writer's newest segment cannot be sought");
  ForwardRead newest = ReadForward(**r);
  RDF_FUZZ_CHECK(newest.clean, "the repaired newest segment does not read cleanly");
  if (!newest.ends.empty()) {
    RDF_FUZZ_CHECK(newest.ends.back().pos == end.pos && newest.ends.back().asn == end.asn,
                   "the repaired newest segment does not end at the writer's end");
  }

  // Cut back to a record's end, as the receiver does to its save point. (It
  // may lie past the repaired end, or in a segment the repair removed:
  // then it is refused.)
  if ((in.flags & kTruncate) && chosen != nullptr && (*w)->TruncateTo(*chosen).ok()) {
    end = (*w)->durable_end();
    RDF_FUZZ_CHECK(end.pos == chosen->pos && end.asn == chosen->asn &&
                       (*w)->last_asn() == chosen->asn,
                   "TruncateTo did not leave the writer at the end it was given");
    limit.Publish(end);
  }

  // A record appended at the end reads back there.
  const uint64_t last = (*w)->last_asn();
  if (last == UINT64_MAX) return;
  const uint64_t asn = last + 1;
  const std::string payload(kAppendSizes[in.flags >> 6], 'a');
  if (!(*w)->Append(asn, 1, payload, 0).ok() || !(*w)->Sync().ok()) return;
  limit.Publish((*w)->durable_end());
  RDF_FUZZ_CHECK((*r)->SeekToPosition(end.pos).ok(), "the writer's end cannot be sought");
  absl::StatusOr<std::optional<Record>> rec = (*r)->Next();
  RDF_FUZZ_CHECK(rec.ok() && rec->has_value() && (*rec)->asn == asn,
                 "a record appended after repair does not read back");
  RDF_FUZZ_CHECK((*rec)->payload == payload, "a record appended after repair reads back changed");

  // Retention: drop every segment before the newest, then read what is left.
  if (in.flags & kRemoveOld) {
    if (!(*w)->RemoveSegmentsBefore((*w)->durable_end().pos.segment).ok()) return;
    ExerciseReaders(fs, /*with_limit=*/false);
  }
}

}  // namespace
}  // namespace rdf::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdf::fuzz;
  SegmentInput in =
      DecodeSegmentInput(std::string_view(reinterpret_cast<const char*>(data), size));
  rdf::MemFileSystem fs;
  if (!fs.CreateDirs(kTrailDir).ok()) return 0;
  for (size_t i = 0; i < in.segments.size(); ++i) {
    std::string& seg = in.segments[i];
    if (in.flags & kFixHeaders) FixHeader(seg);
    if (in.flags & kFixFrames) FixFrames(seg);
    if (!fs.SetContents(SegmentPath(in.first_segment + i), std::move(seg)).ok()) return 0;
  }
  std::optional<ForwardRead> read = ExerciseReaders(&fs, (in.flags & kWithLimit) != 0);
  ExerciseWriter(&fs, in, read);
  return 0;
}
