import Resolver
import Scoring
import Yams

/// A site as configured (SPEC.md `sites`).
struct SiteConfig: Sendable {
    var id: String
    var addresses: [IPAddress]
    var capacity: Double
    var location: GeoPoint?
    /// `{tcp: PORT}` or `{http: URL}`; the health checker reads it.
    var check: HealthCheckConfig?
    var line: Int
}

enum HealthCheckConfig: Sendable, Equatable {
    case tcp(port: Int)
    case http(url: String)
}

/// A service as configured (SPEC.md `services`).
struct ServiceConfig: Sendable {
    var name: String
    var sites: [(id: String, line: Int, path: String)]
    var ttl: UInt32 = 20
    var answers = 1
    var policy: Policy = .responseTime
    var hold: Double = 300
    var margin: Double = 0.2
    var holdDown: Double = Service.defaultHoldDown
    var line: Int
}

extension Configuration {
    /// Reads `sites`, `services`, `latency` and `steering` into `self`.
    mutating func readSteering(key: String, value: Node, reader: ConfigReader, resolve: (String) -> String) {
        switch key {
        case "sites":
            for (id, line, node) in reader.entries(value, "sites") {
                let path = "sites.\(id)"
                var site = SiteConfig(id: id, addresses: [], capacity: 0, line: line)
                var sawCapacity = false
                for (field, item) in reader.mapping(node, path, allowed: ["addresses", "capacity", "location", "check"]) {
                    let fieldPath = "\(path).\(field)"
                    switch field {
                    case "addresses":
                        for (index, entry) in reader.sequence(item, fieldPath).enumerated() {
                            guard let text = reader.string(entry, "\(fieldPath)[\(index)]") else { continue }
                            guard let address = IPAddress(text) else {
                                reader.error(entry, "\(fieldPath)[\(index)]", "\"\(text)\" is not an IPv4 or IPv6 address")
                                continue
                            }
                            site.addresses.append(address)
                        }
                    case "capacity":
                        if let capacity = reader.double(item, fieldPath, range: 0.001...1e9) {
                            site.capacity = capacity
                            sawCapacity = true
                        }
                    case "location":
                        site.location = reader.location(item, fieldPath) ?? site.location
                    default:
                        let entries = reader.mapping(item, fieldPath, allowed: ["tcp", "http"])
                        guard entries.count == 1, let (kind, target) = entries.first else {
                            reader.error(item, fieldPath, "expected {tcp: PORT} or {http: URL}")
                            continue
                        }
                        if kind == "tcp", let port = reader.int(target, "\(fieldPath).tcp", range: 1...65535) {
                            site.check = .tcp(port: port)
                        } else if kind == "http", let url = reader.string(target, "\(fieldPath).http") {
                            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                                reader.error(target, "\(fieldPath).http", "expected an http:// or https:// URL")
                                continue
                            }
                            site.check = .http(url: url)
                        }
                    }
                }
                if site.addresses.isEmpty { reader.error(line: line, path, "at least one address is needed") }
                if !sawCapacity { reader.error(line: line, path, "capacity (requests/s at full utilisation) is required") }
                sites.append(site)
            }
        case "services":
            for (name, line, node) in reader.entries(value, "services") {
                let path = "services.\(name)"
                var service = ServiceConfig(name: name, sites: [], line: line)
                for (field, item) in reader.mapping(node, path, allowed: ["sites", "ttl", "answers", "policy", "affinity"]) {
                    let fieldPath = "\(path).\(field)"
                    switch field {
                    case "sites":
                        for (index, entry) in reader.sequence(item, fieldPath).enumerated() {
                            if let id = reader.string(entry, "\(fieldPath)[\(index)]") {
                                service.sites.append((id, entry.mark?.line ?? 1, "\(fieldPath)[\(index)]"))
                            }
                        }
                    case "ttl":
                        service.ttl = UInt32(reader.int(item, fieldPath, range: 0...86400) ?? 20)
                    case "answers":
                        service.answers = reader.int(item, fieldPath, range: 1...16) ?? 1
                    case "policy":
                        guard let text = reader.string(item, fieldPath) else { continue }
                        guard let policy = Policy(rawValue: text) else {
                            let choices = Policy.allCases.map(\.rawValue).joined(separator: ", ")
                            reader.error(item, fieldPath, "unknown policy \"\(text)\" (expected one of: \(choices))")
                            continue
                        }
                        service.policy = policy
                    default:
                        for (setting, entry) in reader.mapping(item, fieldPath, allowed: ["hold", "margin", "hold-down"]) {
                            switch setting {
                            case "hold":
                                service.hold = reader.double(entry, "\(fieldPath).hold", range: 0...86400) ?? service.hold
                            case "margin":
                                service.margin = reader.double(entry, "\(fieldPath).margin", range: 0...10) ?? service.margin
                            default:
                                service.holdDown = reader.double(entry, "\(fieldPath).hold-down", range: 0...86400) ?? service.holdDown
                            }
                        }
                    }
                }
                if service.sites.isEmpty { reader.error(line: line, path, "sites: at least one site is needed") }
                services.append(service)
            }
        case "latency":
            for (field, item) in reader.mapping(value, "latency", allowed: ["file", "locations", "default-rtt-ms"]) {
                switch field {
                case "file": latencyFile = reader.string(item, "latency.file").map(resolve)
                case "locations": locationsFile = reader.string(item, "latency.locations").map(resolve)
                default:
                    scoring.defaultRTT = reader.double(item, "latency.default-rtt-ms", range: 0...10_000) ?? scoring.defaultRTT
                }
            }
        case "pull":
            var pull = PullConfig(server: "")
            for (field, item) in reader.mapping(value, "pull", allowed: ["prometheus", "interval", "queries"]) {
                switch field {
                case "prometheus":
                    guard let url = reader.string(item, "pull.prometheus") else { continue }
                    guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                        reader.error(item, "pull.prometheus", "expected the Prometheus server's http:// URL")
                        continue
                    }
                    pull.server = url
                case "interval":
                    pull.interval = reader.double(item, "pull.interval", range: 0.1...3600) ?? pull.interval
                default:
                    for (site, line, query) in reader.entries(item, "pull.queries") {
                        guard let expression = reader.string(query, "pull.queries.\(site)") else { continue }
                        pull.queries.append((site, expression))
                        pullLines[site] = line
                    }
                }
            }
            if pull.server.isEmpty { reader.error(value, "pull", "prometheus: the server URL is required") }
            self.pull = pull
        default: // steering
            for (field, item) in reader.mapping(value, "steering", allowed: ScoringParameters.configKeys.union(["max-bindings"])) {
                if field == "max-bindings" {
                    maxBindings = reader.int(item, "steering.max-bindings", range: 10...100_000_000) ?? maxBindings
                } else {
                    scoring.read(field, item, path: "steering.\(field)", reader: reader)
                }
            }
            if scoring.staleAfter < scoring.freshFor {
                reader.error(value, "steering", "stale-after must not be less than fresh-for")
            }
        }
    }
}

extension ScoringParameters {
    /// The `steering` keys that set scoring parameters (SPEC.md), shared by the configuration
    /// and simulation scenarios.
    static let configKeys: Set<String> = ["fresh-for", "stale-after", "unknown-utilization", "default-service-ms",
                                          "max-compute-ms", "all-down", "load-per-answer",
                                          "move-standard-errors", "swing-errors"]

    /// Sets the parameter named `field` (one of `configKeys`) from `item`.
    mutating func read(_ field: String, _ item: Node, path: String, reader: ConfigReader) {
        switch field {
        case "fresh-for": freshFor = reader.double(item, path, range: 0...86400) ?? freshFor
        case "stale-after": staleAfter = reader.double(item, path, range: 0...86400) ?? staleAfter
        case "unknown-utilization": unknownUtilization = reader.double(item, path, range: 0...1) ?? unknownUtilization
        case "default-service-ms": defaultServiceMs = reader.double(item, path, range: 0.001...60_000) ?? defaultServiceMs
        case "load-per-answer": loadPerAnswer = reader.double(item, path, range: 0...1e6) ?? loadPerAnswer
        case "move-standard-errors": moveStandardErrors = reader.double(item, path, range: 0...10) ?? moveStandardErrors
        case "swing-errors": swingErrors = reader.double(item, path, range: 0...100) ?? swingErrors
        case "max-compute-ms": maxComputeMs = reader.double(item, path, range: 1...600_000) ?? maxComputeMs
        default:
            guard let text = reader.string(item, path) else { return }
            guard let policy = AllDownPolicy(rawValue: text) else {
                reader.error(item, path, "expected \"all\" or \"least-bad\"")
                return
            }
            allDown = policy
        }
    }
}
