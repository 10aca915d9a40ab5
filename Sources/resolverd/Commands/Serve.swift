import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import Resolver
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `resolverd serve`: runs the daemon until SIGTERM or SIGINT; SIGHUP reloads.
///
/// The daemon is a ServiceGroup: DNS (UDP+TCP), the reload handler, the steering writer,
/// the directed-load publisher, the HTTP API, health checks and the Prometheus pull — each a
/// service, stopped gracefully in reverse order.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the DNS server.")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log line format: logfmt or json (one object per line), on standard error.")
    var logFormat: LogFormat = .logfmt

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of: \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        StructuredLogHandler.bootstrap(format: logFormat, level: level)
        let logger = Logger(label: "resolverd")
        let exporter = MetricsExporter()
        exporter.bootstrap()

        let loaded: LoadedState
        switch StateLoader.load(configPath: options.config) {
        case .success(let value): loaded = value
        case .failure(let error):
            for item in error.errors { logger.error("\(item.description)") }
            throw ExitCode(1)
        }
        let catalog = loaded.state.catalog
        logger.info("loaded", metadata: ["zones": "\(catalog.zones.count)", "records": "\(catalog.recordCount)",
                                         "services": "\(loaded.state.services.count)"])

        let store = StateStore(loaded.state)
        let notifier = SystemdNotifier()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let config = loaded.configuration
        let controlGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        controlGroup.next().execute { [nice = config.httpNice] in
            nameThisThread("resolverd-http")
            // Raising one's own nice value needs no privilege; a refusal changes nothing else.
            if nice != 0 { niceThisThread(Int32(nice)) }
        }
        var listen: [SocketAddress] = []
        for address in config.dnsListen {
            listen.append(try SocketAddress(ipAddress: address.host, port: address.port))
        }
        let server = DNSServer(
            configuration: DNSServerConfiguration(listen: listen, tcp: config.tcp.limits,
                                                  udpThreads: config.udpThreads ?? usableCores()),
            store: store, group: group, logger: logger,
            onReady: { notifier.ready(status: "serving \(catalog.zones.count) zones") })
        let tokens = TokenBox(loaded.tokens)
        let reloader = Reloader(configPath: options.config, store: store, tokens: tokens, logger: logger, startup: config,
                                notifier: notifier)
        let writer = SteeringWriter(store: store)
        let checks = HealthCheckStatus(sites: Set(config.sites.filter { $0.check != nil }.map(\.id)))

        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: server), .init(service: writer), .init(service: ReloadService(reloader: reloader, notifier: notifier)),
            .init(service: DirectedLoadPublisher(store: store)),
        ]
        if let httpListen = config.httpListen {
            let api = ControlAPI(store: store, writer: writer, tokens: tokens, reload: { reloader.reload() },
                                 exporter: exporter, checks: checks, logger: logger)
            let application = Application(
                router: api.router(),
                // Load reports are answered from the connection's bytes, ahead of the HTTP
                // decoder and the router (ReportFastPath).
                server: .control(api: api, pacer: ControlLoopPacer(interval: config.httpCoalesceMs / 1000)),
                configuration: .init(address: .hostname(httpListen.host, port: httpListen.port), serverName: "resolverd"),
                // One event loop of its own, paced to `http.coalesce-ms`: the API's connections
                // are read together, a batch of reports per wake-up, on one thread beside the
                // DNS workers, rather than spread over as many loops as cores, each waking for
                // every request.
                eventLoopGroupProvider: .shared(controlGroup),
                logger: logger)
            services.append(AuxiliaryService(name: "http api", base: application, logger: logger).configuration)
            logger.info("http api", metadata: ["address": "\(httpListen)"])
        }
        let targets = config.sites.compactMap { site -> HealthChecker.Target? in
            guard let check = site.check, let address = site.addresses.first else { return nil }
            return HealthChecker.Target(site: site.id, address: address, check: check)
        }
        if !targets.isEmpty {
            services.append(.init(service: HealthChecker(targets: targets, writer: writer, logger: logger)))
        }
        if let directory = config.stateDirectory {
            let persister = BindingPersister(directory: directory, store: store, logger: logger)
            persister.restore()
            services.append(.init(service: persister))
        }
        if let pull = config.pull {
            services.append(.init(service: PrometheusPull(configuration: pull, writer: writer, logger: logger)))
        }
        let serviceGroup = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await serviceGroup.run()
        } catch {
            logger.error("stopped: \(error)")
            try? await group.shutdownGracefully()
            try? await controlGroup.shutdownGracefully()
            throw ExitCode(1)
        }
        try await group.shutdownGracefully()
        try await controlGroup.shutdownGracefully()
        logger.info("stopped")
    }
}

/// Reloads configuration, zones and tokens. The new state is built completely before it is
/// published, so queries see either the old state or the new one; a bad reload keeps the
/// old state and logs every error.
final class Reloader: Sendable {
    let configPath: String
    let store: StateStore
    let tokens: TokenBox
    let logger: Logger
    /// One reload at a time (SIGHUP and POST /v1/reload may coincide), so state and tokens
    /// always come from the same files.
    private let serial = Mutex(())

    /// What the sockets, checks and pull source were started with.
    let startup: Configuration
    let notifier: SystemdNotifier

    init(configPath: String, store: StateStore, tokens: TokenBox, logger: Logger, startup: Configuration,
         notifier: SystemdNotifier = SystemdNotifier(environment: [:])) {
        self.startup = startup
        self.notifier = notifier
        self.configPath = configPath
        self.store = store
        self.tokens = tokens
        self.logger = logger
    }

    /// Returns the errors that kept the old state (empty on success). Listening addresses,
    /// health checks and the pull source are set up at start: changing them needs a restart,
    /// and a reload that changes them says so.
    @discardableResult
    func reload() -> [SourceError] {
        serial.withLock { _ in reloadSerially() }
    }

    private func reloadSerially() -> [SourceError] {
        notifier.reloading()
        let old = store.state
        switch StateLoader.load(configPath: configPath, previous: old) {
        case .success(let loaded):
            store.update { current in loaded.state.carryingOver(from: current) }
            tokens.replace(loaded.tokens)
            let changed = startup.restartOnlyDifferences(from: loaded.configuration)
            if !changed.isEmpty {
                logger.warning("reload applied, but these take effect only after a restart",
                               metadata: ["settings": "\(changed.joined(separator: ", "))"])
            }
            logger.info("reloaded", metadata: ["zones": "\(loaded.state.catalog.zones.count)",
                                               "records": "\(loaded.state.catalog.recordCount)"])
            notifier.ready(status: "serving \(loaded.state.catalog.zones.count) zones")
            return []
        case .failure(let error):
            for item in error.errors { logger.error("reload rejected: \(item.description)") }
            logger.error("reload failed; still serving the previous state")
            notifier.ready(status: "serving \(old.catalog.zones.count) zones; last reload failed: \(error.errors.count) errors")
            return error.errors
        }
    }
}

/// SIGHUP → reload.
struct ReloadService: ServiceLifecycle.Service {
    let reloader: Reloader
    let notifier: SystemdNotifier

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reloader.reload()
        }
        notifier.stopping()
    }
}

/// Once a second, folds the answers recently handed out into the steering snapshot, so that
/// selection counts the load it is about to cause (anti-herding). At most one publish a
/// second, whatever the query rate.
struct DirectedLoadPublisher: ServiceLifecycle.Service {
    let store: StateStore

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await pause(.seconds(1))
            store.update { state in
                var steering = state.steering
                guard !steering.sites.isEmpty else { return state }
                let now = SteeringClock.now()
                // Bindings carry the load of sticky services; the answer ledger that of the
                // others (policies without affinity).
                let bound = state.affinity.directedLoad(snapshot: steering, now: now)
                let answered = DirectedLoad.estimate(snapshot: steering, ledger: state.ledger, now: now, excludingSticky: true)
                steering.directed = zip(bound, answered).map { $0 + $1 }
                return state.with(steering: steering)
            }
        }
    }
}
