#pragma once
// Subcommand registry and the flag parser (CLI11) shared by the subcommands of the `funnel` binary.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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

// What `--help` says about a flag (cli/flag_help.cpp): its meaning, value type, default and allowed values, and
// the machine-readable default recorded in a run's effective configuration ("" = none).
struct FlagHelp {
  std::string meaning;
  std::string type;     // INT, NUM, TEXT, LIST, SPEC, DIR, FILE, NAME, K=V,...; "" for a switch
  std::string dflt;     // shown as "default: ..."
  std::string allowed;  // shown as "allowed: ..."
  std::string config;   // default in the effective configuration ("" = unset)
};
// The help of `flag` in `command` (a "command:flag" row first, then the flag's own, then the row of an options
// table: cli/options.hpp); null when there is none.
const FlagHelp* flag_help(const std::string& command, const std::string& flag);

/// One flag as a command registers it with Flags: its name, its help row and the check of its value. Built from a
/// row of an options table (cli/options.hpp), or from the help rows by name.
struct FlagSpec {
  std::string name;  ///< without the leading --
  FlagHelp help;     ///< help.type "" makes it a switch (a flag without a value)
  /// "" when a given value is acceptable, else what is wrong with it; run as the option's CLI11 check (a command
  /// line or --config value), so a bad value exits 2 as "--name: <reason>" before the command does anything.
  /// Null: any value.
  std::function<std::string(const std::string& value)> check;
  bool is_switch() const { return help.type.empty(); }  ///< takes no value
};
/// The spec of `flag` in `command` from flag_help() (with the table row's check when the help is a table's);
/// "(undocumented flag)" when there is none.
FlagSpec flag_spec(const std::string& command, const std::string& flag, bool is_switch);
// Adds or replaces a row ("flag" or "command:flag"): a user's own command documents its flags the same way.
void register_flag_help(const std::string& key, FlagHelp help);

// The flags of one command, parsed with CLI11: `--name value`, `--name=value`, boolean `--name`, and
// `--config FILE` (TOML/INI `name = value` lines; flags on the command line win). `--help` lists every flag with
// its meaning, default and allowed values. Unknown flags, missing values and unknown config keys are UsageErrors.
class Flags {
 public:
  // `valued`: flags that take a value; `boolean`: flags that take none. argv[0] is the command name.
  Flags(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean);
  /// The flags `specs` (help, switch or not, check), e.g. from options tables (cli/options.hpp). argv[0] is the
  /// command name.
  Flags(int argc, char** argv, const std::vector<FlagSpec>& specs);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string str(const std::string& name, const std::string& dflt) const;
  std::string required(const std::string& name) const;
  std::int64_t integer(const std::string& name, std::int64_t dflt, std::int64_t min = INT64_MIN) const;
  double number(const std::string& name, double dflt) const;
  std::vector<std::int64_t> int_list(const std::string& name, const std::vector<std::int64_t>& dflt) const;
  std::vector<std::string> str_list(const std::string& name, const std::vector<std::string>& dflt) const;

  // The --config file, or "" (an input of the command: no output may be it).
  const std::string& config_file() const { return config_file_; }
  // The effective configuration: every flag of the command with the value it was given (command line or config
  // file) or its default (FlagHelp::config; flags without one are left out). Switches are true/false.
  nlohmann::json effective() const;

 private:
  std::string command_;
  std::map<std::string, FlagSpec> specs_;  // by name: --help lists them in this order
  std::map<std::string, std::string> values_;
  std::string config_file_;
};

}  // namespace funnel::cli
