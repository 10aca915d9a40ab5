import Logging
import enum Scoring.IPAddress
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Counters the transports update on every query; read by logs and, later, metrics.
public final class ServerCounters: Sendable {
    public let udpAnswered = Atomic<Int>(0)
    public let tcpAnswered = Atomic<Int>(0)
    public let dropped = Atomic<Int>(0)
    public let tcpConnections = Atomic<Int>(0)
    public let tcpRefused = Atomic<Int>(0)

    public init() {}

    func record(answered: Bool, transport: Transport) {
        if !answered {
            dropped.wrappingAdd(1, ordering: .relaxed)
        } else if transport == .udp {
            udpAnswered.wrappingAdd(1, ordering: .relaxed)
        } else {
            tcpAnswered.wrappingAdd(1, ordering: .relaxed)
        }
    }

    /// A batch of UDP datagrams: `udpAnswered` answered, `dropped` not.
    func record(udpAnswered answered: Int, dropped: Int) {
        if answered > 0 { udpAnswered.wrappingAdd(answered, ordering: .relaxed) }
        if dropped > 0 { self.dropped.wrappingAdd(dropped, ordering: .relaxed) }
    }
}

/// Listening settings for the DNS transports.
public struct DNSServerConfiguration: Sendable {
    public var listen: [SocketAddress]
    public var tcp: TCPLimits
    /// UDP sockets, each with its own thread, per listening address.
    public var udpThreads: Int

    public init(listen: [SocketAddress], tcp: TCPLimits = TCPLimits(), udpThreads: Int = System.coreCount) {
        self.listen = listen
        self.tcp = tcp
        self.udpThreads = max(udpThreads, 1)
    }
}

/// DNS over UDP and TCP on every configured address, as one service of the daemon.
///
/// UDP: `udpThreads` sockets on each address with SO_REUSEPORT, so the kernel spreads
/// queries over all cores, each served by its own thread in batches of recvmmsg/sendmmsg
/// (`UDPWorkers`). TCP: one listener per address on the event loops (RFC 7766). All
/// sockets close on graceful shutdown.
public final class DNSServer: Service, Sendable {
    let configuration: DNSServerConfiguration
    let store: StateStore
    let group: MultiThreadedEventLoopGroup
    let logger: Logger
    public let counters: ServerCounters
    /// Open TCP connections per client, across every listening address.
    let connections = TCPConnectionTable()
    /// Called once every socket is bound (systemd's READY=1).
    let onReady: @Sendable () -> Void

    public init(configuration: DNSServerConfiguration, store: StateStore, group: MultiThreadedEventLoopGroup,
                logger: Logger, counters: ServerCounters = ServerCounters(), onReady: @escaping @Sendable () -> Void = {}) {
        self.configuration = configuration
        self.store = store
        self.group = group
        self.logger = logger
        self.counters = counters
        self.onReady = onReady
    }

    /// Binds every socket: the UDP sockets first, then the TCP listeners.
    func bind() async throws -> (UDPWorkers, [Channel]) {
        let workers = try UDPWorkers(listen: configuration.listen, perAddress: configuration.udpThreads,
                                     store: store, counters: counters)
        var channels: [Channel] = []
        do {
            for address in configuration.listen {
                do {
                    channels.append(try await bindTCP(address))
                } catch {
                    throw ListenError(address: address, underlying: error)
                }
                logger.info("listening", metadata: ["address": "\(address.hostPort)", "transports": "udp,tcp",
                                                    "udp-threads": "\(configuration.udpThreads)"])
            }
        } catch {
            workers.stop()
            for channel in channels { try? await channel.close() }
            throw error
        }
        return (workers, channels)
    }

    /// A listening address that could not be bound, with the likely fix for the usual causes.
    public struct ListenError: Error, CustomStringConvertible {
        public let address: SocketAddress
        public let underlying: any Error

        public var description: String {
            let text = "\(underlying)"
            var hint = ""
            if text.contains("errno: 13") || text.contains("Permission denied") {
                hint = "; ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it) or root"
            } else if text.contains("errno: 98") || text.contains("Address already in use") {
                hint = "; another server is listening there"
            } else if text.contains("errno: 99") || text.contains("Cannot assign") {
                hint = "; the address is not configured on this host"
            }
            return "cannot listen on \(address.hostPort): \(text)\(hint)"
        }
    }

    public func run() async throws {
        let (workers, channels) = try await bind()
        workers.start()
        onReady()
        try await withGracefulShutdownHandler {
            for channel in channels { try? await channel.closeFuture.get() }
        } onGracefulShutdown: {
            for channel in channels { channel.close(promise: nil) }
        }
        // Joining the workers blocks for up to one poll interval: off the cooperative pool.
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            pthread_detach(spawnThread {
                workers.stop()
                done.resume()
            })
        }
    }

    private func bindTCP(_ address: SocketAddress) async throws -> Channel {
        let store = self.store
        let counters = self.counters
        let limits = configuration.tcp
        let table = connections
        let logger = self.logger
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let open = counters.tcpConnections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in
                    counters.tcpConnections.wrappingSubtract(1, ordering: .relaxed)
                }
                // A client is an IPv4 address or an IPv6 /64 (one host's usual allocation).
                let client = IPAddress(channel.remoteAddress).map { $0.masked(to: $0.family == .ipv4 ? 32 : 64) }
                guard open <= limits.maxConnections else {
                    counters.tcpRefused.wrappingAdd(1, ordering: .relaxed)
                    logger.debug("tcp connection limit reached", metadata: ["limit": "\(limits.maxConnections)"])
                    return channel.close()
                }
                if let client {
                    guard table.admit(client, limit: limits.maxConnectionsPerClient) else {
                        counters.tcpRefused.wrappingAdd(1, ordering: .relaxed)
                        logger.debug("tcp per-client limit reached",
                                     metadata: ["client": "\(client)", "limit": "\(limits.maxConnectionsPerClient)"])
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in table.release(client) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    try sync.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                    try sync.addHandler(TCPQueryHandler(store: store, metrics: counters, maxInFlight: limits.maxInFlight,
                                                        readTimeout: limits.readTimeout))
                }
            }
            .bind(to: address).get()
    }
}
