#include "common/trail/format.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/base/crc32c.h"

namespace rdf::trail {
namespace {

// Header field offsets (see trail_format.h).
constexpr size_t kVersionOffset = 8;
constexpr size_t kHeaderSizeOffset = 12;
constexpr size_t kSegmentOffset = 16;
constexpr size_t kFirstAsnOffset = 24;
constexpr size_t kPrevEndOffset = 32;
constexpr size_t kCreatedOffset = 40;
constexpr size_t kNameOffset = 48;
constexpr size_t kNameField = 64;
constexpr size_t kHeaderCrcOffset = 124;

// Frame field offsets.
constexpr size_t kLengthOffset = 4;
constexpr size_t kAsnOffset = 8;
constexpr size_t kTypeOffset = 16;

void PutFixed32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void PutFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

}  // namespace

uint32_t DecodeFixed32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return uint32_t{u[0]} | (uint32_t{u[1]} << 8) | (uint32_t{u[2]} << 16) |
         (uint32_t{u[3]} << 24);
}

uint64_t DecodeFixed64(const char* p) {
  return uint64_t{DecodeFixed32(p)} | (uint64_t{DecodeFixed32(p + 4)} << 32);
}

std::string ToString(const Position& p) {
  return absl::StrCat(p.segment, ":", p.offset);
}

std::string SegmentFileName(std::string_view trail, uint64_t segment) {
  return absl::StrFormat("%s.%010d", trail, segment);
}

bool ParseSegmentFileName(std::string_view file, std::string_view trail,
                          uint64_t* segment) {
  if (file.size() != trail.size() + 11) return false;
  if (file.substr(0, trail.size()) != trail || file[trail.size()] != '.') {
    return false;
  }
  uint64_t n = 0;
  for (char c : file.substr(trail.size() + 1)) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *segment = n;
  return true;
}

std::string EncodeHeader(const SegmentHeader& h) {
  std::string out(kHeaderSize, '\0');
  char* p = out.data();
  std::memcpy(p, kMagic, sizeof(kMagic));
  PutFixed32(p + kVersionOffset, kFormatVersion);
  PutFixed32(p + kHeaderSizeOffset, kHeaderSize);
  PutFixed64(p + kSegmentOffset, h.segment);
  PutFixed64(p + kFirstAsnOffset, h.first_asn);
  PutFixed64(p + kPrevEndOffset, h.prev_end);
  PutFixed64(p + kCreatedOffset, static_cast<uint64_t>(h.created_us));
  std::memcpy(p + kNameOffset, h.name.data(),
              std::min(h.name.size(), kMaxNameLength));
  PutFixed32(p + kHeaderCrcOffset,
             crc32c::Mask(crc32c::Value(p, kHeaderCrcOffset)));
  return out;
}

absl::StatusOr<SegmentHeader> DecodeHeader(std::string_view bytes) {
  if (bytes.size() < kHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("short segment header (", bytes.size(), " bytes)"));
  }
  const char* p = bytes.data();
  uint32_t stored = crc32c::Unmask(DecodeFixed32(p + kHeaderCrcOffset));
  if (stored != crc32c::Value(p, kHeaderCrcOffset)) {
    return absl::DataLossError("header checksum mismatch");
  }
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("not a trail segment (bad magic)");
  }
  if (uint32_t v = DecodeFixed32(p + kVersionOffset); v != kFormatVersion) {
    return absl::DataLossError(absl::StrCat("unsupported format version ", v));
  }
  if (uint32_t n = DecodeFixed32(p + kHeaderSizeOffset); n != kHeaderSize) {
    return absl::DataLossError(absl::StrCat("unexpected header size ", n));
  }
  std::string_view name(p + kNameOffset, kNameField);
  size_t nul = name.find('\0');
  if (nul == std::string_view::npos || nul > kMaxNameLength) {
    return absl::DataLossError("trail name not terminated");
  }
  SegmentHeader h;
  h.segment = DecodeFixed64(p + kSegmentOffset);
  h.first_asn = DecodeFixed64(p + kFirstAsnOffset);
  h.prev_end = DecodeFixed64(p + kPrevEndOffset);
  h.created_us = static_cast<int64_t>(DecodeFixed64(p + kCreatedOffset));
  h.name = std::string(name.substr(0, nul));
  return h;
}

void EncodeFrame(uint64_t asn, uint8_t type, std::string_view payload,
                 std::string* dst) {
  EncodeFrameWith(
      asn, type, payload.size(),
      [&](char* p) {
        if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
      },
      dst);
}

void EncodeFrameWith(uint64_t asn, uint8_t type, size_t payload_size,
                     absl::FunctionRef<void(char*)> fill, std::string* dst) {
  const size_t start = dst->size();
  dst->resize(start + kFrameOverhead + payload_size);
  char* head = dst->data() + start;
  char* payload = head + kFrameHeaderSize;
  std::memset(head, 0, kFrameHeaderSize);
  PutFixed32(head + kLengthOffset, static_cast<uint32_t>(payload_size));
  PutFixed64(head + kAsnOffset, asn);
  head[kTypeOffset] = static_cast<char>(type);
  fill(payload);
  uint32_t crc = crc32c::Extend(crc32c::Value(head + 4, kFrameHeaderSize - 4), payload,
                                payload_size);
  PutFixed32(head, crc32c::Mask(crc));
  PutFixed32(payload + payload_size, static_cast<uint32_t>(payload_size));
}

FrameHeader DecodeFrameHeader(const char* p) {
  FrameHeader h;
  h.masked_crc = DecodeFixed32(p);
  h.length = DecodeFixed32(p + kLengthOffset);
  h.asn = DecodeFixed64(p + kAsnOffset);
  h.type = static_cast<uint8_t>(p[kTypeOffset]);
  return h;
}

const char* CheckFrame(std::string_view header, std::string_view payload,
                       uint32_t trailer) {
  FrameHeader h = DecodeFrameHeader(header.data());
  if (h.length != payload.size()) return "length mismatch";
  uint32_t crc = crc32c::Extend(crc32c::Value(header.data() + 4,
                                              kFrameHeaderSize - 4),
                                payload.data(), payload.size());
  if (crc != crc32c::Unmask(h.masked_crc)) return "checksum mismatch";
  if (trailer != h.length) return "trailer length mismatch";
  if (h.type == 0) return "record type 0";
  if (header[17] != 0 || header[18] != 0 || header[19] != 0) {
    return "reserved bytes not zero";
  }
  return nullptr;
}

}  // namespace rdf::trail
