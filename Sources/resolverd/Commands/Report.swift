import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

/// `resolverd report`: sends one site's load to every resolverd instance at once, so that
/// all instances select from the same inputs and give the same answers (README "Deploying").
/// Meant to run from the site's own monitoring every few seconds.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report a site's load to one or more resolverd instances (PUT /v1/sites/SITE/load).")

    @Option(name: .customLong("api"), help: "Base URL of an instance's HTTP API; repeat for each instance.")
    var apis: [String]

    @Option(name: .long, help: "Site ID, as in the configuration.")
    var site: String

    @Option(name: .long, help: "Bearer token for the site (default: $RESOLVERD_TOKEN, which keeps it out of ps).")
    var token: String?

    @Option(name: .long, help: "Offered load ÷ capacity (0–10).")
    var utilization: Double

    @Option(name: .long, help: "Requests/s at full utilisation.")
    var capacity: Double?

    @Option(name: .customLong("service-ms"), help: "Mean service time in milliseconds.")
    var serviceMs: Double?

    @Option(name: .long, help: "Requests waiting.")
    var queue: Int?

    @Option(name: .long, help: "false takes the site out of answers (default true).")
    var healthy: Bool?

    @Option(name: .long, help: "Seconds to wait for each instance.")
    var timeout: Int = 5

    func validate() throws {
        guard !apis.isEmpty else { throw ValidationError("give at least one --api URL") }
        for api in apis where URL(string: api)?.scheme.map({ ["http", "https"].contains($0) }) != true {
            throw ValidationError("--api \(api): not an http(s) URL")
        }
        guard resolvedToken != nil else { throw ValidationError("no token: pass --token or set RESOLVERD_TOKEN") }
        _ = try report()
    }

    var resolvedToken: String? { token ?? ProcessInfo.processInfo.environment["RESOLVERD_TOKEN"] }

    /// The report, checked by the same rules the API applies, so a bad value fails here.
    func report() throws -> LoadReport {
        let report = LoadReport(utilization: utilization, capacity: capacity, serviceMs: serviceMs, queue: queue,
                                healthy: healthy ?? true)
        do {
            return try LoadReport.parse(report.json)
        } catch {
            throw ValidationError(error.reason)
        }
    }

    func run() async throws {
        let payload = try report().json
        let token = resolvedToken!
        let path = "/v1/sites/\(site.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? site)/load"
        // Every instance at once: one slow instance must not delay the others' view.
        let results = await withTaskGroup(of: (Int, String, Bool).self) { group in
            for (index, api) in apis.enumerated() {
                group.addTask {
                    var request = HTTPClientRequest(url: api.trimmingSuffix("/") + path)
                    request.method = .PUT
                    request.headers.add(name: "Authorization", value: "Bearer \(token)")
                    request.headers.add(name: "Content-Type", value: "application/json")
                    request.body = .bytes(ByteBuffer(bytes: payload))
                    do {
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(timeout)))
                        let text = String(buffer: try await response.body.collect(upTo: 64 * 1024))
                        let ok = response.status.code == 204
                        return (index, "\(api): \(response.status.code)\(text.isEmpty ? "" : " \(text)")", ok)
                    } catch {
                        return (index, "\(api): \(error)", false)
                    }
                }
            }
            var results: [(Int, String, Bool)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }
        }
        for (_, line, _) in results { print(line) }
        if results.contains(where: { !$0.2 }) { throw ExitCode(1) }
    }
}

private extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
