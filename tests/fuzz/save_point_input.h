// The input format of fuzz_save_point, shared with the seed generator
// (make_fuzz_seeds.cc):
//
//    0  flags (kAim, kTear, kReject)                            1 byte
//    1  selector: the frame kAim points the published copy at, the
//       bytes kTear cuts off the MIT, the save points kReject refuses 1 byte
//    2  parts separated by kSeparator: the first is the value published in
//       savepoint.shm (empty: none published); each later one is one MIT
//       frame, its first byte the frame type (0 stands for
//       kSavePointRecordType; a part with no byte is skipped) and the rest
//       its payload (at most kMaxFrames frames)
//
// The frames are appended by the real TrailWriter, so the save point
// parsers see arbitrary payloads behind valid checksums instead of stopping
// at "checksum mismatch".
#ifndef RDF_TESTS_FUZZ_SAVE_POINT_INPUT_H_
#define RDF_TESTS_FUZZ_SAVE_POINT_INPUT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rdf::fuzz::save_point {

inline constexpr std::string_view kSeparator = "@@RDFSP@@";
inline constexpr size_t kMaxFrames = 16;
inline constexpr size_t kPrefixBytes = 2;
// MIT segment size (small: frames roll over into later segments, and a
// frame larger than a segment gets one of its own).
inline constexpr uint64_t kSegmentBytes = 1024;

enum Flags : uint8_t {
  // The published copy names the start of frame `selector % frames` (and,
  // when that frame parses, its ASN, time and open count), as the
  // receiver's PublishedCopy does.
  kAim = 1 << 0,
  // The MIT's newest segment file loses its last 1 + selector bytes (a
  // torn tail: the power went during the last write).
  kTear = 1 << 1,
  // ReadLastSavePoint's `acceptable` refuses the newest `selector % 4`
  // save points it is offered (as the receiver refuses one whose trail
  // ends did not survive).
  kReject = 1 << 2,
};

struct Frame {
  uint8_t type = 0;  // 0: kSavePointRecordType
  std::string payload;
};

struct SavePointInput {
  uint8_t flags = 0;
  uint8_t selector = 0;
  std::string published;
  std::vector<Frame> frames;
};

inline std::string EncodeSavePointInput(const SavePointInput& in) {
  std::string out;
  out.push_back(static_cast<char>(in.flags));
  out.push_back(static_cast<char>(in.selector));
  out.append(in.published);
  for (const Frame& f : in.frames) {
    out.append(kSeparator);
    out.push_back(static_cast<char>(f.type));
    out.append(f.payload);
  }
  return out;
}

inline SavePointInput DecodeSavePointInput(std::string_view bytes) {
  SavePointInput in;
  if (bytes.size() < kPrefixBytes) return in;
  in.flags = static_cast<uint8_t>(bytes[0]);
  in.selector = static_cast<uint8_t>(bytes[1]);
  bytes.remove_prefix(kPrefixBytes);
  size_t sep = bytes.find(kSeparator);
  in.published = std::string(bytes.substr(0, sep));
  while (sep != std::string_view::npos && in.frames.size() < kMaxFrames) {
    bytes.remove_prefix(sep + kSeparator.size());
    sep = bytes.find(kSeparator);
    std::string_view part = bytes.substr(0, sep);
    if (part.empty()) continue;
    in.frames.push_back(Frame{static_cast<uint8_t>(part[0]), std::string(part.substr(1))});
  }
  return in;
}

}  // namespace rdf::fuzz::save_point

#endif  // RDF_TESTS_FUZZ_SAVE_POINT_INPUT_H_
