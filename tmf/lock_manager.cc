#include "tmf/lock_manager.h"

#include "absl/strings/str_cat.h"

namespace rdf::tmf {

bool LockManager::WouldDeadlock(uint64_t txid, uint64_t holder) const {
  // Each transaction waits for at most one other, so the wait-for graph is
  // a set of chains: follow the holder's chain (bounded by its length).
  uint64_t t = holder;
  for (size_t steps = 0; steps <= waits_for_.size(); ++steps) {
    if (t == txid) return true;
    auto it = waits_for_.find(t);
    if (it == waits_for_.end()) return false;
    t = it->second;
  }
  return true;  // a cycle not through txid: treat as deadlock too
}

absl::Status LockManager::Lock(uint64_t txid, const std::string& key) {
  absl::MutexLock l(&mu_);
  absl::Time deadline = absl::Now() + timeout_;
  while (true) {
    auto [it, inserted] = owner_.try_emplace(key, txid);
    if (inserted || it->second == txid) return absl::OkStatus();
    uint64_t holder = it->second;
    if (WouldDeadlock(txid, holder)) {
      return absl::AbortedError(absl::StrCat(
          "deadlock: transaction ", txid, " waits for ", holder,
          " which waits for it; abort and retry"));
    }
    waits_for_[txid] = holder;
    ++waiters_;
    bool timed_out = released_.WaitWithDeadline(&mu_, deadline);
    --waiters_;
    waits_for_.erase(txid);
    if (timed_out && absl::Now() >= deadline) {
      auto again = owner_.find(key);
      if (again != owner_.end() && again->second != txid) {
        return absl::AbortedError(absl::StrCat(
            "lock timeout: transaction ", txid, " waited ",
            absl::FormatDuration(timeout_), " for a key held by transaction ",
            again->second, "; abort and retry"));
      }
    }
  }
}

void LockManager::ReleaseAll(uint64_t txid,
                             const std::vector<std::string>& keys) {
  absl::MutexLock l(&mu_);
  for (const std::string& k : keys) {
    auto it = owner_.find(k);
    if (it != owner_.end() && it->second == txid) owner_.erase(it);
  }
  if (waiters_ > 0) released_.SignalAll();
}

size_t LockManager::held() const {
  absl::MutexLock l(&mu_);
  return owner_.size();
}

}  // namespace rdf::tmf
