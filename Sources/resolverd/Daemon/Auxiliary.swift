import Logging
import ServiceLifecycle

/// A service DNS answering must survive: the HTTP API, say. If it fails (its port is taken,
/// its listener dies), the failure is logged and the rest of the daemon keeps running, where
/// a ServiceGroup would otherwise stop every service.
struct AuxiliaryService: ServiceLifecycle.Service {
    let name: String
    let base: any ServiceLifecycle.Service
    let logger: Logger

    func run() async throws {
        do {
            try await base.run()
        } catch {
            guard !Task.isCancelled else { throw error }
            logger.error("\(name) stopped; DNS keeps answering", metadata: ["error": "\(error)"])
        }
    }

    /// Its configuration in a group: its ending, whatever the cause, ends nothing else.
    var configuration: ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: self, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore)
    }
}
