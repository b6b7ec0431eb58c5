#include "cli/command.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include <CLI/CLI.hpp>

#include "core/files.hpp"

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

namespace {

// "INT" etc. for CLI11's help column; the meaning, default and allowed values as one description.
std::string describe(const FlagHelp* h) {
  if (!h || h->meaning.empty()) return "(undocumented flag)";
  std::string d = h->meaning;
  std::string extra;
  if (!h->dflt.empty()) extra += "default: " + h->dflt;
  if (!h->allowed.empty()) extra += (extra.empty() ? "" : "; ") + std::string("allowed: ") + h->allowed;
  if (!extra.empty()) d += " (" + extra + ")";
  return d;
}

// The --config file named in argv, or "".
std::string config_path(int argc, char** argv) {
  std::string path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i] ? argv[i] : "";
    if (a == "--config" && i + 1 < argc) path = argv[++i];
    else if (a.rfind("--config=", 0) == 0) path = a.substr(9);
  }
  return path;
}

// Checks the --config file before CLI11 reads it: a regular file (never blocks on a FIFO), text (a binary file is
// named, its bytes escaped), and no [section] headers (their keys would not be flags of this command).
void check_config_file(int argc, char** argv) {
  const std::string path = config_path(argc, argv);
  if (path.empty()) return;
  std::string text;
  try {
    text = read_regular_file(path, std::size_t{16} << 20);
  } catch (const std::exception& e) {
    throw UsageError(std::string("--config: ") + e.what());
  }
  const std::string shown = "--config " + printable(path);
  std::size_t line_no = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    ++line_no;
    pos = end + 1;
    for (char c : line)
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\r') || c == 0x7f)
        throw UsageError(shown + ":" + std::to_string(line_no) + ": not a text file of `name = value` lines (got '" +
                         printable(line, 60) + "')");
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (!line.empty() && line.front() == '[') {
      const auto close = line.find(']');
      throw UsageError(shown + ":" + std::to_string(line_no) + ": sections such as '" +
                       printable(line.substr(0, close == std::string_view::npos ? line.size() : close + 1), 60) +
                       "' are not supported: the file holds the flags of this one command as `name = value` lines "
                       "(names without --, e.g. epochs = 2), with no section header");
    }
  }
}

}  // namespace

namespace {
std::vector<FlagSpec> specs_by_help(const std::string& command, const std::set<std::string>& valued,
                                    const std::set<std::string>& boolean) {
  std::vector<FlagSpec> specs;
  for (const auto& name : valued) specs.push_back(flag_spec(command, name, false));
  for (const auto& name : boolean) specs.push_back(flag_spec(command, name, true));
  return specs;
}
}  // namespace

Flags::Flags(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean)
    : Flags(argc, argv, specs_by_help(argc > 0 && argv[0] ? argv[0] : "", valued, boolean)) {}

Flags::Flags(int argc, char** argv, const std::vector<FlagSpec>& specs)
    : command_(argc > 0 && argv[0] ? argv[0] : "") {
  for (const FlagSpec& s : specs) specs_.insert_or_assign(s.name, s);
  CLI::App app{"", command_};
  app.set_help_flag("-h,--help", "show the flags with their meanings, defaults and allowed values");
  app.allow_extras(true);  // unknown arguments are reported below, naming the flag and listing the known ones
  app.get_formatter()->column_width(30);
  app.get_formatter()->label("REQUIRED", "");
  CLI::Option* config = app.set_config("--config", "", "read flags from a TOML/INI file (`name = value` lines, "
                                       "names without --); flags on the command line win");
  config->type_name("FILE");
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::map<std::string, std::string> text;
  std::map<std::string, bool> on;
  // Flags with a value first, then the switches; each group by name.
  for (const auto& [name, s] : specs_) {
    if (s.is_switch()) continue;
    CLI::Option* o = app.add_option("--" + name, text[name], describe(&s.help));
    o->type_name(s.help.type);
    if (s.help.type == "LIST") {
      // A list: "--hidden 200,80", a repeated flag, or a TOML array `hidden = [200, 80]` all give "200,80".
      // No CLI11 delimiter: it would drop empty items ("200,,80" read as 200,80); the check and str_list split.
      o->multi_option_policy(CLI::MultiOptionPolicy::Join);
    } else {
      o->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last one counts
    }
    // Every value given (command line or config file) is checked as it is parsed: CLI11 reports "--name: reason".
    if (s.check) o->check(CLI::Validator([check = s.check](std::string& v) { return check(v); }, ""));
  }
  for (const auto& [name, s] : specs_)
    if (s.is_switch()) app.add_flag("--" + name, on[name], describe(&s.help));

  check_config_file(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::string h = app.help();
    // CLI11's own usage line is replaced by the caller's ("usage: funnel <command> [flags]").
    if (auto pos = h.find("Options:"); pos != std::string::npos) h = h.substr(pos);
    throw HelpRequested("flags (as --name VALUE or --name=VALUE; --config FILE reads them from a file):\n" + h);
  } catch (const CLI::FileError& e) {
    throw UsageError(std::string("--config: ") + printable(e.what(), 300));
  } catch (const CLI::ConfigError& e) {
    throw UsageError("--config " + printable(config->as<std::string>()) + ": " + printable(e.what(), 300) +
                     " (keys are flag names without --)");
  } catch (const CLI::ArgumentMismatch& e) {
    std::string what = e.what();
    for (const auto& [name, s] : specs_)
      if (!s.is_switch() && what.rfind("--" + name + ":", 0) == 0) throw UsageError("flag --" + name + " needs a value");
    throw UsageError(what);
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what());
  }
  const std::vector<std::string> rest = app.remaining();
  if (!rest.empty()) {
    const std::string& a = rest.front();
    if (a.rfind("--", 0) != 0 && a.rfind('-', 0) != 0)
      throw UsageError("unexpected argument '" + a + "' (flags start with --)");
    std::string name = a.substr(a.rfind("--", 0) == 0 ? 2 : 1);
    if (auto eq = name.find('='); eq != std::string::npos) name = name.substr(0, eq);
    std::string known;
    for (const auto& [n, s] : specs_)
      if (!s.is_switch()) known += " --" + n;
    for (const auto& [n, s] : specs_)
      if (s.is_switch()) known += " --" + n;
    throw UsageError("unknown flag --" + name + " (known:" + known + " --config)");
  }
  for (const auto& [name, s] : specs_) {
    if (s.is_switch()) {
      if (on[name]) values_[name] = "1";
    } else if (app.get_option("--" + name)->count() > 0) {
      values_[name] = text[name];
      // A list given as a repeated flag or a TOML array arrives joined by line ends: recorded with commas.
      if (s.help.type == "LIST") std::replace(values_[name].begin(), values_[name].end(), '\n', ',');
    }
  }
  if (config->count() > 0) config_file_ = config->as<std::string>();
}

nlohmann::json Flags::effective() const {
  nlohmann::json j = nlohmann::json::object();
  auto typed = [](const std::string& type, const std::string& v) -> nlohmann::json {
    char* end = nullptr;
    if (type == "INT") {
      long long x = std::strtoll(v.c_str(), &end, 10);
      if (!v.empty() && *end == '\0') return x;
    } else if (type == "NUM") {
      double x = std::strtod(v.c_str(), &end);
      if (!v.empty() && *end == '\0') return x;
    }
    return v;
  };
  for (const auto& [name, s] : specs_) {
    if (s.is_switch()) {
      j[name] = has(name);
    } else if (auto it = values_.find(name); it != values_.end()) {
      j[name] = typed(s.help.type, it->second);
    } else if (!s.help.config.empty()) {
      j[name] = typed(s.help.type, s.help.config);
    }
  }
  return j;
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
    if (ch == ',' || ch == '\n') {
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
