import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import Resolver
import Scoring
import ServiceLifecycle

/// Reads each site's utilisation from an existing Prometheus server (its HTTP query API,
/// `GET /api/v1/query`), one PromQL expression per site, every `interval`. For operators who
/// already collect load there: no push agent needed. A query that fails or returns nothing
/// leaves the site's last report to age, as a silent site would.
struct PrometheusPull: ServiceLifecycle.Service {
    let configuration: PullConfig
    let writer: SteeringWriter
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            for (site, query) in configuration.queries {
                do {
                    let value = try await Self.query(server: configuration.server, expression: query)
                    guard value.isFinite, value >= 0, value <= LoadReport.maxUtilization else {
                        logger.warning("prometheus value out of range", metadata: ["site": "\(site)", "value": "\(value)"])
                        continue
                    }
                    writer.submit(load: SiteLoad(utilization: value, reportedAt: SteeringClock.now()), site: site)
                } catch {
                    logger.warning("prometheus pull failed", metadata: ["site": "\(site)", "error": "\(error)"])
                }
            }
            await pause(.seconds(configuration.interval))
        }
    }

    struct PullError: Error, CustomStringConvertible {
        var description: String
    }

    /// Evaluates an instant query and returns the first sample's value.
    static func query(server: String, expression: String) async throws -> Double {
        var components = URLComponents(string: server)
        // Keep a base path (Prometheus behind a prefix such as /prometheus).
        let basePath = (components?.path ?? "").replacingOccurrences(of: "/$", with: "", options: .regularExpression)
        components?.path = basePath + "/api/v1/query"
        // '+' must be escaped: form decoding would read it as a space and change the PromQL.
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "+&=;")
        components?.percentEncodedQuery = "query=" + (expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")
        guard let url = components?.url?.absoluteString else { throw PullError(description: "bad URL \(server)") }
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else { throw PullError(description: "HTTP \(response.status.code)") }
        // {"status":"success","data":{"resultType":"vector","result":[{"metric":{…},"value":[ts,"0.42"]}]}}
        guard let root = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
              root["status"] as? String == "success", let data = root["data"] as? [String: Any] else {
            throw PullError(description: "unexpected response")
        }
        if let result = data["result"] as? [[String: Any]], let sample = result.first?["value"] as? [Any],
           sample.count == 2, let text = sample[1] as? String, let value = Double(text) {
            return value
        }
        if data["resultType"] as? String == "scalar", let sample = data["result"] as? [Any], sample.count == 2,
           let text = sample[1] as? String, let value = Double(text) {
            return value
        }
        throw PullError(description: "no sample")
    }
}

/// `pull:` in the configuration.
struct PullConfig: Sendable {
    var server: String
    var interval: Double = 5
    var queries: [(site: String, query: String)] = []
}
