#include "taskq/queue/client_link.hpp"

#include <utility>

using taskq::store::Store;

namespace taskq::queue {

ClientLink::ClientLink(std::string role, const ClientOptions& options, std::function<void(Client&)> on_connect)
    : limits_(options.limits),
      link_(std::move(role), options.store,
            on_connect ? std::function<void(Store&)>([limits = options.limits, f = std::move(on_connect)](Store& s) {
              Client c(s, limits);
              f(c);
            })
                       : std::function<void(Store&)>{}) {}

bool ClientLink::with(const std::function<void(Client&)>& f) {
  return link_.with([&](Store& s) {
    Client c(s, limits_);
    f(c);
  });
}

}  // namespace taskq::queue
