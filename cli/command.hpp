#pragma once
// Subcommand registry and a small flag parser shared by the subcommands of the `funnel` binary.
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace funnel::cli {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Thrown by Flags when --help or -h is given; what() lists the command's flags. main prints it and exits 0.
struct HelpRequested : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Command {
  const char* name;
  const char* summary;
  int (*run)(int argc, char** argv);  // argv[0] is the command name
};

std::vector<const Command*> commands();
const Command* find_command(const std::string& name);
struct CommandRegistrar {
  explicit CommandRegistrar(const Command* c);
};
#define FUNNEL_COMMAND(ident, name, summary, fn)                 \
  static const ::funnel::cli::Command funnel_cmd_##ident{name, summary, fn}; \
  static const ::funnel::cli::CommandRegistrar funnel_cmd_reg_##ident{&funnel_cmd_##ident}

// Flags: `--name value`, `--name=value`, and boolean `--name`. Unknown flags and missing values are UsageErrors.
class Flags {
 public:
  // `valued`: flags that take a value; `boolean`: flags that take none.
  Flags(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string str(const std::string& name, const std::string& dflt) const;
  std::string required(const std::string& name) const;
  std::int64_t integer(const std::string& name, std::int64_t dflt, std::int64_t min = INT64_MIN) const;
  double number(const std::string& name, double dflt) const;
  std::vector<std::int64_t> int_list(const std::string& name, const std::vector<std::int64_t>& dflt) const;
  std::vector<std::string> str_list(const std::string& name, const std::vector<std::string>& dflt) const;

 private:
  std::map<std::string, std::string> values_;
};

}  // namespace funnel::cli
