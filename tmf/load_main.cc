// rdf-load: the load generator for a primary node (see load_generator.h).
#include <cstdio>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "common/base/cli.h"
#include "common/config/config.h"
#include "tmf/load_generator.h"
#include "tmf/store.h"
#include "tmf/wide_load.h"

int main(int argc, char** argv) {
  using namespace rdf;
  std::string config_path, node, mode = "insert", commit_log;
  uint64_t txns = 1000, rows = 5, value_bytes = 100, min_value_bytes = 0, clients = 1,
           keys = 1'000'000, seed = 1, think_us = 0, hold_us = 0, heartbeat_ms = 0;
  uint64_t max_value_bytes = 1 << 20, open_txns = 0, hold_ms = 3000, open_max_value_bytes = 63,
           burst_ms = 0, idle_ms = 0, hot_keys = 8, client_keys = 2000;
  bool ddl = false;
  double abort_percent = 0, rate = 0, seconds = 0;
  bool quiet = false;
  cli::Parser p(
      "rdf-load --config FILE [--node NAME] [options]",
      "Runs transactions against the primary's volumes through tmf: opens (and\n"
      "recovers) the primary, runs the load, prints progress each second on\n"
      "stderr and one JSON summary line on stdout. --txns 0 only recovers.");
  p.AddString("config", &config_path, "system configuration (text proto)");
  p.AddString("node", &node, "node to load (default: the primary)");
  p.AddUint("txns", &txns, "transactions to run (committed + aborted)");
  p.AddDouble("seconds", &seconds, "run this many seconds instead of --txns");
  p.AddUint("rows-per-txn", &rows, "records per transaction (K)");
  p.AddUint("value-bytes", &value_bytes, "bytes per value (with --min-value-bytes: the largest)");
  p.AddUint("min-value-bytes", &min_value_bytes,
            "insert, upsert, mixed: draw each value's size log-uniformly from this to "
            "--value-bytes (0: every value --value-bytes)");
  p.AddUint("clients", &clients, "concurrent clients (threads)");
  p.AddString("mode", &mode, "insert | upsert | mixed | wide (docs/tmf.md)");
  p.AddUint("max-value-bytes", &max_value_bytes,
            "wide: the largest value (sizes 0..this, most small)");
  p.AddUint("open-txns", &open_txns, "wide: keep this many transactions open at once");
  p.AddUint("hold-ms", &hold_ms, "wide: how long each of --open-txns stays open");
  p.AddUint("open-max-value-bytes", &open_max_value_bytes,
            "wide: largest value an open transaction writes (from 64 on drawn as the clients' "
            "values; default 63)");
  p.AddBool("ddl", &ddl, "wide: create and purge files D0..D3 while clients write them");
  p.AddUint("burst-ms", &burst_ms, "wide: with --idle-ms, alternate bursts and idle periods");
  p.AddUint("idle-ms", &idle_ms, "wide: idle period between bursts");
  p.AddUint("hot-keys", &hot_keys, "wide: shared counters (deadlocks)");
  p.AddUint("client-keys", &client_keys, "wide: private keys per client");
  p.AddUint("keys", &keys, "key space for upsert and mixed");
  p.AddDouble("abort-percent", &abort_percent, "share of transactions aborted on purpose");
  p.AddDouble("rate", &rate, "transactions per second over all clients (0: unlimited)");
  p.AddUint("seed", &seed, "random seed");
  p.AddUint("hold-us", &hold_us,
            "client 0 keeps its first transaction open this long (microseconds); in "
            "mixed mode its i-th record goes to volume i mod N");
  p.AddUint("think-us", &think_us,
            "pause after each operation, microseconds (transactions stay open longer)");
  p.AddString("commit-log", &commit_log, "append each committed transaction id to this file");
  p.AddUint("heartbeat-ms", &heartbeat_ms,
            "also commit a heartbeat (key hb:<wall us> on every volume) this often, and once after");
  p.AddBool("quiet", &quiet, "no progress lines");
  p.Require("config");
  std::vector<std::string> rest = p.Parse(argc, argv);
  if (!rest.empty()) p.Fail(absl::StrCat("unexpected argument '", rest[0], "'"));
  const bool wide = mode == "wide";
  absl::StatusOr<tmf::LoadMode> m = tmf::ParseLoadMode(wide ? "insert" : mode);
  if (!m.ok()) p.Fail(m.status().message());
  if (wide && seconds <= 0) p.Fail("--mode wide runs for --seconds S");
  if (max_value_bytes > (256u << 20)) p.Fail("--max-value-bytes must be at most 256 MiB");
  if (open_max_value_bytes > (256u << 20)) {
    p.Fail("--open-max-value-bytes must be at most 256 MiB");
  }
  if (rows == 0) p.Fail("--rows-per-txn must be at least 1");
  if (clients == 0 || clients > 1024) p.Fail("--clients must be 1..1024");
  if (abort_percent < 0 || abort_percent > 100) p.Fail("--abort-percent must be 0..100");
  if (rate < 0) p.Fail("--rate must not be negative");
  if (keys == 0) p.Fail("--keys must be at least 1");
  if (value_bytes > (16u << 20)) p.Fail("--value-bytes must be at most 16 MiB");
  if (min_value_bytes > value_bytes) p.Fail("--min-value-bytes must be at most --value-bytes");

  absl::StatusOr<config::Config> cfg = config::Load(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "rdf-load: %s\n", std::string(cfg.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<const proto::NodeConfig*> n =
      config::SelectNode(*cfg, node, proto::PRIMARY);
  if (!n.ok()) {
    std::fprintf(stderr, "rdf-load: %s\n", std::string(n.status().message()).c_str());
    return 1;
  }
  tmf::StoreOptions so;
  so.config = &*cfg;
  so.node = (*n)->name();
  absl::StatusOr<std::unique_ptr<tmf::Store>> store = tmf::Store::Open(so);
  if (!store.ok()) {
    std::fprintf(stderr, "rdf-load: cannot open the primary: %s\n",
                 std::string(store.status().message()).c_str());
    return 1;
  }
  const tmf::RecoveryReport& rec = (*store)->recovery();
  if (rec.start_asn > rec.end_asn) {
    std::fprintf(stderr, "rdf-load: primary %s opened: nothing to recover (audit end %llu)\n",
                 so.node.c_str(), (unsigned long long)rec.end_asn);
  } else {
    std::fprintf(stderr,
                 "rdf-load: primary %s opened: audit %llu..%llu scanned, %llu transactions "
                 "redone, %llu backed out\n",
                 so.node.c_str(), (unsigned long long)rec.start_asn,
                 (unsigned long long)rec.end_asn,
                 (unsigned long long)rec.redone_transactions,
                 (unsigned long long)rec.backed_out_transactions);
  }
  if (txns == 0 && seconds <= 0) {
    std::printf("%s\n", tmf::LoadResultJson({}).c_str());
    return 0;
  }
  std::vector<std::string> volumes;
  for (const proto::VolumeConfig* v : cfg->ProtectedVolumes()) volumes.push_back(v->name());
  if (wide) {
    // Only volumes whose every file of the workload is protected (include
    // and exclude patterns): the checker holds the backup against it.
    std::vector<std::string> shipped;
    for (const std::string& v : volumes) {
      bool all = true;
      for (const char* f : {tmf::kWideFile, tmf::kHotFile, "D0", "D1", "D2", "D3"}) {
        all = all && cfg->IsProtected(v, f);
      }
      if (all) shipped.push_back(v);
    }
    if (shipped.empty()) {
      std::fprintf(stderr, "rdf-load: no volume protects files WIDE, HOT and D0..D3\n");
      return 1;
    }
    volumes = shipped;
    tmf::WideLoadOptions wo;
    wo.seed = seed;
    wo.seconds = seconds;
    wo.clients = clients;
    wo.max_value_bytes = max_value_bytes;
    wo.abort_percent = abort_percent;
    wo.keys_per_client = client_keys;
    wo.hot_keys = hot_keys;
    wo.open_txns = open_txns;
    wo.hold_ms = hold_ms;
    wo.open_max_value_bytes = open_max_value_bytes;
    wo.ddl = ddl;
    wo.burst_ms = burst_ms;
    wo.idle_ms = idle_ms;
    wo.rate = rate;
    wo.commit_log = commit_log;
    wo.progress = !quiet;
    absl::StatusOr<tmf::WideLoadResult> r = tmf::RunWideLoad(store->get(), volumes, wo);
    if (!r.ok()) {
      std::fprintf(stderr, "rdf-load: %s\n", std::string(r.status().message()).c_str());
      return 1;
    }
    std::printf("%s\n", tmf::WideLoadResultJson(*r).c_str());
    std::fflush(stdout);
    return 0;
  }
  tmf::LoadOptions lo;
  lo.txns = txns;
  lo.seconds = seconds;
  lo.rows_per_txn = rows;
  lo.value_bytes = value_bytes;
  lo.min_value_bytes = min_value_bytes;
  lo.clients = clients;
  lo.mode = *m;
  lo.keys = keys;
  lo.abort_percent = abort_percent;
  lo.rate = rate;
  lo.seed = seed;
  lo.think_us = think_us;
  lo.hold_us = hold_us;
  lo.commit_log = commit_log;
  lo.heartbeat_ms = heartbeat_ms;
  lo.progress = !quiet;
  absl::StatusOr<tmf::LoadResult> r = tmf::RunLoad(store->get(), volumes, lo);
  if (!r.ok()) {
    std::fprintf(stderr, "rdf-load: %s\n", std::string(r.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", tmf::LoadResultJson(*r).c_str());
  std::fflush(stdout);
  return 0;
}
