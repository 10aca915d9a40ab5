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
}

/// Listening settings for the DNS transports.
public struct DNSServerConfiguration: Sendable {
    public var listen: [SocketAddress]
    public var tcp: TCPLimits

    public init(listen: [SocketAddress], tcp: TCPLimits = TCPLimits()) {
        self.listen = listen
        self.tcp = tcp
    }
}

/// DNS over UDP and TCP on every configured address, as one service of the daemon.
///
/// UDP: one socket per event loop on each address with SO_REUSEPORT, so the kernel spreads
/// queries over all cores; each socket reads in batches (recvmmsg). TCP: one listener per
/// address. All sockets close on graceful shutdown.
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

    /// Binds every socket. Exposed so that a caller can fail fast before starting services.
    public func bind() async throws -> [Channel] {
        var channels: [Channel] = []
        do {
            for address in configuration.listen {
                do {
                    for loop in group.makeIterator() {
                        channels.append(try await bindUDP(address, on: loop))
                    }
                    channels.append(try await bindTCP(address))
                } catch {
                    throw ListenError(address: address, underlying: error)
                }
                logger.info("listening", metadata: ["address": "\(address.hostPort)", "transports": "udp,tcp"])
            }
        } catch {
            for channel in channels { try? await channel.close() }
            throw error
        }
        return channels
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
        let channels = try await bind()
        onReady()
        try await withGracefulShutdownHandler {
            for channel in channels { try? await channel.closeFuture.get() }
        } onGracefulShutdown: {
            for channel in channels { channel.close(promise: nil) }
        }
    }

    private func bindUDP(_ address: SocketAddress, on loop: EventLoop) async throws -> Channel {
        let store = self.store
        let counters = self.counters
        return try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(ChannelOptions.Types.SocketOption(level: .socket, name: .init(rawValue: SO_REUSEPORT)), value: 1)
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 4096))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(UDPHandler(store: store, metrics: counters))
                }
            }
            .bind(to: address).get()
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
