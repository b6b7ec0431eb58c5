#pragma once
/// @file
/// Options tables: each row binds one flag to the field of an options struct it sets, with its name, help text and
/// check side by side. A row never spells a default: the default is the field's value in the defaults object a
/// command passes (a default-constructed struct, i.e. its default member initializers, unless the command changes
/// a field, as compare does for --eval-fraction), and that one value is what --help shows, what the effective
/// configuration records and what the struct keeps when the flag is not given.
///
/// A table serves every use of its flags: OptionRow::spec registers the flag with Flags (CLI11: the option, its
/// --help line and its check, which makes a bad value on the command line or in a --config file exit 2 naming the
/// flag before the command does anything), and apply_options writes the given values into the struct.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "cli/command.hpp"
#include "core/files.hpp"

namespace funnel::cli {

/// One flag of an options table over struct S (see the file comment).
template <class S>
struct OptionRow {
  std::string name;     ///< the flag without "--"
  std::string type;     ///< INT, NUM, TEXT, LIST, SPEC, DIR, FILE, NAME, K=V,...; "" for a switch
  std::string meaning;  ///< what --help says the flag does
  std::string allowed;  ///< the allowed values as --help shows them ("" = any)
  /// "" when a given value is acceptable, else what is wrong ("--name: " is put in front); null: any value.
  std::function<std::string(const std::string& value)> check;
  /// The field's value in `s` as flag text: the default --help shows when `s` is the defaults object ("" = none).
  std::function<std::string(const S& s)> text;
  /// Writes a given (checked) value into the field of `s`; a switch gets "1".
  std::function<void(const std::string& value, S& s)> set;
  /// The default goes into the effective configuration (false: the command resolves and records it itself).
  bool recorded = true;

  /// The flag as Flags registers it, its default taken from `defaults`.
  FlagSpec spec(const S& defaults) const {
    const std::string shown = text ? text(defaults) : std::string();
    const bool is_switch = type.empty();
    return FlagSpec{name,
                    FlagHelp{meaning, type, is_switch ? (shown.empty() ? "off" : shown) : shown, allowed,
                             !recorded ? "" : is_switch ? "false" : shown},
                    check};
  }
};

/// A table: the rows of one options struct.
template <class S>
using OptionTable = std::vector<OptionRow<S>>;

/// The specs of `rows` with the defaults of `defaults`, appended to `out`; `skip` names rows the command leaves out.
template <class S>
void append_specs(std::vector<FlagSpec>& out, const OptionTable<S>& rows, const S& defaults,
                  const std::vector<std::string>& skip = {}) {
  for (const auto& r : rows) {
    bool skipped = false;
    for (const auto& s : skip) skipped = skipped || s == r.name;
    if (!skipped) out.push_back(r.spec(defaults));
  }
}

/// Writes every flag of `rows` given in `f` into `s` (each checked again, for callers that did not register the
/// check, e.g. a Flags made from names); flags not given leave their fields, i.e. their defaults, as they are.
template <class S>
void apply_options(const OptionTable<S>& rows, const Flags& f, S& s) {
  for (const auto& r : rows) {
    if (!f.has(r.name)) continue;
    const std::string v = r.type.empty() ? "1" : f.str(r.name, "");
    if (r.check)
      if (const std::string why = r.check(v); !why.empty()) throw UsageError("--" + r.name + ": " + why);
    r.set(v, s);
  }
}

/// The rows of an inner struct's table as rows of an outer struct: `part` maps an Outer (const or not) to its
/// Inner, e.g. `[](auto& r) -> auto& { return r.trainer.train; }`.
template <class Outer, class Inner, class Part>
OptionTable<Outer> lift_options(const OptionTable<Inner>& rows, Part part) {
  OptionTable<Outer> out;
  for (const auto& r : rows) {
    OptionRow<Outer> o{r.name, r.type, r.meaning, r.allowed, r.check, nullptr, nullptr, r.recorded};
    if (r.text) o.text = [t = r.text, part](const Outer& s) { return t(part(s)); };
    o.set = [st = r.set, part](const std::string& v, Outer& s) { st(v, part(s)); };
    out.push_back(std::move(o));
  }
  return out;
}

/// Helpers of the row makers below.
namespace options_detail {
/// The value of a decimal integer flag; `ok` says whether `v` was one (whole, in range).
inline long long parse_integer(const std::string& v, bool& ok) {
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  ok = !v.empty() && *end == '\0' && errno == 0;
  return x;
}
/// The value of a number flag; `ok` says whether `v` was one (whole).
inline double parse_number(const std::string& v, bool& ok) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  ok = !v.empty() && *end == '\0';
  return x;
}
/// A number as --help shows it ("%g": 0.2, 0.002, 1e-06).
inline std::string format_number(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", x);
  return b;
}
/// "a, b or c" of `names`.
inline std::string one_of(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size(); ++i) s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  return s;
}
}  // namespace options_detail

/// An integer flag in [min, max] bound to the integer field `field(s)` (a generic lambda returning a reference).
/// `allowed` defaults to "≥ min" or "min..max".
template <class S, class Field>
OptionRow<S> int_option(std::string name, Field field, std::int64_t min, std::int64_t max, std::string meaning,
                        std::string allowed = {}) {
  if (allowed.empty())
    allowed = max == std::numeric_limits<std::int64_t>::max() ? "≥ " + std::to_string(min)
                                                              : std::to_string(min) + ".." + std::to_string(max);
  OptionRow<S> r{std::move(name), "INT", std::move(meaning), std::move(allowed), nullptr, nullptr, nullptr};
  r.check = [min, max](const std::string& v) -> std::string {
    bool ok = false;
    const long long x = options_detail::parse_integer(v, ok);
    if (!ok) return "expected an integer, got '" + v + "'";
    if (x < min) return "must be at least " + std::to_string(min) + ", got " + v;
    if (x > max) return "at most " + std::to_string(max) + ", got " + v;
    return "";
  };
  r.text = [field](const S& s) { return std::to_string(field(s)); };
  r.set = [field](const std::string& v, S& s) {
    bool ok = false;
    field(s) = static_cast<std::remove_reference_t<decltype(field(s))>>(options_detail::parse_integer(v, ok));
  };
  return r;
}

/// A number flag bound to the double field `field(s)`; `ok` says which values are allowed (finite ones only),
/// `allowed` says it in words ("> 0").
template <class S, class Field>
OptionRow<S> num_option(std::string name, Field field, bool (*ok)(double), std::string allowed, std::string meaning) {
  OptionRow<S> r{std::move(name), "NUM", std::move(meaning), allowed, nullptr, nullptr, nullptr};
  r.check = [ok, allowed](const std::string& v) -> std::string {
    bool parsed = false;
    const double x = options_detail::parse_number(v, parsed);
    if (!parsed) return "expected a number, got '" + v + "'";
    if (!std::isfinite(x) || !ok(x)) return "must be " + allowed + ", got " + v;
    return "";
  };
  r.text = [field](const S& s) { return options_detail::format_number(field(s)); };
  r.set = [field](const std::string& v, S& s) {
    bool parsed = false;
    field(s) = options_detail::parse_number(v, parsed);
  };
  return r;
}

/// A text flag bound to the std::string field `field(s)` (`type`: TEXT, SPEC, DIR, NAME, ...), with an optional
/// check.
template <class S, class Field>
OptionRow<S> text_option(std::string name, Field field, std::string type, std::string meaning,
                         std::string allowed = {}, std::function<std::string(const std::string&)> check = nullptr) {
  OptionRow<S> r{std::move(name), std::move(type), std::move(meaning), std::move(allowed), std::move(check), nullptr,
                 nullptr};
  r.text = [field](const S& s) { return std::string(field(s)); };
  r.set = [field](const std::string& v, S& s) { field(s) = v; };
  return r;
}

/// A comma-separated list of integers in [min, max] (LIST) bound to the std::vector<std::int64_t> field.
template <class S, class Field>
OptionRow<S> int_list_option(std::string name, Field field, std::int64_t min, std::int64_t max, std::string meaning,
                             std::string allowed) {
  OptionRow<S> r{std::move(name), "LIST", std::move(meaning), std::move(allowed), nullptr, nullptr, nullptr};
  auto items = [](const std::string& v) {
    std::vector<std::string> out(1);
    for (char c : v) {
      if (c == ',' || c == '\n') out.emplace_back();
      else out.back() += c;
    }
    return out;
  };
  r.check = [items, min, max](const std::string& v) -> std::string {
    for (const auto& item : items(v)) {
      if (item.empty()) return "empty item in list '" + v + "'";
      bool ok = false;
      const long long x = options_detail::parse_integer(item, ok);
      if (!ok || x < min)
        return "expected " + (min == 1 ? std::string("positive integers") : "integers ≥ " + std::to_string(min)) +
               " separated by commas, got '" + item + "'";
      if (x > max) return "each item at most " + std::to_string(max) + ", got " + item;
    }
    return "";
  };
  r.text = [field](const S& s) {
    std::string t;
    for (auto x : field(s)) {
      if (!t.empty()) t += ',';
      t += std::to_string(x);
    }
    return t;
  };
  r.set = [field, items](const std::string& v, S& s) {
    auto& out = field(s);
    out.clear();
    for (const auto& item : items(v)) {
      bool ok = false;
      out.push_back(options_detail::parse_integer(item, ok));
    }
  };
  return r;
}

/// A flag naming one of `choices` (TEXT), bound to the field holding the chosen value (an enum, usually).
template <class S, class Field, class T>
OptionRow<S> choice_option(std::string name, Field field, std::vector<std::pair<std::string, T>> choices,
                           std::string meaning) {
  std::vector<std::string> names;
  std::string allowed;
  for (const auto& c : choices) {
    names.push_back(c.first);
    allowed += (allowed.empty() ? "" : ", ") + c.first;
  }
  OptionRow<S> r{std::move(name), "TEXT", std::move(meaning), std::move(allowed), nullptr, nullptr, nullptr};
  r.check = [choices, names](const std::string& v) -> std::string {
    for (const auto& c : choices)
      if (c.first == v) return "";
    return "expected " + options_detail::one_of(names) + ", got '" + printable(v) + "'";
  };
  r.text = [field, choices](const S& s) {
    for (const auto& c : choices)
      if (c.second == field(s)) return c.first;
    return std::string();
  };
  r.set = [field, choices](const std::string& v, S& s) {
    for (const auto& c : choices)
      if (c.first == v) field(s) = c.second;
  };
  return r;
}

/// A switch (a flag without a value) that sets the bool field `field(s)` to `when_given`.
template <class S, class Field>
OptionRow<S> switch_option(std::string name, Field field, bool when_given, std::string meaning) {
  OptionRow<S> r{std::move(name), "", std::move(meaning), "", nullptr, nullptr, nullptr};
  r.text = [field, when_given](const S& s) { return std::string(field(s) == when_given ? "on" : "off"); };
  r.set = [field, when_given](const std::string&, S& s) { field(s) = when_given; };
  return r;
}

}  // namespace funnel::cli
