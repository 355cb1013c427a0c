// tmf commit throughput: transactions of 5 upserts of 100-byte values over
// 1,000,000 keys, fsync on, with 1, 4 and 16 clients, each on a fresh
// primary in a temporary folder. Prints one JSON line.
//   rdf-bench-tmf [--seconds S] [--clients 1,4,16] [--dir /tmp]
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/base/cli.h"
#include "common/config/config.h"
#include "tmf/load_generator.h"
#include "tmf/store.h"

int main(int argc, char** argv) {
  using namespace rdf;
  double seconds = 10;
  std::string clients_list = "1,4,16", base = "/tmp";
  cli::Parser p("rdf-bench-tmf [--seconds S] [--clients LIST] [--dir DIR]",
                "Measures tmf commit throughput (5 upserts of 100 bytes over 1M keys,\n"
                "fsync on) per client count; prints one JSON line.");
  p.AddDouble("seconds", &seconds, "seconds per client count");
  p.AddString("clients", &clients_list, "comma-separated client counts");
  p.AddString("dir", &base, "folder for the temporary primaries");
  p.Parse(argc, argv);
  std::string json = "{\"bench\":\"tmf_commit\",\"workload\":\"5 upserts x 100 B over 1M keys\",\"results\":[";
  bool first = true;
  for (absl::string_view c : absl::StrSplit(clients_list, ',')) {
    uint64_t clients;
    if (!absl::SimpleAtoi(c, &clients) || clients == 0) p.Fail("bad --clients");
    std::string dir = absl::StrFormat("%s/rdf-bench-tmf.%d.%d", base, getpid(), clients);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    auto cfg = config::Parse(R"(
      system: "bench"
      nodes { name: "primary" role: PRIMARY host: "127.0.0.1" data_dir: "p" key_file: "p.key" }
      nodes { name: "backup" role: BACKUP host: "127.0.0.1" audit_port: 17999 data_dir: "b" key_file: "b.key" }
      volumes { name: "$DATA01" } volumes { name: "$DATA02" }
      volumes { name: "$DATA03" } volumes { name: "$DATA04" }
    )", dir + "/rdf.textproto");
    if (!cfg.ok()) { std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str()); return 1; }
    absl::StatusOr<tmf::LoadResult> r;
    {
      tmf::StoreOptions so;
      so.config = &*cfg;
      so.node = "primary";
      so.log_events = false;
      auto store = tmf::Store::Open(so);
      if (!store.ok()) { std::fprintf(stderr, "%s\n", store.status().ToString().c_str()); return 1; }
      tmf::LoadOptions lo;
      lo.seconds = seconds;
      lo.rows_per_txn = 5;
      lo.value_bytes = 100;
      lo.clients = clients;
      lo.mode = tmf::LoadMode::kUpsert;
      lo.keys = 1'000'000;
      lo.progress = false;
      std::vector<std::string> vols = {"$DATA01", "$DATA02", "$DATA03", "$DATA04"};
      r = tmf::RunLoad(store->get(), vols, lo);
    }
    std::filesystem::remove_all(dir);
    if (!r.ok()) { std::fprintf(stderr, "%s\n", r.status().ToString().c_str()); return 1; }
    std::fprintf(stderr, "clients %llu: %s\n", (unsigned long long)clients,
                 tmf::LoadResultJson(*r).c_str());
    absl::StrAppend(&json, first ? "" : ",",
                    absl::StrFormat("{\"clients\":%d,\"rows_per_s\":%.0f,\"txn_per_s\":%.0f,"
                                    "\"commit_p50_us\":%d,\"commit_p99_us\":%d,"
                                    "\"fsyncs_per_commit\":%.3f}",
                                    clients, r->rows_per_s, r->txn_per_s, r->commit_p50_us,
                                    r->commit_p99_us, r->fsyncs_per_commit));
    first = false;
  }
  std::printf("%s]}\n", json.c_str());
  return 0;
}
