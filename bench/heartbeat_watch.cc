// rdf-bench-heartbeat-watch: the backup side of bench/compare's heartbeat
// lag. rdf-load --heartbeat-ms commits transactions that upsert key
// "hb:<wall clock µs>" into file LOAD of every protected volume. This polls
// every backup volume through read-only LMDB transactions (which never block
// the updaters) and, when a heartbeat is present on every volume (its whole
// transaction applied), prints "<wall clock µs seen> <µs written>" once per
// heartbeat, oldest first, until SIGTERM/SIGINT or --seconds.
#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/cli.h"
#include "common/config/config.h"
#include "common/lmdb/env.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

constexpr char kPrefix[] = "hb:";
constexpr char kFile[] = "LOAD";

struct Vol {
  std::unique_ptr<rdf::lmdb::Env> env;
  MDB_dbi dbi = 0;
};

// The newest heartbeat key on `v` (0 when none), or -1 when it cannot be
// read now (not created yet, or the map grew: reopened next time).
int64_t Newest(Vol& v) {
  auto txn = rdf::lmdb::ReadTxn::Begin(v.env.get());
  if (!txn.ok()) return -1;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open((*txn)->txn(), v.dbi, &c) != 0) return -1;
  // The last key before "hb;" (';' follows ':').
  std::string end = "hb;";
  MDB_val k = rdf::lmdb::Val(end), d;
  int rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE);
  rc = rc == 0 ? mdb_cursor_get(c, &k, &d, MDB_PREV) : mdb_cursor_get(c, &k, &d, MDB_LAST);
  int64_t t = 0;
  if (rc == 0) {
    absl::string_view key = rdf::lmdb::View(k);
    if (absl::ConsumePrefix(&key, kPrefix) && !absl::SimpleAtoi(key, &t)) t = 0;
  }
  mdb_cursor_close(c);
  return t;
}

// Heartbeat keys in (after, upto] on `v`, oldest first.
std::vector<int64_t> Between(Vol& v, int64_t after, int64_t upto) {
  std::vector<int64_t> out;
  auto txn = rdf::lmdb::ReadTxn::Begin(v.env.get());
  if (!txn.ok()) return out;
  MDB_cursor* c = nullptr;
  if (mdb_cursor_open((*txn)->txn(), v.dbi, &c) != 0) return out;
  std::string from = absl::StrFormat("hb:%016d", after + 1);
  MDB_val k = rdf::lmdb::Val(from), d;
  for (int rc = mdb_cursor_get(c, &k, &d, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    absl::string_view key = rdf::lmdb::View(k);
    int64_t t = 0;
    if (!absl::ConsumePrefix(&key, kPrefix) || !absl::SimpleAtoi(key, &t) || t > upto) break;
    out.push_back(t);
  }
  mdb_cursor_close(c);
  return out;
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path, node_name;
  uint64_t interval_us = 10'000;
  double seconds = 3600;
  rdf::cli::Parser p(
      "rdf-bench-heartbeat-watch --config FILE [--node NAME] [--interval-us N]",
      "Prints \"<µs seen> <µs written>\" for each rdf-load heartbeat once it is\n"
      "applied on every backup volume (bench/compare).");
  p.AddString("config", &config_path, "system configuration");
  p.AddString("node", &node_name, "the backup node (default: the configuration's)");
  p.AddUint("interval-us", &interval_us, "poll interval, microseconds");
  p.AddDouble("seconds", &seconds, "stop after this many seconds");
  p.Require("config");
  p.Parse(argc, argv);
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  absl::StatusOr<rdf::config::Config> cfg = rdf::config::Load(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<const rdf::proto::NodeConfig*> node =
      rdf::config::SelectNode(*cfg, node_name, rdf::proto::BACKUP);
  if (!node.ok()) {
    std::fprintf(stderr, "%s\n", std::string(node.status().message()).c_str());
    return 1;
  }
  std::map<std::string, Vol> vols;
  for (const rdf::proto::VolumeConfig* v : cfg->ProtectedVolumes()) vols[v->name()];
  int64_t last = 0;  // newest heartbeat printed
  absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (g_stop == 0 && absl::Now() < deadline) {
    int64_t seen = INT64_MAX;  // newest heartbeat present on every volume
    for (auto& [name, v] : vols) {
      if (!v.env) {
        auto e = rdf::lmdb::Env::Open(rdf::config::VolumeDir(**node, name),
                                      cfg->FindVolume(name)->map_bytes(),
                                      cfg->proto.lmdb().max_dbs());
        if (!e.ok()) { seen = 0; continue; }
        auto d = (*e)->OpenDb(kFile, false);
        if (!d.ok()) { seen = 0; continue; }  // not created on the backup yet
        v.env = *std::move(e);
        v.dbi = *d;
      }
      int64_t t = Newest(v);
      if (t < 0) v.env.reset();
      seen = std::min(seen, std::max<int64_t>(t, 0));
    }
    if (seen != INT64_MAX && seen > last) {
      long long now = absl::ToUnixMicros(absl::Now());
      for (int64_t t : Between(vols.begin()->second, last, seen)) {
        std::printf("%lld %lld\n", now, (long long)t);
      }
      last = seen;
      std::fflush(stdout);
    }
    absl::SleepFor(absl::Microseconds(interval_us));
  }
  return 0;
}
