// Write locks per key for tmf transactions: strict two-phase locking, each
// lock held until its transaction ends. A transaction that would wait in a
// cycle (deadlock) or longer than the lock timeout gets kAborted and must be
// aborted by its owner.
#ifndef RDF_TMF_LOCK_MANAGER_H_
#define RDF_TMF_LOCK_MANAGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace rdf::tmf {

class LockManager {
 public:
  explicit LockManager(absl::Duration timeout) : timeout_(timeout) {}

  // Takes the write lock on `key` for transaction `txid`, waiting while
  // another transaction holds it. Returns OK at once when `txid` already
  // holds it. kAborted with "deadlock" when waiting would close a cycle, or
  // "lock timeout" after the timeout. Thread-safe.
  absl::Status Lock(uint64_t txid, const std::string& key);

  // Releases the locks `txid` holds on `keys` and wakes waiters.
  void ReleaseAll(uint64_t txid, const std::vector<std::string>& keys);

  size_t held() const;

 private:
  // True when `txid` waiting for `holder` closes a cycle.
  bool WouldDeadlock(uint64_t txid, uint64_t holder) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration timeout_;
  mutable absl::Mutex mu_;
  absl::CondVar released_;
  absl::flat_hash_map<std::string, uint64_t> owner_ ABSL_GUARDED_BY(mu_);
  // Transaction -> the transaction it waits for (at most one).
  absl::flat_hash_map<uint64_t, uint64_t> waits_for_ ABSL_GUARDED_BY(mu_);
  size_t waiters_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace rdf::tmf

#endif  // RDF_TMF_LOCK_MANAGER_H_
