// Fuzz target: the takeover epoch file (<backup data_dir>/takeover/epoch,
// common/state/takeover_state.h), read by the receiver, the updaters, the monitor
// and rdfcom to know whether a takeover began. The input is the file's
// contents (on a MemFileSystem).
//
// Promises checked:
//  - an epoch read is never 0 (0 means "no takeover");
//  - writing it back (WriteTakeoverEpoch) and reading that gives it whole.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/config/config.h"
#include "common/state/takeover_state.h"
#include "common/testing/mem_file_system.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rdf;
  proto::NodeConfig node;
  node.set_name("backup");
  node.set_role(proto::BACKUP);
  node.set_data_dir("/fuzz/backup");
  MemFileSystem fs;
  if (!fs.CreateDirs(config::TakeoverDir(node)).ok()) return 0;
  if (!fs.SetContents(TakeoverEpochPath(node),
                      std::string(reinterpret_cast<const char*>(data), size))
           .ok()) {
    return 0;
  }
  absl::StatusOr<std::optional<TakeoverEpoch>> e = ReadTakeoverEpoch(&fs, node);
  if (!e.ok() || !e->has_value()) return 0;
  RDF_FUZZ_CHECK((*e)->number != 0, "epoch 0 read as a takeover");
  RDF_FUZZ_CHECK(WriteTakeoverEpoch(&fs, node, **e).ok(), "an epoch read cannot be written");
  absl::StatusOr<std::optional<TakeoverEpoch>> back = ReadTakeoverEpoch(&fs, node);
  RDF_FUZZ_CHECK(back.ok() && back->has_value() && (*back)->number == (*e)->number &&
                     (*back)->started_us == (*e)->started_us,
                 "an epoch written back reads back different");
  return 0;
}
