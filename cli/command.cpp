#include "cli/command.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace funnel::cli {

namespace {
std::vector<const Command*>& table() {
  static std::vector<const Command*> t;
  return t;
}
}  // namespace

CommandRegistrar::CommandRegistrar(const Command* c) { table().push_back(c); }

std::vector<const Command*> commands() {
  auto t = table();
  std::sort(t.begin(), t.end(), [](const Command* a, const Command* b) { return std::strcmp(a->name, b->name) < 0; });
  return t;
}

const Command* find_command(const std::string& name) {
  for (const Command* c : table())
    if (name == c->name) return c;
  return nullptr;
}

Flags::Flags(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::string text = "flags:";
      for (auto& v : valued) text += "\n  --" + v + " VALUE";
      for (auto& b : boolean) text += "\n  --" + b;
      if (valued.empty() && boolean.empty()) text += " (none)";
      throw HelpRequested(text);
    }
    if (a.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(2), value;
    bool has_eq = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_eq = true;
    }
    if (valued.count(name)) {
      if (!has_eq) {
        if (i + 1 >= argc) throw UsageError("flag --" + name + " needs a value");
        value = argv[++i];
      }
      values_[name] = value;
    } else if (boolean.count(name)) {
      if (has_eq) throw UsageError("flag --" + name + " takes no value");
      values_[name] = "1";
    } else {
      std::string known;
      for (auto& v : valued) known += " --" + v;
      for (auto& b : boolean) known += " --" + b;
      throw UsageError("unknown flag --" + name + " (known:" + known + ")");
    }
  }
}

std::string Flags::str(const std::string& name, const std::string& dflt) const {
  auto it = values_.find(name);
  return it == values_.end() ? dflt : it->second;
}

std::string Flags::required(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw UsageError("missing required flag --" + name);
  return it->second;
}

std::int64_t Flags::integer(const std::string& name, std::int64_t dflt, std::int64_t min) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || *end != '\0' || errno)
    throw UsageError("--" + name + ": expected an integer, got '" + it->second + "'");
  if (v < min) throw UsageError("--" + name + ": must be at least " + std::to_string(min) + ", got " + it->second);
  return v;
}

double Flags::number(const std::string& name, double dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  char* end = nullptr;
  double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0') throw UsageError("--" + name + ": expected a number, got '" + it->second + "'");
  return v;
}

std::vector<std::string> Flags::str_list(const std::string& name, const std::vector<std::string>& dflt) const {
  auto it = values_.find(name);
  if (it == values_.end()) return dflt;
  std::vector<std::string> out;
  std::string cur;
  for (char ch : it->second) {
    if (ch == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  out.push_back(cur);
  for (auto& s : out)
    if (s.empty()) throw UsageError("--" + name + ": empty item in list '" + it->second + "'");
  return out;
}

std::vector<std::int64_t> Flags::int_list(const std::string& name, const std::vector<std::int64_t>& dflt) const {
  if (!has(name)) return dflt;
  std::vector<std::int64_t> out;
  for (auto& s : str_list(name, {})) {
    char* end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || v <= 0)
      throw UsageError("--" + name + ": expected positive integers separated by commas, got '" + s + "'");
    out.push_back(v);
  }
  return out;
}

}  // namespace funnel::cli
