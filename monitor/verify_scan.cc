#include "monitor/verify_scan.h"

#include <lmdb.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"
#include "common/state/save_point.h"

namespace rdf::monitor {

namespace {

// LMDB's key size bound (mdb_env_get_maxkeysize with the default build).
constexpr size_t kMaxLmdbKeyBytes = 511;

// One volume's LMDB environment opened with MDB_RDONLY, and one read
// transaction on it (the snapshot every read of this object sees). Not
// lmdb::Env: that one creates the folder and opens read-write.
class ReadOnlyVolume {
 public:
  // nullptr when the volume has no LMDB environment (yet).
  static absl::StatusOr<std::unique_ptr<ReadOnlyVolume>> Open(const std::string& dir,
                                                              uint32_t max_dbs);
  ~ReadOnlyVolume();
  ReadOnlyVolume(const ReadOnlyVolume&) = delete;
  ReadOnlyVolume& operator=(const ReadOnlyVolume&) = delete;

  MDB_txn* txn() const { return txn_; }
  const std::string& dir() const { return dir_; }
  // nullopt when the named database does not exist.
  absl::StatusOr<std::optional<MDB_dbi>> OpenDb(const std::string& name);
  // Names of every named database (user files and bookkeeping).
  absl::StatusOr<std::vector<std::string>> ListDbs();
  // The U64 bookkeeping value `key` of __meta; nullopt when either is missing.
  absl::StatusOr<std::optional<uint64_t>> MetaU64(const char* key);

 private:
  explicit ReadOnlyVolume(std::string dir) : dir_(std::move(dir)) {}
  absl::Status Begin();

  std::string dir_;
  lmdb::VolumeGate gate_;  // held shared while env_ is open; outlives it
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
};

absl::StatusOr<std::unique_ptr<ReadOnlyVolume>> ReadOnlyVolume::Open(const std::string& dir,
                                                                     uint32_t max_dbs) {
  std::error_code ec;
  if (!std::filesystem::exists(layout::VolumeDataFile(dir), ec)) {
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("look for ", dir));
    return std::unique_ptr<ReadOnlyVolume>();
  }
  std::unique_ptr<ReadOnlyVolume> v(new ReadOnlyVolume(dir));
  // Not while the volume's writer may be putting its checkpoint back.
  RDF_ASSIGN_OR_RETURN(v->gate_, lmdb::VolumeGate::ForReader(dir));
  int rc = mdb_env_create(&v->env_);
  if (rc != 0) return lmdb::MdbError(rc, "mdb_env_create");
  mdb_env_set_maxdbs(v->env_, max_dbs);
  // The map size stays LMDB's default: opening adopts at least the size of
  // the data already written, and Begin() follows later growth.
  rc = mdb_env_open(v->env_, dir.c_str(), MDB_RDONLY | MDB_NOTLS, 0644);
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("open LMDB environment ", dir, " read-only"));
  RDF_RETURN_IF_ERROR(v->Begin());
  return v;
}

absl::Status ReadOnlyVolume::Begin() {
  // lmdb::BeginTxn adopts a map the writer grew past ours since we opened.
  absl::StatusOr<MDB_txn*> txn =
      lmdb::BeginTxn(env_, MDB_RDONLY, absl::StrCat("begin read transaction in ", dir_));
  txn_ = txn.ok() ? *txn : nullptr;
  return txn.status();
}

ReadOnlyVolume::~ReadOnlyVolume() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  if (env_ != nullptr) mdb_env_close(env_);
}

absl::StatusOr<std::optional<MDB_dbi>> ReadOnlyVolume::OpenDb(const std::string& name) {
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn_, name.c_str(), 0, &dbi);
  if (rc == MDB_NOTFOUND) return std::optional<MDB_dbi>();
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("open file ", name, " in ", dir_));
  return std::optional<MDB_dbi>(dbi);
}

absl::StatusOr<std::vector<std::string>> ReadOnlyVolume::ListDbs() {
  MDB_dbi main;
  int rc = mdb_dbi_open(txn_, nullptr, 0, &main);
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("open main database of ", dir_));
  MDB_cursor* cur;
  rc = mdb_cursor_open(txn_, main, &cur);
  if (rc != 0) return lmdb::MdbError(rc, "mdb_cursor_open");
  std::vector<std::string> names;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    names.emplace_back(lmdb::View(k));
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return lmdb::MdbError(rc, absl::StrCat("list files of ", dir_));
  return names;
}

absl::StatusOr<std::optional<uint64_t>> ReadOnlyVolume::MetaU64(const char* key) {
  RDF_ASSIGN_OR_RETURN(std::optional<MDB_dbi> meta, OpenDb(lmdb::kMetaDb));
  if (!meta.has_value()) return std::optional<uint64_t>();
  MDB_val k = lmdb::Val(key), v;
  int rc = mdb_get(txn_, *meta, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<uint64_t>();
  if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("read ", key, " in ", dir_));
  if (v.mv_size != 8) {
    return absl::DataLossError(
        absl::StrCat("bookkeeping value ", key, " in ", dir_, " has ", v.mv_size, " bytes"));
  }
  uint64_t x;
  std::memcpy(&x, v.mv_data, 8);
  return std::optional<uint64_t>(x);
}

// The __meta key of the node's applied ASN (see the header).
const char* AppliedAsnKey(const proto::NodeConfig& node) {
  return node.role() == proto::PRIMARY ? kMetaTmfAppliedAsn : kMetaAppliedAsn;
}

absl::StatusOr<std::unique_ptr<ReadOnlyVolume>> OpenVolume(const config::Config& config,
                                                           const proto::NodeConfig& node,
                                                           const std::string& volume) {
  return ReadOnlyVolume::Open(config::VolumeDir(node, volume), config.proto.lmdb().max_dbs());
}

// The published save point of a BACKUP node (nullopt on the primary, or
// before the receiver published one). Read before the volume's read
// transaction begins: the save point only moves forward, so a volume found
// at its trail end then has applied everything through that save point.
absl::StatusOr<std::optional<proto::SavePoint>> BackupSavePoint(const proto::NodeConfig& node) {
  if (node.role() != proto::BACKUP) return std::optional<proto::SavePoint>();
  return ReadPublishedSavePoint(config::ImageTrailDir(node));
}

// Where `volume` stands on `node` (proto VerifyPosition); `v` is null when
// the volume has no environment.
absl::StatusOr<proto::VerifyPosition> Position(const proto::NodeConfig& node,
                                              const std::string& volume, ReadOnlyVolume* v,
                                              const std::optional<proto::SavePoint>& sp) {
  proto::VerifyPosition p;
  p.set_volume(volume);
  p.set_volume_exists(v != nullptr);
  if (v != nullptr) {
    RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> asn, v->MetaU64(AppliedAsnKey(node)));
    p.set_applied_asn(asn.value_or(0));
  }
  if (node.role() != proto::BACKUP) return p;
  if (!sp.has_value()) {
    p.set_caught_up(v == nullptr);  // nothing received, nothing to apply
    return p;
  }
  p.set_save_point_asn(sp->asn());
  p.set_open_transactions(static_cast<uint32_t>(sp->open_size()));
  const proto::TrailEnd* te = FindTrailEnd(*sp, config::VolumeDirName(volume));
  if (te == nullptr || te->records() == 0) {
    p.set_caught_up(true);  // the volume's trail holds nothing to apply
    return p;
  }
  if (v == nullptr) return p;  // records to apply and no volume yet
  RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> seg, v->MetaU64(kMetaRestartSegment));
  RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> off, v->MetaU64(kMetaRestartOffset));
  p.set_caught_up(seg == te->segment() && off == te->offset());
  return p;
}

proto::ControlReply NewReply() {
  proto::ControlReply reply;
  reply.set_version(proto::CONTROL_VERSION_1);
  reply.set_ok(true);
  return reply;
}

// Appends the protected user files of one open volume to `reply`.
absl::Status ListFiles(const config::Config& config, const std::string& volume,
                       ReadOnlyVolume* v, proto::ControlReply* reply) {
  RDF_ASSIGN_OR_RETURN(std::vector<std::string> names, v->ListDbs());
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    if (name.starts_with("__") || !config.IsProtected(volume, name)) continue;
    RDF_ASSIGN_OR_RETURN(std::optional<MDB_dbi> dbi, v->OpenDb(name));
    if (!dbi.has_value()) continue;
    MDB_stat st;
    int rc = mdb_stat(v->txn(), *dbi, &st);
    if (rc != 0) return lmdb::MdbError(rc, absl::StrCat("count records of ", name));
    proto::VerifyFile* f = reply->add_files();
    f->set_volume(volume);
    f->set_file(name);
    f->set_records(st.ms_entries);
    f->set_exists(true);
  }
  return absl::OkStatus();
}

// Fills reply->entries and reply->more from `dbi` (see the header).
absl::Status ScanPage(ReadOnlyVolume* v, MDB_dbi dbi, const proto::ControlRequest& req,
                      proto::ControlReply* reply) {
  uint32_t limit = req.limit() == 0 ? kDefaultVerifyPageEntries
                                    : std::min(req.limit(), kMaxVerifyPageEntries);
  MDB_cursor* cur;
  int rc = mdb_cursor_open(v->txn(), dbi, &cur);
  if (rc != 0) return lmdb::MdbError(rc, "mdb_cursor_open");
  MDB_val k, val;
  const bool first = req.from_start() || req.after_key().empty();  // LMDB keys are never empty
  if (first) {
    rc = mdb_cursor_get(cur, &k, &val, MDB_FIRST);
  } else {
    k = lmdb::Val(req.after_key());
    rc = mdb_cursor_get(cur, &k, &val, MDB_SET_RANGE);  // first key >= after_key
    if (rc == 0 && lmdb::View(k) == req.after_key()) {
      rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT);
    }
  }
  uint64_t key_bytes = 0;
  for (; rc == 0; rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT)) {
    if (static_cast<uint32_t>(reply->entries_size()) >= limit ||
        key_bytes >= kMaxVerifyPageKeyBytes) {
      reply->set_more(true);
      break;
    }
    proto::VerifyEntry* e = reply->add_entries();
    e->set_key(std::string(lmdb::View(k)));
    e->set_value_hash(ValueHash(lmdb::View(val)));
    key_bytes += k.mv_size;
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) {
    return lmdb::MdbError(rc, absl::StrCat("scan file ", req.file(), " in ", v->dir()));
  }
  return absl::OkStatus();
}

}  // namespace

std::string ValueHash(absl::string_view value) {
  // sodium_init is idempotent and thread-safe; it only picks the fastest
  // implementation, the result is the same either way.
  static const int sodium_ready = sodium_init();
  (void)sodium_ready;
  unsigned char out[kValueHashBytes];
  crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(value.data()),
                     value.size(), nullptr, 0);
  return std::string(reinterpret_cast<const char*>(out), sizeof out);
}

absl::StatusOr<proto::ControlReply> ServeVerifyFiles(const config::Config& config,
                                                     const proto::NodeConfig& node) {
  proto::ControlReply reply = NewReply();
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, BackupSavePoint(node));
  std::optional<uint64_t> lowest;
  for (const proto::VolumeConfig* vc : config.ProtectedVolumes()) {
    RDF_ASSIGN_OR_RETURN(std::unique_ptr<ReadOnlyVolume> v, OpenVolume(config, node, vc->name()));
    RDF_ASSIGN_OR_RETURN(*reply.add_verify_positions(), Position(node, vc->name(), v.get(), sp));
    if (v == nullptr) continue;  // no environment yet: no files
    RDF_RETURN_IF_ERROR(ListFiles(config, vc->name(), v.get(), &reply));
    RDF_ASSIGN_OR_RETURN(std::optional<uint64_t> asn, v->MetaU64(AppliedAsnKey(node)));
    if (asn.has_value()) lowest = std::min(lowest.value_or(*asn), *asn);
  }
  reply.set_applied_asn(lowest.value_or(0));
  return reply;
}

absl::StatusOr<proto::ControlReply> ServeVerifyScan(const config::Config& config,
                                                    const proto::NodeConfig& node,
                                                    const proto::ControlRequest& req) {
  if (!config.IsProtected(req.volume(), req.file())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "verify: file \"", req.file(), "\" of volume \"", req.volume(),
        "\" is not protected by the configuration"));
  }
  if (req.after_key().size() > kMaxLmdbKeyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("verify: after_key has ",
                                                   req.after_key().size(), " bytes; keys have at most ",
                                                   kMaxLmdbKeyBytes));
  }
  proto::ControlReply reply = NewReply();
  RDF_ASSIGN_OR_RETURN(std::optional<proto::SavePoint> sp, BackupSavePoint(node));
  RDF_ASSIGN_OR_RETURN(std::unique_ptr<ReadOnlyVolume> v, OpenVolume(config, node, req.volume()));
  RDF_ASSIGN_OR_RETURN(proto::VerifyPosition pos, Position(node, req.volume(), v.get(), sp));
  reply.set_applied_asn(pos.applied_asn());
  std::optional<MDB_dbi> dbi;
  if (v != nullptr) {
    RDF_ASSIGN_OR_RETURN(dbi, v->OpenDb(req.file()));
  }
  pos.set_file_exists(dbi.has_value());
  *reply.add_verify_positions() = std::move(pos);
  // No environment or no such file: an empty page, flagged as absent.
  if (!dbi.has_value()) return reply;
  RDF_RETURN_IF_ERROR(ScanPage(v.get(), *dbi, req, &reply));
  return reply;
}

}  // namespace rdf::monitor
