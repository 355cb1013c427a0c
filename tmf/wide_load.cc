#include "tmf/wide_load.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <deque>
#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rdf::tmf {
namespace {

constexpr int kDdlFiles = 4;

// The commit log: one write(2) per line, appended.
class CommitLog {
 public:
  absl::Status Open(const std::string& path) {
    if (path.empty()) return absl::OkStatus();
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) return absl::InternalError(absl::StrCat("cannot open commit log ", path));
    return absl::OkStatus();
  }
  ~CommitLog() {
    if (fd_ >= 0) ::close(fd_);
  }
  void Line(const std::string& line) {
    if (fd_ < 0) return;
    std::string l = line + "\n";
    if (::write(fd_, l.data(), l.size()) < 0) {
      // The checker then sees the transaction as unknown; nothing else to do.
    }
  }

 private:
  int fd_ = -1;
};

struct Shared {
  Store* store = nullptr;
  const std::vector<std::string>* volumes = nullptr;
  WideLoadOptions opt;
  CommitLog log;
  absl::Time start, deadline;
  std::atomic<uint64_t> committed{0}, aborted{0}, failed{0}, unknown{0}, records{0}, bytes{0},
      largest{0}, max_open{0}, ddl{0}, ddl_in_use{0}, next_held{0};
  std::atomic<bool> stop{false};

  void NoteLargest(uint64_t n) {
    uint64_t cur = largest.load();
    while (n > cur && !largest.compare_exchange_weak(cur, n)) {
    }
  }
  // Bursts and idle periods: sleeps through an idle period.
  void Pace() {
    if (opt.burst_ms == 0 || opt.idle_ms == 0) return;
    const int64_t period = static_cast<int64_t>(opt.burst_ms + opt.idle_ms);
    const int64_t in = absl::ToInt64Milliseconds(absl::Now() - start) % period;
    if (in >= static_cast<int64_t>(opt.burst_ms)) {
      absl::Time wake = absl::Now() + absl::Milliseconds(period - in);
      absl::SleepFor(std::min(wake, deadline) - absl::Now());
    }
  }
};

// 90% of values up to 256 bytes, 9% log-uniform up to 64 KiB, 1% log-uniform
// up to the largest; 2% are empty.
uint64_t ValueLength(std::mt19937_64& rng, uint64_t max) {
  std::uniform_real_distribution<double> u(0, 1);
  const double p = u(rng);
  auto log_uniform = [&](uint64_t hi) {
    return static_cast<uint64_t>(std::exp(u(rng) * std::log(static_cast<double>(hi) + 1))) - 1;
  };
  uint64_t n;
  if (p < 0.02) {
    n = 0;
  } else if (p < 0.92) {
    n = rng() % 257;
  } else if (p < 0.99) {
    n = log_uniform(64 << 10);
  } else {
    n = log_uniform(max);
  }
  return std::min(n, max);
}

// Ends `t` after a failed Commit: "A" when it is certainly not committed,
// nothing (unknown) when its COMMIT was written but not confirmed durable.
void AfterFailedCommit(Shared& sh, Transaction* t, const absl::Status& commit) {
  absl::Status a = t->Abort();
  const bool still_open = a.ok() || !absl::IsFailedPrecondition(a);
  if (still_open || !absl::StrContains(commit.message(), "not yet durable")) {
    sh.log.Line(absl::StrCat("A ", t->id()));
    sh.failed.fetch_add(1);
  } else {
    sh.unknown.fetch_add(1);
  }
}

// Commits `t` with the log lines around it. True when committed.
bool CommitLogged(Shared& sh, Transaction* t, const std::vector<std::string>& ops) {
  sh.log.Line(absl::StrCat("U ", t->id(), " ", absl::StrJoin(ops, " ")));
  absl::Status c = t->Commit();
  if (!c.ok()) {
    AfterFailedCommit(sh, t, c);
    return false;
  }
  sh.log.Line(absl::StrCat("C ", t->id()));
  sh.committed.fetch_add(1);
  return true;
}

// One client's transactions until the deadline.
void Client(Shared& sh, uint64_t client) {
  std::mt19937_64 rng(sh.opt.seed * 1000003 + client);
  const std::vector<std::string>& vols = *sh.volumes;
  // --rate: each client paces its share.
  const absl::Duration every =
      sh.opt.rate > 0 ? absl::Seconds(static_cast<double>(sh.opt.clients) / sh.opt.rate)
                      : absl::ZeroDuration();
  absl::Time next = absl::Now();
  while (absl::Now() < sh.deadline && !sh.stop.load()) {
    sh.Pace();
    if (every > absl::ZeroDuration()) {
      const absl::Time now = absl::Now();
      if (next > now) absl::SleepFor(next - now);
      next = std::max(next, now - every) + every;
    }
    absl::StatusOr<std::unique_ptr<Transaction>> tr = sh.store->Begin();
    if (!tr.ok()) return;
    Transaction* t = tr->get();
    std::vector<std::string> ops;
    uint64_t rows = 0, bytes = 0;
    absl::Status s;
    const bool ddl_file = sh.opt.ddl && rng() % 20 == 0;
    const int n = ddl_file ? 1 : 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n && s.ok(); ++i) {
      const uint64_t kind = rng() % 100;
      if (ddl_file) {
        const std::string& vol = vols[rng() % vols.size()];
        const std::string file = absl::StrCat("D", rng() % kDdlFiles);
        const std::string key = absl::StrCat(sh.opt.seed, ".", client, ":d", rng() % 100);
        const uint64_t len = rng() % 200;
        s = t->Upsert(vol, file, key, WideValue(t->id(), key, len));
        ops.push_back(absl::StrCat(vol, "/", file, "/", key, "=", len));
        ++rows;
        bytes += len;
      } else if (kind < 25) {
        const uint64_t c = rng() % std::max<uint64_t>(1, sh.opt.hot_keys);
        const std::string& vol = vols[c % vols.size()];
        const std::string key = absl::StrCat("hot:", sh.opt.seed, ".", c);
        absl::StatusOr<std::optional<std::string>> cur = t->ReadForUpdate(vol, kHotFile, key);
        if (!cur.ok()) {
          s = cur.status();
          break;
        }
        uint64_t v = 0;
        if (cur->has_value() && !absl::SimpleAtoi(**cur, &v)) v = 0;
        s = t->Upsert(vol, kHotFile, key, absl::StrCat(v + 1));
        ops.push_back(absl::StrCat(vol, "/", kHotFile, "/", key, "+1"));
        ++rows;
      } else {
        const uint64_t k = rng() % std::max<uint64_t>(1, sh.opt.keys_per_client);
        const std::string& vol = vols[k % vols.size()];
        const std::string key = absl::StrCat(sh.opt.seed, ".", client, ":", k);
        absl::StatusOr<std::optional<std::string>> cur = t->ReadForUpdate(vol, kWideFile, key);
        if (!cur.ok()) {
          s = cur.status();
          break;
        }
        const uint64_t len = ValueLength(rng, sh.opt.max_value_bytes);
        const uint64_t what = rng() % 3;
        if (!cur->has_value()) {
          s = t->Insert(vol, kWideFile, key, WideValue(t->id(), key, len));
        } else if (what == 0) {
          s = t->Delete(vol, kWideFile, key);
        } else if (what == 1) {
          s = t->Update(vol, kWideFile, key, WideValue(t->id(), key, len));
        } else {
          s = t->Upsert(vol, kWideFile, key, WideValue(t->id(), key, len));
        }
        const bool del = cur->has_value() && what == 0;
        ops.push_back(absl::StrCat(vol, "/", kWideFile, "/", key, "=", del ? "-" : absl::StrCat(len)));
        ++rows;
        if (!del) {
          bytes += len;
          sh.NoteLargest(len);
        }
      }
    }
    if (!s.ok()) {
      // Deadlock, lock timeout, a file purged meanwhile, a transaction too
      // large: the transaction is aborted.
      t->Abort().IgnoreError();
      sh.failed.fetch_add(1);
      continue;
    }
    if (static_cast<double>(rng() % 10000) < sh.opt.abort_percent * 100) {
      t->Abort().IgnoreError();
      sh.aborted.fetch_add(1);
      continue;
    }
    if (CommitLogged(sh, t, ops)) {
      sh.records.fetch_add(rows);
      sh.bytes.fetch_add(bytes);
    }
  }
}

// Keeps opt.open_txns transactions open, each for hold_ms.
void Holder(Shared& sh) {
  struct Held {
    std::unique_ptr<Transaction> t;
    absl::Time began;
    std::string op;
  };
  std::deque<Held> open;
  std::mt19937_64 rng(sh.opt.seed * 7919 + 1);
  const std::vector<std::string>& vols = *sh.volumes;
  const absl::Duration hold = absl::Milliseconds(sh.opt.hold_ms);
  auto end_one = [&](Held& h, bool commit) {
    if (!commit) {
      h.t->Abort().IgnoreError();
      sh.aborted.fetch_add(1);
      return;
    }
    if (CommitLogged(sh, h.t.get(), {h.op})) sh.records.fetch_add(1);
  };
  while (absl::Now() < sh.deadline && !sh.stop.load()) {
    while (open.size() < sh.opt.open_txns && absl::Now() < sh.deadline) {
      absl::StatusOr<std::unique_ptr<Transaction>> t = sh.store->Begin();
      if (!t.ok()) return;
      const uint64_t n = sh.next_held.fetch_add(1);
      const std::string& vol = vols[n % vols.size()];
      const std::string key = absl::StrCat(sh.opt.seed, ".h:", n);
      const uint64_t max = sh.opt.open_max_value_bytes;
      const uint64_t len = max < 64 ? rng() % (max + 1) : ValueLength(rng, max);
      // One in four writes into a DDL file when there is one: a purge of it
      // then meets open writers (error 12) until they end.
      std::string file = kWideFile;
      if (sh.opt.ddl && n % 4 == 0) {
        const std::string d = absl::StrCat("D", rng() % kDdlFiles);
        if (sh.store->FileExists(vol, d)) file = d;
      }
      absl::Status s = (*t)->Insert(vol, file, key, WideValue((*t)->id(), key, len));
      if (!s.ok()) {
        (*t)->Abort().IgnoreError();
        sh.failed.fetch_add(1);
        break;
      }
      open.push_back({*std::move(t), absl::Now(), absl::StrCat(vol, "/", file, "/", key, "=", len)});
      uint64_t cur = sh.max_open.load();
      if (open.size() > cur) sh.max_open.store(open.size());
    }
    while (!open.empty() && absl::Now() - open.front().began >= hold) {
      end_one(open.front(), rng() % 10 != 0);
      open.pop_front();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  while (!open.empty()) {
    end_one(open.front(), true);
    open.pop_front();
  }
}

void Ddl(Shared& sh) {
  std::mt19937_64 rng(sh.opt.seed * 104729 + 3);
  const std::vector<std::string>& vols = *sh.volumes;
  while (absl::Now() < sh.deadline && !sh.stop.load()) {
    absl::SleepFor(absl::Milliseconds(100 + rng() % 200));
    const std::string& vol = vols[rng() % vols.size()];
    const std::string file = absl::StrCat("D", rng() % kDdlFiles);
    const bool exists = sh.store->FileExists(vol, file);
    absl::Status s = exists ? sh.store->PurgeFile(vol, file) : sh.store->CreateFile(vol, file);
    if (s.ok()) {
      sh.ddl.fetch_add(1);
      sh.log.Line(absl::StrCat("D ", vol, " ", file, exists ? " PURGE" : " CREATE"));
    } else if (absl::IsFailedPrecondition(s)) {
      sh.ddl_in_use.fetch_add(1);  // error 12: in use; tried again later
    }
  }
}

}  // namespace

std::string WideValue(uint64_t txid, const std::string& key, uint64_t len) {
  const std::string unit = absl::StrCat(txid, ":", key, ";");
  std::string v;
  v.reserve(len);
  while (v.size() < len) v.append(unit, 0, std::min<size_t>(unit.size(), len - v.size()));
  return v;
}

absl::StatusOr<WideLoadResult> RunWideLoad(Store* store, const std::vector<std::string>& volumes,
                                           const WideLoadOptions& options) {
  if (volumes.empty()) return absl::InvalidArgumentError("no protected volume to load");
  for (const std::string& v : volumes) {
    for (const char* f : {kWideFile, kHotFile}) {
      if (store->FileExists(v, f)) continue;
      absl::Status s = store->CreateFile(v, f);
      if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
    }
  }
  Shared sh;
  sh.store = store;
  sh.volumes = &volumes;
  sh.opt = options;
  if (absl::Status s = sh.log.Open(options.commit_log); !s.ok()) return s;
  sh.start = absl::Now();
  sh.deadline = sh.start + absl::Seconds(options.seconds);
  std::vector<std::thread> threads;
  for (uint64_t c = 0; c < options.clients; ++c) {
    threads.emplace_back([&sh, c] { Client(sh, c); });
  }
  if (options.open_txns > 0) threads.emplace_back([&sh] { Holder(sh); });
  if (options.ddl) threads.emplace_back([&sh] { Ddl(sh); });
  std::thread progress;
  if (options.progress) {
    progress = std::thread([&sh] {
      while (absl::Now() < sh.deadline + absl::Seconds(1) && !sh.stop.load()) {
        absl::SleepFor(absl::Seconds(1));
        std::fprintf(stderr,
                     "rdf-load wide: %llu committed, %llu aborted, %llu failed, %llu open (max), "
                     "%llu DDL, largest value %llu\n",
                     (unsigned long long)sh.committed.load(), (unsigned long long)sh.aborted.load(),
                     (unsigned long long)sh.failed.load(), (unsigned long long)sh.max_open.load(),
                     (unsigned long long)sh.ddl.load(), (unsigned long long)sh.largest.load());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  sh.stop = true;
  if (progress.joinable()) progress.join();
  WideLoadResult r;
  r.committed = sh.committed.load();
  r.aborted = sh.aborted.load();
  r.failed = sh.failed.load();
  r.unknown = sh.unknown.load();
  r.records = sh.records.load();
  r.bytes = sh.bytes.load();
  r.largest_value = sh.largest.load();
  r.max_open = sh.max_open.load();
  r.ddl = sh.ddl.load();
  r.ddl_in_use = sh.ddl_in_use.load();
  r.seconds = absl::ToDoubleSeconds(absl::Now() - sh.start);
  return r;
}

std::string WideLoadResultJson(const WideLoadResult& r) {
  return absl::StrCat(R"({"committed":)", r.committed, R"(,"aborted":)", r.aborted,
                      R"(,"failed":)", r.failed, R"(,"unknown":)", r.unknown, R"(,"records":)",
                      r.records, R"(,"bytes":)", r.bytes, R"(,"largest_value":)", r.largest_value,
                      R"(,"max_open":)", r.max_open, R"(,"ddl":)", r.ddl, R"(,"ddl_in_use":)",
                      r.ddl_in_use, R"(,"seconds":)", r.seconds, "}");
}

}  // namespace rdf::tmf
