import Foundation
import Resolver
import Scoring

/// What `resolverd explain` prints and `GET /v1/explain` returns, as one value, so the
/// offline and the `--server` forms cannot drift apart.
struct ExplainReport: Codable, Equatable {
    struct CandidateRow: Codable, Equatable {
        var site: String
        var rttMs: Double
        var rttSource: String
        var utilization: Double
        var computeDelayMs: Double
        var score: Double
        var reportAgeSeconds: Double?
        var excluded: String?
    }

    struct Choice: Codable, Equatable {
        var site: String
        var addresses: [String]
    }

    var service: String
    var policy: String
    var client: String
    var candidates: [CandidateRow]
    var choice: [Choice]
    var ttl: UInt32
    var scope: Int
    var allDown: Bool

    init(decision: Decision, service: Service, client: Client, snapshot: SteeringSnapshot) {
        self.service = service.name
        policy = service.policy.rawValue
        self.client = client.description
        candidates = decision.candidates.map {
            CandidateRow(site: snapshot.sites[$0.site].id, rttMs: $0.rtt, rttSource: $0.rttSource.description,
                         utilization: $0.utilization, computeDelayMs: $0.computeDelay, score: $0.score,
                         reportAgeSeconds: $0.reportAge, excluded: $0.excluded?.rawValue)
        }
        choice = decision.sites.map { index in
            let site = snapshot.sites[index]
            return Choice(site: site.id, addresses: (site.ipv4 + site.ipv6).map(\.description))
        }
        ttl = decision.ttl
        scope = decision.scope
        allDown = decision.allDown
    }

    enum Failure: Error, CustomStringConvertible {
        case badClient(String)
        case unknownService(String, known: [String])
        var description: String {
            switch self {
            case .badClient(let text): return "\"\(text)\" is not an address or prefix"
            case .unknownService(let name, let known):
                return "\(name) is not a configured service (configured: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
            }
        }
    }

    /// Runs the selection the DNS path would run for `name` and `client` against `state`.
    static func make(state: ServingState, name: String, client clientText: String, now: Double) throws(Failure) -> ExplainReport {
        guard let client = parseClient(clientText) else { throw .badClient(clientText) }
        guard let qname = try? DNSName(name.hasSuffix(".") ? name : name + "."), let entry = state.services[qname] else {
            throw .unknownService(name, known: state.steering.services.map(\.name))
        }
        let service = state.steering.services[entry.index]
        let decision = Selector.select(service: service, client: client, snapshot: state.steering, now: now)
        return ExplainReport(decision: decision, service: service, client: client, snapshot: state.steering)
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

    /// The table a person reads.
    var text: String {
        func fixed(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
        var lines = ["service \(service)  policy \(policy)  client \(client)", ""]
        lines.append(pad("site", 8) + pad("rtt_ms", 9) + pad("rtt from", 30) + pad("util", 7) + pad("compute_ms", 12)
                     + pad("score", 9) + pad("report age", 12) + "excluded")
        for row in candidates {
            lines.append(pad(row.site, 8) + pad(fixed(row.rttMs), 9) + pad(row.rttSource, 30)
                         + pad(fixed(row.utilization, 2), 7) + pad(fixed(row.computeDelayMs), 12)
                         + pad(fixed(row.score, policy == Policy.leastLoaded.rawValue ? 3 : 1), 9)
                         + pad(row.reportAgeSeconds.map { fixed($0, 0) + " s" } ?? "never", 12)
                         + (row.excluded ?? "-"))
        }
        lines.append("")
        let chosen = choice.map { "\($0.site) (\($0.addresses.joined(separator: ", ")))" }.joined(separator: "; ")
        lines.append("choice: \(chosen)" + (allDown ? "  [all sites excluded: all-down policy]" : ""))
        lines.append("ttl: \(ttl)  ecs scope: /\(scope)")
        return lines.joined(separator: "\n")
    }
}
