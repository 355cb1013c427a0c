// Takeover bookkeeping shared by the receiver, the updaters and the
// takeover command (backup node), all under <backup data_dir>/takeover/:
//
//   epoch          the fencing epoch, written durably when a takeover
//                  begins: "epoch N\nstarted_us T\n". Once it exists the
//                  receiver refuses the old primary and fixes its final
//                  save point (SavePoint.takeover_epoch = N).
//   <VOLUME>.json  one updater's result once its REDO and UNDO are done.
//   report.json / report.txt   the takeover report (docs/takeover.md).
#ifndef RDF_COMMON_STATE_TAKEOVER_STATE_H_
#define RDF_COMMON_STATE_TAKEOVER_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/base/file_system.h"
#include "config.pb.h"

namespace rdf {

struct TakeoverEpoch {
  uint64_t number = 0;
  int64_t started_us = 0;  // wall clock when first issued
};

std::string TakeoverEpochPath(const proto::NodeConfig& node);
std::string TakeoverReportPath(const proto::NodeConfig& node, const std::string& ext);
// "<takeover dir>/<VOLUME without $>.json"
std::string TakeoverVolumeResultPath(const proto::NodeConfig& node, const std::string& volume);

// nullopt when no takeover was ever issued; kDataLoss when the file exists
// but cannot be parsed.
absl::StatusOr<std::optional<TakeoverEpoch>> ReadTakeoverEpoch(FileSystem* fs,
                                                               const proto::NodeConfig& node);
// Durable (write, fsync, rename, fsync the directory).
absl::Status WriteTakeoverEpoch(FileSystem* fs, const proto::NodeConfig& node,
                                const TakeoverEpoch& epoch);

// Keys in each backup volume's __meta database that the updater keeps for
// takeover (besides its restart point), and the key where tmf keeps the
// next transaction id to use (takeover sets it above every id received).
inline constexpr char kMetaMaxTxid[] = "max_txid";
inline constexpr char kMetaUndoEpoch[] = "takeover_undo_epoch";
inline constexpr char kMetaUndoSegment[] = "takeover_undo_segment";
inline constexpr char kMetaUndoOffset[] = "takeover_undo_offset";
inline constexpr char kMetaUndoneRecords[] = "takeover_undone_records";
inline constexpr char kMetaDoneEpoch[] = "takeover_done_epoch";

}  // namespace rdf

#endif  // RDF_COMMON_STATE_TAKEOVER_STATE_H_
