// The wide workload (rdf-load --mode wide): everything an application can do
// to tmf, seeded and reproducible, with a commit log a checker can hold both
// nodes against (tests/process/check_wide.py, docs/tmf.md "rdf-load").
//
// Clients (threads) run transactions of 1..8 operations on random volumes:
//  - private keys "<run>.<client>:<n>" in file WIDE (only that client writes
//    them, so its log order is their commit order): insert, update, upsert or
//    delete, with values of 0 bytes up to max_value_bytes (most small, a few
//    large: sizes are drawn log-uniformly);
//  - shared counters "hot:<run>.<n>" in file HOT, incremented after a
//    ReadForUpdate, in random order: transactions deadlock and time out, and
//    the final value of a counter is the number of committed increments
//    whatever the commit order;
//  - a share aborted on purpose (abort_percent).
// A value is the text "<txid>:<key>;" repeated and cut to its length, so a
// checker knows from the bytes who wrote a value and can rebuild it.
// With `open_txns` > 0 a holder thread keeps that many transactions open at
// once (each writing one private key "<run>.h:<n>"), ending each (commit, or
// abort one in ten) hold_ms after it began: long transactions, and many open
// through every save point. With `ddl` a DDL thread creates and purges files
// "D0".."D3" on every volume while clients write single-record transactions
// into them (a purge of a file in use fails with error 12 and is retried
// later). With burst_ms and idle_ms the clients alternate bursts and idle
// periods.
//
// Commit log (one write(2) per line, appended, so a SIGKILL loses at most a
// partial last line); volume, file and key never contain spaces:
//   U <txid> <op>...   before Commit is called (outcome unknown until...)
//   C <txid>           ...Commit returned OK
//   A <txid>           ...the transaction was aborted (on purpose or not)
//   D <volume> <file> CREATE|PURGE   after a DDL returned OK
// where <op> is "<volume>/<file>/<key>=<len>" (a write), "<volume>/<file>/<key>=-"
// (a delete) or "<volume>/HOT/<key>+1" (a counter increment).
#ifndef RDF_TMF_WIDE_LOAD_H_
#define RDF_TMF_WIDE_LOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "tmf/store.h"

namespace rdf::tmf {

inline constexpr char kWideFile[] = "WIDE";
inline constexpr char kHotFile[] = "HOT";

struct WideLoadOptions {
  uint64_t seed = 1;             // also names the run: keys "<seed>.<client>:<n>"
  double seconds = 10;
  uint64_t clients = 4;
  uint64_t max_value_bytes = 1 << 20;
  double abort_percent = 5;
  uint64_t keys_per_client = 2000;
  uint64_t hot_keys = 8;
  uint64_t open_txns = 0;        // the holder's open transactions at once
  uint64_t hold_ms = 3000;
  // The open transactions' values: up to this size, drawn as the clients'
  // (most small, a few near it) from 64 on; below 64, uniform.
  uint64_t open_max_value_bytes = 63;
  bool ddl = false;
  uint64_t burst_ms = 0;         // with idle_ms: bursts and idle periods
  uint64_t idle_ms = 0;
  double rate = 0;               // transactions per second over all clients; 0: unlimited
  std::string commit_log;
  bool progress = true;
};

struct WideLoadResult {
  uint64_t committed = 0;
  uint64_t aborted = 0;          // on purpose
  uint64_t failed = 0;           // aborted by deadlock, lock timeout, a purged file, ...
  uint64_t unknown = 0;          // Commit failed: outcome unknown
  uint64_t records = 0;          // records written by committed transactions
  uint64_t bytes = 0;            // their value bytes
  uint64_t largest_value = 0;
  uint64_t max_open = 0;         // most transactions the holder had open at once
  uint64_t ddl = 0;              // DDL that succeeded
  uint64_t ddl_in_use = 0;       // purges refused with error 12
  double seconds = 0;
};

// The value a transaction writes to `key`: "<txid>:<key>;" repeated, cut to
// `len` bytes.
std::string WideValue(uint64_t txid, const std::string& key, uint64_t len);

// Creates the files it needs when missing, then runs the load.
// REQUIRES: `volumes` non-empty.
absl::StatusOr<WideLoadResult> RunWideLoad(Store* store, const std::vector<std::string>& volumes,
                                           const WideLoadOptions& options);

std::string WideLoadResultJson(const WideLoadResult& r);

}  // namespace rdf::tmf

#endif  // RDF_TMF_WIDE_LOAD_H_
