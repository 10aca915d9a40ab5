import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import Resolver

/// `resolverd explain NAME CLIENT`: every candidate site with its latency (and where it came
/// from), compute delay, score and exclusion, then the choice, TTL and ECS scope. Offline from
/// the configuration, or from a running server's `/v1/explain` with `--server`.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how a service name would be answered for a client (address or prefix).")

    @OptionGroup var options: ConfigOptions

    @Option(name: .long, help: "Ask a running server instead, e.g. http://127.0.0.1:8053")
    var server: String?

    @Argument(help: "Service name, e.g. api.svc.example.")
    var name: String

    @Argument(help: "Client address or prefix, e.g. 203.0.113.9 or 198.51.100.0/24.")
    var client: String

    func run() async throws {
        if let server {
            print(try await Self.fetch(server: server, name: name, client: client).text)
            return
        }
        let loaded: LoadedState
        switch StateLoader.load(configPath: options.config) {
        case .success(let value): loaded = value
        case .failure(let error):
            for item in error.errors { FileHandle.standardError.write(Data((item.description + "\n").utf8)) }
            throw ExitCode(1)
        }
        do {
            print(try ExplainReport.make(state: loaded.state, name: name, client: client, now: SteeringClock.now()).text)
        } catch {
            throw ValidationError(error.description)
        }
    }

    static func fetch(server: String, name: String, client: String) async throws -> ExplainReport {
        var components = URLComponents(string: server.hasSuffix("/") ? String(server.dropLast()) : server)
        components?.path = "/v1/explain"
        components?.queryItems = [URLQueryItem(name: "name", value: name), URLQueryItem(name: "client", value: client)]
        guard let url = components?.url?.absoluteString else { throw ValidationError("bad --server URL \(server)") }
        let request = HTTPClientRequest(url: url)
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status == .ok else {
            throw ValidationError("\(server): \(response.status.code) \(String(buffer: body))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(ExplainReport.self, from: Data(body.readableBytesView))
    }
}
