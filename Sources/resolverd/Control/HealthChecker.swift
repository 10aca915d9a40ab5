import AsyncHTTPClient
import Logging
import NIOCore
import NIOPosix
import Resolver
import Scoring
import ServiceLifecycle

/// Which sites have an active check (for reports and metrics).
struct HealthCheckStatus: Sendable {
    let sites: Set<String>
    func configured(_ site: String) -> Bool { sites.contains(site) }
}

/// Active health checks (`check: {tcp: PORT}` or `{http: URL}`): each site is probed every
/// `interval` (± 20 % jitter, so checks of many instances do not synchronise). A site turns
/// failing after `fall` consecutive failures and passing again after `rise` successes, so one
/// lost probe does not move clients and a flapping site does not make answers flap.
struct HealthChecker: ServiceLifecycle.Service {
    struct Target: Sendable {
        var site: String
        var address: IPAddress
        var check: HealthCheckConfig
    }

    let targets: [Target]
    let writer: SteeringWriter
    let logger: Logger
    var interval: Duration = .seconds(1)
    var timeout: Duration = .milliseconds(800)
    var rise = 2
    var fall = 2

    func run() async throws {
        await withDiscardingTaskGroup { group in
            for target in targets {
                group.addTask { await self.watch(target) }
            }
        }
    }

    func watch(_ target: Target) async {
        var passing = true
        var streak = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let ok = await probe(target)
            if ok == passing {
                streak = 0
            } else {
                streak += 1
                if streak >= (passing ? fall : rise) {
                    passing = ok
                    streak = 0
                    writer.submit(check: passing, site: target.site)
                    logger.warning("health check changed", metadata: ["site": "\(target.site)", "passing": "\(passing)"])
                }
            }
            let jitter = Double.random(in: 0.8...1.2)
            await pause(interval * jitter)
        }
    }

    func probe(_ target: Target) async -> Bool {
        switch target.check {
        case .tcp(let port):
            do {
                let address = try SocketAddress(ipAddress: target.address.description, port: port)
                let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.nanoseconds(Int64(timeout.components.seconds * 1_000_000_000
                                                       + timeout.components.attoseconds / 1_000_000_000)))
                    .connect(to: address).get()
                try? await channel.close()
                return true
            } catch {
                return false
            }
        case .http(let url):
            do {
                let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: url),
                                                                   timeout: .milliseconds(Int64(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)))
                // Read (and bound) the body so the connection can be reused or closed cleanly.
                _ = try? await response.body.collect(upTo: 1 << 20)
                return (200..<400).contains(Int(response.status.code))
            } catch {
                return false
            }
        }
    }
}
