#pragma once
/// @file
/// Subcommand registry and the flag parser (CLI11) shared by the subcommands of the `funnel` binary. A program of
/// one's own adds a command with FUNNEL_COMMAND, documents its flags with register_flag_help and reads them with
/// Flags; funnel::cli::run (cli/cli.hpp) dispatches to it.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace funnel::cli {

/// A bad command line: an unknown flag, a missing or malformed value, two outputs naming one file, a bad --config
/// file. what() names the flag and says what was expected; funnel::cli::run prints it and exits 2. A command throws
/// it for its own checks of flag values, before it reads any data.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Thrown by Flags when --help or -h is given; what() lists the command's flags. funnel::cli::run prints it after
/// the usage line and exits 0.
struct HelpRequested : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One subcommand of the `funnel` binary (train, eval, ...), registered with FUNNEL_COMMAND. The strings are static
/// (string literals): the registry keeps the pointers.
struct Command {
  const char* name;     ///< what follows the program name on the command line, e.g. "train"
  const char* summary;  ///< one line shown by `funnel --help` and above the command's flag list
  /// Runs the command and returns its exit status. argv[0] is the command name, the rest its flags (pass them to
  /// Flags). May throw: UsageError (exit 2), HelpRequested (exit 0), anything else (exit 1); run() catches them.
  int (*run)(int argc, char** argv);
};

/// Every registered command, sorted by name (a copy of the registry). Call it after static initialisation (from
/// main or later): registrations happen in static constructors.
std::vector<const Command*> commands();
/// The registered command called `name`, or null when there is none.
const Command* find_command(const std::string& name);
/// Adds a command to the registry when constructed; FUNNEL_COMMAND defines one as a static object. The Command must
/// outlive every use of the registry (a static object). Registration is not synchronised: it is meant for static
/// initialisation.
struct CommandRegistrar {
  /// Appends `c` to the registry. A second command with the same name is kept, but find_command returns the first.
  explicit CommandRegistrar(const Command* c);
};
/// Registers a subcommand at static initialisation: `ident` is a C++ identifier unique in the file, `name` and
/// `summary` string literals, `fn` an `int fn(int argc, char** argv)` (see Command::run). Use it at namespace scope
/// in one .cpp file, e.g. `FUNNEL_COMMAND(hello, "hello", "print a greeting", hello_main);`. Linking a static
/// library: the object file must be linked in (reference a symbol from it, or use an object library).
#define FUNNEL_COMMAND(ident, name, summary, fn)                 \
  static const ::funnel::cli::Command funnel_cmd_##ident{name, summary, fn}; \
  static const ::funnel::cli::CommandRegistrar funnel_cmd_reg_##ident{&funnel_cmd_##ident}

/// What `--help` says about a flag (cli/flag_help.cpp): its meaning, value type, default and allowed values, and
/// the machine-readable default recorded in a run's effective configuration ("" = none).
struct FlagHelp {
  std::string meaning;  ///< what the flag does, one phrase (the help line's text)
  /// The value's type as shown in the help column: INT, NUM, TEXT, LIST, SPEC, DIR, FILE, NAME, K=V,...; "" for a
  /// switch. INT and NUM values are recorded as JSON numbers in Flags::effective; a LIST may be given as a repeated
  /// flag or a TOML array.
  std::string type;
  std::string dflt;     ///< the default for people, shown as "default: ..." ("" = not shown)
  std::string allowed;  ///< the allowed values, shown as "allowed: ..." ("" = not shown)
  std::string config;   ///< the default recorded in Flags::effective ("" = the flag is left out when not given)
};
/// The help of `flag` (without --) in `command`: the "command:flag" row when there is one, else the flag's own row,
/// else the row of an options table (cli/options.hpp); null when there is none. The first call also adds the rows
/// written from the registries (the optimizers, the data formats) unless register_flag_help set them first.
/// The pointer stays valid for the life of the process (a later register_flag_help of the same key changes what
/// it points to). Thread-safe.
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
/// Adds or replaces a help row: `key` is "flag" (every command's flag of that name) or "command:flag" (that command
/// only); names without --. A user's own command documents its flags the same way. Thread-safe.
void register_flag_help(const std::string& key, FlagHelp help);

/// The flags of one command, parsed with CLI11: `--name value`, `--name=value`, boolean `--name`, and
/// `--config FILE` (TOML/INI `name = value` lines; flags on the command line win). `--help` lists every flag with
/// its meaning, default and allowed values. Unknown flags, missing values and unknown config keys are UsageErrors.
/// A repeated flag keeps its last value (a LIST flag joins them). Flag names are given without the leading --.
/// The accessors are const and may be called from several threads.
class Flags {
 public:
  /// Parses argv (argv[0] is the command name, used to find its help rows). `valued`: flags that take a value;
  /// `boolean`: switches that take none. Throws HelpRequested on --help or -h, UsageError on an unknown flag, a
  /// missing value, a stray argument or a bad --config file (not a regular text file of `name = value` lines, an
  /// unknown key, a [section]). Values are not checked here: the typed accessors check them.
  Flags(int argc, char** argv, const std::set<std::string>& valued, const std::set<std::string>& boolean);
  /// The flags `specs` (help, switch or not, check), e.g. from options tables (cli/options.hpp). argv[0] is the
  /// command name.
  Flags(int argc, char** argv, const std::vector<FlagSpec>& specs);
  /// Whether the flag was given (on the command line or in the --config file); for a switch, whether it is on.
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  /// The flag's value as given, or `dflt` when it was not given.
  std::string str(const std::string& name, const std::string& dflt) const;
  /// The flag's value; throws UsageError ("missing required flag --name") when it was not given.
  std::string required(const std::string& name) const;
  /// The flag's value as a decimal integer, or `dflt` when not given (`dflt` is not checked against `min`). Throws
  /// UsageError naming the flag when the value is not an integer or is below `min`.
  std::int64_t integer(const std::string& name, std::int64_t dflt, std::int64_t min = INT64_MIN) const;
  /// The flag's value as a number (strtod syntax, so also "1e-3", "inf", "nan": check the range yourself), or
  /// `dflt` when not given. Throws UsageError naming the flag when the value is not a number.
  double number(const std::string& name, double dflt) const;
  /// A comma-separated list of positive integers ("200,80"), or `dflt` when not given. Throws UsageError naming the
  /// flag on an empty item, a non-integer or a value <= 0.
  std::vector<std::int64_t> int_list(const std::string& name, const std::vector<std::int64_t>& dflt) const;
  /// A comma-separated list ("a,b,c"; a repeated LIST flag or a TOML array gives the same), or `dflt` when not
  /// given. Throws UsageError naming the flag on an empty item.
  std::vector<std::string> str_list(const std::string& name, const std::vector<std::string>& dflt) const;

  /// The --config file, or "" (an input of the command: no output may be it).
  const std::string& config_file() const { return config_file_; }
  /// The effective configuration: every flag of the command with the value it was given (command line or config
  /// file) or its default (FlagHelp::config; flags without one are left out). Switches are true/false; INT and NUM
  /// values are JSON numbers, the others strings.
  nlohmann::json effective() const;

 private:
  std::string command_;
  std::map<std::string, FlagSpec> specs_;  // by name: --help lists them in this order
  std::map<std::string, std::string> values_;
  std::string config_file_;
};

}  // namespace funnel::cli
