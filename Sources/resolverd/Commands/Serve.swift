import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import Resolver
import ServiceLifecycle
import UnixSignals

/// `resolverd serve`: runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the DNS server.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func run() async throws {
        var logger = Logger(label: "resolverd")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info

        let loaded: LoadedState
        switch StateLoader.load(configPath: options.config) {
        case .success(let value): loaded = value
        case .failure(let error):
            for item in error.errors { logger.error("\(item.description)") }
            throw ExitCode(1)
        }
        let catalog = loaded.state.catalog
        logger.info("loaded", metadata: ["zones": "\(catalog.zones.count)", "records": "\(catalog.recordCount)"])

        let store = StateStore(loaded.state)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let config = loaded.configuration
        var listen: [SocketAddress] = []
        for address in config.dnsListen {
            listen.append(try SocketAddress(ipAddress: address.host, port: address.port))
        }
        let server = DNSServer(
            configuration: DNSServerConfiguration(listen: listen,
                                                  tcpIdleTimeout: .seconds(Int64(config.tcpIdleTimeoutSeconds)),
                                                  maxTCPConnections: config.tcpMaxConnections),
            store: store, group: group, logger: logger)
        let reloader = ReloadService(configPath: options.config, store: store, logger: logger)
        let publisher = DirectedLoadPublisher(store: store)
        let serviceGroup = ServiceGroup(configuration: .init(
            services: [.init(service: server), .init(service: reloader), .init(service: publisher)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("stopped: \(error)")
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        try await group.shutdownGracefully()
        logger.info("stopped")
    }
}

/// Reloads configuration and zones on SIGHUP. The new state is built completely before it
/// is published, so queries see either the old state or the new one; a bad reload keeps
/// the old state and logs every error.
struct ReloadService: Service {
    let configPath: String
    let store: StateStore
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    func reload() {
        switch StateLoader.load(configPath: configPath, ledger: store.state.ledger) {
        case .success(let loaded):
            store.publish(loaded.state)
            logger.info("reloaded", metadata: ["zones": "\(loaded.state.catalog.zones.count)",
                                               "records": "\(loaded.state.catalog.recordCount)"])
        case .failure(let error):
            for item in error.errors { logger.error("reload rejected: \(item.description)") }
            logger.error("reload failed; still serving the previous state")
        }
    }
}

/// Once a second, folds the answers recently handed out into the steering snapshot, so that
/// selection counts the load it is about to cause (anti-herding). At most one publish a
/// second, whatever the query rate.
struct DirectedLoadPublisher: Service {
    let store: StateStore

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            store.update { state in
                var steering = state.steering
                guard !steering.sites.isEmpty else { return state }
                steering.directed = DirectedLoad.estimate(snapshot: steering, ledger: state.ledger, now: SteeringClock.now())
                return state.with(steering: steering)
            }
        }
    }
}
