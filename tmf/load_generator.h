// The workload behind rdf-load and the tmf benchmark: clients (threads)
// running transactions against a tmf Store.
//
// Modes (the keys are the checkable contract of docs/tmf.md):
//  - insert: transaction T inserts K records with keys "<T>:<i>" (i in
//    0..K-1) spread over the volumes, into file LOAD, each value starting
//    "<T>:<K>:", so any checker can count a transaction's records;
//  - upsert: K distinct random keys out of `keys` (zero-padded decimal),
//    each always on the same volume, values starting "<T>:<K>:";
//  - mixed: K random keys; a missing key is inserted, an existing one
//    updated or deleted (half each).
// Deadlocks and lock timeouts are retried (not counted); --abort-percent
// aborts that share of transactions on purpose.
//
// Heartbeats (heartbeat_ms > 0, for bench/compare): every heartbeat_ms while
// the load runs, and once more after every client has stopped, one more
// thread commits a transaction that upserts key "hb:<wall clock µs, 16
// digits>" into file LOAD of every volume, value "<T>:<V>:" (V volumes). A
// reader of the backup knows from the key when it was written, and from its
// presence on every volume that the whole transaction was applied; the last
// one follows every load transaction. Heartbeats are not counted in the
// result.
#ifndef RDF_TMF_LOAD_GENERATOR_H_
#define RDF_TMF_LOAD_GENERATOR_H_

#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tmf/store.h"

namespace rdf::tmf {

inline constexpr char kLoadFile[] = "LOAD";

enum class LoadMode { kInsert, kUpsert, kMixed };
absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view s);

struct LoadOptions {
  uint64_t txns = 1000;         // transactions to run (committed + aborted)
  double seconds = 0;           // when > 0: run this long instead
  uint64_t rows_per_txn = 5;
  uint64_t value_bytes = 100;
  // When > 0 (and below value_bytes): each value's length is drawn
  // log-uniformly from [min_value_bytes, value_bytes] with the client's
  // seeded generator (see ValueLength), for backlogs of mixed record sizes.
  uint64_t min_value_bytes = 0;
  uint64_t clients = 1;
  LoadMode mode = LoadMode::kInsert;
  uint64_t keys = 1'000'000;
  double abort_percent = 0;
  double rate = 0;              // transactions per second over all clients; 0: as fast as possible
  uint64_t think_us = 0;        // pause after each operation (the transaction stays open)
  uint64_t hold_us = 0;         // client 0 keeps its first transaction open this long
  uint64_t seed = 1;
  std::string commit_log;       // append each committed txid, once Commit returned
  uint64_t heartbeat_ms = 0;    // heartbeat transaction interval; 0: none
  bool progress = true;         // a line on stderr each second
};

struct LoadResult {
  uint64_t committed = 0;
  uint64_t aborted = 0;
  uint64_t retried = 0;         // deadlock / lock timeout retries
  uint64_t rows = 0;            // rows written by committed transactions
  double seconds = 0;
  double txn_per_s = 0;
  double rows_per_s = 0;
  int64_t commit_p50_us = 0;
  int64_t commit_p99_us = 0;
  int64_t commit_max_us = 0;
  double fsyncs_per_commit = 0;
  uint64_t heartbeats = 0;      // heartbeat transactions committed
  int64_t last_heartbeat_us = 0;  // the last one's key (wall clock µs); 0: none
};

// The length of one value: value_bytes when min_value_bytes is 0 or not
// below it, else log-uniform over [min_value_bytes, value_bytes] (as many
// values between 1 and 2 KiB as between 512 and 1024 KiB). A value is never
// shorter than its "<T>:<K>:" prefix, whatever the length drawn.
uint64_t ValueLength(const LoadOptions& options, std::mt19937_64& rng);

// Creates file LOAD on each volume when missing, then runs the load.
// REQUIRES: `volumes` non-empty.
absl::StatusOr<LoadResult> RunLoad(Store* store,
                                   const std::vector<std::string>& volumes,
                                   const LoadOptions& options);

// {"committed":..,"aborted":..,...} on one line.
std::string LoadResultJson(const LoadResult& r);

}  // namespace rdf::tmf

#endif  // RDF_TMF_LOAD_GENERATOR_H_
