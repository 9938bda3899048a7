// sluice: query and admin CLI for Sluice brokers. See commands.h.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "core/http.h"

int main(int argc, char** argv) {
  sluice::InitHttpThreads(2);
  std::vector<std::string> args(argv + 1, argv + argc);
  return sluice::cli::RunCli(args, std::cout, std::cerr);
}
