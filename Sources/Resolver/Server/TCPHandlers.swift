import NIOCore
import Scoring
import Synchronization

/// What one TCP peer may hold of the server (RFC 7766 §6.2.3, RFC 9210 §4): connections
/// in total and per client address, time without a query, time to finish a message once it
/// has started, and responses not yet taken by the peer.
public struct TCPLimits: Sendable, Equatable {
    /// Close a connection after this long without a complete query (RFC 7766 §6.2.3).
    public var idleTimeout: TimeAmount
    /// Close a connection whose message has not arrived in full this long after its first
    /// byte, so a peer sending a byte at a time cannot hold a connection open.
    public var readTimeout: TimeAmount
    /// Connections beyond this are closed at once (RFC 7766 §6.2.2).
    public var maxConnections: Int
    public var maxConnectionsPerClient: Int
    /// Responses written but not yet taken by the peer; at this many (or when the socket's
    /// buffer is full), the connection stops reading until the peer catches up, so a peer
    /// that pipelines queries but never reads cannot grow our memory.
    public var maxInFlight: Int

    public init(idleTimeout: TimeAmount = .seconds(10), readTimeout: TimeAmount = .seconds(5), maxConnections: Int = 1000,
                maxConnectionsPerClient: Int = 64, maxInFlight: Int = 64) {
        self.idleTimeout = idleTimeout
        self.readTimeout = readTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerClient = maxConnectionsPerClient
        self.maxInFlight = maxInFlight
    }
}

/// Open TCP connections per client address, for `TCPLimits.maxConnectionsPerClient`. It
/// holds at most one entry per open connection.
final class TCPConnectionTable: Sendable {
    private let open = Mutex<[IPAddress: Int]>([:])

    /// Counts a new connection from `client`; false (and not counted) when it has `limit` already.
    func admit(_ client: IPAddress, limit: Int) -> Bool {
        open.withLock { table in
            let count = table[client, default: 0]
            guard count < limit else { return false }
            table[client] = count + 1
            return true
        }
    }

    func release(_ client: IPAddress) {
        open.withLock { table in
            guard let count = table[client] else { return }
            table[client] = count > 1 ? count - 1 : nil
        }
    }
}

/// Splits a TCP stream into DNS messages by their two-octet length prefix (RFC 1035 §4.2.2),
/// and closes the connection when a started message is not complete within `readTimeout`.
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    let readTimeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(readTimeout: TimeAmount) {
        self.readTimeout = readTimeout
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self),
              buffer.readableBytes >= 2 + Int(length) else {
            if buffer.readableBytes > 0 && deadline == nil {
                // Set once per message: more bytes trickling in do not extend it.
                let channel = context.channel
                deadline = context.eventLoop.scheduleTask(in: readTimeout) { channel.close(promise: nil) }
            }
            return .needMoreData
        }
        deadline?.cancel()
        deadline = nil
        buffer.moveReaderIndex(forwardBy: 2)
        let frame = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial message at EOF is discarded.
        while try decode(context: context, buffer: &buffer) == .continue {}
        deadline?.cancel()
        deadline = nil
        return .needMoreData
    }
}

/// Answers each framed query in order. Pipelined queries (RFC 7766 §6.2.1) are answered as
/// they are decoded, and the responses of one read are flushed together. When the peer
/// leaves `maxInFlight` responses unread, queries are held (at most what one socket read
/// delivered) and reading stops until it catches up.
final class TCPQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let store: StateStore
    private let metrics: ServerCounters
    private let maxInFlight: Int
    private var responder = Responder()
    private var pendingFlush = false
    private var sequence: UInt64 = 0
    private var inFlight = 0
    private var held = CircularBuffer<ByteBuffer>()
    private var paused = false

    init(store: StateStore, metrics: ServerCounters, maxInFlight: Int) {
        self.store = store
        self.metrics = metrics
        self.maxInFlight = maxInFlight
    }

    private func mustWait(_ context: ChannelHandlerContext) -> Bool {
        inFlight >= maxInFlight || !context.channel.isWritable
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if !held.isEmpty || mustWait(context) {
            held.append(frame)
            pause(context)
            return
        }
        answer(frame, context: context)
    }

    private func answer(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let state = store.state
        sequence &+= 1
        let requestContext = RequestContext(transport: .tcp, source: IPAddress(context.channel.remoteAddress), sequence: sequence)
        let answered = frame.withUnsafeReadableBytes { packet in
            responder.respond(to: packet, context: requestContext, state: state)
        }
        metrics.record(answered: answered, transport: .tcp)
        guard answered else { return }
        var buffer = context.channel.allocator.buffer(capacity: responder.writer.count + 2)
        buffer.writeInteger(UInt16(responder.writer.count))
        buffer.writeBytes(responder.writer.bytes)
        inFlight += 1
        let promise = context.eventLoop.makePromise(of: Void.self)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        promise.futureResult.whenComplete { _ in
            let (handler, context) = loopBound.value
            handler.inFlight -= 1
            handler.resumeIfPossible(context)
        }
        context.write(wrapOutboundOut(buffer), promise: promise)
        pendingFlush = true
    }

    private func pause(_ context: ChannelHandlerContext) {
        guard !paused else { return }
        paused = true
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        flushIfNeeded(context)
    }

    /// Answers held queries while the peer keeps up; reading resumes once none are held.
    private func resumeIfPossible(_ context: ChannelHandlerContext) {
        guard paused, context.channel.isActive else { return }
        while !held.isEmpty && !mustWait(context) {
            answer(held.removeFirst(), context: context)
        }
        flushIfNeeded(context)
        if held.isEmpty && !mustWait(context) {
            paused = false
            context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        }
    }

    private func flushIfNeeded(_ context: ChannelHandlerContext) {
        if pendingFlush {
            pendingFlush = false
            context.flush()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context)
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resumeIfPossible(context) }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // One broken peer closes only its own connection.
        context.close(promise: nil)
    }
}
