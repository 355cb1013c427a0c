// The configuration loader: one protobuf-text-format file (proto/config.proto,
// docs/configuration.md) describes the whole system: both nodes, the volumes
// and files they protect, and the tuning of every process.
//
// Load() reads, parses and validates the file and returns a Config whose
// proto has every documented default filled in and every path made absolute
// (relative paths are relative to the configuration file's own folder, so a
// copied file describes a fresh system next to it).
//
// Errors are kInvalidArgument, one line per problem, each of the form
//   <file>:<line>:<column>: <field path>: <problem>; <how to fix>
// e.g.
//   conf/bad.textproto:31:3: volumes[1].name: duplicate volume "$DATA01"
//   (also volumes[0], line 24); rename one of them
// <file> is the path as the caller passed it; line and column are 1-based.
// Unknown fields are errors. A file that cannot be read is kNotFound /
// kPermissionDenied / kInternal (from errno), never kInvalidArgument.
//
// Thread safety: a Config is an immutable value once returned; its const
// methods may be called from any thread.
#ifndef RDF_COMMON_CONFIG_CONFIG_H_
#define RDF_COMMON_CONFIG_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config.pb.h"

namespace rdf::config {

// Defaults for zero/absent fields (also in proto/config.proto and
// docs/configuration.md). Load() writes them into Config::proto.
inline constexpr uint32_t kConfigVersion = 1;
inline constexpr uint64_t kDefaultAuditSegmentBytes = 64ull << 20;
inline constexpr uint64_t kDefaultImageSegmentBytes = 64ull << 20;
inline constexpr uint64_t kDefaultEventSegmentBytes = 4ull << 20;
inline constexpr uint32_t kDefaultEventSegmentsKept = 8;
inline constexpr uint64_t kDefaultMapBytes = 1ull << 30;
inline constexpr uint32_t kDefaultMaxDbs = 256;
inline constexpr uint64_t kDefaultMaxTxnBytes = 64ull << 20;
inline constexpr uint64_t kDefaultImageMemoryBytes = 32ull << 20;
inline constexpr uint64_t kMinImageMemoryBytes = 1ull << 20;
inline constexpr uint32_t kDefaultLockTimeoutMs = 5000;
inline constexpr uint64_t kDefaultAuditRetentionBytes = 8ull << 30;
inline constexpr uint32_t kDefaultApplyBatchTxns = 32768;
inline constexpr uint32_t kDefaultApplyIntervalMs = 1000;
inline constexpr uint32_t kDefaultAuditRetainCount = 2;
inline constexpr uint32_t kDefaultExtractorBatchBytes = 256u << 10;
inline constexpr uint32_t kDefaultExtractorBatchWaitMs = 5;
inline constexpr uint32_t kDefaultExtractorWindow = 8;
inline constexpr uint32_t kDefaultHeartbeatMs = 1000;
inline constexpr uint32_t kDefaultRtdWarningMs = 60000;
inline constexpr uint32_t kDefaultMaxMessageBytes = 4u << 20;
inline constexpr uint32_t kDefaultSavePointMaxWaitMs = 20;
inline constexpr uint32_t kDefaultUpdaterBatchRecords = 32768;
inline constexpr uint32_t kMaxUpdaterBatchRecords = 1 << 20;
inline constexpr uint32_t kDefaultUpdaterBatchBytes = 4 << 20;
inline constexpr uint32_t kDefaultUpdaterCheckpointMs = 250;
inline constexpr uint32_t kMinUpdaterCheckpointMs = 10;
inline constexpr uint32_t kMaxUpdaterCheckpointMs = 60000;
// Checkpoint copies (tmf and updater volumes, common/lmdb/checkpoint.h).
inline constexpr uint64_t kDefaultCheckpointCopyMaxBytes = uint64_t{256} << 20;
inline constexpr uint32_t kDefaultCheckpointCopyMs = 30000;
inline constexpr uint32_t kMinCheckpointCopyMs = 1000;
inline constexpr uint32_t kMaxCheckpointCopyMs = 600000;
// updater.takeover_retry_ms (finding 21: takeover must not wait for ever).
inline constexpr uint32_t kDefaultTakeoverRetryMs = 30000;
inline constexpr uint32_t kMinTakeoverRetryMs = 100;
inline constexpr uint32_t kMaxTakeoverRetryMs = 3600000;
inline constexpr uint32_t kMinUpdaterBatchBytes = 64 << 10;
inline constexpr uint32_t kDefaultPurgerIntervalMs = 10000;
inline constexpr uint32_t kDefaultRetainCount = 2;
inline constexpr char kDefaultMinSeverity[] = "ERROR";
// The monitor's hung-process supervision (MonitorConfig).
inline constexpr uint32_t kDefaultHungAfterMs = 10000;
inline constexpr uint32_t kMinHungAfterMs = 3000;
inline constexpr uint32_t kDefaultStallAfterMs = 10000;
inline constexpr uint32_t kMinStallAfterMs = 1000;
inline constexpr uint32_t kDefaultHungRestartAfterMs = 30000;

// Validation minimums (a set value below them is an error).
inline constexpr uint64_t kMinSegmentBytes = 64ull << 10;
inline constexpr uint64_t kMinMapBytes = 1ull << 20;
inline constexpr uint32_t kMinRetainCount = 2;

// A loaded, validated configuration.
struct Config {
  // Every zero numeric field with a documented default holds the default
  // (a volume's map_bytes holds lmdb.map_bytes when it was 0; version is 1;
  // notify.min_severity is "ERROR" when it was empty). nodes[].data_dir and
  // nodes[].key_file are absolute and lexically normal (no "..", no trailing
  // '/'). Everything else is as written.
  proto::SystemConfig proto;
  std::string path;  // absolute path of the configuration file
  std::string dir;   // its folder, absolute

  // The node named `name`; nullptr if none.
  const proto::NodeConfig* FindNode(std::string_view name) const;
  // The node configured with `role` (validation guarantees exactly one
  // PRIMARY and one BACKUP); nullptr for NODE_ROLE_UNSPECIFIED.
  const proto::NodeConfig* NodeWithRole(proto::NodeRole role) const;
  // The volume named exactly `name` ("$DATA01"); nullptr if none.
  const proto::VolumeConfig* FindVolume(std::string_view name) const;
  // Volumes without `unprotected: true`, in file order (never empty).
  std::vector<const proto::VolumeConfig*> ProtectedVolumes() const;

  // Whether a record for (volume, file) is shipped: the volume is configured
  // and protected, the file is not declared `unprotected: true`, its name
  // does not start with "__" (bookkeeping, never shipped), and the volume's
  // patterns admit it: when `include` is non-empty the name must match one of
  // them; then a match in `exclude` removes it. A pattern ending in '*'
  // matches names beginning with what precedes the '*'; any other pattern
  // matches only itself. Files need not be declared to be shipped.
  // Cost: linear in volumes, files and patterns of that volume; hot paths
  // may cache the answer per (volume, file).
  bool IsProtected(std::string_view volume, std::string_view file) const;
};

// Reads `path`, parses and validates it. See the file comment for errors.
absl::StatusOr<Config> Load(const std::string& path);

// Parses and validates `text` as if it were the contents of `path`; `path`
// is used only in messages and to resolve relative paths (an empty `path`
// resolves against the current directory and shows as "<config>").
absl::StatusOr<Config> Parse(std::string_view text, const std::string& path);

// Node selection for tools whose --node is optional: a non-empty `name` must
// name a configured node (kNotFound listing the known nodes otherwise); an
// empty `name` selects the node configured with `default_role`.
// The pointer is into `config` and lives as long as it.
absl::StatusOr<const proto::NodeConfig*> SelectNode(const Config& config, std::string_view name,
                                                    proto::NodeRole default_role);

// Shorthands for common/layout/layout.h, from a node's configuration
// (docs/architecture.md, "A node's data directory").
// REQUIRES: `node` comes from a loaded Config (absolute data_dir).
//
// "$DATA01" -> "DATA01": the volume name without its leading '$'.
std::string VolumeDirName(std::string_view volume);
// <data_dir>/volumes/<VolumeDirName(volume)>: the volume's LMDB environment.
std::string VolumeDir(const proto::NodeConfig& node, std::string_view volume);
// <data_dir>/audit: the primary's audit trail (MAT).
std::string AuditDir(const proto::NodeConfig& node);
// <data_dir>/imagetrails: the backup's MIT and volume image trails.
std::string ImageTrailDir(const proto::NodeConfig& node);
// <data_dir>/takeover: takeover epoch and report.
std::string TakeoverDir(const proto::NodeConfig& node);
// <data_dir>/exceptions: the updaters' exception logs (<VOLUME>.jsonl).
std::string ExceptionDir(const proto::NodeConfig& node);
// <data_dir>/events: the node's per-process event trails.
std::string EventDir(const proto::NodeConfig& node);
// <data_dir>/locks: one flock file per process.
std::string LockDir(const proto::NodeConfig& node);

}  // namespace rdf::config

#endif  // RDF_COMMON_CONFIG_CONFIG_H_
