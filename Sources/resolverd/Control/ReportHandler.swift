import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// `PUT /v1/sites/:site/load` answered on the connection's event loop, in the HTTP pipeline
/// ahead of Hummingbird's router: a load report is the one request that comes thousands of
/// times a second, and the router's way, a hop from the event loop to a task and back, cost
/// about 100 µs a request on the DNS server's core. Everything else goes on to the router
/// untouched, and the report itself is judged by the router's own code
/// (`ControlAPI.acceptLoad`), so the two ways cannot differ.
///
/// Pipelined requests (RFC 9112 §9.3.2) are answered in order: a report that comes while
/// requests passed to the router are still unanswered waits, and is answered as soon as the
/// router's answer to the last request before it has been written.
final class ReportHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A report read whole, to answer.
    private struct Report {
        var site: String
        var authorization: String?
        var close: Bool
        var path: String
        var body: ByteBuffer?
    }

    /// The requests not yet answered, oldest first: the router's, and reports waiting behind
    /// them (a report is answered at once when nothing is ahead of it).
    private enum Waiting {
        case router
        case report(Report)
    }

    private enum State {
        /// Between requests.
        case idle
        /// A request for the router: its parts are passed on.
        case passing
        /// A load report being read (nil body: over the limit, read to its end and refused).
        case report(site: String, authorization: String?, close: Bool, path: String, body: ByteBuffer?)
    }

    private let api: ControlAPI
    private var state = State.idle
    private var waiting: [Waiting] = []
    /// Answers written since the last flush: flushed once per read, for all the requests it
    /// brought.
    private var unflushed = false

    init(api: ControlAPI) {
        self.api = api
    }

    /// The site of a `/v1/sites/{site}/load` path; nil for any other path (a query string
    /// included: the router deals with what is unusual).
    static func reportSite(_ path: String) -> Substring? {
        let prefix = "/v1/sites/".utf8, suffix = "/load".utf8
        let bytes = path.utf8
        guard bytes.count > prefix.count + suffix.count, bytes.starts(with: prefix), bytes.reversed().starts(with: suffix.reversed()) else {
            return nil
        }
        let site = bytes.dropFirst(prefix.count).dropLast(suffix.count)
        guard !site.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "%") }) else { return nil }
        return Substring(site)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            if head.method == .put, let path = head.path, let site = Self.reportSite(path) {
                state = .report(site: String(site), authorization: head.headerFields[.authorization],
                                close: head.headerFields[.connection]?.lowercased() == "close", path: path,
                                body: context.channel.allocator.buffer(capacity: 64))
            } else {
                state = .passing
                waiting.append(.router)
                context.fireChannelRead(data)
            }
        case (.body(var chunk), .report(let site, let authorization, let close, let path, var body)):
            if body != nil, body!.readableBytes + chunk.readableBytes <= ControlAPI.maxBody {
                body!.writeBuffer(&chunk)
            } else {
                body = nil
            }
            state = .report(site: site, authorization: authorization, close: close, path: path, body: body)
        case (.end, .report(let site, let authorization, let close, let path, let body)):
            state = .idle
            let report = Report(site: site, authorization: authorization, close: close, path: path, body: body)
            if waiting.isEmpty { answer(context, report) } else { waiting.append(.report(report)) }
        case (.end, .passing):
            state = .idle
            context.fireChannelRead(data)
        default:
            // A request for the router (its body), or parts out of order, which the router's
            // own handling refuses.
            context.fireChannelRead(data)
        }
    }

    /// The router's answers pass here on their way out; the end of one lets the reports
    /// queued behind its request be answered.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else {
            context.write(data, promise: promise)
            return
        }
        context.write(data, promise: promise)
        if case .router? = waiting.first { waiting.removeFirst() }
        while case .report(let report)? = waiting.first {
            waiting.removeFirst()
            answer(context, report)
        }
        if unflushed {
            // Written after the router's answer, which its writer flushes itself.
            unflushed = false
            context.flush()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    private func answer(_ context: ChannelHandlerContext, _ report: Report) {
        let bytes = report.body.map { Array($0.readableBytesView) }
        let refusal = api.acceptLoad(site: report.site, authorization: report.authorization, body: bytes, method: "PUT",
                                     path: report.path)
        var fields: HTTPFields = [.server: "resolverd"]
        let close = report.close
        if close { fields[.connection] = "close" }
        if let refusal {
            let json = ControlAPI.encode(["error": refusal.reason])
            fields[.contentType] = "application/json"
            fields[.contentLength] = "\(json.count)"
            context.write(wrapOutboundOut(.head(HTTPResponse(status: refusal.status, headerFields: fields))), promise: nil)
            context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: json))), promise: nil)
        } else {
            context.write(wrapOutboundOut(.head(HTTPResponse(status: .noContent, headerFields: fields))), promise: nil)
        }
        if close {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.close(promise: nil)
        } else {
            context.write(wrapOutboundOut(.end(nil)), promise: nil)
            unflushed = true
        }
    }
}
