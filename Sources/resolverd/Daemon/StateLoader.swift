import Foundation
import Resolver
import Scoring

/// Builds a complete `ServingState` from a configuration file: the single path by which
/// `serve`, SIGHUP, `check` and `explain` read their inputs, so that what `check` accepts is
/// exactly what `serve` will load.
struct LoadedState: Sendable {
    var configuration: Configuration
    var state: ServingState
    var tokens: TokenStore
}

enum StateLoader {
    /// - Parameter previous: the state being replaced; its answer ledger carries over when the
    ///   sites are the same, in the same order (the ledger is indexed by site).
    static func load(configPath: String, previous: ServingState? = nil) -> Result<LoadedState, ZoneLoadError> {
        let (partial, configErrors) = Configuration.loadPartial(path: configPath)
        guard let configuration = partial else { return .failure(ZoneLoadError(errors: configErrors)) }
        var errors = configErrors
        var zones: [Zone] = []
        switch ZoneFileLoader.loadDirectory(configuration.zonesDirectory) {
        case .success(let loaded):
            zones = loaded
            if zones.isEmpty {
                errors.append(SourceError(file: configuration.zonesDirectory, line: 0, message: "no *.zone files"))
            }
        case .failure(let error):
            errors.append(contentsOf: error.errors)
        }
        let catalog = Catalog(zones: zones)
        let (steering, services) = buildSteering(configuration, catalog: catalog, errors: &errors)
        let file = (configuration.file as NSString).lastPathComponent
        for (site, _) in configuration.pull?.queries ?? [] where steering.siteIndex(site) == nil {
            errors.append(SourceError(file: file, line: configuration.pullLines[site] ?? 1,
                                      message: "pull.queries.\(site): unknown site \"\(site)\""))
        }
        var tokens = TokenStore.empty
        if let path = configuration.tokensFile {
            switch TokenStore.load(path: path, siteIDs: Set(steering.sites.map(\.id))) {
            case .success(let loaded): tokens = loaded
            case .failure(let error): errors.append(contentsOf: error.errors)
            }
        }
        guard errors.isEmpty else {
            return .failure(ZoneLoadError(errors: errors.sorted { ($0.file, $0.line) < ($1.file, $1.line) }))
        }
        let sameSites = previous.map { $0.steering.sites.map(\.id) == steering.sites.map(\.id) } ?? false
        // … and when it keeps as many seconds as the new services' TTLs need.
        let reuse = sameSites && (previous?.ledger.window ?? 0) >= AnswerLedger.neededWindow(for: steering) ? previous?.ledger : nil
        let state = ServingState(catalog: catalog, nsid: configuration.nsid.map { Array($0.utf8) },
                                 chaos: ChaosIdentity.records(id: configuration.chaosID, version: configuration.chaosVersion),
                                 steering: steering, services: services, ledger: reuse,
                                 // Counters carry over a reload (per service and site ID).
                                 metrics: previous?.metrics.with(steering: steering),
                                 affinity: previous?.affinity ?? AffinityTable(capacity: configuration.maxBindings),
                                 cookies: configuration.cookieSecrets ?? previous?.cookies ?? .random(),
                                 rateLimiter: configuration.rateLimit.map { limits in
                                     // Keep the buckets (and so the limits in force) when unchanged.
                                     previous?.rateLimiter.flatMap { $0.configuration == limits ? $0 : nil }
                                         ?? ResponseRateLimiter(limits)
                                 })
        return .success(LoadedState(configuration: configuration, state: state, tokens: tokens))
    }

    /// Turns the steering sections into a snapshot and binds each service name to its zone.
    /// Checked here because it needs the zones: a service must lie inside a served zone, not
    /// below a delegation, and not on a name that has static data.
    static func buildSteering(_ configuration: Configuration, catalog: Catalog,
                              errors: inout [SourceError]) -> (SteeringSnapshot, [DNSName: ServiceEntry]) {
        let file = (configuration.file as NSString).lastPathComponent
        func fail(_ line: Int, _ message: String) { errors.append(SourceError(file: file, line: line, message: message)) }

        let sites = configuration.sites.map {
            Site(id: $0.id, addresses: $0.addresses, capacity: $0.capacity, location: $0.location)
        }
        // Sites by ID in a dictionary: configurations name thousands of them, and the latency
        // file one per line.
        let byID = SteeringSnapshot(sites: sites, services: [])
        var services: [Service] = []
        var names: [DNSName] = []
        var seen: Set<DNSName> = []
        var zonesOfServices: [Zone] = []
        for config in configuration.services {
            let path = "services.\(config.name)"
            guard let name = try? DNSName(config.name.hasSuffix(".") ? config.name : config.name + ".") else {
                fail(config.line, "\(path): not a domain name"); continue
            }
            if seen.contains(name) { fail(config.line, "\(path): duplicate service name"); continue }
            guard let zone = catalog.zone(for: name) else {
                fail(config.line, "\(path): not inside any served zone"); continue
            }
            switch zone.lookup(name, qtype: .a) {
            case .delegation(let ns):
                fail(config.line, "\(path): below the delegation \(ns.name.text)"); continue
            case .exact(let node) where !node.rrsets.isEmpty:
                fail(config.line, "\(path): the name has static data in \(zone.source)"); continue
            default:
                break
            }
            var indices: [Int] = []
            for site in config.sites {
                guard let index = byID.siteIndex(site.id) else {
                    fail(site.line, "\(site.path): unknown site \"\(site.id)\""); continue
                }
                if indices.contains(index) { fail(site.line, "\(site.path): site \"\(site.id)\" listed twice"); continue }
                indices.append(index)
            }
            names.append(name)
            seen.insert(name)
            zonesOfServices.append(zone)
            services.append(Service(name: name.text, sites: indices, ttl: config.ttl, answers: config.answers,
                                    policy: config.policy, affinityHold: config.hold, affinityMargin: config.margin,
                                    affinityHoldDown: config.holdDown))
        }

        var latency = LatencyMap()
        if let path = configuration.latencyFile {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let display = (path as NSString).lastPathComponent
                for error in LatencyFile.parseRTTs(text, into: &latency, siteIndex: { byID.siteIndex($0) }) {
                    errors.append(SourceError(file: display, line: error.line, message: error.message))
                }
            } else {
                fail(1, "latency.file: cannot read \(path)")
            }
        }
        if let path = configuration.locationsFile {
            if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                let display = (path as NSString).lastPathComponent
                for error in LatencyFile.parseLocations(text, into: &latency) {
                    errors.append(SourceError(file: display, line: error.line, message: error.message))
                }
            } else {
                fail(1, "latency.locations: cannot read \(path)")
            }
        }
        // Read from here on (API measurements refine it copy-on-write): the room it grew into
        // while loading is given back, a third of it at a million prefixes.
        latency.compact()
        let snapshot = SteeringSnapshot(sites: sites, services: services, latency: latency,
                                        parameters: configuration.scoring)
        var entries: [DNSName: ServiceEntry] = [:]
        for (index, name) in names.enumerated() {
            entries[name] = ServiceEntry(name: name, index: index, zone: zonesOfServices[index], snapshot: snapshot)
        }
        return (snapshot, entries)
    }
}
