// rdf-bench-apply-watch: for the updater benchmark. Polls every backup
// volume's __meta (updater_applied_asn) through read-only LMDB transactions
// (which never block the updaters) and prints "<wall clock µs> <volume>
// <applied ASN>" each time one moves, until SIGTERM/SIGINT or --seconds.
#include <csignal>
#include <cstdio>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/cli.h"
#include "common/config/config.h"
#include "common/lmdb/env.h"
#include "common/lmdb/volume_meta.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  std::string config_path, node_name;
  uint64_t interval_us = 1000;
  double seconds = 600;
  rdf::cli::Parser p("rdf-bench-apply-watch --config FILE [--node NAME] [--interval-us N]",
                     "Prints each change of every backup volume's updater_applied_asn\n"
                     "with the wall clock time it was seen (updater benchmark).");
  p.AddString("config", &config_path, "system configuration");
  p.AddString("node", &node_name, "the backup node (default: the configuration's)");
  p.AddUint("interval-us", &interval_us, "poll interval (default 1000)");
  p.AddDouble("seconds", &seconds, "stop after this long (default 600)");
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
  struct Vol {
    std::unique_ptr<rdf::lmdb::Env> env;
    MDB_dbi meta = 0;
    uint64_t last = 0;
  };
  std::map<std::string, Vol> vols;
  for (const rdf::proto::VolumeConfig* v : cfg->ProtectedVolumes()) vols[v->name()];
  absl::Time deadline = absl::Now() + absl::Seconds(seconds);
  while (g_stop == 0 && absl::Now() < deadline) {
    for (auto& [name, v] : vols) {
      if (!v.env) {
        auto e = rdf::lmdb::Env::Open(rdf::config::VolumeDir(**node, name),
                                      cfg->FindVolume(name)->map_bytes(),
                                      cfg->proto.lmdb().max_dbs());
        if (!e.ok()) continue;
        auto m = (*e)->OpenDb(rdf::lmdb::kMetaDb, false);
        if (!m.ok()) continue;  // the updater has not created it yet
        v.env = *std::move(e);
        v.meta = *m;
      }
      auto txn = rdf::lmdb::ReadTxn::Begin(v.env.get());
      if (!txn.ok()) {
        v.env.reset();  // e.g. the map grew: reopen
        continue;
      }
      auto asn = rdf::lmdb::GetU64(txn->get(), v.meta, rdf::kMetaAppliedAsn);
      if (asn.ok() && asn->has_value() && **asn != v.last) {
        v.last = **asn;
        std::printf("%lld %s %llu\n", (long long)absl::ToUnixMicros(absl::Now()), name.c_str(),
                    (unsigned long long)v.last);
      }
    }
    std::fflush(stdout);
    absl::SleepFor(absl::Microseconds(interval_us));
  }
  return 0;
}
