// taskctl migrate [status]
#include <iostream>

#include "context.hpp"
#include "output.hpp"
#include "taskq/core/json.hpp"

namespace taskq::ctl {

void add_migrate(CLI::App& app, Context& ctx) {
  auto* cmd = app.add_subcommand("migrate", "Create or upgrade taskq's tables (safe to run again, and concurrently)");
  cmd->footer("Examples:\n  taskctl migrate\n  taskctl migrate status\n  taskctl --schema tenant_a migrate");
  auto* status = cmd->add_subcommand("status", "Show which migrations are applied and which are pending");
  status->footer("Example:\n  taskctl migrate status");
  cmd->callback([&ctx, status] {
    ctx.action = [&ctx, status] {
      auto& client = ctx.client();
      if (status->parsed()) {
        const auto states = client.migration_status();
        if (ctx.output() == OutputFormat::table) {
          Table t({"VERSION", "NAME", "APPLIED_AT"});
          for (const auto& s : states)
            t.add({std::to_string(s.version), s.name, s.applied_at ? format_rfc3339(*s.applied_at) : "pending"});
          t.print();
        } else {
          std::vector<boost::json::value> out;
          for (const auto& s : states)
            out.push_back(boost::json::object{
                {"version", s.version},
                {"name", s.name},
                {"applied_at", s.applied_at ? boost::json::value(format_rfc3339(*s.applied_at)) : nullptr}});
          print_json_values(ctx.output(), out);
        }
        return exit_ok;
      }
      const auto applied = client.migrate();
      const std::string schema = ctx.config().database.schema;
      if (ctx.output() != OutputFormat::table) {
        boost::json::array versions(applied.begin(), applied.end());
        print_json(boost::json::object{{"schema", schema}, {"applied", versions}});
      } else if (applied.empty()) {
        std::cout << "schema " << schema << " is up to date\n";
      } else {
        std::cout << "schema " << schema << ": applied " << applied.size() << " migration(s):";
        for (int v : applied) std::cout << ' ' << v;
        std::cout << '\n';
      }
      return exit_ok;
    };
  });
}

}  // namespace taskq::ctl
