#include "common/lmdb/env.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_system.h"
#include "common/base/status_macros.h"
#include "common/layout/layout.h"
#include "common/lmdb/meta.h"

namespace rdf::lmdb {

absl::Status MdbError(int rc, absl::string_view context) {
  std::string msg = absl::StrCat(context, ": ", mdb_strerror(rc));
  switch (rc) {
    case MDB_MAP_FULL:
    case ENOSPC:
      return absl::ResourceExhaustedError(msg);
    case MDB_NOTFOUND:
      return absl::NotFoundError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::unique_ptr<Env>> Env::Open(const std::string& dir, uint64_t map_bytes,
                                               uint32_t max_dbs, Durability durability) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create ", dir));
  // MDB_NOMETASYNC: a system crash may lose the last LMDB commit but never
  // corrupts; every writer of ours keeps its position in the same LMDB
  // transaction as its changes and redoes from there (tmf from the audit
  // trail, updaters from their image trail), so nothing is lost. It halves
  // the fsyncs per commit.
  unsigned flags = MDB_NOTLS | MDB_NOMETASYNC;
  if (durability == Durability::kDeferred) flags |= MDB_NOSYNC;
  return OpenWith(dir, map_bytes, max_dbs, flags);
}

absl::StatusOr<std::unique_ptr<Env>> Env::OpenReadOnly(const std::string& dir,
                                                       uint32_t max_dbs) {
  std::error_code ec;
  if (!std::filesystem::exists(layout::VolumeDataFile(dir), ec)) {
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("look for ", dir));
    return absl::NotFoundError(absl::StrCat("no LMDB environment in ", dir));
  }
  RDF_ASSIGN_OR_RETURN(VolumeGate gate, VolumeGate::ForReader(dir));
  RDF_ASSIGN_OR_RETURN(std::unique_ptr<Env> env,
                       OpenWith(dir, 0, max_dbs, MDB_RDONLY | MDB_NOTLS));
  env->gate_ = std::move(gate);
  return env;
}

absl::StatusOr<VolumeGate> VolumeGate::ForWriter(const std::string& dir, absl::Duration wait) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create ", dir));
  return Take(dir, /*exclusive=*/true, wait);
}

absl::StatusOr<VolumeGate> VolumeGate::ForReader(const std::string& dir, absl::Duration wait) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return VolumeGate();
  return Take(dir, /*exclusive=*/false, wait);
}

absl::StatusOr<VolumeGate> VolumeGate::Take(const std::string& dir, bool exclusive,
                                            absl::Duration wait) {
  const std::string path = layout::VolumeGateFile(dir);
  VolumeGate g;
  g.fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (g.fd_ < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  const absl::Time deadline = absl::Now() + wait;
  while (flock(g.fd_, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno != EWOULDBLOCK) return ErrnoToStatus(errno, absl::StrCat("flock ", path));
    if (absl::Now() >= deadline) {
      return absl::UnavailableError(absl::StrCat(
          dir, ": ",
          exclusive ? "a reader (rdfcom verify or initialize) keeps the volume open"
                    : "its writer is recovering the volume",
          " after ", absl::FormatDuration(wait), "; try again"));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return g;
}

VolumeGate::VolumeGate(VolumeGate&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

VolumeGate& VolumeGate::operator=(VolumeGate&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

VolumeGate::~VolumeGate() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<Env>> Env::OpenWith(const std::string& dir, uint64_t map_bytes,
                                                   uint32_t max_dbs, unsigned flags) {
  // Never shrink a map that an earlier run (or the writer, for a reader)
  // grew: LMDB prefers a configured size to the one in the meta page and
  // only raises it to the pages in use, so the next big write would fill
  // it again. (Meta pages that cannot be read are LMDB's to report, or a
  // data.mdb another process is creating right now: open as configured.)
  absl::StatusOr<std::optional<NewestMeta>> meta = ReadNewestMeta(layout::VolumeDataFile(dir));
  if (meta.ok() && meta->has_value()) map_bytes = std::max(map_bytes, (*meta)->map_size);
  std::unique_ptr<Env> e(new Env());
  e->dir_ = dir;
  int rc = mdb_env_create(&e->env_);
  if (rc != 0) return MdbError(rc, "mdb_env_create");
  mdb_env_set_maxdbs(e->env_, max_dbs);
  if (map_bytes > 0) {
    rc = mdb_env_set_mapsize(e->env_, map_bytes);
    if (rc != 0) return MdbError(rc, "mdb_env_set_mapsize");
  }
  rc = mdb_env_open(e->env_, dir.c_str(), flags, 0644);
  if (rc != 0) {
    mdb_env_close(e->env_);
    e->env_ = nullptr;
    return MdbError(rc, absl::StrCat("open LMDB environment ", dir,
                                     (flags & MDB_RDONLY) ? " read-only" : ""));
  }
  int dead = 0;
  mdb_reader_check(e->env_, &dead);  // frees slots of killed processes
  return e;
}

Env::~Env() {
  if (env_ != nullptr) mdb_env_close(env_);
}

uint64_t Env::map_bytes() const {
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  return info.me_mapsize;
}

absl::StatusOr<MDB_dbi> Env::OpenDb(const std::string& name, bool create) {
  // mdb_dbi_open calls must not overlap within a process: hold dbs_mu_
  // throughout. Callers must not hold a transaction of this environment.
  absl::MutexLock l(&dbs_mu_);
  auto it = dbs_.find(name);
  if (it != dbs_.end()) return it->second;
  RDF_ASSIGN_OR_RETURN(MDB_txn* txn, BeginShared(create ? 0 : MDB_RDONLY, "mdb_txn_begin"));
  // BeginShared returned a transaction, so this thread holds resize_mu_
  // shared: a hold the analysis cannot see (see BeginShared).
  absl::Cleanup unlock = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { resize_mu_.ReaderUnlock(); };
  MDB_dbi dbi;
  int rc = mdb_dbi_open(txn, name.c_str(), create ? MDB_CREATE : 0, &dbi);
  if (rc != 0) {
    mdb_txn_abort(txn);
    return MdbError(rc, absl::StrCat("open file ", name, " in ", dir_));
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return MdbError(rc, absl::StrCat("create file ", name));
  dbs_[name] = dbi;
  return dbi;
}

absl::StatusOr<std::vector<std::string>> Env::ListDbs() {
  RDF_ASSIGN_OR_RETURN(auto txn, ReadTxn::Begin(this));
  MDB_dbi main;
  int rc = mdb_dbi_open(txn->txn(), nullptr, 0, &main);
  if (rc != 0) return MdbError(rc, "open main database");
  MDB_cursor* cur;
  rc = mdb_cursor_open(txn->txn(), main, &cur);
  if (rc != 0) return MdbError(rc, "mdb_cursor_open");
  std::vector<std::string> names;
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    names.emplace_back(View(k));
  }
  mdb_cursor_close(cur);
  if (rc != MDB_NOTFOUND) return MdbError(rc, "list databases");
  return names;
}

absl::Status Env::DropDb(const std::string& name) {
  RDF_ASSIGN_OR_RETURN(MDB_dbi dbi, OpenDb(name, /*create=*/false));
  {
    RDF_ASSIGN_OR_RETURN(auto txn, WriteTxn::Begin(this));
    int rc = mdb_drop(txn->txn(), dbi, 1);
    if (rc != 0) return MdbError(rc, absl::StrCat("drop file ", name));
    RDF_RETURN_IF_ERROR(txn->Commit());
  }
  absl::MutexLock l(&dbs_mu_);
  dbs_.erase(name);
  return absl::OkStatus();
}

absl::Status Env::Grow(uint64_t min_bytes) {
  absl::MutexLock l(&resize_mu_);
  uint64_t target = std::max<uint64_t>(map_bytes() * 2, min_bytes);
  int rc = mdb_env_set_mapsize(env_, target);
  if (rc != 0) return MdbError(rc, absl::StrCat("grow map of ", dir_));
  return absl::OkStatus();
}

absl::StatusOr<MDB_txn*> Env::BeginShared(unsigned flags, absl::string_view context) {
  for (int adopted = 0;; ++adopted) {
    resize_mu_.ReaderLock();
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_, nullptr, flags, &txn);
    if (rc == 0) return txn;
    resize_mu_.ReaderUnlock();
    if (rc != MDB_MAP_RESIZED || adopted >= kMaxMapAdoptions) {
      return MdbError(rc, absl::StrCat(context, " in ", dir_));
    }
    // Another process grew the map past ours. Adopting its size remaps, so
    // no transaction of this process may be open: resize_mu exclusively.
    absl::MutexLock l(&resize_mu_);
    rc = mdb_env_set_mapsize(env_, 0);
    if (rc != 0) return MdbError(rc, absl::StrCat("adopt the grown map of ", dir_));
  }
}

absl::StatusOr<MDB_txn*> BeginTxn(MDB_env* env, unsigned flags, absl::string_view context) {
  for (int adopted = 0;; ++adopted) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env, nullptr, flags, &txn);
    if (rc == 0) return txn;
    if (rc != MDB_MAP_RESIZED || adopted >= kMaxMapAdoptions) return MdbError(rc, context);
    rc = mdb_env_set_mapsize(env, 0);  // another process grew the map: adopt its size
    if (rc != 0) return MdbError(rc, absl::StrCat(context, ": adopt the grown map"));
  }
}

bool IsMapFull(const absl::Status& s) {
  return absl::IsResourceExhausted(s) && absl::StrContains(s.message(), "MDB_MAP_FULL");
}

absl::StatusOr<std::unique_ptr<ReadTxn>> ReadTxn::Begin(Env* env) {
  RDF_ASSIGN_OR_RETURN(MDB_txn* txn, env->BeginShared(MDB_RDONLY, "begin read transaction"));
  return std::unique_ptr<ReadTxn>(new ReadTxn(env, txn));
}

ReadTxn::~ReadTxn() {
  mdb_txn_abort(txn_);
  env_->resize_mu().ReaderUnlock();
}

namespace {
absl::StatusOr<std::optional<std::string>> GetIn(MDB_txn* txn, MDB_dbi dbi,
                                                 absl::string_view key) {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) return MdbError(rc, "mdb_get");
  return std::optional<std::string>(std::string(View(v)));
}
}  // namespace

absl::StatusOr<std::optional<std::string>> ReadTxn::Get(MDB_dbi dbi,
                                                        absl::string_view key) {
  return GetIn(txn_, dbi, key);
}

absl::StatusOr<std::unique_ptr<WriteTxn>> WriteTxn::Begin(Env* env) {
  RDF_ASSIGN_OR_RETURN(MDB_txn* txn, env->BeginShared(0, "begin write transaction"));
  return std::unique_ptr<WriteTxn>(new WriteTxn(env, txn));
}

WriteTxn::~WriteTxn() {
  if (txn_ != nullptr) mdb_txn_abort(txn_);
  env_->resize_mu().ReaderUnlock();
}

absl::StatusOr<std::optional<std::string>> WriteTxn::Get(MDB_dbi dbi,
                                                         absl::string_view key) {
  return GetIn(txn_, dbi, key);
}

absl::Status WriteTxn::Put(MDB_dbi dbi, absl::string_view key,
                           absl::string_view value) {
  MDB_val k = Val(key), v = Val(value);
  int rc = mdb_put(txn_, dbi, &k, &v, 0);
  if (rc != 0) return MdbError(rc, "mdb_put");
  return absl::OkStatus();
}

absl::Status WriteTxn::Delete(MDB_dbi dbi, absl::string_view key) {
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc != 0) return MdbError(rc, "mdb_del");
  return absl::OkStatus();
}

absl::Status WriteTxn::Commit() {
  int rc = mdb_txn_commit(txn_);
  txn_ = nullptr;
  if (rc != 0) return MdbError(rc, absl::StrCat("commit to ", env_->dir()));
  return absl::OkStatus();
}

namespace {
absl::StatusOr<std::optional<uint64_t>> DecodeU64(
    absl::StatusOr<std::optional<std::string>> v, absl::string_view key) {
  if (!v.ok()) return v.status();
  if (!v->has_value()) return std::optional<uint64_t>();
  if ((*v)->size() != 8) {
    return absl::DataLossError(absl::StrCat("bookkeeping value ", key,
                                            " has ", (*v)->size(), " bytes"));
  }
  uint64_t x;
  std::memcpy(&x, (*v)->data(), 8);
  return std::optional<uint64_t>(x);
}
}  // namespace

absl::StatusOr<std::optional<uint64_t>> GetU64(ReadTxn* txn, MDB_dbi dbi,
                                               absl::string_view key) {
  return DecodeU64(txn->Get(dbi, key), key);
}
absl::StatusOr<std::optional<uint64_t>> GetU64(WriteTxn* txn, MDB_dbi dbi,
                                               absl::string_view key) {
  return DecodeU64(txn->Get(dbi, key), key);
}
absl::Status PutU64(WriteTxn* txn, MDB_dbi dbi, absl::string_view key,
                    uint64_t value) {
  char buf[8];
  std::memcpy(buf, &value, 8);
  return txn->Put(dbi, key, absl::string_view(buf, 8));
}

}  // namespace rdf::lmdb
