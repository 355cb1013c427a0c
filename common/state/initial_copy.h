// The online initial copy's state on the backup node (`rdfcom initialize`,
// docs/rdfcom.md), shared by rdfcom, which writes it, and the receiver and
// the updaters, which read it. Everything lives under
// <backup data_dir>/initialize/:
//
//   in_progress   exists while an initialize is changing the backup (and
//                 after one that failed or was killed half way): the
//                 receiver and the updaters refuse to start while it is
//                 there, because the volumes and trails are half made.
//   state         proto::InitialCopy, binary; state.json the same as JSON.
//                 Written durably (temp, fsync, rename, fsync the folder),
//                 state.json first, `state` last: `state` is the truth.
//   staging/      the volume copies while they are being made.
//
// And on the primary node, while its monitor serves a copy to rdfcom:
//
//   outgoing/     the snapshots of the primary's volumes, deleted when the
//                 copy ends (common/initcopy/source.h).
//
// What the state means for the pipeline:
//  - receiver: when it has never received anything (no save point), its
//    first save point is start_asn - 1, so its Welcome asks the extractor
//    for start_asn instead of 1.
//  - updater: a DATA or DDL record of its volume with ASN <= snapshot_asn
//    whose transaction is not in the volume's open_txids is already in the
//    copy (committed, or aborted and so without effect, or DDL reconciled
//    by initialize): it is skipped, in REDO and in takeover's UNDO alike.
//    Records above snapshot_asn are applied as usual. The rule needs no
//    state of its own, so it holds across any restart.
#ifndef RDF_COMMON_STATE_INITIAL_COPY_H_
#define RDF_COMMON_STATE_INITIAL_COPY_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "config.pb.h"
#include "initialize.pb.h"

namespace rdf {

inline constexpr uint32_t kInitialCopyVersion = 1;

// <data_dir>/initialize and the files in it (see above).
std::string InitialCopyDir(const proto::NodeConfig& node);
std::string InitialCopyStatePath(const proto::NodeConfig& node);
std::string InitialCopyJsonPath(const proto::NodeConfig& node);
std::string InitialCopyInProgressPath(const proto::NodeConfig& node);
std::string InitialCopyStagingDir(const proto::NodeConfig& node);
std::string InitialCopyOutgoingDir(const proto::NodeConfig& node);

// nullopt when no initialize ever completed on this node; kDataLoss when the
// state does not parse or has an unknown version.
absl::StatusOr<std::optional<proto::InitialCopy>> ReadInitialCopy(
    FileSystem* fs, const proto::NodeConfig& node);
// Durable; state.json first, then state.
absl::Status WriteInitialCopy(FileSystem* fs, const proto::NodeConfig& node,
                              const proto::InitialCopy& state);

// The in_progress marker (durable when written; its text says who and when).
absl::Status MarkInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node,
                                       const std::string& text);
absl::Status ClearInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node);
// OK, or kFailedPrecondition naming the marker when an initialize is
// running or was interrupted (for processes that must not start then).
absl::Status CheckNoInitialCopyInProgress(FileSystem* fs, const proto::NodeConfig& node,
                                          const std::string& process);

// One volume's rule (see the file comment). Cheap to copy; memory is the
// volume's open transactions at the snapshot.
class SnapshotFilter {
 public:
  SnapshotFilter() = default;  // skips nothing
  explicit SnapshotFilter(const proto::VolumeCopy& v);

  // Whether the record (ASN, transaction) is already in the copy.
  bool Skips(uint64_t asn, uint64_t txid) const {
    return asn <= snapshot_asn_ && !open_.contains(txid);
  }
  uint64_t snapshot_asn() const { return snapshot_asn_; }
  size_t open_transactions() const { return open_.size(); }

 private:
  uint64_t snapshot_asn_ = 0;
  absl::flat_hash_set<uint64_t> open_;
};

// The filter for `volume` on `node`: the default (skips nothing) when no
// initialize completed there or the state does not name the volume.
absl::StatusOr<SnapshotFilter> LoadSnapshotFilter(FileSystem* fs,
                                                  const proto::NodeConfig& node,
                                                  const std::string& volume);

}  // namespace rdf

#endif  // RDF_COMMON_STATE_INITIAL_COPY_H_
