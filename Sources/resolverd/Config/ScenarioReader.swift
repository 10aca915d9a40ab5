import Foundation
import Resolver
import Scoring
import Simulation
import Yams

/// Reads a simulation scenario (`scenarios/*.yaml`), reporting every error with its line.
enum ScenarioReader {
    static let topLevelKeys: Set<String> = ["name", "summary", "seed", "duration", "warmup", "window", "demand", "dns",
                                            "reports", "health", "resolvers", "timeout-ms", "spill-utilization", "sites",
                                            "regions", "diurnal", "events", "sweep", "steering"]

    static func load(path: String) -> Result<Scenario, ZoneLoadError> {
        let root: Node?
        switch ConfigReader.compose(path: path) {
        case .success(let node): root = node
        case .failure(let error): return .failure(ZoneLoadError(errors: [error]))
        }
        let reader = ConfigReader(file: (path as NSString).lastPathComponent)
        let fallbackName = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        var scenario = Scenario(name: fallbackName)
        let entries = reader.mapping(root, "", allowed: topLevelKeys)
        for (key, value) in entries {
            read(key, value, into: &scenario, reader: reader)
        }
        if scenario.sites.isEmpty { reader.error(root, "sites", "at least one site is needed") }
        if scenario.regions.isEmpty { reader.error(root, "regions", "at least one region is needed") }
        if scenario.warmup >= scenario.duration { reader.error(root, "warmup", "must be shorter than duration") }
        if scenario.parameters.staleAfter < scenario.parameters.freshFor {
            reader.error(root, "steering", "stale-after must not be less than fresh-for")
        }
        let siteIDs = Set(scenario.sites.map(\.id))
        let regionNames = Set(scenario.regions.map(\.name))
        for (index, node) in (root?[key: "events"]?.sequence.map(Array.init) ?? []).enumerated()
            where index < scenario.events.count {
            switch scenario.events[index].kind {
            case .fail(let site), .recover(let site), .capacity(let site, _):
                if !siteIDs.contains(site) { reader.error(node, "events[\(index)]", "unknown site \"\(site)\"") }
            case .demand(let region, _, _):
                if !regionNames.contains(region) { reader.error(node, "events[\(index)]", "unknown region \"\(region)\"") }
            }
        }
        guard reader.errors.isEmpty else { return .failure(ZoneLoadError(errors: reader.errors)) }
        return .success(scenario)
    }

    static func read(_ key: String, _ value: Node, into scenario: inout Scenario, reader: ConfigReader) {
        func number(_ node: Node, _ path: String, _ range: ClosedRange<Double>) -> Double? {
            reader.double(node, path, range: range)
        }
        switch key {
        case "name": scenario.name = reader.string(value, key) ?? scenario.name
        case "summary": scenario.summary = reader.string(value, key) ?? ""
        case "seed": scenario.seed = UInt64(reader.int(value, key, range: 0...Int.max) ?? 1)
        case "duration": scenario.duration = number(value, key, 10...86400) ?? scenario.duration
        case "warmup": scenario.warmup = number(value, key, 0...86400) ?? scenario.warmup
        case "window": scenario.window = number(value, key, 1...3600) ?? scenario.window
        case "timeout-ms": scenario.timeoutMs = number(value, key, 1...600_000) ?? scenario.timeoutMs
        case "spill-utilization": scenario.spillUtilization = number(value, key, 0.01...10) ?? scenario.spillUtilization
        case "demand":
            for (field, item) in reader.mapping(value, key, allowed: ["utilization", "prefix-spread"]) {
                if field == "utilization" {
                    scenario.utilization = number(item, "demand.utilization", 0...10) ?? scenario.utilization
                } else {
                    scenario.prefixSpread = number(item, "demand.prefix-spread", 0...10) ?? scenario.prefixSpread
                }
            }
        case "dns":
            for (field, item) in reader.mapping(value, key, allowed: ["ttl", "hold", "margin"]) {
                switch field {
                case "ttl": scenario.ttl = UInt32(reader.int(item, "dns.ttl", range: 0...86400) ?? Int(scenario.ttl))
                case "hold": scenario.hold = number(item, "dns.hold", 0...86400) ?? scenario.hold
                default: scenario.margin = number(item, "dns.margin", 0...10) ?? scenario.margin
                }
            }
        case "reports":
            for (field, item) in reader.mapping(value, key, allowed: ["interval", "delay"]) {
                if field == "interval" {
                    scenario.reportInterval = number(item, "reports.interval", 0.1...3600) ?? scenario.reportInterval
                } else {
                    scenario.reportDelay = number(item, "reports.delay", 0...3600) ?? scenario.reportDelay
                }
            }
        case "health":
            for (_, item) in reader.mapping(value, key, allowed: ["detect"]) {
                scenario.detectDelay = number(item, "health.detect", 0...3600) ?? scenario.detectDelay
            }
        case "resolvers":
            for (field, item) in reader.mapping(value, key, allowed: ["ecs-share", "public", "stretch-share", "stretch-ttl"]) {
                let path = "resolvers.\(field)"
                switch field {
                case "ecs-share": scenario.resolvers.ecsShare = number(item, path, 0...1) ?? scenario.resolvers.ecsShare
                case "public": scenario.resolvers.publicResolvers = reader.int(item, path, range: 1...1000) ?? 1
                case "stretch-share":
                    scenario.resolvers.stretchShare = number(item, path, 0...1) ?? scenario.resolvers.stretchShare
                default: scenario.resolvers.stretchTTL = number(item, path, 0...86400) ?? scenario.resolvers.stretchTTL
                }
            }
        case "sites":
            for (index, node) in reader.sequence(value, key).enumerated() {
                if let site = readSite(node, "sites[\(index)]", reader: reader) { scenario.sites.append(site) }
            }
        case "regions":
            for (index, node) in reader.sequence(value, key).enumerated() {
                if let region = readRegion(node, "regions[\(index)]", reader: reader) { scenario.regions.append(region) }
            }
        case "diurnal":
            var diurnal = Diurnal(period: 86400, amplitude: 0.5)
            for (field, item) in reader.mapping(value, key, allowed: ["period", "amplitude"]) {
                if field == "period" {
                    diurnal.period = number(item, "diurnal.period", 1...1e7) ?? diurnal.period
                } else {
                    diurnal.amplitude = number(item, "diurnal.amplitude", 0...1) ?? diurnal.amplitude
                }
            }
            scenario.diurnal = diurnal
        case "events":
            for (index, node) in reader.sequence(value, key).enumerated() {
                if let event = readEvent(node, "events[\(index)]", reader: reader) { scenario.events.append(event) }
            }
        case "sweep":
            var axes: [[Variant]] = []
            for (field, item) in reader.mapping(value, key, allowed: ["utilization", "report-interval", "ttl"]) {
                let path = "sweep.\(field)"
                let values = reader.sequence(item, path).compactMap { number($0, path, 0...86400) }
                if values.isEmpty { reader.error(item, path, "expected a list of values") }
                axes.append(values.map { value in
                    switch field {
                    case "utilization": Variant(utilization: value)
                    case "report-interval": Variant(reportInterval: value)
                    default: Variant(ttl: UInt32(value))
                    }
                })
            }
            // The cartesian product of the axes, first axis slowest.
            scenario.sweep = axes.reduce([Variant()]) { product, axis in
                product.flatMap { base in
                    axis.map { change in
                        Variant(utilization: change.utilization ?? base.utilization,
                                reportInterval: change.reportInterval ?? base.reportInterval,
                                ttl: change.ttl ?? base.ttl)
                    }
                }
            }
        default: // steering
            for (field, item) in reader.mapping(value, key, allowed: ScoringParameters.configKeys) {
                scenario.parameters.read(field, item, path: "steering.\(field)", reader: reader)
            }
        }
    }

    static func readSite(_ node: Node, _ path: String, reader: ConfigReader) -> SiteSpec? {
        var id: String?
        var location: GeoPoint?
        var servers: Int?
        var serviceMs: Double?
        var cv = 1.0
        var maxWait = 1000.0
        for (field, item) in reader.mapping(node, path, allowed: ["id", "location", "servers", "service-ms", "service-cv",
                                                                  "max-wait-ms"]) {
            let fieldPath = "\(path).\(field)"
            switch field {
            case "id": id = reader.string(item, fieldPath)
            case "location": location = reader.location(item, fieldPath)
            case "servers": servers = reader.int(item, fieldPath, range: 1...1_000_000)
            case "service-ms": serviceMs = reader.double(item, fieldPath, range: 0.001...600_000)
            case "service-cv": cv = reader.double(item, fieldPath, range: 0.01...20) ?? cv
            default: maxWait = reader.double(item, fieldPath, range: 0...600_000) ?? maxWait
            }
        }
        guard let id, let location, let servers, let serviceMs else {
            reader.error(node, path, "id, location, servers and service-ms are required")
            return nil
        }
        var site = SiteSpec(id: id, location: location, servers: servers, serviceMs: serviceMs)
        site.serviceCV = cv
        site.maxWaitMs = maxWait
        return site
    }

    static func readRegion(_ node: Node, _ path: String, reader: ConfigReader) -> RegionSpec? {
        var name: String?
        var location: GeoPoint?
        var prefixes: Int?
        var radius = 100.0
        var weight = 1.0
        var resolvers = 2
        for (field, item) in reader.mapping(node, path, allowed: ["name", "location", "prefixes", "radius-km", "weight",
                                                                  "resolvers"]) {
            let fieldPath = "\(path).\(field)"
            switch field {
            case "name": name = reader.string(item, fieldPath)
            case "location": location = reader.location(item, fieldPath)
            case "prefixes": prefixes = reader.int(item, fieldPath, range: 1...1_000_000)
            case "radius-km": radius = reader.double(item, fieldPath, range: 0...20_000) ?? radius
            case "weight": weight = reader.double(item, fieldPath, range: 0...1e9) ?? weight
            default: resolvers = reader.int(item, fieldPath, range: 1...10_000) ?? resolvers
            }
        }
        guard let name, let location, let prefixes else {
            reader.error(node, path, "name, location and prefixes are required")
            return nil
        }
        var region = RegionSpec(name: name, location: location, prefixes: prefixes)
        region.radiusKm = radius
        region.weight = weight
        region.resolvers = resolvers
        return region
    }

    /// `{at: T, fail: SITE}`, `{at: T, recover: SITE}`, `{at: T, capacity: SITE, factor: F}`,
    /// `{at: T, until: T2, demand: REGION, factor: F}`.
    static func readEvent(_ node: Node, _ path: String, reader: ConfigReader) -> Event? {
        var fields: [String: Node] = [:]
        for (field, item) in reader.mapping(node, path, allowed: ["at", "until", "fail", "recover", "capacity", "demand",
                                                                  "factor"]) {
            fields[field] = item
        }
        guard let at = fields["at"].flatMap({ reader.double($0, "\(path).at", range: 0...86400) }) else {
            reader.error(node, path, "at (seconds) is required")
            return nil
        }
        let factor = fields["factor"].flatMap { reader.double($0, "\(path).factor", range: 0...1000) }
        if let site = fields["fail"].flatMap({ reader.string($0, "\(path).fail") }) {
            return Event(at: at, kind: .fail(site: site))
        }
        if let site = fields["recover"].flatMap({ reader.string($0, "\(path).recover") }) {
            return Event(at: at, kind: .recover(site: site))
        }
        if let site = fields["capacity"].flatMap({ reader.string($0, "\(path).capacity") }), let factor {
            return Event(at: at, kind: .capacity(site: site, factor: factor))
        }
        if let region = fields["demand"].flatMap({ reader.string($0, "\(path).demand") }), let factor,
           let until = fields["until"].flatMap({ reader.double($0, "\(path).until", range: at...86400) }) {
            return Event(at: at, kind: .demand(region: region, factor: factor, until: until))
        }
        reader.error(node, path, "expected one of fail: SITE, recover: SITE, capacity: SITE with factor, "
                     + "demand: REGION with factor and until")
        return nil
    }
}
