// CRC32C (Castagnoli), as used by leveldb: hardware (SSE4.2) when the CPU
// has it, a table otherwise. Mask() is stored in files so that a CRC of
// data that itself contains CRCs is not degenerate.
#ifndef RDF_COMMON_BASE_CRC32C_H_
#define RDF_COMMON_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>

namespace rdf::crc32c {

// CRC32C of data[0, n) continued from init_crc (0 to start).
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }

inline constexpr uint32_t kMaskDelta = 0xa282ead8ul;
inline uint32_t Mask(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}
inline uint32_t Unmask(uint32_t masked) {
  uint32_t rot = masked - kMaskDelta;
  return ((rot >> 17) | (rot << 15));
}

}  // namespace rdf::crc32c

#endif  // RDF_COMMON_BASE_CRC32C_H_
