#pragma once
/// @file
/// The whole `funnel` command line as one library call (the funnel_cli library: this folder). tools/main.cpp is
/// nothing but
///
///   int main(int argc, char** argv) { return funnel::cli::run(argc, argv); }
///
/// and a program of one's own that links funnel_cli and registers a model (FUNNEL_REGISTER_MODEL in one of its
/// files) gets train / eval / predict / compare / dot / gradcheck / models for that model the same way.
namespace funnel::cli {

/// Runs one `funnel` command: argv[0] is the program (its base name prefixes the messages), argv[1] the command
/// (train, eval, ...), the rest its flags. Returns the exit status: 0 ok, 1 error (the message on stderr),
/// 2 usage error (an unknown command or flag, a bad flag value: the message names the flag), 130 interrupted
/// training. With no command it prints the commands to stderr and returns 2; `--help` prints the commands, and
/// `<command> --help` that command's flags, to stdout and returns 0. Catches every exception a command throws; a
/// failed write to stdout (a closed pipe included: SIGPIPE is ignored) turns a success into 1. Sets the process's
/// SIGPIPE disposition, so call it from one thread.
int run(int argc, char** argv);

}  // namespace funnel::cli
