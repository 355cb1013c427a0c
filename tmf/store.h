// tmf: the primary's audited store.
//
// Each volume is an LMDB environment at <data_dir>/volumes/<VOLUME>/ with
// one named database per file; the audit trail at <data_dir>/audit/ is the
// write-ahead log. A transaction's DATA records (before and after image) go
// to the audit trail as each operation happens, so transactions interleave
// there as on a real TMF system; COMMIT is durable (group commit: one
// fdatasync for every transaction committing at the same moment) before
// Commit returns. Abort writes compensation records (the inverse of each
// change, newest first) and then ABORT. Volumes are updated from committed
// transactions afterwards, in batches, each LMDB transaction recording the
// volume's applied ASN; until then reads see the committed changes from
// memory. Opening a store recovers it: committed audit past each volume's
// applied ASN is replayed, and transactions that have no outcome are backed
// out (compensation records, then ABORT), so every volume holds exactly its
// committed transactions.
//
// Locking: a write lock per key, held to the end of the transaction
// (strict two-phase locking), with deadlock detection and a lock timeout;
// both abort the operation with kAborted and the caller must Abort().
// Reads take no lock and see every transaction whose commit has returned.
//
// One process opens a primary at a time (flock on <data_dir>/locks/tmf.lock).
// All methods are thread-safe; one Transaction is used by one thread.
#ifndef RDF_TMF_STORE_H_
#define RDF_TMF_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/clock.h"
#include "common/base/file_system.h"
#include "common/config/config.h"

namespace rdf::tmf {

struct StoreOptions {
  const config::Config* config = nullptr;  // not owned; outlives the Store
  std::string node;                        // name of the node to open
  FileSystem* fs = FileSystem::Default();
  Clock* clock = Clock::Real();
  // Log events to <data_dir>/events/tmf.* (and stderr).
  bool log_events = true;
};

// What opening the store found and did.
struct RecoveryReport {
  uint64_t start_asn = 0;             // where the audit scan began
  uint64_t end_asn = 0;               // last ASN in the audit trail
  uint64_t redone_transactions = 0;   // committed, replayed into volumes
  uint64_t backed_out_transactions = 0;  // no outcome: compensated + ABORT
  uint64_t next_txid = 0;
};

struct StoreStats {
  uint64_t commits = 0;
  uint64_t aborts = 0;
  uint64_t fsyncs = 0;           // audit trail fdatasyncs
  uint64_t last_asn = 0;         // newest ASN written
  uint64_t durable_asn = 0;      // newest ASN durable
  uint64_t applied_asn = 0;      // lowest applied ASN over volumes with work
  uint64_t audit_bytes = 0;      // disk used by audit segments
  uint64_t audit_segments = 0;
  // Committed transactions waiting for the volumes (at most twice
  // tmf.apply_batch_txns: commits wait beyond that).
  uint64_t pending_commits = 0;
  // Their changes' bytes in memory (at most 16 MiB, or one transaction's:
  // commits wait beyond that).
  uint64_t pending_bytes = 0;
  // Change images held in memory (open transactions and committed changes
  // not yet in the volumes): at most tmf.image_memory_bytes, plus the
  // images of writes in progress. Past it a change's images stay only in
  // its audit record (spilled_images counts them) and are read back when
  // needed.
  uint64_t image_bytes = 0;
  uint64_t image_bytes_peak = 0;  // the most image_bytes has been since Open
  uint64_t spilled_images = 0;
};

class Store;

class Transaction {
 public:
  ~Transaction();  // aborts when still open
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  uint64_t id() const;

  // The value this transaction sees: its own writes, else committed state.
  absl::StatusOr<std::optional<std::string>> Read(absl::string_view volume,
                                                  absl::string_view file,
                                                  absl::string_view key);
  // Like Read, but first takes the key's write lock (held to the end), so a
  // read-modify-write cannot lose another transaction's update.
  absl::StatusOr<std::optional<std::string>> ReadForUpdate(
      absl::string_view volume, absl::string_view file, absl::string_view key);
  // kAlreadyExists when the key exists.
  absl::Status Insert(absl::string_view volume, absl::string_view file,
                      absl::string_view key, absl::string_view value);
  // kNotFound when the key is missing.
  absl::Status Update(absl::string_view volume, absl::string_view file,
                      absl::string_view key, absl::string_view value);
  // Insert or update.
  absl::Status Upsert(absl::string_view volume, absl::string_view file,
                      absl::string_view key, absl::string_view value);
  // kNotFound when the key is missing.
  absl::Status Delete(absl::string_view volume, absl::string_view file,
                      absl::string_view key);
  // Every operation also fails with: kNotFound for an unknown volume or
  // file, kAborted for a deadlock or lock timeout, kResourceExhausted when
  // the transaction's audit would exceed tmf.max_txn_bytes, and
  // kFailedPrecondition once the transaction has ended.

  // Durable when it returns OK. On error the transaction is aborted.
  absl::Status Commit();
  absl::Status Abort();

  struct State;

 private:
  friend class Store;
  explicit Transaction(std::unique_ptr<State> s);
  std::unique_ptr<State> s_;
};

class Store {
 public:
  static absl::StatusOr<std::unique_ptr<Store>> Open(
      const StoreOptions& options);
  ~Store();  // waits for pending volume updates; aborts nothing

  absl::StatusOr<std::unique_ptr<Transaction>> Begin();

  // DDL, each its own auto-committed transaction (durable on return).
  // kAlreadyExists / kNotFound as expected.
  absl::Status CreateFile(absl::string_view volume, absl::string_view file);
  absl::Status PurgeFile(absl::string_view volume, absl::string_view file);
  bool FileExists(absl::string_view volume, absl::string_view file);

  // Committed state of a key (no transaction).
  absl::StatusOr<std::optional<std::string>> Read(absl::string_view volume,
                                                  absl::string_view file,
                                                  absl::string_view key);

  // Waits until every transaction committed so far is in the volumes.
  absl::Status WaitApplied();

  const RecoveryReport& recovery() const;
  StoreStats stats();

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace rdf::tmf

#endif  // RDF_TMF_STORE_H_
