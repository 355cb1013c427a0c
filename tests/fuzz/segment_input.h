// The input format of fuzz_segment_reader, shared with the seed generator
// (make_fuzz_seeds.cc):
//
//    0  flags (kFix*, kWithLimit, kWithHint, kTruncate, kRemoveOld) and,
//       in the top two bits, the size of the record the writer appends
//       (kAppendSizes)                              1 byte
//    1  record selector: which record's end the writer's last published
//       end names (kWithHint) and TruncateTo cuts to (kTruncate) 1 byte
//    2  number of the first segment, minus 1 (mod 4) 1 byte
//    3  segment files, separated by kSeparator; the i-th is the file
//       "T.<first + i>" (at most kMaxSegments; an empty part is an empty file)
//
// The kFix* flags recompute checksums before the trail is read, so that
// mutations of header fields and frame lengths, ASNs and types reach the
// logic behind the checksums instead of stopping at "checksum mismatch".
#ifndef RDF_TESTS_FUZZ_SEGMENT_INPUT_H_
#define RDF_TESTS_FUZZ_SEGMENT_INPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rdf::fuzz {

inline constexpr char kTrailDir[] = "/fuzz/trail";
inline constexpr char kTrailName[] = "T";
inline constexpr std::string_view kSeparator = "@@RDFSEG@@";
inline constexpr size_t kMaxSegments = 8;
inline constexpr size_t kPrefixBytes = 3;
// Segment size the writer is opened with (small: rollovers happen).
inline constexpr uint64_t kSegmentBytes = 1024;

enum Flags : uint8_t {
  kFixHeaders = 1 << 0,  // recompute each segment header's checksum
  kFixFrames = 1 << 1,   // recompute frame checksums and trailers, walking lengths
  kWithLimit = 1 << 2,   // read again with an EndSource at the end found first
  kWithHint = 1 << 3,    // open the writer with a last published end
  kTruncate = 1 << 4,    // TruncateTo a record's end (as the receiver does)
  kRemoveOld = 1 << 5,   // RemoveSegmentsBefore the newest, then read again
};
// Payload sizes of the appended record, chosen by flags >> 6: small, near a
// segment's room, larger than a whole segment (a segment of its own).
inline constexpr size_t kAppendSizes[4] = {16, 400, 900, 1500};

struct SegmentInput {
  uint8_t flags = 0;
  uint8_t hint = 0;
  uint64_t first_segment = 1;
  std::vector<std::string> segments;
};

inline std::string EncodeSegmentInput(const SegmentInput& in) {
  std::string out;
  out.push_back(static_cast<char>(in.flags));
  out.push_back(static_cast<char>(in.hint));
  out.push_back(static_cast<char>((in.first_segment - 1) % 4));
  for (size_t i = 0; i < in.segments.size(); ++i) {
    if (i > 0) out.append(kSeparator);
    out.append(in.segments[i]);
  }
  return out;
}

inline SegmentInput DecodeSegmentInput(std::string_view bytes) {
  SegmentInput in;
  if (bytes.size() < kPrefixBytes) return in;
  in.flags = static_cast<uint8_t>(bytes[0]);
  in.hint = static_cast<uint8_t>(bytes[1]);
  in.first_segment = 1 + static_cast<uint8_t>(bytes[2]) % 4;
  bytes.remove_prefix(kPrefixBytes);
  while (in.segments.size() < kMaxSegments) {
    size_t sep = bytes.find(kSeparator);
    if (sep == std::string_view::npos || in.segments.size() + 1 == kMaxSegments) {
      in.segments.emplace_back(bytes);
      break;
    }
    in.segments.emplace_back(bytes.substr(0, sep));
    bytes.remove_prefix(sep + kSeparator.size());
  }
  return in;
}

}  // namespace rdf::fuzz

#endif  // RDF_TESTS_FUZZ_SEGMENT_INPUT_H_
