#include "taskq/daemon/store_options.hpp"

using taskq::config::Config;
using taskq::config::Program;

using taskq::store::StoreOptions;

namespace taskq::daemon {
namespace {

const char* program_name(Program program) {
  switch (program) {
    case Program::apid:
      return "taskq-apid";
    case Program::workerd:
      return "taskq-workerd";
    case Program::schedulerd:
      return "taskq-schedulerd";
    case Program::taskctl:
      break;
  }
  return "taskctl";
}

}  // namespace

StoreOptions store_options(const Config& config, Program program) {
  StoreOptions options;
  options.url = config.database.url;
  options.schema = config.database.schema;
  options.connect_timeout = config.database.connect_timeout;
  options.application_name = program_name(program);
  options.session = config.database.session(program);
  return options;
}

}  // namespace taskq::daemon
