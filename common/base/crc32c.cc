#include "common/base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define RDF_CRC32C_HAVE_SSE42 1
#endif

namespace rdf::crc32c {
namespace {

constexpr uint32_t kPoly = 0x82f63b78u;  // reflected Castagnoli polynomial

// Slicing-by-8 tables: kTable[0] is the classic byte table; kTable[k][b] is
// the CRC of byte b followed by k zero bytes.
using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k) {
    for (uint32_t b = 0; b < 256; ++b) {
      t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
  return t;
}

constexpr Tables kTables = MakeTables();

uint64_t LoadLE64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;  // the SSE and slicing paths both assume a little-endian host
}

// `crc` is the raw (pre-inverted) register value here and below.
uint32_t ExtendTable(uint32_t crc, const char* p, size_t n) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  while (n >= 8) {
    uint64_t v = LoadLE64(reinterpret_cast<const char*>(u)) ^ crc;
    crc = kTables[7][v & 0xff] ^ kTables[6][(v >> 8) & 0xff] ^
          kTables[5][(v >> 16) & 0xff] ^ kTables[4][(v >> 24) & 0xff] ^
          kTables[3][(v >> 32) & 0xff] ^ kTables[2][(v >> 40) & 0xff] ^
          kTables[1][(v >> 48) & 0xff] ^ kTables[0][v >> 56];
    u += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kTables[0][(crc ^ *u++) & 0xff];
  return crc;
}

#ifdef RDF_CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t crc,
                                                       const char* p,
                                                       size_t n) {
#if defined(__x86_64__)
  uint64_t c = crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, LoadLE64(p));
    p += 8;
    n -= 8;
  }
  crc = static_cast<uint32_t>(c);
#endif
  while (n-- > 0) crc = _mm_crc32_u8(crc, static_cast<unsigned char>(*p++));
  return crc;
}

bool CpuHasSse42() {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace

uint32_t Extend(uint32_t init_crc, const char* data, size_t n) {
  uint32_t crc = init_crc ^ 0xffffffffu;
#ifdef RDF_CRC32C_HAVE_SSE42
  if (CpuHasSse42()) return ExtendSse42(crc, data, n) ^ 0xffffffffu;
#endif
  return ExtendTable(crc, data, n) ^ 0xffffffffu;
}

namespace internal_testing {
// Exposed (without a header declaration) so the test can compare both paths.
uint32_t ExtendPortable(uint32_t init_crc, const char* data, size_t n) {
  return ExtendTable(init_crc ^ 0xffffffffu, data, n) ^ 0xffffffffu;
}
}  // namespace internal_testing

}  // namespace rdf::crc32c
