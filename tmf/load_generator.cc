#include "tmf/load_generator.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "common/base/status_macros.h"

namespace rdf::tmf {

absl::StatusOr<LoadMode> ParseLoadMode(absl::string_view s) {
  if (s == "insert") return LoadMode::kInsert;
  if (s == "upsert") return LoadMode::kUpsert;
  if (s == "mixed") return LoadMode::kMixed;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown mode '", s, "'; use insert, upsert or mixed"));
}

uint64_t ValueLength(const LoadOptions& o, std::mt19937_64& rng) {
  if (o.min_value_bytes == 0 || o.min_value_bytes >= o.value_bytes) return o.value_bytes;
  std::uniform_real_distribution<double> u(0, 1);
  const double lo = std::log(static_cast<double>(o.min_value_bytes));
  const double hi = std::log(static_cast<double>(o.value_bytes));
  const auto n = static_cast<uint64_t>(std::llround(std::exp(lo + u(rng) * (hi - lo))));
  return std::clamp(n, o.min_value_bytes, o.value_bytes);
}

namespace {

struct Shared {
  Store* store;
  const std::vector<std::string>* volumes;
  const LoadOptions* opt;
  std::atomic<uint64_t> started{0};
  std::atomic<uint64_t> committed{0};
  std::atomic<uint64_t> aborted{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> rows{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> heartbeats{0};
  std::atomic<int64_t> last_heartbeat_us{0};
  int commit_log_fd = -1;
  int64_t start_us = 0;
  absl::Mutex mu;
  std::vector<int64_t> latencies ABSL_GUARDED_BY(mu);
  absl::Status error ABSL_GUARDED_BY(mu);

  bool error_free() {
    absl::MutexLock l(&mu);
    return error.ok();
  }
};

std::string Value(uint64_t txid, uint64_t k, uint64_t bytes, std::mt19937_64& rng) {
  std::string v = absl::StrCat(txid, ":", k, ":");
  static constexpr char kAlpha[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  while (v.size() < bytes) v.push_back(kAlpha[rng() % 36]);
  return v;
}

// One transaction's operations. Returns kAborted for a retryable lock
// conflict; the caller aborts and retries.
// With `spread` (the held transaction of --hold-us), the i-th record of a
// mixed transaction goes to volume i mod N, so it touches min(K, N) volumes.
absl::Status RunOps(Shared& sh, Transaction* t, std::mt19937_64& rng, bool spread) {
  const LoadOptions& o = *sh.opt;
  const auto& vols = *sh.volumes;
  const uint64_t k = o.rows_per_txn;
  // An application's work between its operations: the transaction stays
  // open meanwhile, as real ones do.
  auto think = [&o] {
    if (o.think_us > 0) absl::SleepFor(absl::Microseconds(o.think_us));
  };
  switch (o.mode) {
    case LoadMode::kInsert:
      for (uint64_t i = 0; i < k; ++i) {
        const std::string& vol = vols[(t->id() + i) % vols.size()];
        RDF_RETURN_IF_ERROR(t->Insert(vol, kLoadFile, absl::StrCat(t->id(), ":", i),
                                      Value(t->id(), k, ValueLength(o, rng), rng)));
        think();
      }
      return absl::OkStatus();
    case LoadMode::kUpsert: {
      // Distinct keys in ascending order: no deadlock between clients.
      std::vector<uint64_t> keys;
      while (keys.size() < std::min(k, o.keys)) {
        uint64_t key = rng() % o.keys;
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
      }
      std::sort(keys.begin(), keys.end());
      for (uint64_t key : keys) {
        RDF_RETURN_IF_ERROR(t->Upsert(vols[key % vols.size()], kLoadFile,
                                      absl::StrFormat("%010d", key),
                                      Value(t->id(), k, ValueLength(o, rng), rng)));
        think();
      }
      return absl::OkStatus();
    }
    case LoadMode::kMixed:
      for (uint64_t i = 0; i < k; ++i) {
        uint64_t key = rng() % o.keys;
        if (spread && o.keys >= vols.size()) {
          key = key - key % vols.size() + i % vols.size();
          if (key >= o.keys) key -= vols.size();
        }
        const std::string& vol = vols[key % vols.size()];
        std::string name = absl::StrFormat("%010d", key);
        RDF_ASSIGN_OR_RETURN(auto cur, t->ReadForUpdate(vol, kLoadFile, name));
        std::string v = Value(t->id(), k, ValueLength(o, rng), rng);
        if (!cur.has_value()) {
          RDF_RETURN_IF_ERROR(t->Insert(vol, kLoadFile, name, v));
        } else if (rng() % 2 == 0) {
          RDF_RETURN_IF_ERROR(t->Update(vol, kLoadFile, name, v));
        } else {
          RDF_RETURN_IF_ERROR(t->Delete(vol, kLoadFile, name));
        }
        think();
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

void Client(Shared& sh, uint64_t index) {
  const LoadOptions& o = *sh.opt;
  Clock* clock = Clock::Real();
  std::mt19937_64 rng(o.seed * 1000003 + index);
  std::vector<int64_t> lat;
  const double interval_us = o.rate > 0 ? 1e6 * o.clients / o.rate : 0;
  int64_t next_us = clock->MonotonicMicros();
  // A long-running transaction (--hold-us): client 0's first one waits
  // before its commit while the others go on.
  int64_t hold_us = index == 0 ? static_cast<int64_t>(o.hold_us) : 0;
  while (!sh.stop.load()) {
    if (o.seconds <= 0 && sh.started.fetch_add(1) >= o.txns) break;
    if (interval_us > 0) {
      int64_t now = clock->MonotonicMicros();
      if (next_us > now) clock->SleepMicros(next_us - now);
      next_us += static_cast<int64_t>(interval_us);
    }
    // The held transaction is never aborted on purpose.
    bool abort_on_purpose = hold_us == 0 && o.abort_percent > 0 &&
                            (rng() % 1'000'000) < o.abort_percent * 10'000;
    for (int attempt = 0;; ++attempt) {
      absl::StatusOr<std::unique_ptr<Transaction>> t = sh.store->Begin();
      absl::Status s = t.ok() ? RunOps(sh, t->get(), rng, hold_us > 0) : t.status();
      if (s.ok() && abort_on_purpose) {
        s = (*t)->Abort();
        if (s.ok()) sh.aborted.fetch_add(1);
        if (s.ok()) break;
      }
      for (int64_t until = clock->MonotonicMicros() + hold_us;
           s.ok() && hold_us > 0 && !sh.stop.load() && clock->MonotonicMicros() < until;) {
        clock->SleepMicros(std::min<int64_t>(100'000, until - clock->MonotonicMicros()));
      }
      if (s.ok()) hold_us = 0;  // held; a lock conflict retries it held again
      if (s.ok()) {
        int64_t c0 = clock->MonotonicMicros();
        s = (*t)->Commit();
        int64_t c1 = clock->MonotonicMicros();
        if (s.ok()) {
          lat.push_back(c1 - c0);
          sh.committed.fetch_add(1);
          sh.rows.fetch_add(o.rows_per_txn);
          if (sh.commit_log_fd >= 0) {
            std::string line = absl::StrCat((*t)->id(), "\n");
            if (write(sh.commit_log_fd, line.data(), line.size()) < 0) {
              s = absl::InternalError("cannot write the commit log");
            }
          }
          if (s.ok()) break;
        }
      }
      if (absl::IsAborted(s) && attempt < 1000) {  // deadlock or lock timeout
        if (t.ok()) (*t)->Abort().IgnoreError();
        sh.retried.fetch_add(1);
        continue;
      }
      absl::MutexLock l(&sh.mu);
      if (sh.error.ok()) sh.error = s;
      sh.stop = true;
      break;
    }
  }
  absl::MutexLock l(&sh.mu);
  sh.latencies.insert(sh.latencies.end(), lat.begin(), lat.end());
}

// One heartbeat transaction (see load_generator.h); the key is unique, so
// a lock conflict can only be transient and is retried.
absl::Status Heartbeat(Shared& sh) {
  const std::vector<std::string>& vols = *sh.volumes;
  for (int attempt = 0;; ++attempt) {
    RDF_ASSIGN_OR_RETURN(std::unique_ptr<Transaction> t, sh.store->Begin());
    const int64_t written_us = Clock::Real()->NowMicros();
    const std::string key = absl::StrFormat("hb:%016d", written_us);
    const std::string value = absl::StrCat(t->id(), ":", vols.size(), ":");
    absl::Status s;
    for (const std::string& vol : vols) {
      s = t->Upsert(vol, kLoadFile, key, value);
      if (!s.ok()) break;
    }
    if (s.ok()) s = t->Commit();
    if (s.ok()) {
      sh.heartbeats.fetch_add(1);
      sh.last_heartbeat_us = written_us;
    }
    if (s.ok() || !absl::IsAborted(s) || attempt >= 1000) return s;
    t->Abort().IgnoreError();
  }
}

// Commits a heartbeat every heartbeat_ms until the load stops.
void HeartbeatLoop(Shared& sh) {
  Clock* clock = Clock::Real();
  const int64_t interval_us = static_cast<int64_t>(sh.opt->heartbeat_ms) * 1000;
  int64_t next_us = clock->MonotonicMicros();
  while (!sh.stop.load()) {
    int64_t now = clock->MonotonicMicros();
    if (now < next_us) {
      clock->SleepMicros(std::min<int64_t>(10'000, next_us - now));
      continue;
    }
    next_us += interval_us;
    absl::Status s = Heartbeat(sh);
    if (!s.ok()) {
      absl::MutexLock l(&sh.mu);
      if (sh.error.ok()) sh.error = s;
      sh.stop = true;
    }
  }
}

int64_t Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

}  // namespace

absl::StatusOr<LoadResult> RunLoad(Store* store,
                                   const std::vector<std::string>& volumes,
                                   const LoadOptions& options) {
  if (volumes.empty()) return absl::InvalidArgumentError("no volumes to load");
  for (const std::string& v : volumes) {
    if (!store->FileExists(v, kLoadFile)) {
      absl::Status s = store->CreateFile(v, kLoadFile);
      if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    }
  }
  Shared sh;
  sh.store = store;
  sh.volumes = &volumes;
  sh.opt = &options;
  if (!options.commit_log.empty()) {
    sh.commit_log_fd = open(options.commit_log.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (sh.commit_log_fd < 0) {
      return ErrnoToStatus(errno, absl::StrCat("open ", options.commit_log));
    }
  }
  Clock* clock = Clock::Real();
  uint64_t fsyncs0 = store->stats().fsyncs;
  int64_t t0 = clock->MonotonicMicros();
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < std::max<uint64_t>(1, options.clients); ++i) {
    threads.emplace_back([&sh, i] { Client(sh, i); });
  }
  std::thread heartbeats;
  if (options.heartbeat_ms > 0) heartbeats = std::thread([&sh] { HeartbeatLoop(sh); });
  // Progress and the time limit, from this thread.
  int64_t next_report = t0 + 1'000'000;
  while (true) {
    bool done;
    uint64_t finished = sh.committed.load() + sh.aborted.load();
    int64_t now = clock->MonotonicMicros();
    if (options.seconds > 0) {
      done = now - t0 >= options.seconds * 1e6 || sh.stop.load();
    } else {
      done = finished >= options.txns || sh.stop.load();
    }
    if (done) break;
    if (options.progress && now >= next_report) {
      double secs = (now - t0) / 1e6;
      std::fprintf(stderr,
                   "rdf-load: %.0f s committed %llu (%.0f txn/s, %.0f rows/s) aborted %llu\n",
                   secs, static_cast<unsigned long long>(sh.committed.load()),
                   sh.committed.load() / secs, sh.rows.load() / secs,
                   static_cast<unsigned long long>(sh.aborted.load()));
      next_report += 1'000'000;
    }
    clock->SleepMicros(10'000);
  }
  sh.stop = true;
  for (std::thread& t : threads) t.join();
  if (sh.commit_log_fd >= 0) close(sh.commit_log_fd);
  int64_t t1 = clock->MonotonicMicros();
  if (heartbeats.joinable()) {
    heartbeats.join();
    // The last heartbeat follows every load transaction.
    absl::Status s = sh.error_free() ? Heartbeat(sh) : absl::OkStatus();
    absl::MutexLock l(&sh.mu);
    if (sh.error.ok()) sh.error = s;
  }
  absl::MutexLock l(&sh.mu);
  if (!sh.error.ok()) return sh.error;
  LoadResult r;
  r.committed = sh.committed.load();
  r.aborted = sh.aborted.load();
  r.retried = sh.retried.load();
  r.rows = sh.rows.load();
  r.seconds = (t1 - t0) / 1e6;
  r.txn_per_s = r.seconds > 0 ? r.committed / r.seconds : 0;
  r.rows_per_s = r.seconds > 0 ? r.rows / r.seconds : 0;
  r.commit_p50_us = Percentile(sh.latencies, 0.50);
  r.commit_p99_us = Percentile(sh.latencies, 0.99);
  r.commit_max_us = sh.latencies.empty()
                        ? 0
                        : *std::max_element(sh.latencies.begin(), sh.latencies.end());
  uint64_t fsyncs = store->stats().fsyncs - fsyncs0;
  r.fsyncs_per_commit = r.committed > 0 ? static_cast<double>(fsyncs) / r.committed : 0;
  r.heartbeats = sh.heartbeats.load();
  r.last_heartbeat_us = sh.last_heartbeat_us.load();
  return r;
}

std::string LoadResultJson(const LoadResult& r) {
  return absl::StrFormat(
      "{\"committed\":%d,\"aborted\":%d,\"retried\":%d,\"rows\":%d,"
      "\"seconds\":%.3f,\"txn_per_s\":%.1f,\"rows_per_s\":%.1f,"
      "\"commit_p50_us\":%d,\"commit_p99_us\":%d,\"commit_max_us\":%d,"
      "\"fsyncs_per_commit\":%.3f,\"heartbeats\":%d,\"last_heartbeat_us\":%d}",
      r.committed, r.aborted, r.retried, r.rows, r.seconds, r.txn_per_s,
      r.rows_per_s, r.commit_p50_us, r.commit_p99_us, r.commit_max_us,
      r.fsyncs_per_commit, r.heartbeats, r.last_heartbeat_us);
}

}  // namespace rdf::tmf
