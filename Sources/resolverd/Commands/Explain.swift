import ArgumentParser
import Foundation
import Resolver
import Scoring

/// `resolverd explain NAME CLIENT`: every candidate site with its latency (and where it came
/// from), compute delay, score and exclusion, then the choice, TTL and ECS scope.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how a service name would be answered for a client (address or prefix).")

    @OptionGroup var options: ConfigOptions

    @Argument(help: "Service name, e.g. api.svc.example.")
    var name: String

    @Argument(help: "Client address or prefix, e.g. 203.0.113.9 or 198.51.100.0/24.")
    var client: String

    func run() async throws {
        guard let parsedClient = Self.parseClient(client) else {
            throw ValidationError("\"\(client)\" is not an address or prefix")
        }
        let loaded: LoadedState
        switch StateLoader.load(configPath: options.config) {
        case .success(let value): loaded = value
        case .failure(let error):
            for item in error.errors { FileHandle.standardError.write(Data((item.description + "\n").utf8)) }
            throw ExitCode(1)
        }
        guard let qname = try? DNSName(name.hasSuffix(".") ? name : name + "."),
              let entry = loaded.state.services[qname] else {
            let known = loaded.state.steering.services.map(\.name).joined(separator: ", ")
            throw ValidationError("\(name) is not a configured service (configured: \(known.isEmpty ? "none" : known))")
        }
        let snapshot = loaded.state.steering
        let decision = Selector.select(service: snapshot.services[entry.index], client: parsedClient,
                                       snapshot: snapshot, now: SteeringClock.now())
        print(Self.render(decision, service: snapshot.services[entry.index], client: parsedClient, snapshot: snapshot))
    }

    static func parseClient(_ text: String) -> Client? {
        if text.contains("/") {
            let parts = text.split(separator: "/")
            guard parts.count == 2, let address = IPAddress(parts[0]), let length = Int(parts[1]),
                  length >= 0, length <= address.family.bitLength else { return nil }
            return Client(address: address, prefixLength: length)
        }
        return IPAddress(text).map { Client(address: $0) }
    }

    static func render(_ decision: Decision, service: Service, client: Client, snapshot: SteeringSnapshot) -> String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = ["service \(service.name)  policy \(service.policy.rawValue)  client \(client)", ""]
        lines.append(pad("site", 8) + pad("rtt_ms", 9) + pad("rtt from", 30) + pad("util", 7) + pad("compute_ms", 12)
                     + pad("score", 9) + pad("report age", 12) + "excluded")
        for candidate in decision.candidates {
            let site = snapshot.sites[candidate.site]
            lines.append(pad(site.id, 8) + pad(fixed(candidate.rtt), 9) + pad(candidate.rttSource.description, 30)
                         + pad(fixed(candidate.utilization, 2), 7) + pad(fixed(candidate.computeDelay), 12)
                         + pad(fixed(candidate.score, service.policy == .leastLoaded ? 3 : 1), 9)
                         + pad(candidate.reportAge.map { fixed($0, 0) + " s" } ?? "never", 12)
                         + (candidate.excluded?.rawValue ?? "-"))
        }
        let chosen = decision.sites.map { index -> String in
            let site = snapshot.sites[index]
            return "\(site.id) (\((site.ipv4 + site.ipv6).map(\.description).joined(separator: ", ")))"
        }
        lines.append("")
        lines.append("choice: \(chosen.joined(separator: "; "))" + (decision.allDown ? "  [all sites excluded: all-down policy]" : ""))
        lines.append("ttl: \(decision.ttl)  ecs scope: /\(decision.scope)")
        return lines.joined(separator: "\n")
    }
}
