import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Resolver
import Scoring
import Synchronization

/// The HTTP control plane (SPEC.md "HTTP API"). Writes are authenticated with bearer
/// tokens and validated completely before anything is queued; reads are open (bind the API
/// to a private address).
struct ControlAPI: Sendable {
    let store: StateStore
    let writer: SteeringWriter
    let tokens: TokenBox
    let reload: @Sendable () -> [SourceError]
    let exporter: MetricsExporter
    let checks: HealthCheckStatus
    let logger: Logger

    /// Bodies larger than this are refused (SPEC.md: 64 KiB).
    static let maxBody = 64 * 1024

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.put("/v1/sites/:site/load") { request, context in try await self.putLoad(request, context) }
        router.put("/v1/loads") { request, _ in await self.putLoads(request) }
        router.put("/v1/latency") { request, context in try await self.putLatency(request, context) }
        router.get("/v1/sites") { _, _ in self.json(SitesReport(state: self.store.state, checks: self.checks, now: SteeringClock.now())) }
        router.get("/v1/explain") { request, _ in self.explain(request) }
        router.post("/v1/reload") { request, _ in self.postReload(request) }
        router.get("/metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(string: self.exporter.render(state: self.store.state, checks: self.checks))))
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: StatusPage.render(
                        SitesReport(state: self.store.state, checks: self.checks, now: SteeringClock.now())))))
        }
        return router
    }

    // MARK: Writes

    /// `PUT /v1/sites/:site/load` through the router, for a request `ReportFastPath` left to it.
    func putLoad(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = await collect(request)
        let site = context.parameters.get("site") ?? ""
        let principal = tokens.current.authenticate(authorization: request.headers[.authorization])
        func accept(_ body: UnsafeRawBufferPointer?) -> Refusal? {
            acceptLoad(site: site, principal: principal, body: body, method: "\(request.method)", path: request.uri.path)
        }
        let status = body.map { $0.withUnsafeBytes(accept) } ?? accept(nil)
        return status.map { json(["error": $0.reason], status: $0.status) } ?? Response(status: .noContent)
    }

    /// A refused request: its status and the reason sent back.
    struct Refusal: Error {
        var status: HTTPResponse.Status
        var reason: String
    }

    /// One site's load report (`PUT /v1/sites/:site/load`), whichever way it came: queued, or
    /// refused (counted and logged) with the reason. `principal` is the token's (nil: missing
    /// or unknown); `body` is nil when it was over the limit, and is read in place (the fast
    /// path's is still in the connection's buffer). `path` (for the log) is made only for a
    /// refusal. Synchronous, so that `ReportFastPath` answers it on the connection's event loop.
    func acceptLoad(site: String, principal: Principal?, body: UnsafeRawBufferPointer?, method: String,
                    path: @autoclosure () -> String) -> Refusal? {
        func refuse(_ status: HTTPResponse.Status, _ reason: String) -> Refusal {
            rejected(status, reason, method: method, path: path())
            return Refusal(status: status, reason: reason)
        }
        guard let principal else {
            return refuse(.unauthorized, "missing or unknown bearer token")
        }
        // Permission before existence, so a site token cannot probe which site names exist.
        switch principal {
        case .site(let own) where own == site: break
        case .admin: break
        case .site: return refuse(.forbidden, "this token may report only for its own site")
        case .measurement: return refuse(.forbidden, "measurement tokens may not report load")
        }
        // Read through the state (`ServingState.site`): a copy of its snapshot from this module
        // would retain and release each of the snapshot's fields.
        guard let known = store.state.site(site) else { return refuse(.notFound, "unknown site \"\(site)\"") }
        guard let body else { return refuse(.badRequest, "body larger than 64 KiB") }
        do {
            let report = try LoadReport.parse(body)
            writer.submit(load: report.siteLoad(at: SteeringClock.now(), configuredCapacity: known.capacity), site: site)
            return nil
        } catch {
            return refuse(.badRequest, error.reason)
        }
    }

    /// Many sites' reports in one request (`LoadReport.parseBatch`), for an agent that
    /// reports for a fleet: one request's overhead instead of one per site, so thousands of
    /// reports a second cost the DNS side little. The same rules as `putLoad` for each site
    /// (a site token only for its own site; permission before existence), applied to every
    /// site before any report is queued: the batch is taken whole or not at all.
    func putLoads(_ request: Request) async -> Response {
        guard let principal = authenticate(request) else { return reject(request, .unauthorized, "missing or unknown bearer token") }
        if principal == .measurement { return reject(request, .forbidden, "measurement tokens may not report load") }
        guard let body = await collect(request) else { return reject(request, .badRequest, "body larger than 64 KiB") }
        let reports: [(site: String, report: LoadReport)]
        do { reports = try LoadReport.parseBatch(body) } catch { return reject(request, .badRequest, error.reason) }
        if case .site(let own) = principal, let other = reports.first(where: { $0.site != own }) {
            return reject(request, .forbidden, "this token may report only for its own site, not \"\(other.site)\"")
        }
        let steering = store.state.steering
        if let unknown = reports.first(where: { steering.siteIndex($0.site) == nil }) {
            return reject(request, .notFound, "unknown site \"\(unknown.site)\"")
        }
        let now = SteeringClock.now()
        writer.submit(loads: reports.map { report in
            let capacity = steering.sites[steering.siteIndex(report.site)!].capacity   // all known, checked above
            return (report.site, report.report.siteLoad(at: now, configuredCapacity: capacity))
        })
        return Response(status: .noContent)
    }

    func putLatency(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        guard let principal = authenticate(request) else { return reject(request, .unauthorized, "missing or unknown bearer token") }
        guard principal == .admin || principal == .measurement else {
            return reject(request, .forbidden, "latency needs a measurement or admin token")
        }
        guard let body = await collect(request) else { return reject(request, .badRequest, "body larger than 64 KiB") }
        let steering = store.state.steering
        do {
            let reports = try LatencyReport.parse(body) { steering.siteIndex($0) }
            writer.submit(latency: reports.map { ($0.prefix, steering.sites[$0.site].id, $0.rtt) })
            return Response(status: .noContent)
        } catch {
            return reject(request, .badRequest, error.reason)
        }
    }

    func postReload(_ request: Request) -> Response {
        guard let principal = authenticate(request) else { return reject(request, .unauthorized, "missing or unknown bearer token") }
        guard principal == .admin else { return reject(request, .forbidden, "reload needs an admin token") }
        let errors = reload()
        guard errors.isEmpty else {
            return json(["error": "reload failed; the previous state is kept",
                         "errors": errors.map(\.description).joined(separator: "\n")], status: .badRequest)
        }
        return json(["reloaded": "true"])
    }

    // MARK: Reads

    func explain(_ request: Request) -> Response {
        let query = request.uri.queryParameters
        guard let name = query["name"].map(String.init), let client = query["client"].map(String.init) else {
            return json(["error": "name and client are required"], status: .badRequest)
        }
        do {
            return json(try ExplainReport.make(state: store.state, name: name, client: client, now: SteeringClock.now()))
        } catch {
            return json(["error": error.description], status: .badRequest)
        }
    }

    // MARK: Helpers

    func authenticate(_ request: Request) -> Principal? {
        tokens.current.authenticate(authorization: request.headers[.authorization])
    }

    func collect(_ request: Request) async -> [UInt8]? {
        guard let buffer = try? await request.body.collect(upTo: Self.maxBody) else { return nil }
        return Array(buffer.readableBytesView)
    }

    /// Refuses a request: counted, logged without the token, answered with a JSON reason.
    func reject(_ request: Request, _ status: HTTPResponse.Status, _ reason: String) -> Response {
        rejected(status, reason, method: "\(request.method)", path: request.uri.path)
        return json(["error": reason], status: status)
    }

    private func rejected(_ status: HTTPResponse.Status, _ reason: String, method: String, path: String) {
        exporter.rejected(status: status.code)
        logger.warning("request rejected", metadata: ["method": "\(method)", "path": "\(path)",
                                                      "status": "\(status.code)", "reason": "\(reason)"])
    }

    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: Self.encode(value))))
    }

    /// The JSON of every response body: sorted keys, snake case.
    static func encode<T: Encodable>(_ value: T) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return (try? encoder.encode(value)) ?? Data("{}".utf8)
    }
}

/// The tokens in force; replaced on reload.
final class TokenBox: Sendable {
    private let store: Mutex<(tokens: TokenStore, generation: Int)>
    init(_ tokens: TokenStore) { store = Mutex((tokens, 0)) }
    var current: TokenStore { store.withLock { $0.tokens } }
    /// The tokens and how many times they were replaced: what was looked up in one generation
    /// stays true until the next (`ReportFastPath` keeps a connection's last look-up).
    var currentWithGeneration: (tokens: TokenStore, generation: Int) { store.withLock { $0 } }
    func replace(_ tokens: TokenStore) { store.withLock { $0 = (tokens, $0.generation + 1) } }
}

/// `GET /v1/sites`: each site's load, report age, health and share of recent answers.
struct SitesReport: Codable {
    struct SiteRow: Codable {
        var site: String
        var addresses: [String]
        var capacity: Double
        var utilization: Double?
        var serviceMs: Double?
        var queue: Int?
        var healthy: Bool
        var reportAgeSeconds: Double?
        /// "fresh", "ageing", "stale" or "never".
        var reportState: String
        /// "passing", "failing" or "none".
        var check: String
        var directedRps: Double
        var answersLastMinute: Int
        var shareOfAnswers: Double
        var location: [Double]?
    }

    var sites: [SiteRow]
    var services: [String]

    init(state: ServingState, checks: HealthCheckStatus, now: Double) {
        let steering = state.steering
        let answers = steering.sites.indices.map { state.ledger.answers(site: $0, since: now - 60, now: now) }
        let total = max(answers.reduce(0, +), 1)
        sites = steering.sites.enumerated().map { index, site in
            let load = steering.loads[index]
            let age = load.reportedAt.map { max(0, now - $0) }
            let reportState: String
            switch age {
            case nil: reportState = "never"
            case let age? where age <= steering.parameters.freshFor: reportState = "fresh"
            case let age? where age <= steering.parameters.staleAfter: reportState = "ageing"
            default: reportState = "stale"
            }
            return SiteRow(site: site.id, addresses: (site.ipv4 + site.ipv6).map(\.description),
                           capacity: load.capacity ?? site.capacity,
                           utilization: load.reportedAt == nil ? nil : load.utilization,
                           serviceMs: load.serviceMs, queue: load.queue, healthy: load.healthy,
                           reportAgeSeconds: age, reportState: reportState,
                           check: checks.configured(site.id) ? (steering.checksPassing[index] ? "passing" : "failing") : "none",
                           directedRps: steering.directed[index], answersLastMinute: answers[index],
                           shareOfAnswers: Double(answers[index]) / Double(total),
                           location: site.location.map { [$0.latitude, $0.longitude] })
        }
        services = steering.services.map(\.name)
    }
}
