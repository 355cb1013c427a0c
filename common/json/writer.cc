#include "common/json/writer.h"

#include <cassert>
#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace rdf::json {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// The length of the valid UTF-8 sequence at the start of `s` (whose first
// byte is >= 0x80), or 0 when it is not one (RFC 3629: no overlong forms,
// no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(absl::string_view s) {
  const auto b = [&s](size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](size_t i) { return i < s.size() && (b(i) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && b(1) < 0xA0) return 0;  // overlong
    if (c == 0xED && b(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && b(1) < 0x90) return 0;  // overlong
    if (c == 0xF4 && b(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

void AppendString(absl::string_view s, std::string* out) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8SequenceLength(s.substr(i));
      if (n == 0) {
        out->append("\\ufffd");
        ++i;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\b': out->append("\\b"); break;
      case '\f': out->append("\\f"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void Writer::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (empty_.empty()) {
    assert(out_.empty() && "one value at the top");
    return;
  }
  if (!empty_.back()) out_.push_back(',');
  empty_.back() = false;
}

Writer& Writer::Open(char bracket) {
  Separate();
  out_.push_back(bracket);
  empty_.push_back(true);
  return *this;
}

Writer& Writer::Close(char bracket) {
  assert(!empty_.empty() && !after_key_);
  empty_.pop_back();
  out_.push_back(bracket);
  return *this;
}

Writer& Writer::BeginObject() { return Open('{'); }
Writer& Writer::EndObject() { return Close('}'); }
Writer& Writer::BeginArray() { return Open('['); }
Writer& Writer::EndArray() { return Close(']'); }

Writer& Writer::Key(absl::string_view key) {
  assert(!after_key_);
  Separate();
  AppendString(key, &out_);
  out_.push_back(':');
  after_key_ = true;
  return *this;
}

Writer& Writer::String(absl::string_view v) {
  Separate();
  AppendString(v, &out_);
  return *this;
}

Writer& Writer::Int(int64_t v) {
  Separate();
  absl::StrAppend(&out_, v);
  return *this;
}

Writer& Writer::Uint(uint64_t v) {
  Separate();
  absl::StrAppend(&out_, v);
  return *this;
}

Writer& Writer::Double(double v) {
  if (!std::isfinite(v)) return Null();
  Separate();
  char buf[32];
  // Shortest round-trip form: "0.1", "1e+20", "-0".
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  out_.append(buf, r.ptr);
  return *this;
}

Writer& Writer::Bool(bool v) {
  Separate();
  out_.append(v ? "true" : "false");
  return *this;
}

Writer& Writer::Null() {
  Separate();
  out_.append("null");
  return *this;
}

}  // namespace rdf::json
