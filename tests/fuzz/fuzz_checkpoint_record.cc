// Fuzz target: the checkpoint record of a deferred-durability LMDB
// environment (common/lmdb/checkpoint.h: <volume dir>/checkpoint, two slots
// of kCheckpointSlotBytes, each a length, a masked CRC32C and an
// LmdbCheckpoint). The first half of the input is slot 0, the second half
// slot 1 (each at its offset of an otherwise zero file); ReadCheckpoint reads
// the file as every opener of a volume does after a crash.
//
// Promises checked:
//  - a record returned is the valid one of highest sequence, and encoding
//    it again (EncodeCheckpointSlot) and reading that back gives it whole;
//  - nothing is read past the file, whatever its length fields say.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/lmdb/checkpoint.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

const std::string& Dir() { return rdf::fuzz::ProcessTempDir("rdf-fuzz-checkpoint"); }

void WriteFile(const std::string& bytes) {
  std::ofstream f(rdf::lmdb::CheckpointPath(Dir()), std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using rdf::lmdb::kCheckpointSlotBytes;
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t half = size / 2;
  std::string file(2 * kCheckpointSlotBytes, '\0');
  file.replace(0, std::min(half, kCheckpointSlotBytes), in.substr(0, kCheckpointSlotBytes));
  file.replace(kCheckpointSlotBytes, std::min(size - half, kCheckpointSlotBytes),
               in.substr(half, kCheckpointSlotBytes));
  WriteFile(file);
  absl::StatusOr<std::optional<rdf::proto::LmdbCheckpoint>> r = rdf::lmdb::ReadCheckpoint(Dir());
  if (!r.ok() || !r->has_value()) return 0;
  const std::string slot = rdf::lmdb::EncodeCheckpointSlot(**r);
  RDF_FUZZ_CHECK(slot.size() <= kCheckpointSlotBytes, "a record read does not fit its slot");
  std::string again(2 * kCheckpointSlotBytes, '\0');
  again.replace(0, slot.size(), slot);
  WriteFile(again);
  absl::StatusOr<std::optional<rdf::proto::LmdbCheckpoint>> back = rdf::lmdb::ReadCheckpoint(Dir());
  RDF_FUZZ_CHECK(back.ok() && back->has_value(), "a record encoded again does not read back");
  RDF_FUZZ_CHECK((*back)->SerializeAsString() == (*r)->SerializeAsString(),
                 "a record encoded again reads back different");
  return 0;
}
