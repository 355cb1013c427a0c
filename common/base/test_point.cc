#include "common/base/test_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rdf {
namespace {

struct Point {
  std::string name;
  int64_t at = 1;        // fires the at-th time it is reached
  int64_t sleep_ms = -1;  // -1: kill
  std::optional<std::string> value;
  std::atomic<int64_t> reached{0};
};

struct Table {
  std::vector<std::unique_ptr<Point>> points;  // fixed once parsed
};

std::string Parse(absl::string_view spec, Table* out) {
  for (absl::string_view entry : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    entry = absl::StripAsciiWhitespace(entry);
    auto p = std::make_unique<Point>();
    if (size_t eq = entry.find('='); eq != absl::string_view::npos &&
                                     entry.find(':') == absl::string_view::npos) {
      p->name = std::string(entry.substr(0, eq));
      p->value = std::string(entry.substr(eq + 1));
    } else {
      absl::string_view head = entry, action;
      if (size_t c = entry.find(':'); c != absl::string_view::npos) {
        head = entry.substr(0, c);
        action = entry.substr(c + 1);
      }
      if (size_t at = head.find('@'); at != absl::string_view::npos) {
        if (!absl::SimpleAtoi(head.substr(at + 1), &p->at) || p->at < 1) {
          return absl::StrCat("bad count in \"", entry, "\"");
        }
        head = head.substr(0, at);
      }
      p->name = std::string(head);
      if (!action.empty()) {
        if (!absl::ConsumePrefix(&action, "sleep=") || !absl::SimpleAtoi(action, &p->sleep_ms) ||
            p->sleep_ms < 0) {
          return absl::StrCat("bad action in \"", entry, "\" (only sleep=MS)");
        }
      }
    }
    if (p->name.empty()) return absl::StrCat("no name in \"", entry, "\"");
    out->points.push_back(std::move(p));
  }
  return "";
}

Table* table = nullptr;
std::once_flag once;

Table& Points() {
  std::call_once(once, [] {
    if (table != nullptr) return;  // armed by the unit test
    table = new Table;             // never freed: used until exit
    const char* spec = std::getenv("RDF_TEST_POINTS");
    if (spec == nullptr) return;
    const std::string error = Parse(spec, table);
    if (!error.empty()) {
      std::fprintf(stderr, "RDF_TEST_POINTS: %s\n", error.c_str());
      std::abort();  // a test that arms a point it misspelled must not pass
    }
  });
  return *table;
}

Point* Find(absl::string_view name) {
  for (auto& p : Points().points) {
    if (p->name == name) return p.get();
  }
  return nullptr;
}

// In-process callbacks (test_point_internal::SetCallback). `any_callback`
// keeps TestPoint to one relaxed load while none is set, as in production.
using Callback = std::shared_ptr<const std::function<void()>>;
std::atomic<bool> any_callback{false};
std::mutex callbacks_mu;
std::map<std::string, Callback>& Callbacks() {
  static auto* callbacks = new std::map<std::string, Callback>;  // never freed
  return *callbacks;
}

// The callback on `name`, if any. A copy of the pointer, so that the
// callback runs without callbacks_mu held and may replace itself.
Callback FindCallback(absl::string_view name) {
  if (!any_callback.load(std::memory_order_relaxed)) return nullptr;
  std::lock_guard<std::mutex> l(callbacks_mu);
  auto it = Callbacks().find(std::string(name));
  return it == Callbacks().end() ? nullptr : it->second;
}

}  // namespace

void TestPoint(absl::string_view name) {
  if (Callback callback = FindCallback(name)) (*callback)();
  Table& t = Points();
  if (t.points.empty()) return;
  for (auto& p : t.points) {
    if (p->name != name || p->value.has_value()) continue;
    if (p->reached.fetch_add(1) + 1 != p->at) continue;
    if (p->sleep_ms >= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(p->sleep_ms));
    } else {
      kill(getpid(), SIGKILL);
    }
  }
}

bool TestPointArmed(absl::string_view name) {
  return Find(name) != nullptr || FindCallback(name) != nullptr;
}

std::optional<std::string> TestPointValue(absl::string_view name) {
  Point* p = Find(name);
  return p == nullptr ? std::nullopt : p->value;
}

namespace test_point_internal {
std::string Arm(absl::string_view spec) {
  auto* t = new Table;
  std::string error = Parse(spec, t);
  if (!error.empty()) {
    delete t;
    return error;
  }
  table = t;  // the previous one leaks: a test-only path
  std::call_once(once, [] {});
  return "";
}

void SetCallback(absl::string_view name, std::function<void()> callback) {
  std::lock_guard<std::mutex> l(callbacks_mu);
  Callbacks()[std::string(name)] =
      std::make_shared<const std::function<void()>>(std::move(callback));
  any_callback.store(true, std::memory_order_relaxed);
}

void ClearCallbacks() {
  std::lock_guard<std::mutex> l(callbacks_mu);
  Callbacks().clear();
  any_callback.store(false, std::memory_order_relaxed);
}
}  // namespace test_point_internal

}  // namespace rdf
