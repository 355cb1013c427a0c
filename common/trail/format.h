// The one segment format shared by the audit trail, the image trails and the
// event trails; docs/trail-format.md explains it and why. Reader and writer
// both use these constants and helpers, and nothing else knows the layout.
//
// A trail is a sequence of segment files in one directory, named
// "<trail>.<segment number, 10 decimal digits>" (MAT.0000000001). Segments
// are preallocated to the configured size (unwritten bytes are zero).
//
// Segment header (kHeaderSize bytes, little-endian):
//    0  magic "RDFTRAIL"                      8 bytes
//    8  format version (kFormatVersion)       u32
//   12  header size (kHeaderSize)             u32
//   16  segment number                        u64
//   24  first ASN (every record in the segment has ASN >= it) u64
//   32  end offset of the previous segment's data (0 for the first)  u64
//   40  creation time, microseconds since the epoch  i64
//   48  trail name, zero-padded               64 bytes
//  112  reserved, zero                        12 bytes
//  124  masked CRC32C of bytes [0, 124)       u32
//
// Record frame, at any offset >= kHeaderSize:
//    0  masked CRC32C of bytes [4, 20 + length)   u32
//    4  length of the payload                     u32
//    8  ASN                                       u64
//   16  type (never 0)                            u8
//   17  reserved, zero                            3 bytes
//   20  payload                                   length bytes
//   20+length  length again (the trailer, for backward reading)  u32
//
// Four zero bytes where a frame would start mean "no more records in this
// segment" (the preallocated, unwritten part).
#ifndef RDF_COMMON_TRAIL_FORMAT_H_
#define RDF_COMMON_TRAIL_FORMAT_H_

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace rdf::trail {

inline constexpr char kMagic[8] = {'R', 'D', 'F', 'T', 'R', 'A', 'I', 'L'};
inline constexpr uint32_t kFormatVersion = 1;
inline constexpr uint32_t kHeaderSize = 128;
inline constexpr uint32_t kFrameHeaderSize = 20;
inline constexpr uint32_t kFrameTrailerSize = 4;
inline constexpr uint32_t kFrameOverhead = kFrameHeaderSize + kFrameTrailerSize;
inline constexpr size_t kMaxNameLength = 63;
// Largest payload a frame may carry (a sanity bound for readers).
inline constexpr uint32_t kMaxPayload = 256u << 20;

// A place in a trail: a segment number and a byte offset inside it. The
// position of a record is the offset of its frame; the position "after" a
// record is the offset just past its trailer.
struct Position {
  uint64_t segment = 0;
  uint64_t offset = 0;
  auto operator<=>(const Position&) const = default;
};
std::string ToString(const Position& p);  // "1:4096"

// How far a trail is known to be durable (or, for image trails, safe): every
// record with ASN <= asn lies before `pos`. time_us is the time of the
// record at asn (the primary's clock for audit).
struct End {
  uint64_t asn = 0;
  Position pos;
  int64_t time_us = 0;
};

struct SegmentHeader {
  uint64_t segment = 0;
  uint64_t first_asn = 0;
  uint64_t prev_end = 0;
  int64_t created_us = 0;
  std::string name;
};

// Segment file name for (trail, segment).
std::string SegmentFileName(std::string_view trail, uint64_t segment);
// Parses a segment file name; false when `file` is not a segment of `trail`.
bool ParseSegmentFileName(std::string_view file, std::string_view trail,
                          uint64_t* segment);

// Encodes a header into exactly kHeaderSize bytes.
std::string EncodeHeader(const SegmentHeader& h);
// Decodes and checks magic, version, size and checksum. kDataLoss otherwise.
absl::StatusOr<SegmentHeader> DecodeHeader(std::string_view bytes);

// Appends one frame to *dst.
void EncodeFrame(uint64_t asn, uint8_t type, std::string_view payload,
                 std::string* dst);
// Appends one frame of `payload_size` bytes to *dst, the payload written in
// place by `fill` (given where it goes): a large payload is never copied
// into a string of its own first.
void EncodeFrameWith(uint64_t asn, uint8_t type, size_t payload_size,
                     absl::FunctionRef<void(char*)> fill, std::string* dst);

// Frame decoding, shared by the reader and the writer's repair scan.
struct FrameHeader {
  uint32_t masked_crc = 0;
  uint32_t length = 0;
  uint64_t asn = 0;
  uint8_t type = 0;
};
// REQUIRES: p points at kFrameHeaderSize readable bytes.
FrameHeader DecodeFrameHeader(const char* p);
// Checks a whole frame: `header` is its kFrameHeaderSize bytes, `payload`
// its length bytes, `trailer` the decoded trailer. Returns nullptr when the
// frame is valid, else a short reason ("checksum mismatch").
const char* CheckFrame(std::string_view header, std::string_view payload,
                       uint32_t trailer);

// Little-endian fixed-width integers, as stored in headers and frames.
uint32_t DecodeFixed32(const char* p);
uint64_t DecodeFixed64(const char* p);

}  // namespace rdf::trail

#endif  // RDF_COMMON_TRAIL_FORMAT_H_
