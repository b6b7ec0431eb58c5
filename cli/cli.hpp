#pragma once
// The whole `funnel` command line as one library call (the funnel_cli library: this folder). tools/main.cpp is
// nothing but
//
//   int main(int argc, char** argv) { return funnel::cli::run(argc, argv); }
//
// and a program of one's own that links funnel_cli and registers a model (FUNNEL_REGISTER_MODEL in one of its
// files) gets train / eval / predict / compare / dot / gradcheck / models for that model the same way.
namespace funnel::cli {

// argv[1] is the command (train, eval, ...), the rest its flags. Returns the exit status: 0 ok, 1 error,
// 2 usage error (the message names the flag), 130 interrupted training; --help prints the commands or flags.
int run(int argc, char** argv);

}  // namespace funnel::cli
