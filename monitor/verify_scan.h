// The monitor's half of `rdfcom verify` (docs/rdfcom.md "verify"): it serves
// the contents of its node's protected files, page by page, as (key, value
// hash) pairs; rdfcom fetches both nodes' pages over the control protocol
// (proto/control.proto VERIFY_FILES, VERIFY_SCAN) and compares them. The
// monitor never compares anything itself.
//
// Volumes are opened read-only (MDB_RDONLY) for the length of one request
// and closed again; tmf or an updater may be writing the same environment
// at the same time. Each request reads one LMDB read transaction per volume,
// a consistent snapshot of that volume; successive pages of one file are
// separate snapshots. So every reply also says where each volume it read
// stood in that same read transaction (reply.verify_positions, proto
// VerifyPosition): every write to a volume moves its applied ASN (tmf's on
// the primary, the updater's on the backup), so pages that report the same
// position saw the same state, and rdfcom checks that they all did and
// that both nodes stood at one point (rdfcom/verify.h, "consistent cut").
//
// REQUIRES (both calls): `config` is loaded (absolute data_dir), `node` is
// one of its nodes, and the calling process holds no other LMDB environment
// open on this node's volumes (LMDB forbids opening one environment twice in
// a process: closing either copy drops the other's locks). The monitor
// opens volumes nowhere else.
//
// Thread safety: the calls share no state; they may run concurrently.
#ifndef RDF_MONITOR_VERIFY_SCAN_H_
#define RDF_MONITOR_VERIFY_SCAN_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config/config.h"
#include "control.pb.h"

namespace rdf::monitor {

// VERIFY_SCAN page size: `limit` 0 means kDefaultVerifyPageEntries; larger
// values are capped at kMaxVerifyPageEntries. A page also ends once its keys
// total kMaxVerifyPageKeyBytes or more (so a reply stays a few MiB at most,
// whatever the limit: LMDB keys are at most 511 bytes).
inline constexpr uint32_t kDefaultVerifyPageEntries = 10000;
inline constexpr uint32_t kMaxVerifyPageEntries = 100000;
inline constexpr uint64_t kMaxVerifyPageKeyBytes = 2ull << 20;

// The hash of a record value that VERIFY_SCAN sends instead of the value:
// BLAKE2b with a 16-byte (128-bit) output, unkeyed (libsodium
// crypto_generichash). Stable across processes, builds and machines (it is
// part of the protocol: both nodes must compute the same function) and
// collision resistant: two values that differ in any way hash differently
// except with probability about 2^-64 even for values chosen to collide
// (the birthday bound), where the old 64-bit FNV-1a could be made to
// collide at will.
inline constexpr size_t kValueHashBytes = 16;
std::string ValueHash(absl::string_view value);

// VERIFY_FILES for `node`: for every protected volume of `config`, in
// configuration order, its user files (named databases not starting with
// "__") that config.IsProtected admits, each with its record count, in name
// order -> reply.files (exists = true). A volume whose directory (or LMDB
// environment) does not exist yet has no files; that is not an error.
// reply.verify_positions: one per protected volume, in configuration order
// (see VerifyPosition; BACKUP nodes read their published save point first).
//
// reply.applied_asn: the lowest per-volume applied ASN over the protected
// volumes that have one, 0 when none has: on a PRIMARY node tmf's
// "applied_asn" (the commit ASN through which the volume holds committed
// work, kMetaTmfAppliedAsn), on a BACKUP node the updater's
// kMetaAppliedAsn (the last image-trail ASN it applied). Both only move when
// the volume receives work, so an idle volume keeps an old value: the
// number says how far the node's volumes have been brought, for the
// operator; it is not a point where both nodes are known to be equal.
//
// reply.version is CONTROL_VERSION_1 and reply.ok is true; reply.status is
// left empty (the caller fills it). Errors: an LMDB environment that exists
// but cannot be read (kInternal, kDataLoss for a malformed __meta value),
// naming the volume.
absl::StatusOr<proto::ControlReply> ServeVerifyFiles(const config::Config& config,
                                                     const proto::NodeConfig& node);

// VERIFY_SCAN for `node`: one page of file `req.file()` of volume
// `req.volume()`, in LMDB key order (bytewise): the entries whose keys are
// strictly greater than `req.after_key()` (every key from the first when
// `req.from_start()`), at most `req.limit()` of them (see the constants
// above) -> reply.entries as (key, ValueHash(value)); reply.more is true
// when entries follow the last one returned (ask again with after_key = the
// last key). reply.applied_asn is the scanned volume's applied ASN (as for
// ServeVerifyFiles, for this one volume; 0 if none), and
// reply.verify_positions holds that volume's one VerifyPosition, read in the
// page's read transaction, with file_exists set.
//
// A protected file that does not exist on this node (or whose volume does
// not exist yet) is an empty page with more = false and file_exists =
// false: the other node may have it, and the comparison reports the file
// as present on one side only.
//
// Errors: kInvalidArgument when (volume, file) is not protected by the
// configuration (unknown or unprotected volume, unprotected or "__" file,
// not admitted by include/exclude); LMDB errors as ServeVerifyFiles.
absl::StatusOr<proto::ControlReply> ServeVerifyScan(const config::Config& config,
                                                    const proto::NodeConfig& node,
                                                    const proto::ControlRequest& req);

}  // namespace rdf::monitor

#endif  // RDF_MONITOR_VERIFY_SCAN_H_
