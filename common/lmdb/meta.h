// LMDB 0.9's meta page, which lmdb.h does not export, decoded in one place
// for the two that need it: lmdb::Env::Open (never shrink a map an earlier
// run grew: the size is in the newest meta page) and the checkpointer
// (common/lmdb/checkpoint.h, which saves and restores whole meta pages).
//
// data.mdb starts with two meta pages (slots 0 and 1, one page each); a
// commit writes the slot of its transaction id modulo 2. A meta page is a
// 16-byte page header (mp_pgno first), then MDB_meta:
//
//   offset  size  field
//   +0      4     mm_magic     0xBEEFC0DE
//   +4      4     mm_version   1
//   +8      8     mm_address
//   +16     8     mm_mapsize   the map size of the writer that committed it
//   +24     48    mm_dbs[0]    the free-page database; its md_pad (+24, 4
//                              bytes) is the page size
//   +72     48    mm_dbs[1]    the main database
//   +120    8     mm_last_pg
//   +128    8     mm_txnid
//
// (offsets from the start of MDB_meta, which is kMetaOffset into the page).
// The magic and version are checked on every read, so another layout is
// refused, never misread.
#ifndef RDF_COMMON_LMDB_META_H_
#define RDF_COMMON_LMDB_META_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"

namespace rdf::lmdb {

inline constexpr size_t kMetaOffset = 16;
inline constexpr uint32_t kMetaMagic = 0xBEEFC0DE;
inline constexpr uint32_t kMetaVersion = 1;
inline constexpr size_t kMapSizeOffset = kMetaOffset + 16;
inline constexpr size_t kPageSizeOffset = kMetaOffset + 24;
inline constexpr size_t kLastPgOffset = kMetaOffset + 120;
inline constexpr size_t kTxnidOffset = kMetaOffset + 128;
inline constexpr size_t kMetaBytes = kTxnidOffset + 8;  // what a meta read needs

// The transaction id a meta page names; kFailedPrecondition (naming `path`)
// when `page` is no LMDB 0.9 meta page.
absl::StatusOr<uint64_t> MetaTxnid(const std::string& page, const std::string& path);
// Its mm_mapsize and mm_last_pg. REQUIRES: MetaTxnid(page) is OK.
uint64_t MetaMapSize(const std::string& page);
uint64_t MetaLastPage(const std::string& page);

// The newest meta page (the valid slot with the higher transaction id) of
// the data.mdb at `data_path`, read with pread (no LMDB environment needed).
// nullopt when the file does not exist or is shorter than one meta page (a
// new environment); kDataLoss when neither slot is a valid meta page.
struct NewestMeta {
  uint64_t txnid = 0;
  uint64_t map_size = 0;
  uint32_t page_size = 0;
};
absl::StatusOr<std::optional<NewestMeta>> ReadNewestMeta(const std::string& data_path);

}  // namespace rdf::lmdb

#endif  // RDF_COMMON_LMDB_META_H_
