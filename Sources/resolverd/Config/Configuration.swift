import Foundation
import Resolver
import Scoring
import Yams

/// A `host:port` listening address: `127.0.0.1:5353` or `[::1]:5353`.
struct ListenAddress: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: Int

    init?(_ text: String) {
        let host: Substring
        let port: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            port = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        guard let number = Int(port), (0...65535).contains(number), IPAddressText.isValid(host) else { return nil }
        self.host = String(host)
        self.port = number
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

enum IPAddressText {
    static func isValid(_ text: Substring) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return String(text).withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }
}

/// The daemon's configuration, as in SPEC.md. Relative paths are resolved against the
/// directory of the configuration file, so `resolverd serve --config /etc/resolverd/x.yaml`
/// works from any working directory.
struct Configuration: Sendable {
    var file: String
    var dnsListen: [ListenAddress] = [ListenAddress("127.0.0.1:5353")!]
    var nsid: String? = nil
    /// UDP sockets and threads per listening address; nil: one per core this process may use.
    var udpThreads: Int? = nil
    /// CH TXT answers for `id.server.`/`hostname.bind.` and `version.server.`/`version.bind.`;
    /// off (REFUSED) unless set.
    var chaosID: String? = nil
    var chaosVersion: String? = nil
    var tcp = TCPLimitsConfig()
    /// Server cookie secrets; nil: a random secret made at start and kept across reloads.
    var cookieSecrets: CookieSecrets? = nil
    /// Response rate limiting; nil: off.
    var rateLimit: RateLimitConfiguration? = nil
    var httpListen: ListenAddress? = nil
    /// `http.coalesce-ms`: while requests keep coming on more than one connection, the API
    /// reads at most once per this many milliseconds (`ControlLoopPacer`); 0 reads at once.
    var httpCoalesceMs = 4.0
    /// `http.nice`: the nice value of the API's thread (0 … 19). Above the DNS workers' 0, so
    /// that on a busy core the control plane cannot take the CPU that answering needs.
    var httpNice = 10
    var tokensFile: String? = nil
    var zonesDirectory: String
    var stateDirectory: String? = nil
    var sites: [SiteConfig] = []
    var services: [ServiceConfig] = []
    var latencyFile: String? = nil
    var locationsFile: String? = nil
    var scoring = ScoringParameters()
    var pull: PullConfig? = nil
    /// Most client bindings kept (flow affinity); the least recently used go first.
    var maxBindings = 1_000_000
    var pullLines: [String: Int] = [:]

    static let topLevelKeys: Set<String> = ["dns", "http", "zones", "state", "sites", "services", "latency", "steering", "pull"]

    /// Reads and validates a configuration file. Every problem is returned, located.
    static func load(path: String) -> Result<Configuration, ZoneLoadError> {
        let (config, errors) = loadPartial(path: path)
        guard let config, errors.isEmpty else { return .failure(ZoneLoadError(errors: errors)) }
        return .success(config)
    }

    /// Like `load`, but returns what could be read alongside the errors, so that checks
    /// which need the zones can still run and report in the same pass. The configuration is
    /// nil only when the file could not be read or parsed as YAML at all.
    static func loadPartial(path: String) -> (Configuration?, [SourceError]) {
        let displayName = (path as NSString).lastPathComponent
        let root: Node?
        switch ConfigReader.compose(path: path) {
        case .success(let node): root = node
        case .failure(let error): return (nil, [error])
        }
        let directory = ((path as NSString).deletingLastPathComponent as NSString)
        func resolve(_ relative: String) -> String {
            relative.hasPrefix("/") ? relative : directory.appendingPathComponent(relative)
        }
        let reader = ConfigReader(file: displayName)
        var config = Configuration(file: path, zonesDirectory: resolve("zones"))
        for (key, value) in reader.mapping(root, "", allowed: topLevelKeys) {
            switch key {
            case "dns":
                for (field, node) in reader.mapping(value, "dns", allowed: Self.dnsKeys) {
                    let path = "dns.\(field)"
                    switch field {
                    case "listen":
                        var addresses: [ListenAddress] = []
                        for (index, item) in reader.sequence(node, path).enumerated() {
                            guard let text = reader.string(item, "\(path)[\(index)]") else { continue }
                            guard let address = ListenAddress(text) else {
                                reader.error(item, "\(path)[\(index)]", "\"\(text)\" is not an address:port (IPv6 as [addr]:port)")
                                continue
                            }
                            addresses.append(address)
                        }
                        if addresses.isEmpty && reader.errors.isEmpty {
                            reader.error(node, path, "at least one address is needed")
                        }
                        config.dnsListen = addresses
                    case "nsid":
                        if let nsid = reader.string(node, path) {
                            if nsid.utf8.count > 512 { reader.error(node, path, "longer than 512 bytes") }
                            config.nsid = nsid
                        }
                    case "chaos":
                        for (key, item) in reader.mapping(node, path, allowed: ["id", "version"]) {
                            guard let text = reader.string(item, "\(path).\(key)") else { continue }
                            if text.utf8.count > 1024 { reader.error(item, "\(path).\(key)", "longer than 1024 bytes") }
                            if key == "id" { config.chaosID = text } else { config.chaosVersion = text }
                        }
                    case "udp-threads":
                        config.udpThreads = reader.int(node, path, range: 1...256)
                    case "cookies":
                        config.readCookies(node, reader: reader)
                    case "rrl":
                        config.readRateLimit(node, reader: reader)
                    default:
                        _ = config.readTCPLimit(field, node, reader: reader)
                    }
                }
            case "http":
                for (field, node) in reader.mapping(value, "http", allowed: ["listen", "tokens", "coalesce-ms", "nice"]) {
                    if field == "coalesce-ms" {
                        if let value = reader.double(node, "http.coalesce-ms", range: 0...100) { config.httpCoalesceMs = value }
                        continue
                    }
                    if field == "nice" {
                        if let value = reader.int(node, "http.nice", range: 0...19) { config.httpNice = value }
                        continue
                    }
                    guard let text = reader.string(node, "http.\(field)") else { continue }
                    if field == "listen" {
                        guard let address = ListenAddress(text) else {
                            reader.error(node, "http.listen", "\"\(text)\" is not an address:port")
                            continue
                        }
                        config.httpListen = address
                    } else {
                        config.tokensFile = resolve(text)
                    }
                }
            case "zones":
                if let text = reader.string(value, "zones") { config.zonesDirectory = resolve(text) }
            case "state":
                if let text = reader.string(value, "state") { config.stateDirectory = resolve(text) }
            default:
                config.readSteering(key: key, value: value, reader: reader, resolve: resolve)
            }
        }
        return (config, reader.errors)
    }
}

extension Configuration {
    /// Settings fixed at start (sockets, health checks, the pull source) that differ in `other`.
    func restartOnlyDifferences(from other: Configuration) -> [String] {
        var changed: [String] = []
        if dnsListen != other.dnsListen { changed.append("dns.listen") }
        if httpListen != other.httpListen { changed.append("http.listen") }
        if httpCoalesceMs != other.httpCoalesceMs { changed.append("http.coalesce-ms") }
        if httpNice != other.httpNice { changed.append("http.nice") }
        if tcp != other.tcp { changed.append("dns.tcp-*") }
        if udpThreads != other.udpThreads { changed.append("dns.udp-threads") }
        let checks = Dictionary(sites.map { ($0.id, $0.check) }, uniquingKeysWith: { first, _ in first })
        let otherChecks = Dictionary(other.sites.map { ($0.id, $0.check) }, uniquingKeysWith: { first, _ in first })
        if checks != otherChecks { changed.append("sites.*.check") }
        if pull?.server != other.pull?.server || pull?.interval != other.pull?.interval
            || pull?.queries.map({ "\($0.site)=\($0.query)" }) != other.pull?.queries.map({ "\($0.site)=\($0.query)" }) {
            changed.append("pull")
        }
        return changed
    }
}
