#include "common/json/proto.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"

namespace rdf::json {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

void WriteMessage(const Message& m, const MessageOptions& o, Writer* w) {
  w->BeginObject();
  WriteFields(m, o, w);
  w->EndObject();
}

// Element `i` of repeated field `f`, or the singular field when i < 0.
void WriteValue(const Message& m, const FieldDescriptor* f, int i, const MessageOptions& o,
                Writer* w) {
  const Reflection* r = m.GetReflection();
  const bool rep = i >= 0;
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      w->Int(rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f));
      return;
    case FieldDescriptor::CPPTYPE_INT64:
      w->Int(rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f));
      return;
    case FieldDescriptor::CPPTYPE_UINT32:
      w->Uint(rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f));
      return;
    case FieldDescriptor::CPPTYPE_UINT64:
      w->Uint(rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f));
      return;
    case FieldDescriptor::CPPTYPE_DOUBLE:
      w->Double(rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f));
      return;
    case FieldDescriptor::CPPTYPE_FLOAT:
      w->Double(rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f));
      return;
    case FieldDescriptor::CPPTYPE_BOOL:
      w->Bool(rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f));
      return;
    case FieldDescriptor::CPPTYPE_ENUM: {
      const int v = rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
      const auto* e = f->enum_type()->FindValueByNumber(v);
      if (e != nullptr) {
        w->String(e->name());
      } else {
        w->Int(v);
      }
      return;
    }
    case FieldDescriptor::CPPTYPE_STRING: {
      std::string scratch;
      const std::string& s = rep ? r->GetRepeatedStringReference(m, f, i, &scratch)
                                 : r->GetStringReference(m, f, &scratch);
      w->String(f->type() == FieldDescriptor::TYPE_BYTES ? absl::BytesToHexString(s) : s);
      return;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      WriteMessage(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), o, w);
      return;
  }
}

// A map key as JSON object keys are: text.
std::string MapKeyText(const Message& entry, const FieldDescriptor* key) {
  const Reflection* r = entry.GetReflection();
  switch (key->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return absl::StrCat(r->GetInt32(entry, key));
    case FieldDescriptor::CPPTYPE_INT64: return absl::StrCat(r->GetInt64(entry, key));
    case FieldDescriptor::CPPTYPE_UINT32: return absl::StrCat(r->GetUInt32(entry, key));
    case FieldDescriptor::CPPTYPE_UINT64: return absl::StrCat(r->GetUInt64(entry, key));
    case FieldDescriptor::CPPTYPE_BOOL: return r->GetBool(entry, key) ? "true" : "false";
    default: return r->GetString(entry, key);  // map keys are integers, bools or strings
  }
}

// A map field as an object sorted by key (the wire order is not stable).
void WriteMap(const Message& m, const FieldDescriptor* f, const MessageOptions& o, Writer* w) {
  const Reflection* r = m.GetReflection();
  const FieldDescriptor* key = f->message_type()->map_key();
  const FieldDescriptor* value = f->message_type()->map_value();
  std::vector<std::pair<std::string, const Message*>> entries;
  for (int i = 0; i < r->FieldSize(m, f); ++i) {
    const Message& entry = r->GetRepeatedMessage(m, f, i);
    entries.emplace_back(MapKeyText(entry, key), &entry);
  }
  std::sort(entries.begin(), entries.end());
  w->BeginObject();
  for (const auto& [text, entry] : entries) {
    w->Key(text);
    WriteValue(*entry, value, -1, o, w);
  }
  w->EndObject();
}

}  // namespace

void WriteFields(const Message& m, const MessageOptions& o, Writer* w) {
  const Reflection* r = m.GetReflection();
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  for (int k = 0; k < d->field_count(); ++k) {
    const FieldDescriptor* f = d->field(k);
    if (f->is_map()) {
      WriteMap(m, f, o, &w->Key(f->name()));
    } else if (f->is_repeated()) {
      w->Key(f->name()).BeginArray();
      for (int i = 0; i < r->FieldSize(m, f); ++i) WriteValue(m, f, i, o, w);
      w->EndArray();
    } else if (!f->has_presence() || r->HasField(m, f)) {
      WriteValue(m, f, -1, o, &w->Key(f->name()));
    } else if (o.unset_as_null) {
      w->Key(f->name()).Null();
    }
  }
}

std::string MessageToJson(const Message& m, const MessageOptions& o) {
  Writer w;
  WriteMessage(m, o, &w);
  return w.str();
}

}  // namespace rdf::json
